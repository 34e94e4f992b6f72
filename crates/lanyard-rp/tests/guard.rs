//! Every validation rule of the guard, each with a token crafted to break exactly that rule
//! (SECURITY.md 2.8, RFC 6750 §3, RFC 8725 §3, RFC 9068 §4), plus the revocation mirror.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lanyard_rp::keys::{JwksSource, KeyCache};
use lanyard_rp::{Denial, Guard, GuardConfig, Mirror, StoreSource};
use lanyard_store::{Clock, ManualClock, MemoryStore, StoreConfig, Target, Timestamp, TokenStore};
use serde_json::{Value, json};

mod support;
use support::{AUDIENCE, ISSUER, NOW, curve_key, raw_token, rsa_key, sign_curve, sign_with};

fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "alice-sub", "aud": [AUDIENCE], "exp": NOW + 600, "iat": NOW - 10,
        "jti": "jti-1", "client_id": "wiki", "scope": "openid reports:read", "sid": "sid-1",
    })
}

fn sign(claims: &Value) -> String {
    sign_with(claims, "k0", "at+jwt", rsa_key(0))
}

struct CountingJwks {
    fetches: Arc<AtomicUsize>,
    jwks: String,
}

#[async_trait]
impl JwksSource for CountingJwks {
    async fn fetch(&self) -> Result<String, String> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(self.jwks.clone())
    }
}

struct Fixture {
    guard: Guard,
    store: Arc<dyn TokenStore>,
    clock: ManualClock,
    fetches: Arc<AtomicUsize>,
}

async fn fixture_with(tweak: impl FnOnce(&mut GuardConfig)) -> Fixture {
    fixture_with_jwks(tweak, rsa_key(0).jwks.clone()).await
}

