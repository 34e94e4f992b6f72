//! Several Lanyard nodes on one database and one Redis behave as one (issue 8 §3): a sign-in
//! through one node is redeemed, refreshed and revoked through the others; a code or a
//! refresh token sent to two nodes at once is redeemed or rotated once at most; a key
//! rotated at one node is published and then used by the other; what a node keeps for a
//! second (a client, that it is not locked out) yields to a change made at another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lanyard_store::{Clock, ManualClock, MemoryStore, SystemClock, TokenStore};
use reqwest::StatusCode;
use serde_json::Value;

use crate::admin::{admin, admin_token};
use crate::apps::{on_redis, refused_within_a_second};
use crate::revoke::{field, userinfo};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, authorize_url, authorize_with_sign_in,
    client_post, decode_jwt, redirect_params, refresh, token_request,
};

const PASSWORD: &str = "correct horse battery staple";

fn exchange(code: &str, redirect_uri: &str) -> [(&'static str, String); 3] {
    [
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
    ]
}

async fn form_request(
    node: &TestServer,
    client: &crate::support::TestClient,
    form: &[(&'static str, String)],
) -> reqwest::Response {
    let borrowed: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    token_request(node, client, &borrowed).await
}

/// Signs alice in through node 1, redeems the code at node 2, refreshes at node 1 (the new
/// access token works at node 2 and at the app), then revokes the refresh token at node 2:
/// its access token is refused at node 1 and at the app within a second, and it refreshes no
/// more. Returns the browser, signed in, and the revoked access token.
async fn across_two_nodes(
    node1: &TestServer,
    node2: &TestServer,
    wiki: &crate::apps::App,
) -> (Browser, String) {
    let browser = Browser::new();
    let code = authorize_with_sign_in(node1, &browser, &wiki.client, &[], "alice", PASSWORD).await;
    let r = form_request(
        node2,
        &wiki.client,
        &exchange(&code, &wiki.client.redirect_uri),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let r = refresh(node1, &wiki.client, field(&tokens, "refresh_token"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let refreshed: Value = r.json().await.unwrap();
    let access = field(&refreshed, "access_token");
    assert_eq!(userinfo(node2, access).await.status(), StatusCode::OK);
    let api = reqwest::Client::new()
        .get(format!("{}/api/me", wiki.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    let started = Instant::now();
    let r = client_post(
        node2,
        "/revoke",
        &wiki.client,
        &[("token", field(&refreshed, "refresh_token"))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        userinfo(node1, access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    refused_within_a_second(&wiki.base, access, started).await;
    let r = refresh(
        node1,
        &wiki.client,
        field(&refreshed, "refresh_token"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    (browser, access.to_owned())
}

#[tokio::test]
async fn two_nodes_on_one_database_and_redis_behave_as_one() {
    let node1 = TestServer::start(Db::Postgres, Store::Redis).await;
    node1.user("alice", PASSWORD).await;
    let wiki = on_redis(&node1, "wiki").await;
    let node2 = node1.another_node(None).await;

    let (browser, _) = across_two_nodes(&node1, &node2, &wiki).await;

    // The SSO session is the deployment's: node 2 knows the browser too.
    let answer = browser
        .get(
            &authorize_url(&node1, &wiki.client, &[("prompt", "none")])
                .replace(&node1.issuer, &node2.issuer),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert!(
        redirect_params(&answer).1.contains_key("code"),
        "signed in at node 2 too"
    );
    node2.stop().await;
    node1.stop().await;
}

#[tokio::test]
async fn a_code_or_refresh_token_sent_to_both_nodes_at_once_succeeds_once() {
    const RACES: usize = 100;
    let node1 = TestServer::start(Db::Postgres, Store::Redis).await;
    node1.user("alice", PASSWORD).await;
    let wiki = node1.client(ClientSpec::web("wiki")).await;
    let node2 = node1.another_node(None).await;
    let browser = Browser::new();
    let first = authorize_with_sign_in(&node1, &browser, &wiki, &[], "alice", PASSWORD).await;
    // Codes by single sign-on: the same browser, no password.
    let mut codes = vec![first];
    while codes.len() < 2 * RACES {
        let answer = browser.get(&authorize_url(&node1, &wiki, &[])).await;
        codes.push(redirect_params(&answer).1["code"].clone());
    }
    let (raced, spare) = codes.split_at(RACES);

    // Never two redemptions. The second is a replay, and a replay revokes what the code
    // issued (RFC 6749 §4.1.2), even an issuance still in flight: so the winner's tokens
    // die, and when the replay overtakes the issuance neither answer is a 200.
    let mut won = 0;
    for code in raced {
        let form = exchange(code, &wiki.redirect_uri);
        let (a, b) = tokio::join!(
            form_request(&node1, &wiki, &form),
            form_request(&node2, &wiki, &form)
        );
        let mut winner = None;
        for r in [a, b] {
            if r.status() == StatusCode::OK {
                assert!(winner.is_none(), "a code was redeemed twice");
                winner = Some(r.json::<Value>().await.unwrap());
            } else {
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"], "invalid_grant", "{body}");
            }
        }
        if let Some(tokens) = winner {
            won += 1;
            assert_eq!(
                userinfo(&node1, field(&tokens, "access_token"))
                    .await
                    .status(),
                StatusCode::UNAUTHORIZED,
                "the replay revoked what the winner got"
            );
        }
    }
    assert!(
        won > RACES / 2,
        "most races have a winner: {won} of {RACES}"
    );

    // Refresh tokens of codes redeemed once (a replayed code revokes what it issued).
    let mut refresh_tokens = Vec::new();
    for code in spare {
        let r = form_request(&node2, &wiki, &exchange(code, &wiki.redirect_uri)).await;
        assert_eq!(r.status(), StatusCode::OK);
        let tokens: Value = r.json().await.unwrap();
        refresh_tokens.push(field(&tokens, "refresh_token").to_owned());
    }
    for token in &refresh_tokens {
        let (a, b) = tokio::join!(
            refresh(&node1, &wiki, token, None),
            refresh(&node2, &wiki, token, None)
        );
        let (sa, sb) = (a.status(), b.status());
        let (ja, jb): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
        // One successor only: the loser is refused, or (a retry within the grace window)
        // handed the very same successor.
        match (sa, sb) {
            (StatusCode::OK, StatusCode::OK) => {
                assert_eq!(ja["refresh_token"], jb["refresh_token"], "one successor");
            }
            (StatusCode::OK, _) => assert_eq!(jb["error"], "invalid_grant"),
            (_, StatusCode::OK) => assert_eq!(ja["error"], "invalid_grant"),
            other => panic!("no refresh succeeded: {other:?} {ja} {jb}"),
        }
    }
    node2.stop().await;
    node1.stop().await;
}

/// The `kid` of a fresh `client_credentials` token from `node`.
async fn kid_at(node: &TestServer, service: &crate::support::TestClient) -> String {
    let r = reqwest::Client::new()
        .post(node.url("/token"))
        .basic_auth(&service.id, service.secret.as_deref())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    decode_jwt(body["access_token"].as_str().unwrap()).0["kid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls until `check` holds, failing after `limit`.
async fn within<F: std::future::Future<Output = bool>>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The nodes' own reload loop, on the real clock, as deployed (1 s here instead of 60 s, and
/// a 5 s publication window instead of an hour):
/// a key rotated at node 1 is published by node 2 within two reloads, and node 2 signs with
/// it once the publication window is over, with nobody stepping anything by hand.
#[tokio::test]
async fn each_nodes_reload_loop_picks_up_a_rotation_by_itself() {
    let node1 = TestServer::start_with(Db::Postgres, Store::Redis, |c| {
        c.keys.refresh = Duration::from_secs(1);
        // Long enough that making the RSA key (up to a second or two on a busy machine, and
        // the window counts from before) leaves the key published before it signs.
        c.keys.publish = Duration::from_secs(5);
    })
    .await;
    let node2 = node1.another_node(None).await;
    let service = service(&node1).await;
    let old = kid_at(&node2, &service).await;
    // Before the call: the key's window starts when it is made, inside the call (an RSA key
    // can take a second to make on a busy machine).
    let rotated = Instant::now();
    let new = lanyard_core::keys::rotate(&node1.state, "test")
        .await
        .unwrap()
        .remove(0)
        .kid;
    within(
        Duration::from_secs(3),
        "node 2 publishes the new key",
        || async { crate::keys::jwks_kids(&node2).await.contains(&new) },
    )
    .await;
    assert_eq!(
        kid_at(&node2, &service).await,
        old,
        "not signing before the window"
    );
    within(
        Duration::from_secs(5 + 3),
        "node 2 signs with the new key after the window",
        || async { kid_at(&node2, &service).await == new },
    )
    .await;
    assert!(
        rotated.elapsed() >= Duration::from_millis(4900),
        "not before the window: {:?}",
        rotated.elapsed()
    );
    assert!(
        crate::keys::jwks_kids(&node2).await.contains(&old),
        "the old key stays published"
    );
    node2.stop().await;
    node1.stop().await;
}

#[tokio::test]
async fn a_key_rotated_at_one_node_is_published_then_used_by_the_other() {
    let clock = ManualClock::new(SystemClock.now());
    let node1 = TestServer::start_with_clock(clock.clone()).await;
    let store: Arc<dyn TokenStore> = Arc::new(
        MemoryStore::with_clock(
            lanyard_core::config::Config::default().store_config(),
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    let node2 = node1
        .another_node(Some((
            Arc::new(clock.clone()) as Arc<dyn Clock>,
            Some(store),
        )))
        .await;
    let service = node1
        .client(ClientSpec {
            id: "service",
            public: false,
            grants: &["client_credentials"],
            scopes: &[],
            first_party: true,
        })
        .await;
    let old = kid_at(&node2, &service).await;
    let new = lanyard_core::keys::rotate(&node1.state, "test")
        .await
        .unwrap()
        .remove(0)
        .kid;
    assert!(crate::keys::jwks_kids(&node1).await.contains(&new));
    // Node 2 publishes it at its next reload (every 60 s; here, its tick).
    lanyard_core::keys::tick(&node2.state).await.unwrap();
    assert!(
        crate::keys::jwks_kids(&node2).await.contains(&new),
        "published by node 2"
    );
    assert_eq!(
        kid_at(&node2, &service).await,
        old,
        "not signing before the window"
    );
    // After the publication window, both sign with it; the old key stays published.
    clock.advance(Duration::from_secs(3601));
    for node in [&node1, &node2] {
        lanyard_core::keys::tick(&node.state).await.unwrap();
    }
    assert_eq!(kid_at(&node2, &service).await, new);
    assert_eq!(kid_at(&node1, &service).await, new);
    assert!(crate::keys::jwks_kids(&node2).await.contains(&old));
    node2.stop().await;
    node1.stop().await;
}

/// The same deployment on a Redis Cluster (three local masters): two nodes, an app whose
/// revocation mirror follows the cluster's stream, a sign-in, a refresh and a revocation.
#[tokio::test]
async fn two_nodes_on_a_redis_cluster_behave_as_one() {
    let cluster = tokio::task::spawn_blocking(lanyard_store::test_redis::OwnCluster::shared)
        .await
        .unwrap();
    let node1 = TestServer::start_with(Db::Postgres, Store::Redis, |c| {
        c.redis_url = Some(cluster.url());
        c.redis_topology = lanyard_store::RedisTopology::Cluster;
    })
    .await;
    node1.user("alice", PASSWORD).await;
    let wiki = on_redis(&node1, "wiki").await;
    let node2 = node1.another_node(None).await;

    across_two_nodes(&node1, &node2, &wiki).await;
    // Readiness asks the cluster too.
    let ready = reqwest::get(node2.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    node2.stop().await;
    cluster.delete_prefix(&node1.state.config.redis_prefix);
    node1.stop().await;
}

/// The same deployment through Redis Sentinel, configured as in production
/// (`redis_topology = sentinel`, `redis_url` naming the sentinel, `redis_sentinel_master`):
/// two nodes and an app, a sign-in, a refresh and a revocation. Then the sentinel fails the
/// master over to its replica, and the nodes and the app follow by themselves: what was
/// revoked stays refused, a sign-in goes through both nodes again, and a revocation reaches
/// the app within a second.
#[tokio::test]
async fn two_nodes_through_redis_sentinel_behave_as_one_and_follow_a_failover() {
    let sentinel = tokio::task::spawn_blocking(lanyard_store::test_redis::OwnSentinel::start)
        .await
        .unwrap();
    let url = sentinel.sentinel.clone();
    let node1 = TestServer::start_with(Db::Postgres, Store::Redis, move |c| {
        c.redis_url = Some(url);
        c.redis_topology = lanyard_store::RedisTopology::Sentinel;
        c.redis_sentinel_master = "lanyard".to_owned();
    })
    .await;
    node1.user("alice", PASSWORD).await;
    let wiki = on_redis(&node1, "wiki").await;
    let node2 = node1.another_node(None).await;
    let (browser, revoked) = across_two_nodes(&node1, &node2, &wiki).await;

    let _sentinel = sentinel.failed_over().await;

    // A sign-in through both nodes again (the SSO session survived the failover); the
    // first call after it may be a 503, never anything else.
    let deadline = Instant::now() + Duration::from_secs(10);
    let tokens: Value = loop {
        let answer = browser
            .get(&authorize_url(&node2, &wiki.client, &[("prompt", "none")]))
            .await;
        let r = if answer.status() == StatusCode::SEE_OTHER {
            let code = redirect_params(&answer).1["code"].clone();
            form_request(
                &node1,
                &wiki.client,
                &exchange(&code, &wiki.client.redirect_uri),
            )
            .await
        } else {
            answer
        };
        match r.status() {
            StatusCode::OK => break r.json().await.unwrap(),
            StatusCode::SERVICE_UNAVAILABLE if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("after the failover: {other} {}", r.text().await.unwrap()),
        }
    };
    for node in [&node1, &node2] {
        assert_eq!(
            userinfo(node, &revoked).await.status(),
            StatusCode::UNAUTHORIZED,
            "revoked before the failover, refused after it"
        );
    }
    let access = field(&tokens, "access_token");
    assert_eq!(userinfo(&node2, access).await.status(), StatusCode::OK);
    let started = Instant::now();
    let r = client_post(
        &node2,
        "/revoke",
        &wiki.client,
        &[("token", field(&tokens, "refresh_token"))],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    refused_within_a_second(&wiki.base, access, started).await;
    node2.stop().await;
    node1.stop().await;
}

/// SECURITY.md §5.3 F6: a node dies after it consumed a code and before it answered (here:
/// the store redemption it made, then nothing). The client retries at another node: the code
/// is spent, so `invalid_grant`, and no token was ever issued for it.
#[tokio::test]
async fn a_code_whose_node_died_mid_exchange_is_spent_everywhere() {
    // `first` holds the shared database; nodes 1 and 2 are two more of the deployment.
    let first = TestServer::start(Db::Postgres, Store::Redis).await;
    first.user("alice", PASSWORD).await;
    let wiki = first.client(ClientSpec::web("wiki")).await;
    let node1 = first.another_node(None).await;
    let node2 = first.another_node(None).await;
    let code = authorize_with_sign_in(&node1, &Browser::new(), &wiki, &[], "alice", PASSWORD).await;
    // Node 1 took the code out of the store, then died before minting anything.
    let taken = node1.store().redeem_code(&code, &wiki.id).await.unwrap();
    assert!(
        matches!(taken, lanyard_store::Redemption::Redeemed(_)),
        "{taken:?}"
    );
    node1.stop().await;
    let r = form_request(&node2, &wiki, &exchange(&code, &wiki.redirect_uri)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    node2.stop().await;
    first.stop().await;
}

/// SECURITY.md §5.3 F6, the other half: the node minted the tokens and died before its
/// answer reached the client. The client retries at another node: `invalid_grant`, and the
/// retry revokes what the first exchange issued (a code used twice, RFC 6749 §4.1.2), so the
/// tokens the client never received are refused everywhere, at once.
#[tokio::test]
async fn tokens_minted_by_a_node_that_died_before_answering_are_refused_after_the_retry() {
    let first = TestServer::start(Db::Postgres, Store::Redis).await;
    first.user("alice", PASSWORD).await;
    let wiki = first.client(ClientSpec::web("wiki")).await;
    let node1 = first.another_node(None).await;
    let node2 = first.another_node(None).await;
    let code = authorize_with_sign_in(
        &node1,
        &Browser::new(),
        &wiki,
        &[("scope", "openid offline_access")],
        "alice",
        PASSWORD,
    )
    .await;
    // Node 1 answers, but the answer is lost with the node.
    let r = form_request(&node1, &wiki, &exchange(&code, &wiki.redirect_uri)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let lost: Value = r.json().await.unwrap();
    node1.stop().await;
    assert_eq!(
        userinfo(&node2, field(&lost, "access_token"))
            .await
            .status(),
        StatusCode::OK,
        "the tokens work until the retry"
    );
    let r = form_request(&node2, &wiki, &exchange(&code, &wiki.redirect_uri)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        userinfo(&node2, field(&lost, "access_token"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the lost access token is refused"
    );
    let r = refresh(&node2, &wiki, field(&lost, "refresh_token"), None).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"], "invalid_grant",
        "the lost refresh token is refused"
    );
    node2.stop().await;
    first.stop().await;
}

/// A load balancer in front of the nodes: each request goes to the next node in turn; a
/// node taken out gets no new requests, and is stopped once those it has in flight are done
/// (connection draining).
#[derive(Default)]
struct Balancer {
    nodes: std::sync::Mutex<(Vec<Arc<TestServer>>, usize)>,
}

impl Balancer {
    fn pick(&self) -> Arc<TestServer> {
        let mut guard = self.nodes.lock().unwrap();
        let (nodes, next) = &mut *guard;
        *next += 1;
        nodes[*next % nodes.len()].clone()
    }

    fn add(&self, node: TestServer) {
        self.nodes.lock().unwrap().0.push(Arc::new(node));
    }

    /// Takes the longest-serving node out, waits for its requests in flight, and stops it.
    async fn drain_oldest(&self) {
        let mut node = self.nodes.lock().unwrap().0.remove(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let node = loop {
            match Arc::try_unwrap(node) {
                Ok(node) => break node,
                Err(busy) => node = busy,
            }
            assert!(Instant::now() < deadline, "a request never finished");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        node.stop().await;
    }

    fn all(&self) -> Vec<Arc<TestServer>> {
        self.nodes.lock().unwrap().0.clone()
    }
}

/// SECURITY.md §5.3 F12: every node restarted in turn, behind a load balancer, while people
/// sign in without pause (each request of a sign-in going to whichever node is next):
/// every sign-in completes, and no session is lost, since none lives in a node.
#[tokio::test]
async fn a_rolling_restart_under_continuous_sign_ins_loses_no_session() {
    let first = TestServer::start(Db::Postgres, Store::Redis).await;
    first.user("alice", PASSWORD).await;
    let wiki = first.client(ClientSpec::web("wiki")).await;
    let balancer = Balancer::default();
    for _ in 0..2 {
        balancer.add(first.another_node(None).await);
    }
    let signed_in = std::sync::Mutex::new(Vec::<Browser>::new());
    let failures = std::sync::Mutex::new(Vec::<String>::new());
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sign_ins = || async {
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let browser = Browser::new();
            let page = browser
                .get(&authorize_url(&balancer.pick(), &wiki, &[]))
                .await;
            if page.status() != StatusCode::OK {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("authorize: {}", page.status()));
                continue;
            }
            let page = page.text().await.unwrap();
            let answer = browser
                .sign_in(&balancer.pick(), &page, "alice", PASSWORD, false)
                .await;
            let answer = browser.allowing(&balancer.pick(), answer).await;
            if answer.status() != StatusCode::SEE_OTHER {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("sign-in: {}", answer.status()));
                continue;
            }
            let code = redirect_params(&answer).1["code"].clone();
            let r = form_request(
                &balancer.pick(),
                &wiki,
                &exchange(&code, &wiki.redirect_uri),
            )
            .await;
            if r.status() == StatusCode::OK {
                signed_in.lock().unwrap().push(browser);
            } else {
                failures
                    .lock()
                    .unwrap()
                    .push(format!("exchange: {}", r.status()));
            }
        }
    };
    let restarts = async {
        let mut during = Vec::new();
        for _ in 0..4 {
            let before = signed_in.lock().unwrap().len();
            balancer.add(first.another_node(None).await);
            balancer.drain_oldest().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            during.push(signed_in.lock().unwrap().len() - before);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        during
    };
    let (during, (), ()) = tokio::join!(restarts, sign_ins(), sign_ins());
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "sign-ins failed: {failures:?}");
    assert!(
        during.iter().all(|n| *n > 0),
        "people signed in through every restart: {during:?}"
    );
    // Everyone who signed in is still signed in, at every node now up (all new ones).
    let browsers = signed_in.into_inner().unwrap();
    for node in balancer.all() {
        for (i, browser) in browsers.iter().enumerate() {
            let answer = browser
                .get(&authorize_url(&node, &wiki, &[("prompt", "none")]))
                .await;
            let (_, params) = redirect_params(&answer);
            assert!(
                params.contains_key("code"),
                "browser {i} of {} lost its session: {params:?}",
                browsers.len()
            );
        }
    }
    while !balancer.all().is_empty() {
        balancer.drain_oldest().await;
    }
    first.stop().await;
}

/// A service registered at `node` for `client_credentials` (id `svc`).
async fn service(node: &TestServer) -> TestClient {
    node.client(ClientSpec {
        grants: &["client_credentials"],
        scopes: &["reports:read"],
        ..ClientSpec::web("svc")
    })
    .await
}

/// Sends `client`'s `client_credentials` request to `node` until it is refused with a
/// description containing `refusal`; returns how long that took (at most `limit`).
async fn refused_at(
    node: &TestServer,
    client: &TestClient,
    refusal: &str,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let r = token_request(node, client, &[("grant_type", "client_credentials")]).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            let body: Value = r.json().await.unwrap();
            let description = body["error_description"].as_str().unwrap_or_default();
            if description.contains(refusal) {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < limit,
            "{} still not refused ({refusal}) after {limit:?}",
            client.id
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A node keeps a client for at most a second (`crates/lanyard-core/src/recent.rs`). A new
/// secret made at node 2 is in force at node 2 at once and at node 1 within that second.
#[tokio::test]
async fn a_new_secret_made_at_one_node_holds_at_the_other_within_a_second() {
    let node1 = TestServer::start(Db::Postgres, Store::Redis).await;
    let node2 = node1.another_node(None).await;
    let old = service(&node1).await;
    let grant = [("grant_type", "client_credentials")];
    // Node 1 now keeps the client and its clean record.
    assert_eq!(
        token_request(&node1, &old, &grant).await.status(),
        StatusCode::OK
    );

    let ops = admin_token(&node2).await;
    let r = admin(
        &node2,
        &ops,
        reqwest::Method::POST,
        "/clients/svc/secret",
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let made: Value = r.json().await.unwrap();
    let new = TestClient {
        secret: Some(field(&made, "client_secret").to_owned()),
        ..old.clone()
    };
    let failed = "client authentication failed";
    let at_once = refused_at(&node2, &old, failed, Duration::from_millis(1)).await;
    assert!(
        at_once < Duration::from_millis(500),
        "node 2 made it: at once"
    );
    let took = refused_at(&node1, &old, failed, Duration::from_millis(1500)).await;
    assert!(took <= Duration::from_millis(1200), "node 1 after {took:?}");
    assert_eq!(
        token_request(&node1, &new, &grant).await.status(),
        StatusCode::OK
    );

    node2.stop().await;
    node1.stop().await;
}

/// Nodes started at once on a database without keys (a first deployment of several
/// replicas) make one signing key between them, so a token signed by one verifies at the
/// other from the first second (found by the bench runner's two-node run: each node made its
/// own key, and the other refused its tokens until its next key reload).
#[tokio::test]
async fn nodes_started_at_once_on_an_empty_database_sign_with_one_key() {
    let first = TestServer::start(Db::Postgres, Store::Redis).await;
    let svc = service(&first).await;
    for _ in 0..3 {
        let now = SystemClock.now();
        for key in first.state.db.keys().published(now).await.unwrap() {
            first.state.db.keys().delete(&key.kid).await.unwrap();
        }
        let (a, b) = tokio::join!(first.another_node(None), first.another_node(None));
        assert_eq!(a.state.keys.signing_kid(), b.state.keys.signing_kid());
        let stored = first.state.db.keys().published(now).await.unwrap();
        assert_eq!(stored.len(), 1, "one key between them");
        let r = token_request(&a, &svc, &[("grant_type", "client_credentials")]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let token: Value = r.json().await.unwrap();
        let r = client_post(
            &b,
            "/introspect",
            &svc,
            &[("token", field(&token, "access_token"))],
        )
        .await;
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["active"], true, "{answer}");
        b.stop().await;
        a.stop().await;
    }
    first.stop().await;
}

/// What the copy tests below time themselves by: how far into the current second it is.
fn into_second() -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Duration::from_millis(u64::from(now.subsec_millis()))
}

/// Waits until half-way through a second: a copy a node makes now is still kept (1 s) when
/// the next whole second has begun, so a token issued from it then has an `iat` a later whole
/// second than a revocation made now.
async fn half_way_through_a_second() {
    let to_half = (1_500 - into_second().as_millis() as u64) % 1_000;
    tokio::time::sleep(Duration::from_millis(to_half)).await;
}

/// Waits until 200 ms into the next second.
async fn into_the_next_second() {
    tokio::time::sleep(Duration::from_millis(1200) - into_second()).await;
}

/// `access_token` is refused at every one of `nodes`.
async fn refused_everywhere(nodes: &[&TestServer], access_token: &str) {
    for node in nodes {
        let judged = lanyard_core::revocation::live_access_token(&node.state, access_token).await;
        assert!(judged.is_err(), "accepted at {}", node.issuer);
    }
}

/// A user disabled at node 2 while node 1 still holds their row as enabled (for up to a
/// second) gets no usable token at node 1 in that second, for a code made before. Two guards:
/// the session the code was made in has ended, so the exchange is refused; and a token issued
/// from the copy anyway would fall under the disable's revocation, which reaches past the
/// copies.
#[tokio::test]
async fn a_user_disabled_at_one_node_gets_no_usable_token_from_another_nodes_copy() {
    let node1 = TestServer::start(Db::Postgres, Store::Redis).await;
    let alice = node1.user("alice", PASSWORD).await;
    let crm = node1.client(ClientSpec::third_party("crm")).await;
    let node2 = node1.another_node(None).await;
    let ops = admin_token(&node2).await;
    let browser = Browser::new();
    let first = authorize_with_sign_in(&node1, &browser, &crm, &[], "alice", PASSWORD).await;
    let answer = browser.get(&authorize_url(&node1, &crm, &[])).await;
    let second = redirect_params(&answer).1["code"].clone();
    // Node 1's copy made half-way through a second (see `half_way_through_a_second`).
    half_way_through_a_second().await;
    let r = form_request(&node1, &crm, &exchange(&first, &crm.redirect_uri)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let path = format!("/users/{}/disable", alice.sub);
    let r = admin(&node2, &ops, reqwest::Method::POST, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    into_the_next_second().await;
    let r = form_request(&node1, &crm, &exchange(&second, &crm.redirect_uri)).await;
    if r.status() == StatusCode::OK {
        let token: Value = r.json().await.unwrap();
        refused_everywhere(&[&node1, &node2], field(&token, "access_token")).await;
    } else {
        crate::support::assert_oauth_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    node2.stop().await;
    node1.stop().await;
}

/// A client deleted at node 2 while node 1 still holds its copy (for up to a second) may be
/// issued a token at node 1 in that second; the deletion's revocation reaches past it, so
/// that token is refused everywhere.
#[tokio::test]
async fn a_token_issued_from_a_copy_of_a_deleted_client_is_refused() {
    let node1 = TestServer::start(Db::Postgres, Store::Redis).await;
    let node2 = node1.another_node(None).await;
    let svc = service(&node1).await;
    let ops = admin_token(&node2).await;
    let grant = [("grant_type", "client_credentials")];
    half_way_through_a_second().await;
    assert_eq!(
        token_request(&node1, &svc, &grant).await.status(),
        StatusCode::OK
    );
    let r = admin(&node2, &ops, reqwest::Method::DELETE, "/clients/svc", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    into_the_next_second().await;
    let r = token_request(&node1, &svc, &grant).await;
    assert_eq!(r.status(), StatusCode::OK, "node 1 answers from its copy");
    let token: Value = r.json().await.unwrap();
    refused_everywhere(&[&node1, &node2], field(&token, "access_token")).await;
    node2.stop().await;
    node1.stop().await;
}
