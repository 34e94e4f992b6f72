//! The two servers: starting them, giving them a client and a user, minting the tokens a
//! scenario spends, reading their CPU time and memory from `/proc`, stopping them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::cookie::CookieStore as _;
use serde_json::Value;
use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

use crate::Scenario;
use crate::wrk::{Body, Flow, Load, Step};

/// The peer's registered client (`bench/peer/provider.mjs`).
const PEER_SECRET: &str = "bench-secret";
/// Lanyard asks for at least 32 characters.
const LANYARD_SECRET: &str = "bench-secret-bench-secret-bench-secret-0000";
const USERNAME: &str = "bench";
/// The admin client of the `fanout` scenario, which revokes through the admin API.
const OPS_CLIENT: &str = "bench-ops";
const PASSWORD: &str = "a bench user's long password 7f3c";
const REDIRECT_URI: &str = "http://127.0.0.1:4000/cb";
/// Both sides answer `client_credentials` with a JWT access token for this scope.
const CLIENT_CREDENTIALS: &str = "grant_type=client_credentials&scope=api%3Aread";
/// The PKCE verifier of every authorization request of the flows (its S256 challenge goes
/// with each): one fixed pair is enough, the server checks it all the same.
const PKCE_VERIFIER: &str = "lanyard-bench-fixed-pkce-verifier-0123456789-abcdefghij";
/// Users the `signin` scenario signs in as, in turn (`bench0` ...): attempts are counted per
/// username before the password is checked, so one username signing in many times at once
/// would be throttled as a guesser.
const SIGNIN_USERS: usize = 64;
/// The sign-in lockout thresholds of the `signin` scenario (as `bench/signin` sets them).
const SIGNIN_LOCKOUT_THRESHOLD: &str = "1000";
/// Making the codes of one run of the `code` scenario should not take longer: codes live
/// 60 s at both sides.
const CODE_MAKING_WARN: Duration = Duration::from_secs(30);

/// Lanyard's database and token store for the whole run; each scenario's Lanyard gets a
/// fresh database file or schema-less fresh database and a fresh key prefix.
pub(crate) struct Backends {
    /// `None`: SQLite files in `work`.
    postgres: Option<String>,
    /// `None`: the in-process store.
    redis: Option<String>,
    work: PathBuf,
    /// Names handed out so far (databases or prefixes), to clean up.
    made: std::sync::Mutex<Vec<String>>,
    run_id: String,
}

impl Backends {
    /// The Redis server's URL (`None`: the in-process store).
    pub(crate) fn redis(&self) -> Option<&str> {
        self.redis.as_deref()
    }

