//! Answers kept for a moment on each node, so that a busy endpoint does not ask the database
//! or the token store the same question thousands of times a second: the client and the
//! user behind a token request (`Db::recent_client`, `Db::recent_user`), and that a client
//! at an address is not locked out (`oauth::client_auth`).
//!
//! A copy is used for at most [`RECENT`]. A write through this node drops the copy at once,
//! so this node never serves its own stale write; another node (or the CLI) sees a change
//! within [`RECENT`]. Revocation does not depend on these copies: disabling a user or
//! deleting a client also revokes their tokens through the token store, which every node
//! checks on every request. Only what was found is kept: a client or user added anywhere is
//! visible at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lanyard_store::{Clock, SystemClock, Timestamp};

/// How long a copy is used.
pub const RECENT: Duration = Duration::from_secs(1);

/// More entries than this and the map starts over (a bound, not an LRU: the hot set of a
/// company's clients and active users is far smaller).
const MAX_ENTRIES: usize = 100_000;

/// When a read began: the generation it must still match, and the instant its copy's age
/// counts from.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    generation: u64,
    at: Timestamp,
}

/// Copies of rows by key, each for at most [`RECENT`] on the clock it was made with.
#[derive(Debug)]
pub struct Recent<T> {
    entries: RwLock<HashMap<String, (Timestamp, T)>>,
    /// Bumped by every [`Recent::forget`]: a read that began before a write must not store
    /// what it read after the write dropped the old copy.
    generation: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl<T> Recent<T> {
    /// Copies aged on `clock` (the server's, so a test moves it rather than sleep).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: RwLock::default(),
            generation: AtomicU64::new(0),
            clock,
        }
    }
}

impl<T: Clone> Recent<T> {
    /// The copy of `key`, if one younger than [`RECENT`] is kept.
    pub fn get(&self, key: &str) -> Option<T> {
        let now = self.clock.now();
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            // Younger than RECENT, and not from the future (a clock moved back).
            .filter(|(at, _)| *at <= now && now < at.plus(RECENT))
            .map(|(_, value)| value.clone())
    }

    /// What to pass to [`Recent::put`] for a read that starts now.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation.load(Ordering::Acquire),
            at: self.clock.now(),
        }
    }

    /// Keeps `value`, read since `ticket` was taken, unless something was written meanwhile.
    /// Its age counts from the ticket: from before the read.
    pub fn put(&self, key: &str, value: T, ticket: Ticket) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock `forget` also takes, so no write slips in between.
        if self.generation.load(Ordering::Acquire) != ticket.generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (ticket.at, value));
    }

    /// The copy of `key`, or what `read` finds (kept when found). `read` runs only on a miss.
    pub async fn get_or<E>(
        &self,
        key: &str,
        read: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        if let Some(value) = self.get(key) {
            return Ok(Some(value));
        }
        let ticket = self.ticket();
        let found = read.await?;
        if let Some(value) = &found {
            self.put(key, value.clone(), ticket);
        }
        Ok(found)
    }

    /// Drops the copy of `key`: it was written.
    pub fn forget(&self, key: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use lanyard_store::ManualClock;

    use super::*;

    #[test]
    fn a_copy_is_served_until_it_is_forgotten_or_too_old() {
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        let recent = Recent::new(Arc::new(clock.clone()));
        let g = recent.ticket();
        recent.put("c", 1, g);
        assert_eq!(recent.get("c"), Some(1));
        recent.forget("c");
        assert_eq!(recent.get("c"), None);
        // A read that began before the write does not bring the old row back.
        recent.put("c", 1, g);
        assert_eq!(recent.get("c"), None);
        let g = recent.ticket();
        recent.put("c", 2, g);
        assert_eq!(recent.get("c"), Some(2));
        // Its age counts from the ticket, on the injected clock: served just short of
        // RECENT, no longer at RECENT.
        clock.advance(RECENT - Duration::from_millis(1));
        assert_eq!(recent.get("c"), Some(2));
        clock.advance(Duration::from_millis(1));
        assert_eq!(recent.get("c"), None);
        // A clock moved back does not make a copy from "the future" fresh.
        let g = recent.ticket();
        recent.put("c", 3, g);
        clock.set(Timestamp::from_secs(999));
        assert_eq!(recent.get("c"), None);
    }
}