async fn fixture_with_jwks(tweak: impl FnOnce(&mut GuardConfig), jwks: String) -> Fixture {
    let clock = ManualClock::new(Timestamp::from_secs(NOW));
    let store: Arc<dyn TokenStore> =
        Arc::new(MemoryStore::with_clock(StoreConfig::default(), Arc::new(clock.clone())).unwrap());
    let mut config = GuardConfig::new(ISSUER, AUDIENCE);
    config.realm = "wiki".into();
    tweak(&mut config);
    let fetches = Arc::new(AtomicUsize::new(0));
    let keys = KeyCache::load_with_clock(
        Box::new(CountingJwks {
            fetches: fetches.clone(),
            jwks,
        }),
        config.jwks_cooldown,
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let mirror = Mirror::follow(
        Arc::new(StoreSource(store.clone())),
        config.staleness_bound,
        config.max_token_lifetime,
        Arc::new(clock.clone()),
    );
    assert!(mirror.ready(Duration::from_secs(5)).await);
    let guard = Guard::from_parts(config, Arc::new(keys), mirror, Arc::new(clock.clone())).unwrap();
    Fixture {
        guard,
        store,
        clock,
        fetches,
    }
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

fn invalid(result: Result<lanyard_rp::Principal, Denial>) -> String {
    match result {
        Err(Denial::InvalidToken(description)) => description,
        other => panic!("expected invalid_token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_good_token_passes_with_its_claims() {
    let f = fixture().await;
    let principal = f.guard.verify(&sign(&claims())).await.unwrap();
    assert_eq!(principal.claims.sub, "alice-sub");
    assert_eq!(principal.claims.client_id, "wiki");
    assert!(principal.claims.has_scope("reports:read"));
    assert!(principal.require_scope("reports:read").is_ok());
    assert_eq!(
        principal.require_scope("admin"),
        Err(Denial::InsufficientScope("admin".into()))
    );
    let mut one = claims();
    one["aud"] = json!(AUDIENCE);
    assert!(f.guard.verify(&sign(&one)).await.is_ok(), "aud as a string");
    let mut media = sign_with(&claims(), "k0", "application/at+jwt", rsa_key(0));
    assert!(
        f.guard.verify(&media).await.is_ok(),
        "RFC 9068: application/at+jwt"
    );
    media.push('x');
    assert!(f.guard.verify(&media).await.is_err());
}

#[tokio::test]
async fn times_within_the_leeway_only() {
    let f = fixture().await;
    let cases: [(&str, i64, Option<&str>); 6] = [
        ("exp", NOW - 30, None),
        ("exp", NOW - 61, Some("expired")),
        ("nbf", NOW + 30, None),
        ("nbf", NOW + 61, Some("not valid yet")),
        ("iat", NOW + 61, Some("not valid yet")),
        ("exp", -5, Some("the access token")),
    ];
    for (claim, value, refused) in cases {
        let mut c = claims();
        c[claim] = json!(value);
        let result = f.guard.verify(&sign(&c)).await;
        match refused {
            None => assert!(result.is_ok(), "{claim}={value}: {result:?}"),
            Some(words) => assert!(invalid(result).contains(words), "{claim}={value}"),
        }
    }
}

#[tokio::test]
async fn claims_of_the_wrong_type_or_missing_are_refused() {
    let f = fixture().await;
    // CVE-2026-25537: a malformed exp/nbf must not read as absent.
    for (claim, value) in [
        ("exp", json!("9999999999")),
        ("nbf", json!("2999")),
        ("exp", json!(1e300)),
        ("iat", json!("now")),
        ("aud", json!(42)),
    ] {
        let mut c = claims();
        c[claim] = value.clone();
        assert!(f.guard.verify(&sign(&c)).await.is_err(), "{claim}={value}");
    }
    for missing in ["exp", "iat", "iss", "sub", "aud", "jti", "client_id"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(missing);
        assert!(
            invalid(f.guard.verify(&sign(&c)).await).contains("malformed"),
            "without {missing}"
        );
    }
}

#[tokio::test]
async fn issuer_and_audience_must_match_exactly() {
    let f = fixture().await;
    for (claim, value, words) in [
        ("iss", json!("https://sso.example.com/"), "another issuer"),
        ("iss", json!("https://evil.example"), "another issuer"),
        ("aud", json!(["billing"]), "not meant for this API"),
        ("aud", json!(["WIKI"]), "not meant for this API"),
    ] {
        let mut c = claims();
        c[claim] = value.clone();
        assert!(
            invalid(f.guard.verify(&sign(&c)).await).contains(words),
            "{claim}={value}"
        );
    }
}

#[tokio::test]
async fn none_hmac_and_foreign_keys_are_refused() {
    let f = fixture().await;
    let c = claims();
    let none = raw_token(
        json!({"alg": "none", "typ": "at+jwt", "kid": "k0"}),
        &c,
        None,
    );
    assert!(invalid(f.guard.verify(&none).await).contains("algorithm"));
    // HS256 keyed with the RSA public key (the classic confusion, CVE-2015-9235).
    let public = rsa_key(0).public_pem.as_bytes();
    let hs = raw_token(
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "k0"}),
        &c,
        Some(public),
    );
    assert!(invalid(f.guard.verify(&hs).await).contains("algorithm"));
    // Signed by another key under our kid.
    let forged = sign_with(&c, "k0", "at+jwt", rsa_key(1));
    assert!(invalid(f.guard.verify(&forged).await).contains("signature"));
    // A tampered payload.
    let good = sign(&c);
    let mut parts: Vec<&str> = good.split('.').collect();
    let mut evil = claims();
    evil["sub"] = json!("mallory");
    let evil = URL_SAFE_NO_PAD.encode(evil.to_string());
    parts[1] = &evil;
    assert!(invalid(f.guard.verify(&parts.join(".")).await).contains("signature"));
    for junk in ["", "a", "a.b", "a.b.c", "....", &"x".repeat(10_000)] {
        assert!(f.guard.verify(junk).await.is_err(), "{junk:.20}");
    }
}

/// ES256 and EdDSA tokens verify with the issuer's EC and OKP keys; each key verifies only
/// the algorithm it is for, so a token naming another algorithm under its `kid` is refused.
#[tokio::test]
async fn es256_and_eddsa_with_the_issuers_keys_each_with_its_own_algorithm() {
    let ec = curve_key(Algorithm::ES256, "e0");
    let ed = curve_key(Algorithm::EdDSA, "d0");
    let mut jwks: Value = serde_json::from_str(&rsa_key(0).jwks).unwrap();
    let keys = jwks["keys"].as_array_mut().unwrap();
    keys.push(ec.jwk.clone());
    keys.push(ed.jwk.clone());
    // Keys that must be ignored: P-384, and an EC key that claims to be for RS256.
    let mut p384 = curve_key(Algorithm::ES256, "p384").jwk;
    p384["crv"] = json!("P-384");
    let mut mislabelled = curve_key(Algorithm::ES256, "mislabelled").jwk;
    mislabelled["alg"] = json!("RS256");
    keys.push(p384);
    keys.push(mislabelled.clone());
    let f = fixture_with_jwks(|_| {}, jwks.to_string()).await;
    let c = claims();

    let es = sign_curve(&c, "e0", "at+jwt", Algorithm::ES256, &ec);
    assert_eq!(f.guard.verify(&es).await.unwrap().claims.sub, "alice-sub");
    let eddsa = sign_curve(&c, "d0", "at+jwt", Algorithm::EdDSA, &ed);
    assert_eq!(
        f.guard.verify(&eddsa).await.unwrap().claims.sub,
        "alice-sub"
    );
    assert!(
        f.guard.verify(&sign(&c)).await.is_ok(),
        "RS256 still passes"
    );

    // Another algorithm under a key's kid: refused for the algorithm, whatever signed it.
    let rs_under_ec = sign_with(&c, "e0", "at+jwt", rsa_key(0));
    assert!(invalid(f.guard.verify(&rs_under_ec).await).contains("algorithm"));
    let es_under_rsa = sign_curve(&c, "k0", "at+jwt", Algorithm::ES256, &ec);
    assert!(invalid(f.guard.verify(&es_under_rsa).await).contains("algorithm"));
    let eddsa_under_ec = sign_curve(&c, "e0", "at+jwt", Algorithm::EdDSA, &ed);
    assert!(invalid(f.guard.verify(&eddsa_under_ec).await).contains("algorithm"));
    // Signed by another key of the right type under our kid.
    let other_ec = curve_key(Algorithm::ES256, "e0");
    let forged = sign_curve(&c, "e0", "at+jwt", Algorithm::ES256, &other_ec);
    assert!(invalid(f.guard.verify(&forged).await).contains("signature"));
    let other_ed = curve_key(Algorithm::EdDSA, "d0");
    let forged = sign_curve(&c, "d0", "at+jwt", Algorithm::EdDSA, &other_ed);
    assert!(invalid(f.guard.verify(&forged).await).contains("signature"));
    // The ignored keys verify nothing.
    let p384_token = sign_curve(&c, "p384", "at+jwt", Algorithm::ES256, &ec);
    assert!(invalid(f.guard.verify(&p384_token).await).contains("key"));
    let mislabelled_token = sign_curve(&c, "mislabelled", "at+jwt", Algorithm::ES256, &ec);
    assert!(invalid(f.guard.verify(&mislabelled_token).await).contains("key"));
}

#[tokio::test]
async fn only_access_tokens() {
    let f = fixture().await;
    for typ in ["JWT", "logout+jwt", "id_token", ""] {
        let token = sign_with(&claims(), "k0", typ, rsa_key(0));
        assert!(
            invalid(f.guard.verify(&token).await).contains("not an access token"),
            "typ {typ:?}"
        );
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k0".into());
    header.typ = None;
    let untyped = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_rsa_pem(rsa_key(0).pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(invalid(f.guard.verify(&untyped).await).contains("not an access token"));
}

#[tokio::test]
async fn embedded_keys_and_hostile_kids_get_no_io() {
    let f = fixture().await;
    let before = f.fetches.load(Ordering::SeqCst);
    // jku / x5u / jwk naming an attacker key: never followed, the attacker's signature fails.
    let attacker = rsa_key(1);
    for extra in [
        json!({"jku": "https://evil.example/jwks"}),
        json!({"x5u": "https://evil.example/cert"}),
        json!({"jwk": serde_json::from_str::<Value>(&attacker.jwks).unwrap()["keys"][0]}),
    ] {
        let mut header = json!({"alg": "RS256", "typ": "at+jwt", "kid": "k0"});
        header
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let signed = sign_with(&claims(), "k0", "at+jwt", attacker);
        let payload_and_sig: Vec<&str> = signed.split('.').skip(1).collect();
        let token = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            payload_and_sig.join(".")
        );
        assert!(f.guard.verify(&token).await.is_err());
    }
    for kid in ["../../dev/null", "' OR 1=1--", &"k".repeat(10_000), "k1"] {
        let token = sign_with(&claims(), kid, "at+jwt", rsa_key(0));
        assert!(
            invalid(f.guard.verify(&token).await).contains("key this API does not know"),
            "{kid:.20}"
        );
    }
    // One refetch for the first unknown kid; the others fall within the cooldown.
    assert!(f.fetches.load(Ordering::SeqCst) - before <= 1);
}

#[tokio::test]
async fn a_flood_of_made_up_kids_fetches_the_keys_once_per_cooldown() {
    let f = fixture_with(|c| c.jwks_cooldown = Duration::from_secs(2)).await;
    // Made-up kids on a real payload (the kid is looked up before any signature check).
    let good = sign(&claims());
    let rest = good.split_once('.').unwrap().1.to_owned();
    // Round 0: one fetch; round 1, within the cooldown: none; round 2, after it: one.
    for round in 0..3 {
        if round == 2 {
            f.clock.advance(Duration::from_secs(2));
        }
        let before = f.fetches.load(Ordering::SeqCst);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let guard = f.guard.clone();
            let header =
                json!({"alg": "RS256", "typ": "at+jwt", "kid": format!("random-{round}-{i}")});
            let token = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()));
            tasks.spawn(async move { guard.verify(&token).await });
        }
        while let Some(r) = tasks.join_next().await {
            assert!(r.unwrap().is_err());
        }
        let expected = if round == 1 { 0 } else { 1 };
        assert_eq!(
            f.fetches.load(Ordering::SeqCst) - before,
            expected,
            "round {round}"
        );
        assert!(
            f.guard.verify(&sign(&claims())).await.is_ok(),
            "valid tokens keep passing"
        );
    }
}

