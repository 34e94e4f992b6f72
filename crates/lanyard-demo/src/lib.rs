//! `lanyard-demo`: a small app that signs people in with Lanyard and guards its API with
//! `lanyard-rp`, and the playground that runs two of them (wiki, billing) beside Lanyard.
//!
//! # Routes of a demo app
//! - `/` and `/profile`: pages for the signed-in person (anonymous visitors are sent to
//!   sign in and brought back). `/profile` calls `/api/me` with the person's access token
//!   through `lanyard_rp::client::ServiceClient`.
//! - `/api/me`: bearer-protected JSON (`sub`, `scope`, `client_id`, `exp`; `act` when another
//!   API calls on the person's behalf).
//! - `/api/reports`: needs the scope `reports:read` (403 otherwise).
//! - `/payouts` and `/api/payouts`: need a two-factor sign-in (`urn:lanyard:acr:mfa`). The
//!   API answers a weaker token 401 `insufficient_user_authentication` with `acr_values`
//!   (RFC 9470); the page asks for a step-up sign-in and comes back.
//! - `/invoices` and `/api/invoices`: need the app role `<client_id>:admin` (`billing:admin`
//!   at billing). The API answers a good token without it 403 `insufficient_scope` naming
//!   the role (never 401); the page says so, with status 403.
//! - `/login`, `/callback`, `/logout`: from `lanyard_rp::signin`.
//! - `/health`: the revocation mirror's state.

pub mod playground;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lanyard_rp::client::{ClientError, ServiceClient};
use lanyard_rp::signin::{SignInConfig, SignInFirst, SignedIn, WebSignIn};
use lanyard_rp::{Authenticated, Guard, GuardConfig, Refused, RevocationSource};

/// One demo app's settings.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// The app's name (`wiki`, `billing`): shown, and in its cookie names.
    pub name: String,
    /// Lanyard's issuer URL.
    pub issuer: String,
    /// The app's client id (also its API audience).
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where browsers reach it (the redirect URI is this plus `/callback`).
    pub base_url: String,
    /// The revocation mirror's staleness bound.
    pub staleness_bound: std::time::Duration,
    /// The time the app judges tokens, sessions and staleness on (tests share a
    /// `ManualClock` with the Lanyard they run against).
    pub clock: Arc<dyn lanyard_store::Clock>,
}

/// Why a demo app could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The guard (issuer unreachable, bad settings).
    #[error(transparent)]
    Guard(#[from] lanyard_rp::GuardError),
    /// Sign-in could not be prepared.
    #[error(transparent)]
    SignIn(#[from] lanyard_rp::signin::SignInError),
}

/// The state handlers share.
#[derive(Clone)]
pub struct AppState {
    name: Arc<str>,
    base_url: Arc<str>,
    issuer: Arc<str>,
    client_id: Arc<str>,
    guard: Guard,
    signin: WebSignIn,
}

impl FromRef<AppState> for Guard {
    fn from_ref(s: &AppState) -> Guard {
        s.guard.clone()
    }
}

impl FromRef<AppState> for WebSignIn {
    fn from_ref(s: &AppState) -> WebSignIn {
        s.signin.clone()
    }
}

impl AppState {
    /// The app's sign-in (tests end its sessions).
    pub fn signin(&self) -> &WebSignIn {
        &self.signin
    }

    /// The app's guard (tests read its mirror's state).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }
}

/// Builds one demo app following revocations from `source`.
pub async fn app(
    config: &DemoConfig,
    source: Arc<dyn RevocationSource>,
) -> Result<(Router, AppState), DemoError> {
    let mut guard_config = GuardConfig::new(&config.issuer, &config.client_id);
    guard_config.realm = config.name.clone();
    guard_config.staleness_bound = config.staleness_bound;
    // DPoP proofs name the URL the app is reached at.
    guard_config.public_url = Some(config.base_url.clone());
    let guard = Guard::connect_with_clock(guard_config, source, config.clock.clone()).await?;
    let signin = WebSignIn::discover(SignInConfig {
        clock: config.clock.clone(),
        ..SignInConfig::new(
            &config.issuer,
            &config.client_id,
            Some(config.client_secret.clone()),
            &config.base_url,
            &config.name,
        )
    })
    .await?;
    let state = AppState {
        name: config.name.as_str().into(),
        base_url: config.base_url.trim_end_matches('/').into(),
        issuer: config.issuer.trim_end_matches('/').into(),
        client_id: config.client_id.as_str().into(),
        guard,
        signin,
    };
    let router = Router::new()
        .route("/", get(home))
        .route("/profile", get(profile))
        .route("/api/me", get(me))
        .route("/api/reports", get(reports))
        .route("/payouts", get(payouts))
        .route("/api/payouts", get(api_payouts))
        .route("/invoices", get(invoices))
        .route("/api/invoices", get(api_invoices))
        .route("/health", get(health))
        .merge(WebSignIn::routes::<AppState>())
        .with_state(state.clone());
    Ok((router, state))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page of the app at `path`, with Lanyard's session-timeout warning (docs/sessions.md),
/// asking this app's own `/session` endpoints (`lanyard-rp`), so it works on any site.
fn page(state: &AppState, title: &str, path: &str, body: &str) -> Html<String> {
    let login = format!(
        "/login?return_to={}",
        percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC)
    );
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <script src=\"{issuer}/session/warning.js\" data-client-id=\"{client}\" data-login-url=\"{login}\" data-session-url=\"/session\" defer></script>\
         </head><body><main>{body}</main></body></html>",
        title = escape(title),
        issuer = escape(&state.issuer),
        client = escape(&state.client_id),
        login = escape(&login),
    ))
}

