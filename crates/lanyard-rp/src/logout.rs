//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6): the issuer's word that
//! a sign-in session ended, validated strictly before any session is touched.
//!
//! A logout token must be: `typ` `logout+jwt` (so an ID or access token is never taken for
//! one, RFC 8725 §3.11); RS256 with a key of the issuer's, by `kid`; `iss` the issuer; `aud`
//! containing this client; `iat` not in the future and `exp` not past (within the leeway);
//! a `jti`; `events` an object with the back-channel logout member; `sub` or `sid`; and
//! **no `nonce`** (so an ID token can never pass as one).

use jsonwebtoken::Validation;

use crate::keys::IssuerKey;
use serde::Deserialize;

/// The `events` member that makes a JWT a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a valid logout token says ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The user, if named.
    pub sub: Option<String>,
    /// The SSO session, if named.
    pub sid: Option<String>,
    /// The token's id (for replay detection).
    pub jti: String,
    /// Its expiry (seconds).
    pub exp: i64,
}

impl LogoutToken {
    /// Whether an app session of user `sub` begun in SSO session `sid` is one this token ends:
    /// with a `sid`, that session (and, if named, that user); with only `sub`, every session
    /// of the user.
    pub fn ends(&self, sub: &str, sid: Option<&str>) -> bool {
        let user = self.sub.as_deref().is_none_or(|s| s == sub);
        match &self.sid {
            Some(ended) => user && sid == Some(ended.as_str()),
            None => user,
        }
    }
}

/// Why a logout token was refused. The text goes back in `error_description` (§2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LogoutRejection {
    /// Not a JWT, or a claim missing or of the wrong type.
    #[error("the logout token is malformed")]
    Malformed,
    /// `typ` is not `logout+jwt`.
    #[error("the token is not a logout token (typ must be logout+jwt)")]
    WrongType,
    /// Not RS256.
    #[error("the logout token uses an algorithm this app does not accept")]
    Algorithm,
    /// No key of the issuer has its `kid`.
    #[error("the logout token is signed with a key this app does not know")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the logout token's signature is not valid")]
    BadSignature,
    /// Another issuer.
    #[error("the logout token was issued by another issuer")]
    WrongIssuer,
    /// Not for this client.
    #[error("the logout token is not meant for this app")]
    WrongAudience,
    /// Expired, or issued in the future.
    #[error("the logout token is expired or not yet valid")]
    Time,
    /// No `events` with the back-channel logout member.
    #[error("the logout token lacks the back-channel logout event")]
    NoEvent,
    /// Neither `sub` nor `sid`.
    #[error("the logout token names neither a user nor a session")]
    NoSubject,
    /// It carries a `nonce` (§2.4: prohibited).
    #[error("the logout token carries a nonce")]
    Nonce,
    /// Seen before.
    #[error("the logout token was already used")]
    Replayed,
}

/// The header's `kid`, with `typ`, `alg` and `crit` checked.
pub fn key_id(token: &str) -> Result<String, LogoutRejection> {
    use crate::validate::Rejection;
    let header = crate::validate::header_of_type(token, "logout+jwt").map_err(|e| match e {
        Rejection::NotAnAccessToken => LogoutRejection::WrongType,
        Rejection::Algorithm => LogoutRejection::Algorithm,
        _ => LogoutRejection::Malformed,
    })?;
    header.kid.ok_or(LogoutRejection::UnknownKey)
}

#[derive(Deserialize)]
struct Raw {
    iss: String,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    events: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    nonce: Option<serde_json::Value>,
}

/// Verifies the signature with `key` and the claims for `client_id` of `issuer` at `now`
/// (seconds), with `leeway` seconds.
pub fn validate(
    token: &str,
    key: &IssuerKey,
    issuer: &str,
    client_id: &str,
    now: i64,
    leeway: u64,
) -> Result<LogoutToken, LogoutRejection> {
    let mut validation = Validation::new(key.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let raw = jsonwebtoken::decode::<Raw>(token, &key.key, &validation)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => LogoutRejection::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    LogoutRejection::Algorithm
                }
                ErrorKind::InvalidIssuer => LogoutRejection::WrongIssuer,
                ErrorKind::InvalidAudience => LogoutRejection::WrongAudience,
                _ => LogoutRejection::Malformed,
            }
        })?
        .claims;
    if raw.iss != issuer {
        return Err(LogoutRejection::WrongIssuer);
    }
    let leeway = i64::try_from(leeway).unwrap_or(i64::MAX);
    if raw.exp.saturating_add(leeway) <= now || raw.iat.saturating_sub(leeway) > now {
        return Err(LogoutRejection::Time);
    }
    if raw.nonce.is_some() {
        return Err(LogoutRejection::Nonce);
    }
    if !raw
        .events
        .get(BACKCHANNEL_LOGOUT_EVENT)
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(LogoutRejection::NoEvent);
    }
    if raw.sub.is_none() && raw.sid.is_none() {
        return Err(LogoutRejection::NoSubject);
    }
    if raw.jti.is_empty() {
        return Err(LogoutRejection::Malformed);
    }
    Ok(LogoutToken {
        sub: raw.sub,
        sid: raw.sid,
        jti: raw.jti,
        exp: raw.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_with_a_sid_ends_that_session_only() {
        let token = LogoutToken {
            sub: Some("alice".into()),
            sid: Some("s1".into()),
            jti: "j".into(),
            exp: 0,
        };
        assert!(token.ends("alice", Some("s1")));
        assert!(!token.ends("alice", Some("s2")));
        assert!(!token.ends("alice", None));
        assert!(!token.ends("bob", Some("s1")));
        let by_user = LogoutToken { sid: None, ..token };
        assert!(by_user.ends("alice", Some("s2")) && by_user.ends("alice", None));
        assert!(!by_user.ends("bob", None));
    }
}
