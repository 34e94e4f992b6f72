//! What a refresh-token family carries for the tokens it will mint (the store keeps it as
//! the family's payload).

use serde::{Deserialize, Serialize};

/// What a refresh family remembers for the tokens it will mint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshPayload {
    /// When the user authenticated (seconds).
    pub auth_time: i64,
    /// How.
    pub amr: Vec<String>,
    /// The SSO session it was issued in, offline families too (their tokens carry no `sid`,
    /// as they outlive the session, but revoking the session by admin revokes them).
    #[serde(default)]
    pub sid: Option<String>,
    /// A public client's family bound to a DPoP key (RFC 9449 §5): its thumbprint. Every
    /// refresh must come with a proof signed by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

impl RefreshPayload {
    /// Whether `family` was issued in session `sid` (bound to it or not).
    pub fn issued_in(family: &lanyard_store::Family, sid: &str) -> bool {
        family.sid().is_some_and(|s| s.as_str() == sid)
            || serde_json::from_value::<Self>(family.payload.clone())
                .is_ok_and(|p| p.sid.as_deref() == Some(sid))
    }
}
