//! Signed tokens: the signing keys, JWT encoding and signing, verification of our own access
//! tokens and ID-token hints, and the JWKS.
//!
//! ID tokens and logout tokens are signed with RS256, the algorithm every OpenID client must
//! accept (OIDC Core §15.1). Access tokens are signed with the configured
//! [`SigningAlg`] (`access_token_alg`): RS256 by default, or ES256 / EdDSA, which sign in a
//! tenth of the time (see `docs/performance.md`). Each algorithm in use has its own keys and
//! its own rotation; one JWKS publishes them all.
//!
//! Private keys are parsed once into aws-lc-rs key pairs and sign on the request's own task
//! (see [`KeyRing::sign`] for why not the blocking pool). Verification uses jsonwebtoken with
//! the same keys, by `kid`, with the algorithm the key was made for: the algorithm never comes
//! from the token.

pub mod assertion;
mod claims;
mod keys;
pub mod rotation;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;

pub use self::claims::{
    AccessClaims, BACKCHANNEL_LOGOUT_EVENT, Confirmation, IdClaims, LogoutClaims,
};
pub use self::keys::{KeyError, load_or_create};
pub use crate::config::SigningAlg;

/// The JWT `typ` of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The `typ` header of ID tokens.
pub const ID_TOKEN_TYP: &str = "JWT";
/// The `typ` header of logout tokens (Back-Channel Logout 1.0 §2.4).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// The jsonwebtoken algorithm of `alg`.
fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::Rs256 => Algorithm::RS256,
        SigningAlg::Es256 => Algorithm::ES256,
        SigningAlg::EdDsa => Algorithm::EdDSA,
    }
}

/// A private key, parsed once.
enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Pair {
    /// Parses PKCS#8 DER made for `alg`.
    fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Option<Self> {
        match alg {
            SigningAlg::Rs256 => RsaKeyPair::from_pkcs8(der).ok().map(Self::Rsa),
            SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .ok()
                .map(Self::Ec),
            SigningAlg::EdDsa => Ed25519KeyPair::from_pkcs8(der).ok().map(Self::Ed),
        }
    }

    fn alg(&self) -> SigningAlg {
        match self {
            Self::Rsa(_) => SigningAlg::Rs256,
            Self::Ec(_) => SigningAlg::Es256,
            Self::Ed(_) => SigningAlg::EdDsa,
        }
    }

    /// The JWS signature over `message` (for ES256 the fixed-width `R || S` of RFC 7518 §3.4).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = || KeyError::Sign(format!("{} signing failed", self.alg().name()));
        match self {
            Self::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(|_| failed())?;
                Ok(sig)
            }
            Self::Ec(pair) => pair
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
            Self::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// One key that signs, with the encoded JOSE header of each token type it signs made once
/// (a token costs one serialisation fewer).
pub struct SigningKey {
    kid: String,
    pair: Pair,
    headers: [(&'static str, String); 3],
}

impl SigningKey {
    fn new(pair: Pair) -> Self {
        let kid = Jwk::of(&pair).kid;
        let header = |typ: &'static str| (typ, encoded_header(pair.alg(), typ, &kid));
        Self {
            headers: [
                header(ACCESS_TOKEN_TYP),
                header(ID_TOKEN_TYP),
                header(LOGOUT_TOKEN_TYP),
            ],
            kid,
            pair,
        }
    }

    /// The base64url JOSE header for a token of type `typ`.
    fn header(&self, typ: &str) -> std::borrow::Cow<'_, str> {
        match self.headers.iter().find(|(t, _)| *t == typ) {
            Some((_, encoded)) => encoded.as_str().into(),
            None => encoded_header(self.pair.alg(), typ, &self.kid).into(),
        }
    }
}

/// `{"alg":…,"typ":…,"kid":…}`, base64url.
fn encoded_header(alg: SigningAlg, typ: &str, kid: &str) -> String {
    let header = serde_json::json!({ "alg": alg.name(), "typ": typ, "kid": kid });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.pair.alg())
            .finish_non_exhaustive()
    }
}

