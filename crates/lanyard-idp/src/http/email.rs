//! The pages mail links open, and "Forgot your password?":
//! - `GET/POST /signin/forgot`: one field, `username` (a username or an address); the answer
//!   is the same page whether or not an account matches, sent before anything is looked up;
//!   only the address's own request count can refuse it (429).
//! - `GET/POST /reset-password?token=`: a new password (`password`, `password_confirm`);
//!   every session of the person ends and every token is revoked.
//! - `GET/POST /invitation?token=`: the first password; the person is signed in (unless a
//!   second factor is required: then they sign in and set one up) and offered a passkey.
//! - `GET/POST /verify-email?token=`: a button, so a mail scanner that follows links
//!   confirms nothing.
//!
//! Opening a link (GET) uses nothing; each form (POST) is CSRF-checked and uses the link once.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::forms::{browser, checked_form, refusal_status};
use super::forwarded::ClientIp;
use super::{cookies, pages};
use crate::oauth::signin::start_session;
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::ServiceError;
use lanyard_core::email::{self, LinkError};
use lanyard_core::lockout;
use lanyard_core::model::{LinkPurpose, User};

/// The CSRF token for a form, and the cookie to set with it.
fn csrf(state: &AppState, headers: &HeaderMap) -> (String, HeaderMap) {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    (csrf, extra)
}

/// `GET /signin/forgot`.
pub(crate) async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    forgot(&state, &headers, false, None)
}

fn forgot(state: &AppState, headers: &HeaderMap, sent: bool, message: Option<&str>) -> Response {
    let (csrf, extra) = csrf(state, headers);
    let valid_for = lanyard_core::mail::span(state.config.mail.reset_lifetime);
    pages::form(
        &pages::ForgotPage {
            sent,
            message,
            csrf: &csrf,
            valid_for: &valid_for,
        },
        extra,
    )
}

/// `POST /signin/forgot`: `username`.
pub(crate) async fn forgot_request(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match checked_form(&state, &headers, &body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let typed = form.get("username").unwrap_or("").trim();
    if typed.is_empty() {
        let message = "Type your username or your e-mail address.";
        let mut page = forgot(&state, &headers, false, Some(message));
        *page.status_mut() = StatusCode::BAD_REQUEST;
        return page;
    }
    match email::request_reset(&state, typed, &client_at.ip.to_string()).await {
        Ok(Ok(())) => forgot(&state, &headers, true, None),
        Ok(Err(wait)) => {
            let message = format!(
                "Too many requests came from your network. Wait {} and try again, or ask your IT help desk.",
                lockout::wait_text(wait)
            );
            let mut page = forgot(&state, &headers, false, Some(&message));
            refusal_status(&mut page, Some(wait), false);
            page
        }
        Err(_) => pages::unavailable(),
    }
}

/// The `token` of a link's query.
fn token_of(query: Option<&str>) -> String {
    Params::parse(query.unwrap_or_default().as_bytes())
        .ok()
        .and_then(|p| p.get("token").map(str::to_owned))
        .unwrap_or_default()
}

/// The page for a link that cannot be used: what happened, what to do.
fn link_refused(error: &LinkError, purpose: LinkPurpose) -> Response {
    let again = match purpose {
        LinkPurpose::PasswordReset => (
            "Ask for a new link with \"Forgot your password?\" on the sign-in page.",
            ("/signin/forgot", "Ask for a new link"),
        ),
        LinkPurpose::Invitation => (
            "Ask whoever invited you to send a new invitation. If you set your password already, sign in.",
            ("/account", "Sign in"),
        ),
        LinkPurpose::VerifyEmail => (
            "Send a new link from your account page.",
            ("/account", "Open your account"),
        ),
    };
    let (status, title) = match error {
        LinkError::Unknown => (StatusCode::BAD_REQUEST, "This link does not work"),
        LinkError::Used => (StatusCode::GONE, "This link was used already"),
        LinkError::Expired => (StatusCode::GONE, "This link has expired"),
        LinkError::Stale => (StatusCode::GONE, "This link no longer applies"),
        LinkError::Service(ServiceError::Unavailable(_)) | LinkError::Service(_) => {
            return pages::unavailable();
        }
    };
    let message = format!("{} {}", capitalised(&error.to_string()), again.0);
    pages::error_with_link(status, title, &message, again.1)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().chain(chars).collect::<String>() + "."
    })
}

/// Which password page.
#[derive(Clone, Copy)]
enum Setting {
    Reset,
    Invitation,
}

impl Setting {
    fn purpose(self) -> LinkPurpose {
        match self {
            Self::Reset => LinkPurpose::PasswordReset,
            Self::Invitation => LinkPurpose::Invitation,
        }
    }
}

