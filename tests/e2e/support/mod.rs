//! The end-to-end harness: a `TestServer` on an ephemeral port with a database and key
//! prefix of its own, a cookie-keeping `Browser` that never follows redirects, and helpers
//! that keep tests short (`assert_oauth_error`, `assert_bearer_challenge`, `code_flow`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub(crate) mod passkey;
pub(crate) mod smtp;
use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::Config;
use lanyard_core::model::ClientSettings;
use lanyard_core::model::User;
use lanyard_core::testing::TestDatabase;
use lanyard_core::users::{NewUser, add_user};
use lanyard_idp::state::AppState;
use lanyard_store::test_redis::{delete_prefix, redis_url, unique_prefix};
use lanyard_store::{Clock, ManualClock, RedisConfig, RedisStore, SystemClock, TokenStore};
use openidconnect::PkceCodeChallenge;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which SQL database a server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    /// A SQLite file of its own.
    Sqlite,
    /// A PostgreSQL database of its own, created for the test and dropped after.
    Postgres,
}

/// Which token store a server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// In process.
    Memory,
    /// The shared test Redis, under a prefix of its own.
    Redis,
}

/// What a test may give a server instead of the defaults: its clock, and the store it
/// runs on (else the one its configuration names, on that clock).
pub(crate) type Custom = (Arc<dyn Clock>, Option<Arc<dyn TokenStore>>);

/// A running Lanyard.
pub(crate) struct TestServer {
    /// The issuer, `http://127.0.0.1:<port>`.
    pub(crate) issuer: String,
    /// The operators' listener (`ops_listen`): `/metrics` and the detailed `/readyz`.
    pub(crate) ops: String,
    /// The server's state: its database, store and keys.
    pub(crate) state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    cleanup: Option<TestDatabase>,
    redis_prefix: Option<(String, String)>,
}

/// The master key of every test server (a test's database is made and dropped with it).
pub(crate) const TEST_MASTER_KEY: &str = "ndde5EnvSyy7l-IsPRb940_6uWpIKkvJ6o89KxsWxFQ";

impl TestServer {
    /// A server on `db` and `store` with default settings.
    pub(crate) async fn start(db: Db, store: Store) -> Self {
        Self::start_with(db, store, |_| {}).await
    }

    /// A server whose configuration `tweak` may change first.
    pub(crate) async fn start_with(db: Db, store: Store, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_custom(db, store, tweak, None).await
    }

    /// A server on SQLite whose clock tests move; its in-process store runs on that clock.
    pub(crate) async fn start_with_clock(clock: ManualClock) -> Self {
        Self::start_with_clock_and(clock, |_| {}).await
    }

    /// [`TestServer::start_with_clock`] with settings changed by `tweak`.
    pub(crate) async fn start_with_clock_and(
        clock: ManualClock,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_custom(
            Db::Sqlite,
            Store::Memory,
            tweak,
            Some((Arc::new(clock), None)),
        )
        .await
    }

    /// A server on `db` and `store` whose clock tests move: every deadline it decides (the
    /// store's too, on Redis) is on that clock.
    pub(crate) async fn start_at(db: Db, store: Store, clock: ManualClock) -> Self {
        Self::start_custom(db, store, |_| {}, Some((Arc::new(clock), None))).await
    }

    /// A server on SQLite over a store the test made, on a clock the test moves.
    pub(crate) async fn start_with_clock_on_store(
        clock: ManualClock,
        store: Arc<dyn TokenStore>,
    ) -> Self {
        Self::start_custom(
            Db::Sqlite,
            Store::Memory,
            |_| {},
            Some((Arc::new(clock), Some(store))),
        )
        .await
    }

    /// A server on SQLite over a store the test made (one it can break).
    pub(crate) async fn start_on_store(store: Arc<dyn TokenStore>) -> Self {
        Self::start_custom(
            Db::Sqlite,
            Store::Memory,
            |_| {},
            Some((Arc::new(SystemClock), Some(store))),
        )
        .await
    }

