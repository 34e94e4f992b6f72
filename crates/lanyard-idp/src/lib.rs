//! `lanyard-idp`: Lanyard's OpenID Connect authorization server.
//!
//! # Layout
//! - `main.rs` (binary `lanyard`): command line and wiring only.
//! - [`config`]: raw settings (file, environment) → validated [`Config`](config::Config).
//! - [`state`]: [`AppState`](state::AppState), everything a request needs, built once.
//! - `http`: the only module that knows axum; one file per endpoint.
//! - [`oauth`]: protocol logic on typed inputs: `checks/` (redirect URI, scope, PKCE,
//!   prompt), `grants/` (one file per grant), `authorize`, `signin`, `client_auth`,
//!   `userinfo`, `discovery`, and the error types.
//! - [`tokens`]: signing keys, JWT signing and verification, JWKS.
//! - [`db`]: the SQL database through sea-orm; the only module that knows sea-orm.
//! - [`crypto`]: argon2id passwords, keyed client-secret hashes, cookie MACs.
//! - [`audit`]: the batched audit trail. [`model`]: users and clients.
//! - [`admin`]: what the `lanyard user add` / `client add` commands do.
//! - [`session`]: the sign-in session's status for the timeout warning, and who may ask.
//! - [`lockout`]: brute-force protection (failed sign-ins and client secrets, counted in
//!   the store).
//! - [`logout`]: telling apps that a session ended (back-channel logout tokens).
//! - [`revocation`]: revoking durably (SQL record, then the store) and rebuilding the
//!   store's lists from the record when they are lost.
//! - [`health`]: readiness (database, store, keys, clock skew, draining) for `/readyz`.
//! - [`metrics`]: every metric `/metrics` reports, and the recorder.
//!
//! Short-lived state (codes, sessions, refresh tokens, revocations) lives in `lanyard-store`.

pub mod admin;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod db;
pub mod health;
mod http;
pub mod lockout;
pub mod logout;
pub mod metrics;
pub mod model;
pub mod oauth;
mod recent;
pub mod revocation;
pub mod session;
pub mod state;
pub mod tokens;

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use http::router;

/// Serves `state` on `listener` until `shutdown` completes, then stores the audit events
/// still queued. Tests bind port 0 and pass the listener in.
pub async fn serve(
    listener: TcpListener,
    state: state::AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let stopping = state.clone();
    let (began, draining) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing the requests in flight");
        stopping.stopping.send_replace(true);
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
    if !state.audit.flush_for(audit::SHUTDOWN_FLUSH).await {
        tracing::error!("exiting with audit events not stored: the database did not take them");
    }
    Ok(())
}

/// Completes on SIGTERM (what `docker stop`, Kubernetes and systemd send) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
