//! Attacks of `../shared/SECURITY.md` §2–4 that no other module's tests send: each sends the
//! bad input and asserts the exact refusal. (The rest are in the modules `docs/security.md`
//! names beside each item.)

use reqwest::StatusCode;
use serde_json::Value;

use crate::admin::{admin, admin_token};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestServer, assert_oauth_error, authorize_url, form_value,
    token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// Hydra GHSA-3p3g-vpw6-4w66, Abblix/Oidc.Server#163: a client assertion is no way in for a
/// client that is not registered for `private_key_jwt` (a client with a secret), however
/// it is signed, replayed or not; `client_secret_jwt` is not offered at all. (Assertions of
/// `private_key_jwt` clients, replays included: `private_key_jwt.rs`.)
#[tokio::test]
async fn client_assertions_authenticate_nobody() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let assertion = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ3aWtpIiwic3ViIjoid2lraSJ9.c2ln";
    for _ in 0..2 {
        let r = reqwest::Client::new()
            .post(server.url("/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", wiki.id.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["www-authenticate"], r#"Basic realm="lanyard""#);
        assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    let metadata: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        !methods.iter().any(|m| m == "client_secret_jwt"),
        "{methods:?}"
    );
    server.stop().await;
}

/// cloudbeaver#4249, saiku#1199, goravel#922 (ASVS 7.2.4): a session cookie planted before
/// sign-in is never promoted. The sign-in sets a new session id, and the planted value
/// signs nobody in.
#[tokio::test]
async fn a_planted_session_cookie_is_never_promoted() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let planted = "planted-by-the-attacker-0123456789abcdef";
    let victim = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = victim
        .get(authorize_url(&server, &wiki, &[]))
        .header("cookie", format!("lanyard_session={planted}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the planted cookie is no session"
    );
    let csrf_cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = page.text().await.unwrap();
    let answer = victim
        .post(server.url("/signin"))
        .header(
            "cookie",
            format!("lanyard_session={planted}; {csrf_cookie}"),
        )
        .form(&[
            ("csrf", form_value(&page, "csrf")),
            (
                "authorization_request",
                form_value(&page, "authorization_request"),
            ),
            ("username", "alice".to_owned()),
            ("password", PASSWORD.to_owned()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let issued = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("lanyard_session="))
        .expect("a session cookie is set");
    assert!(!issued.contains(planted), "a new session id: {issued}");
    // The attacker, holding the planted value, is not signed in as alice.
    let attacker = victim
        .get(authorize_url(&server, &wiki, &[("prompt", "none")]))
        .header("cookie", format!("lanyard_session={planted}"))
        .send()
        .await
        .unwrap();
    let location = attacker.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("error=login_required"), "{location}");
    server.stop().await;
}

/// Keycloak #51887 (empty password), CVE-2026-4633: an empty or a 1 KB password reads the
/// same for an account that exists and one that does not, and no session comes of it.
#[tokio::test]
async fn empty_and_huge_passwords_read_the_same_for_every_username() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let huge = "p".repeat(1024);
    for password in ["", huge.as_str()] {
        let mut answers = Vec::new();
        for user in ["alice", "nobody"] {
            let browser = Browser::new();
            let page = browser
                .get(&authorize_url(&server, &wiki, &[]))
                .await
                .text()
                .await
                .unwrap();
            let answer = browser.sign_in(&server, &page, user, password, false).await;
            let status = answer.status();
            assert!(
                answer
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .all(|c| !c.to_str().unwrap().starts_with("lanyard_session")),
                "no session for {user}"
            );
            let body = answer.text().await.unwrap();
            let message = body
                .split("role=\"alert\"")
                .nth(1)
                .and_then(|rest| rest.split("</").next())
                .unwrap_or_default()
                .to_owned();
            answers.push((status, message));
        }
        assert_eq!(
            answers[0],
            answers[1],
            "password of {} characters",
            password.len()
        );
        assert_eq!(answers[0].0, StatusCode::OK);
        assert!(!answers[0].1.is_empty(), "a message is shown");
    }
    server.stop().await;
}

/// Oversized and malformed authorization requests: a clear refusal, never a 500 or a hang.
#[tokio::test]
async fn oversized_and_malformed_authorization_requests_are_refused_cleanly() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();
    // A 60 KB state (near the longest URI a client library sends): refused, and not echoed.
    let long_state = "s".repeat(60_000);
    let r = browser
        .get(&authorize_url(&server, &wiki, &[("state", &long_state)]))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = crate::support::redirect_params(&r);
    assert_eq!(to, wiki.redirect_uri);
    assert_eq!(params["error"], "invalid_request");
    assert!(!params.contains_key("state"), "a huge state is not echoed");
    for query in [
        "client_id=%ff%fe",
        "client_id=wiki&client_id=wiki",
        "%%%",
        "client_id=wiki&redirect_uri=%00",
    ] {
        let r = browser
            .get(&format!("{}?{query}", server.url("/authorize")))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(
            r.headers().get("location").is_none(),
            "{query}: no redirect"
        );
        let page = r.text().await.unwrap();
        assert!(page.contains("<h1>"), "{query}: a page: {page}");
    }
    server.stop().await;
}

