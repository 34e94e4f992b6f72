//! Refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2, OIDC Core §12.2): rotation, reuse
//! detection, scope narrowing, one client's token refused to another, session binding.

use std::time::Duration;

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestServer, assert_oauth_error, code_flow, decode_jwt,
    offline_tokens, refresh,
};

const PASSWORD: &str = "correct horse battery staple";

#[tokio::test]
async fn rotation_reuse_detection_and_scope() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let clock = ManualClock::new(SystemClock.now());
        let server = TestServer::start_at(db, store, clock.clone()).await;
        server.user("alice", PASSWORD).await;
        let wiki = server.client(ClientSpec::web("wiki")).await;
        let first = code_flow(
            &server,
            &Browser::new(),
            &wiki,
            "openid profile offline_access",
            "alice",
            PASSWORD,
        )
        .await;
        let t1 = first["refresh_token"].as_str().unwrap().to_owned();
        let (_, id1) = decode_jwt(first["id_token"].as_str().unwrap());

        clock.advance(Duration::from_secs(1));
        let second = refresh(&server, &wiki, &t1, None).await;
        assert_eq!(second.status(), StatusCode::OK);
        assert_eq!(second.headers()["cache-control"], "no-store");
        let second: Value = second.json().await.unwrap();
        let t2 = second["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(t1, t2, "rotated");
        let (_, id2) = decode_jwt(second["id_token"].as_str().unwrap());
        for claim in ["iss", "sub", "aud", "auth_time"] {
            assert_eq!(id2[claim], id1[claim], "{claim} stays (OIDC Core §12.2)");
        }
        assert!(id1["sid"].is_string());
        assert!(
            id2.get("sid").is_none(),
            "an offline token outlives the session: no sid"
        );
        assert!(id2["iat"].as_i64() > id1["iat"].as_i64(), "a new iat");
        assert!(id2.get("nonce").is_none());

        // Narrower scope: fine; wider: refused, and the token still works after.
        let narrow = refresh(&server, &wiki, &t2, Some("openid")).await;
        assert_eq!(narrow.status(), StatusCode::OK);
        let narrow: Value = narrow.json().await.unwrap();
        assert_eq!(narrow["scope"], "openid");
        let t3 = narrow["refresh_token"].as_str().unwrap().to_owned();
        let wide = refresh(&server, &wiki, &t3, Some("openid email")).await;
        assert_oauth_error(wide, StatusCode::BAD_REQUEST, "invalid_scope").await;
        let t4: Value = refresh(&server, &wiki, &t3, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            t4["scope"], "openid profile offline_access",
            "the family keeps the original scope"
        );
        let t4 = t4["refresh_token"].as_str().unwrap().to_owned();

        // Reuse of a retired token (past the 2 s grace window) revokes the family.
        clock.advance(Duration::from_millis(2100));
        assert_oauth_error(
            refresh(&server, &wiki, &t1, None).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert_oauth_error(
            refresh(&server, &wiki, &t4, None).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        // The access tokens the family issued die with it.
        for tokens in [&first, &second] {
            let info = reqwest::Client::new()
                .get(server.url("/userinfo"))
                .bearer_auth(tokens["access_token"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            crate::support::assert_bearer_challenge(
                &info,
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
            );
        }
        server.state.audit.flush().await;
        assert_eq!(
            server
                .state
                .db
                .audit()
                .by_action("refresh.reuse")
                .await
                .unwrap()
                .len(),
            1
        );
        server.stop().await;
    }
}

/// With `refresh_retry_grace_secs = 0` there is no grace: the same token twice is reuse at
/// once, and the family ends (its successor too).
#[tokio::test]
async fn with_the_retry_grace_off_a_retry_is_reuse() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.refresh_retry_grace = std::time::Duration::ZERO;
    })
    .await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let first = offline_tokens(&server, &wiki, "alice").await;
    let t1 = first["refresh_token"].as_str().unwrap();
    let r = refresh(&server, &wiki, t1, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2 = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_oauth_error(
        refresh(&server, &wiki, t1, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        refresh(&server, &wiki, &t2, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_retry_within_the_grace_window_gets_the_same_token() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let first = offline_tokens(&server, &wiki, "alice").await;
    let t1 = first["refresh_token"].as_str().unwrap();
    let a: Value = refresh(&server, &wiki, t1, None)
        .await
        .json()
        .await
        .unwrap();
    let b: Value = refresh(&server, &wiki, t1, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "a lost response does not sign the user out"
    );
    assert_ne!(a["access_token"], b["access_token"]);
    server.stop().await;
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let tokens = offline_tokens(&server, &wiki, "alice").await;
    let billing = server.client(ClientSpec::web("billing")).await;
    let t1 = tokens["refresh_token"].as_str().unwrap();
    assert_oauth_error(
        refresh(&server, &billing, t1, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        refresh(&server, &billing, t1, Some("openid")).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        refresh(&server, &wiki, t1, None).await.status(),
        StatusCode::OK,
        "untouched for its owner"
    );
    for garbage in ["", "x", "x.y", &format!("{t1}x")] {
        let response = refresh(&server, &wiki, garbage, None).await;
        let expected = if garbage.is_empty() {
            "invalid_request"
        } else {
            "invalid_grant"
        };
        assert_oauth_error(response, StatusCode::BAD_REQUEST, expected).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn first_party_refresh_tokens_end_with_the_session_offline_ones_do_not() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let portal = server
        .client(ClientSpec {
            first_party: true,
            ..ClientSpec::web("portal")
        })
        .await;
    let browser = Browser::new();
    let bound = code_flow(&server, &browser, &portal, "openid", "alice", PASSWORD).await;
    let bound_rt = bound["refresh_token"]
        .as_str()
        .expect("first party: a refresh token without offline_access");
    let offline = code_flow(
        &server,
        &Browser::new(),
        &portal,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    let offline_rt = offline["refresh_token"].as_str().unwrap();
    let (_, id) = decode_jwt(bound["id_token"].as_str().unwrap());
    let sid = id["sid"].as_str().unwrap();
    server
        .store()
        .end_session(sid)
        .await
        .unwrap()
        .expect("the session was live");
    assert_oauth_error(
        refresh(&server, &portal, bound_rt, None).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        refresh(&server, &portal, offline_rt, None).await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_user_cannot_refresh() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let tokens = offline_tokens(&server, &wiki, "alice").await;
    server
        .state
        .db
        .users()
        .set_disabled(&alice.sub, true, lanyard_store::Timestamp::from_secs(1))
        .await
        .unwrap();
    let response = refresh(
        &server,
        &wiki,
        tokens["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    server.stop().await;
}
