//! Admin revocations end to end: the latency of `POST /admin/v1/revocations` (durable: the
//! database record, then the store), and the propagation from that call's answer to every one
//! of `APPS` revocation mirrors refusing the token — mirrors that follow Lanyard's HTTP
//! revocation feed, as apps without access to Redis do. Prints p50, p99 and max over
//! `REVOCATIONS` revocations, for Lanyard on its embedded defaults (SQLite, in-process store)
//! and, when reachable, on PostgreSQL and Redis.
//!
//! `cargo bench -p lanyard-e2e --bench admin_revocation`. PostgreSQL from
//! `LANYARD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`; a
//! database `lanyard_bench` is made and dropped), Redis from `LANYARD_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`, under a private prefix). Mirrors are polled every ~50 µs from a
//! thread outside the runtime. Figures are recorded in `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::Config;
use lanyard_core::model::{ClientSettings, GrantType};
use lanyard_idp::state::AppState;
use lanyard_rp::{HttpSource, Mirror};
use lanyard_store::{Clock, SystemClock, Timestamp, TokenFacts, Verdict};
use serde_json::{Value, json};

const APPS: usize = 10;
const REVOCATIONS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Run {
    label: String,
    call: Vec<Duration>,
    propagation: Vec<Duration>,
}

async fn run(label: &str, config: Config) -> Run {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        issuer: issuer.clone(),
        ..config
    };
    let state = AppState::build(config).await.unwrap();
    let now = SystemClock.now();
    let mut secrets = Vec::new();
    for (id, scopes) in [("ops", vec!["lanyard:admin".to_owned()]), ("app", vec![])] {
        let (_, secret) = add_client(
            &state.db,
            &state.server_keys,
            NewClient {
                settings: ClientSettings {
                    grant_types: vec![GrantType::ClientCredentials],
                    scopes,
                    ..ClientSettings::new(id)
                },
                secret: None,
            },
            now,
        )
        .await
        .unwrap();
        secrets.push(secret.unwrap());
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lanyard_idp::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("ops", Some(&secrets[0]))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "lanyard:admin"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let mut mirrors = Vec::new();
    for _ in 0..APPS {
        let source = HttpSource::discover(&issuer, "app", &secrets[1])
            .await
            .unwrap();
        let mirror = Mirror::follow(
            Arc::new(source),
            Duration::from_secs(10),
            Duration::from_secs(3600),
            Arc::new(SystemClock),
        );
        assert!(mirror.ready(Duration::from_secs(5)).await, "mirror ready");
        mirrors.push(mirror);
    }
    let mirrors = Arc::new(mirrors);
    let mut call = Vec::with_capacity(REVOCATIONS);
    let mut propagation = Vec::with_capacity(REVOCATIONS);
    for i in 0..REVOCATIONS {
        let jti = format!("bench-{i}-{}", now.as_millis());
        let started = Instant::now();
        let r = http
            .post(format!("{issuer}/admin/v1/revocations"))
            .bearer_auth(&token)
            .json(&json!({ "jti": jti }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let returned = Instant::now();
        call.push(returned - started);
        let facts_jti = jti.clone();
        let waiting = mirrors.clone();
        let seen = tokio::task::spawn_blocking(move || {
            let facts = TokenFacts {
                jti: &facts_jti,
                sid: None,
                sub: "alice",
                client_id: "wiki",
                origin: None,
                act: None,
                iat: now,
                exp: Timestamp::from_secs(now.as_secs() + 600),
            };
            let mut pending: Vec<&Mirror> = waiting.iter().collect();
            while !pending.is_empty() {
                pending.retain(|m| !matches!(m.check(&facts), Ok(Verdict::Revoked(_))));
                assert!(
                    returned.elapsed() < Duration::from_secs(5),
                    "not propagated in 5 s"
                );
                std::thread::sleep(Duration::from_micros(50));
            }
            returned.elapsed()
        })
        .await
        .unwrap();
        propagation.push(seen);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(mirrors);
    let _ = stop.send(());
    let _ = server.await;
    call.sort();
    propagation.sort();
    Run {
        label: label.to_owned(),
        call,
        propagation,
    }
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"admin_revocation".contains(a.as_str()))
    {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("lanyard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut runs = Vec::new();
    let embedded = Config {
        database_url: format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
        ..Config::default()
    };
    runs.push(rt.block_on(run("SQLite + in-process store", embedded)));

    let admin = std::env::var("LANYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let redis = std::env::var("LANYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let base = admin.rsplit_once('/').unwrap().0.to_owned();
    let created = std::process::Command::new("psql")
        .args([
            &admin,
            "-qc",
            "DROP DATABASE IF EXISTS lanyard_bench",
            "-c",
            "CREATE DATABASE lanyard_bench",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if created {
        let production = Config {
            database_url: format!("{base}/lanyard_bench"),
            master_key: Some(lanyard_core::crypto::MasterKey::generate().1),
            redis_url: Some(redis),
            redis_prefix: format!("lanyard-bench-{}:", std::process::id()),
            ..Config::default()
        };
        runs.push(rt.block_on(run("PostgreSQL + Redis", production)));
        let _ = std::process::Command::new("psql")
            .args([&admin, "-qc", "DROP DATABASE IF EXISTS lanyard_bench"])
            .status();
    } else {
        println!("(PostgreSQL not reachable with psql at {admin}: only the embedded run)");
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!("admin revocations, {REVOCATIONS} by jti, {APPS} mirrors on the HTTP feed");
    for r in &runs {
        println!("  {}", r.label);
        println!(
            "    POST /admin/v1/revocations:      p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            ms(percentile(&r.call, 50.0)),
            ms(percentile(&r.call, 99.0)),
            ms(*r.call.last().unwrap())
        );
        println!(
            "    answer → all {APPS} mirrors refuse: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            ms(percentile(&r.propagation, 50.0)),
            ms(percentile(&r.propagation, 99.0)),
            ms(*r.propagation.last().unwrap())
        );
    }
}
