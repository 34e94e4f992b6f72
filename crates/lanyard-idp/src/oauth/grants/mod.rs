//! One file per grant type (RFC 6749 §4.1.3, §6, §4.4; RFC 8628 §3.4; RFC 8693 §2.1). Each takes an authenticated client
//! and the request parameters and answers a token response or an RFC 6749 §5.2 error.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use crate::oauth::error::TokenError;
use crate::params::Params;
use lanyard_core::model::GrantType;

/// The grant a token request asks for: its `grant_type` (RFC 6749 §4.1.3, §6, §4.4), one of
/// those Lanyard implements (§5.2 `unsupported_grant_type` otherwise).
pub fn grant_type(params: &Params) -> Result<GrantType, TokenError> {
    let name = params
        .get("grant_type")
        .ok_or_else(|| TokenError::invalid_request("grant_type is missing"))?;
    name.parse().map_err(|_| {
        TokenError::unsupported_grant_type(format!(
            "grant_type {name} is not supported (use authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code or urn:ietf:params:oauth:grant-type:token-exchange)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_type_names_one_lanyard_implements() {
        let grant =
            |body: &[u8]| grant_type(&Params::parse(body).unwrap()).map_err(|e| e.code.as_str());
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
