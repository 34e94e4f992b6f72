//! The authorization endpoint's refusals (RFC 6749 §4.1.2.1, RFC 9700 §2.1, SECURITY.md 2.1):
//! a page and never a redirect until the client and redirect URI are verified; then errors
//! back to the registered URI with `state` and `iss`.

use reqwest::StatusCode;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, authorize_url, form_value,
    redirect_params,
};

async fn server_with_wiki() -> (TestServer, TestClient) {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", "correct horse battery staple").await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    (server, wiki)
}

async fn assert_page_no_redirect(response: reqwest::Response, words: &str) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers().get("location").is_none(),
        "must never redirect"
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let body = response.text().await.unwrap();
    assert!(body.contains(words), "{body}");
    assert!(body.contains("<h1>"), "an HTML page for a person");
}

#[tokio::test]
async fn untrusted_redirect_uris_get_a_page_never_a_redirect() {
    let (server, wiki) = server_with_wiki().await;
    let browser = Browser::new();
    let registered = wiki.redirect_uri.clone();
    let variants = [
        registered.to_uppercase(),
        registered.replace("/callback", "/CALLBACK"),
        format!("{registered}?x=1"),
        format!("{registered}/extra"),
        format!("{registered}#frag"),
        format!("{registered}/"),
        format!("{registered}/..;/"),
        registered.replace("https://", "https://good@"),
        registered.replace("wiki.example.com", "wiki.example.com.evil.example"),
        "http://localhost.evil/callback".to_owned(),
        "javascript:alert(1)".to_owned(),
    ];
    for uri in variants {
        let response = browser
            .get(&authorize_url(&server, &wiki, &[("redirect_uri", &uri)]))
            .await;
        assert_page_no_redirect(response, "not registered").await;
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_or_missing_client_gets_a_page() {
    let (server, wiki) = server_with_wiki().await;
    let browser = Browser::new();
    let unknown = TestClient {
        id: "nobody".into(),
        ..wiki.clone()
    };
    assert_page_no_redirect(
        browser.get(&authorize_url(&server, &unknown, &[])).await,
        "not registered",
    )
    .await;
    assert_page_no_redirect(
        browser
            .get(&authorize_url(&server, &wiki, &[("client_id", "")]))
            .await,
        "client_id is missing",
    )
    .await;
    assert_page_no_redirect(
        browser
            .get(&authorize_url(&server, &wiki, &[("redirect_uri", "")]))
            .await,
        "redirect_uri is missing",
    )
    .await;
    let twice = format!("{}&client_id=wiki", authorize_url(&server, &wiki, &[]));
    assert_page_no_redirect(browser.get(&twice).await, "twice").await;
    let bad_utf8 = format!("{}&x=%ff", authorize_url(&server, &wiki, &[]));
    assert_page_no_redirect(browser.get(&bad_utf8).await, "could not be read").await;
    server.stop().await;
}

#[tokio::test]
async fn errors_after_the_client_is_known_go_back_to_it() {
    let (server, wiki) = server_with_wiki().await;
    let public = server
        .client(ClientSpec {
            public: true,
            ..ClientSpec::web("spa")
        })
        .await;
    let machine = server
        .client(ClientSpec {
            grants: &["authorization_code"],
            scopes: &["openid"],
            ..ClientSpec::web("narrow")
        })
        .await;
    let browser = Browser::new();
    let (challenge, _) = crate::support::pkce();
    type Case<'a> = (&'a TestClient, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (&wiki, vec![("scope", "profile")], "invalid_scope"),
        (&wiki, vec![("scope", "openid admin")], "invalid_scope"),
        (&wiki, vec![("response_type", "")], "invalid_request"),
        (
            &wiki,
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            &wiki,
            vec![("response_type", "id_token")],
            "unsupported_response_type",
        ),
        (
            &wiki,
            vec![
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            &wiki,
            vec![("code_challenge", &challenge)],
            "invalid_request",
        ),
        (
            &wiki,
            vec![("code_challenge_method", "S256")],
            "invalid_request",
        ),
        (&wiki, vec![("prompt", "none login")], "invalid_request"),
        (&wiki, vec![("max_age", "soon")], "invalid_request"),
        // Not a JWT, and the client has no keys for request objects anyway.
        (&wiki, vec![("request", "eyJ...")], "invalid_request_object"),
        (
            &wiki,
            vec![("request_uri", "https://x/r")],
            "request_uri_not_supported",
        ),
        (
            &wiki,
            vec![("response_mode", "fragment")],
            "invalid_request",
        ),
        (&public, vec![], "invalid_request"),
        (
            &machine,
            vec![("scope", "openid offline_access")],
            "invalid_scope",
        ),
    ];
    for (client, extra, error) in cases {
        let response = browser.get(&authorize_url(&server, client, &extra)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{extra:?}");
        let (to, params) = redirect_params(&response);
        assert_eq!(to, client.redirect_uri, "to the registered URI");
        assert_eq!(params["error"], error, "{extra:?}: {params:?}");
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], server.issuer.as_str());
        assert!(!params["error_description"].is_empty());
    }
    let twice = format!("{}&state=again", authorize_url(&server, &wiki, &[]));
    let response = browser.get(&twice).await;
    assert_eq!(
        redirect_params(&response).1["error"],
        "invalid_request",
        "a parameter sent twice"
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_parameters_and_any_order_are_fine() {
    let (server, wiki) = server_with_wiki().await;
    let browser = Browser::new();
    for extra in [
        vec![
            ("extra", "foobar"),
            ("display", "popup"),
            ("ui_locales", "en"),
            ("acr_values", "1"),
            ("login_hint", "alice"),
        ],
        vec![("scope", "email openid")],
    ] {
        let response = browser.get(&authorize_url(&server, &wiki, &extra)).await;
        assert_eq!(response.status(), StatusCode::OK, "{extra:?}");
        let page = response.text().await.unwrap();
        if extra.iter().any(|(k, _)| *k == "login_hint") {
            assert!(
                page.contains(r#"value="alice""#),
                "login_hint fills in the username"
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn authorization_request_by_post_and_form_post_response() {
    let (server, wiki) = server_with_wiki().await;
    let browser = Browser::new();
    let form = [
        ("client_id", wiki.id.as_str()),
        ("redirect_uri", wiki.redirect_uri.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s<\"&>"),
        ("response_mode", "form_post"),
    ];
    let page = browser
        .http
        .post(server.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "POST works like GET");
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(
            &server,
            &page,
            "alice",
            "correct horse battery staple",
            false,
        )
        .await;
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "form_post answers with a page"
    );
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = answer.text().await.unwrap();
    assert!(body.contains(&format!(r#"action="{}""#, wiki.redirect_uri)));
    assert_eq!(
        form_value(&body, "state"),
        "s<\"&>",
        "state survives HTML escaping"
    );
    assert_eq!(form_value(&body, "iss"), server.issuer);
    assert!(!form_value(&body, "code").is_empty());
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        body.contains(&format!(r#"<script nonce="{nonce}">"#)),
        "only the page's own script may run"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_failed_sign_in_keeps_the_request_and_the_typed_username() {
    let (server, wiki) = server_with_wiki().await;
    let browser = Browser::new();
    let page = browser
        .get(&authorize_url(&server, &wiki, &[]))
        .await
        .text()
        .await
        .unwrap();
    let again = browser
        .sign_in(&server, &page, "alice", "nope", true)
        .await
        .text()
        .await
        .unwrap();
    assert!(again.contains(r#"value="alice""#));
    assert!(again.contains("checked"), "remember me stays ticked");
    assert!(
        again.contains(r#"role="alert""#),
        "the message is announced"
    );
    let empty = browser
        .sign_in(&server, &page, "", "", false)
        .await
        .text()
        .await
        .unwrap();
    assert!(empty.contains("Enter your username and password."));
    let answer = browser
        .sign_in(
            &server,
            &again,
            "alice",
            "correct horse battery staple",
            false,
        )
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        redirect_params(&answer).1["state"],
        "st-123",
        "back to the request first asked for"
    );
    server.stop().await;
}

#[tokio::test]
async fn loopback_redirects_vary_only_in_port() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", "correct horse battery staple").await;
    let (client, _) = lanyard_core::clients::add_client(
        &server.state.db,
        &server.state.server_keys,
        lanyard_core::clients::NewClient {
            settings: lanyard_core::model::ClientSettings {
                public: true,
                redirect_uris: vec!["http://127.0.0.1/cb".into()],
                ..lanyard_core::model::ClientSettings::new("cli-app")
            },
            secret: None,
        },
        lanyard_store::Timestamp::from_secs(1),
    )
    .await
    .unwrap();
    let app = TestClient {
        id: client.settings.client_id,
        secret: None,
        redirect_uri: "http://127.0.0.1:51234/cb".into(),
    };
    let (challenge, _) = crate::support::pkce();
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let browser = Browser::new();
    let ok = browser.get(&authorize_url(&server, &app, &pkce)).await;
    assert_eq!(ok.status(), StatusCode::OK, "RFC 8252 §7.3: any port");
    for uri in [
        "http://127.0.0.1:5\\x/cb",
        "http://u@127.0.0.1:5/cb",
        "http://127.0.0.1:5/cb/../cb",
        "http://127.0.0.2:5/cb",
    ] {
        let mut extra = pkce.to_vec();
        extra.push(("redirect_uri", uri));
        assert_page_no_redirect(
            browser.get(&authorize_url(&server, &app, &extra)).await,
            "not registered",
        )
        .await;
    }
    server.stop().await;
}

#[tokio::test]
async fn a_repeated_redirect_uri_is_a_page_whatever_else_repeats() {
    let (server, wiki) = server_with_wiki().await;
    let url = format!(
        "{}&state=again&redirect_uri={}",
        authorize_url(&server, &wiki, &[]),
        url::form_urlencoded::byte_serialize(b"https://evil.example/cb").collect::<String>()
    );
    assert_page_no_redirect(Browser::new().get(&url).await, "twice").await;
    server.stop().await;
}

#[tokio::test]
async fn errors_in_form_post_mode_carry_iss_and_state() {
    let (server, wiki) = server_with_wiki().await;
    let answer = Browser::new()
        .get(&authorize_url(
            &server,
            &wiki,
            &[("response_mode", "form_post"), ("scope", "email")],
        ))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body = answer.text().await.unwrap();
    assert_eq!(form_value(&body, "error"), "invalid_scope");
    assert_eq!(form_value(&body, "state"), "st-123");
    assert_eq!(form_value(&body, "iss"), server.issuer);
    server.stop().await;
}

#[tokio::test]
async fn cors_for_apps_but_not_for_the_sign_in_pages() {
    let (server, wiki) = server_with_wiki().await;
    let http = reqwest::Client::new();
    let preflight = http
        .request(reqwest::Method::OPTIONS, server.url("/token"))
        .header("origin", "https://spa.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let jwks = http
        .get(server.url("/jwks"))
        .header("origin", "https://spa.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.headers()["access-control-allow-origin"], "*");
    let page = http
        .get(authorize_url(&server, &wiki, &[]))
        .header("origin", "https://spa.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        page.headers().get("access-control-allow-origin").is_none(),
        "RFC 9700 §2.6"
    );
    server.stop().await;
}
