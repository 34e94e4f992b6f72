//! A real browser (Debian's headless Chromium through chromedriver, driven with fantoccini):
//! sign in at one demo app with "remember me", find the others already signed in, sign out
//! at one, and see the first ask to sign in again (told over the back channel) and a third,
//! which is not told, have its next API call refused and ask to sign in again, coming back
//! to the page; then Lanyard's own pages (sign-in with an error, consent, account, an error
//! page), each saved as a screenshot (in `target/tmp/screenshots`, and with
//! `LANYARD_SCREENSHOTS=docs` in `docs/screenshots/`) so reviewers see what people see.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::apps::on_redis;
use crate::support::{ClientSpec, Db, Store, TestServer, authorize_url};

const PASSWORD: &str = "correct horse battery staple";

/// chromedriver on a free port, in a process group of its own: on drop the whole group goes,
/// the Chromium it started included, even when a failing test never closed its session.
pub(crate) struct Driver {
    process: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.process.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Starts chromedriver and a headless Chromium session in it. Fails, saying how to install
/// them, when they are missing (never skips).
pub(crate) async fn browser() -> (Driver, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let process = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs chromedriver and Chromium ({e}): apt-get install chromium chromium-driver (see .ci/run)"
            )
        });
    let driver = Driver {
        process,
        url: format!("http://127.0.0.1:{port}"),
    };
    let client = session(&driver).await;
    (driver, client)
}

/// Another Chromium session in `driver`: a second person's browser, with cookies of its own.
pub(crate) async fn session(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=900,1100", "--no-first-run", "--disable-quic",
                // No calls home: the machine's closed network refuses them.
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connected = ClientBuilder::rustls()
            .unwrap()
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await;
        match connected {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                // chromedriver is a process of its own, starting: ask again shortly.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("chromedriver did not start a Chromium session: {e}"),
        }
    }
}

