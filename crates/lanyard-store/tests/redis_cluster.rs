//! The conformance suite on `RedisStore` over a Redis Cluster: three local masters, started
//! once for this test binary (`test_redis::OwnCluster`). Every script and pipeline must keep
//! its keys in one hash slot; the cluster refuses anything else (`CROSSSLOT`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lanyard_store::test_redis::{OwnCluster, unique_prefix};
use lanyard_store::testsuite::Harness;
use lanyard_store::{
    Clock, RedisConfig, RedisStore, RedisTopology, StoreConfig, SystemClock, Timestamp, TokenStore,
};

struct ClusterHarness {
    cluster: &'static OwnCluster,
    prefix: String,
    started: Mutex<bool>,
}

impl ClusterHarness {
    async fn new() -> Self {
        Self {
            cluster: tokio::task::spawn_blocking(OwnCluster::shared)
                .await
                .unwrap(),
            prefix: unique_prefix(),
            started: Mutex::new(false),
        }
    }
}

impl Drop for ClusterHarness {
    fn drop(&mut self) {
        self.cluster.delete_prefix(&self.prefix);
    }
}

#[async_trait]
impl Harness for ClusterHarness {
    async fn store(&self, config: StoreConfig) -> Arc<dyn TokenStore> {
        let first = {
            let mut started = self.started.lock().unwrap();
            !std::mem::replace(&mut *started, true)
        };
        let mut redis = RedisConfig::new(self.cluster.url());
        redis.topology = RedisTopology::Cluster;
        redis.prefix = self.prefix.clone();
        let store = RedisStore::connect(config, redis)
            .await
            .unwrap_or_else(|e| panic!("connecting to the cluster: {e}"));
        if first {
            store.reseed(Vec::new()).await.unwrap();
        }
        Arc::new(store)
    }

    async fn advance(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}

lanyard_store::conformance_suite!(ClusterHarness::new());
