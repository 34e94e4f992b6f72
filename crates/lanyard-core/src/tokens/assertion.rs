//! Client assertions: `private_key_jwt` (RFC 7523 §2.2 and §3, OIDC Core §9). A client
//! without a secret signs a short JWT with one of its own keys; Lanyard checks it against the
//! keys the client registered, inline (`jwks`) or published (`jwks_uri`).
//!
//! What an assertion must be: signed with an asymmetric algorithm (RS256/384/512,
//! PS256/384/512, ES256/384, EdDSA; never HMAC or `none`) by a key of the client's (by `kid`
//! when the header names one); `iss` and `sub` the client id; `aud` **the issuer** (as
//! draft-ietf-oauth-rfc7523bis asks, so that an assertion made for one server is useless at
//! another, and not the endpoint's URL); `exp` in the future and at most
//! `client_assertion_max_lifetime_secs` ahead (an hour by default, as Okta allows and as
//! Authlib makes them; a deployment may ask for less); a `jti`, which the caller claims once in the token store until `exp` has passed.
//! The clock may be off by [`LEEWAY`] either way.
//!
//! Published keys are fetched through the outbound guard (`outbound`: no internal address
//! unless allowed), kept [`KEPT`], and fetched again for a `kid` not seen yet (at most every
//! [`REFETCH_AFTER`]), so a client can rotate its keys without telling anyone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

use crate::config::Network;
use crate::model::ClientSettings;
use crate::outbound;
use lanyard_store::Timestamp;

/// `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The algorithms an assertion may be signed with (discovery's
/// `token_endpoint_auth_signing_alg_values_supported`).
pub const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// How far the client's clock may be off.
pub const LEEWAY: Duration = Duration::from_secs(60);
/// How long fetched keys are used.
pub const KEPT: Duration = Duration::from_secs(300);
/// The least time between two fetches of one client's keys.
pub const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// The largest JWK Set fetched.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// The wire names of [`ALGORITHMS`].
pub fn algorithm_names() -> Vec<String> {
    ALGORITHMS.iter().map(|a| format!("{a:?}")).collect()
}

/// A checked assertion: what the caller claims once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserted {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp` (seconds).
    pub exp: i64,
}

/// Why an assertion was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    /// The assertion is wrong in a way its maker should be told (an `aud`, an `exp`, an
    /// algorithm): said in the error description.
    #[error("{0}")]
    Invalid(String),
    /// No key of the client's verifies it.
    #[error("no key of the client's verifies the assertion")]
    Unverified,
    /// The client's published keys could not be had.
    #[error("the client's keys could not be fetched from its jwks_uri: {0}")]
    Keys(String),
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    jti: Option<String>,
}

/// The client an assertion names (`sub`, else `iss`), unverified: only to find the client
/// whose keys will check it.
pub fn named_client(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Names {
        sub: Option<String>,
        iss: Option<String>,
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let names: Names = serde_json::from_slice(&bytes).ok()?;
    names.sub.or(names.iss).filter(|s| !s.is_empty())
}

/// The keys of clients that publish them, and the HTTP client that fetches them.
pub struct ClientKeys {
    /// How far ahead an assertion's `exp` may be.
    max_lifetime: Duration,
    http: reqwest::Client,
    allow: Vec<Network>,
    fetched: Mutex<HashMap<String, Fetched>>,
}

impl std::fmt::Debug for ClientKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeys").finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Fetched {
    uri: String,
    keys: JwkSet,
    at: Timestamp,
}

