//! Sign-in sessions as people expect them: "remember me", idle and absolute timeouts on a
//! moved clock, the status and "Stay signed in" behind the timeout warning, the
//! session-expired message with the way back, and activity at apps keeping a session alive.

use std::time::Duration;

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, TestClient, TestServer, authorize_url, code_flow, redirect_params, refresh,
};

const PASSWORD: &str = "correct horse battery staple";
const MINUTE: Duration = Duration::from_secs(60);

/// A server on a clock the test moves, with alice and the `wiki` web app.
async fn on_a_moved_clock() -> (TestServer, ManualClock, TestClient) {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let wiki = server
        .client(ClientSpec {
            first_party: true,
            ..ClientSpec::web("wiki")
        })
        .await;
    (server, clock, wiki)
}

/// Alice signs in at `client` in a new browser; returns the browser and the session cookie's
/// `Set-Cookie`.
async fn signed_in(server: &TestServer, client: &TestClient, remember: bool) -> (Browser, String) {
    let browser = Browser::new();
    let page = browser.get(&authorize_url(server, client, &[])).await;
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(server, &page, "alice", PASSWORD, remember)
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("lanyard_session="))
        .expect("a session cookie");
    (browser, cookie)
}

/// `GET /session/status` from a page at `origin` (none: a same-origin navigation).
async fn status_from(
    server: &TestServer,
    browser: &Browser,
    origin: Option<&str>,
    client_id: Option<&str>,
) -> reqwest::Response {
    let mut url = server.url("/session/status");
    if let Some(id) = client_id {
        url.push_str(&format!("?client_id={id}"));
    }
    let mut request = browser.http.get(url);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

/// The status as Lanyard's own pages read it.
async fn status(server: &TestServer, browser: &Browser) -> Value {
    let r = status_from(server, browser, None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

/// "Stay signed in" from a page of Lanyard's own.
async fn extend(server: &TestServer, browser: &Browser) -> Value {
    let r = browser
        .http
        .post(server.url("/session/extend"))
        .header("origin", &server.issuer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn remember_me_makes_the_cookie_and_the_session_last() {
    let (server, clock, wiki) = on_a_moved_clock().await;
    let (browser, cookie) = signed_in(&server, &wiki, false).await;
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{flag}: {cookie}");
    }
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "a browser-session cookie: {cookie}"
    );
    assert!(!cookie.contains("Domain"), "host-only: {cookie}");
    let s = status(&server, &browser).await;
    assert_eq!(s["active"], true);
    assert_eq!(s["remember_me"], false);
    assert_eq!(s["idle_timeout"], 1800);
    assert_eq!(s["expires_in"], 1800);
    assert_eq!(s["absolute_expires_in"], 12 * 3600);

    let (remembered, cookie) = signed_in(&server, &wiki, true).await;
    assert!(cookie.contains("Max-Age=2592000"), "30 days: {cookie}");
    let s = status(&server, &remembered).await;
    assert_eq!(s["remember_me"], true);
    assert_eq!(s["idle_timeout"], 7 * 24 * 3600);
    assert_eq!(s["absolute_expires_in"], 30 * 24 * 3600);

    // A day away: the remembered session is still there, the other is not.
    clock.advance(24 * 60 * MINUTE);
    assert_eq!(status(&server, &remembered).await["active"], true);
    assert_eq!(
        status(&server, &browser).await,
        serde_json::json!({ "active": false })
    );
    // A week and a day away: both are gone.
    clock.advance(7 * 24 * 60 * MINUTE);
    assert_eq!(status(&server, &remembered).await["active"], false);
    server.stop().await;
}

#[tokio::test]
async fn the_idle_timeout_warns_can_be_put_off_and_sends_the_person_back_where_they_were() {
    let (server, clock, wiki) = on_a_moved_clock().await;
    let (browser, _) = signed_in(&server, &wiki, false).await;
    clock.advance(29 * MINUTE);
    let s = status(&server, &browser).await;
    assert_eq!(s["expires_in"], 60, "the warning's moment: {s}");
    assert_eq!(
        status(&server, &browser).await["expires_in"],
        60,
        "asking is not activity"
    );
    let s = extend(&server, &browser).await;
    assert_eq!(s["expires_in"], 1800, "Stay signed in: {s}");

    clock.advance(31 * MINUTE);
    assert_eq!(status(&server, &browser).await["active"], false);
    let r = browser.get(&authorize_url(&server, &wiki, &[])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Your session has expired"), "{page}");
    let answer = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&answer);
    assert_eq!(to, wiki.redirect_uri, "back to the app");
    assert_eq!(params["state"], "st-123", "to the request it was making");
    assert!(params.contains_key("code"));

    // A browser that never had a session sees no such message.
    let r = Browser::new()
        .get(&authorize_url(&server, &wiki, &[]))
        .await;
    assert!(!r.text().await.unwrap().contains("expired"));
    server.stop().await;
}

#[tokio::test]
async fn the_absolute_lifetime_ends_even_a_busy_session() {
    let (server, clock, wiki) = on_a_moved_clock().await;
    let (browser, _) = signed_in(&server, &wiki, false).await;
    for _ in 0..24 {
        clock.advance(29 * MINUTE);
        assert_eq!(extend(&server, &browser).await["active"], true);
    }
    // 11 h 36 min in: extending no longer gives the whole idle timeout.
    let s = status(&server, &browser).await;
    assert_eq!(s["absolute_expires_in"], 24 * 60);
    assert_eq!(
        s["expires_in"],
        24 * 60,
        "capped by the absolute deadline: {s}"
    );
    clock.advance(24 * MINUTE);
    assert_eq!(extend(&server, &browser).await["active"], false);
    server.stop().await;
}

#[tokio::test]
async fn using_the_session_at_an_app_keeps_it_alive() {
    let (server, clock, wiki) = on_a_moved_clock().await;
    let browser = Browser::new();
    let tokens = code_flow(&server, &browser, &wiki, "openid", "alice", PASSWORD).await;
    let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        clock.advance(20 * MINUTE);
        let r = refresh(&server, &wiki, &refresh_token, None).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    let s = status(&server, &browser).await;
    assert_eq!(
        s["active"], true,
        "an hour in, refreshed every 20 minutes: {s}"
    );
    assert_eq!(s["expires_in"], 1800);
    server.stop().await;
}

#[tokio::test]
async fn only_registered_apps_may_read_the_status_or_extend() {
    let (server, clock, wiki) = on_a_moved_clock().await;
    let (browser, _) = signed_in(&server, &wiki, false).await;
    let app = "https://wiki.example.com";
    let r = status_from(&server, &browser, Some(app), Some("wiki")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], app);
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert!(r.headers()["vary"].to_str().unwrap().contains("Origin"));
    for (origin, client_id) in [
        ("https://evil.example", Some("wiki")),
        (app, None),
        (app, Some("nobody")),
        ("null", Some("wiki")),
    ] {
        let r = status_from(&server, &browser, Some(origin), client_id).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin} {client_id:?}");
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }

    clock.advance(10 * MINUTE);
    // A form on another site posting here sends no Origin of a registered app.
    for origin in [None, Some("https://evil.example")] {
        let mut request = browser.http.post(server.url("/session/extend"));
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        status(&server, &browser).await["expires_in"],
        1200,
        "not extended"
    );
    let r = browser
        .http
        .post(server.url("/session/extend?client_id=wiki"))
        .header("origin", app)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], app);
    assert_eq!(status(&server, &browser).await["expires_in"], 1800);

    let script = reqwest::get(server.url("/session/warning.js"))
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let text = script.text().await.unwrap();
    assert!(text.contains("/session/status") && text.contains("/session/extend"));
    server.stop().await;
}

