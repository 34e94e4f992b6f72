//! Who may administer: the bearer of a live access token with scope [`ADMIN_SCOPE`], issued
//! by `client_credentials` (the token's `sub` is its client and it has no session) to a
//! client that still holds that scope and still exists.

use crate::oauth::checks::scope::Scope;
use crate::revocation::{self, LiveError};
use crate::state::AppState;

/// The scope the admin API requires.
pub const ADMIN_SCOPE: &str = "lanyard:admin";

/// Why an admin call was refused (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAuthError {
    /// 401 `invalid_token`, with this description.
    InvalidToken(String),
    /// 403 `insufficient_scope`, with this description.
    InsufficientScope(String),
    /// 503: the token could not be judged.
    Unavailable(String),
}

/// The admin client behind `token`.
pub async fn authorize(state: &AppState, token: &str) -> Result<String, AdminAuthError> {
    let claims = revocation::live_access_token(state, token)
        .await
        .map_err(|e| match e {
            LiveError::Invalid(d) => AdminAuthError::InvalidToken(d),
            LiveError::Unavailable(e) => AdminAuthError::Unavailable(e.to_string()),
        })?;
    let scoped = Scope::parse(&claims.scope).is_some_and(|s| s.contains(ADMIN_SCOPE));
    if !scoped {
        return Err(AdminAuthError::InsufficientScope(format!(
            "the access token was not granted the {ADMIN_SCOPE} scope"
        )));
    }
    // A token issued for another resource (`resource=...`) is not for us, whatever its scope
    // (RFC 9068 §4): an API that received it must not be able to replay it here.
    if !claims.aud.contains(&claims.client_id) {
        return Err(AdminAuthError::InvalidToken(
            "the access token was issued for another resource, not the admin API".to_owned(),
        ));
    }
    // A user's token never administers, whatever its scope says.
    if claims.sub != claims.client_id || claims.sid.is_some() {
        return Err(AdminAuthError::InsufficientScope(format!(
            "the admin API takes a client_credentials token for the {ADMIN_SCOPE} scope, not a user's token"
        )));
    }
    let client = state
        .db
        .client(&claims.client_id)
        .await
        .map_err(|e| AdminAuthError::Unavailable(e.to_string()))?
        .ok_or_else(|| AdminAuthError::InvalidToken("the client no longer exists".to_owned()))?;
    if !client.scopes.iter().any(|s| s == ADMIN_SCOPE) {
        return Err(AdminAuthError::InsufficientScope(format!(
            "the client no longer holds the {ADMIN_SCOPE} scope"
        )));
    }
    Ok(claims.client_id)
}
