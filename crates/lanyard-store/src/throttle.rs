//! Counting failed attempts (passwords at sign-in, client secrets at the token endpoint), so
//! that guessing slows down and then stops, on every node at once.
//!
//! **The rule.** Failures under a key are counted over a window that starts with the first
//! one. After the n-th failure the key is blocked for [`ThrottlePolicy::block_after`]`(n)`
//! (never shortening a block already in force). The key, count and block included, is
//! forgotten when both the window and the block are over, or when it is cleared (a
//! successful attempt, or an admin lifting a lock). The policy is a short table of steps
//! ("from the n-th failure on, block this long"), given whole to the backends; the Redis
//! script looks the count up in it as [`ThrottlePolicy::block_after`] does.
//!
//! **Counting before checking.** [`TokenStore::attempt`](crate::TokenStore::attempt) counts
//! an attempt before the caller checks it (the password hash runs after), in one atomic
//! step over a few keys: if any of them is blocked, nothing is counted; otherwise each counts
//! one. So however many attempts arrive at once, no more are checked than the policy lets
//! through; the caller clears the keys when the attempt succeeds.
//!
//! **Keys that go together.** Keys passed to one `attempt` must share a `{tag}`, as Redis
//! Cluster's hash tags do (`signin:{user:alice}` and `signin:{user:alice}:ip:192.0.2.1`): the
//! Redis store keeps them in one hash slot, so one script can count them all.

use std::time::Duration;

use crate::Timestamp;

/// When to slow down and when to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures are counted over this window from the first one.
    pub window: Duration,
    /// `(n, block)`, by increasing `n`: from the n-th failure on, block this long (until the
    /// next step). Before the first step, no block.
    pub steps: Vec<(u32, Duration)>,
}

impl ThrottlePolicy {
    /// `free` failures without delay, then a delay doubling from 2 s (at most a minute), and
    /// from the `lock_after`-th failure a lock of `lock_for`; counted over `lock_for`.
    pub fn growing(free: u32, lock_after: u32, lock_for: Duration) -> Self {
        let lock_after = lock_after.max(1);
        let steps = (free.saturating_add(1)..lock_after)
            .map(|n| {
                let doubling = Duration::from_secs(1u64 << (n - free).min(6));
                (n, doubling.min(Duration::from_secs(60)))
            })
            .chain(std::iter::once((lock_after, lock_for)))
            .collect();
        Self {
            window: lock_for,
            steps,
        }
    }

    /// `free` failures without delay, then a delay doubling from 2 s up to a minute, and
    /// never a lock; counted over `window`.
    pub fn slowing(free: u32, window: Duration) -> Self {
        let steps = (1..=6)
            .map(|k| {
                let doubling = Duration::from_secs(1u64 << k);
                (
                    free.saturating_add(k),
                    doubling.min(Duration::from_secs(60)),
                )
            })
            .collect();
        Self { window, steps }
    }

    /// The block after the `failures`-th failure.
    pub fn block_after(&self, failures: u32) -> Duration {
        self.steps
            .iter()
            .rev()
            .find(|(from, _)| *from <= failures)
            .map(|(_, block)| *block)
            .unwrap_or_default()
    }

    /// The failure that locks: the last step's.
    pub fn lock_at(&self) -> Option<u32> {
        self.steps.last().map(|(n, _)| *n)
    }
}

/// What [`TokenStore::attempt`](crate::TokenStore::attempt) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Nothing was blocked: the attempt is counted under each key (the new states, in the
    /// order the keys were given). Check it now; clear the keys if it succeeds.
    Allowed(Vec<Throttle>),
    /// A key is blocked for this long (the longest block): nothing was counted; refuse the
    /// attempt unchecked.
    Blocked(Duration),
}

/// What is known of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Throttle {
    /// Failures in the current window.
    pub failures: u32,
    /// No attempt is checked before this instant.
    pub blocked_until: Option<Timestamp>,
}

impl Throttle {
    /// How long the key stays blocked at `now`; `None` if it is not.
    pub fn blocked_for(&self, now: Timestamp) -> Option<Duration> {
        let until = self.blocked_until?;
        (until > now).then(|| {
            Duration::from_millis(u64::try_from(until.as_millis() - now.as_millis()).unwrap_or(0))
        })
    }

    /// The state after one more failure at `now` under `policy`.
    pub(crate) fn fail(self, policy: &ThrottlePolicy, now: Timestamp) -> Self {
        let failures = self.failures.saturating_add(1);
        let block = policy.block_after(failures);
        let blocked_until = if block.is_zero() {
            self.blocked_until
        } else {
            Some(now.plus(block).max(self.blocked_until.unwrap_or(now)))
        };
        Self {
            failures,
            blocked_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_lock() {
        let p = ThrottlePolicy::growing(3, 8, Duration::from_secs(900));
        let secs: Vec<u64> = (1..=10).map(|n| p.block_after(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 2, 4, 8, 16, 900, 900, 900]);
        assert_eq!(p.lock_at(), Some(8));
        assert_eq!(p.window, Duration::from_secs(900));
        let no_waits = ThrottlePolicy::growing(99, 100, Duration::from_secs(60));
        assert_eq!(
            no_waits.steps,
            [(100, Duration::from_secs(60))],
            "a short table"
        );
        assert_eq!(no_waits.block_after(99), Duration::ZERO);
        let slowing = ThrottlePolicy::slowing(10, Duration::from_secs(900));
        let secs: Vec<u64> = (9..=20).map(|n| slowing.block_after(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]);
        let long = ThrottlePolicy::growing(0, 20, Duration::from_secs(600));
        assert_eq!(
            long.block_after(10),
            Duration::from_secs(60),
            "waits stop growing at a minute"
        );
    }

    #[test]
    fn a_block_is_never_shortened() {
        let p = ThrottlePolicy {
            window: Duration::from_secs(60),
            steps: vec![(1, Duration::from_secs(100)), (2, Duration::from_secs(1))],
        };
        let t0 = Timestamp::from_secs(1000);
        let once = Throttle::default().fail(&p, t0);
        assert_eq!(once.blocked_for(t0), Some(Duration::from_secs(100)));
        let twice = once.fail(&p, t0.plus(Duration::from_secs(10)));
        assert_eq!(twice.failures, 2);
        assert_eq!(twice.blocked_until, once.blocked_until);
        assert_eq!(twice.blocked_for(t0.plus(Duration::from_secs(100))), None);
    }
}
