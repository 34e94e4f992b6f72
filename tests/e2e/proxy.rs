//! Lanyard behind a real reverse proxy: Debian's nginx, started here on loopback in front of
//! a test server that trusts it (`trusted_proxies`). Clients connect from addresses of their
//! own (127.0.0.2, 127.0.0.3, ...: all of 127.0.0.0/8 is this machine), so what Lanyard
//! takes for the client's address can be told apart from the proxy's.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lanyard_core::lockout::{self, Key};
use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;

use crate::support::{Browser, ClientSpec, Db, Store, TestClient, TestServer, authorize_url};

const PASSWORD: &str = "correct horse battery staple";

const HOW_NGINX: &str = "This test runs Debian's nginx in front of Lanyard: install it \
    (`apt-get install nginx`; .ci/run does) so that `nginx` is on the PATH or in /usr/sbin.";

/// An nginx of the test's own, proxying a loopback port to `upstream` as operations.md
/// shows: `X-Forwarded-For` with the address it saw appended, `X-Forwarded-Proto`.
struct Nginx {
    child: Child,
    base: String,
    dir: PathBuf,
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    fn start(upstream: &str) -> Self {
        Self::start_at(upstream, free_port(), "")
    }

    /// [`Nginx::start`] on `port`, with `rules` (nginx directives) in its one location.
    fn start_at(upstream: &str, port: u16, rules: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "lanyard-nginx-{}",
            lanyard_core::crypto::random_token(6).replace(['-', '_'], "x")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                 proxy_pass {upstream};\n      proxy_http_version 1.1;\n\
                 proxy_set_header Host $http_host;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;\n      {rules}\n    }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let binary = ["nginx", "/usr/sbin/nginx"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok())
            .unwrap_or_else(|| panic!("{HOW_NGINX}"));
        let child = Command::new(binary)
            .args(["-p", &dir.display().to_string(), "-c"])
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("nginx did not start: {e}. {HOW_NGINX}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx never listened on {port}");
            // nginx is a process of its own, starting: look again shortly.
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A browser whose connections come from `address`, sending `extra` headers on every
/// request (a spoofed `X-Forwarded-For`, say).
fn browser_from(address: &str, extra: &[(&'static str, &str)]) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in extra {
        headers.insert(*name, value.parse().unwrap());
    }
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(address.parse::<IpAddr>().unwrap())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

/// One sign-in as `username` on a fresh page at `base` (the proxy, or Lanyard itself); the
/// answer's status. (Each failing client below uses a username of its own, so that no
/// username's own growing delays get in the way of what is counted per address.)
async fn sign_in_via(
    server: &TestServer,
    base: &str,
    browser: &Browser,
    client: &TestClient,
    username: &str,
    password: &str,
) -> StatusCode {
    let url = authorize_url(server, client, &[]).replacen(&server.issuer, base, 1);
    let page = browser.get(&url).await.text().await.unwrap();
    browser
        .sign_in_at(base, &page, username, password, false)
        .await
        .status()
}

/// Failures counted against the client address `ip`.
async fn failures_from(server: &TestServer, ip: &str) -> u32 {
    counted(server, Key::Ip(ip.to_owned())).await
}

/// Failures counted under `key`.
async fn counted(server: &TestServer, key: Key) -> u32 {
    lockout::status(&server.state, &key).await.unwrap().0
}

#[tokio::test]
async fn behind_nginx_the_forwarded_address_is_the_client_and_nobody_else_can_claim_one() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let nginx = Nginx::start(&server.issuer);

    // Wrong passwords through nginx count against the address nginx saw, not nginx's own.
    let mallory = browser_from("127.0.0.2", &[]);
    for _ in 0..3 {
        let status = sign_in_via(&server, &nginx.base, &mallory, &wiki, "mallory", "wrong").await;
        assert_eq!(status, StatusCode::OK, "the form again");
    }
    assert_eq!(failures_from(&server, "127.0.0.2").await, 3);
    assert_eq!(
        failures_from(&server, "127.0.0.1").await,
        0,
        "not the proxy's"
    );

    // What a client writes into X-Forwarded-For before nginx appends its address is not
    // believed: nginx vouches only for the address it saw.
    let liar = browser_from("127.0.0.3", &[("x-forwarded-for", "198.51.100.7")]);
    let status = sign_in_via(&server, &nginx.base, &liar, &wiki, "liar", "wrong").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failures_from(&server, "127.0.0.3").await, 1);
    assert_eq!(failures_from(&server, "198.51.100.7").await, 0);

    // A direct connection from an address that is no trusted proxy: its headers are
    // ignored, whatever they claim.
    let direct = browser_from(
        "127.0.0.5",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        ],
    );
    let status = sign_in_via(&server, &server.issuer, &direct, &wiki, "direct", "wrong").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failures_from(&server, "127.0.0.5").await, 1);
    assert_eq!(failures_from(&server, "203.0.113.9").await, 0);

    // A sign-in through nginx: the session records where the person is.
    let person = browser_from("127.0.0.4", &[]);
    let status = sign_in_via(&server, &nginx.base, &person, &wiki, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed in, back to the app");
    let sessions = server.store().user_sessions(&alice.sub).await.unwrap();
    let ips: Vec<Option<String>> = sessions.iter().map(|s| s.ip.clone()).collect();
    assert_eq!(ips, [Some("127.0.0.4".to_owned())]);
    // And the audit trail says where each attempt came from.
    server.state.audit.flush().await;
    let signins = server.state.db.audit().by_action("signin").await.unwrap();
    let mut seen: Vec<String> = signins
        .iter()
        .map(|e| {
            let detail: serde_json::Value =
                serde_json::from_str(e.detail.as_deref().unwrap()).unwrap();
            format!("{} {}", e.outcome, detail["ip"].as_str().unwrap_or("-"))
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "failure 127.0.0.2",
            "failure 127.0.0.2",
            "failure 127.0.0.2",
            "failure 127.0.0.3",
            "failure 127.0.0.5",
            "success 127.0.0.4",
        ]
    );
    drop(nginx);
    server.stop().await;
}

