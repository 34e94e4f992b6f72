//! The second step of a sign-in, as pages: `POST /signin/code` (a one-time or recovery
//! code) and `POST /signin/enrol` (setting up an authenticator app where one is required),
//! and the setup page the account page shares. The decisions are `oauth::signin::mfa`'s.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_store::Session;

use super::forms::{AUTHORIZATION_REQUEST, browser, carried_request, checked_form, refusal_status};
use super::forwarded::ClientIp;
use super::{consent, cookies, pages};
use crate::oauth::authorize::proceed;
use crate::oauth::request::AuthorizationRequest;
use crate::oauth::signin::SignInOutcome;
use crate::oauth::signin::mfa::{self, Pending, Step};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::factors::{self, TotpSetup};
use lanyard_core::model::FactorKind;

/// The second-step page for `pending` (`message`: why the last try failed).
pub(super) async fn second_step(
    state: &AppState,
    headers: &HeaderMap,
    pending: &Pending,
    request: Option<(&AuthorizationRequest, &str)>,
    message: Option<&str>,
    seed: Option<Vec<u8>>,
) -> Response {
    let (csrf, set) = cookies::csrf_for_form(&state.config, headers);
    let sealed = pending.seal(&state.server_keys, &csrf);
    let mut extra = HeaderMap::new();
    if let Some(set) = set {
        extra.insert(header::SET_COOKIE, set);
    }
    let client_name = request.map_or("", |(r, _)| r.client.name.as_str());
    let encoded = request.map(|(_, e)| e);
    match pending.step {
        Step::Code | Step::Passkey => {
            let (kinds, recovery_left) = match factors::list(state, &pending.sub).await {
                Ok((all, left)) => (all.into_iter().map(|f| f.kind).collect::<Vec<_>>(), left),
                Err(e) => return crate::oauth::error::AuthorizeError::from(e).into_response(),
            };
            let passkey_only = pending.step == Step::Passkey;
            pages::scripted_form(
                &pages::CodePage {
                    client_name,
                    username: &pending.username,
                    step_up: pending.sid.is_some(),
                    message,
                    csrf: &csrf,
                    pending: &sealed,
                    authorization_request: encoded,
                    codes: !passkey_only
                        && (kinds.contains(&FactorKind::Totp) || recovery_left > 0),
                    passkeys: kinds.contains(&FactorKind::Passkey),
                },
                extra,
            )
        }
        Step::Enrol => {
            let setup = match seed {
                Some(seed) => factors::totp_setup(state, &pending.username, seed),
                None => factors::new_totp(state, &pending.username),
            };
            match setup {
                Ok(setup) => enrol_page(
                    state,
                    &EnrolForm {
                        client_name,
                        account: false,
                        action: "/signin/enrol",
                        pending: Some(&sealed),
                        authorization_request: encoded,
                    },
                    &pending.sub,
                    &setup,
                    &csrf,
                    message,
                    extra,
                ),
                Err(e) => crate::oauth::error::AuthorizeError::from(e).into_response(),
            }
        }
    }
}

/// Where an enrolment form goes and what it carries besides the seed.
pub(super) struct EnrolForm<'a> {
    pub(super) client_name: &'a str,
    pub(super) account: bool,
    pub(super) action: &'a str,
    pub(super) pending: Option<&'a str>,
    pub(super) authorization_request: Option<&'a str>,
}

/// The setup page: the QR code, the key, the `code` field. The seed travels in the form,
/// sealed for `sub` (the page shows it anyway), so a wrong code does not mean scanning again.
pub(super) fn enrol_page(
    state: &AppState,
    form: &EnrolForm<'_>,
    sub: &str,
    setup: &TotpSetup,
    csrf: &str,
    message: Option<&str>,
    extra: HeaderMap,
) -> Response {
    let enrolment = seal_seed(state, sub, &setup.seed);
    let qr = qr_svg(&setup.uri);
    pages::form(
        &pages::EnrolPage {
            client_name: form.client_name,
            account: form.account,
            message,
            csrf,
            action: form.action,
            pending: form.pending,
            enrolment: &enrolment,
            authorization_request: form.authorization_request,
            qr: &qr,
            secret: &setup.secret,
            uri: &setup.uri,
        },
        extra,
    )
}

/// The MAC purpose of a seed being set up.
const ENROLMENT: &str = "totp-enrolment";

fn seal_seed(state: &AppState, sub: &str, seed: &[u8]) -> String {
    let value = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&(sub, seed)).unwrap_or_default());
    state.server_keys.seal_cookie(ENROLMENT, &value)
}

/// The seed a setup form carries, if the server sealed it for `sub`.
pub(super) fn open_seed(state: &AppState, sub: &str, sealed: &str) -> Option<Vec<u8>> {
    let value = state.server_keys.open_cookie(ENROLMENT, sealed)?;
    let json = URL_SAFE_NO_PAD.decode(value).ok()?;
    let (owner, seed): (String, Vec<u8>) = serde_json::from_slice(&json).ok()?;
    (owner == sub).then_some(seed)
}

