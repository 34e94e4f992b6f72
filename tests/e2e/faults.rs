//! Faults survived, under bounded load (issue 8 §4; SECURITY.md §5.3 F1/F2): Redis killed
//! (`kill -9`) while clients refresh, call UserInfo, revoke, and call an app's API, then
//! restarted. While it is down every answer that needs the store is a 503 (nothing is a
//! 500, no valid refresh token is refused, no revocation claims success) and a revoked
//! token is never accepted; after it is back, Lanyard serves again by itself (no restart of
//! its own) within 10 s, and the revoked tokens stay refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lanyard_store::test_redis::OwnRedis;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::revoke::{field, userinfo};
use crate::support::{
    Browser, ClientSpec, TestServer, client_post, code_flow, redis_store_at, refresh,
};

const PASSWORD: &str = "correct horse battery staple";

/// What the clients saw, by phase.
#[derive(Debug, Default)]
struct Seen {
    /// What was asked and answered while Redis was down.
    down: Vec<(Ask, StatusCode)>,
    /// Statuses answered after Redis was back, with when.
    back: Vec<(Instant, StatusCode)>,
    /// The revoked token was accepted, by Lanyard or the app (never allowed).
    revoked_accepted: u32,
    /// Any 5xx other than 503.
    other_5xx: Vec<StatusCode>,
}

/// The requests of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// A valid refresh token at the token endpoint.
    Refresh,
    /// The revoked access token at UserInfo.
    Userinfo,
    /// A token at the revocation endpoint.
    Revoke,
    /// The app's revoked access token at the app's API (the guard).
    Guard,
}

impl Ask {
    /// What may be answered while the store is down: only 503 where the answer needs the
    /// store; a refusal where the answer is known without it (the guard's mirror holds the
    /// revocation while it is within its staleness bound).
    fn allowed_while_down(self) -> &'static [StatusCode] {
        match self {
            Ask::Refresh | Ask::Revoke => &[StatusCode::SERVICE_UNAVAILABLE],
            Ask::Userinfo | Ask::Guard => {
                &[StatusCode::SERVICE_UNAVAILABLE, StatusCode::UNAUTHORIZED]
            }
        }
    }
}

