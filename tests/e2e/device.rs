//! The device authorization grant (RFC 8628): a device asks at `/device_authorization`, the
//! person approves at `/device` with their SSO session (signing in first, and coming back to
//! the code), the device polls `/token` and hears `authorization_pending`, `slow_down`,
//! `access_denied` or `expired_token` until it gets its tokens, once. Codes typed at the page
//! are counted, right or wrong.

use std::time::Duration;

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin::{admin_token, audit_events};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error, client_post,
    decode_jwt, form_value, token_request,
};

const PASSWORD: &str = "correct horse battery staple";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public client for a TV: the device grant and refresh tokens.
fn device_app(first_party: bool) -> ClientSpec {
    ClientSpec {
        id: "tv",
        public: true,
        grants: &[DEVICE_GRANT, "refresh_token"],
        scopes: &["openid", "profile", "email"],
        first_party,
    }
}

/// `POST /device_authorization` for `client`: the JSON answer.
async fn start(server: &TestServer, client: &TestClient, scope: &str) -> Value {
    let r = client_post(server, "/device_authorization", client, &[("scope", scope)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

/// One poll of the token endpoint.
async fn poll(server: &TestServer, client: &TestClient, device: &Value) -> reqwest::Response {
    token_request(
        server,
        client,
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device["device_code"].as_str().unwrap()),
        ],
    )
    .await
}

/// Signs alice in from the sign-in page `page` (the account form); the redirect it answers.
async fn account_sign_in(server: &TestServer, browser: &Browser, page: &str) -> reqwest::Response {
    browser
        .http
        .post(server.url("/account/signin"))
        .form(&[
            ("csrf", form_value(page, "csrf")),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap()
}

/// Posts a form of the device page.
async fn post(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    page: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("csrf".to_owned(), form_value(page, "csrf"))];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    browser
        .http
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A browser signed in as alice, at the page asking for a code.
async fn signed_in_browser(server: &TestServer) -> (Browser, String) {
    let browser = Browser::new();
    let page = browser
        .get(&server.url("/device"))
        .await
        .text()
        .await
        .unwrap();
    let r = account_sign_in(server, &browser, &page).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/device");
    let page = browser
        .get(&server.url("/device"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Connect a device"), "{page}");
    (browser, page)
}

#[tokio::test]
async fn a_device_signs_in_once_the_person_approves_it() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_at(Db::Postgres, Store::Redis, clock.clone()).await;
    let alice = server.user("alice", PASSWORD).await;
    let tv = server.client(device_app(false)).await;

    let device = start(&server, &tv, "openid profile").await;
    let user_code = device["user_code"].as_str().unwrap();
    let letters = |s: &str| s.len() == 4 && s.bytes().all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b));
    assert!(
        user_code
            .split_once('-')
            .is_some_and(|(a, b)| letters(a) && letters(b)),
        "XXXX-XXXX from the reduced alphabet: {user_code}"
    );
    assert_eq!(device["verification_uri"], server.url("/device"));
    assert_eq!(
        device["verification_uri_complete"],
        format!("{}?user_code={user_code}", server.url("/device"))
    );
    assert_eq!(device["expires_in"], 600);
    assert_eq!(device["interval"], 5);
    assert!(
        device["device_code"].as_str().unwrap().len() > 40,
        "a secret of its own"
    );

    // Nobody has looked yet; and polling again at once is too soon.
    assert_oauth_error(
        poll(&server, &tv, &device).await,
        StatusCode::BAD_REQUEST,
        "authorization_pending",
    )
    .await;
    let slow = assert_oauth_error(
        poll(&server, &tv, &device).await,
        StatusCode::BAD_REQUEST,
        "slow_down",
    )
    .await;
    assert!(
        slow["error_description"]
            .as_str()
            .unwrap()
            .contains("10 seconds"),
        "{slow}"
    );

    // The person opens the link the device shows: signed out, they sign in first, and come
    // back to the very code.
    let browser = Browser::new();
    let r = browser
        .get(device["verification_uri_complete"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("to connect your device"), "{page}");
    assert!(page.contains(r#"action="/account/signin""#), "{page}");
    let r = account_sign_in(&server, &browser, &page).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(back, format!("/device?user_code={user_code}"));
    let page = browser.get(&server.url(&back)).await.text().await.unwrap();
    assert!(page.contains("Approve this device?"), "{page}");
    assert!(page.contains("The tv app"), "names the app: {page}");
    assert!(
        page.contains(user_code),
        "shows the code to compare: {page}"
    );
    assert!(page.contains("See your name and username"), "{page}");
    assert!(
        !page.contains("email address"),
        "only what is asked: {page}"
    );

    let r = post(
        &server,
        &browser,
        "/device/decide",
        &page,
        &[("user_code", user_code), ("decision", "approve")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = r.text().await.unwrap();
    assert!(done.contains("Device approved"), "{done}");

    // The next poll after the (grown) interval gets the tokens, once.
    clock.advance(Duration::from_secs(11));
    let r = poll(&server, &tv, &device).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile");
    let (_, access) = decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], alice.sub.as_str());
    assert_eq!(access["client_id"], "tv");
    assert!(
        access.get("sid").is_none(),
        "not bound to the browser's session: {access}"
    );
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "tv");
    assert_eq!(id["sub"], alice.sub.as_str());
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        poll(&server, &tv, &device).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // The device refreshes like any app; signing out of the browser leaves it signed in.
    let logout = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        logout.contains("The tv app"),
        "approving allowed the app: {logout}"
    );
    let r = token_request(
        &server,
        &tv,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    let token = admin_token(&server).await;
    let events = audit_events(&server, &token, "device.approve", 1).await;
    assert_eq!(events[0]["actor"], alice.sub.as_str());
    assert_eq!(events[0]["target"], "client_id:tv");
    server.stop().await;
}

#[tokio::test]
async fn a_denied_or_expired_device_gets_nothing() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let tv = server.client(device_app(true)).await;
    let (browser, page) = signed_in_browser(&server).await;

    // Denied: the device hears so, on every poll.
    let denied = start(&server, &tv, "openid").await;
    let code = denied["user_code"].as_str().unwrap();
    // Typed as people type: lower case, no dash.
    let typed = code.replace('-', "").to_lowercase();
    let r = post(
        &server,
        &browser,
        "/device",
        &page,
        &[("user_code", &typed)],
    )
    .await;
    let confirm = r.text().await.unwrap();
    assert!(confirm.contains("Approve this device?"), "{confirm}");
    let r = post(
        &server,
        &browser,
        "/device/decide",
        &confirm,
        &[("user_code", &typed), ("decision", "deny")],
    )
    .await;
    let done = r.text().await.unwrap();
    assert!(done.contains("Device denied"), "{done}");
    for _ in 0..2 {
        clock.advance(Duration::from_secs(5));
        assert_oauth_error(
            poll(&server, &tv, &denied).await,
            StatusCode::BAD_REQUEST,
            "access_denied",
        )
        .await;
    }
    // Decided is decided: approving it now finds nothing waiting.
    let r = post(
        &server,
        &browser,
        "/device/decide",
        &confirm,
        &[("user_code", &typed), ("decision", "approve")],
    )
    .await;
    let again = r.text().await.unwrap();
    assert!(again.contains("not waiting for approval"), "{again}");

    // Expired: ten minutes pass; the page and the device both say so.
    let late = start(&server, &tv, "openid").await;
    clock.advance(Duration::from_secs(601));
    let code = late["user_code"].as_str().unwrap();
    let r = post(&server, &browser, "/device", &page, &[("user_code", code)]).await;
    let gone = r.text().await.unwrap();
    assert!(gone.contains("not waiting for approval"), "{gone}");
    assert!(
        gone.contains(code),
        "what was typed stays, to correct: {gone}"
    );
    assert_oauth_error(
        poll(&server, &tv, &late).await,
        StatusCode::BAD_REQUEST,
        "expired_token",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_request_is_approved_once_however_many_tabs_show_it() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let tv = server.client(device_app(true)).await;
    let (browser, page) = signed_in_browser(&server).await;
    let device = start(&server, &tv, "openid").await;
    let code = device["user_code"].as_str().unwrap();
    let mut tabs = Vec::new();
    for _ in 0..2 {
        let r = post(&server, &browser, "/device", &page, &[("user_code", code)]).await;
        tabs.push(r.text().await.unwrap());
    }
    let first = post(
        &server,
        &browser,
        "/device/decide",
        &tabs[0],
        &[("user_code", code), ("decision", "approve")],
    )
    .await;
    assert!(first.text().await.unwrap().contains("Device approved"));
    let second = post(
        &server,
        &browser,
        "/device/decide",
        &tabs[1],
        &[("user_code", code), ("decision", "approve")],
    )
    .await;
    let second = second.text().await.unwrap();
    assert!(second.contains("not waiting for approval"), "{second}");
    let token = admin_token(&server).await;
    let events = audit_events(&server, &token, "device.approve", 1).await;
    assert_eq!(events.len(), 1, "one approval: {events:?}");
    server.stop().await;
}

#[tokio::test]
async fn guessing_user_codes_is_throttled() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let tv = server.client(device_app(true)).await;
    let device = start(&server, &tv, "openid").await;
    let right = device["user_code"].as_str().unwrap();
    let (browser, page) = signed_in_browser(&server).await;
    // Five free, the sixth is looked up and starts a wait of 2 s.
    for guess in [
        "BBBB-BBBB",
        "BBBB-BBBC",
        "BBBB-BBBD",
        "BBBB-BBBF",
        "BBBB-BBBG",
        "BBBB-BBBH",
    ] {
        let r = post(&server, &browser, "/device", &page, &[("user_code", guess)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{guess}");
        assert!(r.text().await.unwrap().contains("not waiting for approval"));
    }
    // Waiting now, even with the right code: nothing is looked up.
    for path in ["/device", "/device/decide"] {
        let r = post(
            &server,
            &browser,
            path,
            &page,
            &[("user_code", right), ("decision", "approve")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(r.headers()["retry-after"], "2");
        let text = r.text().await.unwrap();
        assert!(text.contains("Too many codes"), "{text}");
    }
    let r = browser
        .get(&format!("{}?user_code={right}", server.url("/device")))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the link too");
    clock.advance(Duration::from_secs(3));
    let r = post(&server, &browser, "/device", &page, &[("user_code", right)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Approve this device?"));
    server.stop().await;
}

#[tokio::test]
async fn the_device_endpoint_refuses_what_rfc_8628_refuses() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let tv = server.client(device_app(true)).await;
    let web = server.client(ClientSpec::web("wiki")).await;
    // A client registered without the grant.
    let r = client_post(
        &server,
        "/device_authorization",
        &web,
        &[("scope", "openid")],
    )
    .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    // A scope the client may not ask for.
    let r = client_post(
        &server,
        "/device_authorization",
        &tv,
        &[("scope", "openid groups")],
    )
    .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // A wrong secret is a 401 with a Basic challenge; an unknown client too.
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..web.clone()
    };
    let r = client_post(
        &server,
        "/device_authorization",
        &wrong,
        &[("scope", "openid")],
    )
    .await;
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"lanyard\"");
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let nobody = TestClient {
        id: "nobody".to_owned(),
        secret: None,
        ..tv.clone()
    };
    let r = client_post(
        &server,
        "/device_authorization",
        &nobody,
        &[("scope", "openid")],
    )
    .await;
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // At the token endpoint: no device code, a made-up one, another client's.
    let r = token_request(&server, &tv, &[("grant_type", DEVICE_GRANT)]).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let device = start(&server, &tv, "openid").await;
    let code = device["device_code"].as_str().unwrap();
    let forged = format!("{}.{}", &code[..8], "A".repeat(43));
    let r = token_request(
        &server,
        &tv,
        &[("grant_type", DEVICE_GRANT), ("device_code", &forged)],
    )
    .await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let other = server
        .client(ClientSpec {
            id: "radio",
            ..device_app(true)
        })
        .await;
    let r = poll(&server, &other, &device).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // The web app may not poll at all.
    let r = poll(&server, &web, &device).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
    // What others tried left the device's request alone.
    let r = poll(&server, &tv, &device).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "authorization_pending").await;
    server.stop().await;
}

#[tokio::test]
async fn a_form_without_its_csrf_token_approves_nothing() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let tv = server.client(device_app(true)).await;
    let (browser, _) = signed_in_browser(&server).await;
    let device = start(&server, &tv, "openid").await;
    let code = device["user_code"].as_str().unwrap();
    let r = browser
        .http
        .post(server.url("/device/decide"))
        .form(&[
            ("user_code", code),
            ("decision", "approve"),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = poll(&server, &tv, &device).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "authorization_pending").await;
    // Signed out, the decision is a 401 page and nothing changes.
    let stranger = Browser::new();
    let page = stranger
        .get(&server.url("/device"))
        .await
        .text()
        .await
        .unwrap();
    let r = post(
        &server,
        &stranger,
        "/device/decide",
        &page,
        &[("user_code", code), ("decision", "approve")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
