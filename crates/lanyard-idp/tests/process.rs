//! The `lanyard` binary as operators run it: health and readiness, metrics, JSON logs with a
//! request id on every request's lines and no secret in any of them (a whole sign-in, code
//! exchange, refresh, introspection, revocation and logout, logged at `debug`), and SIGTERM:
//! stop accepting, answer `/readyz` with 503, finish, exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

const PASSWORD: &str = "a long password for alice";
const REDIRECT: &str = "https://wiki.example.com/callback";

struct Lanyard {
    dir: PathBuf,
    child: Option<Child>,
    base: String,
    /// The operators' listener (`LANYARD_OPS_LISTEN`).
    ops: String,
    logs: Arc<Mutex<Vec<String>>>,
    /// More environment for `serve`.
    env: Vec<(String, String)>,
}

impl Lanyard {
    fn command(dir: &PathBuf) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
        cmd.current_dir(dir)
            .env(
                "LANYARD_DATABASE_URL",
                format!("sqlite://{}/lanyard.db", dir.display()),
            )
            .env_remove("LANYARD_REDIS_URL")
            .env_remove("LANYARD_CONFIG");
        cmd
    }

    /// A node on a free port with user alice and client wiki; returns it and wiki's secret.
    fn start() -> (Self, String) {
        Self::start_with(&[], &[])
    }

    /// [`Lanyard::start`], wiki registered with `client_args` too, the server run with `env`.
    fn start_with(client_args: &[&str], env: &[(&str, &str)]) -> (Self, String) {
        let dir = std::env::temp_dir().join(format!(
            "lanyard-process-{}-{}",
            std::process::id(),
            lanyard_core::crypto::random_token(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str], stdin: Option<&str>| {
            let mut child = Self::command(&dir)
                .args(args)
                .env("RUST_LOG", "error")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(input) = stdin {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
            }
            drop(child.stdin.take());
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        run(&["migrate"], None);
        run(
            &["user", "add", "alice", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        let mut args = vec![
            "client",
            "add",
            "wiki",
            "--first-party",
            "--redirect-uri",
            REDIRECT,
        ];
        args.extend_from_slice(client_args);
        let added = run(&args, None);
        let secret = added
            .split("store it now): ")
            .nth(1)
            .unwrap()
            .trim()
            .to_owned();
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let port = free_port();
        let ops_port = free_port();
        let mut node = Self {
            dir,
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            ops: format!("http://127.0.0.1:{ops_port}"),
            logs: Arc::new(Mutex::new(Vec::new())),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        node.serve();
        (node, secret)
    }

    /// Runs `lanyard serve` on this node's directory and ports.
    fn serve(&mut self) {
        let mut child = Self::command(&self.dir)
            .arg("serve")
            .env("LANYARD_LISTEN", self.base.trim_start_matches("http://"))
            .env("LANYARD_OPS_LISTEN", self.ops.trim_start_matches("http://"))
            .env("LANYARD_ISSUER", &self.base)
            .env("LANYARD_LOG_FORMAT", "json")
            .env("LANYARD_SHUTDOWN_GRACE_SECS", "5")
            .env("RUST_LOG", "debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let sink = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
    }

    /// `kill -9`, then the same node started again.
    fn kill_and_restart(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        self.serve();
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `lanyard probe` against this node (the container health check): whether it says ready.
    fn probe(&self) -> bool {
        Self::command(&self.dir)
            .arg("probe")
            .env("LANYARD_LISTEN", self.base.trim_start_matches("http://"))
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
            .status
            .success()
    }

    fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits (up to `limit`) for the exit status.
    fn terminate(&mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal_term();
        self.wait_exit(limit)
    }

    /// Sends SIGTERM.
    fn signal_term(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits (up to `limit`) for the exit status.
    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "still running after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lanyard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn ready(node: &Lanyard, http: &reqwest::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(node.url("/readyz")).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "never ready: {:?}", node.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn location_param(response: &reqwest::Response, name: &str) -> Option<String> {
    let location = response.headers().get("location")?.to_str().ok()?;
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_whole_flow_logs_request_ids_and_no_secret_and_sigterm_drains() {
    let (mut node, secret) = Lanyard::start();
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    ready(&node, &browser).await;

    // Alive and ready: publicly just that, on the operators' listener with every check named.
    let alive = browser.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(alive.status(), 200);
    let public = common::json_at(&browser, &node.url("/readyz")).await;
    assert_eq!(public, serde_json::json!({ "status": "ready" }));
    let report = common::json_at(&browser, &format!("{}/readyz", node.ops)).await;
    assert_eq!(report["status"], "ready", "{report}");
    for check in ["database", "store", "keys", "clock"] {
        assert_eq!(report[check]["ok"], true, "{report}");
    }

    // A whole sign-in: authorize, sign in, exchange, refresh, introspect, revoke, logout.
    let authorize = format!(
        "{}?client_id=wiki&redirect_uri={}&response_type=code&scope=openid%20offline_access&state=st&nonce=n",
        node.url("/authorize"),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let page = common::text_at(&browser, &authorize).await;
    let sign_in = |page: String, password: &'static str| {
        browser
            .post(node.url("/signin"))
            .form(&common::signin_form(&page, "alice", password))
            .send()
    };
    // A wrong password first: refused, and counted as a failure.
    let wrong = sign_in(page, "not the password").await.unwrap();
    // The sign-in page again, saying why (the metric below says it was a failure).
    assert_eq!(wrong.status(), 200);
    let page = wrong.text().await.unwrap();
    assert!(page.contains("name=\"password\""), "{page}");
    let signed_in = sign_in(page, PASSWORD).await.unwrap();
    assert_eq!(signed_in.status(), 303, "{:?}", signed_in.headers());
    let session_cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("lanyard_session="))
        .unwrap();
    let session_value = session_cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("lanyard_session=")
        .to_owned();
    let code = location_param(&signed_in, "code").unwrap();
    let http = reqwest::Client::new();
    let token = |form: Vec<(&'static str, String)>| {
        http.post(node.url("/token"))
            .basic_auth("wiki", Some(&secret))
            .form(&form)
            .send()
    };
    let tokens: Value = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", REDIRECT.into()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let field = |t: &Value, n: &str| t[n].as_str().unwrap().to_owned();
    let (access, refresh, id_token) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
        field(&tokens, "id_token"),
    );
    let refreshed: Value = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let refresh2 = field(&refreshed, "refresh_token");
    let introspected: Value = http
        .post(node.url("/introspect"))
        .basic_auth("wiki", Some(&secret))
        .form(&[("token", refreshed["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    let revoked = http
        .post(node.url("/revoke"))
        .basic_auth("wiki", Some(&secret))
        .form(&[("token", refresh2.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let logout = browser
        .get(format!("{}?id_token_hint={id_token}", node.url("/logout")))
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());

    // Metrics saw it: requests by route, tokens by grant, sign-ins (failed and not),
    // revocations.
    let metrics = common::text_at(&browser, &format!("{}/metrics", node.ops)).await;
    let public = browser.get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "on the operators' listener only");
    for expected in [
        r#"lanyard_http_requests_total{route="/token",method="POST",status="200"} 2"#,
        r#"lanyard_tokens_issued_total{grant="authorization_code"} 1"#,
        r#"lanyard_tokens_issued_total{grant="refresh_token"} 1"#,
        r#"lanyard_signins_total{outcome="success"} 1"#,
        r#"lanyard_signins_total{outcome="failure"} 1"#,
        r#"lanyard_http_request_duration_seconds_count{route="/token",method="POST",status="200"} 2"#,
        "lanyard_db_duration_seconds_count",
    ] {
        assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
    }
    assert!(
        metrics.contains("lanyard_revocations_total"),
        "revocations are counted:\n{metrics}"
    );

    // SIGTERM: exit 0 within the grace; the container probe sees it go.
    assert!(node.probe(), "the probe sees a ready node");
    let status = node.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(!node.probe(), "and one that is gone");
    let logs = node.logs();

    // Every line is JSON; the lines of a request carry its id; nothing secret anywhere.
    assert!(logs.len() > 20, "debug logs were written: {logs:?}");
    let mut with_ids = 0;
    for line in &logs {
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if let Some(span) = parsed.get("span")
            && span["name"] == "request"
        {
            let id = span["id"].as_str().unwrap_or_default();
            assert!(id.len() >= 12, "a request id on every request line: {line}");
            with_ids += 1;
        }
    }
    assert!(with_ids > 5, "request lines carry ids: {with_ids}");
    let secrets = [
        ("password", PASSWORD.to_owned()),
        ("mistyped password", "not the password".to_owned()),
        ("client secret", secret.clone()),
        ("code", code),
        ("access token", access),
        ("refresh token", refresh),
        ("rotated refresh token", refresh2),
        ("ID token", id_token),
        ("session cookie", session_value),
    ];
    let all = logs.join("\n");
    for (what, value) in secrets {
        assert!(!value.is_empty());
        assert!(!all.contains(&value), "the {what} appears in the logs");
    }
    assert!(
        all.contains("shutting down"),
        "the shutdown is logged: {all}"
    );
}

#[tokio::test]
async fn sigterm_ends_open_streams_and_exits_within_the_grace() {
    let (mut node, secret) = Lanyard::start();
    let http = reqwest::Client::new();
    ready(&node, &http).await;
    // An app following the revocation feed: a stream that never ends by itself.
    let mut feed = http
        .get(node.url("/revocations/snapshot"))
        .basic_auth("wiki", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let snapshot: Value = feed.json().await.unwrap();
    feed = http
        .get(format!(
            "{}?epoch={}&seq={}",
            node.url("/revocations/events"),
            snapshot["cursor"]["epoch"].as_str().unwrap(),
            snapshot["cursor"]["seq"]
        ))
        .basic_auth("wiki", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    // The metric counts the app following the feed.
    let metrics = http
        .get(format!("{}/metrics", node.ops))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "lanyard_revocation_feed_subscribers 1"),
        "one subscriber:\n{metrics}"
    );
    let started = Instant::now();
    let status = node.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "the open stream did not hold the exit past the 5 s grace"
    );
    // The stream ended with the server.
    let rest = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = feed.chunk().await {}
    })
    .await;
    assert!(rest.is_ok(), "the stream ended");
}

/// SIGTERM while a request is in flight (its body half sent): new connections are refused at
/// once, the request still gets its whole answer, then the process exits 0 within the grace.
#[tokio::test]
async fn sigterm_refuses_new_connections_and_finishes_the_request_in_flight() {
    use base64::Engine;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (mut node, secret) = Lanyard::start();
    let http = reqwest::Client::new();
    ready(&node, &http).await;
    let addr = node.base.trim_start_matches("http://").to_owned();
    let body = "grant_type=refresh_token&refresh_token=not-a-refresh-token";
    let (first, rest) = body.split_at(20);
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("wiki:{secret}"));
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{first}",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The node is a process of its own: give it a moment to take the connection and start
    // reading the half-sent request before the signal.
    tokio::time::sleep(Duration::from_millis(150)).await;

    let started = Instant::now();
    node.signal_term();
    // Stopped accepting: a new connection is refused (within a moment of the signal).
    let refused = async {
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), refused)
        .await
        .expect("new connections are refused after SIGTERM");
    // The request in flight is answered in full.
    conn.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(4), conn.read_to_string(&mut answer))
        .await
        .expect("the answer came within the grace")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalid_grant"), "{answer}");
    let status = node.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "exited within the 5 s grace"
    );
}

/// Issue 25: a back-channel logout owed when its node is killed (`kill -9`) while the app's
/// endpoint is down is delivered once the node runs again and the app is back; the admin
/// API shows it waiting, then delivered.
#[tokio::test]
async fn a_back_channel_logout_survives_kill_9_while_the_app_is_down() {
    // The app's endpoint: a port reserved now, listened on only later.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let app_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let uri = format!("http://{app_addr}/backchannel-logout");
    let (mut node, secret) = Lanyard::start_with(
        &["--backchannel-logout-uri", &uri],
        &[
            ("LANYARD_OUTBOUND_ALLOW", "127.0.0.0/8"),
            ("LANYARD_BACKCHANNEL_LOGOUT_ATTEMPTS", "10"),
        ],
    );
    let ops_secret = {
        let out = Lanyard::command(&node.dir)
            .args([
                "client",
                "add",
                "ops",
                "--grant-type",
                "client_credentials",
                "--scope",
                "lanyard:admin",
            ])
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .split("store it now): ")
            .nth(1)
            .unwrap()
            .trim()
            .to_owned()
    };
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    ready(&node, &browser).await;
    let authorize = format!(
        "{}?client_id=wiki&redirect_uri={}&response_type=code&scope=openid&state=st&nonce=n",
        node.url("/authorize"),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let page = common::text_at(&browser, &authorize).await;
    let signed_in = browser
        .post(node.url("/signin"))
        .form(&common::signin_form(&page, "alice", PASSWORD))
        .send()
        .await
        .unwrap();
    let code = location_param(&signed_in, "code").unwrap();
    let http = reqwest::Client::new();
    let tokens: Value = http
        .post(node.url("/token"))
        .basic_auth("wiki", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let logout = browser
        .get(format!("{}?id_token_hint={id_token}", node.url("/logout")))
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());

    // Where wiki's deliveries stand, as the admin API says.
    let wiki_channel = |node_url: String| {
        let (http, ops_secret) = (http.clone(), ops_secret.clone());
        async move {
            let token: Value = http
                .post(format!("{node_url}/token"))
                .basic_auth("ops", Some(&ops_secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "lanyard:admin"),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let channels: Value = http
                .get(format!("{node_url}/admin/v1/signals/deliveries"))
                .bearer_auth(token["access_token"].as_str().unwrap())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            channels
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["channel"] == "backchannel wiki")
                .cloned()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let channel = wiki_channel(node.base.clone()).await;
        if let Some(c) = &channel
            && c["attempts"].as_u64() >= Some(1)
        {
            assert_eq!(c["pending"], 1, "{c}");
            assert_eq!(c["kind"], "backchannel");
            assert!(c["last_error"].is_string(), "{c}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt seen: {channel:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The node is killed; the app comes back; the node starts again.
    node.kill_and_restart();
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/backchannel-logout",
        axum::routing::post(
            move |form: axum::extract::Form<std::collections::HashMap<String, String>>| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(form.0["logout_token"].clone());
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind(app_addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    ready(&node, &browser).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "never delivered: {:?}",
            wiki_channel(node.base.clone()).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tokens = received.lock().unwrap().clone();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let claims = {
        use base64::Engine;
        let payload = tokens[0].split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let id_claims = {
        use base64::Engine;
        let payload = id_token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert_eq!(claims["aud"], "wiki");
    let channel = wiki_channel(node.base.clone()).await.unwrap();
    assert_eq!(channel["pending"], 0, "{channel}");
    assert!(channel["last_delivered_at"].as_i64().is_some());
}
