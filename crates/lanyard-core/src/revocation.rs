//! Revoking, durably. A revocation is written to the SQL record first, then to the token
//! store, which pushes it to every subscribed app; only then is it acknowledged. The other
//! way round: when the store's lists are lost (a Redis restarted empty) or lack something the
//! record holds (the in-process store after a restart), they are rebuilt from the record
//! before anything is judged "not revoked" again.
//!
//! Every revocation the server makes goes through [`revoke`]; every check through [`check`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use lanyard_store::{
    AccessTokenRef, FamilyId, Feed, RefreshInfo, Revocation, RevocationEvent, Snapshot, StoreError,
    Target, Timestamp, TokenFacts, TokenStore, Verdict,
};

use crate::Core;
use crate::context::WeakCore;
use crate::db::{Db, DbError};
use crate::tokens::AccessClaims;

/// Why a revocation or a check could not be done. Either way the answer is 503: never
/// "revoked" without a record, never "not revoked" without lists.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The database (the record) failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Revokes `target` at `at` (see [`Revocation`]) on behalf of `actor` (`admin:<sub>`,
/// `client:<id>`, `system`): recorded in SQL, then in the store.
pub async fn revoke(
    state: &Core,
    target: Target,
    at: Timestamp,
    actor: &str,
) -> Result<RevocationEvent, RevocationError> {
    let entry = Revocation::new(target.clone(), at, state.store.config());
    state
        .db
        .revocations()
        .record(&entry, actor, state.clock.now())
        .await?;
    crate::metrics::revocation(crate::db::target_columns(&target).0);
    let listed = match state.store.revoke(target.clone(), at).await {
        Err(StoreError::RevocationStateLost) => {
            // The record now holds this one too: rebuilding the lists includes it.
            restore_once(state).await?;
            state.store.revoke(target, at).await
        }
        other => other,
    };
    if listed.is_err() {
        // Recorded but not listed: until the lists are restored, this node asks the record
        // before it believes them (see `check`).
        state.unlisted.fetch_add(1, Ordering::AcqRel);
    }
    Ok(listed?)
}

/// Whether this node recorded a revocation the store's lists may lack (the store failed
/// after the record was written), so the lists must be restored before they are believed.
pub fn behind(state: &Core) -> bool {
    state.unlisted.load(Ordering::Acquire) > state.restored_through.load(Ordering::Acquire)
}

/// Judges a token against the lists, rebuilding them first if the store lost them, or if a
/// revocation was recorded here that the store could not take.
pub async fn check(state: &Core, facts: &TokenFacts<'_>) -> Result<Verdict, RevocationError> {
    if behind(state) {
        restore_once(state).await?;
    }
    match state.store.check(facts).await {
        Err(StoreError::RevocationStateLost) => {
            restore_once(state).await?;
            Ok(state.store.check(facts).await?)
        }
        other => Ok(other?),
    }
}

/// The lists for apps to mirror (the HTTP feed's snapshot): rebuilt first when the store
/// lost them or lacks a revocation recorded here, as [`check`] does.
pub async fn snapshot(state: &Core) -> Result<Snapshot, RevocationError> {
    if behind(state) {
        restore_once(state).await?;
    }
    match state.store.snapshot().await {
        Err(StoreError::RevocationStateLost) => {
            restore_once(state).await?;
            Ok(state.store.snapshot().await?)
        }
        other => Ok(other?),
    }
}

/// What one app (the confidential client reading the HTTP feed) is told of the lists: every
/// entry except those tied to another app, that app's `client_id` watermark and consent
/// withdrawals at it (`grant`, which name a person and the app they used), unless that app
/// may send this one its tokens (it lists this one among its `resources`). So no app learns
/// from the feed which other apps a person uses. `jti`, `sid`, `sub` and `kid` entries go to
/// every app: they are opaque, or already shared by every app the person signed in to.
pub struct AppView {
    reader: String,
    /// Whether another app's entries may be shown, by its client id.
    seen: HashMap<String, bool>,
}

impl AppView {
    /// The view of the app `reader` (a client id).
    pub fn new(reader: &str) -> Self {
        Self {
            reader: reader.to_owned(),
            seen: HashMap::new(),
        }
    }

    /// Whether the app may be told of `target`.
    pub async fn shows(&mut self, state: &Core, target: &Target) -> Result<bool, DbError> {
        let owner = match target {
            Target::ClientId(client_id) => client_id.as_str(),
            Target::Grant(key) => key.split_once(' ').map_or(key.as_str(), |(c, _)| c),
            Target::Jti(_) | Target::Sid(_) | Target::Sub(_) | Target::Kid(_) => return Ok(true),
        };
        if owner == self.reader {
            return Ok(true);
        }
        if let Some(known) = self.seen.get(owner) {
            return Ok(*known);
        }
        // The copy every node keeps for a second: a revocation of an app goes to every
        // follower at once, and they would otherwise all ask the database together.
        let shows = state
            .db
            .clients()
            .recent(owner)
            .await?
            .is_some_and(|c| c.resources.contains(&self.reader));
        self.seen.insert(owner.to_owned(), shows);
        Ok(shows)
    }

