//! Brute-force protection: failed sign-ins counted in the token store (so the count holds
//! across nodes), under three keys, none of which lets a stranger lock someone else out:
//!
//! - **the username at one address** (`Pair`): a few typing mistakes are free, then growing
//!   waits, then a lock. The only hard lock a username gets, and only at that address.
//! - **the username from every address** (`Account`): growing waits (at most a minute), never
//!   a lock, and none until more failures than one address can make before its own lock. So
//!   guessing from many addresses stays slow, and one stranger's failures never refuse the
//!   owner signing in from elsewhere.
//! - **the address** (`Ip`), whatever the username: a lock far later (an office's NAT
//!   shares it), and only failures count.
//!
//! The username's two keys are counted before the password hash runs, in one atomic step
//! (`attempt`): however many guesses arrive at once, no more are checked than the policy
//! lets through. While a key is blocked, attempts are refused without being checked, correct
//! ones included. Each lock is audited (`lockout`), and admins can lift it
//! (`docs/admin-api.md`).
//!
//! Client secrets are counted too, per client, but never block: a secret is at least 32
//! random characters, beyond guessing, while a lock would let anyone who knows a client's id
//! shut it out of the token endpoint. Failures raise an alert instead (the audit trail's
//! `client.secret.guessing`, a warning in the log, `lanyard_client_auth_failures_total`).
//!
//! Nothing here tells whether an account exists: an unknown username is counted and
//! locked exactly like a real one. The limits are in `docs/sessions.md`.

use std::time::Duration;

use lanyard_store::{Attempt, StoreError, Throttle, ThrottlePolicy};

use crate::Core;

/// What failures are counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A username as typed (trimmed, case-folded: usernames are unique case-insensitively),
    /// from every address: waits, never a lock.
    Account(String),
    /// A username (as in `Account`) at one client address: waits, then a lock.
    Pair(String, String),
    /// A client IP's failed sign-ins, whatever the account.
    Ip(String),
    /// A client's failed authentications (wrong secrets), from any address: counted for the
    /// alert, never blocking.
    ClientSecret(String),
    /// "Forgot your password?" requests from one address, whatever they name: a few an
    /// hour ([`MAIL_REQUESTS_PER_ADDRESS`]), counted before anything is looked up.
    MailRequestIp(String),
    /// Reset mails sent to one person (by `sub`): [`MAIL_REQUESTS_PER_ACCOUNT`] an hour;
    /// more requests are answered alike and send nothing.
    MailRequestAccount(String),
    /// Codes one person (by `sub`) typed at the device page, right or wrong, counted before
    /// each is looked up: a few free, then waits, and from [`DEVICE_CODES_PER_HOUR`] the
    /// rest of the hour (a guesser finds nothing in 20^8 codes).
    DeviceCodeEntry(String),
}

/// Device codes one person may enter in an hour.
pub const DEVICE_CODES_PER_HOUR: u32 = 30;

/// "Forgot your password?" requests one address may make in an hour.
pub const MAIL_REQUESTS_PER_ADDRESS: u32 = 10;
/// Reset mails one person may be sent in an hour.
pub const MAIL_REQUESTS_PER_ACCOUNT: u32 = 3;
const HOUR: Duration = Duration::from_secs(3600);

impl Key {
    /// The account key for `username`.
    pub fn account(username: &str) -> Self {
        Self::Account(fold(username))
    }

    /// The key for `username` at the address `ip`.
    pub fn pair(username: &str, ip: &str) -> Self {
        Self::Pair(fold(username), ip.to_owned())
    }

    /// The keys a sign-in as `username` from `ip` is counted under before it is checked.
    pub fn signin(username: &str, ip: Option<&str>) -> [Self; 2] {
        [
            Self::account(username),
            Self::pair(username, ip.unwrap_or("unknown")),
        ]
    }

    fn store_key(&self) -> String {
        // The username's keys share a `{tag}`: one atomic step counts both.
        match self {
            Self::Account(u) => format!("signin:{{user:{u}}}"),
            Self::Pair(u, ip) => format!("signin:{{user:{u}}}:ip:{ip}"),
            Self::Ip(ip) => format!("signin:ip:{ip}"),
            Self::ClientSecret(id) => format!("client:{id}"),
            Self::MailRequestIp(ip) => format!("mail:ip:{ip}"),
            Self::MailRequestAccount(sub) => format!("mail:sub:{sub}"),
            Self::DeviceCodeEntry(sub) => format!("device:{{sub:{sub}}}"),
        }
    }

