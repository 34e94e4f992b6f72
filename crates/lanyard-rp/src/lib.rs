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
//! - [`HttpSource`] (`feed`): the mirror's source over HTTP (Lanyard's revocation feed), for
//!   apps that cannot reach Lanyard's Redis; [`StoreSource`] follows the store directly.
//! - `client`: [`client::ServiceClient`] calls other APIs with a bearer token (from
//!   `client_credentials`, the signed-in user, or [`client::TokenExchange`]: on behalf of the
//!   person who called this API, RFC 8693) and retries once on `invalid_token`.
//! - `signin` (feature `axum`): sign-in for web apps with the `openidconnect` crate, and the
//!   [`signin::SignedIn`] extractor that sends anonymous visitors to sign in and back; it
//!   receives back-channel logout tokens (validated by `logout`) and ends the app's sessions.
//! - `signals`: [`signals::SsfReceiver`], a Shared Signals (SSF 1.0) receiver: the app
//!   follows Lanyard, or any SSF transmitter, by push or poll; what it hears feeds the
//!   mirror ([`signals::SsfReceiver::source`]) and the app's web sessions.
//!
//! # An API and a web app in one (features `axum`, `redis`)
//!
//! ```no_run
//! # #[cfg(all(feature = "axum", feature = "redis"))]
//! # async fn app() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use axum::{Json, Router, extract::FromRef, routing::get};
//! use lanyard_rp::signin::{SignInConfig, SignedIn, WebSignIn};
//! use lanyard_rp::{Authenticated, Guard, GuardConfig, Refused, StoreSource};
//! use lanyard_store::{RedisConfig, RedisStore, StoreConfig};
//!
//! #[derive(Clone, FromRef)]
//! struct App { guard: Guard, signin: WebSignIn }
//!
//! // The revocation mirror follows Lanyard's Redis (same prefix as Lanyard's).
//! let store = RedisStore::connect(StoreConfig::default(), RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! let mut config = GuardConfig::new("http://localhost:8080", "wiki"); // issuer, audience
//! config.realm = "wiki".into();
//! let guard = Guard::connect(config, Arc::new(StoreSource(Arc::new(store)))).await?;
//! let secret = std::env::var("WIKI_CLIENT_SECRET").ok();
//! let signin = WebSignIn::discover(SignInConfig::new(
//!     "http://localhost:8080", "wiki", secret, "http://localhost:3000", "wiki",
//! )).await?;
//!
//! async fn page(user: SignedIn) -> String { format!("Hello, {}", user.name) }
//! async fn reports(auth: Authenticated) -> Result<Json<Vec<String>>, Refused> {
//!     auth.require_scope("reports:read")?; // 403 insufficient_scope otherwise
//!     Ok(Json(vec![auth.principal.claims.sub.clone()]))
//! }
//! let router = Router::new()
//!     .route("/", get(page))                  // anonymous → sign-in → back here
//!     .route("/api/reports", get(reports))    // bearer token, offline, revocation-checked
//!     .merge(WebSignIn::routes::<App>())      // /login, /callback, /logout
//!     .with_state(App { guard, signin });
//! axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, router).await?;
//! # Ok(())
//! # }
//! ```
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
pub mod dpop;
pub mod feed;
mod guard;
pub mod keys;
mod layer;
pub mod logout;
pub mod mirror;
pub mod signals;
#[cfg(feature = "axum")]
pub mod signin;
pub mod validate;

#[cfg(feature = "axum")]
pub use axum_glue::{Authenticated, Refused};
pub use challenge::Denial;
pub use config::GuardConfig;
pub use discovery::Discovery;
pub(crate) use discovery::http_client;
pub use feed::HttpSource;
pub use guard::{Guard, GuardError, Principal, access_token, bearer_token};
pub use layer::{GuardLayer, GuardService};
pub use mirror::{Mirror, MirrorStatus, RevocationSource, StoreSource};
pub use validate::{Claims, Rejection};
