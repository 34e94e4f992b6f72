//! `/admin/v1/users/{sub}/factors`: a user's second factors (two-step verification); reset
//! them all (a lost phone).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::auth::Admin;
use super::error::AdminError;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::factors;
use lanyard_core::model::Factor;
use lanyard_core::revoke::Outcome;

/// One second factor (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FactorView {
    /// Its id.
    id: String,
    /// `totp` (an authenticator app) or `passkey`.
    kind: &'static str,
    /// What the person called it.
    name: String,
    /// When it was added (seconds since the epoch).
    created_at: i64,
    /// When it was last used to sign in (seconds since the epoch).
    last_used_at: Option<i64>,
}

impl From<&Factor> for FactorView {
    fn from(f: &Factor) -> Self {
        Self {
            id: f.id.clone(),
            kind: f.kind.as_str(),
            name: f.name.clone(),
            created_at: f.created_at.as_secs(),
            last_used_at: f.last_used_at.map(|t| t.as_secs()),
        }
    }
}

/// A user's second factors, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct FactorList {
    factors: Vec<FactorView>,
    /// How many unused recovery codes they have.
    recovery_codes_left: u64,
}

/// Lists a user's second factors.
#[utoipa::path(
    get,
    path = "/users/{sub}/factors",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "The factors", body = FactorList),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<FactorList>, AdminError> {
    lanyard_core::users::get(&state, &sub).await?;
    let (all, left) = factors::list(&state, &sub).await?;
    Ok(Json(FactorList {
        factors: all.iter().map(FactorView::from).collect(),
        recovery_codes_left: left,
    }))
}

/// Removes every second factor and recovery code of a user, ends their sessions and revokes
/// their tokens (`lanyard user mfa reset`).
#[utoipa::path(
    delete,
    path = "/users/{sub}/factors",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "Removed; what was revoked", body = Outcome),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn reset(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<Outcome>, AdminError> {
    Ok(Json(factors::reset(&state, &sub, &admin.actor()).await?))
}
