//! Passkeys (issue 20, part 1), the service under the pages: registering one and signing in
//! with it, with and without a username, answered by a software passkey
//! (`support::passkey`, written from the WebAuthn text), so these run without a browser; and
//! the attacks: another origin or relying-party id, a replayed assertion, a cloned
//! authenticator (a counter that goes backwards), someone else's passkey, no user
//! verification.
//!
//! WebAuthn needs a secure context: `https`, or `http://localhost`. The server here is
//! `http://localhost:<port>` (its listener is on 127.0.0.1).

use lanyard_core::ServiceError;
use lanyard_core::model::{Acr, User};
use lanyard_core::passkeys::{self, Ceremony};
use serde_json::Value;

use crate::support::TestServer;
use crate::support::passkey::SoftPasskey;

const PASSWORD: &str = "correct horse battery staple";

/// A server whose issuer is `http://localhost:<port>`, with alice and bob.
async fn server() -> (TestServer, User, User) {
    let server = TestServer::start_with(
        crate::support::Db::Sqlite,
        crate::support::Store::Memory,
        |c| {
            c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        },
    )
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let bob = server.user("bob", PASSWORD).await;
    (server, alice, bob)
}

fn origin(server: &TestServer) -> String {
    server.state.config.issuer.clone()
}

/// Registers a new software passkey for `user`; returns it.
async fn register(server: &TestServer, user: &User, name: &str) -> SoftPasskey {
    let ceremony = passkeys::start_registration(&server.state, user)
        .await
        .unwrap();
    assert_eq!(
        ceremony.options["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "a discoverable credential"
    );
    assert_eq!(
        ceremony.options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let (key, answer) = SoftPasskey::register(&ceremony.options, &origin(server));
    let json = answer.to_string();
    let factor = passkeys::finish_registration(&server.state, user, &ceremony.id, &json, name)
        .await
        .unwrap();
    assert_eq!(factor.name, name);
    key
}

/// The software passkey's answer to `ceremony`, from `origin`.
fn assert_with(key: &mut SoftPasskey, ceremony: &Ceremony, origin: String) -> String {
    key.assert(&ceremony.options, &origin, None).to_string()
}

/// The audit trail's `factor.use` events, everything recorded so far written.
async fn audited_uses(server: &TestServer) -> Vec<lanyard_core::model::AuditEvent> {
    server.state.audit.flush().await;
    server
        .state
        .db
        .audit()
        .by_action("factor.use")
        .await
        .unwrap()
}

fn refused(result: Result<passkeys::PasskeySignIn, ServiceError>, why: &str) {
    assert!(
        matches!(result, Err(ServiceError::Invalid(_))),
        "{why}: {result:?}"
    );
}

#[tokio::test]
async fn a_passkey_signs_in_without_a_username_and_as_the_second_step() {
    let (server, alice, bob) = server().await;
    let mut key = register(&server, &alice, "Laptop").await;

    // The button: no username; the passkey says whose it is.
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    assert!(
        ceremony.options.get("mediation").is_none(),
        "a dialog, not autofill"
    );
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    let signed_in = passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    assert_eq!(signed_in.sub, alice.sub);
    assert!(signed_in.amr.contains(&"user".to_owned()));
    assert_eq!(
        Acr::of(&signed_in.amr),
        Acr::Phr,
        "phishing-resistant by itself"
    );
    // Autofill asks for conditional mediation.
    let autofill = passkeys::start_sign_in(&server.state, None, true)
        .await
        .unwrap();
    assert_eq!(autofill.options["mediation"], "conditional");

    // The second step after alice's password: only her passkeys are offered.
    let ceremony = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let allowed = ceremony.options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    let again = passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    assert_eq!(again.factor, signed_in.factor);

    // Bob has none; alice's passkey cannot answer for bob.
    assert!(
        passkeys::start_sign_in(&server.state, Some(&bob), false)
            .await
            .is_err()
    );
    let mut bobs = register(&server, &bob, "Phone").await;
    passkeys::start_sign_in(&server.state, Some(&bob), false)
        .await
        .expect("bob has a passkey now");
    let for_alice = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let bobs_answer = assert_with(&mut bobs, &for_alice, origin(&server));
    refused(
        passkeys::finish_sign_in(&server.state, &for_alice.id, &bobs_answer).await,
        "bob's passkey for alice's sign-in",
    );

    // Listed with the factors, with when they were used.
    let (factors, _) = lanyard_core::factors::list(&server.state, &alice.sub)
        .await
        .unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0].name, "Laptop");
    assert!(factors[0].last_used_at.is_some());
}

