//! The conformance suite on `RedisStore` through Redis Sentinel (a master, a replica and a
//! sentinel on loopback, started once for this binary: `test_redis::OwnSentinel`), and a
//! failover: the store follows the new master by itself, and what it wrote before is there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use lanyard_store::test_redis::OwnSentinel;
use lanyard_store::{
    Clock, RedisConfig, RedisStore, RedisTopology, RevokedBy, StoreConfig, SystemClock, Target,
    TokenFacts, TokenStore, Verdict,
};
use support::DeploymentHarness;

async fn store_on(sentinel: &OwnSentinel, prefix: &str, config: StoreConfig) -> RedisStore {
    let mut redis = RedisConfig::new(sentinel.sentinel.clone());
    redis.topology = RedisTopology::Sentinel;
    redis.prefix = prefix.to_owned();
    RedisStore::connect(config, redis)
        .await
        .unwrap_or_else(|e| panic!("connecting through the sentinel: {e}"))
}

async fn harness() -> DeploymentHarness {
    let sentinel = tokio::task::spawn_blocking(OwnSentinel::shared)
        .await
        .unwrap();
    DeploymentHarness::new(
        sentinel.sentinel.clone(),
        RedisTopology::Sentinel,
        |prefix| OwnSentinel::shared().delete_prefix(prefix),
    )
}

lanyard_store::conformance_suite!(harness());

#[tokio::test]
async fn after_a_failover_the_store_follows_the_new_master() {
    let sentinel = tokio::task::spawn_blocking(OwnSentinel::start)
        .await
        .unwrap();
    let store = store_on(&sentinel, "failover:", StoreConfig::default()).await;
    store.reseed(Vec::new()).await.unwrap();
    let now = SystemClock.now();
    store
        .revoke(Target::Sub("alice".into()), now)
        .await
        .unwrap();
    let _sentinel = sentinel.failed_over().await;
    let facts = TokenFacts {
        jti: "j",
        sid: None,
        sub: "alice",
        client_id: "wiki",
        origin: None,
        act: None,
        iat: now.minus(Duration::from_secs(60)),
        exp: now.plus(Duration::from_secs(540)),
    };
    // A call or two may fail while the store reconnects (503); then it answers, from the
    // new master, with what was written before.
    let deadline = Instant::now() + Duration::from_secs(10);
    let verdict = loop {
        match store.check(&facts).await {
            Ok(v) => break v,
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(Instant::now() < deadline, "the store never followed: {e}");
                // The sentinels elect a new master in their own time: ask again shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(verdict, Verdict::Revoked(RevokedBy::Subject));
    // And it writes there.
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store
        .revoke(Target::Sub("bob".into()), SystemClock.now())
        .await
    {
        assert!(Instant::now() < deadline, "writes never resumed: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
