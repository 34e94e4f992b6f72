//! Discovery and JWKS (OpenID Connect Discovery §3/§4, RFC 8414, RFC 7517).

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Db, Store, TestServer};

#[tokio::test]
async fn discovery_names_every_endpoint_under_the_exact_issuer() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], server.issuer.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
    ] {
        assert_eq!(doc[key], server.url(path), "{key}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"openid".into())
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange"
        ])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ])
    );
    assert_eq!(
        doc["response_modes_supported"],
        serde_json::json!(["query", "form_post"])
    );
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["prompt_values_supported"],
        serde_json::json!(["none", "login", "consent"]),
        "only what is honoured"
    );
    let oauth: Value = http
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(oauth, doc, "RFC 8414 metadata is the same document");
    server.stop().await;
}

#[tokio::test]
async fn jwks_publishes_public_rsa_keys_only() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let response = reqwest::get(server.url("/jwks")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], server.state.keys.signing_kid());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            key.get(private).is_none(),
            "{private} must not be published"
        );
    }
    let modulus = key["n"].as_str().unwrap();
    assert!(modulus.len() >= 342, "at least 2048 bits");
    server.stop().await;
}

#[tokio::test]
async fn keys_survive_a_restart_on_the_same_database() {
    let first = TestServer::start(Db::Sqlite, Store::Memory).await;
    let kid = first.state.keys.signing_kid().to_owned();
    let url = first.state.config.database_url.clone();
    let again = lanyard_idp::state::AppState::build(lanyard_core::config::Config {
        database_url: url,
        ..first.state.config.clone()
    })
    .await
    .unwrap();
    assert_eq!(
        again.keys.signing_kid(),
        kid,
        "the key is kept in the database, not remade"
    );
    first.stop().await;
}
