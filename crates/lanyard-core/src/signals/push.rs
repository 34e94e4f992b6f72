//! Each serving node's pusher: takes channels that have events due (one conditional
//! `UPDATE` each, so two nodes never deliver one channel at once), delivers each channel's
//! events in order, and marks each delivered, refused for good, or due again later — the
//! channel waits with it, so order holds. Delivery is at least once: an event the receiver
//! took but whose answer was lost is sent again with the same `jti`.
//!
//! Two kinds of channel are pushed: a Shared Signals stream with push delivery (RFC 8935:
//! the SET as `application/secevent+jwt`, 202 taken, 400 refused with `err`; retried 1 s
//! doubling to five minutes apart, given up after a day) and an app's back-channel logout
//! endpoint (Back-Channel Logout 1.0: a logout token signed at each attempt, under the
//! event's `jti`, retried as `[logout]` configures).

use std::time::Duration;

use serde_json::json;

use super::set::SET_TYP;
use crate::Core;
use crate::context::WeakCore;
use crate::db::{DbError, Hold};
use crate::model::{Channel, ChannelKind, OutboxEvent, StreamStatus};
use crate::outbound;
use crate::tokens::{BACKCHANNEL_LOGOUT_EVENT, LOGOUT_TOKEN_TYP, LogoutClaims};

/// How long a node holds a channel it took, at least (one that dies holding it frees it
/// after this); renewed before each event, and never shorter than two attempts' timeout.
const HOLD: Duration = Duration::from_secs(60);
/// How long one pass delivers a channel before it lets it go for others.
const PASS: Duration = Duration::from_secs(30);
/// How many events of one channel a pass delivers before it lets the channel go.
const BATCH: u64 = 50;
/// How many channels a node delivers at once.
const CONCURRENCY: u64 = 32;
/// How often a pusher looks without being rung (retries; events queued on another node).
const TICK: Duration = Duration::from_secs(1);
/// A stream's first retry; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two attempts at a stream.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// After this long undelivered, a stream's event is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Events done (delivered, acknowledged, given up) are kept this long, then deleted.
const KEEP_DONE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most of a receiver's error answer that is read.
const ERROR_BODY: usize = 4096;
/// A logout token's life (Back-Channel Logout §2.4 recommends at most two minutes).
const LOGOUT_TOKEN_LIFETIME: Duration = Duration::from_secs(120);

/// How one attempt went.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// The receiver took it (2xx).
    Delivered(u16),
    /// The receiver will not take it; trying again cannot help.
    Refused(String),
    /// No answer, a timeout, or an answer worth another try.
    Failed(String),
}

/// Where a channel's events go now.
enum Target {
    /// A stream's push endpoint, with the `Authorization` value its receiver gave.
    Stream {
        url: String,
        authorization: Option<String>,
    },
    /// An app's back-channel logout endpoint.
    Backchannel { url: String, client_id: String },
    /// Nowhere now (a stream paused or changed to polling): the events wait.
    Wait,
    /// Nowhere ever (the app no longer has an endpoint, or is gone): the events are dropped.
    Gone(&'static str),
}

fn kind(channel: &Channel) -> ChannelKind {
    match channel {
        Channel::Stream(_) => ChannelKind::SsfPush,
        Channel::Backchannel(_) => ChannelKind::Backchannel,
    }
}

/// The delay before a stream's attempt `attempts + 1`.
fn stream_backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.min(12))
        .min(MAX_BACKOFF)
}

/// One pass: delivers what is due now, channel by channel; returns how many events were
/// delivered. Errors of the database end the pass (the next one tries again).
pub async fn deliver_due(core: &Core) -> Result<usize, DbError> {
    let mut delivered = 0;
    loop {
        let channels = core
            .db
            .events()
            .due_channels(core.clock.now(), CONCURRENCY)
            .await?;
        if channels.is_empty() {
            return Ok(delivered);
        }
        let passes =
            futures_util::future::join_all(channels.into_iter().map(|c| deliver_channel(core, c)))
                .await;
        let mut progressed = false;
        for pass in passes {
            let n = pass?;
            progressed |= n > 0;
            delivered += n;
        }
        if !progressed {
            return Ok(delivered);
        }
    }
}

