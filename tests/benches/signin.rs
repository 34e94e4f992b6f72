//! Sign-ins per second with a passkey against with a password (issue 20): Lanyard on its
//! embedded defaults (SQLite, in-process store) in this process, `TASKS` clients signing in
//! for an app over HTTP as fast as they can for `SECONDS`, each through the whole sign-in
//! (password: `POST /signin`; passkey: `POST /signin/passkey/options`, the authenticator's
//! signature, `POST /signin/passkey`), each ending in the app's code (303). Every client has
//! users of its own (a passkey's counter must not race). The two alternate, twice. Prints
//! sign-ins per second and the process's CPU time per sign-in (server and clients: a
//! client's ES256 signature is tens of microseconds).
//!
//! `cargo bench -p lanyard-e2e --bench signin`. Figures are recorded in `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod common;
use common::cpu;

#[path = "../e2e/support/passkey.rs"]
#[allow(dead_code)]
mod passkey;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::Config;
use lanyard_core::model::ClientSettings;
use lanyard_core::users::{NewUser, add_user};
use lanyard_idp::state::AppState;
use lanyard_store::{Clock, SystemClock};
use passkey::SoftPasskey;
use serde_json::Value;

const TASKS: usize = 16;
const USERS_PER_TASK: usize = 4;
const SECONDS: u64 = 10;
const PASSWORD: &str = "correct horse battery staple";

/// The value of the form field `name` in `page`.
fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap() + marker.len();
    let end = start + page[start..].find('"').unwrap();
    html_escape::decode_html_entities(&page[start..end]).into_owned()
}

/// One client: its HTTP connection, the CSRF cookie and form of a sign-in page, its users.
struct Signer {
    http: reqwest::Client,
    issuer: String,
    cookie: String,
    csrf: String,
    request: String,
    /// Users with a password only (a passkey would make the password the first of two steps).
    passwords: Vec<String>,
    /// The passkeys of users who sign in with one.
    passkeys: Vec<SoftPasskey>,
}

impl Signer {
    async fn new(
        issuer: &str,
        authorize: &str,
        passwords: Vec<String>,
        passkeys: Vec<SoftPasskey>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(authorize).send().await.unwrap();
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .find(|c| c.contains("csrf"))
            .unwrap();
        let page = page.text().await.unwrap();
        Self {
            http,
            issuer: issuer.to_owned(),
            cookie,
            csrf: field(&page, "csrf"),
            request: field(&page, "authorization_request"),
            passwords,
            passkeys,
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.issuer))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    async fn with_password(&mut self, n: usize) {
        let username = self.passwords[n % self.passwords.len()].clone();
        let r = self
            .post(
                "/signin",
                &[
                    ("csrf", &self.csrf),
                    ("authorization_request", &self.request),
                    ("username", &username),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    }

    async fn with_passkey(&mut self, n: usize) {
        let r = self
            .post("/signin/passkey/options", &[("csrf", &self.csrf)])
            .await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let i = n % self.passkeys.len();
        let issuer = self.issuer.clone();
        let answer = self.passkeys[i]
            .assert(&body["options"], &issuer, None)
            .to_string();
        let r = self
            .post(
                "/signin/passkey",
                &[
                    ("csrf", &self.csrf),
                    ("authorization_request", &self.request),
                    ("ceremony", body["ceremony"].as_str().unwrap()),
                    ("credential", &answer),
                ],
            )
            .await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
    }
}

async fn load(signers: &mut Vec<Signer>, passkeys: bool) -> (f64, Duration) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let started = Instant::now();
    let cpu_before = cpu();
    let mut tasks = tokio::task::JoinSet::new();
    for mut signer in signers.drain(..) {
        let done = done.clone();
        tasks.spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                if passkeys {
                    signer.with_passkey(n).await;
                } else {
                    signer.with_password(n).await;
                }
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            signer
        });
    }
    signers.extend(tasks.join_all().await);
    let elapsed = started.elapsed();
    let count = done.load(Ordering::Relaxed);
    let cpu_each = (cpu() - cpu_before) / u32::try_from(count.max(1)).unwrap();
    (count as f64 / elapsed.as_secs_f64(), cpu_each)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("lanyard-bench-signin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // A secure context for WebAuthn: http://localhost.
        let issuer = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let config = Config {
            issuer: issuer.clone(),
            listen: listener.local_addr().unwrap(),
            database_url: format!("sqlite://{}/lanyard.db", dir.display()),
            ..Config::default()
        };
        let state = AppState::build(config).await.unwrap();
        let redirect = "https://wiki.example.com/callback";
        add_client(
            &state.db,
            &state.server_keys,
            NewClient {
                settings: ClientSettings {
                    redirect_uris: vec![redirect.to_owned()],
                    first_party: true,
                    ..ClientSettings::new("wiki")
                },
                secret: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
        let mut signers = Vec::new();
        let authorize = format!(
            "{issuer}/authorize?client_id=wiki&redirect_uri={}&response_type=code&scope=openid&state=s",
            url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
        );
        let core: &lanyard_core::Core = &state;
        let mut users_of = Vec::new();
        for t in 0..TASKS {
            let (mut passwords, mut passkeys) = (Vec::new(), Vec::new());
            for u in 0..USERS_PER_TASK {
                for with_passkey in [false, true] {
                    let username = format!("{}{t}x{u}", if with_passkey { "pk" } else { "pw" });
                    let user = add_user(
                        &core.db,
                        &core.passwords,
                        NewUser {
                            username: username.clone(),
                            password: PASSWORD.to_owned(),
                            email: None,
                            display_name: None,
                        },
                        SystemClock.now(),
                    )
                    .await
                    .unwrap();
                    if !with_passkey {
                        passwords.push(username);
                        continue;
                    }
                    let ceremony = lanyard_core::passkeys::start_registration(core, &user)
                        .await
                        .unwrap();
                    let (key, answer) = SoftPasskey::register(&ceremony.options, &issuer);
                    lanyard_core::passkeys::finish_registration(
                        core,
                        &user,
                        &ceremony.id,
                        &answer.to_string(),
                        "bench",
                    )
                    .await
                    .unwrap();
                    passkeys.push(key);
                }
            }
            users_of.push((passwords, passkeys));
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(lanyard_idp::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        for (passwords, passkeys) in users_of {
            signers.push(Signer::new(&issuer, &authorize, passwords, passkeys).await);
        }
        // Warm-up, then passes alternating.
        load(&mut signers, false).await;
        load(&mut signers, true).await;
        println!("{TASKS} clients, {SECONDS} s per run, sign-ins ending in the app's code");
        for pass in 1..=2 {
            for passkeys in [false, true] {
                let (rate, cpu_each) = load(&mut signers, passkeys).await;
                println!(
                    "pass {pass} {:8}: {rate:8.1} sign-ins/s, {:7.0} µs of CPU per sign-in",
                    if passkeys { "passkey" } else { "password" },
                    cpu_each.as_secs_f64() * 1e6,
                );
            }
        }
        let _ = stop.send(());
        let _ = server.await;
        std::fs::remove_dir_all(&dir).ok();
    });
}
