//! Errors of the protocol endpoints, one type per channel (GUIDE §2):
//! - [`AuthorizeError`]: the authorization endpoint, either redirected to the client
//!   (RFC 6749 §4.1.2.1) or shown as a page when the redirect URI cannot be trusted;
//! - [`TokenError`]: the token endpoint's JSON errors (RFC 6749 §5.2).
//!
//! The HTTP layer turns each into a response in one place (`http::errors`).

use crate::oauth::reply::ReplyTo;
use lanyard_core::db::DbError;
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

/// A service failed while a person was being signed in or asked (recording or withdrawing
/// a consent): only the database or the store can fail there, so the page says "try again".
impl From<lanyard_core::ServiceError> for AuthorizeError {
    fn from(e: lanyard_core::ServiceError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<DbError> for AuthorizeError {
    fn from(e: DbError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// The `error` codes of the token endpoint and the endpoints that authenticate clients the
/// same way (RFC 6749 §5.2, RFC 8707 §2, RFC 7009 §2.2.1, RFC 7662 §2.3, RFC 8628 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenErrorCode {
    /// `invalid_request`: missing, repeated or malformed parameter.
    InvalidRequest,
    /// `invalid_client`: client authentication failed (401 with a `Basic` challenge).
    InvalidClient,
    /// `invalid_grant`: the code, refresh token or verifier is not good.
    InvalidGrant,
    /// `unauthorized_client`: this client may not use this grant.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `invalid_target` (RFC 8707 §2): the `resource` is not one Lanyard issues tokens for.
    InvalidTarget,
    /// `invalid_request_object` (RFC 9101 §6.3): a pushed request object that is not
    /// signed as it must be.
    InvalidRequestObject,
    /// `unsupported_response_type` (a pushed authorization request, RFC 9126 §2.3).
    UnsupportedResponseType,
    /// `authorization_pending` (RFC 8628 §3.5): the person has not decided yet; poll again.
    AuthorizationPending,
    /// `slow_down` (RFC 8628 §3.5): still pending, and polled too soon.
    SlowDown,
    /// `access_denied` (RFC 8628 §3.5): the person denied the device.
    AccessDenied,
    /// `expired_token` (RFC 8628 §3.5): the device code expired; start again.
    ExpiredToken,
    /// `invalid_dpop_proof` (RFC 9449 §5): the DPoP proof is missing where required,
    /// malformed, replayed, or for another key.
    InvalidDpopProof,
    /// `use_dpop_nonce` (RFC 9449 §8): send the proof again with the nonce in `DPoP-Nonce`.
    UseDpopNonce,
    /// `server_error` (500): something of ours is broken; retrying will not help.
    ServerError,
    /// `temporarily_unavailable` (503): a dependency is down; retry later.
    TemporarilyUnavailable,
}

impl TokenErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidRequestObject => "invalid_request_object",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::AccessDenied => "access_denied",
            Self::ExpiredToken => "expired_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An error at the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The `error` code.
    pub code: TokenErrorCode,
    /// `error_description`: what was wrong, for the client's developer. Never a secret.
    pub description: String,
}

impl TokenError {
    fn new(code: TokenErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    /// `invalid_request`: missing, repeated or malformed parameter.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidRequest, d)
    }
    /// `invalid_client`: client authentication failed (401).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidClient, d)
    }
    /// `invalid_grant`: the code, refresh token or verifier is not good.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidGrant, d)
    }
    /// `unauthorized_client`: this client may not use this grant.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::UnauthorizedClient, d)
    }
    /// `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::UnsupportedGrantType, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidScope, d)
    }
    /// `invalid_target` (RFC 8707 §2): the `resource` is not one Lanyard issues tokens for.
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidTarget, d)
    }
    /// A pushed authorization request refused (RFC 9126 §2.3) with the error the
    /// authorization endpoint would have sent the client (`invalid_scope`,
    /// `unsupported_response_type`, ...); codes this type has no name for read as
    /// `invalid_request`.
    pub fn pushed(code: &str, d: impl Into<String>) -> Self {
        let code = match code {
            "invalid_scope" => TokenErrorCode::InvalidScope,
            "unauthorized_client" => TokenErrorCode::UnauthorizedClient,
            "unsupported_response_type" => TokenErrorCode::UnsupportedResponseType,
            "invalid_request_object" => TokenErrorCode::InvalidRequestObject,
            _ => TokenErrorCode::InvalidRequest,
        };
        Self::new(code, d)
    }
    /// One of the device grant's answers to a poll (RFC 8628 §3.5).
    pub fn device(code: TokenErrorCode, d: impl Into<String>) -> Self {
        Self::new(code, d)
    }
    /// `invalid_dpop_proof` (RFC 9449 §5).
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidDpopProof, d)
    }
    /// `use_dpop_nonce` (RFC 9449 §8): the answer carries the nonce to use.
    pub fn use_dpop_nonce() -> Self {
        Self::new(
            TokenErrorCode::UseDpopNonce,
            "send the DPoP proof again with the nonce in the DPoP-Nonce header",
        )
    }
    /// `server_error` (500): something of ours is broken (a corrupt record); retrying will not
    /// help, and the details are in our logs, not in the answer.
    pub fn server_error() -> Self {
        Self::new(
            TokenErrorCode::ServerError,
            "the token service failed; the operators have been told",
        )
    }
    /// `temporarily_unavailable` (503): a dependency is down; retry later.
    pub fn unavailable(d: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::TemporarilyUnavailable, d)
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

impl From<lanyard_core::revocation::RevocationError> for TokenError {
    fn from(e: lanyard_core::revocation::RevocationError) -> Self {
        match e {
            lanyard_core::revocation::RevocationError::Db(e) => e.into(),
            lanyard_core::revocation::RevocationError::Store(e) => e.into(),
        }
    }
}

impl From<lanyard_core::tokens::KeyError> for TokenError {
    fn from(e: lanyard_core::tokens::KeyError) -> Self {
        tracing::error!(error = %e, "signing failed");
        Self::unavailable("the token service is briefly unavailable; retry in a moment")
    }
}
