//! The code flow as a person and two apps live it: sign in once, single sign-on at the second
//! app, tokens that say who and how, sign-in failures that say nothing more than they must.

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    ALL_BACKENDS, Browser, ClientSpec, Db, Store, TestServer, authorize_url, code_flow, decode_jwt,
    redirect_params, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// Sign-in, code, tokens, UserInfo, and single sign-on at a second app: on every database and
/// every store.
#[tokio::test]
async fn sign_in_once_then_single_sign_on_on_every_backend() {
    for (db, store) in ALL_BACKENDS {
        let server = TestServer::start(db, store).await;
        single_sign_on(&server).await;
        server.stop().await;
    }
}

async fn single_sign_on(server: &TestServer) {
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::third_party("wiki")).await;
    let billing = server.client(ClientSpec::third_party("billing")).await;
    let browser = Browser::new();

    let tokens = code_flow(
        server,
        &browser,
        &wiki,
        "openid profile email",
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    assert_eq!(tokens["scope"], "openid profile email");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access, not first party"
    );

    let (id_header, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_header["alg"], "RS256");
    assert_eq!(id_header["kid"], server.state.keys.signing_kid());
    assert_eq!(id["iss"], server.issuer.as_str());
    assert_eq!(id["sub"], alice.sub.as_str());
    assert_eq!(id["aud"], "wiki");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["at_hash"].is_string() && id["sid"].is_string());
    let (iat, exp) = (id["iat"].as_i64().unwrap(), id["exp"].as_i64().unwrap());
    assert!(
        iat > 1_700_000_000 && iat < 10_000_000_000,
        "seconds, not milliseconds"
    );
    assert_eq!(exp - iat, 600);
    assert!(id["auth_time"].as_i64().unwrap() <= iat);

    let (at_header, at) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(at_header["typ"], "at+jwt", "RFC 9068 §2.1");
    assert_eq!(at["client_id"], "wiki");
    assert_eq!(at["aud"], serde_json::json!(["wiki"]));
    assert_eq!(at["sub"], alice.sub.as_str());
    assert_eq!(at["sid"], id["sid"]);
    assert!(at["jti"].as_str().is_some_and(|j| j.len() >= 16));

    let me: Value = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], alice.sub.as_str());
    assert_eq!(me["preferred_username"], "alice");
    assert_eq!(me["email"], "alice@example.com");

    // The second app: the session answers without a sign-in page; a third-party app is
    // allowed once (then, see `consent`, never asked again).
    let (challenge, verifier) = crate::support::pkce();
    let answer = browser
        .get(&authorize_url(
            server,
            &billing,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(
        page.contains("Allow The billing app?") && !page.contains(r#"name="password""#),
        "no sign-in page, only the question: {page}"
    );
    let answer = browser.consent(server, &page, "allow").await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&answer);
    assert_eq!(to, billing.redirect_uri);
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.issuer.as_str(), "RFC 9207");
    let second = token_request(
        server,
        &billing,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &billing.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(second.status(), StatusCode::OK);
    let second: Value = second.json().await.unwrap();
    let (_, id2) = decode_jwt(second["id_token"].as_str().unwrap());
    assert_eq!(id2["sid"], id["sid"], "one SSO session, one sid");
    assert_eq!(id2["sub"], id["sub"]);
    assert_eq!(id2["aud"], "billing");

    let session = server
        .store()
        .session(id["sid"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(session.clients.contains("wiki") && session.clients.contains("billing"));
}

#[tokio::test]
async fn session_cookie_is_new_httponly_and_lax() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();
    let page = browser.get(&authorize_url(&server, &wiki, &[])).await;
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Strict"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"name="username""#)
            && page.contains(r#"name="password""#)
            && page.contains(r#"name="remember_me""#)
    );
    assert!(page.contains("The wiki app"), "the page names the app");

    let answer = browser
        .sign_in(&server, &page, "alice", PASSWORD, true)
        .await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "303, never 307 (RFC 9700 §4.12)"
    );
    let cookies: Vec<String> = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("lanyard_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(
        session.contains("Max-Age="),
        "remember me outlives the browser session: {session}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("lanyard_csrf=;") && c.contains("Max-Age=0"))
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_read_the_same() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let disabled = server.user("bob", PASSWORD).await;
    server
        .state
        .db
        .users()
        .set_disabled(&disabled.sub, true, lanyard_store::Timestamp::from_secs(1))
        .await
        .unwrap();
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let mut bodies = Vec::new();
    let before = server.state.passwords.verifications();
    for (user, password) in [
        ("alice", "wrong password"),
        ("nobody", PASSWORD),
        // A disabled account reads the same unless the password is right (see `lockout`).
        ("bob", "wrong password"),
        ("ALICE", "wrong password"),
    ] {
        let browser = Browser::new();
        let page = browser
            .get(&authorize_url(&server, &wiki, &[]))
            .await
            .text()
            .await
            .unwrap();
        let answer = browser.sign_in(&server, &page, user, password, false).await;
        assert_eq!(answer.status(), StatusCode::OK, "{user}");
        assert!(
            answer
                .headers()
                .get_all("set-cookie")
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("lanyard_session"))
        );
        let body = answer.text().await.unwrap();
        assert!(body.contains("Incorrect username or password."), "{user}");
        // The same page but for the echoed username.
        bodies.push(body.replace(&format!("value=\"{user}\""), "value=\"\""));
    }
    // Every attempt ran argon2 once, the unknown user's against a dummy hash: no shortcut for
    // an attacker to time.
    assert_eq!(server.state.passwords.verifications() - before, 4);
    let first = strip_tokens(&bodies[0]);
    assert!(
        bodies.iter().all(|b| strip_tokens(b) == first),
        "identical pages for every failure"
    );

    // Usernames are case-insensitive.
    let browser = Browser::new();
    let page = browser
        .get(&authorize_url(&server, &wiki, &[]))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        browser
            .sign_in(&server, &page, "Alice", PASSWORD, false)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    server.state.audit.flush().await;
    let failures = server.state.db.audit().by_action("signin").await.unwrap();
    assert_eq!(
        failures.iter().filter(|e| e.outcome == "failure").count(),
        4
    );
    assert_eq!(
        failures.iter().filter(|e| e.outcome == "success").count(),
        1
    );
    server.stop().await;
}

/// Hidden fields carry per-page tokens; compare the rest.
fn strip_tokens(page: &str) -> String {
    page.lines()
        .filter(|l| !l.contains("type=\"hidden\""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn sign_in_without_the_csrf_token_is_refused() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();
    let page = browser
        .get(&authorize_url(&server, &wiki, &[]))
        .await
        .text()
        .await
        .unwrap();
    let request = crate::support::form_value(&page, "authorization_request");
    // A cross-site POST: no token, or another browser's token.
    for csrf in ["", "forged-token-forged-token-forged-token-abc"] {
        let answer = browser
            .http
            .post(server.url("/signin"))
            .form(&[
                ("csrf", csrf),
                ("authorization_request", &request),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN);
        assert!(answer.headers().get("set-cookie").is_none(), "no session");
        assert!(answer.text().await.unwrap().contains("expired"));
    }
    let stranger = Browser::new();
    let answer = stranger
        .http
        .post(server.url("/signin"))
        .form(&[
            ("csrf", crate::support::form_value(&page, "csrf").as_str()),
            ("authorization_request", &request),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.status(),
        StatusCode::FORBIDDEN,
        "the token without its cookie"
    );
    server.stop().await;
}

#[tokio::test]
async fn prompt_none_login_and_max_age() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();

    let answer = browser
        .get(&authorize_url(&server, &wiki, &[("prompt", "none")]))
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&answer);
    assert_eq!(to, wiki.redirect_uri);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.issuer.as_str());

    let tokens = code_flow(&server, &browser, &wiki, "openid", "alice", PASSWORD).await;
    let answer = browser
        .get(&authorize_url(&server, &wiki, &[("prompt", "none")]))
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert!(
        redirect_params(&answer).1.contains_key("code"),
        "prompt=none with a session: silent"
    );

    let hint = tokens["id_token"].as_str().unwrap();
    let answer = browser
        .get(&authorize_url(
            &server,
            &wiki,
            &[("prompt", "none"), ("id_token_hint", hint)],
        ))
        .await;
    assert!(
        redirect_params(&answer).1.contains_key("code"),
        "the hint names the signed-in user"
    );

    for forces_sign_in in [&[("prompt", "login")][..], &[("max_age", "0")][..]] {
        clock.advance(std::time::Duration::from_millis(1100));
        let answer = browser
            .get(&authorize_url(&server, &wiki, forces_sign_in))
            .await;
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "{forces_sign_in:?} shows the sign-in page"
        );
    }
    let answer = browser
        .get(&authorize_url(&server, &wiki, &[("max_age", "10000")]))
        .await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "a recent sign-in satisfies max_age=10000"
    );

    let foreign = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    let answer = browser
        .get(&authorize_url(
            &server,
            &wiki,
            &[("prompt", "none"), ("id_token_hint", foreign)],
        ))
        .await;
    assert_eq!(redirect_params(&answer).1["error"], "invalid_request");
    server.stop().await;
}

#[tokio::test]
async fn token_issuance_is_audited_with_the_request_id() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let browser = Browser::new();
    // Added after start, through the same database the CLI writes.
    server.user("late", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(&server, &browser, &wiki, "openid", "late", PASSWORD).await;
    assert!(tokens["id_token"].is_string());
    server.state.audit.flush().await;
    let issued = server
        .state
        .db
        .audit()
        .by_action("token.issue")
        .await
        .unwrap();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].actor, "client:wiki");
    let detail: serde_json::Value =
        serde_json::from_str(issued[0].detail.as_deref().unwrap()).unwrap();
    let (_, claims) = crate::support::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(detail["jti"], claims["jti"], "{detail}");
    assert_eq!(detail["scope"], "openid");
    assert_eq!(detail["id_token"], true);
    assert!(
        issued[0]
            .request_id
            .as_ref()
            .is_some_and(|id| id.len() == 16),
        "{:?}",
        issued[0]
    );
    server.stop().await;
}