/// Polls until the mirror applied a revocation (it arrives by push, in milliseconds).
async fn until_refused(guard: &Guard, token: &str) -> String {
    for _ in 0..100 {
        if let Err(Denial::InvalidToken(d)) = guard.verify(token).await {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the revocation never reached the mirror");
}

#[tokio::test]
async fn revocations_reach_the_guard_through_the_mirror() {
    let f = fixture().await;
    let now = Timestamp::from_secs(NOW);
    let cases = [
        (Target::Jti("jti-1".into()), "revoked"),
        (Target::Sid("sid-1".into()), "session"),
        (Target::Sub("alice-sub".into()), "user"),
        (Target::ClientId("wiki".into()), "application"),
        (Target::grant("alice-sub", "wiki"), "withdrew"),
    ];
    for (i, (target, words)) in cases.into_iter().enumerate() {
        // A token per case, so each list is tested on its own.
        let mut c = claims();
        c["jti"] = json!(format!("jti-{i}"));
        c["sid"] = json!(format!("sid-{i}"));
        c["sub"] = json!(format!("user-{i}"));
        c["client_id"] = json!(format!("client-{i}"));
        let target = match target {
            Target::Jti(_) => Target::Jti(format!("jti-{i}")),
            Target::Sid(_) => Target::Sid(format!("sid-{i}")),
            Target::Sub(_) => Target::Sub(format!("user-{i}")),
            Target::ClientId(_) => Target::ClientId(format!("client-{i}")),
            Target::Grant(_) => Target::grant(&format!("user-{i}"), &format!("client-{i}")),
            Target::Kid(_) => unreachable!("a withdrawn key judges no token"),
        };
        let token = sign(&c);
        assert!(f.guard.verify(&token).await.is_ok());
        let at = if matches!(target, Target::Jti(_)) {
            now.plus(Duration::from_secs(600))
        } else {
            now
        };
        f.store.revoke(target, at).await.unwrap();
        assert!(
            until_refused(&f.guard, &token).await.contains(words),
            "{words}"
        );
    }
    // A watermark covers tokens issued before it, not after.
    let mut later = claims();
    later["sub"] = json!("user-2");
    later["jti"] = json!("fresh");
    later["sid"] = json!("other");
    later["iat"] = json!(NOW + 5);
    f.clock.advance(Duration::from_secs(10));
    assert!(f.guard.verify(&sign(&later)).await.is_ok());
    let status = f.guard.mirror().status();
    assert!(status.healthy);
    assert_eq!(status.entries, 5);
    assert_eq!(status.last_event, Some(5));

    // Memory stays bounded: once every token the entries cover has expired, they leave,
    // with no further event to prompt it.
    f.clock.advance(Duration::from_secs(3600 + 600 + 120));
    for _ in 0..60 {
        if f.guard.mirror().status().entries == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "entries outlived their tokens: {:?}",
        f.guard.mirror().status()
    );
}

/// A source that can go silent, as a Redis behind a dropped link does.
struct Switchable {
    store: Arc<dyn TokenStore>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

struct SwitchableSubscription {
    inner: Box<dyn lanyard_store::Subscription>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

fn unavailable() -> lanyard_store::StoreError {
    lanyard_store::StoreError::Unavailable("switched off".into())
}

#[async_trait]
impl lanyard_store::Subscription for SwitchableSubscription {
    fn cursor(&self) -> &lanyard_store::Cursor {
        self.inner.cursor()
    }
    async fn next(
        &mut self,
        wait: Duration,
    ) -> Result<lanyard_store::Feed, lanyard_store::StoreError> {
        if self.down.load(Ordering::SeqCst) {
            tokio::time::sleep(wait).await;
            return Err(unavailable());
        }
        self.inner.next(wait).await
    }
}

#[async_trait]
impl lanyard_rp::RevocationSource for Switchable {
    async fn snapshot(&self) -> Result<lanyard_store::Snapshot, lanyard_store::StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable());
        }
        self.store.snapshot().await
    }
    async fn subscribe(
        &self,
        from: &lanyard_store::Cursor,
    ) -> Result<Box<dyn lanyard_store::Subscription>, lanyard_store::StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable());
        }
        Ok(Box::new(SwitchableSubscription {
            inner: self.store.subscribe(from).await?,
            down: self.down.clone(),
        }))
    }
}

