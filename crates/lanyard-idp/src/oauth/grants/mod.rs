//! One file per grant type (RFC 6749 §4.1.3, §6, §4.4). Each takes an authenticated client
//! and the request parameters and answers a token response or an RFC 6749 §5.2 error.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::{Deserialize, Serialize};

/// What a refresh family remembers for the tokens it will mint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshPayload {
    /// When the user authenticated (seconds).
    pub auth_time: i64,
    /// How.
    pub amr: Vec<String>,
}
