//! Redis for tests: the shared test server (`LANYARD_TEST_REDIS_URL`), a private key prefix
//! per test, and `redis-server` processes a test starts and kills itself.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
pub(crate) use lanyard_store::test_redis::{
    HOW, OwnRedis, delete_prefix, redis_url, unique_prefix,
};
use lanyard_store::testsuite::Harness;
use lanyard_store::{
    Clock, ManualClock, RedisConfig, RedisStore, StoreConfig, SystemClock, Timestamp, TokenStore,
};

/// Every key under `prefix` and a textual dump of its value.
pub(crate) fn dump_prefix(url: &str, prefix: &str) -> Vec<(String, String)> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_connection().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap();
    keys.into_iter()
        .map(|key| {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut conn).unwrap();
            let value: redis::Value = match kind.as_str() {
                "string" => redis::cmd("GET").arg(&key).query(&mut conn),
                "hash" => redis::cmd("HGETALL").arg(&key).query(&mut conn),
                "set" => redis::cmd("SMEMBERS").arg(&key).query(&mut conn),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(&mut conn),
                "list" => redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query(&mut conn),
                "stream" => redis::cmd("XRANGE")
                    .arg(&key)
                    .arg("-")
                    .arg("+")
                    .query(&mut conn),
                _ => Ok(redis::Value::Nil),
            }
            .unwrap();
            (key, format!("{value:?}"))
        })
        .collect()
}

/// A store on `url` under `prefix`, with its revocation lists initialised when `init`.
pub(crate) async fn store_at(
    url: &str,
    prefix: &str,
    config: StoreConfig,
    init: bool,
) -> RedisStore {
    store_on_clock(url, prefix, config, init, Arc::new(SystemClock)).await
}

/// [`store_at`], deciding deadlines on `clock`.
pub(crate) async fn store_on_clock(
    url: &str,
    prefix: &str,
    config: StoreConfig,
    init: bool,
    clock: Arc<dyn Clock>,
) -> RedisStore {
    let mut redis = RedisConfig::new(url);
    redis.prefix = prefix.to_owned();
    let store = RedisStore::connect_with_clock(config, redis, clock)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}. {HOW}"));
    if init {
        store.reseed(Vec::new()).await.unwrap();
    }
    store
}

/// The conformance suite's harness: real Redis, a private prefix, and the store's time on a
/// clock the suite moves.
pub(crate) struct RedisHarness {
    url: String,
    prefix: String,
    started: Mutex<bool>,
    clock: ManualClock,
}

impl RedisHarness {
    pub(crate) async fn new() -> Self {
        Self {
            url: redis_url(),
            prefix: unique_prefix(),
            started: Mutex::new(false),
            clock: ManualClock::new(SystemClock.now()),
        }
    }
}

impl Drop for RedisHarness {
    fn drop(&mut self) {
        delete_prefix(&self.url, &self.prefix);
    }
}

#[async_trait]
impl Harness for RedisHarness {
    async fn store(&self, config: StoreConfig) -> Arc<dyn TokenStore> {
        let first = {
            let mut started = self.started.lock().unwrap();
            !std::mem::replace(&mut *started, true)
        };
        let clock = Arc::new(self.clock.clone());
        Arc::new(store_on_clock(&self.url, &self.prefix, config, first, clock).await)
    }

    async fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    async fn expire(&self, d: Duration) {
        self.clock.advance(d);
        // Redis drops the key when its TTL ends, on its own clock: real time must pass.
        tokio::time::sleep(d).await;
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

/// The conformance suite's harness on a Redis deployment of another topology (a cluster, or
/// Redis behind a sentinel) that the test binary shares: a private prefix, removed by
/// `cleanup` afterwards, and the stores' time on a clock the suite moves.
pub(crate) struct DeploymentHarness {
    url: String,
    topology: lanyard_store::RedisTopology,
    prefix: String,
    started: Mutex<bool>,
    cleanup: Box<dyn Fn(&str) + Send + Sync>,
    clock: ManualClock,
}

impl DeploymentHarness {
    pub(crate) fn new(
        url: String,
        topology: lanyard_store::RedisTopology,
        cleanup: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self {
            url,
            topology,
            prefix: unique_prefix(),
            started: Mutex::new(false),
            cleanup: Box::new(cleanup),
            clock: ManualClock::new(SystemClock.now()),
        }
    }
}

impl Drop for DeploymentHarness {
    fn drop(&mut self) {
        (self.cleanup)(&self.prefix);
    }
}

#[async_trait]
impl Harness for DeploymentHarness {
    async fn store(&self, config: StoreConfig) -> Arc<dyn TokenStore> {
        let first = {
            let mut started = self.started.lock().unwrap();
            !std::mem::replace(&mut *started, true)
        };
        let mut redis = RedisConfig::new(self.url.clone());
        redis.topology = self.topology;
        redis.prefix = self.prefix.clone();
        let store = RedisStore::connect_with_clock(config, redis, Arc::new(self.clock.clone()))
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url));
        if first {
            store.reseed(Vec::new()).await.unwrap();
        }
        Arc::new(store)
    }

    async fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    async fn expire(&self, d: Duration) {
        self.clock.advance(d);
        // Redis drops the key when its TTL ends, on its own clock: real time must pass.
        tokio::time::sleep(d).await;
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