#[tokio::test]
async fn a_stale_mirror_fails_closed_or_open_as_configured() {
    for fail_open in [false, true] {
        let clock = ManualClock::new(Timestamp::from_secs(NOW));
        let store: Arc<dyn TokenStore> = Arc::new(
            MemoryStore::with_clock(StoreConfig::default(), Arc::new(clock.clone())).unwrap(),
        );
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let source = Arc::new(Switchable {
            store: store.clone(),
            down: down.clone(),
        });
        let mut config = GuardConfig::new(ISSUER, AUDIENCE);
        config.fail_open = fail_open;
        let mirror = Mirror::follow(
            source,
            config.staleness_bound,
            config.max_token_lifetime,
            Arc::new(clock.clone()),
        );
        assert!(mirror.ready(Duration::from_secs(5)).await);
        let keys = KeyCache::load(
            Box::new(CountingJwks {
                fetches: Arc::default(),
                jwks: rsa_key(0).jwks.clone(),
            }),
            config.jwks_cooldown,
        )
        .await
        .unwrap();
        let guard =
            Guard::from_parts(config, Arc::new(keys), mirror, Arc::new(clock.clone())).unwrap();
        let token = sign(&claims());
        assert!(guard.verify(&token).await.is_ok());
        let mut known = claims();
        known["jti"] = json!("revoked-before-the-outage");
        let known = sign(&known);
        store
            .revoke(Target::Jti("revoked-before-the-outage".into()), clock.now())
            .await
            .unwrap();
        until_refused(&guard, &known).await;
        let mut long = claims();
        long["exp"] = json!(NOW + 7200);
        let long = sign(&long);
        down.store(true, Ordering::SeqCst);
        clock.advance(Duration::from_secs(11));
        let result = guard.verify(&token).await;
        assert!(!guard.mirror().status().healthy);
        // What the mirror already knows holds in either mode.
        assert!(invalid(guard.verify(&known).await).contains("revoked"));
        assert!(invalid(guard.verify(&long).await).contains("longer"));
        if fail_open {
            assert!(result.is_ok(), "availability chosen: {result:?}");
        } else {
            assert!(matches!(result, Err(Denial::Unavailable(_))), "{result:?}");
            let response = result.unwrap_err().to_response("wiki");
            assert_eq!(response.status(), 503);
            assert!(response.headers().get("retry-after").is_some());
        }
        // The source comes back: the mirror resumes and the guard with it.
        down.store(false, Ordering::SeqCst);
        for _ in 0..100 {
            if guard.mirror().status().healthy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(guard.verify(&token).await.is_ok(), "recovered");
    }
}

/// Issue 19 §4: an issuer keeps a revocation entry for `leeway_secs` past the expiry of what
/// it covers (60 s by default) and says so in its snapshot; a guard configured with more
/// leeway (up to 5 minutes) caps it there. Before, a revoked token whose entry had gone was
/// accepted for the rest of the guard's leeway.
#[tokio::test]
async fn a_guard_grants_no_more_leeway_than_the_issuer_keeps_revocations() {
    let f = fixture_with(|c| c.leeway = Duration::from_secs(300)).await;
    assert_eq!(f.guard.mirror().retention(), Some(Duration::from_secs(60)));
    let mut c = claims();
    c["jti"] = json!("short-lived");
    c["exp"] = json!(NOW + 10);
    let token = sign(&c);
    assert!(f.guard.verify(&token).await.is_ok());
    f.store
        .revoke(
            Target::Jti("short-lived".into()),
            Timestamp::from_secs(NOW + 10),
        )
        .await
        .unwrap();
    assert!(until_refused(&f.guard, &token).await.contains("revoked"));
    // Two minutes past expiry: the entry has gone (60 s), and within the configured 300 s
    // the token would pass as not revoked; capped at 60 s, it is expired.
    f.clock.advance(Duration::from_secs(130));
    for _ in 0..100 {
        if f.guard.mirror().status().entries == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.guard.mirror().status().entries, 0, "the entry has gone");
    assert!(invalid(f.guard.verify(&token).await).contains("expired"));
}

/// With `dpop_nonce`, a DPoP proof must carry a nonce this API gave out (RFC 9449 §9): the
/// first is answered `use_dpop_nonce` with one in `DPoP-Nonce`; every instance given the
/// same secret takes it.
#[tokio::test]
async fn an_api_can_ask_for_dpop_nonces() {
    let secret = vec![7u8; 32];
    let tweak = |c: &mut GuardConfig| {
        c.public_url = Some("https://wiki.example.com".into());
        c.dpop_nonce = true;
        c.dpop_nonce_secret = Some(secret.clone());
        // The clock moves two minutes below; the mirror hears nothing meanwhile.
        c.staleness_bound = Duration::from_secs(300);
    };
    let f = fixture_with(tweak).await;
    let other_instance = fixture_with(tweak).await;
    let key = lanyard_rp::dpop::DpopKey::generate().unwrap();
    let mut bound = claims();
    bound["cnf"] = json!({ "jkt": key.thumbprint() });
    let token = sign(&bound);
    let url = "https://wiki.example.com/api/me";
    let uri: http::Uri = url.parse().unwrap();
    let request = |nonce: Option<&str>| {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("DPoP {token}").parse().unwrap(),
        );
        let proof = key.proof("GET", url, Some(&token), nonce, NOW);
        h.insert("dpop", proof.parse().unwrap());
        h
    };
    let nonce = match f
        .guard
        .authenticate_request(&http::Method::GET, &uri, &request(None))
        .await
    {
        Err(Denial::UseDpopNonce(nonce)) => nonce,
        other => panic!("expected use_dpop_nonce, got {other:?}"),
    };
    let answer = Denial::UseDpopNonce(nonce.clone()).to_response("wiki");
    assert_eq!(answer.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(answer.headers()["dpop-nonce"], nonce.as_str());
    assert!(
        answer.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"DPoP realm="wiki", error="use_dpop_nonce""#)
    );
    assert!(matches!(
        f.guard
            .authenticate_request(&http::Method::GET, &uri, &request(Some("made-up")))
            .await,
        Err(Denial::UseDpopNonce(_))
    ));
    for guard in [&f.guard, &other_instance.guard] {
        let principal = guard
            .authenticate_request(&http::Method::GET, &uri, &request(Some(&nonce)))
            .await
            .unwrap();
        assert_eq!(principal.claims.sub, "alice-sub");
    }
    // Two minutes on, the nonce is stale.
    f.clock.advance(Duration::from_secs(121));
    let stale = f
        .guard
        .authenticate_request(&http::Method::GET, &uri, &{
            let mut h = request(None);
            let proof = key.proof("GET", url, Some(&token), Some(&nonce), NOW + 121);
            h.insert("dpop", proof.parse().unwrap());
            h
        })
        .await;
    assert!(matches!(stale, Err(Denial::UseDpopNonce(_))), "{stale:?}");
}
