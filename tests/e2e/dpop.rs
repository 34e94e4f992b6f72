//! DPoP (RFC 9449): tokens bound to a client's key, at Lanyard (token endpoint, UserInfo,
//! the admin API, introspection) and at an app's API through `lanyard-rp`'s guard; the
//! service client sends proofs.

use std::sync::Arc;
use std::time::Duration;

use lanyard_rp::client::{ClientCredentials, ServiceClient};
use lanyard_rp::dpop::DpopKey;
use lanyard_store::{Clock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin::ops_client;
use crate::apps::{App, start_app};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error,
    authorize_with_sign_in, client_post, decode_jwt, pkce,
};

const PASSWORD: &str = "correct horse battery staple";

fn now() -> i64 {
    SystemClock.now().as_secs()
}

/// POSTs a form to the token endpoint as `client`, with `proof` in a `DPoP` header.
async fn token_with_proof(
    server: &TestServer,
    client: &TestClient,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> reqwest::Response {
    let mut form = form.to_vec();
    let mut request = reqwest::Client::new().post(server.url("/token"));
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.form(&form).send().await.unwrap()
}

/// A proof by `key` for a POST to the token endpoint.
fn token_proof(server: &TestServer, key: &DpopKey) -> String {
    key.proof("POST", &server.url("/token"), None, None, now())
}

/// GETs `url` with `token` as `scheme` (`Bearer` or `DPoP`) and `proof`, if any.
async fn get(url: &str, scheme: &str, token: &str, proof: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(url)
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.unwrap()
}

/// Asserts a 401 whose `DPoP` challenge has `error` and a description saying `saying`.
fn assert_dpop_refusal(response: &reqwest::Response, error: &str, saying: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(
        challenge.contains(&format!(r#"error="{error}""#)),
        "{challenge}"
    );
    assert!(challenge.contains(saying), "{challenge}");
    assert!(challenge.contains("algs=\"ES256"), "{challenge}");
}

/// A public app signs alice in and redeems its code with a DPoP proof: tokens bound to the
/// key. UserInfo takes the access token only with a fresh proof by that key, and refreshing
/// needs the key too (RFC 9449 §5: a public client's refresh tokens are bound).
#[tokio::test]
async fn a_public_clients_tokens_are_bound_to_its_key() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let cli = server
        .client(ClientSpec {
            public: true,
            ..ClientSpec::web("cli")
        })
        .await;
    let key = DpopKey::generate().unwrap();
    let (challenge, verifier) = pkce();
    let code = authorize_with_sign_in(
        &server,
        &Browser::new(),
        &cli,
        &[
            ("scope", "openid offline_access"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
        "alice",
        PASSWORD,
    )
    .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", cli.redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let r = token_with_proof(&server, &cli, &form, Some(&token_proof(&server, &key))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (_, claims) = decode_jwt(access);
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }));

    // UserInfo: with a proof by the key, for this request and this token.
    let userinfo = server.url("/userinfo");
    let proof = key.proof("GET", &userinfo, Some(access), None, now());
    let r = get(&userinfo, "DPoP", access, Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["sub"], alice.sub.as_str());
    // The same proof again, the token as Bearer, a proof for another method, URL or token,
    // an old one, one by another key, none: refused, each saying why.
    let replay = get(&userinfo, "DPoP", access, Some(&proof)).await;
    assert_dpop_refusal(&replay, "invalid_dpop_proof", "used before");
    let bearer = get(&userinfo, "Bearer", access, None).await;
    assert_dpop_refusal(&bearer, "invalid_token", "bound to a key");
    let post = key.proof("POST", &userinfo, Some(access), None, now());
    let r = get(&userinfo, "DPoP", access, Some(&post)).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "another method");
    let elsewhere = key.proof("GET", &server.url("/token"), Some(access), None, now());
    let r = get(&userinfo, "DPoP", access, Some(&elsewhere)).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "another URL");
    let other_token = key.proof("GET", &userinfo, Some("another.token"), None, now());
    let r = get(&userinfo, "DPoP", access, Some(&other_token)).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "ath");
    let old = key.proof("GET", &userinfo, Some(access), None, now() - 300);
    let r = get(&userinfo, "DPoP", access, Some(&old)).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "iat");
    let thief = DpopKey::generate().unwrap();
    let stolen = thief.proof("GET", &userinfo, Some(access), None, now());
    let r = get(&userinfo, "DPoP", access, Some(&stolen)).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "another key");
    let r = get(&userinfo, "DPoP", access, None).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "proof");

    // Refreshing: without a proof, or with another key's, refused and nothing spent; with
    // the key, a new pair bound to it.
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let r = token_with_proof(&server, &cli, &form, None).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    let r = token_with_proof(&server, &cli, &form, Some(&token_proof(&server, &thief))).await;
    let body = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("another DPoP key")
    );
    let r = token_with_proof(&server, &cli, &form, Some(&token_proof(&server, &key))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh: Value = r.json().await.unwrap();
    let (_, claims) = decode_jwt(fresh["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"], json!({ "jkt": key.thumbprint() }));
    // A proof is taken once at the token endpoint too.
    let proof = token_proof(&server, &key);
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", fresh["refresh_token"].as_str().unwrap()),
    ];
    let r = token_with_proof(&server, &cli, &form, Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = token_with_proof(&server, &cli, &form, Some(&proof)).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    server.stop().await;
}

