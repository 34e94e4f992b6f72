"""An independent Shared Signals transmitter (SSF 1.0 with RFC 8935 push and RFC 8936 poll),
written from the specifications with joserfc and the standard library's HTTP server — not
Lanyard's code or JOSE library — run by tests/e2e/ssf.rs to test lanyard-rp's receiver
against a transmitter that is not Lanyard.

It serves, on 127.0.0.1 at a port of its own: `/.well-known/ssf-configuration`, `/jwks` (an
RSA key it makes at start), `/ssf/streams` (POST: create; DELETE), `/ssf/verify`,
`/ssf/poll/<stream_id>`, all for the bearer token TOKEN; and `/test/emit` (POST {"type",
"sub_id"}), through which the test makes it send an event to every stream. Pushed SETs go as
`application/secevent+jwt` with the stream's `authorization_header`; polled ones wait until
acknowledged. Prints `{"ready": <issuer>}`, then one JSON line per delivery it made.
"""

import json
import os
import secrets
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from joserfc import jwt
from joserfc.jwk import RSAKey

TOKEN = os.environ.get("TOKEN", "transmitter-test-token")
AUDIENCE = os.environ.get("AUDIENCE", "app")
KEY = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"})
LOCK = threading.Lock()
STREAMS = {}  # stream_id -> {"delivery": ..., "queue": [(jti, set)]}


def say(line):
    print(json.dumps(line), flush=True)


def sign(issuer, stream_id, event_type, event, sub_id):
    claims = {
        "iss": issuer,
        "aud": AUDIENCE,
        "jti": secrets.token_urlsafe(12),
        "iat": int(time.time()),
        "sub_id": sub_id,
        "events": {event_type: event},
    }
    header = {"alg": "RS256", "typ": "secevent+jwt", "kid": KEY.kid}
    return claims["jti"], jwt.encode(header, claims, KEY)


def deliver(stream_id, jti, compact):
    stream = STREAMS[stream_id]
    delivery = stream["delivery"]
    if delivery["method"] == "urn:ietf:rfc:8936":
        stream["queue"].append((jti, compact))
        say({"queued": jti, "stream_id": stream_id})
        return
    request = urllib.request.Request(
        delivery["endpoint_url"],
        data=compact.encode(),
        method="POST",
        headers={
            "Content-Type": "application/secevent+jwt",
            "Accept": "application/json",
            "Authorization": delivery.get("authorization_header", ""),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            say({"pushed": jti, "status": r.status})
    except urllib.error.HTTPError as e:
        say({"pushed": jti, "status": e.code, "body": e.read().decode()})


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def issuer(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, status, body=None):
        out = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def authorized(self):
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.reply(401, {"err": "authentication_failed", "description": "bad token"})
            return False
        return True

    def body(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        return json.loads(raw) if raw else {}

    def do_GET(self):
        issuer = self.issuer()
        if self.path == "/.well-known/ssf-configuration":
            self.reply(200, {
                "spec_version": "1_0",
                "issuer": issuer,
                "jwks_uri": f"{issuer}/jwks",
                "delivery_methods_supported": ["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"],
                "configuration_endpoint": f"{issuer}/ssf/streams",
                "verification_endpoint": f"{issuer}/ssf/verify",
                "default_subjects": "ALL",
            })
        elif self.path == "/jwks":
            self.reply(200, {"keys": [KEY.as_dict(private=False)]})
        else:
            self.reply(404, {"err": "not_found", "description": self.path})

    def do_DELETE(self):
        if not self.authorized():
            return
        stream_id = self.path.split("stream_id=")[-1]
        with LOCK:
            found = STREAMS.pop(stream_id, None)
        self.reply(204 if found else 404)

    def do_POST(self):
        issuer = self.issuer()
        if self.path == "/test/emit":
            body = self.body()
            with LOCK:
                for stream_id in list(STREAMS):
                    jti, compact = sign(issuer, stream_id, body["type"], body.get("event", {}), body["sub_id"])
                    deliver(stream_id, jti, compact)
            self.reply(204)
            return
        if not self.authorized():
            return
        body = self.body()
        if self.path == "/ssf/streams":
            stream_id = secrets.token_urlsafe(8)
            delivery = body.get("delivery") or {"method": "urn:ietf:rfc:8936"}
            if delivery["method"] == "urn:ietf:rfc:8936":
                delivery = {"method": "urn:ietf:rfc:8936", "endpoint_url": f"{issuer}/ssf/poll/{stream_id}"}
            with LOCK:
                STREAMS[stream_id] = {"delivery": delivery, "queue": []}
            shown = {k: v for k, v in delivery.items() if k != "authorization_header"}
            say({"created": stream_id, "method": delivery["method"]})
            self.reply(201, {
                "stream_id": stream_id, "iss": issuer, "aud": AUDIENCE,
                "events_requested": body.get("events_requested", []),
                "events_delivered": body.get("events_requested", []),
                "delivery": shown,
            })
        elif self.path == "/ssf/verify":
            stream_id = body["stream_id"]
            event = {"state": body["state"]} if "state" in body else {}
            self.reply(204)
            with LOCK:
                if stream_id in STREAMS:
                    jti, compact = sign(issuer, stream_id,
                                        "https://schemas.openid.net/secevent/ssf/event-type/verification",
                                        event, {"format": "opaque", "id": stream_id})
                    deliver(stream_id, jti, compact)
        elif self.path.startswith("/ssf/poll/"):
            stream_id = self.path.rsplit("/", 1)[-1]
            with LOCK:
                stream = STREAMS.get(stream_id)
                if stream is None:
                    self.reply(404, {"err": "not_found", "description": stream_id})
                    return
                acked = set(body.get("ack", [])) | set(body.get("setErrs", {}))
                for jti in body.get("setErrs", {}):
                    say({"set_err": jti, "err": body["setErrs"][jti]})
                stream["queue"] = [(j, s) for (j, s) in stream["queue"] if j not in acked]
                for jti in acked:
                    say({"acked": jti})
                waiting = stream["queue"][: body.get("maxEvents", 100)]
            self.reply(200, {"sets": {j: s for (j, s) in waiting}, "moreAvailable": False})
        else:
            self.reply(404, {"err": "not_found", "description": self.path})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    say({"ready": f"http://127.0.0.1:{server.server_address[1]}"})
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
