"""Authlib carrying an RFC 8693 token exchange against a running Lanyard, from discovery
alone: the API (CLIENT_ID and CLIENT_SECRET, HTTP Basic) exchanges the person's access token
it received (SUBJECT_TOKEN) for one meant for AUDIENCE with Authlib's generic
`fetch_token(grant_type=...)`; then asks for FORBIDDEN_AUDIENCE and reads the error.

Run by tests/e2e/interop.rs. Prints one JSON line of what it saw (the new access token among
it, for the test to check).
"""

import json
import os

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.base_client import OAuthError

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"


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
        env("CLIENT_SECRET"),
        token_endpoint_auth_method="client_secret_basic",
    )

    def exchange(audience):
        return session.fetch_token(
            metadata["token_endpoint"],
            grant_type=GRANT,
            subject_token=env("SUBJECT_TOKEN"),
            subject_token_type=ACCESS_TOKEN,
            audience=audience,
        )

    seen = {"library": "authlib", "advertised": GRANT in metadata["grant_types_supported"]}
    token = exchange(env("AUDIENCE"))
    seen["issued_token_type"] = token.get("issued_token_type")
    seen["token_type"] = token["token_type"]
    seen["access_token"] = token["access_token"]
    try:
        exchange(env("FORBIDDEN_AUDIENCE"))
        seen["forbidden"] = "issued"
    except OAuthError as e:
        seen["forbidden"] = e.error
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
