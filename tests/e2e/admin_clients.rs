//! `/admin/v1/clients` over HTTP: register, read, list, update, rotate the secret, delete.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin, admin_token, assert_api_error, assert_refused_everywhere};
use crate::support::{
    Db, Store, TestClient, TestServer, assert_oauth_error, offline_tokens, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// Registers a client through the API; returns it with the secret shown.
async fn register(server: &TestServer, token: &str, body: Value) -> TestClient {
    let registered = json_of(
        admin(server, token, Method::POST, "/clients", Some(body)).await,
        StatusCode::CREATED,
    )
    .await;
    let client = &registered["client"];
    TestClient {
        id: client["client_id"].as_str().unwrap().to_owned(),
        secret: registered["client_secret"].as_str().map(str::to_owned),
        redirect_uri: client["redirect_uris"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_clients_life_through_the_admin_api() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let server = TestServer::start(db, store).await;
        server.user("alice", PASSWORD).await;
        let token = admin_token(&server).await;
        let call = |method: Method, path: &'static str, body: Option<Value>| {
            let (server, token) = (&server, &token);
            async move { admin(server, token, method, path, body).await }
        };

        // Register: the secret is shown once.
        let registered = json_of(
            call(
                Method::POST,
                "/clients",
                Some(json!({
                    "client_id": "wiki",
                    "name": "The wiki",
                    "redirect_uris": ["https://wiki.example.com/callback"],
                    "scopes": ["openid", "profile", "offline_access"],
                })),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let client = &registered["client"];
        assert_eq!(client["client_id"], "wiki");
        assert_eq!(client["public"], false);
        assert_eq!(
            client["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        assert!(client.get("secret_hash").is_none());
        let secret = registered["client_secret"].as_str().unwrap().to_owned();
        let wiki = TestClient {
            id: "wiki".into(),
            secret: Some(secret.clone()),
            redirect_uri: "https://wiki.example.com/callback".into(),
        };
        let tokens = offline_tokens(&server, &wiki, "alice").await;
        let again = call(
            Method::POST,
            "/clients",
            Some(json!({ "client_id": "wiki", "redirect_uris": ["https://x.example/cb"] })),
        )
        .await;
        assert_api_error(again, StatusCode::CONFLICT, "conflict", None).await;

        // Read and list.
        let got = json_of(
            call(Method::GET, "/clients/wiki", None).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(&got, client);
        let listed = json_of(call(Method::GET, "/clients", None).await, StatusCode::OK).await;
        let ids: Vec<&str> = listed["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["ops", "wiki"]);
        let first = json_of(
            call(Method::GET, "/clients?limit=1", None).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(first["next"], "ops");

        // Update: lists replaced whole, lifetimes set and cleared; the new lifetime shows in
        // the next token.
        let updated = json_of(
            call(
                Method::PATCH,
                "/clients/wiki",
                Some(json!({
                    "redirect_uris": ["https://wiki.example.com/callback", "https://wiki.example.com/cb2"],
                    "access_token_lifetime": 120,
                    "backchannel_logout_uri": "https://wiki.example.com/logout",
                })),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(updated["redirect_uris"].as_array().unwrap().len(), 2);
        assert_eq!(updated["access_token_lifetime"], 120);
        assert_eq!(updated["name"], "The wiki", "left out, left alone");
        let refreshed: Value = crate::support::refresh(
            &server,
            &wiki,
            tokens["refresh_token"].as_str().unwrap(),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(refreshed["expires_in"], 120);
        let cleared = json_of(
            call(
                Method::PATCH,
                "/clients/wiki",
                Some(json!({ "access_token_lifetime": null, "backchannel_logout_uri": null })),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(cleared["access_token_lifetime"], Value::Null);
        assert_eq!(cleared["backchannel_logout_uri"], Value::Null);
        for (body, field) in [
            (
                json!({ "redirect_uris": ["http://wiki.example.com/cb"] }),
                "redirect_uris",
            ),
            (
                json!({ "redirect_uris": ["https://wiki.example.com/cb#x"] }),
                "redirect_uris",
            ),
            (json!({ "redirect_uris": [] }), "redirect_uris"),
            (json!({ "grant_types": [] }), "grant_types"),
            (json!({ "grant_types": ["password"] }), "grant_types[0]"),
            (
                json!({ "access_token_lifetime": 0 }),
                "access_token_lifetime",
            ),
            (
                json!({ "refresh_token_lifetime": 31_536_001 }),
                "refresh_token_lifetime",
            ),
            (json!({ "scopes": ["a b"] }), "scopes"),
            (json!({ "name": "" }), "name"),
            (json!({ "secret": "x" }), "secret"),
        ] {
            let r = call(Method::PATCH, "/clients/wiki", Some(body.clone())).await;
            assert_api_error(r, StatusCode::BAD_REQUEST, "invalid_request", Some(field)).await;
        }

        // Rotate the secret: the new one works, the old one no longer.
        let rotated = json_of(
            call(Method::POST, "/clients/wiki/secret", None).await,
            StatusCode::OK,
        )
        .await;
        let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
        assert_ne!(new_secret, secret);
        let cc = [("grant_type", "refresh_token"), ("refresh_token", "x")];
        let old = token_request(&server, &wiki, &cc).await;
        assert_oauth_error(old, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let wiki = TestClient {
            secret: Some(new_secret),
            ..wiki
        };
        let fresh = offline_tokens(&server, &wiki, "alice").await;

        // Delete: its tokens are refused, then it is gone.
        let r = call(Method::DELETE, "/clients/wiki", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = crate::revoke::userinfo(&server, fresh["access_token"].as_str().unwrap()).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = call(Method::GET, "/clients/wiki", None).await;
        assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;

        server.state.audit.flush().await;
        for action in [
            "client.create",
            "client.update",
            "client.secret",
            "client.delete",
        ] {
            let events = server.state.db.audit().by_action(action).await.unwrap();
            assert!(
                events
                    .iter()
                    .any(|e| e.actor == "admin:ops" && e.target.as_deref() == Some("wiki")),
                "{action}: {events:?}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn registration_refuses_what_it_must() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = admin_token(&server).await;
    for (body, field) in [
        (json!({ "client_id": "a b" }), "client_id"),
        (
            json!({ "client_id": "AAAAAAAAAAAAAAAAAAAAAA" }),
            "client_id",
        ),
        (
            json!({ "client_id": "spa", "public": true, "grant_types": ["client_credentials"] }),
            "grant_types",
        ),
        (json!({ "client_id": "app" }), "redirect_uris"),
        (
            json!({ "client_id": "app", "redirect_uris": ["javascript:alert(1)"] }),
            "redirect_uris",
        ),
        (
            json!({ "client_id": "app", "redirect_uris": ["https://app.example/cb"], "grant_types": ["implicit"] }),
            "grant_types[0]",
        ),
        (
            json!({ "client_id": "app", "redirect_uris": ["https://app.example/cb"], "secret": "mine" }),
            "secret",
        ),
        (
            json!({ "redirect_uris": ["https://app.example/cb"] }),
            "client_id",
        ),
    ] {
        let r = admin(
            &server,
            &token,
            Method::POST,
            "/clients",
            Some(body.clone()),
        )
        .await;
        assert_api_error(r, StatusCode::BAD_REQUEST, "invalid_request", Some(field)).await;
    }
    // A public client: no secret to show or rotate.
    let spa = json_of(
        admin(
            &server,
            &token,
            Method::POST,
            "/clients",
            Some(json!({ "client_id": "spa", "public": true, "redirect_uris": ["https://spa.example/cb"] })),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(spa.get("client_secret").is_none());
    let r = admin(&server, &token, Method::POST, "/clients/spa/secret", None).await;
    assert_api_error(r, StatusCode::CONFLICT, "conflict", None).await;
    for (method, path) in [
        (Method::GET, "/clients/nothing"),
        (Method::DELETE, "/clients/nothing"),
        (Method::POST, "/clients/nothing/secret"),
    ] {
        let r = admin(&server, &token, method, path, None).await;
        assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    let r = admin(
        &server,
        &token,
        Method::PATCH,
        "/clients/nothing",
        Some(json!({ "first_party": true })),
    )
    .await;
    assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;
    server.stop().await;
}

/// Deleting a client revokes its refresh tokens too (not only its access tokens).
#[tokio::test]
async fn a_deleted_clients_tokens_are_refused_everywhere() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let token = admin_token(&server).await;
    let body = json!({ "client_id": "mail", "redirect_uris": ["https://mail.example/cb"] });
    let mail = register(&server, &token, body.clone()).await;
    let tokens = offline_tokens(&server, &mail, "alice").await;
    let outcome = json_of(
        admin(&server, &token, Method::DELETE, "/clients/mail", None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(outcome["refresh_families_revoked"], 1);
    assert_eq!(outcome["entry"]["kind"], "client_id");
    // Registered again under the same id: the old tokens stay refused.
    let mail = register(&server, &token, body).await;
    assert_refused_everywhere(&server, &mail, &tokens).await;
    server.stop().await;
}

/// A client turned off (`disabled`, the console's "Turn off"): what it holds is revoked,
/// nobody can sign in to it and the token endpoint refuses it (`invalid_client`, told only
/// once it authenticated); turned on again, it works, and what it held stays revoked.
#[tokio::test]
async fn a_disabled_client_gets_nothing_until_it_is_enabled() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let token = admin_token(&server).await;
    let body = json!({ "client_id": "mail", "redirect_uris": ["https://mail.example/cb"] });
    let mail = register(&server, &token, body).await;
    let tokens = offline_tokens(&server, &mail, "alice").await;
    let patch = |disabled: bool| {
        let (server, token) = (&server, &token);
        async move {
            let body = json!({ "disabled": disabled });
            admin(server, token, Method::PATCH, "/clients/mail", Some(body)).await
        }
    };
    let changed = json_of(patch(true).await, StatusCode::OK).await;
    assert_eq!(changed["disabled"], true, "{changed}");

    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        crate::admin::userinfo(&server, access).await,
        StatusCode::UNAUTHORIZED
    );
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let r = token_request(&server, &mail, &refresh).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "this client is disabled");
    // Its right secret is not counted as a guess (no brute-force alert for a retrying job).
    let secret_key = lanyard_core::lockout::Key::ClientSecret("mail".into());
    let counted = || async {
        lanyard_core::lockout::status(&server.state, &secret_key)
            .await
            .unwrap()
            .0
    };
    assert_eq!(counted().await, 0);
    // A wrong secret learns nothing about it, and is counted.
    let wrong = TestClient {
        secret: Some("not the secret at all, but long enough".into()),
        ..mail.clone()
    };
    let r = token_request(&server, &wrong, &refresh).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_description"], "client authentication failed");
    assert_eq!(counted().await, 1);
    // Sign-in to it ends on a page saying so.
    let url = crate::support::authorize_url(&server, &mail, &[]);
    let r = crate::support::Browser::new().get(&url).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("This application is turned off")
    );

    // On again: new tokens, and the old ones stay refused.
    let changed = json_of(patch(false).await, StatusCode::OK).await;
    assert_eq!(changed["disabled"], false);
    let r = token_request(&server, &mail, &refresh).await;
    assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let fresh = offline_tokens(&server, &mail, "alice").await;
    assert!(fresh["access_token"].is_string());
    server.stop().await;
}
