//! The Shared Signals transmitter's HTTP faces (SSF 1.0): the metadata at
//! `/.well-known/ssf-configuration`, the stream management API under `/ssf/` (configuration,
//! status, subjects, verification) and each polled stream's endpoint (RFC 8936). Every call
//! but the metadata takes a `client_credentials` access token for the scope `lanyard:ssf`;
//! refusals are JSON `{"err", "description"}` (the shape RFC 8935 gives SET errors) with
//! the status codes SSF names. The work is `lanyard_core::signals`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::auth::scoped_caller;
use crate::state::AppState;
use lanyard_core::model::DeliveryMethod;
use lanyard_core::signals::{self, PollRequest, SignalError, StatusChange};

/// The scope a receiver's token needs.
pub(crate) const SSF_SCOPE: &str = "lanyard:ssf";

/// Where each endpoint is.
pub(crate) mod paths {
    /// The transmitter configuration metadata (SSF 1.0 §7).
    pub(crate) const CONFIGURATION: &str = "/.well-known/ssf-configuration";
    /// Create, read, update, replace, delete streams.
    pub(crate) const STREAMS: &str = "/ssf/streams";
    /// A stream's status.
    pub(crate) const STATUS: &str = "/ssf/status";
    /// Add a subject to a stream.
    pub(crate) const ADD_SUBJECT: &str = "/ssf/subjects/add";
    /// Remove a subject from a stream.
    pub(crate) const REMOVE_SUBJECT: &str = "/ssf/subjects/remove";
    /// Ask for a verification event.
    pub(crate) const VERIFY: &str = "/ssf/verify";
    /// A polled stream's endpoint (`/ssf/poll/{stream_id}`).
    pub(crate) const POLL: &str = "/ssf/poll/{stream_id}";
}

/// The routes, to be merged at the root.
pub(crate) fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(paths::CONFIGURATION, get(configuration))
        .route(
            paths::STREAMS,
            get(read)
                .post(create)
                .patch(update)
                .put(replace)
                .delete(delete),
        )
        .route(paths::STATUS, get(status).post(set_status))
        .route(paths::ADD_SUBJECT, post(add_subject))
        .route(paths::REMOVE_SUBJECT, post(remove_subject))
        .route(paths::VERIFY, post(verify))
        .route(paths::POLL, post(poll))
}

