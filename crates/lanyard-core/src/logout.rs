//! Single logout: telling every app that a sign-in session ended (OpenID Connect Back-Channel
//! Logout 1.0).
//!
//! Whenever a session ends (the person signs out, an admin ends it, the user is disabled or
//! revoked), each client that received tokens in it and registered a
//! `backchannel_logout_uri` is sent a logout token by POST. Delivery runs in the background
//! and never holds up the sign-out: each attempt has a timeout, a failure is retried a
//! bounded number of times with a doubling pause, and the outcome of each delivery
//! (delivered, refused, or given up) goes to the audit trail as `backchannel_logout`.
//!
//! One token is signed per delivery and sent again on retries: a client that took it but
//! whose answer was lost may refuse the retry as a replay, which is what replay protection
//! is for. Its two-minute life (§2.4) spans every retry the configuration allows.

use std::time::Duration;

use lanyard_store::Session;
use serde_json::json;

use crate::Core;
use crate::crypto::random_token;
use crate::outbound;
use crate::tokens::{BACKCHANNEL_LOGOUT_EVENT, LOGOUT_TOKEN_TYP, LogoutClaims};

/// A logout token's life (Back-Channel Logout §2.4 recommends at most two minutes).
const TOKEN_LIFETIME: Duration = Duration::from_secs(120);

/// One delivery: which session ended, and which app to tell.
#[derive(Debug, Clone)]
struct Delivery {
    sid: String,
    sub: String,
    client_id: String,
    uri: String,
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// 2xx (§2.8: 200, though some frameworks answer 204).
    Delivered(u16),
    /// The app answered 4xx: it will not take this token; retrying cannot help.
    Refused(u16),
    /// No answer, a timeout, 5xx, 408 or 429: worth another try.
    Failed(String),
    /// The address is inside the network and not allowed (`outbound`): never tried.
    NotAllowed(String),
}

/// Tells the apps of `sessions` that they ended, in the background. Returns at once.
pub fn notify(state: &Core, sessions: Vec<Session>) {
    if sessions.iter().all(|s| s.clients.is_empty()) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for session in sessions {
            for client_id in &session.clients {
                let uri = match state.db.clients().get(client_id).await {
                    Ok(Some(client)) => client.settings.backchannel_logout_uri,
                    Ok(None) => None, // deleted since: nobody to tell
                    Err(e) => {
                        record(
                            &state,
                            client_id,
                            "failure",
                            json!({ "sid": session.sid, "error": format!("the client could not be loaded: {e}") }),
                        )
                        .await;
                        None
                    }
                };
                let Some(uri) = uri else { continue };
                let delivery = Delivery {
                    sid: session.sid.to_string(),
                    sub: session.sub.clone(),
                    client_id: client_id.clone(),
                    uri,
                };
                tokio::spawn(deliver(state.clone(), delivery));
            }
        }
    });
}

async fn deliver(state: Core, delivery: Delivery) {
    let policy = state.config.logout.clone();
    let token = match sign(&state, &delivery).await {
        Ok(t) => t,
        Err(e) => {
            record(
                &state,
                &delivery.client_id,
                "failure",
                json!({ "sid": delivery.sid, "attempts": 0, "error": e }),
            )
            .await;
            return;
        }
    };
    // No redirect followed (a logout token goes to the registered address only), no cookie,
    // and no address inside the network unless the operator allowed it (`outbound`).
    let allow = &state.config.outbound_allow;
    let http = outbound::client(
        allow,
        "Lanyard back-channel logout",
        policy.backchannel_timeout,
    );
    let mut pause = policy.backchannel_backoff;
    let mut attempts = 0;
    let last = loop {
        attempts += 1;
        let attempt = match outbound::refuse_literal(&delivery.uri, allow) {
            Some(why) => Attempt::NotAllowed(why),
            None => post(&http, &delivery.uri, &token, policy.backchannel_timeout).await,
        };
        match &attempt {
            Attempt::Failed(why) if attempts < policy.backchannel_attempts => {
                tracing::warn!(client_id = %delivery.client_id, attempts, error = %why, "back-channel logout failed; retrying");
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            _ => break attempt,
        }
    };
    let (outcome, detail) = match last {
        Attempt::Delivered(status) => (
            "success",
            json!({ "sid": delivery.sid, "attempts": attempts, "status": status }),
        ),
        Attempt::Refused(status) => (
            "failure",
            json!({ "sid": delivery.sid, "attempts": attempts, "status": status, "error": "the app refused the logout token" }),
        ),
        Attempt::Failed(why) | Attempt::NotAllowed(why) => (
            "failure",
            json!({ "sid": delivery.sid, "attempts": attempts, "error": why }),
        ),
    };
    if outcome == "failure" {
        tracing::warn!(client_id = %delivery.client_id, attempts, "back-channel logout was not delivered");
    }
    record(&state, &delivery.client_id, outcome, detail).await;
}

async fn sign(state: &Core, delivery: &Delivery) -> Result<String, String> {
    let now = state.clock.now().as_secs();
    let claims = LogoutClaims {
        iss: state.config.issuer.clone(),
        aud: delivery.client_id.clone(),
        iat: now,
        exp: now + i64::try_from(TOKEN_LIFETIME.as_secs()).unwrap_or(120),
        jti: random_token(16),
        sub: delivery.sub.clone(),
        sid: delivery.sid.clone(),
        events: json!({ BACKCHANNEL_LOGOUT_EVENT: {} }),
    };
    state
        .keys
        .sign(LOGOUT_TOKEN_TYP, &claims)
        .await
        .map_err(|e| e.to_string())
}

async fn post(http: &reqwest::Client, uri: &str, token: &str, timeout: Duration) -> Attempt {
    let sent = http.post(uri).form(&[("logout_token", token)]).send().await;
    match sent {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Attempt::Delivered(status.as_u16())
            } else if status.is_client_error() && status != 408 && status != 429 {
                Attempt::Refused(status.as_u16())
            } else {
                Attempt::Failed(format!("the app answered {status}"))
            }
        }
        Err(e) if e.is_timeout() => {
            Attempt::Failed(format!("no answer within {} s", timeout.as_secs_f64()))
        }
        // Without the URL: it may carry credentials of the app's. With the causes: the
        // resolver's refusal is one.
        Err(e) => {
            let e = e.without_url();
            let mut why = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                why.push_str(": ");
                why.push_str(&c.to_string());
                cause = c.source();
            }
            if why.contains(outbound::SETTING) {
                Attempt::NotAllowed(why)
            } else {
                Attempt::Failed(why)
            }
        }
    }
}

async fn record(state: &Core, client_id: &str, outcome: &str, detail: serde_json::Value) {
    let event = state
        .event("system", "backchannel_logout")
        .target(format!("client_id:{client_id}"))
        .outcome(outcome)
        .detail(detail);
    state.audit.record(event).await;
}
