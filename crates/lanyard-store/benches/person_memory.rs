//! Memory per live person in Redis: one SSO session (signed in to one app) and one
//! session-bound refresh family with its live access token, as a sign-in through
//! `/authorize` and a code exchange leave them.
//!
//! `cargo bench -p lanyard-store --bench person_memory` (1,000,000 people; a first argument
//! or `LANYARD_BENCH_PEOPLE` changes it). It starts a `redis-server` of its own on a free
//! port, with nothing else in it and nothing kept on disk, so that `used_memory` counts
//! only what Lanyard wrote; Redis must be installed (`apt-get install redis-server`).
//! `LANYARD_BENCH_REDIS_ARGS` adds settings to that server's command line.
//! Figures are recorded in `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use lanyard_store::{
    AccessTokenRef, Clock, FamilyId, GrantId, NewFamily, NewSession, RedisConfig, RedisStore,
    StoreConfig, SystemClock, TokenStore,
};

/// People written at once (each is a handful of round trips).
const IN_FLIGHT: usize = 256;

struct Redis {
    child: Child,
    url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_redis() -> Redis {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--maxmemory", "0"])
        // Settings to try (`LANYARD_BENCH_REDIS_ARGS="--hash-max-listpack-value 1024"`).
        .args(
            std::env::var("LANYARD_BENCH_REDIS_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this benchmark starts a redis-server of its own: {e} (apt-get install redis-server)")
        });
    let url = format!("redis://127.0.0.1:{port}");
    // Killed and waited for when dropped, also if it never answers.
    let redis = Redis { child, url };
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    for _ in 0..100 {
        if client.get_connection().is_ok() {
            return redis;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server on port {port} did not come up");
}

/// `used_memory` and `used_memory_dataset` from `INFO memory`, in bytes.
fn used_memory(url: &str) -> (u64, u64) {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut conn).unwrap();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO memory has no {name}"))
    };
    (field("used_memory"), field("used_memory_dataset"))
}

/// What a key is, without its ids: `{s:…}:sess`, `{u:…}:fams`, `{s:…}:fam:…:ats`.
fn kind_of(key: &str) -> String {
    let Some((tag, rest)) = key.split_once('{').and_then(|(_, r)| r.split_once('}')) else {
        return key.to_owned();
    };
    let owner = tag.split(':').next().unwrap_or_default();
    let rest = match rest.strip_prefix(":fam:") {
        Some(family) => match family.split_once(':') {
            Some((_, suffix)) => format!(":fam:…:{suffix}"),
            None => ":fam:…".to_owned(),
        },
        None => rest.to_owned(),
    };
    format!("{{{owner}:…}}{rest}")
}

/// `MEMORY USAGE` of up to `sample` keys, by kind: (kind, keys seen, bytes).
fn by_kind(url: &str, sample: usize) -> Vec<(String, u64, u64)> {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut kinds: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut cursor = 0u64;
    let mut seen = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
            .unwrap();
        for key in keys {
            let bytes: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query(&mut conn)
                .unwrap();
            let entry = kinds.entry(kind_of(&key)).or_default();
            entry.0 += 1;
            entry.1 += bytes.unwrap_or(0);
            seen += 1;
        }
        cursor = next;
        if cursor == 0 || seen >= sample {
            break;
        }
    }
    kinds.into_iter().map(|(k, (n, b))| (k, n, b)).collect()
}

fn key_count(url: &str) -> u64 {
    let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    redis::cmd("DBSIZE").query(&mut conn).unwrap()
}

/// One person: signs in (a session), opens one app (the session records it), and the app's
/// code exchange starts a refresh family bound to the session, with its access token.
async fn sign_in(store: &RedisStore, i: usize) {
    let now = SystemClock.now();
    let sub = format!("{:08x}-5f1c-4e0b-9a31-{:012x}", i, i * 7919);
    let session = store
        .create_session(NewSession {
            sub: sub.clone(),
            auth_time: now,
            amr: vec!["pwd".into()],
            remember_me: false,
            idle_timeout: Duration::from_secs(1800),
            absolute_lifetime: Duration::from_secs(36_000),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36"
                    .into(),
            ),
            ip: Some(format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255)),
        })
        .await
        .unwrap();
    store
        .touch_session(session.sid.as_str(), Some("wiki"))
        .await
        .unwrap()
        .unwrap();
    let issued = store
        .issue_refresh(NewFamily {
            id: FamilyId::generate(Some(&session.sid)),
            grant_id: GrantId::generate(),
            client_id: "wiki".into(),
            sub,
            scope: vec!["openid".into(), "profile".into(), "offline_access".into()],
            lifetime: Duration::from_secs(36_000),
            // What the authorization-code grant stores (`RefreshPayload`).
            payload: serde_json::json!({
                "auth_time": now.as_secs(),
                "amr": ["pwd"],
                "sid": session.sid.as_str(),
                "jkt": null,
            }),
            access_token: Some(AccessTokenRef {
                jti: GrantId::generate().as_str().to_owned(),
                expires_at: now.plus(Duration::from_secs(3600)),
            }),
        })
        .await
        .unwrap();
    assert!(issued.is_some(), "the family of person {i} was refused");
}

fn main() {
    let people: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("LANYARD_BENCH_PEOPLE").ok())
        .map(|n| n.parse().expect("the number of people"))
        .unwrap_or(1_000_000);
    let redis = start_redis();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(async {
        RedisStore::connect(StoreConfig::default(), RedisConfig::new(&redis.url))
            .await
            .unwrap()
    });
    let (before, before_data) = used_memory(&redis.url);
    let keys_before = key_count(&redis.url);
    let started = Instant::now();
    runtime.block_on(async {
        stream::iter(0..people)
            .for_each_concurrent(IN_FLIGHT, |i| sign_in(&store, i))
            .await;
    });
    let took = started.elapsed();
    let (after, after_data) = used_memory(&redis.url);
    let keys = key_count(&redis.url) - keys_before;
    let n = people as f64;
    println!("people: {people} (one session signed in to one app + one refresh family each)");
    println!("written in {:.1} s", took.as_secs_f64());
    println!("keys: {keys} ({:.2} per person)", keys as f64 / n);
    println!(
        "used_memory: +{:.1} MiB, {:.0} bytes per person",
        (after - before) as f64 / 1_048_576.0,
        (after - before) as f64 / n
    );
    println!(
        "used_memory_dataset: +{:.1} MiB, {:.0} bytes per person",
        after_data.saturating_sub(before_data) as f64 / 1_048_576.0,
        after_data.saturating_sub(before_data) as f64 / n
    );
    // Where it goes: each kind of key's average size (MEMORY USAGE: the value, the key and
    // its entry), over a sample of the keys.
    let sample = by_kind(&redis.url, 20_000);
    let sampled: u64 = sample.iter().map(|(_, count, _)| count).sum();
    println!("by kind of key (MEMORY USAGE over {sampled} keys sampled):");
    for (kind, count, bytes) in sample {
        println!(
            "  {kind:<28} {:>5.0} bytes each, {:.2} per person",
            bytes as f64 / count.max(1) as f64,
            count as f64 * keys as f64 / sampled.max(1) as f64 / n
        );
    }
}