    /// How it appears in the audit trail.
    pub fn describe(&self) -> String {
        match self {
            Self::Account(u) => format!("username:{u}"),
            Self::Pair(u, ip) => format!("username:{u} ip:{ip}"),
            Self::Ip(ip) => format!("ip:{ip}"),
            Self::ClientSecret(id) => format!("client_id:{id}"),
            Self::MailRequestIp(ip) => format!("mail requests ip:{ip}"),
            Self::MailRequestAccount(sub) => format!("mail requests sub:{sub}"),
            Self::DeviceCodeEntry(sub) => format!("device codes sub:{sub}"),
        }
    }

    fn policy(&self, state: &Core) -> ThrottlePolicy {
        let l = &state.config.lockout;
        match self {
            // More failures than one address can make before its own lock; then waits.
            Self::Account(_) => ThrottlePolicy::slowing(l.account_threshold, l.duration),
            // A few typing mistakes are free; then waits of 2, 4, 8 ... s; then the lock.
            Self::Pair(..) => ThrottlePolicy::growing(3, l.account_threshold, l.duration),
            // An address may be shared (an office's NAT): no waits, only a lock far later.
            Self::Ip(_) => ThrottlePolicy::growing(l.ip_threshold - 1, l.ip_threshold, l.duration),
            // Counted over the window, never blocking.
            Self::ClientSecret(_) => ThrottlePolicy {
                window: l.duration,
                steps: Vec::new(),
            },
            // So many an hour: the n-th is let through, then the rest of the hour waits.
            Self::MailRequestIp(_) => ThrottlePolicy {
                window: HOUR,
                steps: vec![(MAIL_REQUESTS_PER_ADDRESS, HOUR)],
            },
            Self::MailRequestAccount(_) => ThrottlePolicy {
                window: HOUR,
                steps: vec![(MAIL_REQUESTS_PER_ACCOUNT, HOUR)],
            },
            Self::DeviceCodeEntry(_) => ThrottlePolicy::growing(5, DEVICE_CODES_PER_HOUR, HOUR),
        }
    }

    /// Whether the last step of this key's policy is a lock (audited as one).
    fn locks(&self) -> bool {
        matches!(self, Self::Pair(..) | Self::Ip(_))
    }
}

fn fold(username: &str) -> String {
    username.trim().to_lowercase()
}

/// The longest block in force on any of `keys`.
pub async fn blocked(state: &Core, keys: &[Key]) -> Result<Option<Duration>, StoreError> {
    let now = state.clock.now();
    let mut longest = None;
    for key in keys {
        let t = state.store.throttle(&key.store_key()).await?;
        longest = longest.max(t.blocked_for(now));
    }
    Ok(longest)
}

/// One attempt under `keys` (which must be one username's: `Key::signin`), counted before
/// it is checked. `Err(wait)`: a key is blocked, refuse unchecked; nothing was counted.
/// `Ok(wait)`: check it; if it fails, the keys are now blocked for `wait` (if any). On
/// success, `clear` the keys.
pub async fn attempt(
    state: &Core,
    keys: &[Key],
) -> Result<Result<Option<Duration>, Duration>, StoreError> {
    let names: Vec<(String, ThrottlePolicy)> = keys
        .iter()
        .map(|k| (k.store_key(), k.policy(state)))
        .collect();
    let refs: Vec<(&str, &ThrottlePolicy)> = names.iter().map(|(n, p)| (n.as_str(), p)).collect();
    match state.store.attempt(&refs).await? {
        Attempt::Blocked(wait) => Ok(Err(wait)),
        Attempt::Allowed(counted) => {
            let now = state.clock.now();
            let mut longest = None;
            for ((key, (_, policy)), t) in keys.iter().zip(&names).zip(counted) {
                audit_lock(state, key, policy, t).await;
                longest = longest.max(t.blocked_for(now));
            }
            Ok(Ok(longest))
        }
    }
}

