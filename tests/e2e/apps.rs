//! Lanyard with the two demo apps built on `lanyard-rp`: single sign-on across apps, back to
//! the page asked for, revocation reaching both APIs within a second, RFC 6750 answers, the
//! guard failing closed when its revocation source goes silent, and the service client
//! renewing once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lanyard_demo::{AppState as Demo, DemoConfig};
use lanyard_rp::StoreSource;
use lanyard_rp::client::{ClientCredentials, ClientError, ServiceClient, TokenSource};
use lanyard_store::{
    Clock, ManualClock, RedisConfig, RedisStore, StoreConfig, SystemClock, Target, TokenStore,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_realm_challenge, code_flow,
};

const PASSWORD: &str = "correct horse battery staple";

pub(crate) struct App {
    pub(crate) base: String,
    pub(crate) client: TestClient,
    pub(crate) state: Demo,
}

/// Waits until `app`'s revocation mirror has applied an event after `before` (its
/// `last_event` then). Revocations reach apps by push within milliseconds; the wait is for
/// that delivery, bounded at 5 s of real time. Time itself is the test's clock.
pub(crate) async fn mirrored(app: &App, before: Option<u64>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.guard().mirror().status().last_event == before {
        assert!(
            Instant::now() < deadline,
            "the app never heard of the revocation"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Registers `name` as a first-party client and runs its demo app following `source`.
pub(crate) async fn start_app(
    server: &TestServer,
    name: &'static str,
    source: Arc<dyn TokenStore>,
    bound: Duration,
) -> App {
    start_app_on(server, name, Arc::new(StoreSource(source)), bound).await
}

/// [`start_app`] with any revocation source (the HTTP feed, say).
pub(crate) async fn start_app_on(
    server: &TestServer,
    name: &'static str,
    source: Arc<dyn lanyard_rp::RevocationSource>,
    bound: Duration,
) -> App {
    start_app_at(server, name, source, bound, server.state.clock.clone()).await
}

/// [`start_app_on`] with a clock of the app's own (the server's, unless a test wants them
/// to disagree).
pub(crate) async fn start_app_at(
    server: &TestServer,
    name: &'static str,
    source: Arc<dyn lanyard_rp::RevocationSource>,
    bound: Duration,
    clock: Arc<dyn Clock>,
) -> App {
    start_app_bound(server, name, source, bound, clock, "127.0.0.1").await
}

/// [`start_app_at`] listening on `ip` (another loopback address than Lanyard's is another
/// site to a browser).
pub(crate) async fn start_app_bound(
    server: &TestServer,
    name: &'static str,
    source: Arc<dyn lanyard_rp::RevocationSource>,
    bound: Duration,
    clock: Arc<dyn Clock>,
    ip: &str,
) -> App {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let (client, secret) = lanyard_core::clients::add_client(
        &server.state.db,
        &server.state.server_keys,
        lanyard_core::clients::NewClient {
            settings: lanyard_core::model::ClientSettings {
                name: format!("The {name} app"),
                redirect_uris: vec![format!("{base}/callback")],
                post_logout_redirect_uris: vec![format!("{base}/")],
                backchannel_logout_uri: Some(format!("{base}/backchannel-logout")),
                first_party: true,
                ..lanyard_core::model::ClientSettings::new(name)
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    let config = DemoConfig {
        name: name.into(),
        issuer: server.issuer.clone(),
        client_id: client.client_id.clone(),
        client_secret: secret.clone().unwrap(),
        listen: addr,
        base_url: base.clone(),
        staleness_bound: bound,
        clock,
    };
    let (router, state) = lanyard_demo::app(&config, source).await.unwrap();
    tokio::spawn(lanyard_demo::serve(
        listener,
        router,
        std::future::pending(),
    ));
    App {
        client: TestClient {
            id: client.settings.client_id,
            secret,
            redirect_uri: format!("{base}/callback"),
        },
        base,
        state,
    }
}

/// A demo app following revocations through its own connection to the server's Redis, with
/// the default staleness bound.
pub(crate) async fn on_redis(server: &TestServer, name: &'static str) -> App {
    start_app(
        server,
        name,
        redis_source(server).await,
        Duration::from_secs(10),
    )
    .await
}

/// A second connection to the server's Redis (one, a cluster, or through Sentinel), as a
/// separate app process would have.
pub(crate) async fn redis_source(server: &TestServer) -> Arc<dyn TokenStore> {
    let config = &server.state.config;
    let mut redis = RedisConfig::new(config.redis_url.clone().unwrap());
    redis.topology = config.redis_topology;
    redis.sentinel_master = config.redis_sentinel_master.clone();
    redis.prefix = config.redis_prefix.clone();
    Arc::new(
        RedisStore::connect(StoreConfig::default(), redis)
            .await
            .unwrap(),
    )
}

/// Follows redirects like a browser, returning every (status, url) and the last body.
pub(crate) async fn browse(browser: &Browser, start: &str) -> (Vec<(StatusCode, String)>, String) {
    let mut url = url::Url::parse(start).unwrap();
    let mut steps = Vec::new();
    for _ in 0..10 {
        let response = browser.get(url.as_str()).await;
        let status = response.status();
        steps.push((status, url.to_string()));
        match response.headers().get("location") {
            Some(location) if status.is_redirection() => {
                url = url.join(location.to_str().unwrap()).unwrap();
            }
            _ => return (steps, response.text().await.unwrap()),
        }
    }
    panic!("too many redirects: {steps:?}");
}

/// Signs in on the page the browser was led to, and follows on.
pub(crate) async fn sign_in_and_follow(
    server: &TestServer,
    browser: &Browser,
    page: &str,
) -> (Vec<(StatusCode, String)>, String) {
    let answer = browser
        .sign_in(server, page, "alice", PASSWORD, false)
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let next = answer.headers()["location"].to_str().unwrap().to_owned();
    browse(browser, &next).await
}

#[tokio::test]
async fn one_sign_in_for_both_apps_and_back_to_the_page_asked_for() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    let browser = Browser::new();

    let (steps, page) = browse(&browser, &format!("{}/profile?tab=tokens", wiki.base)).await;
    let (status, at) = steps.last().unwrap();
    assert_eq!(*status, StatusCode::OK);
    assert!(
        at.starts_with(&server.url("/authorize")),
        "led to Lanyard's sign-in: {steps:?}"
    );
    assert!(page.contains("The wiki app"));
    let (steps, page) = sign_in_and_follow(&server, &browser, &page).await;
    assert_eq!(
        steps.last().unwrap().1,
        format!("{}/profile?tab=tokens", wiki.base),
        "back where they were"
    );
    assert!(page.contains("alice Example"), "{page}");

    let (steps, page) = browse(&browser, &format!("{}/", billing.base)).await;
    assert!(
        steps
            .iter()
            .all(|(status, url)| !(url.starts_with(&server.url("/authorize"))
                && *status == StatusCode::OK)),
        "no sign-in page at the second app: {steps:?}"
    );
    assert_eq!(
        steps.last().unwrap(),
        &(StatusCode::OK, format!("{}/", billing.base))
    );
    assert!(page.contains("alice Example") && page.contains("billing"));

    // An open redirect is not possible through return_to.
    let (steps, _) = browse(
        &browser,
        &format!("{}/login?return_to=//evil.example/x", wiki.base),
    )
    .await;
    assert!(
        steps
            .iter()
            .all(|(_, url)| !url.contains("evil.example/x") || url.contains("return_to")),
        "{steps:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn revocation_reaches_both_apis_within_a_second() {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    let tokens = alice_at_each(&server, &[&wiki, &billing], Some(&alice.sub)).await;
    let revoked_at = Instant::now();
    server
        .store()
        .revoke(Target::Sub(alice.sub.clone()), SystemClock.now())
        .await
        .unwrap();
    for (app, (base, token)) in [&wiki, &billing].into_iter().zip(&tokens) {
        let r = refused_within_a_second(base, token, revoked_at).await;
        let challenge = assert_realm_challenge(
            &r,
            &app.client.id,
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
        );
        assert!(challenge.contains("revoked"), "{challenge}");
    }
    server.stop().await;
}

/// Signs alice in at each app's client; returns each app's base URL and alice's access
/// token there, after checking the app's API takes it (as `sub`, when given).
pub(crate) async fn alice_at_each(
    server: &TestServer,
    apps: &[&App],
    sub: Option<&str>,
) -> Vec<(String, String)> {
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    for app in apps {
        let t = code_flow(
            server,
            &Browser::new(),
            &app.client,
            "openid profile",
            "alice",
            PASSWORD,
        )
        .await;
        let token = t["access_token"].as_str().unwrap().to_owned();
        let r = http
            .get(format!("{}/api/me", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let me: Value = r.json().await.unwrap();
        if let Some(sub) = sub {
            assert_eq!(me["sub"], sub);
        }
        assert_eq!(me["client_id"], app.client.id.as_str());
        tokens.push((app.base.clone(), token));
    }
    tokens
}

/// Polls the app at `base` with `token` until its API answers 401, and returns that answer;
/// fails if it still accepts the token a second after `since`.
pub(crate) async fn refused_within_a_second(
    base: &str,
    token: &str,
    since: Instant,
) -> reqwest::Response {
    let http = reqwest::Client::new();
    loop {
        let r = http
            .get(format!("{base}/api/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::UNAUTHORIZED {
            return r;
        }
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{base} still accepts the token 1 s after it was revoked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn the_apis_answer_as_rfc_6750_says() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", wiki.base);

    let none = http.get(url("/api/me")).send().await.unwrap();
    assert_eq!(
        assert_realm_challenge(&none, "wiki", StatusCode::UNAUTHORIZED, None),
        r#"Bearer realm="wiki""#
    );
    let expired = crate::support::expired_access_token(&server, &alice.sub, "wiki").await;
    let r = http
        .get(url("/api/me"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    let challenge =
        assert_realm_challenge(&r, "wiki", StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert!(challenge.contains("expired"), "{challenge}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");

    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki.client,
        "openid",
        "alice",
        PASSWORD,
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap();
    let r = http
        .get(url("/api/reports"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let challenge = assert_realm_challenge(
        &r,
        "wiki",
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
    );
    assert!(challenge.contains(r#"scope="reports:read""#), "{challenge}");
    let id_token = tokens["id_token"].as_str().unwrap();
    let r = http
        .get(url("/api/me"))
        .bearer_auth(id_token)
        .send()
        .await
        .unwrap();
    let challenge =
        assert_realm_challenge(&r, "wiki", StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert!(challenge.contains("not an access token"), "{challenge}");
    let r = http
        .get(format!("{}?access_token={token}", url("/api/me")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no tokens in URLs");
    server.stop().await;
}

/// A sign-in that could not be completed (here `prompt=none` with no session: the issuer
/// answers `login_required`) ends on the app's page saying so, with a way to try again: a 401
/// that carries a challenge naming where to sign in, as every 401 must (RFC 9110 §11.6.1).
#[tokio::test]
async fn a_sign_in_that_could_not_complete_is_a_401_with_a_challenge() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let wiki = on_redis(&server, "wiki").await;
    let browser = Browser::new();
    let login = browser.get(&format!("{}/login", wiki.base)).await;
    assert!(login.status().is_redirection());
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let answer = browser.get(&format!("{authorize}&prompt=none")).await;
    assert!(answer.status().is_redirection());
    let callback = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.contains("error=login_required"), "{callback}");
    let page = browser.get(&callback).await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        page.headers()["www-authenticate"],
        r#"Cookie realm="sign-in", form-action="/login""#
    );
    let page = page.text().await.unwrap();
    assert!(
        page.contains("You are not signed in") && page.contains(r#"href="/login""#),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn an_ended_app_session_says_so_before_signing_in_again() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let browser = Browser::new();
    let (_, page) = browse(&browser, &format!("{}/", wiki.base)).await;
    sign_in_and_follow(&server, &browser, &page).await;
    wiki.state.signin().clear_sessions();
    let (steps, page) = browse(&browser, &format!("{}/profile", wiki.base)).await;
    assert_eq!(steps.last().unwrap().0, StatusCode::OK);
    assert!(steps.last().unwrap().1.contains("expired=1"), "{steps:?}");
    assert!(
        page.contains("Your session has ended") && page.contains("Sign in again"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_guard_fails_closed_when_its_source_goes_silent() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let store = crate::support::redis_store_at(&own.url(), "e2e:").await;
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_on_store(clock.clone(), store.clone()).await;
    server.user("alice", PASSWORD).await;
    let source = crate::support::redis_store_at(&own.url(), "e2e:").await;
    let wiki = start_app(&server, "wiki", source, Duration::from_secs(2)).await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki.client,
        "openid",
        "alice",
        PASSWORD,
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{}/api/me", wiki.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    own.kill();
    // The source is gone: past the staleness bound (2 s) on the app's clock, nothing it
    // heard before counts.
    clock.advance(Duration::from_millis(2600));
    let r = http
        .get(format!("{}/api/me", wiki.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "stale revocations: neither 200 nor 401"
    );
    assert!(r.headers().get("retry-after").is_some());
    let health = http
        .get(format!("{}/health", wiki.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    server.stop().await;
}

/// Counts what the client asks of its token source.
struct Counting {
    inner: ClientCredentials,
    renewals: AtomicUsize,
}

#[async_trait]
impl TokenSource for Counting {
    async fn token(&self) -> Result<String, ClientError> {
        self.inner.token().await
    }
    async fn renew(&self, refused: &str) -> Result<String, ClientError> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        self.inner.renew(refused).await
    }
}

#[tokio::test]
async fn the_service_client_renews_once_and_never_loops() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let billing = start_app(&server, "billing", server.store(), Duration::from_secs(10)).await;
    let job = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            ..ClientSpec::web("reports-job")
        })
        .await;
    server.allow_resources(&job.id, &["billing"]).await;
    let source = Arc::new(Counting {
        inner: ClientCredentials::new(
            &server.url("/token"),
            &job.id,
            job.secret.as_deref().unwrap(),
            Some("reports:read"),
            Some("billing"),
        ),
        renewals: AtomicUsize::new(0),
    });
    let client = ServiceClient::new(source.clone());
    let reports = format!("{}/api/reports", billing.base);
    assert_eq!(
        client.send(|h| h.get(&reports)).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        source.renewals.load(Ordering::SeqCst),
        0,
        "the token is cached"
    );

    // Revoke every token of the job issued so far; the next second's token is fresh.
    let seen = billing.state.guard().mirror().status().last_event;
    server
        .store()
        .revoke(Target::ClientId(job.id.clone()), clock.now())
        .await
        .unwrap();
    mirrored(&billing, seen).await;
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        client.send(|h| h.get(&reports)).await.unwrap().status(),
        StatusCode::OK,
        "renewed and resent"
    );
    assert_eq!(source.renewals.load(Ordering::SeqCst), 1);

    // A renewed token refused again is answered, not retried forever.
    let seen = billing.state.guard().mirror().status().last_event;
    server
        .store()
        .revoke(
            Target::ClientId(job.id.clone()),
            clock.now().plus(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    mirrored(&billing, seen).await;
    let refused = client.send(|h| h.get(&reports)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        source.renewals.load(Ordering::SeqCst),
        2,
        "one renewal per call, no loop"
    );
    server.stop().await;
}

/// The profile page calls the app's API with the signed-in person's token: a refused token is
/// refreshed once and the call resent; concurrent pages share one refresh (a refresh token
/// used twice would end the session); once the issuer refuses the refresh, the person is
/// told their session ended and sent to sign in again, coming back to the profile. The store gives no grace to a refresh token used twice
/// (as Hydra or Keycloak with rotation may not), so a second refresh would show.
#[tokio::test]
async fn calls_on_behalf_of_the_user_refresh_once() {
    let clock = ManualClock::new(SystemClock.now());
    let strict: Arc<dyn TokenStore> = Arc::new(
        lanyard_store::MemoryStore::with_clock(
            StoreConfig {
                refresh_grace: Duration::ZERO,
                ..lanyard_core::config::Config::default().store_config()
            },
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    let server = TestServer::start_with_clock_on_store(clock.clone(), strict.clone()).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = start_app(&server, "wiki", strict, Duration::from_secs(10)).await;
    let browser = Browser::new();
    let (_, page) = browse(&browser, &format!("{}/profile", wiki.base)).await;
    let (_, profile) = sign_in_and_follow(&server, &browser, &page).await;
    let sees = format!("sees subject <code>{}</code>", alice.sub);
    assert!(profile.contains(&sees), "{profile}");

    let profile_url = format!("{}/profile", wiki.base);
    for concurrent in [false, true] {
        // Every access token alice holds so far is revoked; her refresh token is not.
        let seen = wiki.state.guard().mirror().status().last_event;
        server
            .store()
            .revoke(Target::Sub(alice.sub.clone()), clock.now())
            .await
            .unwrap();
        mirrored(&wiki, seen).await;
        clock.advance(Duration::from_secs(1));
        let pages = if concurrent {
            let (a, b, c) = tokio::join!(
                browse(&browser, &profile_url),
                browse(&browser, &profile_url),
                browse(&browser, &profile_url)
            );
            vec![a, b, c]
        } else {
            vec![browse(&browser, &profile_url).await]
        };
        for (steps, page) in pages {
            assert_eq!(steps.len(), 1, "no trip to sign-in: {steps:?}");
            assert!(page.contains(&sees), "renewed and resent: {page}");
        }
    }

    // Signed out everywhere: refreshing is refused, the page says so, then sign-in follows.
    server
        .store()
        .revoke_user_families(&alice.sub)
        .await
        .unwrap();
    let seen = wiki.state.guard().mirror().status().last_event;
    server
        .store()
        .revoke(Target::Sub(alice.sub.clone()), clock.now())
        .await
        .unwrap();
    mirrored(&wiki, seen).await;
    clock.advance(Duration::from_secs(1));
    let (steps, page) = browse(&browser, &profile_url).await;
    assert_eq!(
        steps.last().unwrap().1,
        format!("{}/login?return_to=%2Fprofile&expired=1", wiki.base),
        "told, then to sign-in and back to the profile: {steps:?}"
    );
    assert!(page.contains("Your session has ended"), "{page}");
    assert!(page.contains("Sign in again"), "{page}");
    server.stop().await;
}

/// The README's playground: Lanyard on its embedded defaults plus wiki and billing. Sign in
/// at one with the printed credentials, open the other: no password asked.
#[tokio::test]
async fn the_playground_gives_one_sign_in_for_both_apps() {
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let ports = lanyard_demo::playground::Ports {
        lanyard: free_port(),
        wiki: free_port(),
        billing: free_port(),
    };
    let dir = std::env::temp_dir().join(format!(
        "lanyard-playground-{}",
        lanyard_core::crypto::random_token(8).replace(['-', '_'], "x")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let running = lanyard_demo::playground::start(ports, &dir).await.unwrap();
    let url = |app: &str| {
        running
            .apps
            .iter()
            .find(|(name, _)| name == app)
            .map(|(_, url)| url.clone())
            .unwrap()
    };
    let browser = Browser::new();
    let (_, page) = browse(&browser, &format!("{}/", url("wiki"))).await;
    let answer = browser
        .sign_in_at(
            &running.issuer,
            &page,
            &running.username,
            &running.password,
            false,
        )
        .await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "the printed credentials work"
    );
    let (_, page) = browse(&browser, answer.headers()["location"].to_str().unwrap()).await;
    assert!(
        page.contains("Signed in as <strong id=\"user\">Demo User</strong>"),
        "{page}"
    );
    let (steps, page) = browse(&browser, &format!("{}/", url("billing"))).await;
    assert!(
        steps.iter().all(|(_, u)| !u.contains("/signin")) && !page.contains("name=\"password\""),
        "no password asked at the second app: {steps:?}"
    );
    assert!(
        page.contains("<h1>billing</h1>") && page.contains("Demo User"),
        "{page}"
    );
    // The demo user, in Finance, holds billing:admin: the invoices. The second printed user
    // holds nothing: a 403 page saying which role and whom to ask, their sign-in intact.
    let invoices = browser.get(&format!("{}/invoices", url("billing"))).await;
    assert_eq!(invoices.status(), StatusCode::OK);
    assert!(invoices.text().await.unwrap().contains("id=\"invoices\""));
    let viewer = Browser::new();
    let (_, page) = browse(&viewer, &format!("{}/invoices", url("billing"))).await;
    let (name, password) = &running.viewer;
    let answer = viewer
        .sign_in_at(&running.issuer, &page, name, password, false)
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (steps, page) = browse(&viewer, answer.headers()["location"].to_str().unwrap()).await;
    assert_eq!(
        steps.last().unwrap(),
        &(
            StatusCode::FORBIDDEN,
            format!("{}/invoices", url("billing"))
        ),
        "{page}"
    );
    assert!(
        page.contains("need the role <code>billing:admin</code>"),
        "{page}"
    );
    // The demo user is an operator: the printed console asks them for a second factor (they
    // have none yet, so to set one up); the viewer is told the console is not for them.
    assert_eq!(running.console, format!("{}/console", running.issuer));
    let (steps, page) = browse(&browser, &running.console).await;
    assert_eq!(steps.last().unwrap().0, StatusCode::OK, "{steps:?}");
    assert!(page.contains("Set up two-step verification"), "{page}");
    let (steps, page) = browse(&viewer, &running.console).await;
    assert_eq!(steps.last().unwrap().0, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("You are not an operator"), "{page}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sign-out: `GET /logout` only asks; `POST /logout` ends the app session and then the
/// sign-in at Lanyard (RP-Initiated Logout, with the ID token as hint), and the browser comes
/// back to the app signed out. The cookies carry the app's name and are `HttpOnly`,
/// `SameSite=Lax`.
#[tokio::test]
async fn signing_out_ends_the_app_session_and_the_sign_in() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let browser = Browser::new();
    let login = browser
        .get(&format!("{}/login?return_to=/profile", wiki.base))
        .await;
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.starts_with("wiki_signin="), "{set_cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(set_cookie.contains(flag), "{flag}: {set_cookie}");
    }
    let (_, page) = browse(&browser, &format!("{}/", wiki.base)).await;
    let (_, page) = sign_in_and_follow(&server, &browser, &page).await;
    assert!(page.contains("alice Example"), "{page}");

    // A link to /logout (from anywhere) signs nobody out.
    let (_, page) = browse(&browser, &format!("{}/logout", wiki.base)).await;
    assert!(
        page.contains("Sign out?") && page.contains(r#"method="post""#),
        "{page}"
    );
    let (steps, _) = browse(&browser, &format!("{}/", wiki.base)).await;
    assert_eq!(steps.len(), 1, "still signed in: {steps:?}");

    let out = browser
        .http
        .post(format!("{}/logout", wiki.base))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let to_lanyard = out.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_lanyard.starts_with(&server.url("/logout?id_token_hint=")),
        "{to_lanyard}"
    );
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("wiki_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let (steps, page) = browse(&browser, &to_lanyard).await;
    assert_eq!(
        steps[1],
        (StatusCode::SEE_OTHER, format!("{}/", wiki.base)),
        "back at the app: {steps:?}"
    );
    let (status, at) = steps.last().unwrap();
    assert!(
        *status == StatusCode::OK && at.starts_with(&server.url("/authorize")),
        "both sessions are over: the sign-in page again: {steps:?}"
    );
    assert!(page.contains("The wiki app"));
    server.stop().await;
}

/// An access token about to expire is refreshed before the page uses it: the token the API
/// sees changes from one visit to the next while the refresh token lasts.
#[tokio::test]
async fn the_access_token_is_refreshed_before_it_expires() {
    // Tokens of 20 s are always within the 30 s renewal margin.
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), |c| {
        c.lifetimes.access_token = Duration::from_secs(20);
    })
    .await;
    server.user("alice", PASSWORD).await;
    let wiki = start_app(&server, "wiki", server.store(), Duration::from_secs(10)).await;
    let browser = Browser::new();
    let (_, page) = browse(&browser, &format!("{}/profile", wiki.base)).await;
    let (_, first) = sign_in_and_follow(&server, &browser, &page).await;
    let exp = |page: &str| -> i64 {
        let start = page
            .find(r#"<code id="exp">"#)
            .unwrap_or_else(|| panic!("{page}"))
            + 15;
        page[start..start + page[start..].find('<').unwrap()]
            .parse()
            .unwrap()
    };
    let first = exp(&first);
    clock.advance(Duration::from_secs(1));
    let (steps, second) = browse(&browser, &format!("{}/profile", wiki.base)).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert!(
        exp(&second) > first,
        "a fresh token: {} vs {first}",
        exp(&second)
    );
    server.stop().await;
}
