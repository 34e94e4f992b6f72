//! Signals: telling other systems what happened to people's sessions and accounts, as the
//! OpenID Shared Signals Framework 1.0 says (CAEP and RISC events as Security Event Tokens,
//! RFC 8417), through a durable outbox in SQL.
//!
//! - [`emit`]: what happened ([`Signal`]) becomes one event per stream that asked for it
//!   and whose receiver did not leave its subject out, queued in the outbox in one insert
//!   (`set.rs` writes each event's claims).
//! - `streams.rs`: the stream management API's work (create, read, update, replace,
//!   delete; status; subjects; verification), each call on behalf of the receiver (the
//!   client whose `lanyard:ssf` token called) and only ever on its own streams.
//! - `push.rs`: each node's pusher: channel by channel, in order, one node at a time,
//!   retried with backoff across restarts (RFC 8935). `poll.rs`: the receiver's polls, with
//!   acknowledgements (RFC 8936).
//!
//! Each event is in SQL before the call that caused it returns; it is signed when it leaves
//! (with the key in use then), carrying the time it happened. Docs: `docs/signals.md`.

mod poll;
mod push;
mod set;
mod streams;

use lanyard_store::Timestamp;

pub use self::poll::{POLL_WAIT, PollAnswer, PollRequest, poll};
pub use self::push::{deliver_due, spawn_pusher};
pub use self::set::{SET_TYP, caep, event_types, risc, ssf};
pub use self::streams::{
    MAX_STREAMS, MIN_VERIFICATION_INTERVAL, POLL_PATH, SignalError, StatusChange, StreamOverview,
    add_subject, create, delete, get, list, list_all, remove_subject, replace, set_status, status,
    update, verify,
};
use crate::Core;
use crate::model::{Channel, DefaultSubjects, NewEvent, Stream, User};

/// The kind of credential an event is about (CAEP `credential_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
pub enum Credential {
    /// The password.
    #[serde(rename = "password")]
    Password,
    /// An authenticator app (time-based one-time codes).
    #[serde(rename = "app")]
    App,
    /// A passkey (wherever it lives: Lanyard cannot tell a platform one from a roaming one,
    /// and names it `fido2-platform`).
    #[serde(rename = "fido2-platform")]
    Passkey,
}

impl Credential {
    /// As CAEP names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::App => "app",
            Self::Passkey => "fido2-platform",
        }
    }

    /// A second factor's kind.
    pub fn of(kind: crate::model::FactorKind) -> Self {
        match kind {
            crate::model::FactorKind::Passkey => Self::Passkey,
            _ => Self::App,
        }
    }
}

/// What changed about a credential (CAEP `change_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A new one.
    Create,
    /// An existing one replaced.
    Update,
    /// One removed.
    Delete,
}

impl Change {
    /// As CAEP names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// What happened, in Lanyard's words; [`emit`] turns it into events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// A sign-in session ended (signed out, ended by an admin or the person, or with
    /// everything of theirs). A session that timed out is not told of.
    SessionRevoked {
        /// Whose.
        sub: String,
        /// Which.
        sid: String,
    },
    /// A password was set or changed, a second factor added or removed.
    CredentialChange {
        /// Whose.
        sub: String,
        /// What kind.
        credential: Credential,
        /// What happened to it.
        change: Change,
    },
    /// What tokens say about the person changed (roles or groups).
    ClaimsChange {
        /// Whose.
        sub: String,
    },
    /// The account was disabled.
    AccountDisabled {
        /// Whose.
        sub: String,
    },
    /// The account was enabled again.
    AccountEnabled {
        /// Whose.
        sub: String,
    },
    /// The account was deleted (`user` as it was).
    AccountPurged {
        /// The person, as they were.
        user: Box<User>,
    },
    /// An operator marked a credential compromised.
    CredentialCompromise {
        /// Whose.
        sub: String,
        /// Which kind.
        credential: Credential,
        /// Why, for people.
        reason: Option<String>,
    },
}

impl Signal {
    /// The person it is about.
    pub fn sub(&self) -> &str {
        match self {
            Self::SessionRevoked { sub, .. }
            | Self::CredentialChange { sub, .. }
            | Self::ClaimsChange { sub }
            | Self::AccountDisabled { sub }
            | Self::AccountEnabled { sub }
            | Self::CredentialCompromise { sub, .. } => sub,
            Self::AccountPurged { user } => &user.sub,
        }
    }