#[tokio::test]
async fn assertions_for_another_origin_or_relying_party_or_twice_are_refused() {
    let (server, alice, _) = server().await;
    let mut key = register(&server, &alice, "Laptop").await;

    // Another origin (a phishing site under the same name).
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let phishing = origin(&server).replace("localhost", "evil.localhost");
    let answer = assert_with(&mut key, &ceremony, phishing);
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "another origin",
    );

    // Another relying-party id: the authenticator signs for the name it was given.
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let answer = key
        .assert(&ceremony.options, &origin(&server), Some("sub.localhost"))
        .to_string();
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "another relying party",
    );

    // A good assertion is good once: its ceremony is taken, and a new one has another challenge.
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "the same answer again",
    );
    let fresh = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    refused(
        passkeys::finish_sign_in(&server.state, &fresh.id, &answer).await,
        "an old answer to a new challenge",
    );

    // Failures are audited.
    let failures = audited_uses(&server).await;
    assert!(failures.iter().filter(|e| e.outcome == "failure").count() >= 3);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let (server, alice, _) = server().await;
    let mut key = register(&server, &alice, "Security key").await;
    let ceremony = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    // As if a clone of this authenticator had signed in many times since.
    let (id, data) = server
        .state
        .db
        .factors()
        .passkeys_of(&alice.sub)
        .await
        .unwrap()
        .remove(0);
    let mut stored: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert!(
        stored["cred"]["counter"].as_u64().unwrap() >= 1,
        "the counter is kept"
    );
    stored["cred"]["counter"] = 1000.into();
    server
        .state
        .db
        .factors()
        .used_passkey(
            &id,
            &stored.to_string(),
            lanyard_store::Clock::now(&lanyard_store::SystemClock),
        )
        .await
        .unwrap();
    let ceremony = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "a counter below the stored one",
    );
    let events = audited_uses(&server).await;
    assert!(
        events.iter().any(|e| e.outcome == "failure"
            && e.detail.as_deref().is_some_and(|d| d.contains("counter"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_passkey_that_does_not_verify_the_user_is_refused() {
    let (server, alice, _) = server().await;
    let mut key = register(&server, &alice, "Laptop").await;
    key.verifies_user = false;
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "no user verification",
    );
    // Registration without it is refused too.
    let ceremony = passkeys::start_registration(&server.state, &alice)
        .await
        .unwrap();
    let answer: Value = lazy_registration(&ceremony.options, &origin(&server));
    assert!(
        passkeys::finish_registration(
            &server.state,
            &alice,
            &ceremony.id,
            &answer.to_string(),
            "x"
        )
        .await
        .is_err()
    );
}

/// A registration answer from an authenticator that does not verify the user.
fn lazy_registration(options: &Value, origin: &str) -> Value {
    SoftPasskey::register_unverified(options, origin).1
}

/// Posts `form` to `path` in `browser`.
async fn post(
    server: &TestServer,
    browser: &crate::support::Browser,
    path: &str,
    form: &[(&str, String)],
) -> reqwest::Response {
    browser
        .http
        .post(server.url(path))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Asks `path` for a ceremony from `page`'s passkey form; the ceremony id and options.
async fn options_from(
    server: &TestServer,
    browser: &crate::support::Browser,
    path: &str,
    form: &[(&str, String)],
) -> (String, Value) {
    let r = post(server, browser, path, form).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    (
        body["ceremony"].as_str().unwrap().to_owned(),
        body["options"].clone(),
    )
}

#[tokio::test]
async fn passkeys_through_the_pages_from_registration_to_tokens() {
    use crate::support::{
        Browser, ClientSpec, authorize_url, decode_jwt, form_value, pkce, redirect_params,
        token_request,
    };
    use reqwest::StatusCode;
    let (server, _, _) = server().await;
    let client = server.client(ClientSpec::web("wiki")).await;
    let origin = origin(&server);

    // Registered from the account page, after the password.
    let browser = Browser::new();
    let page = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"data-passkey="sign-in""#),
        "the account sign-in offers passkeys"
    );
    let r = post(
        &server,
        &browser,
        "/account/signin",
        &[
            ("csrf", form_value(&page, "csrf")),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let account = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(account.contains(r#"id="add-passkey""#), "{account}");
    let csrf = form_value(&account, "csrf");
    let wrong = post(
        &server,
        &browser,
        "/account/passkeys/options",
        &[("csrf", csrf.clone()), ("password", "not it".to_owned())],
    )
    .await;
    assert_eq!(
        wrong.status(),
        StatusCode::BAD_REQUEST,
        "the password first"
    );
    let (ceremony, options) = options_from(
        &server,
        &browser,
        "/account/passkeys/options",
        &[("csrf", csrf.clone()), ("password", PASSWORD.to_owned())],
    )
    .await;
    let (mut key, answer) = SoftPasskey::register(&options, &origin);
    let r = post(
        &server,
        &browser,
        "/account/passkeys",
        &[
            ("csrf", csrf.clone()),
            ("ceremony", ceremony),
            ("credential", answer.to_string()),
            ("name", "Laptop".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account?done=passkey-added");
    let account = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        account.contains("Laptop") && account.contains("Passkey"),
        "{account}"
    );

    // Signed in with the passkey alone, at an app: phishing-resistant.
    let other = Browser::new();
    let (challenge, verifier) = pkce();
    let url = authorize_url(
        &server,
        &client,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = other.get(&url).await.text().await.unwrap();
    assert!(
        page.contains(r#"autocomplete="username webauthn""#),
        "autofill"
    );
    assert!(page.contains("Sign in with a passkey"));
    let csrf = form_value(&page, "csrf");
    let (ceremony, options) = options_from(
        &server,
        &other,
        "/signin/passkey/options",
        &[("csrf", csrf.clone())],
    )
    .await;
    let answer = key.assert(&options, &origin, None);
    let r = post(
        &server,
        &other,
        "/signin/passkey",
        &[
            ("csrf", csrf.clone()),
            (
                "authorization_request",
                form_value(&page, "authorization_request"),
            ),
            ("ceremony", ceremony.clone()),
            ("credential", answer.to_string()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, client.redirect_uri);
    let tokens: Value = token_request(
        &server,
        &client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &params["code"]),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:lanyard:acr:phr");
    assert_eq!(id["amr"], serde_json::json!(["swk", "user", "mfa"]));
    // The same answer again, from a fresh page, is refused: the form comes back saying so.
    let again = Browser::new();
    let page = again.get(&url).await.text().await.unwrap();
    let r = post(
        &server,
        &again,
        "/signin/passkey",
        &[
            ("csrf", form_value(&page, "csrf")),
            (
                "authorization_request",
                form_value(&page, "authorization_request"),
            ),
            ("ceremony", ceremony),
            ("credential", answer.to_string()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("did not sign you in"));

    // As the second step after the password, and what an app asking for phr gets.
    let third = Browser::new();
    let url = authorize_url(&server, &client, &[("acr_values", "urn:lanyard:acr:phr")]);
    let page = third.get(&url).await.text().await.unwrap();
    let r = third
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(r.status(), StatusCode::OK, "the second step");
    let step = r.text().await.unwrap();
    assert!(step.contains("Use your passkey"), "{step}");
    assert!(!step.contains(r#"name="code""#), "phr: no code will do");
    let csrf = form_value(&step, "csrf");
    let pending = form_value(&step, "pending");
    let (ceremony, options) = options_from(
        &server,
        &third,
        "/signin/passkey/options",
        &[("csrf", csrf.clone()), ("pending", pending.clone())],
    )
    .await;
    assert_eq!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let answer = key.assert(&options, &origin, None);
    let r = post(
        &server,
        &third,
        "/signin/passkey",
        &[
            ("csrf", csrf),
            ("pending", pending),
            (
                "authorization_request",
                form_value(&step, "authorization_request"),
            ),
            ("ceremony", ceremony),
            ("credential", answer.to_string()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, client.redirect_uri);
    assert!(params.contains_key("code"), "{params:?}");
}

#[tokio::test]
async fn a_passkey_sign_in_a_moment_ago_confirms_adding_another() {
    use crate::support::{Browser, form_value};
    use reqwest::StatusCode;
    let clock =
        lanyard_store::ManualClock::new(lanyard_store::Clock::now(&lanyard_store::SystemClock));
    let server = TestServer::start_with_clock_and(clock.clone(), |c| {
        c.issuer = c.issuer.replace("127.0.0.1", "localhost");
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let mut key = register(&server, &alice, "Laptop").await;
    // Signed in at the account page with the passkey.
    let browser = Browser::new();
    let page = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = form_value(&page, "csrf");
    let (ceremony, options) = options_from(
        &server,
        &browser,
        "/signin/passkey/options",
        &[("csrf", csrf.clone())],
    )
    .await;
    let answer = key.assert(&options, &origin(&server), None);
    let r = post(
        &server,
        &browser,
        "/signin/passkey",
        &[
            ("csrf", csrf),
            ("ceremony", ceremony),
            ("credential", answer.to_string()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account");
    let account = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(account.contains("no password is needed"), "{account}");
    // So a second passkey needs no password now ...
    let csrf = form_value(&account, "csrf");
    let (ceremony, options) = options_from(
        &server,
        &browser,
        "/account/passkeys/options",
        &[("csrf", csrf.clone()), ("password", String::new())],
    )
    .await;
    let (_, answer) = SoftPasskey::register(&options, &origin(&server));
    let r = post(
        &server,
        &browser,
        "/account/passkeys",
        &[
            ("csrf", csrf.clone()),
            ("ceremony", ceremony),
            ("credential", answer.to_string()),
            ("name", "Phone".to_owned()),
        ],
    )
    .await;
    assert_eq!(r.headers()["location"], "/account?done=passkey-added");
    // ... but six minutes later it does again.
    clock.advance(std::time::Duration::from_secs(360));
    let r = post(
        &server,
        &browser,
        "/account/passkeys/options",
        &[("csrf", csrf), ("password", String::new())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let (factors, _) = lanyard_core::factors::list(&server.state, &alice.sub)
        .await
        .unwrap();
    assert_eq!(factors.len(), 2);
}
