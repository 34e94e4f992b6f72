//! A Shared Signals receiver (OpenID SSF 1.0): an app follows Lanyard — or any SSF
//! transmitter — through the standard instead of Lanyard's own revocation feed.
//!
//! [`SsfReceiver::connect`] reads the transmitter's metadata
//! (`/.well-known/ssf-configuration`), creates a stream for this app (asking for CAEP
//! `session-revoked` and RISC `account-disabled`) with a token from the app's
//! [`TokenSource`](crate::client::TokenSource), and receives its events: by polling
//! ([`Delivery::Poll`], RFC 8936, acknowledging each event it took) or by push
//! ([`Delivery::Push`], RFC 8935) at a route the app mounts (`receive` with the `axum`
//! feature, or [`SsfReceiver::accept_push`]). Every SET is verified before anything changes:
//! `typ` `secevent+jwt`, the signature by a key of the transmitter's JWKS, `iss`, `aud` this
//! app, a `jti` not seen before, `iat`, one event, a `sub_id`.
//!
//! What it hears goes two ways: [`SsfReceiver::source`] is a [`RevocationSource`] for the
//! guard's mirror (a revoked session's `sid`, a disabled person's `sub` as a watermark), and
//! [`SsfReceiver::events`] tells the app (to end its web sessions:
//! `WebSignIn::end_sessions`).
//!
//! **Freshness.** SSF has no snapshot and no heartbeat, so the receiver proves the stream
//! alive itself: a poll that answered, or — by push — a verification event it asked for
//! (every `heartbeat`) and received. The mirror counts as fresh only while that proof is
//! recent; past it the guard answers 503 (or, if the app chose availability, stops checking
//! revocations), exactly as with Lanyard's own feed. With push, set the guard's
//! `staleness_bound` above twice the heartbeat.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::Validation;
use lanyard_store::{
    Clock, Cursor, Feed, Revocation, RevocationEvent, RevocationSet, Snapshot, StoreError,
    Subscription, SystemClock, Target, Timestamp,
};
use serde_json::{Value, json};

use crate::client::TokenSource;
use crate::keys::{HttpJwks, KeyCache};
use crate::mirror::RevocationSource;

/// CAEP `session-revoked`.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// RISC `account-disabled`.
pub const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
/// SSF `verification`.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
const PUSH: &str = "urn:ietf:rfc:8935";
const POLL: &str = "urn:ietf:rfc:8936";
/// How long after an account is disabled a transmitter may still sign a token for it (one
/// of its nodes acting on its copy of the account): an `account-disabled` watermark is set
/// this far past the event's `iat`.
const ISSUING_LAG: Duration = Duration::from_secs(2);
/// How many events the mirror's subscribers may fall behind before they take a snapshot.
const LOG: usize = 10_000;

/// How events reach the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver polls the transmitter this often (RFC 8936, `returnImmediately`).
    Poll {
        /// Between two polls.
        every: Duration,
    },
    /// The transmitter posts to `endpoint_url`, which the app serves with [`receive`] (RFC
    /// 8935); the receiver asks for a verification event every `heartbeat` to know the stream
    /// alive.
    Push {
        /// Where the app's route is, as the transmitter reaches it.
        endpoint_url: String,
        /// Between two verification requests (at least the stream's
        /// `min_verification_interval`).
        heartbeat: Duration,
    },
}

