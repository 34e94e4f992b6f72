//! Revocation propagation: from the store's `revoke` returning to every one of `MIRRORS`
//! mirrors (each on its own Redis connection, as separate app processes would be) rejecting
//! the token. Prints p50, p99 and max over `REVOCATIONS` revocations.
//!
//! `cargo bench -p lanyard-rp --bench propagation` (Redis from `LANYARD_TEST_REDIS_URL`,
//! default `redis://127.0.0.1:6379`; writes under a private prefix and deletes it after).
//! Mirrors are polled every ~50 µs from a thread outside the runtime, so figures carry that
//! much resolution. Figures are recorded in `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_rp::{Mirror, StoreSource};
use lanyard_store::test_redis::{HOW, delete_prefix, redis_url, unique_prefix};
use lanyard_store::{
    Clock, RedisConfig, RedisStore, StoreConfig, SystemClock, Target, Timestamp, TokenFacts,
    TokenStore, Verdict,
};

const MIRRORS: usize = 10;
const REVOCATIONS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that excludes us means "not this one".
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"propagation".contains(a.as_str()))
    {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = redis_url();
    let prefix = unique_prefix();
    let connect = || async {
        let mut config = RedisConfig::new(&url);
        config.prefix = prefix.clone();
        RedisStore::connect(StoreConfig::default(), config)
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis at {url}: {e}. {HOW}"))
    };
    let (revoker, mirrors) = rt.block_on(async {
        let revoker = connect().await;
        // A fresh prefix has no revocation state until someone who knows it (the issuer)
        // seeds it: here, "nothing revoked".
        revoker.reseed(Vec::new()).await.unwrap();
        let mut mirrors = Vec::new();
        for _ in 0..MIRRORS {
            let mirror = Mirror::follow(
                Arc::new(StoreSource(Arc::new(connect().await))),
                Duration::from_secs(10),
                Duration::from_secs(3600),
                Arc::new(SystemClock),
            );
            assert!(mirror.ready(Duration::from_secs(5)).await, "mirror ready");
            mirrors.push(mirror);
        }
        (revoker, mirrors)
    });

    let now = SystemClock.now();
    let mut all = Vec::with_capacity(REVOCATIONS);
    let mut each = Vec::with_capacity(REVOCATIONS * MIRRORS);
    for i in 0..REVOCATIONS {
        let jti = format!("bench-{i}");
        let facts = TokenFacts {
            jti: &jti,
            sid: None,
            sub: "alice",
            client_id: "wiki",
            origin: None,
            act: None,
            iat: now,
            exp: Timestamp::from_secs(now.as_secs() + 600),
        };
        rt.block_on(revoker.revoke(Target::Jti(jti.clone()), now))
            .unwrap();
        let returned = Instant::now();
        let mut pending: Vec<&Mirror> = mirrors.iter().collect();
        while !pending.is_empty() {
            pending.retain(|m| {
                let refused = matches!(m.check(&facts), Ok(Verdict::Revoked(_)));
                if refused {
                    each.push(returned.elapsed());
                }
                !refused
            });
            assert!(
                returned.elapsed() < Duration::from_secs(5),
                "revocation {i} not seen by every mirror within 5 s"
            );
            std::thread::sleep(Duration::from_micros(50));
        }
        all.push(returned.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    delete_prefix(&url, &prefix);

    all.sort();
    each.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "revocation propagation, {REVOCATIONS} revocations, {MIRRORS} mirrors on Redis ({url})"
    );
    println!(
        "  every mirror refuses: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(*all.last().unwrap())
    );
    println!(
        "  one mirror refuses:   p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms(percentile(&each, 50.0)),
        ms(percentile(&each, 99.0)),
        ms(*each.last().unwrap())
    );
}
