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
use super::reply::{ceremony_json, expired_form_json, json_refusal, service_refusal};
use super::{cookies, pages};
use crate::oauth::consent;
use crate::oauth::error::AuthorizeError;
use crate::oauth::logout;
use crate::oauth::signin::{Credentials, SignInOutcome, authenticate};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::ServiceError;
use lanyard_core::factors;
use lanyard_core::lockout::{self, Key};
use lanyard_core::model::{Acr, FactorKind, amr_with};
use lanyard_core::session::{device, utc};

/// The account page's own address.
const ACCOUNT: &str = "/account";

/// The browser's live session; `Err(true)`: it had one that ended.
pub(super) async fn current(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Result<Session, bool>, Response> {
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
                Some("factor-added") => Some("Two-step verification is on."),
                Some("factor-removed") => Some("That sign-in method was removed."),
                Some("passkey-added") => {
                    Some("Your passkey was added. Next time, sign in with it.")
                }
                Some("welcome") => Some(
                    "Welcome! Your password is set and you are signed in. Add a passkey below (your new password confirms it) to sign in without typing a password.",
                ),
                Some("email-sent") => Some(
                    "We mailed you a link. Your address changes (or is confirmed) once you follow it.",
                ),
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
        let factors = lanyard_core::factors::list(state, &session.sub).await?;
        Ok::<_, AuthorizeError>((user, sessions, apps, factors))
    }
    .await;
    let (user, sessions, apps, (factors, recovery_left)) = match loaded {
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
            has_email: user.email.is_some(),
            email_verified: user.email_verified,
            pending_email: user.pending_email.as_deref(),
            notice,
            error,
            csrf: &csrf,
            sessions: rows,
            apps,
            passkey_confirmed: passkey_confirmed(state, session),
            factors: factors
                .iter()
                .map(|f| pages::FactorRow {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    kind: match f.kind {
                        FactorKind::Totp => "Authenticator app",
                        FactorKind::Passkey => "Passkey",
                    },
                    added: utc(f.created_at),
                    last_used: f.last_used_at.map_or_else(|| "never".to_owned(), utc),
                })
                .collect(),
            recovery_left,
            mfa_required: state.config.mfa_required,
        },
        status,
        extra,
    )
}

pub(super) fn sign_in_page(
    state: &AppState,
    headers: &HeaderMap,
    message: Option<&str>,
    username: &str,
    status: StatusCode,
) -> Response {
    sign_in_for(
        state,
        headers,
        "to your account",
        message,
        username,
        status,
        HeaderMap::new(),
    )
}

