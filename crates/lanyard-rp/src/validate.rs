//! The rules an access token must pass, offline (RFC 9068 §4, RFC 8725 §3):
//! `typ` `at+jwt`; a key of the issuer's JWKS, chosen by `kid`, with the one algorithm that key
//! is for (RS256, ES256 or EdDSA; `none`, `HS*`, any other, and a known algorithm under
//! another algorithm's key are refused, and `jku`/`x5u`/`jwk`/`x5c` headers are
//! never followed); `iss` exact; `aud` contains this API; `exp` required, `nbf` and `iat` not in
//! the future, all within the leeway; claims of the wrong type are refused, not ignored.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Deserializer};

use crate::GuardConfig;
use crate::keys::IssuerKey;

/// The claims an API gets about the bearer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// The user, or the client itself for `client_credentials`.
    pub sub: String,
    /// Audiences.
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// Not before (seconds).
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Token id.
    pub jti: String,
    /// The client the token was issued to (for an exchanged token: the API that exchanged
    /// it, calling on the person's behalf).
    pub client_id: String,
    /// An exchanged token (RFC 8693): the client acting on the person's behalf, and the
    /// actors before it. `None` when the person (or a client for itself) is the caller.
    #[serde(default)]
    pub act: Option<lanyard_store::Actor>,
    /// An exchanged token: the person's first token, which revocation also judges it by.
    #[serde(default)]
    pub origin: Option<lanyard_store::Origin>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6.1): `{"jkt": thumbprint}`. The
    /// guard takes such a token only with a proof signed by that key.
    #[serde(default)]
    pub cnf: Option<Confirmation>,
    /// Space-delimited scope.
    #[serde(default)]
    pub scope: String,
    /// The SSO session.
    #[serde(default)]
    pub sid: Option<String>,
    /// When the user authenticated.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// How strongly the user authenticated (`urn:lanyard:acr:pwd`, `...:mfa`, `...:phr`).
    #[serde(default)]
    pub acr: Option<String>,
    /// How the user authenticated (RFC 8176 values).
    #[serde(default)]
    pub amr: Vec<String>,
    /// The roles the user holds at this API (RFC 9068 §2.2.3.1; Lanyard puts only the
    /// roles of the token's audience here).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The names of the user's groups, when the token was granted the `groups` scope.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The `cnf` claim (RFC 7800, RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint of the key.
    pub jkt: String,
}

impl Claims {
    /// The granted scope values.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// Whether the user holds `role` (compared exactly).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the user is in the group `group` (compared exactly).
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Why a token was refused. Each has a sentence for `error_description` (RFC 6750 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Not a JWT, or a claim missing or of the wrong type.
    Malformed,
    /// `typ` is not `at+jwt`: an ID token or logout token offered as an access token.
    NotAnAccessToken,
    /// An algorithm other than RS256, ES256 and EdDSA (`none`, `HS256`, ...), or not the one
    /// of the key named by `kid`.
    Algorithm,
    /// No key of the issuer has this `kid`.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// Past `exp`.
    Expired,
    /// `nbf` or `iat` in the future.
    NotYetValid,
    /// Another issuer.
    WrongIssuer,
    /// Not for this API.
    WrongAudience,
}

impl Rejection {
    /// The `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the access token is malformed",
            Self::NotAnAccessToken => "the token is not an access token",
            Self::Algorithm => "the access token uses a signing algorithm this API does not accept",
            Self::UnknownKey => "the access token is signed with a key this API does not know",
            Self::BadSignature => "the access token's signature is not valid",
            Self::Expired => "the access token expired",
            Self::NotYetValid => "the access token is not valid yet",
            Self::WrongIssuer => "the access token was issued by another issuer",
            Self::WrongAudience => "the access token is not meant for this API",
        }
    }
}

/// The token's header, with `typ` and `alg` checked.
pub fn header(token: &str) -> Result<Header, Rejection> {
    // RFC 9068 §4: "application/at+jwt" and "at+jwt" are the same media type.
    header_of_type(token, "at+jwt")
}

/// The header of a JWT whose `typ` must be `typ` (or `application/<typ>`, RFC 7515 §4.1.9),
/// signed with RS256, ES256 or EdDSA, with no `crit` extension. A wrong `typ` is
/// [`Rejection::NotAnAccessToken`].
pub(crate) fn header_of_type(token: &str, typ: &str) -> Result<Header, Rejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        // A header that parses but names an algorithm jsonwebtoken does not know (`none`).
        let names_an_alg = token
            .split('.')
            .next()
            .and_then(|h| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(h)
                    .ok()
            })
            .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
            .is_some_and(|h| h["alg"].is_string());
        if names_an_alg {
            Rejection::Algorithm
        } else {
            Rejection::Malformed
        }
    })?;
    let found = header.typ.as_deref().map(str::to_ascii_lowercase);
    let found = found
        .as_deref()
        .map(|t| t.strip_prefix("application/").unwrap_or(t));
    if found != Some(typ) {
        return Err(Rejection::NotAnAccessToken);
    }
    if !matches!(
        header.alg,
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
    ) {
        return Err(Rejection::Algorithm);
    }
    // RFC 7515 §4.1.11: extensions the recipient must understand. We understand none.
    if header.crit.is_some() {
        return Err(Rejection::Malformed);
    }
    Ok(header)
}

/// Verifies the signature with `key` (and its algorithm) and checks the claims against
/// `config` at `now` (seconds).
pub fn claims(
    token: &str,
    key: &IssuerKey,
    config: &GuardConfig,
    now: i64,
) -> Result<Claims, Rejection> {
    claims_within(token, key, config, now, config.leeway)
}

/// [`claims`] with `leeway` instead of the configured one (the guard passes the configured
/// one capped to how long the issuer keeps revocation entries past expiry).
pub fn claims_within(
    token: &str,
    key: &IssuerKey,
    config: &GuardConfig,
    now: i64,
    leeway: Duration,
) -> Result<Claims, Rejection> {
    let leeway_secs = leeway.as_secs();
    let leeway = i64::try_from(leeway_secs).unwrap_or(i64::MAX);
    let mut validation = Validation::new(key.alg);
    validation.leeway = leeway_secs;
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    // Times are judged below, on the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    Rejection::Algorithm
                }
                ErrorKind::ExpiredSignature => Rejection::Expired,
                ErrorKind::ImmatureSignature => Rejection::NotYetValid,
                ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                ErrorKind::InvalidAudience => Rejection::WrongAudience,
                _ => Rejection::Malformed,
            }
        })?
        .claims;
    // Refuse tokens issued in the future too (a fast issuer clock, or a forgery).
    if claims.exp.saturating_add(leeway) <= now {
        return Err(Rejection::Expired);
    }
    if claims.iat.saturating_sub(leeway) > now
        || claims
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
    {
        return Err(Rejection::NotYetValid);
    }
    if claims.iss != config.issuer {
        return Err(Rejection::WrongIssuer);
    }
    if !claims.aud.contains(&config.audience) {
        return Err(Rejection::WrongAudience);
    }
    Ok(claims)
}
