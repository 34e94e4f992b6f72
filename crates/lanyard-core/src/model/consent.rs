//! What a person allowed an application.

use lanyard_store::Timestamp;

/// What a user allowed a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The client.
    pub client_id: String,
    /// The scopes allowed.
    pub scopes: Vec<String>,
    /// When (last) allowed.
    pub granted_at: Timestamp,
}
