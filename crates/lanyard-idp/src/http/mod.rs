//! The HTTP layer: the only module that knows axum. One file per endpoint; each parses the
//! request into typed input, calls `oauth`, and renders the result.

mod account;
mod admin;
mod authorize;
mod consent;
mod console;
mod cookies;
mod device;
mod discovery;
mod email;
mod feed;
mod forms;
mod forwarded;
mod health;
mod logout;
mod mfa;
mod pages;
mod passkeys;
mod reply;
mod revoke;
mod scim;
mod session;
mod ssf;
mod token;
mod userinfo;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::oauth::discovery::paths;
use crate::state::AppState;
use lanyard_core::audit;
use lanyard_core::crypto::random_token;

/// Serves `state` on `listener` (and the operators' routes on `ops_listen`, if set) until
/// `shutdown` completes, then stores the audit events still queued.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ops = match state.config.ops_listen {
        Some(at) => Some(TcpListener::bind(at).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {at} (ops_listen): {e}"))
        })?),
        None => None,
    };
    serve_split(listener, ops, state, shutdown).await
}

/// [`serve`] on listeners the caller bound (tests bind port 0 and pass them in): the public
/// routes on `listener`, the operators' on `ops` (without it, `/metrics` is public).
pub async fn serve_split(
    listener: TcpListener,
    ops: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(at) = listener.local_addr() {
        let _ = state.web().listening.set(at);
    }
    let app =
        router(state.clone(), ops.is_none()).into_make_service_with_connect_info::<SocketAddr>();
    // Mail queued on any node is sent by every serving node's sender (one at a time each).
    lanyard_core::mail::spawn_sender(&state);
    lanyard_core::signals::spawn_pusher(&state);
    if let Some(ops) = ops {
        let mut stopped = state.web().stopping.subscribe();
        let routes = ops_router(state.clone());
        tokio::spawn(async move {
            let until_stopped = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(ops, routes)
                .with_graceful_shutdown(until_stopped)
                .await
            {
                tracing::error!(error = %e, "the operators' listener failed");
            }
        });
    }
    let stopping = state.clone();
    let (began, draining) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing the requests in flight");
        stopping.web().stopping.send_replace(true);
        let _ = began.send(());
    });
    // In-flight requests get `shutdown_grace` to finish; then the process goes anyway.
    let grace = state.config.shutdown_grace;
    let deadline = async move {
        if draining.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        () = deadline => tracing::warn!(
            grace_secs = grace.as_secs(),
            "requests still in flight after the shutdown grace; exiting anyway"
        ),
    }
    if !state
        .audit
        .flush_for(lanyard_core::audit::SHUTDOWN_FLUSH)
        .await
    {
        tracing::error!("exiting with audit events not stored: the database did not take them");
    }
    Ok(())
}

