//! `GET /healthz` (the process answers), `GET /readyz` (this node can serve: 200, or 503) and
//! `GET /metrics` (Prometheus text format). The public `/readyz` says ready or not and nothing
//! more: what failed (a database error, a host name) describes the inside of the deployment.
//! The operators' listener (`ops_listen`) serves the full report and `/metrics`; without it,
//! `/metrics` is on the public listener (put it behind the network's access rules). None of
//! them takes credentials or shows a secret.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::reply::no_store;
use crate::state::AppState;

/// `GET /healthz`: alive. Touches nothing else, so a slow database never restarts the node.
pub(crate) async fn healthz() -> Response {
    (no_store(), Json(serde_json::json!({ "status": "alive" }))).into_response()
}

/// The public `GET /readyz`: 200 `{"status": "ready"}`, or 503 `{"status": "not_ready"}` with
/// `Retry-After`; no detail.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let report = report(&state).await;
    answer(
        report.ready(),
        serde_json::json!({ "status": report.status }),
    )
}

/// The operators' `GET /readyz`: the same status, with every check's detail.
pub(crate) async fn readyz_detailed(State(state): State<AppState>) -> Response {
    let report = report(&state).await;
    answer(report.ready(), serde_json::json!(report))
}

async fn report(state: &AppState) -> lanyard_core::health::Readiness {
    let stopping = *state.web().stopping.borrow();
    let report = lanyard_core::health::readiness(state, stopping).await;
    if !report.ready() {
        tracing::warn!(report = %serde_json::json!(report), "not ready");
    }
    report
}

fn answer(ready: bool, body: serde_json::Value) -> Response {
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, no_store(), Json(body)).into_response();
    if !ready {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

/// `GET /metrics`.
pub(crate) async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        lanyard_core::metrics::handle().render(),
    )
        .into_response()
}