fn password_page(
    state: &AppState,
    headers: &HeaderMap,
    setting: Setting,
    user: &User,
    token: &str,
    message: Option<&str>,
) -> Response {
    let (csrf, extra) = csrf(state, headers);
    let (heading, lead, submit) = match setting {
        Setting::Reset => (
            "Choose a new password".to_owned(),
            format!(
                "for the account {}. Every device signed in to it will be signed out.",
                user.username
            ),
            "Set my new password",
        ),
        Setting::Invitation => (
            format!("Welcome, {}", user.name()),
            format!(
                "Choose the password of your account. Your username is {}.",
                user.username
            ),
            "Set my password",
        ),
    };
    let mut response = pages::form(
        &pages::SetPasswordPage {
            heading: &heading,
            lead: &lead,
            message,
            csrf: &csrf,
            action: email::path_of(setting.purpose()),
            token,
            username: &user.username,
            submit,
        },
        extra,
    );
    if message.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

async fn open_password_link(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    setting: Setting,
) -> Response {
    let token = token_of(query);
    match email::check_link(state, &token, setting.purpose()).await {
        Ok((_, user)) => password_page(state, headers, setting, &user, &token, None),
        Err(e) => link_refused(&e, setting.purpose()),
    }
}

/// `GET /reset-password?token=`.
pub(crate) async fn reset_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    open_password_link(&state, &headers, query.as_deref(), Setting::Reset).await
}

/// `GET /invitation?token=`.
pub(crate) async fn invitation_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    open_password_link(&state, &headers, query.as_deref(), Setting::Invitation).await
}

/// A refused password: the form again, the link still usable.
async fn password_refused(
    state: &AppState,
    headers: &HeaderMap,
    setting: Setting,
    token: &str,
    message: &str,
) -> Response {
    match email::check_link(state, token, setting.purpose()).await {
        Ok((_, user)) => password_page(state, headers, setting, &user, token, Some(message)),
        Err(e) => link_refused(&e, setting.purpose()),
    }
}

/// `POST /reset-password` and `POST /invitation`: `token`, `password`, `password_confirm`.
async fn set_password(
    state: &AppState,
    client_ip: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
    setting: Setting,
) -> Response {
    let form = match checked_form(state, headers, body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let token = form.get("token").unwrap_or("");
    let password = form.get("password").unwrap_or("");
    if let Some(confirm) = form.get("password_confirm")
        && confirm != password
    {
        let message = "The two passwords differ. Type the same password twice.";
        return password_refused(state, headers, setting, token, message).await;
    }
    let result = match setting {
        Setting::Reset => email::reset_password(state, token, password).await,
        Setting::Invitation => email::accept_invitation(state, token, password).await,
    };
    let user = match result {
        Ok(user) => user,
        Err(LinkError::Service(ServiceError::Field { message, .. }))
        | Err(LinkError::Service(ServiceError::Invalid(message))) => {
            let message = format!("{}. Choose another password.", capitalised(&message));
            return password_refused(state, headers, setting, token, &message).await;
        }
        Err(e) => return link_refused(&e, setting.purpose()),
    };
    let mut extra = HeaderMap::new();
    extra.insert(header::SET_COOKIE, cookies::clear_csrf(&state.config));
    match setting {
        Setting::Reset => pages::done(
            "Your password is set",
            "Every device that was signed in to your account is signed out, and your apps have been told. Sign in with your new password.",
            ("/account", "Sign in"),
            extra,
        ),
        Setting::Invitation if state.config.mfa_required => pages::done(
            "Your password is set",
            "Your organisation also asks for a second step when you sign in: sign in now to set it up.",
            ("/account", "Sign in"),
            extra,
        ),
        Setting::Invitation => {
            // They proved the address and chose the password a moment ago: signed in, as
            // after any sign-in with a password.
            let session = match start_session(
                state,
                &user,
                vec!["pwd".to_owned()],
                false,
                &browser(headers, client_ip),
            )
            .await
            {
                Ok(s) => s,
                Err(e) => return e.into_response(),
            };
            let mut response = Redirect::to("/account?done=welcome").into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookies::set_session(
                    &state.config,
                    &state.server_keys,
                    session.sid.as_str(),
                    None,
                ),
            );
            h.append(header::SET_COOKIE, cookies::clear_csrf(&state.config));
            response
        }
    }
}

/// `POST /reset-password`.
pub(crate) async fn reset(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_password(&state, client_at.ip, &headers, &body, Setting::Reset).await
}

/// `POST /invitation`.
pub(crate) async fn accept(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_password(&state, client_at.ip, &headers, &body, Setting::Invitation).await
}

/// `GET /verify-email?token=`: the address and a button.
pub(crate) async fn verify_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let token = token_of(query.as_deref());
    let (link, user) = match email::check_link(&state, &token, LinkPurpose::VerifyEmail).await {
        Ok(found) => found,
        Err(e) => return link_refused(&e, LinkPurpose::VerifyEmail),
    };
    let (csrf, extra) = csrf(&state, &headers);
    pages::form(
        &pages::VerifyEmailPage {
            address: &link.email,
            username: &user.username,
            csrf: &csrf,
            token: &token,
        },
        extra,
    )
}

/// `POST /verify-email`: `token`.
pub(crate) async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match checked_form(&state, &headers, &body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    match email::verify_email(&state, form.get("token").unwrap_or("")).await {
        Ok(user) => {
            let message = format!(
                "{} is now the confirmed address of {}.",
                user.email.as_deref().unwrap_or("Your address"),
                user.username
            );
            pages::done(
                "Address confirmed",
                &message,
                ("/account", "Open your account"),
                HeaderMap::new(),
            )
        }
        Err(e) => link_refused(&e, LinkPurpose::VerifyEmail),
    }
}
