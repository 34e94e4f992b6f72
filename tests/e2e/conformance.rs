//! The OpenID Foundation conformance suite's OP modules, ported: one test per module of the
//! basic (`oidcc-basic-certification-test-plan`) and config plans, named after the module
//! (`oidcc-scope-email` → `oidcc_scope_email`), checking what the module's conditions check
//! (`../shared/SECURITY.md` §1). The logout plans' modules are in `logout.rs`, under their
//! names too. `docs/security.md` maps every module to its test.
//!
//! The suite itself cannot run here (Java registry and MongoDB unreachable); these tests sign
//! in through the real sign-in form, redeem codes at the real token endpoint and verify ID
//! tokens against the published JWKS, as the suite does.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, authorize_url, decode_jwt, pkce,
    redirect_params, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// The OP under test: a server, alice, and the suite's confidential client (`client`), with
/// a second client (`client2`) for the cross-client checks.
struct Op {
    server: TestServer,
    client: TestClient,
    client2: TestClient,
    sub: String,
}

impl Op {
    async fn start() -> Self {
        Self::on(TestServer::start(Db::Sqlite, Store::Memory).await).await
    }

    /// An OP on a clock the test moves.
    async fn start_at(clock: ManualClock) -> Self {
        Self::on(TestServer::start_with_clock(clock).await).await
    }

    async fn on(server: TestServer) -> Self {
        let alice = server.user("alice", PASSWORD).await;
        let client = server.client(ClientSpec::web("suite-client")).await;
        let client2 = server.client(ClientSpec::web("suite-client2")).await;
        Self {
            server,
            client,
            client2,
            sub: alice.sub,
        }
    }

    /// GET the authorization endpoint with the suite's defaults and `extra`.
    async fn authorize(&self, browser: &Browser, extra: &[(&str, &str)]) -> reqwest::Response {
        browser
            .get(&authorize_url(&self.server, &self.client, extra))
            .await
    }

    /// Authorizes with `extra`, signing alice in when the sign-in page shows; the parameters
    /// of the redirect back to the client.
    async fn authorize_signing_in(
        &self,
        browser: &Browser,
        extra: &[(&str, &str)],
    ) -> HashMap<String, String> {
        let mut answer = self.authorize(browser, extra).await;
        if answer.status() == StatusCode::OK {
            let page = answer.text().await.unwrap();
            answer = browser
                .sign_in(&self.server, &page, "alice", PASSWORD, false)
                .await;
        }
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let (to, params) = redirect_params(&answer);
        assert_eq!(to, self.client.redirect_uri, "back to the registered URI");
        assert_eq!(
            params["iss"], self.server.issuer,
            "RFC 9207 iss on every answer"
        );
        params
    }