/// The largest request body accepted (every legitimate request is far smaller).
const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id of ours (a client's `X-Request-Id` is replaced, so it cannot
/// forge the ids in the audit trail), runs it with that id for the audit trail, and returns
/// the id in the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = random_token(12);
    let Ok(value) = HeaderValue::from_str(&id) else {
        return next.run(request).await;
    };
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let mut response = audit::in_request(id, next.run(request)).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// Counts and times every request by route (the route's pattern, never the raw path, so
/// codes and ids stay out of the labels, and their number stays bounded).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let response = next.run(request).await;
    lanyard_core::metrics::http_request(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// On an https issuer, every response tells browsers to use https only, for a year (RFC 6797;
/// ASVS 3.4.1). Over plain http (development) the header would be ignored, and is not sent.
fn strict_transport_security(mut response: Response, https: bool) -> Response {
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// The operators' routes (`ops_listen`): `/healthz`, the detailed `/readyz`, `/metrics`.
fn ops_router(state: AppState) -> Router {
    Router::new()
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz_detailed))
        .route(paths::METRICS, get(health::metrics))
        .fallback(not_found)
        .with_state(state)
}

/// Every public route, with the middleware every request goes through; `/metrics` too when
/// `with_metrics` (no operators' listener).
pub fn router(state: AppState, with_metrics: bool) -> Router {
    // Metrics recorded before the recorder exists are lost: install it first.
    lanyard_core::metrics::handle();
    let https = state.config.is_https();
    let trusted = state.config.trusted_proxies.clone();
    let trace = TraceLayer::new_for_http().make_span_with(move |req: &Request| {
        // The path only: queries carry hints, states and codes that stay out of logs.
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // The client as lockout and the audit trail see it (behind a trusted proxy, the
        // address it forwarded).
        let client = req
            .extensions()
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| forwarded::client(c.0.ip(), req.headers(), &trusted));
        let ip = client.map_or_else(|| "-".to_owned(), |c| c.ip.to_string());
        let https = client.is_some_and(|c| c.https);
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id, client = %ip, https)
    });
    // Browser apps (public clients) call these from their own origin; no cookies are
    // involved, so any origin may. Never the authorization endpoint or the sign-in form
    // (RFC 9700 §2.6).
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(Duration::from_secs(600));
    let for_apps = Router::new()
        .route(paths::OPENID_CONFIGURATION, get(discovery::metadata))
        .route(paths::OAUTH_METADATA, get(discovery::metadata))
        .route(paths::JWKS, get(discovery::jwks))
        .route(paths::TOKEN, post(token::token))
        .route(paths::DEVICE_AUTHORIZATION, post(device::authorization))
        .route(paths::DEVICE, get(device::page).post(device::enter))
        .route(paths::PAR, post(authorize::push))
        .route("/device/decide", post(device::decide))
        .route(paths::REVOCATION, post(revoke::revocation))
        .route(paths::INTROSPECTION, post(revoke::introspection))
        .route(
            paths::USERINFO,
            get(userinfo::handle).post(userinfo::handle),
        )
        .layer(cors);
    let routes = Router::new()
        .route(
            paths::AUTHORIZE,
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(paths::SIGNIN, post(authorize::signin))
        .route("/signin/code", post(mfa::code))
        .route("/signin/enrol", post(mfa::enrol))
        .route("/signin/passkey/options", post(passkeys::options))
        .route("/signin/passkey", post(passkeys::sign_in))
        .route("/assets/passkeys.js", get(passkeys::script))
        .route(paths::CONSENT, post(consent::answer))
        .route(paths::ACCOUNT, get(account::page))
        .route("/account/signin", post(account::signin))
        .route("/account/sessions/end", post(account::end_sessions))
        .route("/account/apps/withdraw", post(account::withdraw))
        .route("/account/password", post(account::password))
        .route(
            "/account/mfa/totp",
            get(account::totp_page).post(account::totp),
        )
        .route("/account/mfa/remove", post(account::remove_factor))
        .route("/account/passkeys/options", post(account::passkey_options))
        .route("/account/passkeys", post(account::add_passkey))
        .route("/account/mfa/recovery", post(account::new_recovery_codes))
        .route("/account/email", post(account::change_email))
        .route("/account/email/verify", post(account::send_verification))
        .route(
            "/signin/forgot",
            get(email::forgot_page).post(email::forgot_request),
        )
        .route("/reset-password", get(email::reset_page).post(email::reset))
        .route(
            "/invitation",
            get(email::invitation_page).post(email::accept),
        )
        .route("/verify-email", get(email::verify_page).post(email::verify))
        .route(
            paths::END_SESSION,
            get(logout::end_session).post(logout::end_session),
        )
        .route("/assets/lanyard.css", get(discovery::stylesheet))
        .route("/assets/console.css", get(console::stylesheet))
        .route("/assets/console.js", get(console::script))
        .route(paths::SESSION_STATUS, get(session::status))
        .route(paths::SESSION_EXTEND, post(session::extend))
        .route(paths::SESSION_APP_STATUS, post(session::app_status))
        .route(paths::SESSION_APP_EXTEND, post(session::app_extend))
        .route(paths::SESSION_WARNING_JS, get(session::warning_script))
        .merge(for_apps)
        .route(paths::REVOCATION_SNAPSHOT, get(feed::snapshot))
        .route(paths::REVOCATION_EVENTS, get(feed::events))
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz));
    let routes = if with_metrics {
        routes.route(paths::METRICS, get(health::metrics))
    } else {
        routes
    };
    routes
        .nest(admin::PREFIX, admin::router())
        .nest(scim::PREFIX, scim::router())
        .merge(ssf::router())
        .route("/console/", get(console::home))
        .nest(console::PREFIX, console::router())
        .route_layer(middleware::from_fn(record_metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            ServiceBuilder::new()
                .layer(middleware::map_response(move |response: Response| async move {
                    strict_transport_security(response, https)
                }))
                .layer(middleware::from_fn(request_id))
                .layer(trace)
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Duration::from_secs(30),
                )),
        )
        .with_state(state)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not found").into_response()
}
