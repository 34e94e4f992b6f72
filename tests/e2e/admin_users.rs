//! `/admin/v1/users` over HTTP: the lifecycle of a user, search and pages, and every refusal.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin, admin_token, assert_api_error, assert_refused_everywhere};
use crate::support::{Browser, ClientSpec, Db, Store, TestClient, TestServer, authorize_url};

const PASSWORD: &str = "correct horse battery staple";

/// Whether `username` can sign in with `password` at `client` right now.
async fn signs_in(
    server: &TestServer,
    client: &TestClient,
    username: &str,
    password: &str,
) -> bool {
    let browser = Browser::new();
    let (challenge, _) = crate::support::pkce();
    let page = browser
        .get(&authorize_url(
            server,
            client,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    let answer = browser
        .sign_in(server, &page, username, password, false)
        .await;
    answer.status() == StatusCode::SEE_OTHER
}

/// Alice's tokens (with a refresh token) at `client`.
async fn alice_tokens(server: &TestServer, client: &TestClient, password: &str) -> Value {
    crate::support::code_flow(
        server,
        &Browser::new(),
        client,
        "openid offline_access",
        "alice",
        password,
    )
    .await
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_users_life_through_the_admin_api() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let server = TestServer::start(db, store).await;
        let wiki = server.client(ClientSpec::web("wiki")).await;
        let token = admin_token(&server).await;
        let call = |method: Method, path: String, body: Option<Value>| {
            let (server, token) = (&server, &token);
            async move { admin(server, token, method, &path, body).await }
        };

        // Create.
        let created = json_of(
            call(
                Method::POST,
                "/users".into(),
                Some(json!({
                    "username": "alice",
                    "password": PASSWORD,
                    "email": "alice@example.com",
                    "display_name": "Alice Liddell",
                })),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let sub = created["sub"].as_str().unwrap().to_owned();
        assert_eq!(created["username"], "alice");
        assert_eq!(created["disabled"], false);
        assert!(created.get("password_hash").is_none() && created.get("password").is_none());
        let again = call(
            Method::POST,
            "/users".into(),
            Some(json!({ "username": "ALICE", "password": PASSWORD })),
        )
        .await;
        assert_api_error(again, StatusCode::CONFLICT, "conflict", None).await;
        assert!(signs_in(&server, &wiki, "alice", PASSWORD).await);

        // Read.
        let got = json_of(
            call(Method::GET, format!("/users/{sub}"), None).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(got, created);

        // Update: a field left out stays, null clears.
        let updated = json_of(
            call(
                Method::PATCH,
                format!("/users/{sub}"),
                Some(json!({ "email": "alice@wonderland.example" })),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(updated["email"], "alice@wonderland.example");
        assert_eq!(updated["display_name"], "Alice Liddell");
        let cleared = json_of(
            call(
                Method::PATCH,
                format!("/users/{sub}"),
                Some(json!({ "display_name": null })),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(cleared["display_name"], Value::Null);
        assert_eq!(cleared["email"], "alice@wonderland.example");
        let bad = call(
            Method::PATCH,
            format!("/users/{sub}"),
            Some(json!({ "email": "not an address" })),
        )
        .await;
        assert_api_error(
            bad,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("email"),
        )
        .await;

        // Password: the new one works, the old one no longer.
        let r = call(
            Method::PUT,
            format!("/users/{sub}/password"),
            Some(json!({ "password": "a brand new passphrase" })),
        )
        .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert!(!signs_in(&server, &wiki, "alice", PASSWORD).await);
        assert!(signs_in(&server, &wiki, "alice", "a brand new passphrase").await);
        let r = call(
            Method::PUT,
            format!("/users/{sub}/password"),
            Some(json!({ "password": "short" })),
        )
        .await;
        assert_api_error(
            r,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("password"),
        )
        .await;

        // Disable: everything of hers is refused at once, and she cannot sign in.
        let tokens = alice_tokens(&server, &wiki, "a brand new passphrase").await;
        let disabled = json_of(
            call(Method::POST, format!("/users/{sub}/disable"), None).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(disabled["user"]["disabled"], true);
        assert_eq!(disabled["revoked"]["entry"]["kind"], "sub");
        assert_refused_everywhere(&server, &wiki, &tokens).await;
        assert!(!signs_in(&server, &wiki, "alice", "a brand new passphrase").await);

        // Enable: she signs in again.
        let enabled = json_of(
            call(Method::POST, format!("/users/{sub}/enable"), None).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(enabled["disabled"], false);
        assert!(signs_in(&server, &wiki, "alice", "a brand new passphrase").await);

        // Delete: gone, and so is everything of hers.
        let tokens = alice_tokens(&server, &wiki, "a brand new passphrase").await;
        let r = call(Method::DELETE, format!("/users/{sub}"), None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_refused_everywhere(&server, &wiki, &tokens).await;
        let r = call(Method::GET, format!("/users/{sub}"), None).await;
        assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;

        // Each change is in the audit trail, by the admin client.
        server.state.audit.flush().await;
        for action in [
            "user.create",
            "user.update",
            "user.password",
            "user.disable",
            "user.enable",
            "user.delete",
        ] {
            let events = server.state.db.audit().by_action(action).await.unwrap();
            assert!(
                events.iter().any(|e| e.actor == "admin:ops"
                    && e.target.as_deref() == Some(sub.as_str())
                    || e.target.as_deref() == Some("alice")),
                "{action}: {events:?}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn users_are_listed_a_page_at_a_time_and_found_by_name_or_email() {
    let server = TestServer::start(Db::Postgres, Store::Memory).await;
    for name in ["carol", "alice", "bob", "dave_100"] {
        server.user(name, PASSWORD).await;
    }
    let token = admin_token(&server).await;
    let list = |query: &'static str| {
        let (server, token) = (&server, &token);
        async move { admin(server, token, Method::GET, &format!("/users{query}"), None).await }
    };
    let names = |page: &Value| -> Vec<String> {
        page["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect()
    };

    let all = json_of(list("").await, StatusCode::OK).await;
    assert_eq!(names(&all), ["alice", "bob", "carol", "dave_100"]);
    assert!(all.get("next").is_none());

    let first = json_of(list("?limit=2").await, StatusCode::OK).await;
    assert_eq!(names(&first), ["alice", "bob"]);
    assert_eq!(first["next"], "bob");
    let second = json_of(
        admin(
            &server,
            &token,
            Method::GET,
            "/users?limit=2&after=bob",
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&second), ["carol", "dave_100"]);

    // By username or email, case-insensitively; LIKE's wildcards are taken literally.
    let found = json_of(list("?search=CAR").await, StatusCode::OK).await;
    assert_eq!(names(&found), ["carol"]);
    let found = json_of(list("?search=bob%40example").await, StatusCode::OK).await;
    assert_eq!(names(&found), ["bob"]);
    let found = json_of(list("?search=e_1").await, StatusCode::OK).await;
    assert_eq!(names(&found), ["dave_100"]);
    let found = json_of(list("?search=%25").await, StatusCode::OK).await;
    assert_eq!(names(&found), Vec::<String>::new());
    let found = json_of(list("?search=a_i").await, StatusCode::OK).await;
    assert_eq!(names(&found), Vec::<String>::new(), "_ is not a wildcard");

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=1&limit=2", "limit"),
    ] {
        assert_api_error(
            list(query).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some(field),
        )
        .await;
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_users_are_404_and_bad_bodies_400() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = admin_token(&server).await;
    for (method, path, body) in [
        (Method::GET, "/users/nobody", None),
        (
            Method::PATCH,
            "/users/nobody",
            Some(json!({ "email": "a@b" })),
        ),
        (
            Method::PUT,
            "/users/nobody/password",
            Some(json!({ "password": PASSWORD })),
        ),
        (Method::POST, "/users/nobody/disable", None),
        (Method::POST, "/users/nobody/enable", None),
        (Method::DELETE, "/users/nobody", None),
    ] {
        let r = admin(&server, &token, method.clone(), path, body).await;
        assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    for (body, field) in [
        (json!({ "password": PASSWORD }), "username"),
        (json!({ "username": "erin" }), "password"),
        (
            json!({ "username": "erin", "password": "short" }),
            "password",
        ),
        (
            json!({ "username": " erin", "password": PASSWORD }),
            "username",
        ),
        (
            json!({ "username": "erin", "password": PASSWORD, "email": "erin" }),
            "email",
        ),
        (
            json!({ "username": "erin", "password": PASSWORD, "role": "admin" }),
            "role",
        ),
    ] {
        let r = admin(&server, &token, Method::POST, "/users", Some(body.clone())).await;
        assert_api_error(r, StatusCode::BAD_REQUEST, "invalid_request", Some(field)).await;
    }
    let r = admin(&server, &token, Method::GET, "/users", None).await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["users"], json!([]), "nothing half-created");
    server.stop().await;
}

#[tokio::test]
async fn a_users_sessions_are_listed_and_ended_one_or_all() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    server.user("bob", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let token = admin_token(&server).await;
    let sid_of = |tokens: &Value| {
        let (_, claims) = crate::support::decode_jwt(tokens["access_token"].as_str().unwrap());
        claims["sid"].as_str().unwrap().to_owned()
    };
    let laptop = alice_tokens(&server, &wiki, PASSWORD).await;
    let phone = alice_tokens(&server, &wiki, PASSWORD).await;
    let bobs =
        crate::support::code_flow(&server, &Browser::new(), &wiki, "openid", "bob", PASSWORD).await;

    let path = format!("/users/{}/sessions", alice.sub);
    let listed = json_of(
        admin(&server, &token, Method::GET, &path, None).await,
        StatusCode::OK,
    )
    .await;
    let sessions = listed["sessions"].as_array().unwrap();
    let sids: Vec<&str> = sessions
        .iter()
        .map(|s| s["sid"].as_str().unwrap())
        .collect();
    assert_eq!(sids, [sid_of(&laptop), sid_of(&phone)], "oldest first");
    for s in sessions {
        assert_eq!(s["sub"], alice.sub.as_str());
        assert_eq!(s["clients"], json!(["wiki"]));
        assert_eq!(s["remember_me"], false);
        assert!(s["idle_deadline"].as_i64().unwrap() > s["created_at"].as_i64().unwrap());
    }

    // One: the laptop's tokens go, the phone's stay.
    let one = format!("{path}/{}", sid_of(&laptop));
    let ended = json_of(
        admin(&server, &token, Method::DELETE, &one, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ended["sessions_ended"], json!([sid_of(&laptop)]));
    assert_refused_everywhere(&server, &wiki, &laptop).await;
    let userinfo = |t: &Value| {
        let t = t["access_token"].as_str().unwrap().to_owned();
        let server = &server;
        async move { crate::revoke::userinfo(server, &t).await.status() }
    };
    assert_eq!(userinfo(&phone).await, StatusCode::OK);
    let again = admin(&server, &token, Method::DELETE, &one, None).await;
    assert_api_error(again, StatusCode::NOT_FOUND, "not_found", None).await;

    // Another user's session is not reachable through alice.
    let bobs_sid = format!("{path}/{}", sid_of(&bobs));
    let r = admin(&server, &token, Method::DELETE, &bobs_sid, None).await;
    assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;
    assert_eq!(userinfo(&bobs).await, StatusCode::OK);

    // All.
    let all = json_of(
        admin(&server, &token, Method::DELETE, &path, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all["sessions_ended"], json!([sid_of(&phone)]));
    assert_refused_everywhere(&server, &wiki, &phone).await;
    let listed = json_of(
        admin(&server, &token, Method::GET, &path, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["sessions"], json!([]));
    assert_eq!(userinfo(&bobs).await, StatusCode::OK, "bob is untouched");

    let r = admin(&server, &token, Method::GET, "/users/nobody/sessions", None).await;
    assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;

    server.stop().await;
}

/// A number parameter sent without a value (`limit=`) is a 400 naming it, and a body that is
/// a JSON array rather than an object is a 400 (serde would read a struct from an array).
#[tokio::test]
async fn an_empty_number_and_an_array_body_are_refused() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = crate::admin::admin_token(&server).await;
    let r = crate::admin::admin(&server, &token, reqwest::Method::GET, "/users?limit=", None).await;
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "limit", "{body}");
    let alice = server.user("alice", "correct horse battery staple").await;
    let path = format!("/users/{}", alice.sub);
    let r = crate::admin::admin(
        &server,
        &token,
        reqwest::Method::PATCH,
        &path,
        Some(serde_json::json!([null, null])),
    )
    .await;
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["field"], "body", "{body}");
}
