//! `/account`: the person's own page on the issuer: who they are, where they are signed in
//! (sign out one session or everywhere), the apps they allowed (withdraw), and their
//! password (change it, optionally ending their other sessions). Signing in here needs no
//! app: `POST /account/signin`. Every form is CSRF-checked (double submit) and needs a live
//! session; the page runs the timeout warning.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use lanyard_store::Session;

use super::forms::{browser, checked_form, refusal_status};
use super::forwarded::ClientIp;
use super::{cookies, pages};
use crate::oauth::consent;
use crate::oauth::error::AuthorizeError;
use crate::oauth::logout;
use crate::oauth::signin::{Credentials, SignInOutcome, authenticate};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::ServiceError;
use lanyard_core::lockout::{self, Key};
use lanyard_core::session::{device, utc};

/// The account page's own address.
const ACCOUNT: &str = "/account";

/// The browser's live session; `Err(true)`: it had one that ended.
async fn current(state: &AppState, headers: &HeaderMap) -> Result<Result<Session, bool>, Response> {
    let Some(sid) = cookies::session_sid(&state.config, &state.server_keys, headers) else {
        return Ok(Err(false));
    };
    match state.store.session(&sid).await {
        Ok(Some(s)) => Ok(Ok(s)),
        Ok(None) => Ok(Err(true)),
        Err(_) => Err(pages::unavailable()),
    }
}

/// `GET /account`.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let session = match current(&state, &headers).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    match session {
        Ok(session) => {
            let done = Params::parse(query.unwrap_or_default().as_bytes())
                .ok()
                .and_then(|p| p.get("done").map(str::to_owned));
            let notice = match done.as_deref() {
                Some("password") => Some("Your password was changed."),
                Some("withdrawn") => Some("The app's access was withdrawn."),
                Some("ended") => Some("That session was signed out."),
                _ => None,
            };
            render(&state, &headers, &session, notice, None, StatusCode::OK).await
        }
        Err(expired) => sign_in_page(
            &state,
            &headers,
            expired.then_some("Your session has expired. Sign in again to continue."),
            "",
            StatusCode::OK,
        ),
    }
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    notice: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let loaded = async {
        let user = state.db.users().by_sub(&session.sub).await?;
        let sessions = state.store.user_sessions(&session.sub).await?;
        let consents = state.db.consents().of_user(&session.sub).await?;
        let mut apps = Vec::new();
        for c in consents {
            let name = state
                .db
                .clients()
                .get(&c.client_id)
                .await?
                .map_or_else(|| c.client_id.clone(), |client| client.settings.name);
            apps.push(pages::AppRow {
                client_id: c.client_id,
                name,
                scopes: c.scopes.iter().map(|s| consent::describe(s)).collect(),
            });
        }
        Ok::<_, AuthorizeError>((user, sessions, apps))
    }
    .await;
    let (user, sessions, apps) = match loaded {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let Some(user) = user else {
        return pages::unauthorized(
            &state.config,
            "This account no longer exists",
            "Sign in again with another account.",
        );
    };
    let rows = sessions
        .iter()
        .rev()
        .map(|s| pages::SessionRow {
            sid: s.sid.to_string(),
            device: device(s.user_agent.as_deref()),
            ip: s
                .ip
                .clone()
                .unwrap_or_else(|| "an unknown address".to_owned()),
            signed_in: utc(s.auth_time),
            last_seen: utc(s.last_seen),
            remember_me: s.remember_me,
            current: s.sid == session.sid,
        })
        .collect();
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    pages::account(
        &pages::AccountPage {
            username: &user.username,
            name: user.display_name.as_deref().unwrap_or("(not set)"),
            email: user.email.as_deref().unwrap_or("(not set)"),
            notice,
            error,
            csrf: &csrf,
            sessions: rows,
            apps,
        },
        status,
        extra,
    )
}

fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    message: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    let mut response = pages::form(
        &pages::AccountSignInPage {
            message,
            csrf: &csrf,
            username,
        },
        extra,
    );
    *response.status_mut() = status;
    response
}

/// [`checked_form`] from a person with a live session.
async fn signed_in_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Session), Response> {
    let form = checked_form(state, headers, body).map_err(|r| *r)?;
    match current(state, headers).await? {
        Ok(session) => Ok((form, session)),
        Err(_) => Err(pages::unauthorized(
            &state.config,
            "Your session has expired",
            "Nothing was changed. Open your account page and sign in again.",
        )),
    }
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("{ACCOUNT}?done={done}")).into_response()
}