/// What the receiver needs.
#[derive(Clone)]
pub struct ReceiverConfig {
    /// The transmitter's issuer URL (its metadata is at
    /// `{transmitter}/.well-known/ssf-configuration`).
    pub transmitter: String,
    /// This app's client id: the `aud` its events carry.
    pub audience: String,
    /// Poll or push.
    pub delivery: Delivery,
    /// The event types asked for (default: `session-revoked`, `account-disabled`).
    pub events: Vec<String>,
    /// The longest life of the access tokens the app accepts: how long a revocation entry is
    /// kept (default one hour).
    pub max_token_lifetime: Duration,
    /// The stream's `description`, by which a restarted app finds and takes over the stream
    /// it made before (default `lanyard-rp for <audience>`). Replicas of one app that each
    /// keep a mirror give each its own (the host name, say): a stream's events go to
    /// whoever takes them, once.
    pub stream_name: String,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ReceiverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverConfig")
            .field("transmitter", &self.transmitter)
            .field("audience", &self.audience)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl ReceiverConfig {
    /// Follows `transmitter` for the app `audience`, delivered as `delivery`.
    pub fn new(transmitter: &str, audience: &str, delivery: Delivery) -> Self {
        Self {
            transmitter: transmitter.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            delivery,
            events: vec![SESSION_REVOKED.to_owned(), ACCOUNT_DISABLED.to_owned()],
            max_token_lifetime: Duration::from_secs(3600),
            stream_name: format!("lanyard-rp for {audience}"),
            clock: Arc::new(SystemClock),
        }
    }
}

/// What a verified event said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A sign-in session ended (`sid`), of the person `sub` when the transmitter named them
    /// by issuer and subject.
    SessionRevoked {
        /// The person, if named by `iss_sub`.
        sub: Option<String>,
        /// The session.
        sid: String,
    },
    /// The person's account was disabled.
    AccountDisabled {
        /// The person.
        sub: String,
    },
    /// Another event (its type and `sub_id`), verified.
    Other {
        /// The event type.
        event_type: String,
        /// Its subject.
        sub_id: Value,
    },
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The transmitter's metadata or keys could not be had, or it refused.
    #[error("the Shared Signals transmitter: {0}")]
    Transmitter(String),
}

/// Why a pushed SET was not taken: RFC 8935 §2.3's `err` and a description, and the status
/// to answer: 400 (refused for good: the transmitter moves on), 401 (not the stream's
/// `Authorization`), or 503 (not now — the transmitter's keys or clock cannot be checked
/// yet — send it again later; a poll neither acknowledges it nor reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushRejection {
    /// 400, 401 or 503.
    pub status: u16,
    /// `authentication_failed`, `invalid_request`, `invalid_key`, `invalid_issuer`,
    /// `invalid_audience`, `invalid_state`, `temporarily_unavailable`.
    pub err: &'static str,
    /// For the transmitter's operators.
    pub description: String,
}

impl PushRejection {
    fn new(err: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: 400,
            err,
            description: description.into(),
        }
    }

    fn later(description: impl Into<String>) -> Self {
        Self {
            status: 503,
            ..Self::new("temporarily_unavailable", description)
        }
    }

    /// Whether the SET should come again later rather than be given up.
    pub fn is_temporary(&self) -> bool {
        self.status == 503
    }

    /// The 400 answer's JSON body.
    pub fn body(&self) -> Value {
        json!({ "err": self.err, "description": self.description })
    }
}

struct Inner {
    config: ReceiverConfig,
    http: openidconnect::reqwest::Client,
    tokens: Arc<dyn TokenSource>,
    metadata: Value,
    stream_id: String,
    poll_url: Option<String>,
    push_secret: Option<String>,
    keys: KeyCache,
    /// The revocations heard, in order (the mirror's feed), and the epoch they belong to.
    log: Mutex<Log>,
    grew: tokio::sync::watch::Sender<u64>,
    events: tokio::sync::broadcast::Sender<SecurityEvent>,
    /// When the stream was last proven alive (ms).
    alive_at: AtomicI64,
    /// How long a proof counts.
    fresh_for: Duration,
    /// The `state` of the verification asked for last, and when it was asked.
    pending_state: Mutex<Option<(String, Timestamp)>>,
    seen: Mutex<HashMap<String, i64>>,
}

struct Log {
    epoch: String,
    first_seq: u64,
    /// The last [`LOG`] revocations, for followers that fell behind less than that.
    entries: Vec<RevocationEvent>,
    /// Every revocation still in force, however many arrived: what a snapshot holds.
    in_force: RevocationSet,
}

impl Log {
    fn new() -> Self {
        Log {
            epoch: random(9),
            first_seq: 1,
            entries: Vec::new(),
            in_force: RevocationSet::new(),
        }
    }

    /// Adds a revocation heard, at the next position.
    fn push(&mut self, revocation: Revocation) {
        let cursor = Cursor {
            epoch: self.epoch.clone(),
            seq: self.first_seq + self.entries.len() as u64,
        };
        self.in_force.apply(&revocation);
        let at = revocation.at;
        self.entries.push(RevocationEvent { cursor, revocation });
        if self.entries.len() > LOG {
            let drop = self.entries.len() - LOG;
            self.entries.drain(..drop);
            self.first_seq += drop as u64;
            self.in_force.prune(at);
        }
    }