/// `uri` as a QR code in SVG (dark modules on white, as scanners expect).
fn qr_svg(uri: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(192, 192)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// The second step's form, read: its fields, the pending sign-in, and the authorization
/// request it carries (none: the account page's sign-in).
struct StepForm {
    form: Params,
    pending: Pending,
    request: Option<(Params, AuthorizationRequest)>,
}

/// The pending sign-in a checked form carries (field `pending`, bound to the form's CSRF
/// token), if it carries one; `Err`: it carries one that has expired or is not this
/// browser's.
pub(super) fn pending_in(state: &AppState, form: &Params) -> Result<Option<Pending>, ()> {
    let Some(sealed) = form.get("pending") else {
        return Ok(None);
    };
    Pending::open(
        &state.server_keys,
        sealed,
        form.get("csrf").unwrap_or(""),
        state.clock.now(),
    )
    .map(Some)
    .ok_or(())
}

/// The page for a second step that came too late (or from another browser): 401.
pub(super) fn took_too_long(state: &AppState) -> Response {
    pages::unauthorized(
        &state.config,
        "Your sign-in took too long",
        "For your security, the second step must follow the first within five minutes. Go back to the app and sign in again.",
    )
}

/// What a sign-in is for in the audit trail: the app's client id, or `account`.
pub(super) fn audit_target(request: Option<&(Params, AuthorizationRequest)>) -> String {
    request.map_or_else(|| "account".to_owned(), |(_, r)| r.client.client_id.clone())
}

async fn read_step(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<StepForm, Response> {
    let form = checked_form(state, headers, body).map_err(|r| *r)?;
    let Ok(Some(pending)) = pending_in(state, &form) else {
        return Err(took_too_long(state));
    };
    let request = carried_request(state, &form).await.map_err(|r| *r)?;
    Ok(StepForm {
        form,
        pending,
        request,
    })
}

/// `POST /signin/code`: `code` (a one-time code or a recovery code), with `pending`.
pub(crate) async fn code(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let step = match read_step(&state, &headers, &body).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    if step.pending.step != Step::Code {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "This form could not be read",
            "Go back to the app and sign in again.",
        );
    }
    let target = audit_target(step.request.as_ref());
    let browser = browser(&headers, client_at.ip);
    let code = step.form.get("code").unwrap_or("");
    match mfa::complete(&state, &target, &step.pending, code, &browser).await {
        Ok(Ok(session)) => signed_in(&state, &headers, &step, &session).await,
        Ok(Err(outcome)) => refused(&state, &headers, &step, outcome, None).await,
        Err(e) => e.into_response(),
    }
}

/// `POST /signin/enrol`: `code` from the app just set up with the seed in `enrolment`.
pub(crate) async fn enrol(
    State(state): State<AppState>,
    ClientIp(client_at): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let step = match read_step(&state, &headers, &body).await {
        Ok(s) => s,
        Err(response) => return response,
    };
    let seed = open_seed(
        &state,
        &step.pending.sub,
        step.form.get("enrolment").unwrap_or(""),
    );
    let (Step::Enrol, Some(seed)) = (step.pending.step, seed) else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "This form could not be read",
            "Go back to the app and sign in again.",
        );
    };
    let target = audit_target(step.request.as_ref());
    let browser = browser(&headers, client_at.ip);
    let code = step.form.get("code").unwrap_or("");
    match mfa::complete_enrolment(&state, &target, &step.pending, &seed, code, &browser).await {
        Ok(Ok((session, codes))) => {
            let mut forget_next = None;
            let (continue_to, continue_name) = match &step.request {
                Some((params, request)) => (
                    format!("/authorize?{}", params.encoded()),
                    request.client.name.clone(),
                ),
                None => {
                    let (next, forget) =
                        cookies::take_next(&state.config, &state.server_keys, &headers);
                    forget_next = forget;
                    (next, String::new())
                }
            };
            let mut extra = HeaderMap::new();
            if let Some(forget) = forget_next {
                extra.append(header::SET_COOKIE, forget);
            }
            if step.pending.sid.is_none() {
                extra.append(header::SET_COOKIE, cookies::for_session(&state, &session));
            }
            pages::form(
                &pages::RecoveryCodesPage {
                    notice: Some("Two-step verification is on."),
                    codes: &codes,
                    continue_to: &continue_to,
                    continue_name: &continue_name,
                },
                extra,
            )
        }
        Ok(Err(outcome)) => refused(&state, &headers, &step, outcome, Some(seed)).await,
        Err(e) => e.into_response(),
    }
}

/// Signed in after the second step: on to the app (the code, or consent), or the account
/// page. A step-up keeps the browser's session cookie.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    step: &StepForm,
    session: &Session,
) -> Response {
    let mut extra = HeaderMap::new();
    if step.pending.sid.is_none() {
        extra.append(header::SET_COOKIE, cookies::for_session(state, session));
    }
    match &step.request {
        Some((params, request)) => match proceed(state, request, session).await {
            Ok(next) => {
                consent::after_sign_in(state, headers, request, params, session, next, extra).await
            }
            Err(e) => e.into_response(),
        },
        None => {
            let mut response = cookies::after_sign_in(&state.config, &state.server_keys, headers);
            for (name, value) in &extra {
                response.headers_mut().append(name, value.clone());
            }
            response
        }
    }
}

/// The second step again, saying why (429 with `Retry-After` while paused).
async fn refused(
    state: &AppState,
    headers: &HeaderMap,
    step: &StepForm,
    outcome: SignInOutcome,
    seed: Option<Vec<u8>>,
) -> Response {
    let SignInOutcome::Refused {
        message,
        retry_after,
        forbidden,
    } = outcome
    else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "Sign-in could not continue",
            "Go back to the app and sign in again.",
        );
    };
    let encoded = step
        .form
        .get(AUTHORIZATION_REQUEST)
        .map(str::to_owned)
        .unwrap_or_default();
    let request = step.request.as_ref().map(|(_, r)| (r, encoded.as_str()));
    let mut page = second_step(state, headers, &step.pending, request, Some(&message), seed).await;
    refusal_status(&mut page, retry_after, forbidden);
    page
}
