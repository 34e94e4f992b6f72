//! Revoking, durably. A revocation is written to the SQL record first, then to the token
//! store, which pushes it to every subscribed app; only then is it acknowledged. The other
//! way round: when the store's lists are lost (a Redis restarted empty) or lack something the
//! record holds (the in-process store after a restart), they are rebuilt from the record
//! before anything is judged "not revoked" again.
//!
//! Every revocation the server makes goes through [`revoke`]; every check through [`check`].

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use lanyard_store::{
    Feed, Revocation, RevocationEvent, StoreError, Target, Timestamp, TokenFacts, TokenStore,
    Verdict,
};

use crate::db::{Db, DbError};
use crate::state::{AppState, Inner};

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
    state: &AppState,
    target: Target,
    at: Timestamp,
    actor: &str,
) -> Result<RevocationEvent, RevocationError> {
    let entry = Revocation::new(target.clone(), at, state.store.config());
    state
        .db
        .insert_revocation(&entry, actor, state.clock.now())
        .await?;
    match state.store.revoke(target.clone(), at).await {
        Err(StoreError::RevocationStateLost) => {
            // The record now holds this one too: rebuilding the lists includes it.
            restore(&state.db, state.store.as_ref(), state.clock.now()).await?;
            Ok(state.store.revoke(target, at).await?)
        }
        other => Ok(other?),
    }
}

/// Judges a token against the lists, rebuilding them first if the store lost them.
pub async fn check(state: &AppState, facts: &TokenFacts<'_>) -> Result<Verdict, RevocationError> {
    match state.store.check(facts).await {
        Err(StoreError::RevocationStateLost) => {
            restore(&state.db, state.store.as_ref(), state.clock.now()).await?;
            Ok(state.store.check(facts).await?)
        }
        other => Ok(other?),
    }
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
    let record = db.live_revocations(now).await?;
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
            Some(at) => matches!(r.target, Target::Sub(_) | Target::ClientId(_)) && *at < r.at,
        })
        .collect()
}

/// How long one wait on the store's event feed lasts.
const WAIT: Duration = Duration::from_secs(1);

/// How often the lists are compared with the record in full.
const COMPARE_EVERY: Duration = Duration::from_secs(60);

/// Follows the store's event feed for as long as the server lives, and rebuilds the lists
/// the moment the store reports them lost, so that apps' mirrors see them back within about
/// a second even when no request comes to Lanyard. Once a minute it also compares the lists
/// with the record in full, which catches a Redis that went back in time but kept its epoch
/// (restored from an old file, a lagging replica promoted).
pub(crate) fn watch(state: Weak<Inner>) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let Some(strong) = state.upgrade() else {
                return;
            };
            let store = strong.store.clone();
            let db = strong.db.clone();
            let clock = strong.clock.clone();
            drop(strong);
            let lost = |e: &StoreError| matches!(e, StoreError::RevocationStateLost);
            let cursor = match store.snapshot().await {
                Ok(snapshot) => snapshot.cursor,
                Err(e) => {
                    if lost(&e)
                        && let Err(e) = restore(&db, store.as_ref(), clock.now()).await
                    {
                        tracing::error!(error = %e, "could not rebuild the revocation lists");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let mut subscription = match store.subscribe(&cursor).await {
                Ok(s) => s,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            let mut compared = tokio::time::Instant::now();
            loop {
                if state.strong_count() == 0 {
                    return;
                }
                if compared.elapsed() >= COMPARE_EVERY {
                    compared = tokio::time::Instant::now();
                    if let Err(e) = restore(&db, store.as_ref(), clock.now()).await {
                        tracing::warn!(error = %e, "could not compare the revocation lists with the record");
                    }
                }
                match subscription.next(WAIT).await {
                    Ok(Feed::Events(_)) => {}
                    Ok(Feed::Resnapshot) => break,
                    Err(e) => {
                        if lost(&e) {
                            tracing::warn!("the token store reports its revocation lists lost");
                        }
                        // The snapshot above tells lost from unreachable, and restores.
                        break;
                    }
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
