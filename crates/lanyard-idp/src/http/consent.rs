//! The consent page (shown from `/authorize` and after sign-in) and `POST /consent`, where
//! the person's answer goes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lanyard_core::consents;
use lanyard_store::Session;

use super::forms::submitted;
use super::{cookies, pages, reply};
use crate::oauth::authorize::{self, AfterSignIn};
use crate::oauth::consent;
use crate::oauth::error::AuthorizeError;
use crate::oauth::request::AuthorizationRequest;
use crate::params::Params;
use crate::state::AppState;

/// The consent page for `request`, for the person of `session`, with `extra` headers (the
/// session cookie, right after sign-in).
pub(super) async fn show(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    params: &Params,
    session: &Session,
    mut extra: HeaderMap,
) -> Response {
    let username = match state.db.users().by_sub(&session.sub).await {
        Ok(user) => user.map_or_else(|| session.sub.clone(), |u| u.username),
        Err(e) => return AuthorizeError::from(e).into_response(),
    };
    // The APIs it may ask tokens for (RFC 8707), named as their operators named them.
    let mut resources = Vec::new();
    for id in &request.client.resources {
        match state.db.clients().get(id).await {
            Ok(Some(api)) => resources.push(api.name.clone()),
            Ok(None) => {}
            Err(e) => return AuthorizeError::from(e).into_response(),
        }
    }
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    if let Some(set) = set {
        extra.append(header::SET_COOKIE, set);
    }
    pages::form(
        &pages::ConsentPage {
            client_name: &request.client.name,
            username: &username,
            scopes: request
                .scope
                .values()
                .iter()
                .map(|s| consent::describe(s))
                .collect(),
            resources,
            csrf: &csrf,
            authorization_request: &params.encoded(),
        },
        extra,
    )
}

/// `POST /consent`: "Allow" records the consent and answers the app with a code; "Don't
/// allow" answers it `access_denied`.
pub(crate) async fn answer(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, _, request) = match submitted(&state, &headers, &body).await {
        Ok(read) => read,
        Err(response) => return *response,
    };
    let session = match cookies::session_sid(&state.config, &state.server_keys, &headers) {
        Some(sid) => match state.store.session(&sid).await {
            Ok(s) => s,
            Err(e) => return AuthorizeError::from(e).into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
        return pages::unauthorized(
            &state.config,
            "Your session has expired",
            "You were signed out before you answered. Go back to the application and sign in again.",
        );
    };
    let result = match form.get("decision") {
        Some("allow") => {
            let (sub, client_id) = (&session.sub, &request.client.client_id);
            match consents::grant(&state, sub, client_id, request.scope.values()).await {
                Ok(()) => authorize::issue_code(&state, &request, &session).await,
                Err(e) => Err(e.into()),
            }
        }
        Some("deny") => Err(AuthorizeError::Redirect {
            to: request.reply.clone(),
            code: "access_denied",
            description: "the user did not allow the application".to_owned(),
        }),
        _ => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "This form could not be read",
                "Choose Allow or Don't allow. Go back to the application and sign in again.",
            );
        }
    };
    let mut extra = HeaderMap::new();
    extra.append(header::SET_COOKIE, cookies::clear_csrf(&state.config));
    match result {
        Ok(response) => reply::success(&response, extra),
        Err(e) => e.into_response(),
    }
}

/// Signed in (by the form, or after its second step): the code for the app, or the consent
/// page first. `extra`: the session cookie, when it is new.
pub(super) async fn after_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    params: &Params,
    session: &lanyard_store::Session,
    next: AfterSignIn,
    mut extra: HeaderMap,
) -> Response {
    match next {
        AfterSignIn::Code(response) => {
            extra.append(header::SET_COOKIE, cookies::clear_csrf(&state.config));
            reply::success(&response, extra)
        }
        // The consent form reuses the sign-in form's CSRF token.
        AfterSignIn::AskConsent => show(state, headers, request, params, session, extra).await,
    }
}
