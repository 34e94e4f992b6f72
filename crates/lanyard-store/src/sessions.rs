//! SSO sessions: who signed in, how, and until when.
//!
//! A session is live while `now < idle_deadline` and `now < absolute_deadline`. The store
//! enforces both: an expired session reads as absent.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{SessionId, Timestamp};

/// What the authorization server knows when a person signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The user's stable subject identifier.
    pub sub: String,
    /// When the user authenticated (`auth_time`).
    pub auth_time: Timestamp,
    /// How the user authenticated (`amr`, RFC 8176 values such as `pwd`).
    pub amr: Vec<String>,
    /// Whether the user asked to be remembered on this device.
    pub remember_me: bool,
    /// The session ends after this long without activity.
    pub idle_timeout: Duration,
    /// The session ends this long after it began, active or not.
    pub absolute_lifetime: Duration,
    /// The browser's `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// The client IP at sign-in.
    pub ip: Option<String>,
}

/// A live SSO session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session's id (`sid`).
    pub sid: SessionId,
    /// The signed-in user.
    pub sub: String,
    /// When the user authenticated.
    pub auth_time: Timestamp,
    /// How the user authenticated.
    pub amr: Vec<String>,
    /// Whether the user asked to be remembered.
    pub remember_me: bool,
    /// When the session began.
    pub created_at: Timestamp,
    /// The idle timeout the session was created with.
    #[serde(with = "millis")]
    pub idle_timeout: Duration,
    /// The session ends at this instant unless touched before.
    pub idle_deadline: Timestamp,
    /// The session ends at this instant whatever happens.
    pub absolute_deadline: Timestamp,
    /// The last time the session was used.
    pub last_seen: Timestamp,
    /// The clients that received tokens in this session.
    pub clients: BTreeSet<String>,
    /// The browser's `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// The client IP at sign-in.
    pub ip: Option<String>,
}

impl Session {
    pub(crate) fn start(sid: SessionId, new: NewSession, now: Timestamp) -> Self {
        let absolute_deadline = now.plus(new.absolute_lifetime);
        Self {
            sid,
            sub: new.sub,
            auth_time: new.auth_time,
            amr: new.amr,
            remember_me: new.remember_me,
            created_at: now,
            idle_timeout: new.idle_timeout,
            idle_deadline: now.plus(new.idle_timeout).min(absolute_deadline),
            absolute_deadline,
            last_seen: now,
            clients: BTreeSet::new(),
            user_agent: new.user_agent,
            ip: new.ip,
        }
    }

    /// Whether the session is still live at `now`.
    pub fn is_live(&self, now: Timestamp) -> bool {
        now < self.idle_deadline && now < self.absolute_deadline
    }

    /// Records activity at `now`: pushes the idle deadline out (never past the absolute
    /// deadline) and remembers the client that received tokens.
    pub(crate) fn touch(&mut self, now: Timestamp, client_id: Option<&str>) {
        self.idle_deadline = now.plus(self.idle_timeout).min(self.absolute_deadline);
        self.last_seen = now;
        if let Some(client) = client_id {
            self.clients.insert(client.to_owned());
        }
    }
}

pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