async fn home(State(state): State<AppState>, user: SignedIn) -> Html<String> {
    let body = format!(
        "<h1>{app}</h1><p>Signed in as <strong id=\"user\">{name}</strong>.</p>\
         <p><a href=\"/profile\">Your profile</a> · <a href=\"/payouts\">Payouts</a> (needs two-step verification) · <a href=\"/invoices\">Invoices</a> (needs the role {role}) · <a href=\"/api/me\">/api/me</a> (needs a bearer token)</p>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>",
        app = escape(&state.name),
        name = escape(&user.name),
        role = escape(&admin_role(&state.client_id)),
    );
    page(&state, &state.name, "/", &body)
}

/// The profile page asks the app's own API with the person's access token, the way an app
/// calls an API on someone's behalf: a refused token is refreshed once and the call resent;
/// when that fails too, the sign-in is over: the person is told and signs in again, coming
/// back here.
async fn profile(State(state): State<AppState>, user: SignedIn) -> Response {
    let client = ServiceClient::new(state.signin.tokens_for(&user));
    let url = format!("{}/api/me", state.base_url);
    let api = match client.send(|http| http.get(&url)).await {
        Ok(r) if r.status().is_success() => {
            match r.bytes().await.map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
            }) {
                Ok(me) => format!(
                    "<p id=\"api\">The API at <code>/api/me</code> sees subject <code>{}</code> with scope <code>{}</code>; the token expires at <code id=\"exp\">{}</code>.</p>",
                    escape(me["sub"].as_str().unwrap_or_default()),
                    escape(me["scope"].as_str().unwrap_or_default()),
                    me["exp"].as_i64().unwrap_or_default()
                ),
                Err(e) => format!(
                    "<p id=\"api\">The API answered strangely: {}</p>",
                    escape(&e)
                ),
            }
        }
        Ok(r) => format!(
            "<p id=\"api\">The API refused the call ({}). <a href=\"/logout\">Sign in again</a>.</p>",
            r.status()
        ),
        Err(ClientError::SignInAgain { reason }) => {
            tracing::info!(%reason, "the API refused the person's token; asking them to sign in");
            return SignInFirst::to("/profile", true).into_response();
        }
        Err(e) => format!(
            "<p id=\"api\">The API could not be called: {}</p>",
            escape(&e.to_string())
        ),
    };
    let body = format!(
        "<h1>Your profile at {app}</h1><p>Name: <strong id=\"user\">{name}</strong></p><p>Subject: <code>{sub}</code></p>\
         {api}<p><a href=\"/\">Home</a></p>",
        app = escape(&state.name),
        name = escape(&user.name),
        sub = escape(&user.sub)
    );
    page(
        &state,
        &format!("Profile · {}", state.name),
        "/profile",
        &body,
    )
    .into_response()
}

/// What `/payouts` and `/api/payouts` need.
const MFA: &str = "urn:lanyard:acr:mfa";

/// A page that needs a two-factor sign-in, and calls an API that needs one too: a person
/// signed in with a password alone is sent to sign in again asking for the missing factor
/// (step-up), then comes back here.
async fn payouts(State(state): State<AppState>, user: SignedIn) -> Response {
    if let Err(step_up) = user.require_acr(MFA, "/payouts") {
        return step_up.into_response();
    }
    let client = ServiceClient::new(state.signin.tokens_for(&user));
    let url = format!("{}/api/payouts", state.base_url);
    let list = match client.send(|http| http.get(&url)).await {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["payouts"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p.as_str().map(|p| format!("<li>{}</li>", escape(p))))
            .collect::<String>(),
        Err(ClientError::StepUp {
            acr_values,
            max_age,
        }) => {
            return SignInFirst::step_up("/payouts", acr_values.as_deref(), max_age)
                .into_response();
        }
        Err(ClientError::SignInAgain { .. }) => {
            return SignInFirst::to("/payouts", true).into_response();
        }
        Ok(r) => format!("<li>The API refused the call ({}).</li>", r.status()),
        Err(e) => format!(
            "<li>The API could not be called: {}</li>",
            escape(&e.to_string())
        ),
    };
    let body = format!(
        "<h1>Payouts</h1><p>Signed in as <strong id=\"user\">{name}</strong> with two-step verification.</p>\
         <ul id=\"payouts\">{list}</ul><p><a href=\"/\">Home</a></p>",
        name = escape(&user.name)
    );
    page(
        &state,
        &format!("Payouts · {}", state.name),
        "/payouts",
        &body,
    )
    .into_response()
}