/// `POST /account/signin`.
pub(crate) async fn signin(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match checked_form(&state, &headers, &body) {
        Ok(f) => f,
        Err(response) => return *response,
    };
    let username = form.get("username").unwrap_or("").to_owned();
    let remember_me = form.get("remember_me").is_some();
    let credentials = Credentials {
        username: &username,
        password: form.get("password").unwrap_or(""),
        remember_me,
    };
    match authenticate(
        &state,
        "account",
        credentials,
        &browser(&headers, client_at.ip),
    )
    .await
    {
        Ok(Ok(session)) => {
            let remember_for = remember_me.then_some(state.config.lifetimes.remember_me_max);
            let mut response = Redirect::to(ACCOUNT).into_response();
            let h = response.headers_mut();
            h.append(
                header::SET_COOKIE,
                cookies::set_session(
                    &state.config,
                    &state.server_keys,
                    session.sid.as_str(),
                    remember_for,
                ),
            );
            h.append(header::SET_COOKIE, cookies::clear_csrf(&state.config));
            response
        }
        Ok(Err(SignInOutcome::Refused {
            message,
            retry_after,
            forbidden,
        })) => {
            let mut page =
                sign_in_page(&state, &headers, Some(&message), &username, StatusCode::OK);
            refusal_status(&mut page, retry_after, forbidden);
            page
        }
        Ok(Err(SignInOutcome::SignedIn { .. })) => Redirect::to(ACCOUNT).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /account/sessions/end`: `sid` (one of the person's sessions) or `all`.
pub(crate) async fn end_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let targets: Vec<String> = if form.get("all").is_some() {
        match state.store.user_sessions(&session.sub).await {
            Ok(all) => all.iter().map(|s| s.sid.to_string()).collect(),
            Err(_) => return pages::unavailable(),
        }
    } else {
        let Some(sid) = form.get("sid") else {
            return back("ended");
        };
        // Only the person's own: any other sid is not found, and nothing happens.
        match state.store.session(sid).await {
            Ok(Some(s)) if s.sub == session.sub => vec![sid.to_owned()],
            Ok(_) => return back("ended"),
            Err(_) => return pages::unavailable(),
        }
    };
    for sid in &targets {
        if let Err(e) = logout::end(&state, &session.sub, sid).await {
            return e.into_response();
        }
    }
    if targets.iter().any(|sid| *sid == session.sid.as_str()) {
        let mut extra = HeaderMap::new();
        extra.append(header::SET_COOKIE, cookies::clear_session(&state.config));
        return pages::signed_out("", None, extra);
    }
    back("ended")
}

/// `POST /account/apps/withdraw`: `client_id`.
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let Some(client_id) = form.get("client_id") else {
        return back("withdrawn");
    };
    match lanyard_core::consents::withdraw(&state, &session.sub, client_id).await {
        Ok(_) => back("withdrawn"),
        Err(e) => AuthorizeError::from(e).into_response(),
    }
}

/// `POST /account/password`: `current`, `new`, `confirm`, and `end_others`.
pub(crate) async fn password(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let ip = client_at.ip.to_string();
    match change_password(&state, &form, &session, &ip).await {
        Ok(()) => back("password"),
        Err(Refusal::Say(message)) => {
            render(
                &state,
                &headers,
                &session,
                None,
                Some(&message),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(Refusal::Page(response)) => response,
    }
}

/// Why a password was not changed.
enum Refusal {
    /// Tell the person, on the account page.
    Say(String),
    /// A page of its own (a 503).
    Page(Response),
}

async fn change_password(
    state: &AppState,
    form: &Params,
    session: &Session,
    client_at: &str,
) -> Result<(), Refusal> {
    let say = |m: &str| Refusal::Say(m.to_owned());
    let down = |_| Refusal::Page(pages::unavailable());
    let user = state
        .db
        .users()
        .by_sub(&session.sub)
        .await
        .map_err(|_| Refusal::Page(pages::unavailable()))?
        .ok_or_else(|| say("This account no longer exists."))?;
    // Guessing the current password here is guessing it at sign-in: counted the same way,
    // before the hash runs.
    let keys = Key::signin(&user.username, Some(client_at));
    if let Err(wait) = lockout::attempt(state, &keys).await.map_err(down)? {
        return Err(Refusal::Say(format!(
            "Too many failed attempts. Wait {} and try again.",
            lockout::wait_text(wait)
        )));
    }
    let current_ok = state
        .passwords
        .verify(form.get("current").unwrap_or(""), Some(&user.password_hash))
        .await
        .map_err(|_| Refusal::Page(pages::unavailable()))?;
    if !current_ok {
        return Err(say(
            "Your current password is not right. Nothing was changed.",
        ));
    }
    lockout::clear_all(state, &keys).await.map_err(down)?;
    let new = form.get("new").unwrap_or("");
    if form.get("confirm") != Some(new) {
        return Err(say("The two new passwords differ. Nothing was changed."));
    }
    match lanyard_core::users::set_password(state, &user.sub, new, &user.sub).await {
        Ok(()) => {}
        Err(ServiceError::Field { message, .. } | ServiceError::Invalid(message)) => {
            return Err(Refusal::Say(format!("{message}. Nothing was changed.")));
        }
        Err(_) => return Err(Refusal::Page(pages::unavailable())),
    }
    if form.get("end_others").is_some() {
        let others = state.store.user_sessions(&user.sub).await.map_err(down)?;
        for other in others.iter().filter(|s| s.sid != session.sid) {
            logout::end(state, &user.sub, other.sid.as_str())
                .await
                .map_err(|e| Refusal::Page(e.into_response()))?;
        }
    }
    Ok(())
}
