"""Authlib authenticating with private_key_jwt (RFC 7523) against a running Lanyard, from
discovery alone: its client_credentials grant and token introspection, each with a fresh
assertion Authlib signs with the client's ES256 key.

Lanyard takes an assertion whose `aud` is the issuer (RFC 7523bis), not the endpoint's URL;
Authlib's PrivateKeyJWT puts its `token_endpoint` argument in `aud`, so it is given the
issuer (what docs/protocols.md tells Authlib users to do).

Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID and PRIVATE_JWK (an ES256 private JWK)
set. Prints one JSON line of what it saw.
"""

import json
import os
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def main():
    issuer = env("ISSUER")
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    session = OAuth2Session(
        env("CLIENT_ID"),
        ECKey.import_key(json.loads(env("PRIVATE_JWK"))),
        token_endpoint_auth_method=PrivateKeyJWT(issuer, alg="ES256"),
        scope="reports",
    )
    seen = {
        "library": "authlib",
        "advertised": "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"],
    }
    token = session.fetch_token(metadata["token_endpoint"], grant_type="client_credentials")
    seen["token_type"] = token["token_type"]
    introspected = session.introspect_token(
        metadata["introspection_endpoint"], token=token["access_token"]
    ).json()
    seen["active"] = introspected["active"]
    seen["introspected_client_id"] = introspected.get("client_id")
    print(json.dumps(seen))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test reads stderr
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
