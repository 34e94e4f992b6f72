//! HTML pages: sign-in, errors, and the form-post response. Every page is sent with headers
//! that forbid framing (RFC 9700 §4.16), sniffing and caching.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use lanyard_core::config::Config;
use lanyard_core::crypto::random_token;

#[derive(Template)]
#[template(path = "signin.html")]
pub(crate) struct SignInPage<'a> {
    pub(crate) client_name: &'a str,
    pub(crate) message: Option<&'a str>,
    pub(crate) csrf: &'a str,
    pub(crate) authorization_request: &'a str,
    pub(crate) username: &'a str,
    pub(crate) remember_me: bool,
}

#[derive(Template)]
#[template(path = "signin_code.html")]
pub(crate) struct CodePage<'a> {
    /// The app (empty on the account page).
    pub(crate) client_name: &'a str,
    pub(crate) username: &'a str,
    /// The app asked for more than the session's strength.
    pub(crate) step_up: bool,
    pub(crate) message: Option<&'a str>,
    pub(crate) csrf: &'a str,
    pub(crate) pending: &'a str,
    pub(crate) authorization_request: Option<&'a str>,
    /// Offer the code field (an authenticator app, or recovery codes left).
    pub(crate) codes: bool,
    /// Offer the passkey button.
    pub(crate) passkeys: bool,
}

#[derive(Template)]
#[template(path = "signin_enrol.html")]
pub(crate) struct EnrolPage<'a> {
    pub(crate) client_name: &'a str,
    /// From the account page (else within a sign-in).
    pub(crate) account: bool,
    pub(crate) message: Option<&'a str>,
    pub(crate) csrf: &'a str,
    /// Where the form goes.
    pub(crate) action: &'a str,
    pub(crate) pending: Option<&'a str>,
    /// The seed, sealed for the form.
    pub(crate) enrolment: &'a str,
    pub(crate) authorization_request: Option<&'a str>,
    /// The QR code of `uri`, as SVG.
    pub(crate) qr: &'a str,
    /// The seed in base32.
    pub(crate) secret: &'a str,
    pub(crate) uri: &'a str,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryCodesPage<'a> {
    pub(crate) notice: Option<&'a str>,
    pub(crate) codes: &'a [String],
    pub(crate) continue_to: &'a str,
    pub(crate) continue_name: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub(crate) client_name: &'a str,
    pub(crate) username: &'a str,
    pub(crate) scopes: Vec<String>,
    /// The APIs the app may call for the person (its registered `resources`), by name.
    pub(crate) resources: Vec<String>,
    pub(crate) csrf: &'a str,
    pub(crate) authorization_request: &'a str,
}

#[derive(Template)]
#[template(path = "account.html")]
pub(crate) struct AccountPage<'a> {
    pub(crate) username: &'a str,
    pub(crate) name: &'a str,
    pub(crate) email: &'a str,
    pub(crate) has_email: bool,
    pub(crate) email_verified: bool,
    /// An address waiting for its link to be followed.
    pub(crate) pending_email: Option<&'a str>,
    pub(crate) notice: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
    pub(crate) csrf: &'a str,
    pub(crate) sessions: Vec<SessionRow>,
    pub(crate) apps: Vec<AppRow>,
    pub(crate) factors: Vec<FactorRow>,
    pub(crate) recovery_left: u64,
    /// The deployment requires a second factor (the last one cannot be removed).
    pub(crate) mfa_required: bool,
    /// Signed in with a passkey a moment ago: adding a passkey needs no password.
    pub(crate) passkey_confirmed: bool,
}

/// A second factor as the account page lists it.
pub(crate) struct FactorRow {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    pub(crate) added: String,
    pub(crate) last_used: String,
}

/// A session as the account page lists it.
pub(crate) struct SessionRow {
    pub(crate) sid: String,
    pub(crate) device: String,
    pub(crate) ip: String,
    pub(crate) signed_in: String,
    pub(crate) last_seen: String,
    pub(crate) remember_me: bool,
    pub(crate) current: bool,
}

