//! The stream management API's work (SSF 1.0 §8.1): each call on behalf of a receiver (the
//! client whose `lanyard:ssf` token called), on its own streams only; another's stream is
//! "not found", as one that does not exist. Every change is audited as `ssf.*`.
//!
//! What Lanyard chose where SSF leaves it open: a receiver may have up to [`MAX_STREAMS`]
//! streams; a stream without `delivery` is polled; `default_subjects` may be chosen per
//! stream (`ALL`, the default, or `NONE`); subjects are people, named `iss_sub`, `email` or
//! `complex` with a `user`, and adding one Lanyard does not know answers as adding one it
//! does (who has an account is not told); the push endpoint's `authorization_header` is
//! kept sealed and never shown again.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::set::{self, ssf};
use crate::Core;
use crate::crypto::random_token;
use crate::db::DbError;
use crate::model::{
    Channel, DefaultSubjects, DeliveryMethod, NewEvent, Stream, StreamConfig, StreamStatus,
    SubjectRule,
};

/// How many streams one receiver may have.
pub const MAX_STREAMS: usize = 10;
/// How long a receiver waits between two verification requests (`min_verification_interval`).
pub const MIN_VERIFICATION_INTERVAL: Duration = Duration::from_secs(10);
/// Where a polled stream's receiver polls: this, then the stream id.
pub const POLL_PATH: &str = "/ssf/poll/";
const MAX_DESCRIPTION: usize = 500;
const MAX_HEADER: usize = 4096;
const MAX_STATE: usize = 1024;
const MAX_URL: usize = 2048;

/// Why a stream call was refused: the HTTP status, an error code and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalError {
    /// 400, 404, 409, 429 or 503.
    pub status: u16,
    /// A short code (`invalid_request`, `not_found`, `conflict`, `too_many_requests`,
    /// `temporarily_unavailable`).
    pub err: &'static str,
    /// For people.
    pub description: String,
    /// Seconds to wait (429, 503).
    pub retry_after: Option<u64>,
}

impl SignalError {
    fn new(status: u16, err: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            err,
            description: description.into(),
            retry_after: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid(description: impl Into<String>) -> Self {
        Self::new(400, "invalid_request", description)
    }

    fn not_found(stream_id: &str) -> Self {
        Self::new(
            404,
            "not_found",
            format!("you have no stream {stream_id:?}"),
        )
    }
}

impl From<DbError> for SignalError {
    fn from(e: DbError) -> Self {
        tracing::error!(error = %e, "a stream call could not reach the database");
        Self {
            retry_after: Some(1),
            ..Self::new(503, "temporarily_unavailable", "try again in a moment")
        }
    }
}

impl std::fmt::Display for SignalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.err, self.description)
    }
}

fn actor(client_id: &str) -> String {
    format!("ssf:{client_id}")
}

async fn audit<T>(
    core: &Core,
    client_id: &str,
    action: &str,
    stream_id: &str,
    result: &Result<T, SignalError>,
) {
    core.record(
        &actor(client_id),
        action,
        &format!("stream:{stream_id}"),
        result,
    )
    .await;
}

/// The stream as SSF shows it (§8.1.1).
fn render(core: &Core, stream: &Stream) -> Value {
    let mut delivery = json!({ "method": stream.config.method.urn() });
    delivery["endpoint_url"] = match stream.config.method {
        DeliveryMethod::Push => json!(stream.config.endpoint_url),
        DeliveryMethod::Poll => json!(core.config.url(&format!("{POLL_PATH}{}", stream.stream_id))),
    };
    let mut out = json!({
        "stream_id": stream.stream_id,
        "iss": core.config.issuer,
        "aud": stream.client_id,
        "events_supported": set::event_types(),
        "events_requested": stream.config.events_requested,
        "events_delivered": set::delivered(&stream.config),
        "delivery": delivery,
        "min_verification_interval": MIN_VERIFICATION_INTERVAL.as_secs(),
        "default_subjects": stream.config.default_subjects,
    });
    if let Some(d) = &stream.config.description {
        out["description"] = json!(d);
    }
    out
}

