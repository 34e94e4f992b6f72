//! Signing keys: rotation (published before signing, retired after the last token expires),
//! emergency removal, the JWKS cache lifetime, and no rejected token while keys rotate.

use std::time::{Duration, Instant};

use lanyard_core::tokens::{SigningAlg, load_or_create, rotation};
use lanyard_store::{Clock, ManualClock, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::admin::{admin, admin_token};
use crate::support::{
    Browser, ClientSpec, Db, Store, TestClient, TestServer, client_post, code_flow, decode_jwt,
    token_request,
};

const PASSWORD: &str = "correct horse battery staple";

/// `server`'s JWKS.
async fn jwks(server: &TestServer) -> Value {
    reqwest::get(server.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The `kid`s in `server`'s JWKS.
pub(crate) async fn jwks_kids(server: &TestServer) -> Vec<String> {
    jwks(server).await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    decode_jwt(token).0["kid"].as_str().unwrap().to_owned()
}

/// A browser asks for the app's profile page, signs in at Lanyard, and lands on that page
/// showing `sub`.
async fn signs_in_to_the_profile_page(server: &TestServer, app: &crate::apps::App, sub: &str) {
    let browser = Browser::new();
    let (_, page) = crate::apps::browse(&browser, &format!("{}/profile", app.base)).await;
    let (steps, profile) = crate::apps::sign_in_and_follow(server, &browser, &page).await;
    assert_eq!(
        steps.last().unwrap(),
        &(StatusCode::OK, format!("{}/profile", app.base)),
        "{steps:?}"
    );
    assert!(profile.contains(sub), "{profile}");
}

/// A client that calls the `wiki` API as itself.
async fn caller(server: &TestServer) -> TestClient {
    let caller = server
        .client(ClientSpec {
            id: "caller",
            public: false,
            grants: &["client_credentials"],
            scopes: &["reports:read"],
            first_party: false,
        })
        .await;
    server.allow_resources(&caller.id, &["wiki"]).await;
    caller
}

async fn caller_token(server: &TestServer, caller: &TestClient, resource: Option<&str>) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let r = token_request(server, caller, &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn keys_listed(server: &TestServer, token: &str) -> Vec<(String, String)> {
    let r = admin(server, token, Method::GET, "/keys", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kid"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_key_is_published_before_it_signs_and_after_it_stops() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock(clock.clone()).await;
    let caller = caller(&server).await;
    let token = admin_token(&server).await;
    let first = kid_of(&token);
    assert_eq!(jwks_kids(&server).await, std::slice::from_ref(&first));
    let r = reqwest::get(server.url("/jwks")).await.unwrap();
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=1800",
        "half the 1 h publication window"
    );

    // Rotate: the new key is published at once but does not sign yet.
    let r = admin(&server, &token, Method::POST, "/keys/rotate", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let next: Value = r.json().await.unwrap();
    assert_eq!(
        next["keys"].as_array().unwrap().len(),
        1,
        "one algorithm: {next}"
    );
    let next = &next["keys"][0];
    assert_eq!(next["alg"], "RS256");
    let second = next["kid"].as_str().unwrap().to_owned();
    assert_eq!(next["state"], "next");
    assert_eq!(
        next["signs_from"].as_i64().unwrap(),
        clock.now().as_secs() + 3600
    );
    let mut published = jwks_kids(&server).await;
    published.sort();
    let mut both = vec![first.clone(), second.clone()];
    both.sort();
    assert_eq!(published, both);
    assert_eq!(kid_of(&caller_token(&server, &caller, None).await), first);
    lanyard_core::keys::tick(&server.state).await.unwrap();
    assert_eq!(
        kid_of(&caller_token(&server, &caller, None).await),
        first,
        "not before the window"
    );

    // After the window: the new key signs; the old one stays published.
    clock.advance(Duration::from_secs(3601));
    lanyard_core::keys::tick(&server.state).await.unwrap();
    assert_eq!(kid_of(&caller_token(&server, &caller, None).await), second);
    assert!(jwks_kids(&server).await.contains(&first));
    let listed = keys_listed(&server, &token).await;
    assert!(
        listed.contains(&(first.clone(), "retired".to_owned())),
        "{listed:?}"
    );
    assert!(
        listed.contains(&(second.clone(), "active".to_owned())),
        "{listed:?}"
    );

    // Once every token the old key signed has expired (1 h, plus a reload interval and a
    // minute of leeway), it leaves the JWKS.
    clock.advance(Duration::from_secs(3600 + 60 + 61));
    lanyard_core::keys::tick(&server.state).await.unwrap();
    assert_eq!(jwks_kids(&server).await, std::slice::from_ref(&second));

    // And the schedule: 30 days after the key was made, less the window, the next appears.
    clock.advance(Duration::from_secs(30 * 24 * 3600));
    lanyard_core::keys::tick(&server.state).await.unwrap();
    assert_eq!(
        jwks_kids(&server).await.len(),
        2,
        "the scheduled next key is published"
    );
    assert_eq!(kid_of(&caller_token(&server, &caller, None).await), second);
    server.stop().await;
}

#[tokio::test]
async fn a_leaked_key_is_removed_at_once() {
    let server = TestServer::start(Db::Sqlite, Store::Memory).await;
    server.user("alice", PASSWORD).await;
    let wiki = server.client(ClientSpec::web("wiki")).await;
    let alices = crate::support::offline_tokens(&server, &wiki, "alice").await;
    let access = alices["access_token"].as_str().unwrap();
    let token = admin_token(&server).await;
    let leaked = kid_of(&token);

    let r = admin(
        &server,
        &token,
        Method::DELETE,
        &format!("/keys/{leaked}"),
        None,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let removed: Value = r.json().await.unwrap();
    let signing = removed["signing"].as_str().unwrap().to_owned();
    assert_ne!(signing, leaked);
    assert_eq!(jwks_kids(&server).await, std::slice::from_ref(&signing));
    // Everything the leaked key signed is refused, the admin's own token included.
    let r = crate::revoke::userinfo(&server, access).await;
    crate::support::assert_bearer_challenge(&r, StatusCode::UNAUTHORIZED, Some("invalid_token"));
    let r = admin(&server, &token, Method::GET, "/keys", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // New tokens carry the new key and work; the refresh token (not a JWT) still refreshes.
    let refreshed: Value = crate::support::refresh(
        &server,
        &wiki,
        alices["refresh_token"].as_str().unwrap(),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let fresh = refreshed["access_token"].as_str().unwrap();
    assert_eq!(kid_of(fresh), signing);
    assert_eq!(
        crate::revoke::userinfo(&server, fresh).await.status(),
        StatusCode::OK
    );
    let token = admin_token_again(&server).await;
    let r = admin(&server, &token, Method::DELETE, "/keys/nothing", None).await;
    crate::admin::assert_api_error(r, StatusCode::NOT_FOUND, "not_found", None).await;
    server.stop().await;
}

/// A second token for the `ops` client registered by `admin_token`.
async fn admin_token_again(server: &TestServer) -> String {
    let ops = server.state.db.clients().get("ops").await.unwrap().unwrap();
    let secret = {
        // The secret was shown once; rotate it through the library to get one.
        lanyard_core::clients::rotate_secret(&server.state, &ops.client_id, "test")
            .await
            .unwrap()
    };
    let ops = TestClient {
        id: "ops".into(),
        secret: Some(secret),
        redirect_uri: String::new(),
    };
    let r = token_request(
        server,
        &ops,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "lanyard:admin"),
        ],
    )
    .await;
    let body: Value = r.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Keys rotate while an app checks a steady stream of fresh tokens: none is refused.
#[tokio::test]
async fn rotation_under_load_refuses_no_token() {
    let server = TestServer::start_with(Db::Sqlite, Store::Redis, |c| {
        c.keys.publish = Duration::from_secs(1);
    })
    .await;
    let wiki = crate::apps::on_redis(&server, "wiki").await;
    let caller = caller(&server).await;
    let token = admin_token(&server).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut rotated = false;
    let mut promoted = false;
    let mut kids = std::collections::BTreeSet::new();
    let mut checked = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let at = caller_token(&server, &caller, Some("wiki")).await;
        kids.insert(kid_of(&at));
        let r = http
            .get(format!("{}/api/me", wiki.base))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "a token signed by {} was refused",
            kid_of(&at)
        );
        checked += 1;
        if !rotated && started.elapsed() > Duration::from_millis(500) {
            let r = admin(&server, &token, Method::POST, "/keys/rotate", None).await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
            rotated = true;
        }
        // Step the rotation until the new key signs (its window counts from when it was
        // stored, after its making).
        if rotated && kids.len() < 2 && started.elapsed() > Duration::from_millis(1700) {
            lanyard_core::keys::tick(&server.state).await.unwrap();
            promoted = true;
        }
    }
    assert!(promoted);
    assert_eq!(
        kids.len(),
        2,
        "tokens from both keys were checked: {kids:?}"
    );
    assert!(checked > 20, "only {checked} checks");
    server.stop().await;
}

/// A web app that discovered Lanyard before a rotation still signs people in after it: the
/// ID token carries a key the app has not seen, and the app rediscovers the issuer's keys.
#[tokio::test]
async fn a_web_app_signs_people_in_across_a_rotation() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), |c| {
        c.keys.publish = Duration::from_secs(1);
    })
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let wiki =
        crate::apps::start_app(&server, "wiki", server.store(), Duration::from_secs(10)).await;
    let token = admin_token(&server).await;
    let r = admin(&server, &token, Method::POST, "/keys/rotate", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    clock.advance(Duration::from_millis(1100));
    lanyard_core::keys::tick(&server.state).await.unwrap();
    let caller = caller(&server).await;
    let fresh = caller_token(&server, &caller, None).await;
    assert_ne!(kid_of(&fresh), kid_of(&token), "the new key signs");

    signs_in_to_the_profile_page(&server, &wiki, &alice.sub).await;
    server.stop().await;
}

/// Access tokens signed with ES256 or EdDSA, as configured: the JWKS publishes the key, the
/// apps' guard accepts the tokens and refuses them within a second of a revocation,
/// introspection and userinfo read them; ID tokens stay RS256 and the web app signs people in.
#[tokio::test]
async fn access_tokens_signed_with_es256_or_eddsa_work_at_every_endpoint_and_app() {
    for (alg, kty, crv) in [
        (SigningAlg::Es256, "EC", "P-256"),
        (SigningAlg::EdDsa, "OKP", "Ed25519"),
    ] {
        let server = TestServer::start_with(Db::Sqlite, Store::Redis, |c| {
            c.access_token_alg = alg;
        })
        .await;
        let alice = server.user("alice", PASSWORD).await;
        let wiki = crate::apps::on_redis(&server, "wiki").await;
        let jwks = jwks(&server).await;
        let published: Vec<(&str, &str)> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["kty"].as_str().unwrap(), k["alg"].as_str().unwrap()))
            .collect();
        assert_eq!(published, [("RSA", "RS256"), (kty, alg.name())]);
        assert_eq!(jwks["keys"][1]["crv"], crv);

        // A code flow at the app's client: the guard checks its access token (alice_at_each).
        let tokens = crate::apps::alice_at_each(&server, &[&wiki], Some(&alice.sub)).await;
        let access = tokens[0].1.clone();
        let (header, _) = decode_jwt(&access);
        assert_eq!(header["alg"], alg.name());
        assert_eq!(header["kid"], jwks["keys"][1]["kid"]);
        let t = code_flow(
            &server,
            &Browser::new(),
            &wiki.client,
            "openid",
            "alice",
            PASSWORD,
        )
        .await;
        let (id_header, _) = decode_jwt(t["id_token"].as_str().unwrap());
        assert_eq!(id_header["alg"], "RS256", "ID tokens stay RS256");

        let r = client_post(&server, "/introspect", &wiki.client, &[("token", &access)]).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["active"], true, "{body}");
        let r = reqwest::Client::new()
            .get(server.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);

        let r = client_post(&server, "/revoke", &wiki.client, &[("token", &access)]).await;
        assert_eq!(r.status(), StatusCode::OK);
        let refused =
            crate::apps::refused_within_a_second(&wiki.base, &access, Instant::now()).await;
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );

        // And a person signs in to the web app in a browser (the app checks the RS256 ID token).
        signs_in_to_the_profile_page(&server, &wiki, &alice.sub).await;
        server.stop().await;
    }
}

