//! `docker-compose.yml` and the Dockerfile against what Lanyard reads: this machine has no
//! Docker engine, so the files are parsed and checked here, and the compose file's Lanyard
//! services (migrate, seed, serve, the health probe) run as plain processes with the same
//! commands and environment on this machine's PostgreSQL (a fresh database) and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_norway::Value;

mod common;

fn compose() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker-compose.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut value: Value = serde_norway::from_str(&text).expect("docker-compose.yml parses");
    value.apply_merge().unwrap();
    value
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| s.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        other => panic!("{other:?}"),
                    };
                    (k.as_str().unwrap().to_owned(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The proxy's nginx `server` block, as the container sees it (compose's `$$` is `$`).
fn proxy_conf(compose: &Value) -> String {
    compose["configs"]["proxy"]["content"]
        .as_str()
        .expect("the proxy's configuration")
        .replace("$$", "$")
}

fn condition(service: &Value, on: &str) -> String {
    service["depends_on"][on]["condition"]
        .as_str()
        .unwrap_or_else(|| panic!("no depends_on {on}"))
        .to_owned()
}

#[test]
fn the_compose_file_names_every_service_and_only_settings_lanyard_reads() {
    let compose = compose();
    let names: Vec<&str> = compose["services"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "postgres", "redis", "migrate", "seed", "lanyard", "proxy", "wiki", "billing"
        ]
    );
    for dependency in ["postgres", "redis"] {
        assert!(
            service(&compose, dependency).get("healthcheck").is_some(),
            "{dependency} has a health check"
        );
    }
    let redis = strings(&service(&compose, "redis")["command"]).join(" ");
    assert!(
        redis.contains("--appendonly yes") && redis.contains("--appendfsync always"),
        "acknowledged revocations survive a Redis crash: {redis}"
    );
    // The order things start in.
    assert_eq!(
        condition(service(&compose, "migrate"), "postgres"),
        "service_healthy"
    );
    assert_eq!(
        condition(service(&compose, "seed"), "migrate"),
        "service_completed_successfully"
    );
    let lanyard = service(&compose, "lanyard");
    assert_eq!(condition(lanyard, "seed"), "service_completed_successfully");
    assert_eq!(condition(lanyard, "redis"), "service_healthy");
    assert_eq!(
        strings(&lanyard["healthcheck"]["test"]),
        ["CMD", "lanyard", "probe"]
    );
    // `docker compose stop` waits out the drain and the last audit write before SIGKILL.
    let grace: u64 = environment(lanyard)["LANYARD_SHUTDOWN_GRACE_SECS"]
        .parse()
        .unwrap();
    let stop = lanyard["stop_grace_period"].as_str().unwrap();
    let stop: u64 = stop.strip_suffix('s').unwrap().parse().unwrap();
    assert!(
        stop > grace + lanyard_core::audit::SHUTDOWN_FLUSH.as_secs(),
        "stop_grace_period {stop}s leaves no time for the drain ({grace}s) and the audit flush"
    );

    // Every LANYARD_ variable is one Lanyard reads, and the server's validate.
    let known = lanyard_core::config::environment_variables();
    let mut env_of_lanyard = BTreeMap::new();
    for name in ["migrate", "seed", "lanyard"] {
        for (key, value) in environment(service(&compose, name)) {
            if key.starts_with("LANYARD_") && key != "LANYARD_LOG_FORMAT" {
                assert!(known.contains(&key), "{name}: Lanyard does not read {key}");
            }
            if name == "lanyard" {
                env_of_lanyard.insert(key, value);
            }
        }
    }
    let config = lanyard_core::config::RawConfig::default()
        .overlay_env(|k| env_of_lanyard.get(k).cloned())
        .and_then(lanyard_core::config::RawConfig::validate)
        .unwrap_or_else(|e| panic!("the lanyard service's settings: {e}"));
    assert!(config.redis_url.is_some(), "several nodes need Redis");
    assert!(config.database_url.starts_with("postgres://"));
    // Behind the proxy: Lanyard listens inside the namespace, trusts the proxy there, and the
    // proxy's port is the one published, on the issuer's port.
    assert!(config.listen.ip().is_loopback(), "{}", config.listen);
    assert!(
        config
            .trusted_proxies
            .iter()
            .any(|n| n.contains(std::net::Ipv4Addr::LOCALHOST.into())),
        "the proxy in the same namespace is trusted"
    );
    let proxy = service(&compose, "proxy");
    assert_eq!(proxy["network_mode"].as_str(), Some("service:lanyard"));
    assert_eq!(condition(proxy, "lanyard"), "service_healthy");
    let conf = proxy_conf(&compose);
    assert!(
        conf.contains(&format!("proxy_pass http://{};", config.listen)),
        "{conf}"
    );
    for header in [
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "X-Forwarded-Proto $scheme",
    ] {
        assert!(conf.contains(header), "{header}: {conf}");
    }
    let port = url::Url::parse(&config.issuer)
        .unwrap()
        .port_or_known_default()
        .unwrap();
    assert!(conf.contains(&format!("listen 0.0.0.0:{port};")), "{conf}");
    let ports = strings(&lanyard["ports"]);
    assert!(
        ports
            .iter()
            .any(|p| p.ends_with(&format!(":{port}:{port}"))),
        "the proxy's port {port} is published: {ports:?}"
    );
    assert!(
        !ports
            .iter()
            .any(|p| p.ends_with(&format!(":{}", config.listen.port()))),
        "Lanyard itself is not published: {ports:?}"
    );

    // The demo apps: in Lanyard's network namespace, on its issuer, with the seeded clients.
    let seed = strings(&service(&compose, "seed")["command"]).join("\n");
    for (app, port) in [("wiki", 8081), ("billing", 8082)] {
        let demo = service(&compose, app);
        assert_eq!(demo["network_mode"].as_str(), Some("service:lanyard"));
        assert_eq!(condition(demo, "lanyard"), "service_healthy");
        assert_eq!(condition(demo, "proxy"), "service_started");
        let env = environment(demo);
        assert_eq!(env["LANYARD_DEMO_ISSUER"], config.issuer);
        assert_eq!(env["LANYARD_DEMO_CLIENT_ID"], app);
        assert_eq!(
            env["LANYARD_DEMO_BASE_URL"],
            format!("http://localhost:{port}")
        );
        assert!(env["LANYARD_DEMO_LISTEN"].ends_with(&format!(":{port}")));
        assert!(
            ports
                .iter()
                .any(|p| p.ends_with(&format!(":{port}:{port}"))),
            "{app}'s port {port} is published by the lanyard service"
        );
        assert!(seed.contains(&format!("{app}:{port}:")), "{app} is seeded");
        let secret_var = format!("{}_SECRET", app.to_uppercase());
        assert_eq!(
            environment(service(&compose, "seed"))[&secret_var],
            env["LANYARD_DEMO_CLIENT_SECRET"],
            "{app}'s secret is the one seeded"
        );
    }
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The compose file's addresses as they must read on this machine: a fresh database on the
/// local PostgreSQL instead of the `postgres` service, the local Redis under a prefix of its
/// own, and free ports for the published ones (8080 Lanyard, 8081 wiki, 8082 billing).
struct Local {
    database_url: String,
    redis_url: String,
    prefix: String,
    /// (port in the compose file, port here).
    ports: Vec<(u16, u16)>,
}

impl Local {
    /// `text` (a value or a command) with the ports here, listening on loopback.
    fn text(&self, text: &str) -> String {
        let mut text = text.replace("0.0.0.0:", "127.0.0.1:");
        for (compose, here) in &self.ports {
            text = text.replace(&format!(":{compose}"), &format!(":{here}"));
        }
        text
    }

    fn port(&self, compose: u16) -> u16 {
        self.ports.iter().find(|(c, _)| *c == compose).unwrap().1
    }

    /// `service`'s environment, here.
    fn env(&self, compose: &Value, service_name: &str) -> Vec<(String, String)> {
        environment(service(compose, service_name))
            .into_iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "LANYARD_DATABASE_URL" => self.database_url.clone(),
                    "LANYARD_REDIS_URL" | "LANYARD_DEMO_REDIS_URL" => self.redis_url.clone(),
                    _ => self.text(&v),
                };
                (k, v)
            })
            .chain(
                ["LANYARD_REDIS_PREFIX", "LANYARD_DEMO_REDIS_PREFIX"]
                    .map(|k| (k.to_owned(), self.prefix.clone())),
            )
            .collect()
    }

    /// `service` as the image runs it: its entrypoint (`lanyard` unless it names another
    /// program, `sh -c` with its script) and command, in its environment, beside the
    /// binaries under test.
    fn command(&self, compose: &Value, name: &str, dir: &Path) -> Command {
        let lanyard = Path::new(env!("CARGO_BIN_EXE_lanyard"));
        let bin_dir = lanyard.parent().unwrap();
        let svc = service(compose, name);
        let command = strings(&svc["command"]);
        let entrypoint = strings(&svc["entrypoint"]);
        let mut cmd = match entrypoint.first().map(String::as_str) {
            // Compose turns `$$` into `$` before the shell sees it.
            Some("sh") => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(self.text(&command.join("\n")).replace("$$", "$"));
                c
            }
            Some(program) => {
                let binary = bin_dir.join(program);
                assert!(
                    binary.exists(),
                    "{} is built by `cargo test --workspace` (its own tests need it); alone: \
                     cargo build -p {program}",
                    binary.display()
                );
                let mut c = Command::new(binary);
                c.args(&entrypoint[1..]).args(&command);
                c
            }
            None => {
                let mut c = Command::new(lanyard);
                c.args(&command);
                c
            }
        };
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.current_dir(dir)
            .env("PATH", path)
            .env("RUST_LOG", "error")
            .env_remove("LANYARD_CONFIG")
            .envs(self.env(compose, name))
            .stdin(Stdio::null());
        cmd
    }
}