/// Saves what the browser shows as `<name>.png` in the build's scratch folder
/// (`target/tmp/screenshots`): a test run changes no tracked file. With
/// `LANYARD_SCREENSHOTS=docs`, also as `docs/screenshots/<name>.png`, to refresh the docs'
/// pictures on purpose.
pub(crate) async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let mut dirs = vec![std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
    if std::env::var("LANYARD_SCREENSHOTS").as_deref() == Ok("docs") {
        dirs.push(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
    }
}

/// The page's visible text, read in one step (a page that navigates between finding the
/// body and reading it would leave a stale element).
pub(crate) async fn text(client: &Client) -> String {
    let text = client
        .execute(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .unwrap();
    text.as_str().unwrap_or_default().to_owned()
}

/// What a screen reader, keyboard or low-vision user would miss on the page: visible form
/// fields without a label, buttons without a name, a page without a language, and text whose
/// contrast with its background is below WCAG 2.1 AA (4.5:1, or 3:1 for large text).
pub(crate) async fn accessibility_gaps(client: &Client) -> Vec<String> {
    let script = r#"
        const gaps = [];
        // Any CSS colour (rgb(), color(srgb ...), color-mix results) as sRGB bytes + alpha.
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 1;
        const ctx = canvas.getContext('2d', { willReadFrequently: true });
        const rgba = (c) => {
            ctx.clearRect(0, 0, 1, 1);
            ctx.fillStyle = c;
            ctx.fillRect(0, 0, 1, 1);
            const d = ctx.getImageData(0, 0, 1, 1).data;
            return [d[0], d[1], d[2], d[3] / 255];
        };
        const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
        const luminance = ([r, g, b]) => {
            const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        // The backdrop: the element's and its ancestors' backgrounds, layered on white.
        const background = (el) => {
            const layers = [];
            for (let e = el; e; e = e.parentElement) layers.push(rgba(getComputedStyle(e).backgroundColor));
            return layers.reverse().reduce((under, top) => over(top, under), [255, 255, 255, 1]);
        };
        const opacity = (el) => {
            let o = 1;
            for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
            return o;
        };
        for (const el of document.querySelectorAll('body *')) {
            const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
            const style = getComputedStyle(el);
            if (!own || style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
            const bg = background(el);
            const fg = rgba(style.color);
            fg[3] *= opacity(el);
            const [l1, l2] = [luminance(over(fg, bg)), luminance(bg)];
            const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
            const size = parseFloat(style.fontSize);
            const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
            if (ratio < (large ? 3 : 4.5)) {
                gaps.push('contrast ' + ratio.toFixed(2) + ' of ' + el.tagName.toLowerCase() + ': ' + el.textContent.trim().slice(0, 40));
            }
        }
        for (const el of document.querySelectorAll('input, select, textarea')) {
            if (el.type === 'hidden' || el.hidden) continue;
            const labelled = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label');
            if (!labelled) gaps.push('unlabelled field ' + (el.name || el.id));
        }
        for (const b of document.querySelectorAll('button')) {
            if (!b.textContent.trim() && !b.getAttribute('aria-label')) gaps.push('unnamed button');
        }
        if (!document.documentElement.lang) gaps.push('no lang');
        return gaps;
    "#;
    let gaps = client.execute(script, vec![]).await.unwrap();
    serde_json::from_value(gaps).unwrap()
}

/// Clicks the element `css` selects.
pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Signs alice in on the sign-in page the browser shows.
async fn sign_in(client: &Client, password: &str, remember: bool) {
    sign_in_as(client, "alice", password, remember).await;
}

/// Signs `username` in on the sign-in page the browser shows.
pub(crate) async fn sign_in_as(client: &Client, username: &str, password: &str, remember: bool) {
    let field = client.find(Locator::Id("username")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(username).await.unwrap();
    client
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    if remember {
        click(client, "input[name=remember_me]").await;
    }
    click(client, "button[type=submit]").await;
}

/// Waits (up to 10 s) until the page's text contains `what`.
pub(crate) async fn wait_for_text(client: &Client, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = text(client).await;
        if body.contains(what) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what:?}; the page says:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_browser_signs_in_once_and_out_everywhere() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    // Reports registered no back-channel logout URI: only its API calls can find out.
    let reports = on_redis(&server, "reports").await;
    lanyard_core::clients::update(
        &server.state,
        "reports",
        &serde_json::json!({ "backchannel_logout_uri": null }),
        "test",
    )
    .await
    .unwrap();
    let (_driver, client) = browser().await;

    // At wiki: to Lanyard's sign-in page, a wrong password first (the feedback), then in.
    client
        .goto(&format!("{}/profile", wiki.base))
        .await
        .unwrap();
    wait_for_text(&client, "to continue to The wiki app").await;
    sign_in(&client, "not my password", false).await;
    wait_for_text(&client, "Incorrect username or password.").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    let focused = client
        .execute(
            "return document.activeElement && document.activeElement.id",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        focused, "password",
        "after a failure the cursor waits in the password field"
    );
    screenshot(&client, "signin").await;
    sign_in(&client, PASSWORD, true).await;
    let page = wait_for_text(&client, "Your profile at wiki").await;
    assert!(page.contains("alice Example"), "{page}");
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        format!("{}/profile", wiki.base),
        "back on the page first asked for"
    );

    // At reports: already signed in; its profile page calls its API with alice's token.
    client
        .goto(&format!("{}/profile", reports.base))
        .await
        .unwrap();
    wait_for_text(&client, "The API at /api/me sees subject").await;

    // At billing: already signed in.
    client.goto(&format!("{}/", billing.base)).await.unwrap();
    let page = wait_for_text(&client, "Signed in as").await;
    assert!(
        page.contains("alice Example") && page.contains("billing"),
        "{page}"
    );

    // Sign out at billing: through Lanyard, back at billing, which asks to sign in again.
    click(&client, "form[action='/logout'] button").await;
    wait_for_text(&client, "to continue to The billing app").await;

    // Wiki heard it over the back channel: its page asks to sign in again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        client
            .goto(&format!("{}/profile", wiki.base))
            .await
            .unwrap();
        let page = text(&client).await;
        if page.contains("Your session has ended") {
            break;
        }
        assert!(Instant::now() < deadline, "wiki still shows: {page}");
        // The back-channel logout is an HTTP delivery in the background: look again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Reports was not told: it still shows alice signed in, until its API refuses her token
    // (the session's tokens were revoked) and the refresh is refused too. Its page then asks
    // her to sign in again and, once she has, brings her back to the profile.
    client.goto(&format!("{}/", reports.base)).await.unwrap();
    wait_for_text(&client, "Signed in as").await;
    client
        .goto(&format!("{}/profile", reports.base))
        .await
        .unwrap();
    wait_for_text(&client, "Your session has ended").await;
    click(&client, "main a").await;
    wait_for_text(&client, "to continue to The reports app").await;
    sign_in(&client, PASSWORD, false).await;
    wait_for_text(&client, "The API at /api/me sees subject").await;
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        format!("{}/profile", reports.base),
        "back on the page she was on"
    );
    client.close().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn lanyards_own_pages_in_a_real_browser() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let (_driver, client) = browser().await;

    // Consent for a third-party app.
    client
        .goto(&authorize_url(
            &server,
            &crm,
            &[("scope", "openid profile email offline_access")],
        ))
        .await
        .unwrap();
    wait_for_text(&client, "to continue to The crm app").await;
    sign_in(&client, PASSWORD, false).await;
    let page = wait_for_text(&client, "Allow The crm app?").await;
    assert!(page.contains("See your email address"), "{page}");
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "consent").await;

    // The account page, with its timeout warning loaded (no banner yet: 30 minutes left).
    client.goto(&server.url("/account")).await.unwrap();
    let page = wait_for_text(&client, "Where you are signed in").await;
    assert!(
        page.contains("this browser") && page.contains("Change your password"),
        "{page}"
    );
    let loaded = client
        .execute("return typeof window.LanyardSession", vec![])
        .await
        .unwrap();
    assert_eq!(
        loaded, "object",
        "the warning script ran under the page's CSP"
    );
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "account").await;

    // A broken link from an app: a clear page, not a redirect.
    client
        .goto(&server.url("/authorize?client_id=nobody&redirect_uri=https://evil.example/"))
        .await
        .unwrap();
    let page = wait_for_text(&client, "Unknown application").await;
    assert!(page.contains("Go back to it"), "{page}");
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "error").await;

    // Signed out: the same browser sees the signed-out page.
    client.goto(&server.url("/logout")).await.unwrap();
    wait_for_text(&client, "Sign out?").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "logout").await;
    click(&client, "form[action='/logout'] button").await;
    wait_for_text(&client, "You are signed out").await;
    client.close().await.unwrap();
    server.stop().await;
}

