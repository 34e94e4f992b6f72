//! The forms of Lanyard's pages: reading an authorization request (query, or a POSTed
//! form), checking a form of ours (a form body, one value per field, the double-submit CSRF
//! token), and carrying an authorization request through the sign-in and consent pages.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{cookies, pages};
use crate::oauth::authorize;
use crate::oauth::error::AuthorizeError;
use crate::oauth::request::AuthorizationRequest;
use crate::oauth::signin::Browser;
use crate::params::Params;
use crate::state::AppState;

/// The form field of the sign-in and consent pages that carries the authorization request.
pub(super) const AUTHORIZATION_REQUEST: &str = "authorization_request";

/// Parses the request's parameters: the query, and for POST a form body.
pub(super) fn read_params(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Params, Box<Response>> {
    let broken = |what: &str| {
        Box::new(pages::error(
            StatusCode::BAD_REQUEST,
            "This sign-in link is broken",
            &format!("{what} Go back to the application and try again."),
        ))
    };
    let form = if method == Method::POST {
        if !is_form(headers) {
            return Err(broken(
                "The request is not a form (Content-Type must be application/x-www-form-urlencoded).",
            ));
        }
        Some(body)
    } else {
        None
    };
    authorize::parameters(query, form)
        .map_err(|e| broken(&format!("The request could not be read ({e}).")))
}

pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Identifies the client, loads it, and validates the request.
pub(super) async fn load(
    state: &AppState,
    params: &Params,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let (client_id, _) = authorize::identify(params)?;
    let client = state
        .db
        .clients()
        .get(client_id)
        .await?
        .ok_or_else(authorize::unknown_client)?;
    authorize::validate(params, client, &state.config.issuer)
}

/// A form of ours, checked: a form body, one value per field, and the double-submit CSRF
/// token (the cookie's value in the `csrf` field). Refused with a page otherwise.
pub(super) fn checked_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, Box<Response>> {
    let expired = || {
        Box::new(pages::error(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security the form could not be accepted, and nothing was done. Go back, reload the page and try again.",
        ))
    };
    if !is_form(headers) {
        return Err(expired());
    }
    let form = Params::parse(body).map_err(|_| expired())?;
    if form.duplicated().is_some()
        || !cookies::csrf_matches(&state.config, headers, form.get("csrf"))
    {
        return Err(expired());
    }
    Ok(form)
}

/// A form of ours that carries an authorization request (sign-in, consent), checked (see
/// [`checked_form`]; the CSRF check stops login CSRF): its fields, the request's
/// parameters, and the request validated again.
pub(super) async fn submitted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Params, AuthorizationRequest), Box<Response>> {
    let form = checked_form(state, headers, body)?;
    let (params, request) = carried(state, form.get(AUTHORIZATION_REQUEST).unwrap_or("")).await?;
    Ok((form, params, request))
}

/// The authorization request a checked form carries, if it carries one (the second step of a
/// sign-in serves apps and the account page alike), validated again.
pub(super) async fn carried_request(
    state: &AppState,
    form: &Params,
) -> Result<Option<(Params, AuthorizationRequest)>, Box<Response>> {
    match form.get(AUTHORIZATION_REQUEST) {
        None => Ok(None),
        Some(encoded) => carried(state, encoded).await.map(Some),
    }
}

async fn carried(
    state: &AppState,
    encoded: &str,
) -> Result<(Params, AuthorizationRequest), Box<Response>> {
    let params = Params::parse(encoded.as_bytes()).map_err(|e| {
        Box::new(pages::error(
            StatusCode::BAD_REQUEST,
            "This form could not be read",
            &format!("{e}. Go back to the application and sign in again."),
        ))
    })?;
    let request = load(state, &params)
        .await
        .map_err(|e| Box::new(e.into_response()))?;
    Ok((params, request))
}

/// The status of a sign-in page that refuses: 429 with `Retry-After` while attempts are
/// paused, 403 for a disabled account, else 200 (a form to fill in again).
pub(super) fn refusal_status(
    page: &mut Response,
    retry_after: Option<std::time::Duration>,
    forbidden: bool,
) {
    if let Some(wait) = retry_after {
        *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
    } else if forbidden {
        *page.status_mut() = StatusCode::FORBIDDEN;
    }
}

/// Where a sign-in comes from: `User-Agent`, client IP, request id.
pub(super) fn browser(headers: &HeaderMap, client_ip: IpAddr) -> Browser {
    Browser {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        ip: Some(client_ip.to_string()),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}