    /// Redeems `code` (with `verifier` when PKCE was used): the token endpoint's answer.
    async fn redeem(&self, code: &str, verifier: Option<&str>) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.client.redirect_uri.as_str()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        token_request(&self.server, &self.client, &form).await
    }

    /// The happy flow with `extra`: sign in, check `state`, redeem (with PKCE), check the
    /// token response; the tokens.
    async fn code_flow(&self, browser: &Browser, extra: &[(&str, &str)]) -> Value {
        let (challenge, verifier) = pkce();
        let mut params = vec![
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        params.extend_from_slice(extra);
        let answer = self.authorize_signing_in(browser, &params).await;
        assert_eq!(answer["state"], "st-123");
        let response = self.redeem(&answer["code"], Some(&verifier)).await;
        token_response(response).await
    }

    /// The ID token's claims, verified as the suite's `ValidateIdToken*` conditions do:
    /// RS256 with a `kid` found in the JWKS, `iss`, `aud`, `exp`, `iat`, seconds not ms.
    async fn id_claims(&self, tokens: &Value, client: &TestClient) -> Value {
        let id_token = tokens["id_token"].as_str().expect("an ID token");
        let header = jsonwebtoken::decode_header(id_token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        let kid = header.kid.expect("a kid");
        let jwks: Value = reqwest::get(self.server.url("/jwks"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .expect("the kid is published");
        let key = DecodingKey::from_rsa_components(
            key["n"].as_str().unwrap(),
            key["e"].as_str().unwrap(),
        )
        .unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&client.id]);
        validation.set_issuer(&[&self.server.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
            .expect("the ID token verifies")
            .claims;
        let now = SystemClock.now().as_secs();
        for name in ["exp", "iat"] {
            let t = claims[name].as_i64().unwrap();
            assert!(
                (now - 3600..now + 86_400).contains(&t),
                "{name} in seconds: {t}"
            );
        }
        assert_eq!(claims["sub"], self.sub.as_str());
        claims
    }

    async fn userinfo_get(&self, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.server.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// A successful token response (RFC 6749 §5.1): 200, JSON, no-store, Bearer.
async fn token_response(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["access_token"].as_str().unwrap().len() >= 22);
    tokens
}

/// A module whose whole check is the happy flow with `extra` parameters: signed in, the code
/// redeemed with PKCE, the ID token verified (nothing in `extra` may cause an error).
async fn happy_flow_with(extra: &[(&str, &str)]) {
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), extra).await;
    op.id_claims(&tokens, &op.client).await;
    op.stop().await;
}

fn access_token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

/// The redirect of an error answer: (`error`, `state`), after checking it went back to the
/// registered URI with `iss`.
fn error_redirect(op: &Op, answer: &reqwest::Response) -> (String, Option<String>) {
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(answer);
    assert_eq!(to, op.client.redirect_uri);
    assert_eq!(params["iss"], op.server.issuer);
    assert!(!params.contains_key("code"));
    (params["error"].clone(), params.get("state").cloned())
}

#[tokio::test]
async fn oidcc_server() {
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), &[]).await;
    let claims = op.id_claims(&tokens, &op.client).await;
    assert_eq!(claims["nonce"], "n-456");
    let jwks: Value = reqwest::get(op.server.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let mut distinct = kids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), kids.len(), "distinct kids in the JWKS");
    let info: Value = op
        .userinfo_get(access_token(&tokens))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], claims["sub"]);
    op.stop().await;
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let op = Op::start().await;
    let answer = op
        .authorize(&Browser::new(), &[("response_type", "")])
        .await;
    let (error, state) = error_redirect(&op, &answer);
    assert_eq!(error, "invalid_request");
    assert_eq!(state.as_deref(), Some("st-123"));
    op.stop().await;
}

#[tokio::test]
async fn oidcc_idtoken_signature() {
    // `id_claims` verified RS256 with a published kid.
    happy_flow_with(&[]).await;
}

#[tokio::test]
async fn oidcc_idtoken_unsigned() {
    // Skipped by the suite unless `none` is advertised; we must never advertise it.
    let op = Op::start().await;
    let metadata: Value = reqwest::get(op.server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = metadata["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(!algs.iter().any(|a| a == "none"), "{algs:?}");
    let tokens = op.code_flow(&Browser::new(), &[]).await;
    let (header, _) = decode_jwt(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_userinfo_get() {
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), &[]).await;
    let r = op.userinfo_get(access_token(&tokens)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], op.sub.as_str());
    op.stop().await;
}

#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), &[]).await;
    let r = reqwest::Client::new()
        .post(op.server.url("/userinfo"))
        .bearer_auth(access_token(&tokens))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], op.sub.as_str());
    op.stop().await;
}

