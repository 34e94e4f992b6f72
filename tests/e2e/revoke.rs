//! The revocation endpoint (RFC 7009): what each kind of token revokes, what is answered for
//! tokens that are unknown, malformed or another client's, and that an outage is 503.

use lanyard_store::test_redis::OwnRedis;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestServer, assert_bearer_challenge, assert_oauth_error,
    client_post, code_flow, redis_store_at,
};

const PASSWORD: &str = "correct horse battery staple";

pub(crate) async fn userinfo(server: &TestServer, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub(crate) fn field<'a>(tokens: &'a Value, name: &str) -> &'a str {
    tokens[name].as_str().unwrap()
}

#[tokio::test]
async fn a_refresh_token_revokes_its_family_and_its_access_tokens() {
    for (db, store) in crate::support::ALL_BACKENDS {
        let server = TestServer::start(db, store).await;
        server.user("alice", PASSWORD).await;
        let app = server.client(ClientSpec::web("wiki")).await;
        let tokens = code_flow(
            &server,
            &Browser::new(),
            &app,
            "openid offline_access",
            "alice",
            PASSWORD,
        )
        .await;
        let (access, refresh) = (
            field(&tokens, "access_token"),
            field(&tokens, "refresh_token"),
        );
        assert_eq!(userinfo(&server, access).await.status(), StatusCode::OK);

        // The hint is only a hint: a refresh token sent as "access_token" is still found.
        let r = client_post(
            &server,
            "/revoke",
            &app,
            &[("token", refresh), ("token_type_hint", "access_token")],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK, "{db:?} {store:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.text().await.unwrap().is_empty());

        let again = crate::support::refresh(&server, &app, refresh, None).await;
        assert_oauth_error(again, StatusCode::BAD_REQUEST, "invalid_grant").await;
        let challenge = assert_bearer_challenge(
            &userinfo(&server, access).await,
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
        );
        assert!(challenge.contains("revoked"), "{challenge}");
        // Revoking twice is no error.
        let r = client_post(&server, "/revoke", &app, &[("token", refresh)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        server.stop().await;
    }
}

#[tokio::test]
async fn an_access_token_revokes_itself_only() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let app = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &app,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    let (access, refresh) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );
    let r = client_post(
        &server,
        "/revoke",
        &app,
        &[("token", access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let challenge = assert_bearer_challenge(
        &userinfo(&server, access).await,
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
    );
    assert!(challenge.contains("revoked"), "{challenge}");
    let renewed = crate::support::refresh(&server, &app, refresh, None).await;
    assert_eq!(
        renewed.status(),
        StatusCode::OK,
        "the refresh token lives on"
    );
    let renewed: Value = renewed.json().await.unwrap();
    assert_eq!(
        userinfo(&server, field(&renewed, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    server.state.audit.flush().await;
    let audit = server
        .state
        .db
        .audit()
        .by_action("token.revoke")
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, format!("client:{}", app.id));
    server.stop().await;
}

#[tokio::test]
async fn what_cannot_be_revoked_is_answered_as_rfc_7009_says() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let billing = server.client(ClientSpec::web("billing")).await;
    let spa = server
        .client(ClientSpec {
            public: true,
            ..ClientSpec::web("spa")
        })
        .await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    let (access, refresh) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );

    // §2.2: unknown and malformed tokens are answered 200.
    for unknown in [
        "not-a-token",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
        &"x".repeat(4000),
    ] {
        let r = client_post(&server, "/revoke", &wiki, &[("token", unknown)]).await;
        assert_eq!(r.status(), StatusCode::OK, "{unknown:.20}");
    }
    let public = client_post(&server, "/revoke", &spa, &[("token", "unknown")]).await;
    assert_eq!(
        public.status(),
        StatusCode::OK,
        "public clients revoke their own tokens too"
    );

    // Another client's token stays valid, and the answer does not say whether it is live
    // (docs/decisions/0003-revocation.md).
    for token in [access, refresh] {
        let r = client_post(&server, "/revoke", &billing, &[("token", token)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = client_post(&server, "/revoke", &spa, &[("token", token)]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(userinfo(&server, access).await.status(), StatusCode::OK);
    let renewed = crate::support::refresh(&server, &wiki, refresh, None).await;
    assert_eq!(renewed.status(), StatusCode::OK);

    // The request itself.
    let r = client_post(&server, "/revoke", &wiki, &[]).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let http = reqwest::Client::new();
    let anonymous = http
        .post(server.url("/revoke"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        r#"Basic realm="lanyard""#
    );
    assert_oauth_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong = http
        .post(server.url("/revoke"))
        .basic_auth(&wiki.id, Some("wrong"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let in_url = http
        .post(format!("{}?token={access}", server.url("/revoke")))
        .basic_auth(&wiki.id, wiki.secret.as_deref())
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(in_url, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert_eq!(
        userinfo(&server, access).await.status(),
        StatusCode::OK,
        "nothing above revoked it"
    );

    let discovery: Value = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["revocation_endpoint"], server.url("/revoke"));
    server.stop().await;
}

/// A store outage is 503 with `Retry-After`, never a 200 that revoked nothing.
#[tokio::test]
async fn an_outage_is_503_never_200() {
    let mut own = OwnRedis::start();
    let server = TestServer::start_on_store(redis_store_at(&own.url(), "e2e:").await).await;
    server.user("alice", PASSWORD).await;
    let app = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &app,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    own.kill();
    for token in [
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    ] {
        let r = client_post(&server, "/revoke", &app, &[("token", token)]).await;
        assert_eq!(r.headers()["retry-after"], "1");
        assert_oauth_error(
            r,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        )
        .await;
    }
    // What cannot be one of our tokens needs no store to be answered.
    let r = client_post(&server, "/revoke", &app, &[("token", "not-a-token")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}

/// A revocation that fails halfway is finished by the retry: the access tokens of a
/// refresh token's grant are recorded before its family goes, so a database failure leaves
/// the family for the retry to find.
#[tokio::test]
async fn a_failed_revocation_is_completed_by_the_retry() {
    for db in [Db::Sqlite, Db::Postgres] {
        let server = TestServer::start(db, Store::Redis).await;
        server.user("alice", PASSWORD).await;
        let app = server.client(ClientSpec::web("wiki")).await;
        let tokens = code_flow(
            &server,
            &Browser::new(),
            &app,
            "openid offline_access",
            "alice",
            PASSWORD,
        )
        .await;
        let (access, refresh) = (
            field(&tokens, "access_token"),
            field(&tokens, "refresh_token"),
        );
        server
            .state
            .db
            .execute_unprepared("ALTER TABLE revocations RENAME TO revocations_away")
            .await
            .unwrap();
        let r = client_post(&server, "/revoke", &app, &[("token", refresh)]).await;
        assert_oauth_error(
            r,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        )
        .await;
        assert!(
            server
                .store()
                .inspect_refresh(refresh)
                .await
                .unwrap()
                .is_some(),
            "{db:?}: the family waits for the retry"
        );
        server
            .state
            .db
            .execute_unprepared("ALTER TABLE revocations_away RENAME TO revocations")
            .await
            .unwrap();
        let r = client_post(&server, "/revoke", &app, &[("token", refresh)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let challenge = assert_bearer_challenge(
            &userinfo(&server, access).await,
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
        );
        assert!(challenge.contains("revoked"), "{db:?}: {challenge}");
        server.stop().await;
    }
}

/// Revoking the same token again adds no record.
#[tokio::test]
async fn revoking_twice_records_once() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let app = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(&server, &Browser::new(), &app, "openid", "alice", PASSWORD).await;
    for _ in 0..3 {
        let r = client_post(
            &server,
            "/revoke",
            &app,
            &[("token", field(&tokens, "access_token"))],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let now = lanyard_store::Clock::now(&lanyard_store::SystemClock);
    let records = server.state.db.revocations().in_force(now).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    server.stop().await;
}

/// A revocation recorded while the store was down reaches the lists once it is back, without
/// the client retrying: Lanyard's watch puts back what the lists lack when it reconnects.
#[tokio::test]
async fn a_revocation_recorded_during_an_outage_reaches_the_lists_when_the_store_is_back() {
    let mut own = OwnRedis::start();
    let server = TestServer::start_on_store(redis_store_at(&own.url(), "e2e:").await).await;
    server.user("alice", PASSWORD).await;
    let app = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(&server, &Browser::new(), &app, "openid", "alice", PASSWORD).await;
    let access = field(&tokens, "access_token");
    own.kill();
    // With the hint, the access token is recorded before the store is asked (and fails).
    let r = client_post(
        &server,
        "/revoke",
        &app,
        &[("token", access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_oauth_error(
        r,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
    own.restart();
    let back = std::time::Instant::now();
    loop {
        let r = userinfo(&server, access).await;
        assert_ne!(
            r.status(),
            StatusCode::OK,
            "the revoked token was accepted after the outage"
        );
        if r.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            back.elapsed() < std::time::Duration::from_secs(10),
            "{}",
            r.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.stop().await;
}
