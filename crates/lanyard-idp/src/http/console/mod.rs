//! The operators' console at `/console` (`docs/console.md`): server-rendered pages over the
//! core's services, for the people who run sign-in. The console signs operators in as any app
//! does, with `lanyard-rp`'s [`WebSignIn`]: it is the client `lanyard-console` (public, PKCE,
//! two factors), reaching this node's token endpoint over loopback
//! ([`SignInConfig::backchannel_url`]) while browsers go to the public address.
//!
//! Every page takes an [`Operator`]: a console session whose access token this node still
//! accepts (checked against the revocation lists at each request, so a revoked operator is
//! out at once), which carries the role `operator` of `lanyard-console` and a two-factor
//! sign-in. Every action is a CSRF-checked form that calls the same service as the admin API,
//! audited as `console:<sub>` of the operator; dangerous ones ask first ([`confirm`]).

mod apps;
mod audit;
mod groups;
mod keys;
mod people;
mod system;

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use lanyard_rp::signin::{SignInConfig, SignedIn, WebSignIn};
use tower::ServiceExt;

use super::forms::checked_form;
use super::{cookies, pages};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::ServiceError;
use lanyard_core::model::{Acr, User};
use lanyard_core::operators::{CONSOLE_CLIENT, OPERATOR_ROLE};
use lanyard_core::revocation::{self, LiveError};
use lanyard_core::tokens::AccessClaims;

/// Where the console is.
pub(super) const PREFIX: &str = "/console";

/// The console's routes, under [`PREFIX`].
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(sign_in_route))
        .route("/callback", get(sign_in_route))
        .route("/logout", get(sign_in_route).post(sign_in_route))
        .route("/backchannel-logout", post(sign_in_route))
        .merge(people::routes())
        .merge(apps::routes())
        .merge(keys::routes())
        .merge(audit::routes())
        .merge(groups::routes())
        .merge(system::routes())
}

/// `GET /console` and `/console/`: the people page is where most visits start.
pub(super) async fn home(_operator: Operator) -> Redirect {
    Redirect::to("/console/people")
}

/// `GET /assets/console.css`.
pub(super) async fn stylesheet() -> Response {
    super::reply::asset(
        "text/css; charset=utf-8",
        include_str!("../../../assets/console.css"),
    )
}

/// `GET /assets/console.js`: the audit trail's live tail (every page works without it).
pub(super) async fn script() -> Response {
    super::reply::asset(
        "text/javascript; charset=utf-8",
        include_str!("../../../assets/console.js"),
    )
}

/// The console's sign-in, made at its first use (discovery needs this node to be serving).
/// The console reaches the node over loopback at the address it listens on.
async fn sign_in(state: &AppState) -> Result<WebSignIn, Response> {
    if state.web().console.get().is_none() {
        match state.db.clients().get(CONSOLE_CLIENT).await {
            // Made under another issuer (the deployment moved)? Its addresses follow.
            Ok(Some(_)) => {
                if lanyard_core::operators::ensure_console(state, "system")
                    .await
                    .is_err()
                {
                    return Err(unavailable());
                }
            }
            Ok(None) => return Err(no_operators()),
            Err(_) => return Err(unavailable()),
        }
    }
    let made = state
        .web()
        .console
        .get_or_try_init(|| async {
            let mut config = SignInConfig::new(
                &state.config.issuer,
                CONSOLE_CLIENT,
                None,
                &state.config.url(PREFIX),
                CONSOLE_CLIENT,
            );
            config.scopes = vec!["openid".to_owned(), "profile".to_owned()];
            config.clock = state.clock.clone();
            config.backchannel_url = state.web().listening.get().map(|at| {
                let ip = match at.ip() {
                    std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                        std::net::Ipv4Addr::LOCALHOST.into()
                    }
                    std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                        std::net::Ipv6Addr::LOCALHOST.into()
                    }
                    ip => ip,
                };
                format!("http://{}", std::net::SocketAddr::new(ip, at.port()))
            });
            WebSignIn::discover(config).await
        })
        .await;
    match made {
        Ok(signin) => Ok(signin.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "the console could not reach this node's sign-in");
            Err(unavailable())
        }
    }
}

