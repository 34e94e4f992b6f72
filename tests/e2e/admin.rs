//! The admin API over HTTP: who may call it (RFC 6750), revocations by each kind of target
//! and where they take effect, bad input, and the OpenAPI document.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::revoke::field;
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, assert_bearer_challenge, client_post,
    code_flow, refresh, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// Registers the operators' client: `ops`, client_credentials, scope `lanyard:admin`.
pub(crate) async fn ops_client(server: &TestServer) -> TestClient {
    server
        .client(ClientSpec {
            id: "ops",
            public: false,
            grants: &["client_credentials"],
            scopes: &["lanyard:admin"],
            first_party: false,
        })
        .await
}

/// A token for the operators' client (registered here).
pub(crate) async fn admin_token(server: &TestServer) -> String {
    let ops = ops_client(server).await;
    client_token(server, &ops, "lanyard:admin").await
}

async fn client_token(server: &TestServer, client: &TestClient, scope: &str) -> String {
    let r = token_request(
        server,
        client,
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls the admin API: `method` on `/admin/v1{path}` with a JSON body when given.
pub(crate) async fn admin(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/admin/v1{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The audit events with `action`, newest first, once there are `count` of them (waiting up
/// to 10 s: the trail is written in batches).
pub(crate) async fn audit_events(
    server: &TestServer,
    token: &str,
    action: &str,
    count: usize,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = admin(
            server,
            token,
            reqwest::Method::GET,
            &format!("/audit?action={action}"),
            None,
        )
        .await;
        let page: Value = r.json().await.unwrap();
        let events = page["events"].as_array().unwrap().clone();
        if events.len() >= count || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn revoke(server: &TestServer, token: &str, body: Value) -> reqwest::Response {
    admin(
        server,
        token,
        reqwest::Method::POST,
        "/revocations",
        Some(body),
    )
    .await
}

/// Asserts an admin API error: status, `error`, and the field it names (checked when given).
pub(crate) async fn assert_api_error(
    response: reqwest::Response,
    status: StatusCode,
    error: &str,
    field: Option<&str>,
) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
    }
    body
}

pub(crate) async fn userinfo(server: &TestServer, token: &str) -> StatusCode {
    crate::revoke::userinfo(server, token).await.status()
}

async fn active(server: &TestServer, client: &TestClient, token: &str) -> bool {
    let r = client_post(server, "/introspect", client, &[("token", token)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

/// Signs alice in at `client` and returns the token response.
async fn alice_tokens(server: &TestServer, client: &TestClient) -> Value {
    code_flow(
        server,
        &Browser::new(),
        client,
        "openid offline_access",
        "alice",
        PASSWORD,
    )
    .await
}

/// The access and refresh tokens are both refused: userinfo 401, introspection inactive,
/// refresh `invalid_grant`.
pub(crate) async fn assert_refused_everywhere(
    server: &TestServer,
    client: &TestClient,
    tokens: &Value,
) {
    let access = field(tokens, "access_token");
    let refresh_token = field(tokens, "refresh_token");
    assert_eq!(userinfo(server, access).await, StatusCode::UNAUTHORIZED);
    assert!(!active(server, client, access).await);
    assert!(!active(server, client, refresh_token).await);
    let r = refresh(server, client, refresh_token, None).await;
    crate::support::assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn only_an_admin_clients_token_may_call_it() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let http = reqwest::Client::new();
    let url = server.url("/admin/v1/revocations");

    let none = http.get(&url).send().await.unwrap();
    assert_bearer_challenge(&none, StatusCode::UNAUTHORIZED, None);

    let forged = http
        .get(&url)
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&forged, StatusCode::UNAUTHORIZED, Some("invalid_token"));

    let twice = http
        .get(&url)
        .header("authorization", "Bearer a")
        .header("authorization", "Bearer b")
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&twice, StatusCode::BAD_REQUEST, Some("invalid_request"));
    // Another scheme is no Bearer credentials: a bare challenge (RFC 6750 §3.1).
    let basic = http
        .get(&url)
        .header("authorization", "Basic b3BzOnNlY3JldA==")
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&basic, StatusCode::UNAUTHORIZED, None);

    // A client_credentials token for another scope: authenticated, not allowed.
    let reports = server
        .client(ClientSpec {
            id: "reports",
            public: false,
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            first_party: false,
        })
        .await;
    let other = client_token(&server, &reports, "reports:read").await;
    let r = http.get(&url).bearer_auth(&other).send().await.unwrap();
    let challenge = assert_bearer_challenge(&r, StatusCode::FORBIDDEN, Some("insufficient_scope"));
    assert!(
        challenge.contains(r#"scope="lanyard:admin""#),
        "{challenge}"
    );

    // A user's token that carries the scope is still not an admin's.
    let console = server
        .client(ClientSpec {
            id: "console",
            public: false,
            grants: &["authorization_code"],
            scopes: &["openid", "lanyard:admin"],
            first_party: true,
        })
        .await;
    let users = code_flow(
        &server,
        &Browser::new(),
        &console,
        "openid lanyard:admin",
        "alice",
        PASSWORD,
    )
    .await;
    let r = http
        .get(&url)
        .bearer_auth(field(&users, "access_token"))
        .send()
        .await
        .unwrap();
    assert_bearer_challenge(&r, StatusCode::FORBIDDEN, Some("insufficient_scope"));

    // The admin client's token for another resource is not for the admin API: an API that
    // received it must not be able to replay it here (RFC 9068 §4).
    let ops = ops_client(&server).await;
    server.allow_resources(&ops.id, &["reports"]).await;
    let r = token_request(
        &server,
        &ops,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "reports"),
        ],
    )
    .await;
    let elsewhere: Value = r.json().await.unwrap();
    let elsewhere = elsewhere["access_token"].as_str().unwrap();
    let r = http.get(&url).bearer_auth(elsewhere).send().await.unwrap();
    let challenge = assert_bearer_challenge(&r, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert!(challenge.contains("another resource"), "{challenge}");

    // The admin's own token works, until it is revoked.
    let token = client_token(&server, &ops, "lanyard:admin").await;
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = revoke(&server, &token, json!({ "token": token })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    let challenge = assert_bearer_challenge(&r, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    assert!(challenge.contains("revoked"), "{challenge}");
    server.stop().await;
}

#[tokio::test]
async fn revoking_a_user_ends_everything_of_theirs_at_once() {
    for (db, store) in crate::support::ALL_BACKENDS {
        let server = TestServer::start(db, store).await;
        let alice = server.user("alice", PASSWORD).await;
        server.user("bob", PASSWORD).await;
        let wiki = server.client(ClientSpec::web("wiki")).await;
        let alices = alice_tokens(&server, &wiki).await;
        let bobs = code_flow(
            &server,
            &Browser::new(),
            &wiki,
            "openid offline_access",
            "bob",
            PASSWORD,
        )
        .await;
        let token = admin_token(&server).await;

        let r = revoke(&server, &token, json!({ "sub": alice.sub })).await;
        assert_eq!(r.status(), StatusCode::OK, "{db:?}/{store:?}");
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(outcome["sessions_ended"].as_array().unwrap().len(), 1);
        assert_eq!(outcome["refresh_families_revoked"], 1);
        assert_eq!(outcome["entry"]["kind"], "sub");
        assert_eq!(outcome["entry"]["value"], alice.sub.as_str());

        assert_refused_everywhere(&server, &wiki, &alices).await;
        assert_eq!(
            userinfo(&server, field(&bobs, "access_token")).await,
            StatusCode::OK,
            "bob is untouched"
        );
        // The record lists it, with who revoked.
        let r = admin(&server, &token, reqwest::Method::GET, "/revocations", None).await;
        let list: Value = r.json().await.unwrap();
        let entries = list["revocations"].as_array().unwrap();
        assert!(
            entries.iter().any(|e| e["kind"] == "sub"
                && e["value"] == alice.sub.as_str()
                && e["actor"] == "admin:ops"),
            "{list}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn revoking_a_session_a_client_a_jti_or_a_token() {
    let server = TestServer::start(Db::Sqlite, Store::Redis).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let mail = server.client(ClientSpec::web("mail")).await;
    let token = admin_token(&server).await;

    // sid: the session's tokens go; a new sign-in is needed.
    let mut first_party = ClientSpec::web("intranet");
    first_party.first_party = true;
    let intranet = server.client(first_party).await;
    let first = alice_tokens(&server, &intranet).await;
    let (_, claims) = crate::support::decode_jwt(field(&first, "access_token"));
    let sid = claims["sid"].as_str().unwrap().to_owned();
    // Refreshed from the offline family: an access token with no sid.
    let tokens: Value = refresh(&server, &intranet, field(&first, "refresh_token"), None)
        .await
        .json()
        .await
        .unwrap();
    let (_, refreshed) = crate::support::decode_jwt(field(&tokens, "access_token"));
    assert!(refreshed.get("sid").is_none(), "{refreshed}");
    let r = revoke(&server, &token, json!({ "sid": sid })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["sessions_ended"], json!([sid]));
    assert_eq!(outcome["entry"]["kind"], "sid");
    assert_eq!(outcome["refresh_families_revoked"], 1);
    assert!(
        outcome["access_tokens_revoked"].as_u64().unwrap() >= 1,
        "{outcome}"
    );
    assert_refused_everywhere(&server, &intranet, &tokens).await;
    assert_eq!(
        userinfo(&server, field(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );

    // client_id: every token of that client, none of another's.
    let wikis = alice_tokens(&server, &wiki).await;
    let mails = alice_tokens(&server, &mail).await;
    let r = revoke(&server, &token, json!({ "client_id": "wiki" })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["refresh_families_revoked"], 1);
    assert_refused_everywhere(&server, &wiki, &wikis).await;
    assert_eq!(
        userinfo(&server, field(&mails, "access_token")).await,
        StatusCode::OK
    );

    // jti: that access token only.
    let (_, claims) = crate::support::decode_jwt(field(&mails, "access_token"));
    let r = revoke(&server, &token, json!({ "jti": claims["jti"] })).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        userinfo(&server, field(&mails, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(active(&server, &mail, field(&mails, "refresh_token")).await);

    // token: a refresh token revokes its family and what it issued.
    let r = revoke(
        &server,
        &token,
        json!({ "token": field(&mails, "refresh_token") }),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.unwrap();
    assert_eq!(outcome["refresh_families_revoked"], 1);
    assert_refused_everywhere(&server, &mail, &mails).await;
    server.stop().await;
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_unknown_ids_404() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let token = admin_token(&server).await;
    for (body, field) in [
        (json!({}), "body"),
        (json!({ "sub": "a", "sid": "b" }), "sid"),
        (json!({ "subject": "a" }), "subject"),
        (json!({ "sub": 7 }), "sub"),
        (json!({ "jti": "  " }), "jti"),
        (json!(["sub"]), "body"),
    ] {
        let r = revoke(&server, &token, body.clone()).await;
        assert_api_error(r, StatusCode::BAD_REQUEST, "invalid_request", Some(field)).await;
    }
    let r = reqwest::Client::new()
        .post(server.url("/admin/v1/revocations"))
        .bearer_auth(&token)
        .body(r#"{"sub": "x"}"#)
        .send()
        .await
        .unwrap();
    assert_api_error(
        r,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("Content-Type"),
    )
    .await;

    for body in [
        json!({ "sub": "nobody" }),
        json!({ "client_id": "nothing" }),
        json!({ "token": "not-a-token" }),
        json!({ "sid": "not a session id" }),
    ] {
        let r = revoke(&server, &token, body.clone()).await;
        assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;
    }
    let r = admin(&server, &token, reqwest::Method::GET, "/revocations", None).await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["revocations"], json!([]), "nothing half-applied");
    server.stop().await;
}

#[tokio::test]
async fn a_store_outage_is_503_and_nothing_is_acknowledged() {
    let mut own = lanyard_store::test_redis::OwnRedis::start();
    let server =
        TestServer::start_on_store(crate::support::redis_store_at(&own.url(), "e2e:").await).await;
    let alice = server.user("alice", PASSWORD).await;
    let token = admin_token(&server).await;
    own.kill();
    let r = revoke(&server, &token, json!({ "sub": alice.sub })).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    server.stop().await;
}

#[tokio::test]
async fn an_admin_revocation_reaches_both_apps_within_a_second() {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = crate::apps::on_redis(&server, "wiki").await;
    let billing = crate::apps::on_redis(&server, "billing").await;
    let tokens = crate::apps::alice_at_each(&server, &[&wiki, &billing], Some(&alice.sub)).await;
    let admin_token = admin_token(&server).await;
    let started = Instant::now();
    let r = revoke(&server, &admin_token, json!({ "sub": alice.sub })).await;
    assert_eq!(r.status(), StatusCode::OK);
    for (base, token) in &tokens {
        crate::apps::refused_within_a_second(base, token, started).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let r = reqwest::get(server.url("/admin/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let revocations = &doc["paths"]["/revocations"];
    for method in ["get", "post"] {
        let op = &revocations[method];
        assert_eq!(
            op["security"],
            json!([{ "bearer": ["lanyard:admin"] }]),
            "{op}"
        );
        for status in ["200", "400", "401", "403", "503"] {
            assert!(
                op["responses"][status].is_object(),
                "{method} {status}: {op}"
            );
        }
    }
    assert!(revocations["post"]["responses"]["404"].is_object());
    assert_eq!(doc["servers"][0]["url"], "/admin/v1");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Exactly one of five: a oneOf of closed single-field objects.
    let body = &doc["components"]["schemas"]["RevokeRequest"];
    let names: Vec<&str> = body["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["additionalProperties"], false, "{o}");
            o["required"][0].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, ["token", "jti", "sub", "sid", "client_id"]);
    server.stop().await;
}

/// The body of the `sh` block after `<!-- e2e: {marker} -->` in docs/admin-api.md.
fn documented(marker: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/admin-api.md");
    let page = std::fs::read_to_string(path).unwrap();
    let after = page
        .split_once(&format!("<!-- e2e: {marker} -->"))
        .unwrap_or_else(|| panic!("docs/admin-api.md has no {marker} block"))
        .1;
    let block = after.split_once("```sh\n").unwrap().1;
    block.split_once("```").unwrap().0.to_owned()
}

#[tokio::test]
async fn the_documented_commands_revoke_a_user() {
    for tool in ["curl", "jq"] {
        let found = std::process::Command::new(tool).arg("--version").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "this test runs the curl commands of docs/admin-api.md and needs {tool}: \
             apt-get install curl jq"
        );
    }
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let alices = alice_tokens(&server, &wiki).await;
    let ops = ops_client(&server).await;
    let script = format!(
        "set -e\n{}\n{}",
        documented("token"),
        documented("revoke-user")
    );
    let issuer = server.issuer.clone();
    let secret = ops.secret.clone().unwrap();
    let sub = alice.sub.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("LANYARD", issuer)
            .env("OPS_SECRET", secret)
            .env("SUB", sub)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["entry"]["kind"], "sub");
    assert_eq!(outcome["entry"]["value"], alice.sub.as_str());
    assert_refused_everywhere(&server, &wiki, &alices).await;
    server.stop().await;
}

/// How many operations the OpenAPI document describes.
async fn document_operations(server: &TestServer) -> usize {
    let doc: Value = reqwest::get(server.url("/admin/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum()
}

/// Schemathesis (PyPI; `.ci/run` installs the version it pins) fuzzes the admin API from its
/// OpenAPI document against a running Lanyard with an admin token: every response must be
/// documented (status, content type, schema), no input may cause a 5xx, and nothing invalid
/// may be accepted.
#[tokio::test]
async fn the_openapi_document_holds_against_the_running_api() {
    let found = std::process::Command::new("st").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs schemathesis: python3 -m pip install schemathesis (see .ci/run for the version)"
    );
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let token = admin_token(&server).await;
    let schema = server.url("/admin/v1/openapi.json");
    let base = server.url("/admin/v1");
    let out = tokio::task::spawn_blocking(move || {
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
        std::process::Command::new("st")
            .args(["--config-file", config])
            .args(["run", &schema, "--url", &base])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--max-examples", "30", "--workers", "1", "--seed", "1"])
            .args(["--no-color"])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            // Its cache of findings stays out of the source tree.
            .current_dir(std::env::temp_dir())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation of the document was exercised.
    let report = String::from_utf8_lossy(&out.stdout);
    let operations = document_operations(&server).await;
    assert!(
        report.contains(&format!("Tested: {operations}")),
        "expected all {operations} operations tested:\n{report}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_audit_trail_is_read_filtered_and_a_page_at_a_time() {
    let server = TestServer::start(Db::Postgres, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    alice_tokens(&server, &wiki).await;
    // A failed sign-in.
    let browser = Browser::new();
    let (challenge, _) = crate::support::pkce();
    let page = browser
        .get(&crate::support::authorize_url(
            &server,
            &wiki,
            &[
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .await
        .text()
        .await
        .unwrap();
    browser
        .sign_in(&server, &page, "alice", "not her password", false)
        .await;
    let token = admin_token(&server).await;
    let r = revoke(&server, &token, json!({ "sub": alice.sub })).await;
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.status(), StatusCode::OK);
    server.state.audit.flush().await;
    let audit = |query: String| {
        let (server, token) = (&server, &token);
        async move {
            let r = admin(
                server,
                token,
                reqwest::Method::GET,
                &format!("/audit{query}"),
                None,
            )
            .await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };

    let by_admin = audit("?actor=admin:ops".into()).await;
    let events = by_admin["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{by_admin}");
    assert_eq!(events[0]["action"], "admin.revoke");
    assert_eq!(events[0]["target"], format!("sub:{}", alice.sub));
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[0]["request_id"], request_id.as_str());
    assert_eq!(events[0]["detail"]["entry"]["kind"], "sub");

    let signins = audit("?action=signin".into()).await;
    let outcomes: Vec<&str> = signins["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failure", "success"], "newest first");
    assert_eq!(signins["events"][0]["detail"]["reason"], "wrong password");

    // Pages: one event at a time, each older than the last, until there are no more.
    let everything = audit("".into()).await;
    let all_ids: Vec<i64> = everything["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(all_ids.len() >= 4, "{everything}");
    let mut paged = Vec::new();
    let mut query = "?limit=1".to_owned();
    loop {
        let page = audit(query.clone()).await;
        paged.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next"].as_i64() {
            Some(next) => query = format!("?limit=1&before={next}"),
            None => break,
        }
    }
    assert_eq!(paged, all_ids);

    // Time range: nothing before 1970, everything since then.
    assert_eq!(audit("?until=0".into()).await["events"], json!([]));
    assert_eq!(
        audit("?since=0".into()).await["events"],
        everything["events"]
    );

    for (query, field) in [
        ("?since=yesterday", "since"),
        ("?until=-1", "until"),
        ("?before=0", "before"),
        ("?limit=501", "limit"),
        ("?actor=a&actor=b", "actor"),
    ] {
        let r = admin(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/audit{query}"),
            None,
        )
        .await;
        assert_api_error(r, StatusCode::BAD_REQUEST, "invalid_request", Some(field)).await;
    }
    server.stop().await;
}
