//! Refresh-token families and rotation (RFC 6749 §6, RFC 9700 §4.14.2).
//!
//! # The rotation rule (both backends, one atomic step)
//! Present token `T` of family `F`:
//! 1. `F` gone, past its absolute lifetime, or bound to a session that is no longer live:
//!    [`Rotation::Invalid`] (the family is deleted).
//! 2. `T` is `F`'s current token: `T` is retired, a fresh successor becomes current,
//!    [`Rotation::Rotated`].
//! 3. `T` is the token retired last, within `refresh_grace` of its rotation: the successor it
//!    got then is given back, [`Rotation::Replayed`]. There is never more than one live
//!    successor.
//! 4. `T` is any other retired token (the last [`RETIRED_KEPT`] are remembered): the whole
//!    family is revoked, [`Rotation::Reused`].
//! 5. Anything else (garbage, or a token of this family the store never issued):
//!    [`Rotation::Invalid`], and the family is left alone.

use std::collections::VecDeque;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{SECRET_BYTES, open_successor, random_bytes, seal_successor, secret_hash};
use crate::{AccessTokenRef, FamilyId, GrantId, RefreshToken, SessionId, Timestamp};

/// How many retired tokens of a family are remembered for reuse detection. A token retired
/// longer ago than that is refused as unknown (`Invalid`) without revoking the family.
pub const RETIRED_KEPT: usize = 32;

/// A refresh-token family to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFamily {
    /// From [`FamilyId::generate`]; session-bound when generated with a session.
    pub id: FamilyId,
    /// The grant the family was issued for.
    pub grant_id: GrantId,
    /// The client holding the tokens.
    pub client_id: String,
    /// The user the tokens act for.
    pub sub: String,
    /// The scope granted.
    pub scope: Vec<String>,
    /// Absolute lifetime of the family; a session-bound family also ends with its session.
    pub lifetime: Duration,
    /// Anything else the issuer needs at refresh time. Opaque to the store.
    pub payload: serde_json::Value,
    /// The access token issued with the first refresh token, remembered so that revoking the
    /// family can name it.
    pub access_token: Option<AccessTokenRef>,
}

/// A refresh-token family as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// The family's id.
    pub id: FamilyId,
    /// The grant the family was issued for.
    pub grant_id: GrantId,
    /// The client holding the tokens.
    pub client_id: String,
    /// The user the tokens act for.
    pub sub: String,
    /// The scope granted.
    pub scope: Vec<String>,
    /// When the family was created.
    pub created_at: Timestamp,
    /// When the family ends at the latest.
    pub expires_at: Timestamp,
    /// The issuer's own data.
    pub payload: serde_json::Value,
}

impl NewFamily {
    /// The family as created at `now` (its expiry before any cap by its session), and the
    /// first access token to remember.
    pub(crate) fn start(self, now: Timestamp) -> (Family, Option<AccessTokenRef>) {
        let family = Family {
            id: self.id,
            grant_id: self.grant_id,
            client_id: self.client_id,
            sub: self.sub,
            scope: self.scope,
            created_at: now,
            expires_at: now.plus(self.lifetime),
            payload: self.payload,
        };
        (family, self.access_token)
    }
}

impl Family {
    /// The SSO session the family ends with, if it is session-bound.
    pub fn sid(&self) -> Option<SessionId> {
        self.id.session()
    }
}

/// A family and its first token, as issued.
#[derive(Debug, Clone)]
pub struct IssuedRefresh {
    /// The refresh token to hand to the client.
    pub token: RefreshToken,
    /// The family it belongs to.
    pub family: Family,
}

/// A refresh token as the store knows it (see `TokenStore::inspect_refresh`).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshInfo {
    /// Its family.
    pub family: Family,
    /// Whether it is the family's current token; `false` for one retired by a rotation
    /// (presenting it again would be reuse, outside the grace window).
    pub current: bool,
    /// Access tokens issued from the family that may still be valid.
    pub access_tokens: Vec<AccessTokenRef>,
}