/// `/console/login`, `/callback`, `/logout`, `/backchannel-logout`: `lanyard-rp`'s routes.
async fn sign_in_route(State(state): State<AppState>, request: Request) -> Response {
    let signin = match sign_in(&state).await {
        Ok(signin) => signin,
        Err(response) => return response,
    };
    let routes = WebSignIn::routes::<WebSignIn>().with_state(signin);
    match routes.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// An operator at work: signed in to the console with two factors, holding the role, with a
/// token this node still accepts.
pub(super) struct Operator {
    /// Who.
    pub(super) user: User,
    /// The form token of their browser.
    pub(super) csrf: String,
    /// Gives the browser its form token, when it had none.
    set_csrf: Option<HeaderValue>,
}

impl Operator {
    /// How the audit trail names what they do.
    pub(super) fn actor(&self) -> String {
        format!("console:{}", self.user.sub)
    }

    /// What every page's frame shows.
    pub(super) fn nav(&self, section: &'static str) -> Nav {
        Nav {
            who: self
                .user
                .display_name
                .clone()
                .unwrap_or_else(|| self.user.username.clone()),
            section,
            csrf: self.csrf.clone(),
        }
    }

    /// A console page, with the form token's cookie when it is new.
    pub(super) fn page(&self, page: &impl Template) -> Response {
        self.page_with(StatusCode::OK, page)
    }

    /// [`page`](Self::page) with another status (a form sent back with its mistake).
    pub(super) fn page_with(&self, status: StatusCode, page: &impl Template) -> Response {
        let mut extra = HeaderMap::new();
        if let Some(set) = &self.set_csrf {
            extra.insert(header::SET_COOKIE, set.clone());
        }
        pages::console(page, status, extra)
    }

    /// A service's refusal as a page, with a way back to `back`.
    pub(super) fn refused(&self, e: ServiceError, back: &str) -> Response {
        let (status, title, message) = match &e {
            ServiceError::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("{e}. It may have been deleted a moment ago."),
            ),
            ServiceError::Invalid(_) | ServiceError::Field { .. } => (
                StatusCode::BAD_REQUEST,
                "That was not accepted",
                format!("{e}. Nothing was changed."),
            ),
            ServiceError::Conflict(_) => (
                StatusCode::CONFLICT,
                "That could not be done",
                format!("{e}. Nothing was changed."),
            ),
            _ => return unavailable(),
        };
        self.page_with(
            status,
            &Message {
                nav: self.nav(""),
                title,
                message: &message,
                back,
            },
        )
    }
}

/// What the frame of every console page shows.
pub(super) struct Nav {
    /// The operator's name.
    pub(super) who: String,
    /// The section the page belongs to (marked `aria-current`).
    pub(super) section: &'static str,
    /// For the sign-out form... and every other form of the page.
    pub(super) csrf: String,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct Message<'a> {
    nav: Nav,
    title: &'a str,
    message: &'a str,
    back: &'a str,
}

#[derive(Template)]
#[template(path = "console/forbidden.html")]
struct Forbidden<'a> {
    who: &'a str,
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct Confirm<'a> {
    nav: Nav,
    title: &'a str,
    message: &'a str,
    action: &'a str,
    /// The form's own fields, sent again.
    fields: Vec<(String, String)>,
    button: &'a str,
    back: &'a str,
}

/// The console is briefly unable to work: 503 with `Retry-After`.
fn unavailable() -> Response {
    let mut response = pages::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The console is briefly unavailable",
        "Lanyard cannot reach one of its services right now. Wait a moment and reload the page.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// Before anyone was made an operator, the console has no client to sign in with.
fn no_operators() -> Response {
    pages::error(
        StatusCode::NOT_FOUND,
        "No one may use the console yet",
        "The console opens to operators, and there are none yet. On a machine with Lanyard's configuration, run `lanyard operator add USERNAME` to make someone an operator, then come back.",
    )
}

/// The path the browser asked for (a nested route sees only its own part).
fn here(parts: &Parts) -> String {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or(&parts.uri, |o| &o.0)
        .path_and_query()
        .map_or_else(|| format!("{PREFIX}/"), |p| p.as_str().to_owned())
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signin = sign_in(state).await?;
        let signed = SignedIn::from_request_parts(parts, &signin)
            .await
            .map_err(IntoResponse::into_response)?;
        let here = here(parts);
        let claims = live_claims(state, &signin, &signed, &here).await?;
        let user = match lanyard_core::users::get(state, &signed.sub).await {
            Ok(user) => user,
            Err(ServiceError::NotFound(_)) => {
                return Err(signin.sign_in_first(&here, true).into_response());
            }
            Err(_) => return Err(unavailable()),
        };
        if user.disabled {
            // Disabling revokes their tokens too; this holds even if that failed.
            return Err(signin.sign_in_first(&here, true).into_response());
        }
        if !claims.roles.iter().any(|r| r == OPERATOR_ROLE) {
            return Err(forbidden(&user));
        }
        // Operators can end anyone's access: the console wants two factors.
        signed
            .require_acr(Acr::Mfa.as_str(), &here)
            .map_err(IntoResponse::into_response)?;
        let (csrf, set_csrf) = cookies::csrf_for_form(&state.config, &parts.headers);
        Ok(Self {
            user,
            csrf,
            set_csrf,
        })
    }
}

/// The claims of the console session's access token, if this node still accepts it; a
/// refused one is renewed once (a role taken away revokes it: the new one says so), and a
/// session that cannot be renewed signs in again.
async fn live_claims(
    state: &AppState,
    signin: &WebSignIn,
    signed: &SignedIn,
    here: &str,
) -> Result<AccessClaims, Response> {
    match revocation::live_access_token(state, &signed.access_token).await {
        Ok(claims) => return Ok(claims),
        Err(LiveError::Unavailable(_)) => return Err(unavailable()),
        Err(LiveError::Invalid(_)) => {}
    }
    let renewed = match signin.tokens_for(signed).renew(&signed.access_token).await {
        Ok(renewed) => renewed,
        // Refused: only signing in again helps.
        Err(lanyard_rp::client::ClientError::SignInAgain { .. }) => {
            return Err(signin.sign_in_first(here, true).into_response());
        }
        // The node could not be asked (briefly): not a reason to sign in again.
        Err(_) => return Err(unavailable()),
    };
    match revocation::live_access_token(state, &renewed).await {
        Ok(claims) => Ok(claims),
        Err(LiveError::Unavailable(_)) => Err(unavailable()),
        Err(LiveError::Invalid(_)) => Err(signin.sign_in_first(here, true).into_response()),
    }
}

