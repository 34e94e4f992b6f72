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
    /// Everything else the issuer checks at the token endpoint (redirect URI, PKCE challenge,
    /// nonce, scope, ...). Opaque to the store.
    pub payload: serde_json::Value,
}

/// What the redeemer is about to issue from a code. It is recorded atomically with the
/// redemption, so a replay of the code names exactly what must be revoked (RFC 6749 §4.1.2:
/// "SHOULD revoke ... all tokens previously issued based on that authorization code";
/// RFC 9700 §4.2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issuance {
    /// The access token the redeemer will mint.
    pub access_token: Option<AccessTokenRef>,
    /// The refresh-token family the redeemer will create (see [`FamilyId::generate`]).
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
    /// What the first redemption said it would issue.
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
    pub(crate) fn of(grant: &CodeGrant, issued: &Issuance) -> Self {
        Self {
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            issued: issued.clone(),
        }
    }
}
