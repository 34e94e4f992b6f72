//! Signing in with a passkey: `POST /signin/passkey/options` (a ceremony's options, JSON, for
//! `assets/passkeys.js`) and `POST /signin/passkey` (the browser's answer, in an ordinary
//! form), with or without an authorization request to continue, and as the second step of a
//! sign-in (`pending`). `GET /assets/passkeys.js`. The checks are `lanyard_core::passkeys`'.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lanyard_store::Session;

use super::forms::{AUTHORIZATION_REQUEST, browser, carried_request, checked_form};
use super::forwarded::ClientIp;
use super::mfa::{audit_target, pending_in, took_too_long};
use super::reply::{ceremony_json, expired_form_json, json_refusal, service_refusal};
use super::{consent, cookies, pages};
use crate::oauth::authorize::proceed;
use crate::oauth::signin::mfa::{self, Pending};
use crate::oauth::signin::{Browser, start_session, unmet};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::ServiceError;
use lanyard_core::model::{Acr, AuditEvent, User};
use lanyard_core::passkeys::{self, PasskeySignIn};

/// `GET /assets/passkeys.js`.
pub(crate) async fn script() -> Response {
    super::reply::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/passkeys.js"),
    )
}

/// `POST /signin/passkey/options`: `csrf`, and `pending` for the second step or
/// `conditional=1` for autofill. The options for `navigator.credentials.get()`.
pub(crate) async fn options(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = checked_form(&state, &headers, &body) else {
        return expired_form_json();
    };
    let user = match pending_in(&state, &form) {
        Err(()) => {
            return pages::with_cookie_challenge(
                &state.config,
                json_refusal(
                    StatusCode::UNAUTHORIZED,
                    "Your sign-in took too long. Go back to the app and sign in again.",
                ),
            );
        }
        Ok(None) => None,
        Ok(Some(pending)) => match state.db.users().by_sub(&pending.sub).await {
            Ok(user) => user,
            Err(e) => return service_refusal(&e.into()),
        },
    };
    let conditional = form.get("conditional") == Some("1");
    match passkeys::start_sign_in(&state, user.as_ref(), conditional).await {
        Ok(ceremony) => ceremony_json(ceremony),
        Err(e) => service_refusal(&e),
    }
}

/// `POST /signin/passkey`: `csrf`, `ceremony`, `credential` (the browser's answer, JSON),
/// and `authorization_request` (an app's sign-in) and/or `pending` (the second step).
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match checked_form(&state, &headers, &body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let request = match carried_request(&state, &form).await {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let Ok(pending) = pending_in(&state, &form) else {
        return took_too_long(&state);
    };
    let browser = browser(&headers, client_at.ip);
    let target = audit_target(request.as_ref());
    let checked = passkeys::finish_sign_in(
        &state,
        form.get("ceremony").unwrap_or(""),
        form.get("credential").unwrap_or(""),
    )
    .await;
    let signed_in = match checked {
        Ok(s) => s,
        Err(ServiceError::Unavailable(_)) => return pages::unavailable(),
        Err(e) => {
            lanyard_core::metrics::signin("failure");
            let message = format!("Your passkey did not sign you in ({e}). Try again.");
            return again(
                &state,
                &headers,
                &form,
                pending.as_ref(),
                request.as_ref(),
                &message,
            )
            .await;
        }
    };
    let (session, new) = match &pending {
        Some(pending) => {
            match mfa::complete_with_passkey(&state, &target, pending, &signed_in, &browser).await {
                Ok(Ok(session)) => (session, pending.sid.is_none()),
                Ok(Err(crate::oauth::signin::SignInOutcome::Refused { message, .. })) => {
                    return again(
                        &state,
                        &headers,
                        &form,
                        Some(pending),
                        request.as_ref(),
                        &message,
                    )
                    .await;
                }
                Ok(Err(_)) => return pages::unavailable(),
                Err(e) => return e.into_response(),
            }
        }
        None => match passkey_session(&state, &target, &signed_in, &browser).await {
            Ok(Ok(session)) => (session, true),
            Ok(Err(message)) => {
                return again(&state, &headers, &form, None, request.as_ref(), &message).await;
            }
            Err(response) => return response,
        },
    };
    let mut extra = HeaderMap::new();
    if new {
        extra.append(header::SET_COOKIE, cookies::for_session(&state, &session));
    }
    match &request {
        Some((params, request)) => {
            // The app may ask for more than a passkey gives (nothing does today); never less.
            if Acr::of(&session.amr) < request.required_acr(&state.config) {
                return unmet(request).into_response();
            }
            match proceed(&state, request, &session).await {
                Ok(next) => {
                    consent::after_sign_in(&state, &headers, request, params, &session, next, extra)
                        .await
                }
                Err(e) => e.into_response(),
            }
        }
        None => {
            let mut response = cookies::after_sign_in(&state.config, &state.server_keys, &headers);
            for (name, value) in &extra {
                response.headers_mut().append(name, value.clone());
            }
            response
        }
    }
}

/// A new session for the person a passkey signed in (no password: a passkey with user
/// verification is two factors by itself). `Err(message)`: they may not sign in.
async fn passkey_session(
    state: &AppState,
    target: &str,
    signed_in: &PasskeySignIn,
    browser: &Browser,
) -> Result<Result<Session, String>, Response> {
    let user: User = match state.db.users().by_sub(&signed_in.sub).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => {
            return Ok(Err(crate::oauth::signin::DISABLED.to_owned()));
        }
        Err(e) => return Err(crate::oauth::error::AuthorizeError::from(e).into_response()),
    };
    let session = match start_session(state, &user, signed_in.amr.clone(), false, browser).await {
        Ok(s) => s,
        Err(e) => return Err(e.into_response()),
    };
    lanyard_core::metrics::signin("success");
    let event = AuditEvent::new(state.clock.now(), user.sub.clone(), "signin")
        .target(target)
        .request_id(browser.request_id.clone())
        .detail(serde_json::json!({
            "sid": session.sid,
            "amr": signed_in.amr,
            "acr": Acr::of(&signed_in.amr).as_str(),
            "passkey": signed_in.factor,
            "ip": browser.ip,
        }));
    state.audit.record(event).await;
    Ok(Ok(session))
}

/// The page the person came from, saying why the passkey did not sign them in.
async fn again(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
    pending: Option<&Pending>,
    request: Option<&(Params, crate::oauth::request::AuthorizationRequest)>,
    message: &str,
) -> Response {
    let encoded = form.get(AUTHORIZATION_REQUEST).unwrap_or("");
    let carried = request.map(|(_, r)| (r, encoded));
    match pending {
        Some(pending) => {
            super::mfa::second_step(state, headers, pending, carried, Some(message), None).await
        }
        None => {
            // As for a wrong password: the form again, saying why (200).
            match request {
                Some((params, request)) => {
                    super::authorize::sign_in_page(state, headers, request, params, Some(message))
                }
                None => {
                    super::account::sign_in_page(state, headers, Some(message), "", StatusCode::OK)
                }
            }
        }
    }
}