/// The transmitter configuration metadata (SSF 1.0 §7.1).
async fn configuration(State(state): State<AppState>) -> Response {
    let config = &state.config;
    let body = json!({
        "spec_version": "1_0",
        "issuer": config.issuer,
        "jwks_uri": config.url(crate::oauth::discovery::paths::JWKS),
        "delivery_methods_supported": [DeliveryMethod::Push.urn(), DeliveryMethod::Poll.urn()],
        "configuration_endpoint": config.url(paths::STREAMS),
        "status_endpoint": config.url(paths::STATUS),
        "add_subject_endpoint": config.url(paths::ADD_SUBJECT),
        "remove_subject_endpoint": config.url(paths::REMOVE_SUBJECT),
        "verification_endpoint": config.url(paths::VERIFY),
        "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
        "default_subjects": "ALL",
    });
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// An SSF refusal: `{"err", "description"}`, never cached.
fn refusal(e: &SignalError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        Json(json!({ "err": e.err, "description": e.description })),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(secs) = e.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn answer(status: StatusCode, result: Result<Value, SignalError>) -> Response {
    match result {
        Ok(body) => {
            let mut response = (status, Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => refusal(&e),
    }
}

fn done(status: StatusCode, result: Result<(), SignalError>) -> Response {
    match result {
        Ok(()) => (status, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(e) => refusal(&e),
    }
}

/// A receiver: the client whose `lanyard:ssf` token called.
pub(crate) struct Receiver {
    client_id: String,
}

impl FromRequestParts<AppState> for Receiver {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let body = |status: u16, detail: &str| {
            let err = match status {
                400 => "invalid_request",
                401 => "authentication_failed",
                403 => "access_denied",
                _ => "temporarily_unavailable",
            };
            refusal(&SignalError {
                status,
                err,
                description: detail.to_owned(),
                retry_after: None,
            })
        };
        let client_id = scoped_caller(parts, state, SSF_SCOPE, body).await?;
        Ok(Self { client_id })
    }
}

/// A JSON body (an empty body is `null`), or 400 saying why not.
fn json_body(bytes: &Bytes) -> Result<Value, SignalError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| SignalError::invalid(format!("the body is not JSON: {e}")))
}

/// `?stream_id=`.
#[derive(Deserialize)]
struct StreamQuery {
    stream_id: Option<String>,
}

fn query(
    raw: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Option<String>, SignalError> {
    raw.map(|Query(q)| q.stream_id)
        .map_err(|e| SignalError::invalid(format!("the query is not valid: {e}")))
}

fn required(stream_id: Option<String>) -> Result<String, SignalError> {
    stream_id.ok_or_else(|| SignalError::invalid("the stream_id query parameter is required"))
}

async fn read(
    State(state): State<AppState>,
    receiver: Receiver,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = match query(q) {
        Ok(Some(id)) => signals::get(&state, &receiver.client_id, &id).await,
        Ok(None) => signals::list(&state, &receiver.client_id).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::OK, result)
}

async fn create(State(state): State<AppState>, receiver: Receiver, body: Bytes) -> Response {
    let result = match json_body(&body) {
        Ok(Value::Null) => signals::create(&state, &receiver.client_id, &json!({})).await,
        Ok(body) => signals::create(&state, &receiver.client_id, &body).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::CREATED, result)
}

async fn update(State(state): State<AppState>, receiver: Receiver, body: Bytes) -> Response {
    let result = match json_body(&body) {
        Ok(body) => signals::update(&state, &receiver.client_id, &body, false).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::OK, result)
}

async fn replace(State(state): State<AppState>, receiver: Receiver, body: Bytes) -> Response {
    let result = match json_body(&body) {
        Ok(body) => signals::replace(&state, &receiver.client_id, &body).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::OK, result)
}

async fn delete(
    State(state): State<AppState>,
    receiver: Receiver,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = match query(q).and_then(required) {
        Ok(id) => signals::delete(&state, &receiver.client_id, &id).await,
        Err(e) => Err(e),
    };
    done(StatusCode::NO_CONTENT, result)
}

async fn status(
    State(state): State<AppState>,
    receiver: Receiver,
    q: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let result = match query(q).and_then(required) {
        Ok(id) => signals::status(&state, &receiver.client_id, &id).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::OK, result)
}

async fn set_status(State(state): State<AppState>, receiver: Receiver, body: Bytes) -> Response {
    let result = match json_body(&body).and_then(|b| StatusChange::parse(&b)) {
        Ok(change) => signals::set_status(&state, &receiver.client_id, change).await,
        Err(e) => Err(e),
    };
    answer(StatusCode::OK, result)
}

async fn add_subject(State(state): State<AppState>, receiver: Receiver, body: Bytes) -> Response {
    let result = match json_body(&body) {
        Ok(body) => signals::add_subject(&state, &receiver.client_id, &body).await,
        Err(e) => Err(e),
    };
    done(StatusCode::OK, result)
}

async fn remove_subject(
    State(state): State<AppState>,
    receiver: Receiver,
    body: Bytes,
) -> Response {
    let result = match json_body(&body) {
        Ok(body) => signals::remove_subject(&state, &receiver.client_id, &body).await,
        Err(e) => Err(e),
    };
    done(StatusCode::NO_CONTENT, result)
}

async fn verify(State(state): State<AppState>, receiver: Receiver, body: Bytes) -> Response {
    let result = match json_body(&body) {
        Ok(body) => signals::verify(&state, &receiver.client_id, &body).await,
        Err(e) => Err(e),
    };
    done(StatusCode::NO_CONTENT, result)
}

async fn poll(
    State(state): State<AppState>,
    receiver: Receiver,
    Path(stream_id): Path<String>,
    body: Bytes,
) -> Response {
    let request = match json_body(&body).and_then(|b| PollRequest::parse(&b)) {
        Ok(request) => request,
        Err(e) => return refusal(&e),
    };
    let stopping = state.web().stopping.subscribe();
    match signals::poll(&state, &receiver.client_id, &stream_id, request, stopping).await {
        Ok(answer) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            answer.to_json(),
        )
            .into_response(),
        Err(e) => refusal(&e),
    }
}
