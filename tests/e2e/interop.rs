//! Interoperability: independent client libraries, each used exactly as an app would use it,
//! complete everything against a running Lanyard from discovery alone — the code flow with
//! PKCE, state, nonce and a scripted sign-in, their own strict ID-token validation, UserInfo,
//! refresh with rotation, introspection (RFC 7662), revocation (RFC 7009) and RP-initiated
//! logout:
//!
//! - the `openidconnect` crate, here;
//! - `openid-client` (npm, panva's certified library): `tests/interop/node/flow.mjs`;
//! - Authlib (PyPI): `tests/interop/python/flow.py`.
//!
//! The scripts' dependencies are pinned (`package-lock.json`, `requirements.txt`) and
//! installed by `bash tests/interop/run` and `.ci/run`; without them their tests fail and say
//! how to install them. Each script prints one JSON line of what it saw, checked here.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::model::{ClientSettings, GrantType};
use lanyard_store::{Clock, SystemClock};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreErrorResponseType, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreRevocableToken, CoreSubjectIdentifierType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AdditionalProviderMetadata, AsyncHttpClient, AuthorizationCode,
    ClientId, ClientSecret, ConfigurationError, CsrfToken, HttpRequest, IntrospectionUrl,
    IssuerUrl, LogoutProviderMetadata, LogoutRequest, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, RequestTokenError,
    RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::support::{Browser, ClientSpec, Db, Store, TestClient, TestServer, redirect_params};

const PASSWORD: &str = "correct horse battery staple";

/// How long a client script may take (it makes about twenty requests).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

/// A registered client and where it may send people after they sign out.
struct App {
    client: TestClient,
    post_logout_redirect_uri: String,
}

/// Registers `id` as a first-party web app (code and refresh, the default scopes) with a
/// post-logout redirect URI, confidential or `public`.
async fn register(server: &TestServer, id: &str, public: bool) -> App {
    let base = format!("https://{id}.example.com");
    let (client, secret) = add_client(
        &server.state.db,
        &server.state.server_keys,
        NewClient {
            settings: ClientSettings {
                public,
                name: format!("The {id} app"),
                redirect_uris: vec![format!("{base}/callback")],
                post_logout_redirect_uris: vec![format!("{base}/signed-out")],
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                scopes: ["openid", "profile", "email", "offline_access"]
                    .map(str::to_owned)
                    .to_vec(),
                first_party: true,
                ..ClientSettings::new(id.to_owned())
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    App {
        client: TestClient {
            id: client.settings.client_id,
            secret,
            redirect_uri: format!("{base}/callback"),
        },
        post_logout_redirect_uri: format!("{base}/signed-out"),
    }
}

#[tokio::test]
async fn the_openidconnect_crate_completes_every_endpoint() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let server = TestServer::start(db, store).await;
        server.user("alice", PASSWORD).await;
        let wiki = register(&server, "wiki", false).await;
        openidconnect_flow(&server, &wiki).await;
        // A browser or native app: no secret, PKCE, token_endpoint_auth_method none.
        let spa = register(&server, "spa", true).await;
        openidconnect_flow(&server, &spa).await;
        server.stop().await;
    }
}

/// What Lanyard's discovery document says beyond OpenID Connect Discovery itself: the
/// revocation (RFC 7009) and introspection (RFC 7662) endpoints.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct TokenManagementMetadata {
    revocation_endpoint: RevocationUrl,
    introspection_endpoint: IntrospectionUrl,
}

impl AdditionalProviderMetadata for TokenManagementMetadata {}

/// Provider metadata with RP-Initiated Logout's `end_session_endpoint` and the above.
type Metadata = ProviderMetadata<
    LogoutProviderMetadata<TokenManagementMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

