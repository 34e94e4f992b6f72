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

/// Deletes every key under `prefix` (and only those) on the Redis at `url`, one key at a
/// time (a cluster node refuses a `DEL` of keys in different slots), best effort.
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
    for key in keys {
        let _: Result<i64, _> = redis::cmd("DEL").arg(key).query(&mut conn);
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
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!("lanyard-cluster-{}", std::process::id()));
        for port in &ports {
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            watched_redis(
                &format!(
                    "--port {port} --bind 127.0.0.1 --cluster-enabled yes \
                     --cluster-config-file nodes.conf --appendonly yes --appendfsync always --save ''"
                ),
                &node_dir,
            );
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

    /// Deletes every key under `prefix` on every node.
    pub fn delete_prefix(&self, prefix: &str) {
        for node in &self.nodes {
            delete_prefix(node.as_str(), prefix);
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

/// Starts `redis-server` with `args` in `dir`, under a watchdog that kills it, and removes
/// `dir`, when this test process ends (so no test leaves servers behind).
fn watched_redis(args: &str, dir: &std::path::Path) {
    let binary =
        std::env::var("LANYARD_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".to_owned());
    watched(&binary, args, dir);
}

/// Starts `binary args` in `dir`, killed when this test process ends.
fn watched(binary: &str, args: &str, dir: &std::path::Path) {
    let me = std::process::id();
    let script = format!(
        "cd {dir} && {binary} {args} >/dev/null 2>&1 & node=$!; \
         while kill -0 {me} 2>/dev/null && kill -0 $node 2>/dev/null; do sleep 1; done; \
         kill -9 $node 2>/dev/null; rm -rf {dir}",
        dir = dir.display()
    );
    let mut watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): apt-get install redis-server"));
    std::thread::spawn(move || watchdog.wait());
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Redis with Sentinel on loopback: a master, a replica, and one sentinel (quorum 1) that
/// monitors them as `lanyard` and fails over after a second without the master.
pub struct OwnSentinel {
    /// The sentinel's URL (what a Sentinel-mode `RedisConfig::url` takes).
    pub sentinel: String,
    /// The master's and the replica's URLs, as started.
    pub nodes: [String; 2],
    dir: PathBuf,
}

impl OwnSentinel {
    /// The process's shared setup, started on first use.
    pub fn shared() -> &'static OwnSentinel {
        static SENTINEL: std::sync::OnceLock<OwnSentinel> = std::sync::OnceLock::new();
        SENTINEL.get_or_init(Self::start)
    }

    /// A setup of the caller's own (one a test may fail over).
    pub fn start() -> Self {
        let (master, replica, sentinel) = (free_port(), free_port(), free_port());
        let dir = std::env::temp_dir().join(format!(
            "lanyard-sentinel-{}-{sentinel}",
            std::process::id()
        ));
        for port in [master, replica, sentinel] {
            std::fs::create_dir_all(dir.join(port.to_string())).unwrap();
        }
        let common = "--bind 127.0.0.1 --appendonly yes --appendfsync always --save ''";
        watched_redis(
            &format!("--port {master} {common}"),
            &dir.join(master.to_string()),
        );
        watched_redis(
            &format!("--port {replica} {common} --replicaof 127.0.0.1 {master}"),
            &dir.join(replica.to_string()),
        );
        let nodes = [master, replica].map(|p| format!("redis://127.0.0.1:{p}"));
        for node in &nodes {
            wait_for_ping(node);
        }
        let conf = dir.join(sentinel.to_string()).join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sentinel}\nbind 127.0.0.1\n\
                 sentinel monitor lanyard 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds lanyard 1000\n\
                 sentinel failover-timeout lanyard 3000\n"
            ),
        )
        .unwrap();
        // Debian's sentinel, as production runs it (the same code as `redis-server
        // --sentinel`, packaged apart).
        let installed = Command::new("redis-sentinel")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed,
            "the Sentinel tests run Debian's redis-sentinel: apt-get install redis-sentinel"
        );
        watched(
            "redis-sentinel",
            &conf.display().to_string(),
            &dir.join(sentinel.to_string()),
        );
        let url = format!("redis://127.0.0.1:{sentinel}");
        wait_for_ping(&url);
        let setup = Self {
            sentinel: url,
            nodes,
            dir,
        };
        // Ready when the sentinel knows the replica (it can fail over) and it is in sync.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let replicas: Vec<Vec<String>> = setup
                .ask(&["SENTINEL", "REPLICAS", "lanyard"])
                .unwrap_or_default();
            let synced = replicas.iter().any(|r| {
                r.windows(2)
                    .any(|w| w[0] == "master-link-status" && w[1] == "ok")
            });
            if synced {
                return setup;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel never saw the replica in sync"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn ask<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = redis::Client::open(self.sentinel.as_str())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    /// The master's port, as the sentinel says now.
    pub fn master_port(&self) -> u16 {
        let (_, port): (String, String) = self
            .ask(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "lanyard"])
            .unwrap();
        port.parse().unwrap()
    }

    /// Makes the sentinel promote the replica, and waits (up to 20 s) until it names it.
    /// Every write acknowledged so far is on the replica first (replication is asynchronous:
    /// a write lost in a real failover comes back from Lanyard's SQL record, not from Redis).
    pub fn fail_over(&self) {
        let before = self.master_port();
        let master = redis::Client::open(format!("redis://127.0.0.1:{before}")).unwrap();
        let mut conn = master
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        let synced: i64 = redis::cmd("WAIT")
            .arg(1)
            .arg(5000)
            .query(&mut conn)
            .unwrap();
        assert_eq!(synced, 1, "the replica did not catch up within 5 s");
        let _: String = self.ask(&["SENTINEL", "FAILOVER", "lanyard"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.master_port() == before {
            assert!(Instant::now() < deadline, "the failover never happened");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// [`OwnSentinel::fail_over`] off the async workers; checks that the master changed.
    pub async fn failed_over(self) -> Self {
        tokio::task::spawn_blocking(move || {
            let before = self.master_port();
            self.fail_over();
            assert_ne!(self.master_port(), before);
            self
        })
        .await
        .unwrap()
    }

    /// Deletes every key under `prefix` on the current master.
    pub fn delete_prefix(&self, prefix: &str) {
        delete_prefix(&format!("redis://127.0.0.1:{}", self.master_port()), prefix);
    }
}

impl Drop for OwnSentinel {
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Ok(client) = redis::Client::open(node.as_str())
                && let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(500))
            {
                let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut c);
            }
        }
        if let Ok(client) = redis::Client::open(self.sentinel.as_str())
            && let Ok(mut c) = client.get_connection_with_timeout(Duration::from_millis(500))
        {
            let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut c);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
