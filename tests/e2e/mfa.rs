//! Two-step verification (issue 20): one-time codes (TOTP, RFC 6238) set up on the account
//! page and asked for after the password, recovery codes, setting one up where an app or the
//! deployment requires it, step-up for an app that asks for `urn:lanyard:acr:mfa`, and what
//! tokens, UserInfo and introspection then say (`acr`, `amr`, `auth_time`). Codes are
//! computed here with an independent TOTP implementation, on the server's own clock, which
//! the tests move.

use std::time::Duration;

use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;
use totp_rs::{Algorithm, Builder, Secret};

use crate::support::{
    Browser, ClientSpec, TestClient, TestServer, authorize_url, client_post, decode_jwt,
    form_value, pkce, redirect_params, token_request,
};

const PASSWORD: &str = "correct horse battery staple";
const MFA: &str = "urn:lanyard:acr:mfa";
const PWD: &str = "urn:lanyard:acr:pwd";

/// A server on a clock the test moves, with alice and a first-party web app.
async fn server() -> (TestServer, ManualClock, TestClient) {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let client = server.client(ClientSpec::web("wiki")).await;
    (server, clock, client)
}

/// The code of `secret` (base32) at the server's time `clock`.
fn code_at(secret: &str, clock: &ManualClock) -> String {
    let bytes = Secret::try_from_base32(secret).unwrap().as_bytes().to_vec();
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(bytes)
        .build()
        .unwrap();
    let now = u64::try_from(clock.now().as_secs()).unwrap();
    totp.generate(now).to_string()
}

/// Moves the clock to the start of the next 30-second step (a new code).
fn next_step(clock: &ManualClock) {
    let secs = clock.now().as_secs();
    let into = secs.rem_euclid(30);
    clock.advance(Duration::from_secs(u64::try_from(30 - into).unwrap()));
}

