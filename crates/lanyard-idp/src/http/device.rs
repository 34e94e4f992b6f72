//! The device authorization grant's two HTTP faces (RFC 8628): `POST /device_authorization`,
//! where a device asks (§3.1), and `/device`, the page where the person approves or denies
//! it with their SSO session (§3.3), signing in first when they have none.
//!
//! Every code typed is counted before it is looked up (`lockout::Key::DeviceCodeEntry`: a
//! few free, then waits, then the rest of the hour), right or wrong, so a guesser cannot
//! reset the count with a code of their own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lanyard_store::Session;

use super::account::{current, form_in_session, sign_in_for};
use super::forms::refusal_status;
use super::reply::no_store;
use super::{cookies, pages};
use crate::oauth::consent::describe;
use crate::oauth::device::{self, Waiting};
use crate::oauth::discovery::paths;
use crate::oauth::error::AuthorizeError;
use crate::oauth::request::least_acr;
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::lockout::{self, Key};
use lanyard_core::model::Acr;

/// `POST /device_authorization`: a client (public ones by their `client_id`) asks for a
/// device code and a user code.
pub(crate) async fn authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let started = async {
        let (client, params, _) =
            super::token::client_request(&state, &headers, query.as_deref(), &body).await?;
        device::start(&state, &client, &params).await
    };
    match started.await {
        Ok(answer) => (no_store(), Json(answer)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /device[?user_code=…]`: the code form, or (with a code, as `verification_uri_complete`
/// gives it) the request to approve. Signed out: the sign-in page, which comes back here.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let typed = Params::parse(query.unwrap_or_default().as_bytes())
        .ok()
        .and_then(|p| p.get("user_code").map(str::to_owned));
    let session = match current(&state, &headers).await {
        Ok(Ok(session)) => session,
        Ok(Err(expired)) => return sign_in_first(&state, &headers, typed.as_deref(), expired),
        Err(response) => return response,
    };
    match typed {
        Some(typed) => look_up(&state, &headers, &session, &typed).await,
        None => code_form(&state, &headers, &session, None, "").await,
    }
}

/// `POST /device`: the code the person typed.
pub(crate) async fn enter(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    look_up(
        &state,
        &headers,
        &session,
        form.get("user_code").unwrap_or(""),
    )
    .await
}

/// `POST /device/decide`: approve or deny.
pub(crate) async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let typed = form.get("user_code").unwrap_or("");
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "This form could not be read",
                "It did not say whether to approve or deny. Go back and choose one.",
            );
        }
    };
    let waiting = match counted_find(&state, &session, typed).await {
        Ok(Found::Waiting(w)) => w,
        Ok(Found::Nothing) => {
            return code_form(&state, &headers, &session, Some(GONE), typed).await;
        }
        Ok(Found::Blocked(wait)) => {
            return blocked(&state, &headers, &session, typed, wait).await;
        }
        Err(e) => return e.into_response(),
    };
    if approve && Acr::of(&session.amr) < least_acr(&waiting.client, &state.config) {
        return too_weak(&waiting);
    }
    let decided = if approve {
        device::approve(&state, &waiting, &session).await
    } else {
        device::deny(&state, &waiting, &session).await
    };
    match decided {
        Ok(true) if approve => pages::done(
            "Device approved",
            &format!(
                "{} is signing in on your device. You can close this page and go back to it.",
                waiting.client.name
            ),
            ("/account", "Open your account"),
            HeaderMap::new(),
        ),
        Ok(true) => pages::done(
            "Device denied",
            &format!(
                "{} gets nothing on that device. If you did not start this, nothing more is needed.",
                waiting.client.name
            ),
            ("/account", "Open your account"),
            HeaderMap::new(),
        ),
        Ok(false) => code_form(&state, &headers, &session, Some(GONE), typed).await,
        Err(e) => e.into_response(),
    }
}

const GONE: &str = "That code is not waiting for approval: it may be mistyped, expired (codes last a few minutes), or already used. Check the code on your device, or start again there for a new one.";

/// What a counted lookup found.
enum Found {
    Waiting(Box<Waiting>),
    Nothing,
    /// Too many codes typed: wait this long.
    Blocked(std::time::Duration),
}

/// Counts the code, then looks it up.
async fn counted_find(
    state: &AppState,
    session: &Session,
    typed: &str,
) -> Result<Found, AuthorizeError> {
    let key = [Key::DeviceCodeEntry(session.sub.clone())];
    if let Err(wait) = lockout::attempt(state, &key).await? {
        return Ok(Found::Blocked(wait));
    }
    Ok(match device::find(state, typed).await? {
        Some(waiting) => Found::Waiting(Box::new(waiting)),
        None => Found::Nothing,
    })
}

async fn look_up(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    typed: &str,
) -> Response {
    match counted_find(state, session, typed).await {
        Ok(Found::Waiting(waiting)) => confirm(state, headers, session, &waiting).await,
        Ok(Found::Nothing) => code_form(state, headers, session, Some(GONE), typed).await,
        Ok(Found::Blocked(wait)) => blocked(state, headers, session, typed, wait).await,
        Err(e) => e.into_response(),
    }
}

async fn blocked(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    typed: &str,
    wait: std::time::Duration,
) -> Response {
    let message = format!(
        "Too many codes were entered. Wait {} and try again.",
        lockout::wait_text(wait)
    );
    let mut page = code_form(state, headers, session, Some(&message), typed).await;
    refusal_status(&mut page, Some(wait), false);
    page
}

/// The signed-out person: the sign-in page, which brings them back to this code.
fn sign_in_first(
    state: &AppState,
    headers: &HeaderMap,
    typed: Option<&str>,
    expired: bool,
) -> Response {
    let back = match typed.and_then(lanyard_store::UserCode::parse) {
        Some(code) => format!("{}?user_code={}", paths::DEVICE, code.display()),
        None => paths::DEVICE.to_owned(),
    };
    let mut extra = HeaderMap::new();
    extra.append(
        header::SET_COOKIE,
        cookies::set_next(
            &state.config,
            &state.server_keys,
            &back,
            state.config.lifetimes.device_code,
        ),
    );
    sign_in_for(
        state,
        headers,
        "to connect your device",
        expired.then_some("Your session has expired. Sign in again to connect your device."),
        "",
        StatusCode::OK,
        extra,
    )
}

/// The form asking for the code (again, with `error`).
async fn code_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    error: Option<&str>,
    typed: &str,
) -> Response {
    let username = match username(state, session).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let typed: String = typed.chars().take(20).collect();
    render(state, headers, &username, None, error, &typed)
}

/// The request, to approve or deny.
async fn confirm(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    waiting: &Waiting,
) -> Response {
    let username = match username(state, session).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let row = pages::DeviceRow {
        client_name: waiting.client.name.clone(),
        user_code: waiting.user_code.display(),
        scopes: waiting.scope.iter().map(|s| describe(s)).collect(),
        first_party: waiting.client.first_party,
    };
    render(state, headers, &username, Some(row), None, "")
}

fn render(
    state: &AppState,
    headers: &HeaderMap,
    username: &str,
    waiting: Option<pages::DeviceRow>,
    error: Option<&str>,
    typed: &str,
) -> Response {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    pages::form(
        &pages::DevicePage {
            username,
            csrf: &csrf,
            waiting,
            error,
            typed,
        },
        extra,
    )
}

async fn username(state: &AppState, session: &Session) -> Result<String, Response> {
    match state.db.users().by_sub(&session.sub).await {
        Ok(Some(user)) => Ok(user.username),
        Ok(None) => Err(pages::unauthorized(
            &state.config,
            "This account no longer exists",
            "Sign in again with another account.",
        )),
        Err(_) => Err(pages::unavailable()),
    }
}

async fn signed_in_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Session), Response> {
    form_in_session(
        state,
        headers,
        body,
        "Nothing was approved. Open the device page again and sign in.",
    )
    .await
}

/// The app needs two factors and this sign-in had one.
fn too_weak(waiting: &Waiting) -> Response {
    pages::error_with_link(
        StatusCode::FORBIDDEN,
        "This app needs two-step verification",
        &format!(
            "{} may only be approved by a sign-in with a second factor (a passkey or a one-time code). Sign out, sign in again with your second factor, and enter the code again.",
            waiting.client.name
        ),
        ("/account", "Open your account"),
    )
}
