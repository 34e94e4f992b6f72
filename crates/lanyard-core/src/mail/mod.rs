//! Mail: what Lanyard says to people (`Message`), written once as a [`Letter`] and rendered
//! as a plain-text and an HTML part (`render.rs`); queued in the SQL outbox in one insert, so
//! a request never waits on a relay (`send`); and sent by every node's sender in the
//! background, with retries and backoff (`sender.rs`), over SMTP or, without a relay, into a
//! folder (`crate::mailer`, below `Core`, which holds the node's [`Mailer`]).
//!
//! Every link is built from the issuer URL (`Config::url`), never from a request.

mod render;
mod sender;

use std::time::Duration;

pub use self::render::{Action, Letter, span};
pub use self::sender::{deliver_due, spawn_sender};
use crate::Core;
use crate::crypto::random_token;
use crate::db::DbError;
pub use crate::mailer::{Mailer, Transport, TransportError, outbox_folder};
use crate::model::NewMail;

/// What Lanyard tells a person by mail.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// An invitation: set a first password (and a passkey) by following `link`.
    Invitation {
        /// The username they will sign in with.
        username: String,
        /// The single-use link.
        link: String,
        /// How long it works.
        valid_for: Duration,
    },
    /// "Forgot your password?": set a new one by following `link`.
    PasswordReset {
        /// The username the link is for.
        username: String,
        /// The single-use link.
        link: String,
        /// How long it works.
        valid_for: Duration,
    },
    /// Show that this address is yours.
    VerifyEmail {
        /// The single-use link.
        link: String,
        /// How long it works.
        valid_for: Duration,
    },
    /// Something changed on the account (sent to the address on file).
    Notice(Notice),
}

impl std::fmt::Debug for Message {
    // Links carry tokens: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

/// A security notice: what changed on the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The password was changed (`reset`: through a reset link; `by_admin`: by an operator).
    PasswordChanged {
        /// Through "Forgot your password?".
        reset: bool,
    },
    /// A second factor was added (`what`: "an authenticator app", "a passkey named ...").
    FactorAdded {
        /// What, in words.
        what: String,
    },
    /// A second factor was removed.
    FactorRemoved {
        /// What, in words.
        what: String,
    },
    /// The account's address is about to change (sent to the old address).
    EmailChanging {
        /// The new address.
        new_address: String,
    },
}

impl Message {
    /// The kind, as the outbox and the audit trail name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::PasswordReset { .. } => "password_reset",
            Self::VerifyEmail { .. } => "verify_email",
            Self::Notice(Notice::PasswordChanged { .. }) => "notice.password_changed",
            Self::Notice(Notice::FactorAdded { .. }) => "notice.factor_added",
            Self::Notice(Notice::FactorRemoved { .. }) => "notice.factor_removed",
            Self::Notice(Notice::EmailChanging { .. }) => "notice.email_changing",
        }
    }
}

/// Puts `message` for `to` (whom it greets as `name`) in the outbox and rings this node's
/// sender; returns the mail's id. One insert: the request that asked never waits on a relay.
pub async fn send(core: &Core, to: &str, name: &str, message: &Message) -> Result<String, DbError> {
    let letter = Letter::of(message, name, &core.config);
    let mail = NewMail {
        to: to.to_owned(),
        kind: message.kind().to_owned(),
        subject: letter.subject.clone(),
        text: letter.text(&core.config),
        html: letter.html(&core.config),
    };
    let id = random_token(16);
    core.db
        .outbox()
        .enqueue(&id, &mail, core.clock.now())
        .await?;
    crate::metrics::mail_queued(message.kind());
    core.mailer.wake.notify_one();
    Ok(id)
}

/// [`notify`] the person `sub` (read now).
pub async fn notify_sub(core: &Core, sub: &str, notice: Notice) {
    match core.db.users().by_sub(sub).await {
        Ok(Some(user)) => notify(core, &user, notice).await,
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, %sub, "could not queue a security notice"),
    }
}

/// [`send`] to the person's address on file, if they have one; a failure is logged, not
/// returned (a notice must never undo what it tells of).
pub async fn notify(core: &Core, user: &crate::model::User, notice: Notice) {
    let Some(to) = &user.email else { return };
    if let Err(e) = send(core, to, user.name(), &Message::Notice(notice)).await {
        tracing::warn!(error = %e, sub = %user.sub, "could not queue a security notice");
    }
}