/// Issue 6 §7, ASVS 3.4.4/3.4.6, RFC 9700 §4.16: every page Lanyard shows a person carries
/// the headers that stop framing, sniffing, leaking the URL and caching — the sign-in page,
/// its error, the error pages, the consent, logout, signed-out and account pages.
#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let browser = Browser::new();
    let mut pages: Vec<(&str, reqwest::Response)> = Vec::new();
    let signin = browser.get(&authorize_url(&server, &wiki, &[])).await;
    let page = browser
        .get(&authorize_url(&server, &wiki, &[]))
        .await
        .text()
        .await
        .unwrap();
    pages.push(("sign-in", signin));
    pages.push((
        "sign-in error",
        browser
            .sign_in(&server, &page, "alice", "wrong", false)
            .await,
    ));
    pages.push((
        "unknown app",
        browser
            .get(&server.url("/authorize?client_id=nobody"))
            .await,
    ));
    let page = browser
        .get(&authorize_url(&server, &crm, &[]))
        .await
        .text()
        .await
        .unwrap();
    pages.push((
        "consent",
        browser
            .sign_in(&server, &page, "alice", PASSWORD, false)
            .await,
    ));
    pages.push(("account", browser.get(&server.url("/account")).await));
    pages.push(("logout question", browser.get(&server.url("/logout")).await));
    pages.push((
        "signed-out account",
        Browser::new().get(&server.url("/account")).await,
    ));
    for (name, r) in pages {
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{name}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{name}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{name}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{name}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{name}");
        assert_eq!(h["cache-control"], "no-store", "{name}");
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "{name}: no CORS"
        );
    }
    server.stop().await;
}

