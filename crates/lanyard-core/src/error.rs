//! The one error of the services (`users`, `clients`, `sessions`, `keys`, `locks`,
//! `revoke`, `consents`): what the admin API, the command line and the account page answer
//! from.

use crate::db::DbError;
use crate::model::Invalid;
use crate::revocation::RevocationError;
use crate::tokens::KeyError;
use lanyard_store::StoreError;

/// Why a service refused or could not do what was asked (the admin API, the command line
/// and the account page answer from it).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is not acceptable; the message says why and what to do.
    #[error("{0}")]
    Invalid(String),
    /// One field of the input is not acceptable.
    #[error("{field}: {message}")]
    Field {
        /// The field, as the caller named it (`email`, `redirect_uris[1]`).
        field: String,
        /// Why, and what to do.
        message: String,
    },
    /// Something with this name exists.
    #[error("{0}")]
    Conflict(String),
    /// No such user, client, token, ...
    #[error("{0}")]
    NotFound(String),
    /// The database (or hashing) failed.
    #[error("{0}")]
    Unavailable(String),
}

impl ServiceError {
    /// [`ServiceError::Field`] for `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<Invalid> for ServiceError {
    fn from(e: Invalid) -> Self {
        Self::field(e.field, e.message)
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<RevocationError> for ServiceError {
    fn from(e: RevocationError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<KeyError> for ServiceError {
    fn from(e: KeyError) -> Self {
        Self::Unavailable(e.to_string())
    }
}
