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

/// A point in time: whole milliseconds since the Unix epoch.
///
/// JWT `iat`/`exp` are seconds (RFC 7519 NumericDate); convert them with
/// [`Timestamp::from_secs`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// From seconds since the Unix epoch (a JWT NumericDate).
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1000))
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
        Self(self.0.saturating_add(duration_millis(d)))
    }

    /// `self - d`, saturating at the far past.
    pub fn minus(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(duration_millis(d)))
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

/// A duration in whole milliseconds, saturating at `i64::MAX`.
pub(crate) fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
        Timestamp(ms)
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
        Timestamp(self.0.load(Ordering::SeqCst))
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
    fn arithmetic_saturates() {
        let far = Timestamp::from_millis(i64::MAX - 1);
        assert_eq!(far.plus(Duration::from_secs(10)).as_millis(), i64::MAX);
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
