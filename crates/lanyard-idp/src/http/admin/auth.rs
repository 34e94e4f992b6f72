//! Who may call the admin API: the bearer of a live access token with scope `lanyard:admin`,
//! answered per RFC 6750 §3 (no token: 401 with a bare challenge; a bad one: 401
//! `invalid_token`; one without the scope: 403 `insufficient_scope`).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::admin::{ADMIN_SCOPE, AdminAuthError, AdminError, authorize};
use crate::http::reply::bearer_error;
use crate::http::userinfo::bearer_header;
use crate::state::AppState;

/// An authorized admin caller: the client the token was issued to.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    /// The admin client's id.
    pub client_id: String,
}

impl Admin {
    /// How the audit trail and the revocation record name this caller.
    pub(crate) fn actor(&self) -> String {
        format!("admin:{}", self.client_id)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let token = match bearer_header(&parts.headers) {
            Ok(Some(token)) => token,
            Ok(None) => return Err(bearer_error(StatusCode::UNAUTHORIZED, None, None, None)),
            Err(description) => {
                return Err(bearer_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    Some(description),
                    None,
                ));
            }
        };
        match authorize(state, &token).await {
            Ok(client_id) => Ok(Admin { client_id }),
            Err(AdminAuthError::InvalidToken(description)) => Err(bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                Some(&description),
                None,
            )),
            Err(AdminAuthError::InsufficientScope(description)) => Err(bearer_error(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                Some(&description),
                Some(ADMIN_SCOPE),
            )),
            Err(AdminAuthError::Unavailable(detail)) => {
                Err(AdminError::Unavailable(detail).into_response())
            }
        }
    }
}
