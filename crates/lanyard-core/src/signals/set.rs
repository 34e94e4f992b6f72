//! Security Event Tokens (RFC 8417) as SSF 1.0 profiles them: one event per token, the
//! subject in the top-level `sub_id` (RFC 9493 identifiers), no `sub`, no `exp`; `typ`
//! `secevent+jwt`. Here are the event types Lanyard sends and the claims of each; they are
//! stored unsigned in the outbox and signed as they leave.

use lanyard_store::Timestamp;
use serde_json::{Value, json};

use super::{Signal, Signal as S};
use crate::Core;
use crate::crypto::random_token;
use crate::db::DbError;
use crate::model::{Stream, StreamConfig};

/// The JWT `typ` of a Security Event Token (RFC 8417 §2.3; SSF 1.0 requires it).
pub const SET_TYP: &str = "secevent+jwt";

/// CAEP 1.0 event types.
pub mod caep {
    /// A session ended.
    pub const SESSION_REVOKED: &str =
        "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    /// A credential was made, changed or removed.
    pub const CREDENTIAL_CHANGE: &str =
        "https://schemas.openid.net/secevent/caep/event-type/credential-change";
    /// What tokens say about the person changed.
    pub const TOKEN_CLAIMS_CHANGE: &str =
        "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
}

/// RISC 1.0 event types.
pub mod risc {
    /// The account was disabled.
    pub const ACCOUNT_DISABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
    /// The account was enabled again.
    pub const ACCOUNT_ENABLED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-enabled";
    /// The account was deleted.
    pub const ACCOUNT_PURGED: &str =
        "https://schemas.openid.net/secevent/risc/event-type/account-purged";
    /// A credential is known to be compromised.
    pub const CREDENTIAL_COMPROMISE: &str =
        "https://schemas.openid.net/secevent/risc/event-type/credential-compromise";
}

/// SSF 1.0's own event types (always delivered, whatever a stream asked for).
pub mod ssf {
    /// The answer to a verification request.
    pub const VERIFICATION: &str =
        "https://schemas.openid.net/secevent/ssf/event-type/verification";
    /// The transmitter changed the stream's status.
    pub const STREAM_UPDATED: &str =
        "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
}

const SUPPORTED: [&str; 7] = [
    caep::SESSION_REVOKED,
    caep::CREDENTIAL_CHANGE,
    caep::TOKEN_CLAIMS_CHANGE,
    risc::ACCOUNT_DISABLED,
    risc::ACCOUNT_ENABLED,
    risc::ACCOUNT_PURGED,
    risc::CREDENTIAL_COMPROMISE,
];

/// The event types a stream may ask for (`events_supported`).
pub fn event_types() -> &'static [&'static str] {
    &SUPPORTED
}

/// The event types a stream gets (`events_delivered`): those it asked for that Lanyard
/// sends, in Lanyard's order. Unknown ones are ignored (SSF 1.0 §8.1.1).
pub(super) fn delivered(config: &StreamConfig) -> Vec<&'static str> {
    SUPPORTED
        .into_iter()
        .filter(|t| config.events_requested.iter().any(|r| r == t))
        .collect()
}

/// How a person is named in an event: by issuer and `sub`, or by the address the receiver
/// added them with (when it added them only so).
pub(super) struct UserId<'a> {
    pub(super) sub: &'a str,
    pub(super) email: Option<&'a str>,
}

impl UserId<'_> {
    fn identifier(&self, issuer: &str) -> Value {
        match self.email {
            Some(email) => json!({ "format": "email", "email": email }),
            None => json!({ "format": "iss_sub", "iss": issuer, "sub": self.sub }),
        }
    }
}

/// An event's claims, ready to be signed, and its `jti`.
pub(super) struct Claims {
    pub(super) jti: String,
    pub(super) value: Value,
}

fn envelope(
    core: &Core,
    stream: &Stream,
    sub_id: Value,
    event_type: &str,
    event: Value,
    at: Timestamp,
    txn: &str,
) -> Claims {
    let jti = random_token(16);
    let value = json!({
        "iss": core.config.issuer,
        "jti": jti,
        "iat": at.as_secs(),
        "aud": stream.client_id,
        "txn": txn,
        "sub_id": sub_id,
        "events": { event_type: event },
    });
    Claims { jti, value }
}

/// The claims of `signal`'s event for `stream`, naming the person as `user`. `txn` is the
/// same for every stream told of one signal.
pub(super) async fn claims(
    core: &Core,
    stream: &Stream,
    signal: &Signal,
    user: &UserId<'_>,
    initiating_entity: &str,
    txn: &str,
    now: Timestamp,
) -> Result<Claims, DbError> {
    let issuer = &core.config.issuer;
    let person = user.identifier(issuer);
    let mut sub_id = person.clone();
    let caep = |mut fields: Value| {
        fields["event_timestamp"] = json!(now.as_secs());
        fields["initiating_entity"] = json!(initiating_entity);
        fields
    };
    let event = match signal {
        S::SessionRevoked { sid, .. } => {
            sub_id = json!({
                "format": "complex",
                "user": person,
                "session": { "format": "opaque", "id": sid },
            });
            caep(json!({}))
        }
        S::CredentialChange {
            credential, change, ..
        } => caep(json!({
            "credential_type": credential.as_str(),
            "change_type": change.as_str(),
        })),
        S::ClaimsChange { sub } => {
            // The roles it holds at this receiver only (another app's are not its business),
            // and its groups, as this receiver's tokens would say them now.
            let mut roles: Vec<String> = core
                .db
                .roles()
                .of_user_at(sub, std::slice::from_ref(&stream.client_id))
                .await?
                .into_iter()
                .map(|(_, role)| role)
                .collect();
            roles.sort();
            roles.dedup();
            let groups = core.db.groups().names_of(sub).await?;
            caep(json!({ "claims": { "roles": roles, "groups": groups } }))
        }
        S::AccountDisabled { .. } | S::AccountEnabled { .. } | S::AccountPurged { .. } => {
            json!({})
        }
        S::CredentialCompromise {
            credential, reason, ..
        } => {
            let mut event = json!({
                "credential_type": credential.as_str(),
                "event_timestamp": now.as_secs(),
            });
            if let Some(reason) = reason {
                event["reason_admin"] = json!({ "en": reason });
            }
            event
        }
    };
    Ok(envelope(
        core,
        stream,
        sub_id,
        signal.event_type(),
        event,
        now,
        txn,
    ))
}

/// An event about the stream itself (verification, stream-updated): its subject is the
/// stream (SSF 1.0 §8.1.4.1).
pub(super) fn stream_event(
    core: &Core,
    stream: &Stream,
    event_type: &str,
    event: Value,
    now: Timestamp,
) -> Claims {
    let sub_id = json!({ "format": "opaque", "id": stream.stream_id });
    envelope(
        core,
        stream,
        sub_id,
        event_type,
        event,
        now,
        &random_token(16),
    )
}