#[tokio::test]
async fn oidcc_userinfo_post_body() {
    // RFC 6750 §2.2: the token in a form body. The suite accepts a refusal (a warning).
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), &[]).await;
    let r = reqwest::Client::new()
        .post(op.server.url("/userinfo"))
        .form(&[("access_token", access_token(&tokens))])
        .send()
        .await
        .unwrap();
    match r.status() {
        StatusCode::OK => {
            let info: Value = r.json().await.unwrap();
            assert_eq!(info["sub"], op.sub.as_str());
        }
        status => {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(r.headers().contains_key("www-authenticate"));
        }
    }
    op.stop().await;
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), &[("nonce", "")]).await;
    let claims = op.id_claims(&tokens, &op.client).await;
    assert!(claims.get("nonce").is_none(), "{claims}");
    op.stop().await;
}

/// A scope module: the claims of `scope` come back from userinfo.
async fn scope_module(scope: &str, expected: &[&str]) {
    let op = Op::start().await;
    let tokens = op.code_flow(&Browser::new(), &[("scope", scope)]).await;
    let info: Value = op
        .userinfo_get(access_token(&tokens))
        .await
        .json()
        .await
        .unwrap();
    for claim in expected {
        assert!(info.get(*claim).is_some(), "{scope}: {claim} in {info}");
    }
    op.stop().await;
}

#[tokio::test]
async fn oidcc_scope_profile() {
    scope_module("openid profile", &["name", "preferred_username"]).await;
}

#[tokio::test]
async fn oidcc_scope_email() {
    scope_module("openid email", &["email", "email_verified"]).await;
}

#[tokio::test]
async fn oidcc_scope_all() {
    // Every scope Lanyard supports, at once.
    scope_module(
        "openid profile email",
        &["name", "preferred_username", "email", "email_verified"],
    )
    .await;
}

/// `address` and `phone` are not supported: the suite skips these modules when
/// `scopes_supported` lacks the scope. Asked for anyway, the client hears `invalid_scope`.
async fn unsupported_scope_module(scope: &str) {
    let op = Op::start().await;
    let metadata: Value = reqwest::get(op.server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == scope),
        "{scope} is not advertised"
    );
    let answer = op
        .authorize(&Browser::new(), &[("scope", &format!("openid {scope}"))])
        .await;
    let (error, state) = error_redirect(&op, &answer);
    assert_eq!(error, "invalid_scope");
    assert_eq!(state.as_deref(), Some("st-123"));
    op.stop().await;
}

#[tokio::test]
async fn oidcc_scope_address() {
    unsupported_scope_module("address").await;
}

#[tokio::test]
async fn oidcc_scope_phone() {
    unsupported_scope_module("phone").await;
}