/// Issue 19's lock-out by a stranger, closed: behind nginx, a hundred failed sign-ins from
/// one address (the victim's username among them, waits sat out until it locks there) lock
/// that address and that pair, and the owner signing in from another address gets in.
/// Failures from a direct connection claiming the owner's address in `X-Forwarded-For`
/// count against the connection's own address.
#[tokio::test]
async fn a_hundred_failures_from_one_address_never_lock_the_owner_out_elsewhere() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), |c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let nginx = Nginx::start(&server.issuer);
    let threshold = server.state.config.lockout.account_threshold;
    let ip_threshold = server.state.config.lockout.ip_threshold;

    // Through nginx from 127.0.0.2: alice's password guessed until it locks there (each wait
    // sat out), then made-up usernames up to the address's threshold.
    let stranger = browser_from("127.0.0.2", &[]);
    for _ in 0..threshold {
        let status = sign_in_via(&server, &nginx.base, &stranger, &wiki, "alice", "guess").await;
        assert_ne!(status, StatusCode::SEE_OTHER);
        clock.advance(Duration::from_secs(61));
    }
    for n in threshold..ip_threshold {
        let username = format!("made-up-{n}");
        let status = sign_in_via(&server, &nginx.base, &stranger, &wiki, &username, "x").await;
        assert_ne!(status, StatusCode::SEE_OTHER);
    }
    assert_eq!(failures_from(&server, "127.0.0.2").await, ip_threshold);
    assert_eq!(failures_from(&server, "127.0.0.1").await, 0, "not nginx's");
    // The stranger's address is locked, even with alice's right password.
    let status = sign_in_via(&server, &nginx.base, &stranger, &wiki, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // A direct connection that claims alice's address: its failures are its own.
    let liar = browser_from(
        "127.0.0.5",
        &[
            ("x-forwarded-for", "127.0.0.3"),
            ("forwarded", "for=127.0.0.3"),
        ],
    );
    for n in 0..3 {
        let username = format!("direct-{n}");
        let status = sign_in_via(&server, &server.issuer, &liar, &wiki, &username, "x").await;
        assert_eq!(status, StatusCode::OK, "the form again");
    }
    assert_eq!(failures_from(&server, "127.0.0.5").await, 3);
    assert_eq!(failures_from(&server, "127.0.0.3").await, 0, "not believed");
    assert_eq!(
        counted(&server, Key::pair("direct-0", "127.0.0.3")).await,
        0,
        "nothing counted at the claimed address"
    );
    assert_eq!(
        counted(&server, Key::pair("direct-0", "127.0.0.5")).await,
        1
    );

    // alice, through nginx from another address: signed in, back to the app.
    let alice = browser_from("127.0.0.3", &[]);
    let status = sign_in_via(&server, &nginx.base, &alice, &wiki, "alice", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the owner is never locked out"
    );
    drop(nginx);
    server.stop().await;
}

/// The console behind nginx: browsers reach it at the public address (nginx), and the node
/// reaches its own discovery, keys and token endpoint over loopback, never through the public
/// address (here nginx refuses the node's own address, 127.0.0.1, as a firewall or a split
/// DNS might keep a node from its public name).
#[tokio::test]
async fn behind_nginx_the_console_reaches_its_node_without_the_public_address() {
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.issuer.clone_from(&public);
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let olivia = server.user("olivia", PASSWORD).await;
    server.user("bob", PASSWORD).await;
    lanyard_core::operators::add(&server.state, &olivia.sub, "test")
        .await
        .unwrap();
    let nginx = Nginx::start_at(&server.issuer, port, "deny 127.0.0.1;");
    assert_eq!(nginx.base, public);
    let node = reqwest::get(format!("{public}/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(
        node.status(),
        StatusCode::FORBIDDEN,
        "127.0.0.1 is kept out"
    );

    // Bob, through nginx from his own address: sign-in, the code exchanged by the node with
    // itself, and the console's answer (he is no operator).
    let bob = browser_from("127.0.0.2", &[]);
    let (steps, page) = crate::apps::browse(&bob, &format!("{public}/console/people")).await;
    assert!(
        page.contains("<strong>Lanyard console</strong>"),
        "{steps:?} {page}"
    );
    let answer = bob.sign_in_at(&public, &page, "bob", PASSWORD, false).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{public}/console/callback?")),
        "{location}"
    );
    let (steps, page) = crate::apps::browse(&bob, &location).await;
    assert_eq!(
        steps.last().unwrap().0,
        StatusCode::FORBIDDEN,
        "{steps:?} {page}"
    );
    assert!(page.contains("You are not an operator"), "{page}");
    server.stop().await;
}
