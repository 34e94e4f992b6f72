//! The operators' console (issue 23) in a real browser: Chromium through chromedriver, with
//! axe-core (npm, pinned in `tests/interop/node`) checking every page for serious
//! accessibility violations, and each page saved for `docs/console.md`. An operator signs in
//! with a password and an authenticator-app code (computed here by an independent TOTP
//! implementation), finds alice, ends her sessions (her app sends her to sign in, and her
//! token is refused by its API within a second), disables and enables her, registers an app
//! and signs in to it, and rotates a key; a person who is not an operator gets 403, and an
//! anonymous visitor is sent to sign in.

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use lanyard_store::{Clock, SystemClock};
use reqwest::StatusCode;
use totp_rs::{Algorithm, Builder};

use crate::apps::{browse, on_redis, redis_source, refused_within_a_second};
use crate::browser::{
    browser, click, screenshots, session, sign_in_as, text, wait_for_text, wait_for_url,
};
use crate::support::{Browser, Db, Store, TestServer, code_flow};

const PASSWORD: &str = "correct horse battery staple";
/// The operator's authenticator-app seed.
const SEED: &[u8] = b"console-operator-seed-20-bytes!!";

/// The authenticator app's code for `SEED`, `steps_back` 30-second steps ago.
fn code(steps_back: u64) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(SEED.to_vec())
        .build()
        .unwrap();
    let now = u64::try_from(SystemClock.now().as_secs()).unwrap();
    totp.generate(now - 30 * steps_back).to_string()
}

/// The serious and critical violations axe-core finds on the page shown.
async fn axe(client: &Client) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/interop/node/node_modules/axe-core/axe.min.js"
    );
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("{path}: {e}; install it with `npm ci --prefix tests/interop/node` (.ci/run does)")
    });
    client.execute(&source, vec![]).await.unwrap();
    let found = client
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               axe.run(document, { resultTypes: ["violations"] }).then((r) => done(
                 r.violations
                   .filter((v) => v.impact === "serious" || v.impact === "critical")
                   .map((v) => v.id + ": " + v.help + " at " + v.nodes.map((n) => n.target.join(" ")).join(", "))
               ), (e) => done(["axe failed: " + e]));"#,
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

/// Checks the page with axe-core and saves it, light and dark, as `console-<name>`.
async fn page_checked(client: &Client, name: &str) {
    assert_eq!(
        axe(client).await,
        Vec::<String>::new(),
        "on the {name} page"
    );
    crate::browser::color_scheme(client, "dark").await;
    assert_eq!(
        axe(client).await,
        Vec::<String>::new(),
        "on the {name} page, dark"
    );
    crate::browser::color_scheme(client, "light").await;
    screenshots(client, &format!("console-{name}")).await;
}

