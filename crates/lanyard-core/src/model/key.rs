//! A signing key as stored.

use lanyard_store::Timestamp;

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// `next`, `active` or `retired`.
    pub state: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Published until then (retired keys).
    pub usable_until: Option<Timestamp>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