    /// The position of the last revocation heard, and every one still in force at `now`.
    fn snapshot(&mut self, now: Timestamp) -> (Cursor, Vec<Revocation>) {
        self.in_force.prune(now);
        let cursor = Cursor {
            epoch: self.epoch.clone(),
            seq: self.first_seq + self.entries.len() as u64 - 1,
        };
        (cursor, self.in_force.iter().collect())
    }
}

/// A Shared Signals receiver for one app; cloning shares it. Its tasks stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct SsfReceiver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SsfReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsfReceiver")
            .field("stream_id", &self.inner.stream_id)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn random(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    let _ = aws_lc_rs::rand::fill(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

impl SsfReceiver {
    /// Reads the transmitter's metadata and keys, creates this app's stream, checks it with a
    /// verification round trip, and starts receiving (polling, or the push heartbeat).
    pub async fn connect(
        config: ReceiverConfig,
        tokens: Arc<dyn TokenSource>,
    ) -> Result<Self, ReceiverError> {
        let bad = |e: String| ReceiverError::Transmitter(e);
        let http = crate::http_client();
        let metadata: Value = http
            .get(well_known(&config.transmitter).map_err(bad)?)
            .send()
            .await
            .map_err(|e| bad(e.to_string()))?
            .text()
            .await
            .map_err(|e| bad(e.to_string()))
            .and_then(|t| serde_json::from_str(&t).map_err(|e| bad(e.to_string())))?;
        if metadata["issuer"].as_str() != Some(config.transmitter.as_str()) {
            return Err(bad(format!(
                "its metadata names the issuer {}, not {}",
                metadata["issuer"], config.transmitter
            )));
        }
        let jwks_uri = metadata["jwks_uri"]
            .as_str()
            .ok_or_else(|| bad("its metadata has no jwks_uri".to_owned()))?
            .to_owned();
        let keys = KeyCache::load_with_clock(
            Box::new(HttpJwks {
                http: http.clone(),
                uri: jwks_uri,
            }),
            Duration::from_secs(10),
            config.clock.clone(),
        )
        .await
        .map_err(bad)?;
        let mut body =
            json!({ "events_requested": config.events, "description": config.stream_name });
        let (push_secret, fresh_for) = match &config.delivery {
            Delivery::Poll { every } => (None, (*every * 3).max(Duration::from_secs(3))),
            Delivery::Push {
                endpoint_url,
                heartbeat,
            } => {
                let secret = random(24);
                body["delivery"] = json!({
                    "method": PUSH,
                    "endpoint_url": endpoint_url,
                    "authorization_header": format!("Bearer {secret}"),
                });
                (Some(secret), *heartbeat * 2 + Duration::from_secs(5))
            }
        };
        let endpoint = metadata["configuration_endpoint"]
            .as_str()
            .ok_or_else(|| bad("its metadata has no configuration_endpoint".to_owned()))?;
        // The stream this app made before (it restarted, or another replica runs): taken
        // over, so what waited in it while the app was away comes now, and restarts do not
        // pile up streams. Else a new one.
        let description = body["description"].clone();
        let earlier = call(&http, &tokens, "GET", endpoint, None)
            .await
            .ok()
            .and_then(|list| {
                list.as_array()?
                    .iter()
                    .find(|s| s["description"] == description)
                    .and_then(|s| s["stream_id"].as_str().map(str::to_owned))
            });
        let stream = match earlier {
            Some(id) => {
                body["stream_id"] = json!(id);
                if body.get("delivery").is_none() {
                    body["delivery"] = json!({ "method": POLL });
                }
                call(&http, &tokens, "PATCH", endpoint, Some(&body))
                    .await
                    .map_err(bad)?
            }
            None => call(&http, &tokens, "POST", endpoint, Some(&body))
                .await
                .map_err(bad)?,
        };
        let stream_id = stream["stream_id"]
            .as_str()
            .ok_or_else(|| bad(format!("it made no stream: {stream}")))?
            .to_owned();
        // SSF 1.0 §8.1.1.1: the stream is the issuer's; and only what `events_delivered`
        // names will come (a stream without revocations would still look alive).
        if stream["iss"].as_str() != Some(config.transmitter.as_str()) {
            return Err(bad(format!(
                "the stream names the issuer {}",
                stream["iss"]
            )));
        }
        let delivered: Vec<&str> = stream["events_delivered"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(missing) = config
            .events
            .iter()
            .find(|e| !delivered.contains(&e.as_str()))
        {
            return Err(bad(format!("the stream will not deliver {missing}")));
        }
        let poll_url = match config.delivery {
            Delivery::Poll { .. } => {
                if stream["delivery"]["method"] != POLL {
                    return Err(bad(format!("the stream is not polled: {stream}")));
                }
                Some(
                    stream["delivery"]["endpoint_url"]
                        .as_str()
                        .ok_or_else(|| bad("the stream has no poll endpoint".to_owned()))?
                        .to_owned(),
                )
            }
            Delivery::Push { .. } => None,
        };
        let receiver = Self {
            inner: Arc::new(Inner {
                http,
                tokens,
                metadata,
                stream_id,
                poll_url,
                push_secret,
                keys,
                log: Mutex::new(Log::new()),
                grew: tokio::sync::watch::Sender::new(0),
                events: tokio::sync::broadcast::channel(1024).0,
                alive_at: AtomicI64::new(0),
                fresh_for,
                pending_state: Mutex::new(None),
                seen: Mutex::new(HashMap::new()),
                config,
            }),
        };
        receiver.start();
        Ok(receiver)
    }

    /// The stream's id at the transmitter.
    pub fn stream_id(&self) -> &str {
        &self.inner.stream_id
    }

    /// The revocations heard, for the guard's mirror (`Guard::connect`).
    pub fn source(&self) -> Arc<dyn RevocationSource> {
        Arc::new(Source(Arc::downgrade(&self.inner)))
    }

    /// Every verified event, as it comes.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<SecurityEvent> {
        self.inner.events.subscribe()
    }

    /// Whether the stream was proven alive recently enough for the mirror to count as fresh.
    pub fn is_fresh(&self) -> bool {
        self.inner.fresh()
    }

    /// Deletes the stream at the transmitter (the app is going away for good).
    pub async fn delete(&self) -> Result<(), ReceiverError> {
        let endpoint = self.inner.metadata["configuration_endpoint"]
            .as_str()
            .unwrap_or_default();
        let url = format!("{endpoint}?stream_id={}", self.inner.stream_id);
        call(&self.inner.http, &self.inner.tokens, "DELETE", &url, None)
            .await
            .map(|_| ())
            .map_err(ReceiverError::Transmitter)
    }

    /// Takes a pushed SET (RFC 8935): `authorization` and `content_type` as the request
    /// carried them. `Ok`: answer 202; `Err`: answer 400 with [`PushRejection::body`].
    pub async fn accept_push(
        &self,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: &str,
    ) -> Result<(), PushRejection> {
        let expected = self
            .inner
            .push_secret
            .as_ref()
            .map(|s| format!("Bearer {s}"))
            .ok_or_else(|| {
                PushRejection::new("invalid_request", "this receiver polls; it takes no pushes")
            })?;
        let given = authorization.unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected.as_bytes())
            .is_err()
        {
            return Err(PushRejection {
                status: 401,
                ..PushRejection::new(
                    "authentication_failed",
                    "the Authorization header is not the one this stream was given",
                )
            });
        }
        let media = content_type
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim();
        if !media.eq_ignore_ascii_case("application/secevent+jwt") {
            return Err(PushRejection::new(
                "invalid_request",
                "the Content-Type must be application/secevent+jwt",
            ));
        }
        self.inner.take(body.trim()).await
    }

    fn start(&self) {
        let weak = Arc::downgrade(&self.inner);
        match self.inner.config.delivery.clone() {
            Delivery::Poll { every } => {
                tokio::spawn(async move {
                    let mut ack: Vec<String> = Vec::new();
                    let mut errs: Vec<(String, PushRejection)> = Vec::new();
                    loop {
                        let Some(inner) = weak.upgrade() else { return };
                        let mut again = false;
                        match inner.poll_once(&ack, &errs).await {
                            Ok(polled) => {
                                again = polled.again
                                    && (!polled.taken.is_empty() || !polled.refused.is_empty());
                                ack = polled.taken;
                                errs = polled.refused;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "Shared Signals: a poll failed; trying again");
                            }
                        }
                        drop(inner);
                        // More waiting (and progress made): at once; else after `every`.
                        if !again {
                            tokio::time::sleep(every).await;
                        }
                    }
                });
            }
            Delivery::Push { heartbeat, .. } => {
                tokio::spawn(async move {
                    loop {
                        let Some(inner) = weak.upgrade() else { return };
                        if let Err(e) = inner.ask_verification().await {
                            tracing::warn!(error = %e, "Shared Signals: a verification request failed; trying again");
                        }
                        drop(inner);
                        tokio::time::sleep(heartbeat).await;
                    }
                });
            }
        }
    }
}

