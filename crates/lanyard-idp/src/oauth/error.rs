//! Errors of the protocol endpoints, one type per channel (GUIDE §2):
//! - [`AuthorizeError`]: the authorization endpoint, either redirected to the client
//!   (RFC 6749 §4.1.2.1) or shown as a page when the redirect URI cannot be trusted;
//! - [`TokenError`]: the token endpoint's JSON errors (RFC 6749 §5.2).
//!
//! The HTTP layer turns each into a response in one place (`http::errors`).

use crate::db::DbError;
use crate::oauth::authorize::ReplyTo;
use lanyard_store::StoreError;

/// A failure at the authorization endpoint.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI is unknown or wrong: never redirect (RFC 6749 §4.1.2.1);
    /// show a page saying what happened and what to do.
    Page {
        /// One line.
        title: &'static str,
        /// What happened and what to do next.
        message: String,
    },
    /// Sent back to the client's registered redirect URI with `error`, `error_description`,
    /// `state` and `iss`.
    Redirect {
        /// Where.
        to: ReplyTo,
        /// The RFC 6749 §4.1.2.1 / OIDC Core §3.1.2.6 error code.
        code: &'static str,
        /// Human-readable, for the developer.
        description: String,
    },
    /// Something Lanyard depends on is down: a 503 page, "try again in a moment".
    Unavailable(String),
}

impl AuthorizeError {
    pub(crate) fn page(title: &'static str, message: impl Into<String>) -> Self {
        Self::Page {
            title,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<DbError> for AuthorizeError {
    fn from(e: DbError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// An error at the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, ...
    pub code: &'static str,
    /// `error_description`: what was wrong, for the client's developer. Never a secret.
    pub description: String,
    /// `temporarily_unavailable` and `server_error` are ours, not the client's.
    pub unavailable: bool,
}

impl TokenError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            unavailable: false,
        }
    }

    /// `invalid_request`: missing, repeated or malformed parameter.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new("invalid_request", d)
    }
    /// `invalid_client`: client authentication failed (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new("invalid_client", d)
    }
    /// `invalid_grant`: the code, refresh token or verifier is not good.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new("invalid_grant", d)
    }
    /// `unauthorized_client`: this client may not use this grant.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new("unauthorized_client", d)
    }
    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new("unsupported_grant_type", d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new("invalid_scope", d)
    }
    /// `invalid_target` (RFC 8707 §2): the `resource` is not one Lanyard issues tokens for.
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new("invalid_target", d)
    }
    /// `server_error` (500): something of ours is broken (a corrupt record); retrying will not
    /// help, and the details are in our logs, not in the answer.
    pub fn server_error() -> Self {
        Self {
            unavailable: true,
            ..Self::new(
                "server_error",
                "the token service failed; the operators have been told",
            )
        }
    }
    /// `temporarily_unavailable` (503): a dependency is down; retry later.
    pub fn unavailable(d: impl Into<String>) -> Self {
        Self {
            unavailable: true,
            ..Self::new("temporarily_unavailable", d)
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "token store failed");
        if e.is_transient() {
            Self::unavailable("the token service is briefly unavailable; retry in a moment")
        } else {
            Self::server_error()
        }
    }
}

impl From<DbError> for TokenError {
    fn from(e: DbError) -> Self {
        tracing::error!(error = %e, "database failed");
        match e {
            DbError::Unavailable(_) => {
                Self::unavailable("the token service is briefly unavailable; retry in a moment")
            }
            DbError::Conflict(_) | DbError::Corrupt { .. } => Self::server_error(),
        }
    }
}

impl From<crate::revocation::RevocationError> for TokenError {
    fn from(e: crate::revocation::RevocationError) -> Self {
        match e {
            crate::revocation::RevocationError::Db(e) => e.into(),
            crate::revocation::RevocationError::Store(e) => e.into(),
        }
    }
}

impl From<crate::tokens::KeyError> for TokenError {
    fn from(e: crate::tokens::KeyError) -> Self {
        tracing::error!(error = %e, "signing failed");
        Self::unavailable("the token service is briefly unavailable; retry in a moment")
    }
}
