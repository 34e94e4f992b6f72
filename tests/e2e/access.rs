//! Groups and app roles (issue 21): in tokens for each client setting, taken away within a
//! second at the apps, 403 (never 401) for a good token without the role, and the admin API
//! that manages them.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin, admin_token, audit_events};
use crate::apps::{App, mirrored, on_redis};
use crate::support::{
    Browser, Db, Store, TestServer, assert_realm_challenge, code_flow, decode_jwt,
};
use lanyard_store::{Clock, ManualClock};

const PASSWORD: &str = "correct horse battery staple";

/// `method` on the admin API, expecting `status`; the JSON body.
async fn call(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let r = admin(server, token, method.clone(), path, body).await;
    let got = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Signs `username` in at `app` with `scope`: the token response.
async fn tokens_at(server: &TestServer, app: &App, username: &str, scope: &str) -> Value {
    code_flow(
        server,
        &Browser::new(),
        &app.client,
        scope,
        username,
        PASSWORD,
    )
    .await
}

/// The claims of the token response's access token and ID token.
fn claims(tokens: &Value) -> (Value, Value) {
    let (_, access) = decode_jwt(tokens["access_token"].as_str().unwrap());
    let (_, id) = decode_jwt(tokens["id_token"].as_str().unwrap());
    (access, id)
}

async fn get_with(url: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Finance (alice) holds `billing:admin` at billing through the group; bob holds nothing.
async fn finance_with_billing_admin(server: &TestServer, admin_token: &str) -> String {
    let finance = call(
        server,
        admin_token,
        Method::POST,
        "/groups",
        Some(json!({ "name": "Finance", "description": "Pays the bills" })),
        StatusCode::CREATED,
    )
    .await;
    let group = finance["id"].as_str().unwrap().to_owned();
    let alice = lanyard_core::users::by_username(&server.state, "alice")
        .await
        .unwrap();
    let added = call(
        server,
        admin_token,
        Method::PUT,
        &format!("/groups/{group}/members/{}", alice.sub),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(added["added"], true);
    call(
        server,
        admin_token,
        Method::POST,
        "/clients/billing/roles",
        Some(json!({ "name": "billing:admin", "description": "Approves invoices" })),
        StatusCode::CREATED,
    )
    .await;
    call(
        server,
        admin_token,
        Method::PUT,
        &format!("/clients/billing/roles/billing:admin/groups/{group}"),
        None,
        StatusCode::OK,
    )
    .await;
    group
}

#[tokio::test]
async fn groups_and_roles_travel_in_tokens_as_each_client_chooses() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    server.user("bob", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    let token = admin_token(&server).await;
    finance_with_billing_admin(&server, &token).await;

    // At billing: the role of billing, and with the `groups` scope the group, in the access
    // token; the group in the ID token and at userinfo.
    let t = tokens_at(&server, &billing, "alice", "openid profile groups").await;
    let (access, id) = claims(&t);
    assert_eq!(access["roles"], json!(["billing:admin"]));
    assert_eq!(access["groups"], json!(["Finance"]));
    assert_eq!(id["groups"], json!(["Finance"]));
    assert!(id.get("roles").is_none(), "roles are for APIs: {id}");
    let info: Value = get_with(
        &server.url("/userinfo"),
        t["access_token"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(info["groups"], json!(["Finance"]));
    // Roles come by default, without any scope; groups only with the scope.
    let plain = tokens_at(&server, &billing, "alice", "openid").await;
    let (access, id) = claims(&plain);
    assert_eq!(access["roles"], json!(["billing:admin"]));
    assert!(access.get("groups").is_none() && id.get("groups").is_none());
    // A token for the wiki carries no role of billing.
    let (access, _) = claims(&tokens_at(&server, &wiki, "alice", "openid groups").await);
    assert!(access.get("roles").is_none(), "{access}");
    assert_eq!(access["groups"], json!(["Finance"]));
    // Bob holds nothing.
    let (access, _) = claims(&tokens_at(&server, &billing, "bob", "openid groups").await);
    assert!(access.get("roles").is_none() && access.get("groups").is_none());

    // An app that wants neither claim says so.
    call(
        &server,
        &token,
        Method::PATCH,
        "/clients/billing",
        Some(json!({ "roles_claim": false, "groups_claim": false })),
        StatusCode::OK,
    )
    .await;
    let t = tokens_at(&server, &billing, "alice", "openid groups").await;
    let (access, id) = claims(&t);
    assert!(access.get("roles").is_none() && access.get("groups").is_none());
    assert!(id.get("groups").is_none(), "{id}");
    let info: Value = get_with(
        &server.url("/userinfo"),
        t["access_token"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(info.get("groups").is_none(), "{info}");
    let discovery: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (key, value) in [
        ("scopes_supported", "groups"),
        ("claims_supported", "roles"),
    ] {
        assert!(
            discovery[key].as_array().unwrap().contains(&json!(value)),
            "{key}"
        );
    }
    server.stop().await;
}

/// Waits for the app's API at `path` to refuse `token` with 401, up to a second after
/// `since` (the revocation reaches the app by push).
async fn refused_within_a_second(app: &App, path: &str, token: &str, since: Instant) -> String {
    loop {
        let r = get_with(&format!("{}{path}", app.base), token).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            return assert_realm_challenge(
                &r,
                &app.client.id,
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
            );
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            since.elapsed() < Duration::from_secs(1),
            "{path} still takes the token a second after the change"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_permission_taken_away_is_refused_within_a_second_then_403() {
    // The server's clock moves only when the test says: a token made after a change must be
    // later than it by the watermark's whole second (see `lanyard_store::revocation`).
    let clock = ManualClock::new(lanyard_store::SystemClock.now());
    let server = TestServer::start_at(Db::Postgres, Store::Redis, clock.clone()).await;
    server.user("alice", PASSWORD).await;
    let bob = server.user("bob", PASSWORD).await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    let token = admin_token(&server).await;
    let group = finance_with_billing_admin(&server, &token).await;

    let old = tokens_at(&server, &billing, "alice", "openid").await;
    let old = old["access_token"].as_str().unwrap();
    let r = get_with(&format!("{}/api/invoices", billing.base), old).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["invoices"][0].as_str().unwrap().starts_with("INV-"));

    // Bob, with a good token and no role: 403 naming the role, never 401.
    let bobs = tokens_at(&server, &billing, "bob", "openid").await;
    let r = get_with(
        &format!("{}/api/invoices", billing.base),
        bobs["access_token"].as_str().unwrap(),
    )
    .await;
    let challenge = assert_realm_challenge(
        &r,
        "billing",
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
    );
    assert!(challenge.contains("billing:admin"), "{challenge}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["missing_roles"], json!(["billing:admin"]));

    // The role taken from the group: alice's token is refused at billing within a second,
    // as revoked.
    let before = billing.state.guard().mirror().status().last_event;
    let since = Instant::now();
    let withdrawn = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/clients/billing/roles/billing:admin/groups/{group}"),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(withdrawn["people"], 1);
    assert_eq!(withdrawn["clients"], json!(["billing"]));
    mirrored(&billing, before).await;
    let challenge = refused_within_a_second(&billing, "/api/invoices", old, since).await;
    assert!(challenge.contains("revoked"), "{challenge}");
    // Her next token, after the change, lacks the role: 403, and her sign-in stays good.
    clock.advance(Duration::from_secs(2));
    let new = tokens_at(&server, &billing, "alice", "openid").await;
    let new = new["access_token"].as_str().unwrap();
    let r = get_with(&format!("{}/api/invoices", billing.base), new).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        get_with(&format!("{}/api/me", billing.base), new)
            .await
            .status(),
        StatusCode::OK
    );

    // A membership taken away: bob, in Finance with the `groups` scope at the wiki, is
    // refused there within a second once he leaves it.
    call(
        &server,
        &token,
        Method::PUT,
        &format!("/groups/{group}/members/{}", bob.sub),
        None,
        StatusCode::OK,
    )
    .await;
    let t = tokens_at(&server, &wiki, "bob", "openid groups").await;
    let at_wiki = t["access_token"].as_str().unwrap();
    assert_eq!(claims(&t).0["groups"], json!(["Finance"]));
    assert_eq!(
        get_with(&format!("{}/api/me", wiki.base), at_wiki)
            .await
            .status(),
        StatusCode::OK
    );
    let before = wiki.state.guard().mirror().status().last_event;
    let since = Instant::now();
    let withdrawn = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/groups/{group}/members/{}", bob.sub),
        None,
        StatusCode::OK,
    )
    .await;
    assert!(
        withdrawn["clients"]
            .as_array()
            .unwrap()
            .contains(&json!("wiki")),
        "{withdrawn}"
    );
    mirrored(&wiki, before).await;
    refused_within_a_second(&wiki, "/api/me", at_wiki, since).await;
    let audit = audit_events(&server, &token, "role.revoke", 1).await;
    assert_eq!(audit[0]["actor"], "admin:ops");
    assert_eq!(audit[0]["outcome"], "success");
    let audit = audit_events(&server, &token, "group.members", 3).await;
    assert!(
        audit[0]["detail"]["removed"] == json!([bob.sub]),
        "{:?}",
        audit[0]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_admin_api_manages_groups_and_roles_and_refuses_bad_input() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let token = admin_token(&server).await;
    lanyard_core::clients::add_client(
        &server.state.db,
        &server.state.server_keys,
        lanyard_core::clients::NewClient {
            settings: lanyard_core::model::ClientSettings {
                redirect_uris: vec!["https://billing.example.com/cb".into()],
                ..lanyard_core::model::ClientSettings::new("billing")
            },
            secret: None,
        },
        lanyard_store::SystemClock.now(),
    )
    .await
    .unwrap();
    let group = finance_with_billing_admin(&server, &token).await;
    call(
        &server,
        &token,
        Method::PUT,
        &format!("/clients/billing/roles/billing:admin/users/{}", alice.sub),
        None,
        StatusCode::OK,
    )
    .await;

    // What a person holds, and how.
    let access = call(
        &server,
        &token,
        Method::GET,
        &format!("/users/{}/access", alice.sub),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(access["groups"][0]["name"], "Finance");
    assert_eq!(
        access["roles"],
        json!([{ "client_id": "billing", "role": "billing:admin", "via": ["Finance"], "direct": true }])
    );
    let roles = call(
        &server,
        &token,
        Method::GET,
        "/clients/billing/roles",
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(roles["roles"][0]["groups"], json!([group]));
    assert_eq!(roles["roles"][0]["users"], json!([alice.sub]));
    let members = call(
        &server,
        &token,
        Method::GET,
        &format!("/groups/{group}/members"),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(members["members"][0]["username"], "alice");
    let page = call(
        &server,
        &token,
        Method::GET,
        "/groups?search=fin",
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["groups"][0]["id"], group.as_str());

    // Taken from her directly, she keeps it through Finance: nothing is revoked.
    let withdrawn = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/clients/billing/roles/billing:admin/users/{}", alice.sub),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(withdrawn["people"], 0);

    // Bad input: the RFC-shaped errors, never a 500.
    for (method, path, body, status, field) in [
        (
            Method::POST,
            "/groups",
            json!({ "name": " padded" }),
            StatusCode::BAD_REQUEST,
            Some("name"),
        ),
        (
            Method::POST,
            "/groups",
            json!({ "name": "finance" }),
            StatusCode::CONFLICT,
            None,
        ),
        (
            Method::POST,
            "/groups",
            json!({ "name": "x", "colour": "red" }),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            Method::POST,
            "/clients/billing/roles",
            json!({ "name": "has space" }),
            StatusCode::BAD_REQUEST,
            Some("role"),
        ),
        (
            Method::POST,
            "/clients/billing/roles",
            json!({ "name": "billing:admin" }),
            StatusCode::CONFLICT,
            None,
        ),
        (
            Method::POST,
            "/clients/nobody/roles",
            json!({ "name": "r" }),
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let r = admin(&server, &token, method.clone(), path, Some(body.clone())).await;
        assert_eq!(r.status(), status, "{method} {path} {body}");
        let answer: Value = r.json().await.unwrap();
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{answer}");
        }
    }
    for (method, path) in [
        (Method::GET, "/groups/nope".to_owned()),
        (Method::PUT, format!("/groups/{group}/members/nobody")),
        (Method::DELETE, format!("/groups/{group}/members/nobody")),
        (
            Method::PUT,
            "/clients/billing/roles/nope/groups/x".to_owned(),
        ),
        (
            Method::PUT,
            "/clients/billing/roles/billing:admin/groups/nope".to_owned(),
        ),
        (
            Method::DELETE,
            format!("/clients/billing/roles/billing:admin/users/{}", alice.sub),
        ),
        (Method::GET, "/users/nobody/access".to_owned()),
    ] {
        let r = admin(&server, &token, method.clone(), &path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    // Renamed: the new name in the next token; deleted: gone, with its grants.
    let renamed = call(
        &server,
        &token,
        Method::PATCH,
        &format!("/groups/{group}"),
        Some(json!({ "name": "Finance EU", "description": null })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(renamed["name"], "Finance EU");
    assert!(renamed["description"].is_null());
    call(
        &server,
        &token,
        Method::DELETE,
        &format!("/groups/{group}"),
        None,
        StatusCode::OK,
    )
    .await;
    let access = call(
        &server,
        &token,
        Method::GET,
        &format!("/users/{}/access", alice.sub),
        None,
        StatusCode::OK,
    )
    .await;
    assert_eq!(access, json!({ "groups": [], "roles": [] }));
    // The OpenAPI document describes the new routes.
    let doc: Value = reqwest::get(server.url("/admin/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/groups",
        "/groups/{id}/members/{sub}",
        "/clients/{client_id}/roles/{role}/users/{sub}",
        "/users/{sub}/access",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    server.stop().await;
}

/// Issue 23: the admin API makes and unmakes operators (the role `operator` of the built-in
/// `lanyard-console` client, made when first needed), lists them, and a person's access shows
/// the role; an unknown person is a 404.
#[tokio::test]
async fn operators_are_made_and_unmade_through_the_admin_api() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let olga = server.user("olga", "correct horse battery staple").await;
    let token = crate::admin::admin_token(&server).await;
    let call = |method: reqwest::Method, path: String| {
        let (server, token) = (&server, &token);
        async move { crate::admin::admin(server, token, method, &path, None).await }
    };
    let listed: serde_json::Value = call(reqwest::Method::GET, "/operators".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, serde_json::json!({ "people": [], "groups": [] }));
    let r = call(reqwest::Method::PUT, format!("/operators/{}", olga.sub)).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["added"], true);
    let again: serde_json::Value = call(reqwest::Method::PUT, format!("/operators/{}", olga.sub))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["added"], false);
    let listed: serde_json::Value = call(reqwest::Method::GET, "/operators".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["people"][0]["username"], "olga", "{listed}");
    assert!(
        lanyard_core::operators::is_operator(&server.state, &olga.sub)
            .await
            .unwrap()
    );
    let access = call(reqwest::Method::GET, format!("/users/{}/access", olga.sub))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        access.contains("lanyard-console") && access.contains("operator"),
        "{access}"
    );
    let r = call(reqwest::Method::PUT, "/operators/no-such-sub".into()).await;
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
    let r = call(reqwest::Method::DELETE, format!("/operators/{}", olga.sub)).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert!(
        !lanyard_core::operators::is_operator(&server.state, &olga.sub)
            .await
            .unwrap()
    );
    let r = call(reqwest::Method::DELETE, format!("/operators/{}", olga.sub)).await;
    assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
}
