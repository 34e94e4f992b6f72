//! Brute-force locks: `/admin/v1/users/{sub}/lock`, `/admin/v1/locks/ips/{ip}`,
//! `/admin/v1/clients/{client_id}/locks/{ip}` (a client's wrong secrets: counted, never locking).

use axum::Json;
use axum::extract::{Path, State};

use super::auth::Admin;
use super::error::AdminError;
use super::query::Query;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::locks::{self, Lifted, LockView};

/// The failed sign-ins counted against a user's username: from every address (which slow
/// sign-ins down, never lock), or with `ip` at that address (which lock).
#[utoipa::path(
    get,
    path = "/users/{sub}/lock",
    tag = "locks",
    params(
        ("sub" = String, Path, description = "The user's sub"),
        ("ip" = Option<String>, Query, description = "Only the failures from this address (where a lock may be in force)"),
    ),
    responses(
        (status = 200, description = "Failures in the window, and the lock or wait left", body = LockView),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sub): Path<String>,
    query: Query,
) -> Result<Json<LockView>, AdminError> {
    Ok(Json(locks::user(&state, &sub, query.text("ip")).await?))
}

/// Forgets the failures counted against a user's username (ending its waits); with `ip`, also
/// lifts the lock at that address (the `lockout` audit event names it).
#[utoipa::path(
    delete,
    path = "/users/{sub}/lock",
    tag = "locks",
    params(
        ("sub" = String, Path, description = "The user's sub"),
        ("ip" = Option<String>, Query, description = "Also lift the lock at this address"),
    ),
    responses(
        (status = 200, description = "Lifted (or there was nothing to lift)", body = Lifted),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn lift_user(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
    query: Query,
) -> Result<Json<Lifted>, AdminError> {
    Ok(Json(
        locks::lift_user(&state, &sub, query.text("ip"), &admin.actor()).await?,
    ))
}

/// Lifts the lock on sign-ins from a client IP.
#[utoipa::path(
    delete,
    path = "/locks/ips/{ip}",
    tag = "locks",
    params(("ip" = String, Path, description = "The IP address")),
    responses(
        (status = 200, description = "Lifted (or there was nothing to lift)", body = Lifted),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn lift_ip(
    State(state): State<AppState>,
    admin: Admin,
    Path(ip): Path<String>,
) -> Result<Json<Lifted>, AdminError> {
    Ok(Json(locks::lift_ip(&state, &ip, &admin.actor()).await?))
}

/// Forgets the wrong secrets counted for a client (clients are never locked; the address
/// is checked, then ignored: the route is kept from when they were locked per address).
#[utoipa::path(
    delete,
    path = "/clients/{client_id}/locks/{ip}",
    tag = "locks",
    params(
        ("client_id" = String, Path, description = "The client"),
        ("ip" = String, Path, description = "An IP address (ignored)"),
    ),
    responses(
        (status = 200, description = "Forgotten (`lifted`: whether anything was counted)", body = Lifted),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn lift_client(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, ip)): Path<(String, String)>,
) -> Result<Json<Lifted>, AdminError> {
    Ok(Json(
        locks::lift_client(&state, &client_id, &ip, &admin.actor()).await?,
    ))
}