/// An app the person allowed.
pub(crate) struct AppRow {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) scopes: Vec<String>,
}

#[derive(Template)]
#[template(path = "device.html")]
pub(crate) struct DevicePage<'a> {
    pub(crate) username: &'a str,
    pub(crate) csrf: &'a str,
    /// The request to approve or deny; `None`: ask for the code.
    pub(crate) waiting: Option<DeviceRow>,
    /// Why the code typed was not taken.
    pub(crate) error: Option<&'a str>,
    /// What was typed, to correct it.
    pub(crate) typed: &'a str,
}

/// A device's request, as the device page shows it.
pub(crate) struct DeviceRow {
    pub(crate) client_name: String,
    pub(crate) user_code: String,
    pub(crate) scopes: Vec<String>,
    /// The company's own app (no consent to withdraw afterwards).
    pub(crate) first_party: bool,
}

#[derive(Template)]
#[template(path = "account_signin.html")]
pub(crate) struct AccountSignInPage<'a> {
    /// What the sign-in is for, under the heading.
    pub(crate) lead: &'a str,
    pub(crate) message: Option<&'a str>,
    pub(crate) csrf: &'a str,
    pub(crate) username: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub(crate) struct LogoutPage<'a> {
    pub(crate) client_name: Option<&'a str>,
    pub(crate) csrf: &'a str,
    pub(crate) logout_request: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage<'a> {
    client_name: &'a str,
    return_to: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    /// Where to go next: (address, words).
    link: Option<(&'a str, &'a str)>,
}

#[derive(Template)]
#[template(path = "forgot.html")]
pub(crate) struct ForgotPage<'a> {
    /// The request was taken: "Check your mail".
    pub(crate) sent: bool,
    pub(crate) message: Option<&'a str>,
    pub(crate) csrf: &'a str,
    /// How long a reset link works, in words.
    pub(crate) valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "set_password.html")]
pub(crate) struct SetPasswordPage<'a> {
    pub(crate) heading: &'a str,
    pub(crate) lead: &'a str,
    pub(crate) message: Option<&'a str>,
    pub(crate) csrf: &'a str,
    /// Where the form goes (`/reset-password`, `/invitation`).
    pub(crate) action: &'a str,
    /// The link's token, carried to the POST.
    pub(crate) token: &'a str,
    /// For password managers: whose password this is.
    pub(crate) username: &'a str,
    pub(crate) submit: &'a str,
}

#[derive(Template)]
#[template(path = "verify_email.html")]
pub(crate) struct VerifyEmailPage<'a> {
    pub(crate) address: &'a str,
    pub(crate) username: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) token: &'a str,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage<'a> {
    title: &'a str,
    message: &'a str,
    link: &'a str,
    link_label: &'a str,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    action: &'a str,
    fields: &'a [(&'static str, String)],
    nonce: &'a str,
}

/// What scripts a page may run.
#[derive(Clone, Copy)]
enum Scripts<'a> {
    /// None (most pages).
    None,
    /// One inline script with this nonce (the form-post response).
    Nonce(&'a str),
    /// Lanyard's own script files, which may call Lanyard (the account page's timeout
    /// warning).
    Own,
}

/// Headers every HTML page carries.
fn page_headers(scripts: Scripts<'_>) -> HeaderMap {
    let (script, connect) = match scripts {
        Scripts::None => ("'none'".to_owned(), "'none'"),
        Scripts::Nonce(n) => (format!("'nonce-{n}'"), "'none'"),
        Scripts::Own => ("'self'".to_owned(), "'self'"),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src {script}; connect-src {connect}; base-uri 'none'; frame-ancestors 'none'"
    );
    let mut h = HeaderMap::new();
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(header::CONTENT_SECURITY_POLICY, &csp);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CACHE_CONTROL, "no-store");
    h
}

