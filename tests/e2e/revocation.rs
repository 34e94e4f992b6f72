//! Revoking durably (issue 5 §4): a revocation is in the SQL record before it is
//! acknowledged, and the store's lists are rebuilt from that record when they are lost, so
//! that no revoked token comes back to life: not after Redis loses everything, not after an
//! embedded Lanyard restarts.

use std::time::{Duration, Instant};

use lanyard_core::config::Config;
use lanyard_idp::state::AppState;
use lanyard_store::test_redis::OwnRedis;
use lanyard_store::{Clock, SystemClock, Target, Timestamp, TokenFacts, Verdict};
use reqwest::StatusCode;

use crate::apps::start_app;
use crate::support::{Browser, TestServer, code_flow, redis_store_at};

const PASSWORD: &str = "correct horse battery staple";

/// Revoke alice, then `kill -9` Redis and start it with nothing on disk: her token is refused
/// at Lanyard's UserInfo and at the app all along, never accepted again, and the lists are
/// back (apps' mirrors healthy) within seconds without any request prompting it.
#[tokio::test]
async fn a_revocation_survives_redis_losing_everything() {
    let mut own = OwnRedis::start();
    let server = TestServer::start_on_store(redis_store_at(&own.url(), "e2e:").await).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = start_app(
        &server,
        "wiki",
        redis_store_at(&own.url(), "e2e:").await,
        Duration::from_secs(10),
    )
    .await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki.client,
        "openid",
        "alice",
        PASSWORD,
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let userinfo = || http.get(server.url("/userinfo")).bearer_auth(&token).send();
    let api = || {
        http.get(format!("{}/api/me", wiki.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(userinfo().await.unwrap().status(), StatusCode::OK);

    lanyard_core::revocation::revoke(
        &server.state,
        Target::Sub(alice.sub.clone()),
        SystemClock.now(),
        "test",
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    while api().await.unwrap().status() != StatusCode::UNAUTHORIZED {
        assert!(
            Instant::now() < deadline,
            "the app never refused the revoked token"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    own.restart_empty();
    let wiped = Instant::now();
    let (mut idp_refuses, mut app_refuses) = (false, false);
    while !(idp_refuses && app_refuses) {
        for (what, response, refuses) in [
            ("Lanyard", userinfo().await.unwrap(), &mut idp_refuses),
            ("the app", api().await.unwrap(), &mut app_refuses),
        ] {
            let status = response.status();
            assert_ne!(
                status,
                StatusCode::OK,
                "{what} accepted a revoked token after the wipe"
            );
            if status == StatusCode::UNAUTHORIZED {
                let challenge = response.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                assert!(challenge.contains("revoked"), "{what}: {challenge}");
                *refuses = true;
            } else {
                assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
            }
        }
        assert!(
            wiped.elapsed() < Duration::from_secs(15),
            "not restored: Lanyard refuses {idp_refuses}, the app refuses {app_refuses}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Restored by Lanyard's own watch, not by these requests: the lists hold the entry.
    let snapshot = server.store().snapshot().await.unwrap();
    assert!(
        snapshot
            .revocations
            .iter()
            .any(|r| r.target == Target::Sub(alice.sub.clone())),
        "{snapshot:?}"
    );
    assert!(wiki.state.guard().mirror().status().healthy);
    server.stop().await;
}

/// Lanyard on its embedded defaults forgets its in-process store when it stops; the record
/// does not. A new process judges the token revoked from its first request.
#[tokio::test]
async fn a_revocation_survives_a_restart_of_the_embedded_store() {
    let path = std::env::temp_dir().join(format!(
        "lanyard-e2e-restart-{}.db",
        lanyard_core::crypto::random_token(8).replace(['-', '_'], "x")
    ));
    let config = Config {
        database_url: format!("sqlite://{}?mode=rwc", path.display()),
        ..Config::default()
    };
    let now = SystemClock.now();
    let facts = TokenFacts {
        jti: "j1",
        sid: None,
        sub: "alice",
        client_id: "wiki",
        origin: None,
        act: None,
        iat: Timestamp::from_secs(now.as_secs() - 5),
        exp: Timestamp::from_secs(now.as_secs() + 300),
    };
    let first = AppState::build(config.clone()).await.unwrap();
    assert_eq!(
        first.store.check(&facts).await.unwrap(),
        Verdict::NotRevoked
    );
    lanyard_core::revocation::revoke(&first, Target::Sub("alice".into()), now, "test")
        .await
        .unwrap();
    lanyard_core::revocation::revoke(
        &first,
        Target::Jti("other".into()),
        Timestamp::from_secs(now.as_secs() + 300),
        "test",
    )
    .await
    .unwrap();
    drop(first);

    let second = AppState::build(config).await.unwrap();
    assert!(matches!(
        second.store.check(&facts).await.unwrap(),
        Verdict::Revoked(_)
    ));
    assert_eq!(second.store.snapshot().await.unwrap().revocations.len(), 2);
    drop(second);
    let _ = std::fs::remove_file(&path);
}
