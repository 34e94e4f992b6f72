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

/// A Redis Cluster of three masters on loopback (no replicas), started once per test process
/// and shared by its tests (each under a prefix of its own). Each node runs under a watchdog
/// that kills it when the test process is gone, so no test leaves a cluster behind.
pub struct OwnCluster {
    /// The nodes' URLs.
    pub nodes: Vec<String>,
    _dir: PathBuf,
}

impl OwnCluster {
    /// The process's cluster, started on first use. Fails, saying how to get `redis-server`
    /// and `redis-cli`, when they are missing.
    pub fn shared() -> &'static OwnCluster {
        static CLUSTER: std::sync::OnceLock<OwnCluster> = std::sync::OnceLock::new();
        CLUSTER.get_or_init(Self::start)
    }

    /// The seed list a cluster-mode `RedisConfig::url` takes.
    pub fn url(&self) -> String {
        self.nodes.join(",")
    }

    fn start() -> Self {
        let binary = std::env::var("LANYARD_TEST_REDIS_SERVER")
            .unwrap_or_else(|_| "redis-server".to_owned());
        let ports: Vec<u16> = (0..3)
            .map(|_| {
                TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .unwrap()
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("lanyard-cluster-{}", std::process::id()));
        let me = std::process::id();
        for port in &ports {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            // The watchdog: the node lives as long as this test process.
            let script = format!(
                "{binary} --port {port} --bind 127.0.0.1 --cluster-enabled yes \
                 --cluster-config-file nodes.conf --dir {dir} --appendonly yes \
                 --appendfsync always --save '' --daemonize no >/dev/null 2>&1 & node=$!; \
                 while kill -0 {me} 2>/dev/null && kill -0 $node 2>/dev/null; do sleep 1; done; \
                 kill -9 $node 2>/dev/null; rm -rf {dir}; rmdir {parent} 2>/dev/null",
                dir = node_dir.display(),
                parent = dir.display()
            );
            let mut watchdog = Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {binary} ({e}): apt-get install redis-server")
                });
            // Reaped when it ends (with this process, or with its node).
            std::thread::spawn(move || watchdog.wait());
        }
        let nodes: Vec<String> = ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect();
        for node in &nodes {
            wait_for_ping(node);
        }
        let addresses: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run redis-cli ({e}): apt-get install redis-tools"));
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        for node in &nodes {
            let client = redis::Client::open(node.as_str()).unwrap();
            loop {
                let info: String = client
                    .get_connection_with_timeout(Duration::from_millis(500))
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query(&mut c))
                    .unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster never became ok: {info}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Self { nodes, _dir: dir }
    }

    /// Deletes every key under `prefix` on every node (one key at a time: keys of different
    /// slots cannot go in one `DEL`).
    pub fn delete_prefix(&self, prefix: &str) {
        for node in &self.nodes {
            let Ok(client) = redis::Client::open(node.as_str()) else {
                continue;
            };
            let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
                continue;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut conn)
                .unwrap_or_default();
            for key in keys {
                let _: Result<i64, _> = redis::cmd("DEL").arg(key).query(&mut conn);
            }
        }
    }
}

fn wait_for_ping(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let up = client
            .get_connection_with_timeout(Duration::from_millis(200))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        if up.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not start at {url}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
