//! Redis for tests, shared by this crate's tests and the end-to-end tests: the shared test
//! server (`LANYARD_TEST_REDIS_URL`), a private key prefix per test, and `redis-server`
//! processes a test starts and kills itself. Behind the `testsuite` feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to do when a test finds no Redis.
pub const HOW: &str = "These tests need a Redis server. Install and start one \
    (`apt-get install redis-server && redis-server --daemonize yes`), or point \
    LANYARD_TEST_REDIS_URL at one (default redis://127.0.0.1:6379).";

/// The shared test Redis. Fails the test, saying how to get one, when none answers.
pub fn redis_url() -> String {
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
pub fn unique_prefix() -> String {
    format!("lanyard-test:{}:", crate::GrantId::generate())
}

/// Deletes every key under `prefix` (and only those).
pub fn delete_prefix(url: &str, prefix: &str) {
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

/// A `redis-server` of the test's own: ephemeral port, private folder, every write fsynced
/// before it is acknowledged (`appendonly yes`, `appendfsync always`).
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

impl OwnRedis {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `redis-server` options, such as `["--maxmemory-policy", "allkeys-lru"]`.
    pub fn start_with(extra: &[&str]) -> Self {
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

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on the same port and folder, and waits until it answers.
    pub fn restart(&mut self) {
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

    /// `kill -9`, then a start with nothing on disk: a Redis that lost everything.
    pub fn restart_empty(&mut self) {
        self.kill();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
        self.restart();
    }

    /// `kill -9`: no shutdown, no final save.
    pub fn kill(&mut self) {
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
