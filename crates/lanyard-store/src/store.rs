//! The trait every backend implements. Callers hold it as `Arc<dyn TokenStore>`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    AccessTokenRef, Attempt, AuthorizationCode, CodeGrant, Cursor, DeviceCode, DeviceDecision,
    DevicePoll, Family, FamilyId, Feed, IssuedRefresh, NewDeviceGrant, NewFamily, NewSession,
    PendingDevice, Redemption, RefreshInfo, Revocation, RevocationEvent, RevokedFamily, Rotation,
    Session, Snapshot, StoreConfig, StoreError, Target, Throttle, ThrottlePolicy, Timestamp,
    TokenFacts, Verdict,
};

/// Short-lived security state: codes, SSO sessions, refresh families, revocation lists.
///
/// Every method is one atomic step on the backend, and on Redis one round trip, except the
/// per-user and per-client listings, which visit each session or family in turn. Every error
/// means "could not answer" and must never be read as "not revoked" or "session valid".
///
/// Identifiers that come from outside (a `sid` from a verified session cookie, a refresh token
/// from a client) are taken as `&str` and checked by the store: anything malformed reads as
/// absent. A `sid` is not a secret (every app sees it in its tokens): the caller must never
/// accept a bare `sid` as proof of a session; the server's session cookie carries a MAC.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug + 'static {
    /// The settings the store runs with.
    fn config(&self) -> &StoreConfig;

    /// Whether the backend answers, in one round trip; with the backend's own clock when it
    /// has one (Redis `TIME`), so a node can tell that its clock has drifted. The in-process
    /// store shares the node's clock and answers `None`.
    async fn ping(&self) -> Result<Option<Timestamp>, StoreError> {
        Ok(None)
    }

    // --- Authorization codes (RFC 6749 §4.1.2) ---

    /// Stores a grant under a fresh code for `code_ttl`, and returns the code. Only the code's
    /// hash is kept.
    async fn put_code(&self, grant: &CodeGrant) -> Result<AuthorizationCode, StoreError>;

    /// Spends a code on behalf of the authenticated client `client_id`. Of any number of
    /// concurrent calls exactly one gets [`Redemption::Redeemed`]; every later one, for
    /// `redeemed_code_retention`, gets [`Redemption::AlreadyRedeemed`] with the grant's id and
    /// [`Issuance`] (whichever client presents it: a spent code shown again has leaked). A
    /// live code shown by another client is [`Redemption::NotFound`] and stays redeemable by
    /// its own client (RFC 6749 §4.1.3: the code must have been issued to the client).
    async fn redeem_code(&self, code: &str, client_id: &str) -> Result<Redemption, StoreError>;

    /// The grant behind a live code of `client_id`, without spending it: what
    /// [`TokenStore::redeem_code`] would return as [`Redemption::Redeemed`] at this moment,
    /// and `None` for anything else (unknown, expired, spent, another client's). Lets the
    /// caller read what the exchange needs (the user's row) before the code is spent, so
    /// that an outage of that read leaves the code for the client's retry.
    async fn peek_code(&self, code: &str, client_id: &str)
    -> Result<Option<CodeGrant>, StoreError>;

    // --- Device authorization grants (RFC 8628; see [the rule](crate::device)) ---

    /// Records a device's request under its user code, for its lifetime plus
    /// `redeemed_code_retention` (so a late poll hears `expired_token`), and returns the
    /// device code. `None` if the user code is in use: generate another and try again.
    async fn put_device(&self, new: &NewDeviceGrant) -> Result<Option<DeviceCode>, StoreError>;

    /// The request behind a user code the person typed (any case, dashes and spaces
    /// ignored), if it is live and waits for a decision.
    async fn pending_device(&self, user_code: &str) -> Result<Option<PendingDevice>, StoreError>;

    /// Records the person's decision on a live pending request. Of any number of calls
    /// exactly one gets `true`; a request decided, expired or unknown gets `false`.
    async fn decide_device(
        &self,
        user_code: &str,
        decision: &DeviceDecision,
    ) -> Result<bool, StoreError>;

    /// A poll by the authenticated client `client_id` with a device code (see [the
    /// rule](crate::device)).
    async fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
    ) -> Result<DevicePoll, StoreError>;

    // --- SSO sessions ---

    /// Starts a session with a fresh `sid`.
    async fn create_session(&self, new: NewSession) -> Result<Session, StoreError>;

    /// The session, if it is live. Does not count as activity.
    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError>;

    /// Records activity: extends the idle deadline (never past the absolute one), updates
    /// `last_seen`, and remembers `client_id` as a client that received tokens. `None` if the
    /// session is not live.
    async fn touch_session(
        &self,
        sid: &str,
        client_id: Option<&str>,
    ) -> Result<Option<Session>, StoreError>;

    /// Records a stronger sign-in in a live session (step-up: the person gave a second
    /// factor): its `amr` and `auth_time` become these, nothing else changes (the `sid`, the
    /// apps, the deadlines). Returns the session as it is now; `None` if it is not live.
    async fn strengthen_session(
        &self,
        sid: &str,
        amr: Vec<String>,
        auth_time: Timestamp,
    ) -> Result<Option<Session>, StoreError>;

    /// Keeps `value` for `ttl` under a new random id, for [`take_once`](Self::take_once) to
    /// return once: the state of a ceremony between its two requests (a WebAuthn challenge),
    /// which must not be answered twice.
    async fn put_once(&self, value: &str, ttl: Duration) -> Result<String, StoreError>;

    /// The value [`put_once`](Self::put_once) kept under `id`, if it is there and not
    /// expired; gone afterwards, however many callers ask at once.
    async fn take_once(&self, id: &str) -> Result<Option<String>, StoreError>;

    /// Records `key` for `ttl` unless it is recorded already: `true` for the one call that
    /// recorded it, `false` for every other while it lasts, however many ask at once. What
    /// may be used once (a client assertion's `jti`, RFC 7523 §3) is claimed here; `key` is
    /// kept only as a hash.
    async fn claim_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Ends a session and every refresh family bound to it; returns the session as it was,
    /// so the caller can notify its clients. `None` if it was not live.
    async fn end_session(&self, sid: &str) -> Result<Option<Session>, StoreError>;

    /// The user's live sessions, oldest first.
    async fn user_sessions(&self, sub: &str) -> Result<Vec<Session>, StoreError>;

    /// Ends every live session of the user (and their bound families); returns them.
    async fn end_user_sessions(&self, sub: &str) -> Result<Vec<Session>, StoreError>;

    // --- Refresh-token families (RFC 9700 §4.14.2) ---

    /// Creates a family and its first token. `None` when the family is bound to a session
    /// that is no longer live, or its id was revoked before it was issued (a replayed code
    /// racing the first redemption). A session-bound family never outlives its session's
    /// absolute deadline; ask for no longer than the session has left, since the per-user and
    /// per-client index entries are kept until the expiry asked for.
    async fn issue_refresh(&self, new: NewFamily) -> Result<Option<IssuedRefresh>, StoreError>;

    /// Presents a refresh token on behalf of the authenticated client `client_id` (see [the
    /// rotation rule](crate::refresh)). Another client's token is [`Rotation::Invalid`] and is
    /// left untouched (RFC 6749 §6: the token must have been issued to the client).
    /// `access_token` is the access token the caller will issue with the result; it is
    /// remembered with the family so that revoking the family can name it.
    async fn rotate_refresh(
        &self,
        token: &str,
        client_id: &str,
        access_token: Option<&AccessTokenRef>,
    ) -> Result<Rotation, StoreError>;

    /// The family of a current or recently retired token, without rotating anything.
    async fn find_refresh(&self, token: &str) -> Result<Option<Family>, StoreError> {
        Ok(self.inspect_refresh(token).await?.map(|i| i.family))
    }

    /// What the store knows of a current or recently retired token, without changing
    /// anything: its family, whether it is the current one, and the family's unexpired
    /// access tokens (so that a caller can record them before revoking the family).
    async fn inspect_refresh(&self, token: &str) -> Result<Option<RefreshInfo>, StoreError>;

    /// Revokes a family. `None` if it did not exist (any more). The id stays refused for
    /// `redeemed_code_retention` even if it had not been issued yet.
    async fn revoke_family(&self, id: &FamilyId) -> Result<Option<RevokedFamily>, StoreError>;

    /// The user's live families, oldest first.
    async fn user_families(&self, sub: &str) -> Result<Vec<Family>, StoreError>;

    /// Revokes every family of the user. Each family is revoked atomically, the set is not: a
    /// family issued while this runs may survive it, so disable the user (no new grants)
    /// before revoking.
    async fn revoke_user_families(&self, sub: &str) -> Result<Vec<RevokedFamily>, StoreError>;

    /// Revokes every family of the client.
    async fn revoke_client_families(
        &self,
        client_id: &str,
    ) -> Result<Vec<RevokedFamily>, StoreError>;

    // --- Failed attempts (see [the rule](crate::throttle)) ---

    /// What is known of `key`: failures in its window, and any block in force.
    async fn throttle(&self, key: &str) -> Result<Throttle, StoreError>;

    /// Counts one failure under `key` and blocks it as `policy` says; returns the new state.
    async fn record_failure(
        &self,
        key: &str,
        policy: &ThrottlePolicy,
    ) -> Result<Throttle, StoreError>;

    /// One attempt under `keys` (each with its policy), counted before it is checked, in one
    /// atomic step on every node: if any key is blocked, nothing is counted and the longest
    /// block is returned; otherwise one is counted under each, as `record_failure` would.
    /// The keys must share a `{tag}` (see [the rule](crate::throttle)). Clear them if the
    /// attempt succeeds.
    async fn attempt(&self, keys: &[(&str, &ThrottlePolicy)]) -> Result<Attempt, StoreError>;

    /// Forgets `key` (a success, or an admin lifting a lock). Returns whether it was there.
    async fn clear_throttle(&self, key: &str) -> Result<bool, StoreError>;

    // --- Revocation lists and their events ---

    /// Revokes `target` as of `at` (for `Jti`: the token's `exp`) and publishes the event.
    /// Returns the event, whose revocation is the entry now in force.
    async fn revoke(&self, target: Target, at: Timestamp) -> Result<RevocationEvent, StoreError>;

    /// Judges an access token against every list in one round trip.
    async fn check(&self, facts: &TokenFacts<'_>) -> Result<Verdict, StoreError>;

    /// The whole current lists and the cursor to follow events from.
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;

    /// Follows events after `from`.
    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError>;

    /// Rebuilds the lists from the durable record after the backend lost them (see
    /// [`StoreError::RevocationStateLost`]): merges `revocations` in and starts a new epoch,
    /// so every subscriber takes a new snapshot. Returns the new epoch's starting cursor.
    async fn reseed(&self, revocations: Vec<Revocation>) -> Result<Cursor, StoreError>;
}

/// A subscriber's position in the revocation event stream. After an error, call
/// [`next`](Subscription::next) again: it resumes from the same cursor.
#[async_trait]
pub trait Subscription: Send {
    /// The last event delivered (or the cursor subscribed from).
    fn cursor(&self) -> &Cursor;

    /// Waits up to `wait` for events after the cursor and advances past what it returns.
    async fn next(&mut self, wait: Duration) -> Result<Feed, StoreError>;
}

/// Listings come oldest first (ties broken by id, so the order is stable).
pub(crate) fn oldest_first<T: Listed>(mut items: Vec<T>) -> Vec<T> {
    items.sort_by(|a, b| a.listed_key().cmp(&b.listed_key()));
    items
}

pub(crate) trait Listed {
    fn listed_key(&self) -> (Timestamp, &str);
}

impl Listed for Session {
    fn listed_key(&self) -> (Timestamp, &str) {
        (self.created_at, self.sid.as_str())
    }
}

impl Listed for Family {
    fn listed_key(&self) -> (Timestamp, &str) {
        (self.created_at, self.id.as_str())
    }
}