    async fn start_custom(
        db: Db,
        store: Store,
        tweak: impl FnOnce(&mut Config),
        custom: Option<Custom>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let database = match db {
            Db::Sqlite => TestDatabase::sqlite("lanyard-e2e"),
            Db::Postgres => TestDatabase::postgres("lanyard_e2e").await,
        };
        let database_url = database.url.clone();
        let mut config = Config {
            issuer: format!("http://{addr}"),
            listen: addr,
            database_url,
            // The apps the tests run listen on loopback.
            outbound_allow: lanyard_core::outbound::loopback(),
            master_key: Some(TEST_MASTER_KEY.to_owned()),
            // Mail without a relay goes to a folder of the server's own, never the clone.
            mail: lanyard_core::config::MailPolicy {
                folder: Some(std::env::temp_dir().join(format!(
                    "lanyard-e2e-outbox-{}",
                    lanyard_core::crypto::random_token(9)
                ))),
                ..lanyard_core::config::MailPolicy::default()
            },
            ..Config::default()
        };
        let mut redis_prefix = None;
        if store == Store::Redis {
            let url = redis_url();
            let prefix = unique_prefix();
            config.redis_url = Some(url.clone());
            config.redis_prefix = prefix.clone();
            redis_prefix = Some((url, prefix));
        }
        tweak(&mut config);
        let mut server = Self::serve(listener, config, custom).await;
        server.cleanup = Some(database);
        server.redis_prefix = redis_prefix;
        server
    }

    /// Another node of the same deployment, as behind a load balancer: the same database,
    /// Redis (and prefix) and issuer, its own port and process state. `custom` gives it a
    /// clock and store (an in-process store is never shared: give a Redis one to share).
    /// Its `issuer` field is its own address (for `url`); the tokens it signs name the
    /// deployment's issuer, `self.state.config.issuer`. Stopping it leaves the shared
    /// database and Redis keys to the first node.
    pub(crate) async fn another_node(&self, custom: Option<Custom>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config {
            listen: addr,
            ..self.state.config.clone()
        };
        Self::serve(listener, config, custom).await
    }

    /// Builds the state for `config` and serves it on `listener`; no cleanup of its own.
    async fn serve(
        listener: tokio::net::TcpListener,
        config: Config,
        custom: Option<Custom>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = match custom {
            Some((clock, store)) => AppState::build_with(config, clock, store).await.unwrap(),
            None => AppState::build(config).await.unwrap(),
        };
        let (shutdown, signal) = oneshot::channel::<()>();
        let serving = state.clone();
        let ops = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ops_addr = ops.local_addr().unwrap();
        let task = tokio::spawn(async move {
            lanyard_idp::serve_split(listener, Some(ops), serving, async {
                let _ = signal.await;
            })
            .await
            .unwrap();
        });
        Self {
            issuer: format!("http://{addr}"),
            ops: format!("http://{ops_addr}"),
            state,
            shutdown: Some(shutdown),
            task: Some(task),
            cleanup: None,
            redis_prefix: None,
        }
    }

    /// A URL on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Registers `resources` as the APIs client `client_id` may ask tokens for (RFC 8707).
    pub(crate) async fn allow_resources(&self, client_id: &str, resources: &[&str]) {
        lanyard_core::clients::update(
            &self.state,
            client_id,
            &serde_json::json!({ "resources": resources }),
            "test",
        )
        .await
        .unwrap();
    }

    /// A URL on the operators' listener.
    pub(crate) fn ops_url(&self, path: &str) -> String {
        format!("{}{path}", self.ops)
    }

    /// Adds a user (password as given).
    pub(crate) async fn user(&self, username: &str, password: &str) -> User {
        add_user(
            &self.state.db,
            &self.state.passwords,
            NewUser {
                username: username.to_owned(),
                password: password.to_owned(),
                email: Some(format!("{username}@example.com")),
                display_name: Some(format!("{username} Example")),
            },
            SystemClock.now(),
        )
        .await
        .unwrap()
    }