impl ClientKeys {
    /// Keys fetched through the outbound guard, with `allow` as its exceptions; assertions
    /// living at most `max_lifetime`.
    pub fn new(allow: &[Network], max_lifetime: Duration) -> Self {
        Self {
            max_lifetime,
            http: outbound::client(allow, "Lanyard", Duration::from_secs(5)),
            allow: allow.to_vec(),
            fetched: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `assertion` as `client`'s, made for `issuer`, at `now` (module docs).
    pub async fn verify(
        &self,
        client: &ClientSettings,
        assertion: &str,
        issuer: &str,
        now: Timestamp,
    ) -> Result<Asserted, AssertionError> {
        let claims: Claims = self
            .verified(
                client,
                assertion,
                issuer,
                &["exp", "iss", "sub", "aud"],
                "client_assertion",
                now,
            )
            .await?;
        if claims.sub != client.client_id {
            return Err(AssertionError::Invalid(
                "client_assertion's sub must be the client_id".into(),
            ));
        }
        let now_secs = now.as_secs();
        let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(60);
        let longest = i64::try_from(self.max_lifetime.as_secs()).unwrap_or(3600);
        if claims.exp > now_secs + longest + leeway {
            return Err(AssertionError::Invalid(format!(
                "client_assertion's exp is too far ahead: at most {} minutes",
                longest / 60
            )));
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= 256)
            .ok_or_else(|| AssertionError::Invalid("client_assertion has no jti".into()))?;
        Ok(Asserted {
            jti,
            exp: claims.exp,
        })
    }

    /// The claims of a request object (RFC 9101) signed by one of `client`'s keys: `iss` the
    /// client, `aud` the issuer, and, when it has them, `exp` and `nbf` in force.
    pub async fn verify_request_object(
        &self,
        client: &ClientSettings,
        request: &str,
        issuer: &str,
        now: Timestamp,
    ) -> Result<serde_json::Map<String, serde_json::Value>, AssertionError> {
        self.verified(
            client,
            request,
            issuer,
            &["iss", "aud"],
            "the request object",
            now,
        )
        .await
    }

    /// A JWT signed by one of `client`'s keys with an asymmetric algorithm, `iss` the
    /// client, `aud` the issuer, the `required` claims present, `exp` (if any) not passed
    /// on the injected clock; its claims. `what` names it in errors.
    async fn verified<T: serde::de::DeserializeOwned>(
        &self,
        client: &ClientSettings,
        jwt: &str,
        issuer: &str,
        required: &[&str],
        what: &str,
        now: Timestamp,
    ) -> Result<T, AssertionError> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|_| AssertionError::Invalid(format!("{what} is not a signed JWT")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(AssertionError::Invalid(format!(
                "{what} is signed with {:?}; use an asymmetric algorithm ({})",
                header.alg,
                algorithm_names().join(", ")
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[issuer]);
        validation.set_issuer(&[client.client_id.as_str()]);
        validation.set_required_spec_claims(required);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        // Checked against the injected clock below, not the system's.
        validation.validate_exp = false;
        let kid = header.kid.as_deref();
        let mut keys = self.keys(client, false, now).await?;
        if candidates(&keys, kid, header.alg).is_empty() && client.jwks_uri.is_some() {
            keys = self.keys(client, true, now).await?;
        }
        let mut verified = None;
        for jwk in candidates(&keys, kid, header.alg) {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            match jsonwebtoken::decode::<serde_json::Value>(jwt, &key, &validation) {
                Ok(data) => {
                    verified = Some(data.claims);
                    break;
                }
                Err(e) => match e.kind() {
                    ErrorKind::InvalidAudience => {
                        return Err(AssertionError::Invalid(format!(
                            "{what}'s aud must be the issuer, {issuer}"
                        )));
                    }
                    ErrorKind::InvalidIssuer => {
                        return Err(AssertionError::Invalid(format!(
                            "{what}'s iss must be the client_id"
                        )));
                    }
                    ErrorKind::ImmatureSignature => {
                        return Err(AssertionError::Invalid(format!(
                            "{what} is not valid yet (nbf)"
                        )));
                    }
                    ErrorKind::MissingRequiredClaim(claim) => {
                        return Err(AssertionError::Invalid(format!("{what} has no {claim}")));
                    }
                    _ => continue,
                },
            }
        }
        let claims = verified.ok_or(AssertionError::Unverified)?;
        let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(60);
        match claims.get("exp") {
            None => {}
            Some(exp) => match exp.as_i64() {
                Some(exp) if exp + leeway > now.as_secs() => {}
                Some(_) => return Err(AssertionError::Invalid(format!("{what} has expired"))),
                None => {
                    return Err(AssertionError::Invalid(format!(
                        "{what}'s exp is not a number"
                    )));
                }
            },
        }
        serde_json::from_value(claims).map_err(|e| {
            AssertionError::Invalid(format!("{what} has a claim of the wrong type: {e}"))
        })
    }

    /// The client's keys: inline, or fetched (again when `fresh`, at most every
    /// [`REFETCH_AFTER`]); ages on the injected clock (`now`).
    async fn keys(
        &self,
        client: &ClientSettings,
        fresh: bool,
        now: Timestamp,
    ) -> Result<JwkSet, AssertionError> {
        if let Some(jwks) = &client.jwks {
            return serde_json::from_value(jwks.clone())
                .map_err(|_| AssertionError::Keys("the registered jwks is not a JWK Set".into()));
        }
        let Some(uri) = &client.jwks_uri else {
            return Ok(JwkSet { keys: Vec::new() });
        };
        let cached = self
            .fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client.client_id)
            .filter(|f| f.uri == *uri)
            .cloned();
        if let Some(f) = cached {
            let age = f.at.until(now);
            if age < KEPT && (!fresh || age < REFETCH_AFTER) {
                return Ok(f.keys);
            }
        }
        let keys = self.fetch(uri).await?;
        self.fetched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                client.client_id.clone(),
                Fetched {
                    uri: uri.clone(),
                    keys: keys.clone(),
                    at: now,
                },
            );
        Ok(keys)
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, AssertionError> {
        if let Some(why) = outbound::refuse_literal(uri, &self.allow) {
            return Err(AssertionError::Keys(why));
        }
        let mut response = self
            .http
            .get(uri)
            .header("accept", "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| AssertionError::Keys(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(AssertionError::Keys(format!(
                "it answered {}",
                response.status()
            )));
        }
        let body = outbound::read_limited(&mut response, MAX_JWKS_BYTES)
            .await
            .map_err(|e| AssertionError::Keys(e.without_url().to_string()))?
            .ok_or_else(|| AssertionError::Keys("its JWK Set is too large".into()))?;
        serde_json::from_slice(&body)
            .map_err(|_| AssertionError::Keys("it did not answer a JWK Set".into()))
    }
}

/// The keys that may have signed a token with `kid` and `alg`: by `kid` when it names one,
/// of a type that signs with `alg`, and whose own `alg`, if set, is that one.
fn candidates<'a>(keys: &'a JwkSet, kid: Option<&str>, alg: Algorithm) -> Vec<&'a Jwk> {
    keys.keys
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid)))
        .filter(|k| {
            k.common
                .key_algorithm
                .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_named_client_is_read_without_trusting_it() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"a","sub":"wiki"}"#);
        assert_eq!(
            named_client(&format!("x.{payload}.y")).as_deref(),
            Some("wiki")
        );
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"wiki"}"#);
        assert_eq!(
            named_client(&format!("x.{payload}.y")).as_deref(),
            Some("wiki")
        );
        for bad in [
            "",
            "x",
            "x.!!.y",
            &format!("x.{}.y", URL_SAFE_NO_PAD.encode(b"[]")),
        ] {
            assert_eq!(named_client(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_asymmetric_algorithms() {
        let names = algorithm_names();
        assert!(names.contains(&"RS256".to_owned()) && names.contains(&"EdDSA".to_owned()));
        assert!(!names.iter().any(|n| n.starts_with("HS")));
    }
}