/// An app's API (the demo's `/api/me`, through `lanyard-rp`'s guard) takes a DPoP-bound
/// token only with a proof for the request; `lanyard-rp`'s service client gets bound tokens
/// and sends proofs by itself.
#[tokio::test]
async fn an_apps_api_checks_proofs_and_the_service_client_sends_them() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let wiki: App = start_app(&server, "wiki", server.store(), Duration::from_secs(10)).await;
    let job = server
        .client(ClientSpec {
            id: "job",
            public: false,
            grants: &["client_credentials"],
            scopes: &["reports"],
            first_party: false,
        })
        .await;
    server.allow_resources("job", &["wiki"]).await;
    let key = Arc::new(DpopKey::generate().unwrap());
    let source = ClientCredentials::new(
        &server.url("/token"),
        &job.id,
        job.secret.as_deref().unwrap(),
        None,
        Some("wiki"),
    )
    .with_dpop(key.clone());
    let client = ServiceClient::new(Arc::new(source)).with_dpop(key.clone());
    let me = format!("{}/api/me", wiki.base);
    let r = client.send(|http| http.get(&me)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["client_id"], "job");

    // The same kind of token, by hand.
    let form = [("grant_type", "client_credentials"), ("resource", "wiki")];
    let r = token_with_proof(&server, &job, &form, Some(&token_proof(&server, &key))).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let token = body["access_token"].as_str().unwrap();
    let proof = key.proof("GET", &me, Some(token), None, now());
    assert_eq!(
        get(&me, "DPoP", token, Some(&proof)).await.status(),
        StatusCode::OK
    );
    let refusals = [
        (
            get(&me, "DPoP", token, Some(&proof)).await,
            "invalid_dpop_proof",
            "used before",
        ),
        (
            get(&me, "Bearer", token, None).await,
            "invalid_token",
            "bound to a key",
        ),
        (
            get(
                &me,
                "DPoP",
                token,
                Some(&key.proof(
                    "GET",
                    &format!("{}/api/reports", wiki.base),
                    Some(token),
                    None,
                    now(),
                )),
            )
            .await,
            "invalid_dpop_proof",
            "another URL",
        ),
        (
            get(
                &me,
                "DPoP",
                token,
                Some(&key.proof("DELETE", &me, Some(token), None, now())),
            )
            .await,
            "invalid_dpop_proof",
            "another method",
        ),
        (
            get(
                &me,
                "DPoP",
                token,
                Some(&key.proof("GET", &me, Some(token), None, now() - 300)),
            )
            .await,
            "invalid_dpop_proof",
            "iat",
        ),
        (
            get(
                &me,
                "DPoP",
                token,
                Some(
                    &DpopKey::generate()
                        .unwrap()
                        .proof("GET", &me, Some(token), None, now()),
                ),
            )
            .await,
            "invalid_dpop_proof",
            "another key",
        ),
    ];
    for (response, error, saying) in &refusals {
        assert_dpop_refusal(response, error, saying);
    }
    // An unbound token sent with the DPoP scheme is refused too; as Bearer it works.
    let plain = token_with_proof(&server, &job, &form, None).await;
    let plain: Value = plain.json().await.unwrap();
    let plain = plain["access_token"].as_str().unwrap();
    let proof = key.proof("GET", &me, Some(plain), None, now());
    let r = get(&me, "DPoP", plain, Some(&proof)).await;
    assert_dpop_refusal(&r, "invalid_token", "not bound");
    assert_eq!(
        get(&me, "Bearer", plain, None).await.status(),
        StatusCode::OK
    );

    // Introspection says how the token is bound (RFC 9449 §6.2).
    let r = client_post(&server, "/introspect", &job, &[("token", token)]).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "DPoP");
    assert_eq!(answer["cnf"], json!({ "jkt": key.thumbprint() }));
    server.stop().await;
}