async fn api_payouts(auth: Authenticated) -> Result<Json<serde_json::Value>, Refused> {
    auth.require_acr(MFA)?;
    Ok(Json(serde_json::json!({
        "payouts": ["2026-12-01 ACME GmbH 12,400.00 EUR", "2026-12-03 Initech 3,150.00 USD"],
    })))
}

/// The role `/invoices` and `/api/invoices` need: `<client_id>:admin`.
fn admin_role(client_id: &str) -> String {
    format!("{client_id}:admin")
}

/// A page that needs an app role, through the API that needs it: a person without it sees
/// a 403 page saying which role and whom to ask; their sign-in stays.
async fn invoices(State(state): State<AppState>, user: SignedIn) -> Response {
    let client = ServiceClient::new(state.signin.tokens_for(&user));
    let url = format!("{}/api/invoices", state.base_url);
    let role = admin_role(&state.client_id);
    let (status, list) = match client.send(|http| http.get(&url)).await {
        Ok(r) if r.status().is_success() => {
            let items = r
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v["invoices"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p.as_str().map(|p| format!("<li>{}</li>", escape(p))))
                .collect::<String>();
            (
                axum::http::StatusCode::OK,
                format!("<ul id=\"invoices\">{items}</ul>"),
            )
        }
        Ok(r) if r.status() == axum::http::StatusCode::FORBIDDEN => (
            axum::http::StatusCode::FORBIDDEN,
            format!(
                "<p id=\"refused\" role=\"alert\">You are signed in, but invoices need the role <code>{}</code>, which you do not hold. Ask an administrator to grant it (<code>lanyard role grant {} {} --user {}</code>), then open this page again.</p>",
                escape(&role),
                escape(&state.client_id),
                escape(&role),
                escape(&user.name),
            ),
        ),
        Err(ClientError::SignInAgain { .. }) => {
            return SignInFirst::to("/invoices", true).into_response();
        }
        Ok(r) => (
            axum::http::StatusCode::BAD_GATEWAY,
            format!(
                "<p id=\"refused\">The API refused the call ({}).</p>",
                r.status()
            ),
        ),
        Err(e) => (
            axum::http::StatusCode::BAD_GATEWAY,
            format!(
                "<p id=\"refused\">The API could not be called: {}</p>",
                escape(&e.to_string())
            ),
        ),
    };
    let body = format!(
        "<h1>Invoices</h1><p>Signed in as <strong id=\"user\">{name}</strong>.</p>{list}<p><a href=\"/\">Home</a></p>",
        name = escape(&user.name)
    );
    let html = page(
        &state,
        &format!("Invoices · {}", state.name),
        "/invoices",
        &body,
    );
    (status, html).into_response()
}

async fn api_invoices(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<serde_json::Value>, Refused> {
    auth.require_role(&admin_role(&state.client_id))?;
    Ok(Json(serde_json::json!({
        "invoices": ["INV-1041 ACME GmbH 8,200.00 EUR (due 2026-12-20)", "INV-1042 Initech 1,150.00 USD (paid)"],
    })))
}

async fn me(auth: Authenticated) -> Json<serde_json::Value> {
    let c = &auth.principal.claims;
    let mut me = serde_json::json!({
        "sub": c.sub, "scope": c.scope, "client_id": c.client_id, "exp": c.exp,
    });
    // Another API calling on the person's behalf (token exchange): who acts.
    if let Some(act) = &c.act {
        me["act"] = serde_json::json!(act);
    }
    Json(me)
}

async fn reports(auth: Authenticated) -> Result<Json<serde_json::Value>, Refused> {
    auth.require_scope("reports:read")?;
    Ok(Json(
        serde_json::json!({ "reports": ["2026-11 revenue", "2026-11 churn"] }),
    ))
}

async fn health(State(state): State<AppState>) -> Response {
    let s = state.guard.mirror().status();
    let status = if s.healthy {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "revocation_mirror": {
                "healthy": s.healthy,
                "lag_ms": u64::try_from(s.lag.as_millis()).unwrap_or(u64::MAX),
                "last_event": s.last_event,
                "entries": s.entries,
            }
        })),
    )
        .into_response()
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