    /// Registers a client.
    pub(crate) async fn client(&self, spec: ClientSpec) -> TestClient {
        let redirect_uri = format!("https://{}.example.com/callback", spec.id);
        let (client, secret) = add_client(
            &self.state.db,
            &self.state.server_keys,
            NewClient {
                settings: ClientSettings {
                    name: format!("The {} app", spec.id),
                    public: spec.public,
                    redirect_uris: if spec.grants.contains(&"authorization_code") {
                        vec![redirect_uri.clone()]
                    } else {
                        vec![]
                    },
                    grant_types: spec.grants.iter().map(|g| g.parse().unwrap()).collect(),
                    scopes: spec.scopes.iter().map(|s| (*s).to_owned()).collect(),
                    first_party: spec.first_party,
                    ..ClientSettings::new(spec.id.to_owned())
                },
                secret: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
        TestClient {
            id: client.settings.client_id,
            secret,
            redirect_uri,
        }
    }

    /// Changes the settings of the registered client `client_id` as `change` says.
    pub(crate) async fn change_client(
        &self,
        client_id: &str,
        change: impl FnOnce(&mut lanyard_core::model::ClientSettings),
    ) {
        let clients = self.state.db.clients();
        let mut client = clients.get(client_id).await.unwrap().unwrap();
        let seen = client.updated_at;
        change(&mut client.settings);
        assert!(
            clients.update(&client, seen).await.unwrap(),
            "changed meanwhile"
        );
    }

    /// Makes `other` (a node of this deployment) the one that removes the shared database
    /// and Redis keys when it stops: this one can stop first (a node leaving).
    pub(crate) fn hand_data_to(&mut self, other: &mut TestServer) {
        other.cleanup = self.cleanup.take();
        other.redis_prefix = self.redis_prefix.take();
    }

    /// The token store, for reaching into it.
    pub(crate) fn store(&self) -> Arc<dyn TokenStore> {
        self.state.store.clone()
    }

    /// Stops the server and removes its database and keys.
    pub(crate) async fn stop(mut self) {
        self.shut_down().await;
    }

    async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(database) = self.cleanup.take() {
            database.remove().await;
        }
        if let Some((url, prefix)) = self.redis_prefix.take() {
            delete_prefix(&url, &prefix);
        }
    }
}

impl Drop for TestServer {
    /// A test that panicked did not call `stop`: clean up on a thread of its own.
    fn drop(&mut self) {
        if self.cleanup.is_none() && self.redis_prefix.is_none() {
            return;
        }
        let mut rest = TestServer {
            issuer: String::new(),
            ops: String::new(),
            state: self.state.clone(),
            shutdown: self.shutdown.take(),
            task: None,
            cleanup: self.cleanup.take(),
            redis_prefix: self.redis_prefix.take(),
        };
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(rest.shut_down());
            }
        });
    }
}

/// A client to register.
pub(crate) struct ClientSpec {
    /// `client_id`.
    pub(crate) id: &'static str,
    /// No secret.
    pub(crate) public: bool,
    /// Grant types.
    pub(crate) grants: &'static [&'static str],
    /// Scopes.
    pub(crate) scopes: &'static [&'static str],
    /// First party.
    pub(crate) first_party: bool,
}

impl ClientSpec {
    /// A confidential web app of the company's own (first-party: no consent page): code +
    /// refresh, the default scopes.
    pub(crate) fn web(id: &'static str) -> Self {
        Self {
            id,
            public: false,
            grants: &["authorization_code", "refresh_token"],
            scopes: &["openid", "profile", "email", "offline_access"],
            first_party: true,
        }
    }

    /// [`ClientSpec::web`] for an app that is not the company's own: the person is asked to
    /// allow it, and it gets a refresh token only with `offline_access`.
    pub(crate) fn third_party(id: &'static str) -> Self {
        Self {
            first_party: false,
            ..Self::web(id)
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub(crate) struct TestClient {
    /// `client_id`.
    pub(crate) id: String,
    /// The secret Lanyard made, for confidential clients.
    pub(crate) secret: Option<String>,
    /// Its one redirect URI.
    pub(crate) redirect_uri: String,
}

/// A browser: keeps cookies, never follows redirects.
#[derive(Clone)]
pub(crate) struct Browser {
    /// The HTTP client.
    pub(crate) http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A fresh browser with no cookies.
    pub(crate) fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("lanyard-e2e")
                .build()
                .unwrap(),
        }
    }

    /// GET.
    pub(crate) async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.unwrap()
    }

    /// Submits the sign-in form found in `page`.
    pub(crate) async fn sign_in(
        &self,
        server: &TestServer,
        page: &str,
        username: &str,
        password: &str,
        remember: bool,
    ) -> reqwest::Response {
        self.sign_in_at(&server.issuer, page, username, password, remember)
            .await
    }

