//! DPoP (RFC 9449): proofs that the sender of a token holds the key it is bound to.
//!
//! One implementation for both sides of Lanyard: the authorization server checks proofs at
//! its token endpoint, UserInfo and admin API; an app's [`Guard`](crate::Guard) checks them
//! for its API; and a client signs them ([`DpopKey`]).
//!
//! [`verify`] checks what a proof says about itself (§4.3): `typ` `dpop+jwt`, an asymmetric
//! `alg`, a public `jwk` in the header whose key verifies the signature, `jti`, `htm` and
//! `htu` of this request, `iat` within the window, and `ath` when a token comes with it. What
//! depends on the verifier's state — the `jti` not seen before, the `nonce` it gave out, the
//! token's `cnf.jkt` — the caller checks with what [`Proof`] returns.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

/// The algorithms a proof may be signed with (`dpop_signing_alg_values_supported`).
pub const ALGORITHMS: [&str; 9] = [
    "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA",
];

/// How old a proof's `iat` may be, in seconds.
pub const MAX_AGE_SECS: i64 = 60;
/// How far ahead of the verifier's clock a proof's `iat` may be, in seconds.
pub const FUTURE_SKEW_SECS: i64 = 10;

/// What a request must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's URL (query and fragment are ignored).
    pub url: &'a str,
    /// The access token sent with the proof, if any (`ath` must be its hash).
    pub access_token: Option<&'a str>,
    /// The verifier's time, in seconds.
    pub now: i64,
}

/// A proof that passed [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The JWK SHA-256 thumbprint of the proof's key (RFC 7638): what `cnf.jkt` names.
    pub jkt: String,
    /// The proof's `jti`, for the caller's replay check.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: i64,
    /// The `nonce` it carries, if any.
    pub nonce: Option<String>,
}

/// Why a proof is refused: `invalid_dpop_proof` with this description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Checks a proof (the `DPoP` header's value) against the request it came with.
pub fn verify(proof: &str, expected: &Expected<'_>) -> Result<Proof, Invalid> {
    if proof.len() > 8192 {
        return Err(invalid("the DPoP proof is too long"));
    }
    let header_json = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .ok_or_else(|| invalid("the DPoP proof is not a JWT"))?;
    if header_json["typ"] != "dpop+jwt" {
        return Err(invalid("a DPoP proof has typ dpop+jwt"));
    }
    let alg = header_json["alg"].as_str().unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err(invalid(format!(
            "a DPoP proof is signed with one of {} (not {alg:?})",
            ALGORITHMS.join(", ")
        )));
    }
    let jwk = &header_json["jwk"];
    if !jwk.is_object() {
        return Err(invalid("a DPoP proof carries its public key as jwk"));
    }
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|m| jwk.get(m).is_some())
    {
        return Err(invalid("the DPoP proof's jwk holds private key material"));
    }
    let jkt = thumbprint(jwk).ok_or_else(|| invalid("the DPoP proof's jwk is not a public key"))?;
    let key: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone())
        .map_err(|_| invalid("the DPoP proof's jwk is not a public key"))?;
    let key = DecodingKey::from_jwk(&key)
        .map_err(|_| invalid("the DPoP proof's jwk is not a public key"))?;
    let algorithm: Algorithm = alg
        .parse()
        .map_err(|_| invalid("unknown DPoP proof algorithm"))?;
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|_| invalid("the DPoP proof's signature does not verify with its jwk"))?
        .claims;
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| invalid("the DPoP proof has no jti"))?;
    if claims.htm.as_deref() != Some(expected.method) {
        return Err(invalid(format!(
            "the DPoP proof is for another method (htm must be {})",
            expected.method
        )));
    }
    if !same_target(claims.htu.as_deref(), expected.url) {
        return Err(invalid(format!(
            "the DPoP proof is for another URL (htu must be {})",
            without_query(expected.url)
        )));
    }
    let iat = claims
        .iat
        .ok_or_else(|| invalid("the DPoP proof has no iat"))?;
    if iat < expected.now - MAX_AGE_SECS || iat > expected.now + FUTURE_SKEW_SECS {
        return Err(invalid(format!(
            "the DPoP proof's iat is not within {MAX_AGE_SECS} s of now: make a fresh proof for each request"
        )));
    }
    match (expected.access_token, claims.ath.as_deref()) {
        (Some(token), Some(ath)) if ath == token_hash(token) => {}
        (Some(_), Some(_)) => {
            return Err(invalid(
                "the DPoP proof's ath is not the hash of the access token sent with it",
            ));
        }
        (Some(_), None) => {
            return Err(invalid(
                "a DPoP proof sent with an access token carries ath",
            ));
        }
        (None, _) => {}
    }
    Ok(Proof {
        jkt,
        jti,
        iat,
        nonce: claims.nonce,
    })
}

