//! E-mail through a real SMTP server (aiosmtpd, `support::smtp`): invitations, "Forgot your
//! password?", verified addresses and security notices, each mail read from the server and its
//! link followed by the scripted browser; the outbox across a relay that is down and a node
//! that stops; the folder Lanyard writes to without a relay.

use std::time::Duration;

use lanyard_core::config::{Config, SmtpRelay, SmtpTls};
use lanyard_store::{Clock, ManualClock};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin, admin_token};
use crate::support::smtp::{Mail, SmtpSink};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestServer, client_post, code_flow, form_value, offline_tokens,
    token_request,
};

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase";
const WAIT: Duration = Duration::from_secs(15);

/// Mail goes to `sink`, plain (a relay on this machine).
pub(crate) fn relay(sink: &SmtpSink) -> impl FnOnce(&mut Config) + use<> {
    let port = sink.port();
    move |config| {
        config.mail.smtp = Some(SmtpRelay {
            host: "127.0.0.1".to_owned(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            password_file: None,
        });
    }
}

/// Submits the form of `page` (its CSRF token and link token) to `path` with `fields`.
async fn submit(
    server: &TestServer,
    browser: &Browser,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("csrf".to_owned(), form_value(page, "csrf")),
        ("token".to_owned(), form_value(page, "token")),
    ];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    browser
        .http
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// "Forgot your password?" for `typed`, in a new browser (with `host` as the `Host`
/// header when given): the answer's status and page.
async fn forgot(server: &TestServer, typed: &str, host: Option<&str>) -> (StatusCode, String) {
    let browser = Browser::new();
    let page = browser.get(&server.url("/signin/forgot")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"name="username""#), "{page}");
    let mut request = browser.http.post(server.url("/signin/forgot")).form(&[
        ("csrf", form_value(&page, "csrf").as_str()),
        ("username", typed),
    ]);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let r = request.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Waits until `action` was audited `n` times (the background half of a request is done).
async fn audited(server: &TestServer, action: &str, n: usize) {
    for _ in 0..300 {
        server.state.audit.flush().await;
        let events = server.state.db.audit().by_action(action).await.unwrap();
        if events.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{action} was not audited {n} times");
}

fn signed_in_at_account(page: &str) -> bool {
    page.contains(r#"id="account-username""#)
}

/// Signs `username` in at the account page in a new browser; the answer's status.
async fn account_sign_in(server: &TestServer, username: &str, password: &str) -> StatusCode {
    sign_in_with(server, &Browser::new(), username, password).await
}

/// Signs `username` in at the account page in `browser`; the answer's status (303: in).
async fn sign_in_with(
    server: &TestServer,
    browser: &Browser,
    username: &str,
    password: &str,
) -> StatusCode {
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
            ("csrf", form_value(&page, "csrf").as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    r.status()
}

/// The only mail among `mails` whose subject contains `subject`.
fn with_subject<'a>(mails: &'a [Mail], subject: &str) -> &'a Mail {
    let found: Vec<&Mail> = mails
        .iter()
        .filter(|m| m.subject.contains(subject))
        .collect();
    assert_eq!(found.len(), 1, "one mail about {subject:?} in {mails:#?}");
    found[0]
}

/// Issue 22: `POST /admin/v1/invitations` makes a person without a password and mails them a
/// link (text and HTML parts, built from the issuer); nobody can sign in as them before they
/// follow it; following it sets the password (the common-password list applies), verifies
/// the address and signs them in, with a passkey one click away; the link works once.
#[tokio::test]
async fn an_invitation_sets_the_first_password_verifies_the_address_and_signs_in() {
    let sink = SmtpSink::start().await;
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, relay(&sink)).await;
    let token = admin_token(&server).await;
    let r = admin(
        &server,
        &token,
        Method::POST,
        "/invitations",
        Some(json!({ "username": "carol", "email": "carol@example.com", "display_name": "Carol Jones" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["user"]["has_password"], false, "{body}");
    assert_eq!(body["user"]["email_verified"], false, "{body}");
    assert_eq!(body["mail"]["to"], "carol@example.com");
    let sub = body["user"]["sub"].as_str().unwrap().to_owned();

    let mails = sink.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["carol@example.com".to_owned()]);
    assert!(mail.subject.contains("invited"), "{mail:?}");
    assert!(
        mail.text.contains("Your username is carol"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("72 hours"), "{}", mail.text);
    let link = mail.link_to("/invitation?token=");
    assert!(link.starts_with(&format!("{}/invitation?token=", server.issuer)));
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "{}",
        mail.html
    );
    assert!(!mail.message_id.is_empty());

    // Before accepting, no password signs carol in (not even an empty one).
    assert_eq!(account_sign_in(&server, "carol", "").await, StatusCode::OK);
    let browser = Browser::new();
    let page = browser.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Welcome, Carol Jones"), "{page}");
    assert!(page.contains(r#"name="password_confirm""#), "{page}");

    let r = submit(
        &server,
        &browser,
        &page,
        "/invitation",
        &[
            ("password", PASSWORD),
            ("password_confirm", "something else"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("differ"));
    let r = submit(
        &server,
        &browser,
        &page,
        "/invitation",
        &[
            ("password", "password123"),
            ("password_confirm", "password123"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let refused = r.text().await.unwrap();
    assert!(refused.contains("most common"), "{refused}");
    // A refused password leaves the link usable.
    let page = browser.get(&link).await.text().await.unwrap();
    let r = submit(
        &server,
        &browser,
        &page,
        "/invitation",
        &[("password", PASSWORD), ("password_confirm", PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account?done=welcome");

    let account = browser
        .get(&server.url("/account?done=welcome"))
        .await
        .text()
        .await
        .unwrap();
    assert!(signed_in_at_account(&account), "{account}");
    assert!(account.contains("Welcome!"), "{account}");
    assert!(
        account.contains(r#"id="email-status">confirmed"#),
        "{account}"
    );
    assert!(
        account.contains(r#"id="add-passkey""#),
        "a passkey one step away"
    );

    let r = Browser::new().get(&link).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("used already"));
    let user = admin(&server, &token, Method::GET, &format!("/users/{sub}"), None).await;
    let user: Value = user.json().await.unwrap();
    assert_eq!(user["email_verified"], true, "{user}");
    assert_eq!(user["has_password"], true, "{user}");
    assert_eq!(
        account_sign_in(&server, "carol", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
}

/// Issue 22: "Forgot your password?" answers the same page whether the name is an account, an
/// unknown username or an unknown address, and mails only the account; the link is built from
/// the issuer whatever `Host` the request named; the new password ends every session and
/// revokes every token of the person (refresh refused, access token inactive), works once, and
/// a notice follows.
#[tokio::test]
async fn forgot_password_answers_alike_and_a_reset_ends_every_session_and_token() {
    let sink = SmtpSink::start().await;
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, relay(&sink)).await;
    server.user("alice", PASSWORD).await;
    let client = server.client(ClientSpec::web("wiki")).await;
    let tokens = offline_tokens(&server, &client, "alice").await;
    let signed_in = Browser::new();
    assert_eq!(
        sign_in_with(&server, &signed_in, "alice", PASSWORD).await,
        StatusCode::SEE_OTHER
    );

    let known = forgot(&server, "alice", Some("evil.example")).await;
    let unknown = forgot(&server, "nobody", None).await;
    let unknown_address = forgot(&server, "nobody@example.com", None).await;
    assert_eq!(known.0, StatusCode::OK);
    assert!(known.1.contains("Check your mail"), "{}", known.1);
    assert_eq!(known, unknown, "the same answer for an unknown username");
    assert_eq!(
        known, unknown_address,
        "the same answer for an unknown address"
    );
    audited(&server, "password.reset.request", 3).await;
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails.len(), 1, "only the account is mailed: {mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["alice@example.com".to_owned()]);
    let link = mail.link_to("/reset-password?token=");
    assert!(
        link.starts_with(&server.issuer),
        "built from the issuer: {link}"
    );
    assert!(
        !mail.raw.windows(12).any(|w| w == b"evil.example"),
        "a forged Host is in no part of the mail"
    );
    assert!(mail.text.contains("30 minutes"), "{}", mail.text);

    let browser = Browser::new();
    let page = browser.get(&link).await.text().await.unwrap();
    assert!(page.contains("Choose a new password"), "{page}");
    let r = submit(
        &server,
        &browser,
        &page,
        "/reset-password",
        &[("password", "iloveyou1"), ("password_confirm", "iloveyou1")],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the common-password list applies"
    );
    let r = submit(
        &server,
        &browser,
        &page,
        "/reset-password",
        &[
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Your password is set"));

    // Everything of alice's is over: the refresh token, the access token, the session.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = token_request(
        &server,
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let access = tokens["access_token"].as_str().unwrap();
    let r = client_post(&server, "/introspect", &client, &[("token", access)]).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["active"], false, "{body}");
    let page = signed_in
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!signed_in_at_account(&page), "the old session is over");

    let r = Browser::new().get(&link).await;
    assert_eq!(r.status(), StatusCode::GONE, "the link works once");
    assert_eq!(
        account_sign_in(&server, "alice", PASSWORD).await,
        StatusCode::OK,
        "the old password is refused"
    );
    assert_eq!(
        account_sign_in(&server, "alice", NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let mails = sink.wait_for(2, WAIT).await;
    let notice = with_subject(&mails, "Your password was reset");
    assert_eq!(notice.to, vec!["alice@example.com".to_owned()]);
}

/// Issue 22: a reset link stops working after 30 minutes and a newer one voids it; it opens
/// only its own page (not an invitation's), and whatever username the form names it changes
/// only its own person's password.
#[tokio::test]
async fn reset_links_expire_are_voided_by_newer_ones_and_serve_one_person_and_purpose() {
    let sink = SmtpSink::start().await;
    let clock = ManualClock::new(lanyard_store::SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), relay(&sink)).await;
    server.user("alice", PASSWORD).await;
    server.user("bob", PASSWORD).await;

    forgot(&server, "alice", None).await;
    let first = sink.wait_for(1, WAIT).await[0].link_to("/reset-password?token=");
    forgot(&server, "alice@example.com", None).await;
    let second = sink.wait_for(2, WAIT).await[1].link_to("/reset-password?token=");
    let r = Browser::new().get(&first).await;
    assert_eq!(r.status(), StatusCode::GONE, "a newer link voids the first");

    let token = second.split("token=").nth(1).unwrap();
    let r = Browser::new()
        .get(&server.url(&format!("/invitation?token={token}")))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a reset link is no invitation"
    );

    let browser = Browser::new();
    let page = browser.get(&second).await.text().await.unwrap();
    let r = submit(
        &server,
        &browser,
        &page,
        "/reset-password",
        &[
            ("username", "bob"),
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        account_sign_in(&server, "alice", NEW_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        account_sign_in(&server, "bob", NEW_PASSWORD).await,
        StatusCode::OK,
        "bob's password is his own"
    );

    forgot(&server, "bob", None).await;
    let mails = sink.wait_for(4, WAIT).await;
    let link = mails
        .iter()
        .rev()
        .find(|m| m.to == vec!["bob@example.com".to_owned()])
        .unwrap()
        .link_to("/reset-password?token=");
    let browser = Browser::new();
    let page = browser.get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    clock.advance(Duration::from_secs(31 * 60));
    let r = submit(
        &server,
        &browser,
        &page,
        "/reset-password",
        &[
            ("password", NEW_PASSWORD),
            ("password_confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::GONE,
        "the form of an expired link sets nothing"
    );
    assert_eq!(
        account_sign_in(&server, "bob", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let r = Browser::new().get(&link).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("expired"));
}

/// Issue 22: one address may ask ten times an hour (then 429 with `Retry-After`), and one
/// person is mailed at most three links an hour, the further requests answered alike.
#[tokio::test]
async fn reset_requests_are_limited_per_address_and_per_person_without_telling_which() {
    let sink = SmtpSink::start().await;
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, relay(&sink)).await;
    server.user("alice", PASSWORD).await;
    let first = forgot(&server, "alice", None).await;
    for _ in 0..9 {
        assert_eq!(forgot(&server, "alice", None).await, first);
    }
    audited(&server, "password.reset.request", 10).await;
    let (status, page) = forgot(&server, "alice", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many requests"), "{page}");
    let mails = sink.wait_for(3, WAIT).await;
    assert_eq!(mails.len(), 3, "three links an hour for one person");
    let events = server
        .state
        .db
        .audit()
        .by_action("password.reset.request")
        .await
        .unwrap();
    let limited = events.iter().filter(|e| e.outcome == "too_many").count();
    assert_eq!(limited, 7, "{events:#?}");
}

/// Issue 22: `email_verified` is false until a link mailed to that very address is followed;
/// a new address from the account page waits (the old one stays and is told) until its link
/// is followed through a button (a mail scanner's GET confirms nothing); an operator's change
/// of address is unverified again.
#[tokio::test]
async fn an_address_is_verified_only_by_its_link_and_a_new_one_waits_for_it() {
    let sink = SmtpSink::start().await;
    let server = TestServer::start_with(Db::Postgres, Store::Redis, relay(&sink)).await;
    let alice = server.user("alice", PASSWORD).await;
    let client = server.client(ClientSpec::web("wiki")).await;
    let userinfo = |access: String| {
        let url = server.url("/userinfo");
        async move {
            let r = reqwest::Client::new()
                .get(url)
                .bearer_auth(access)
                .send()
                .await
                .unwrap();
            r.json::<Value>().await.unwrap()
        }
    };
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &client,
        "openid email",
        "alice",
        PASSWORD,
    )
    .await;
    let claims = userinfo(tokens["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], false);

    let browser = Browser::new();
    assert_eq!(
        sign_in_with(&server, &browser, "alice", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    let page = browser
        .get(&server.url("/account"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("not confirmed"), "{page}");
    let r = browser
        .http
        .post(server.url("/account/email"))
        .form(&[
            ("csrf", form_value(&page, "csrf").as_str()),
            ("email", "alice@new.example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = browser
        .get(&server.url("/account?done=email-sent"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"id="pending-email">alice@new.example.com"#),
        "{page}"
    );
    assert!(
        page.contains(r#"id="account-email">alice@example.com"#),
        "{page}"
    );

    let mails = sink.wait_for(2, WAIT).await;
    let confirm = with_subject(&mails, "Confirm your e-mail address");
    assert_eq!(confirm.to, vec!["alice@new.example.com".to_owned()]);
    let told = with_subject(&mails, "is being changed");
    assert_eq!(
        told.to,
        vec!["alice@example.com".to_owned()],
        "the old address is told"
    );
    let link = confirm.link_to("/verify-email?token=");
    let scanner = Browser::new().get(&link).await;
    assert_eq!(scanner.status(), StatusCode::OK);
    let scanned = scanner.text().await.unwrap();
    assert!(scanned.contains("alice@new.example.com"), "{scanned}");
    let claims = userinfo(tokens["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(
        claims["email"], "alice@example.com",
        "a GET changes nothing"
    );

    let reader = Browser::new();
    let page = reader.get(&link).await.text().await.unwrap();
    let r = submit(&server, &reader, &page, "/verify-email", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("alice@new.example.com is now the confirmed address")
    );
    let fresh = code_flow(
        &server,
        &Browser::new(),
        &client,
        "openid email",
        "alice",
        PASSWORD,
    )
    .await;
    let claims = userinfo(fresh["access_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(claims["email"], "alice@new.example.com");
    assert_eq!(claims["email_verified"], true);
    let again = submit(&server, &reader, &page, "/verify-email", &[]).await;
    assert_eq!(again.status(), StatusCode::GONE);

    let token = admin_token(&server).await;
    let path = format!("/users/{}", alice.sub);
    let changed = admin(
        &server,
        &token,
        Method::PATCH,
        &path,
        Some(json!({ "email": "alice@other.example.com" })),
    )
    .await;
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["email_verified"], false, "{changed}");
    let vouched = admin(
        &server,
        &token,
        Method::PATCH,
        &path,
        Some(json!({ "email_verified": true })),
    )
    .await;
    let vouched: Value = vouched.json().await.unwrap();
    assert_eq!(vouched["email_verified"], true, "{vouched}");
}

/// Issue 22: the relay down for a minute loses nothing: mail queued meanwhile waits in the
/// outbox (each attempt recorded), survives its node stopping, and once the relay is back the
/// other node delivers every mail exactly once.
#[tokio::test]
async fn mail_waits_out_a_relay_that_is_down_and_a_node_that_stops_and_arrives_once() {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let clock = ManualClock::new(lanyard_store::SystemClock.now());
    let first = TestServer::start_with_clock_and(clock.clone(), relay(&sink)).await;
    let token = admin_token(&first).await;
    for name in ["dana", "erin", "finn"] {
        let r = admin(
            &first,
            &token,
            Method::POST,
            "/invitations",
            Some(json!({ "username": name, "email": format!("{name}@example.com") })),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let outbox = first.state.db.outbox();
    for _ in 0..300 {
        let tried = outbox.recent(10).await.unwrap();
        if tried.iter().all(|m| m.attempts >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = outbox.recent(10).await.unwrap();
    assert_eq!(waiting.len(), 3);
    assert!(
        waiting
            .iter()
            .all(|m| m.attempts >= 1 && m.sent_at.is_none() && m.last_error.is_some()),
        "{waiting:#?}"
    );
    assert_eq!(outbox.waiting().await.unwrap(), 3);

    // The node goes; another takes over the same database after the relay's minute down.
    let second = first
        .another_node(Some((std::sync::Arc::new(clock.clone()), None)))
        .await;
    first.stop().await;
    clock.advance(Duration::from_secs(60));
    sink.restart().await;
    second.state.mailer.wake.notify_one();
    let mails = sink.wait_for(3, WAIT).await;
    for _ in 0..5 {
        clock.advance(Duration::from_secs(120));
        second.state.mailer.wake.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mails_now = sink.messages();
    assert_eq!(mails_now.len(), 3, "each mail once: {mails_now:#?}");
    let mut ids: Vec<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    let mut to: Vec<String> = mails.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(
        to,
        ["dana@example.com", "erin@example.com", "finn@example.com"]
    );
    assert_eq!(second.state.db.outbox().waiting().await.unwrap(), 0);
}

/// Issue 22: without a relay (the embedded default) a mail is a `.eml` file in the outbox
/// folder, with both parts and its link.
#[tokio::test]
async fn without_a_relay_mail_is_written_to_the_outbox_folder() {
    let folder = std::env::temp_dir().join(format!(
        "lanyard-e2e-folder-{}",
        lanyard_core::crypto::random_token(6)
    ));
    let dir = folder.clone();
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, move |c| {
        c.mail.folder = Some(dir)
    })
    .await;
    server.user("alice", PASSWORD).await;
    forgot(&server, "alice", None).await;
    let mut files = Vec::new();
    for _ in 0..300 {
        files = std::fs::read_dir(&folder)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if !files.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files.len(), 1, "{files:?}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(raw.contains("To: alice@example.com"), "{raw}");
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
    assert!(
        raw.contains(&format!("{}/reset-password?token=", server.issuer)),
        "{raw}"
    );
    std::fs::remove_dir_all(&folder).unwrap();
}

/// Issue 22: with `scim_invite` on, a person the HR system provisions over SCIM with an
/// address and no password is mailed an invitation at once; one with a password, or with the
/// setting off, is not.
#[tokio::test]
async fn people_provisioned_over_scim_are_invited_when_the_deployment_says_so() {
    let sink = SmtpSink::start().await;
    let with_relay = relay(&sink);
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, move |c| {
        with_relay(c);
        c.mail.scim_invite = true;
    })
    .await;
    let token = crate::scim::scim_token(&server).await;
    let person = |name: &str, password: Option<&str>| {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "emails": [{ "value": format!("{name}@example.com"), "primary": true }],
        });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        body
    };
    let (status, _, _) = crate::scim::scim(
        &server,
        &token,
        Method::POST,
        "/Users",
        Some(person("gina", None)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, _) = crate::scim::scim(
        &server,
        &token,
        Method::POST,
        "/Users",
        Some(person("hank", Some(PASSWORD))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mails = sink.wait_for(1, WAIT).await;
    assert_eq!(mails[0].to, vec!["gina@example.com".to_owned()]);
    let link = mails[0].link_to("/invitation?token=");
    let page = Browser::new().get(&link).await;
    assert_eq!(page.status(), StatusCode::OK);
    audited(&server, "user.create", 2).await;
    server.state.mailer.wake.notify_one();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "hank has a password: no invitation"
    );

    let off_sink = SmtpSink::start().await;
    let off = TestServer::start_with(Db::Sqlite, Store::Memory, relay(&off_sink)).await;
    let token = crate::scim::scim_token(&off).await;
    let (status, _, _) = crate::scim::scim(
        &off,
        &token,
        Method::POST,
        "/Users",
        Some(person("ivy", None)),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    audited(&off, "user.create", 1).await;
    assert_eq!(
        off.state.db.outbox().waiting().await.unwrap()
            + off.state.db.outbox().recent(5).await.unwrap().len() as u64,
        0,
        "nothing queued with the setting off"
    );
}

/// Issue 22: where STARTTLS is required (any relay but this machine's), a relay that does not
/// offer it gets nothing in clear: the attempt fails, the mail waits in the outbox.
#[tokio::test]
async fn a_relay_without_starttls_gets_nothing_when_tls_is_required() {
    let sink = SmtpSink::start().await;
    let port = sink.port();
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, move |c| {
        c.mail.smtp = Some(SmtpRelay {
            host: "localhost".to_owned(),
            port,
            tls: SmtpTls::StartTls,
            username: None,
            password: None,
            password_file: None,
        });
    })
    .await;
    server.user("alice", PASSWORD).await;
    let token = admin_token(&server).await;
    let alice = server
        .state
        .db
        .users()
        .by_username("alice")
        .await
        .unwrap()
        .unwrap();
    let r = admin(
        &server,
        &token,
        Method::POST,
        &format!("/users/{}/password-reset", alice.sub),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let outbox = server.state.db.outbox();
    let mut tried = Vec::new();
    for _ in 0..300 {
        tried = outbox.recent(5).await.unwrap();
        if tried.iter().any(|m| m.attempts >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(tried.len(), 1);
    assert!(
        tried[0].sent_at.is_none() && tried[0].attempts >= 1,
        "{tried:#?}"
    );
    assert!(tried[0].last_error.is_some(), "{tried:#?}");
    let listed = admin(&server, &token, Method::GET, "/mail", None).await;
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["waiting"], 1, "{listed}");
    assert_eq!(listed["mails"][0]["status"], "waiting", "{listed}");
    assert!(sink.messages().is_empty(), "nothing was sent in clear");
}
