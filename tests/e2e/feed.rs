//! The revocation feed over HTTP (snapshot + Server-Sent Events) and the relying-party
//! mirror that follows it: for apps that cannot reach Lanyard's Redis.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_rp::HttpSource;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin::{admin, admin_token};
use crate::apps::{alice_at_each, on_redis, refused_within_a_second, start_app_on};
use crate::support::{
    ClientSpec, Db, Store, TestClient, TestServer, assert_oauth_error, lanyard_revoke,
};

const PASSWORD: &str = "correct horse battery staple";

/// A confidential client that reads the feed.
async fn reader(server: &TestServer) -> TestClient {
    server
        .client(ClientSpec {
            id: "feed-reader",
            public: false,
            grants: &["client_credentials"],
            scopes: &[],
            first_party: false,
        })
        .await
}

/// The demo app `wiki` following the feed (through a reader client of its own), ready.
async fn wiki_on_the_feed(
    server: &TestServer,
    feed: impl FnOnce(HttpSource) -> HttpSource,
    bound: Duration,
) -> crate::apps::App {
    let reader = reader(server).await;
    let source = HttpSource::discover(
        &server.issuer,
        &reader.id,
        reader.secret.as_deref().unwrap(),
    )
    .await
    .unwrap();
    let wiki = start_app_on(server, "wiki", Arc::new(feed(source)), bound).await;
    assert!(
        wiki.state
            .guard()
            .mirror()
            .ready(Duration::from_secs(5))
            .await
    );
    wiki
}

/// Reads SSE messages from `response` until `done` says so, or `limit` passes.
async fn read_until(
    response: &mut reqwest::Response,
    limit: Duration,
    mut done: impl FnMut(&str, &str) -> bool,
) -> bool {
    let deadline = Instant::now() + limit;
    let mut buffer = String::new();
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout_at(deadline.into(), response.chunk()).await;
        let Ok(Ok(Some(bytes))) = chunk else {
            return false;
        };
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}:")))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned()
            };
            if done(&field("event"), &field("data")) {
                return true;
            }
        }
    }
    false
}

#[tokio::test]
async fn the_feed_gives_a_snapshot_then_each_revocation_then_heartbeats() {
    for (db, store) in [(Db::Sqlite, Store::Memory), (Db::Postgres, Store::Redis)] {
        let server = TestServer::start(db, store).await;
        let reader = reader(&server).await;
        let http = reqwest::Client::new();
        let now = lanyard_store::Clock::now(&lanyard_store::SystemClock).as_secs();
        lanyard_revoke(
            &server,
            lanyard_store::Target::Jti("before".into()),
            now + 600,
        )
        .await;

        let discovery = lanyard_rp::Discovery::fetch(&server.issuer).await.unwrap();
        let snapshot_url = discovery.lanyard_revocation_snapshot_endpoint.unwrap();
        let events_url = discovery.lanyard_revocation_events_endpoint.unwrap();

        let r = http
            .get(&snapshot_url)
            .basic_auth(&reader.id, reader.secret.as_ref())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let snapshot: Value = r.json().await.unwrap();
        assert_eq!(
            snapshot["leeway_secs"],
            server.state.config.revocation_leeway.as_secs(),
            "how long entries outlive their tokens: {snapshot}"
        );
        let entries = snapshot["revocations"].as_array().unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e["kind"] == "jti" && e["value"] == "before"),
            "{snapshot}"
        );
        let (epoch, seq) = (
            snapshot["cursor"]["epoch"].as_str().unwrap().to_owned(),
            snapshot["cursor"]["seq"].as_u64().unwrap(),
        );

        let mut stream = http
            .get(&events_url)
            .query(&[("epoch", epoch.as_str()), ("seq", &seq.to_string())])
            .basic_auth(&reader.id, reader.secret.as_ref())
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), StatusCode::OK);
        assert!(
            stream.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let revoked_at = Instant::now();
        lanyard_revoke(
            &server,
            lanyard_store::Target::Jti("after".into()),
            now + 600,
        )
        .await;
        let arrived = read_until(&mut stream, Duration::from_secs(2), |event, data| {
            event == "revocation"
                && serde_json::from_str::<Value>(data).unwrap()["revocation"]["value"] == "after"
        })
        .await;
        assert!(arrived, "{db:?}/{store:?}: the revocation did not arrive");
        assert!(revoked_at.elapsed() < Duration::from_secs(1));
        // Nothing new: a heartbeat within the heartbeat interval (5 s) and a bit.
        let beat = read_until(&mut stream, Duration::from_secs(7), |event, _| {
            event == "heartbeat"
        })
        .await;
        assert!(beat, "{db:?}/{store:?}: no heartbeat");
        server.stop().await;
    }
}

