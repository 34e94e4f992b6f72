//! Pushed authorization requests (RFC 9126): the client pushes its request (authenticated),
//! the browser brings only the `request_uri`, which works once and for a minute; a pushed
//! request is checked before anyone signs in; a client registered with `require_par` gets
//! nothing any other way.

use std::time::Duration;

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error, client_post, pkce,
    redirect_params, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// Pushes `client`'s authorization request with `extra` parameters (which override the
/// defaults; an empty value leaves one out).
async fn push(
    server: &TestServer,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("redirect_uri", client.redirect_uri.as_str()),
        ("scope", "openid profile"),
        ("state", "st-pushed"),
        ("nonce", "n-pushed"),
    ];
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        if !v.is_empty() {
            form.push((k, v));
        }
    }
    client_post(server, "/par", client, &form).await
}

async fn pushed(server: &TestServer, client: &TestClient, extra: &[(&str, &str)]) -> String {
    let r = push(server, client, extra).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    uri
}

/// `/authorize` with only `client_id` and `request_uri`.
fn front(server: &TestServer, client_id: &str, request_uri: &str) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    url.to_string()
}

#[tokio::test]
async fn a_pushed_request_signs_in_once() {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let (challenge, verifier) = pkce();
    let uri = pushed(
        &server,
        &wiki,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let browser = Browser::new();
    let page = browser.get(&front(&server, "wiki", &uri)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let r = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, wiki.redirect_uri);
    assert_eq!(params["state"], "st-pushed", "the pushed request's state");
    let r = token_request(
        &server,
        &wiki,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &wiki.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let (_, id) = crate::support::decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-pushed");
    // Once: the same request_uri again is a page, never a code (even signed in).
    let again = browser.get(&front(&server, "wiki", &uri)).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let text = again.text().await.unwrap();
    assert!(text.contains("This sign-in link has expired"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn a_pushed_request_is_checked_before_anyone_signs_in() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let elsewhere = "https://evil.example/cb";
    for (extra, error) in [
        (vec![("redirect_uri", elsewhere)], "invalid_request"),
        (vec![("scope", "openid payroll")], "invalid_scope"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("request_uri", "urn:ietf:params:oauth:request_uri:x")],
            "invalid_request",
        ),
        (vec![("client_id", "someone-else")], "invalid_request"),
    ] {
        let r = push(&server, &wiki, &extra).await;
        let body = assert_oauth_error(r, StatusCode::BAD_REQUEST, error).await;
        assert!(body["error_description"].is_string(), "{extra:?}: {body}");
    }
    // Pushing is for authenticated clients: a wrong secret is a 401 with a Basic challenge.
    let wrong = TestClient {
        secret: Some("not-the-secret".to_owned()),
        ..wiki.clone()
    };
    let r = push(&server, &wrong, &[]).await;
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    server.stop().await;
}

#[tokio::test]
async fn a_request_uri_is_short_lived_and_its_clients_alone() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let crm = server.client(ClientSpec::web("crm")).await;
    let browser = Browser::new();
    // Another client's request_uri: not taken for this one, nor spent by its attempt.
    let uri = pushed(&server, &wiki, &[]).await;
    let r = browser.get(&front(&server, "crm", &uri)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("another application"));
    let r = Browser::new().get(&front(&server, "wiki", &uri)).await;
    assert_eq!(r.status(), StatusCode::OK, "still its own client's");
    // A pushed request and a request object at once: refused, and the pushed one not spent.
    let fresh = pushed(&server, &wiki, &[]).await;
    let both = format!(
        "{}&request=eyJhbGciOiJub25lIn0.e30.",
        front(&server, "wiki", &fresh)
    );
    let r = browser.get(&both).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("both a pushed request"));
    let r = browser.get(&front(&server, "wiki", &fresh)).await;
    assert_eq!(r.status(), StatusCode::OK, "the sign-in page: still usable");
    // A minute later it is gone.
    let late = pushed(&server, &crm, &[]).await;
    clock.advance(Duration::from_secs(61));
    let r = browser.get(&front(&server, "crm", &late)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("has expired"));
    // Made up: a page too.
    let r = browser
        .get(&front(
            &server,
            "crm",
            "urn:ietf:params:oauth:request_uri:made-up",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Not one Lanyard issued: nothing is fetched from it (request objects by reference are
    // not offered); without a redirect URI beside it, a page.
    let r = browser
        .get(&front(&server, "crm", "https://evil.example/request.jwt"))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_must_push_gets_nothing_any_other_way() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let bank = server.client(ClientSpec::web("bank")).await;
    let mut client = server
        .state
        .db
        .clients()
        .get("bank")
        .await
        .unwrap()
        .unwrap();
    let seen = client.updated_at;
    client.settings.require_par = true;
    assert!(
        server
            .state
            .db
            .clients()
            .update(&client, seen)
            .await
            .unwrap()
    );
    let browser = Browser::new();
    let r = browser
        .get(&crate::support::authorize_url(&server, &bank, &[]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, bank.redirect_uri);
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("PAR"), "{params:?}");
    // Pushed, it works.
    let uri = pushed(&server, &bank, &[]).await;
    let page = browser.get(&front(&server, "bank", &uri)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let r = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(redirect_params(&r).1.contains_key("code"));
    server.stop().await;
}
