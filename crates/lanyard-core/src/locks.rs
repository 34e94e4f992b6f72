//! Brute-force locks, for admins: how many failures a user's username has (from every
//! address, or at one), and lifting a lock early (a username's at an address, an address's;
//! a client's counted wrong secrets). Lifting is audited.

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

/// The failures counted against the username of the user `sub`: from every address, or,
/// with `ip`, at that address (where a lock may be in force).
pub async fn user(state: &Core, sub: &str, ip: Option<&str>) -> Result<LockView, ServiceError> {
    let user = users::get(state, sub).await?;
    let key = match ip {
        Some(ip) => Key::pair(&user.username, &parse_ip(ip)?),
        None => Key::account(&user.username),
    };
    let (failures, locked_for) = lockout::status(state, &key).await?;
    Ok(LockView {
        failures,
        locked_for: locked_for.map(|d| d.as_secs().max(1)),
    })
}

/// Forgets the failures of the user `sub`'s username from every address (ending its waits)
/// and, with `ip`, lifts the lock at that address too.
pub async fn lift_user(
    state: &Core,
    sub: &str,
    ip: Option<&str>,
    actor: &str,
) -> Result<Lifted, ServiceError> {
    let user = users::get(state, sub).await?;
    let mut keys = vec![Key::account(&user.username)];
    if let Some(ip) = ip {
        keys.push(Key::pair(&user.username, &parse_ip(ip)?));
    }
    lift(state, &keys, actor).await
}

/// Lifts the lock of a client IP's sign-ins.
pub async fn lift_ip(state: &Core, ip: &str, actor: &str) -> Result<Lifted, ServiceError> {
    lift(state, &[Key::Ip(parse_ip(ip)?)], actor).await
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
    lift(state, &[Key::ClientSecret(client_id.to_owned())], actor).await
}

/// An IP address as the sign-in saw it (`Display` of `IpAddr`, so `::1`, not `[::1]`).
fn parse_ip(ip: &str) -> Result<String, ServiceError> {
    ip.parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| ServiceError::field("ip", format!("{ip:?} is not an IP address")))
}

async fn lift(state: &Core, keys: &[Key], actor: &str) -> Result<Lifted, ServiceError> {
    let lifted = lockout::clear_all(state, keys).await?;
    let targets: Vec<String> = keys.iter().map(Key::describe).collect();
    let event = state
        .event(actor, "lockout.lift")
        .target(targets.join(", "))
        .detail(serde_json::json!({ "lifted": lifted }));
    state.audit.record(event).await;
    Ok(Lifted { lifted })
}