/// A client registered with `require_dpop` gets nothing without a proof; the admin API
/// takes a bound admin token only with a proof.
#[tokio::test]
async fn a_client_that_must_use_dpop_and_the_admin_api() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let ops = ops_client(&server).await;
    server.change_client("ops", |c| c.require_dpop = true).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "lanyard:admin"),
    ];
    let r = token_with_proof(&server, &ops, &form, None).await;
    let body = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("must send a DPoP proof")
    );
    let key = DpopKey::generate().unwrap();
    let r = token_with_proof(&server, &ops, &form, Some(&token_proof(&server, &key))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let users = server.url("/admin/v1/users");
    let proof = key.proof("GET", &users, Some(token), None, now());
    assert_eq!(
        get(&users, "DPoP", token, Some(&proof)).await.status(),
        StatusCode::OK
    );
    let r = get(&users, "Bearer", token, None).await;
    assert_dpop_refusal(&r, "invalid_token", "bound to a key");
    let r = get(&users, "DPoP", token, Some(&proof)).await;
    assert_dpop_refusal(&r, "invalid_dpop_proof", "used before");
    server.stop().await;
}

/// With `dpop_nonce`, a proof must carry a nonce Lanyard gave out (RFC 9449 §8): the first
/// try is answered `use_dpop_nonce` with one, and `lanyard-rp` retries by itself.
#[tokio::test]
async fn server_nonces_are_asked_for_and_given() {
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| c.dpop_nonce = true).await;
    let job = ops_client(&server).await;
    let key = Arc::new(DpopKey::generate().unwrap());
    let form = [("grant_type", "client_credentials")];
    let r = token_with_proof(&server, &job, &form, Some(&token_proof(&server, &key))).await;
    let nonce = r.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
    let proof = key.proof("POST", &server.url("/token"), None, Some("made-up"), now());
    let r = token_with_proof(&server, &job, &form, Some(&proof)).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "use_dpop_nonce").await;
    let proof = key.proof("POST", &server.url("/token"), None, Some(&nonce), now());
    let r = token_with_proof(&server, &job, &form, Some(&proof)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    // At the admin API, a proof without the nonce: 401 use_dpop_nonce with one.
    let users = server.url("/admin/v1/users");
    let r = get(
        &users,
        "DPoP",
        token,
        Some(&key.proof("GET", &users, Some(token), None, now())),
    )
    .await;
    assert_dpop_refusal(&r, "use_dpop_nonce", "nonce");
    assert!(r.headers().contains_key("dpop-nonce"));
    // lanyard-rp does the dance by itself, at the token endpoint and at the API.
    let source = ClientCredentials::new(
        &server.url("/token"),
        &job.id,
        job.secret.as_deref().unwrap(),
        Some("lanyard:admin"),
        None,
    )
    .with_dpop(key.clone());
    let client = ServiceClient::new(Arc::new(source)).with_dpop(key);
    let r = client.send(|http| http.get(&users)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    server.stop().await;
}
