//! The account page (`/account`): who you are, where you are signed in (sign out one session
//! or everywhere), the apps you allowed (withdraw), and changing your password (optionally
//! ending your other sessions); signing in there without any app.

use reqwest::StatusCode;
use serde_json::Value;

use crate::revoke::field;
use crate::support::{Browser, ClientSpec, Db, Store, TestServer, code_flow, form_value, refresh};

const PASSWORD: &str = "correct horse battery staple";

/// Signs alice in at the account page in a new browser; returns the browser.
pub(crate) async fn at_account(server: &TestServer, password: &str, remember: bool) -> Browser {
    let browser = Browser::new();
    let page = browser.get(&server.url("/account")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains(r#"action="/account/signin""#), "{page}");
    let mut form = vec![
        ("csrf", form_value(&page, "csrf")),
        ("username", "alice".to_owned()),
        ("password", password.to_owned()),
    ];
    if remember {
        form.push(("remember_me", "on".to_owned()));
    }
    let r = browser
        .http
        .post(server.url("/account/signin"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
    assert_eq!(r.headers()["location"], "/account");
    browser
}

async fn account_page(server: &TestServer, browser: &Browser) -> String {
    let r = browser.get(&server.url("/account")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

/// Posts an account form with the page's CSRF token and `fields`.
pub(crate) async fn post(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = account_page(server, browser).await;
    let mut form = vec![("csrf".to_owned(), form_value(&page, "csrf"))];
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

/// A form sent after the session ended changes nothing and says so: a 401, with a challenge
/// naming the session cookie, as every 401 must carry one (RFC 9110 §11.6.1).
#[tokio::test]
async fn a_form_sent_after_the_session_ended_is_a_401_with_a_challenge() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let browser = at_account(&server, PASSWORD, false).await;
    let csrf = form_value(&account_page(&server, &browser).await, "csrf");
    server.store().end_user_sessions(&alice.sub).await.unwrap();
    let r = browser
        .http
        .post(server.url("/account/sessions/end"))
        .form(&[("csrf", csrf.as_str()), ("sid", "anything")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Cookie realm="Lanyard", cookie-name="lanyard_session""#
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("Your session has expired") && page.contains("Nothing was changed"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_account_page_lists_sessions_and_apps_and_signs_out_where_asked() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let here = at_account(&server, PASSWORD, false).await;
    let tokens = code_flow(
        &server,
        &Browser::new(),
        &crm,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    let elsewhere = at_account(&server, PASSWORD, true).await;

    let r = here.get(&server.url("/account")).await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let page = r.text().await.unwrap();
    assert!(
        page.contains("alice Example") && page.contains("alice@example.com"),
        "{page}"
    );
    assert_eq!(page.matches("this browser").count(), 1, "{page}");
    assert!(
        page.contains("remembered"),
        "the other session was remembered"
    );
    assert!(page.contains("The crm app") && page.contains("Keep access while you are away"));
    assert!(
        page.contains(r#"src="/session/warning.js""#),
        "the timeout warning runs"
    );

    // Sign out the other browser's session from here.
    let sessions = server.store().user_sessions(&alice.sub).await.unwrap();
    assert_eq!(
        sessions.len(),
        3,
        "here, elsewhere, and where crm was allowed"
    );
    let other = sessions
        .iter()
        .find(|s| s.remember_me)
        .unwrap()
        .sid
        .to_string();
    let r = post(&server, &here, "/account/sessions/end", &[("sid", &other)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(server.store().session(&other).await.unwrap(), None);
    let r = elsewhere.get(&server.url("/account")).await;
    assert!(r.text().await.unwrap().contains("Your session has expired"));

    // Withdraw the app: gone from the page, its refresh token dead.
    let r = post(
        &server,
        &here,
        "/account/apps/withdraw",
        &[("client_id", "crm")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let done = r.headers()["location"].to_str().unwrap().to_owned();
    let page = here.get(&server.url(&done)).await.text().await.unwrap();
    assert!(
        page.contains("withdrawn") && !page.contains("The crm app"),
        "{page}"
    );
    let r = refresh(&server, &crm, field(&tokens, "refresh_token"), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A form from another site carries no CSRF cookie.
    let r = Browser::new()
        .http
        .post(server.url("/account/sessions/end"))
        .form(&[("csrf", "x"), ("all", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Everywhere.
    let r = post(&server, &here, "/account/sessions/end", &[("all", "1")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert!(
        server
            .store()
            .user_sessions(&alice.sub)
            .await
            .unwrap()
            .is_empty()
    );
    let r = here.get(&server.url("/account")).await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(r#"action="/account/signin""#)
    );
    server.stop().await;
}

#[tokio::test]
async fn changing_the_password_can_end_the_other_sessions() {
    let server = TestServer::start(Db::Postgres, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let here = at_account(&server, PASSWORD, false).await;
    let elsewhere = at_account(&server, PASSWORD, false).await;
    let new = "a much longer passphrase now";
    for (fields, says) in [
        (
            vec![("current", "wrong"), ("new", new), ("confirm", new)],
            "not right",
        ),
        (
            vec![("current", PASSWORD), ("new", new), ("confirm", "typo")],
            "differ",
        ),
        (
            vec![
                ("current", PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
            "8",
        ),
    ] {
        let r = post(&server, &here, "/account/password", &fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{says}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains(says) && page.contains("Nothing was changed"),
            "{page}"
        );
    }
    let r = post(
        &server,
        &here,
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", new),
            ("confirm", new),
            ("end_others", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let done = r.headers()["location"].to_str().unwrap().to_owned();
    let page = here.get(&server.url(&done)).await.text().await.unwrap();
    assert!(page.contains("Your password was changed"), "{page}");
    let r = elsewhere.get(&server.url("/account")).await;
    assert!(
        r.text().await.unwrap().contains("Your session has expired"),
        "the other session ended"
    );
    assert_eq!(
        server
            .store()
            .user_sessions(&alice.sub)
            .await
            .unwrap()
            .len(),
        1
    );
    at_account(&server, new, false).await;
    server.stop().await;
}

#[tokio::test]
async fn the_account_sign_in_refuses_like_any_other() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
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
            ("csrf", form_value(&page, "csrf").as_str()),
            ("username", "alice"),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("Incorrect username or password."), "{page}");
    assert!(
        page.contains(r#"value="alice""#),
        "the typed username is kept"
    );
    let ops = crate::admin::admin_token(&server).await;
    let events: Vec<Value> = crate::admin::audit_events(&server, &ops, "signin", 1).await;
    assert_eq!(events[0]["target"], "account");
    assert_eq!(events[0]["outcome"], "failure");
    server.stop().await;
}
