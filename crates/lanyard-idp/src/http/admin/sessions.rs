//! `/admin/v1/users/{sub}/sessions`: a user's SSO sessions; end one or all.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

use super::auth::Admin;
use super::error::AdminError;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::revoke::Outcome;
use lanyard_core::sessions::{self, SessionView};

/// A user's live sessions, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList {
    sessions: Vec<SessionView>,
}

/// Lists a user's live SSO sessions.
#[utoipa::path(
    get,
    path = "/users/{sub}/sessions",
    tag = "sessions",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "The live sessions", body = SessionList),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<SessionList>, AdminError> {
    let sessions = sessions::list(&state, &sub).await?;
    Ok(Json(SessionList { sessions }))
}

/// Ends every live session of a user and revokes what was issued in them.
#[utoipa::path(
    delete,
    path = "/users/{sub}/sessions",
    tag = "sessions",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "Ended; what was revoked", body = Outcome),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn end_all(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<Outcome>, AdminError> {
    Ok(Json(sessions::end_all(&state, &sub, &admin.actor()).await?))
}

/// Ends one session and revokes what was issued in it.
#[utoipa::path(
    delete,
    path = "/users/{sub}/sessions/{sid}",
    tag = "sessions",
    params(
        ("sub" = String, Path, description = "The user's sub"),
        ("sid" = String, Path, description = "The session's sid"),
    ),
    responses(
        (status = 200, description = "Ended; what was revoked", body = Outcome),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn end(
    State(state): State<AppState>,
    admin: Admin,
    Path((sub, sid)): Path<(String, String)>,
) -> Result<Json<Outcome>, AdminError> {
    Ok(Json(
        sessions::end(&state, &sub, &sid, &admin.actor()).await?,
    ))
}