fn render(status: StatusCode, template: &impl Template, scripts: Scripts<'_>) -> Response {
    match template.render() {
        Ok(body) => (status, page_headers(scripts), body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong. Try again.",
            )
                .into_response()
        }
    }
}

/// A page with a form (sign-in, consent, "Sign out?"), with `extra` headers (cookies).
pub(crate) fn form(page: &impl Template, extra: HeaderMap) -> Response {
    let mut response = render(StatusCode::OK, page, Scripts::None);
    response.headers_mut().extend(extra);
    response
}

/// A page with a form and Lanyard's own scripts (the passkey pages: `assets/passkeys.js`,
/// which asks Lanyard for a ceremony's options).
pub(crate) fn scripted_form(page: &impl Template, extra: HeaderMap) -> Response {
    let mut response = render(StatusCode::OK, page, Scripts::Own);
    response.headers_mut().extend(extra);
    response
}

/// "You are signed out", with a link back to the app when its address is registered.
pub(crate) fn signed_out(client_name: &str, return_to: Option<&str>, extra: HeaderMap) -> Response {
    form(
        &SignedOutPage {
            client_name,
            return_to,
        },
        extra,
    )
}

/// The account page: it runs the timeout warning (Lanyard's own script).
pub(crate) fn account(page: &AccountPage<'_>, status: StatusCode, extra: HeaderMap) -> Response {
    let mut response = render(status, page, Scripts::Own);
    response.headers_mut().extend(extra);
    response
}

/// A console page (`http/console/`): it runs the console's own script (confirmations, the
/// audit trail's live tail).
pub(crate) fn console(page: &impl Template, status: StatusCode, extra: HeaderMap) -> Response {
    let mut response = render(status, page, Scripts::Own);
    response.headers_mut().extend(extra);
    response
}

/// An error page: what happened, what to do next.
pub(crate) fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        title,
        message,
        link: None,
    };
    render(status, &page, Scripts::None)
}

/// An error page with a way on: `link` is (address, words).
pub(crate) fn error_with_link(
    status: StatusCode,
    title: &str,
    message: &str,
    link: (&str, &str),
) -> Response {
    let page = ErrorPage {
        title,
        message,
        link: Some(link),
    };
    render(status, &page, Scripts::None)
}

/// Something was done: what, and where to go next (`link`: address, words).
pub(crate) fn done(title: &str, message: &str, link: (&str, &str), extra: HeaderMap) -> Response {
    let page = DonePage {
        title,
        message,
        link: link.0,
        link_label: link.1,
    };
    form(&page, extra)
}

/// The page for a person whose session is gone: 401, and the challenge every 401 must carry
/// (RFC 9110 §11.6.1). Their credential here is the session cookie the sign-in form sets; no
/// registered scheme describes a form, so the challenge names the cookie, in the shape of
/// draft-broyer-http-cookie-auth.
pub(crate) fn unauthorized(config: &Config, title: &str, message: &str) -> Response {
    with_cookie_challenge(config, error(StatusCode::UNAUTHORIZED, title, message))
}

/// `response` (a 401) with the challenge that names the session cookie.
pub(crate) fn with_cookie_challenge(config: &Config, mut response: Response) -> Response {
    let challenge = format!(
        r#"Cookie realm="Lanyard", cookie-name="{}""#,
        super::cookies::session_name(config)
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The 503 page.
pub(crate) fn unavailable() -> Response {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is briefly unavailable",
        "Lanyard cannot reach one of its services right now. Wait a moment and try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The form-post response mode: a page that POSTs `fields` to `action` at once.
pub(crate) fn form_post(
    action: &str,
    fields: &[(&'static str, String)],
    extra: HeaderMap,
) -> Response {
    let nonce = random_token(16);
    let mut response = render(
        StatusCode::OK,
        &FormPostPage {
            action,
            fields,
            nonce: &nonce,
        },
        Scripts::Nonce(&nonce),
    );
    response.headers_mut().extend(extra);
    response
}
