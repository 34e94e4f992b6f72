//! `/admin/v1/keys`: list, rotate, remove a leaked key.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::auth::Admin;
use super::error::AdminError;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::keys::{self, KeyView};

/// The published keys, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<KeyView>,
}

/// Lists the published signing keys.
#[utoipa::path(
    get,
    path = "/keys",
    tag = "keys",
    responses(
        (status = 200, description = "The keys", body = KeyList),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<KeyList>, AdminError> {
    Ok(Json(KeyList {
        keys: keys::list(&state).await?,
    }))
}

/// Starts a rotation of every algorithm in use (RS256, and the access-token algorithm when it
/// differs): a new key each is published at once and signs after the publication window
/// (`key_publish_secs`). Asking again while one waits returns the waiting key.
#[utoipa::path(
    post,
    path = "/keys/rotate",
    tag = "keys",
    responses(
        (status = 202, description = "The next key of each algorithm; each signs from `signs_from`", body = KeyList),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<(StatusCode, Json<KeyList>), AdminError> {
    let keys = keys::rotate(&state, &admin.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(KeyList { keys })))
}

/// The key that signs after a removal.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Removed {
    /// The removed key.
    removed: String,
    /// The key that signs now.
    signing: String,
}

/// Removes a key at once, for a key that leaked. Tokens it signed stop verifying; if it was
/// the signing key, its successor signs from now.
#[utoipa::path(
    delete,
    path = "/keys/{kid}",
    tag = "keys",
    params(("kid" = String, Path, description = "The key's kid")),
    responses(
        (status = 200, description = "Removed", body = Removed),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    Path(kid): Path<String>,
) -> Result<Json<Removed>, AdminError> {
    let signing = keys::remove(&state, &kid, &admin.actor()).await?;
    Ok(Json(Removed {
        removed: kid,
        signing,
    }))
}
