//! Time as the store sees it: [`Timestamp`] (milliseconds since the Unix epoch) and the
//! injected [`Clock`].
//!
//! Every deadline the store enforces is computed from `Clock::now`, so tests move a
//! [`ManualClock`] instead of sleeping. The Redis backend runs on [`SystemClock`]; Redis's own
//! key expiry (relative TTLs) backs up the deadlines the store checks itself.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The furthest a [`Timestamp`] reaches either side of the epoch, in milliseconds: 2^53 - 1
/// (about 285,000 years), the largest integer a Lua number (a double) in a Redis script holds
/// exactly. Every timestamp and duration the store handles is clamped to it, so both backends
/// see the same values.
pub const TIME_LIMIT_MS: i64 = (1 << 53) - 1;

const fn clamp_ms(ms: i64) -> i64 {
    if ms > TIME_LIMIT_MS {
        TIME_LIMIT_MS
    } else if ms < -TIME_LIMIT_MS {
        -TIME_LIMIT_MS
    } else {
        ms
    }
}

/// A point in time: whole milliseconds since the Unix epoch, within ±[`TIME_LIMIT_MS`].
///
/// JWT `iat`/`exp` are seconds (RFC 7519 NumericDate); convert them with
/// [`Timestamp::from_secs`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(from = "i64", into = "i64")]
pub struct Timestamp(i64);

impl From<i64> for Timestamp {
    fn from(ms: i64) -> Self {
        Self::from_millis(ms)
    }
}

impl From<Timestamp> for i64 {
    fn from(t: Timestamp) -> i64 {
        t.0
    }
}

impl Timestamp {
    /// From milliseconds since the Unix epoch (clamped to ±[`TIME_LIMIT_MS`]).
    pub const fn from_millis(ms: i64) -> Self {
        Self(clamp_ms(ms))
    }

    /// From seconds since the Unix epoch, a JWT NumericDate (clamped likewise).
    pub const fn from_secs(secs: i64) -> Self {
        Self(clamp_ms(secs.saturating_mul(1000)))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch, rounded down (a JWT NumericDate).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// `self + d`, saturating at the far future.
    pub fn plus(self, d: Duration) -> Self {
        Self::from_millis(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, saturating at the far past.
    pub fn minus(self, d: Duration) -> Self {
        Self::from_millis(self.0.saturating_sub(duration_millis(d)))
    }

    /// How long from `self` until `later`; zero when `later` is not after `self`.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A duration in whole milliseconds, saturating at [`TIME_LIMIT_MS`].
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(TIME_LIMIT_MS, clamp_ms)
}

/// Where the store reads the time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(duration_millis)
            // A clock before 1970 is a broken machine; reading it as the epoch keeps the
            // arithmetic defined.
            .unwrap_or(0);
        Timestamp::from_millis(ms)
    }
}

/// A clock that only moves when told to. Cloning shares the time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.0)))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(duration_millis(d), Ordering::SeqCst);
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_down_and_back() {
        let t = Timestamp::from_millis(12_999);
        assert_eq!(t.as_secs(), 12);
        assert_eq!(Timestamp::from_secs(12).as_millis(), 12_000);
        assert_eq!(Timestamp::from_millis(-1).as_secs(), -1);
    }

    #[test]
    fn arithmetic_saturates_within_what_lua_holds_exactly() {
        let far = Timestamp::from_millis(i64::MAX - 1);
        assert_eq!(far.as_millis(), TIME_LIMIT_MS);
        assert_eq!(far.plus(Duration::from_secs(10)).as_millis(), TIME_LIMIT_MS);
        assert_eq!(Timestamp::from_secs(i64::MAX).as_millis(), TIME_LIMIT_MS);
        assert_eq!(Timestamp::from_secs(i64::MIN).as_millis(), -TIME_LIMIT_MS);
        assert_eq!(duration_millis(Duration::MAX), TIME_LIMIT_MS);
        let parsed: Timestamp = serde_json::from_str("9223372036854775807").unwrap_or_default();
        assert_eq!(parsed.as_millis(), TIME_LIMIT_MS);
        let t = Timestamp::from_millis(1_000);
        assert_eq!(t.until(Timestamp::from_millis(500)), Duration::ZERO);
        assert_eq!(
            t.until(Timestamp::from_millis(1_250)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp::from_millis(5));
        let shared = clock.clone();
        assert_eq!(clock.now(), Timestamp::from_millis(5));
        shared.advance(Duration::from_millis(20));
        assert_eq!(clock.now(), Timestamp::from_millis(25));
    }
}