/// How long this node holds a channel: [`HOLD`], or longer when an attempt may take longer.
fn hold(core: &Core) -> Duration {
    HOLD.max(core.config.logout.backchannel_timeout.saturating_mul(2))
}

async fn deliver_channel(core: &Core, channel: Channel) -> Result<usize, DbError> {
    let Some(mut held) = core
        .db
        .events()
        .claim(&channel, core.clock.now(), hold(core))
        .await?
    else {
        return Ok(0); // another node took it first, or it is no longer due
    };
    let result = deliver_held(core, &channel, &mut held).await;
    let released = core.db.events().release(&channel, held).await;
    let n = result?;
    released?;
    Ok(n)
}

async fn target(core: &Core, channel: &Channel) -> Result<Target, DbError> {
    Ok(match channel {
        Channel::Stream(id) => match core.db.streams().get(id).await? {
            Some(stream) if stream.status == StreamStatus::Enabled => {
                match stream.config.endpoint_url {
                    Some(url) if stream.config.method == crate::model::DeliveryMethod::Push => {
                        Target::Stream {
                            url,
                            authorization: stream.authorization_header,
                        }
                    }
                    _ => Target::Wait,
                }
            }
            Some(_) => Target::Wait,
            None => Target::Gone("the stream was deleted"),
        },
        Channel::Backchannel(client_id) => match core.db.clients().get(client_id).await? {
            Some(client) => match client.settings.backchannel_logout_uri {
                Some(url) => Target::Backchannel {
                    url,
                    client_id: client_id.clone(),
                },
                None => Target::Gone("the app no longer has a back-channel logout URI"),
            },
            None => Target::Gone("the app was deleted"),
        },
    })
}

/// Delivers `channel`'s pending events in order while this node holds it (`held`, renewed
/// before each event: a pass that stops holding it — its hold ran out, or the stream was
/// paused or switched to polling — stops at once, and what it did not record is sent again).
async fn deliver_held(core: &Core, channel: &Channel, held: &mut Hold) -> Result<usize, DbError> {
    let events = core.db.events().pending(channel, BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let target = target(core, channel).await?;
    let kind = kind(channel).as_str();
    let agent = match channel {
        Channel::Stream(_) => "Lanyard Shared Signals",
        Channel::Backchannel(_) => "Lanyard back-channel logout",
    };
    let http = outbound::client(
        &core.config.outbound_allow,
        agent,
        core.config.logout.backchannel_timeout,
    );
    let mut delivered = 0;
    let began = tokio::time::Instant::now();
    for event in events {
        if began.elapsed() > PASS {
            // Let the channel go for others; the next pass goes on.
            return Ok(delivered);
        }
        let events = core.db.events();
        if matches!(target, Target::Wait)
            || !events
                .renew(channel, held, core.clock.now(), hold(core))
                .await?
        {
            return Ok(delivered);
        }
        let attempt = match &target {
            Target::Wait => return Ok(delivered),
            Target::Gone(why) => {
                let now = core.clock.now();
                if !events
                    .finished(channel, *held, event.seq, "dropped", Some(why), now)
                    .await?
                {
                    return Ok(delivered);
                }
                crate::metrics::event_delivery(kind, "failed");
                continue;
            }
            Target::Stream { url, authorization } => {
                push_set(core, &http, url, authorization.as_deref(), &event).await
            }
            Target::Backchannel { url, client_id } => {
                post_logout(core, &http, url, client_id, &event).await
            }
        };
        let now = core.clock.now();
        let tries = event.attempts + 1;
        match attempt {
            Attempt::Delivered(status) => {
                if !events
                    .finished(channel, *held, event.seq, "delivered", None, now)
                    .await?
                {
                    // Taken over meanwhile: the new holder sends it again (at least once).
                    return Ok(delivered);
                }
                crate::metrics::event_delivery(kind, "delivered");
                delivered += 1;
                if let Target::Backchannel { client_id, .. } = &target {
                    record_logout(
                        core,
                        client_id,
                        &event,
                        "success",
                        json!({ "attempts": tries, "status": status }),
                    )
                    .await;
                }
            }
            Attempt::Refused(why) => {
                tracing::warn!(channel = %channel.key(), jti = %event.jti, error = %why, "an event was refused by its receiver");
                if !give_up(core, channel, *held, &target, &event, &why).await? {
                    return Ok(delivered);
                }
            }
            Attempt::Failed(why) => {
                let (give_up_now, wait) = match &target {
                    Target::Backchannel { .. } => {
                        let policy = &core.config.logout;
                        let wait = policy
                            .backchannel_backoff
                            .saturating_mul(1u32 << event.attempts.min(12));
                        (tries >= policy.backchannel_attempts, wait)
                    }
                    _ => (
                        event.created_at.until(now) >= GIVE_UP_AFTER,
                        stream_backoff(event.attempts),
                    ),
                };
                if give_up_now {
                    tracing::warn!(channel = %channel.key(), jti = %event.jti, attempts = tries, error = %why, "an event could not be delivered; giving up on it");
                    if !give_up(core, channel, *held, &target, &event, &why).await? {
                        return Ok(delivered);
                    }
                    continue;
                }
                tracing::warn!(channel = %channel.key(), attempts = tries, error = %why, retry_in_ms = wait.as_millis() as u64, "an event could not be delivered yet; it and the channel's later ones wait");
                if !events
                    .retry_at(channel, *held, event.seq, now.plus(wait), &why)
                    .await?
                {
                    return Ok(delivered);
                }
                crate::metrics::event_delivery(kind, "retry");
                if wait < TICK {
                    // Sooner than the next look: ring when it is due.
                    let bell = core.outbox_bell.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(wait).await;
                        bell.send_modify(|n| *n = n.wrapping_add(1));
                    });
                }
                return Ok(delivered);
            }
        }
    }
    Ok(delivered)
}