/// Clickjacking (RFC 9700 §4.16, RFC 6749 §10.13, keycloak#37430): a page of another origin
/// that frames Lanyard's sign-in page gets an empty, blocked frame in a real browser, so no
/// one can be tricked into typing a password into it.
#[tokio::test]
async fn the_sign_in_page_cannot_be_framed() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let target = authorize_url(&server, &wiki, &[]);
    let framing = format!(
        "<!doctype html><html lang=\"en\"><title>evil</title><h1>Win a prize</h1><iframe src=\"{}\" width=\"600\" height=\"600\" onload=\"document.body.dataset.framed='yes'\"></iframe></html>",
        target.replace('&', "&amp;")
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil = format!(
        "http://localhost:{}/",
        listener.local_addr().unwrap().port()
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = framing.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (_driver, client) = browser().await;
    client.goto(&evil).await.unwrap();
    wait_for_text(&client, "Win a prize").await;
    // The frame has loaded (or been blocked: the load event fires for its error page too).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let framed = client
            .execute("return document.body.dataset.framed || ''", vec![])
            .await
            .unwrap();
        if framed == "yes" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the frame never finished loading"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client.enter_frame(0).await.unwrap();
    let framed = text(&client).await;
    let fields = client
        .execute(
            "return document.querySelectorAll('input[type=password]').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(fields, 0, "no password field in the frame: {framed}");
    assert!(
        !framed.contains("to continue to The wiki app"),
        "the sign-in page must not render in a frame: {framed}"
    );
    client.close().await.unwrap();
    server.stop().await;
}

/// A WebDriver command of chromedriver's own: `path` under the session, with `body`.
#[derive(Debug)]
struct Extension {
    path: String,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Extension {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(self.body.to_string()))
    }
}

/// Gives the browser a virtual platform authenticator that keeps passkeys and verifies the
/// user (the WebDriver WebAuthn extension, which chromedriver implements).
async fn virtual_authenticator(client: &Client) {
    client
        .issue_cmd(Extension {
            path: "webauthn/authenticator".into(),
            body: serde_json::json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            }),
        })
        .await
        .unwrap();
}