/// Whether `htu` names `url`, scheme and host compared without case, default ports
/// dropped, query and fragment ignored (RFC 9449 §4.3, RFC 3986 §6.2.2–6.2.3).
fn same_target(htu: Option<&str>, url: &str) -> bool {
    let normal = |u: &str| {
        let mut u = url::Url::parse(u).ok()?;
        u.set_query(None);
        u.set_fragment(None);
        Some(u)
    };
    match (htu.and_then(normal), normal(url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn without_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `ath`: the base64url SHA-256 of an access token (RFC 9449 §4.2).
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// The JWK SHA-256 thumbprint (RFC 7638) of a public key: its required members, in
/// lexicographic order, without white space.
pub fn thumbprint(jwk: &Value) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let canonical = match member("kty")? {
        "EC" => json!({ "crv": member("crv")?, "kty": "EC", "x": member("x")?, "y": member("y")? }),
        "RSA" => json!({ "e": member("e")?, "kty": "RSA", "n": member("n")? }),
        "OKP" => json!({ "crv": member("crv")?, "kty": "OKP", "x": member("x")? }),
        _ => return None,
    };
    // serde_json's maps keep keys sorted: the text is RFC 7638's.
    let text = serde_json::to_string(&canonical).ok()?;
    Some(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, text.as_bytes())))
}

/// Server nonces (RFC 9449 §8 at an authorization server, §9 at a resource server): one per
/// minute, derived from a secret, so every instance holding the secret gives out and takes
/// the same ones; this minute's and the last minute's are taken.
pub struct Nonces(aws_lc_rs::hmac::Key);

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces([redacted])")
    }
}

impl Nonces {
    /// Nonces derived from `secret` (give every instance the same, at least 32 bytes).
    pub fn new(secret: &[u8]) -> Self {
        Self(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            secret,
        ))
    }

    /// Nonces from a random secret: for one instance alone.
    pub fn random() -> Result<Self, String> {
        let mut secret = [0u8; 32];
        aws_lc_rs::rand::fill(&mut secret).map_err(|_| "no randomness for DPoP nonces")?;
        Ok(Self::new(&secret))
    }

    /// The nonce to give out at `now` (seconds).
    pub fn current(&self, now: i64) -> String {
        self.of_window(now.div_euclid(60))
    }

    /// Whether `nonce` is this minute's or the last one's.
    pub fn is_fresh(&self, nonce: &str, now: i64) -> bool {
        let window = now.div_euclid(60);
        [window, window - 1].into_iter().any(|w| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                nonce.as_bytes(),
                self.of_window(w).as_bytes(),
            )
            .is_ok()
        })
    }

    fn of_window(&self, window: i64) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.0, format!("dpop-nonce\0{window}").as_bytes());
        URL_SAFE_NO_PAD.encode(&tag.as_ref()[..18])
    }
}

/// The `jti`s of proofs already taken, each kept until its proof is too old to be taken
/// again; bounded (a full cache forgets its oldest entries, which can then only be replayed
/// within the same minute, and says so in the log).
#[derive(Debug)]
pub struct ReplayCache {
    seen: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
}

impl ReplayCache {
    /// A cache of at most `capacity` proofs.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Records the proof; `false` if its `jti` was taken before (a replay).
    pub fn first_use(&self, proof: &Proof, now: i64) -> bool {
        let mut key = [0; 32];
        key.copy_from_slice(
            digest::digest(
                &digest::SHA256,
                format!("{}\0{}", proof.jkt, proof.jti).as_bytes(),
            )
            .as_ref(),
        );
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(&key).is_some_and(|until| *until >= now) {
            return false;
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                tracing::warn!(
                    capacity = self.capacity,
                    "the DPoP replay cache is full of live proofs; forgetting the oldest"
                );
                let mut ages: Vec<i64> = seen.values().copied().collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                seen.retain(|_, until| *until > cut);
            }
        }
        seen.insert(key, proof.iat.max(now) + MAX_AGE_SECS + FUTURE_SKEW_SECS);
        true
    }
}