/// The 403 page for a person who is signed in but is not an operator.
fn forbidden(user: &User) -> Response {
    let page = Forbidden {
        who: &user.username,
    };
    pages::console(&page, StatusCode::FORBIDDEN, HeaderMap::new())
}

/// A console form, checked (form body, one value per field, the CSRF token); refused with
/// the "form has expired" page otherwise.
pub(super) fn form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, Box<Response>> {
    checked_form(state, headers, body)
}

/// A dangerous action asks first: without `confirmed=yes` in its form, a page that says what
/// will happen and posts the same form again, confirmed.
pub(super) fn confirm(
    operator: &Operator,
    form: &Params,
    question: (&str, &str, &str),
    action: &str,
    back: &str,
) -> Option<Response> {
    if form.get("confirmed") == Some("yes") {
        return None;
    }
    let (title, message, button) = question;
    Some(
        operator.page(&Confirm {
            nav: operator.nav(""),
            title,
            message,
            action,
            fields: form
                .iter()
                .filter(|(k, _)| *k != "csrf" && *k != "confirmed")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            button,
            back,
        }),
    )
}

/// A dangerous action's form: checked ([`form`]) and confirmed ([`confirm`]); otherwise the
/// page to answer with (the form expired, or the question).
pub(super) fn confirmed(
    state: &AppState,
    operator: &Operator,
    (headers, body): (&HeaderMap, &[u8]),
    question: (&str, &str, &str),
    (action, back): (&str, &str),
) -> Result<Params, Box<Response>> {
    let form = form(state, headers, body)?;
    match confirm(operator, &form, question, action, back) {
        Some(ask) => Err(Box::new(ask)),
        None => Ok(form),
    }
}

/// Back to a page with what happened (`done` names a notice the page knows).
pub(super) fn done(path: &str, done: &str) -> Response {
    Redirect::to(&format!("{path}?done={done}")).into_response()
}

/// The `done` notice of a page's query, among `notices` (key, words).
pub(super) fn notice(query: &Params, notices: &[(&str, &'static str)]) -> Option<&'static str> {
    let done = query.get("done")?;
    notices.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}

/// A query string read leniently (a page, not an API): unreadable is empty.
pub(super) fn query(raw: Option<&str>) -> Params {
    Params::parse(raw.unwrap_or_default().as_bytes()).unwrap_or_default()
}

/// The next page's address when `found` filled a page of `page`: `link` of its last item.
pub(super) fn next_page<T>(
    found: &[T],
    page: u64,
    link: impl FnOnce(&T) -> String,
) -> Option<String> {
    if found.len() as u64 == page {
        found.last().map(link)
    } else {
        None
    }
}

/// A time for people: `2026-12-07 08:15 UTC`.
pub(super) fn when(secs: i64) -> String {
    lanyard_core::session::utc(lanyard_store::Timestamp::from_millis(
        secs.saturating_mul(1000),
    ))
}

/// What in an audit event's actor or target may name a person: `console:<sub>`,
/// `sub:<sub>` or a bare `sub` (22 base64url characters).
fn named_sub(value: &str) -> Option<(&str, &str)> {
    let (prefix, rest) = match value.split_once(':') {
        Some((p @ ("console" | "sub"), rest)) => (p, rest),
        _ => ("", value),
    };
    (rest.len() == 22
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some((prefix, rest))
}

/// People's usernames for the subjects that `values` name (see [`named_sub`]), in one query.
pub(super) async fn names(state: &AppState, values: &[&str]) -> Names {
    let mut subs: Vec<String> = values
        .iter()
        .filter_map(|v| named_sub(v))
        .map(|(_, sub)| sub.to_owned())
        .collect();
    subs.sort();
    subs.dedup();
    // A page still shows, with subjects, when the names cannot be read.
    Names(state.db.users().usernames(&subs).await.unwrap_or_default())
}

/// Usernames by `sub` (see [`names`]).
pub(super) struct Names(std::collections::HashMap<String, String>);

impl Names {
    /// `value` with the subject it names replaced by the username: `console:olivia`, `alice`.
    pub(super) fn readable(&self, value: &str) -> String {
        match named_sub(value).and_then(|(prefix, sub)| Some((prefix, self.0.get(sub)?))) {
            Some(("", name)) => name.clone(),
            Some((prefix, name)) => format!("{prefix}:{name}"),
            None => value.to_owned(),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub(super) fn enc(v: &str) -> String {
    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
}
