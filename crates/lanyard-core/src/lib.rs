//! `lanyard-core`: Lanyard's identity core, below every surface. The protocol endpoints
//! (`lanyard-idp`'s `oauth/`), the admin API (`http/admin/`) and the `lanyard` command all
//! call the services here and never each other. It knows no web framework; only `db/`
//! knows SQL. `docs/architecture.md` has the layers and the rules between them.
//!
//! # Layout
//! From the bottom up (a module uses only modules of its layer or below):
//! - [`config`], [`crypto`], [`metrics`], [`recent`]: settings, secrets and hashing, the
//!   metrics every part reports, answers kept for a second.
//! - [`model`]: the records (users, clients, consents, keys, the revocation record, audit
//!   events, groups and roles) and what each may hold.
//! - [`db`]: the records in SQL (SQLite or PostgreSQL) through sea-orm.
//! - [`audit`] (the batched audit trail), [`tokens`] (keys, signing, verifying, JWKS, the
//!   rotation schedule), [`mailer`] (how mail leaves: SMTP or a folder).
//! - [`Core`](context::Core) (`context`): the parts every service works with.
//! - Services: [`revocation`] (durable revoking and checking), [`lockout`] (brute-force
//!   protection), [`logout`] (back-channel logout), [`mail`] (the outbox and its sender),
//!   [`session`] (the sign-in session's status and how people recognise it), [`signals`]
//!   (Shared Signals streams and the event outbox), then [`revoke`] (revoking a user, session,
//!   client or token), [`users`], [`clients`], [`sessions`], [`keys`], [`locks`],
//!   [`consents`], [`factors`], [`passkeys`], [`access`] (groups and app roles),
//!   [`email`] (invitations, password reset, verified addresses), then [`operators`] (who
//!   may use the console), with
//!   [`error`], the error they share.
//! - [`health`] (readiness) and [`start`] (building a [`Core`](context::Core)); with the
//!   feature `testing`, `testing`: throwaway SQLite and PostgreSQL databases for tests.

pub mod access;
pub mod audit;
pub mod clients;
pub mod config;
pub mod consents;
mod context;
pub mod crypto;
pub mod db;
pub mod email;
pub mod error;
pub mod factors;
pub mod health;
pub mod keys;
pub mod lockout;
pub mod locks;
pub mod logout;
pub mod mail;
pub mod mailer;
pub mod metrics;
pub mod model;
pub mod operators;
pub mod outbound;
pub mod passkeys;
pub mod recent;
pub mod revocation;
pub mod revoke;
pub mod scim;
pub mod scim_filter;
pub mod session;
pub mod sessions;
pub mod signals;
pub mod start;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod users;

pub use context::{Core, Parts};
pub use error::ServiceError;
