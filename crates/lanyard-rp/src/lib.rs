//! `lanyard-rp`: what an app embeds to use Lanyard (or any OpenID provider that issues RFC 9068
//! access tokens and publishes Lanyard's revocation feed).
//!
//! # Layout
//! - [`Guard`] (`guard`): reads the bearer token, validates it offline (`validate`, with keys
//!   from `keys`), checks the revocation [`Mirror`] (`mirror`), and refuses with a
//!   [`Denial`] that renders exactly as RFC 6750 §3 says (`challenge`).
//! - [`GuardLayer`] (`layer`): the guard as a tower layer. With the `axum` feature,
//!   [`Authenticated`] is the handler extractor (`axum_glue`).
//! - [`Discovery`]: the issuer's metadata.
//! - `client`: [`client::ServiceClient`] calls other APIs with a bearer token (from
//!   `client_credentials` or the signed-in user) and retries once on `invalid_token`.
//! - `signin` (feature `axum`): sign-in for web apps with the `openidconnect` crate, and the
//!   [`signin::SignedIn`] extractor that sends anonymous visitors to sign in and back.
//!
//! The guard never calls the issuer per request: keys are cached (an unknown `kid` refetches
//! them at most once per cooldown) and revocations are followed, not queried. When the
//! mirror has heard nothing from its source for longer than the staleness bound, the guard
//! answers 503 (or, if the app chose so, stops checking revocations).

#[cfg(feature = "axum")]
mod axum_glue;
mod challenge;
pub mod client;
mod config;
mod discovery;
mod guard;
pub mod keys;
mod layer;
pub mod mirror;
#[cfg(feature = "axum")]
pub mod signin;
pub mod validate;

#[cfg(feature = "axum")]
pub use axum_glue::{Authenticated, Refused};
pub use challenge::Denial;
pub use config::GuardConfig;
pub use discovery::Discovery;
pub(crate) use discovery::http_client;
pub use guard::{Guard, GuardError, Principal, bearer_token};
pub use layer::{GuardLayer, GuardService};
pub use mirror::{Mirror, MirrorStatus, RevocationSource, StoreSource};
pub use validate::{Claims, Rejection};
