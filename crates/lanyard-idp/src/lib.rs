//! `lanyard-idp`: Lanyard's OpenID Connect authorization server.
//!
//! # Layout
//! - `main.rs` (binary `lanyard`): the command line; parsing and wiring only.
//! - [`state`]: [`AppState`](state::AppState), everything a request needs: the core's
//!   services (`lanyard_core::Core`) and what only the web layer holds.
//! - `http`: the only module that knows axum; one file per endpoint, `admin/` for the admin
//!   API.
//! - [`oauth`]: protocol logic on typed inputs, never a request: `checks/` (scope, PKCE,
//!   prompt), `grants/` (one file per grant), `authorize`, `signin`, `consent`, `logout`,
//!   `client_auth`, `userinfo`, `introspect`, `revoke`, `discovery`, and the error types.
//! - [`params`]: form and query parameters, read strictly (both surfaces use it).
//! - [`dpop`]: DPoP proofs at Lanyard's endpoints (RFC 9449), for the protocol endpoints
//!   and the admin API alike.
//!
//! Everything below the protocol — records, SQL, keys, revocation, audit, sessions,
//! lockout — is `lanyard-core`; `docs/architecture.md` has the layers and their rules.

pub mod dpop;
mod http;
pub mod oauth;
pub mod params;
pub mod state;

pub use http::{router, serve, serve_split};

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
