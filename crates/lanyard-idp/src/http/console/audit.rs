//! The audit trail: filters (who, what, about whom), a page at a time, newest first, and a
//! live tail (`/console/audit/tail`, read by `assets/console.js`).

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::people::EventRow;
use super::{Nav, Operator, enc, query};
use crate::state::AppState;
use lanyard_core::model::AuditFilter;

/// Events per page.
const PAGE: u64 = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/tail", get(tail))
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    actor: String,
    action: String,
    target: String,
    events: Vec<(i64, EventRow)>,
    /// The newest event shown (the tail continues from it), on the first page only.
    newest: Option<i64>,
    next: Option<String>,
}

/// The filter the form describes. The trail keeps people's `sub`s, the page shows their
/// usernames: a "who" or "about" of `olivia`, `console:olivia` or `sub:olivia` looks for
/// that person's `sub` (as typed when no one has that username).
async fn filter_of(state: &AppState, q: &crate::params::Params) -> AuditFilter {
    let text = |name: &str| {
        q.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let by_sub = |value: Option<String>| async move {
        let value = value?;
        let (prefix, name) = match value.split_once(':') {
            Some((p @ ("console" | "sub"), rest)) => (Some(p), rest),
            _ => (None, value.as_str()),
        };
        let found = state.db.users().by_username(name).await.ok().flatten();
        Some(match (found, prefix) {
            (Some(user), Some(p)) => format!("{p}:{}", user.sub),
            (Some(user), None) => user.sub,
            (None, _) => value,
        })
    };
    AuditFilter {
        actor: by_sub(text("actor")).await,
        action: text("action"),
        target: by_sub(text("target")).await,
        ..AuditFilter::default()
    }
}

/// `GET /console/audit?actor=&action=&target=&before=`.
async fn list(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw.as_deref());
    let filter = filter_of(&state, &q).await;
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let rows = match state.db.audit().query(&filter, before, Some(PAGE)).await {
        Ok(rows) => rows,
        Err(e) => return op.refused(e.into(), "/console/audit"),
    };
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    let next = super::next_page(&rows, PAGE, |(id, _)| {
        format!(
            "/console/audit?actor={}&action={}&target={}&before={id}",
            enc(q.get("actor").unwrap_or("")),
            enc(&field(&filter.action)),
            enc(q.get("target").unwrap_or("")),
        )
    });
    op.page(&AuditPage {
        nav: op.nav("audit"),
        actor: q.get("actor").unwrap_or("").trim().to_owned(),
        action: field(&filter.action),
        target: q.get("target").unwrap_or("").trim().to_owned(),
        newest: if before.is_none() {
            Some(rows.first().map_or(0, |(id, _)| *id))
        } else {
            None
        },
        events: EventRow::all(&state, &rows).await,
        next,
    })
}

#[derive(Serialize)]
struct TailEvent {
    id: i64,
    at: String,
    actor: String,
    action: String,
    target: String,
    outcome: String,
}

/// `GET /console/audit/tail?after=ID` (and the page's filters): the events newer than `ID`,
/// oldest first, as JSON for the live tail: `{"events": [...], "complete": bool}`, not
/// complete when more than a page of events came since `ID` (the page then says to reload).
/// A session that ended is a 401 here, not the redirect a page gets: the script says so.
async fn tail(
    State(state): State<AppState>,
    op: Result<Operator, Response>,
    RawQuery(raw): RawQuery,
) -> Response {
    if op.is_err() {
        let body = serde_json::json!({ "error": "signed_out" });
        return (axum::http::StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let q = query(raw.as_deref());
    let after = q
        .get("after")
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(0);
    let filter = filter_of(&state, &q).await;
    match state.db.audit().query(&filter, None, Some(PAGE)).await {
        Ok(rows) => {
            // A full page whose oldest event is still newer than `after`: some were skipped.
            let complete =
                (rows.len() as u64) < PAGE || rows.last().is_some_and(|(id, _)| *id <= after);
            let fresh: Vec<_> = rows
                .into_iter()
                .rev()
                .filter(|(id, _)| *id > after)
                .collect();
            let events: Vec<TailEvent> = EventRow::all(&state, &fresh)
                .await
                .into_iter()
                .map(|(id, row)| TailEvent {
                    id,
                    at: row.at,
                    actor: row.actor,
                    action: row.action,
                    target: row.target,
                    outcome: row.outcome,
                })
                .collect();
            let body = serde_json::json!({ "events": events, "complete": complete });
            (
                [(axum::http::header::CACHE_CONTROL, "no-store")],
                Json(body),
            )
                .into_response()
        }
        Err(_) => super::unavailable(),
    }
}