/// Calls the transmitter with a bearer token from `tokens`, renewing it once on 401: the
/// JSON answer.
async fn call(
    http: &openidconnect::reqwest::Client,
    tokens: &Arc<dyn TokenSource>,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let text = call_text(http, tokens, method, url, body).await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// [`call`], the answer as text.
async fn call_text(
    http: &openidconnect::reqwest::Client,
    tokens: &Arc<dyn TokenSource>,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<String, String> {
    let mut token = tokens.token().await.map_err(|e| e.to_string())?;
    for attempt in 0..2 {
        let method = openidconnect::reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut request = http.request(method, url).bearer_auth(&token);
        if let Some(body) = body {
            request = request
                .header(
                    openidconnect::reqwest::header::CONTENT_TYPE,
                    "application/json",
                )
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status == 401 && attempt == 0 {
            token = tokens.renew(&token).await.map_err(|e| e.to_string())?;
            continue;
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {text}"));
        }
        return Ok(text);
    }
    Err(format!("{url} refused the token twice"))
}

/// What one poll did: the SETs to acknowledge next, those refused, and whether to poll again
/// at once (more waited).
struct Polled {
    taken: Vec<String>,
    refused: Vec<(String, PushRejection)>,
    again: bool,
}

/// A poll's answer (RFC 8936 §2.4), its SETs read in the order the object lists them.
#[derive(Debug, serde::Deserialize)]
pub struct PollAnswer {
    /// Each SET by its `jti`, in order.
    pub sets: InOrder,
    /// More wait.
    #[serde(default, rename = "moreAvailable")]
    pub more_available: bool,
}

/// A JSON object's members, in the order written.
#[derive(Debug)]
pub struct InOrder(pub Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for InOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = InOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of SETs by jti")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<InOrder, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(InOrder(pairs))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    jti: String,
    iat: i64,
    #[serde(default)]
    sub_id: Option<Value>,
    events: serde_json::Map<String, Value>,
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
}

impl Inner {
    fn now(&self) -> Timestamp {
        self.config.clock.now()
    }

    fn fresh(&self) -> bool {
        match self.alive_at.load(Ordering::Acquire) {
            0 => false,
            ms => Timestamp::from_millis(ms).until(self.now()) <= self.fresh_for,
        }
    }

    fn alive_since(&self, at: Timestamp) {
        self.alive_at
            .fetch_max(at.as_millis().max(1), Ordering::AcqRel);
    }

    async fn ask_verification(&self) -> Result<(), String> {
        let state = random(12);
        *self.pending_state.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((state.clone(), self.now()));
        let url = self.metadata["verification_endpoint"]
            .as_str()
            .ok_or("the transmitter has no verification endpoint")?;
        let body = json!({ "stream_id": self.stream_id, "state": state });
        call(&self.http, &self.tokens, "POST", url, Some(&body))
            .await
            .map(|_| ())
    }

    /// One poll: acknowledges `ack`, reports `errs`; returns what to acknowledge next.
    async fn poll_once(
        &self,
        ack: &[String],
        errs: &[(String, PushRejection)],
    ) -> Result<Polled, String> {
        let url = self.poll_url.as_deref().ok_or("not a polled stream")?;
        let asked_at = self.now();
        let set_errs: serde_json::Map<String, Value> = errs
            .iter()
            .map(|(jti, e)| (jti.clone(), e.body()))
            .collect();
        let body =
            json!({ "ack": ack, "setErrs": set_errs, "returnImmediately": true, "maxEvents": 100 });
        let text = call_text(&self.http, &self.tokens, "POST", url, Some(&body)).await?;
        // In the order the object lists them: the order they happened.
        let answer: PollAnswer =
            serde_json::from_str(&text).map_err(|e| format!("the poll's answer: {e}"))?;
        let mut taken = Vec::new();
        let mut refused = Vec::new();
        let mut complete = !answer.more_available;
        for (jti, set) in answer.sets.0 {
            match self.take(&set).await {
                Ok(()) => taken.push(jti),
                Err(e) if e.is_temporary() => {
                    // Not now: neither taken nor refused; it and the later ones come again.
                    tracing::warn!(%jti, description = %e.description, "Shared Signals: an event could not be checked yet");
                    complete = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!(%jti, err = e.err, description = %e.description, "Shared Signals: an event was refused");
                    refused.push((jti, e));
                }
            }
        }
        // Current as of when it asked, only once everything waiting then was taken.
        if complete {
            self.alive_since(asked_at);
        }
        Ok(Polled {
            taken,
            refused,
            again: !complete,
        })
    }

    /// Verifies one SET and acts on it.
    async fn take(&self, set: &str) -> Result<(), PushRejection> {
        let header = crate::validate::header_of_type(set, "secevent+jwt").map_err(|_| {
            PushRejection::new(
                "invalid_request",
                "not a Security Event Token (typ secevent+jwt, RS256, ES256 or EdDSA)",
            )
        })?;
        let kid = header
            .kid
            .ok_or_else(|| PushRejection::new("invalid_key", "the SET names no key (kid)"))?;
        // An unknown key may be one not fetched yet (a rotation, a JWKS outage, the refetch
        // cooldown): later, never a refusal that would make the transmitter drop a revocation.
        let key = self.keys.key(&kid).await.ok_or_else(|| {
            PushRejection::later("the SET is signed with a key this app cannot find yet")
        })?;
        let mut validation = Validation::new(key.alg);
        validation.set_issuer(&[&self.config.transmitter]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["iss", "aud", "iat"]);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let claims = jsonwebtoken::decode::<Claims>(set, &key.key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::InvalidIssuer => {
                        PushRejection::new("invalid_issuer", "the SET's iss is not the transmitter")
                    }
                    ErrorKind::InvalidAudience => {
                        PushRejection::new("invalid_audience", "the SET is not meant for this app")
                    }
                    ErrorKind::InvalidSignature => {
                        PushRejection::new("invalid_key", "the SET's signature is not valid")
                    }
                    _ => {
                        PushRejection::new("invalid_request", format!("the SET is malformed: {e}"))
                    }
                }
            })?
            .claims;
        let now = self.now().as_secs();
        if claims.iat > now + 60 {
            // Clocks apart: later, when they agree, rather than lose the event.
            return Err(PushRejection::later(
                "the SET was issued in the future by this app's clock",
            ));
        }
        if claims.sub.is_some() || claims.exp.is_some() {
            return Err(PushRejection::new(
                "invalid_request",
                "a SET carries no sub or exp (SSF 1.0 §4)",
            ));
        }
        if claims.events.len() != 1 {
            return Err(PushRejection::new(
                "invalid_request",
                "a SET carries one event",
            ));
        }
        let sub_id = claims
            .sub_id
            .ok_or_else(|| PushRejection::new("invalid_request", "the SET has no sub_id"))?;
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            let keep = i64::try_from(self.config.max_token_lifetime.as_secs()).unwrap_or(3600);
            seen.retain(|_, at| *at + keep > now);
            if seen.insert(claims.jti.clone(), now).is_some() {
                // Delivered again (at least once): taken before, nothing more to do.
                return Ok(());
            }
        }
        let (event_type, event) = claims.events.into_iter().next().unwrap_or_default();
        let at = Timestamp::from_secs(claims.iat);
        let heard = match event_type.as_str() {
            VERIFICATION => {
                let mut pending = self.pending_state.lock().unwrap_or_else(|p| p.into_inner());
                let asked = pending
                    .as_ref()
                    .filter(|(state, _)| Some(state.as_str()) == event["state"].as_str())
                    .map(|(_, at)| *at);
                let Some(asked) = asked else {
                    return Err(PushRejection::new(
                        "invalid_state",
                        "this verification's state is not the one asked for last",
                    ));
                };
                *pending = None;
                drop(pending);
                // What was queued before the request came first (Lanyard queues a
                // verification behind the stream's events: docs/signals.md).
                self.alive_since(asked);
                return Ok(());
            }
            // The session in a complex subject, or the subject itself when it is an opaque
            // session id (CAEP 1.0's own example).
            SESSION_REVOKED => match sub_id["session"]["id"].as_str().or_else(|| {
                (sub_id["format"] == "opaque")
                    .then(|| sub_id["id"].as_str())
                    .flatten()
            }) {
                Some(sid) => SecurityEvent::SessionRevoked {
                    sub: person(&sub_id["user"], &self.config.transmitter),
                    sid: sid.to_owned(),
                },
                None => SecurityEvent::Other { event_type, sub_id },
            },
            ACCOUNT_DISABLED => {
                let named = if sub_id["format"] == "complex" {
                    &sub_id["user"]
                } else {
                    &sub_id
                };
                match person(named, &self.config.transmitter) {
                    Some(sub) => SecurityEvent::AccountDisabled { sub },
                    None => SecurityEvent::Other { event_type, sub_id },
                }
            }
            _ => SecurityEvent::Other { event_type, sub_id },
        };
        let target = match &heard {
            SecurityEvent::SessionRevoked { sid, .. } => Some((Target::Sid(sid.clone()), at)),
            // Tokens issued at or before the watermark are refused. A transmitter with several
            // nodes may sign a token for the person a moment after the account was disabled
            // (Lanyard's nodes trust their copy of a person for a second): the watermark is
            // set past that, as Lanyard's own feed does.
            SecurityEvent::AccountDisabled { sub } => {
                Some((Target::Sub(sub.clone()), at.plus(ISSUING_LAG)))
            }
            SecurityEvent::Other { event_type, sub_id } => {
                if [SESSION_REVOKED, ACCOUNT_DISABLED].contains(&event_type.as_str()) {
                    // Taken (the transmitter must not send it again), but it revokes nothing
                    // here: say so, since the tokens it meant stay valid until they expire.
                    tracing::warn!(%event_type, subject = %sub_id, "Shared Signals: a revocation names a subject this receiver cannot match (not a session, nor an iss_sub of its transmitter); nothing was revoked");
                }
                None
            }
        };
        if let Some((target, at)) = target {
            self.record(target, at);
        }
        let _ = self.events.send(heard);
        Ok(())
    }

    fn record(&self, target: Target, at: Timestamp) {
        let revocation = Revocation {
            target,
            at,
            until: at
                .plus(self.config.max_token_lifetime)
                .plus(Duration::from_secs(60)),
        };
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(revocation);
        self.grew.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Where the metadata of the transmitter `issuer` is: `/.well-known/ssf-configuration`
/// between the host and the issuer's path (SSF 1.0 §7.2).
fn well_known(issuer: &str) -> Result<String, String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("{issuer}: {e}"))?;
    let path = url.path().trim_end_matches('/');
    Ok(format!(
        "{}/.well-known/ssf-configuration{path}",
        url.origin().ascii_serialization()
    ))
}

