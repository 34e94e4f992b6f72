//! What the guard costs per request, against the bare RS256 signature check it cannot avoid.
//!
//! `cargo bench -p lanyard-rp --bench guard`. Figures are recorded in `docs/performance.md`.
//! The mirror holds `LIST_SIZE` revocation entries of every kind while the guard checks a
//! token none of them covers (the common case: every entry is looked at, none matches).
//! `request_*`: a whole request's check, a bearer token against a DPoP-bound one with a
//! fresh ES256 proof (RFC 9449; the proof is made outside the measured time).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use lanyard_rp::keys::{JwksSource, KeyCache};
use lanyard_rp::{Guard, GuardConfig, Mirror, StoreSource};
use lanyard_store::{Clock, MemoryStore, StoreConfig, SystemClock, Target, TokenStore};
use serde_json::{Value, json};

const ISSUER: &str = "https://sso.example.com";
const LIST_SIZE: usize = 10_000;
const API: &str = "https://wiki.example.com";

struct StaticJwks(String);

#[async_trait]
impl JwksSource for StaticJwks {
    async fn fetch(&self) -> Result<String, String> {
        Ok(self.0.clone())
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = key.public_key();
    let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
    let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
    let jwks = json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1", "n": n, "e": e,
    }]})
    .to_string();
    let now = SystemClock.now().as_secs();
    let claims = json!({
        "iss": ISSUER, "sub": "alice", "aud": ["wiki"], "exp": now + 3000, "iat": now,
        "jti": "a-fresh-token", "client_id": "wiki", "scope": "openid reports:read",
        "sid": "session-1",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(key.as_der().unwrap().as_ref())
    );
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let decoding = DecodingKey::from_rsa_components(&n, &e).unwrap();
    let dpop_key = lanyard_rp::dpop::DpopKey::generate().unwrap();
    let mut bound_claims = claims.clone();
    bound_claims["jti"] = json!("a-bound-token");
    bound_claims["cnf"] = json!({ "jkt": dpop_key.thumbprint() });
    let bound = jsonwebtoken::encode(
        &header,
        &bound_claims,
        &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap();

    let guard = rt.block_on(async {
        let store: Arc<dyn TokenStore> =
            Arc::new(MemoryStore::new(StoreConfig::default()).unwrap());
        let at = SystemClock.now();
        for i in 0..LIST_SIZE {
            let target = match i % 4 {
                0 => Target::Jti(format!("jti-{i}")),
                1 => Target::Sid(format!("sid-{i}")),
                2 => Target::Sub(format!("sub-{i}")),
                _ => Target::ClientId(format!("client-{i}")),
            };
            store.revoke(target, at).await.unwrap();
        }
        let mut config = GuardConfig::new(ISSUER, "wiki");
        config.public_url = Some(API.to_owned());
        let keys = KeyCache::load(Box::new(StaticJwks(jwks)), config.jwks_cooldown)
            .await
            .unwrap();
        let mirror = Mirror::follow(
            Arc::new(StoreSource(store)),
            config.staleness_bound,
            config.max_token_lifetime,
            Arc::new(SystemClock),
        );
        assert!(mirror.ready(Duration::from_secs(5)).await);
        assert_eq!(mirror.status().entries, LIST_SIZE);
        Guard::from_parts(config, Arc::new(keys), mirror, Arc::new(SystemClock)).unwrap()
    });
    assert!(rt.block_on(guard.verify(&token)).is_ok());

    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut group = c.benchmark_group("access_token");
    group.bench_function("rs256_signature_only", |b| {
        b.iter(|| {
            assert!(
                jsonwebtoken::crypto::verify(
                    signature,
                    message.as_bytes(),
                    &decoding,
                    Algorithm::RS256
                )
                .unwrap()
            );
        });
    });
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["wiki"]);
    validation.set_issuer(&[ISSUER]);
    group.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<Value>(&token, &decoding, &validation).unwrap());
    });
    group.bench_function("guard_verify_with_revocation_check", |b| {
        b.to_async(&rt)
            .iter(|| async { guard.verify(&token).await.unwrap() });
    });
    group.finish();

    let mut group = c.benchmark_group("request");
    let uri: http::Uri = format!("{API}/api/me").parse().unwrap();
    let headers = |scheme: &str, token: &str, proof: Option<String>| {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("{scheme} {token}").parse().unwrap(),
        );
        if let Some(p) = proof {
            h.insert("dpop", p.parse().unwrap());
        }
        h
    };
    let bearer = headers("Bearer", &token, None);
    group.bench_function("bearer", |b| {
        b.to_async(&rt).iter(|| async {
            guard
                .authenticate_request(&http::Method::GET, &uri, &bearer)
                .await
                .unwrap()
        });
    });
    group.bench_function("dpop_es256_proof", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let proof = dpop_key.proof(
                    "GET",
                    &uri.to_string(),
                    Some(&bound),
                    None,
                    SystemClock.now().as_secs(),
                );
                headers("DPoP", &bound, Some(proof))
            },
            |h| {
                let (guard, uri) = (&guard, &uri);
                async move {
                    guard
                        .authenticate_request(&http::Method::GET, uri, &h)
                        .await
                        .unwrap()
                }
            },
            criterion::BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