#[tokio::test]
async fn only_a_confidential_client_may_read_the_feed() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let reader = reader(&server).await;
    let spa = server
        .client(ClientSpec {
            id: "spa",
            public: true,
            grants: &["authorization_code"],
            scopes: &["openid"],
            first_party: false,
        })
        .await;
    let http = reqwest::Client::new();
    for path in ["/revocations/snapshot", "/revocations/events?epoch=e&seq=0"] {
        let none = http.get(server.url(path)).send().await.unwrap();
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_oauth_error(none, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let wrong = http
            .get(server.url(path))
            .basic_auth(&reader.id, Some("not the secret"))
            .send()
            .await
            .unwrap();
        assert_oauth_error(wrong, StatusCode::UNAUTHORIZED, "invalid_client").await;
        let public = http
            .get(server.url(path))
            .basic_auth(&spa.id, Some(""))
            .send()
            .await
            .unwrap();
        assert_oauth_error(public, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    for query in [
        "",
        "?epoch=e",
        "?seq=1",
        "?epoch=e&seq=x",
        "?epoch=e&seq=1&seq=2",
    ] {
        let r = http
            .get(server.url(&format!("/revocations/events{query}")))
            .basic_auth(&reader.id, reader.secret.as_ref())
            .send()
            .await
            .unwrap();
        assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    server.stop().await;
}

/// Both sources at once: one app follows Redis, the other the HTTP feed; an admin's
/// revocation reaches both within a second.
#[tokio::test]
async fn an_app_on_the_feed_and_an_app_on_redis_both_refuse_within_a_second() {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = wiki_on_the_feed(&server, |f| f, Duration::from_secs(10)).await;
    let billing = on_redis(&server, "billing").await;
    let tokens = alice_at_each(&server, &[&wiki, &billing], Some(&alice.sub)).await;
    let token = admin_token(&server).await;
    let started = Instant::now();
    let r = admin(
        &server,
        &token,
        reqwest::Method::POST,
        "/revocations",
        Some(json!({ "sub": alice.sub })),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    for (base, token) in &tokens {
        refused_within_a_second(base, token, started).await;
    }
    server.stop().await;
}

/// An emergency key removal reaches apps within a second (issue 19 §4): the feed carries a
/// `kid` entry, and each app's guard fetches the JWKS again at once rather than trusting the
/// withdrawn key until its next scheduled refresh (5 minutes by default).
#[tokio::test]
async fn an_emergency_key_removal_reaches_apps_within_a_second() {
    let server = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = wiki_on_the_feed(&server, |f| f, Duration::from_secs(10)).await;
    let billing = on_redis(&server, "billing").await;
    let tokens = alice_at_each(&server, &[&wiki, &billing], Some(&alice.sub)).await;
    let leaked = crate::support::decode_jwt(&tokens[0].1).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = admin_token(&server).await;
    let started = Instant::now();
    let r = admin(
        &server,
        &token,
        reqwest::Method::DELETE,
        &format!("/keys/{leaked}"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    for (base, token) in &tokens {
        let r = refused_within_a_second(base, token, started).await;
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.contains("key this API does not know"),
            "{challenge}"
        );
    }
    server.stop().await;
}

/// Issue 19 §4: the feed tells an app only what it needs. Another app's `client_id`
/// watermark and the consent withdrawals at it (which name a person and the app they use)
/// are not sent, unless that app may send this one its tokens (it registered this one among
/// its resources); what every app shares (`sub`, `jti`) is.
#[tokio::test]
async fn the_feed_tells_an_app_only_what_it_needs() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let app = |id: &'static str| ClientSpec {
        id,
        public: false,
        grants: &["client_credentials"],
        scopes: &[],
        first_party: false,
    };
    let wiki = server.client(app("wiki")).await;
    server.client(app("crm")).await;
    let api = server.client(app("reports-api")).await;
    server.allow_resources("crm", &["reports-api"]).await;
    let now = lanyard_store::Clock::now(&lanyard_store::SystemClock).as_secs();
    for target in [
        lanyard_store::Target::ClientId("crm".into()),
        lanyard_store::Target::grant("alice-sub", "crm"),
        lanyard_store::Target::ClientId("wiki".into()),
        lanyard_store::Target::Sub("bob-sub".into()),
    ] {
        lanyard_revoke(&server, target, now).await;
    }
    let http = reqwest::Client::new();
    let seen = |reader: &TestClient| {
        let (http, server) = (&http, &server);
        let (id, secret) = (reader.id.clone(), reader.secret.clone());
        async move {
            let snapshot: Value = http
                .get(server.url("/revocations/snapshot"))
                .basic_auth(id, secret)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut values: Vec<String> = snapshot["revocations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    format!(
                        "{}:{}",
                        e["kind"].as_str().unwrap(),
                        e["value"].as_str().unwrap()
                    )
                })
                .collect();
            values.sort();
            (values, snapshot["cursor"].clone())
        }
    };
    let (for_wiki, cursor) = seen(&wiki).await;
    assert_eq!(
        for_wiki,
        ["client_id:wiki", "sub:bob-sub"],
        "nothing of crm's"
    );
    let (for_api, _) = seen(&api).await;
    assert_eq!(
        for_api,
        ["client_id:crm", "grant:crm alice-sub", "sub:bob-sub"],
        "crm sends its tokens to reports-api"
    );

    // The stream alike: wiki hears carol's revocation, not alice's withdrawal at crm.
    let mut stream = http
        .get(server.url("/revocations/events"))
        .query(&[
            ("epoch", cursor["epoch"].as_str().unwrap()),
            ("seq", &cursor["seq"].to_string()),
        ])
        .basic_auth(&wiki.id, wiki.secret.as_ref())
        .send()
        .await
        .unwrap();
    lanyard_revoke(
        &server,
        lanyard_store::Target::grant("alice-sub", "crm"),
        now + 1,
    )
    .await;
    lanyard_revoke(&server, lanyard_store::Target::Sub("carol-sub".into()), now).await;
    let mut heard = Vec::new();
    read_until(&mut stream, Duration::from_secs(3), |event, data| {
        if event == "revocation" {
            heard.push(serde_json::from_str::<Value>(data).unwrap()["revocation"]["value"].clone());
        }
        event == "revocation" && data.contains("carol-sub")
    })
    .await;
    assert_eq!(heard, [json!("carol-sub")]);
    server.stop().await;
}

/// The embedded default (in-process store, no Redis anywhere): apps follow the feed.
#[tokio::test]
async fn with_no_redis_at_all_the_feed_carries_revocations_to_apps() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki = wiki_on_the_feed(&server, |f| f, Duration::from_secs(10)).await;
    let tokens = alice_at_each(&server, &[&wiki], Some(&alice.sub)).await;
    let started = Instant::now();
    let now = lanyard_store::Clock::now(&lanyard_store::SystemClock).as_secs();
    lanyard_revoke(&server, lanyard_store::Target::Sub(alice.sub.clone()), now).await;
    let (base, token) = &tokens[0];
    let r = refused_within_a_second(base, token, started).await;
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("revoked"), "{challenge}");
    server.stop().await;
}

/// When Lanyard goes away, the app hears no heartbeat, and past its staleness bound its guard
/// answers 503 rather than "not revoked".
#[tokio::test]
async fn the_guard_fails_closed_when_the_feed_falls_silent() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    let alice = server.user("alice", PASSWORD).await;
    // The feed's heartbeat comes every 5 s, so with 1 s of silence the app reopens the stream
    // each second, and each reopening counts as hearing from Lanyard. A staleness bound of
    // 4 s leaves room for a few slow reopenings on a loaded machine (at 2 s, a CI machine
    // also building a release image saw 503 before the server stopped).
    let wiki = wiki_on_the_feed(
        &server,
        |f| f.silence(Duration::from_secs(1)),
        Duration::from_secs(4),
    )
    .await;
    let tokens = alice_at_each(&server, &[&wiki], Some(&alice.sub)).await;
    let (base, token) = tokens[0].clone();
    assert!(wiki.state.guard().mirror().status().healthy);
    server.stop().await;
    let http = reqwest::Client::new();
    let stopped = Instant::now();
    loop {
        let r = http
            .get(format!("{base}/api/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "still answering 200 after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!wiki.state.guard().mirror().status().healthy);
}
