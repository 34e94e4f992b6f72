//! Single logout: telling every app that a sign-in session ended (OpenID Connect Back-Channel
//! Logout 1.0).
//!
//! Whenever a session ends (the person signs out, an admin ends it, the user is disabled or
//! revoked), each client that received tokens in it and registered a
//! `backchannel_logout_uri` is owed a logout token. [`notify`] puts one event per app in the
//! durable event outbox (SQL) before the sign-out answers; every serving node's pusher
//! (`signals::push`) delivers them — each app's in order, one node at a time — so a node
//! that stops or dies, or an app that is down, loses none. Each attempt has a timeout; a
//! failure is retried `backchannel_attempts` times with a doubling pause from
//! `backchannel_backoff`, across restarts and from any node; the outcome of each delivery
//! (delivered, refused, or given up) goes to the audit trail as `backchannel_logout`, and
//! where each app's deliveries stand is in the admin API (`/admin/v1/signals/deliveries`).
//!
//! The token is signed at each attempt (its two-minute life, §2.4, starts then) under the
//! event's one `jti`: a client that took it but whose answer was lost may refuse the retry as
//! a replay, which is what replay protection is for.

use lanyard_store::Session;
use serde_json::json;

use crate::Core;
use crate::crypto::random_token;
use crate::model::{Channel, NewEvent};

/// Queues a logout token for each app of `sessions` that has a back-channel logout URI. A
/// failure (the database) is logged and audited, never returned: the sessions are over
/// whatever happens here.
pub async fn notify(state: &Core, sessions: Vec<Session>) {
    let mut events = Vec::new();
    for session in &sessions {
        for client_id in &session.clients {
            match state.db.clients().get(client_id).await {
                Ok(Some(client)) if client.settings.backchannel_logout_uri.is_some() => {}
                Ok(_) => continue, // no endpoint, or deleted since: nobody to tell
                Err(e) => {
                    record_failure(state, client_id, &session.sid.to_string(), &e.to_string())
                        .await;
                    continue;
                }
            }
            events.push(NewEvent {
                channel: Channel::Backchannel(client_id.clone()),
                jti: random_token(16),
                payload: json!({ "sid": session.sid.to_string(), "sub": session.sub }),
            });
        }
    }
    if events.is_empty() {
        return;
    }
    let now = state.clock.now();
    if let Err(e) = crate::signals::queue(state, &events, now).await {
        crate::metrics::signal_lost(events.len());
        for event in &events {
            if let Channel::Backchannel(client_id) = &event.channel {
                let sid = event.payload["sid"].as_str().unwrap_or_default();
                record_failure(state, client_id, sid, &e.to_string()).await;
            }
        }
    }
}

async fn record_failure(state: &Core, client_id: &str, sid: &str, error: &str) {
    tracing::warn!(%client_id, %error, "a back-channel logout could not be queued");
    let event = state
        .event("system", "backchannel_logout")
        .target(format!("client_id:{client_id}"))
        .outcome("failure")
        .detail(json!({ "sid": sid, "attempts": 0, "error": format!("the logout could not be queued: {error}") }));
    state.audit.record(event).await;
}