/// Alice's password at the account page, in a new browser: the browser and the answer.
async fn account_password(server: &TestServer) -> (Browser, reqwest::Response) {
    let browser = Browser::new();
    let page = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    let r = browser
        .http
        .post(server.url("/account/signin"))
        .form(&[
            ("csrf", form_value(&page, "csrf")),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    (browser, r)
}

/// Signs alice in at the account page (password only: she has no factor yet).
async fn account_browser(server: &TestServer) -> Browser {
    let (browser, r) = account_password(server).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    browser
}

/// Sets up an authenticator app from the account page; returns its secret and the recovery
/// codes shown.
async fn enrol(
    server: &TestServer,
    browser: &Browser,
    clock: &ManualClock,
) -> (String, Vec<String>) {
    let page = browser.get(&server.url("/account/mfa/totp")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("<svg"), "a QR code as SVG:\n{page}");
    let uri = between(&page, r#"id="totp-uri" class="secret">"#, "<");
    let uri = html_escape::decode_html_entities(&uri).into_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains("alice"), "{uri}");
    let secret = between(&page, r#"id="totp-secret" class="secret">"#, "<");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let form = |code: String, password: &str| {
        vec![
            ("csrf", form_value(&page, "csrf")),
            ("enrolment", form_value(&page, "enrolment")),
            ("password", password.to_owned()),
            ("name", "Phone".to_owned()),
            ("code", code),
        ]
    };
    // A wrong code sets nothing up, and the same key stays on the page.
    let r = browser
        .http
        .post(server.url("/account/mfa/totp"))
        .form(&form("000000".to_owned(), PASSWORD))
        .send()
        .await
        .unwrap();
    let again = r.text().await.unwrap();
    assert!(again.contains("That code is not right"), "{again}");
    assert!(again.contains(&secret), "the same key, no scanning twice");
    // The right code with a wrong password sets nothing up either.
    let r = browser
        .http
        .post(server.url("/account/mfa/totp"))
        .form(&form(code_at(&secret, clock), "wrong password"))
        .send()
        .await
        .unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("current password is not right")
    );
    let r = browser
        .http
        .post(server.url("/account/mfa/totp"))
        .form(&form(code_at(&secret, clock), PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.unwrap();
    let codes = recovery_codes(&shown);
    assert_eq!(codes.len(), 10, "{shown}");
    let account = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(account.contains("Phone"), "{account}");
    assert!(account.contains("10 recovery codes left"), "{account}");
    (secret, codes)
}

fn between(page: &str, start: &str, end: &str) -> String {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in:\n{page}"))
        + start.len();
    let to = from + page[from..].find(end).unwrap();
    page[from..to].to_owned()
}

fn recovery_codes(page: &str) -> Vec<String> {
    let list = between(page, r#"id="recovery-codes">"#, "</ul>");
    list.split("<code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .collect()
}

/// Opens the app's authorization request in `browser` and signs in with the password;
/// returns the answer (the second step's page, or the redirect).
async fn password_step(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let page = browser.get(&authorize_url(server, client, extra)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    browser
        .sign_in(server, &page, "alice", PASSWORD, false)
        .await
}

/// Submits the code page `page` with `code`.
async fn give_code(
    server: &TestServer,
    browser: &Browser,
    page: &str,
    code: &str,
) -> reqwest::Response {
    post_step(
        server,
        browser,
        page,
        "/signin/code",
        &[("code", code.to_owned())],
    )
    .await
}

/// Submits the second-step form of `page` to `path` with `fields`: its CSRF token, pending
/// sign-in and (when it carries one) authorization request.
async fn post_step(
    server: &TestServer,
    browser: &Browser,
    page: &str,
    path: &str,
    fields: &[(&'static str, String)],
) -> reqwest::Response {
    let mut form = vec![
        ("csrf", form_value(page, "csrf")),
        ("pending", form_value(page, "pending")),
    ];
    form.extend_from_slice(fields);
    if page.contains(r#"name="authorization_request""#) {
        form.push((
            "authorization_request",
            form_value(page, "authorization_request"),
        ));
    }
    browser
        .http
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Redeems the code in `answer` (a redirect to the app) with `verifier`; the token response.
async fn redeem(
    server: &TestServer,
    client: &TestClient,
    answer: &reqwest::Response,
    verifier: &str,
) -> Value {
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(answer);
    assert_eq!(to, client.redirect_uri);
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"));
    let r = token_request(
        server,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn one_time_codes_from_enrolment_to_tokens() {
    let (server, clock, client) = server().await;
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;

    // A new browser: the password, then the code page.
    let browser = Browser::new();
    let (challenge, verifier) = pkce();
    let pkce_params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let answer = password_step(&server, &browser, &client, &pkce_params).await;
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "the second step, not a code yet"
    );
    let page = answer.text().await.unwrap();
    assert!(page.contains(r#"name="code""#) && page.contains(r#"autocomplete="one-time-code""#));
    // The code used at enrolment (this same step) is used up (RFC 6238 §5.2).
    let used = code_at(&secret, &clock);
    let r = give_code(&server, &browser, &page, &used).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not right, or was used already")
    );
    next_step(&clock);
    let code = code_at(&secret, &clock);
    let answer = give_code(&server, &browser, &page, &code).await;
    let tokens = redeem(&server, &client, &answer, &verifier).await;

    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], MFA);
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert!(id["auth_time"].as_i64().is_some());
    let access = tokens["access_token"].as_str().unwrap();
    let (_, at) = decode_jwt(access);
    assert_eq!(at["acr"], MFA);
    assert_eq!(at["amr"], id["amr"]);
    assert_eq!(at["auth_time"], id["auth_time"]);
    let info: Value = server_userinfo(&server, access).await;
    assert_eq!(info["acr"], MFA);
    assert_eq!(info["amr"], id["amr"]);
    let r = client_post(&server, "/introspect", &client, &[("token", access)]).await;
    let intro: Value = r.json().await.unwrap();
    assert_eq!(intro["acr"], MFA);
    assert_eq!(intro["auth_time"], id["auth_time"]);

    // The same code again, at another sign-in in the same step: refused.
    let other = Browser::new();
    let answer = password_step(&server, &other, &client, &[]).await;
    let page = answer.text().await.unwrap();
    let r = give_code(&server, &other, &page, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("used already"));
    // The person is signed in by single sign-on afterwards: no second step again.
    let again = browser
        .get(&authorize_url(&server, &client, &pkce_params))
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
}

async fn server_userinfo(server: &TestServer, access: &str) -> Value {
    let r = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let (server, clock, client) = server().await;
    let (_, codes) = enrol(&server, &account_browser(&server).await, &clock).await;
    let recovery = codes[3].to_uppercase().replace('-', " ");
    for (attempt, expect_in) in [(0, true), (1, false)] {
        let browser = Browser::new();
        let answer = password_step(&server, &browser, &client, &[]).await;
        let page = answer.text().await.unwrap();
        let r = give_code(&server, &browser, &page, &recovery).await;
        if expect_in {
            assert_eq!(
                r.status(),
                StatusCode::SEE_OTHER,
                "attempt {attempt}: typed as people do"
            );
        } else {
            assert_eq!(r.status(), StatusCode::OK, "attempt {attempt}: used up");
            assert!(r.text().await.unwrap().contains("used already"));
        }
    }
    let account = account_browser_after_code(&server, &codes[4]).await;
    assert!(account.contains("8 recovery codes left"), "{account}");
}

/// Signs in at the account page with the password and `code`; the account page.
async fn account_browser_after_code(server: &TestServer, code: &str) -> String {
    let (browser, r) = account_password(server).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the account page asks for the code too"
    );
    let page = r.text().await.unwrap();
    let r = give_code(server, &browser, &page, code).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account");
    browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_codes_are_throttled_like_passwords() {
    let (server, clock, client) = server().await;
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;
    let browser = Browser::new();
    let answer = password_step(&server, &browser, &client, &[]).await;
    let page = answer.text().await.unwrap();
    // Three mistakes are free at one address; then waits.
    for _ in 0..3 {
        let r = give_code(&server, &browser, &page, "123456").await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = give_code(&server, &browser, &page, "123456").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // While paused, even the right code (the next step's, tolerated) is not checked ...
    let later = ManualClock::new(clock.now().plus(Duration::from_secs(30)));
    let right = code_at(&secret, &later);
    let r = give_code(&server, &browser, &page, &right).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // ... and once the wait is over, it is.
    clock.advance(Duration::from_secs(20));
    let r = give_code(&server, &browser, &page, &right).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_pending_sign_in_expires_and_stays_in_its_browser() {
    let (server, clock, client) = server().await;
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;
    let browser = Browser::new();
    let page = password_step(&server, &browser, &client, &[])
        .await
        .text()
        .await
        .unwrap();
    // Another browser cannot finish it (the form is bound to this one's CSRF cookie).
    let thief = Browser::new();
    let thief_page = thief
        .get(&authorize_url(&server, &client, &[]))
        .await
        .text()
        .await
        .unwrap();
    next_step(&clock);
    let r = thief
        .http
        .post(server.url("/signin/code"))
        .form(&[
            ("csrf", form_value(&thief_page, "csrf")),
            ("pending", form_value(&page, "pending")),
            (
                "authorization_request",
                form_value(&page, "authorization_request"),
            ),
            ("code", code_at(&secret, &clock)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Five minutes later it has expired.
    clock.advance(Duration::from_secs(301));
    let r = give_code(&server, &browser, &page, &code_at(&secret, &clock)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("took too long"));
}

#[tokio::test]
async fn step_up_asks_only_for_the_missing_code() {
    let (server, clock, client) = server().await;
    // Signed in with the password alone (no factor yet) ...
    let browser = account_browser(&server).await;
    // ... then a factor is set up elsewhere: this session is still password-only.
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;
    let (challenge, verifier) = pkce();
    let base = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // Without acr_values, single sign-on answers at once, with `acr` saying what was done.
    let answer = browser.get(&authorize_url(&server, &client, &base)).await;
    let tokens = redeem(&server, &client, &answer, &verifier).await;
    let (_, weak) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(weak["acr"], PWD, "never claimed higher than what was done");
    // prompt=none cannot step up.
    let mut none = base.to_vec();
    none.extend([("acr_values", MFA), ("prompt", "none")]);
    let answer = browser.get(&authorize_url(&server, &client, &none)).await;
    let (_, params) = redirect_params(&answer);
    assert_eq!(params["error"], "interaction_required");
    // acr_values=mfa: only the code is asked (no password field), then the code is issued.
    let (challenge, verifier) = pkce();
    let up = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("acr_values", MFA),
    ];
    let answer = browser.get(&authorize_url(&server, &client, &up)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(
        page.contains(r#"name="code""#) && !page.contains(r#"name="password""#),
        "{page}"
    );
    next_step(&clock);
    let answer = give_code(&server, &browser, &page, &code_at(&secret, &clock)).await;
    assert!(
        answer
            .headers()
            .get("set-cookie")
            .is_none_or(|c| !c.to_str().unwrap().contains("lanyard_session")),
        "the session is the same one"
    );
    let tokens = redeem(&server, &client, &answer, &verifier).await;
    let (_, strong) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(strong["acr"], MFA);
    assert_eq!(strong["sid"], weak["sid"], "strengthened, not replaced");
    assert!(strong["auth_time"].as_i64() > weak["auth_time"].as_i64());
}

#[tokio::test]
async fn an_app_that_requires_two_factors_gets_them_set_up() {
    let (server, clock, client) = server().await;
    lanyard_core::clients::update(
        &server.state,
        "wiki",
        &serde_json::json!({"require_mfa": true}),
        "test",
    )
    .await
    .unwrap();
    let browser = Browser::new();
    let (challenge, verifier) = pkce();
    let params = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let answer = password_step(&server, &browser, &client, &params).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let page = answer.text().await.unwrap();
    assert!(page.contains("Set up two-step verification"), "{page}");
    let r = set_up_in_sign_in(&server, &browser, &page, &clock).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("lanyard"),
        "signed in"
    );
    let shown = r.text().await.unwrap();
    assert_eq!(recovery_codes(&shown).len(), 10);
    let next = html_escape::decode_html_entities(&between(&shown, r#"id="continue" href=""#, "\""))
        .into_owned();
    assert!(next.starts_with("/authorize?"), "{next}");
    let answer = browser.get(&server.url(&next)).await;
    let tokens = redeem(&server, &client, &answer, &verifier).await;
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], MFA);
}

#[tokio::test]
async fn a_strength_nobody_here_can_give_goes_back_to_the_app() {
    let (server, _clock, client) = server().await;
    let browser = Browser::new();
    let answer = password_step(
        &server,
        &browser,
        &client,
        &[("acr_values", "urn:lanyard:acr:phr")],
    )
    .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&answer);
    assert_eq!(to, client.redirect_uri);
    assert_eq!(params["error"], "unmet_authentication_requirements");
    assert_eq!(params["state"], "st-123");
}

#[tokio::test]
async fn discovery_names_the_strengths() {
    let (server, _clock, _client) = server().await;
    let d: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["acr_values_supported"],
        serde_json::json!([
            "urn:lanyard:acr:pwd",
            "urn:lanyard:acr:mfa",
            "urn:lanyard:acr:phr"
        ])
    );
    assert_eq!(d["claims_parameter_supported"], true);
}

#[tokio::test]
async fn removing_factors_and_policy() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), |c| c.mfa_required = true).await;
    server.user("alice", PASSWORD).await;
    let client = server.client(ClientSpec::web("wiki")).await;
    // Required for everyone: the password leads to setting up, whatever the app.
    let browser = Browser::new();
    let page = password_step(&server, &browser, &client, &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Set up two-step verification"), "{page}");
    // Set one up from the account page instead, then try to remove the only one.
    let browser = account_browser_required(&server, &clock).await;
    let account = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    let factor = form_value(&account, "factor");
    let r = browser
        .http
        .post(server.url("/account/mfa/remove"))
        .form(&[
            ("csrf", form_value(&account, "csrf")),
            ("factor", factor),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("requires one"));
}

/// With `mfa = required`, alice's account sign-in leads to setting a factor up; done here.
async fn account_browser_required(server: &TestServer, clock: &ManualClock) -> Browser {
    let (browser, r) = account_password(server).await;
    let page = r.text().await.unwrap();
    assert!(page.contains("Set up two-step verification"), "{page}");
    let r = set_up_in_sign_in(server, &browser, &page, clock).await;
    assert_eq!(r.status(), StatusCode::OK);
    browser
}

/// A token for `app`'s client from the single sign-on session in `browser`.
async fn app_token(
    server: &TestServer,
    browser: &Browser,
    client: &TestClient,
    extra: &[(&str, &str)],
) -> String {
    let (challenge, verifier) = pkce();
    let mut params = vec![
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    let answer = browser.get(&authorize_url(server, client, &params)).await;
    let tokens = redeem(server, client, &answer, &verifier).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_demo_api_asks_for_a_step_up_and_the_app_gets_one() {
    let (server, clock, _) = server().await;
    // The test moves the clock by up to 30 s at a time: a staleness bound well beyond that
    // keeps the app's mirror trusted meanwhile.
    let billing = crate::apps::start_app(
        &server,
        "billing",
        server.store(),
        Duration::from_secs(3600),
    )
    .await;
    // Signed in at billing with a password alone ...
    let browser = Browser::new();
    let (_, page) = crate::apps::browse(&browser, &format!("{}/", billing.base)).await;
    let (_, home) = crate::apps::sign_in_and_follow(&server, &browser, &page).await;
    assert!(home.contains("Payouts"), "{home}");
    // ... then a factor is set up from another browser.
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;

    // The API refuses the password-only token: 401, RFC 9470's challenge.
    let weak = app_token(&server, &browser, &billing.client, &[]).await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/payouts", billing.base))
        .bearer_auth(&weak)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains(r#"error="insufficient_user_authentication""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(r#"acr_values="{MFA}""#)),
        "{challenge}"
    );

    // The page sends the person to Lanyard asking for two factors; only the code is asked.
    let (steps, page) = crate::apps::browse(&browser, &format!("{}/payouts", billing.base)).await;
    let (status, at) = steps.last().unwrap();
    assert_eq!(*status, StatusCode::OK);
    assert!(
        at.contains("acr_values=urn%3Alanyard%3Aacr%3Amfa"),
        "{steps:?}"
    );
    assert!(
        page.contains(r#"name="code""#) && !page.contains(r#"name="password""#),
        "{page}"
    );
    next_step(&clock);
    let answer = give_code(&server, &browser, &page, &code_at(&secret, &clock)).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let next = answer.headers()["location"].to_str().unwrap().to_owned();
    let (steps, page) = crate::apps::browse(&browser, &next).await;
    assert_eq!(
        steps.last().unwrap(),
        &(StatusCode::OK, format!("{}/payouts", billing.base)),
        "back on the page asked for"
    );
    assert!(page.contains("ACME GmbH"), "{page}");

    // A token of the strengthened session is let through.
    let strong = app_token(&server, &browser, &billing.client, &[]).await;
    let r = reqwest::Client::new()
        .get(format!("{}/api/payouts", billing.base))
        .bearer_auth(&strong)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_operator_lists_and_resets_a_persons_factors() {
    let (server, clock, client) = server().await;
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;
    let sub = server
        .state
        .db
        .users()
        .by_username("alice")
        .await
        .unwrap()
        .unwrap()
        .sub;
    // Alice is signed in with both factors somewhere.
    let browser = Browser::new();
    let page = password_step(&server, &browser, &client, &[])
        .await
        .text()
        .await
        .unwrap();
    next_step(&clock);
    let answer = give_code(&server, &browser, &page, &code_at(&secret, &clock)).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let admin = crate::admin::admin_token(&server).await;
    let http = reqwest::Client::new();
    let url = server.url(&format!("/admin/v1/users/{sub}/factors"));
    let listed: Value = http
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["factors"][0]["kind"], "totp");
    assert_eq!(listed["factors"][0]["name"], "Phone");
    assert!(listed["factors"][0]["last_used_at"].as_i64().is_some());
    assert_eq!(listed["recovery_codes_left"], 10);
    assert!(!listed.to_string().contains(&secret), "never the secret");
    let r = http.delete(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let done: Value = r.json().await.unwrap();
    assert_eq!(
        done["sessions_ended"].as_array().map(Vec::len),
        Some(2),
        "{done}"
    );
    let listed: Value = http
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["factors"], serde_json::json!([]));
    assert_eq!(listed["recovery_codes_left"], 0);
    // Signed out; the password alone signs in again (nothing requires a factor here).
    let again = browser.get(&authorize_url(&server, &client, &[])).await;
    assert_eq!(again.status(), StatusCode::OK, "the sign-in page");
    let answer = password_step(&server, &Browser::new(), &client, &[]).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let unknown = server.url("/admin/v1/users/nobody/factors");
    let r = http.get(&unknown).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Sets up the authenticator app the sign-in's setup page `page` shows, with its current
/// code; the answer (the recovery codes page).
async fn set_up_in_sign_in(
    server: &TestServer,
    browser: &Browser,
    page: &str,
    clock: &ManualClock,
) -> reqwest::Response {
    let secret = between(page, r#"id="totp-secret" class="secret">"#, "<");
    let fields = [
        ("enrolment", form_value(page, "enrolment")),
        ("code", code_at(&secret, clock)),
    ];
    post_step(server, browser, page, "/signin/enrol", &fields).await
}

#[tokio::test]
async fn a_code_from_the_previous_step_works_once() {
    let (server, clock, client) = server().await;
    let (secret, _) = enrol(&server, &account_browser(&server).await, &clock).await;
    // A minute on: the code of the step before now is still tolerated (a slow typist) ...
    clock.advance(Duration::from_secs(60));
    let previous = code_at(
        &secret,
        &ManualClock::new(clock.now().minus(Duration::from_secs(30))),
    );
    let browser = Browser::new();
    let page = password_step(&server, &browser, &client, &[])
        .await
        .text()
        .await
        .unwrap();
    let r = give_code(&server, &browser, &page, &previous).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // ... once: a second sign-in with it is refused (RFC 6238 §5.2).
    let other = Browser::new();
    let page = password_step(&server, &other, &client, &[])
        .await
        .text()
        .await
        .unwrap();
    let r = give_code(&server, &other, &page, &previous).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("used already"));
}
