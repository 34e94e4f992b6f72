//! `GET /admin/v1/audit`: the audit trail, newest first, filtered and a page at a time.

use axum::Json;
use axum::extract::State;
use lanyard_store::Timestamp;
use serde::Serialize;

use super::Refusals;
use super::auth::Admin;
use super::error::AdminError;
use super::query::{PageSize, Query, next_cursor};
use crate::state::AppState;
use lanyard_core::model::AuditFilter;

/// One audit event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Event {
    /// Its id; pages are cut by it.
    id: i64,
    /// When it happened (milliseconds since the Unix epoch).
    at: i64,
    /// Who acted: a user's `sub`, `client:<id>`, `admin:<id>`, `cli`, `anonymous`, `system`.
    actor: String,
    /// What happened: `signin`, `token.issue`, `token.revoke`, `admin.revoke`,
    /// `user.disable`, ...
    action: String,
    /// What it happened to.
    target: Option<String>,
    /// `success`, `failure`, or what was done.
    outcome: String,
    /// The request it happened in (the `X-Request-Id` Lanyard answered with).
    request_id: Option<String>,
    /// More about it (never a secret).
    #[schema(value_type = Option<Object>)]
    detail: Option<serde_json::Value>,
}

/// A page of the audit trail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EventPage {
    /// Newest first.
    events: Vec<Event>,
    /// Pass as `before` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

/// Events per page.
const PAGE: PageSize = PageSize {
    default: 100,
    max: 500,
};
/// Latest time accepted (the year 9999, in milliseconds).
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// Reads the audit trail: every sign-in, token issuance, revocation, logout and admin action.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(
        ("actor" = Option<String>, Query, description = "Only events by this actor"),
        ("action" = Option<String>, Query, description = "Only this action"),
        ("target" = Option<String>, Query, description = "Only events about this target"),
        ("since" = Option<i64>, Query, minimum = 0, maximum = 253_402_300_799_999_i64, description = "At or after (milliseconds since the Unix epoch)"),
        ("until" = Option<i64>, Query, minimum = 0, maximum = 253_402_300_799_999_i64, description = "Before (milliseconds since the Unix epoch)"),
        ("before" = Option<i64>, Query, minimum = 1, description = "The `next` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 500, description = "Events per page (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Query,
) -> Result<Json<EventPage>, AdminError> {
    let limit = query.limit(PAGE)?;
    let filter = AuditFilter {
        actor: query.text("actor").map(str::to_owned),
        action: query.text("action").map(str::to_owned),
        target: query.text("target").map(str::to_owned),
        since: query
            .int("since", 0..=MAX_MILLIS)?
            .map(Timestamp::from_millis),
        until: query
            .int("until", 0..=MAX_MILLIS)?
            .map(Timestamp::from_millis),
    };
    let before = query.int("before", 1..=i64::MAX)?;
    let rows = state.db.audit().query(&filter, before, Some(limit)).await?;
    let next = next_cursor(&rows, limit, |(id, _)| *id);
    let events = rows
        .into_iter()
        .map(|(id, e)| Event {
            id,
            at: e.at.as_millis(),
            actor: e.actor,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            request_id: e.request_id,
            detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
        })
        .collect();
    Ok(Json(EventPage { events, next }))
}
