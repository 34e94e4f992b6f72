//! What an authorization code stands for, beyond what the token store itself keeps (the
//! code's `payload`): written when the code is issued (`authorize::issue_code`), read when it
//! is redeemed (`grants/authorization_code.rs`).

use lanyard_core::model::RedirectUri;
use serde::{Deserialize, Serialize};

/// What the code stands for, beyond what the store itself keeps (the store's `payload`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodePayload {
    /// Must be sent again, identically, at the token endpoint (RFC 6749 §4.1.3).
    pub redirect_uri: RedirectUri,
    /// PKCE challenge, if any.
    pub code_challenge: Option<String>,
    /// For the ID token.
    pub nonce: Option<String>,
    /// Granted scope.
    pub scope: Vec<String>,
    /// When the user authenticated (seconds).
    pub auth_time: i64,
    /// How.
    pub amr: Vec<String>,
    /// When the session ends at the latest (ms): a session-bound refresh family asks for no
    /// longer than this.
    pub session_expires_at: i64,
}