#[tokio::test]
async fn redis_killed_under_load_is_503_then_recovers_and_never_unrevokes() {
    let mut own = OwnRedis::start();
    let server =
        Arc::new(TestServer::start_on_store(redis_store_at(&own.url(), "e2e:").await).await);
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    // An app whose guard follows the same Redis, as a separate process would, with a 1 s
    // staleness bound: within it the guard answers from its mirror, past it 503.
    let mut app_redis = lanyard_store::RedisConfig::new(own.url());
    app_redis.prefix = "e2e:".to_owned();
    let app_source: Arc<dyn lanyard_store::TokenStore> = Arc::new(
        lanyard_store::RedisStore::connect(lanyard_store::StoreConfig::default(), app_redis)
            .await
            .unwrap(),
    );
    let api = crate::apps::start_app(&server, "api", app_source, Duration::from_secs(1)).await;
    // Revoked access tokens (one for Lanyard's UserInfo, one for the app), and four clients
    // each with a refresh token of their own.
    let revoked = code_flow(&server, &Browser::new(), &wiki, "openid", "alice", PASSWORD).await;
    let revoked = field(&revoked, "access_token").to_owned();
    let r = client_post(&server, "/revoke", &wiki, &[("token", &revoked)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let at_api = code_flow(
        &server,
        &Browser::new(),
        &api.client,
        "openid",
        "alice",
        PASSWORD,
    )
    .await;
    let at_api = field(&at_api, "access_token").to_owned();
    let r = client_post(&server, "/revoke", &api.client, &[("token", &at_api)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    crate::apps::refused_within_a_second(&api.base, &at_api, Instant::now()).await;
    let mut refresh_tokens = Vec::new();
    for _ in 0..4 {
        let t = code_flow(
            &server,
            &Browser::new(),
            &wiki,
            "openid offline_access",
            "alice",
            PASSWORD,
        )
        .await;
        refresh_tokens.push(field(&t, "refresh_token").to_owned());
    }

    let seen = Arc::new(Mutex::new(Seen::default()));
    let is_down = Arc::new(AtomicBool::new(false));
    let came_back: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let record = |ask: Ask,
                  status: StatusCode,
                  seen: &Arc<Mutex<Seen>>,
                  down: bool,
                  back: Option<Instant>| {
        let seen = seen.clone();
        async move {
            let mut s = seen.lock().await;
            if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                s.other_5xx.push(status);
            }
            if matches!(ask, Ask::Userinfo | Ask::Guard) && status == StatusCode::OK {
                s.revoked_accepted += 1;
            }
            if down {
                s.down.push((ask, status));
            } else if back.is_some() {
                s.back.push((Instant::now(), status));
            }
        }
    };
    let mut workers = Vec::new();
    // Each worker asks one thing in a loop: four refreshers, then UserInfo, the revocation
    // endpoint and the app's guard with revoked tokens.
    let asks = refresh_tokens
        .into_iter()
        .map(|t| (Ask::Refresh, t))
        .chain([
            (Ask::Userinfo, revoked.clone()),
            (Ask::Revoke, revoked.clone()),
            (Ask::Guard, at_api.clone()),
        ]);
    for (ask, token) in asks {
        let (server, wiki, seen, is_down, came_back, stop) = (
            server.clone(),
            wiki.clone(),
            seen.clone(),
            is_down.clone(),
            came_back.clone(),
            stop.clone(),
        );
        let api_base = api.base.clone();
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut token = token;
            while !stop.load(Ordering::SeqCst) {
                let down = is_down.load(Ordering::SeqCst);
                let status = match ask {
                    Ask::Refresh => {
                        let r = refresh(&server, &wiki, &token, None).await;
                        let status = r.status();
                        if status == StatusCode::OK {
                            let body: Value = r.json().await.unwrap();
                            token = field(&body, "refresh_token").to_owned();
                        }
                        status
                    }
                    Ask::Userinfo => userinfo(&server, &token).await.status(),
                    Ask::Revoke => client_post(&server, "/revoke", &wiki, &[("token", &token)])
                        .await
                        .status(),
                    Ask::Guard => {
                        let r = http.get(format!("{api_base}/api/me")).bearer_auth(&token);
                        r.send().await.unwrap().status()
                    }
                };
                let back = *came_back.lock().await;
                // Down for the whole request: asked after the kill, answered before the
                // restart (one that straddles the restart may rightly succeed).
                let down = down && is_down.load(Ordering::SeqCst);
                record(ask, status, &seen, down, back).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let store_errors = crate::operations::metric_sum(&server, "lanyard_store_errors_total").await;
    own.kill();
    is_down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    is_down.store(false, Ordering::SeqCst);
    own.restart();
    let back = Instant::now();
    *came_back.lock().await = Some(back);
    // Serve until every client has had a success after the restart, at most 10 s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }

    let seen = seen.lock().await;
    assert!(seen.other_5xx.is_empty(), "only 503s: {:?}", seen.other_5xx);
    assert_eq!(seen.revoked_accepted, 0, "a revoked token was accepted");
    // While Redis was down: each kind of request was asked, and answered only as allowed
    // (a valid refresh token is never refused as invalid, a revocation never "done").
    for ask in [Ask::Refresh, Ask::Userinfo, Ask::Revoke, Ask::Guard] {
        let answers: Vec<StatusCode> = seen
            .down
            .iter()
            .filter(|(a, _)| *a == ask)
            .map(|(_, s)| *s)
            .collect();
        assert!(!answers.is_empty(), "{ask:?} was asked during the outage");
        let wrong: Vec<&StatusCode> = answers
            .iter()
            .filter(|s| !ask.allowed_while_down().contains(s))
            .collect();
        assert!(wrong.is_empty(), "{ask:?} during the outage: {wrong:?}");
    }
    assert!(
        seen.down
            .iter()
            .any(|(a, s)| *a == Ask::Refresh && *s == StatusCode::SERVICE_UNAVAILABLE),
        "the outage was answered 503: {:?}",
        seen.down
    );
    // Recovery: the last error after the restart came within 10 s, and successes followed.
    let last_error = seen
        .back
        .iter()
        .filter(|(_, s)| s.is_server_error())
        .map(|(t, _)| t.duration_since(back))
        .max()
        .unwrap_or_default();
    assert!(
        last_error < Duration::from_secs(10),
        "errors went on {last_error:?} after the restart"
    );
    let recovered = seen
        .back
        .iter()
        .filter(|(_, s)| *s == StatusCode::OK)
        .count();
    assert!(recovered > 0, "refreshes succeed again: {:?}", seen.back);
    drop(seen);
    assert!(
        crate::operations::metric_sum(&server, "lanyard_store_errors_total").await > store_errors,
        "the outage shows in the store-error metric"
    );
    // And the revocations made before the crash hold (AOF, and the record in SQL), at
    // Lanyard and at the app once its mirror is fresh again.
    assert_eq!(
        userinfo(&server, &revoked).await.status(),
        StatusCode::UNAUTHORIZED
    );
    crate::apps::refused_within_a_second(&api.base, &at_api, Instant::now()).await;
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}

/// SECURITY.md §5.3 F10: a node whose clock runs ahead signs tokens dated in the future. At
/// +45 s the apps accept them (within their 60 s leeway); at +90 s they refuse them
/// (`iat` in the future), and the node's `/readyz` has taken it out of service.
#[tokio::test]
async fn a_node_whose_clock_runs_ahead_signs_tokens_the_apps_refuse() {
    use lanyard_store::{Clock, ManualClock, SystemClock};
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    // The app runs on the real clock, following the node's store in this process.
    let wiki = crate::apps::start_app_at(
        &server,
        "wiki",
        Arc::new(lanyard_rp::StoreSource(server.store())),
        Duration::from_secs(10),
        Arc::new(SystemClock),
    )
    .await;
    let mut answers = Vec::new();
    for ahead in [45, 90] {
        clock.set(SystemClock.now().plus(Duration::from_secs(ahead)));
        let tokens = code_flow(
            &server,
            &Browser::new(),
            &wiki.client,
            "openid",
            "alice",
            PASSWORD,
        )
        .await;
        let r = reqwest::Client::new()
            .get(format!("{}/api/me", wiki.base))
            .bearer_auth(field(&tokens, "access_token"))
            .send()
            .await
            .unwrap();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        answers.push((ahead, r.status(), challenge));
    }
    assert_eq!(answers[0].1, StatusCode::OK, "{answers:?}");
    assert_eq!(answers[1].1, StatusCode::UNAUTHORIZED, "{answers:?}");
    let challenge = answers[1].2.clone().unwrap_or_default();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    server.stop().await;
}

/// A TCP proxy that can stop passing bytes without closing anything, as a network that drops
/// packets does (TCP retransmits, so what was held is delivered, in order, once it heals).
struct Partition {
    addr: std::net::SocketAddr,
    paused: tokio::sync::watch::Sender<bool>,
}

impl Partition {
    async fn in_front_of(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (paused, _) = tokio::sync::watch::channel(false);
        let gate = paused.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(Self::pipe(cr, sw, gate.subscribe()));
                tokio::spawn(Self::pipe(sr, cw, gate.subscribe()));
            }
        });
        Self { addr, paused }
    }

    async fn pipe(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut paused: tokio::sync::watch::Receiver<bool>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let Ok(n) = from.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            // Held, not lost, while the network is down.
            if paused.wait_for(|p| !*p).await.is_err() {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    fn cut(&self) {
        self.paused.send_replace(true);
    }

    fn heal(&self) {
        self.paused.send_replace(false);
    }
}

/// SECURITY.md §5.3 F3: Redis unreachable without a connection reset (packets dropped, no
/// RST). No request hangs beyond its timeout; a revoked token is never accepted and a valid
/// one is a 503 (fail closed); `/readyz` says so; after the network heals, all is well.
#[tokio::test]
async fn redis_behind_a_silent_partition_fails_closed_within_the_timeout() {
    let own = OwnRedis::start();
    let partition = Partition::in_front_of(format!("127.0.0.1:{}", own.port)).await;
    let server = TestServer::start_on_store(redis_store_at(&partition.url(), "e2e:").await).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let valid = code_flow(&server, &Browser::new(), &wiki, "openid", "alice", PASSWORD).await;
    let revoked = code_flow(&server, &Browser::new(), &wiki, "openid", "alice", PASSWORD).await;
    let (valid, revoked) = (
        field(&valid, "access_token").to_owned(),
        field(&revoked, "access_token").to_owned(),
    );
    let r = client_post(&server, "/revoke", &wiki, &[("token", &revoked)]).await;
    assert_eq!(r.status(), StatusCode::OK);

    partition.cut();
    for (token, what) in [(&revoked, "revoked"), (&valid, "valid")] {
        let started = Instant::now();
        let status = userinfo(&server, token).await.status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what} token");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what}: hung {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(5));

    partition.heal();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (v, r) = (
            userinfo(&server, &valid).await.status(),
            userinfo(&server, &revoked).await.status(),
        );
        assert_ne!(
            r,
            StatusCode::OK,
            "the revoked token was accepted after the partition"
        );
        if v == StatusCode::OK && r == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: valid {v}, revoked {r}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop().await;
}

/// A PostgreSQL server of the test's own (initdb in a temporary folder, a free port), so it
/// can be crashed and restarted without disturbing the other tests. Runs as the `postgres`
/// user when the tests run as root (PostgreSQL refuses root).
struct OwnPostgres {
    dir: std::path::PathBuf,
    port: u16,
    bin: std::path::PathBuf,
}

impl OwnPostgres {
    /// Runs a PostgreSQL program to completion. Its output goes to a log file, never to a
    /// pipe: a server started by `pg_ctl` would hold the pipe open forever.
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let exe = self.bin.join(program);
        let as_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let mut cmd = if as_root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): apt-get install postgresql",
                    exe.display()
                )
            })
            .success()
    }

    fn start() -> Self {
        let versions = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap_or_else(|e| panic!("no PostgreSQL binaries ({e}): apt-get install postgresql"));
        let mut versions: Vec<_> = versions.flatten().map(|e| e.path()).collect();
        versions.sort();
        let bin = versions.last().expect("a PostgreSQL version").join("bin");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("lanyard-pg-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::process::Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status();
        let pg = Self { dir, port, bin };
        let data = pg.dir.join("data");
        assert!(
            pg.run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres"
                ]
            ),
            "initdb failed"
        );
        pg.up();
        pg
    }

    fn up(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let started = self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "20",
                "start",
            ],
        );
        assert!(started, "pg_ctl start failed (see {})", log.display());
    }

    /// `pg_ctl stop -m immediate`: no clean shutdown, as a crash.
    fn crash(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// [`OwnPostgres::crash`], off the async workers.
    async fn crashed(self) -> Self {
        tokio::task::spawn_blocking(move || {
            self.crash();
            self
        })
        .await
        .unwrap()
    }

    /// [`OwnPostgres::up`], off the async workers.
    async fn restarted(self) -> Self {
        tokio::task::spawn_blocking(move || {
            self.up();
            self
        })
        .await
        .unwrap()
    }
}