/// A revoked family and the access tokens issued from it that may still be valid.
#[derive(Debug, Clone, PartialEq)]
pub struct RevokedFamily {
    /// The family, as it was.
    pub family: Family,
    /// Access tokens recorded with the family that have not expired yet: revoke them by `jti`.
    pub access_tokens: Vec<AccessTokenRef>,
}

/// The outcome of presenting a refresh token. See the module docs for the rule.
#[derive(Debug, Clone)]
#[must_use]
pub enum Rotation {
    /// The token was current; here is its successor.
    Rotated {
        /// The new current token.
        token: RefreshToken,
        /// The family.
        family: Family,
    },
    /// A retry of the last rotation within the grace window: the same successor again.
    Replayed {
        /// The successor handed out by the rotation being retried.
        token: RefreshToken,
        /// The family.
        family: Family,
    },
    /// A retired token came back: the family is revoked. Answer `invalid_grant`.
    Reused(RevokedFamily),
    /// Unknown, malformed, expired, revoked, or its session ended. Answer `invalid_grant`.
    Invalid,
}

/// The parts of a fresh token: what the client gets, and what the store keeps.
pub(crate) struct Minted {
    pub(crate) token: RefreshToken,
    pub(crate) hash: String,
    secret: [u8; SECRET_BYTES],
}

impl Minted {
    pub(crate) fn new(family: &FamilyId) -> Self {
        let secret = random_bytes::<SECRET_BYTES>();
        let token = RefreshToken::from_parts(family, &secret);
        let hash = secret_hash(token.secret());
        Self {
            token,
            hash,
            secret,
        }
    }

    /// The successor sealed for whoever holds `old_token` (see `ids::seal_successor`).
    pub(crate) fn sealed_for(&self, old_token: &str) -> String {
        seal_successor(old_token, &self.secret)
    }
}

/// Rebuilds the successor a grace-window retry gets back.
pub(crate) fn reopen_successor(
    family: &FamilyId,
    old_token: &str,
    sealed: &str,
) -> Option<RefreshToken> {
    open_successor(old_token, sealed).map(|secret| RefreshToken::from_parts(family, &secret))
}

/// The last rotation, kept for the grace window.
#[derive(Debug, Clone)]
pub(crate) struct LastRotation {
    pub(crate) retired_hash: String,
    pub(crate) at: Timestamp,
    pub(crate) sealed_successor: String,
}

/// What the rotation rule decided (memory backend; the Redis script decides the same).
pub(crate) enum Decision {
    Rotate,
    Replay(String),
    Reuse,
    Invalid,
}

/// A family's mutable state in the memory backend.
#[derive(Debug, Clone)]
pub(crate) struct FamilyState {
    pub(crate) family: Family,
    pub(crate) current_hash: String,
    pub(crate) last: Option<LastRotation>,
    pub(crate) retired: VecDeque<String>,
    pub(crate) access_tokens: Vec<AccessTokenRef>,
}

impl FamilyState {
    /// Steps 2 to 5 of the rotation rule; step 1 is the caller's.
    pub(crate) fn decide(&self, presented_hash: &str, now: Timestamp, grace: Duration) -> Decision {
        if self.current_hash == presented_hash {
            return Decision::Rotate;
        }
        if let Some(last) = &self.last
            && last.retired_hash == presented_hash
            && now < last.at.plus(grace)
        {
            return Decision::Replay(last.sealed_successor.clone());
        }
        if self.retired.iter().any(|h| h == presented_hash) {
            Decision::Reuse
        } else {
            Decision::Invalid
        }
    }

    pub(crate) fn rotate(&mut self, presented: &str, next: &Minted, now: Timestamp) {
        let retired = std::mem::replace(&mut self.current_hash, next.hash.clone());
        self.retired.push_front(retired.clone());
        self.retired.truncate(RETIRED_KEPT);
        self.last = Some(LastRotation {
            retired_hash: retired,
            at: now,
            sealed_successor: next.sealed_for(presented),
        });
    }

    /// Remembers an access token issued from the family, forgetting expired ones.
    pub(crate) fn record(&mut self, at: Option<&AccessTokenRef>, now: Timestamp) {
        self.access_tokens.retain(|t| t.expires_at > now);
        if let Some(at) = at {
            self.access_tokens.push(at.clone());
        }
    }
}
