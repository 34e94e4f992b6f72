//! A revocation as the durable record holds it.

use lanyard_store::{Revocation, Timestamp};

/// A revocation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRevocation {
    /// The list entry.
    pub revocation: Revocation,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Who revoked (`admin:<client_id>`, `client:<client_id>`, `cli`, `system`).
    pub actor: String,
}