/// Types `value` into the field with id `id`.
async fn fill(client: &Client, id: &str, value: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// The console's sign-in for `username`: password, then the authenticator app's code.
async fn operator_signs_in(client: &Client, username: &str) {
    wait_for_text(client, "to continue to Lanyard console").await;
    sign_in_as(client, username, PASSWORD, false).await;
    wait_for_text(client, "Two-step verification").await;
    fill(client, "code", &code(0)).await;
    click(client, "button[type=submit]").await;
}

#[tokio::test]
async fn an_operator_runs_lanyard_from_the_console_in_a_real_browser() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let state = &server.state;
    server.user("alice", PASSWORD).await;
    let olivia = server.user("olivia", PASSWORD).await;
    server.user("bob", PASSWORD).await;
    lanyard_core::operators::add(state, &olivia.sub, "test")
        .await
        .unwrap();
    // Olivia set up her authenticator app a step ago (a step is never accepted twice).
    lanyard_core::factors::enrol_totp(state, &olivia.sub, "Phone", SEED, &code(1))
        .await
        .unwrap()
        .expect("the code of the step before is accepted");
    let wiki = on_redis(&server, "wiki").await;
    let (driver, client) = browser().await;

    // The checker finds what it should: an image without a text alternative.
    client
        .goto("data:text/html,<!doctype html><html lang=en><title>t</title><img src=x.png>")
        .await
        .unwrap();
    let found = axe(&client).await;
    assert!(
        found.iter().any(|v| v.starts_with("image-alt")),
        "{found:?}"
    );

    // An anonymous visitor is sent to sign in, and comes back to the page asked for.
    client.goto(&server.url("/console/people")).await.unwrap();
    operator_signs_in(&client, "olivia").await;
    wait_for_text(&client, "Find a person").await;
    assert_eq!(
        client.current_url().await.unwrap().as_str(),
        server.url("/console/people")
    );
    page_checked(&client, "people").await;

    // Alice is signed in at wiki, in her own browser, and holds a token for its API.
    let alice_browser = session(&driver).await;
    alice_browser
        .goto(&format!("{}/profile", wiki.base))
        .await
        .unwrap();
    wait_for_text(&alice_browser, "to continue to The wiki app").await;
    sign_in_as(&alice_browser, "alice", PASSWORD, false).await;
    wait_for_text(&alice_browser, "Your profile at wiki").await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &wiki.client,
        "openid",
        "alice",
        PASSWORD,
    )
    .await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let me = reqwest::Client::new()
        .get(format!("{}/api/me", wiki.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    // Find alice; her page shows where she is signed in.
    fill(&client, "q", "alic").await;
    click(&client, "form[role=search] button").await;
    wait_for_url(&client, &server.url("/console/people?q=alic")).await;
    let page = wait_for_text(&client, "alice@example.com").await;
    assert!(!page.contains("olivia@example.com"), "only matches: {page}");
    click(&client, "table a").await;
    let page = wait_for_text(&client, "Where they are signed in").await;
    assert!(
        page.contains("wiki"),
        "her session at wiki is listed: {page}"
    );
    page_checked(&client, "person").await;

    // End her sessions: her token is refused within a second, and wiki asks her to sign in.
    click(&client, "form[action$='/end-sessions'] button").await;
    wait_for_text(&client, "Every session was ended").await;
    let ended = Instant::now();
    let refused = refused_within_a_second(&wiki.base, &token, ended).await;
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    alice_browser
        .goto(&format!("{}/profile", wiki.base))
        .await
        .unwrap();
    wait_for_text(&alice_browser, "Your session has ended").await;

    // Disable her (a dangerous action: asked first), then enable her again.
    click(&client, "form[action$='/disable'] button").await;
    wait_for_text(&client, "Disable this person?").await;
    page_checked(&client, "confirm").await;
    click(
        &client,
        "form input[name=confirmed] ~ button, form button.danger",
    )
    .await;
    wait_for_text(&client, "Disabled: signed out everywhere").await;
    let user = lanyard_core::users::by_username(state, "alice")
        .await
        .unwrap();
    assert!(user.disabled);
    click(&client, "form[action$='/enable'] button").await;
    wait_for_text(&client, "Enabled: they can sign in again").await;
    let user = lanyard_core::users::by_username(state, "alice")
        .await
        .unwrap();
    assert!(!user.disabled);
    // The audit trail names the operator.
    let events = state.db.audit().by_action("user.disable").await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.actor == format!("console:{}", olivia.sub)),
        "{events:?}"
    );

    // Register an app, read its secret (shown once), run it, and sign in to it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let notes_base = format!("http://{addr}");
    client.goto(&server.url("/console/apps/new")).await.unwrap();
    wait_for_text(&client, "Register an app").await;
    page_checked(&client, "app-new").await;
    fill(&client, "client_id", "notes").await;
    fill(&client, "name", "The notes app").await;
    fill(&client, "redirect_uris", &format!("{notes_base}/callback")).await;
    fill(
        &client,
        "post_logout_redirect_uris",
        &format!("{notes_base}/"),
    )
    .await;
    click(&client, "input[name=first_party]").await;
    click(&client, "form.stacked button[type=submit]").await;
    wait_for_text(&client, "shown only this once").await;
    let secret = client
        .find(Locator::Id("secret"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(secret.len() >= 32, "{secret}");
    let config = lanyard_demo::DemoConfig {
        name: "notes".into(),
        issuer: server.issuer.clone(),
        client_id: "notes".into(),
        client_secret: secret,
        listen: addr,
        base_url: notes_base.clone(),
        staleness_bound: Duration::from_secs(10),
        clock: state.clock.clone(),
    };
    let source = std::sync::Arc::new(lanyard_rp::StoreSource(redis_source(&server).await));
    let (router, _notes) = lanyard_demo::app(&config, source).await.unwrap();
    tokio::spawn(lanyard_demo::serve(
        listener,
        router,
        std::future::pending(),
    ));
    // Olivia is signed in at Lanyard already: single sign-on into the new app.
    client.goto(&format!("{notes_base}/profile")).await.unwrap();
    let page = wait_for_text(&client, "Your profile at notes").await;
    assert!(page.contains("olivia Example"), "{page}");
    client
        .goto(&server.url("/console/apps/notes"))
        .await
        .unwrap();
    wait_for_text(&client, "The notes app").await;
    // A role for it, granted to alice and to a group.
    fill(&client, "role-name", "editor").await;
    fill(&client, "role-description", "Edits every note").await;
    click(&client, "form[action$='/roles'] button").await;
    wait_for_text(&client, "The role is defined").await;
    fill(&client, "holder-editor", "alice").await;
    click(&client, "form[action$='/roles/editor/grant'] button").await;
    let page = wait_for_text(&client, "Granted: their next tokens").await;
    assert!(page.contains("alice"), "{page}");
    let holders = lanyard_core::access::holders(state, "notes", "editor")
        .await
        .unwrap();
    assert_eq!(holders.len(), 1, "{holders:?}");
    page_checked(&client, "app").await;
    client.goto(&server.url("/console/apps")).await.unwrap();
    wait_for_text(&client, "notes").await;
    page_checked(&client, "apps").await;

    // Rotate the signing key: a new one is published before it signs.
    client.goto(&server.url("/console/keys")).await.unwrap();
    wait_for_text(&client, "Signing keys").await;
    let before = lanyard_core::keys::list(state).await.unwrap().len();
    click(&client, "form[action='/console/keys/rotate'] button").await;
    let page = wait_for_text(&client, "A new key is published").await;
    assert!(page.contains("next"), "{page}");
    assert_eq!(
        lanyard_core::keys::list(state).await.unwrap().len(),
        before + 1
    );
    page_checked(&client, "keys").await;

    // The other pages.
    for (path, shows, name) in [
        ("/console/audit", "user.disable", "audit"),
        ("/console/revocations", "In force", "revocations"),
        (
            "/console/health",
            "Ready: this node takes traffic",
            "health",
        ),
        ("/console/groups", "Make a group", "groups"),
    ] {
        client.goto(&server.url(path)).await.unwrap();
        wait_for_text(&client, shows).await;
        page_checked(&client, name).await;
    }

    // The audit trail's live tail shows an event as it happens.
    client.goto(&server.url("/console/audit")).await.unwrap();
    wait_for_text(&client, "Live").await;
    click(&client, "#tail").await;
    let group = lanyard_core::access::NewGroup {
        name: "Night shift".into(),
        description: None,
        external_id: None,
    };
    lanyard_core::access::create_group(state, group, "test")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&client).await.contains("test\tgroup.create") {
        assert!(Instant::now() < deadline, "{}", text(&client).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Sign out of the console: signed out of Lanyard too, so the console asks for a sign-in.
    click(&client, "form.who button").await;
    wait_for_text(&client, "to continue to Lanyard console").await;

    // Bob, who is not an operator, signs in and is told so.
    sign_in_as(&client, "bob", PASSWORD, false).await;
    wait_for_text(&client, "You are not an operator").await;
    assert_eq!(axe(&client).await, Vec::<String>::new());
    screenshots(&client, "console-forbidden").await;
    alice_browser.close().await.unwrap();
    client.close().await.unwrap();
    server.stop().await;
}

/// Follows redirects from `url` in `browser` ([`browse`]): the last answer's status, address
/// and page.
async fn follow(browser: &Browser, url: &str) -> (StatusCode, String, String) {
    let (mut steps, page) = browse(browser, url).await;
    let (status, at) = steps.pop().expect("at least one answer");
    (status, at, page)
}

/// Posts `form` to `url` and follows where it leads.
async fn post(
    browser: &Browser,
    url: &str,
    form: &[(&str, String)],
) -> (StatusCode, String, String) {
    let response = browser.http.post(url).form(form).send().await.unwrap();
    match response.headers().get("location") {
        Some(location) if response.status().is_redirection() => {
            let next = url::Url::parse(url)
                .unwrap()
                .join(location.to_str().unwrap())
                .unwrap();
            follow(browser, next.as_str()).await
        }
        _ => {
            let status = response.status();
            (status, url.to_owned(), response.text().await.unwrap())
        }
    }
}

/// `username` signs in to the console without a browser: to the sign-in page from
/// `/console/people`, the password, and (when asked) the code of `SEED`.
async fn console_sign_in(server: &TestServer, username: &str) -> (Browser, StatusCode, String) {
    console_sign_in_with(server, username, code(0)).await
}

/// [`console_sign_in`] with `second` as the second step's code.
async fn console_sign_in_with(
    server: &TestServer,
    username: &str,
    second: String,
) -> (Browser, StatusCode, String) {
    let browser = Browser::new();
    let (status, _, page) = follow(&browser, &server.url("/console/people")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("to continue to <strong>Lanyard console</strong>"),
        "{page}"
    );
    let answer = browser
        .sign_in(server, &page, username, PASSWORD, false)
        .await;
    let (mut status, mut at, mut page) = match answer.headers().get("location") {
        Some(l) => {
            let next = url::Url::parse(&server.url("/signin"))
                .unwrap()
                .join(l.to_str().unwrap())
                .unwrap();
            follow(&browser, next.as_str()).await
        }
        None => (answer.status(), String::new(), answer.text().await.unwrap()),
    };
    if page.contains(r#"action="/signin/code""#) {
        let form = [
            ("csrf", crate::support::form_value(&page, "csrf")),
            ("pending", crate::support::form_value(&page, "pending")),
            (
                "authorization_request",
                crate::support::form_value(&page, "authorization_request"),
            ),
            ("code", second),
        ];
        (status, at, page) = post(&browser, &server.url("/signin/code"), &form).await;
    }
    let _ = at;
    (browser, status, page)
}

#[tokio::test]
async fn the_console_tells_who_may_not_use_it_and_why() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let state = &server.state;
    let olivia = server.user("olivia", PASSWORD).await;
    server.user("bob", PASSWORD).await;

    // Before anyone is an operator, the console says how to make one.
    let (status, _, page) = follow(&Browser::new(), &server.url("/console/people")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("lanyard operator add USERNAME"), "{page}");

    lanyard_core::operators::add(state, &olivia.sub, "test")
        .await
        .unwrap();
    // Made under an issuer the deployment has since left: the console's addresses follow the
    // node's issuer when it starts, or nobody could sign in to it.
    let moved = serde_json::json!({
        "redirect_uris": ["https://old.example/console/callback"],
        "post_logout_redirect_uris": ["https://old.example/console/"],
    });
    lanyard_core::clients::update(state, "lanyard-console", &moved, "test")
        .await
        .unwrap();
    // An anonymous visitor is sent to sign in, and would come back to the page asked for.
    let r = Browser::new().get(&server.url("/console/people?q=a")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        "/console/login?return_to=%2Fconsole%2Fpeople%3Fq%3Da"
    );

    // Bob is not an operator: told so at once, without being made to set up a factor.
    let (_, status, page) = console_sign_in(&server, "bob").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("You are not an operator"), "{page}");

    // Olivia is one, without a second factor yet: the console asks for two, so she is
    // asked to set one up first.
    let (_, status, page) = console_sign_in(&server, "olivia").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Set up two-step verification"), "{page}");

    // With one, she is in.
    lanyard_core::factors::enrol_totp(state, &olivia.sub, "Phone", SEED, &code(1))
        .await
        .unwrap()
        .unwrap();
    let (browser, status, page) = console_sign_in(&server, "olivia").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Find a person"), "{page}");
    // People are found by name too.
    let (_, _, found) = follow(&browser, &server.url("/console/people?q=olivia+ex")).await;
    assert!(found.contains("olivia@example.com"), "{found}");
    assert!(!found.contains("bob@example.com"), "{found}");

    // A form without its CSRF token does nothing.
    let bob = lanyard_core::users::by_username(state, "bob")
        .await
        .unwrap();
    let url = server.url(&format!("/console/people/{}/disable", bob.sub));
    let r = browser
        .http
        .post(&url)
        .form(&[("confirmed", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        !lanyard_core::users::get(state, &bob.sub)
            .await
            .unwrap()
            .disabled
    );
    // With it, a dangerous action asks first; confirmed, it is done and audited as her.
    let (_, _, bobs_page) = follow(
        &browser,
        &server.url(&format!("/console/people/{}", bob.sub)),
    )
    .await;
    let csrf = crate::support::form_value(&bobs_page, "csrf");
    let (status, _, asked) = post(&browser, &url, &[("csrf", csrf.clone())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(asked.contains("Disable this person?"), "{asked}");
    assert!(
        !lanyard_core::users::get(state, &bob.sub)
            .await
            .unwrap()
            .disabled
    );
    let (status, at, done) = post(
        &browser,
        &url,
        &[("csrf", csrf.clone()), ("confirmed", "yes".into())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(at.ends_with("?done=disabled"), "{at}");
    assert!(done.contains("Disabled: signed out everywhere"), "{done}");
    assert!(
        lanyard_core::users::get(state, &bob.sub)
            .await
            .unwrap()
            .disabled
    );

    // The audit trail is searched by username, though it keeps subjects.
    assert!(state.audit.flush_for(Duration::from_secs(5)).await);
    let (status, _, trail) =
        follow(&browser, &server.url("/console/audit?actor=console:olivia")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        trail.contains("<td>user.disable</td>") && trail.contains("<td>console:olivia</td>"),
        "{trail}"
    );
    assert!(
        !trail.contains(&olivia.sub),
        "people are shown by name: {trail}"
    );
    let (_, _, tail) = follow(
        &browser,
        &server.url("/console/audit/tail?after=0&action=user.disable"),
    )
    .await;
    let tail: serde_json::Value = serde_json::from_str(&tail).unwrap();
    assert_eq!(tail["events"][0]["target"], "bob", "{tail}");
    assert_eq!(tail["complete"], true, "{tail}");
    // A page holds 100 events, newest first; "Older events" goes on from the last one shown.
    let filler: Vec<_> = (0..150)
        .map(|_| lanyard_core::model::AuditEvent::new(state.clock.now(), "filler", "test.filler"))
        .collect();
    state.db.audit().insert(&filler).await.unwrap();
    let (_, _, first) = follow(&browser, &server.url("/console/audit?action=test.filler")).await;
    assert_eq!(first.matches("<td>test.filler</td>").count(), 100);
    let older = first
        .split("<a href=\"")
        .filter_map(|a| a.split('"').next())
        .find(|href| href.contains("before="))
        .expect("a link to older events")
        .replace("&#38;", "&");
    let (_, _, second) = follow(&browser, &server.url(&older)).await;
    assert_eq!(second.matches("<td>test.filler</td>").count(), 50);
    assert!(!second.contains("Older events"), "the last page");

    // Nobody can lock the operators out from the console: the operator role of the console
    // cannot be deleted, nor its last holder taken away.
    let role = server.url("/console/apps/lanyard-console/roles/operator");
    let (status, _, page) = post(
        &browser,
        &format!("{role}/delete"),
        &[("csrf", csrf.clone())],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    let holder = format!("user:{}", olivia.sub);
    let form = [("csrf", csrf.clone()), ("holder", holder)];
    let (status, _, page) = post(&browser, &format!("{role}/take"), &form).await;
    assert_eq!(status, StatusCode::CONFLICT, "{page}");
    assert!(page.contains("last holder of the operator role"), "{page}");
    assert!(
        lanyard_core::operators::is_operator(state, &olivia.sub)
            .await
            .unwrap()
    );
    // The live tail of a browser without a console session: a 401 the script can read.
    let r = Browser::new()
        .get(&server.url("/console/audit/tail?after=0"))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "signed_out"
    );

    // Revocations: an access token revoked by its jti from the revocations page (asked
    // first) is in force, and listed.
    let jti = "a-leaked-token-id";
    let form = [
        ("csrf", csrf.clone()),
        ("kind", "jti".to_owned()),
        ("value", jti.to_owned()),
    ];
    let url = server.url("/console/revocations/revoke");
    let (_, _, asked) = post(&browser, &url, &form).await;
    assert!(asked.contains("Revoke it?"), "{asked}");
    let mut confirmed = form.to_vec();
    confirmed.push(("confirmed", "yes".to_owned()));
    let (status, _, listed) = post(&browser, &url, &confirmed).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed.contains("Revoked: every app following Lanyard refuses it"),
        "{listed}"
    );
    assert!(listed.contains(&format!("<code>{jti}</code>")), "{listed}");

    // Keys: a leaked key removed, asked first; the key list loses it.
    let before = lanyard_core::keys::list(state).await.unwrap();
    let kid = before[0].kid.clone();
    let url = server.url("/console/keys/remove");
    let form = [("csrf", csrf.clone()), ("kid", kid.clone())];
    let (_, _, asked) = post(&browser, &url, &form).await;
    assert!(asked.contains("Remove this signing key?"), "{asked}");
    assert_eq!(
        lanyard_core::keys::list(state).await.unwrap().len(),
        before.len()
    );
    let mut confirmed = form.to_vec();
    confirmed.push(("confirmed", "yes".to_owned()));
    let (status, _, page) = post(&browser, &url, &confirmed).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("The key was removed"), "{page}");
    let after = lanyard_core::keys::list(state).await.unwrap();
    assert!(after.iter().all(|k| k.kid != kid), "{after:?}");

    // Taken off the operators, her console token is refused at once (and its refresh): she
    // is sent to sign in again, and then told she is not an operator.
    lanyard_core::operators::remove(state, &olivia.sub, "test")
        .await
        .unwrap();
    let (status, _, page) = follow(&browser, &server.url("/console/people")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your session has ended"), "{page}");
    // A revocation refuses tokens issued up to its second (token times are whole seconds), so
    // a sign-in within the same second would be refused too: the next one is what counts.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // (This step's code was used: a recovery code is her second factor this time.)
    let recovery = lanyard_core::factors::new_recovery_codes(state, &olivia.sub, "test")
        .await
        .unwrap();
    let (_, status, page) = console_sign_in_with(&server, "olivia", recovery[0].clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("You are not an operator"), "{page}");
    server.stop().await;
}