/// A server whose database is a PostgreSQL of the test's own, with the in-process store.
async fn on_own_postgres() -> (OwnPostgres, TestServer) {
    let pg = tokio::task::spawn_blocking(OwnPostgres::start)
        .await
        .unwrap();
    let url = pg.url();
    let server = TestServer::start_with(
        crate::support::Db::Sqlite,
        crate::support::Store::Memory,
        move |c| c.database_url = url,
    )
    .await;
    (pg, server)
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The audit trail outlives a database outage longer than any fixed number of retries
/// would: an event recorded while PostgreSQL is down for 20 s is stored once it is back.
#[tokio::test]
async fn audit_events_wait_out_a_long_database_outage() {
    let (pg, server) = on_own_postgres().await;
    let pg = pg.crashed().await;
    let event = lanyard_core::model::AuditEvent::new(
        lanyard_store::Clock::now(&lanyard_store::SystemClock),
        "anonymous",
        "test.outage",
    );
    server.state.audit.record(event.clone()).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let pg = pg.restarted().await;
    tokio::time::timeout(Duration::from_secs(30), server.state.audit.flush())
        .await
        .expect("the queued event is stored within 30 s of the database's return");
    let stored = server
        .state
        .db
        .audit()
        .by_action("test.outage")
        .await
        .unwrap();
    assert_eq!(stored, [event]);
    server.stop().await;
    drop(pg);
}

/// `n` codes for `username` at `client`: one sign-in, then single sign-on.
async fn signed_in_codes(
    server: &TestServer,
    client: &crate::support::TestClient,
    username: &str,
    n: usize,
) -> Vec<String> {
    let browser = Browser::new();
    let mut codes = vec![
        crate::support::authorize_with_sign_in(server, &browser, client, &[], username, PASSWORD)
            .await,
    ];
    while codes.len() < n {
        let answer = browser
            .get(&crate::support::authorize_url(server, client, &[]))
            .await;
        codes.push(crate::support::redirect_params(&answer).1["code"].clone());
    }
    codes
}

/// SECURITY.md §5.3 F5: PostgreSQL crashes and restarts while codes and refresh tokens are
/// being redeemed. Meanwhile `/readyz` names the database and the token endpoint answers 503
/// (never 500) within its timeouts; afterwards the pool reconnects with no restart of
/// Lanyard; and no code or refresh token is both consumed and lost: one whose exchange got a
/// 503 is redeemed when the client retries.
#[tokio::test]
async fn postgres_restarted_under_load_loses_no_code() {
    let (pg, server) = on_own_postgres().await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let mut codes = signed_in_codes(&server, &wiki, "alice", 20).await;
    // Refresh tokens too: one refused with 503 must still work when retried after the
    // outage, however long it lasted (longer than the store's 2 s retry grace here).
    let mut refresh_tokens = Vec::new();
    for _ in 0..3 {
        let body = crate::support::offline_tokens(&server, &wiki, "alice").await;
        refresh_tokens.push(field(&body, "refresh_token").to_owned());
    }
    // A load of Bob's code exchanges runs across the crash, so that some are in flight at
    // the instant PostgreSQL dies. (Bob, not Alice: his row is kept for a second after each
    // read, and Alice's must not be.)
    server.user("bob", PASSWORD).await;
    let load_codes = signed_in_codes(&server, &wiki, "bob", 100).await;
    let exchange = |code: String| {
        let (server, wiki) = (&server, &wiki);
        async move {
            let started = Instant::now();
            let status = crate::support::token_request(
                server,
                wiki,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &wiki.redirect_uri),
                ],
            )
            .await
            .status();
            (status, started.elapsed())
        }
    };
    // Past the copies a node keeps of user rows for a second; then the client's row is
    // read again (as a busy client's always is, and the load keeps it so), so that Alice's
    // exchanges and refreshes during the outage get past client authentication and reach
    // the code or token and her row: the step that must not spend them.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = client_post(&server, "/introspect", &wiki, &[("token", "warm-up")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let db_errors = crate::operations::metric_sum(&server, "lanyard_db_errors_total").await;
    let queue = std::sync::Mutex::new(load_codes);
    let load_seen = std::sync::Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let worker = || async {
        while !stop.load(Ordering::SeqCst) {
            let Some(code) = queue.lock().unwrap().pop() else {
                break;
            };
            let (status, _) = exchange(code.clone()).await;
            load_seen.lock().unwrap().push((code, status));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let crash_and_probe = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let crashed_at = Instant::now();
        let pg = pg.crashed().await;
        let probes_sent = crashed_at.elapsed();
        let (exchanged, refreshed) = tokio::join!(
            futures_util::future::join_all(codes[..5].iter().map(|c| exchange(c.clone()))),
            futures_util::future::join_all(
                refresh_tokens
                    .iter()
                    .map(|t| async { refresh(&server, &wiki, t, None).await.status() })
            ),
        );
        // The load goes on until the kept copies have run out.
        tokio::time::sleep(Duration::from_millis(1500).saturating_sub(crashed_at.elapsed())).await;
        stop.store(true, Ordering::SeqCst);
        (pg, probes_sent, exchanged, refreshed)
    };
    let ((pg, probes_sent, exchanged, refreshed), (), ()) =
        tokio::join!(crash_and_probe, worker(), worker());
    assert!(
        probes_sent < Duration::from_millis(700),
        "precondition: the outage's exchanges must start while the client's row is still \
         kept (1 s); PostgreSQL took {probes_sent:?} to stop"
    );
    for (status, took) in exchanged {
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "a code exchange while PostgreSQL is down"
        );
        assert!(took < Duration::from_secs(10), "hung {took:?}");
    }
    for status in refreshed {
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "a refresh while PostgreSQL is down"
        );
    }
    let load_seen = load_seen.into_inner().unwrap();
    let ok = load_seen
        .iter()
        .filter(|(_, s)| *s == StatusCode::OK)
        .count();
    let refused: Vec<String> = load_seen
        .iter()
        .filter(|(_, s)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .map(|(code, _)| code.clone())
        .collect();
    let other: Vec<_> = load_seen
        .iter()
        .filter(|(_, s)| ![StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE].contains(s))
        .collect();
    assert!(other.is_empty(), "the load saw {other:?}");
    assert!(
        ok > 0 && !refused.is_empty(),
        "the load spans the crash: {ok} exchanged, {} refused",
        refused.len()
    );
    // Out of service, naming the database; alive all the same.
    let (status, _, report) = crate::operations::readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{report}");
    assert_eq!(report["database"]["ok"], false, "{report}");
    assert_eq!(
        report["store"]["ok"], true,
        "only the database is named: {report}"
    );
    let alive = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
    // An outage longer than the store's 2 s retry grace for refresh tokens.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let pg = pg.restarted().await;
    codes.extend(refused);
    // Tokens issued in all: the three exchanges for refresh tokens and their refreshes, the
    // load's exchanges, and every code below.
    let issued = 2 * refresh_tokens.len() + ok + codes.len();
    // The pool reconnects by itself; then every code, refused before or never tried, works.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut pending = codes;
    while let Some(code) = pending.first().cloned() {
        match exchange(code).await.0 {
            StatusCode::OK => {
                pending.remove(0);
            }
            StatusCode::SERVICE_UNAVAILABLE if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("a code was lost in the outage: {other}"),
        }
    }
    for token in &refresh_tokens {
        let r = refresh(&server, &wiki, token, None).await;
        let status = r.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "a refresh token refused with 503 was lost: {}",
            r.text().await.unwrap()
        );
    }
    // Every issuance is in the audit trail, those during the outage too: the writer holds
    // what it could not store and retries until the database is back.
    server.state.audit.flush().await;
    let recorded = server
        .state
        .db
        .audit()
        .by_action("token.issue")
        .await
        .unwrap();
    assert_eq!(recorded.len(), issued, "audit events lost in the outage");
    let (status, _, report) = crate::operations::readyz(&server).await;
    assert_eq!(status, StatusCode::OK, "back in service: {report}");
    assert!(
        crate::operations::metric_sum(&server, "lanyard_db_errors_total").await > db_errors,
        "the outage shows in the database-error metric"
    );
    server.stop().await;
    drop(pg);
}
