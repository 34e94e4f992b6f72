//! `private_key_jwt` (RFC 7523, OIDC Core §9): a client without a secret signs a short JWT
//! with its own key, registered inline or published at a `jwks_uri` (fetched, kept, fetched
//! again for a new `kid`). Every assertion that must be refused is: a replay, a wrong `aud`,
//! HMAC, a key not registered, an expired one or one that lives too long, a missing `jti`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::model::{AuthMethod, ClientSettings, GrantType};
use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestServer, assert_oauth_error};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A key a client holds: its public JWK, and how it signs.
pub(crate) struct ClientKey {
    pub(crate) kid: String,
    alg: &'static str,
    signer: Signer,
}

enum Signer {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl ClientKey {
    /// A fresh P-256 key.
    pub(crate) fn es256(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.to_owned(),
            alg: "ES256",
            signer: Signer::Es256(pair),
        }
    }

    /// A fresh Ed25519 key.
    pub(crate) fn eddsa(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Self {
            kid: kid.to_owned(),
            alg: "EdDSA",
            signer: Signer::EdDsa(pair),
        }
    }

    /// The public JWK.
    pub(crate) fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65]),
                       "kid": self.kid, "use": "sig", "alg": "ES256"})
            }
            Signer::EdDsa(pair) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()),
                       "kid": self.kid, "use": "sig"})
            }
        }
    }

    /// A JWT of `claims`, signed, with this key's `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg, "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match &self.signer {
            Signer::Es256(pair) => pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Signer::EdDsa(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// The claims of a good assertion by `client` for `server`, at `now` (seconds).
fn claims(server: &TestServer, client: &str, now: i64) -> Value {
    json!({
        "iss": client, "sub": client, "aud": server.issuer,
        "iat": now, "exp": now + 60,
        "jti": format!("{client}-{now}-{}", rand_suffix()),
    })
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Registers `client_id` for `private_key_jwt` with `keys` (inline) or `jwks_uri`.
async fn register(
    server: &TestServer,
    client_id: &str,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
) {
    add_client(
        &server.state.db,
        &server.state.server_keys,
        NewClient {
            settings: ClientSettings {
                grant_types: vec![GrantType::ClientCredentials],
                scopes: vec!["reports".to_owned()],
                token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
                jwks,
                jwks_uri,
                ..ClientSettings::new(client_id)
            },
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
}

/// `POST path` with `assertion` and `extra` fields.
async fn post_assertion(
    server: &TestServer,
    path: &str,
    assertion: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    reqwest::Client::new()
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn grant(server: &TestServer, assertion: &str) -> reqwest::Response {
    post_assertion(
        server,
        "/token",
        assertion,
        &[("grant_type", "client_credentials"), ("scope", "reports")],
    )
    .await
}

/// Asserts a 401 `invalid_client` whose description contains `why`.
async fn refused(response: reqwest::Response, why: &str) {
    let body = assert_oauth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let said = body["error_description"].as_str().unwrap();
    assert!(said.contains(why), "{why:?} in {said:?}");
}

#[tokio::test]
async fn a_client_authenticates_with_its_key_and_each_assertion_once() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_at(
        crate::support::Db::Sqlite,
        crate::support::Store::Redis,
        clock.clone(),
    )
    .await;
    let key = ClientKey::es256("k1");
    let ed = ClientKey::eddsa("k2");
    register(
        &server,
        "reports",
        Some(json!({"keys": [key.jwk(), ed.jwk()]})),
        None,
    )
    .await;
    let now = clock.now().as_secs();
    let assertion = key.sign(&claims(&server, "reports", now));
    let r = grant(&server, &assertion).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let (_, access) = crate::support::decode_jwt(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], "reports");
    assert_eq!(access["client_id"], "reports");
    // The same assertion again: refused (its jti was claimed), on every node.
    refused(grant(&server, &assertion).await, "used before").await;
    // Another key of the client's (EdDSA), with client_id in the body too, at introspection.
    let r = post_assertion(
        &server,
        "/introspect",
        &ed.sign(&claims(&server, "reports", now)),
        &[
            ("client_id", "reports"),
            ("token", tokens["access_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let introspected: Value = r.json().await.unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    // After the assertion expired, its jti is forgotten, and the assertion is refused for
    // being expired, not replayed.
    clock.advance(Duration::from_secs(200));
    refused(grant(&server, &assertion).await, "expired").await;
    server.stop().await;
}

#[tokio::test]
async fn assertions_that_must_be_refused_are() {
    let server = TestServer::start(crate::support::Db::Sqlite, crate::support::Store::Memory).await;
    let key = ClientKey::es256("k1");
    register(&server, "reports", Some(json!({"keys": [key.jwk()]})), None).await;
    let now = SystemClock.now().as_secs();
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = claims(&server, "reports", now);
        change(&mut c);
        c
    };
    // aud: the token endpoint's URL is not the issuer (RFC 7523bis).
    let token_url = server.url("/token");
    let wrong_aud = key.sign(&with(&|c| c["aud"] = json!(token_url)));
    refused(grant(&server, &wrong_aud).await, "aud must be the issuer").await;
    refused(
        grant(&server, &key.sign(&with(&|c| c["exp"] = json!(now - 120)))).await,
        "expired",
    )
    .await;
    refused(
        grant(&server, &key.sign(&with(&|c| c["exp"] = json!(now + 7200)))).await,
        "too far ahead",
    )
    .await;
    refused(
        grant(
            &server,
            &key.sign(&with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })),
        )
        .await,
        "no jti",
    )
    .await;
    refused(
        grant(
            &server,
            &key.sign(&with(&|c| c["iss"] = json!("someone-else"))),
        )
        .await,
        "iss must be the client_id",
    )
    .await;
    // HS256, "signed" with anything: never accepted (no shared secret exists).
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64(claims(&server, "reports", now).to_string().as_bytes());
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            key.jwk()["x"].as_str().unwrap().as_bytes(),
        ),
        format!("{header}.{body}").as_bytes(),
    );
    let hs256 = format!("{header}.{body}.{}", b64(tag.as_ref()));
    refused(grant(&server, &hs256).await, "asymmetric").await;
    // A key the client never registered, with its kid or another.
    for stranger in [ClientKey::es256("k1"), ClientKey::es256("k9")] {
        refused(
            grant(&server, &stranger.sign(&claims(&server, "reports", now))).await,
            "client authentication failed",
        )
        .await;
    }
    // One method at a time; a secret is no way in for this client.
    let good = key.sign(&claims(&server, "reports", now));
    let r = reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth("reports", Some("guess"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", good.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let r = reqwest::Client::new()
        .post(server.url("/token"))
        .basic_auth("reports", Some("a-secret-it-never-had"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // None of that spent the good assertion.
    assert_eq!(grant(&server, &good).await.status(), StatusCode::OK);
    server.stop().await;
}

/// A JWK Set served at `http://127.0.0.1:<port>/jwks`, which the test changes.
async fn serve_jwks(keys: Arc<Mutex<Value>>) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

#[tokio::test]
async fn keys_at_a_jwks_uri_are_fetched_kept_and_fetched_again_for_a_new_kid() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), |c| {
        c.outbound_allow = lanyard_core::outbound::loopback();
    })
    .await;
    let first = ClientKey::es256("2026-12");
    let published = Arc::new(Mutex::new(json!({"keys": [first.jwk()]})));
    let (jwks_uri, task) = serve_jwks(published.clone()).await;
    register(&server, "reports", None, Some(jwks_uri)).await;
    let now = || clock.now().as_secs();
    let r = grant(&server, &first.sign(&claims(&server, "reports", now()))).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The client rotates: a new key under a new kid, the old one gone. Within ten seconds of
    // the last fetch the new kid is not fetched for (no stampede on the client's server)...
    let second = ClientKey::eddsa("2027-01");
    *published.lock().unwrap() = json!({"keys": [second.jwk()]});
    refused(
        grant(&server, &second.sign(&claims(&server, "reports", now()))).await,
        "client authentication failed",
    )
    .await;
    // ...and after them it is, at once.
    clock.advance(Duration::from_secs(11));
    let r = grant(&server, &second.sign(&claims(&server, "reports", now()))).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The old key, kept five minutes at most in the cache, now refused: it was dropped with
    // the fetch.
    refused(
        grant(&server, &first.sign(&claims(&server, "reports", now()))).await,
        "client authentication failed",
    )
    .await;
    // The client's server is down: said so, as an authentication failure.
    task.abort();
    clock.advance(Duration::from_secs(301));
    refused(
        grant(&server, &second.sign(&claims(&server, "reports", now()))).await,
        "could not be fetched",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_jwks_uri_inside_the_network_is_not_called_unless_allowed() {
    // The tests' servers allow loopback (their apps listen there); this one allows nothing.
    let server = TestServer::start_with(
        crate::support::Db::Sqlite,
        crate::support::Store::Memory,
        |c| c.outbound_allow = Vec::new(),
    )
    .await;
    let key = ClientKey::es256("k1");
    let published = Arc::new(Mutex::new(json!({"keys": [key.jwk()]})));
    let (jwks_uri, task) = serve_jwks(published).await;
    register(&server, "reports", None, Some(jwks_uri)).await;
    let now = SystemClock.now().as_secs();
    refused(
        grant(&server, &key.sign(&claims(&server, "reports", now))).await,
        "outbound_allow",
    )
    .await;
    task.abort();
    server.stop().await;
}

#[tokio::test]
async fn registration_takes_public_keys_only() {
    let server = TestServer::start(crate::support::Db::Sqlite, crate::support::Store::Memory).await;
    let key = ClientKey::es256("k1");
    let settings = |jwks: Option<Value>, jwks_uri: Option<&str>, public: bool| ClientSettings {
        public,
        grant_types: vec![if public {
            GrantType::DeviceCode
        } else {
            GrantType::ClientCredentials
        }],
        token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks,
        jwks_uri: jwks_uri.map(str::to_owned),
        ..ClientSettings::new("svc")
    };
    let mut private = key.jwk();
    private["d"] = json!("c2VjcmV0");
    for (bad, field) in [
        (settings(None, None, false), "jwks"),
        (
            settings(
                Some(json!({"keys": [key.jwk()]})),
                Some("https://svc.example.com/jwks"),
                false,
            ),
            "jwks",
        ),
        (
            settings(Some(json!({"keys": [private]})), None, false),
            "jwks",
        ),
        (
            settings(
                Some(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})),
                None,
                false,
            ),
            "jwks",
        ),
        (settings(Some(json!({"keys": []})), None, false), "jwks"),
        (
            settings(Some(json!({"keys": [key.jwk()]})), None, true),
            "token_endpoint_auth_method",
        ),
        (
            settings(None, Some("http://svc.example.com/jwks"), false),
            "jwks_uri",
        ),
    ] {
        let e = add_client(
            &server.state.db,
            &server.state.server_keys,
            NewClient {
                settings: bad,
                secret: None,
            },
            SystemClock.now(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, lanyard_core::ServiceError::Field { field: f, .. } if *f == field),
            "{field}: {e:?}"
        );
    }
    // A secret is never made for it, nor taken.
    let (client, shown) = add_client(
        &server.state.db,
        &server.state.server_keys,
        NewClient {
            settings: settings(Some(json!({"keys": [key.jwk()]})), None, false),
            secret: None,
        },
        SystemClock.now(),
    )
    .await
    .unwrap();
    assert!(shown.is_none() && client.secret_hash.is_none());
    server.stop().await;
}
