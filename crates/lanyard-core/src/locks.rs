//! Brute-force locks, for admins: how many failures a user's username has, and lifting a
//! lock early (a user's, an IP's, or a client's at one IP). Lifting is audited.

use std::net::IpAddr;

use serde::Serialize;

use crate::Core;
use crate::error::ServiceError;
use crate::lockout::{self, Key};
use crate::users;

/// The failures counted under one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LockView {
    /// Failures in the current window.
    pub failures: u32,
    /// Seconds until attempts are checked again; absent when they are now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_for: Option<u64>,
}

/// What lifting did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Lifted {
    /// Whether there was anything counted (and so anything to lift).
    pub lifted: bool,
}

/// The failures counted against the username of the user `sub`.
pub async fn user(state: &Core, sub: &str) -> Result<LockView, ServiceError> {
    let user = users::get(state, sub).await?;
    let (failures, locked_for) = lockout::status(state, &Key::account(&user.username)).await?;
    Ok(LockView {
        failures,
        locked_for: locked_for.map(|d| d.as_secs().max(1)),
    })
}

/// Lifts the lock (and forgets the failures) of the user `sub`'s username.
pub async fn lift_user(state: &Core, sub: &str, actor: &str) -> Result<Lifted, ServiceError> {
    let user = users::get(state, sub).await?;
    lift(state, Key::account(&user.username), actor).await
}

/// Lifts the lock of a client IP's sign-ins.
pub async fn lift_ip(state: &Core, ip: &str, actor: &str) -> Result<Lifted, ServiceError> {
    lift(state, Key::Ip(parse_ip(ip)?), actor).await
}

/// Forgets the wrong secrets counted for a client (its alert starts again from zero).
/// Clients are never locked; the route that takes an IP too (`ip`, checked as before, then
/// ignored) stays for the callers written when they were.
pub async fn lift_client(
    state: &Core,
    client_id: &str,
    ip: &str,
    actor: &str,
) -> Result<Lifted, ServiceError> {
    parse_ip(ip)?;
    if state.db.clients().get(client_id).await?.is_none() {
        return Err(ServiceError::NotFound(format!(
            "no client has client_id {client_id:?}"
        )));
    }
    lift(state, Key::ClientSecret(client_id.to_owned()), actor).await
}

/// An IP address as the sign-in saw it (`Display` of `IpAddr`, so `::1`, not `[::1]`).
fn parse_ip(ip: &str) -> Result<String, ServiceError> {
    ip.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| ServiceError::field("ip", format!("{ip:?} is not an IP address")))
}

async fn lift(state: &Core, key: Key, actor: &str) -> Result<Lifted, ServiceError> {
    let lifted = lockout::clear(state, &key).await?;
    let event = state
        .event(actor, "lockout.lift")
        .target(key.describe())
        .detail(serde_json::json!({ "lifted": lifted }));
    state.audit.record(event).await;
    Ok(Lifted { lifted })
}