/// Light or dark, as the person's system would ask (through Chrome's DevTools protocol).
pub(crate) async fn color_scheme(client: &Client, scheme: &str) {
    client
        .issue_cmd(Extension {
            path: "goog/cdp/execute".into(),
            body: serde_json::json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
            }),
        })
        .await
        .unwrap();
}

/// Screenshots of the page shown, light and dark: `<name>.png` and `<name>-dark.png`.
pub(crate) async fn screenshots(client: &Client, name: &str) {
    screenshot(client, name).await;
    color_scheme(client, "dark").await;
    screenshot(client, &format!("{name}-dark")).await;
    color_scheme(client, "light").await;
}

/// Signs out at `issuer` (the "Sign out?" page, confirmed).
async fn sign_out(client: &Client, issuer: &str) {
    client.goto(&format!("{issuer}/logout")).await.unwrap();
    wait_for_text(client, "Sign out?").await;
    click(client, "form[action='/logout'] button").await;
    wait_for_text(client, "You are signed out").await;
}

/// Waits (up to 10 s) until the browser's address starts with `prefix`.
pub(crate) async fn wait_for_url(client: &Client, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = client.current_url().await.unwrap().to_string();
        if url.starts_with(prefix) {
            return url;
        }
        assert!(Instant::now() < deadline, "waited for {prefix}; at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Passkeys and two-step verification in Chromium, with its virtual authenticator: a passkey
/// added from the account page, a sign-in with the passkey button (no username), the passkey
/// as the second step after the password, and the new pages, light and dark.
#[tokio::test]
async fn passkeys_and_two_step_verification_in_a_real_browser() {
    // WebAuthn needs a secure context: the issuer is http://localhost.
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let issuer = server.state.config.issuer.clone();
    let (_driver, client) = browser().await;
    virtual_authenticator(&client).await;

    // The authenticator-app setup page, as people see it.
    client.goto(&format!("{issuer}/account")).await.unwrap();
    wait_for_text(&client, "to your account").await;
    sign_in(&client, PASSWORD, false).await;
    wait_for_text(&client, "Where you are signed in").await;
    client
        .goto(&format!("{issuer}/account/mfa/totp"))
        .await
        .unwrap();
    wait_for_text(&client, "Set up two-step verification").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshots(&client, "totp-setup").await;

    // A passkey, added from the account page after the password.
    client.goto(&format!("{issuer}/account")).await.unwrap();
    wait_for_text(&client, "Add a passkey").await;
    client
        .find(Locator::Id("passkey-password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::Id("passkey-name"))
        .await
        .unwrap()
        .send_keys("This laptop")
        .await
        .unwrap();
    click(&client, "#add-passkey button[type=submit]").await;
    let page = wait_for_text(&client, "Your passkey was added").await;
    assert!(page.contains("This laptop"), "{page}");
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshots(&client, "account-factors").await;

    // Signed out, then in again with the passkey alone, no username typed: first through the
    // username field's autofill (conditional mediation; the virtual authenticator consents at
    // once, as a person picking the passkey there would) ...
    sign_out(&client, &issuer).await;
    let url = authorize_url(&server, &wiki, &[]).replace(&server.issuer, &issuer);
    client.goto(&url).await.unwrap();
    let landed = wait_for_url(&client, &wiki.redirect_uri).await;
    assert!(landed.contains("code="), "{landed}");
    // ... then with the button, on a browser without passkey autofill.
    sign_out(&client, &issuer).await;
    client
        .issue_cmd(Extension {
            path: "goog/cdp/execute".into(),
            body: serde_json::json!({
                "cmd": "Page.addScriptToEvaluateOnNewDocument",
                "params": {"source": "if (window.PublicKeyCredential) { PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false); }"},
            }),
        })
        .await
        .unwrap();
    client.goto(&url).await.unwrap();
    wait_for_text(&client, "Sign in with a passkey").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshots(&client, "signin-passkey").await;
    click(&client, "#passkey-button").await;
    let landed = wait_for_url(&client, &wiki.redirect_uri).await;
    assert!(landed.contains("code="), "{landed}");

    // The passkey as the second step: the password first, then the passkey.
    sign_out(&client, &issuer).await;
    client.goto(&url).await.unwrap();
    wait_for_text(&client, "Sign in with a passkey").await;
    sign_in(&client, PASSWORD, false).await;
    let page = wait_for_text(&client, "Two-step verification").await;
    assert!(page.contains("Use your passkey"), "{page}");
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshots(&client, "second-step").await;
    click(&client, "#passkey-button").await;
    let landed = wait_for_url(&client, &wiki.redirect_uri).await;
    assert!(landed.contains("code="), "{landed}");
    client.close().await.unwrap();
    server.stop().await;
}

/// Issue 22 in Chromium: "Forgot your password?" from the sign-in page, the mail read from a
/// real SMTP server (its HTML part shown in the browser too), the link followed, a new
/// password set, and a sign-in with it; each page checked for accessibility gaps and saved
/// as a screenshot for `docs/email.md`.
#[tokio::test]
async fn a_forgotten_password_is_reset_in_a_real_browser() {
    let sink = crate::support::smtp::SmtpSink::start().await;
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, crate::mail::relay(&sink)).await;
    server.user("alice", PASSWORD).await;
    let (_driver, client) = browser().await;

    client.goto(&server.url("/account")).await.unwrap();
    wait_for_text(&client, "Forgot your password?").await;
    click(&client, "#forgot a").await;
    wait_for_text(&client, "We will mail you a link").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "forgot").await;
    client
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("alice@example.com")
        .await
        .unwrap();
    click(&client, "button[type=submit]").await;
    wait_for_text(&client, "Check your mail").await;

    let mails = sink.wait_for(1, Duration::from_secs(15)).await;
    let link = mails[0].link_to("/reset-password?token=");
    let file = std::env::temp_dir().join(format!("lanyard-mail-{}.html", std::process::id()));
    std::fs::write(&file, &mails[0].html).unwrap();
    client
        .goto(&format!("file://{}", file.display()))
        .await
        .unwrap();
    wait_for_text(&client, "Choose a new password").await;
    screenshot(&client, "mail-reset").await;
    std::fs::remove_file(&file).unwrap();

    client.goto(&link).await.unwrap();
    wait_for_text(&client, "for the account alice").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "reset-password").await;
    for field in ["password", "password_confirm"] {
        client
            .find(Locator::Id(field))
            .await
            .unwrap()
            .send_keys("a brand new passphrase")
            .await
            .unwrap();
    }
    click(&client, "button[type=submit]").await;
    wait_for_text(&client, "Your password is set").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshot(&client, "reset-done").await;
    click(&client, "a.button").await;
    sign_in(&client, "a brand new passphrase", false).await;
    wait_for_text(&client, "Where you are signed in").await;
    client.close().await.unwrap();
    server.stop().await;
}

/// A TV asks to sign in (RFC 8628): in Chromium the person opens `/device`, signs in, is
/// brought back, types the code as people do (lower case, no dash), sees the app and what it
/// asks, and approves; the TV's next poll gets its tokens. The pages, light and dark, have
/// no accessibility gaps.
#[tokio::test]
async fn a_person_approves_a_device_in_the_browser() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let tv = server
        .client(ClientSpec {
            id: "tv",
            public: true,
            grants: &["urn:ietf:params:oauth:grant-type:device_code"],
            scopes: &["openid", "profile"],
            first_party: true,
        })
        .await;
    let http = reqwest::Client::new();
    let device: serde_json::Value = http
        .post(server.url("/device_authorization"))
        .form(&[("client_id", tv.id.as_str()), ("scope", "openid profile")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_code = device["user_code"].as_str().unwrap();
    let (_driver, client) = browser().await;
    client
        .goto(device["verification_uri"].as_str().unwrap())
        .await
        .unwrap();
    wait_for_text(&client, "to connect your device").await;
    sign_in(&client, PASSWORD, false).await;
    wait_for_text(&client, "Connect a device").await;
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshots(&client, "device-code").await;
    let field = client.find(Locator::Id("user_code")).await.unwrap();
    field
        .send_keys(&user_code.replace('-', "").to_lowercase())
        .await
        .unwrap();
    click(&client, "form[action='/device'] button[type=submit]").await;
    let page = wait_for_text(&client, "Approve this device?").await;
    assert!(
        page.contains("The tv app") && page.contains(user_code),
        "{page}"
    );
    assert!(page.contains("See your name and username"), "{page}");
    assert_eq!(accessibility_gaps(&client).await, Vec::<String>::new());
    screenshots(&client, "device-approve").await;
    click(&client, "button[value=approve]").await;
    wait_for_text(&client, "Device approved").await;
    let r = http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device["device_code"].as_str().unwrap()),
            ("client_id", tv.id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let tokens: serde_json::Value = r.json().await.unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");
    client.close().await.unwrap();
    server.stop().await;
}

/// Issue 25: the session-expiry warning on an app on another site than Lanyard's (the app at
/// 127.0.0.2, Lanyard at 127.0.0.1: Lanyard's cookie never reaches the app's pages). The
/// app serves the status and "Stay signed in" from its own origin and asks Lanyard server to
/// server: the warning shows before the idle timeout, "Stay signed in" extends the Lanyard
/// session, and ignoring it ends in the sign-in page, after which the person is back on the
/// page they were on. Real time passes: the browser's timers are real (20 s idle timeout).
#[tokio::test]
async fn the_timeout_warning_works_on_an_app_on_another_site() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.lifetimes.session_idle = Duration::from_secs(20);
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = crate::apps::start_app_bound(
        &server,
        "wiki",
        std::sync::Arc::new(lanyard_rp::StoreSource(server.store())),
        Duration::from_secs(10),
        server.state.clock.clone(),
        "127.0.0.2",
    )
    .await;
    assert!(wiki.base.starts_with("http://127.0.0.2:"), "{}", wiki.base);
    let (_driver, client) = browser().await;
    client
        .goto(&format!("{}/profile", wiki.base))
        .await
        .unwrap();
    wait_for_text(&client, "to continue to The wiki app").await;
    sign_in(&client, PASSWORD, false).await;
    wait_for_text(&client, "Your profile at wiki").await;

    // The warning, from the app's own origin (20 s left is within the 2 minutes' warning).
    wait_for_text(&client, "because you have been inactive").await;
    let sessions = server.store().user_sessions(&alice.sub).await.unwrap();
    assert_eq!(sessions.len(), 1);
    let sid = sessions[0].sid.to_string();
    let before = sessions[0].idle_deadline;
    tokio::time::sleep(Duration::from_secs(3)).await;
    click(&client, "#lanyard-session-warning-action").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = server
            .store()
            .session(&sid)
            .await
            .unwrap()
            .unwrap()
            .idle_deadline;
        if now > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Stay signed in did not extend the Lanyard session"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Ignored: the session ends, the page says so, and "Sign in again" comes back here.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if text(&client).await.contains("Your session has ended") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the end was never announced: {}",
            text(&client).await
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    screenshot(&client, "session-ended-cross-site").await;
    click(&client, "#lanyard-session-warning-action").await;
    wait_for_text(&client, "to continue to The wiki app").await;
    sign_in(&client, PASSWORD, false).await;
    wait_for_text(&client, "Your profile at wiki").await;
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        format!("{}/profile", wiki.base),
        "back on the page they were on"
    );
    // Another site's page may not keep the session alive through the app.
    let r = reqwest::Client::new()
        .post(format!("{}/session/extend", wiki.base))
        .header("origin", "http://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    client.close().await.unwrap();
    server.stop().await;
}
