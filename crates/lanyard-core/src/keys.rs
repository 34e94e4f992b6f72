//! Signing keys, for admins: list, start a rotation, remove a leaked key. The rotation itself
//! is `tokens::rotation`.

use serde::Serialize;

use std::time::Duration;

use lanyard_store::Target;

use crate::Core;
use crate::context::WeakCore;
use crate::error::ServiceError;
use crate::tokens::{KeyError, load_or_create, rotation};

/// A signing key as admins see it (never the private key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The key id (its RFC 7638 thumbprint), as in the JWKS and in token headers.
    pub kid: String,
    /// `next` (published, signs from `signs_from`), `active` (signs), `retired` (published
    /// until `published_until`).
    pub state: String,
    /// `RS256` (ID tokens, and access tokens by default), `ES256` or `EdDSA` (access tokens,
    /// when configured).
    pub alg: String,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: i64,
    /// For a `next` key: when it will start to sign.
    pub signs_from: Option<i64>,
    /// For a `retired` key: when it leaves the JWKS.
    pub published_until: Option<i64>,
}

/// Every published key, newest first.
pub async fn list(state: &Core) -> Result<Vec<KeyView>, ServiceError> {
    let keys = state.db.keys().published(state.clock.now()).await?;
    Ok(keys
        .into_iter()
        .map(|k| KeyView {
            signs_from: (k.state == "next")
                .then(|| k.created_at.plus(state.config.keys.publish).as_secs()),
            published_until: k.usable_until.map(|t| t.as_secs()),
            kid: k.kid,
            state: k.state,
            alg: k.alg,
            created_at: k.created_at.as_secs(),
        })
        .collect())
}

/// Starts a rotation of every algorithm in use: a new key each is published now and signs
/// after the publication window. Returns those keys.
pub async fn rotate(state: &Core, actor: &str) -> Result<Vec<KeyView>, ServiceError> {
    let result = async {
        let started = rotation::begin(&state.db, &state.config, state.clock.now()).await?;
        reload(state).await?;
        let next: Vec<KeyView> = list(state)
            .await?
            .into_iter()
            .filter(|k| started.iter().any(|(kid, _)| *kid == k.kid))
            .collect();
        if next.len() < started.len() {
            return Err(ServiceError::Unavailable("a new key vanished".to_owned()));
        }
        Ok(next)
    }
    .await;
    state.record(actor, "key.rotate", "keys", &result).await;
    result
}

/// Removes a key at once (it leaked): tokens it signed stop verifying here at once, and at
/// apps within a second: a `kid` entry in the revocation feed makes their guards fetch the
/// JWKS again. Returns the key that signs now in its place (for an
/// algorithm no longer in use, the access-token key).
pub async fn remove(state: &Core, kid: &str, actor: &str) -> Result<String, ServiceError> {
    let result = async {
        let now = state.clock.now();
        let Some(alg) = rotation::remove(&state.db, &state.config, kid, now).await? else {
            return Err(ServiceError::NotFound(format!(
                "no published key has kid {kid:?}"
            )));
        };
        reload(state).await?;
        // Tell every app's mirror that the keys changed: they fetch them again at once,
        // rather than trusting the withdrawn key until their next scheduled refresh.
        crate::revocation::revoke(state, Target::Kid(kid.to_owned()), now, actor).await?;
        let signers = state.keys.signers();
        let signing = signers
            .iter()
            .find(|(_, a)| *a == alg)
            .or(signers.last())
            .map(|(kid, _)| kid.clone());
        Ok(signing.unwrap_or_default())
    }
    .await;
    state.record(actor, "key.remove", kid, &result).await;
    result
}

/// This node's part: step the rotation, then load the keys as they now are.
pub async fn tick(state: &Core) -> Result<(), KeyError> {
    let now = state.clock.now();
    rotation::step(&state.db, &state.config, now).await?;
    reload(state).await
}

/// Loads the keys from the database into this node's ring.
pub async fn reload(state: &Core) -> Result<(), KeyError> {
    let ring = load_or_create(&state.db, state.clock.now(), state.config.access_token_alg).await?;
    state.keys.replace(ring);
    Ok(())
}

/// Ticks every `KeyPolicy::refresh` while the server lives.
pub(crate) fn watch(state: WeakCore, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(state) = state.upgrade() else {
                return;
            };
            if let Err(e) = tick(&state).await {
                tracing::warn!(error = %e, "key rotation: could not refresh the keys; retrying");
            }
        }
    });
}
