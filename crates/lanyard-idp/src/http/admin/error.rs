//! How the admin API says no: a JSON body `{"error", "error_description", "field"}` with
//! 400 (bad input, naming the field), 404, 409 or 503. Authorization failures are answered
//! by `auth` (RFC 6750).

use axum::Json;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::http::reply::no_store;
use lanyard_core::ServiceError;

/// The body of every admin API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ApiError {
    /// `invalid_request`, `not_found`, `conflict`, `temporarily_unavailable`, or an RFC 6750
    /// code (`invalid_token`, `insufficient_scope`).
    pub error: String,
    /// What was wrong and what to do, for the operator.
    pub error_description: String,
    /// The input field at fault, when one is (for example `email` or `grant_types[1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// A service's refusal, as the admin API answers it (the one place where a [`ServiceError`]
/// becomes a response).
#[derive(Debug)]
pub(crate) struct AdminError(pub ServiceError);

impl From<ServiceError> for AdminError {
    fn from(e: ServiceError) -> Self {
        Self(e)
    }
}

impl From<lanyard_core::db::DbError> for AdminError {
    fn from(e: lanyard_core::db::DbError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, error, description, field) = match self.0 {
            ServiceError::Invalid(d) => (StatusCode::BAD_REQUEST, "invalid_request", d, None),
            ServiceError::Field { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid_request",
                message,
                Some(field),
            ),
            ServiceError::NotFound(d) => (StatusCode::NOT_FOUND, "not_found", d, None),
            ServiceError::Conflict(d) => (StatusCode::CONFLICT, "conflict", d, None),
            ServiceError::Unavailable(detail) => {
                tracing::error!(error = %detail, "admin request failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the database or the token store is unavailable; nothing was acknowledged, retry in a moment".to_owned(),
                    None,
                )
            }
        };
        let body = ApiError {
            error: error.to_owned(),
            error_description: description,
            field,
        };
        let mut response = (status, no_store(), Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON request body whose errors name the field at fault (400, never 415 or 422).
pub(crate) struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AdminError> {
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(AdminError(ServiceError::Field {
                field: "Content-Type".to_owned(),
                message: "send the body as JSON, with Content-Type: application/json".to_owned(),
            }));
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| AdminError(ServiceError::Invalid(e.body_text())))?;
        // Every body of this API is an object (serde would read a struct from an array too).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(AdminError(ServiceError::field(
                "body",
                "send a JSON object ({...})",
            )));
        }
        let value = lanyard_core::error::from_json(&bytes)?;
        Ok(Body(value))
    }
}

/// For `Option<Option<T>>` fields with `#[serde(default)]`: a field that is present, even
/// as `null`, is `Some` (so `null` can mean "clear it" and absence "leave it").
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