    /// The part of `snapshot` the app may see.
    pub async fn snapshot(
        &mut self,
        state: &Core,
        snapshot: Snapshot,
    ) -> Result<Snapshot, DbError> {
        let mut shown = Vec::with_capacity(snapshot.revocations.len());
        for r in snapshot.revocations {
            if self.shows(state, &r.target).await? {
                shown.push(r);
            }
        }
        Ok(Snapshot {
            revocations: shown,
            ..snapshot
        })
    }
}

/// Why a bearer's access token is not taken.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// Not valid (forged, expired, for another issuer) or revoked: 401 `invalid_token`,
    /// with this description.
    #[error("{0}")]
    Invalid(String),
    /// The lists could not be consulted: 503.
    #[error(transparent)]
    Unavailable(#[from] RevocationError),
}

/// The claims of `token` when it is one of ours, valid now and not revoked.
pub async fn live_access_token(state: &Core, token: &str) -> Result<AccessClaims, LiveError> {
    let claims = state
        .keys
        .verify_access_token(token, &state.config.issuer)
        .map_err(|r| LiveError::Invalid(r.to_string()))?;
    let facts = claims.facts();
    match check(state, &facts).await? {
        Verdict::NotRevoked => Ok(claims),
        Verdict::Revoked(by) => Err(LiveError::Invalid(by.description().to_owned())),
    }
}

/// Revokes access tokens one by one, each by `jti` until its expiry. Returns how many.
pub async fn revoke_access_tokens(
    state: &Core,
    tokens: &[AccessTokenRef],
    actor: &str,
) -> Result<usize, RevocationError> {
    for at in tokens {
        revoke(state, Target::Jti(at.jti.clone()), at.expires_at, actor).await?;
    }
    Ok(tokens.len())
}

/// Ends a family known by its id alone (a replayed code, a refresh by a disabled user, a
/// session's families): the family goes, then every access token it produced that has not
/// expired (the first, and each a refresh minted), by `jti`. Returns how many access tokens
/// were revoked; `None` if the family was gone already.
pub async fn end_family(
    state: &Core,
    id: &FamilyId,
    actor: &str,
) -> Result<Option<usize>, RevocationError> {
    match state.store.revoke_family(id).await? {
        Some(revoked) => Ok(Some(
            revoke_access_tokens(state, &revoked.access_tokens, actor).await?,
        )),
        None => Ok(None),
    }
}

/// Revokes a refresh-token family without losing its access tokens: they are revoked
/// (recorded, then listed) before the family goes, so that a failure on the way leaves the
/// family in place for a retry to find; tokens minted from the family meanwhile are caught
/// from what revoking the family returns. Returns how many access tokens were revoked.
pub async fn revoke_family(
    state: &Core,
    info: &RefreshInfo,
    actor: &str,
) -> Result<usize, RevocationError> {
    let mut done = revoke_access_tokens(state, &info.access_tokens, actor).await?;
    if let Some(revoked) = state.store.revoke_family(&info.family.id).await? {
        let known: HashSet<&str> = info
            .access_tokens
            .iter()
            .map(|at| at.jti.as_str())
            .collect();
        let minted: Vec<AccessTokenRef> = revoked
            .access_tokens
            .into_iter()
            .filter(|at| !known.contains(at.jti.as_str()))
            .collect();
        done += revoke_access_tokens(state, &minted, actor).await?;
    }
    Ok(done)
}

/// [`restore`] for a running server: one at a time per process, so that a wiped Redis met by
/// many requests at once is rebuilt once, not once per request.
pub async fn restore_once(state: &Core) -> Result<usize, RevocationError> {
    let _one = state.restoring.lock().await;
    // Read before the record is: a revocation failing later is not covered by this restore.
    let unlisted = state.unlisted.load(Ordering::Acquire);
    let restored = restore(&state.db, state.store.as_ref(), state.clock.now()).await?;
    state.restored_through.fetch_max(unlisted, Ordering::AcqRel);
    Ok(restored)
}