async fn openidconnect_flow(server: &TestServer, app: &App) {
    let wiki = &app.client;
    let confidential = wiki.secret.is_some();
    let alice = server
        .state
        .db
        .users()
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let metadata = Metadata::discover_async(IssuerUrl::new(server.issuer.clone()).unwrap(), &http)
        .await
        .expect("discovery");
    let logout_metadata = metadata.additional_metadata().clone();
    let end_session = logout_metadata
        .end_session_endpoint
        .expect("discovery advertises end_session_endpoint");
    let endpoints = logout_metadata.additional_metadata;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(wiki.id.clone()),
        wiki.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(wiki.redirect_uri.clone()).unwrap())
    .set_introspection_url(endpoints.introspection_endpoint);
    // RFC 7009 §2: a client MUST check that the revocation endpoint is https, and the crate
    // refuses the test server's plain http one. So it is given the endpoint as a
    // TLS-terminating proxy in front of Lanyard would publish it, and `behind_tls` (the
    // proxy) sends its requests on to the server in the clear.
    let discovered = endpoints.revocation_endpoint;
    let refused = client
        .clone()
        .set_revocation_url(discovered.clone())
        .revoke_token(CoreRevocableToken::from(AccessToken::new("t".into())))
        .err();
    assert!(
        matches!(refused, Some(ConfigurationError::InsecureUrl(_))),
        "{refused:?}"
    );
    let client = client.set_revocation_url(
        RevocationUrl::new(discovered.as_str().replacen("http://", "https://", 1)).unwrap(),
    );
    let behind_tls = |mut request: HttpRequest| {
        let uri = request.uri().to_string().replacen("https://", "http://", 1);
        *request.uri_mut() = uri.parse().unwrap();
        http.call(request)
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The person signs in.
    let browser = Browser::new();
    let page = browser.get(url.as_str()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(server, &page, "alice", PASSWORD, false)
        .await;
    let (_, params) = redirect_params(&answer);
    assert_eq!(&params["state"], csrf.secret());
    assert_eq!(params["iss"], server.issuer);

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies");
    assert_eq!(claims.subject().as_str(), alice.sub);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), alice.sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    // Refresh rotates: a new refresh token each time, and the new one works.
    let first = tokens.refresh_token().expect("offline_access");
    let refreshed = client
        .exchange_refresh_token(first)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let again = refreshed.id_token().expect("a refreshed ID token");
    let refreshed_claims = again
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .expect("the refreshed ID token verifies");
    assert_eq!(refreshed_claims.subject(), claims.subject());
    let second = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(second.secret(), first.secret(), "the refresh token rotates");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let latest = client
        .exchange_refresh_token(second)
        .unwrap()
        .request_async(&http)
        .await
        .expect("the rotated refresh token works");
    let third = latest.refresh_token().expect("a rotated refresh token");
    assert_ne!(third.secret(), second.secret(), "the refresh token rotates");

    // Introspection (RFC 7662): for clients that authenticate with a secret.
    if confidential {
        let active = client
            .introspect(latest.access_token())
            .request_async(&http)
            .await
            .expect("introspection");
        assert!(active.active());
        assert_eq!(active.sub(), Some(alice.sub.as_str()));
        assert_eq!(
            active.client_id().map(|c| c.as_str()),
            Some(wiki.id.as_str())
        );
        let introspect_refresh = |token: &str| {
            let token = AccessToken::new(token.to_owned());
            let client = &client;
            let http = &http;
            async move {
                client
                    .introspect(&token)
                    .set_token_type_hint("refresh_token")
                    .request_async(http)
                    .await
                    .expect("introspection of a refresh token")
                    .active()
            }
        };
        assert!(introspect_refresh(third.secret()).await, "the current one");
        assert!(!introspect_refresh(first.secret()).await, "a retired one");
    }

    // Revocation (RFC 7009) of the refresh token: its family and the access tokens it issued.
    client
        .revoke_token(CoreRevocableToken::from(third.clone()))
        .unwrap()
        .request_async(&behind_tls)
        .await
        .expect("revocation");
    if confidential {
        let after = client
            .introspect(latest.access_token())
            .request_async(&http)
            .await
            .expect("introspection");
        assert!(!after.active(), "the access token died with its family");
    }
    let refused: Result<CoreUserInfoClaims, _> = client
        .user_info(latest.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(refused.is_err(), "UserInfo took a revoked access token");
    // Neither the revoked token nor a retired one of its family (within the grace window for
    // retries) refreshes any more.
    for (token, which) in [(third, "the revoked"), (second, "a retired")] {
        match client
            .exchange_refresh_token(token)
            .unwrap()
            .request_async(&http)
            .await
        {
            Err(RequestTokenError::ServerResponse(e)) => {
                assert_eq!(*e.error(), CoreErrorResponseType::InvalidGrant, "{which}");
            }
            other => panic!("{which} refresh token after revocation: {other:?}"),
        }
    }

    // The person is still signed in at Lanyard: a silent request gets a code.
    let silent = || {
        let (challenge, _) = PkceCodeChallenge::new_random_sha256();
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_prompt(CoreAuthPrompt::None)
            .set_pkce_challenge(challenge)
            .url();
        url
    };
    let (_, before) = redirect_params(&browser.get(silent().as_str()).await);
    assert!(before.contains_key("code"), "prompt=none: {before:?}");

    // RP-initiated logout with the ID token as hint.
    let state = CsrfToken::new_random();
    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(
            PostLogoutRedirectUrl::new(app.post_logout_redirect_uri.clone()).unwrap(),
        )
        .set_state(state.clone())
        .http_get_url();
    let out = browser.get(logout.as_str()).await;
    assert!(
        matches!(out.status(), StatusCode::FOUND | StatusCode::SEE_OTHER),
        "logout: {}",
        out.status()
    );
    let (to, params) = redirect_params(&out);
    assert_eq!(to, app.post_logout_redirect_uri);
    assert_eq!(&params["state"], state.secret());
    let (_, after) = redirect_params(&browser.get(silent().as_str()).await);
    assert_eq!(
        after.get("error").map(String::as_str),
        Some("login_required"),
        "prompt=none after logout: {after:?}"
    );
}

/// `tests/interop/`.
fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop")
}