/// Marks `event` failed for good (the receiver refused it, or it was tried long enough); an
/// app's logout is audited so. False when this node no longer holds the channel.
async fn give_up(
    core: &Core,
    channel: &Channel,
    held: Hold,
    target: &Target,
    event: &OutboxEvent,
    why: &str,
) -> Result<bool, DbError> {
    let now = core.clock.now();
    if !core
        .db
        .events()
        .finished(channel, held, event.seq, "failed", Some(why), now)
        .await?
    {
        return Ok(false);
    }
    crate::metrics::event_delivery(kind(channel).as_str(), "failed");
    if let Target::Backchannel { client_id, .. } = target {
        let detail = json!({ "attempts": event.attempts + 1, "error": why });
        record_logout(core, client_id, event, "failure", detail).await;
    }
    Ok(true)
}

/// RFC 8935: the SET, signed now, posted as `application/secevent+jwt`.
async fn push_set(
    core: &Core,
    http: &reqwest::Client,
    url: &str,
    authorization: Option<&str>,
    event: &OutboxEvent,
) -> Attempt {
    let set = match core.keys.sign(SET_TYP, &event.payload).await {
        Ok(set) => set,
        Err(e) => return Attempt::Failed(format!("the event could not be signed: {e}")),
    };
    let allow = &core.config.outbound_allow;
    if let Some(why) = outbound::refuse_literal(url, allow) {
        return Attempt::Failed(why);
    }
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/secevent+jwt")
        .header(reqwest::header::ACCEPT, "application/json")
        .body(set);
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    match request.send().await {
        Ok(mut response) => {
            let status = response.status();
            if status.is_success() {
                Attempt::Delivered(status.as_u16())
            } else if status == 400 {
                // RFC 8935 §2.3: the receiver says why, as {"err", "description"} (read up to
                // a few kilobytes: it goes into the stream's `last_error`).
                let body: serde_json::Value = outbound::read_limited(&mut response, ERROR_BODY)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let err = body["err"].as_str().unwrap_or("unknown");
                let description = body["description"].as_str().unwrap_or("");
                Attempt::Refused(
                    format!("the receiver refused the event: {err} {description}")
                        .trim_end()
                        .to_owned(),
                )
            } else {
                Attempt::Failed(format!("the receiver answered {status}"))
            }
        }
        Err(e) => Attempt::Failed(outbound::describe(
            e,
            core.config.logout.backchannel_timeout,
        )),
    }
}

