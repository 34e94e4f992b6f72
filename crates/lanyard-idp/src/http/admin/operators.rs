//! `/admin/v1/operators`: who may run Lanyard from its console (the role `operator` of the
//! built-in client `lanyard-console`; `lanyard_core::operators`).

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::auth::Admin;
use super::error::AdminError;
use super::groups::Added;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::access::Withdrawn;
use lanyard_core::operators;
use lanyard_core::users::UserView;

/// The operators.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Operators {
    /// People who hold the role directly.
    people: Vec<UserView>,
    /// Groups that hold it (their members are operators), by name.
    groups: Vec<String>,
}

/// Lists the operators.
#[utoipa::path(
    get,
    path = "/operators",
    tag = "users",
    responses(
        (status = 200, description = "The operators", body = Operators),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Operators>, AdminError> {
    let (people, groups) = operators::list(&state).await?;
    Ok(Json(Operators {
        people: people.iter().map(UserView::from).collect(),
        groups,
    }))
}

/// Makes a person an operator (idempotent).
#[utoipa::path(
    put,
    path = "/operators/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The person's sub")),
    responses(
        (status = 200, description = "An operator now", body = Added),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn add(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<Added>, AdminError> {
    let added = operators::add(&state, &sub, &admin.actor()).await?;
    Ok(Json(Added { added }))
}

/// Takes the operator role from a person (their console tokens are refused at once).
#[utoipa::path(
    delete,
    path = "/operators/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The person's sub")),
    responses(
        (status = 200, description = "No longer an operator; what was revoked", body = Withdrawn),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<Withdrawn>, AdminError> {
    Ok(Json(operators::remove(&state, &sub, &admin.actor()).await?))
}