const HOW_NODE: &str = "The openid-client interop test needs Node.js 20 or later and the \
    pinned openid-client in tests/interop/node/node_modules. Install them from the workspace \
    root with `bash tests/interop/run` (it runs `npm ci --prefix tests/interop/node`; on \
    Debian/Ubuntu get node first with `sudo apt-get install nodejs npm`).";

const HOW_PYTHON: &str = "The Authlib interop test needs python3 and the packages pinned in \
    tests/interop/python/requirements.txt. Install them from the workspace root with \
    `bash tests/interop/run` or \
    `python3 -m pip install -r tests/interop/python/requirements.txt`.";

/// Fails, saying how to install them, unless Node.js 20+ and openid-client, exactly as
/// locked, are there.
fn require_openid_client() {
    let node = std::process::Command::new("node").arg("--version").output();
    let version = match node {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => panic!("`node` cannot be run. {HOW_NODE}"),
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(major >= 20, "node is {version}. {HOW_NODE}");
    let locked = std::process::Command::new("node")
        .arg(interop_dir().join("node/locked.cjs"))
        .output()
        .unwrap();
    assert!(
        locked.status.success(),
        "{}{HOW_NODE}",
        String::from_utf8_lossy(&locked.stderr)
    );
}

/// Fails, saying how to install them, unless python3 and exactly the pinned packages are
/// there.
fn require_authlib() {
    let out = std::process::Command::new("python3")
        .arg(interop_dir().join("python/flow.py"))
        .arg("--check-requirements")
        .output()
        .unwrap_or_else(|e| panic!("`python3` cannot be run ({e}). {HOW_PYTHON}"));
    assert!(
        out.status.success(),
        "{}{HOW_PYTHON}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a client script against `server` as `app`, signing in as alice; what it saw.
async fn run_client(program: &str, script: &str, server: &TestServer, app: &App) -> Value {
    run_client_with(program, script, server, app, &[]).await
}

/// [`run_client`] with more environment variables.
async fn run_client_with(
    program: &str,
    script: &str,
    server: &TestServer,
    app: &App,
    env: &[(&str, &str)],
) -> Value {
    let script = interop_dir().join(script);
    let mut command = tokio::process::Command::new(program);
    command.envs(env.iter().copied());
    command
        .arg(&script)
        .env("ISSUER", &server.issuer)
        .env("CLIENT_ID", &app.client.id)
        .env("CLIENT_SECRET", app.client.secret.as_deref().unwrap_or(""))
        .env("REDIRECT_URI", &app.client.redirect_uri)
        .env("POST_LOGOUT_REDIRECT_URI", &app.post_logout_redirect_uri)
        .env("USERNAME", "alice")
        .env("PASSWORD", PASSWORD)
        // The server is on loopback: never through a proxy.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{program} {} did not finish within {SCRIPT_TIMEOUT:?}",
                script.display()
            )
        })
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        out.status
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line from {program}:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// Checks what a client script saw: every step came out as Lanyard promises.
fn assert_saw_everything(seen: &Value, library: &str, sub: &str, app: &App) {
    let client_id = app.client.id.as_str();
    let expected = json!({
        "library": library,
        "sub": sub,
        "nonce_matches": true,
        "userinfo_sub": sub,
        "email": "alice@example.com",
        "preferred_username": "alice",
        "refresh_rotated": true,
        "refreshed_access_token_differs": true,
        "refreshed_id_token_sub": sub,
        "rotated_token_works": true,
        "rotated_again": true,
        "introspection_active_before": true,
        "introspected_sub": sub,
        "introspected_client_id": client_id,
        "current_refresh_active": true,
        "retired_refresh_active": false,
        "introspection_active_after_revocation": false,
        "refresh_after_revocation": "invalid_grant",
        "retired_refresh_after_revocation": "invalid_grant",
        "prompt_none_before_logout": "code",
        "logout_redirect": app.post_logout_redirect_uri,
        "logout_state_matches": true,
        "prompt_none_after_logout": "login_required",
    });
    for (key, want) in expected.as_object().unwrap() {
        assert_eq!(&seen[key], want, "{library}: {key}, in all it saw: {seen}");
    }
    let aud = &seen["id_token_aud"];
    assert!(
        aud == client_id
            || aud
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == client_id)),
        "{library}: the ID token's aud {aud}"
    );
    assert!(
        matches!(seen["logout_status"].as_u64(), Some(302 | 303)),
        "{library}: logout answered {}",
        seen["logout_status"]
    );
}

