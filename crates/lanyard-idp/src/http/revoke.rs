//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): client-authenticated like the
//! token endpoint, errors as RFC 6749 §5.2.

use axum::Json;
use axum::body::Bytes;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::reply::no_store;
use super::token::client_request;
use crate::oauth::client_auth::Method;
use crate::oauth::error::TokenError;
use crate::oauth::{introspect, revoke};
use crate::state::AppState;

/// The revocation endpoint: 200 with an empty body for every token it was given, known or
/// not (RFC 7009 §2.2).
pub(crate) async fn revocation(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let (client, params, _) = client_request(&state, &headers, query.as_deref(), &body).await?;
        revoke::revoke(&state, &client, &params).await
    }
    .await;
    match result {
        Ok(_) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The introspection endpoint: only a client that authenticates with a secret may ask.
pub(crate) async fn introspection(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let result = async {
        let (client, params, method) =
            client_request(&state, &headers, query.as_deref(), &body).await?;
        if method == Method::None {
            return Err(TokenError::invalid_client(
                "introspection needs client authentication with a secret",
            ));
        }
        introspect::introspect(&state, &client, &params).await
    }
    .await;
    match result {
        Ok(answer) => (no_store(), Json(answer)).into_response(),
        Err(e) => e.into_response(),
    }
}