/// `Origin: null` (a sandboxed frame, a `data:` page, a file) is never an app's page, even for
/// an app whose redirect address has no origin of its own (a native app's private-use
/// scheme, whose origin also reads `null`): issue 19 §4.
#[tokio::test]
async fn origin_null_is_never_an_apps_page() {
    let (server, _clock, wiki) = on_a_moved_clock().await;
    lanyard_core::clients::add_client(
        &server.state.db,
        &server.state.server_keys,
        lanyard_core::clients::NewClient {
            settings: lanyard_core::model::ClientSettings {
                name: "The desktop app".to_owned(),
                public: true,
                redirect_uris: vec!["com.example.desktop:/callback".to_owned()],
                grant_types: vec!["authorization_code".parse().unwrap()],
                ..lanyard_core::model::ClientSettings::new("desktop".to_owned())
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    let (browser, _) = signed_in(&server, &wiki, false).await;
    let r = status_from(&server, &browser, Some("null"), Some("desktop")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = browser
        .http
        .post(server.url("/session/extend?client_id=desktop"))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}

/// Issue 25: an app on another site reads and extends its person's session server to server,
/// with its own credentials (`/session/app-status`, `/session/app-extend`): a session it
/// signed no one in through is not active to it; a public client, no `sid` or bad
/// credentials are refused as at the token endpoint.
#[tokio::test]
async fn an_app_asks_for_its_sessions_status_server_to_server() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let billing = server.client(ClientSpec::web("billing")).await;
    let browser = Browser::new();
    let tokens =
        crate::support::code_flow(&server, &browser, &wiki, "openid", "alice", PASSWORD).await;
    let (_, id_token) = crate::support::decode_jwt(tokens["id_token"].as_str().unwrap());
    let sid = id_token["sid"].as_str().unwrap().to_owned();
    let ask = |client: &crate::support::TestClient,
               path: &'static str,
               form: Vec<(&'static str, String)>| {
        let (id, secret, url) = (client.id.clone(), client.secret.clone(), server.url(path));
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .basic_auth(id, secret)
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ask(&wiki, "/session/app-status", vec![("sid", sid.clone())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    let left = body["expires_in"].as_i64().unwrap();
    // Not billing's: it signed no one in through this session.
    let (_, body) = ask(&billing, "/session/app-status", vec![("sid", sid.clone())]).await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    // "Stay signed in" from wiki's server: the idle timeout starts again.
    clock.advance(10 * MINUTE);
    let (_, body) = ask(&wiki, "/session/app-status", vec![("sid", sid.clone())]).await;
    assert_eq!(body["expires_in"].as_i64().unwrap(), left - 600);
    let (status, body) = ask(&wiki, "/session/app-extend", vec![("sid", sid.clone())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"].as_i64().unwrap(), left);
    // Refusals, as the token endpoint's.
    let (status, body) = ask(&wiki, "/session/app-status", vec![]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    let r = reqwest::Client::new()
        .post(server.url("/session/app-status"))
        .basic_auth("wiki", Some("not the secret"))
        .form(&[("sid", sid.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let spa = server
        .client(ClientSpec {
            id: "spa",
            public: true,
            grants: &["authorization_code"],
            scopes: &["openid"],
            first_party: true,
        })
        .await;
    let (status, body) = ask(
        &spa,
        "/session/app-status",
        vec![("client_id", "spa".to_owned()), ("sid", sid.clone())],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "{body}"
    );
    server.stop().await;
}
