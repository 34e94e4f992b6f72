//! Device authorization grants (RFC 8628): a device without a browser (a command-line tool,
//! a TV) gets a device code to poll with and a short user code the person types at
//! `{issuer}/device`; once they approve, the next poll gets the tokens, once.
//!
//! One record per grant, kept under the user code's hash: the page finds it by the code the
//! person types, the device by its device code (`<user code>.<secret>`: the user code in
//! front tells the store where the record lives; only the whole code's hash is kept). Every
//! step is atomic on that one record.
//!
//! # The polling rule
//! [`DeviceRecord::poll`], written once here and once in Lua (`redis/scripts.rs`):
//! - an unknown code, another client's, or one whose tokens were already taken: not found;
//! - past the grant's lifetime: expired (whatever was decided);
//! - denied: denied, on every poll;
//! - approved: the grant, once; the record remembers it was taken;
//! - pending: a poll sooner than the interval (less a fifth, for the network's jitter) after
//!   the last one gets `slow_down`, and the interval grows by 5 s for this and every later
//!   poll (RFC 8628 §3.5); otherwise `authorization_pending`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CodeGrant, Timestamp};

/// The letters of a user code: consonants only, without vowels (no words) and without
/// letters that look alike, as RFC 8628 §6.1 suggests.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Letters in a user code (20^8 ≈ 2^34.6 codes).
pub const USER_CODE_LEN: usize = 8;

/// How much a too-fast poll adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// A user code: eight letters of [`USER_CODE_ALPHABET`], shown as `XXXX-XXXX`. Parsing
/// ignores case, dashes and spaces, so whatever the person types reads alike. Not printed
/// by `Debug` (with the person's session it approves a device).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

impl UserCode {
    /// A fresh code from a CSPRNG.
    pub fn generate() -> Self {
        // Bytes below 240 (12 × 20) map onto the alphabet without bias; the rest are drawn again.
        let mut code = String::with_capacity(USER_CODE_LEN);
        while code.len() < USER_CODE_LEN {
            for b in crate::ids::random_bytes::<16>() {
                if b < 240 && code.len() < USER_CODE_LEN {
                    code.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
                }
            }
        }
        Self(code)
    }

    /// The code in what a person typed; `None` unless exactly eight letters of the alphabet
    /// remain once case, dashes and spaces are set aside.
    pub fn parse(typed: &str) -> Option<Self> {
        if typed.len() > 64 {
            return None;
        }
        let code: String = typed
            .chars()
            .filter(|c| !matches!(c, '-' | ' ' | '\t'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid =
            code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b));
        valid.then_some(Self(code))
    }

    /// The eight letters, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As people see and type it: `XXXX-XXXX`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode([redacted])")
    }
}

/// A device code (RFC 8628 §3.2): `<user code>.<256-bit secret>`, base64url. The device
/// polls with it; the store keeps only its hash.
#[derive(Clone)]
pub struct DeviceCode(String);

impl DeviceCode {
    pub(crate) fn generate(user_code: &UserCode) -> Self {
        Self(format!("{}.{}", user_code.as_str(), crate::ids::once_id()))
    }

    /// The secret value. Never log it.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The user code a presented device code names, if it is shaped like one of ours.
    pub(crate) fn user_code_of(presented: &str) -> Option<UserCode> {
        let (user, secret) = presented.split_once('.')?;
        if user.len() != USER_CODE_LEN || secret.len() != 43 {
            return None;
        }
        UserCode::parse(user).filter(|u| u.as_str() == user)
    }
}

impl fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCode([redacted])")
    }
}

/// A device's request, as the device authorization endpoint records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeviceGrant {
    /// The client that asked.
    pub client_id: String,
    /// The code the person will type; [`TokenStore::put_device`](crate::TokenStore::put_device)
    /// refuses one in use (generate another).
    pub user_code: UserCode,
    /// How long the person has to approve, and the device to collect the tokens.
    pub lifetime: Duration,
    /// The least time between two polls (RFC 8628 §3.2 `interval`).
    pub interval: Duration,
    /// What the device asked for (scope, ...). Opaque to the store.
    pub payload: serde_json::Value,
}

/// A request waiting for the person, as the verification page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDevice {
    /// The client that asked.
    pub client_id: String,
    /// What it asked for (the `payload` it was put with).
    pub payload: serde_json::Value,
    /// When the request expires.
    pub expires_at: Timestamp,
}

/// What the person decided.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceDecision {
    /// Approved: the device's next poll gets this grant (as a redeemed code would).
    Approve(CodeGrant),
    /// Denied: the device's polls get `access_denied`.
    Deny,
}

/// What a poll found (see [the rule](self)).
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum DevicePoll {
    /// Not decided yet: `authorization_pending`.
    Pending,
    /// Not decided yet, and polled too soon: `slow_down`; poll no sooner than `interval`.
    SlowDown {
        /// The interval from now on.
        interval: Duration,
    },
    /// The person denied it: `access_denied`.
    Denied,
    /// Its lifetime is over: `expired_token`.
    Expired,
    /// Approved: issue tokens for this grant. Later polls find nothing.
    Approved(CodeGrant),
    /// Unknown, another client's, malformed, or its tokens already taken: `invalid_grant`.
    NotFound,
}

