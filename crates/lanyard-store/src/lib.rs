//! `lanyard-store`: Lanyard's short-lived security state.
//!
//! The authorization server keeps authorization codes, SSO sessions and refresh-token
//! families here; the admin API writes revocations here; every app's resource guard follows
//! the revocation events. Two backends implement one trait, [`TokenStore`]:
//! [`RedisStore`] for any number of Lanyard nodes on one Redis, and [`MemoryStore`], the
//! embedded default for a single node. One conformance suite (`testsuite`, behind the
//! `testsuite` feature) runs against both.
//!
//! # Layout
//! - [`store`](TokenStore): the trait, and [`Subscription`] for the event stream.
//! - [`device`]: device authorization grants (RFC 8628) and their polling rule.
//! - `codes`, `sessions`, `refresh`, `revocation`: the records, their rules, and the
//!   in-memory [`RevocationSet`] that relying parties reuse for their mirror.
//! - `ids`: identifiers and secrets; secrets redact themselves and are stored as hashes.
//! - `time`: [`Timestamp`] and the injected [`Clock`].
//! - `fanout`: [`Fanout`], one subscription to the events shared by many followers (a
//!   node's revocation feed).
//! - `memory`: [`MemoryStore`]. `redis` (feature `redis`, on by default): `RedisStore`
//!   (keys, Lua scripts, subscriptions).
//!
//! # Promises
//! - Every operation is atomic; on Redis each is one round trip (the per-user and
//!   per-client listings excepted).
//! - An error is never an answer: [`StoreError`] means "could not tell", and nothing in the
//!   API turns an unreachable backend into "not revoked" or "session valid".
//! - Secrets (codes, refresh tokens) are kept only as SHA-256 hashes.

mod codes;
mod config;
pub mod device;
mod error;
mod fanout;
mod ids;
mod memory;
#[cfg(feature = "redis")]
mod redis;
pub mod refresh;
mod revocation;
mod sessions;
mod store;
#[cfg(all(feature = "testsuite", feature = "redis"))]
pub mod test_redis;
#[cfg(feature = "testsuite")]
pub mod testsuite;
mod throttle;
mod time;

pub use codes::{CodeGrant, Issuance, RedeemedCode, Redemption};
pub use config::StoreConfig;
pub use device::{DeviceCode, DeviceDecision, DevicePoll, NewDeviceGrant, PendingDevice, UserCode};
pub use error::StoreError;
pub use fanout::Fanout;
pub use ids::{AuthorizationCode, FamilyId, GrantId, RefreshToken, SessionId};
pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::{RedisConfig, RedisStore, RedisTopology};
pub use refresh::{Family, IssuedRefresh, NewFamily, RefreshInfo, RevokedFamily, Rotation};
pub use revocation::{
    AccessTokenRef, Actor, Cursor, Feed, Origin, Revocation, RevocationEvent, RevocationSet,
    RevokedBy, Snapshot, Target, TokenFacts, Verdict,
};
pub use sessions::{NewSession, Session};
pub use store::{Subscription, TokenStore};
pub use throttle::{Attempt, Throttle, ThrottlePolicy};
pub use time::{Clock, ManualClock, SystemClock, TIME_LIMIT_MS, Timestamp};
