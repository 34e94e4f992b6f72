//! What operators and load balancers see (issue 8): `/readyz` names the dependency that is
//! down and the clock that drifted, `/healthz` stays up meanwhile, and `/metrics` counts what
//! happens. (The binary's logs and SIGTERM: `crates/lanyard-idp/tests/process.rs`.)

use std::time::Duration;

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{ClientSpec, Db, Store, TestServer, redis_store_at, token_request};

/// The sum of every series of metric `name` in the server's `/metrics` (the recorder is
/// shared by every server in the test process: compare before and after).
pub(crate) async fn metric_sum(server: &TestServer, name: &str) -> f64 {
    let text = reqwest::get(server.ops_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(crate) async fn readyz(server: &TestServer) -> (StatusCode, Option<String>, Value) {
    let r = reqwest::get(server.ops_url("/readyz")).await.unwrap();
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap())
}

#[tokio::test]
async fn readiness_names_the_dependency_that_is_down() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let server = TestServer::start_on_store(redis_store_at(&own.url(), "e2e:").await).await;
    let (status, _, report) = readyz(&server).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["status"], "ready");
    for check in ["database", "store", "keys", "clock"] {
        assert_eq!(report[check]["ok"], true, "{check}: {report}");
    }
    own.kill();
    let (status, retry, report) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(retry.as_deref(), Some("5"));
    assert_eq!(report["status"], "not_ready");
    assert_eq!(report["store"]["ok"], false, "{report}");
    assert_eq!(
        report["database"]["ok"], true,
        "only the store is named: {report}"
    );
    // Alive all the same: an orchestrator must not restart a node for its Redis.
    let alive = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    server.stop().await;
}

/// The public `/readyz` says ready or not and nothing more, while the operators' listener
/// (`ops_listen`) names what failed; `/metrics` is on the operators' listener only
/// (issue 19 §4: the public report carried the store's error text).
#[tokio::test]
async fn the_public_readiness_tells_nothing_the_operators_listener_tells_all() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let server = TestServer::start_on_store(redis_store_at(&own.url(), "e2e:").await).await;
    let public = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(public.status(), StatusCode::OK);
    assert_eq!(
        public.json::<Value>().await.unwrap(),
        serde_json::json!({ "status": "ready" })
    );
    own.kill();
    let public = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(public.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(public.headers()["retry-after"], "5");
    assert_eq!(
        public.json::<Value>().await.unwrap(),
        serde_json::json!({ "status": "not_ready" }),
        "no check named, no error text"
    );
    let (status, _, report) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(report["store"]["ok"], false, "{report}");
    assert!(!report["store"]["detail"].as_str().unwrap().is_empty());
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(
        metrics.status(),
        StatusCode::NOT_FOUND,
        "not on the public listener"
    );
    let metrics = reqwest::get(server.ops_url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("lanyard_http_requests_total")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_node_whose_clock_runs_ahead_is_taken_out_of_service() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_on_store(
        clock.clone(),
        redis_store_at(
            &lanyard_store::test_redis::redis_url(),
            &lanyard_store::test_redis::unique_prefix(),
        )
        .await,
    )
    .await;
    let (status, _, report) = readyz(&server).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    clock.advance(Duration::from_secs(20));
    let (status, _, report) = readyz(&server).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "20 s is within the 30 s allowed: {report}"
    );
    clock.advance(Duration::from_secs(70));
    let (status, _, report) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["clock"]["ok"], false);
    let detail = report["clock"]["detail"].as_str().unwrap();
    assert!(detail.contains("ahead of the store's"), "{detail}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_tokens_by_grant() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let service = server
        .client(ClientSpec {
            id: "metrics-service",
            public: false,
            grants: &["client_credentials"],
            scopes: &[],
            first_party: true,
        })
        .await;
    let scrape = || async {
        reqwest::get(server.ops_url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    // The recorder is shared by every server in this process: compare before and after.
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(str::trim))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let issued = r#"lanyard_tokens_issued_total{grant="client_credentials"}"#;
    let refused = r#"lanyard_http_requests_total{route="/token",method="POST",status="401"}"#;
    let before = scrape().await;
    for _ in 0..3 {
        let r = token_request(&server, &service, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth("metrics-service", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let after = scrape().await;
    assert!(
        after.starts_with("# HELP") || after.contains("# TYPE"),
        "Prometheus text format"
    );
    assert!(
        value(&after, issued) - value(&before, issued) >= 3.0,
        "{after}"
    );
    assert!(
        value(&after, refused) - value(&before, refused) >= 1.0,
        "{after}"
    );
    // Only the series lines carry labels; HELP texts are ours and may use any word.
    let series: Vec<&str> = after.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        !series
            .iter()
            .any(|l| l.contains("client_secret") || l.contains("wrong")),
        "no request data in labels: {series:?}"
    );
    server.stop().await;
}

/// `lanyard audit prune`'s deletion on both databases: only events older than the cut-off go,
/// in batches, and ties at a batch's edge are neither skipped nor deleted twice.
#[tokio::test]
async fn pruning_the_audit_trail_deletes_only_what_is_older_on_both_databases() {
    for db in [Db::Sqlite, Db::Postgres] {
        let server = TestServer::start(db, Store::Memory).await;
        let now = SystemClock.now();
        let day = Duration::from_secs(86_400);
        let event =
            |at, action: &str| lanyard_core::model::AuditEvent::new(at, "anonymous", action);
        // 23 old events, several at the same instant, and 4 recent ones between them.
        let mut events: Vec<_> = (0..23u32)
            .map(|i| event(now.minus(day * (100 + i % 3)), "test.old"))
            .collect();
        events.splice(
            5..5,
            (0..4).map(|i| event(now.minus(day * i), "test.recent")),
        );
        server.state.db.audit().insert(&events).await.unwrap();
        let deleted = server
            .state
            .db
            .audit()
            .prune(now.minus(day * 90), 5)
            .await
            .unwrap();
        assert_eq!(deleted, 23, "{db:?}");
        let left = |action| {
            let db = &server.state.db;
            async move { db.audit().by_action(action).await.unwrap().len() }
        };
        assert_eq!((left("test.old").await, left("test.recent").await), (0, 4));
        server.stop().await;
    }
}
