//! Authorization codes (RFC 6749 §4.1.2): single use, short-lived, stored under a hash.

use serde::{Deserialize, Serialize};

use crate::{AccessTokenRef, FamilyId, GrantId, SessionId};

/// What an authorization code stands for. The store keeps it, under the code's hash, until
/// the code is redeemed or expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Links the code to everything issued from it.
    pub grant_id: GrantId,
    /// The client the code was issued to.
    pub client_id: String,
    /// The signed-in user.
    pub sub: String,
    /// The SSO session the user signed in with.
    pub sid: Option<SessionId>,
    /// What a redemption of this code will issue, decided when the code is made. A replay of
    /// the code gets it back, so the server can revoke exactly that, even when the replay races
    /// the first redemption on another node.
    pub issuance: Issuance,
    /// Everything else the issuer checks at the token endpoint (redirect URI, PKCE challenge,
    /// nonce, scope, ...). Opaque to the store.
    pub payload: serde_json::Value,
}

/// What a redemption of a code will issue, so that a replay of the code names exactly what
/// must be revoked (RFC 6749 §4.1.2: "SHOULD revoke ... all tokens previously issued based on
/// that authorization code"; RFC 9700 §4.2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuance {
    /// The access token a redemption will mint: its `jti`, and an `expires_at` no earlier
    /// than the token's real `exp` (the code's expiry plus the longest lifetime will do).
    pub access_token: Option<AccessTokenRef>,
    /// The refresh-token family a redemption may create (see [`FamilyId::generate`]).
    pub family: Option<FamilyId>,
}

/// The outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Redemption {
    /// This call won: the code is now spent.
    Redeemed(CodeGrant),
    /// The code was redeemed before. Answer `invalid_grant` and revoke what the first
    /// redemption issued.
    AlreadyRedeemed(RedeemedCode),
    /// Unknown, malformed or expired. Answer `invalid_grant`.
    NotFound,
}

/// What is remembered of a spent code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedeemedCode {
    /// The grant the code stood for.
    pub grant_id: GrantId,
    /// The client the code was issued to.
    pub client_id: String,
    /// What the redemption issued (the grant's [`Issuance`]).
    pub issued: Issuance,
}

/// How a code's record is kept (JSON, both backends).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum CodeRecord {
    Live(CodeGrant),
    Redeemed(RedeemedCode),
}

impl RedeemedCode {
    /// The tombstone a redemption of `grant` leaves behind.
    pub(crate) fn of(grant: &CodeGrant) -> Self {
        Self {
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            issued: grant.issuance.clone(),
        }
    }
}