    /// [`Browser::sign_in`] at the Lanyard whose issuer URL is `issuer`.
    pub(crate) async fn sign_in_at(
        &self,
        issuer: &str,
        page: &str,
        username: &str,
        password: &str,
        remember: bool,
    ) -> reqwest::Response {
        let mut form = vec![
            ("csrf", form_value(page, "csrf")),
            (
                "authorization_request",
                form_value(page, "authorization_request"),
            ),
            ("username", username.to_owned()),
            ("password", password.to_owned()),
        ];
        if remember {
            form.push(("remember_me", "on".to_owned()));
        }
        self.http
            .post(format!("{issuer}/signin"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Answers the consent page `page` with `decision` (`allow` or `deny`).
    pub(crate) async fn consent(
        &self,
        server: &TestServer,
        page: &str,
        decision: &str,
    ) -> reqwest::Response {
        let form = [
            ("csrf", form_value(page, "csrf")),
            (
                "authorization_request",
                form_value(page, "authorization_request"),
            ),
            ("decision", decision.to_owned()),
        ];
        self.http
            .post(server.url("/consent"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// `response` if it is not the consent page; else the answer to allowing it (what a
    /// person who agrees sees next).
    pub(crate) async fn allowing(
        &self,
        server: &TestServer,
        response: reqwest::Response,
    ) -> reqwest::Response {
        if response.status() != StatusCode::OK {
            return response;
        }
        let page = response.text().await.unwrap();
        assert!(
            page.contains(r#"action="/consent""#),
            "expected the consent page:\n{page}"
        );
        self.consent(server, &page, "allow").await
    }
}

/// The value of the form field `name` in an HTML page (as rendered by askama).
pub(crate) fn form_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in the page:\n{page}"))
        + marker.len();
    let end = start + page[start..].find('"').unwrap();
    html_escape::decode_html_entities(&page[start..end]).into_owned()
}

/// A PKCE pair: (challenge, verifier).
pub(crate) fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_owned(), verifier.secret().to_owned())
}

/// The authorization URL for `client` with `extra` parameters (which override the defaults).
pub(crate) fn authorize_url(
    server: &TestServer,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("client_id".into(), client.id.clone()),
        ("redirect_uri".into(), client.redirect_uri.clone()),
        ("response_type".into(), "code".into()),
        ("scope".into(), "openid profile email".into()),
        ("state".into(), "st-123".into()),
        ("nonce".into(), "n-456".into()),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// The `Location` of a redirect and its query parameters.
pub(crate) fn redirect_params(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = response
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} response", response.status()))
        .to_str()
        .unwrap()
        .to_owned();
    let url = url::Url::parse(&location).unwrap();
    let params = url.query_pairs().into_owned().collect();
    let base = format!("{}{}", url.origin().ascii_serialization(), url.path());
    (base, params)
}

/// Signs `username` in for `client` and returns the code from the redirect.
pub(crate) async fn authorize_with_sign_in(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
    username: &str,
    password: &str,
) -> String {
    let page = browser.get(&authorize_url(server, client, extra)).await;
    assert_eq!(page.status(), StatusCode::OK, "expected the sign-in page");
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(server, &page, username, password, false)
        .await;
    // A third-party app: the person allows it (tests of refusing are in `consent`).
    let answer = browser.allowing(server, answer).await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "sign-in failed: {}",
        answer.text().await.unwrap_or_default()
    );
    let (to, params) = redirect_params(&answer);
    assert_eq!(to, client.redirect_uri);
    params.get("code").cloned().expect("a code")
}

/// An access token signed by the server's key that expired two minutes ago, for `sub` and
/// `client_id`, meant for `client_id`.
pub(crate) async fn expired_access_token(
    server: &TestServer,
    sub: &str,
    client_id: &str,
) -> String {
    let now = lanyard_store::Clock::now(&lanyard_store::SystemClock).as_secs();
    server
        .state
        .keys
        .sign(
            "at+jwt",
            &lanyard_core::tokens::AccessClaims {
                iss: server.issuer.clone(),
                sub: sub.to_owned(),
                aud: vec![client_id.to_owned()],
                exp: now - 120,
                iat: now - 720,
                jti: "expired".into(),
                client_id: client_id.to_owned(),
                origin: None,
                act: None,
                cnf: None,
                scope: "openid".into(),
                sid: None,
                auth_time: None,
                acr: None,
                amr: Vec::new(),
                roles: Vec::new(),
                groups: Vec::new(),
            },
        )
        .await
        .unwrap()
}

/// Presents a refresh token at the token endpoint, optionally narrowing the scope.
pub(crate) async fn refresh(
    server: &TestServer,
    client: &TestClient,
    token: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    token_request(server, client, &form).await
}

/// Revokes `target` the way the server does (durably), at `at` seconds.
pub(crate) async fn lanyard_revoke(server: &TestServer, target: lanyard_store::Target, at: i64) {
    lanyard_core::revocation::revoke(
        &server.state,
        target,
        lanyard_store::Timestamp::from_secs(at),
        "test",
    )
    .await
    .unwrap();
}

/// POSTs to the token endpoint with client_secret_basic (or `client_id` for public clients).
pub(crate) async fn token_request(
    server: &TestServer,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client_post(server, "/token", client, form).await
}

/// POSTs a form to a client-authenticated endpoint (`/token`, `/revoke`, `/introspect`) with
/// client_secret_basic (or `client_id` for public clients).
pub(crate) async fn client_post(
    server: &TestServer,
    path: &str,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let http = reqwest::Client::new();
    let mut request = http.post(server.url(path));
    let mut form: Vec<(&str, &str)> = form.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    request.form(&form).send().await.unwrap()
}

/// The whole code flow for a confidential client: sign in, redeem with PKCE; the token
/// response as JSON.
pub(crate) async fn code_flow(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
    username: &str,
    password: &str,
) -> Value {
    code_flow_for(server, browser, client, scope, (username, password), None).await
}

/// [`code_flow`], the code redeemed for a token meant for `resource` (RFC 8707) when given.
pub(crate) async fn code_flow_for(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    scope: &str,
    (username, password): (&str, &str),
    resource: Option<&str>,
) -> Value {
    let (challenge, verifier) = pkce();
    let code = authorize_with_sign_in(
        server,
        browser,
        client,
        &[
            ("scope", scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
        username,
        password,
    )
    .await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &client.redirect_uri),
        ("code_verifier", &verifier),
    ];
    form.extend(resource.map(|r| ("resource", r)));
    let response = token_request(server, client, &form).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// [`code_flow`] for `username` with scope `openid offline_access` (so with a refresh
/// token), password `correct horse battery staple`.
pub(crate) async fn offline_tokens(
    server: &TestServer,
    client: &TestClient,
    username: &str,
) -> Value {
    code_flow(
        server,
        &Browser::new(),
        client,
        "openid offline_access",
        username,
        "correct horse battery staple",
    )
    .await
}

/// A JWT's header and claims, unverified.
pub(crate) fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts.next().expect("a JWT part"))
            .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()
    };
    let header = part();
    let claims = part();
    (header, claims)
}

/// Asserts an RFC 6749 §5.2 error: status, `error`, no-store.
pub(crate) async fn assert_oauth_error(
    response: reqwest::Response,
    status: StatusCode,
    error: &str,
) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    body
}