#[tokio::test]
async fn signing_in_again_starts_a_new_session() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();
    let first = code_flow(&server, &browser, &wiki, "openid", "alice", PASSWORD).await;
    let page = browser
        .get(&authorize_url(&server, &wiki, &[("prompt", "login")]))
        .await
        .text()
        .await
        .unwrap();
    let answer = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let code = redirect_params(&answer).1["code"].clone();
    let second: Value = token_request(
        &server,
        &wiki,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &wiki.redirect_uri),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let sid = |t: &Value| decode_jwt(t["id_token"].as_str().unwrap()).1["sid"].clone();
    assert_ne!(
        sid(&first),
        sid(&second),
        "a sign-in never reuses a session id"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_code_expires_after_60_seconds() {
    let clock = lanyard_store::ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let code = crate::support::authorize_with_sign_in(
        &server,
        &Browser::new(),
        &wiki,
        &[],
        "alice",
        PASSWORD,
    )
    .await;
    clock.advance(std::time::Duration::from_secs(61));
    let response = token_request(
        &server,
        &wiki,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &wiki.redirect_uri),
        ],
    )
    .await;
    crate::support::assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    server.stop().await;
}

/// Two nodes on one database: what one adds, the other serves at once.
#[tokio::test]
async fn users_and_clients_added_on_one_node_work_on_another() {
    let first = TestServer::start(Db::Postgres, Store::Redis).await;
    let database_url = first.state.config.database_url.clone();
    let (redis_url, prefix) = (
        first.state.config.redis_url.clone(),
        first.state.config.redis_prefix.clone(),
    );
    let second = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.database_url = database_url;
        c.redis_url = redis_url;
        c.redis_prefix = prefix;
    })
    .await;
    first.user("late", PASSWORD).await;
    let wiki = first.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(&second, &Browser::new(), &wiki, "openid", "late", PASSWORD).await;
    assert!(tokens["id_token"].is_string());
    second.stop().await;
    first.stop().await;
}
