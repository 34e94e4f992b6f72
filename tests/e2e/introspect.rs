//! The introspection endpoint (RFC 7662): who may ask, what an active answer carries, and
//! every way a token is inactive.

use lanyard_store::{Clock, SystemClock, Target};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error, client_post,
    code_flow, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

async fn introspect(server: &TestServer, client: &TestClient, token: &str) -> Value {
    let r = client_post(server, "/introspect", client, &[("token", token)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

#[tokio::test]
async fn an_active_token_is_described_and_every_dead_one_is_inactive() {
    for (db, store) in crate::support::ALL_BACKENDS {
        let server = TestServer::start(db, store).await;
        let alice = server.user("alice", PASSWORD).await;
        let wiki = server.client(ClientSpec::web("wiki")).await;
        let billing = server.client(ClientSpec::web("billing")).await;
        let tokens = code_flow(
            &server,
            &Browser::new(),
            &wiki,
            "openid profile offline_access",
            "alice",
            PASSWORD,
        )
        .await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();

        let answer = introspect(&server, &wiki, access).await;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["scope"], "openid profile offline_access");
        assert_eq!(answer["client_id"], wiki.id.as_str());
        assert_eq!(answer["username"], "alice");
        assert_eq!(answer["token_type"], "Bearer");
        assert_eq!(answer["sub"], alice.sub.as_str());
        assert_eq!(answer["aud"], json!([wiki.id]));
        assert_eq!(answer["iss"], server.issuer.as_str());
        for claim in ["exp", "iat", "nbf"] {
            assert!(answer[claim].as_i64().is_some(), "{claim}: {answer}");
        }
        assert!(answer["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert!(answer["sid"].as_str().is_some_and(|s| !s.is_empty()));

        let r = introspect(&server, &wiki, refresh).await;
        assert_eq!(r["active"], true, "{r}");
        assert_eq!(r["token_type"], "refresh_token");
        assert_eq!(r["username"], "alice");

        // A rotated refresh token is no longer active (presenting it would be reuse).
        let rotated: Value = crate::support::refresh(&server, &wiki, refresh, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            introspect(&server, &wiki, refresh).await,
            json!({"active": false})
        );
        let refresh = rotated["refresh_token"].as_str().unwrap();
        assert_eq!(introspect(&server, &wiki, refresh).await["active"], true);

        // §4: a client the token is not meant for learns nothing.
        assert_eq!(
            introspect(&server, &billing, access).await,
            json!({"active": false})
        );
        assert_eq!(
            introspect(&server, &billing, refresh).await,
            json!({"active": false})
        );
        for junk in ["junk", "a.b.c"] {
            assert_eq!(
                introspect(&server, &wiki, junk).await,
                json!({"active": false})
            );
        }

        // Revoked: the access token by its jti, the refresh token by revocation.
        crate::support::lanyard_revoke(
            &server,
            Target::Jti(answer["jti"].as_str().unwrap().to_owned()),
            answer["exp"].as_i64().unwrap(),
        )
        .await;
        assert_eq!(
            introspect(&server, &wiki, access).await,
            json!({"active": false})
        );
        let r = client_post(&server, "/revoke", &wiki, &[("token", refresh)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            introspect(&server, &wiki, refresh).await,
            json!({"active": false})
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_disabled_user_and_an_expired_token_are_inactive() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    server
        .state
        .db
        .users()
        .set_disabled(&alice.sub, true, SystemClock.now())
        .await
        .unwrap();
    assert_eq!(
        introspect(&server, &wiki, access).await,
        json!({"active": false})
    );
    assert_eq!(
        introspect(&server, &wiki, refresh).await,
        json!({"active": false})
    );

    let expired = crate::support::expired_access_token(&server, "job", &wiki.id).await;
    assert_eq!(
        introspect(&server, &wiki, &expired).await,
        json!({"active": false})
    );
    server.stop().await;
}

#[tokio::test]
async fn a_resource_server_introspects_tokens_meant_for_it() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let job = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            ..ClientSpec::web("reports-job")
        })
        .await;
    let api = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &[],
            ..ClientSpec::web("reports-api")
        })
        .await;
    server.allow_resources(&job.id, &["reports-api"]).await;
    let body: Value = token_request(
        &server,
        &job,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "reports-api"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let token = body["access_token"].as_str().unwrap();
    let answer = introspect(&server, &api, token).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert_eq!(answer["client_id"], job.id.as_str());
    assert_eq!(answer["sub"], job.id.as_str());
    assert!(
        answer.get("username").is_none(),
        "a client's own token has no user: {answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn only_clients_with_a_secret_may_ask() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let spa = server
        .client(ClientSpec {
            public: true,
            ..ClientSpec::web("spa")
        })
        .await;
    let tokens = code_flow(&server, &Browser::new(), &wiki, "openid", "alice", PASSWORD).await;
    let access = tokens["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let anonymous = http
        .post(server.url("/introspect"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        r#"Basic realm="lanyard""#
    );
    assert_oauth_error(anonymous, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let public = client_post(&server, "/introspect", &spa, &[("token", access)]).await;
    assert_oauth_error(public, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let wrong = http
        .post(server.url("/introspect"))
        .basic_auth(&wiki.id, Some("wrong"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let missing = client_post(&server, "/introspect", &wiki, &[]).await;
    assert_oauth_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
    let discovery: Value = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["introspection_endpoint"],
        server.url("/introspect")
    );
    server.stop().await;
}

/// A store outage is 503: "inactive" would be a lie, "active" a danger.
#[tokio::test]
async fn an_outage_is_503() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let server =
        TestServer::start_on_store(crate::support::redis_store_at(&own.url(), "e2e:").await).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    own.kill();
    for token in ["access_token", "refresh_token"] {
        let r = client_post(
            &server,
            "/introspect",
            &wiki,
            &[("token", tokens[token].as_str().unwrap())],
        )
        .await;
        assert_eq!(r.headers()["retry-after"], "1");
        assert_oauth_error(
            r,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        )
        .await;
    }
    server.stop().await;
}