/// The account sign-in page, saying what it is for (`lead`), with `extra` headers.
pub(super) fn sign_in_for(
    state: &AppState,
    headers: &HeaderMap,
    lead: &str,
    message: Option<&str>,
    username: &str,
    status: StatusCode,
    mut extra: HeaderMap,
) -> Response {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    if let Some(set) = set {
        extra.append(header::SET_COOKIE, set);
    }
    let mut response = pages::scripted_form(
        &pages::AccountSignInPage {
            lead,
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
    form_in_session(
        state,
        headers,
        body,
        "Nothing was changed. Open your account page and sign in again.",
    )
    .await
}

/// [`checked_form`] from a person with a live session; without one, a 401 page saying
/// `what_next`.
pub(super) async fn form_in_session(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    what_next: &str,
) -> Result<(Params, Session), Response> {
    let form = checked_form(state, headers, body).map_err(|r| *r)?;
    match current(state, headers).await? {
        Ok(session) => Ok((form, session)),
        Err(_) => Err(pages::unauthorized(
            &state.config,
            "Your session has expired",
            what_next,
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
        // The account page asks for what the deployment asks of everyone.
        if state.config.mfa_required {
            Acr::Mfa
        } else {
            Acr::Pwd
        },
    )
    .await
    {
        Ok(Ok(session)) => {
            let remember_for = remember_me.then_some(state.config.lifetimes.remember_me_max);
            let mut response = cookies::after_sign_in(&state.config, &state.server_keys, &headers);
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
        Ok(Err(SignInOutcome::SecondStep(pending))) => {
            super::mfa::second_step(&state, &headers, &pending, None, None, None).await
        }
        Ok(Err(SignInOutcome::Unmet)) => sign_in_page(
            &state,
            &headers,
            Some("Sign in with your passkey."),
            &username,
            StatusCode::OK,
        ),
        Ok(Err(SignInOutcome::SignedIn { .. })) => {
            cookies::after_sign_in(&state.config, &state.server_keys, &headers)
        }
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

/// The person of `session`, once they have typed their current password (`typed`) right.
/// Guessing it here is guessing it at sign-in: counted the same way, before the hash runs.
async fn confirm_password(
    state: &AppState,
    session: &Session,
    typed: Option<&str>,
    client_at: &str,
) -> Result<lanyard_core::model::User, Refusal> {
    let say = |m: &str| Refusal::Say(m.to_owned());
    let down = |_| Refusal::Page(pages::unavailable());
    let user = state
        .db
        .users()
        .by_sub(&session.sub)
        .await
        .map_err(|_| Refusal::Page(pages::unavailable()))?
        .ok_or_else(|| say("This account no longer exists."))?;
    let keys = Key::signin(&user.username, Some(client_at));
    if let Err(wait) = lockout::attempt(state, &keys).await.map_err(down)? {
        return Err(Refusal::Say(format!(
            "Too many failed attempts. Wait {} and try again.",
            lockout::wait_text(wait)
        )));
    }
    let current_ok = state
        .passwords
        .verify(typed.unwrap_or(""), Some(&user.password_hash))
        .await
        .map_err(|_| Refusal::Page(pages::unavailable()))?;
    if !current_ok {
        return Err(say(
            "Your current password is not right. Nothing was changed.",
        ));
    }
    lockout::clear_all(state, &keys).await.map_err(down)?;
    Ok(user)
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
    let user = confirm_password(state, session, form.get("current"), client_at).await?;
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

/// `GET /account/mfa/totp`: the setup page for an authenticator app.
pub(crate) async fn totp_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match current(&state, &headers).await {
        Ok(Ok(session)) => session,
        Ok(Err(_)) => return Redirect::to(ACCOUNT).into_response(),
        Err(response) => return response,
    };
    let user = match state.db.users().by_sub(&session.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to(ACCOUNT).into_response(),
        Err(e) => return AuthorizeError::from(e).into_response(),
    };
    match factors::new_totp(&state, &user.username) {
        Ok(setup) => totp_form(&state, &headers, &session, &setup, None),
        Err(e) => AuthorizeError::from(e).into_response(),
    }
}

fn totp_form(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    setup: &factors::TotpSetup,
    message: Option<&str>,
) -> Response {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    super::mfa::enrol_page(
        state,
        &super::mfa::EnrolForm {
            client_name: "",
            account: true,
            action: "/account/mfa/totp",
            pending: None,
            authorization_request: None,
        },
        &session.sub,
        setup,
        &csrf,
        message,
        extra,
    )
}

/// `POST /account/mfa/totp`: `password` (confirming it is them), `enrolment` (the seed the
/// page showed), `code`, and an optional `name`. The first factor comes with recovery codes,
/// shown once; the session counts as two-factor from then on.
pub(crate) async fn totp(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let Some(seed) =
        super::mfa::open_seed(&state, &session.sub, form.get("enrolment").unwrap_or(""))
    else {
        return Redirect::to("/account/mfa/totp").into_response();
    };
    let ip = client_at.ip.to_string();
    let user = match confirm_password(&state, &session, form.get("password"), &ip).await {
        Ok(user) => user,
        Err(refusal) => return retry_totp(&state, &headers, &session, seed, refusal).await,
    };
    let name = form.get("name").unwrap_or("");
    let code = form.get("code").unwrap_or("");
    let added = match factors::enrol_totp(&state, &user.sub, name, &seed, code).await {
        Ok(Some(factor)) => factor,
        Ok(None) => {
            let say = Refusal::Say(
                "That code is not right. Check that your app shows codes for this account and enter the current one.".to_owned(),
            );
            return retry_totp(&state, &headers, &session, seed, say).await;
        }
        Err(ServiceError::Field { message, .. }) => {
            return retry_totp(&state, &headers, &session, seed, Refusal::Say(message)).await;
        }
        Err(e) => return AuthorizeError::from(e).into_response(),
    };
    let amr = amr_with(&session.amr, &["otp"]);
    if let Err(e) = state
        .store
        .strengthen_session(session.sid.as_str(), amr, state.clock.now())
        .await
    {
        return AuthorizeError::from(e).into_response();
    }
    let first = match factors::list(&state, &user.sub).await {
        Ok((all, left)) => all.len() == 1 && all[0].id == added.id && left == 0,
        Err(e) => return AuthorizeError::from(e).into_response(),
    };
    if !first {
        return back("factor-added");
    }
    match factors::new_recovery_codes(&state, &user.sub, &user.sub).await {
        Ok(codes) => recovery_page(&codes, Some("Two-step verification is on.")),
        Err(e) => AuthorizeError::from(e).into_response(),
    }
}

/// The setup page again with the same seed (no scanning twice), saying why.
async fn retry_totp(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    seed: Vec<u8>,
    refusal: Refusal,
) -> Response {
    let message = match refusal {
        Refusal::Say(message) => message,
        Refusal::Page(response) => return response,
    };
    let username = match state.db.users().by_sub(&session.sub).await {
        Ok(Some(user)) => user.username,
        Ok(None) => return Redirect::to(ACCOUNT).into_response(),
        Err(e) => return AuthorizeError::from(e).into_response(),
    };
    match factors::totp_setup(state, &username, seed) {
        Ok(setup) => totp_form(state, headers, session, &setup, Some(&message)),
        Err(e) => AuthorizeError::from(e).into_response(),
    }
}

fn recovery_page(codes: &[String], notice: Option<&str>) -> Response {
    pages::form(
        &pages::RecoveryCodesPage {
            notice,
            codes,
            continue_to: ACCOUNT,
            continue_name: "",
        },
        HeaderMap::new(),
    )
}

/// [`signed_in_form`] whose `password` field is the person's current password (counted as
/// a sign-in attempt); a wrong one is said on the account page.
async fn confirmed_form(
    state: &AppState,
    client_at: std::net::IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Session, lanyard_core::model::User), Response> {
    let (form, session) = signed_in_form(state, headers, body).await?;
    let ip = client_at.to_string();
    match confirm_password(state, &session, form.get("password"), &ip).await {
        Ok(user) => Ok((form, session, user)),
        Err(Refusal::Say(message)) => Err(refused(state, headers, &session, &message).await),
        Err(Refusal::Page(response)) => Err(response),
    }
}

/// The account page again, saying why nothing was done.
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    message: &str,
) -> Response {
    render(
        state,
        headers,
        session,
        None,
        Some(message),
        StatusCode::BAD_REQUEST,
    )
    .await
}

/// `POST /account/email`: `email` (the new address) and `password`. The address waits until
/// the link mailed to it is followed; the old one is told.
pub(crate) async fn change_email(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session, user) = match confirmed_form(&state, client_at.ip, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let new = form.get("email").unwrap_or("");
    match lanyard_core::email::change_email(&state, &user.sub, new, &user.sub).await {
        Ok(_) => back("email-sent"),
        Err(ServiceError::Field { message, .. } | ServiceError::Invalid(message)) => {
            let message = format!("{message}. Nothing was changed.");
            refused(&state, &headers, &session, &message).await
        }
        Err(_) => pages::unavailable(),
    }
}

/// `POST /account/email/verify`: a new link to confirm the address on file.
pub(crate) async fn send_verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    match lanyard_core::email::send_verification(&state, &session.sub, &session.sub).await {
        Ok(_) => back("email-sent"),
        Err(ServiceError::Field { message, .. } | ServiceError::Conflict(message)) => {
            refused(&state, &headers, &session, &message).await
        }
        Err(_) => pages::unavailable(),
    }
}

/// `POST /account/mfa/remove`: `factor` and `password`.
pub(crate) async fn remove_factor(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session, user) = match confirmed_form(&state, client_at.ip, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let factor = form.get("factor").unwrap_or("");
    match factors::remove(&state, &user.sub, factor, &user.sub).await {
        Ok(()) => back("factor-removed"),
        Err(ServiceError::Invalid(message) | ServiceError::NotFound(message)) => {
            refused(&state, &headers, &session, &message).await
        }
        Err(e) => AuthorizeError::from(e).into_response(),
    }
}

/// `POST /account/mfa/recovery`: `password`; ten new recovery codes, shown once.
pub(crate) async fn new_recovery_codes(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, session, user) = match confirmed_form(&state, client_at.ip, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    match factors::has_second_factor(&state, &user.sub).await {
        Ok(true) => {}
        Ok(false) => {
            let message = "Recovery codes stand in for your authenticator app: set one up first.";
            return refused(&state, &headers, &session, message).await;
        }
        Err(e) => return AuthorizeError::from(e).into_response(),
    }
    match factors::new_recovery_codes(&state, &user.sub, &user.sub).await {
        Ok(codes) => recovery_page(&codes, None),
        Err(e) => AuthorizeError::from(e).into_response(),
    }
}

/// `POST /account/passkeys/options`: `csrf` and `password` (confirming it is them); the
/// options for `navigator.credentials.create()`, as JSON for `assets/passkeys.js`.
pub(crate) async fn passkey_options(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(form) = checked_form(&state, &headers, &body) else {
        return expired_form_json();
    };
    let session = match current(&state, &headers).await {
        Ok(Ok(session)) => session,
        Ok(Err(_)) => {
            return pages::with_cookie_challenge(
                &state.config,
                json_refusal(
                    StatusCode::UNAUTHORIZED,
                    "Your session has expired. Reload the page and sign in again.",
                ),
            );
        }
        Err(response) => return response,
    };
    let ip = client_at.ip.to_string();
    // Confirmed by the password, or by a passkey used to sign in a moment ago.
    let typed = form.get("password").filter(|p| !p.is_empty());
    let user = if typed.is_none() && passkey_confirmed(&state, &session) {
        match state.db.users().by_sub(&session.sub).await {
            Ok(Some(user)) => user,
            Ok(None) => {
                return json_refusal(StatusCode::BAD_REQUEST, "This account no longer exists.");
            }
            Err(e) => return service_refusal(&e.into()),
        }
    } else {
        match confirm_password(&state, &session, typed, &ip).await {
            Ok(user) => user,
            Err(Refusal::Say(message)) => return json_refusal(StatusCode::BAD_REQUEST, &message),
            Err(Refusal::Page(response)) => return response,
        }
    };
    match lanyard_core::passkeys::start_registration(&state, &user).await {
        Ok(ceremony) => ceremony_json(ceremony),
        Err(e) => service_refusal(&e),
    }
}

/// How recently a passkey sign-in confirms it is the person, in place of the password.
const PASSKEY_CONFIRMS_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// Whether `session` began (or was strengthened) with a passkey within the last five minutes.
fn passkey_confirmed(state: &AppState, session: &Session) -> bool {
    let with_passkey = session.amr.iter().any(|a| a == "hwk" || a == "swk");
    with_passkey && state.clock.now() < session.auth_time.plus(PASSKEY_CONFIRMS_FOR)
}

/// `POST /account/passkeys`: `ceremony`, `credential` (the browser's answer) and an optional
/// `name`: the passkey is added.
pub(crate) async fn add_passkey(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, session) = match signed_in_form(&state, &headers, &body).await {
        Ok(f) => f,
        Err(response) => return response,
    };
    let user = match state.db.users().by_sub(&session.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to(ACCOUNT).into_response(),
        Err(e) => return AuthorizeError::from(e).into_response(),
    };
    let added = lanyard_core::passkeys::finish_registration(
        &state,
        &user,
        form.get("ceremony").unwrap_or(""),
        form.get("credential").unwrap_or(""),
        form.get("name").unwrap_or(""),
    )
    .await;
    match added {
        Ok(_) => back("passkey-added"),
        Err(ServiceError::Unavailable(_)) => pages::unavailable(),
        Err(e) => {
            let message = format!("The passkey was not added: {e}");
            refused(&state, &headers, &session, &message).await
        }
    }
}