/// A long-running service, killed when dropped (also when the test fails).
struct Running(std::process::Child);

impl Running {
    /// Sends SIGTERM (what `docker compose stop` sends) and waits up to `within` for the exit.
    fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The playground as `docker compose up` runs it, as plain processes: migrate and seed (twice,
/// as a second `up` does), Lanyard until its health check passes, then the two demo apps. A
/// person signs in at the wiki, is back on the page they asked for, whose API call works;
/// the billing app signs them in without a password (single sign-on); Lanyard's account page
/// shows the one session both share. Then every service stops cleanly on SIGTERM.
#[test]
fn the_compose_services_run_as_plain_processes() {
    let compose = compose();
    let dir = std::env::temp_dir().join(format!(
        "lanyard-compose-{}-{}",
        std::process::id(),
        lanyard_core::crypto::random_token(6)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let _scratch = Scratch(dir.clone());
    // The compose file's database is PostgreSQL: so is this one.
    let database = common::PgDatabase::create("lanyard_compose");
    assert!(
        environment(service(&compose, "lanyard"))["LANYARD_DATABASE_URL"]
            .starts_with("postgres://")
    );
    let local = Local {
        database_url: database.url.clone(),
        redis_url: std::env::var("LANYARD_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        prefix: format!("compose-{}:", lanyard_core::crypto::random_token(6)),
        // Four different ports: held together while picked (one at a time, the system may
        // hand the same free port out twice, and then two services share one).
        ports: {
            let held: Vec<std::net::TcpListener> = (0..4)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
                .collect();
            [8080, 8081, 8082, 8090]
                .into_iter()
                .zip(&held)
                .map(|(p, l)| (p, l.local_addr().unwrap().port()))
                .collect()
        },
    };

    for step in ["migrate", "seed", "seed"] {
        let out = local.command(&compose, step, &dir).output().unwrap();
        assert!(
            out.status.success(),
            "{step}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each service's output goes to a log of its own, shown when it misbehaves.
    let start = |name: &str| {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let child = local
            .command(&compose, name, &dir)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        (name.to_owned(), log, Running(child))
    };
    let mut lanyard = start("lanyard");
    // The health check the compose file runs, which the apps wait for.
    let probe = strings(&service(&compose, "lanyard")["healthcheck"]["test"]);
    assert_eq!(probe[..2], ["CMD", "lanyard"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !Command::new(env!("CARGO_BIN_EXE_lanyard"))
        .args(&probe[2..])
        .env("RUST_LOG", "error")
        .envs(local.env(&compose, "lanyard"))
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "lanyard probe never saw the node ready"
        );
        // The node is a process of its own, starting: ask again shortly.
        std::thread::sleep(Duration::from_millis(100));
    }
    // The proxy: Debian's nginx with the compose file's server block, on the ports here.
    let proxy_dir = dir.join("proxy");
    std::fs::create_dir_all(&proxy_dir).unwrap();
    let d = proxy_dir.display();
    std::fs::write(
        proxy_dir.join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{}\n}}\n",
            local.text(&proxy_conf(&compose))
        ),
    )
    .unwrap();
    let nginx = ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .find(|b| Command::new(b).arg("-v").output().is_ok())
        .expect("the proxy runs Debian's nginx here: apt-get install nginx (.ci/run does)");
    let _proxy = Running(
        Command::new(nginx)
            .args(["-p", &d.to_string(), "-c"])
            .arg(proxy_dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", local.port(8080))).is_err() {
        assert!(Instant::now() < deadline, "the proxy never listened");
        // nginx is a process of its own, starting: look again shortly.
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut apps = ["wiki", "billing"].map(start);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The seeded clients are there, with the apps' addresses.
        let db = lanyard_core::db::Db::connect(&database.url).await.unwrap();
        for (id, port) in [("wiki", 8081), ("billing", 8082)] {
            let client = db.clients().get(id).await.unwrap().expect("seeded");
            let base = format!("http://localhost:{}", local.port(port));
            assert_eq!(client.redirect_uris, [format!("{base}/callback")]);
            assert_eq!(
                client.backchannel_logout_uri,
                Some(format!("{base}/backchannel-logout"))
            );
            assert!(client.first_party && !client.public);
        }

        let issuer = local.text("http://localhost:8080");
        let wiki = local.text("http://localhost:8081");
        let billing = local.text("http://localhost:8082");
        let http = reqwest::Client::new();
        // Each app is healthy once its revocation mirror is (wiki through Redis, billing
        // through Lanyard's HTTP feed).
        for app in [&wiki, &billing] {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match http.get(format!("{app}/health")).send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::OK => break,
                    other => assert!(
                        Instant::now() < deadline,
                        "{app} never became healthy: {other:?}"
                    ),
                }
                // The app is a process of its own, starting: ask again shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }

        // A person on an address of their own (all of 127.0.0.0/8 is this machine), which
        // Lanyard learns from the proxy.
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
            .build()
            .unwrap();
        let page = browser.get(format!("{wiki}/profile")).send().await.unwrap();
        assert!(
            page.url().as_str().starts_with(&issuer),
            "the wiki sends a stranger to Lanyard: {}",
            page.url()
        );
        let page = page.text().await.unwrap();
        let seed = environment(service(&compose, "seed"));
        let signed_in = browser
            .post(format!("{issuer}/signin"))
            .form(&common::signin_form(
                &page,
                "alice",
                &seed["ALICE_PASSWORD"],
            ))
            .send()
            .await
            .unwrap();
        // Back where they were, known to the app, whose API took their token.
        let on_profile = |app: &str, r: reqwest::Response| {
            let wanted = format!("{app}/profile");
            async move {
                assert_eq!(r.url().as_str(), wanted);
                let profile = r.text().await.unwrap();
                assert!(
                    profile.contains("Alice Example") && profile.contains("sees subject"),
                    "{wanted}: {profile}"
                );
            }
        };
        on_profile(&wiki, signed_in).await;
        // Billing without a password: single sign-on.
        let at_billing = browser
            .get(format!("{billing}/profile"))
            .send()
            .await
            .unwrap();
        on_profile(&billing, at_billing).await;
        // The seeded group and role: alice, in Finance, sees billing's invoices; bob, signed
        // in from another browser, is told (403) which role he lacks.
        let invoices = browser
            .get(format!("{billing}/invoices"))
            .send()
            .await
            .unwrap();
        assert_eq!(invoices.status(), reqwest::StatusCode::OK);
        assert!(invoices.text().await.unwrap().contains("INV-"));
        let bob = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let page = bob.get(format!("{billing}/invoices")).send().await.unwrap();
        let page = page.text().await.unwrap();
        let refused = bob
            .post(format!("{issuer}/signin"))
            .form(&common::signin_form(&page, "bob", &seed["BOB_PASSWORD"]))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.url().as_str(), format!("{billing}/invoices"));
        assert_eq!(refused.status(), reqwest::StatusCode::FORBIDDEN);
        assert!(refused.text().await.unwrap().contains("billing:admin"));
        let account = common::text_at(&browser, &format!("{issuer}/account")).await;
        assert!(account.contains("Alice Example"), "{account}");
        assert!(
            account.contains("From 127.0.0.3"),
            "the address the proxy forwarded, not the proxy's: {account}"
        );
        assert_eq!(
            account.matches("Sign out here").count(),
            1,
            "one sign-in session serves both apps: {account}"
        );
    });
    // `docker compose stop`: every service exits cleanly on SIGTERM, well within the
    // compose file's grace.
    for (name, log, service) in apps.iter_mut().chain([&mut lanyard]) {
        let status = service.terminate(Duration::from_secs(10));
        assert!(
            status.success(),
            "{name} exited with {status:?} on SIGTERM; its output:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped: (keyword,
/// arguments).
fn dockerfile() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Dockerfile");
    let text = std::fs::read_to_string(path).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            current.push_str(start);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let (keyword, args) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        instructions.push((keyword.to_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    instructions
}

/// The image, checked without a Docker engine: a build stage thrown away, a slim runtime
/// with only the binaries copied in, an unprivileged user, the health check and the
/// entrypoint naming commands the binary has, the port and settings the compose file uses.
#[test]
fn the_dockerfile_builds_a_small_unprivileged_image_with_a_health_check() {
    let all = dockerfile();
    let stages: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(stages.len() >= 2, "multi-stage: {all:?}");
    let build_stage = &all[stages[0]].1;
    let stage_name = build_stage
        .split_once(" AS ")
        .map(|(_, n)| n.trim().to_owned())
        .expect("the build stage is named");
    let runtime: &[(String, String)] = &all[*stages.last().unwrap()..];
    let base = &runtime[0].1;
    assert!(
        base.ends_with("-slim") || base.contains("distroless"),
        "a small runtime base: {base}"
    );
    let get = |keyword: &str| -> Vec<&str> {
        runtime
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let copies = get("COPY");
    assert!(
        !copies.is_empty()
            && copies
                .iter()
                .all(|c| c.starts_with(&format!("--from={stage_name} "))),
        "the runtime copies only from the build stage: {copies:?}"
    );
    let copied = copies.join(" ");
    for binary in ["/lanyard ", "/lanyard-demo "] {
        assert!(copied.contains(binary), "{binary} is copied: {copied}");
    }
    // An unprivileged user, made with a fixed non-zero uid.
    let user = get("USER");
    let user = user.last().expect("a USER in the runtime stage");
    let name = user.split(':').next().unwrap();
    assert!(!["root", "0"].contains(&name), "runs as {user}");
    let runs = get("RUN").join(" ");
    let uid = runs
        .split("--uid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .expect("useradd --uid N");
    assert!(uid >= 1000, "uid {uid}");
    assert!(
        runs.contains(&format!(" {name}")),
        "the user {name} is made: {runs}"
    );
    // The health check and the entrypoint run commands the binary has.
    let health = get("HEALTHCHECK");
    let health = health.last().expect("a HEALTHCHECK");
    assert!(health.contains(r#"CMD ["lanyard", "probe"]"#), "{health}");
    assert_eq!(get("ENTRYPOINT"), [r#"["lanyard"]"#]);
    assert_eq!(get("CMD"), [r#"["serve"]"#]);
    for command in ["probe", "serve"] {
        let out = Command::new(env!("CARGO_BIN_EXE_lanyard"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "lanyard {command} exists");
    }
    // The port it listens on is the one exposed and the one the compose file maps.
    let env = get("ENV").join(" ");
    let listen = env
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("LANYARD_LISTEN="))
        .expect("LANYARD_LISTEN");
    let port = listen.rsplit(':').next().unwrap();
    assert_eq!(get("EXPOSE"), [port]);
    let compose = compose();
    assert!(
        strings(&service(&compose, "lanyard")["ports"])
            .iter()
            .any(|p| p.ends_with(&format!(":{port}"))),
        "compose maps port {port}"
    );
    let known = lanyard_core::config::environment_variables();
    for kv in env.split_whitespace() {
        let key = kv.split('=').next().unwrap();
        assert!(
            known.iter().any(|k| k == key) || key == "LANYARD_LOG_FORMAT",
            "the image sets {key}, which Lanyard does not read"
        );
    }
}
