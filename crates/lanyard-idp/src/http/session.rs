//! `GET /session/status`, `POST /session/extend` and `GET /session/warning.js`: the timeout
//! warning any app page (and Lanyard's own) can show. See `docs/sessions.md`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::cookies;
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::session::{Status, origin_allowed};

/// The warning script (plain JavaScript, no dependencies).
const WARNING_JS: &str = include_str!("../../assets/session-warning.js");

/// Who is asking: `Err` is the answer to give instead.
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    origin_required: bool,
) -> Result<Option<HeaderValue>, Response> {
    let refuse = |status: StatusCode, why: &str| {
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Json(serde_json::json!({ "error": "invalid_request", "error_description": why })),
        )
            .into_response()
    };
    let origin = headers.get(header::ORIGIN);
    let Some(origin) = origin else {
        return if origin_required {
            Err(refuse(
                StatusCode::FORBIDDEN,
                "only a page of a registered app may extend the session",
            ))
        } else {
            Ok(None)
        };
    };
    let params = Params::parse(query.unwrap_or("").as_bytes())
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let client = match params.get("client_id") {
        None => None,
        Some(id) => state.db.clients().get(id).await.map_err(|e| {
            tracing::error!(error = %e, "session status: the client could not be loaded");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again in a moment")
        })?,
    };
    let text = origin.to_str().unwrap_or("");
    if !origin_allowed(&state.config, client.as_ref(), text) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "this origin is not a registered app's (pass its client_id)",
        ));
    }
    Ok(Some(origin.clone()))
}

fn answer(status: &Status, origin: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::OK, Json(status)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::VARY, HeaderValue::from_static("Origin, Cookie"));
    if let Some(origin) = origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    response
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "5"), (header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "error": "temporarily_unavailable", "error_description": "the session store cannot be reached; try again in a moment" })),
    )
        .into_response()
}

/// How long this browser's session has left. Not activity.
pub(crate) async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let origin = match caller(&state, &headers, query.as_deref(), false).await {
        Ok(o) => o,
        Err(response) => return response,
    };
    let session = match cookies::session_sid(&state.config, &state.server_keys, &headers) {
        None => None,
        Some(sid) => match state.store.session(&sid).await {
            Ok(s) => s,
            Err(_) => return unavailable(),
        },
    };
    answer(&Status::of(session.as_ref(), state.clock.now()), origin)
}

/// "Stay signed in": counts as activity, pushing the idle deadline out (never past the
/// absolute one). Only from a page of Lanyard's or of a registered app (`Origin`).
pub(crate) async fn extend(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let origin = match caller(&state, &headers, query.as_deref(), true).await {
        Ok(o) => o,
        Err(response) => return response,
    };
    let session = match cookies::session_sid(&state.config, &state.server_keys, &headers) {
        None => None,
        Some(sid) => match state.store.touch_session(&sid, None).await {
            Ok(s) => s,
            Err(_) => return unavailable(),
        },
    };
    answer(&Status::of(session.as_ref(), state.clock.now()), origin)
}

/// The warning script.
pub(crate) async fn warning_script() -> Response {
    super::reply::asset("text/javascript; charset=utf-8", WARNING_JS)
}
