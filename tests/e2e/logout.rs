//! Signing out (OpenID Connect RP-Initiated Logout 1.0) and telling every app (Back-Channel
//! Logout 1.0): the conformance suite's logout modules (SECURITY.md 1.1, 2.7), each as a
//! test, and the demo apps signing out of each other.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::clients::NewClient;
use lanyard_core::model::ClientSettings;
use lanyard_store::{Clock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin::{admin, admin_token, audit_events};
use crate::apps::{browse, on_redis, sign_in_and_follow};
use crate::revoke::{field, userinfo};
use crate::support::{
    Browser, Db, Store, TestClient, TestServer, authorize_url, code_flow, decode_jwt, form_value,
    redirect_params, refresh, token_request,
};

const PASSWORD: &str = "correct horse battery staple";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The one post-logout address registered for client `id`.
fn signed_out_uri(id: &str) -> String {
    format!("https://{id}.example.com/signed-out")
}

/// A first-party web client with a registered post-logout address and, if given, a
/// back-channel logout URI.
async fn logout_client(server: &TestServer, id: &str, backchannel: Option<String>) -> TestClient {
    let (client, secret) = lanyard_core::clients::add_client(
        &server.state.db,
        &server.state.server_keys,
        NewClient {
            settings: ClientSettings {
                name: format!("The {id} app"),
                redirect_uris: vec![format!("https://{id}.example.com/callback")],
                post_logout_redirect_uris: vec![signed_out_uri(id)],
                backchannel_logout_uri: backchannel,
                first_party: true,
                ..ClientSettings::new(id.to_owned())
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    TestClient {
        redirect_uri: client.redirect_uris[0].clone(),
        id: client.settings.client_id,
        secret,
    }
}

/// Alice signs in at `client` in `browser`: the token response.
async fn alice_signs_in(server: &TestServer, browser: &Browser, client: &TestClient) -> Value {
    code_flow(
        server,
        browser,
        client,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await
}

/// The code flow at `client` on the browser's live session (single sign-on, no page).
async fn sso_tokens(server: &TestServer, browser: &Browser, client: &TestClient) -> Value {
    let r = browser.get(&authorize_url(server, client, &[])).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "single sign-on");
    let (_, params) = redirect_params(&r);
    let r = token_request(
        server,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &client.redirect_uri),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Whether the browser still has a live sign-in session (a later `prompt=none` succeeds).
async fn signed_in(server: &TestServer, browser: &Browser, client: &TestClient) -> bool {
    let r = browser
        .get(&authorize_url(server, client, &[("prompt", "none")]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, params) = redirect_params(&r);
    match params.get("error").map(String::as_str) {
        None => params.contains_key("code"),
        Some("login_required") => false,
        Some(other) => panic!("unexpected error {other}"),
    }
}

/// GET the end-session endpoint with `params`.
async fn end_session(
    server: &TestServer,
    browser: &Browser,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let mut url = url::Url::parse(&server.url("/logout")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    browser.get(url.as_str()).await
}

async fn metadata(server: &TestServer) -> Value {
    reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_discovery_endpoint_verification() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let meta = metadata(&server).await;
    assert_eq!(meta["end_session_endpoint"], server.url("/logout"));
    server.stop().await;
}

#[tokio::test]
async fn oidcc_backchannel_logout_discovery_endpoint_verification() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let meta = metadata(&server).await;
    assert_eq!(meta["end_session_endpoint"], server.url("/logout"));
    assert_eq!(meta["backchannel_logout_supported"], true);
    assert_eq!(meta["backchannel_logout_session_supported"], true);
    server.stop().await;
}

/// The end of a signed-out module: alice's session is over (`prompt=none` fails).
async fn assert_signed_out(server: &TestServer, browser: &Browser, client: &TestClient) {
    assert!(!signed_in(server, browser, client).await, "signed out");
}

/// A logout module whose request must end the session and land on Lanyard's signed-out
/// page, never redirecting. `params` gets the ID token alice was issued.
async fn signed_out_page_module(params: impl FnOnce(&str) -> Vec<(&'static str, String)>) {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    let params = params(field(&tokens, "id_token"));
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = end_session(&server, &browser, &borrowed).await;
    assert!(r.headers().get("location").is_none(), "no redirect");
    let mut page = r.text().await.unwrap();
    if page.contains("Sign out?") {
        // Without a verifiable hint the person confirms (a page, never a redirect).
        let r = browser
            .http
            .post(server.url("/logout"))
            .form(&[
                ("csrf", form_value(&page, "csrf")),
                ("confirm", "yes".into()),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("location").is_none(), "no redirect");
        page = r.text().await.unwrap();
    }
    assert!(page.contains("You are signed out"), "{page}");
    assert_signed_out(&server, &browser, &wiki).await;
    server.stop().await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_params() {
    signed_out_page_module(|_| vec![]).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri() {
    signed_out_page_module(|hint| vec![("id_token_hint", hint.to_owned())]).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_only_state() {
    signed_out_page_module(|_| vec![("state", "only-state".to_owned())]).await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_state() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    let uri = signed_out_uri("wiki");
    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", field(&tokens, "id_token")),
            ("post_logout_redirect_uri", &uri),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], uri.as_str(), "back, without state");
    assert_signed_out(&server, &browser, &wiki).await;
    server.stop().await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    assert!(signed_in(&server, &browser, &wiki).await);
    let id_token = field(&tokens, "id_token");
    let uri = signed_out_uri("wiki");

    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", &uri),
            ("state", "bye-1"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("{uri}?state=bye-1"));
    let cleared: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with("lanyard_session=;") && c.contains("Max-Age=0")),
        "{cleared:?}"
    );

    // The session is over: prompt=none fails; the tokens issued in it are dead, the offline
    // refresh token too (a signed-out laptop keeps nothing).
    assert!(!signed_in(&server, &browser, &wiki).await);
    assert_eq!(
        userinfo(&server, field(&tokens, "access_token"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = refresh(&server, &wiki, field(&tokens, "refresh_token"), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");

    let ops = admin_token(&server).await;
    let events = audit_events(&server, &ops, "logout", 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], alice.sub.as_str());
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(
        events[0]["target"],
        format!("sid:{}", decode_jwt(id_token).1["sid"].as_str().unwrap())
    );

    // Signed out already: the same request just returns (no-state variant: no state).
    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", &uri),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], uri.as_str());
    server.stop().await;
}

#[tokio::test]
async fn an_expired_but_genuine_hint_is_accepted() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    let browser = Browser::new();
    alice_signs_in(&server, &browser, &wiki).await;
    let now = SystemClock.now().as_secs();
    let expired = server
        .state
        .keys
        .sign(
            "JWT",
            &json!({ "iss": server.issuer, "sub": alice.sub, "aud": "wiki", "iat": now - 7200, "exp": now - 3600 }),
        )
        .await
        .unwrap();
    let uri = signed_out_uri("wiki");
    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", &expired),
            ("post_logout_redirect_uri", &uri),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], uri.as_str());
    assert!(!signed_in(&server, &browser, &wiki).await);
    server.stop().await;
}

/// `token` with its header replaced and signed by a key of nobody's (under the same `kid`).
fn foreign_signed(token: &str) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let mut parts = token.split('.');
    let input = format!("{}.{}", parts.next().unwrap(), parts.next().unwrap());
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// `token` re-headed as `alg: none`, unsigned.
fn alg_none(token: &str) -> String {
    let (header, _) = decode_jwt(token);
    let claims = token.split('.').nth(1).unwrap();
    let header = json!({ "alg": "none", "typ": "JWT", "kid": header["kid"] });
    format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[tokio::test]
async fn bad_logout_requests_never_redirect_and_sign_nobody_out() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    logout_client(&server, "billing", None).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    let hint = field(&tokens, "id_token");
    let (_, claims) = decode_jwt(hint);
    let uri = signed_out_uri("wiki");
    let logout_typed = server.state.keys.sign("logout+jwt", &claims).await.unwrap();
    let with_slash = format!("{uri}/");
    let billing_uri = signed_out_uri("billing");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "a trailing slash added",
            vec![
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", &with_slash),
            ],
        ),
        (
            "an access token as the hint",
            vec![
                ("id_token_hint", field(&tokens, "access_token")),
                ("post_logout_redirect_uri", &uri),
            ],
        ),
        (
            "a logout token as the hint",
            vec![
                ("id_token_hint", &logout_typed),
                ("post_logout_redirect_uri", &uri),
            ],
        ),
        (
            "client_id of another app than the hint's",
            vec![
                ("id_token_hint", hint),
                ("client_id", "billing"),
                ("post_logout_redirect_uri", &billing_uri),
            ],
        ),
        (
            "an unknown client",
            vec![("client_id", "nobody"), ("post_logout_redirect_uri", &uri)],
        ),
        (
            "state twice",
            vec![("id_token_hint", hint), ("state", "a"), ("state", "b")],
        ),
    ];
    for (what, params) in cases {
        refused_without_redirect(&server, &browser, &wiki, what, &params).await;
    }
    server.stop().await;
}

/// A bad logout request: a 400 page saying nobody was signed out, no redirect, no cookie
/// change, and the session lives on.
async fn refused_without_redirect(
    server: &TestServer,
    browser: &Browser,
    wiki: &TestClient,
    what: &str,
    params: &[(&str, &str)],
) {
    let r = end_session(server, browser, params).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
    assert!(r.headers().get("location").is_none(), "{what}: no redirect");
    assert!(
        r.headers().get("set-cookie").is_none(),
        "{what}: no cookie change"
    );
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("not been signed out"), "{what}: {page}");
    assert!(
        signed_in(server, browser, wiki).await,
        "{what}: still signed in"
    );
}

/// A logout module whose request must be refused without a redirect. `params` gets alice's
/// ID token and wiki's registered post-logout URI.
async fn no_redirect_module(
    module: &str,
    params: impl FnOnce(&str, &str) -> Vec<(&'static str, String)>,
) {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    let params = params(field(&tokens, "id_token"), &signed_out_uri("wiki"));
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    refused_without_redirect(&server, &browser, &wiki, module, &borrowed).await;
    server.stop().await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri() {
    no_redirect_module("bad-post-logout-redirect-uri", |hint, _| {
        vec![
            ("id_token_hint", hint.to_owned()),
            (
                "post_logout_redirect_uri",
                "https://evil.example/".to_owned(),
            ),
        ]
    })
    .await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri() {
    no_redirect_module("query-added-to-post-logout-redirect-uri", |hint, uri| {
        vec![
            ("id_token_hint", hint.to_owned()),
            ("post_logout_redirect_uri", format!("{uri}?foo=bar")),
        ]
    })
    .await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_modified_id_token_hint() {
    no_redirect_module("modified-id-token-hint", |hint, uri| {
        vec![
            ("id_token_hint", alg_none(hint)),
            ("post_logout_redirect_uri", uri.to_owned()),
        ]
    })
    .await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_bad_id_token_hint() {
    no_redirect_module("bad-id-token-hint", |hint, uri| {
        vec![
            ("id_token_hint", foreign_signed(hint)),
            ("post_logout_redirect_uri", uri.to_owned()),
        ]
    })
    .await;
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_id_token_hint() {
    no_redirect_module("no-id-token-hint", |_, uri| {
        vec![
            ("post_logout_redirect_uri", uri.to_owned()),
            ("state", "s".to_owned()),
        ]
    })
    .await;
}

#[tokio::test]
async fn without_a_hint_the_person_confirms_and_is_not_redirected() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    server.user("bob", PASSWORD).await;
    let wiki = logout_client(&server, "wiki", None).await;
    let browser = Browser::new();
    alice_signs_in(&server, &browser, &wiki).await;
    let uri = signed_out_uri("wiki");

    // Someone else's hint: asked too (a link on another site signs nobody out).
    let bob = code_flow(&server, &Browser::new(), &wiki, "openid", "bob", PASSWORD).await;
    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", field(&bob, "id_token")),
            ("post_logout_redirect_uri", &uri),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Sign out?"));
    assert!(signed_in(&server, &browser, &wiki).await);

    let r = end_session(
        &server,
        &browser,
        &[
            ("client_id", "wiki"),
            ("post_logout_redirect_uri", &uri),
            ("state", "s1"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Sign out?") && page.contains("The wiki app"),
        "{page}"
    );
    assert!(signed_in(&server, &browser, &wiki).await, "asked, not done");
    let form = [
        ("csrf", form_value(&page, "csrf")),
        ("logout_request", form_value(&page, "logout_request")),
        ("confirm", form_value(&page, "confirm")),
    ];

    // Another site posting the form has no CSRF cookie.
    let r = reqwest::Client::new()
        .post(server.url("/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(signed_in(&server, &browser, &wiki).await);

    let r = browser
        .http
        .post(server.url("/logout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("You are signed out"), "{page}");
    assert!(
        page.contains(&format!("href=\"{uri}\"")),
        "a link back, not a redirect: {page}"
    );
    assert!(!signed_in(&server, &browser, &wiki).await);

    // oidcc-rp-initiated-logout-no-params: signed out already, a "signed out" page.
    let r = end_session(&server, &browser, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    server.stop().await;
}

/// A back-channel logout receiver: records every logout token and answers with the next
/// scripted status (200 when the script is spent), after `gate` opens if one is set.
#[derive(Clone, Default)]
struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Receiver {
    fn answering(script: &[u16]) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            ..Self::default()
        }
    }

    fn tokens(&self) -> Vec<String> {
        self.tokens.lock().unwrap().clone()
    }

    /// Serves on an ephemeral port; returns its URI.
    async fn start(&self) -> String {
        async fn receive(State(r): State<Receiver>, body: axum::body::Bytes) -> AxumStatus {
            if let Some(gate) = &r.gate {
                let _open = gate.acquire().await.unwrap();
            }
            let token = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            r.tokens.lock().unwrap().push(token);
            let status = r.script.lock().unwrap().pop_front().unwrap_or(200);
            AxumStatus::from_u16(status).unwrap()
        }
        let app = axum::Router::new()
            .route("/backchannel-logout", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/backchannel-logout")
    }
}

/// Waits (up to 10 s) until `count` back-channel deliveries are in the audit trail.
async fn deliveries(server: &TestServer, token: &str, count: usize) -> Vec<Value> {
    audit_events(server, token, "backchannel_logout", count).await
}

fn delivery_to<'a>(events: &'a [Value], client_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["target"] == format!("client_id:{client_id}"))
        .unwrap_or_else(|| panic!("no delivery to {client_id}: {events:?}"))
}

#[tokio::test]
async fn oidcc_backchannel_rp_initiated_logout() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.logout.backchannel_backoff = Duration::from_millis(20);
        c.logout.backchannel_attempts = 3;
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let steady = Receiver::default();
    let flaky = Receiver::answering(&[500, 503, 204]);
    let down = Receiver::answering(&[500, 500, 500]);
    let refusing = Receiver::answering(&[400]);
    let wiki = logout_client(&server, "wiki", Some(steady.start().await)).await;
    let billing = logout_client(&server, "billing", Some(flaky.start().await)).await;
    let payroll = logout_client(&server, "payroll", Some(down.start().await)).await;
    let crm = logout_client(&server, "crm", Some(refusing.start().await)).await;
    let quiet = logout_client(&server, "quiet", None).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    for client in [&billing, &payroll, &crm, &quiet] {
        sso_tokens(&server, &browser, client).await;
    }
    let id_token = field(&tokens, "id_token");
    let sid = decode_jwt(id_token).1["sid"].as_str().unwrap().to_owned();

    let uri = signed_out_uri("wiki");
    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", &uri),
            ("state", "x"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("{uri}?state=x"));

    let ops = admin_token(&server).await;
    let events = deliveries(&server, &ops, 4).await;
    assert_eq!(events.len(), 4, "one per app with a URI: {events:?}");
    let detail = |client: &str| delivery_to(&events, client)["detail"].clone();
    assert_eq!(delivery_to(&events, "wiki")["outcome"], "success");
    assert_eq!(detail("wiki")["attempts"], 1);
    assert_eq!(delivery_to(&events, "billing")["outcome"], "success");
    assert_eq!(
        detail("billing")["attempts"],
        3,
        "retried after 500 and 503"
    );
    assert_eq!(
        detail("billing")["status"],
        204,
        "204 counts as delivered (§2.8)"
    );
    assert_eq!(delivery_to(&events, "payroll")["outcome"], "failure");
    assert_eq!(detail("payroll")["attempts"], 3, "bounded");
    assert_eq!(delivery_to(&events, "crm")["outcome"], "failure");
    assert_eq!(detail("crm")["attempts"], 1, "a 400 is not retried");
    for event in &events {
        assert_eq!(event["actor"], "system");
        assert_eq!(event["detail"]["sid"], sid.as_str());
    }
    assert_eq!(steady.tokens().len(), 1);
    assert_eq!(flaky.tokens().len(), 3);
    assert_eq!(down.tokens().len(), 3);
    // One logout (one `jti`), signed again at each attempt: a retry after a restart is not
    // an expired token.
    let jtis: Vec<Value> = flaky
        .tokens()
        .iter()
        .map(|t| decode_jwt(t).1["jti"].clone())
        .collect();
    assert!(jtis.iter().all(|j| *j == jtis[0]), "one jti: {jtis:?}");

    // The logout token (BCL §2.4; ValidateLogoutTokenClaims, CheckLogoutTokenNoNonce,
    // CheckLogoutTokenHasSubOrSid), verified with the published keys.
    let jwks = reqwest::get(server.url("/jwks"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let keys = lanyard_rp::keys::KeySet::from_jwks(&jwks).unwrap();
    for (receiver, client) in [(&steady, "wiki"), (&flaky, "billing")] {
        let token = &receiver.tokens()[0];
        let (header, claims) = decode_jwt(token);
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], "RS256");
        assert_eq!(claims["iss"], server.issuer.as_str());
        assert_eq!(claims["aud"], client);
        assert_eq!(claims["sub"], alice.sub.as_str());
        assert_eq!(claims["sid"], sid.as_str());
        assert_eq!(claims["events"], json!({ BACKCHANNEL_EVENT: {} }));
        assert!(claims.get("nonce").is_none());
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
        let (iat, exp) = (
            claims["iat"].as_i64().unwrap(),
            claims["exp"].as_i64().unwrap(),
        );
        assert!(exp > iat && exp - iat <= 120, "{iat} {exp}");
        let now = SystemClock.now().as_secs();
        assert!((now - 60..=now + 5).contains(&iat));
        let key = keys.get(header["kid"].as_str().unwrap()).unwrap();
        let checked = lanyard_rp::logout::validate(token, key, &server.issuer, client, now, 5)
            .expect("a valid logout token");
        assert_eq!(checked.sid.as_deref(), Some(sid.as_str()));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_slow_app_does_not_hold_up_the_sign_out() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = Receiver {
        gate: Some(gate.clone()),
        ..Receiver::default()
    };
    let wiki = logout_client(&server, "wiki", Some(slow.start().await)).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    let uri = signed_out_uri("wiki");
    let r = end_session(
        &server,
        &browser,
        &[
            ("id_token_hint", field(&tokens, "id_token")),
            ("post_logout_redirect_uri", &uri),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "answered while the app has not"
    );
    assert!(slow.tokens().is_empty());
    // Only now does the app answer: the first attempt is still waiting for it, so the
    // sign-out above did not wait for the delivery.
    gate.add_permits(10);
    let ops = admin_token(&server).await;
    let events = deliveries(&server, &ops, 1).await;
    assert_eq!(events[0]["outcome"], "success", "{events:?}");
    assert_eq!(events[0]["detail"]["attempts"], 1);
    server.stop().await;
}

/// An admin ends the session `tokens` were issued in, through the admin API; returns the
/// admin's token and the session's `sid`.
async fn admin_ends_the_session(
    server: &TestServer,
    sub: &str,
    tokens: &Value,
) -> (String, String) {
    let sid = decode_jwt(field(tokens, "id_token")).1["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let ops = admin_token(server).await;
    let r = admin(
        server,
        &ops,
        reqwest::Method::DELETE,
        &format!("/users/{sub}/sessions/{sid}"),
        None,
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());
    (ops, sid)
}

#[tokio::test]
async fn ending_a_session_through_the_admin_api_tells_its_apps() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let receiver = Receiver::default();
    let wiki = logout_client(&server, "wiki", Some(receiver.start().await)).await;
    let tokens = alice_signs_in(&server, &Browser::new(), &wiki).await;
    let (ops, sid) = admin_ends_the_session(&server, &alice.sub, &tokens).await;
    let events = deliveries(&server, &ops, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(decode_jwt(&receiver.tokens()[0]).1["sid"], sid.as_str());
    server.stop().await;
}

/// Server-side request forgery through a registered address (issue 19 §4): without
/// `outbound_allow`, Lanyard calls no address on this machine, whether written as an address
/// or as a name that resolves to one; the delivery fails at once, saying why, and the
/// receivers get nothing.
#[tokio::test]
async fn back_channel_logout_calls_no_internal_address_unless_allowed() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.outbound_allow = Vec::new();
        c.logout.backchannel_backoff = Duration::from_millis(20);
        c.logout.backchannel_attempts = 3;
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let literal = Receiver::default();
    let named = Receiver::default();
    let wiki = logout_client(&server, "wiki", Some(literal.start().await)).await;
    let by_name = named.start().await.replacen("127.0.0.1", "localhost", 1);
    let billing = logout_client(&server, "billing", Some(by_name)).await;
    let browser = Browser::new();
    let tokens = alice_signs_in(&server, &browser, &wiki).await;
    sso_tokens(&server, &browser, &billing).await;
    let (ops, _) = admin_ends_the_session(&server, &alice.sub, &tokens).await;
    let events = deliveries(&server, &ops, 2).await;
    for client in ["wiki", "billing"] {
        let event = delivery_to(&events, client);
        assert_eq!(event["outcome"], "failure", "{event}");
        assert_eq!(event["detail"]["attempts"], 1, "not retried: {event}");
        let why = event["detail"]["error"].as_str().unwrap();
        assert!(why.contains("outbound_allow"), "{why}");
    }
    assert!(literal.tokens().is_empty() && named.tokens().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn signing_out_at_one_app_signs_out_of_the_other() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    let browser = Browser::new();
    let (_, page) = browse(&browser, &format!("{}/profile", wiki.base)).await;
    let (steps, _) = sign_in_and_follow(&server, &browser, &page).await;
    assert_eq!(steps.last().unwrap().1, format!("{}/profile", wiki.base));
    let (steps, page) = browse(&browser, &format!("{}/", billing.base)).await;
    assert_eq!(
        steps.last().unwrap(),
        &(StatusCode::OK, format!("{}/", billing.base))
    );
    assert!(page.contains("alice Example"));
    // A token wiki holds for alice's session, as its pages would use it.
    let wiki_token = sso_tokens(&server, &browser, &wiki.client).await;

    // Sign out at billing: through Lanyard's end-session endpoint and back to billing,
    // which (signed out) sends the browser to sign in again.
    let r = browser
        .http
        .post(format!("{}/logout", billing.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to_lanyard = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_lanyard.starts_with(&server.url("/logout?id_token_hint=")),
        "{to_lanyard}"
    );
    let (steps, page) = browse(&browser, &to_lanyard).await;
    assert!(
        steps
            .iter()
            .any(|(_, u)| *u == format!("{}/", billing.base)),
        "back at billing: {steps:?}"
    );
    assert!(
        page.contains("Sign in") && page.contains("The billing app"),
        "{page}"
    );

    // Wiki heard it over the back channel: its page asks to sign in again, and its API
    // refuses the token issued in the ended session.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = browser.get(&format!("{}/profile", wiki.base)).await;
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if location.starts_with("/login?") {
            assert!(location.contains("expired=1"), "{location}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "wiki still shows the page: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = reqwest::Client::new()
        .get(format!("{}/api/me", wiki.base))
        .bearer_auth(field(&wiki_token, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
