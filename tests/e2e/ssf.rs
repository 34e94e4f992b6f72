//! Shared Signals (issue 25): Lanyard as an SSF 1.0 transmitter. Receivers manage streams
//! with a `lanyard:ssf` token; every revocation path produces its CAEP or RISC event as a
//! signed SET; polled streams (RFC 8936) with acknowledgements; pushed ones (RFC 8935)
//! retried across a failure and a node that stops, delivered once; verification; the
//! errors SSF names. An independent receiver (joserfc, in Python) is in `interop`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::{admin, admin_token};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, code_flow, decode_jwt, token_request,
};

const PASSWORD: &str = "correct horse battery staple";
const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const CLAIMS_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
const DISABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
const ENABLED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
const PURGED: &str = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
const COMPROMISE: &str =
    "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";
const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
const POLL: &str = "urn:ietf:rfc:8936";
const PUSH: &str = "urn:ietf:rfc:8935";

pub(crate) const ALL_EVENTS: [&str; 7] = [
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    CLAIMS_CHANGE,
    DISABLED,
    ENABLED,
    PURGED,
    COMPROMISE,
];

/// Registers a receiver (`client_credentials`, scope `lanyard:ssf`).
pub(crate) async fn receiver(server: &TestServer, id: &'static str) -> TestClient {
    server
        .client(ClientSpec {
            id,
            public: false,
            grants: &["client_credentials"],
            scopes: &["lanyard:ssf"],
            first_party: false,
        })
        .await
}

