//! Health (the readiness checks, key ages, version) and revocations (the lists in force;
//! revoking by token, `jti`, person, session or app).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::keys::{KeyRow, rows};
use super::{Nav, Operator, confirmed, done, notice, query, when};
use crate::state::AppState;
use lanyard_core::revoke::{self, Entry, Subject};
use lanyard_core::{ServiceError, health, keys};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health_page))
        .route("/revocations", get(revocations))
        .route("/revocations/revoke", post(revoke_one))
}

struct CheckRow {
    name: &'static str,
    ok: bool,
    detail: String,
    ms: String,
}

#[derive(Template)]
#[template(path = "console/health.html")]
struct HealthPage {
    nav: Nav,
    ready: bool,
    stopping: bool,
    checks: Vec<CheckRow>,
    keys: Vec<KeyRow>,
    version: &'static str,
    issuer: String,
    store: &'static str,
    database: &'static str,
}

/// `GET /console/health`: this node's readiness, as `/readyz` on the operators' listener
/// tells it, in words.
async fn health_page(State(state): State<AppState>, op: Operator) -> Response {
    let stopping = *state.web().stopping.borrow();
    let (report, published) = tokio::join!(health::readiness(&state, stopping), keys::list(&state));
    let row = |name, c: &health::Check| CheckRow {
        name,
        ok: c.ok,
        detail: c.detail.clone(),
        ms: format!("{:.1} ms", c.ms),
    };
    let page = HealthPage {
        nav: op.nav("health"),
        ready: report.ready(),
        stopping: report.stopping,
        checks: vec![
            row("Database", &report.database),
            row("Token store", &report.store),
            row("Signing keys", &report.keys),
            row("Clock", &report.clock),
        ],
        keys: rows(&published.unwrap_or_default(), state.clock.now().as_secs()),
        version: env!("CARGO_PKG_VERSION"),
        issuer: state.config.issuer.clone(),
        store: if state.config.redis_url.is_some() {
            "Redis"
        } else {
            "in-process (this node only)"
        },
        database: if state.config.database_url.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        },
    };
    op.page_with(
        if page.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &page,
    )
}

struct EntryRow {
    kind: String,
    value: String,
    at: String,
    until: String,
    actor: String,
}

#[derive(Template)]
#[template(path = "console/revocations.html")]
struct RevocationsPage {
    nav: Nav,
    entries: Vec<EntryRow>,
    notice: Option<&'static str>,
}

/// `GET /console/revocations`: every entry in force, newest first.
async fn revocations(
    State(state): State<AppState>,
    op: Operator,
    RawQuery(raw): RawQuery,
) -> Response {
    let now = state.clock.now();
    let mut recorded = match state.db.revocations().in_force(now).await {
        Ok(r) => r,
        Err(e) => return op.refused(e.into(), "/console/revocations"),
    };
    recorded.sort_by_key(|r| std::cmp::Reverse(r.recorded_at));
    let q = query(raw.as_deref());
    op.page(&RevocationsPage {
        nav: op.nav("revocations"),
        entries: recorded
            .iter()
            .map(|r| {
                let e = Entry::of(&r.revocation);
                EntryRow {
                    kind: e.kind,
                    value: e.value,
                    at: when(e.at),
                    until: when(e.until),
                    actor: r.actor.clone(),
                }
            })
            .collect(),
        notice: notice(
            &q,
            &[(
                "revoked",
                "Revoked: every app following Lanyard refuses it within a second.",
            )],
        ),
    })
}

/// `POST /console/revocations/revoke` (`kind`: `token`, `jti`, `sub`, `sid` or `client_id`;
/// `value`).
async fn revoke_one(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let back = "/console/revocations";
    let question = (
        "Revoke it?",
        "What it covers is refused by every app within a second. This cannot be undone: a person signs in again, an app gets new tokens.",
        "Revoke",
    );
    let at = ("/console/revocations/revoke", back);
    let form = match confirmed(&state, &op, (&headers, &body), question, at) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let value = form.get("value").map(str::trim).unwrap_or("").to_owned();
    if value.is_empty() {
        return op.refused(ServiceError::field("value", "give what to revoke"), back);
    }
    let subject = match form.get("kind") {
        Some("token") => Subject::Token(value),
        Some("jti") => Subject::Jti(value),
        Some("sub") => Subject::Sub(value),
        Some("sid") => Subject::Sid(value),
        Some("client_id") => Subject::ClientId(value),
        _ => {
            return op.refused(
                ServiceError::field("kind", "choose what kind of thing to revoke"),
                back,
            );
        }
    };
    match revoke::revoke(&state, subject, &op.actor()).await {
        Ok(_) => done(back, "revoked"),
        Err(e) => op.refused(e, back),
    }
}