fn object(body: &Value) -> Result<&Map<String, Value>, SignalError> {
    body.as_object()
        .ok_or_else(|| SignalError::invalid("the body must be a JSON object"))
}

fn string_member<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, SignalError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SignalError::invalid(format!("{name} must be a string"))),
    }
}

fn stream_id_of(body: &Map<String, Value>) -> Result<&str, SignalError> {
    string_member(body, "stream_id")?.ok_or_else(|| SignalError::invalid("stream_id is required"))
}

/// The caller's stream `stream_id`, or 404.
pub(super) async fn owned(
    core: &Core,
    client_id: &str,
    stream_id: &str,
) -> Result<Stream, SignalError> {
    match core.db.streams().get(stream_id).await? {
        Some(stream) if stream.client_id == client_id => Ok(stream),
        _ => Err(SignalError::not_found(stream_id)),
    }
}

/// Reads what a receiver may choose (`events_requested`, `delivery`, `description`,
/// `default_subjects`) from `body` into `config`: members absent keep their value
/// (`replace`: are removed).
fn receiver_supplied(
    core: &Core,
    body: &Map<String, Value>,
    config: &mut StreamConfig,
    header: &mut Option<String>,
    replace: bool,
) -> Result<(), SignalError> {
    match body.get("events_requested") {
        Some(Value::Array(items)) => {
            let mut requested = Vec::new();
            for item in items {
                let Some(uri) = item.as_str() else {
                    return Err(SignalError::invalid(
                        "events_requested must be an array of event type URIs",
                    ));
                };
                if uri.len() > MAX_URL {
                    return Err(SignalError::invalid(
                        "an event type in events_requested is too long",
                    ));
                }
                if !requested.iter().any(|r| r == uri) {
                    requested.push(uri.to_owned());
                }
            }
            if requested.len() > 50 {
                return Err(SignalError::invalid(
                    "events_requested names more than 50 event types",
                ));
            }
            config.events_requested = requested;
        }
        None | Some(Value::Null) if replace => config.events_requested.clear(),
        None | Some(Value::Null) => {}
        Some(_) => {
            return Err(SignalError::invalid(
                "events_requested must be an array of event type URIs",
            ));
        }
    }
    match string_member(body, "description")? {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => {
            return Err(SignalError::invalid(format!(
                "description is longer than {MAX_DESCRIPTION} characters"
            )));
        }
        Some(d) => config.description = Some(d.to_owned()),
        None if replace || body.get("description").is_some() => config.description = None,
        None => {}
    }
    match string_member(body, "default_subjects")? {
        Some("ALL") => config.default_subjects = DefaultSubjects::All,
        Some("NONE") => config.default_subjects = DefaultSubjects::None,
        Some(other) => {
            return Err(SignalError::invalid(format!(
                "default_subjects must be \"ALL\" or \"NONE\", not {other:?}"
            )));
        }
        None if replace => config.default_subjects = DefaultSubjects::All,
        None => {}
    }
    match body.get("delivery") {
        Some(Value::Object(delivery)) => {
            let method = string_member(delivery, "method")?
                .ok_or_else(|| SignalError::invalid("delivery.method is required"))?;
            let method = DeliveryMethod::parse(method).ok_or_else(|| {
                SignalError::invalid(format!(
                    "delivery.method {method:?} is not supported: use urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)"
                ))
            })?;
            config.method = method;
            match method {
                DeliveryMethod::Push => {
                    let url = string_member(delivery, "endpoint_url")?.ok_or_else(|| {
                        SignalError::invalid("delivery.endpoint_url is required for push delivery")
                    })?;
                    check_endpoint(core, url)?;
                    let same_endpoint = config.endpoint_url.as_deref() == Some(url);
                    config.endpoint_url = Some(url.to_owned());
                    *header = match string_member(delivery, "authorization_header")? {
                        Some(h) if h.len() > MAX_HEADER || h.chars().any(char::is_control) => {
                            return Err(SignalError::invalid(
                                "delivery.authorization_header must be one line of at most 4096 bytes",
                            ));
                        }
                        Some(h) => Some(h.to_owned()),
                        // Never shown, so a read-modify-PATCH cannot send it back: kept while
                        // the endpoint stays (a PUT, which replaces, removes it).
                        None if !replace && same_endpoint => header.take(),
                        None => None,
                    };
                }
                DeliveryMethod::Poll => {
                    // Lanyard's own endpoint: whatever the receiver sent is not used.
                    config.endpoint_url = None;
                    *header = None;
                }
            }
        }
        None | Some(Value::Null) if replace => {
            config.method = DeliveryMethod::Poll;
            config.endpoint_url = None;
            *header = None;
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err(SignalError::invalid("delivery must be an object")),
    }
    Ok(())
}

/// A push endpoint: an absolute `https` URL (or `http` when Lanyard's own issuer is, in
/// development), without credentials or a fragment. Whether its address may be reached is
/// decided at each delivery (`outbound`).
fn check_endpoint(core: &Core, url: &str) -> Result<(), SignalError> {
    let bad = |why: &str| SignalError::invalid(format!("delivery.endpoint_url {why}"));
    if url.len() > MAX_URL {
        return Err(bad("is too long"));
    }
    let parsed = url::Url::parse(url).map_err(|_| bad("must be an absolute URL"))?;
    let http_allowed = core.config.issuer.starts_with("http://");
    match parsed.scheme() {
        "https" => {}
        "http" if http_allowed => {}
        _ => return Err(bad("must be an https URL")),
    }
    if parsed.host_str().is_none() {
        return Err(bad("must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad(
            "must not carry credentials (use delivery.authorization_header)",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    Ok(())
}

/// Transmitter-supplied members a receiver sent back must be what they are (§8.1.1.3).
fn check_transmitter_supplied(
    body: &Map<String, Value>,
    before: &Value,
) -> Result<(), SignalError> {
    for name in [
        "iss",
        "events_supported",
        "events_delivered",
        "min_verification_interval",
    ] {
        if let Some(sent) = body.get(name)
            && sent != &before[name]
        {
            return Err(SignalError::invalid(format!(
                "{name} is set by Lanyard and cannot be changed"
            )));
        }
    }
    if let Some(aud) = body.get("aud") {
        let ours = &before["aud"];
        let same = aud == ours
            || aud
                .as_array()
                .is_some_and(|a| a.len() == 1 && &a[0] == ours);
        if !same {
            return Err(SignalError::invalid(
                "aud is set by Lanyard and cannot be changed",
            ));
        }
    }
    Ok(())
}

/// Creates a stream for `client_id` (POST to the configuration endpoint): its configuration.
pub async fn create(core: &Core, client_id: &str, body: &Value) -> Result<Value, SignalError> {
    let stream_id = random_token(16);
    let result = async {
        let body = object(body)?;
        if core.db.streams().of_client(client_id).await?.len() >= MAX_STREAMS {
            return Err(SignalError::new(
                409,
                "conflict",
                format!("a receiver may have at most {MAX_STREAMS} streams: delete one first"),
            ));
        }
        let mut config = StreamConfig {
            events_requested: Vec::new(),
            description: None,
            method: DeliveryMethod::Poll,
            endpoint_url: None,
            default_subjects: DefaultSubjects::All,
        };
        let mut header = None;
        receiver_supplied(core, body, &mut config, &mut header, false)?;
        let now = core.clock.now();
        let stream = Stream {
            stream_id: stream_id.clone(),
            client_id: client_id.to_owned(),
            config,
            authorization_header: header,
            status: StreamStatus::Enabled,
            reason: None,
            created_at: now,
            updated_at: now,
            verified_at: None,
        };
        core.db.streams().create(&stream).await?;
        Ok(render(core, &stream))
    }
    .await;
    audit(core, client_id, "ssf.stream.create", &stream_id, &result).await;
    result
}

/// The caller's stream `stream_id` (GET with `stream_id`).
pub async fn get(core: &Core, client_id: &str, stream_id: &str) -> Result<Value, SignalError> {
    Ok(render(core, &owned(core, client_id, stream_id).await?))
}

/// Every stream of the caller (GET without `stream_id`): an array, maybe empty.
pub async fn list(core: &Core, client_id: &str) -> Result<Value, SignalError> {
    let streams = core.db.streams().of_client(client_id).await?;
    Ok(Value::Array(
        streams.iter().map(|s| render(core, s)).collect(),
    ))
}

/// One stream as operators see it: its configuration, its receiver, its status and where
/// its deliveries stand.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StreamOverview {
    /// The stream as its receiver sees it.
    #[schema(value_type = Object)]
    pub config: Value,
    /// The receiver (client id).
    pub receiver: String,
    /// `enabled`, `paused` or `disabled`.
    pub status: StreamStatus,
    /// Why, if the receiver said.
    pub reason: Option<String>,
    /// When it was made (seconds since the Unix epoch).
    pub created_at: i64,
    /// Where its deliveries stand.
    pub delivery: Option<crate::model::ChannelState>,
}

/// Every stream of every receiver, with where its deliveries stand (the admin API).
pub async fn list_all(core: &Core) -> Result<Vec<StreamOverview>, DbError> {
    let streams = core.db.streams().all().await?;
    let channels: Vec<Channel> = streams
        .iter()
        .map(|s| Channel::Stream(s.stream_id.clone()))
        .collect();
    let states = core.db.events().states(Some(&channels)).await?;
    Ok(streams
        .iter()
        .map(|s| StreamOverview {
            config: render(core, s),
            receiver: s.client_id.clone(),
            status: s.status,
            reason: s.reason.clone(),
            created_at: s.created_at.as_secs(),
            delivery: states
                .iter()
                .find(|st| st.channel == Channel::Stream(s.stream_id.clone()).key())
                .cloned(),
        })
        .collect())
}

/// Changes what the receiver chose (PATCH; `replace`: PUT, where absent members are
/// removed). Transmitter-supplied members sent must be unchanged.
pub async fn update(
    core: &Core,
    client_id: &str,
    body: &Value,
    replace: bool,
) -> Result<Value, SignalError> {
    let map = object(body)?;
    let stream_id = stream_id_of(map)?.to_owned();
    let result = async {
        let mut stream = owned(core, client_id, &stream_id).await?;
        check_transmitter_supplied(map, &render(core, &stream))?;
        let mut header = stream.authorization_header.clone();
        receiver_supplied(core, map, &mut stream.config, &mut header, replace)?;
        stream.authorization_header = header;
        stream.updated_at = core.clock.now();
        if !core.db.streams().save(&stream, stream.updated_at).await? {
            return Err(SignalError::not_found(&stream_id));
        }
        Ok(render(core, &stream))
    }
    .await;
    let action = if replace {
        "ssf.stream.replace"
    } else {
        "ssf.stream.update"
    };
    audit(core, client_id, action, &stream_id, &result).await;
    result
}

/// [`update`] with `replace`.
pub async fn replace(core: &Core, client_id: &str, body: &Value) -> Result<Value, SignalError> {
    update(core, client_id, body, true).await
}

/// Deletes the caller's stream and every event waiting in it (DELETE).
pub async fn delete(core: &Core, client_id: &str, stream_id: &str) -> Result<(), SignalError> {
    let result = async {
        owned(core, client_id, stream_id).await?;
        if !core.db.streams().delete(stream_id).await? {
            return Err(SignalError::not_found(stream_id));
        }
        Ok(())
    }
    .await;
    audit(core, client_id, "ssf.stream.delete", stream_id, &result).await;
    result
}

fn render_status(stream: &Stream) -> Value {
    let mut out = json!({ "stream_id": stream.stream_id, "status": stream.status });
    if let Some(reason) = &stream.reason {
        out["reason"] = json!(reason);
    }
    out
}

/// The caller's stream's status (GET on the status endpoint).
pub async fn status(core: &Core, client_id: &str, stream_id: &str) -> Result<Value, SignalError> {
    Ok(render_status(&owned(core, client_id, stream_id).await?))
}

/// A status change a receiver asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// Which stream.
    pub stream_id: String,
    /// The new status.
    pub status: StreamStatus,
    /// Why, for people.
    pub reason: Option<String>,
}

impl StatusChange {
    /// Reads `{stream_id, status, reason}`.
    pub fn parse(body: &Value) -> Result<Self, SignalError> {
        let map = object(body)?;
        let status = string_member(map, "status")?
            .ok_or_else(|| SignalError::invalid("status is required"))?;
        let status = StreamStatus::parse(status).ok_or_else(|| {
            SignalError::invalid(format!(
                "status must be enabled, paused or disabled, not {status:?}"
            ))
        })?;
        let reason = string_member(map, "reason")?.map(str::to_owned);
        if reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > MAX_DESCRIPTION)
        {
            return Err(SignalError::invalid(format!(
                "reason is longer than {MAX_DESCRIPTION} characters"
            )));
        }
        Ok(Self {
            stream_id: stream_id_of(map)?.to_owned(),
            status,
            reason,
        })
    }
}

/// Sets the caller's stream's status (POST on the status endpoint). Paused: events are
/// held; enabled again: they leave, in order; disabled: none is held, those waiting are
/// dropped.
pub async fn set_status(
    core: &Core,
    client_id: &str,
    change: StatusChange,
) -> Result<Value, SignalError> {
    let result = async {
        let mut stream = owned(core, client_id, &change.stream_id).await?;
        stream.status = change.status;
        stream.reason = change.reason.clone();
        stream.updated_at = core.clock.now();
        if !core.db.streams().save(&stream, stream.updated_at).await? {
            return Err(SignalError::not_found(&change.stream_id));
        }
        if stream.status == StreamStatus::Enabled {
            core.outbox_bell.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(render_status(&stream))
    }
    .await;
    audit(
        core,
        client_id,
        "ssf.stream.status",
        &change.stream_id,
        &result,
    )
    .await;
    result
}

/// The key a subject identifier is matched by: `sub <sub>` (an `iss_sub` of this issuer)
/// or `email <address>` (in lower case); a `complex` one by its `user`.
fn subject_key(core: &Core, subject: &Value) -> Result<String, SignalError> {
    let map = subject.as_object().ok_or_else(|| {
        SignalError::invalid("subject must be a subject identifier (an object with a format)")
    })?;
    let format = string_member(map, "format")?
        .ok_or_else(|| SignalError::invalid("subject.format is required"))?;
    let only = |allowed: &[&str]| -> Result<(), SignalError> {
        match map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(extra) => Err(SignalError::invalid(format!(
                "a subject of format {format} has no member {extra:?} (RFC 9493)"
            ))),
            None => Ok(()),
        }
    };
    let non_empty = |name: &str| -> Result<String, SignalError> {
        match string_member(map, name)? {
            Some(v) if !v.is_empty() && v.len() <= 512 => Ok(v.to_owned()),
            _ => Err(SignalError::invalid(format!(
                "a subject of format {format} needs {name}: a string of 1 to 512 bytes"
            ))),
        }
    };
    match format {
        "iss_sub" => {
            only(&["format", "iss", "sub"])?;
            let iss = non_empty("iss")?;
            if iss != core.config.issuer {
                return Err(SignalError::invalid(format!(
                    "subject.iss must be this issuer, {}",
                    core.config.issuer
                )));
            }
            Ok(format!("sub {}", non_empty("sub")?))
        }
        "email" => {
            only(&["format", "email"])?;
            Ok(format!("email {}", non_empty("email")?.to_lowercase()))
        }
        "complex" => {
            let user = map.get("user").ok_or_else(|| {
                SignalError::invalid(
                    "a complex subject must have a user member: Lanyard's subjects are people",
                )
            })?;
            if user.get("format").and_then(Value::as_str) == Some("complex") {
                return Err(SignalError::invalid(
                    "subject.user cannot itself be complex",
                ));
            }
            subject_key(core, user)
        }
        other => Err(SignalError::invalid(format!(
            "subjects of format {other:?} are not supported: name a person with iss_sub or email"
        ))),
    }
}

async fn name_subject(
    core: &Core,
    client_id: &str,
    body: &Value,
    included: bool,
) -> Result<(), SignalError> {
    let map = object(body)?;
    let stream_id = stream_id_of(map)?.to_owned();
    let result = async {
        owned(core, client_id, &stream_id).await?;
        let subject = map
            .get("subject")
            .ok_or_else(|| SignalError::invalid("subject is required"))?;
        if let Some(v) = map.get("verified")
            && !v.is_boolean()
        {
            return Err(SignalError::invalid("verified must be true or false"));
        }
        let rule = SubjectRule {
            stream_id: stream_id.clone(),
            key: subject_key(core, subject)?,
            subject: subject.clone(),
            included,
        };
        core.db
            .streams()
            .set_subject(&rule, core.clock.now())
            .await?;
        Ok(())
    }
    .await;
    let action = if included {
        "ssf.subject.add"
    } else {
        "ssf.subject.remove"
    };
    audit(core, client_id, action, &stream_id, &result).await;
    result
}

/// Adds a subject to the caller's stream (its events are delivered even when the stream's
/// `default_subjects` is `NONE`).
pub async fn add_subject(core: &Core, client_id: &str, body: &Value) -> Result<(), SignalError> {
    name_subject(core, client_id, body, true).await
}

/// Removes a subject from the caller's stream (its events are not delivered).
pub async fn remove_subject(core: &Core, client_id: &str, body: &Value) -> Result<(), SignalError> {
    name_subject(core, client_id, body, false).await
}

/// Queues a verification event on the caller's stream, echoing `state` (SSF 1.0 §8.1.4).
/// At most one per [`MIN_VERIFICATION_INTERVAL`]; a disabled stream delivers none.
pub async fn verify(core: &Core, client_id: &str, body: &Value) -> Result<(), SignalError> {
    let map = object(body)?;
    let stream_id = stream_id_of(map)?.to_owned();
    let result = async {
        let stream = owned(core, client_id, &stream_id).await?;
        let state = string_member(map, "state")?;
        if state.is_some_and(|s| s.len() > MAX_STATE) {
            return Err(SignalError::invalid(format!(
                "state is longer than {MAX_STATE} bytes"
            )));
        }
        if stream.status == StreamStatus::Disabled {
            return Err(SignalError::invalid(
                "the stream is disabled: enable it first",
            ));
        }
        let now = core.clock.now();
        let not_before = now.minus(MIN_VERIFICATION_INTERVAL);
        if !core
            .db
            .streams()
            .mark_verified(&stream_id, now, not_before)
            .await?
        {
            return Err(SignalError {
                retry_after: Some(MIN_VERIFICATION_INTERVAL.as_secs()),
                ..SignalError::new(
                    429,
                    "too_many_requests",
                    format!(
                        "at most one verification every {} s",
                        MIN_VERIFICATION_INTERVAL.as_secs()
                    ),
                )
            });
        }
        let mut event = json!({});
        if let Some(state) = state {
            event["state"] = json!(state);
        }
        let claims = set::stream_event(core, &stream, ssf::VERIFICATION, event, now);
        let queued = NewEvent {
            channel: Channel::Stream(stream_id.clone()),
            jti: claims.jti,
            payload: claims.value,
        };
        super::queue(core, &[queued], now).await?;
        Ok(())
    }
    .await;
    audit(core, client_id, "ssf.stream.verify", &stream_id, &result).await;
    result
}