    /// The event type (a URI) it is delivered as.
    pub fn event_type(&self) -> &'static str {
        use set::{caep, risc};
        match self {
            Self::SessionRevoked { .. } => caep::SESSION_REVOKED,
            Self::CredentialChange { .. } => caep::CREDENTIAL_CHANGE,
            Self::ClaimsChange { .. } => caep::TOKEN_CLAIMS_CHANGE,
            Self::AccountDisabled { .. } => risc::ACCOUNT_DISABLED,
            Self::AccountEnabled { .. } => risc::ACCOUNT_ENABLED,
            Self::AccountPurged { .. } => risc::ACCOUNT_PURGED,
            Self::CredentialCompromise { .. } => risc::CREDENTIAL_COMPROMISE,
        }
    }
}

/// [`emit`] of one [`Signal::CredentialChange`].
pub async fn credential_changed(
    core: &Core,
    sub: &str,
    credential: Credential,
    change: Change,
    actor: &str,
) {
    let signal = Signal::CredentialChange {
        sub: sub.to_owned(),
        credential,
        change,
    };
    emit(core, vec![signal], actor).await;
}

/// Who started what an event tells of (CAEP `initiating_entity`): the person themselves,
/// the system, or else an administrator (the admin API, the console, SCIM, the command
/// line).
fn initiating_entity(actor: &str, sub: &str) -> &'static str {
    if actor == sub || actor.strip_prefix("sub:") == Some(sub) {
        "user"
    } else if actor == "system" {
        "system"
    } else {
        "admin"
    }
}

/// Queues an event for each of `signals` on every stream that wants it, as `actor` caused
/// them. A failure is logged and counted, never returned: an event must never undo what it
/// tells of (which is already done and recorded).
pub async fn emit(core: &Core, signals: Vec<Signal>, actor: &str) {
    if signals.is_empty() {
        return;
    }
    if let Err(e) = try_emit(core, &signals, actor).await {
        crate::metrics::signal_lost(signals.len());
        tracing::error!(error = %e, count = signals.len(), "security events could not be queued");
    }
}

async fn try_emit(core: &Core, signals: &[Signal], actor: &str) -> Result<(), crate::db::DbError> {
    let streams = core.db.streams().live().await?;
    if streams.is_empty() {
        return Ok(());
    }
    let now = core.clock.now();
    let mut events = Vec::new();
    for signal in signals {
        let txn = crate::crypto::random_token(16);
        let wanting: Vec<&Stream> = streams
            .iter()
            .filter(|s| set::delivered(&s.config).contains(&signal.event_type()))
            .collect();
        if wanting.is_empty() {
            continue;
        }
        let person = match signal {
            Signal::AccountPurged { user } => Some((**user).clone()),
            _ => core.db.users().by_sub(signal.sub()).await?,
        };
        let keys = subject_keys(signal.sub(), person.as_ref());
        let ids: Vec<String> = wanting.iter().map(|s| s.stream_id.clone()).collect();
        let rules = core.db.streams().subject_rules(&ids, &keys).await?;
        for stream in wanting {
            let mine: Vec<_> = rules
                .iter()
                .filter(|r| r.stream_id == stream.stream_id)
                .collect();
            let by_email_only = mine
                .iter()
                .any(|r| r.included && r.key.starts_with("email "))
                && !mine.iter().any(|r| r.included && r.key.starts_with("sub "));
            let told = if mine.iter().any(|r| r.included) {
                true
            } else if mine.iter().any(|r| !r.included) {
                false
            } else {
                stream.config.default_subjects == DefaultSubjects::All
            };
            if !told {
                continue;
            }
            let user = set::UserId {
                sub: signal.sub(),
                email: person
                    .as_ref()
                    .and_then(|p| p.email.as_deref())
                    .filter(|_| by_email_only),
            };
            let entity = initiating_entity(actor, signal.sub());
            let claims = set::claims(core, stream, signal, &user, entity, &txn, now).await?;
            events.push(NewEvent {
                channel: Channel::Stream(stream.stream_id.clone()),
                jti: claims.jti.clone(),
                payload: claims.value,
            });
        }
    }
    queue(core, &events, now).await
}

/// The keys a person's subject rules are stored under.
fn subject_keys(sub: &str, person: Option<&User>) -> Vec<String> {
    let mut keys = vec![format!("sub {sub}")];
    if let Some(email) = person.and_then(|p| p.email.as_deref()) {
        keys.push(format!("email {}", email.to_lowercase()));
    }
    keys
}

/// Puts `events` in the outbox and rings every waiting pusher and poll on this node.
pub(crate) async fn queue(
    core: &Core,
    events: &[NewEvent],
    now: Timestamp,
) -> Result<(), crate::db::DbError> {
    if events.is_empty() {
        return Ok(());
    }
    core.db.events().enqueue(events, now).await?;
    crate::metrics::signals_queued(events.len());
    core.outbox_bell.send_modify(|n| *n = n.wrapping_add(1));
    Ok(())
}
