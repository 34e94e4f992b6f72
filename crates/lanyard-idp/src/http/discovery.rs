//! Discovery, JWKS and static assets: served from memory.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

fn json(body: String, cache: HeaderValue) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub(crate) async fn metadata(State(state): State<AppState>) -> Response {
    json(
        state.web().discovery.clone(),
        HeaderValue::from_static("public, max-age=300"),
    )
}

/// The JWKS, cacheable for half the key publication window: a key is published that long
/// before it signs, so every cache holds it by then.
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    let max_age = state.config.keys.jwks_max_age().as_secs();
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age}"))
        .unwrap_or(HeaderValue::from_static("public, max-age=300"));
    json(state.keys.jwks().to_string(), cache)
}

/// The stylesheet of the pages.
pub(crate) async fn stylesheet() -> Response {
    super::reply::asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/lanyard.css"),
    )
}