/// ASVS 6.2.4/6.2.12: a password among the most common ones (breach lists) is refused
/// wherever a password is set — here the admin API, creating a user and changing a password —
/// saying why, with the field named; a passphrase of common words is fine.
#[tokio::test]
async fn common_passwords_are_refused_when_set() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = admin_token(&server).await;
    for password in ["password123", "Qwertyuiop", "iloveyou1"] {
        let r = admin(
            &server,
            &token,
            reqwest::Method::POST,
            "/users",
            Some(serde_json::json!({ "username": "carol", "password": password })),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{password}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["field"], "password", "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("most common"),
            "{body}"
        );
    }
    let r = admin(
        &server,
        &token,
        reqwest::Method::POST,
        "/users",
        Some(serde_json::json!({ "username": "carol", "password": PASSWORD })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let sub = r.json::<Value>().await.unwrap()["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = admin(
        &server,
        &token,
        reqwest::Method::PUT,
        &format!("/users/{sub}/password"),
        Some(serde_json::json!({ "password": "Sunshine1" })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

/// ASVS 6.3.2: no default account. A Lanyard that has just started (without `--demo`) has no
/// user at all: nothing to guess a password for until an admin adds someone.
#[tokio::test]
async fn a_fresh_lanyard_has_no_default_account() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = admin_token(&server).await;
    let r = admin(&server, &token, reqwest::Method::GET, "/users", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["users"], serde_json::json!([]), "{page}");
    // And the usual default credentials sign nobody in.
    let wiki = server.client(ClientSpec::web("wiki")).await;
    for (user, password) in [("admin", "admin"), ("admin", "password"), ("demo", "demo")] {
        let browser = Browser::new();
        let page = browser
            .get(&authorize_url(&server, &wiki, &[]))
            .await
            .text()
            .await
            .unwrap();
        let answer = browser.sign_in(&server, &page, user, password, false).await;
        assert_eq!(answer.status(), StatusCode::OK, "{user}: the form again");
    }
    server.stop().await;
}

/// Issue 19 §2: wrong secrets naming a client, sent from many addresses, never shut it out:
/// its right secret works at the token, introspection and revocation endpoints and the
/// revocation feed, from the guessers' addresses and from its own.
#[tokio::test]
async fn wrong_secrets_from_anywhere_never_lock_a_client_out() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.lockout.client_threshold = 3;
    })
    .await;
    let wiki = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            ..ClientSpec::web("wiki")
        })
        .await;
    let from = |address: &str| {
        reqwest::Client::builder()
            .local_address(address.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let call = |http: reqwest::Client, path: &'static str, secret: String| {
        let url = server.url(path);
        let id = wiki.id.clone();
        async move {
            let request = if path == "/revocations/snapshot" {
                http.get(url)
            } else {
                let form: &[(&str, &str)] = match path {
                    "/token" => &[("grant_type", "client_credentials")],
                    _ => &[("token", "not-a-token")],
                };
                http.post(url).form(form)
            };
            request
                .basic_auth(id, Some(secret))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let paths = ["/token", "/introspect", "/revoke", "/revocations/snapshot"];
    for guesser in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        for path in paths {
            for _ in 0..5 {
                let status = call(from(guesser), path, "a guess".to_owned()).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} from {guesser}");
            }
        }
    }
    let secret = wiki.secret.clone().unwrap();
    for address in ["127.0.0.2", "127.0.0.1"] {
        for path in paths {
            let status = call(from(address), path, secret.clone()).await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{path} from {address}: the right secret"
            );
        }
    }
    server.stop().await;
}

/// RFC 8707 `resource` (issue 19 §4): a client may ask only for the audiences registered for
/// it; before, any client could get a token for any other registered client (an API it had
/// no business calling) by naming it. The consent page names the APIs an app may call.
#[tokio::test]
async fn a_client_gets_tokens_only_for_the_resources_registered_for_it() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let job = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &[],
            ..ClientSpec::web("nightly-job")
        })
        .await;
    server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &[],
            ..ClientSpec::web("payroll-api")
        })
        .await;
    let ask = |resource: &'static str| {
        let job = &job;
        let server = &server;
        async move {
            token_request(
                server,
                job,
                &[("grant_type", "client_credentials"), ("resource", resource)],
            )
            .await
        }
    };
    let refused = ask("payroll-api").await;
    assert_oauth_error(refused, StatusCode::BAD_REQUEST, "invalid_target").await;
    assert_eq!(ask("nightly-job").await.status(), StatusCode::OK, "itself");

    // Registered as one of its resources, it may.
    let ops = admin_token(&server).await;
    let set = |id: &'static str, body: Value| {
        let ops = &ops;
        let server = &server;
        async move {
            let path = format!("/clients/{id}");
            admin(server, ops, reqwest::Method::PATCH, &path, Some(body)).await
        }
    };
    let r = set(
        "nightly-job",
        serde_json::json!({ "resources": ["payroll-api"] }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = ask("payroll-api").await.json().await.unwrap();
    let (_, claims) = crate::support::decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], serde_json::json!(["payroll-api"]));
    let r = set(
        "nightly-job",
        serde_json::json!({ "resources": ["not a client id"] }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // The consent page of an app with resources names them.
    let crm = server.client(ClientSpec::third_party("crm")).await;
    let r = set("crm", serde_json::json!({ "resources": ["payroll-api"] })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let browser = Browser::new();
    let page = browser.get(&authorize_url(&server, &crm, &[])).await;
    let page = page.text().await.unwrap();
    let consent = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await
        .text()
        .await
        .unwrap();
    assert!(consent.contains("use these on your behalf"), "{consent}");
    assert!(consent.contains("The payroll-api app"), "{consent}");
    server.stop().await;
}