/// openid-client (npm), with `allowInsecureRequests` only because the test issuer is
/// `http://127.0.0.1`: `tests/interop/node/flow.mjs`.
#[tokio::test]
async fn openid_client_npm_completes_every_endpoint() {
    require_openid_client();
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = register(&server, "wiki", false).await;
    let seen = run_client("node", "node/flow.mjs", &server, &wiki).await;
    assert_saw_everything(&seen, "openid-client", &alice.sub, &wiki);
    server.stop().await;
}

/// Authlib (PyPI), its OpenID Connect app without a web framework:
/// `tests/interop/python/flow.py`.
#[tokio::test]
async fn authlib_python_completes_every_endpoint() {
    require_authlib();
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = register(&server, "wiki", false).await;
    let seen = run_client("python3", "python/flow.py", &server, &wiki).await;
    assert_saw_everything(&seen, "authlib", &alice.sub, &wiki);
    assert_eq!(seen["at_hash_verified"], true, "{seen}");
    server.stop().await;
}

/// openid-client's device authorization grant (RFC 8628): `tests/interop/node/device.mjs`
/// starts a device sign-in from discovery, polls while the person approves over HTTP, and
/// validates the ID token it gets; a second device is denied and its poll ends with
/// `access_denied`.
#[tokio::test]
async fn openid_client_npm_signs_a_device_in() {
    require_openid_client();
    // A one-second interval: the library waits it before every poll.
    let server = TestServer::start_with(Db::Sqlite, Store::Redis, |c| {
        c.lifetimes.device_poll = std::time::Duration::from_secs(1);
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let tv = server
        .client(crate::support::ClientSpec {
            id: "tv",
            public: true,
            grants: &[
                "urn:ietf:params:oauth:grant-type:device_code",
                "refresh_token",
            ],
            scopes: &["openid", "profile"],
            first_party: true,
        })
        .await;
    let app = App {
        client: tv,
        post_logout_redirect_uri: String::new(),
    };
    let seen = run_client("node", "node/device.mjs", &server, &app).await;
    let expected = json!({
        "library": "openid-client",
        "device_authorization_endpoint": server.url("/device_authorization"),
        "user_code_shape": true,
        "interval": 1,
        "sub": alice.sub,
        "id_token_aud": "tv",
        "scope": "openid profile",
        "has_refresh_token": true,
        "refreshed_sub": alice.sub,
        "denied": "access_denied",
    });
    assert_eq!(seen, expected);
    server.stop().await;
}

/// openid-client authenticating with `private_key_jwt` (RFC 7523): the script makes an ES256
/// key pair (`--make-key`), the public key is registered, and the library signs a fresh
/// assertion for its `client_credentials` grant and for introspection:
/// `tests/interop/node/private_key_jwt.mjs`.
#[tokio::test]
async fn openid_client_npm_authenticates_with_private_key_jwt() {
    require_openid_client();
    assertion_client("node", "node/private_key_jwt.mjs", "openid-client").await;
}

/// Authlib authenticating with `private_key_jwt` (its `PrivateKeyJWT`, given the issuer as
/// `aud`): `tests/interop/python/private_key_jwt.py`.
#[tokio::test]
async fn authlib_python_authenticates_with_private_key_jwt() {
    require_openid_client();
    require_authlib();
    assertion_client("python3", "python/private_key_jwt.py", "authlib").await;
}

/// Registers `reports` for `private_key_jwt` with a fresh key's public half, runs `script`
/// with the private half, and checks it got and introspected a `client_credentials` token.
async fn assertion_client(program: &str, script: &str, library: &str) {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let keys = node_key_pair();
    add_client(
        &server.state.db,
        &server.state.server_keys,
        NewClient {
            settings: ClientSettings {
                grant_types: vec![GrantType::ClientCredentials],
                scopes: vec!["reports".to_owned()],
                token_endpoint_auth_method: Some(lanyard_core::model::AuthMethod::PrivateKeyJwt),
                jwks: Some(json!({ "keys": [keys["public"]] })),
                ..ClientSettings::new("reports")
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    let app = App {
        client: TestClient {
            id: "reports".to_owned(),
            secret: None,
            redirect_uri: String::new(),
        },
        post_logout_redirect_uri: String::new(),
    };
    let private = keys["private"].to_string();
    let seen = run_client_with(
        program,
        script,
        &server,
        &app,
        &[("PRIVATE_JWK", private.as_str())],
    )
    .await;
    assert_eq!(seen["library"], library, "{seen}");
    assert_eq!(seen["advertised"], true, "{seen}");
    assert!(
        seen["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{seen}"
    );
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["introspected_client_id"], "reports", "{seen}");
    server.stop().await;
}

/// openid-client's generic grant request carrying a token exchange (RFC 8693): an API
/// exchanges the person's token it received for one meant for the next API, and is refused
/// an audience its policy does not name: `tests/interop/node/token_exchange.mjs`.
#[tokio::test]
async fn openid_client_npm_exchanges_a_token() {
    require_openid_client();
    token_exchange_client("node", "node/token_exchange.mjs", "openid-client").await;
}

/// Authlib's `fetch_token` with the token-exchange grant (RFC 8693), the same exchange:
/// `tests/interop/python/token_exchange.py`.
#[tokio::test]
async fn authlib_python_exchanges_a_token() {
    require_authlib();
    token_exchange_client("python3", "python/token_exchange.py", "authlib").await;
}

/// alice's token at `orders` (through `shop`), exchanged by `script` as `orders` for one
/// meant for `stock`; `ledger` is refused.
async fn token_exchange_client(program: &str, script: &str, library: &str) {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let shop = register(&server, "shop", false).await;
    server.allow_resources("shop", &["orders"]).await;
    let orders = register(&server, "orders", false).await;
    register(&server, "stock", false).await;
    register(&server, "ledger", false).await;
    crate::token_exchange::may_exchange(&server, "orders", &["stock"]).await;
    let tokens =
        crate::token_exchange::token_meant_for(&server, &shop.client, "alice", "orders").await;
    let subject = tokens["access_token"].as_str().unwrap();
    let seen = run_client_with(
        program,
        script,
        &server,
        &orders,
        &[
            ("SUBJECT_TOKEN", subject),
            ("AUDIENCE", "stock"),
            ("FORBIDDEN_AUDIENCE", "ledger"),
        ],
    )
    .await;
    assert_eq!(seen["library"], library, "{seen}");
    assert_eq!(seen["advertised"], true, "{seen}");
    assert_eq!(
        seen["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(
        seen["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{seen}"
    );
    assert_eq!(seen["forbidden"], "invalid_target", "{seen}");
    let (_, claims) = crate::support::decode_jwt(seen["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], alice.sub.as_str());
    assert_eq!(claims["aud"], json!(["stock"]));
    assert_eq!(claims["act"], json!({ "sub": "orders" }));
    server.stop().await;
}

/// openid-client with DPoP (RFC 9449), against a Lanyard that requires server nonces: its
/// `client_credentials` token bound to the library's own key, the admin API called with
/// `fetchProtectedResource`, the token refused as Bearer: `tests/interop/node/dpop.mjs`.
#[tokio::test]
async fn openid_client_npm_binds_its_tokens_with_dpop() {
    require_openid_client();
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| c.dpop_nonce = true).await;
    let (client, secret) = add_client(
        &server.state.db,
        &server.state.server_keys,
        NewClient {
            settings: ClientSettings {
                grant_types: vec![GrantType::ClientCredentials],
                scopes: vec!["lanyard:admin".to_owned()],
                require_dpop: true,
                ..ClientSettings::new("ops")
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    let ops = App {
        client: TestClient {
            id: client.settings.client_id,
            secret,
            redirect_uri: String::new(),
        },
        post_logout_redirect_uri: String::new(),
    };
    let api = server.url("/admin/v1/users");
    let seen = run_client_with("node", "node/dpop.mjs", &server, &ops, &[("API_URL", &api)]).await;
    assert_eq!(
        seen,
        json!({
            "library": "openid-client",
            "advertised": true,
            "token_type": "dpop",
            "api_status": 200,
            "as_bearer_status": 401,
            "as_bearer_challenge": "DPoP",
        })
    );
    server.stop().await;
}

/// A new ES256 key pair made by the node scripts (`private_key_jwt.mjs --make-key`):
/// `{private, public}` JWKs.
fn node_key_pair() -> Value {
    let made = std::process::Command::new("node")
        .arg(interop_dir().join("node/private_key_jwt.mjs"))
        .arg("--make-key")
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    serde_json::from_slice(&made.stdout).unwrap()
}

/// openid-client's signed request objects (RFC 9101): `buildAuthorizationUrlWithJAR` signs
/// the request with a key registered for the client, the front channel carries the object
/// (and `client_id`), and the code flow completes with the library's own checks:
/// `tests/interop/node/jar.mjs`.
#[tokio::test]
async fn openid_client_npm_signs_its_authorization_request() {
    require_openid_client();
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = register(&server, "wiki", false).await;
    let keys = node_key_pair();
    let jwks = json!({ "keys": [keys["public"]] });
    server.change_client("wiki", |c| c.jwks = Some(jwks)).await;
    let private = keys["private"].to_string();
    let seen = run_client_with(
        "node",
        "node/jar.mjs",
        &server,
        &wiki,
        &[("PRIVATE_JWK", private.as_str())],
    )
    .await;
    assert_eq!(
        seen,
        json!({
            "library": "openid-client",
            "front_channel": ["client_id", "request"],
            "sub": alice.sub,
        })
    );
    server.stop().await;
}

/// openid-client's pushed authorization requests (RFC 9126): `buildAuthorizationUrlWithPAR`
/// pushes the request, the front channel carries only `client_id` and `request_uri`, and the
/// code flow completes with the library's own checks: `tests/interop/node/par.mjs`.
#[tokio::test]
async fn openid_client_npm_pushes_its_authorization_request() {
    require_openid_client();
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = register(&server, "wiki", false).await;
    let seen = run_client("node", "node/par.mjs", &server, &wiki).await;
    assert_eq!(
        seen,
        json!({
            "library": "openid-client",
            "front_channel": ["client_id", "request_uri"],
            "sub": alice.sub,
            "reused_status": 400,
        })
    );
    server.stop().await;
}

/// An independent Shared Signals receiver (`tests/interop/python/ssf_receiver.py`: requests
/// and joserfc, written from SSF 1.0 and RFCs 8417, 8935 and 8936) follows Lanyard from its
/// metadata alone: a stream, a verification round trip, then alice's session ending and her
/// account disabled, each SET verified against the JWKS, in order.
async fn an_independent_ssf_receiver_follows(mode: &str) {
    use tokio::io::AsyncBufReadExt;
    require_authlib();
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let saas = crate::ssf::receiver(&server, "saas-tool").await;
    let mut child = tokio::process::Command::new("python3")
        .arg(interop_dir().join("python/ssf_receiver.py"))
        .env("ISSUER", &server.issuer)
        .env("CLIENT_ID", &saas.id)
        .env("CLIENT_SECRET", saas.secret.as_deref().unwrap())
        .env("MODE", mode)
        .env("COUNT", "2")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(SCRIPT_TIMEOUT, lines.next_line())
            .await
            .expect("the receiver said nothing in time")
            .unwrap()
            .expect("the receiver ended early");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    let ready = next().await;
    assert!(ready["ready"].is_string(), "{ready}");
    let sid = crate::ssf::alice_signs_in(&server, &wiki).await;
    lanyard_core::users::disable(&server.state, &alice.sub, "admin:test")
        .await
        .unwrap();
    let done = loop {
        let line = next().await;
        if line.get("done").is_some() {
            break line;
        }
    };
    assert_eq!(done["done"], true, "{done}");
    assert_eq!(done["refused"], json!([]), "{done}");
    let events = done["events"].as_array().unwrap();
    assert_eq!(
        events[0]["type"],
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
    );
    assert_eq!(events[0]["sub_id"]["session"]["id"], sid.as_str());
    assert_eq!(events[0]["sub_id"]["user"]["sub"], alice.sub.as_str());
    assert_eq!(
        events[1]["type"],
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
    );
    assert_eq!(
        events[1]["sub_id"],
        json!({ "format": "iss_sub", "iss": server.issuer, "sub": alice.sub })
    );
    assert!(child.wait().await.unwrap().success());
    server.stop().await;
}

#[tokio::test]
async fn an_independent_ssf_receiver_takes_pushed_events() {
    an_independent_ssf_receiver_follows("push").await;
}

#[tokio::test]
async fn an_independent_ssf_receiver_polls_events() {
    an_independent_ssf_receiver_follows("poll").await;
}
