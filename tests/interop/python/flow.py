"""Authlib against a running Lanyard, from discovery alone.

The code flow with PKCE, state and nonce, Authlib's own ID-token validation (signature from
jwks_uri, iss, aud, exp, iat, nonce, at_hash), UserInfo, refresh with rotation, introspection
(RFC 7662), revocation (RFC 7009) and RP-initiated logout. The person's sign-in is scripted
over HTTP: no browser.

Run by tests/e2e/interop.rs with ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
POST_LOGOUT_REDIRECT_URI, USERNAME and PASSWORD set. Exits 0 and prints one JSON line of what
it saw (the Rust test checks it); on any failure prints the error and exits 1.

`flow.py --check-requirements` only checks that requirements.txt is installed, exactly: exit
0 if so, 3 with what is missing if not.
"""

import json
import os
import sys
from html.parser import HTMLParser
from importlib import metadata as installed
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

HERE = Path(__file__).resolve().parent
SCOPE = "openid profile email offline_access"


def check_requirements():
    """Exit 3, saying what is missing, unless every pin of requirements.txt is installed."""
    wrong = []
    for line in (HERE / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        try:
            found = installed.version(name)
        except installed.PackageNotFoundError:
            found = None
        if found != version:
            wrong.append(f"{name}=={version} (installed: {found or 'none'})")
    if wrong:
        print("missing or different Python packages: " + ", ".join(wrong), file=sys.stderr)
        sys.exit(3)


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set")
    return value


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


class Fields(HTMLParser):
    """The named <input> fields of an HTML page."""

    def __init__(self, page):
        super().__init__()
        self.values = {}
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and "name" in attrs:
            self.values[attrs["name"]] = attrs.get("value") or ""


def location(response, what):
    check(
        response.status_code in (302, 303),
        f"{what}: expected a redirect, got {response.status_code}: {response.text[:500]}",
    )
    return response.headers["location"]


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def without_query(url):
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def main():
    import requests
    from authlib.integrations.base_client import BaseApp, OAuth2Mixin, OpenIDMixin, OAuthError
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.oauth2 import rfc9207
    from authlib.oidc import discovery, rpinitiated

    class App(OAuth2Mixin, OpenIDMixin, BaseApp):
        """Authlib's OpenID Connect client app (as its Flask and Django integrations build
        it), without a web framework."""

        client_cls = OAuth2Session

    class NoFramework:
        def update_token(self, *args, **kwargs):
            pass

    issuer = env("ISSUER")
    redirect_uri = env("REDIRECT_URI")
    post_logout_redirect_uri = env("POST_LOGOUT_REDIRECT_URI")
    seen = {"library": "authlib"}

    app = App(
        NoFramework(),
        name="lanyard",
        client_id=env("CLIENT_ID"),
        client_secret=env("CLIENT_SECRET"),
        server_metadata_url=discovery.get_well_known_url(issuer, external=True),
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "revocation_endpoint_auth_method": "client_secret_basic",
            "default_timeout": 20,
        },
    )

    # Discovery, validated by Authlib: OpenID Connect Discovery, RP-Initiated Logout and
    # RFC 9207 metadata.
    meta = dict(app.load_server_metadata())
    meta.pop("_loaded_at", None)
    discovery.OpenIDProviderMetadata(meta).validate(
        metadata_classes=[rpinitiated.OpenIDProviderMetadata, rfc9207.AuthorizationServerMetadata]
    )
    check(meta["issuer"] == issuer, f"discovered issuer {meta['issuer']}")
    for endpoint in ("revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        check(meta.get(endpoint), f"discovery advertises no {endpoint}")

    # The code flow, as an app starts it (Authlib makes state, nonce and the PKCE verifier).
    start = app.create_authorization_url(redirect_uri)
    check(start.get("code_verifier") and start.get("nonce"), f"no PKCE or nonce: {start}")
    check("code_challenge=" in start["url"], "no code_challenge in the authorization URL")

    # The person signs in.
    browser = requests.Session()
    page = browser.get(start["url"], allow_redirects=False, timeout=20)
    check(page.status_code == 200, f"the sign-in page: {page.status_code}")
    fields = Fields(page.text).values
    signed_in = browser.post(
        urljoin(issuer + "/", "signin"),
        data={
            "csrf": fields["csrf"],
            "authorization_request": fields["authorization_request"],
            "username": env("USERNAME"),
            "password": env("PASSWORD"),
        },
        allow_redirects=False,
        timeout=20,
    )
    callback = location(signed_in, "sign-in")
    check(without_query(callback) == redirect_uri, f"sign-in redirected to {callback}")
    # RFC 9207: discovery says the response names its issuer; the app must check it (Authlib
    # leaves this to the app).
    params = query(callback)
    check(params.get("iss") == meta["issuer"], f"authorization response iss: {params.get('iss')}")

    # The callback: Authlib checks state, exchanges the code with the verifier, then
    # validates the ID token.
    tokens = app.fetch_access_token(
        redirect_uri=redirect_uri,
        authorization_response=callback,
        state=start["state"],
        code_verifier=start["code_verifier"],
    )
    check(tokens.get("refresh_token"), "no refresh token with offline_access")
    claims = app.parse_id_token(tokens, nonce=start["nonce"], leeway=5)
    seen["sub"] = claims["sub"]
    seen["id_token_aud"] = claims["aud"]
    seen["nonce_matches"] = claims.get("nonce") == start["nonce"]
    # Authlib verifies at_hash whenever the ID token has one (CodeIDToken.validate_at_hash).
    seen["at_hash_verified"] = "at_hash" in claims

    info = app.userinfo(token=tokens)
    seen["userinfo_sub"] = info["sub"]
    seen["email"] = info.get("email")
    seen["preferred_username"] = info.get("preferred_username")

    # Refresh rotates: a new refresh token, and the new one works.
    session = OAuth2Session(
        client_id=env("CLIENT_ID"),
        client_secret=env("CLIENT_SECRET"),
        token_endpoint_auth_method="client_secret_basic",
        revocation_endpoint_auth_method="client_secret_basic",
        default_timeout=20,
        **meta,
    )

    def refresh(token):
        return dict(session.refresh_token(meta["token_endpoint"], refresh_token=token))

    refreshed = refresh(tokens["refresh_token"])
    seen["refresh_rotated"] = refreshed["refresh_token"] != tokens["refresh_token"]
    seen["refreshed_access_token_differs"] = refreshed["access_token"] != tokens["access_token"]
    seen["refreshed_id_token_sub"] = app.parse_id_token(refreshed, nonce=None, leeway=5)["sub"]
    again = refresh(refreshed["refresh_token"])
    seen["rotated_token_works"] = bool(again.get("access_token"))
    seen["rotated_again"] = again["refresh_token"] != refreshed["refresh_token"]

    def introspect(token, hint=None):
        response = session.introspect_token(
            meta["introspection_endpoint"], token=token, token_type_hint=hint
        )
        check(response.status_code == 200, f"introspection: {response.status_code}")
        return response.json()

    active = introspect(again["access_token"], "access_token")
    seen["introspection_active_before"] = active["active"]
    seen["introspected_sub"] = active.get("sub")
    seen["introspected_client_id"] = active.get("client_id")
    seen["current_refresh_active"] = introspect(again["refresh_token"], "refresh_token")["active"]
    seen["retired_refresh_active"] = introspect(tokens["refresh_token"], "refresh_token")["active"]

    # Revocation of the refresh token: its family and the access tokens it issued.
    revoked = session.revoke_token(
        meta["revocation_endpoint"], token=again["refresh_token"], token_type_hint="refresh_token"
    )
    check(revoked.status_code == 200, f"revocation: {revoked.status_code} {revoked.text}")
    seen["introspection_active_after_revocation"] = introspect(again["access_token"])["active"]

    def refresh_error(token):
        try:
            refresh(token)
        except OAuthError as e:
            return e.error
        raise AssertionError("a refresh with a revoked token succeeded")

    seen["refresh_after_revocation"] = refresh_error(again["refresh_token"])
    # The grace window for a retired token must not bring a revoked family back.
    seen["retired_refresh_after_revocation"] = refresh_error(refreshed["refresh_token"])

    # The person is still signed in at Lanyard: prompt=none answers with a code.
    def silent():
        url = app.create_authorization_url(redirect_uri, scope="openid", prompt="none")["url"]
        return query(location(browser.get(url, allow_redirects=False, timeout=20), "prompt=none"))

    before = silent()
    seen["prompt_none_before_logout"] = "code" if "code" in before else before.get("error")

    # RP-initiated logout with the ID token as hint (Authlib builds the URL and the state).
    logout = app.create_logout_url(
        post_logout_redirect_uri=post_logout_redirect_uri, id_token_hint=tokens["id_token"]
    )
    logged_out = browser.get(logout["url"], allow_redirects=False, timeout=20)
    seen["logout_status"] = logged_out.status_code
    back = location(logged_out, "logout")
    seen["logout_redirect"] = without_query(back)
    seen["logout_state_matches"] = query(back).get("state") == logout["state"]

    after = silent()
    seen["prompt_none_after_logout"] = "code" if "code" in after else after.get("error")

    print(json.dumps(seen))


if __name__ == "__main__":
    check_requirements()
    if sys.argv[1:] == ["--check-requirements"]:
        sys.exit(0)
    try:
        main()
    except Exception as e:  # noqa: BLE001 - the test prints whatever went wrong
        import traceback

        traceback.print_exc()
        print(f"error: {e!r}", file=sys.stderr)
        sys.exit(1)
