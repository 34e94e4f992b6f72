//! The one error type of the store.
//!
//! Domain outcomes ("no such code", "token reused") are not errors: they are variants of the
//! result enums (`Redemption`, `Rotation`, `Verdict`). A `StoreError` always means "the store
//! could not answer", and no caller may read it as "not revoked" or "session valid".

use std::time::Duration;

/// Why the store could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached (connection refused, dropped, or still reconnecting).
    /// Callers answer 503 with `Retry-After`.
    #[error("token store unavailable: {0}")]
    Unavailable(String),

    /// The backend did not answer within the operation timeout. Callers answer 503.
    #[error("token store did not answer within {0:?}")]
    Timeout(Duration),

    /// The revocation lists cannot be trusted: the backend lost them (for example a Redis
    /// restarted without persistence; its epoch marker is gone). Nothing may be judged "not
    /// revoked" until the lists are re-seeded from the durable record with
    /// [`TokenStore::reseed`](crate::TokenStore::reseed).
    #[error("revocation lists lost by the token store; re-seed them before trusting it")]
    RevocationStateLost,

    /// A stored record did not decode. Never replaced by a default.
    #[error("corrupt {what} record in the token store: {detail}")]
    Corrupt {
        /// Which kind of record (`session`, `refresh family`, ...).
        what: &'static str,
        /// What was wrong with it. Never contains a secret.
        detail: String,
    },

    /// The caller asked for something the store refuses (for example a family id used twice).
    #[error("invalid token store request: {0}")]
    InvalidRequest(&'static str),

    /// The backend answered with an error the store does not expect (a script error,
    /// out of memory, a permission error).
    #[error("token store backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// True when retrying later may succeed; the HTTP layer answers these with 503.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Timeout(_) | Self::RevocationStateLost
        )
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            what,
            detail: detail.into(),
        }
    }
}
