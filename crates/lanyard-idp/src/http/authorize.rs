//! `GET|POST /authorize` and `POST /signin`.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use super::{cookies, pages, reply};
use crate::oauth::authorize::{self, AfterSignIn, AuthorizationRequest, Next};
use crate::oauth::error::AuthorizeError;
use crate::oauth::params::Params;
use crate::oauth::signin::{Browser, Credentials, SignInOutcome, sign_in};
use crate::state::AppState;

/// The form field of the sign-in and consent pages that carries the authorization request.
const AUTHORIZATION_REQUEST: &str = "authorization_request";

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
    let request = match load(&state, &params).await {
        Ok(r) => r,
        Err(e) => return reply::authorize_error(e, &state.config.issuer),
    };
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
        Ok(Continue::SignIn { expired }) => show_sign_in(
            &state,
            &headers,
            &request,
            &params,
            expired.then_some(SESSION_EXPIRED),
            request.login_hint.as_deref().unwrap_or(""),
            false,
        ),
        Err(e) => reply::authorize_error(e, &state.config.issuer),
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
    /// The person must sign in; `expired`: the browser had a session that has ended.
    SignIn { expired: bool },
}

/// Parses the request's parameters: the query, and for POST a form body.
pub(crate) fn read_params(
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

pub(crate) fn is_form(headers: &HeaderMap) -> bool {
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
        .client(client_id)
        .await?
        .ok_or_else(authorize::unknown_client)?;
    authorize::validate(params, client)
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
    match authorize::decide(request, session, hint.as_ref(), state.clock.now())? {
        Next::Issue(session) => match authorize::proceed(state, request, &session).await? {
            AfterSignIn::Code(response) => Ok(Continue::Answered(reply::success(
                &response,
                HeaderMap::new(),
            ))),
            AfterSignIn::AskConsent => Ok(Continue::Consent(session)),
        },
        Next::SignIn => Ok(Continue::SignIn { expired }),
    }
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
    let encoded: String = form_urlencoded(params);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    pages::form(
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

pub(crate) fn form_urlencoded(params: &Params) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut pairs: Vec<(&str, &str)> = params.iter().collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
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
    let params =
        Params::parse(form.get(AUTHORIZATION_REQUEST).unwrap_or("").as_bytes()).map_err(|e| {
            Box::new(pages::error(
                StatusCode::BAD_REQUEST,
                "This form could not be read",
                &format!("{e}. Go back to the application and sign in again."),
            ))
        })?;
    let request = load(state, &params)
        .await
        .map_err(|e| Box::new(reply::authorize_error(e, &state.config.issuer)))?;
    Ok((form, params, request))
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
pub(super) fn browser(headers: &HeaderMap, peer: SocketAddr) -> Browser {
    Browser {
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        ip: Some(peer.ip().to_string()),
        request_id: headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

/// The sign-in form's target.
pub(crate) async fn signin(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
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
    let browser = browser(&headers, peer);
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
            match next {
                AfterSignIn::Code(response) => {
                    extra.append(header::SET_COOKIE, cookies::clear_csrf(&state.config));
                    reply::success(&response, extra)
                }
                // The consent form reuses the sign-in form's CSRF token.
                AfterSignIn::AskConsent => {
                    super::consent::show(&state, &headers, &request, &params, &session, extra).await
                }
            }
        }
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
        Err(e) => reply::authorize_error(e, &state.config.issuer),
    }
}