/// The `sub` of an `iss_sub` identifier of `issuer`.
fn person(id: &Value, issuer: &str) -> Option<String> {
    (id["format"] == "iss_sub" && id["iss"].as_str() == Some(issuer))
        .then(|| id["sub"].as_str().map(str::to_owned))
        .flatten()
}

/// The receiver as the mirror's source.
struct Source(std::sync::Weak<Inner>);

impl Source {
    fn inner(&self) -> Result<Arc<Inner>, StoreError> {
        self.0.upgrade().ok_or_else(|| {
            StoreError::Unavailable("the Shared Signals receiver is gone".to_owned())
        })
    }
}

#[async_trait]
impl RevocationSource for Source {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let inner = self.inner()?;
        if !inner.fresh() {
            return Err(StoreError::Unavailable(
                "the Shared Signals stream has not been proven alive yet".to_owned(),
            ));
        }
        let (cursor, revocations) = inner
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .snapshot(inner.now());
        Ok(Snapshot {
            cursor,
            revocations,
            leeway_secs: 60,
        })
    }

    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        let inner = self.inner()?;
        let grew = inner.grew.subscribe();
        Ok(Box::new(Follow {
            inner: Arc::downgrade(&inner),
            cursor: from.clone(),
            grew,
            proof_seen: 0,
        }))
    }
}

