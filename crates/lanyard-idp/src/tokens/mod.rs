//! Signed tokens: the signing keys, JWT encoding and signing, verification of our own access
//! tokens and ID-token hints, and the JWKS.
//!
//! Signing is RS256 with the private key parsed once into an aws-lc-rs key pair (~0.25 ms per
//! signature here, see `docs/performance.md`), on the request's own task (see
//! [`KeyRing::sign`] for why not the blocking pool). Verification uses jsonwebtoken with the same
//! keys, by `kid`, with `RS256` fixed: the algorithm never comes from the token.

mod claims;
mod keys;
pub mod rotation;

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;

pub use self::claims::{AccessClaims, BACKCHANNEL_LOGOUT_EVENT, IdClaims, LogoutClaims};
pub use self::keys::{KeyError, load_or_create};

/// The JWT `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The `typ` header of ID tokens.
pub const ID_TOKEN_TYP: &str = "JWT";
/// The `typ` header of logout tokens (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// One RSA key that signs.
pub struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A public key as published in the JWKS.
#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    kty: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    alg: &'static str,
    /// Key id.
    pub kid: String,
    n: String,
    e: String,
}

impl Jwk {
    fn rsa(pair: &RsaKeyPair) -> Self {
        let public = pair.public_key();
        let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
        let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
        // RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        Self {
            kty: "RSA",
            use_: "sig",
            alg: "RS256",
            kid,
            n,
            e,
        }
    }
}

/// The keys in use: one signing key, every key that may still verify a live token, and the
/// JWKS document serialised once.
#[derive(Debug, Clone)]
pub struct KeyRing {
    signer: Arc<SigningKey>,
    verifiers: Arc<HashMap<String, DecodingKey>>,
    jwks: Arc<str>,
}

/// The key ring in use, swapped whole when the keys change (a rotation here or on another
/// node, an emergency removal). Readers take the ring current at that moment.
#[derive(Debug)]
pub struct LiveKeys(std::sync::RwLock<KeyRing>);

impl LiveKeys {
    /// Starts with `ring`.
    pub fn new(ring: KeyRing) -> Self {
        Self(std::sync::RwLock::new(ring))
    }

    /// The ring in use now.
    pub fn current(&self) -> KeyRing {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `ring` in use.
    pub fn replace(&self, ring: KeyRing) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = ring;
    }

    /// [`KeyRing::sign`] with the current ring.
    pub async fn sign(
        &self,
        typ: &'static str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        self.current().sign(typ, claims).await
    }

    /// [`KeyRing::verify_access_token`] with the current ring.
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<AccessClaims, Rejection> {
        self.current().verify_access_token(token, issuer)
    }

    /// [`KeyRing::verify_id_token_hint`] with the current ring.
    pub fn verify_id_token_hint(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<IdTokenHint, Rejection> {
        self.current().verify_id_token_hint(token, issuer)
    }

    /// The current JWKS document.
    pub fn jwks(&self) -> Arc<str> {
        self.current().jwks.clone()
    }

    /// The `kid` that signs now.
    pub fn signing_kid(&self) -> String {
        self.current().signer.kid.clone()
    }
}

/// Why a token was refused. The text is an `error_description` (RFC 6750 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a JWT, or its header or claims do not parse.
    #[error("the access token is malformed")]
    Malformed,
    /// A header type other than `at+jwt`, e.g. an ID token used as an access token.
    #[error("the token is not an access token")]
    WrongType,
    /// Signed by no key of ours (or with another algorithm).
    #[error("the access token's signature is not valid")]
    BadSignature,
    /// Expired.
    #[error("the access token expired")]
    Expired,
    /// Another issuer.
    #[error("the access token was not issued here")]
    WrongIssuer,
    /// `nbf` in the future or `iat` too far in the future.
    #[error("the access token is not valid yet")]
    NotYetValid,
}

/// What an ID-token hint says (OIDC Core §3.1.2.1 `id_token_hint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The user it was issued for.
    pub sub: String,
    /// The client it was issued to.
    pub aud: Vec<String>,
    /// The SSO session it was issued in.
    pub sid: Option<String>,
}