/// Back-Channel Logout 1.0 §2.5: a logout token, signed now under the event's `jti`,
/// posted as a form.
async fn post_logout(
    core: &Core,
    http: &reqwest::Client,
    url: &str,
    client_id: &str,
    event: &OutboxEvent,
) -> Attempt {
    let now = core.clock.now().as_secs();
    let claims = LogoutClaims {
        iss: core.config.issuer.clone(),
        aud: client_id.to_owned(),
        iat: now,
        exp: now + i64::try_from(LOGOUT_TOKEN_LIFETIME.as_secs()).unwrap_or(120),
        jti: event.jti.clone(),
        sub: event.payload["sub"].as_str().unwrap_or_default().to_owned(),
        sid: event.payload["sid"].as_str().unwrap_or_default().to_owned(),
        events: json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    };
    let token = match core.keys.sign(LOGOUT_TOKEN_TYP, &claims).await {
        Ok(t) => t,
        Err(e) => return Attempt::Failed(format!("the logout token could not be signed: {e}")),
    };
    let allow = &core.config.outbound_allow;
    // No redirect followed (a logout token goes to the registered address only), no cookie,
    // and no address inside the network unless the operator allowed it (`outbound`).
    if let Some(why) = outbound::refuse_literal(url, allow) {
        return Attempt::Refused(why);
    }
    match http.post(url).form(&[("logout_token", token)]).send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                // §2.8: 200, though some frameworks answer 204.
                Attempt::Delivered(status.as_u16())
            } else if status.is_client_error() && status != 408 && status != 429 {
                Attempt::Refused(format!(
                    "the app answered {status}: it refused the logout token"
                ))
            } else {
                Attempt::Failed(format!("the app answered {status}"))
            }
        }
        Err(e) => {
            let why = outbound::describe(e, core.config.logout.backchannel_timeout);
            if why.contains(outbound::SETTING) {
                Attempt::Refused(why)
            } else {
                Attempt::Failed(why)
            }
        }
    }
}

/// The outcome of a back-channel logout, in the audit trail (`backchannel_logout`).
async fn record_logout(
    core: &Core,
    client_id: &str,
    event: &OutboxEvent,
    outcome: &str,
    mut detail: serde_json::Value,
) {
    detail["sid"] = event.payload["sid"].clone();
    if outcome == "failure" {
        tracing::warn!(%client_id, "back-channel logout was not delivered");
    }
    let event = core
        .event("system", "backchannel_logout")
        .target(format!("client_id:{client_id}"))
        .outcome(outcome)
        .detail(detail);
    core.audit.record(event).await;
}

/// Starts this node's pusher: a pass when an event is queued here, and every second; done
/// events are deleted after a week. It stops when the core is gone.
pub fn spawn_pusher(core: &Core) -> tokio::task::JoinHandle<()> {
    let weak: WeakCore = core.downgrade();
    let mut bell = core.outbox_bell.subscribe();
    tokio::spawn(async move {
        let mut last_prune = None;
        loop {
            let Some(core) = weak.upgrade() else { return };
            if let Err(e) = deliver_due(&core).await {
                tracing::warn!(error = %e, "the event outbox could not be read; trying again shortly");
            }
            let now = core.clock.now();
            if last_prune.is_none_or(|at: lanyard_store::Timestamp| {
                at.until(now) >= Duration::from_secs(3600)
            }) {
                last_prune = Some(now);
                let events = core.db.events();
                match events
                    .expire_stream_events(now.minus(GIVE_UP_AFTER), now)
                    .await
                {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::warn!(
                            events = n,
                            "events no receiver took within a day were given up"
                        );
                        crate::metrics::stream_events_expired(n);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "old pending events could not be given up")
                    }
                }
                if let Err(e) = events.prune(now.minus(KEEP_DONE)).await {
                    tracing::warn!(error = %e, "old events could not be deleted from the outbox");
                }
            }
            drop(core);
            tokio::select! {
                changed = bell.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(TICK) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_retries_wait_longer_each_time_and_at_most_five_minutes() {
        assert_eq!(stream_backoff(0), Duration::from_secs(1));
        assert_eq!(stream_backoff(1), Duration::from_secs(2));
        assert_eq!(stream_backoff(5), Duration::from_secs(32));
        assert_eq!(stream_backoff(9), Duration::from_secs(300));
        assert_eq!(stream_backoff(40), Duration::from_secs(300));
    }
}