#[tokio::test]
async fn oidcc_alternate_happy_flow() {
    // Scope values in another order (RFC 6749 §3.3) and the parameters in another order.
    let op = Op::start().await;
    let browser = Browser::new();
    let (challenge, verifier) = pkce();
    let mut url = url::Url::parse(&op.server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("nonce", "n-456")
        .append_pair("state", "st-123")
        .append_pair("scope", "email openid profile")
        .append_pair("code_challenge_method", "S256")
        .append_pair("redirect_uri", &op.client.redirect_uri)
        .append_pair("code_challenge", &challenge)
        .append_pair("response_type", "code")
        .append_pair("client_id", &op.client.id);
    let page = browser.get(url.as_str()).await.text().await.unwrap();
    let answer = browser
        .sign_in(&op.server, &page, "alice", PASSWORD, false)
        .await;
    let (_, params) = redirect_params(&answer);
    let tokens = token_response(op.redeem(&params["code"], Some(&verifier)).await).await;
    op.id_claims(&tokens, &op.client).await;
    op.stop().await;
}

#[tokio::test]
async fn oidcc_display_page() {
    happy_flow_with(&[("display", "page")]).await;
}

#[tokio::test]
async fn oidcc_display_popup() {
    happy_flow_with(&[("display", "popup")]).await;
}

/// Signs alice in, waits past a second, then authorizes with `extra`: the sign-in page must
/// show again, and the new ID token's `auth_time` is later than the first one's.
async fn forced_reauthentication(extra: &[(&str, &str)]) {
    let clock = ManualClock::new(SystemClock.now());
    let op = Op::start_at(clock.clone()).await;
    let browser = Browser::new();
    let first = op.code_flow(&browser, &[]).await;
    let first = op.id_claims(&first, &op.client).await;
    clock.advance(Duration::from_millis(1100));
    let answer = op.authorize(&browser, extra).await;
    assert_eq!(answer.status(), StatusCode::OK, "{extra:?}: asked again");
    let again = op.code_flow(&browser, extra).await;
    let again = op.id_claims(&again, &op.client).await;
    let (t1, t2) = (
        first["auth_time"].as_i64().unwrap(),
        again["auth_time"].as_i64().unwrap(),
    );
    assert!(t2 > t1, "auth_time moves on: {t1} → {t2}");
    assert_eq!(again["sub"], first["sub"]);
    op.stop().await;
}

#[tokio::test]
async fn oidcc_prompt_login() {
    forced_reauthentication(&[("prompt", "login")]).await;
}

#[tokio::test]
async fn oidcc_max_age_1() {
    forced_reauthentication(&[("max_age", "1")]).await;
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let op = Op::start().await;
    let browser = Browser::new();
    let first = op.code_flow(&browser, &[]).await;
    let first = op.id_claims(&first, &op.client).await;
    let answer = op.authorize(&browser, &[("max_age", "10000")]).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "no sign-in asked");
    let again = op.code_flow(&browser, &[("max_age", "10000")]).await;
    let again = op.id_claims(&again, &op.client).await;
    assert_eq!(again["auth_time"], first["auth_time"]);
    assert_eq!(again["sub"], first["sub"]);
    op.stop().await;
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let op = Op::start().await;
    let answer = op.authorize(&Browser::new(), &[("prompt", "none")]).await;
    let (error, state) = error_redirect(&op, &answer);
    assert_eq!(error, "login_required");
    assert_eq!(state.as_deref(), Some("st-123"));
    op.stop().await;
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let op = Op::start().await;
    let browser = Browser::new();
    let first = op.code_flow(&browser, &[]).await;
    let answer = op.authorize(&browser, &[("prompt", "none")]).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "no UI");
    let again = op.code_flow(&browser, &[("prompt", "none")]).await;
    let (first, again) = (
        op.id_claims(&first, &op.client).await,
        op.id_claims(&again, &op.client).await,
    );
    assert_eq!(again["sub"], first["sub"]);
    op.stop().await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    happy_flow_with(&[("extra", "foobar")]).await;
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let op = Op::start().await;
    let browser = Browser::new();
    let first = op.code_flow(&browser, &[]).await;
    let hint = first["id_token"].as_str().unwrap();
    let again = op
        .code_flow(&browser, &[("prompt", "none"), ("id_token_hint", hint)])
        .await;
    let (first, again) = (
        op.id_claims(&first, &op.client).await,
        op.id_claims(&again, &op.client).await,
    );
    assert_eq!(again["sub"], first["sub"]);
    op.stop().await;
}

