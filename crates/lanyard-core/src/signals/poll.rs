//! Poll delivery (RFC 8936): the receiver of a polled stream posts to the stream's own
//! endpoint, acknowledging what it took (`ack`) or could not take (`setErrs`), and gets the
//! events still waiting, oldest first, signed now. Those not acknowledged come again in the
//! next poll (at least once). Without `returnImmediately` the answer waits up to
//! [`POLL_WAIT`] for an event (long polling).

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::set::SET_TYP;
use super::streams::{SignalError, owned};
use crate::Core;
use crate::model::{Channel, DeliveryMethod, StreamStatus};

/// How long a poll without `returnImmediately` waits for an event.
pub const POLL_WAIT: Duration = Duration::from_secs(20);
/// The most events one answer carries (`moreAvailable` says when more wait).
const MAX_EVENTS: u64 = 100;
/// How often a waiting poll looks again (events queued on another node ring no bell here).
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// What a poll asks (RFC 8936 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PollRequest {
    /// At most this many events (`maxEvents`; 0: acknowledge only).
    pub max_events: Option<u64>,
    /// Answer at once, even with nothing (`returnImmediately`).
    pub return_immediately: bool,
    /// Events taken (`ack`).
    pub ack: Vec<String>,
    /// Events that could not be taken, and why (`setErrs`).
    pub set_errs: Vec<(String, String)>,
}

impl PollRequest {
    /// Reads a poll's JSON body (an empty body is an empty object).
    pub fn parse(body: &Value) -> Result<Self, SignalError> {
        let empty = Map::new();
        let map = match body {
            Value::Null => &empty,
            Value::Object(map) => map,
            _ => return Err(SignalError::invalid("the body must be a JSON object")),
        };
        let mut request = Self::default();
        match map.get("maxEvents") {
            None | Some(Value::Null) => {}
            Some(v) => {
                request.max_events = Some(v.as_u64().ok_or_else(|| {
                    SignalError::invalid("maxEvents must be a non-negative integer")
                })?);
            }
        }
        match map.get("returnImmediately") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => request.return_immediately = *b,
            Some(_) => {
                return Err(SignalError::invalid(
                    "returnImmediately must be true or false",
                ));
            }
        }
        match map.get("ack") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    let jti = item.as_str().ok_or_else(|| {
                        SignalError::invalid("ack must be an array of jti strings")
                    })?;
                    request.ack.push(jti.to_owned());
                }
            }
            Some(_) => return Err(SignalError::invalid("ack must be an array of jti strings")),
        }
        match map.get("setErrs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(errs)) => {
                for (jti, err) in errs {
                    let code = err["err"].as_str().ok_or_else(|| {
                        SignalError::invalid("each setErrs member needs an err string")
                    })?;
                    let description = err["description"].as_str().unwrap_or_default();
                    let why =
                        format!("the receiver could not take the event: {code} {description}");
                    request
                        .set_errs
                        .push((jti.clone(), why.trim_end().to_owned()));
                }
            }
            Some(_) => return Err(SignalError::invalid("setErrs must be an object")),
        }
        if request.ack.len() + request.set_errs.len() > 1000 {
            return Err(SignalError::invalid(
                "at most 1000 events may be acknowledged in one poll",
            ));
        }
        Ok(request)
    }
}

/// A poll's answer: the SETs, oldest first, and whether more wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollAnswer {
    /// Each event's `jti` and SET, oldest first.
    pub sets: Vec<(String, String)>,
    /// More events wait than were sent.
    pub more_available: bool,
}

impl PollAnswer {
    /// The RFC 8936 body, `{"sets": {jti: SET, ...}, "moreAvailable": ...}`, with the SETs in
    /// the order they happened (a JSON object keeps the order it is written in; receivers
    /// that read it in order, as JavaScript and Python do, see them so).
    pub fn to_json(&self) -> String {
        let sets: Vec<String> = self
            .sets
            .iter()
            .map(|(jti, set)| format!("{}:{}", json!(jti), json!(set)))
            .collect();
        format!(
            r#"{{"sets":{{{}}},"moreAvailable":{}}}"#,
            sets.join(","),
            self.more_available
        )
    }
}

/// Answers a poll of `client_id`'s stream `stream_id`.
/// Waiting ends early when `stopping` turns true (the server is shutting down).
pub async fn poll(
    core: &Core,
    client_id: &str,
    stream_id: &str,
    request: PollRequest,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Result<PollAnswer, SignalError> {
    let stream = owned(core, client_id, stream_id).await?;
    if stream.config.method != DeliveryMethod::Poll {
        return Err(SignalError::invalid(
            "this stream is delivered by push, not polled: change its delivery first",
        ));
    }
    let channel = Channel::Stream(stream_id.to_owned());
    let now = core.clock.now();
    let events = core.db.events();
    events
        .acknowledge(&channel, &request.ack, "delivered", None, now)
        .await?;
    for (jti, why) in &request.set_errs {
        events
            .acknowledge(
                &channel,
                std::slice::from_ref(jti),
                "failed",
                Some(why),
                now,
            )
            .await?;
    }
    let limit = request.max_events.unwrap_or(MAX_EVENTS).min(MAX_EVENTS);
    if limit == 0 || stream.status != StreamStatus::Enabled {
        // Acknowledging only; or paused: its events are held until it is enabled again.
        return Ok(PollAnswer {
            sets: Vec::new(),
            more_available: false,
        });
    }
    let mut bell = core.outbox_bell.subscribe();
    let deadline = tokio::time::Instant::now() + POLL_WAIT;
    let waiting = loop {
        let waiting = events.pending(&channel, limit + 1).await?;
        if !waiting.is_empty() || request.return_immediately || *stopping.borrow() {
            break waiting;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break Vec::new(),
            _ = bell.changed() => {}
            () = tokio::time::sleep(LOOK_AGAIN) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    };
    let more = waiting.len() as u64 > limit;
    let mut sets = Vec::new();
    for event in waiting
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
    {
        let set = core.keys.sign(SET_TYP, &event.payload).await.map_err(|e| {
            tracing::error!(error = %e, "an event could not be signed");
            SignalError::from(crate::db::DbError::Unavailable(e.to_string()))
        })?;
        sets.push((event.jti, set));
    }
    Ok(PollAnswer {
        sets,
        more_available: more,
    })
}
