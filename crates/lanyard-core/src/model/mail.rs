//! E-mail records: the links mails carry (`MailLink`, what one is for: `LinkPurpose`) and a
//! mail in the outbox (`OutgoingMail` to send, `MailStatus` to show operators).

use lanyard_store::Timestamp;

/// What a link in a mail lets its holder do, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkPurpose {
    /// Accept an invitation: set a first password (the address is verified by it).
    Invitation,
    /// Set a new password after "Forgot your password?".
    PasswordReset,
    /// Show that an address is the person's.
    VerifyEmail,
}

impl LinkPurpose {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
        }
    }

    /// The stored form read back.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Invitation, Self::PasswordReset, Self::VerifyEmail]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// A link sent by mail, as stored (by the SHA-256 hash of its token, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailLink {
    /// The person it is for.
    pub sub: String,
    /// What it lets its holder do.
    pub purpose: LinkPurpose,
    /// The address it was sent to.
    pub email: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was used (or made void by a newer one), if it was.
    pub used_at: Option<Timestamp>,
}

impl MailLink {
    /// Whether it may still be used at `now`.
    pub fn usable(&self, now: Timestamp) -> bool {
        self.used_at.is_none() && now < self.expires_at
    }
}

/// A mail to put in the outbox: rendered, addressed, not yet sent.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMail {
    /// The one recipient's address.
    pub to: String,
    /// What kind of mail (`invitation`, `password_reset`, `notice.password_changed`, ...).
    pub kind: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl std::fmt::Debug for NewMail {
    // The parts may carry a link's token: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMail")
            .field("kind", &self.kind)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A mail taken from the outbox by one node to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Its id (also its `Message-ID`, so a relay can tell a mail sent twice).
    pub id: String,
    /// How many attempts were made before this one.
    pub attempts: u32,
    /// When it was queued.
    pub created_at: Timestamp,
    /// What to send.
    pub mail: NewMail,
}

/// A mail as operators see it (never its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailStatus {
    /// Its id.
    pub id: String,
    /// The recipient.
    pub to: String,
    /// What kind of mail.
    pub kind: String,
    /// The subject line.
    pub subject: String,
    /// When it was queued.
    pub created_at: Timestamp,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (if it is still to be sent).
    pub next_attempt_at: Timestamp,
    /// When the relay took it.
    pub sent_at: Option<Timestamp>,
    /// When Lanyard gave up on it.
    pub failed_at: Option<Timestamp>,
    /// The last attempt's error.
    pub last_error: Option<String>,
}
