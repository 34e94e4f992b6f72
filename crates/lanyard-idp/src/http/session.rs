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

/// A session's status for one of its apps, server to server: the app authenticates as at
/// the token endpoint (a confidential client) and names the session (`sid`, from its ID
/// token). A session the app did not sign anyone in through is, to it, not active. An app
/// on another site than Lanyard's serves the timeout warning from its own origin this way
/// (`lanyard-rp`), where Lanyard's cookie cannot reach.
pub(crate) async fn app_status(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    for_app(&state, &headers, query.as_deref(), &body, false).await
}

/// "Stay signed in" for one of a session's apps, server to server (as [`app_status`]): counts
/// as activity.
pub(crate) async fn app_extend(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: axum::body::Bytes,
) -> Response {
    for_app(&state, &headers, query.as_deref(), &body, true).await
}

async fn for_app(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    touch: bool,
) -> Response {
    let (client, params, method) =
        match super::token::client_request(state, headers, query, body).await {
            Ok(found) => found,
            Err(e) => return e.into_response(),
        };
    if method == crate::oauth::client_auth::Method::None {
        return crate::oauth::error::TokenError::invalid_client(
            "a session's status is told to an app that authenticates with its own credentials",
        )
        .into_response();
    }
    let Some(sid) = params.get("sid") else {
        return crate::oauth::error::TokenError::invalid_request("sid is required").into_response();
    };
    let client_id = &client.settings.client_id;
    let found = match state.store.session(sid).await {
        Ok(found) => found,
        Err(_) => return unavailable(),
    };
    // Only a session this app signed someone in through is its business.
    let Some(session) = found.filter(|s| s.clients.iter().any(|c| c == client_id)) else {
        return answer(&Status::of(None, state.clock.now()), None);
    };
    let session = if touch {
        match state
            .store
            .touch_session(&session.sid.to_string(), None)
            .await
        {
            Ok(s) => s,
            Err(_) => return unavailable(),
        }
    } else {
        Some(session)
    };
    answer(&Status::of(session.as_ref(), state.clock.now()), None)
}

/// The warning script.
pub(crate) async fn warning_script() -> Response {
    super::reply::asset("text/javascript; charset=utf-8", WARNING_JS)
}
