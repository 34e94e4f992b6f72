//! The token endpoint: code exchange rules (RFC 6749 §4.1.3, RFC 7636, RFC 9700 §4.8.2),
//! code replay (RFC 6749 §4.1.2), client authentication (§2.3, §5.2), client credentials
//! (§4.4), and bad input.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_bearer_challenge,
    assert_oauth_error, authorize_with_sign_in, pkce, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

async fn setup(db: Db, store: Store) -> (TestServer, TestClient) {
    let server = TestServer::start(db, store).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    (server, wiki)
}

/// A code with a PKCE challenge, and its verifier.
async fn code(server: &TestServer, client: &TestClient, scope: &str) -> (String, String) {
    let (challenge, verifier) = pkce();
    let code = authorize_with_sign_in(
        server,
        &Browser::new(),
        client,
        &[
            ("scope", scope),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
        "alice",
        PASSWORD,
    )
    .await;
    (code, verifier)
}

async fn exchange(
    server: &TestServer,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    token_request(
        server,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &client.redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn userinfo(server: &TestServer, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A code outlives nothing: when the sign-in session it was issued in ends before the code is
/// exchanged (the person signed out, or was disabled), the exchange is refused, whether or not
/// the code would have given a refresh token; as at Keycloak ("session not active").
#[tokio::test]
async fn a_code_from_a_session_that_has_ended_is_refused() {
    for store in [Store::Memory, Store::Redis] {
        let server = TestServer::start(Db::Sqlite, store).await;
        let alice = server.user("alice", PASSWORD).await;
        let wiki = server.client(ClientSpec::web("wiki")).await;
        for scope in ["openid", "openid offline_access"] {
            let (code, verifier) = code(&server, &wiki, scope).await;
            server.store().end_user_sessions(&alice.sub).await.unwrap();
            let r = exchange(&server, &wiki, &code, &verifier).await;
            let body = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
            assert!(
                body["error_description"]
                    .as_str()
                    .unwrap()
                    .contains("session has ended"),
                "{scope}: {body}"
            );
        }
        // While the session lives, the same exchange works.
        let (code, verifier) = code(&server, &wiki, "openid").await;
        assert_eq!(
            exchange(&server, &wiki, &code, &verifier).await.status(),
            StatusCode::OK
        );
        server.stop().await;
    }
}

/// A replayed code gets `invalid_grant`, and everything its first redemption produced dies:
/// the first access token at UserInfo, the refresh token at the token endpoint, and the
/// access token a refresh minted from it (issue 19 §3: that one used to stay valid until it
/// expired). On Redis and in memory.
#[tokio::test]
async fn a_replayed_code_revokes_everything_it_produced() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let (server, wiki) = setup(db, store).await;
        let (code, verifier) = code(&server, &wiki, "openid offline_access").await;
        let first = exchange(&server, &wiki, &code, &verifier).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()["cache-control"], "no-store");
        assert_eq!(first.headers()["pragma"], "no-cache");
        let first: Value = first.json().await.unwrap();
        let access = first["access_token"].as_str().unwrap();
        let refresh = first["refresh_token"]
            .as_str()
            .expect("offline_access gives a refresh token");
        assert_eq!(userinfo(&server, access).await.status(), StatusCode::OK);
        // The refresh token used once: a second access token, and a successor.
        let refreshed = token_request(
            &server,
            &wiki,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed: Value = refreshed.json().await.unwrap();
        let minted = refreshed["access_token"].as_str().unwrap();
        let successor = refreshed["refresh_token"].as_str().unwrap();
        assert_eq!(userinfo(&server, minted).await.status(), StatusCode::OK);

        assert_oauth_error(
            exchange(&server, &wiki, &code, &verifier).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;

        for token in [access, minted] {
            let after = userinfo(&server, token).await;
            let challenge =
                assert_bearer_challenge(&after, StatusCode::UNAUTHORIZED, Some("invalid_token"));
            assert!(challenge.contains("revoked"), "{challenge}");
        }
        for token in [refresh, successor] {
            let refreshed = token_request(
                &server,
                &wiki,
                &[("grant_type", "refresh_token"), ("refresh_token", token)],
            )
            .await;
            assert_oauth_error(refreshed, StatusCode::BAD_REQUEST, "invalid_grant").await;
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn a_code_must_come_back_with_its_redirect_uri_verifier_and_client() {
    let (server, wiki) = setup(Db::Sqlite, Store::Memory).await;
    let other = server.client(ClientSpec::web("other")).await;
    let long = "a".repeat(129);
    let cases: Vec<(&TestClient, Vec<(&str, String)>)> = vec![
        (
            &wiki,
            vec![("redirect_uri", format!("{}?x=1", wiki.redirect_uri))],
        ),
        (&wiki, vec![("redirect_uri", String::new())]),
        (&wiki, vec![("code_verifier", "x".repeat(43))]),
        (&wiki, vec![("code_verifier", "x".repeat(42))]),
        (&wiki, vec![("code_verifier", long)]),
        (&wiki, vec![("code_verifier", String::new())]),
        (&other, vec![]),
    ];
    for (client, changes) in cases {
        let (code, verifier) = code(&server, &wiki, "openid").await;
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", wiki.redirect_uri.clone()),
            ("code_verifier", verifier),
        ];
        for (name, value) in &changes {
            form.retain(|(n, _)| n != name);
            if !value.is_empty() {
                form.push((name, value.clone()));
            }
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let response = token_request(&server, client, &form).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }

    // PKCE downgrade: a verifier for a code issued without a challenge (RFC 9700 §4.8.2).
    let plain_code =
        authorize_with_sign_in(&server, &Browser::new(), &wiki, &[], "alice", PASSWORD).await;
    let response = exchange(&server, &wiki, &plain_code, &"v".repeat(43)).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // An unknown code.
    let response = exchange(&server, &wiki, "no-such-code", &"v".repeat(43)).await;
    assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    server.stop().await;
}

#[tokio::test]
async fn client_authentication_failures_are_401_with_a_basic_challenge() {
    let (server, wiki) = setup(Db::Sqlite, Store::Memory).await;
    let http = reqwest::Client::new();
    let url = server.url("/token");
    let form = [("grant_type", "client_credentials")];
    let secret = wiki.secret.clone().unwrap();
    let mut near = secret.clone();
    near.pop();
    let attempts = [
        http.post(&url).basic_auth("wiki", Some(&near)).form(&form),
        http.post(&url).basic_auth("wiki", Some("")).form(&form),
        http.post(&url)
            .basic_auth("nobody", Some(&secret))
            .form(&form),
        http.post(&url).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "wiki"),
            ("client_secret", "wrong"),
        ]),
        http.post(&url)
            .form(&[("grant_type", "client_credentials"), ("client_id", "wiki")]),
        http.post(&url).form(&form),
        http.post(&url)
            .header("authorization", "Basic !!!")
            .form(&form),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Basic realm="lanyard""#
        );
        assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // Two methods at once, or credentials in the URL.
    let both = http
        .post(&url)
        .basic_auth("wiki", Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(both, StatusCode::BAD_REQUEST, "invalid_request").await;
    let in_url = http
        .post(format!("{url}?client_id=wiki&client_secret={secret}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_oauth_error(in_url, StatusCode::BAD_REQUEST, "invalid_request").await;
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_get_the_rfc_error_never_a_500() {
    let (server, wiki) = setup(Db::Sqlite, Store::Memory).await;
    let http = reqwest::Client::new();
    let url = server.url("/token");
    let secret = wiki.secret.clone().unwrap();
    for (grant, error) in [
        ("password", "unsupported_grant_type"),
        ("implicit", "unsupported_grant_type"),
        (
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "unsupported_grant_type",
        ),
        // Implemented, but not registered for this client.
        (
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "unauthorized_client",
        ),
        (
            "urn:ietf:params:oauth:grant-type:device_code",
            "unauthorized_client",
        ),
        ("client_credentials", "unauthorized_client"),
    ] {
        let response = token_request(&server, &wiki, &[("grant_type", grant)]).await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, error).await;
    }
    let missing = token_request(&server, &wiki, &[("scope", "openid")]).await;
    assert_oauth_error(missing, StatusCode::BAD_REQUEST, "invalid_request").await;
    let json = http
        .post(&url)
        .basic_auth("wiki", Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_oauth_error(json, StatusCode::BAD_REQUEST, "invalid_request").await;
    for body in [
        "grant_type=authorization_code&grant_type=refresh_token",
        "grant_type=%ff%fe",
    ] {
        let response = http
            .post(&url)
            .basic_auth("wiki", Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    let huge = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&pad={}",
            "x".repeat(200_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let get = http.get(&url).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}

#[tokio::test]
async fn client_credentials_issue_an_access_token_only() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let reports = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &["reports:read", "reports:write"],
            ..ClientSpec::web("reports-job")
        })
        .await;
    let response = token_request(
        &server,
        &reports,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "reports:read"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "RFC 6749 §4.4.3");
    assert!(body.get("id_token").is_none());
    assert_eq!(body["scope"], "reports:read");
    let (header, claims) = crate::support::decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], "reports-job");
    assert_eq!(claims["client_id"], "reports-job");
    assert!(claims.get("sid").is_none());

    let all: Value = token_request(&server, &reports, &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        all["scope"], "reports:read reports:write",
        "no scope asked: every allowed one"
    );
    for (scope, error) in [
        ("reports:delete", "invalid_scope"),
        ("openid", "invalid_scope"),
    ] {
        let response = token_request(
            &server,
            &reports,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_oauth_error(response, StatusCode::BAD_REQUEST, error).await;
    }
    // Its token carries no openid: UserInfo answers 403, not 401.
    let info = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let challenge =
        assert_bearer_challenge(&info, StatusCode::FORBIDDEN, Some("insufficient_scope"));
    assert!(challenge.contains(r#"scope="openid""#));
    server.stop().await;
}

#[tokio::test]
async fn public_clients_authenticate_with_pkce_alone() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let spa = server
        .client(ClientSpec {
            public: true,
            ..ClientSpec::web("spa")
        })
        .await;
    assert!(spa.secret.is_none());
    let (code, verifier) = code(&server, &spa, "openid").await;
    let response = exchange(&server, &spa, &code, &verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    // A public client presenting a secret is not authenticated.
    let response = reqwest::Client::new()
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("client_secret", "made-up"),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    server.stop().await;
}

#[tokio::test]
async fn another_clients_attempt_does_not_spend_the_code_a_failed_one_does() {
    let (server, wiki) = setup(Db::Sqlite, Store::Memory).await;
    let other = server.client(ClientSpec::web("other")).await;
    let (code, verifier) = code(&server, &wiki, "openid").await;
    let stolen = token_request(
        &server,
        &other,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &wiki.redirect_uri),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_oauth_error(stolen, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(
        exchange(&server, &wiki, &code, &verifier).await.status(),
        StatusCode::OK,
        "still the owner's"
    );

    // A failed exchange by the owner spends the code: codes are single use (RFC 6749 §4.1.2).
    let (code, verifier) = self::code(&server, &wiki, "openid").await;
    let wrong = exchange(&server, &wiki, &code, &"w".repeat(43)).await;
    assert_oauth_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_oauth_error(
        exchange(&server, &wiki, &code, &verifier).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn resource_names_the_audience() {
    let (server, wiki) = setup(Db::Sqlite, Store::Memory).await;
    let job = server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            ..ClientSpec::web("reports-job")
        })
        .await;
    server
        .client(ClientSpec {
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            ..ClientSpec::web("reports-api")
        })
        .await;
    server.allow_resources(&job.id, &["reports-api"]).await;
    let body: Value = token_request(
        &server,
        &job,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "reports-api"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let (_, claims) = crate::support::decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], serde_json::json!(["reports-api"]));
    let unknown = token_request(
        &server,
        &job,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://evil.example"),
        ],
    )
    .await;
    assert_oauth_error(unknown, StatusCode::BAD_REQUEST, "invalid_target").await;
    // Checked before the code is spent.
    let (code, verifier) = code(&server, &wiki, "openid").await;
    let bad = token_request(
        &server,
        &wiki,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &wiki.redirect_uri),
            ("code_verifier", &verifier),
            ("resource", "nope"),
        ],
    )
    .await;
    assert_oauth_error(bad, StatusCode::BAD_REQUEST, "invalid_target").await;
    assert_eq!(
        exchange(&server, &wiki, &code, &verifier).await.status(),
        StatusCode::OK
    );
    server.stop().await;
}

/// With Redis gone nothing is judged: 503 with Retry-After at the token and authorization
/// endpoints, never `invalid_grant` or `login_required`.
#[tokio::test]
async fn an_unreachable_store_is_503_at_token_and_authorize() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let store = crate::support::redis_store_at(&own.url(), "e2e:").await;
    let server = TestServer::start_on_store(store).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let browser = Browser::new();
    let tokens = crate::support::code_flow(
        &server,
        &browser,
        &wiki,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    own.kill();
    let refresh = token_request(
        &server,
        &wiki,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert!(refresh.headers().get("retry-after").is_some());
    assert_oauth_error(
        refresh,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
    let page = browser
        .get(&crate::support::authorize_url(
            &server,
            &wiki,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(
        page.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the session cannot be read: not login_required"
    );
    assert!(page.headers().get("location").is_none());
    server.stop().await;
}

#[tokio::test]
async fn request_ids_are_ours() {
    let (server, wiki) = setup(Db::Sqlite, Store::Memory).await;
    let response = reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth(&wiki.id, wiki.secret.as_deref())
        .header("x-request-id", "forged-id")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(id, "forged-id");
    assert_eq!(id.len(), 16);
    server.stop().await;
}