/// Each algorithm rotates on its own; a change of the access-token algorithm retires the old
/// algorithm's keys, which go on verifying until its tokens expire, then leave the JWKS.
#[tokio::test]
async fn each_algorithm_rotates_and_a_changed_algorithm_retires_its_keys() {
    let clock = ManualClock::new(SystemClock.now());
    let server = TestServer::start_with_clock_and(clock.clone(), |c| {
        c.access_token_alg = SigningAlg::Es256;
    })
    .await;
    let caller = caller(&server).await;
    let token = admin_token(&server).await;
    let listed = keys_listed(&server, &token).await;
    assert_eq!(listed.len(), 2, "an active key per algorithm: {listed:?}");
    let r = admin(&server, &token, Method::POST, "/keys/rotate", None).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let next: Value = r.json().await.unwrap();
    let mut algs: Vec<&str> = next["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "RS256"]);
    let es_next = next["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "ES256")
        .unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    clock.advance(Duration::from_secs(3601));
    lanyard_core::keys::tick(&server.state).await.unwrap();
    let es_token = caller_token(&server, &caller, None).await;
    assert_eq!(kid_of(&es_token), es_next, "the ES256 successor signs");
    let (id_kid, _) = server.state.keys.signers()[0].clone();
    assert_ne!(id_kid, es_next);

    // The configuration changes to EdDSA (as a restarted node would load it).
    let mut config = server.state.config.clone();
    config.access_token_alg = SigningAlg::EdDsa;
    let now = clock.now();
    rotation::step(&server.state.db, &config, now)
        .await
        .unwrap();
    let ring = load_or_create(&server.state.db, now, SigningAlg::EdDsa)
        .await
        .unwrap();
    server.state.keys.replace(ring);
    let ed_token = caller_token(&server, &caller, None).await;
    assert_eq!(decode_jwt(&ed_token).0["alg"], "EdDSA");
    let r = client_post(&server, "/introspect", &caller, &[("token", &es_token)]).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["active"], true,
        "an ES256 token still verifies: {body}"
    );
    let listed = keys_listed(&server, &token).await;
    assert!(
        listed.contains(&(es_next.clone(), "retired".to_owned())),
        "{listed:?}"
    );
    // Rotation steps no longer make ES256 keys; once its tokens expired it leaves the JWKS.
    clock.advance(Duration::from_secs(3600 + 60 + 61));
    rotation::step(&server.state.db, &config, clock.now())
        .await
        .unwrap();
    let ring = load_or_create(&server.state.db, clock.now(), SigningAlg::EdDsa)
        .await
        .unwrap();
    server.state.keys.replace(ring);
    assert!(!jwks_kids(&server).await.contains(&es_next));
    // (The admin token was signed by the first ES256 key, gone too: ask the library.)
    let listed = lanyard_core::keys::list(&server.state).await.unwrap();
    assert!(listed.iter().all(|k| k.kid != es_next), "{listed:?}");
    let mut algs: Vec<&str> = listed.iter().map(|k| k.alg.as_str()).collect();
    algs.sort_unstable();
    algs.dedup();
    assert_eq!(algs, ["EdDSA", "RS256"]);
    server.stop().await;
}