/// Asserts an RFC 6750 §3 answer from Lanyard itself (realm "lanyard"): status and the
/// `WWW-Authenticate: Bearer` challenge with this `error` (none when `None`).
pub(crate) fn assert_bearer_challenge(
    response: &reqwest::Response,
    status: StatusCode,
    error: Option<&str>,
) -> String {
    assert_realm_challenge(response, "lanyard", status, error)
}

/// [`assert_bearer_challenge`] for a resource server whose realm is `realm`.
pub(crate) fn assert_realm_challenge(
    response: &reqwest::Response,
    realm: &str,
    status: StatusCode,
    error: Option<&str>,
) -> String {
    assert_eq!(response.status(), status);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("a WWW-Authenticate header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{realm}\"")),
        "{challenge}"
    );
    match error {
        Some(e) => assert!(challenge.contains(&format!("error=\"{e}\"")), "{challenge}"),
        None => assert!(!challenge.contains("error="), "{challenge}"),
    }
    challenge
}

/// A Redis store whose server can be killed (for outage tests).
pub(crate) async fn redis_store_at(url: &str, prefix: &str) -> Arc<dyn TokenStore> {
    let mut redis = RedisConfig::new(url);
    redis.prefix = prefix.to_owned();
    let store = RedisStore::connect(lanyard_store::StoreConfig::default(), redis)
        .await
        .unwrap();
    store.reseed(Vec::new()).await.unwrap();
    Arc::new(store)
}

/// Every combination of database and store.
pub(crate) const ALL_BACKENDS: [(Db, Store); 4] = [
    (Db::Sqlite, Store::Memory),
    (Db::Sqlite, Store::Redis),
    (Db::Postgres, Store::Memory),
    (Db::Postgres, Store::Redis),
];