    /// Checks that the services named exist before anything is measured.
    pub(crate) async fn prepare(database: &str, store: &str) -> anyhow::Result<Self> {
        let postgres = match database {
            "sqlite" => None,
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                psql(url, "SELECT 1").await.with_context(|| {
                    format!(
                        "PostgreSQL at {url} is not reachable (start it, or use --database sqlite)"
                    )
                })?;
                Some(url.trim_end_matches('/').to_owned())
            }
            other => bail!("--database must be sqlite or a postgres:// URL, not {other}"),
        };
        let redis = match store {
            "memory" => None,
            url => {
                let client = redis::Client::open(url)?;
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .with_context(|| {
                        format!(
                            "Redis at {url} is not reachable (redis-server --port 6379, or use --store memory)"
                        )
                    })?;
                let _: String = redis::cmd("PING").query_async(&mut conn).await?;
                Some(url.to_owned())
            }
        };
        let work = std::env::temp_dir().join(format!("lanyard-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        Ok(Self {
            postgres,
            redis,
            work,
            made: std::sync::Mutex::new(Vec::new()),
            run_id: format!("{}", std::process::id()),
        })
    }

    /// What Lanyard runs on, for the report.
    pub(crate) fn describe(&self) -> String {
        let db = if self.postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let store = if self.redis.is_some() {
            "Redis store"
        } else {
            "in-process store"
        };
        format!("{db} + {store}")
    }

    /// A fresh database URL and Redis prefix for one Lanyard.
    async fn fresh(&self) -> anyhow::Result<(String, Option<(String, String)>)> {
        let n = {
            let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
            let name = format!("lanyard_bench_{}_{}", self.run_id, made.len());
            made.push(name);
            made.last().cloned().unwrap_or_default()
        };
        let database = match &self.postgres {
            None => format!("sqlite://{}/{n}.db?mode=rwc", self.work.display()),
            Some(server) => {
                psql(server, &format!("CREATE DATABASE {n}")).await?;
                replace_database(server, &n)?
            }
        };
        let store = self.redis.clone().map(|url| (url, format!("{n}:")));
        Ok((database, store))
    }

    /// Drops the databases and deletes the Redis keys this run made; removes the work folder.
    pub(crate) async fn clean_up(&self) {
        let made = std::mem::take(&mut *self.made.lock().unwrap_or_else(|p| p.into_inner()));
        for name in made {
            if let Some(server) = &self.postgres {
                let _ = psql(
                    server,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await;
            }
            if let Some(url) = &self.redis {
                let _ = delete_prefix(url, &format!("{name}:")).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url)?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .await
        .context("psql (Debian's postgresql-client) is needed for --database postgres://")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

async fn delete_prefix(url: &str, prefix: &str) -> anyhow::Result<()> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    for chunk in keys.chunks(500) {
        let _: i64 = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
    }
    Ok(())
}

/// Which server a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lanyard,
    Peer,
}

/// One running server, its endpoints (from its discovery document) and what it takes to
/// call them.
pub(crate) struct Side {
    kind: Kind,
    /// Its processes: one, or several Lanyard nodes on one database and store.
    nodes: Vec<Node>,
    issuer: String,
    discovery: Value,
    /// `Authorization: Basic ...` of the registered client.
    basic: String,
    /// Cookies (Lanyard's SSO session) and no redirects followed.
    http: reqwest::Client,
    /// `http`'s cookies.
    jar: Arc<reqwest::cookie::Jar>,
    /// No cookies of its own (the flows send theirs, as wrk does) and no redirects followed.
    bare: reqwest::Client,
    /// A user's access token, for introspection and userinfo.
    user_token: tokio::sync::OnceCell<String>,
    /// The `Cookie` header of a browser in which the bench user is signed in.
    session_cookie: tokio::sync::OnceCell<String>,
    /// Lanyard's sign-in form for the `signin` scenario: the CSRF cookie and the form
    /// without the username's number.
    signin_form: tokio::sync::OnceCell<(String, String)>,
    /// The peer's minting route (`bench/peer/provider.mjs`), on a port of its own.
    mint: Option<String>,
}

/// One server process.
struct Node {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:<port>`.
    base: String,
}

impl Side {
    /// Starts `nodes` Lanyard processes on one fresh database and store prefix, with a
    /// client and a user (for `signin`, [`SIGNIN_USERS`] more, and the sign-in lockout
    /// thresholds raised). They share the issuer (the first node's URL), as nodes behind a
    /// load balancer do.
    pub(crate) async fn start_lanyard(
        binary: &Path,
        backends: &Backends,
        nodes: usize,
        access_token_alg: &str,
        scenario: Scenario,
    ) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!(
                "{} is missing: cargo build --release -p lanyard-idp (bench/run does)",
                binary.display()
            );
        }
        let (database, store) = backends.fresh().await?;
        // PostgreSQL wants a master key kept apart from the database (SQLite makes its own
        // beside the file).
        let master_key = match &backends.postgres {
            Some(_) => Some(master_key_file(binary, &backends.work).await?),
            None => None,
        };
        let ports = (0..nodes.max(1))
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let issuer = format!("http://127.0.0.1:{}", ports[0]);
        let env = |cmd: &mut Command| {
            cmd.env("LANYARD_DATABASE_URL", &database)
                .env("LANYARD_ISSUER", &issuer)
                // The peer's tokens live an hour; so do these.
                .env("LANYARD_ACCESS_TOKEN_LIFETIME_SECS", "3600")
                .env("LANYARD_ACCESS_TOKEN_ALG", access_token_alg)
                .env("RUST_LOG", "warn")
                .env_remove("LANYARD_CONFIG")
                .env_remove("LANYARD_REDIS_URL");
            if let Some((url, prefix)) = &store {
                cmd.env("LANYARD_REDIS_URL", url)
                    .env("LANYARD_REDIS_PREFIX", prefix);
            }
            if let Some(file) = &master_key {
                cmd.env("LANYARD_MASTER_KEY_FILE", file)
                    .env_remove("LANYARD_MASTER_KEY");
            }
            if scenario == Scenario::Signin {
                cmd.env("LANYARD_SIGNIN_LOCKOUT_THRESHOLD", SIGNIN_LOCKOUT_THRESHOLD)
                    .env(
                        "LANYARD_SIGNIN_IP_LOCKOUT_THRESHOLD",
                        SIGNIN_LOCKOUT_THRESHOLD,
                    );
            }
        };
        let mut client = Command::new(binary);
        client.args([
            "client",
            "add",
            "bench",
            "--secret-stdin",
            "--first-party",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--scope",
            "api:read",
            "--redirect-uri",
            REDIRECT_URI,
        ]);
        env(&mut client);
        feed(client, LANYARD_SECRET).await?;
        if scenario == Scenario::Fanout {
            let mut ops = Command::new(binary);
            ops.args([
                "client",
                "add",
                OPS_CLIENT,
                "--secret-stdin",
                "--grant-type",
                "client_credentials",
                "--scope",
                "lanyard:admin",
            ]);
            env(&mut ops);
            feed(ops, LANYARD_SECRET).await?;
        }
        let mut user = Command::new(binary);
        user.args(["user", "add", USERNAME, "--password-stdin"]);
        env(&mut user);
        feed(user, PASSWORD).await?;
        if scenario == Scenario::Signin {
            for n in 0..SIGNIN_USERS {
                let mut user = Command::new(binary);
                user.args(["user", "add", &format!("{USERNAME}{n}"), "--password-stdin"]);
                env(&mut user);
                feed(user, PASSWORD)
                    .await
                    .with_context(|| format!("adding the sign-in scenario's user {n}"))?;
            }
        }

        let mut children = Vec::new();
        for port in &ports {
            let mut serve = Command::new(binary);
            serve
                .arg("serve")
                .env("LANYARD_LISTEN", format!("127.0.0.1:{port}"));
            env(&mut serve);
            let log = backends.work.join(format!("lanyard-{port}.log"));
            let child = serve
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .kill_on_drop(true)
                .spawn()?;
            children.push((child, format!("http://127.0.0.1:{port}")));
        }
        Self::started(Kind::Lanyard, children, issuer, LANYARD_SECRET)
            .await
            .with_context(|| {
                format!(
                    "Lanyard did not start; its logs are in {}",
                    backends.work.display()
                )
            })
    }

    /// Starts the peer (`provider.mjs` in `peer_dir`) with JWT access tokens signed with
    /// `access_token_alg`.
    pub(crate) async fn start_peer(
        peer_dir: &Path,
        access_token_alg: &str,
    ) -> anyhow::Result<Self> {
        let script = peer_dir.join("provider.mjs");
        if !peer_dir.join("node_modules/oidc-provider").exists() || !script.exists() {
            bail!(
                "the peer is not installed in {} (bench/run installs it)",
                peer_dir.display()
            );
        }
        let port = free_port()?;
        let mint_port = free_port()?;
        // Without JWKS_FILE the peer makes fresh keys at each start: RSA-2048, and one for
        // AT_ALG when that is not RS256.
        let child = Command::new("node")
            .arg(&script)
            .current_dir(peer_dir)
            .env("PORT", port.to_string())
            .env("AT_FORMAT", "jwt")
            .env("AT_ALG", access_token_alg)
            .env("NODE_ENV", "production")
            .env("BENCH_MINT_PORT", mint_port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("node (20 or later) is needed for the peer")?;
        let base = format!("http://127.0.0.1:{port}");
        let mut side =
            Self::started(Kind::Peer, vec![(child, base.clone())], base, PEER_SECRET).await?;
        side.mint = Some(format!("http://127.0.0.1:{mint_port}/mint"));
        Ok(side)
    }

    /// Waits for every process's discovery document.
    async fn started(
        kind: Kind,
        children: Vec<(Child, String)>,
        issuer: String,
        secret: &str,
    ) -> anyhow::Result<Self> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let bare = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let mut nodes = Vec::new();
        let mut discovery = None;
        for (child, base) in children {
            let pid = child.id().context("the server exited at once")?;
            let url = format!("{base}/.well-known/openid-configuration");
            let mut found = None;
            for _ in 0..200 {
                if let Ok(answer) = http.get(&url).send().await
                    && answer.status().is_success()
                {
                    found = Some(answer.json::<Value>().await?);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let found = found.context("no discovery document within 10 s")?;
            discovery.get_or_insert(found);
            nodes.push(Node { child, pid, base });
        }
        let discovery = discovery.context("no server to start")?;
        Ok(Self {
            kind,
            nodes,
            issuer,
            discovery,
            basic: format!("Basic {}", STANDARD.encode(format!("bench:{secret}"))),
            http,
            jar,
            bare,
            user_token: tokio::sync::OnceCell::new(),
            session_cookie: tokio::sync::OnceCell::new(),
            signin_form: tokio::sync::OnceCell::new(),
            mint: None,
        })
    }

    /// `Lanyard` or `oidc-provider`.
    pub(crate) fn name(&self) -> &'static str {
        match self.kind {
            Kind::Lanyard => "Lanyard",
            Kind::Peer => "oidc-provider",
        }
    }

    fn endpoint(&self, field: &str) -> anyhow::Result<String> {
        self.discovery[field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("{} publishes no {field}", self.name()))
    }

    /// Makes sure the scenario's request (a flow: its every step) really succeeds before it
    /// is measured.
    pub(crate) async fn prepare(&self, scenario: Scenario) -> anyhow::Result<()> {
        let load = self
            .load_for(scenario, 1, 1, 1)
            .await
            .with_context(|| format!("{} cannot prepare {}", self.name(), scenario.name()))?;
        let mut request = self.http.request(load.method.clone(), &load.url);
        for (name, value) in &load.headers {
            request = request.header(*name, value);
        }
        let body = match &load.body {
            Body::Fixed(body) => body.clone(),
            Body::Refresh(tokens) => {
                format!("grant_type=refresh_token&refresh_token={}", tokens[0])
            }
            Body::Flow(flow) => {
                return self
                    .check_flow(&load.url, flow)
                    .await
                    .with_context(|| format!("{} {}", self.name(), scenario.name()));
            }
        };
        if !body.is_empty() {
            request = request.body(body);
        }
        let answer = request.send().await?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{} {}: {status} {text}", self.name(), scenario.name());
        }
        if scenario == Scenario::Introspect && !text.contains("\"active\":true") {
            bail!("{}: the token is not active: {text}", self.name());
        }
        Ok(())
    }

    /// The load of `scenario` spread over this side's processes: `conns` connections and
    /// `threads` wrk threads in all, each process getting its share, each with its own tokens
    /// where the scenario spends them; `codes`: the codes to make beforehand for the `code`
    /// scenario, in all.
    pub(crate) async fn loads(
        &self,
        scenario: Scenario,
        threads: usize,
        conns: usize,
        codes: usize,
    ) -> anyhow::Result<Vec<Load>> {
        let n = self.nodes.len();
        let mut loads = Vec::with_capacity(n);
        for (i, node) in self.nodes.iter().enumerate() {
            let codes = codes / n + usize::from(i < codes % n);
            let conns = conns / n + usize::from(i < conns % n);
            let threads = (threads / n).max(1).min(conns.max(1));
            let mut load = self.load_for(scenario, threads, conns, codes).await?;
            load.threads = threads;
            load.conns = conns;
            load.url = load.url.replacen(&self.issuer, &node.base, 1);
            loads.push(load);
        }
        Ok(loads)
    }

    /// The requests of `scenario`, with tokens for `conns` connections where it spends them
    /// (`codes` codes for the `code` scenario).
    pub(crate) async fn load_for(
        &self,
        scenario: Scenario,
        threads: usize,
        conns: usize,
        codes: usize,
    ) -> anyhow::Result<Load> {
        let form = (
            "Content-Type",
            "application/x-www-form-urlencoded".to_owned(),
        );
        let basic = ("Authorization", self.basic.clone());
        Ok(match scenario {
            Scenario::Discovery => {
                Load::get(format!("{}/.well-known/openid-configuration", self.issuer))
            }
            Scenario::Jwks => Load::get(self.endpoint("jwks_uri")?),
            Scenario::Token => Load::post(
                self.endpoint("token_endpoint")?,
                vec![form, basic],
                CLIENT_CREDENTIALS.to_owned(),
            ),
            Scenario::Refresh => {
                // One token per connection, and a few spare per thread: each answer hands the
                // next token of its chain back to the pool.
                let tokens = self.refresh_tokens(conns + 4 * threads).await?;
                Load::refresh(self.endpoint("token_endpoint")?, vec![form, basic], tokens)
            }
            Scenario::Introspect => Load::post(
                self.endpoint("introspection_endpoint")?,
                vec![form, basic],
                format!("token={}", self.user_token().await?),
            ),
            Scenario::Userinfo => {
                let mut load = Load::get(self.endpoint("userinfo_endpoint")?);
                load.headers.push((
                    "Authorization",
                    format!("Bearer {}", self.user_token().await?),
                ));
                load
            }
            Scenario::Sso => {
                let start = Step {
                    method: reqwest::Method::GET,
                    url: self.authorize_url()?,
                    headers: vec![("Cookie", self.session_cookie().await?)],
                    body: String::new(),
                    numbered: 0,
                };
                self.flow(Some(start), Vec::new())?
            }
            Scenario::Code => {
                let codes = self.make_codes(codes).await?;
                self.flow(None, codes)?
            }
            Scenario::Signin => {
                if self.kind != Kind::Lanyard {
                    bail!("the peer has no password sign-in in this set-up");
                }
                let (cookie, body) = self.signin_form().await?;
                let start = Step {
                    method: reqwest::Method::POST,
                    url: format!("{}/signin", self.issuer),
                    headers: vec![form, ("Cookie", cookie)],
                    body,
                    numbered: SIGNIN_USERS,
                };
                self.flow(Some(start), Vec::new())?
            }
            Scenario::Fanout => bail!("the fanout scenario is not a load of requests"),
        })
    }

    /// A flow ending at the token endpoint with `authorization_code`.
    fn flow(&self, start: Option<Step>, codes: Vec<String>) -> anyhow::Result<Load> {
        let token_form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("code_verifier", PKCE_VERIFIER)
            .append_pair("code", "")
            .finish();
        Ok(Load::flow(
            self.endpoint("token_endpoint")?,
            Flow {
                start,
                token_headers: vec![
                    (
                        "Content-Type",
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                    ("Authorization", self.basic.clone()),
                ],
                token_form,
                codes,
            },
        ))
    }

    /// The flows' authorization request: the bench client, `openid`, PKCE (S256 of
    /// [`PKCE_VERIFIER`]).
    fn authorize_url(&self) -> anyhow::Result<String> {
        Ok(self.authorize(PKCE_VERIFIER, "openid")?.into())
    }

    /// An authorization request of the bench client for `scope`, with PKCE (S256 of
    /// `verifier`).
    fn authorize(&self, verifier: &str, scope: &str) -> anyhow::Result<url::Url> {
        let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ));
        let mut url = url::Url::parse(&self.endpoint("authorization_endpoint")?)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", "bench")
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", scope)
            .append_pair("state", "bench")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }

    /// A browser's `Cookie` header with the bench user signed in. Lanyard: a real sign-in
    /// (its session cookie as the sign-in form's answer set it). The peer, which has no
    /// sign-in pages in this set-up: a session and a grant made by its minting route with
    /// its own models, and the provider's signed session cookie for them.
    async fn session_cookie(&self) -> anyhow::Result<String> {
        self.session_cookie
            .get_or_try_init(|| async {
                match self.kind {
                    Kind::Lanyard => {
                        self.sign_in_and_redeem().await?;
                        let issuer = url::Url::parse(&self.issuer)?;
                        let cookies = self
                            .jar
                            .cookies(&issuer)
                            .context("no session cookie after signing in")?;
                        Ok(cookies.to_str()?.to_owned())
                    }
                    Kind::Peer => {
                        let answer: Value =
                            self.peer_mint_call("kind=session").await?.json().await?;
                        answer["cookie"]
                            .as_str()
                            .filter(|c| !c.is_empty())
                            .map(str::to_owned)
                            .with_context(|| format!("the peer made no session cookie: {answer}"))
                    }
                }
            })
            .await
            .cloned()
    }

    /// Lanyard's sign-in form as a browser gets it from `GET /authorize` without a session:
    /// (the CSRF cookie, the form's body up to the username's number).
    async fn signin_form(&self) -> anyhow::Result<(String, String)> {
        self.signin_form
            .get_or_try_init(|| async {
                let answer = self.bare.get(self.authorize_url()?).send().await?;
                let status = answer.status();
                let cookie = answer
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|c| c.to_str().ok()?.split(';').next().map(str::to_owned))
                    .collect::<Vec<_>>()
                    .join("; ");
                let page = answer.text().await?;
                if status != reqwest::StatusCode::OK || cookie.is_empty() {
                    bail!("no sign-in page with a CSRF cookie: {status} {page}");
                }
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("csrf", &form_value(&page, "csrf")?)
                    .append_pair(
                        "authorization_request",
                        &form_value(&page, "authorization_request")?,
                    )
                    .append_pair("password", PASSWORD)
                    .append_pair("username", USERNAME)
                    .finish();
                Ok((cookie, body))
            })
            .await
            .cloned()
    }

    /// `n` authorization codes from authorize requests with the session cookie, made at once
    /// on many connections (codes live a minute), oldest first.
    async fn make_codes(&self, n: usize) -> anyhow::Result<Vec<String>> {
        let url = self.authorize_url()?;
        let cookie = self.session_cookie().await?;
        let workers = n.clamp(1, 32);
        let started = Instant::now();
        let mut making = tokio::task::JoinSet::new();
        for w in 0..workers {
            let count = n / workers + usize::from(w < n % workers);
            let (http, url, cookie) = (self.bare.clone(), url.clone(), cookie.clone());
            making.spawn(async move {
                let mut codes = Vec::with_capacity(count);
                for _ in 0..count {
                    let answer = http.get(&url).header("Cookie", &cookie).send().await?;
                    codes.push((Instant::now(), code_in(answer).await?));
                }
                anyhow::Ok(codes)
            });
        }
        let mut codes = Vec::with_capacity(n);
        while let Some(made) = making.join_next().await {
            codes.extend(made??);
        }
        codes.sort_by_key(|(at, _)| *at);
        let took = started.elapsed();
        if n > 1 {
            println!(
                "   {:<14} made {n} codes in {:.1} s",
                self.name(),
                took.as_secs_f64()
            );
        }
        if took > CODE_MAKING_WARN {
            println!(
                "   warning: making the codes took {:.0} s and codes live 60 s: some may expire in the run (a shorter --duration needs fewer)",
                took.as_secs_f64()
            );
        }
        Ok(codes.into_iter().map(|(_, code)| code).collect())
    }

    /// One flow as the wrk script runs it: its first step (or the first code made), then the
    /// code exchanged; an ID token must come back.
    async fn check_flow(&self, token_url: &str, flow: &Flow) -> anyhow::Result<()> {
        let code = match &flow.start {
            Some(step) => {
                let mut request = self.bare.request(step.method.clone(), &step.url);
                for (name, value) in &step.headers {
                    request = request.header(*name, value);
                }
                let mut body = step.body.clone();
                if step.numbered > 0 {
                    body.push('0');
                }
                if !body.is_empty() {
                    request = request.body(body);
                }
                code_in(request.send().await?).await?
            }
            None => flow.codes.first().context("no code was made")?.clone(),
        };
        let mut request = self.bare.post(token_url);
        for (name, value) in &flow.token_headers {
            request = request.header(*name, value);
        }
        let answer = request
            .body(format!("{}{code}", flow.token_form))
            .send()
            .await?;
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        if !status.is_success() || !text.contains("\"id_token\"") {
            bail!("the code exchange answered {status} without an ID token: {text}");
        }
        Ok(())
    }

    async fn user_token(&self) -> anyhow::Result<String> {
        self.user_token
            .get_or_try_init(|| async {
                Ok(match self.kind {
                    Kind::Lanyard => self.sign_in_and_redeem().await?["access_token"]
                        .as_str()
                        .context("no access_token")?
                        .to_owned(),
                    Kind::Peer => self.peer_mint("access", 1).await?.remove(0),
                })
            })
            .await
            .cloned()
    }

    /// `n` fresh refresh tokens, each the head of its own chain.
    async fn refresh_tokens(&self, n: usize) -> anyhow::Result<Vec<String>> {
        match self.kind {
            Kind::Peer => self.peer_mint("refresh", n).await,
            Kind::Lanyard => {
                let mut tokens = Vec::with_capacity(n);
                for _ in 0..n {
                    let answer = self.sign_in_and_redeem().await?;
                    tokens.push(
                        answer["refresh_token"]
                            .as_str()
                            .context("no refresh_token")?
                            .to_owned(),
                    );
                }
                Ok(tokens)
            }
        }
    }

    /// The peer makes tokens with its own models (`POST /mint`): it has no sign-in pages in
    /// this set-up.
    async fn peer_mint(&self, kind: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let answer = self.peer_mint_call(&format!("kind={kind}&n={n}")).await?;
        let tokens: Vec<String> = answer.json().await?;
        if tokens.len() != n {
            bail!("the peer minted {} tokens, not {n}", tokens.len());
        }
        Ok(tokens)
    }

    /// `POST` to the peer's minting route with `query`; its answer, successful.
    async fn peer_mint_call(&self, query: &str) -> anyhow::Result<reqwest::Response> {
        let mint = self.mint.as_deref().context("only the peer mints")?;
        // The route listens once the provider does; it answers at the first try but for a
        // slow start.
        let mut answer = None;
        for _ in 0..50 {
            match self.http.post(format!("{mint}?{query}")).send().await {
                Ok(a) => {
                    answer = Some(a);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let answer = answer.context("the peer's minting route does not answer")?;
        if !answer.status().is_success() {
            let status = answer.status();
            bail!(
                "the peer's minting route ({query}) answered {status}: {} (is bench/peer/provider.mjs in the peer's folder the current one? bench/run copies it)",
                answer.text().await.unwrap_or_default()
            );
        }
        Ok(answer)
    }

    /// Lanyard's code flow as a browser runs it: authorize (the sign-in page the first
    /// time, single sign-on after), then the code exchanged at the token endpoint.
    async fn sign_in_and_redeem(&self) -> anyhow::Result<Value> {
        let verifier = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let authorize = self.authorize(&verifier, "openid offline_access")?;
        let mut answer = self.http.get(authorize).send().await?;
        if answer.status() == reqwest::StatusCode::OK {
            let page = answer.text().await?;
            let form = [
                ("csrf", form_value(&page, "csrf")?),
                (
                    "authorization_request",
                    form_value(&page, "authorization_request")?,
                ),
                ("username", USERNAME.to_owned()),
                ("password", PASSWORD.to_owned()),
            ];
            answer = self
                .http
                .post(format!("{}/signin", self.issuer))
                .form(&form)
                .send()
                .await?;
        }
        let Some(location) = answer
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned)
        else {
            bail!(
                "no redirect after sign-in: {} {}",
                answer.status(),
                answer.text().await.unwrap_or_default()
            );
        };
        let location = location.as_str();
        let code = url::Url::parse(location)?
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .with_context(|| format!("no code in {location}"))?;
        let answer = self
            .http
            .post(self.endpoint("token_endpoint")?)
            .header("Authorization", &self.basic)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &verifier),
            ])
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!(
                "code exchange: {} {}",
                answer.status(),
                answer.text().await?
            );
        }
        Ok(answer.json().await?)
    }

    /// User plus system CPU time of every process (every thread), in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let mut ticks = 0;
        for node in &self.nodes {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", node.pid))?;
            // Fields after the command name, which may hold spaces: state is the first,
            // then utime and stime are fields 14 and 15 of the line.
            let rest = stat.rsplit_once(')').context("/proc/pid/stat")?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = fields.get(11).context("utime")?.parse()?;
            let stime: u64 = fields.get(12).context("stime")?.parse()?;
            ticks += utime + stime;
        }
        Ok(ticks)
    }

    /// `127.0.0.1:<port>` of the first process.
    pub(crate) fn host(&self) -> &str {
        self.nodes[0]
            .base
            .strip_prefix("http://")
            .unwrap_or(&self.nodes[0].base)
    }

    /// The registered client's `Authorization` header value.
    pub(crate) fn basic(&self) -> &str {
        &self.basic
    }

    /// The revocation feed's snapshot, as the registered client reads it.
    pub(crate) async fn feed_snapshot(&self) -> anyhow::Result<Value> {
        let url = self.endpoint("lanyard_revocation_snapshot_endpoint")?;
        let answer = self
            .bare
            .get(&url)
            .header("authorization", &self.basic)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("the feed's snapshot: {}", answer.status());
        }
        Ok(answer.json().await?)
    }

    /// An admin access token (`lanyard:admin`) of the `fanout` scenario's admin client.
    pub(crate) async fn admin_token(&self) -> anyhow::Result<String> {
        let answer = self
            .bare
            .post(self.endpoint("token_endpoint")?)
            .basic_auth(OPS_CLIENT, Some(LANYARD_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "lanyard:admin"),
            ])
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no admin token: {status} {body}"))
    }

    /// Revokes an access token by `jti` through the admin API.
    pub(crate) async fn revoke_jti(&self, token: &str, jti: &str) -> anyhow::Result<()> {
        let answer = self
            .bare
            .post(format!("{}/admin/v1/revocations", self.nodes[0].base))
            .bearer_auth(token)
            .json(&serde_json::json!({ "jti": jti }))
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("the admin API refused the revocation: {}", answer.status());
        }
        Ok(())
    }

    /// Resident memory now, KiB, of every process together.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        self.status_field("VmRSS:")
    }

    /// The most resident memory each process has had, KiB, summed.
    pub(crate) fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        self.status_field("VmHWM:")
    }

    fn status_field(&self, field: &str) -> anyhow::Result<u64> {
        let mut total = 0;
        for node in &self.nodes {
            let status = std::fs::read_to_string(format!("/proc/{}/status", node.pid))?;
            total += status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .with_context(|| format!("{field} in /proc/{}/status", node.pid))?;
        }
        Ok(total)
    }

    /// SIGKILL and wait: nothing of a measured server needs a graceful end.
    pub(crate) async fn stop(self) {
        for mut node in self.nodes {
            let _ = node.child.kill().await;
        }
    }
}

/// A new master key (`lanyard keys master-key`) in a file of `work` readable by its owner
/// only, as Lanyard wants it.
async fn master_key_file(binary: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let out = Command::new(binary)
        .args(["keys", "master-key"])
        .stdin(Stdio::null())
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "lanyard keys master-key: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let path = work.join("master.key");
    let _ = std::fs::remove_file(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(&out.stdout))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes `line` to the command's standard input and checks it succeeded.
async fn feed(mut command: Command, line: &str) -> anyhow::Result<()> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().context("stdin")?;
    stdin.write_all(format!("{line}\n").as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("lanyard: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The code in the `Location` of a redirect, as it stands there (form-encoded: the token
/// request's form takes it so, as the wrk script does), or an error saying what came instead.
async fn code_in(answer: reqwest::Response) -> anyhow::Result<String> {
    let status = answer.status();
    let location = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    match location.as_deref().and_then(code_of) {
        Some(code) if status.is_redirection() => Ok(code.to_owned()),
        _ => bail!(
            "expected a redirect with a code, got {status} {}{}",
            location.map_or_else(String::new, |l| format!("to {l} ")),
            answer.text().await.unwrap_or_default()
        ),
    }
}

/// The `code` parameter of a redirect's URL, undecoded (what the script's
/// `[?&]code=([^&#]+)` takes).
fn code_of(location: &str) -> Option<&str> {
    let query = location.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .filter(|code| !code.is_empty())
}

/// The value of the hidden field `name` in an HTML form.
fn form_value(page: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .with_context(|| format!("no field {name} on the sign-in page"))?
        + marker.len();
    let end = start + page[start..].find('"').context("unterminated value")?;
    // The page's template writes `&#38;` for `&` and so on.
    Ok(html_escape::decode_html_entities(&page[start..end]).into_owned())
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(bytes)
}

/// A port free on loopback now.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `getconf CLK_TCK`: the unit of `/proc/pid/stat`'s CPU times.
pub(crate) async fn clock_ticks_per_second() -> anyhow::Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output().await?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_unescaped_as_a_browser_would() {
        let page = r#"<input type="hidden" name="authorization_request" value="a=1&#38;b=&#x27;2&#39;&amp;c=&lt;&bogus">"#;
        assert_eq!(
            form_value(page, "authorization_request").unwrap(),
            "a=1&b='2'&c=<&bogus"
        );
        assert!(form_value(page, "csrf").is_err());
    }

    #[test]
    fn the_code_is_taken_from_a_redirect_as_it_stands() {
        assert_eq!(
            code_of("http://127.0.0.1:4000/cb?state=s&code=a%2Bb&iss=x"),
            Some("a%2Bb")
        );
        assert_eq!(code_of("http://127.0.0.1:4000/cb?code=c1#frag"), Some("c1"));
        assert_eq!(
            code_of("http://127.0.0.1:4000/cb?error=login_required"),
            None
        );
        assert_eq!(code_of("http://127.0.0.1:4000/cb?xcode=1"), None);
    }

    #[test]
    fn a_database_url_gets_the_fresh_name() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x_1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x_1"
        );
    }
}
