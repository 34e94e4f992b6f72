//! Redis for tests: the shared test server (`LANYARD_TEST_REDIS_URL`), a private key prefix
//! per test, and `redis-server` processes a test starts and kills itself.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lanyard_store::testsuite::Harness;
use lanyard_store::{
    Clock, RedisConfig, RedisStore, StoreConfig, SystemClock, Timestamp, TokenStore,
};

const HOW: &str = "These tests need a Redis server. Install and start one \
    (`apt-get install redis-server && redis-server --daemonize yes`), or point \
    LANYARD_TEST_REDIS_URL at one (default redis://127.0.0.1:6379).";

/// The shared test Redis. Fails the test, saying how to get one, when none answers.
pub(crate) fn redis_url() -> String {
    let url = std::env::var("LANYARD_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let client = redis::Client::open(url.as_str())
        .unwrap_or_else(|e| panic!("LANYARD_TEST_REDIS_URL={url} is not a Redis URL ({e}). {HOW}"));
    let reachable = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    if let Err(e) = reachable {
        panic!("no Redis at {url}: {e}. {HOW}");
    }
    url
}

/// A key prefix no other test uses.
pub(crate) fn unique_prefix() -> String {
    format!("lanyard-test:{}:", lanyard_store::GrantId::generate())
}

/// Deletes every key under `prefix` (and only those).
pub(crate) fn delete_prefix(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query(&mut conn)
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(keys).query(&mut conn);
    }
}

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
    let mut redis = RedisConfig::new(url);
    redis.prefix = prefix.to_owned();
    let store = RedisStore::connect(config, redis)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}. {HOW}"));
    if init {
        store.reseed(Vec::new()).await.unwrap();
    }
    store
}

/// The conformance suite's harness: real Redis, real time, a private prefix.
pub(crate) struct RedisHarness {
    url: String,
    prefix: String,
    started: Mutex<bool>,
}

impl RedisHarness {
    pub(crate) async fn new() -> Self {
        Self {
            url: redis_url(),
            prefix: unique_prefix(),
            started: Mutex::new(false),
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
        Arc::new(store_at(&self.url, &self.prefix, config, first).await)
    }

    async fn advance(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn now(&self) -> Timestamp {
        SystemClock.now()
    }
}

/// A `redis-server` of the test's own: ephemeral port, private folder, every write fsynced
/// before it is acknowledged (`appendonly yes`, `appendfsync always`).
pub(crate) struct OwnRedis {
    pub(crate) port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl OwnRedis {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `redis-server` options, such as `["--maxmemory-policy", "allkeys-lru"]`.
    pub(crate) fn start_with(extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let dir = std::env::temp_dir().join(format!("lanyard-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        server.restart();
        server
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and folder, and waits until it answers.
    pub(crate) fn restart(&mut self) {
        let binary = std::env::var("LANYARD_TEST_REDIS_SERVER")
            .unwrap_or_else(|_| "redis-server".to_owned());
        let child = Command::new(&binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {binary} ({e}). Install it: `apt-get install redis-server`, or set LANYARD_TEST_REDIS_SERVER.")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = redis::Client::open(self.url()).unwrap();
        loop {
            let up = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if up.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{binary} did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: no shutdown, no final save.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