/// Where a grant stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum DeviceState {
    Pending,
    Approved(Box<CodeGrant>),
    Denied,
    Taken,
}

/// A grant as the in-process store keeps it (Redis keeps the same fields in a hash).
#[derive(Debug, Clone)]
pub(crate) struct DeviceRecord {
    pub(crate) code_hash: String,
    pub(crate) client_id: String,
    pub(crate) expires_at: Timestamp,
    pub(crate) interval: Duration,
    pub(crate) last_poll: Option<Timestamp>,
    pub(crate) payload: serde_json::Value,
    pub(crate) state: DeviceState,
}

impl DeviceRecord {
    /// The polling rule (module docs).
    pub(crate) fn poll(&mut self, now: Timestamp, code_hash: &str, client_id: &str) -> DevicePoll {
        // Hashes of a 256-bit secret: comparing them in variable time tells nothing.
        if self.code_hash != code_hash
            || self.client_id != client_id
            || self.state == DeviceState::Taken
        {
            return DevicePoll::NotFound;
        }
        if now >= self.expires_at {
            return DevicePoll::Expired;
        }
        match std::mem::replace(&mut self.state, DeviceState::Taken) {
            DeviceState::Approved(grant) => DevicePoll::Approved(*grant),
            DeviceState::Denied => {
                self.state = DeviceState::Denied;
                DevicePoll::Denied
            }
            DeviceState::Taken => DevicePoll::NotFound,
            DeviceState::Pending => {
                self.state = DeviceState::Pending;
                let too_soon = self.last_poll.is_some_and(|last| {
                    now.as_millis() - last.as_millis() < min_gap(self.interval)
                });
                self.last_poll = Some(now);
                if too_soon {
                    self.interval += SLOW_DOWN_STEP;
                    DevicePoll::SlowDown {
                        interval: self.interval,
                    }
                } else {
                    DevicePoll::Pending
                }
            }
        }
    }

    /// Records the person's decision, if the grant is still pending and live.
    pub(crate) fn decide(&mut self, now: Timestamp, decision: &DeviceDecision) -> bool {
        if self.state != DeviceState::Pending || now >= self.expires_at {
            return false;
        }
        self.state = match decision {
            DeviceDecision::Approve(grant) => DeviceState::Approved(Box::new(grant.clone())),
            DeviceDecision::Deny => DeviceState::Denied,
        };
        true
    }

    /// The request, if it waits for the person.
    pub(crate) fn pending(&self, now: Timestamp) -> Option<PendingDevice> {
        (self.state == DeviceState::Pending && now < self.expires_at).then(|| PendingDevice {
            client_id: self.client_id.clone(),
            payload: self.payload.clone(),
            expires_at: self.expires_at,
        })
    }
}

/// The least gap between two polls that is not "too soon" (ms): the interval less a fifth.
pub(crate) fn min_gap(interval: Duration) -> i64 {
    let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
    ms - ms / 5
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_read_alike_however_they_are_typed() {
        let code = UserCode::generate();
        assert_eq!(code.as_str().len(), USER_CODE_LEN);
        assert!(
            code.as_str()
                .bytes()
                .all(|b| USER_CODE_ALPHABET.contains(&b))
        );
        let shown = code.display();
        assert_eq!(shown.len(), USER_CODE_LEN + 1);
        assert_eq!(UserCode::parse(&shown), Some(code.clone()));
        assert_eq!(UserCode::parse(&shown.to_lowercase()), Some(code.clone()));
        let spaced = format!(" {} {} ", &code.as_str()[..4], &code.as_str()[4..]);
        assert_eq!(UserCode::parse(&spaced), Some(code.clone()));
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "BCDF_GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad}");
        }
        assert_eq!(format!("{code:?}"), "UserCode([redacted])");
    }

    #[test]
    fn a_device_code_names_its_user_code_only_when_well_formed() {
        let user = UserCode::generate();
        let device = DeviceCode::generate(&user);
        assert_eq!(
            DeviceCode::user_code_of(device.secret()),
            Some(user.clone())
        );
        assert_eq!(format!("{device:?}"), "DeviceCode([redacted])");
        let lower = device.secret().to_lowercase();
        assert_eq!(DeviceCode::user_code_of(&lower), None);
        assert_eq!(DeviceCode::user_code_of(user.as_str()), None);
        assert_eq!(
            DeviceCode::user_code_of(&format!("{}.short", user.as_str())),
            None
        );
    }

    #[test]
    fn the_gap_allows_a_fifth_of_jitter() {
        assert_eq!(min_gap(Duration::from_secs(5)), 4000);
        assert_eq!(min_gap(Duration::ZERO), 0);
    }
}