/// Makes the store's lists hold every recorded revocation still in force. Lists lost
/// altogether are re-seeded (a new epoch: apps' mirrors take a new snapshot); entries
/// missing from lists that exist are revoked again (events: mirrors just follow). Returns
/// how many entries were put back.
pub async fn restore(
    db: &Db,
    store: &dyn TokenStore,
    now: Timestamp,
) -> Result<usize, RevocationError> {
    let record = db.revocations().live(now).await?;
    let held = match store.snapshot().await {
        Ok(snapshot) => snapshot.revocations,
        Err(StoreError::RevocationStateLost) => {
            tracing::warn!(
                entries = record.len(),
                "the token store lost its revocation lists; rebuilding them from the record"
            );
            let count = record.len();
            store.reseed(record).await?;
            return Ok(count);
        }
        Err(e) => return Err(e.into()),
    };
    let missing = missing(&held, record);
    if !missing.is_empty() {
        tracing::warn!(
            entries = missing.len(),
            "the token store lacked recorded revocations; putting them back"
        );
    }
    for r in &missing {
        store.revoke(r.target.clone(), r.at).await?;
    }
    Ok(missing.len())
}

/// The recorded entries the held lists do not cover. A `jti` or `sid` entry covers its
/// target; a watermark covers every watermark of its target at or before it.
fn missing(held: &[Revocation], record: Vec<Revocation>) -> Vec<Revocation> {
    let mut latest: HashMap<&Target, Timestamp> = HashMap::new();
    for h in held {
        let at = latest.entry(&h.target).or_insert(h.at);
        *at = (*at).max(h.at);
    }
    record
        .into_iter()
        .filter(|r| match latest.get(&r.target) {
            None => true,
            Some(at) => {
                matches!(
                    r.target,
                    Target::Sub(_) | Target::ClientId(_) | Target::Grant(_)
                ) && *at < r.at
            }
        })
        .collect()
}

/// How long one wait on the store's event feed lasts.
const WAIT: Duration = Duration::from_secs(1);

/// How often the lists are compared with the record in full.
const COMPARE_EVERY: Duration = Duration::from_secs(60);

/// Follows the store's event feed for as long as the server lives, and puts back what the
/// lists lack: after every (re)connection to the feed, when the feed says to take a new
/// snapshot (lists lost, or a Redis gone back in time), and once a minute in any case. So
/// apps' mirrors see lost lists back within about a second even when no request comes to
/// Lanyard, and a revocation recorded while the store was down reaches the lists once it is
/// back. The minute's comparison also deletes records whose tokens have all expired.
pub(crate) fn watch(state: WeakCore) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        let mut compared = tokio::time::Instant::now();
        loop {
            let Some(strong) = state.upgrade() else {
                return;
            };
            let store = strong.store.clone();
            drop(strong);
            let restored = match state.upgrade() {
                Some(strong) => restore_once(&strong).await,
                None => return,
            };
            let snapshot = match restored {
                Ok(_) => store.snapshot().await.map_err(RevocationError::from),
                Err(e) => Err(e),
            };
            let cursor = match snapshot {
                Ok(snapshot) => snapshot.cursor,
                Err(e) => {
                    tracing::debug!(error = %e, "revocation watch: the store is not ready; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            let mut subscription = match store.subscribe(&cursor).await {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            loop {
                let Some(strong) = state.upgrade() else {
                    return;
                };
                if compared.elapsed() >= COMPARE_EVERY {
                    compared = tokio::time::Instant::now();
                    let state = strong;
                    if let Err(e) = state.db.revocations().prune(state.clock.now()).await {
                        tracing::warn!(error = %e, "could not prune expired revocation records");
                    }
                    if let Err(e) = restore_once(&state).await {
                        tracing::warn!(error = %e, "could not compare the revocation lists with the record");
                    }
                } else {
                    drop(strong);
                }
                match subscription.next(WAIT).await {
                    Ok(Feed::Events(_)) => {}
                    // Lost lists, a gap, a Redis gone back in time: restore, then follow anew.
                    Ok(Feed::Resnapshot) | Err(_) => break,
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(target: Target, at: i64) -> Revocation {
        Revocation {
            target,
            at: Timestamp::from_secs(at),
            until: Timestamp::from_secs(at + 3600),
        }
    }

    #[test]
    fn what_the_lists_miss() {
        let held = [
            r(Target::Jti("a".into()), 10),
            r(Target::Sub("alice".into()), 100),
            r(Target::Sid("s".into()), 50),
        ];
        let record = vec![
            r(Target::Jti("a".into()), 10),
            r(Target::Jti("b".into()), 10),
            r(Target::Sub("alice".into()), 90),
            r(Target::Sub("alice".into()), 120),
            r(Target::Sid("s".into()), 70),
            r(Target::ClientId("wiki".into()), 5),
        ];
        let missing: Vec<_> = missing(&held, record)
            .into_iter()
            .map(|m| (m.target, m.at.as_secs()))
            .collect();
        assert_eq!(
            missing,
            vec![
                (Target::Jti("b".into()), 10),
                (Target::Sub("alice".into()), 120),
                (Target::ClientId("wiki".into()), 5),
            ]
        );
    }
}
