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
//! Every node runs [`step`] and reloads its ring every `KeyPolicy::refresh`, so a rotation
//! made on one node reaches the others within that interval. Two nodes stepping at once can
//! at worst make two `next` keys; the older is promoted first.

use std::sync::Weak;
use std::time::Duration;

use lanyard_store::Timestamp;

use super::keys::{ACTIVE, NEXT, RETIRED, make_key};
use super::{KeyError, load_or_create};
use crate::config::{Config, MAX_CLIENT_TOKEN_LIFETIME};
use crate::db::{Db, StoredKey};
use crate::state::{AppState, Inner};

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

/// Moves the rotation on as the policy says; true when a key changed state.
pub async fn step(db: &Db, config: &Config, now: Timestamp) -> Result<bool, KeyError> {
    let keys = db.signing_keys(now).await?;
    let active = keys.iter().find(|k| k.state == ACTIVE);
    // Oldest first: the key published longest is promoted first.
    let next = keys.iter().rev().find(|k| k.state == NEXT);
    let policy = &config.keys;
    match (active, next) {
        (_, Some(next)) if next.created_at.plus(policy.publish) <= now => {
            promote(db, &keys, next, config, now).await?;
            Ok(true)
        }
        (Some(active), None)
            if active
                .created_at
                .plus(policy.rotation.saturating_sub(policy.publish))
                <= now =>
        {
            let kid = make_key(db, NEXT, now).await?;
            tracing::info!(%kid, "published the next signing key");
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// `next` signs from now; every other active key retires.
async fn promote(
    db: &Db,
    keys: &[StoredKey],
    next: &StoredKey,
    config: &Config,
    now: Timestamp,
) -> Result<(), KeyError> {
    // Another node may have removed it meanwhile: then nothing changes here.
    if !db.set_signing_key_state(&next.kid, ACTIVE, None).await? {
        return Ok(());
    }
    let until = now.plus(retire_after(config));
    for old in keys
        .iter()
        .filter(|k| k.state == ACTIVE && k.kid != next.kid)
    {
        db.set_signing_key_state(&old.kid, RETIRED, Some(until))
            .await?;
        tracing::info!(retired = %old.kid, active = %next.kid, "rotated the signing key");
    }
    Ok(())
}

/// Starts a rotation now: a `next` key (or the one already waiting); returns its `kid` and
/// when it will sign.
pub async fn begin(
    db: &Db,
    config: &Config,
    now: Timestamp,
) -> Result<(String, Timestamp), KeyError> {
    let keys = db.signing_keys(now).await?;
    if let Some(next) = keys.iter().rev().find(|k| k.state == NEXT) {
        return Ok((next.kid.clone(), next.created_at.plus(config.keys.publish)));
    }
    let kid = make_key(db, NEXT, now).await?;
    tracing::info!(%kid, "published the next signing key (rotation started)");
    Ok((kid, now.plus(config.keys.publish)))
}

/// Removes a key at once (it leaked). If it was the signing key, a successor signs from now.
/// False when there is no such key.
pub async fn remove(db: &Db, config: &Config, kid: &str, now: Timestamp) -> Result<bool, KeyError> {
    let keys = db.signing_keys(now).await?;
    let Some(gone) = keys.iter().find(|k| k.kid == kid) else {
        return Ok(false);
    };
    let others_active = keys.iter().any(|k| k.state == ACTIVE && k.kid != gone.kid);
    if gone.state == ACTIVE && !others_active {
        match keys.iter().rev().find(|k| k.state == NEXT) {
            Some(next) => promote(db, &keys, next, config, now).await?,
            None => {
                make_key(db, ACTIVE, now).await?;
            }
        }
    }
    db.delete_signing_key(&gone.kid).await?;
    tracing::warn!(kid = %gone.kid, "removed a signing key (emergency)");
    Ok(true)
}

/// This node's part: step the rotation, then load the keys as they now are.
pub async fn tick(state: &AppState) -> Result<(), KeyError> {
    let now = state.clock.now();
    step(&state.db, &state.config, now).await?;
    reload(state).await
}

/// Loads the keys from the database into this node's ring.
pub async fn reload(state: &AppState) -> Result<(), KeyError> {
    let ring = load_or_create(&state.db, state.clock.now()).await?;
    state.keys.replace(ring);
    Ok(())
}

/// Ticks every `KeyPolicy::refresh` while the server lives.
pub(crate) fn watch(state: Weak<Inner>, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(inner) = state.upgrade() else {
                return;
            };
            let state = AppState::from_inner(inner);
            if let Err(e) = tick(&state).await {
                tracing::warn!(error = %e, "key rotation: could not refresh the keys; retrying");
            }
        }
    });
}