/// Counts a failure under each of `keys`; audits each lock it starts. Returns the longest
/// block now in force.
pub async fn failed(state: &Core, keys: &[Key]) -> Result<Option<Duration>, StoreError> {
    let now = state.clock.now();
    let mut longest = None;
    for key in keys {
        let policy = key.policy(state);
        let t = state
            .store
            .record_failure(&key.store_key(), &policy)
            .await?;
        if let Key::ClientSecret(client_id) = key {
            alert_on_guessing(state, client_id, t.failures).await;
        }
        audit_lock(state, key, &policy, t).await;
        longest = longest.max(t.blocked_for(now));
    }
    Ok(longest)
}

/// Audits the lock `t` starts under `key`, if it does.
async fn audit_lock(state: &Core, key: &Key, policy: &ThrottlePolicy, t: Throttle) {
    if !key.locks() || policy.lock_at() != Some(t.failures) {
        return;
    }
    tracing::warn!(key = %key.describe(), failures = t.failures, "locked after repeated failures");
    let event = state
        .event("system", "lockout")
        .target(key.describe())
        .outcome("locked")
        .detail(serde_json::json!({
            "failures": t.failures,
            "until": t.blocked_until.map(|u| u.as_secs()),
        }));
    state.audit.record(event).await;
}

/// Wrong secrets for `client_id`, `failures` of them in the window: counted, and at the
/// alert threshold and each tenfold of it, recorded as `client.secret.guessing` and logged.
async fn alert_on_guessing(state: &Core, client_id: &str, failures: u32) {
    crate::metrics::client_auth_failure();
    let threshold = state.config.lockout.client_threshold.max(1);
    let mut alert_at = threshold;
    while alert_at < failures {
        alert_at = alert_at.saturating_mul(10);
    }
    if failures != alert_at {
        return;
    }
    tracing::warn!(%client_id, failures, "wrong client secrets: someone may be guessing");
    let event = state
        .event("system", "client.secret.guessing")
        .target(format!("client_id:{client_id}"))
        .outcome("alert")
        .detail(serde_json::json!({ "failures": failures }));
    state.audit.record(event).await;
}

/// Forgets the failures under `key` (a success). Returns whether there were any.
pub async fn clear(state: &Core, key: &Key) -> Result<bool, StoreError> {
    state.store.clear_throttle(&key.store_key()).await
}

/// Forgets the failures under each of `keys`. Returns whether there were any.
pub async fn clear_all(state: &Core, keys: &[Key]) -> Result<bool, StoreError> {
    let mut any = false;
    for key in keys {
        any |= clear(state, key).await?;
    }
    Ok(any)
}

/// What the failures under `key` are now: the count in the window and the block left.
pub async fn status(state: &Core, key: &Key) -> Result<(u32, Option<Duration>), StoreError> {
    let t = state.store.throttle(&key.store_key()).await?;
    Ok((t.failures, t.blocked_for(state.clock.now())))
}

/// "15 minutes", "1 minute", "8 seconds": how long to wait, rounded up.
pub fn wait_text(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match secs {
        0..=1 => "a second".to_owned(),
        2..=89 => format!("{secs} seconds"),
        _ => {
            let minutes = secs.div_ceil(60);
            if minutes == 1 {
                "a minute".to_owned()
            } else {
                format!("{minutes} minutes")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_text(Duration::from_millis(300)), "a second");
        assert_eq!(wait_text(Duration::from_millis(7200)), "8 seconds");
        assert_eq!(wait_text(Duration::from_secs(900)), "15 minutes");
        assert_eq!(wait_text(Duration::from_secs(61)), "61 seconds");
        assert_eq!(wait_text(Duration::from_secs(91)), "2 minutes");
    }

    #[test]
    fn account_keys_ignore_case_and_spaces() {
        assert_eq!(Key::account(" Alice "), Key::account("alice"));
        assert_eq!(
            Key::signin(" Alice ", Some("192.0.2.1")),
            Key::signin("alice", Some("192.0.2.1"))
        );
    }

    #[test]
    fn a_usernames_keys_share_a_tag() {
        let [account, pair] = Key::signin("alice", Some("192.0.2.1"));
        let tag = |k: &Key| {
            let s = k.store_key();
            let open = s.find('{').unwrap();
            let close = s.find('}').unwrap();
            s[open..=close].to_owned()
        };
        assert_eq!(tag(&account), tag(&pair));
        assert_eq!(tag(&account), "{user:alice}");
    }
}
