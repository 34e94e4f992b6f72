//! One file per grant type (RFC 6749 §4.1.3, §6, §4.4). Each takes an authenticated client
//! and the request parameters and answers a token response or an RFC 6749 §5.2 error.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::{Deserialize, Serialize};

use crate::model::GrantType;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;

/// The grant a token request asks for: its `grant_type` (RFC 6749 §4.1.3, §6, §4.4), one of
/// those Lanyard implements (§5.2 `unsupported_grant_type` otherwise).
pub fn grant_type(params: &Params) -> Result<GrantType, TokenError> {
    let name = params
        .get("grant_type")
        .ok_or_else(|| TokenError::invalid_request("grant_type is missing"))?;
    name.parse().map_err(|_| {
        TokenError::unsupported_grant_type(format!(
            "grant_type {name} is not supported (use authorization_code, refresh_token or client_credentials)"
        ))
    })
}

/// What a refresh family remembers for the tokens it will mint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshPayload {
    /// When the user authenticated (seconds).
    pub auth_time: i64,
    /// How.
    pub amr: Vec<String>,
    /// The SSO session it was issued in, offline families too (their tokens carry no `sid`,
    /// as they outlive the session, but revoking the session by admin revokes them).
    #[serde(default)]
    pub sid: Option<String>,
}

impl RefreshPayload {
    /// Whether `family` was issued in session `sid` (bound to it or not).
    pub fn issued_in(family: &lanyard_store::Family, sid: &str) -> bool {
        family.sid().is_some_and(|s| s.as_str() == sid)
            || serde_json::from_value::<Self>(family.payload.clone())
                .is_ok_and(|p| p.sid.as_deref() == Some(sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_type_names_one_lanyard_implements() {
        let grant = |body: &[u8]| grant_type(&Params::parse(body).unwrap()).map_err(|e| e.code);
        assert_eq!(
            grant(b"grant_type=refresh_token"),
            Ok(GrantType::RefreshToken)
        );
        assert_eq!(grant(b"scope=a"), Err("invalid_request"));
        assert_eq!(grant(b"grant_type="), Err("invalid_request"));
        for other in ["password", "implicit", "Refresh_token", "refresh_token%20"] {
            assert_eq!(
                grant(format!("grant_type={other}").as_bytes()),
                Err("unsupported_grant_type"),
                "{other}"
            );
        }
    }
}
