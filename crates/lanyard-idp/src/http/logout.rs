//! `GET|POST /logout`: the end-session endpoint (OpenID Connect RP-Initiated Logout 1.0),
//! and the confirmation form it shows, which posts back here.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::forms::read_params;
use super::{cookies, pages, reply};
use crate::oauth::logout::{self, Next};
use crate::oauth::reply::ResponseMode;
use crate::params::Params;
use crate::state::AppState;

/// The confirmation form's field that carries the original request.
const LOGOUT_REQUEST: &str = "logout_request";
/// The confirmation form's marker field (`yes`).
const CONFIRM: &str = "confirm";

/// The end-session endpoint (§2: GET and POST).
pub(crate) async fn end_session(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let config = &state.config;
    let params = match read_params(&method, &headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    // Our own confirmation form, posted back: the person said yes.
    // (`confirm` marks it: the carried request may be empty, and an empty value reads as
    // absent.)
    let (params, confirmed) = match params.get(CONFIRM) {
        Some("yes") if method == Method::POST => {
            let inner = params.get(LOGOUT_REQUEST).unwrap_or("");
            let expired = || {
                pages::error(
                    StatusCode::FORBIDDEN,
                    "This sign-out form has expired",
                    "For your security the form could not be accepted, and you are still signed in. Go back to the application and sign out again.",
                )
            };
            if params.duplicated().is_some()
                || !cookies::csrf_matches(config, &headers, params.get("csrf"))
            {
                return expired();
            }
            match Params::parse(inner.as_bytes()) {
                Ok(inner) => (inner, true),
                Err(_) => return expired(),
            }
        }
        _ => (params, false),
    };
    let request = match logout::validate(&state, &params).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let session = match cookies::session_sid(config, &state.server_keys, &headers) {
        None => None,
        Some(sid) => match state.store.session(&sid).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "sign-out: the session could not be read");
                return pages::unavailable();
            }
        },
    };
    if !confirmed && logout::decide(&request, session.as_ref()) == Next::Confirm {
        let (csrf, set) = cookies::csrf_for_form(config, &headers);
        let mut extra = HeaderMap::new();
        if let Some(set) = set {
            extra.insert(header::SET_COOKIE, set);
        }
        return pages::form(
            &pages::LogoutPage {
                client_name: request.client.as_ref().map(|c| c.name.as_str()),
                csrf: &csrf,
                logout_request: &params.encoded(),
            },
            extra,
        );
    }
    if let Some(session) = &session
        && let Err(e) = logout::sign_out(&state, session).await
    {
        return e.into_response();
    }
    let mut extra = HeaderMap::new();
    extra.append(header::SET_COOKIE, cookies::clear_session(config));
    if confirmed {
        extra.append(header::SET_COOKIE, cookies::clear_csrf(config));
    }
    match request.redirect() {
        Some((uri, state_param)) => {
            let params: Vec<(&'static str, String)> = state_param
                .map(|s| vec![("state", s.to_owned())])
                .unwrap_or_default();
            reply::to_client(uri, ResponseMode::Query, &params, extra)
        }
        None => pages::signed_out(
            request.client.as_ref().map_or("", |c| c.name.as_str()),
            request.redirect_uri.as_deref(),
            extra,
        ),
    }
}