#[tokio::test]
async fn oidcc_login_hint() {
    let op = Op::start().await;
    let page = op
        .authorize(&Browser::new(), &[("login_hint", "alice")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"value="alice""#),
        "the username is prefilled"
    );
    let tokens = op
        .code_flow(&Browser::new(), &[("login_hint", "alice")])
        .await;
    op.id_claims(&tokens, &op.client).await;
    op.stop().await;
}

#[tokio::test]
async fn oidcc_ui_locales() {
    happy_flow_with(&[("ui_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_claims_locales() {
    happy_flow_with(&[("claims_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    happy_flow_with(&[("acr_values", "1 2")]).await;
}

/// Redeems a code twice, `wait` apart: the second gets `invalid_grant`, and the access
/// token the first issued is dead (RFC 6749 §4.1.2).
async fn code_reuse(wait: Duration) {
    let clock = ManualClock::new(SystemClock.now());
    let op = Op::on(TestServer::start_with_clock(clock.clone()).await).await;
    let browser = Browser::new();
    let answer = op.authorize_signing_in(&browser, &[]).await;
    let first = token_response(op.redeem(&answer["code"], None).await).await;
    assert_eq!(
        op.userinfo_get(access_token(&first)).await.status(),
        StatusCode::OK
    );
    clock.advance(wait);
    let second = op.redeem(&answer["code"], None).await;
    assert_eq!(second.status(), StatusCode::BAD_REQUEST);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let r = op.userinfo_get(access_token(&first)).await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "what the first redemption issued is revoked"
    );
    let refresh = first["refresh_token"].as_str();
    if let Some(rt) = refresh {
        let r = crate::support::refresh(&op.server, &op.client, rt, None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    op.stop().await;
}

#[tokio::test]
async fn oidcc_codereuse() {
    code_reuse(Duration::ZERO).await;
}

#[tokio::test]
async fn oidcc_codereuse_30seconds() {
    code_reuse(Duration::from_secs(30)).await;
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let op = Op::start().await;
    let suffixed = format!("{}/suffix", op.client.redirect_uri);
    let answer = op
        .authorize(&Browser::new(), &[("redirect_uri", &suffixed)])
        .await;
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "an error page");
    assert!(answer.headers().get("location").is_none(), "no redirect");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let op = Op::start().await;
    let browser = Browser::new();
    let (challenge, verifier) = pkce();
    let page = browser
        .http
        .post(op.server.url("/authorize"))
        .form(&[
            ("client_id", op.client.id.as_str()),
            ("redirect_uri", &op.client.redirect_uri),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "st-post"),
            ("nonce", "n-post"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(&op.server, &page, "alice", PASSWORD, false)
        .await;
    let (_, params) = redirect_params(&answer);
    assert_eq!(params["state"], "st-post");
    let tokens = token_response(op.redeem(&params["code"], Some(&verifier)).await).await;
    let claims = op.id_claims(&tokens, &op.client).await;
    assert_eq!(claims["nonce"], "n-post");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let op = Op::start().await;
    let answer = op.authorize_signing_in(&Browser::new(), &[]).await;
    let response = reqwest::Client::new()
        .post(op.server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", answer["code"].as_str()),
            ("redirect_uri", &op.client.redirect_uri),
            ("client_id", &op.client.id),
            ("client_secret", op.client.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let tokens = token_response(response).await;
    op.id_claims(&tokens, &op.client).await;
    op.stop().await;
}

#[tokio::test]
async fn oidcc_request_uri_unsigned() {
    let op = Op::start().await;
    let answer = op
        .authorize(
            &Browser::new(),
            &[("request_uri", "https://rp.example/request.jwt")],
        )
        .await;
    assert_eq!(error_redirect(&op, &answer).0, "request_uri_not_supported");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    // Request objects must be signed (`none` is not among
    // `request_object_signing_alg_values_supported`): an unsigned one is refused.
    let op = Op::start().await;
    let object = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.";
    let answer = op.authorize(&Browser::new(), &[("request", object)]).await;
    assert_eq!(error_redirect(&op, &answer).0, "invalid_request_object");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    // An unsigned object naming another redirect URI: refused, and the error goes to the
    // registered URI beside it, never to the one inside (nothing in it is trusted).
    let op = Op::start().await;
    let object = "eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZS8ifQ.";
    let answer = op.authorize(&Browser::new(), &[("request", object)]).await;
    let (error, _) = error_redirect(&op, &answer);
    assert_eq!(error, "invalid_request_object");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_claims_essential() {
    // `claims_parameter_supported` is false: the parameter is ignored and the flow works.
    let op = Op::start().await;
    let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let tokens = op
        .code_flow(
            &Browser::new(),
            &[("claims", claims), ("scope", "openid profile")],
        )
        .await;
    let info: Value = op
        .userinfo_get(access_token(&tokens))
        .await
        .json()
        .await
        .unwrap();
    assert!(info.get("name").is_some(), "{info}");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let clock = ManualClock::new(SystemClock.now());
    let op = Op::start_at(clock.clone()).await;
    let tokens = op
        .code_flow(&Browser::new(), &[("scope", "openid offline_access")])
        .await;
    let first = op.id_claims(&tokens, &op.client).await;
    clock.advance(Duration::from_millis(1100));
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert!(
        rt.len() >= 32
            && rt
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)),
        "an RT of allowed characters and enough length: {rt}"
    );
    let refreshed =
        token_response(crate::support::refresh(&op.server, &op.client, rt, None).await).await;
    let again = op.id_claims(&refreshed, &op.client).await;
    for claim in ["iss", "sub", "auth_time"] {
        assert_eq!(again[claim], first[claim], "{claim} kept (OIDC Core §12.2)");
    }
    assert_eq!(again.get("azp"), first.get("azp"));
    assert!(
        again["iat"].as_i64() > first["iat"].as_i64(),
        "a new iat: {again}"
    );
    // Client 2's refresh token, presented by client 1.
    let browser2 = Browser::new();
    let other = crate::support::code_flow(
        &op.server,
        &browser2,
        &op.client2,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await;
    let r = crate::support::refresh(
        &op.server,
        &op.client,
        other["refresh_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    op.stop().await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    // `code_flow` sends S256 PKCE and redeems with the verifier.
    happy_flow_with(&[]).await;
}

#[tokio::test]
async fn oidcc_discovery_endpoint_verification() {
    // The config plan, against an https issuer (as certification requires).
    let server = TestServer::start_with(Db::Sqlite, Store::Memory, |c| {
        c.issuer = "https://sso.example.com".into();
    })
    .await;
    let r = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["issuer"], "https://sso.example.com");
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ] {
        let url = m[endpoint].as_str().unwrap_or_default();
        assert!(
            url.starts_with("https://sso.example.com/"),
            "{endpoint}: {url}"
        );
    }
    for list in [
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
        "grant_types_supported",
        "scopes_supported",
        "claims_supported",
        "code_challenge_methods_supported",
        "ui_locales_supported",
        "claims_locales_supported",
    ] {
        assert!(
            m[list].as_array().is_some_and(|a| !a.is_empty()),
            "{list} is a non-empty array"
        );
    }
    let has = |list: &str, value: &str| m[list].as_array().unwrap().iter().any(|v| v == value);
    assert!(has("scopes_supported", "openid"));
    assert!(has("response_types_supported", "code"));
    assert!(has("id_token_signing_alg_values_supported", "RS256"));
    assert!(has("grant_types_supported", "authorization_code"));
    assert!(has("subject_types_supported", "public"));
    assert!(has("code_challenge_methods_supported", "S256"));
    assert!(!has("code_challenge_methods_supported", "plain"));
    server.stop().await;
}

#[tokio::test]
async fn oidcc_server_rotate_keys() {
    // The dynamic plan's module: after a rotation the JWKS holds the new key and still the
    // old one, and once the new key signs, ID tokens of both verify.
    let clock = ManualClock::new(SystemClock.now());
    let op = Op::on(TestServer::start_with_clock(clock.clone()).await).await;
    let before = op.code_flow(&Browser::new(), &[]).await;
    let (old, _) = decode_jwt(before["id_token"].as_str().unwrap());
    lanyard_core::keys::rotate(&op.server.state, "suite")
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3601));
    lanyard_core::keys::tick(&op.server.state).await.unwrap();
    let after = op.code_flow(&Browser::new(), &[]).await;
    let (new, _) = decode_jwt(after["id_token"].as_str().unwrap());
    assert_ne!(old["kid"], new["kid"], "signed with the new key");
    op.id_claims(&before, &op.client).await;
    op.id_claims(&after, &op.client).await;
    op.stop().await;
}
