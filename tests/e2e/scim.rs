//! SCIM 2.0 provisioning (issue 21): an independent conformance checker (scim2-tester, from
//! PyPI, pinned in tests/interop/scim/), then our own checks of what it does not cover:
//! every filter operator, paging, members by PATCH, versions, errors, who may call, and
//! `active: false` reaching the apps within a second.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::apps::{alice_at_each, mirrored, on_redis, refused_within_a_second};
use crate::support::{ClientSpec, Db, Store, TestServer, token_request};

const PASSWORD: &str = "correct horse battery staple";

/// A token for a provisioning client (`client_credentials`, scope `lanyard:scim`).
pub(crate) async fn scim_token(server: &TestServer) -> String {
    let hr = server
        .client(ClientSpec {
            id: "hr-system",
            public: false,
            grants: &["client_credentials"],
            scopes: &["lanyard:scim"],
            first_party: false,
        })
        .await;
    let r = token_request(
        server,
        &hr,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "lanyard:scim"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// `method` on `/scim/v2{path}`: the status, headers and JSON body.
pub(crate) async fn scim(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/scim/v2{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let r = request.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let text = r.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// The Python of the virtual environment tests/interop/scim/requirements.txt is installed
/// in: `LANYARD_SCIM_PYTHON` (`.ci/run` sets it), else `tests/interop/scim/.venv`.
fn scim_python() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::env::var("LANYARD_SCIM_PYTHON").unwrap_or_else(|_| {
        root.join("tests/interop/scim/.venv/bin/python")
            .display()
            .to_string()
    });
    let ok = std::process::Command::new(&python)
        .arg(root.join("tests/interop/scim/check.py"))
        .arg("--check-requirements")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the SCIM conformance test needs scim2-tester as tests/interop/scim/requirements.txt pins it, in a virtual environment: \
         python3 -m venv tests/interop/scim/.venv && tests/interop/scim/.venv/bin/pip install -r tests/interop/scim/requirements.txt \
         (or bash tests/interop/run; or set LANYARD_SCIM_PYTHON to a python that has them). Tried: {python}"
    );
    python
}

#[tokio::test]
async fn an_independent_scim_client_finds_the_service_conformant() {
    let python = scim_python();
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = scim_token(&server).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tokio::process::Command::new(python)
        .arg(root.join("tests/interop/scim/check.py"))
        .arg(server.url("/scim/v2"))
        .env("LANYARD_SCIM_TOKEN", &token)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scim2-tester:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really ran every kind of check on both resource types, and each passed.
    for kind in ["User", "Group"] {
        for check in [
            "object_creation",
            "object_query",
            "object_replacement",
            "object_deletion",
            "check_add_attribute",
            "check_remove_attribute",
            "check_replace_attribute",
        ] {
            assert!(
                report
                    .lines()
                    .any(|l| l.starts_with(&format!("ok   SUCCESS   {kind:<6} {check}:"))),
                "{kind} {check}: {report}"
            );
        }
    }
    let passed: usize = report
        .lines()
        .last()
        .and_then(|l| l.split(": ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 50, "{report}");
    server.stop().await;
}

/// Creates a SCIM User; its id.
async fn user(server: &TestServer, token: &str, body: Value) -> String {
    let (status, headers, created) = scim(server, token, Method::POST, "/Users", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        headers["location"].to_str().unwrap(),
        created["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(headers["content-type"], "application/scim+json");
    created["id"].as_str().unwrap().to_owned()
}

/// The userNames a filter finds.
async fn found(server: &TestServer, token: &str, filter: &str) -> Vec<String> {
    let path = format!(
        "/Users?filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let (status, _, list) = scim(server, token, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{filter}: {list}");
    assert_eq!(
        list["totalResults"].as_u64().unwrap() as usize,
        list["Resources"].as_array().unwrap().len()
    );
    list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn users_are_found_by_every_filter_operator_and_paged() {
    let server = TestServer::start(Db::Postgres, Store::Memory).await;
    let token = scim_token(&server).await;
    for (name, display, email, external, active) in [
        ("alice", "Alice Liddell", "alice@example.com", "hr-1", true),
        ("bob", "Bob Builder", "bob@builders.test", "hr-2", true),
        ("carol", "Carol Danvers", "CAROL@Example.com", "hr-3", false),
    ] {
        user(
            &server,
            &token,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name, "displayName": display, "externalId": external,
                "emails": [{"value": email, "type": "work", "primary": true}], "active": active}),
        )
        .await;
    }
    user(&server, &token, json!({"userName": "dave"})).await;
    for (filter, want) in [
        (r#"userName eq "ALICE""#, vec!["alice"]),
        (r#"userName ne "alice""#, vec!["bob", "carol", "dave"]),
        (r#"emails.value co "example.com""#, vec!["alice", "carol"]),
        (r#"emails[value ew ".test"]"#, vec!["bob"]),
        (r#"displayName sw "car""#, vec!["carol"]),
        (r#"externalId eq "hr-2""#, vec!["bob"]),
        (r#"externalId pr"#, vec!["alice", "bob", "carol"]),
        (r#"not (externalId pr)"#, vec!["dave"]),
        (r#"active eq false"#, vec!["carol"]),
        (
            r#"userName gt "bob" and userName le "dave""#,
            vec!["carol", "dave"],
        ),
        (
            r#"userName lt "b" or userName ge "d""#,
            vec!["alice", "dave"],
        ),
        (
            r#"meta.lastModified gt "2000-01-01T00:00:00Z""#,
            vec!["alice", "bob", "carol", "dave"],
        ),
        (r#"meta.created lt "2000-01-01T00:00:00Z""#, vec![]),
        (r#"userName eq "50%_off""#, vec![]),
    ] {
        assert_eq!(found(&server, &token, filter).await, want, "{filter}");
    }
    // Paging: 1-based startIndex, count, the total across pages.
    let (_, _, page) = scim(
        &server,
        &token,
        Method::GET,
        "/Users?startIndex=2&count=2",
        None,
    )
    .await;
    assert_eq!(page["totalResults"], 4);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let names: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"]);
    let (_, _, none) = scim(&server, &token, Method::GET, "/Users?count=0", None).await;
    assert_eq!(
        (
            none["totalResults"].as_u64(),
            none["Resources"].as_array().map(Vec::len)
        ),
        (Some(4), Some(0))
    );
    // The same search by POST .search, with attributes.
    let (status, _, searched) = scim(
        &server,
        &token,
        Method::POST,
        "/Users/.search",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName eq \"bob\"", "attributes": ["userName"]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(searched["Resources"][0]["userName"], "bob");
    assert!(searched["Resources"][0].get("emails").is_none());
    // Bad filters are SCIM errors naming what is wrong, never a 500.
    for filter in [
        r#"userName eq"#,
        r#"title eq "x""#,
        r#"active gt true"#,
        r#"meta.created gt "yesterday""#,
        r#"emails[type eq "work"]"#,
        r#"userName co 3"#,
        // PostgreSQL refuses a NUL in text: it must be a 400 here, never a 503 to retry.
        r#"userName eq "\u0000""#,
    ] {
        let path = format!(
            "/Users?filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let (status, _, error) = scim(&server, &token, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{filter}: {error}");
        assert_eq!(error["scimType"], "invalidFilter", "{filter}: {error}");
        assert_eq!(
            error["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    let (status, _, _) = scim(&server, &token, Method::GET, "/Users/%00", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn groups_take_members_by_patch_and_versions_guard_changes() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = scim_token(&server).await;
    let alice = user(&server, &token, json!({"userName": "alice"})).await;
    let bob = user(&server, &token, json!({"userName": "bob"})).await;
    let (status, _, group) = scim(
        &server,
        &token,
        Method::POST,
        "/Groups",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Finance", "externalId": "hr-g1", "members": [{"value": alice}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(group["members"][0]["value"], alice.as_str());
    let v1 = group["meta"]["version"].as_str().unwrap().to_owned();
    // Add bob, remove alice (as Entra ID and Okta send them), in one PATCH.
    let (status, headers, patched) = scim(
        &server,
        &token,
        Method::PATCH,
        &format!("/Groups/{id}"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": bob}]},
                {"op": "remove", "path": format!("members[value eq \"{alice}\"]")},
            ]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let members: Vec<&str> = patched["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [bob.as_str()]);
    let v2 = patched["meta"]["version"].as_str().unwrap().to_owned();
    assert_ne!(v1, v2, "a change of members moves the version");
    assert_eq!(headers["etag"].to_str().unwrap(), v2);
    // Bob sees the group; a filter on members finds it.
    let (_, _, bob_now) = scim(&server, &token, Method::GET, &format!("/Users/{bob}"), None).await;
    assert_eq!(bob_now["groups"][0]["display"], "Finance");
    let (_, _, by_member) = scim(
        &server,
        &token,
        Method::GET,
        &format!("/Groups?filter=members.value%20eq%20%22{bob}%22"),
        None,
    )
    .await;
    assert_eq!(by_member["totalResults"], 1);
    // Two PATCHes at once, each adding someone: both stay (each applies its own change, not
    // the whole list it read).
    let carol = user(&server, &token, json!({"userName": "carol"})).await;
    let dave = user(&server, &token, json!({"userName": "dave"})).await;
    let add = |who: String| {
        let (server, token, id) = (&server, &token, &id);
        async move {
            scim(
                server,
                token,
                Method::PATCH,
                &format!("/Groups/{id}"),
                Some(json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": who}]}]})),
            )
            .await
            .0
        }
    };
    let (a, b) = tokio::join!(add(carol.clone()), add(dave.clone()));
    assert_eq!((a, b), (StatusCode::OK, StatusCode::OK));
    let (_, _, now) = scim(&server, &token, Method::GET, &format!("/Groups/{id}"), None).await;
    let mut members: Vec<&str> = now["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    members.sort_unstable();
    let mut want = vec![bob.as_str(), carol.as_str(), dave.as_str()];
    want.sort_unstable();
    assert_eq!(members, want);
    let v2 = now["meta"]["version"].as_str().unwrap().to_owned();
    // A change made with an old version is refused (412); with the current one it goes.
    let rename = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Finance EU"}]});
    let stale = reqwest::Client::new()
        .patch(server.url(&format!("/scim/v2/Groups/{id}")))
        .bearer_auth(&token)
        .header("if-match", &v1)
        .json(&rename)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let fresh = reqwest::Client::new()
        .patch(server.url(&format!("/scim/v2/Groups/{id}")))
        .bearer_auth(&token)
        .header("if-match", &v2)
        .json(&rename)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    // Bad bodies are SCIM errors with the right scimType.
    for (method, path, body, status, scim_type) in [
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"displayName": "no name"}),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"userName": "alice"}),
            409,
            Some("uniqueness"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"userName": "x", "schemas": ["urn:nope"]}),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".to_owned(),
            json!({"userName": "x", "password": "password"}),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Groups".to_owned(),
            json!({"displayName": "G", "members": [{"value": "nobody"}]}),
            400,
            Some("invalidValue"),
        ),
        (
            Method::PATCH,
            format!("/Groups/{id}"),
            json!({"Operations": [{"op": "remove"}]}),
            400,
            Some("noTarget"),
        ),
        (
            Method::PATCH,
            format!("/Groups/{id}"),
            json!({"Operations": [{"op": "add", "path": "members[", "value": 1}]}),
            400,
            Some("invalidPath"),
        ),
        (
            Method::PUT,
            "/Users/nobody".to_owned(),
            json!({"userName": "x"}),
            404,
            None,
        ),
        (
            Method::DELETE,
            "/Groups/nobody".to_owned(),
            Value::Null,
            404,
            None,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (got, _, error) = scim(&server, &token, method.clone(), &path, body).await;
        assert_eq!(got.as_u16(), status, "{method} {path}: {error}");
        assert_eq!(error["status"], status.to_string());
        assert_eq!(
            error["scimType"].as_str(),
            scim_type,
            "{method} {path}: {error}"
        );
    }
    let not_json = reqwest::Client::new()
        .post(server.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let error: Value = not_json.json().await.unwrap();
    assert_eq!(error["scimType"], "invalidSyntax");
    // Deleted: gone, 204, then 404.
    let (status, _, _) = scim(
        &server,
        &token,
        Method::DELETE,
        &format!("/Groups/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = scim(&server, &token, Method::GET, &format!("/Groups/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn only_a_scim_token_may_provision() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let http = reqwest::Client::new();
    let bare = http.get(server.url("/scim/v2/Users")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        bare.headers()["www-authenticate"],
        "Bearer realm=\"lanyard\""
    );
    let forged = http
        .get(server.url("/scim/v2/Users"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["status"], "401");
    // The admin API's scope is not SCIM's.
    let admin = crate::admin::admin_token(&server).await;
    let r = http
        .get(server.url("/scim/v2/Users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("lanyard:scim"),
        "{:?}",
        r.headers()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_provisioned_person_signs_in_only_once_given_a_password_and_active_false_reaches_the_apps()
 {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let token = scim_token(&server).await;
    // Without a password nobody signs in as them, whatever they type.
    let id = user(
        &server,
        &token,
        json!({"userName": "alice", "displayName": "alice Example"}),
    )
    .await;
    let wiki = on_redis(&server, "wiki").await;
    let billing = on_redis(&server, "billing").await;
    let browser = crate::support::Browser::new();
    let page = browser
        .get(&crate::support::authorize_url(
            &server,
            &wiki.client,
            &[("scope", "openid")],
        ))
        .await
        .text()
        .await
        .unwrap();
    let refused = browser
        .sign_in(&server, &page, "alice", PASSWORD, false)
        .await;
    assert_eq!(
        refused.status(),
        StatusCode::OK,
        "the form again, with an error"
    );
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
    // Given one over SCIM, they sign in at both apps.
    let (status, _, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({"Operations": [{"op": "replace", "path": "password", "value": PASSWORD}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let tokens = alice_at_each(&server, &[&wiki, &billing], Some(&id)).await;
    // `active: false` (as Entra ID sends it: a string): both apps refuse her tokens within a
    // second.
    let before = (
        wiki.state.guard().mirror().status().last_event,
        billing.state.guard().mirror().status().last_event,
    );
    let since = Instant::now();
    let (status, _, disabled) = scim(
        &server,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(disabled["active"], false);
    mirrored(&wiki, before.0).await;
    mirrored(&billing, before.1).await;
    for (base, token) in &tokens {
        refused_within_a_second(base, token, since).await;
    }
    assert!(since.elapsed() < Duration::from_secs(1) + Duration::from_millis(500));
    // DELETE: gone; deleting twice is a 404.
    let (status, _, _) = scim(
        &server,
        &token,
        Method::DELETE,
        &format!("/Users/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = scim(
        &server,
        &token,
        Method::DELETE,
        &format!("/Users/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}
