//! [`Core`]: the parts every service works with, built once at start (`start.rs`) and
//! shared; cloning is cheap. The protocol endpoints, the admin API and the command line all
//! hold one (the web layer's `AppState` dereferences to it).

use std::ops::Deref;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Weak};

use lanyard_store::{Clock, TokenStore};

use crate::audit::Audit;
use crate::config::Config;
use crate::crypto::{Passwords, ServerKeys};
use crate::db::Db;
use crate::model::AuditEvent;
use crate::tokens::LiveKeys;

/// The shared parts.
#[derive(Clone, Debug)]
pub struct Core(Arc<Parts>);

/// What [`Core`] holds.
#[derive(Debug)]
pub struct Parts {
    /// The validated configuration.
    pub config: Config,
    /// The SQL database.
    pub db: Db,
    /// Codes, sessions, refresh families, revocation lists.
    pub store: Arc<dyn TokenStore>,
    /// Signing and verification keys.
    pub keys: LiveKeys,
    /// Client-secret pepper and cookie MAC key.
    pub server_keys: ServerKeys,
    /// Password hashing.
    pub passwords: Passwords,
    /// The audit trail.
    pub audit: Audit,
    /// The keys of clients that publish them (`private_key_jwt`).
    pub client_keys: crate::tokens::assertion::ClientKeys,
    /// How mail leaves this node.
    pub mailer: crate::mailer::Mailer,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Rung (counted up) whenever this node puts events in the outbox: the pusher and
    /// waiting polls look then.
    pub outbox_bell: tokio::sync::watch::Sender<u64>,
    /// Held while the store's revocation lists are rebuilt from the record.
    pub(crate) restoring: tokio::sync::Mutex<()>,
    /// How many revocations were recorded that the store could not take; while this is
    /// ahead of `restored_through`, the lists are restored before anything is judged.
    pub(crate) unlisted: AtomicU64,
    /// `unlisted` as it was when the last successful restore read the record.
    pub(crate) restored_through: AtomicU64,
}

impl Deref for Core {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

impl Core {
    /// Puts the parts together; `start` connects and loads them.
    pub(crate) fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }

    /// An audit event of `actor` doing `action` now ([`AuditEvent::new`] at this clock).
    pub fn event(&self, actor: impl Into<String>, action: &str) -> AuditEvent {
        AuditEvent::new(self.clock.now(), actor, action)
    }

    /// Records that `actor` did `action` to `target` now: `success`, or `failure` with the
    /// error (what every service does after acting).
    pub async fn record<T, E: std::fmt::Display>(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        result: &Result<T, E>,
    ) {
        let event = self.event(actor, action).target(target).result(result);
        self.audit.record(event).await;
    }

    /// A handle that does not keep the core alive: background tasks hold one and stop when
    /// the server is gone.
    pub(crate) fn downgrade(&self) -> WeakCore {
        WeakCore(Arc::downgrade(&self.0))
    }
}

/// A [`Core`] that background tasks hold without keeping it alive.
#[derive(Clone, Debug)]
pub(crate) struct WeakCore(Weak<Parts>);

impl WeakCore {
    /// The core, while anything else still holds it.
    pub(crate) fn upgrade(&self) -> Option<Core> {
        self.0.upgrade().map(Core)
    }
}