/// A client's DPoP key (P-256, ES256): it signs a fresh proof for each request.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    jwk: Value,
    jkt: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A new random key.
    pub fn generate() -> Result<Self, String> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| "cannot make a P-256 key".to_owned())?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .map_err(|_| "cannot load the P-256 key".to_owned())?;
        // An uncompressed point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        if point.len() != 65 {
            return Err("unexpected P-256 public key".to_owned());
        }
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        let jkt = thumbprint(&jwk).ok_or("cannot take the key's thumbprint")?;
        Ok(Self { pair, jwk, jkt })
    }

    /// The key's thumbprint (what tokens bound to it carry as `cnf.jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// A proof for one request: `method` and `url`, with `access_token`'s hash when one is
    /// sent, and the server's `nonce` when it asked for one; `now` in seconds.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
        now: i64,
    ) -> String {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk });
        let mut jti = [0u8; 16];
        let _ = aws_lc_rs::rand::fill(&mut jti);
        let mut claims = json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": without_query(url),
            "iat": now,
        });
        if let Some(token) = access_token {
            claims["ath"] = json!(token_hash(token));
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()))
            .unwrap_or_default();
        format!("{signing_input}.{signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://api.example.com/items";

    fn expected(now: i64) -> Expected<'static> {
        Expected {
            method: "GET",
            url: URL,
            access_token: Some("the-token"),
            now,
        }
    }

    #[test]
    fn a_proof_made_here_verifies_and_names_its_key() {
        let key = DpopKey::generate().unwrap();
        let proof = key.proof("GET", URL, Some("the-token"), Some("n1"), 1_000);
        let checked = verify(&proof, &expected(1_000)).unwrap();
        assert_eq!(checked.jkt, key.thumbprint());
        assert_eq!(checked.nonce.as_deref(), Some("n1"));
        // Query and fragment are ignored; scheme and host case and the default port too.
        let other = Expected {
            url: "HTTPS://API.example.com:443/items?page=2#x",
            ..expected(1_000)
        };
        assert!(verify(&proof, &other).is_ok());
    }

    #[test]
    fn proofs_for_another_request_or_time_or_token_are_refused() {
        let key = DpopKey::generate().unwrap();
        let proof = key.proof("GET", URL, Some("the-token"), None, 1_000);
        let refused = |e: Expected<'_>| verify(&proof, &e).unwrap_err().0;
        assert!(
            refused(Expected {
                method: "POST",
                ..expected(1_000)
            })
            .contains("method")
        );
        assert!(
            refused(Expected {
                url: "https://api.example.com/other",
                ..expected(1_000)
            })
            .contains("URL")
        );
        assert!(
            refused(Expected {
                url: "https://evil.example.com/items",
                ..expected(1_000)
            })
            .contains("URL")
        );
        assert!(
            refused(Expected {
                access_token: Some("another"),
                ..expected(1_000)
            })
            .contains("ath")
        );
        assert!(refused(expected(1_000 + MAX_AGE_SECS + 1)).contains("iat"));
        assert!(refused(expected(1_000 - FUTURE_SKEW_SECS - 1)).contains("iat"));
        let without_ath = key.proof("GET", URL, None, None, 1_000);
        assert!(
            verify(&without_ath, &expected(1_000))
                .unwrap_err()
                .0
                .contains("ath")
        );
    }

    #[test]
    fn forged_or_ill_formed_proofs_are_refused() {
        let key = DpopKey::generate().unwrap();
        let other = DpopKey::generate().unwrap();
        let proof = key.proof("GET", URL, Some("the-token"), None, 1_000);
        let parts: Vec<&str> = proof.split('.').collect();
        // Another key's signature over this header and claims.
        let theirs = other.proof("GET", URL, Some("the-token"), None, 1_000);
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            theirs.split('.').nth(2).unwrap()
        );
        assert!(
            verify(&swapped, &expected(1_000))
                .unwrap_err()
                .0
                .contains("signature")
        );
        // Header rewritten: wrong typ, HS256, none, a private key inside.
        let with_header = |h: Value| {
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(h.to_string()),
                parts[1],
                parts[2]
            )
        };
        let jwk = key.jwk.clone();
        for (header, says) in [
            (json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}), "typ"),
            (
                json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
                "signed with",
            ),
            (
                json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
                "signed with",
            ),
            (json!({"typ": "dpop+jwt", "alg": "ES256"}), "jwk"),
        ] {
            let refused = verify(&with_header(header), &expected(1_000))
                .unwrap_err()
                .0;
            assert!(refused.contains(says), "{refused}");
        }
        let mut private = jwk.clone();
        private["d"] = json!("AAAA");
        let refused = verify(
            &with_header(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private})),
            &expected(1_000),
        )
        .unwrap_err()
        .0;
        assert!(refused.contains("private"), "{refused}");
        assert!(verify("garbage", &expected(1_000)).is_err());
    }

    #[test]
    fn rfc_7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn a_replayed_proof_is_caught_and_the_cache_stays_bounded() {
        let cache = ReplayCache::new(4);
        let key = DpopKey::generate().unwrap();
        let proofs: Vec<Proof> = (0..10)
            .map(|_| {
                verify(
                    &key.proof("GET", URL, Some("the-token"), None, 1_000),
                    &expected(1_000),
                )
                .unwrap()
            })
            .collect();
        assert!(cache.first_use(&proofs[0], 1_000));
        assert!(!cache.first_use(&proofs[0], 1_001), "replayed");
        for p in &proofs[1..] {
            assert!(cache.first_use(p, 1_000));
        }
        assert!(cache.seen.lock().unwrap().len() <= 4);
    }
}
