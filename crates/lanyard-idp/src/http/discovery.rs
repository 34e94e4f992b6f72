//! Discovery, JWKS and static assets: served from memory.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

fn json(body: String, cache: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
        .into_response()
}

/// `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub(crate) async fn metadata(State(state): State<AppState>) -> Response {
    json(state.discovery.clone(), "public, max-age=300")
}

/// The JWKS.
pub(crate) async fn jwks(State(state): State<AppState>) -> Response {
    json(state.keys.jwks().to_owned(), "public, max-age=300")
}

/// The stylesheet of the pages.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        include_str!("../../assets/lanyard.css"),
    )
        .into_response()
}
