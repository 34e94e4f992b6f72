"""An independent Shared Signals receiver (SSF 1.0, RFC 8935 push and RFC 8936 poll),
written from the specifications with requests and joserfc (not Lanyard's code or JOSE
library), run against a running Lanyard by tests/e2e/interop.rs.

From the transmitter's metadata alone it gets a `lanyard:ssf` token (client_credentials,
HTTP Basic), creates a stream (MODE=push: to an HTTP server of its own that demands the
`Authorization` value it gave; MODE=poll: polled, acknowledging what it took), checks the
stream with a verification round trip, prints `{"ready": stream_id}`, then verifies every
SET it gets — signature by the transmitter's JWKS, `typ` secevent+jwt, `iss`, `aud`, `jti`,
`iat`, one event, a `sub_id`, no `sub` or `exp` — and prints one JSON line per event until
COUNT events came (besides the verification), then `{"done": ...}`.
"""

import json
import os
import queue
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
WANTED = [
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled",
]


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def say(line):
    print(json.dumps(line), flush=True)


class Receiver:
    def __init__(self):
        self.issuer = env("ISSUER")
        self.client_id = env("CLIENT_ID")
        self.meta = requests.get(f"{self.issuer}/.well-known/ssf-configuration", timeout=10).json()
        assert self.meta["issuer"] == self.issuer, self.meta
        oidc = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=10).json()
        r = requests.post(
            oidc["token_endpoint"],
            auth=(self.client_id, env("CLIENT_SECRET")),
            data={"grant_type": "client_credentials", "scope": "lanyard:ssf"},
            timeout=10,
        )
        r.raise_for_status()
        self.token = r.json()["access_token"]
        self.keys = KeySet.import_key_set(requests.get(self.meta["jwks_uri"], timeout=10).json())
        self.seen_jtis = set()

    def call(self, method, url, body=None):
        return requests.request(
            method, url, json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def verify(self, compact):
        """The SET's claims, checked as SSF 1.0 §4 and RFC 8417 say; raises otherwise."""
        token = jwt.decode(compact, self.keys, algorithms=["RS256", "ES256", "EdDSA"])
        if token.header.get("typ") != "secevent+jwt":
            raise ValueError(f"typ is {token.header.get('typ')!r}")
        claims = token.claims
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            jti={"essential": True},
            iat={"essential": True},
        ).validate(claims)
        if "sub" in claims or "exp" in claims:
            raise ValueError("a SET carries no sub or exp")
        if len(claims.get("events", {})) != 1:
            raise ValueError("one event per SET")
        if "format" not in claims.get("sub_id", {}):
            raise ValueError("no sub_id")
        if claims["jti"] in self.seen_jtis:
            raise ValueError(f"jti {claims['jti']} twice")
        self.seen_jtis.add(claims["jti"])
        (event_type, event), = claims["events"].items()
        return {"jti": claims["jti"], "type": event_type, "event": event, "sub_id": claims["sub_id"]}


def main():
    mode = env("MODE")
    count = int(env("COUNT"))
    rx = Receiver()
    assert f"urn:ietf:rfc:{'8935' if mode == 'push' else '8936'}" in rx.meta["delivery_methods_supported"]
    events = queue.Queue()
    refused = []

    body = {"events_requested": WANTED, "description": "independent receiver"}
    if mode == "push":
        secret = secrets.token_urlsafe(16)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                problem = None
                if self.headers.get("Authorization") != f"Bearer {secret}":
                    problem = ("authentication_failed", "wrong Authorization")
                elif self.headers.get("Content-Type") != "application/secevent+jwt":
                    problem = ("invalid_request", "wrong Content-Type")
                else:
                    try:
                        events.put(rx.verify(raw.decode()))
                    except Exception as e:  # noqa: BLE001 — any failure is the receiver's answer
                        problem = ("invalid_key", str(e))
                if problem:
                    refused.append(problem)
                    out = json.dumps({"err": problem[0], "description": problem[1]}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Language", "en")
                    self.end_headers()
                    self.wfile.write(out)
                else:
                    self.send_response(202)
                    self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        body["delivery"] = {
            "method": "urn:ietf:rfc:8935",
            "endpoint_url": f"http://127.0.0.1:{server.server_address[1]}/events",
            "authorization_header": f"Bearer {secret}",
        }

    r = rx.call("POST", rx.meta["configuration_endpoint"], body)
    assert r.status_code == 201, (r.status_code, r.text)
    stream = r.json()
    assert stream["aud"] in (rx.client_id, [rx.client_id]), stream
    assert set(WANTED) <= set(stream["events_delivered"]), stream

    if mode == "poll":
        endpoint = stream["delivery"]["endpoint_url"]
        ack = []

        def poll():
            nonlocal ack
            while True:
                r = rx.call("POST", endpoint, {"ack": ack, "returnImmediately": False, "maxEvents": 10})
                r.raise_for_status()
                answer = r.json()
                ack = []
                for jti, compact in answer["sets"].items():
                    events.put(rx.verify(compact))
                    ack.append(jti)

        threading.Thread(target=poll, daemon=True).start()

    state = secrets.token_urlsafe(12)
    r = rx.call("POST", rx.meta["verification_endpoint"], {"stream_id": stream["stream_id"], "state": state})
    assert r.status_code == 204, (r.status_code, r.text)
    first = events.get(timeout=20)
    assert first["type"] == VERIFICATION and first["event"].get("state") == state, first
    assert first["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}, first
    say({"ready": stream["stream_id"]})

    got = []
    deadline = time.time() + 30
    while len(got) < count:
        try:
            event = events.get(timeout=max(0.1, deadline - time.time()))
        except queue.Empty:
            say({"done": False, "events": got, "refused": refused})
            sys.exit(1)
        got.append(event)
        say({"event": event})
    say({"done": True, "events": got, "refused": refused})


if __name__ == "__main__":
    main()
