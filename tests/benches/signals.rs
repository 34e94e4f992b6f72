//! Shared Signals through the event outbox: `RECEIVERS` push streams (each its own receiver
//! client and endpoint, served by one local HTTP server), and an account disabled or enabled
//! through the admin API, each producing one SET per stream. Prints the latency from the
//! admin call's answer to each SET's arrival (p50, p99, max over `SEQUENTIAL` calls one after
//! another), and the throughput of a burst (`BURST` calls at once: SETs delivered per second,
//! from the first call to the last arrival), for Lanyard on its embedded defaults (SQLite)
//! and, when reachable, PostgreSQL.
//!
//! `cargo bench -p lanyard-e2e --bench signals`. PostgreSQL from `LANYARD_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`; a database `lanyard_bench_ssf` is
//! made and dropped). Figures are recorded in `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::Config;
use lanyard_core::model::{ClientSettings, GrantType};
use lanyard_core::users::{NewUser, add_user};
use lanyard_idp::state::AppState;
use lanyard_store::{Clock, SystemClock};
use serde_json::{Value, json};

const RECEIVERS: usize = 100;
const SEQUENTIAL: usize = 30;
const BURST: usize = 50;
const DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Run {
    label: String,
    latency: Vec<Duration>,
    burst_sets: usize,
    burst_time: Duration,
}

/// When each SET arrived.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

async fn receivers() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/r/{n}",
        axum::routing::post(move |_body: String| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(Instant::now());
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, arrivals)
}

async fn wait_for(arrivals: &Arrivals, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} SETs arrived",
            arrivals.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn run(label: &str, config: Config) -> Run {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let config = Config {
        issuer: issuer.clone(),
        outbound_allow: lanyard_core::outbound::loopback(),
        ..config
    };
    let state = AppState::build(config).await.unwrap();
    let now = SystemClock.now();
    let add = |id: String, scope: &str| {
        let state = state.clone();
        let scope = scope.to_owned();
        async move {
            let (_, secret) = add_client(
                &state.db,
                &state.server_keys,
                NewClient {
                    settings: ClientSettings {
                        grant_types: vec![GrantType::ClientCredentials],
                        scopes: vec![scope],
                        ..ClientSettings::new(id)
                    },
                    secret: None,
                },
                now,
            )
            .await
            .unwrap();
            secret.unwrap()
        }
    };
    let ops_secret = add("ops".to_owned(), "lanyard:admin").await;
    let mut receiver_secrets = Vec::new();
    for n in 0..RECEIVERS {
        receiver_secrets.push(add(format!("receiver-{n}"), "lanyard:ssf").await);
    }
    let alice = add_user(
        &state.db,
        &state.passwords,
        NewUser {
            username: "alice".to_owned(),
            password: "a long password for alice".to_owned(),
            email: None,
            display_name: None,
        },
        now,
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lanyard_idp::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let token = |id: String, secret: String, scope: &'static str| {
        let (http, issuer) = (http.clone(), issuer.clone());
        async move {
            let body: Value = http
                .post(format!("{issuer}/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("scope", scope)])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let (base, arrivals) = receivers().await;
    for (n, secret) in receiver_secrets.into_iter().enumerate() {
        let ssf_token = token(format!("receiver-{n}"), secret, "lanyard:ssf").await;
        let r = http
            .post(format!("{issuer}/ssf/streams"))
            .bearer_auth(ssf_token)
            .json(&json!({
                "events_requested": [DISABLED, ENABLED],
                "delivery": { "method": "urn:ietf:rfc:8935", "endpoint_url": format!("{base}/r/{n}") },
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let admin = token("ops".to_owned(), ops_secret, "lanyard:admin").await;
    let mut disabled = false;
    let mut toggle = || {
        let (http, issuer, admin, sub) = (
            http.clone(),
            issuer.clone(),
            admin.clone(),
            alice.sub.clone(),
        );
        let action = if disabled { "enable" } else { "disable" };
        disabled = !disabled;
        async move {
            let r = http
                .post(format!("{issuer}/admin/v1/users/{sub}/{action}"))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };

    // One after another: the latency of each SET, from the call's answer.
    let mut latency = Vec::with_capacity(SEQUENTIAL * RECEIVERS);
    for i in 0..SEQUENTIAL {
        toggle().await;
        let answered = Instant::now();
        wait_for(&arrivals, (i + 1) * RECEIVERS).await;
        let got = arrivals.lock().unwrap();
        latency.extend(
            got[i * RECEIVERS..]
                .iter()
                .map(|t| t.saturating_duration_since(answered)),
        );
    }

    // A burst: every call at once, then every SET.
    let before = arrivals.lock().unwrap().len();
    let started = Instant::now();
    let calls: Vec<_> = (0..BURST).map(|_| tokio::spawn(toggle())).collect();
    for call in calls {
        call.await.unwrap();
    }
    wait_for(&arrivals, before + BURST * RECEIVERS).await;
    let burst_time = started.elapsed();

    let _ = stop.send(());
    let _ = server.await;
    latency.sort();
    Run {
        label: label.to_owned(),
        latency,
        burst_sets: BURST * RECEIVERS,
        burst_time,
    }
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"signals".contains(a.as_str()))
    {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("lanyard-bench-ssf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut runs = Vec::new();
    let embedded = Config {
        database_url: format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
        ..Config::default()
    };
    runs.push(rt.block_on(run("SQLite", embedded)));

    let admin = std::env::var("LANYARD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let base = admin.rsplit_once('/').unwrap().0.to_owned();
    let created = std::process::Command::new("psql")
        .args([
            &admin,
            "-qc",
            "DROP DATABASE IF EXISTS lanyard_bench_ssf",
            "-c",
            "CREATE DATABASE lanyard_bench_ssf",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if created {
        let production = Config {
            database_url: format!("{base}/lanyard_bench_ssf"),
            master_key: Some(lanyard_core::crypto::MasterKey::generate().1),
            ..Config::default()
        };
        runs.push(rt.block_on(run("PostgreSQL", production)));
        let _ = std::process::Command::new("psql")
            .args([&admin, "-qc", "DROP DATABASE IF EXISTS lanyard_bench_ssf"])
            .status();
    } else {
        println!("(PostgreSQL not reachable with psql at {admin}: only the embedded run)");
    }
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "Shared Signals: {RECEIVERS} push streams, one SET each per account disabled or enabled"
    );
    for r in &runs {
        println!("  {}", r.label);
        println!(
            "    answer → SET received ({SEQUENTIAL} calls × {RECEIVERS}): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            ms(percentile(&r.latency, 50.0)),
            ms(percentile(&r.latency, 99.0)),
            ms(*r.latency.last().unwrap())
        );
        println!(
            "    burst of {BURST} calls: {} SETs in {:.2} s = {:.0} SETs/s",
            r.burst_sets,
            r.burst_time.as_secs_f64(),
            r.burst_sets as f64 / r.burst_time.as_secs_f64()
        );
    }
}