/// A `lanyard:ssf` token for `client`.
pub(crate) async fn ssf_token(server: &TestServer, client: &TestClient) -> String {
    let r = token_request(
        server,
        client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "lanyard:ssf"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// `method` on `path` (with `/ssf/...` endpoints) as `token`: status, headers, JSON body.
async fn ssf(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
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

/// Creates a stream; its configuration.
async fn create(server: &TestServer, token: &str, body: Value) -> Value {
    let (status, _, config) = ssf(server, token, Method::POST, "/ssf/streams", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{config}");
    config
}

/// Polls `config`'s stream once, acknowledging `ack`: the SETs, decoded, oldest first.
async fn poll(
    server: &TestServer,
    token: &str,
    config: &Value,
    ack: &[String],
    wait: bool,
) -> Vec<(String, Value, Value)> {
    let url = config["delivery"]["endpoint_url"].as_str().unwrap();
    let path = url.strip_prefix(&server.state.config.issuer).unwrap();
    let r = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(token)
        .json(&json!({ "ack": ack, "returnImmediately": !wait, "maxEvents": 100 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let text = r.text().await.unwrap();
    // The SETs in the order the object lists them (the order they happened).
    let body: lanyard_rp::signals::PollAnswer = serde_json::from_str(&text).unwrap();
    body.sets
        .0
        .into_iter()
        .map(|(jti, set)| {
            let (header, claims) = decode_jwt(&set);
            assert_eq!(claims["jti"], jti.as_str());
            (jti, header, claims)
        })
        .collect()
}

/// Polls until `count` events came (acknowledging each), at most 10 s: the claims, in order.
async fn poll_events(server: &TestServer, token: &str, config: &Value, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut ack = Vec::new();
    while got.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} events: {got:#?}",
            got.len()
        );
        let sets = poll(server, token, config, &ack, true).await;
        ack = sets.iter().map(|(jti, _, _)| jti.clone()).collect();
        got.extend(sets.into_iter().map(|(_, _, c)| c));
    }
    // Acknowledged; nothing more is waiting.
    let rest = poll(server, token, config, &ack, false).await;
    assert!(rest.is_empty(), "more than {count}: {rest:#?}");
    got
}

/// Where stream `stream_id`'s deliveries stand, as the admin API says.
async fn delivery_of(server: &TestServer, admin_token: &str, stream_id: &str) -> Value {
    let r = admin(
        server,
        admin_token,
        Method::GET,
        "/signals/deliveries",
        None,
    )
    .await;
    let channels: Value = r.json().await.unwrap();
    channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == format!("ssf {stream_id}"))
        .unwrap_or_else(|| panic!("no channel for {stream_id}: {channels}"))
        .clone()
}

fn event_type(claims: &Value) -> String {
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "one event per SET: {claims}");
    events.keys().next().unwrap().clone()
}

fn iss_sub(server: &TestServer, sub: &str) -> Value {
    json!({ "format": "iss_sub", "iss": server.state.config.issuer, "sub": sub })
}

/// Alice signs in at `app`: her `sid`.
pub(crate) async fn alice_signs_in(server: &TestServer, app: &TestClient) -> String {
    let browser = Browser::new();
    let tokens = code_flow(server, &browser, app, "openid", "alice", PASSWORD).await;
    let (_, id_token) = decode_jwt(tokens["id_token"].as_str().unwrap());
    id_token["sid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_transmitter_metadata_names_every_endpoint() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let r = reqwest::get(server.url("/.well-known/ssf-configuration"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let meta: Value = r.json().await.unwrap();
    let issuer = &server.state.config.issuer;
    assert_eq!(meta["spec_version"], "1_0");
    assert_eq!(meta["issuer"], issuer.as_str());
    assert_eq!(meta["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(meta["delivery_methods_supported"], json!([PUSH, POLL]));
    for (member, path) in [
        ("configuration_endpoint", "/ssf/streams"),
        ("status_endpoint", "/ssf/status"),
        ("add_subject_endpoint", "/ssf/subjects/add"),
        ("remove_subject_endpoint", "/ssf/subjects/remove"),
        ("verification_endpoint", "/ssf/verify"),
    ] {
        assert_eq!(meta[member], format!("{issuer}{path}"), "{member}");
    }
    assert_eq!(
        meta["authorization_schemes"],
        json!([{ "spec_urn": "urn:ietf:rfc:6749" }])
    );
    assert_eq!(meta["default_subjects"], "ALL");
    server.stop().await;
}

/// The issue's first test: a polled stream; an admin ends alice's session; the poll has a
/// signed `session-revoked` SET for her, and nothing once acknowledged.
#[tokio::test]
async fn an_admin_ending_alices_session_reaches_a_polled_stream_as_a_signed_session_revoked_set() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let app = server.client(ClientSpec::web("wiki")).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    let config = create(
        &server,
        &token,
        json!({ "events_requested": [SESSION_REVOKED, "https://example.com/unknown-event"], "description": "the SaaS tool" }),
    )
    .await;
    let issuer = server.state.config.issuer.clone();
    assert_eq!(config["iss"], issuer.as_str());
    assert_eq!(config["aud"], "saas-tool");
    assert_eq!(
        config["delivery"]["method"], POLL,
        "no delivery asked: polled"
    );
    let stream_id = config["stream_id"].as_str().unwrap();
    assert_eq!(
        config["delivery"]["endpoint_url"],
        format!("{issuer}/ssf/poll/{stream_id}")
    );
    assert_eq!(
        config["events_delivered"],
        json!([SESSION_REVOKED]),
        "unknown ones ignored"
    );
    assert_eq!(config["events_supported"].as_array().unwrap().len(), 7);
    assert_eq!(config["description"], "the SaaS tool");
    assert!(poll(&server, &token, &config, &[], false).await.is_empty());

    let sid = alice_signs_in(&server, &app).await;
    let admin_token = admin_token(&server).await;
    let r = admin(
        &server,
        &admin_token,
        Method::DELETE,
        &format!("/users/{}/sessions/{sid}", alice.sub),
        None,
    )
    .await;
    assert!(r.status().is_success(), "{}", r.status());

    let sets = poll(&server, &token, &config, &[], true).await;
    assert_eq!(sets.len(), 1, "{sets:#?}");
    let (jti, header, claims) = &sets[0];
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].is_string());
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], "saas-tool");
    assert!(claims["iat"].as_i64().unwrap() > 0);
    assert!(claims["txn"].is_string());
    assert!(
        claims.get("sub").is_none() && claims.get("exp").is_none(),
        "{claims}"
    );
    assert_eq!(event_type(claims), SESSION_REVOKED);
    assert_eq!(
        claims["sub_id"],
        json!({
            "format": "complex",
            "user": iss_sub(&server, &alice.sub),
            "session": { "format": "opaque", "id": sid },
        })
    );
    let event = &claims["events"][SESSION_REVOKED];
    assert_eq!(event["initiating_entity"], "admin");
    assert!(event["event_timestamp"].as_i64().is_some());

    // Not acknowledged: it comes again (at least once); acknowledged: never again.
    let again = poll(&server, &token, &config, &[], false).await;
    assert_eq!(again.len(), 1);
    assert_eq!(&again[0].0, jti);
    assert!(
        poll(&server, &token, &config, std::slice::from_ref(jti), false)
            .await
            .is_empty()
    );
    assert!(poll(&server, &token, &config, &[], false).await.is_empty());

    // Operators see where the stream stands.
    let channel = delivery_of(&server, &admin_token, stream_id).await;
    assert_eq!(channel["kind"], "ssf-poll");
    assert_eq!(channel["pending"], 0);
    assert!(channel["last_delivered_at"].as_i64().is_some());
    server.stop().await;
}

/// Every path that ends a session, changes a credential or the claims, disables, enables,
/// deletes an account or marks a credential compromised produces its event, in order.
#[tokio::test]
async fn every_revocation_path_produces_its_event() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let app = server.client(ClientSpec::web("wiki")).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    let config = create(&server, &token, json!({ "events_requested": ALL_EVENTS })).await;
    let admin_token = admin_token(&server).await;
    let call = |method: Method, path: String, body: Option<Value>| {
        let (server, admin_token) = (&server, &admin_token);
        async move {
            let r = admin(server, admin_token, method, &path, body).await;
            assert!(r.status().is_success(), "{path}: {}", r.status());
        }
    };

    // Alice signs out herself (RP-initiated logout): session-revoked by the user.
    let browser = Browser::new();
    let tokens = code_flow(&server, &browser, &app, "openid", "alice", PASSWORD).await;
    let (_, id_token) = decode_jwt(tokens["id_token"].as_str().unwrap());
    let sid = id_token["sid"].as_str().unwrap().to_owned();
    let mut url = url::Url::parse(&server.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap());
    let page = browser.get(url.as_str()).await.text().await.unwrap();
    if page.contains("Sign out?") {
        let r = browser
            .http
            .post(server.url("/logout"))
            .form(&[
                ("csrf", crate::support::form_value(&page, "csrf")),
                ("confirm", "yes".into()),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(event_type(&events[0]), SESSION_REVOKED);
    assert_eq!(events[0]["sub_id"]["session"]["id"], sid.as_str());
    assert_eq!(
        events[0]["events"][SESSION_REVOKED]["initiating_entity"],
        "user"
    );

    // An operator sets her password: credential-change (password, update).
    call(
        Method::PUT,
        format!("/users/{}/password", alice.sub),
        Some(json!({ "password": "another long passphrase" })),
    )
    .await;
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(event_type(&events[0]), CREDENTIAL_CHANGE);
    let change = &events[0]["events"][CREDENTIAL_CHANGE];
    assert_eq!(change["credential_type"], "password");
    assert_eq!(change["change_type"], "update");
    assert_eq!(change["initiating_entity"], "admin");
    assert_eq!(events[0]["sub_id"], iss_sub(&server, &alice.sub));

    // A role at the receiver: token-claims-change with the roles it holds there.
    call(
        Method::POST,
        "/clients/saas-tool/roles".to_owned(),
        Some(json!({ "name": "editor" })),
    )
    .await;
    call(
        Method::PUT,
        format!("/clients/saas-tool/roles/editor/users/{}", alice.sub),
        None,
    )
    .await;
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(event_type(&events[0]), CLAIMS_CHANGE);
    assert_eq!(
        events[0]["events"][CLAIMS_CHANGE]["claims"],
        json!({ "roles": ["editor"], "groups": [] })
    );

    // Credential compromise, marked by an operator.
    call(
        Method::POST,
        format!("/users/{}/credential-compromise", alice.sub),
        Some(json!({ "credential_type": "password", "reason": "found in a paste" })),
    )
    .await;
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(event_type(&events[0]), COMPROMISE);
    assert_eq!(
        events[0]["events"][COMPROMISE]["credential_type"],
        "password"
    );
    assert_eq!(
        events[0]["events"][COMPROMISE]["reason_admin"],
        json!({ "en": "found in a paste" })
    );

    // Disabled with a live session: the session ends, then the account is disabled.
    let sid = alice_signs_in_with(&server, &app, "another long passphrase").await;
    call(Method::POST, format!("/users/{}/disable", alice.sub), None).await;
    let events = poll_events(&server, &token, &config, 2).await;
    let types: Vec<String> = events.iter().map(event_type).collect();
    assert_eq!(types, [SESSION_REVOKED, DISABLED]);
    assert_eq!(events[0]["sub_id"]["session"]["id"], sid.as_str());
    assert_eq!(events[1]["sub_id"], iss_sub(&server, &alice.sub));

    call(Method::POST, format!("/users/{}/enable", alice.sub), None).await;
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(event_type(&events[0]), ENABLED);

    // Deleted: disabled, then purged.
    call(Method::DELETE, format!("/users/{}", alice.sub), None).await;
    let events = poll_events(&server, &token, &config, 2).await;
    let types: Vec<String> = events.iter().map(event_type).collect();
    assert_eq!(types, [DISABLED, PURGED]);
    assert_eq!(events[1]["sub_id"], iss_sub(&server, &alice.sub));
    server.stop().await;
}

async fn alice_signs_in_with(server: &TestServer, app: &TestClient, password: &str) -> String {
    let browser = Browser::new();
    let tokens = code_flow(server, &browser, app, "openid", "alice", password).await;
    let (_, id_token) = decode_jwt(tokens["id_token"].as_str().unwrap());
    id_token["sid"].as_str().unwrap().to_owned()
}

/// What a test receiver got: each request's headers and body.
type Received = Arc<Mutex<Vec<(reqwest::header::HeaderMap, String)>>>;

/// A push receiver on loopback that answers the first `fail` requests 503, then 202.
async fn push_receiver(fail: usize) -> (String, Received) {
    let received: Received = Arc::default();
    let seen = received.clone();
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (seen, attempts) = (seen.clone(), attempts.clone());
            async move {
                let n = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < fail {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let mut map = reqwest::header::HeaderMap::new();
                for (k, v) in &headers {
                    map.insert(
                        reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                        reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                    );
                }
                seen.lock().unwrap().push((map, body));
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}/events"), received)
}

/// The issue's second test: push to a receiver that fails once, the node stopping in
/// between; another node delivers; the receiver gets the event exactly once, in order
/// after the verification, with its `Authorization` value. On PostgreSQL and Redis.
#[tokio::test]
async fn a_pushed_event_survives_a_failure_and_a_node_stopping_and_arrives_once() {
    let (url, received) = push_receiver(1).await;
    let first = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = first.user("alice", PASSWORD).await;
    let saas = receiver(&first, "saas-tool").await;
    let token = ssf_token(&first, &saas).await;
    let config = create(
        &first,
        &token,
        json!({
            "events_requested": ALL_EVENTS,
            "delivery": { "method": PUSH, "endpoint_url": url, "authorization_header": "Bearer receiver-secret" },
        }),
    )
    .await;
    assert_eq!(
        config["delivery"],
        json!({ "method": PUSH, "endpoint_url": url }),
        "the secret is never shown"
    );
    let stream_id = config["stream_id"].as_str().unwrap().to_owned();
    let admin_token = admin_token(&first).await;
    let r = admin(
        &first,
        &admin_token,
        Method::POST,
        &format!("/users/{}/disable", alice.sub),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The first attempt failed; the channel waits, and says why.
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let r = admin(&first, &admin_token, Method::GET, "/signals/streams", None).await;
        let streams: Value = r.json().await.unwrap();
        let stream = streams.as_array().unwrap()[0].clone();
        if stream["delivery"]["attempts"].as_u64() >= Some(1) {
            break stream;
        }
        assert!(Instant::now() < deadline, "no attempt: {stream}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(state["receiver"], "saas-tool");
    assert_eq!(state["status"], "enabled");
    assert_eq!(state["delivery"]["pending"], 1);
    assert!(
        state["delivery"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{state}"
    );
    assert!(received.lock().unwrap().is_empty());

    // The node stops before the retry; another node of the deployment takes over.
    let mut second = first.another_node(None).await;
    let mut first = first;
    first.hand_data_to(&mut second);
    first.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a wrong second delivery to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "delivered once: {got:#?}");
    let (headers, body) = &got[0];
    assert_eq!(headers["content-type"], "application/secevent+jwt");
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["authorization"], "Bearer receiver-secret");
    let (header, claims) = decode_jwt(body);
    assert_eq!(header["typ"], "secevent+jwt");
    assert_eq!(event_type(&claims), DISABLED);
    assert_eq!(claims["sub_id"], iss_sub(&second, &alice.sub));
    let channel = delivery_of(&second, &admin_token, &stream_id).await;
    assert_eq!(channel["pending"], 0, "{channel}");
    assert_eq!(channel["attempts"], 0);
    assert!(channel["last_delivered_at"].as_i64().is_some());
    second.stop().await;
}

/// Verification (SSF 1.0 §8.1.4): the event echoes the state, its subject is the stream;
/// a second request within `min_verification_interval` is 429 with `Retry-After`.
#[tokio::test]
async fn a_verification_round_trip_echoes_the_state_and_is_rate_limited() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    let config = create(
        &server,
        &token,
        json!({ "events_requested": [SESSION_REVOKED] }),
    )
    .await;
    let stream_id = config["stream_id"].as_str().unwrap();
    assert_eq!(config["min_verification_interval"], 10);
    let (status, _, _) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/verify",
        Some(json!({ "stream_id": stream_id, "state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo=" })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(
        event_type(&events[0]),
        VERIFICATION,
        "delivered though not asked for"
    );
    assert_eq!(
        events[0]["events"][VERIFICATION],
        json!({ "state": "VGhpcyBpcyBhbiBleGFtcGxlIHN0YXRlIHZhbHVlLgo=" })
    );
    assert_eq!(
        events[0]["sub_id"],
        json!({ "format": "opaque", "id": stream_id })
    );
    let (status, headers, body) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/verify",
        Some(json!({ "stream_id": stream_id })),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["retry-after"], "10");
    server.stop().await;
}

/// Stream management: read one and all, update, replace, status, delete; another
/// receiver's stream is not found.
#[tokio::test]
async fn a_receiver_manages_its_own_streams_and_no_one_elses() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let saas = receiver(&server, "saas-tool").await;
    let other = receiver(&server, "other-tool").await;
    let token = ssf_token(&server, &saas).await;
    let other_token = ssf_token(&server, &other).await;
    let config = create(
        &server,
        &token,
        json!({ "events_requested": [SESSION_REVOKED], "description": "first" }),
    )
    .await;
    let id = config["stream_id"].as_str().unwrap().to_owned();
    let second = create(&server, &token, json!({})).await;
    assert_ne!(
        second["stream_id"], config["stream_id"],
        "several streams per receiver"
    );
    assert_eq!(second["events_delivered"], json!([]));

    let (status, _, one) = ssf(
        &server,
        &token,
        Method::GET,
        &format!("/ssf/streams?stream_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, config);
    let (status, _, all) = ssf(&server, &token, Method::GET, "/ssf/streams", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (status, _, none) = ssf(&server, &other_token, Method::GET, "/ssf/streams", None).await;
    assert_eq!((status, none), (StatusCode::OK, json!([])));
    for (method, path, body) in [
        (Method::GET, format!("/ssf/streams?stream_id={id}"), None),
        (Method::DELETE, format!("/ssf/streams?stream_id={id}"), None),
        (Method::GET, format!("/ssf/status?stream_id={id}"), None),
        (
            Method::PATCH,
            "/ssf/streams".to_owned(),
            Some(json!({ "stream_id": id, "description": "mine" })),
        ),
        (
            Method::POST,
            "/ssf/verify".to_owned(),
            Some(json!({ "stream_id": id })),
        ),
        (
            Method::POST,
            format!("/ssf/poll/{id}"),
            Some(json!({ "returnImmediately": true })),
        ),
    ] {
        let (status, _, body) = ssf(&server, &other_token, method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["err"], "not_found");
    }

    // PATCH changes what is sent, keeps the rest; PUT removes what is not sent.
    let (status, _, patched) = ssf(
        &server,
        &token,
        Method::PATCH,
        "/ssf/streams",
        Some(json!({ "stream_id": id, "events_requested": [SESSION_REVOKED, DISABLED], "events_delivered": [SESSION_REVOKED] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["events_delivered"],
        json!([SESSION_REVOKED, DISABLED])
    );
    assert_eq!(patched["description"], "first");
    let (status, _, replaced) = ssf(
        &server,
        &token,
        Method::PUT,
        "/ssf/streams",
        Some(json!({ "stream_id": id, "events_requested": [DISABLED], "delivery": { "method": POLL } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["events_delivered"], json!([DISABLED]));
    assert!(replaced.get("description").is_none(), "{replaced}");

    // Status: paused, then enabled again, with a reason.
    let (status, _, body) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/status",
        Some(json!({ "stream_id": id, "status": "paused", "reason": "maintenance" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "stream_id": id, "status": "paused", "reason": "maintenance" })
    );
    let (_, _, body) = ssf(
        &server,
        &token,
        Method::GET,
        &format!("/ssf/status?stream_id={id}"),
        None,
    )
    .await;
    assert_eq!(body["status"], "paused");

    let (status, _, _) = ssf(
        &server,
        &token,
        Method::DELETE,
        &format!("/ssf/streams?stream_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = ssf(
        &server,
        &token,
        Method::GET,
        &format!("/ssf/streams?stream_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Paused: events wait and leave, in order, once enabled; disabled: none is kept.
#[tokio::test]
async fn a_paused_stream_holds_its_events_and_a_disabled_one_drops_them() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    let config = create(&server, &token, json!({ "events_requested": ALL_EVENTS })).await;
    let id = config["stream_id"].as_str().unwrap().to_owned();
    let admin_token = admin_token(&server).await;
    let set_status = |status: &'static str| {
        let (server, token, id) = (&server, &token, id.clone());
        async move {
            let (code, _, body) = ssf(
                server,
                token,
                Method::POST,
                "/ssf/status",
                Some(json!({ "stream_id": id, "status": status })),
            )
            .await;
            assert_eq!(code, StatusCode::OK, "{body}");
        }
    };
    set_status("paused").await;
    for action in ["disable", "enable"] {
        let r = admin(
            &server,
            &admin_token,
            Method::POST,
            &format!("/users/{}/{action}", alice.sub),
            None,
        )
        .await;
        assert!(r.status().is_success());
    }
    assert!(
        poll(&server, &token, &config, &[], false).await.is_empty(),
        "held while paused"
    );
    set_status("enabled").await;
    let events = poll_events(&server, &token, &config, 2).await;
    let types: Vec<String> = events.iter().map(event_type).collect();
    assert_eq!(types, [DISABLED, ENABLED], "in order");

    set_status("disabled").await;
    let r = admin(
        &server,
        &admin_token,
        Method::POST,
        &format!("/users/{}/disable", alice.sub),
        None,
    )
    .await;
    assert!(r.status().is_success());
    set_status("enabled").await;
    assert!(
        poll(&server, &token, &config, &[], false).await.is_empty(),
        "nothing kept while disabled"
    );
    server.stop().await;
}

/// Subjects: a stream with `default_subjects: NONE` hears only of people added (by email:
/// then named so); one with `ALL` hears of everyone but those removed.
#[tokio::test]
async fn subjects_added_and_removed_decide_who_a_stream_hears_of() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let bob = server.user("bob", PASSWORD).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    let only_added = create(
        &server,
        &token,
        json!({ "events_requested": [DISABLED], "default_subjects": "NONE" }),
    )
    .await;
    let everyone = create(&server, &token, json!({ "events_requested": [DISABLED] })).await;
    assert_eq!(only_added["default_subjects"], "NONE");
    assert_eq!(everyone["default_subjects"], "ALL");
    let (status, _, body) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/subjects/add",
        Some(json!({ "stream_id": only_added["stream_id"], "subject": { "format": "email", "email": "Bob@Example.com" }, "verified": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/subjects/remove",
        Some(json!({ "stream_id": everyone["stream_id"], "subject": { "format": "complex", "user": iss_sub(&server, &bob.sub) } })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Someone Lanyard does not know answers as someone it does (who has an account is not told).
    let (status, _, _) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/subjects/add",
        Some(json!({ "stream_id": only_added["stream_id"], "subject": { "format": "email", "email": "nobody@example.com" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let admin_token = admin_token(&server).await;
    for who in [&alice.sub, &bob.sub] {
        let r = admin(
            &server,
            &admin_token,
            Method::POST,
            &format!("/users/{who}/disable"),
            None,
        )
        .await;
        assert!(r.status().is_success());
    }
    let heard = poll_events(&server, &token, &only_added, 1).await;
    assert_eq!(
        heard[0]["sub_id"],
        json!({ "format": "email", "email": "bob@example.com" })
    );
    let heard = poll_events(&server, &token, &everyone, 1).await;
    assert_eq!(heard[0]["sub_id"], iss_sub(&server, &alice.sub));
    server.stop().await;
}

/// Bad stream requests get the errors SSF names: 401 (with a challenge), 403, 400 naming
/// what is wrong, 404, 409.
#[tokio::test]
async fn bad_stream_requests_get_the_errors_ssf_names() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;

    let r = reqwest::Client::new()
        .post(server.url("/ssf/streams"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, headers, body) =
        ssf(&server, "not-a-token", Method::GET, "/ssf/streams", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
    assert_eq!(body["err"], "authentication_failed");
    let admin_token = admin_token(&server).await;
    let (status, headers, _) = ssf(&server, &admin_token, Method::GET, "/ssf/streams", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"scope="lanyard:ssf""#)
    );

    let r = reqwest::Client::new()
        .post(server.url("/ssf/streams"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for (body, says) in [
        (
            json!({ "delivery": { "method": "urn:example:carrier-pigeon" } }),
            "delivery.method",
        ),
        (json!({ "delivery": { "method": PUSH } }), "endpoint_url"),
        (
            json!({ "delivery": { "method": PUSH, "endpoint_url": "ftp://example.com/x" } }),
            "endpoint_url",
        ),
        (
            json!({ "delivery": { "method": PUSH, "endpoint_url": "https://user:pw@example.com/x" } }),
            "credentials",
        ),
        (json!({ "events_requested": "all" }), "events_requested"),
        (json!({ "default_subjects": "SOME" }), "default_subjects"),
        (json!([1, 2]), "object"),
    ] {
        let (status, _, refused) = ssf(
            &server,
            &token,
            Method::POST,
            "/ssf/streams",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
        assert_eq!(refused["err"], "invalid_request");
        assert!(
            refused["description"].as_str().unwrap().contains(says),
            "{body}: {refused}"
        );
    }
    let config = create(&server, &token, json!({})).await;
    let id = config["stream_id"].as_str().unwrap();
    for (method, path, body, says) in [
        (
            Method::PATCH,
            "/ssf/streams",
            json!({ "description": "x" }),
            "stream_id",
        ),
        (
            Method::PATCH,
            "/ssf/streams",
            json!({ "stream_id": id, "iss": "https://evil.example" }),
            "iss",
        ),
        (
            Method::PATCH,
            "/ssf/streams",
            json!({ "stream_id": id, "aud": "other" }),
            "aud",
        ),
        (
            Method::PATCH,
            "/ssf/streams",
            json!({ "stream_id": id, "events_delivered": [DISABLED] }),
            "events_delivered",
        ),
        (
            Method::POST,
            "/ssf/status",
            json!({ "stream_id": id, "status": "sleeping" }),
            "status",
        ),
        (
            Method::POST,
            "/ssf/subjects/add",
            json!({ "stream_id": id, "subject": { "format": "phone_number", "phone_number": "+12065550100" } }),
            "phone_number",
        ),
        (
            Method::POST,
            "/ssf/subjects/add",
            json!({ "stream_id": id, "subject": { "format": "iss_sub", "iss": "https://elsewhere.example", "sub": "x" } }),
            "iss",
        ),
        (
            Method::POST,
            "/ssf/subjects/add",
            json!({ "stream_id": id, "subject": { "format": "email", "email": "a@example.com", "extra": 1 } }),
            "extra",
        ),
        (
            Method::POST,
            "/ssf/subjects/add",
            json!({ "stream_id": id }),
            "subject",
        ),
        (
            Method::POST,
            &format!("/ssf/poll/{id}"),
            json!({ "maxEvents": -1 }),
            "maxEvents",
        ),
    ] {
        let (status, _, refused) =
            ssf(&server, &token, method.clone(), path, Some(body.clone())).await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{method} {path} {body}: {refused}"
        );
        assert!(
            refused["description"].as_str().unwrap().contains(says),
            "{body}: {refused}"
        );
    }
    let (status, _, refused) = ssf(&server, &token, Method::GET, "/ssf/status", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        refused["description"]
            .as_str()
            .unwrap()
            .contains("stream_id")
    );
    let (status, _, _) = ssf(
        &server,
        &token,
        Method::GET,
        "/ssf/streams?stream_id=nope",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for _ in 1..10 {
        create(&server, &token, json!({})).await;
    }
    let (status, _, refused) = ssf(
        &server,
        &token,
        Method::POST,
        "/ssf/streams",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["description"]
            .as_str()
            .unwrap()
            .contains("at most 10")
    );
    // A pushed stream is not polled.
    let (status, _, _) = ssf(
        &server,
        &token,
        Method::DELETE,
        &format!("/ssf/streams?stream_id={id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let pushed = create(&server, &token, json!({ "delivery": { "method": PUSH, "endpoint_url": "https://receiver.example/events" } })).await;
    let (status, _, refused) = ssf(
        &server,
        &token,
        Method::POST,
        &format!("/ssf/poll/{}", pushed["stream_id"].as_str().unwrap()),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused["description"].as_str().unwrap().contains("push"));
    server.stop().await;
}

/// A push endpoint inside the network is never called unless `outbound_allow` names it
/// (SSRF): the event waits, and the admin API says why.
#[tokio::test]
async fn a_push_endpoint_inside_the_network_is_not_called_unless_allowed() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    create(
        &server,
        &token,
        json!({
            "events_requested": [DISABLED],
            "delivery": { "method": PUSH, "endpoint_url": "http://169.254.169.254/latest/meta-data" },
        }),
    )
    .await;
    lanyard_core::users::disable(&server.state, &alice.sub, "admin:test")
        .await
        .unwrap();
    let admin_token = admin_token(&server).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let r = admin(&server, &admin_token, Method::GET, "/signals/streams", None).await;
        let streams: Value = r.json().await.unwrap();
        let delivery = streams[0]["delivery"].clone();
        if delivery["last_error"].is_string() {
            break delivery;
        }
        assert!(Instant::now() < deadline, "never tried: {delivery}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(delivery["pending"], 1, "{delivery}");
    assert!(
        delivery["last_error"]
            .as_str()
            .unwrap()
            .contains("outbound_allow"),
        "{delivery}"
    );
    server.stop().await;
}

// --- lanyard-rp as a receiver (issue 25 part 2) -------------------------------------------

use lanyard_rp::client::{ClientCredentials, ClientError, TokenSource};
use lanyard_rp::mirror::Mirror;
use lanyard_rp::signals::{Delivery, ReceiverConfig, SecurityEvent, SsfReceiver};
use lanyard_store::{Clock, RevokedBy, SystemClock, Timestamp, TokenFacts, Verdict};

/// A mirror following `receiver`, ready.
async fn mirror_of(receiver: &SsfReceiver, bound: Duration) -> Mirror {
    let mirror = Mirror::follow(
        receiver.source(),
        bound,
        Duration::from_secs(3600),
        Arc::new(SystemClock),
    );
    assert!(
        mirror.ready(Duration::from_secs(20)).await,
        "the mirror never got its first snapshot"
    );
    mirror
}

/// What the mirror says of a token of `sub` in session `sid`, issued a minute ago.
fn judged(
    mirror: &Mirror,
    sub: &str,
    sid: Option<&str>,
) -> Result<Verdict, lanyard_rp::mirror::Stale> {
    let now = SystemClock.now();
    mirror.check(&TokenFacts {
        jti: "some-token",
        sid,
        sub,
        client_id: "wiki",
        origin: None,
        act: None,
        iat: Timestamp::from_secs(now.as_secs() - 60),
        exp: Timestamp::from_secs(now.as_secs() + 240),
    })
}

/// Waits (up to 10 s) for the mirror to refuse that token, and says how.
async fn refused_soon(mirror: &Mirror, sub: &str, sid: Option<&str>) -> RevokedBy {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Verdict::Revoked(by)) = judged(mirror, sub, sid) {
            return by;
        }
        assert!(
            Instant::now() < deadline,
            "never refused: {:?}",
            judged(mirror, sub, sid)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next event the receiver hears (10 s at most).
async fn heard(events: &mut tokio::sync::broadcast::Receiver<SecurityEvent>) -> SecurityEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no event within 10 s")
        .unwrap()
}

fn credentials(server: &TestServer, client: &TestClient) -> Arc<dyn TokenSource> {
    Arc::new(ClientCredentials::new(
        &server.url("/token"),
        &client.id,
        client.secret.as_deref().unwrap(),
        Some("lanyard:ssf"),
        None,
    ))
}

/// An app follows Lanyard through SSF by polling: alice's session ended by an admin reaches
/// its mirror (her token of that session refused) and its event stream within seconds.
#[tokio::test]
async fn lanyard_rp_follows_lanyard_by_polling() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let app = receiver(&server, "saas-tool").await;
    let config = ReceiverConfig::new(
        &server.state.config.issuer,
        "saas-tool",
        Delivery::Poll {
            every: Duration::from_millis(200),
        },
    );
    let rx = SsfReceiver::connect(config, credentials(&server, &app))
        .await
        .unwrap();
    let mut events = rx.events();
    let mirror = mirror_of(&rx, Duration::from_secs(10)).await;
    let sid = alice_signs_in(&server, &wiki).await;
    assert_eq!(
        judged(&mirror, &alice.sub, Some(&sid)),
        Ok(Verdict::NotRevoked)
    );

    let admin_token = admin_token(&server).await;
    let r = admin(
        &server,
        &admin_token,
        Method::DELETE,
        &format!("/users/{}/sessions/{sid}", alice.sub),
        None,
    )
    .await;
    assert!(r.status().is_success());
    assert_eq!(
        refused_soon(&mirror, &alice.sub, Some(&sid)).await,
        RevokedBy::Session
    );
    assert_eq!(
        heard(&mut events).await,
        SecurityEvent::SessionRevoked {
            sub: Some(alice.sub.clone()),
            sid: sid.clone()
        }
    );
    // Another session of hers is not touched.
    assert_eq!(
        judged(&mirror, &alice.sub, Some("another-session")),
        Ok(Verdict::NotRevoked)
    );
    // Acknowledged: Lanyard holds nothing for the stream any more.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = admin(&server, &admin_token, Method::GET, "/signals/streams", None).await;
        let streams: Value = r.json().await.unwrap();
        if streams[0]["delivery"]["pending"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{streams}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The app goes away; alice is disabled meanwhile; the app starts again: it takes over its
    // stream (no second one), and what waited there comes.
    drop(events);
    drop(mirror);
    drop(rx);
    lanyard_core::users::disable(&server.state, &alice.sub, "admin:test")
        .await
        .unwrap();
    let config = ReceiverConfig::new(
        &server.state.config.issuer,
        "saas-tool",
        Delivery::Poll {
            every: Duration::from_millis(200),
        },
    );
    let again = SsfReceiver::connect(config, credentials(&server, &app))
        .await
        .unwrap();
    assert_eq!(
        server
            .state
            .db
            .streams()
            .of_client("saas-tool")
            .await
            .unwrap()
            .len(),
        1
    );
    let mirror = mirror_of(&again, Duration::from_secs(10)).await;
    assert_eq!(
        refused_soon(&mirror, &alice.sub, None).await,
        RevokedBy::Subject
    );
    again.delete().await.unwrap();
    assert!(
        server
            .state
            .db
            .streams()
            .of_client("saas-tool")
            .await
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

/// An app follows Lanyard through SSF by push at a route it mounts: a verification round
/// trip proves the stream alive, then alice's account disabled reaches its mirror (every
/// token of hers issued before refused) and its web sessions.
#[tokio::test]
async fn lanyard_rp_follows_lanyard_by_push() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let app = receiver(&server, "saas-tool").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint_url = format!("http://{}/ssf/events", listener.local_addr().unwrap());
    let config = ReceiverConfig::new(
        &server.state.config.issuer,
        "saas-tool",
        Delivery::Push {
            endpoint_url,
            heartbeat: Duration::from_secs(10),
        },
    );
    let rx = SsfReceiver::connect(config, credentials(&server, &app))
        .await
        .unwrap();
    let routes = axum::Router::new()
        .route(
            "/ssf/events",
            axum::routing::post(lanyard_rp::signals::receive),
        )
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    let mut events = rx.events();
    let mirror = mirror_of(&rx, Duration::from_secs(30)).await;
    assert!(rx.is_fresh(), "the verification came back");
    assert_eq!(judged(&mirror, &alice.sub, None), Ok(Verdict::NotRevoked));

    lanyard_core::users::disable(&server.state, &alice.sub, "admin:test")
        .await
        .unwrap();
    assert_eq!(
        refused_soon(&mirror, &alice.sub, None).await,
        RevokedBy::Subject
    );
    assert_eq!(
        heard(&mut events).await,
        SecurityEvent::AccountDisabled {
            sub: alice.sub.clone()
        }
    );

    // A push that is not from the transmitter is refused as RFC 8935 says.
    let r = reqwest::Client::new()
        .post(rx_endpoint(&rx, &server).await)
        .header("content-type", "application/secevent+jwt")
        .header("authorization", "Bearer guessed")
        .body("x.y.z")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["err"], "authentication_failed");

    // Deleting the receiver's client deletes its stream: an id registered again later
    // inherits nothing.
    lanyard_core::clients::delete(&server.state, "saas-tool", "admin:test")
        .await
        .unwrap();
    assert!(
        server
            .state
            .db
            .streams()
            .of_client("saas-tool")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        server
            .state
            .db
            .streams()
            .get(rx.stream_id())
            .await
            .unwrap()
            .is_none()
    );
    server.stop().await;
}

/// The push endpoint of `rx`'s stream, as Lanyard has it.
async fn rx_endpoint(rx: &SsfReceiver, server: &TestServer) -> String {
    let stream = server
        .state
        .db
        .streams()
        .get(rx.stream_id())
        .await
        .unwrap()
        .unwrap();
    stream.config.endpoint_url.unwrap()
}

struct Fixed(&'static str);

#[async_trait::async_trait]
impl TokenSource for Fixed {
    async fn token(&self) -> Result<String, ClientError> {
        Ok(self.0.to_owned())
    }
    async fn renew(&self, _: &str) -> Result<String, ClientError> {
        Ok(self.0.to_owned())
    }
}

/// A transmitter that is not Lanyard (`tests/interop/python/ssf_transmitter.py`: joserfc and
/// the standard library): lanyard-rp receives its events by poll and by push, feeds them to
/// the mirror, and once the transmitter is gone the mirror goes stale (fails closed) rather
/// than answering "not revoked".
#[tokio::test]
async fn lanyard_rp_follows_a_transmitter_that_is_not_lanyard() {
    use tokio::io::AsyncBufReadExt;
    let python = std::env::var("LANYARD_TOOLS_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/python/ssf_transmitter.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .env("TOKEN", "transmitter-test-token")
        .env("AUDIENCE", "app")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{python} cannot run the independent transmitter ({e}): it needs joserfc, pinned in tests/interop/python/requirements.txt (bash tests/interop/run installs it)"));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the transmitter did not start")
        .unwrap()
        .unwrap_or_else(|| {
            panic!("the transmitter ended at once: is joserfc installed? (bash tests/interop/run)")
        });
    let ready: Value = serde_json::from_str(&first).unwrap();
    let issuer = ready["ready"].as_str().unwrap().to_owned();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let emit = |body: Value| {
        let issuer = issuer.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{issuer}/test/emit"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    };
    let user = |sub: &str| json!({ "format": "iss_sub", "iss": issuer, "sub": sub });

    // By poll.
    let polled = SsfReceiver::connect(
        ReceiverConfig::new(
            &issuer,
            "app",
            Delivery::Poll {
                every: Duration::from_millis(200),
            },
        ),
        Arc::new(Fixed("transmitter-test-token")),
    )
    .await
    .unwrap();
    let mut polled_events = polled.events();
    let mirror = mirror_of(&polled, Duration::from_secs(3)).await;
    // By push.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint_url = format!("http://{}/events", listener.local_addr().unwrap());
    let routes_for = |rx: SsfReceiver| {
        axum::Router::new()
            .route("/events", axum::routing::post(lanyard_rp::signals::receive))
            .with_state(rx)
    };
    let pushed = SsfReceiver::connect(
        ReceiverConfig::new(
            &issuer,
            "app",
            Delivery::Push {
                endpoint_url,
                heartbeat: Duration::from_secs(1),
            },
        ),
        Arc::new(Fixed("transmitter-test-token")),
    )
    .await
    .unwrap();
    let routes = routes_for(pushed.clone());
    tokio::spawn(async move { axum::serve(listener, routes).await.unwrap() });
    let mut pushed_events = pushed.events();
    let pushed_mirror = mirror_of(&pushed, Duration::from_secs(10)).await;

    emit(json!({
        "type": lanyard_rp::signals::SESSION_REVOKED,
        "event": { "initiating_entity": "admin" },
        "sub_id": { "format": "complex", "user": user("u-1"), "session": { "format": "opaque", "id": "s-1" } },
    }))
    .await;
    emit(json!({ "type": lanyard_rp::signals::ACCOUNT_DISABLED, "sub_id": user("u-2") })).await;
    for events in [&mut polled_events, &mut pushed_events] {
        assert_eq!(
            heard(events).await,
            SecurityEvent::SessionRevoked {
                sub: Some("u-1".to_owned()),
                sid: "s-1".to_owned()
            }
        );
        assert_eq!(
            heard(events).await,
            SecurityEvent::AccountDisabled {
                sub: "u-2".to_owned()
            }
        );
    }
    for mirror in [&mirror, &pushed_mirror] {
        assert_eq!(
            refused_soon(mirror, "u-1", Some("s-1")).await,
            RevokedBy::Session
        );
        assert_eq!(refused_soon(mirror, "u-2", None).await, RevokedBy::Subject);
        assert_eq!(judged(mirror, "u-3", Some("s-3")), Ok(Verdict::NotRevoked));
    }

    // The transmitter goes away: the polled mirror cannot tell any more, and says so.
    child.kill().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while judged(&mirror, "u-3", Some("s-3")).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the mirror kept answering without its transmitter"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What it knew still counts.
    assert_eq!(
        judged(&mirror, "u-1", Some("s-1")),
        Ok(Verdict::Revoked(RevokedBy::Session))
    );
}

/// The rest of the issue's paths: the account page (a password changed, the other sessions
/// ended, by the person), a reset link (sessions ended, the password changed), and SCIM
/// `active: false` each produce their events.
#[tokio::test]
async fn the_account_page_a_reset_link_and_scim_produce_their_events() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let saas = receiver(&server, "saas-tool").await;
    let token = ssf_token(&server, &saas).await;
    let config = create(&server, &token, json!({ "events_requested": ALL_EVENTS })).await;
    let kinds = |events: &[Value]| {
        let mut kinds: Vec<(String, String)> = events
            .iter()
            .map(|e| {
                let t = event_type(e);
                let who = e["events"][t.as_str()]["initiating_entity"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned();
                (t, who)
            })
            .collect();
        kinds.sort();
        kinds
    };

    // The account page: a new password, the other session ended.
    let here = crate::account::at_account(&server, PASSWORD, false).await;
    let _elsewhere = crate::account::at_account(&server, PASSWORD, false).await;
    let new = "a much longer passphrase now";
    let r = crate::account::post(
        &server,
        &here,
        "/account/password",
        &[
            ("current", PASSWORD),
            ("new", new),
            ("confirm", new),
            ("end_others", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let events = poll_events(&server, &token, &config, 2).await;
    assert_eq!(
        kinds(&events),
        [
            (SESSION_REVOKED.to_owned(), "user".to_owned()),
            (CREDENTIAL_CHANGE.to_owned(), "user".to_owned()),
        ]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
    );

    // A reset link: every session ended (the account page's), the password changed.
    lanyard_core::email::send_reset(&server.state, &alice.sub, "admin:test")
        .await
        .unwrap();
    let folder = server.state.config.mail.folder.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let link_token = loop {
        let found = std::fs::read_dir(&folder).ok().and_then(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                // Quoted-printable: soft line breaks out, `=3D` back to `=`.
                .map(|mail| {
                    mail.replace("=\r\n", "")
                        .replace("=\n", "")
                        .replace("=3D", "=")
                })
                .find_map(|mail| {
                    let at = mail.find("/reset-password?token=")? + "/reset-password?token=".len();
                    Some(
                        mail[at..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                            .collect::<String>(),
                    )
                })
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no reset mail in {}",
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    lanyard_core::email::reset_password(&server.state, &link_token, "yet another long passphrase")
        .await
        .unwrap();
    let events = poll_events(&server, &token, &config, 2).await;
    let types: Vec<String> = events.iter().map(event_type).collect();
    assert_eq!(types, [SESSION_REVOKED, CREDENTIAL_CHANGE]);
    assert_eq!(
        events[1]["events"][CREDENTIAL_CHANGE]["initiating_entity"],
        "user"
    );

    // SCIM `active: false`: disabled, by an administrator.
    let scim_token = crate::scim::scim_token(&server).await;
    let (status, _, body) = crate::scim::scim(
        &server,
        &scim_token,
        Method::PATCH,
        &format!("/Users/{}", alice.sub),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "active", "value": false }],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = poll_events(&server, &token, &config, 1).await;
    assert_eq!(event_type(&events[0]), DISABLED);
    assert_eq!(events[0]["sub_id"], iss_sub(&server, &alice.sub));
    server.stop().await;
}