/// A public key as published in the JWKS (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2).
#[derive(Debug, Clone, Serialize)]
pub struct Jwk {
    kty: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
    alg: &'static str,
    /// Key id: the RFC 7638 thumbprint.
    pub kid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

impl Jwk {
    fn of(pair: &Pair) -> Self {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let mut jwk = Self {
            kty: "RSA",
            use_: "sig",
            alg: pair.alg().name(),
            kid: String::new(),
            crv: None,
            n: None,
            e: None,
            x: None,
            y: None,
        };
        match pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                jwk.n = Some(b64(public.modulus().big_endian_without_leading_zero()));
                jwk.e = Some(b64(public.exponent().big_endian_without_leading_zero()));
            }
            Pair::Ec(pair) => {
                // The uncompressed point: 0x04, then X and Y, 32 bytes each (SEC 1 §2.3.3).
                let point = pair.public_key().as_ref();
                jwk.kty = "EC";
                jwk.crv = Some("P-256");
                // Anything else has no x and y, and `decoding_key` refuses it.
                if point.len() == 65 && point[0] == 4 {
                    jwk.x = Some(b64(&point[1..33]));
                    jwk.y = Some(b64(&point[33..65]));
                }
            }
            Pair::Ed(pair) => {
                jwk.kty = "OKP";
                jwk.crv = Some("Ed25519");
                jwk.x = Some(b64(pair.public_key().as_ref()));
            }
        }
        jwk.kid = jwk.thumbprint();
        jwk
    }

    /// RFC 7638: SHA-256 over the key type's required members, in lexicographic order, with
    /// no white space.
    fn thumbprint(&self) -> String {
        let mut members = BTreeMap::from([("kty", self.kty)]);
        let optional = [
            ("crv", self.crv),
            ("e", self.e.as_deref()),
            ("n", self.n.as_deref()),
            ("x", self.x.as_deref()),
            ("y", self.y.as_deref()),
        ];
        members.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        let canonical = serde_json::to_string(&members).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// The key for jsonwebtoken to verify with.
    fn decoding_key(&self) -> Option<DecodingKey> {
        let key = match self.kty {
            "RSA" => DecodingKey::from_rsa_components(self.n.as_deref()?, self.e.as_deref()?),
            "EC" => DecodingKey::from_ec_components(self.x.as_deref()?, self.y.as_deref()?),
            _ => DecodingKey::from_ed_components(self.x.as_deref()?),
        };
        key.ok()
    }
}

/// A key that verifies, with the one algorithm it verifies.
struct Verifier {
    alg: Algorithm,
    key: DecodingKey,
}

