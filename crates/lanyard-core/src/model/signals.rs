//! Signals records: a Shared Signals stream (`Stream`: what its receiver chose, its status),
//! the subjects a receiver added or removed (`SubjectRule`), and the outbox every event
//! leaving Lanyard waits in (`OutboxEvent`, `ChannelState`).

use lanyard_store::Timestamp;
use serde::{Deserialize, Serialize};

/// A stream's status (SSF 1.0 §8.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamStatus {
    /// Events are delivered.
    Enabled,
    /// Events are held, and delivered once the stream is enabled again.
    Paused,
    /// No event is delivered or held.
    Disabled,
}

impl StreamStatus {
    /// As stored and as SSF names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    /// The stored form read back.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Enabled, Self::Paused, Self::Disabled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// How a stream's events reach its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryMethod {
    /// RFC 8935: Lanyard posts each event to the receiver's `endpoint_url`.
    #[serde(rename = "urn:ietf:rfc:8935")]
    Push,
    /// RFC 8936: the receiver polls Lanyard's endpoint for the stream.
    #[serde(rename = "urn:ietf:rfc:8936")]
    Poll,
}

impl DeliveryMethod {
    /// The URN SSF names it by.
    pub fn urn(self) -> &'static str {
        match self {
            Self::Push => "urn:ietf:rfc:8935",
            Self::Poll => "urn:ietf:rfc:8936",
        }
    }

    /// The method named by `urn`.
    pub fn parse(urn: &str) -> Option<Self> {
        [Self::Push, Self::Poll]
            .into_iter()
            .find(|m| m.urn() == urn)
    }
}

/// Which people a stream tells of before its receiver adds or removes any (SSF 1.0 §7.1
/// `default_subjects`, chosen per stream here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum DefaultSubjects {
    /// Everyone, except those removed.
    #[default]
    All,
    /// Only those added.
    None,
}

/// What a receiver chose for its stream (stored as one JSON document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamConfig {
    /// The event types asked for (URIs), as the receiver sent them.
    #[serde(default)]
    pub events_requested: Vec<String>,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Push or poll.
    pub method: DeliveryMethod,
    /// Where pushed events go (push only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// Everyone, or only those added.
    #[serde(default)]
    pub default_subjects: DefaultSubjects,
}

/// A stream, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Stream {
    /// Lanyard's id for it.
    pub stream_id: String,
    /// The receiver: the client that made it (the `aud` of its events).
    pub client_id: String,
    /// What the receiver chose.
    pub config: StreamConfig,
    /// The `Authorization` header value pushes carry (a secret of the receiver's).
    pub authorization_header: Option<String>,
    /// Enabled, paused or disabled.
    pub status: StreamStatus,
    /// Why the status was last changed.
    pub reason: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub updated_at: Timestamp,
    /// When a verification was last asked for.
    pub verified_at: Option<Timestamp>,
}

impl std::fmt::Debug for Stream {
    // The authorization header is the receiver's secret: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("stream_id", &self.stream_id)
            .field("client_id", &self.client_id)
            .field("config", &self.config)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A receiver's word about one subject of its stream: added (`included`) or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRule {
    /// The stream.
    pub stream_id: String,
    /// What events are matched by: `sub <sub>` or `email <address in lower case>`.
    pub key: String,
    /// The subject identifier as the receiver sent it.
    pub subject: serde_json::Value,
    /// Added (true) or removed (false).
    pub included: bool,
}

/// Where events go: one receiver's stream, or one app's back-channel logout endpoint. Each
/// channel's events leave in order, one node at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A Shared Signals stream (by id).
    Stream(String),
    /// An app's back-channel logout endpoint (by client id).
    Backchannel(String),
}

impl Channel {
    /// As stored.
    pub fn key(&self) -> String {
        match self {
            Self::Stream(id) => format!("ssf {id}"),
            Self::Backchannel(id) => format!("backchannel {id}"),
        }
    }

    /// The stored form read back.
    pub fn parse(key: &str) -> Option<Self> {
        match key.split_once(' ')? {
            ("ssf", id) => Some(Self::Stream(id.to_owned())),
            ("backchannel", id) => Some(Self::Backchannel(id.to_owned())),
            _ => None,
        }
    }
}

/// How a channel's events leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Lanyard posts them to a stream's receiver.
    SsfPush,
    /// The receiver polls for them.
    SsfPoll,
    /// Lanyard posts logout tokens to an app.
    Backchannel,
}

impl ChannelKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SsfPush => "ssf-push",
            Self::SsfPoll => "ssf-poll",
            Self::Backchannel => "backchannel",
        }
    }

    /// The stored form read back.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::SsfPush, Self::SsfPoll, Self::Backchannel]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// An event to put in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Where it goes.
    pub channel: Channel,
    /// Its unique id (a SET's `jti`, a logout token's `jti`).
    pub jti: String,
    /// What is signed at delivery.
    pub payload: serde_json::Value,
}

/// An event waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    /// Its place in the outbox (events of a channel leave in this order).
    pub seq: i64,
    /// Its unique id.
    pub jti: String,
    /// What is signed at delivery.
    pub payload: serde_json::Value,
    /// When it was queued.
    pub created_at: Timestamp,
    /// How many deliveries failed so far.
    pub attempts: u32,
}

/// Where a channel's deliveries stand (the admin API shows it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ChannelState {
    /// `ssf <stream_id>` or `backchannel <client_id>`.
    pub channel: String,
    /// `ssf-push`, `ssf-poll` or `backchannel`.
    pub kind: String,
    /// False while its stream is paused.
    pub active: bool,
    /// Events not yet delivered (or acknowledged, when polled).
    pub pending: u64,
    /// When the oldest of them was queued (seconds since the Unix epoch).
    pub oldest_pending_at: Option<i64>,
    /// Failed attempts in a row at its first pending event.
    pub attempts: u32,
    /// Nothing is tried before this (seconds since the Unix epoch), after a failure.
    pub next_attempt_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When an event last reached it (seconds since the Unix epoch).
    pub last_delivered_at: Option<i64>,
}
