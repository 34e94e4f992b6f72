//! Key rotation. A key goes `next` (published in the JWKS, signing nothing) → `active` (signs)
//! → `retired` (published until every token it signed has expired) → gone.
//!
//! - A `next` key is made when the active one is due (`KeyPolicy::rotation` after it was
//!   made, less the publication window), or at once when an admin starts a rotation.
//! - A `next` key becomes `active` once it has been published for `KeyPolicy::publish`; the
//!   JWKS is cached for at most half of that, so every app already holds it.
//! - An emergency removal deletes a key outright (its tokens stop verifying at once); if it
//!   was the signing key, a successor signs at once: a `next` key if there is one, else a new
//!   key. Apps meet its `kid` before their JWKS cache expires and refetch it (lanyard-rp does
//!   so on an unknown `kid`).
//!
//! Each algorithm in use (RS256, and the access-token algorithm) rotates on its own. When the
//! access-token algorithm changes, the first key of the new one signs at once (apps refetch
//! the JWKS on an unknown `kid`), and the keys of the old one retire: they stay published
//! until every access token they signed has expired.
//!
//! Every node runs [`step`] and reloads its ring every `KeyPolicy::refresh`, so a rotation
//! made on one node reaches the others within that interval. Two nodes stepping at once can
//! at worst make two `next` keys; the older is promoted first.

use std::time::Duration;

use lanyard_store::Timestamp;

use super::keys::{ACTIVE, NEXT, RETIRED, make_key};
use super::{KeyError, SigningAlg};
use crate::config::{Config, MAX_CLIENT_TOKEN_LIFETIME};
use crate::db::Db;
use crate::model::StoredKey;

/// How long a retired key stays published: the longest a token it signed can live, plus
/// one reload interval (other nodes may sign with it that much longer) and a minute of the
/// apps' clock leeway.
pub fn retire_after(config: &Config) -> Duration {
    config
        .lifetimes
        .access_token
        .max(MAX_CLIENT_TOKEN_LIFETIME)
        .max(config.lifetimes.id_token)
        + config.keys.refresh
        + Duration::from_secs(60)
}

/// The stored keys of `alg`, newest first.
fn of_alg(keys: &[StoredKey], alg: SigningAlg) -> Vec<&StoredKey> {
    keys.iter().filter(|k| k.alg == alg.name()).collect()
}

/// Moves the rotation on as the policy says; true when a key changed state.
pub async fn step(db: &Db, config: &Config, now: Timestamp) -> Result<bool, KeyError> {
    let keys = db.keys().published(now).await?;
    let in_use = SigningAlg::in_use(config.access_token_alg);
    let mut changed = false;
    for &alg in &in_use {
        changed |= step_alg(db, config, &of_alg(&keys, alg), alg, now).await?;
    }
    // An algorithm no longer configured: its keys sign nothing from now, and stay published
    // until the tokens they signed have expired.
    let until = now.plus(retire_after(config));
    for old in keys
        .iter()
        .filter(|k| k.state != RETIRED && !in_use.iter().any(|alg| alg.name() == k.alg))
    {
        db.keys().set_state(&old.kid, RETIRED, Some(until)).await?;
        tracing::info!(retired = %old.kid, alg = %old.alg, "retired a key of an algorithm no longer in use");
        changed = true;
    }
    Ok(changed)
}

/// [`step`] for the keys of one algorithm.
async fn step_alg(
    db: &Db,
    config: &Config,
    keys: &[&StoredKey],
    alg: SigningAlg,
    now: Timestamp,
) -> Result<bool, KeyError> {
    let active = keys.iter().find(|k| k.state == ACTIVE);
    // Oldest first: the key published longest is promoted first.
    let next = keys.iter().rev().find(|k| k.state == NEXT);
    let policy = &config.keys;
    match (active, next) {
        (_, Some(next)) if next.created_at.plus(policy.publish) <= now => {
            promote(db, keys, next, config, now).await?;
            Ok(true)
        }
        (Some(active), None)
            if active
                .created_at
                .plus(policy.rotation.saturating_sub(policy.publish))
                <= now =>
        {
            let kid = make_key(db, alg, NEXT, now).await?;
            tracing::info!(%kid, alg = alg.name(), "published the next signing key");
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// `next` signs from now; every other active key of its algorithm (`keys`) retires.
async fn promote(
    db: &Db,
    keys: &[&StoredKey],
    next: &StoredKey,
    config: &Config,
    now: Timestamp,
) -> Result<(), KeyError> {
    // Another node may have removed it meanwhile: then nothing changes here.
    if !db.keys().set_state(&next.kid, ACTIVE, None).await? {
        return Ok(());
    }
    let until = now.plus(retire_after(config));
    for old in keys
        .iter()
        .filter(|k| k.state == ACTIVE && k.kid != next.kid)
    {
        db.keys().set_state(&old.kid, RETIRED, Some(until)).await?;
        tracing::info!(retired = %old.kid, active = %next.kid, "rotated the signing key");
    }
    Ok(())
}

/// Starts a rotation now, of every algorithm in use: a `next` key each (or the one already
/// waiting); returns their `kid`s and when they will sign.
pub async fn begin(
    db: &Db,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<(String, Timestamp)>, KeyError> {
    let keys = db.keys().published(now).await?;
    let mut started = Vec::new();
    for alg in SigningAlg::in_use(config.access_token_alg) {
        if let Some(next) = of_alg(&keys, alg).iter().rev().find(|k| k.state == NEXT) {
            started.push((next.kid.clone(), next.created_at.plus(config.keys.publish)));
            continue;
        }
        let kid = make_key(db, alg, NEXT, now).await?;
        tracing::info!(%kid, alg = alg.name(), "published the next signing key (rotation started)");
        started.push((kid, now.plus(config.keys.publish)));
    }
    Ok(started)
}

/// Removes a key at once (it leaked). If it was the signing key of an algorithm in use, a
/// successor signs from now. Returns the removed key's algorithm; `None` when there is no such
/// key.
pub async fn remove(
    db: &Db,
    config: &Config,
    kid: &str,
    now: Timestamp,
) -> Result<Option<SigningAlg>, KeyError> {
    let keys = db.keys().published(now).await?;
    let Some(gone) = keys.iter().find(|k| k.kid == kid) else {
        return Ok(None);
    };
    let alg = SigningAlg::from_name(&gone.alg);
    let in_use = SigningAlg::in_use(config.access_token_alg);
    if let Some(alg) = alg.filter(|a| in_use.contains(a)) {
        let same = of_alg(&keys, alg);
        let others_active = same.iter().any(|k| k.state == ACTIVE && k.kid != gone.kid);
        if gone.state == ACTIVE && !others_active {
            match same.iter().rev().find(|k| k.state == NEXT) {
                Some(next) => promote(db, &same, next, config, now).await?,
                None => {
                    make_key(db, alg, ACTIVE, now).await?;
                }
            }
        }
    }
    db.keys().delete(&gone.kid).await?;
    tracing::warn!(kid = %gone.kid, "removed a signing key (emergency)");
    Ok(Some(alg.unwrap_or_default()))
}
