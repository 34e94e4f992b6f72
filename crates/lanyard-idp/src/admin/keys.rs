//! Signing keys, for admins: list, start a rotation, remove a leaked key. The rotation itself
//! is `tokens::rotation`.

use serde::Serialize;

use crate::admin::{AdminError, record};
use crate::state::AppState;
use crate::tokens::KeyError;
use crate::tokens::rotation;

/// A signing key as admins see it (never the private key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KeyView {
    /// The key id (its RFC 7638 thumbprint), as in the JWKS and in token headers.
    pub kid: String,
    /// `next` (published, signs from `signs_from`), `active` (signs), `retired` (published
    /// until `published_until`).
    pub state: String,
    /// RS256.
    pub alg: String,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: i64,
    /// For a `next` key: when it will start to sign.
    pub signs_from: Option<i64>,
    /// For a `retired` key: when it leaves the JWKS.
    pub published_until: Option<i64>,
}

impl From<KeyError> for AdminError {
    fn from(e: KeyError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Every published key, newest first.
pub async fn list(state: &AppState) -> Result<Vec<KeyView>, AdminError> {
    let keys = state.db.signing_keys(state.clock.now()).await?;
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

/// Starts a rotation: a new key is published now and signs after the publication window.
/// Returns that key.
pub async fn rotate(state: &AppState, actor: &str) -> Result<KeyView, AdminError> {
    let result = async {
        let (kid, _) = rotation::begin(&state.db, &state.config, state.clock.now()).await?;
        rotation::reload(state).await?;
        list(state)
            .await?
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| AdminError::Unavailable("the new key vanished".to_owned()))
    }
    .await;
    record(state, actor, "key.rotate", "keys", &result).await;
    result
}

/// Removes a key at once (it leaked): tokens it signed stop verifying here at once, and at
/// apps when they next fetch the JWKS. Returns the key that signs now.
pub async fn remove(state: &AppState, kid: &str, actor: &str) -> Result<String, AdminError> {
    let result = async {
        let now = state.clock.now();
        if !rotation::remove(&state.db, &state.config, kid, now).await? {
            return Err(AdminError::NotFound(format!(
                "no published key has kid {kid:?}"
            )));
        }
        rotation::reload(state).await?;
        Ok(state.keys.signing_kid())
    }
    .await;
    record(state, actor, "key.remove", kid, &result).await;
    result
}