struct Follow {
    inner: std::sync::Weak<Inner>,
    cursor: Cursor,
    grew: tokio::sync::watch::Receiver<u64>,
    /// The last proof of the stream (`alive_at`) this follower passed on as "current".
    proof_seen: i64,
}

impl Follow {
    fn after_cursor(&self, inner: &Inner) -> Option<Vec<RevocationEvent>> {
        let log = inner.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.epoch != self.cursor.epoch || self.cursor.seq + 1 < log.first_seq {
            return None;
        }
        let start = usize::try_from(self.cursor.seq + 1 - log.first_seq).unwrap_or(usize::MAX);
        Some(log.entries.iter().skip(start).cloned().collect())
    }
}

#[async_trait]
impl Subscription for Follow {
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn next(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let inner = self
                .inner
                .upgrade()
                .ok_or_else(|| StoreError::Unavailable("the receiver is gone".to_owned()))?;
            let Some(events) = self.after_cursor(&inner) else {
                return Ok(Feed::Resnapshot);
            };
            if let Some(last) = events.last() {
                self.cursor = last.cursor.clone();
                return Ok(Feed::Events(events));
            }
            drop(inner);
            if tokio::time::timeout_at(deadline, self.grew.changed())
                .await
                .is_err()
            {
                // Nothing new: "you are current" only on a proof of the stream newer than the
                // last one passed on, so the mirror's staleness bound counts from the
                // transmitter's last word, not from this wait.
                let inner = self
                    .inner
                    .upgrade()
                    .ok_or_else(|| StoreError::Unavailable("the receiver is gone".to_owned()))?;
                let proof = inner.alive_at.load(Ordering::Acquire);
                if inner.fresh() && proof > self.proof_seen {
                    self.proof_seen = proof;
                    return Ok(Feed::Events(Vec::new()));
                }
                return Err(StoreError::Unavailable(
                    "no new proof from the Shared Signals transmitter".to_owned(),
                ));
            }
        }
    }
}

