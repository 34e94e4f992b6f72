//! Sending an authorization response, success or error, back to the client (RFC 6749
//! §4.1.2, §4.1.2.1; RFC 9207 `iss`; OAuth 2.0 Form Post Response Mode), and the JSON error
//! bodies of the token and UserInfo endpoints.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages;
use crate::oauth::error::{AuthorizeError, TokenError, TokenErrorCode};
use crate::oauth::reply::{AuthorizationResponse, ResponseMode};
use lanyard_core::ServiceError;
use lanyard_core::passkeys::Ceremony;

/// Sends `params` to the client, with `extra` headers (cookies).
pub(crate) fn to_client(
    uri: &str,
    mode: ResponseMode,
    params: &[(&'static str, String)],
    extra: HeaderMap,
) -> Response {
    match mode {
        ResponseMode::FormPost => pages::form_post(uri, params, extra),
        ResponseMode::Query => {
            let mut url = uri.to_owned();
            if !params.is_empty() {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&form_urlencoded_pairs(params));
            }
            let mut headers = extra;
            match HeaderValue::from_str(&url) {
                Ok(location) => {
                    headers.insert(header::LOCATION, location);
                }
                Err(_) => {
                    return pages::error(
                        StatusCode::BAD_REQUEST,
                        "Cannot return to the application",
                        "The application's address cannot be used.",
                    );
                }
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            // 303: the browser follows with GET, never re-POSTing the sign-in form (RFC 9700 §4.12).
            (StatusCode::SEE_OTHER, headers).into_response()
        }
    }
}

fn form_urlencoded_pairs(params: &[(&'static str, String)]) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const QUERY: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    params
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A successful authorization response.
pub(crate) fn success(response: &AuthorizationResponse, extra: HeaderMap) -> Response {
    let to = &response.to;
    to_client(to.redirect_uri.as_str(), to.mode, &response.params, extra)
}

/// An authorization error: a page, a redirect to the client, or 503. The one place an
/// [`AuthorizeError`] becomes a response.
impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            AuthorizeError::Page { title, message } => {
                pages::error(StatusCode::BAD_REQUEST, title, &message)
            }
            AuthorizeError::Unavailable(detail) => {
                tracing::error!(%detail, "authorization failed: a dependency is down");
                pages::unavailable()
            }
            AuthorizeError::Redirect {
                to,
                code,
                description,
            } => {
                let params = to.params(vec![
                    ("error", code.to_owned()),
                    ("error_description", description),
                ]);
                to_client(to.redirect_uri.as_str(), to.mode, &params, HeaderMap::new())
            }
        }
    }
}

/// Headers on every token response (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let status = match self.code {
            TokenErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            TokenErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            TokenErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            TokenErrorCode::InvalidRequest
            | TokenErrorCode::InvalidGrant
            | TokenErrorCode::UnauthorizedClient
            | TokenErrorCode::UnsupportedGrantType
            | TokenErrorCode::InvalidScope
            | TokenErrorCode::InvalidTarget
            | TokenErrorCode::UnsupportedResponseType
            | TokenErrorCode::InvalidRequestObject
            | TokenErrorCode::AuthorizationPending
            | TokenErrorCode::SlowDown
            | TokenErrorCode::AccessDenied
            | TokenErrorCode::ExpiredToken
            | TokenErrorCode::InvalidDpopProof
            | TokenErrorCode::UseDpopNonce => StatusCode::BAD_REQUEST,
        };
        let body = Json(
            serde_json::json!({ "error": self.code.as_str(), "error_description": self.description }),
        );
        let mut response = (status, no_store(), body).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: 401 carries the challenge for the scheme the client can use.
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="lanyard""#),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// An RFC 6750 §3 bearer-token error: status, `WWW-Authenticate`, and a JSON body with the
/// same `error`.
pub(crate) fn bearer_error(
    status: StatusCode,
    error: Option<&str>,
    description: Option<&str>,
    scope: Option<&str>,
) -> Response {
    let mut challenge = r#"Bearer realm="lanyard""#.to_owned();
    let quote = |s: &str| s.replace(['"', '\\'], "'");
    if let Some(e) = error {
        challenge.push_str(&format!(r#", error="{e}""#));
    }
    if let Some(d) = description {
        challenge.push_str(&format!(r#", error_description="{}""#, quote(d)));
    }
    if let Some(s) = scope {
        challenge.push_str(&format!(r#", scope="{s}""#));
    }
    // No `null` members: what does not apply is left out.
    let body = match (error, description) {
        (Some(e), Some(d)) => serde_json::json!({ "error": e, "error_description": d }),
        (Some(e), None) => serde_json::json!({ "error": e }),
        (None, _) => serde_json::json!({ "error_description": "an access token is required" }),
    };
    let mut response = (status, no_store(), Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// A refusal of a token sent with the `DPoP` scheme, or of its proof (RFC 9449 §7.1): 401
/// with a `DPoP` challenge naming the algorithms proofs may use, and with nonces required,
/// the nonce to use next.
pub(crate) fn dpop_error(
    state: &crate::state::AppState,
    error: &str,
    description: &str,
) -> Response {
    let challenge = format!(
        r#"DPoP realm="lanyard", error="{error}", error_description="{}", algs="{}""#,
        description.replace(['"', '\\'], "'"),
        lanyard_rp::dpop::ALGORITHMS.join(" ")
    );
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut response = (StatusCode::UNAUTHORIZED, no_store(), Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    if let Some(nonce) = crate::dpop::nonce(state)
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        headers.insert("dpop-nonce", value);
    }
    response
}

/// Every `DPoP` header's value (one is expected; an unreadable one reads as empty).
pub(crate) fn dpop_proofs(headers: &axum::http::HeaderMap) -> Vec<&str> {
    headers
        .get_all("dpop")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect()
}

/// A ceremony as the script wants it.
pub(crate) fn ceremony_json(ceremony: Ceremony) -> Response {
    let mut response = Json(serde_json::json!({
        "ceremony": ceremony.id,
        "options": ceremony.options,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A refusal the script shows: `{"error", "error_description"}`.
pub(crate) fn json_refusal(status: StatusCode, description: &str) -> Response {
    let mut response = (
        status,
        Json(serde_json::json!({
            "error": if status.is_server_error() { "temporarily_unavailable" } else { "invalid_request" },
            "error_description": description,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The script's form failed its CSRF check (the page is old, or not ours): 403.
pub(crate) fn expired_form_json() -> Response {
    json_refusal(
        StatusCode::FORBIDDEN,
        "This page has expired. Reload it and try again.",
    )
}

pub(crate) fn service_refusal(e: &ServiceError) -> Response {
    match e {
        ServiceError::Unavailable(_) => json_refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is briefly unavailable. Try again in a moment.",
        ),
        other => json_refusal(StatusCode::BAD_REQUEST, &other.to_string()),
    }
}

/// One of Lanyard's own static files (stylesheet, scripts), cached an hour.
pub(crate) fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}
