//! `GET|POST /authorize` (a pushed request's `request_uri` too), `POST /par`, and
//! `POST /signin`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};

use super::forms::{browser, load, read_params, refusal_status, submitted};
use super::forwarded::ClientIp;
use super::{cookies, pages, reply};
use crate::oauth::authorize::{self, AfterSignIn, Next};
use crate::oauth::error::AuthorizeError;
use crate::oauth::par;
use crate::oauth::request::AuthorizationRequest;
use crate::oauth::request_object;
use crate::oauth::signin::mfa::{self, Pending};
use crate::oauth::signin::{Credentials, SignInOutcome, sign_in, unmet};
use crate::params::Params;
use crate::state::AppState;

/// The authorization endpoint (RFC 6749 §3.1: GET, and POST with a form body).
pub(crate) async fn authorize(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = match read_params(&method, &headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    // A pushed request (RFC 9126) comes as its request_uri: the request is the one pushed.
    let pushed = params
        .get("request_uri")
        .is_some_and(|u| u.starts_with(par::REQUEST_URI_PREFIX));
    let params = match par::resolve(&state, params).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // A signed request object (RFC 9101): the request is its claims.
    let params = match request_object::resolve(&state, params.clone()).await {
        Ok(Ok(p)) => p,
        Ok(Err(refused)) => {
            return request_object::refusal(&state, &params, refused)
                .await
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let request = match load(&state, &params).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if par::required_but_missing(&request.client, pushed) {
        return AuthorizeError::Redirect {
            to: request.reply.clone(),
            code: "invalid_request",
            description:
                "this application must push its authorization requests first (PAR, RFC 9126)"
                    .to_owned(),
        }
        .into_response();
    }
    match continue_request(&state, &headers, &request).await {
        Ok(Continue::Answered(response)) => response,
        Ok(Continue::Consent(session)) => {
            super::consent::show(
                &state,
                &headers,
                &request,
                &params,
                &session,
                HeaderMap::new(),
            )
            .await
        }
        Ok(Continue::SecondStep(pending)) => {
            second_step(&state, &headers, &pending, &request, &params).await
        }
        Ok(Continue::SignIn { expired }) => show_sign_in(
            &state,
            &headers,
            &request,
            &params,
            expired.then_some(SESSION_EXPIRED),
            request.login_hint.as_deref().unwrap_or(""),
            false,
        ),
        Err(e) => e.into_response(),
    }
}

/// `POST /par` (RFC 9126): a client pushes its authorization request, authenticated as at
/// the token endpoint; 201 with the `request_uri`.
pub(crate) async fn push(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let pushed = async {
        let (client, params, _) =
            super::token::client_request(&state, &headers, query.as_deref(), &body).await?;
        par::push(&state, client, &params).await
    };
    match pushed.await {
        Ok(answer) => (
            axum::http::StatusCode::CREATED,
            super::reply::no_store(),
            axum::Json(answer),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// Shown when the browser's session ended (timed out, or was ended elsewhere).
const SESSION_EXPIRED: &str = "Your session has expired. Sign in again to continue where you were.";

/// What became of a valid request.
enum Continue {
    /// Answered by single sign-on (or an error for the client).
    Answered(Response),
    /// Signed in, but the person must allow the app first.
    Consent(Box<lanyard_store::Session>),
    /// The person is signed in, but must give a second factor first (step-up).
    SecondStep(Box<Pending>),
    /// The person must sign in; `expired`: the browser had a session that has ended.
    SignIn { expired: bool },
}

/// Single sign-on when the session allows it; otherwise the sign-in page.
async fn continue_request(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
) -> Result<Continue, AuthorizeError> {
    let cookie = cookies::session_sid(&state.config, &state.server_keys, headers);
    let session = match &cookie {
        Some(sid) => state.store.session(sid).await?,
        None => None,
    };
    let expired = cookie.is_some() && session.is_none();
    let hint = match &request.id_token_hint {
        None => None,
        Some(token) => Some(
            state
                .keys
                .verify_id_token_hint(token, &state.config.issuer)
                .map_err(|_| AuthorizeError::Redirect {
                    to: request.reply.clone(),
                    code: "invalid_request",
                    description: "id_token_hint is not an ID token issued here".to_owned(),
                })?,
        ),
    };
    let required = request.required_acr(&state.config);
    match authorize::decide(request, session, hint.as_ref(), state.clock.now(), required)? {
        Next::Issue(session) => match authorize::proceed(state, request, &session).await? {
            AfterSignIn::Code(response) => Ok(Continue::Answered(reply::success(
                &response,
                HeaderMap::new(),
            ))),
            AfterSignIn::AskConsent => Ok(Continue::Consent(session)),
        },
        Next::StepUp(session) => {
            let Some(user) = state.db.users().by_sub(&session.sub).await? else {
                return Ok(Continue::SignIn { expired: true });
            };
            match mfa::next_step(state, &user, &session.amr, required).await? {
                Ok(Some(step)) => {
                    let sid = Some(session.sid.to_string());
                    let pending = mfa::pending(
                        state,
                        &user,
                        session.amr.clone(),
                        session.remember_me,
                        sid,
                        step,
                    );
                    Ok(Continue::SecondStep(Box::new(pending)))
                }
                // `decide` found the session too weak; nothing to add means nothing can be.
                Ok(None) | Err(()) => Err(unmet(request)),
            }
        }
        Next::SignIn => Ok(Continue::SignIn { expired }),
    }
}

/// The sign-in page for `request` again, saying `message` (a passkey that did not work).
pub(super) fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    params: &Params,
    message: Option<&str>,
) -> Response {
    let hint = request.login_hint.as_deref().unwrap_or("");
    show_sign_in(state, headers, request, params, message, hint, false)
}

fn show_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    params: &Params,
    message: Option<&str>,
    username: &str,
    remember_me: bool,
) -> Response {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let encoded: String = params.encoded();
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    pages::scripted_form(
        &pages::SignInPage {
            client_name: &request.client.name,
            message,
            csrf: &csrf,
            authorization_request: &encoded,
            username,
            remember_me,
        },
        extra,
    )
}

/// The second step of a sign-in for `request` (a code, or setting one up).
async fn second_step(
    state: &AppState,
    headers: &HeaderMap,
    pending: &Pending,
    request: &AuthorizationRequest,
    params: &Params,
) -> Response {
    let encoded = params.encoded();
    super::mfa::second_step(
        state,
        headers,
        pending,
        Some((request, &encoded)),
        None,
        None,
    )
    .await
}

/// The sign-in form's target.
pub(crate) async fn signin(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, params, request) = match submitted(&state, &headers, &body).await {
        Ok(read) => read,
        Err(response) => return *response,
    };
    let credentials = Credentials {
        username: form.get("username").unwrap_or(""),
        password: form.get("password").unwrap_or(""),
        remember_me: form.get("remember_me").is_some(),
    };
    let browser = browser(&headers, client_at.ip);
    let remember_me = credentials.remember_me;
    let username = credentials.username.to_owned();
    match sign_in(&state, &request, credentials, &browser).await {
        Ok(SignInOutcome::SignedIn { session, next }) => {
            let mut extra = HeaderMap::new();
            let remember_for = remember_me.then_some(state.config.lifetimes.remember_me_max);
            extra.append(
                header::SET_COOKIE,
                cookies::set_session(
                    &state.config,
                    &state.server_keys,
                    session.sid.as_str(),
                    remember_for,
                ),
            );
            super::consent::after_sign_in(
                &state, &headers, &request, &params, &session, next, extra,
            )
            .await
        }
        Ok(SignInOutcome::SecondStep(pending)) => {
            second_step(&state, &headers, &pending, &request, &params).await
        }
        Ok(SignInOutcome::Unmet) => unmet(&request).into_response(),
        Ok(SignInOutcome::Refused {
            message,
            retry_after,
            forbidden,
        }) => {
            let mut page = show_sign_in(
                &state,
                &headers,
                &request,
                &params,
                Some(&message),
                &username,
                remember_me,
            );
            refusal_status(&mut page, retry_after, forbidden);
            page
        }
        Err(e) => e.into_response(),
    }
}