/// The keys in use: the key that signs ID and logout tokens (RS256), the key that signs
/// access tokens (the configured algorithm; the same key when that is RS256), every key that
/// may still verify a live token, and the JWKS document serialised once.
#[derive(Clone)]
pub struct KeyRing {
    id_signer: Arc<SigningKey>,
    access_signer: Arc<SigningKey>,
    verifiers: Arc<HashMap<String, Verifier>>,
    jwks: Arc<str>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("id_signer", &self.id_signer)
            .field("access_signer", &self.access_signer)
            .finish_non_exhaustive()
    }
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

    /// The `kid` that signs ID tokens now (RS256).
    pub fn signing_kid(&self) -> String {
        self.current().id_signer.kid.clone()
    }

    /// The `kid` and algorithm of each key that signs now: ID tokens first, then access
    /// tokens when another key signs them.
    pub fn signers(&self) -> Vec<(String, SigningAlg)> {
        self.current().signers()
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
    /// `signers`: the newest active key of each algorithm. RS256 must be among them, and so
    /// must `access`. `others`: every other key still published.
    fn new(
        mut signers: HashMap<SigningAlg, Pair>,
        access: SigningAlg,
        others: Vec<Pair>,
    ) -> Result<Self, KeyError> {
        let missing = |alg: SigningAlg| KeyError::Sign(format!("no active {} key", alg.name()));
        let id_signer = Arc::new(SigningKey::new(
            signers
                .remove(&SigningAlg::Rs256)
                .ok_or_else(|| missing(SigningAlg::Rs256))?,
        ));
        let access_signer = if access == SigningAlg::Rs256 {
            id_signer.clone()
        } else {
            Arc::new(SigningKey::new(
                signers.remove(&access).ok_or_else(|| missing(access))?,
            ))
        };
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        // Signers first, then an algorithm no longer in use, then the rest.
        let published = [&id_signer.pair, &access_signer.pair]
            .into_iter()
            .chain(signers.values())
            .chain(others.iter());
        for (i, pair) in published.enumerate() {
            let jwk = Jwk::of(pair);
            if verifiers.contains_key(&jwk.kid) {
                continue;
            }
            match jwk.decoding_key() {
                Some(key) => {
                    let alg = jwt_alg(pair.alg());
                    verifiers.insert(jwk.kid.clone(), Verifier { alg, key });
                    jwks.push(jwk);
                }
                // A signer that cannot be published would sign tokens nobody can verify.
                None if i < 2 => {
                    return Err(KeyError::Sign(format!(
                        "the {} signing key {} cannot be published",
                        pair.alg().name(),
                        jwk.kid
                    )));
                }
                None => {}
            }
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Ok(Self {
            id_signer,
            access_signer,
            verifiers: Arc::new(verifiers),
            jwks: jwks.into(),
        })
    }

    /// The JWKS document (RFC 7517 §5): public members only.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// The `kid` of the key that signs ID tokens.
    pub fn signing_kid(&self) -> &str {
        &self.id_signer.kid
    }

    /// The `kid` and algorithm of each key that signs.
    pub fn signers(&self) -> Vec<(String, SigningAlg)> {
        let mut all = vec![(self.id_signer.kid.clone(), self.id_signer.pair.alg())];
        if !Arc::ptr_eq(&self.id_signer, &self.access_signer) {
            all.push((
                self.access_signer.kid.clone(),
                self.access_signer.pair.alg(),
            ));
        }
        all
    }

    /// Encodes and signs a JWT with header `typ`.
    ///
    /// On the calling task: an RS256 signature takes about 0.25 ms of one core, and handing it
    /// to the blocking pool cost more than that in thread wake-ups per token (a profile of the
    /// token endpoint spent a quarter of its time in the kernel switching threads). Signing is
    /// the work of a token request; the other worker threads serve everything else meanwhile.
    ///
    /// Access tokens (`typ` `at+jwt`) are signed with the access-token key, everything else
    /// with the RS256 key.
    pub async fn sign(
        &self,
        typ: &'static str,
        claims: &impl Serialize,
    ) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        let key = if typ == ACCESS_TOKEN_TYP {
            &self.access_signer
        } else {
            &self.id_signer
        };
        sign_now(key, typ, &payload)
    }

    /// Verifies one of our access tokens: `typ` `at+jwt`, a signature by one of our keys with
    /// the algorithm that key was made for, our issuer, not expired (5 s leeway). Audience is for the caller to judge.
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
        let verifier = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifiers.get(kid))
            .ok_or(Rejection::BadSignature)?;
        // The key decides the algorithm: RS256 under an ES256 key's kid is a forgery.
        if header.alg != verifier.alg {
            return Err(Rejection::BadSignature);
        }
        let mut validation = Validation::new(verifier.alg);
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
        jsonwebtoken::decode::<T>(token, &verifier.key, &validation)
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
    let header = key.header(typ);
    // Header, dot, payload, dot, signature (at most 256 bytes, 342 in base64url).
    let mut jwt = String::with_capacity(header.len() + payload.len() * 4 / 3 + 350);
    jwt.push_str(&header);
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut jwt);
    let sig = key.pair.sign(jwt.as_bytes())?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut jwt);
    Ok(jwt)
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of SHA-256 of the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let d = digest::digest(&digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const ISSUER: &str = "https://sso.example.com";

    fn pair(alg: SigningAlg) -> Pair {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = match alg {
            SigningAlg::Rs256 => keys::generate_rsa_2048().unwrap(),
            SigningAlg::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap()
                    .as_ref()
                    .to_vec()
            }
            SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .unwrap()
                .as_ref()
                .to_vec(),
        };
        Pair::from_pkcs8(alg, &der).unwrap()
    }

    fn ring(access: SigningAlg, others: Vec<Pair>) -> KeyRing {
        keys::install_jwt_backend();
        let mut signers = HashMap::from([(SigningAlg::Rs256, pair(SigningAlg::Rs256))]);
        if access != SigningAlg::Rs256 {
            signers.insert(access, pair(access));
        }
        KeyRing::new(signers, access, others).unwrap()
    }

    fn access_claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.to_owned(),
            sub: "alice".to_owned(),
            aud: vec!["wiki".to_owned()],
            exp: now + 600,
            iat: now,
            jti: "jti-1".to_owned(),
            client_id: "wiki".to_owned(),
            origin: None,
            act: None,
            cnf: None,
            scope: "openid".to_owned(),
            sid: None,
            auth_time: None,
            acr: None,
            amr: Vec::new(),
            roles: Vec::new(),
            groups: Vec::new(),
        }
    }

    fn now() -> i64 {
        use lanyard_store::Clock;
        lanyard_store::SystemClock.now().as_secs()
    }

    fn header(token: &str) -> serde_json::Value {
        let part = token.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    /// Our RFC 7638 thumbprints agree with jsonwebtoken's for every key type, and the JWK
    /// members are the ones RFC 7518 §6 and RFC 8037 §2 name.
    #[test]
    fn jwks_members_and_thumbprints_match_an_independent_implementation() {
        for (alg, kty, members) in [
            (SigningAlg::Rs256, "RSA", &["n", "e"][..]),
            (SigningAlg::Es256, "EC", &["crv", "x", "y"][..]),
            (SigningAlg::EdDsa, "OKP", &["crv", "x"][..]),
        ] {
            let jwk = Jwk::of(&pair(alg));
            let value = serde_json::to_value(&jwk).unwrap();
            assert_eq!(value["kty"], kty);
            assert_eq!(value["alg"], alg.name());
            assert_eq!(value["use"], "sig");
            for m in members {
                assert!(value[m].is_string(), "{kty} lacks {m}: {value}");
            }
            let theirs: jsonwebtoken::jwk::Jwk = serde_json::from_value(value).unwrap();
            assert_eq!(
                theirs
                    .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                    .unwrap(),
                jwk.kid,
                "{kty}"
            );
        }
        assert_eq!(
            Jwk::of(&pair(SigningAlg::Es256)).crv,
            Some("P-256"),
            "curve names of RFC 7518 §6.2.1.1"
        );
        assert_eq!(Jwk::of(&pair(SigningAlg::EdDsa)).crv, Some("Ed25519"));
    }

    /// Access tokens are signed with the configured algorithm and verify; ID tokens stay
    /// RS256; the JWKS publishes both keys.
    #[tokio::test]
    async fn each_algorithm_signs_access_tokens_and_id_tokens_stay_rs256() {
        for access in SigningAlg::ALL {
            let ring = ring(access, Vec::new());
            let token = ring
                .sign(ACCESS_TOKEN_TYP, &access_claims(now()))
                .await
                .unwrap();
            assert_eq!(header(&token)["alg"], access.name());
            assert_eq!(
                ring.verify_access_token(&token, ISSUER).unwrap().sub,
                "alice"
            );
            let id = ring
                .sign(ID_TOKEN_TYP, &access_claims(now()))
                .await
                .unwrap();
            assert_eq!(header(&id)["alg"], "RS256");
            assert_eq!(header(&id)["kid"], ring.signing_kid());
            let jwks: serde_json::Value = serde_json::from_str(ring.jwks()).unwrap();
            let published: Vec<&str> = jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["alg"].as_str().unwrap())
                .collect();
            let expected: Vec<&str> = SigningAlg::in_use(access)
                .iter()
                .map(|a| a.name())
                .collect();
            assert_eq!(published, expected);
            assert_eq!(ring.signers().len(), expected.len());
        }
    }

    /// A token whose header names another algorithm than its key's is a forgery, and a
    /// token signed by a key that is merely published (a retired one) still verifies.
    #[tokio::test]
    async fn the_key_decides_the_algorithm() {
        let retired = pair(SigningAlg::Es256);
        let retired_kid = Jwk::of(&retired).kid;
        let old = KeyRing::new(
            HashMap::from([
                (SigningAlg::Rs256, pair(SigningAlg::Rs256)),
                (SigningAlg::Es256, retired),
            ]),
            SigningAlg::Es256,
            Vec::new(),
        )
        .unwrap();
        let from_old = old
            .sign(ACCESS_TOKEN_TYP, &access_claims(now()))
            .await
            .unwrap();
        let retired = Pair::from_pkcs8(SigningAlg::Es256, &{
            // The same key again, as the next ring loads it from the database.
            let Pair::Ec(p) = &old.access_signer.pair else {
                unreachable!()
            };
            p.to_pkcs8v1().unwrap().as_ref().to_vec()
        })
        .unwrap();
        let ring = ring(SigningAlg::EdDsa, vec![retired]);
        assert!(ring.jwks().contains(&retired_kid));
        assert_eq!(
            ring.verify_access_token(&from_old, ISSUER).unwrap().jti,
            "jti-1"
        );

        // RS256 under the ES256 key's kid, and EdDSA under the RS256 key's kid.
        let mut forged = ring
            .sign(ID_TOKEN_TYP, &access_claims(now()))
            .await
            .unwrap();
        let body = forged.split_once('.').unwrap().1.to_owned();
        let header = serde_json::json!({"alg": "RS256", "typ": "at+jwt", "kid": retired_kid});
        forged = format!("{}.{body}", URL_SAFE_NO_PAD.encode(header.to_string()));
        assert_eq!(
            ring.verify_access_token(&forged, ISSUER),
            Err(Rejection::BadSignature)
        );
        let eddsa = ring
            .sign(ACCESS_TOKEN_TYP, &access_claims(now()))
            .await
            .unwrap();
        let (head, rest) = eddsa.split_once('.').unwrap();
        let mut h: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap();
        h["kid"] = ring.signing_kid().into();
        let swapped = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(h.to_string()));
        assert_eq!(
            ring.verify_access_token(&swapped, ISSUER),
            Err(Rejection::BadSignature)
        );
    }
}
