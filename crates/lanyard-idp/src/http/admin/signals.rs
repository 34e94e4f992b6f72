//! Shared Signals as operators see them: `/admin/v1/signals/streams` (every receiver's
//! streams and where their deliveries stand), `/admin/v1/signals/deliveries` (every channel
//! of the event outbox: streams and apps' back-channel logout), and
//! `/admin/v1/users/{sub}/credential-compromise` (tell receivers a credential is compromised).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::Admin;
use super::error::{AdminError, Body};
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::model::ChannelState;
use lanyard_core::signals::{self, Credential, StreamOverview};

/// Every Shared Signals stream, oldest first: its configuration as its receiver sees it,
/// its status, and where its deliveries stand (events waiting, the last error, the next
/// attempt).
#[utoipa::path(
    get,
    path = "/signals/streams",
    tag = "signals",
    responses(
        (status = 200, description = "The streams", body = Vec<StreamOverview>),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn streams(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<StreamOverview>>, AdminError> {
    Ok(Json(
        signals::list_all(&state)
            .await
            .map_err(lanyard_core::ServiceError::from)?,
    ))
}

/// Every channel of the event outbox: each stream pushed or polled, and each app that was
/// sent a back-channel logout (`backchannel <client_id>`), with what waits and why.
#[utoipa::path(
    get,
    path = "/signals/deliveries",
    tag = "signals",
    responses(
        (status = 200, description = "The channels", body = Vec<ChannelState>),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<ChannelState>>, AdminError> {
    Ok(Json(
        state
            .db
            .events()
            .states(None)
            .await
            .map_err(lanyard_core::ServiceError::from)?,
    ))
}

/// A credential known to be compromised.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Compromise {
    /// `password`, `app` (an authenticator app) or `fido2-platform` (a passkey).
    credential_type: Credential,
    /// Why, for people (sent as the event's `reason_admin`).
    #[schema(max_length = 500)]
    reason: Option<String>,
}

/// Tells Shared Signals receivers that a credential of this user is compromised (RISC
/// `credential-compromise`). Nothing else changes: reset the password or the factors, or
/// revoke the user, as well.
#[utoipa::path(
    post,
    path = "/users/{sub}/credential-compromise",
    tag = "signals",
    params(("sub" = String, Path, description = "The user's sub")),
    request_body = Compromise,
    responses(
        (status = 204, description = "Recorded; receivers that asked for it are told"),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn credential_compromise(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
    Body(body): Body<Compromise>,
) -> Result<StatusCode, AdminError> {
    lanyard_core::users::mark_compromised(
        &state,
        &sub,
        body.credential_type,
        body.reason.as_deref(),
        &admin.actor(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