#[cfg(feature = "axum")]
pub use crate::axum_glue::receive_signals as receive;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_is_between_the_host_and_the_issuers_path() {
        assert_eq!(
            well_known("https://tr.example.com").unwrap(),
            "https://tr.example.com/.well-known/ssf-configuration"
        );
        assert_eq!(
            well_known("https://tr.example.com/issuer1/").unwrap(),
            "https://tr.example.com/.well-known/ssf-configuration/issuer1"
        );
    }

    /// A snapshot holds every revocation still in force, not only the last [`LOG`] the
    /// followers' log keeps; expired ones drop out.
    #[test]
    fn a_snapshot_holds_every_revocation_in_force_however_many_came_since() {
        let hour = Duration::from_secs(3600);
        let at = |s: i64| Timestamp::from_secs(1_000_000 + s);
        let revocation = |target: Target, at: Timestamp| Revocation {
            target,
            at,
            until: at.plus(hour),
        };
        let mut log = Log::new();
        log.push(revocation(Target::Sub("alice".to_owned()), at(0)));
        for i in 0..LOG + 5 {
            log.push(revocation(Target::Sid(format!("s{i}")), at(1)));
        }
        assert_eq!(log.entries.len(), LOG, "the followers' log is capped");
        let (cursor, in_force) = log.snapshot(at(2));
        assert_eq!(cursor.seq, (LOG + 6) as u64);
        assert_eq!(in_force.len(), LOG + 6);
        assert!(
            in_force
                .iter()
                .any(|r| r.target == Target::Sub("alice".to_owned())),
            "the first one is still in force"
        );
        let (_, later) = log.snapshot(at(0).plus(hour).plus(Duration::from_millis(500)));
        assert_eq!(later.len(), LOG + 5, "alice's ran out");
    }
}
