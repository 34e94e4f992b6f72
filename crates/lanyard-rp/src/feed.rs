//! [`HttpSource`]: the revocation mirror's source for apps that cannot reach Lanyard's Redis —
//! Lanyard's revocation feed over HTTP: a snapshot, then Server-Sent Events from its cursor.
//!
//! Lanyard sends a `heartbeat` only when its store answered "nothing new", so a heartbeat
//! (like an event) proves the mirror is current. A connection that brings neither for
//! [`HttpSource::silence`] is taken for lost and reopened from the last cursor; meanwhile the
//! mirror hears nothing and its staleness bound runs, as with any silent source.

use std::time::Duration;

use async_trait::async_trait;
use lanyard_store::{Cursor, Feed, RevocationEvent, Snapshot, StoreError, Subscription};
use openidconnect::reqwest;

use crate::discovery::Discovery;
use crate::mirror::RevocationSource;

/// How long a feed connection may bring nothing (not even a heartbeat) before it counts as
/// lost. Lanyard sends a heartbeat every 5 s.
pub const DEFAULT_SILENCE: Duration = Duration::from_secs(15);

/// Follows Lanyard's revocation feed over HTTP, authenticated as a confidential client.
#[derive(Clone)]
pub struct HttpSource {
    http: reqwest::Client,
    snapshot_url: String,
    events_url: String,
    client_id: String,
    client_secret: String,
    silence: Duration,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("snapshot_url", &self.snapshot_url)
            .field("events_url", &self.events_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

impl HttpSource {
    /// The feed at these two URLs, read as `client_id` with `client_secret`.
    pub fn new(
        snapshot_url: impl Into<String>,
        events_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::new(),
            snapshot_url: snapshot_url.into(),
            events_url: events_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            silence: DEFAULT_SILENCE,
        }
    }

    /// The feed the issuer advertises in its discovery document.
    pub async fn discover(
        issuer: &str,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Result<Self, String> {
        let discovery = Discovery::fetch(issuer).await?;
        let (Some(snapshot), Some(events)) = (
            discovery.lanyard_revocation_snapshot_endpoint,
            discovery.lanyard_revocation_events_endpoint,
        ) else {
            return Err(format!(
                "{issuer} does not advertise a revocation feed (lanyard_revocation_snapshot_endpoint, lanyard_revocation_events_endpoint)"
            ));
        };
        Ok(Self::new(snapshot, events, client_id, client_secret))
    }

    /// How long a connection may stay silent before it counts as lost (default
    /// [`DEFAULT_SILENCE`]).
    #[must_use]
    pub fn silence(mut self, silence: Duration) -> Self {
        self.silence = silence;
        self
    }

    async fn get(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, StoreError> {
        let response = request
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(format!("revocation feed: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(StoreError::Unavailable(format!(
                "revocation feed answered {status}: {}",
                body.chars().take(200).collect::<String>()
            )));
        }
        Ok(response)
    }
}

#[async_trait]
impl RevocationSource for HttpSource {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let response = self
            .get(self.http.get(&self.snapshot_url).timeout(self.silence))
            .await?;
        let body = response
            .bytes()
            .await
            .map_err(|e| StoreError::Unavailable(format!("revocation feed snapshot: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt {
            what: "revocation feed snapshot",
            detail: e.to_string(),
        })
    }

    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        let request = self
            .http
            .get(&self.events_url)
            .query(&[
                ("epoch", from.epoch.as_str()),
                ("seq", &from.seq.to_string()),
            ])
            .header(reqwest::header::ACCEPT, "text/event-stream");
        let response = tokio::time::timeout(self.silence, self.get(request))
            .await
            .map_err(|_| StoreError::Timeout(self.silence))??;
        Ok(Box::new(HttpSubscription {
            response,
            buffer: Vec::new(),
            cursor: from.clone(),
            silence: self.silence,
        }))
    }
}

struct HttpSubscription {
    response: reqwest::Response,
    buffer: Vec<u8>,
    cursor: Cursor,
    silence: Duration,
}

/// One Server-Sent Event (the fields Lanyard sends).
#[derive(Debug, Default, PartialEq, Eq)]
struct Message {
    event: String,
    data: String,
}

/// Takes the complete messages (each ended by a blank line) off the front of `buffer` (bytes,
/// `\r` removed), leaving an incomplete one — even one cut inside a UTF-8 character — for
/// the next chunk.
fn messages(buffer: &mut Vec<u8>) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
        let raw: Vec<u8> = buffer.drain(..end + 2).collect();
        let block = String::from_utf8_lossy(&raw);
        let mut message = Message::default();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => message.event = value.to_owned(),
                "data" => {
                    if !message.data.is_empty() {
                        message.data.push('\n');
                    }
                    message.data.push_str(value);
                }
                // Comments (""), `id`, `retry`: nothing to do.
                _ => {}
            }
        }
        if !message.event.is_empty() || !message.data.is_empty() {
            out.push(message);
        }
    }
    out
}

#[async_trait]
impl Subscription for HttpSubscription {
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn next(&mut self, _wait: Duration) -> Result<Feed, StoreError> {
        loop {
            let mut events: Vec<RevocationEvent> = Vec::new();
            let mut heartbeat = false;
            for message in messages(&mut self.buffer) {
                match message.event.as_str() {
                    "revocation" => {
                        let event: RevocationEvent =
                            serde_json::from_str(&message.data).map_err(|e| {
                                StoreError::Corrupt {
                                    what: "revocation feed event",
                                    detail: e.to_string(),
                                }
                            })?;
                        events.push(event);
                    }
                    "heartbeat" => {
                        heartbeat = true;
                        // Nothing this app may see up to there: resume from it after a drop
                        // (the feed leaves out other apps' entries).
                        if let Ok(at) = serde_json::from_str::<Cursor>(&message.data)
                            && at.epoch == self.cursor.epoch
                            && at.seq > self.cursor.seq
                        {
                            self.cursor = at;
                        }
                    }
                    "resnapshot" => return Ok(Feed::Resnapshot),
                    _ => {}
                }
            }
            if let Some(last) = events.last() {
                self.cursor = last.cursor.clone();
                return Ok(Feed::Events(events));
            }
            if heartbeat {
                return Ok(Feed::Events(Vec::new()));
            }
            let chunk = tokio::time::timeout(self.silence, self.response.chunk())
                .await
                .map_err(|_| StoreError::Timeout(self.silence))?
                .map_err(|e| StoreError::Unavailable(format!("revocation feed: {e}")))?;
            match chunk {
                Some(bytes) => self.buffer.extend(bytes.iter().filter(|b| **b != b'\r')),
                None => {
                    return Err(StoreError::Unavailable(
                        "the revocation feed closed the stream".to_owned(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_messages_are_taken_and_the_rest_waits() {
        let mut buffer = b"event: heartbeat\ndata: {\"epoch\":\"e\",\"seq\":1}\n\n: a comment\n\nevent: revocation\nid: e:2\ndata: {\"a\":1}\n\nevent: resn".to_vec();
        let got = messages(&mut buffer);
        assert_eq!(
            got,
            vec![
                Message {
                    event: "heartbeat".into(),
                    data: "{\"epoch\":\"e\",\"seq\":1}".into()
                },
                Message {
                    event: "revocation".into(),
                    data: "{\"a\":1}".into()
                },
            ]
        );
        assert_eq!(buffer, b"event: resn");
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut buffer = b"data: a\ndata: b\n\n".to_vec();
        assert_eq!(messages(&mut buffer)[0].data, "a\nb");
    }
}
