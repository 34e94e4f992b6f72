//! The HTTP layer: the only module that knows axum. One file per endpoint; each parses the
//! request into typed input, calls `oauth`, and renders the result.

mod authorize;
mod cookies;
mod discovery;
mod pages;
mod reply;
mod token;
mod userinfo;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::crypto::random_token;
use crate::oauth::discovery::paths;
use crate::state::AppState;

/// The largest request body accepted (every legitimate request is far smaller).
const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&random_token(12))
            .ok()
            .map(RequestId::new)
    }
}

/// Every route, with the middleware every request goes through.
pub fn router(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
        // The path only: queries carry hints, states and codes that stay out of logs.
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id)
    });
    Router::new()
        .route(paths::OPENID_CONFIGURATION, get(discovery::metadata))
        .route(paths::OAUTH_METADATA, get(discovery::metadata))
        .route(paths::JWKS, get(discovery::jwks))
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(paths::SIGNIN, post(authorize::signin))
        .route(paths::TOKEN, post(token::token))
        .route(
            paths::USERINFO,
            get(userinfo::handle).post(userinfo::handle),
        )
        .route("/assets/lanyard.css", get(discovery::stylesheet))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(NewRequestId))
                .layer(trace)
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Duration::from_secs(30),
                )),
        )
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found").into_response()
}
