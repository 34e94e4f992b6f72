//! What the test files share: RSA keys, and JWTs signed with them or forged.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub(crate) const ISSUER: &str = "https://sso.example.com";
pub(crate) const AUDIENCE: &str = "wiki";
pub(crate) const NOW: i64 = 1_800_000_000;

pub(crate) struct TestKey {
    pub(crate) pem: String,
    pub(crate) public_pem: String,
    pub(crate) jwks: String,
}

pub(crate) fn rsa_key(seed: usize) -> &'static TestKey {
    static KEYS: OnceLock<Vec<TestKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..2)
            .map(|i| {
                let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .unwrap();
                let public = key.public_key();
                let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
                let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
                TestKey {
                    pem: pem("PRIVATE KEY", key.as_der().unwrap().as_ref()),
                    public_pem: pem("PUBLIC KEY", public.as_der().unwrap().as_ref()),
                    jwks: json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": format!("k{i}"), "n": n, "e": e}]})
                        .to_string(),
                }
            })
            .collect()
    })[seed]
}

pub(crate) fn sign_with(claims: &Value, kid: &str, typ: &str, key: &TestKey) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(key.pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A JWT with any header, signed with HMAC under `secret` (or unsigned).
pub(crate) fn raw_token(header: Value, claims: &Value, hmac_secret: Option<&[u8]>) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = match hmac_secret {
        Some(secret) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()))
        }
        None => String::new(),
    };
    format!("{input}.{signature}")
}

/// An ES256 (P-256) or EdDSA (Ed25519) key made with aws-lc-rs: PKCS#8 to sign with, and
/// its public JWK.
pub(crate) struct CurveKey {
    pub(crate) alg: Algorithm,
    pub(crate) pkcs8: Vec<u8>,
    pub(crate) jwk: Value,
}

pub(crate) fn curve_key(alg: Algorithm, kid: &str) -> CurveKey {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
    };
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let (pkcs8, jwk) = match alg {
        Algorithm::ES256 => {
            let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .unwrap()
                .as_ref()
                .to_vec();
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).unwrap();
            let point = pair.public_key().as_ref();
            let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": b64(&point[1..33]), "y": b64(&point[33..65])});
            (der, jwk)
        }
        Algorithm::EdDSA => {
            let der = Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec();
            let pair = Ed25519KeyPair::from_pkcs8(&der).unwrap();
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                "kid": kid, "x": b64(pair.public_key().as_ref())});
            (der, jwk)
        }
        other => panic!("not a curve algorithm: {other:?}"),
    };
    CurveKey { alg, pkcs8, jwk }
}

/// A JWT signed with `key`, with `alg` in its header (to forge, pass another one).
pub(crate) fn sign_curve(
    claims: &Value,
    kid: &str,
    typ: &str,
    alg: Algorithm,
    key: &CurveKey,
) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    header.typ = Some(typ.to_owned());
    let encoding = match key.alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(&key.pkcs8),
        _ => EncodingKey::from_ed_der(&key.pkcs8),
    };
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

/// DER as PEM with `label`.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
