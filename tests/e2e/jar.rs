//! Signed request objects (JAR, RFC 9101): an authorization request as a JWT the client
//! signs with a registered key, by value at `/authorize` or pushed to `/par`. Only a signed
//! object, by a key of the client's, for this issuer, is taken; its claims are the request.

use lanyard_store::{Clock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::private_key_jwt::ClientKey;
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error, client_post,
    redirect_params,
};

const PASSWORD: &str = "correct horse battery staple";

/// A first-party web app `id` whose request objects `key` signs.
async fn app_with_key(server: &TestServer, id: &'static str, key: &ClientKey) -> TestClient {
    let app = server.client(ClientSpec::web(id)).await;
    let jwks = json!({ "keys": [key.jwk()] });
    server.change_client(id, |c| c.jwks = Some(jwks)).await;
    app
}

/// A request object's claims for `app` at `server`.
fn request(server: &TestServer, app: &TestClient) -> Value {
    let now = SystemClock.now().as_secs();
    json!({
        "iss": app.id, "aud": server.issuer, "client_id": app.id,
        "iat": now, "exp": now + 300,
        "response_type": "code", "redirect_uri": app.redirect_uri,
        "scope": "openid profile", "state": "st-signed", "nonce": "n-signed",
        "max_age": 3600,
    })
}

/// `/authorize` with `client_id` and a request object (outer `extra` parameters, which the
/// object overrides).
fn by_value(server: &TestServer, client_id: &str, jwt: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request", jwt)
        .extend_pairs(extra);
    url.to_string()
}

#[tokio::test]
async fn a_signed_request_object_is_the_request() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let key = ClientKey::es256("req-1");
    let wiki = app_with_key(&server, "wiki", &key).await;
    let jwt = key.sign(&request(&server, &wiki));
    let browser = Browser::new();
    // Parameters outside the object do not count (RFC 9101 §5): not this state.
    let r = browser
        .get(&by_value(&server, "wiki", &jwt, &[("state", "st-outside")]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let r = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, wiki.redirect_uri);
    assert_eq!(params["state"], "st-signed");
    assert!(params.contains_key("code"));

    // Pushed (RFC 9126 with RFC 9101): the same object, through /par.
    let r = client_post(&server, "/par", &wiki, &[("request", jwt.as_str())]).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let pushed: Value = r.json().await.unwrap();
    let mut url = url::Url::parse(&server.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "wiki")
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
    let r = browser.get(url.as_str()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "single sign-on");
    let (_, params) = redirect_params(&r);
    assert_eq!(params["state"], "st-signed");
    server.stop().await;
}

#[tokio::test]
async fn request_objects_that_cannot_be_trusted_are_refused() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let key = ClientKey::es256("req-1");
    let wiki = app_with_key(&server, "wiki", &key).await;
    let plain = server.client(ClientSpec::web("plain")).await;
    let good = request(&server, &wiki);
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let unsigned = {
        use base64::Engine;
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&good))
    };
    let cases: Vec<(String, &str)> = vec![
        (unsigned, "not a signed JWT"),
        (
            ClientKey::es256("req-1").sign(&good),
            "not signed by a key registered",
        ),
        (
            key.sign(&changed(&|c| c["aud"] = json!("https://other.example"))),
            "aud must be the issuer",
        ),
        (
            key.sign(&changed(&|c| c["client_id"] = json!("crm"))),
            "client_id is not the one beside it",
        ),
        (key.sign(&changed(&|c| c["exp"] = json!(0))), "has expired"),
        (
            key.sign(&changed(&|c| c["iss"] = json!("crm"))),
            "iss must be the client_id",
        ),
    ];
    let browser = Browser::new();
    for (jwt, why) in &cases {
        let r = browser.get(&by_value(&server, "wiki", jwt, &[])).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
        let page = r.text().await.unwrap();
        assert!(page.contains(why), "{why}: {page}");
        // Pushed, the same is a JSON invalid_request_object.
        let r = client_post(&server, "/par", &wiki, &[("request", jwt.as_str())]).await;
        let body = assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request_object").await;
        assert!(
            body["error_description"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
    // With a registered redirect URI beside the object, the refusal goes back to the app
    // (RFC 9101 §6.3), with the state beside it.
    let r = browser
        .get(&by_value(
            &server,
            "wiki",
            &cases[1].0,
            &[
                ("redirect_uri", &wiki.redirect_uri),
                ("state", "st-outside"),
            ],
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (to, params) = redirect_params(&r);
    assert_eq!(to, wiki.redirect_uri);
    assert_eq!(params["error"], "invalid_request_object");
    assert_eq!(params["state"], "st-outside");
    // A client with no keys registered cannot send request objects at all.
    let r = browser
        .get(&by_value(
            &server,
            "plain",
            &key.sign(&request(&server, &plain)),
            &[],
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("no keys registered"));
    server.stop().await;
}
