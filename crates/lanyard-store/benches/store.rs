//! Hot-path store operations on both backends.
//!
//! `cargo bench -p lanyard-store --bench store` (Redis from `LANYARD_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`; the benchmark writes under a private prefix and deletes it after).
//! Figures are recorded in `docs/performance.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lanyard_store::{
    Clock, CodeGrant, FamilyId, GrantId, Issuance, MemoryStore, NewFamily, NewSession, RedisConfig,
    RedisStore, Revocation, Rotation, StoreConfig, SystemClock, Target, Timestamp, TokenFacts,
    TokenStore, Verdict,
};
use tokio::runtime::Runtime;

/// Revocation entries already in the lists while `check` runs.
const LIST_SIZE: usize = 10_000;
/// Checks in flight at once in the concurrent benchmark.
const CONCURRENT: usize = 64;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn redis_store(prefix: &str) -> RedisStore {
    let url = std::env::var("LANYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut config = RedisConfig::new(&url);
    config.prefix = prefix.to_owned();
    RedisStore::connect(StoreConfig::default(), config)
        .await
        .unwrap_or_else(|e| {
            panic!("the Redis benchmarks need a Redis at {url} (LANYARD_TEST_REDIS_URL): {e}")
        })
}

fn delete_prefix(prefix: &str) {
    let url = std::env::var("LANYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap();
    for chunk in keys.chunks(1_000) {
        let _: i64 = redis::cmd("DEL").arg(chunk).query(&mut conn).unwrap();
    }
}

/// Fills the lists with `LIST_SIZE` entries spread over the four kinds.
async fn seed(store: &dyn TokenStore) {
    let now = SystemClock.now();
    let entries = (0..LIST_SIZE)
        .map(|i| {
            let target = match i % 4 {
                0 => Target::Jti(format!("jti-{i}")),
                1 => Target::Sid(format!("sid-{i}")),
                2 => Target::Sub(format!("sub-{i}")),
                _ => Target::ClientId(format!("client-{i}")),
            };
            Revocation::new(target, now.plus(Duration::from_secs(600)), store.config())
        })
        .collect();
    store.reseed(entries).await.unwrap();
}

/// The facts of a token no list covers (the common case on the hot path).
fn fine_token(now: Timestamp) -> TokenFacts<'static> {
    TokenFacts {
        jti: "a-token-that-is-fine",
        sid: Some("a-live-session"),
        sub: "alice",
        client_id: "wiki",
        origin: None,
        act: None,
        iat: now,
        exp: now.plus(Duration::from_secs(600)),
    }
}

fn grant() -> CodeGrant {
    CodeGrant {
        grant_id: GrantId::generate(),
        client_id: "wiki".into(),
        sub: "alice".into(),
        sid: None,
        issuance: Issuance::default(),
        payload: serde_json::json!({
            "redirect_uri": "https://wiki.example.com/callback",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "nonce": "n-0S6_WzA2Mj",
            "scope": "openid profile email offline_access",
        }),
    }
}

fn bench_backend(c: &mut Criterion, name: &str, rt: &Runtime, store: Arc<dyn TokenStore>) {
    let mut group = c.benchmark_group(name);
    rt.block_on(seed(store.as_ref()));
    let now = SystemClock.now();

    group.bench_function("check (not revoked, 10k entries listed)", |b| {
        b.to_async(rt).iter(|| async {
            let v = store.check(&fine_token(now)).await.unwrap();
            assert_eq!(v, Verdict::NotRevoked);
        });
    });

    group.bench_function(format!("check x{CONCURRENT} concurrent"), |b| {
        b.to_async(rt).iter(|| async {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..CONCURRENT {
                let store = store.clone();
                tasks.spawn(async move { store.check(&fine_token(now)).await.unwrap() });
            }
            while let Some(v) = tasks.join_next().await {
                assert_eq!(v.unwrap(), Verdict::NotRevoked);
            }
        });
    });

    let g = grant();
    group.bench_function("code put + redeem", |b| {
        b.to_async(rt).iter(|| async {
            let code = store.put_code(&g).await.unwrap();
            let r = store.redeem_code(code.secret(), "wiki").await;
            assert!(matches!(r, Ok(lanyard_store::Redemption::Redeemed(_))));
        });
    });

    let session = rt.block_on(async {
        store
            .create_session(NewSession {
                sub: "alice".into(),
                auth_time: now,
                amr: vec!["pwd".into()],
                remember_me: false,
                idle_timeout: Duration::from_secs(1800),
                absolute_lifetime: Duration::from_secs(36_000),
                user_agent: Some("bench".into()),
                ip: Some("127.0.0.1".into()),
            })
            .await
            .unwrap()
    });
    let sid = session.sid.to_string();
    group.bench_function("session touch", |b| {
        b.to_async(rt).iter(|| async {
            let s = store.touch_session(&sid, Some("wiki")).await.unwrap();
            assert!(s.is_some());
        });
    });

    let first = rt.block_on(async {
        store
            .issue_refresh(NewFamily {
                id: FamilyId::generate(Some(&session.sid)),
                grant_id: GrantId::generate(),
                client_id: "wiki".into(),
                sub: "alice".into(),
                scope: vec!["openid".into(), "offline_access".into()],
                lifetime: Duration::from_secs(36_000),
                payload: serde_json::json!({"auth_time": now.as_secs()}),
                access_token: None,
            })
            .await
            .unwrap()
            .unwrap()
    });
    let current = Mutex::new(first.token.secret().to_owned());
    group.bench_function("refresh rotate", |b| {
        b.to_async(rt).iter(|| async {
            let token = current.lock().unwrap().clone();
            match store.rotate_refresh(&token, "wiki", None).await.unwrap() {
                Rotation::Rotated { token, .. } => {
                    *current.lock().unwrap() = token.secret().to_owned();
                }
                other => panic!("{other:?}"),
            }
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let memory: Arc<dyn TokenStore> = Arc::new(MemoryStore::new(StoreConfig::default()).unwrap());
    bench_backend(c, "memory", &rt, memory);

    let prefix = format!("lanyard-bench:{}:", GrantId::generate());
    let redis: Arc<dyn TokenStore> = Arc::new(rt.block_on(redis_store(&prefix)));
    bench_backend(c, "redis", &rt, redis);
    delete_prefix(&prefix);
}

criterion_group! {
    name = store;
    config = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(store);
