//! `GET /healthz` (the process answers), `GET /readyz` (this node can serve: 200, or 503 with
//! what is wrong) and `GET /metrics` (Prometheus text format). None of them takes
//! credentials or shows a secret; put `/metrics` behind the network's access rules.

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

/// `GET /readyz`: 200 when every check passes, 503 (with `Retry-After`) otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let stopping = *state.web().stopping.borrow();
    let report = lanyard_core::health::readiness(&state, stopping).await;
    let status = if report.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, no_store(), Json(&report)).into_response();
    if !report.ready() {
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