impl KeyRing {
    fn new(signer: SigningKey, all: Vec<RsaKeyPair>) -> Self {
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for pair in std::iter::once(&signer.pair).chain(all.iter()) {
            let jwk = Jwk::rsa(pair);
            if verifiers.contains_key(&jwk.kid) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_rsa_components(&jwk.n, &jwk.e) {
                verifiers.insert(jwk.kid.clone(), key);
                jwks.push(jwk);
            }
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Self {
            signer: Arc::new(signer),
            verifiers: Arc::new(verifiers),
            jwks: jwks.into(),
        }
    }

    /// The JWKS document (RFC 7517 §5): public members only.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The `kid` of the signing key.
    pub fn signing_kid(&self) -> &str {
        &self.signer.kid
    }

    /// Encodes and signs a JWT with header `typ`.
    ///
    /// On the calling task: an RS256 signature takes about 0.25 ms of one core, and handing it
    /// to the blocking pool cost more than that in thread wake-ups per token (a profile of the
    /// token endpoint spent a quarter of its time in the kernel switching threads). Signing is
    /// the work of a token request; the other worker threads serve everything else meanwhile.
    pub async fn sign(
        &self,
        typ: &'static str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        sign_now(&self.signer, typ, &payload)
    }

    /// Verifies one of our access tokens: `typ` `at+jwt`, a signature by one of our keys with
    /// RS256, our issuer, not expired (5 s leeway). Audience is for the caller to judge.
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<AccessClaims, Rejection> {
        let header = read_header(token)?;
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(Rejection::WrongType);
        }
        let claims: AccessClaims = self.decode(token, &header, issuer, true)?;
        Ok(claims)
    }

    /// Verifies an `id_token_hint`: one of our ID tokens (header `typ` `JWT`, so neither an
    /// access token nor a logout token), signature and issuer checked, expiry not (OIDC Core
    /// §3.1.2.1 and RP-Initiated Logout §2: an expired hint is still a hint).
    pub fn verify_id_token_hint(
        &self,
        token: &str,
        issuer: &str,
    ) -> Result<IdTokenHint, Rejection> {
        let header = read_header(token)?;
        if header.typ.as_deref() != Some(ID_TOKEN_TYP) {
            return Err(Rejection::WrongType);
        }
        #[derive(serde::Deserialize)]
        struct Hint {
            sub: String,
            #[serde(deserialize_with = "claims::one_or_many")]
            aud: Vec<String>,
            #[serde(default)]
            sid: Option<String>,
        }
        let hint: Hint = self.decode(token, &header, issuer, false)?;
        Ok(IdTokenHint {
            sub: hint.sub,
            aud: hint.aud,
            sid: hint.sid,
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        issuer: &str,
        check_expiry: bool,
    ) -> Result<T, Rejection> {
        if header.alg != Algorithm::RS256 {
            return Err(Rejection::BadSignature);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifiers.get(kid))
            .ok_or(Rejection::BadSignature)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 5;
        validation.validate_aud = false;
        validation.validate_exp = check_expiry;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        let required: &[&str] = if check_expiry {
            &["exp", "iat", "iss", "sub"]
        } else {
            &["iss", "sub"]
        };
        validation.set_required_spec_claims(required);
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        Rejection::BadSignature
                    }
                    ErrorKind::ExpiredSignature => Rejection::Expired,
                    ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                    ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                    _ => Rejection::Malformed,
                }
            })
    }
}

/// The JOSE header. One that parses but names an algorithm jsonwebtoken does not know
/// (`none`, say) is a bad signature, not a malformed token.
fn read_header(token: &str) -> Result<jsonwebtoken::Header, Rejection> {
    jsonwebtoken::decode_header(token).map_err(|_| {
        let names_an_alg = token
            .split('.')
            .next()
            .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
            .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
            .is_some_and(|h| h["alg"].is_string());
        if names_an_alg {
            Rejection::BadSignature
        } else {
            Rejection::Malformed
        }
    })
}

fn sign_now(key: &SigningKey, typ: &str, payload: &[u8]) -> Result<String, KeyError> {
    let header = serde_json::json!({ "alg": "RS256", "typ": typ, "kid": key.kid });
    let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let mut sig = vec![0u8; key.pair.public_modulus_len()];
    key.pair
        .sign(
            &signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            jwt.as_bytes(),
            &mut sig,
        )
        .map_err(|_| KeyError::Sign("RSA signing failed".to_owned()))?;
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(jwt)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let d = digest::digest(&digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}
