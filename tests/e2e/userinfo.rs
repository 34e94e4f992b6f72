//! UserInfo as an RFC 6750 resource: 401 for no or bad credentials (with the reason), 403 for
//! a token without `openid`, 400 for a malformed request, 503 when revocation cannot be
//! checked, never "valid" by default.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::tokens::AccessClaims;
use lanyard_store::{Clock, SystemClock, Target};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestServer, assert_bearer_challenge, code_flow,
};

const PASSWORD: &str = "correct horse battery staple";

async fn signed_in(server: &TestServer) -> (Value, lanyard_core::model::User) {
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let tokens = code_flow(
        server,
        &Browser::new(),
        &wiki,
        "openid profile",
        "alice",
        PASSWORD,
    )
    .await;
    (tokens, alice)
}

fn get(server: &TestServer) -> reqwest::RequestBuilder {
    reqwest::Client::new().get(server.url("/userinfo"))
}

fn description(challenge: &str) -> String {
    challenge
        .split("error_description=\"")
        .nth(1)
        .and_then(|d| d.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn no_token_malformed_request_and_token_in_the_url() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let (tokens, _) = signed_in(&server).await;
    let at = tokens["access_token"].as_str().unwrap();

    let none = get(&server).send().await.unwrap();
    assert_bearer_challenge(&none, StatusCode::UNAUTHORIZED, None);

    let twice = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .header("authorization", format!("Bearer {at}"))
        .header("authorization", format!("Bearer {at}"))
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&twice, StatusCode::BAD_REQUEST, Some("invalid_request"));
    for header in ["Bearer", "Bearer ", "Bearer a b", "Bearer ä"] {
        let r = get(&server)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_bearer_challenge(&r, StatusCode::BAD_REQUEST, Some("invalid_request"));
    }
    // Another scheme is no Bearer credentials: a bare challenge (RFC 6750 §3.1).
    let basic = get(&server)
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&basic, StatusCode::UNAUTHORIZED, None);
    let in_url = reqwest::Client::new()
        .get(format!("{}?access_token={at}", server.url("/userinfo")))
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&in_url, StatusCode::BAD_REQUEST, Some("invalid_request"));
    let both = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .bearer_auth(at)
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&both, StatusCode::BAD_REQUEST, Some("invalid_request"));
    let body = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), StatusCode::OK, "RFC 6750 §2.2 form body");
    let post = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn every_bad_token_is_401_invalid_token_saying_why() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let (tokens, alice) = signed_in(&server).await;
    let at = tokens["access_token"].as_str().unwrap();
    let now = SystemClock.now();
    let claims = |exp: i64, iss: &str| AccessClaims {
        iss: iss.to_owned(),
        sub: alice.sub.clone(),
        aud: vec!["wiki".into()],
        exp,
        iat: now.as_secs() - 3600,
        jti: "crafted".into(),
        client_id: "wiki".into(),
        origin: None,
        act: None,
        cnf: None,
        scope: "openid".into(),
        sid: None,
        auth_time: None,
        acr: None,
        amr: Vec::new(),
        roles: Vec::new(),
        groups: Vec::new(),
    };
    let expired = server
        .state
        .keys
        .sign("at+jwt", &claims(now.as_secs() - 60, &server.issuer))
        .await
        .unwrap();
    let foreign = server
        .state
        .keys
        .sign(
            "at+jwt",
            &claims(now.as_secs() + 60, "https://evil.example"),
        )
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let mut parts: Vec<&str> = at.split('.').collect();
    let (_, mut payload) = crate::support::decode_jwt(at);
    payload["sub"] = "someone-else".into();
    let tampered_payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    parts[1] = &tampered_payload;
    let tampered = parts.join(".");
    let none_alg = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#),
        at.split('.').nth(1).unwrap()
    );
    // RS256 → HS256 confusion: HMAC keyed with the published public key (CVE-2015-9235).
    let jwks: Value = reqwest::get(server.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let hs_header = serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": server.state.keys.signing_kid()});
    let hs_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(hs_header.to_string()),
        at.split('.').nth(1).unwrap()
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, public_n.as_bytes());
    let hs256 = format!(
        "{hs_input}.{}",
        URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, hs_input.as_bytes()))
    );
    // A kid no key of ours has.
    let (mut kid_header, _) = crate::support::decode_jwt(at);
    kid_header["kid"] = "../../etc/passwd".into();
    let unknown_kid = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(kid_header.to_string()),
        at.split('.').nth(1).unwrap(),
        at.split('.').nth(2).unwrap()
    );
    let cases = [
        (hs256.as_str(), "signature"),
        (unknown_kid.as_str(), "signature"),
        (expired.as_str(), "expired"),
        (foreign.as_str(), "not issued here"),
        (id_token, "not an access token"),
        (tampered.as_str(), "signature"),
        (none_alg.as_str(), "signature"),
        ("not.a.jwt", "malformed"),
    ];
    for (token, words) in cases {
        let r = get(&server).bearer_auth(token).send().await.unwrap();
        let challenge =
            assert_bearer_challenge(&r, StatusCode::UNAUTHORIZED, Some("invalid_token"));
        assert!(
            description(&challenge).contains(words),
            "{words}: {challenge}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"], "invalid_token",
            "the body carries the same error"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn revoked_tokens_and_disabled_users_are_refused() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let (tokens, alice) = signed_in(&server).await;
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        get(&server).bearer_auth(at).send().await.unwrap().status(),
        StatusCode::OK
    );
    server
        .store()
        .revoke(Target::Sub(alice.sub.clone()), SystemClock.now())
        .await
        .unwrap();
    let r = get(&server).bearer_auth(at).send().await.unwrap();
    let challenge = assert_bearer_challenge(&r, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert!(description(&challenge).contains("revoked"), "{challenge}");

    let bob = server.user("bob", PASSWORD).await;
    let billing = server.client(ClientSpec::web("billing")).await;
    let bobs = code_flow(
        &server,
        &Browser::new(),
        &billing,
        "openid",
        "bob",
        PASSWORD,
    )
    .await;
    server
        .state
        .db
        .users()
        .set_disabled(&bob.sub, true, SystemClock.now())
        .await
        .unwrap();
    let r = get(&server)
        .bearer_auth(bobs["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let challenge = assert_bearer_challenge(&r, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert!(description(&challenge).contains("disabled"));
    server.stop().await;
}

/// With Redis gone, a token cannot be judged: 503 with Retry-After, never 200.
#[tokio::test]
async fn an_unreachable_store_is_503_never_valid() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let store = crate::support::redis_store_at(&own.url(), "e2e:").await;
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |_| {}).await;
    // Rebuild the server's state over the killable Redis.
    let state = lanyard_idp::state::AppState::build_with(
        server.state.config.clone(),
        std::sync::Arc::new(SystemClock),
        Some(store),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(lanyard_idp::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    let token = state
        .keys
        .sign(
            "at+jwt",
            &AccessClaims {
                iss: server.issuer.clone(),
                sub: "someone".into(),
                aud: vec!["wiki".into()],
                exp: SystemClock.now().as_secs() + 300,
                iat: SystemClock.now().as_secs(),
                jti: "j".into(),
                client_id: "wiki".into(),
                origin: None,
                act: None,
                cnf: None,
                scope: "openid".into(),
                sid: None,
                auth_time: None,
                acr: None,
                amr: Vec::new(),
                roles: Vec::new(),
                groups: Vec::new(),
            },
        )
        .await
        .unwrap();
    own.kill();
    let r = reqwest::Client::new()
        .get(format!("{base}/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().get("retry-after").is_some());
    server.stop().await;
}
