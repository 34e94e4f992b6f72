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
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lanyard_store::{Clock, SystemClock, Timestamp};
use tokio::sync::watch;

/// How long a copy is used.
pub const RECENT: Duration = Duration::from_secs(1);

/// What a read in progress hands to the misses that wait for it: `None` until it is done.
type Outcome<T, E> = Option<Result<Option<T>, E>>;

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

/// Copies of rows by key, each for at most [`RECENT`] on the clock it was made with. `E` is
/// what a read fails with (see [`Recent::get_or`]).
#[derive(Debug)]
pub struct Recent<T, E> {
    entries: RwLock<HashMap<String, (Timestamp, T)>>,
    /// The reads under way, by key: a miss of a key being read waits for that read's outcome
    /// (found, not found or failed) instead of asking again.
    reading: ReadsUnderWay<T, E>,
    /// Bumped by every [`Recent::forget`]: a read that began before a write must not store
    /// what it read after the write dropped the old copy.
    generation: AtomicU64,
    clock: Arc<dyn Clock>,
}

impl<T, E> Default for Recent<T, E> {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl<T, E> Recent<T, E> {
    /// Copies aged on `clock` (the server's, so a test moves it rather than sleep).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: RwLock::default(),
            reading: Mutex::default(),
            generation: AtomicU64::new(0),
            clock,
        }
    }
}

impl<T: Clone, E: Clone> Recent<T, E> {
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

    /// The copy of `key`, or what `read` finds (kept when found). `read` runs only on a miss,
    /// and only for the first of the misses of a key that come together: when a hot copy runs
    /// out, the requests in flight share one read and its outcome, failure included (a burst
    /// of identical queries would also open every pooled connection at once, and during an
    /// outage the waiters must fail with the reader, not retry one after another).
    pub async fn get_or(
        &self,
        key: &str,
        read: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        let (publish, mine) = loop {
            if let Some(value) = self.get(key) {
                return Ok(Some(value));
            }
            let under_way = {
                let mut reading = self.reading.lock().unwrap_or_else(|p| p.into_inner());
                match reading.get(key) {
                    Some(under_way) => Err(under_way.clone()),
                    None => {
                        let (publish, outcome) = watch::channel(None);
                        reading.insert(key.to_owned(), outcome.clone());
                        Ok((publish, outcome))
                    }
                }
            };
            match under_way {
                Ok(reader) => break reader,
                Err(mut outcome) => {
                    if let Ok(done) = outcome.wait_for(Option::is_some).await
                        && let Some(outcome) = done.clone()
                    {
                        return outcome;
                    }
                    // The reader was dropped (its request went away): look again, and one
                    // of the waiters becomes the reader.
                }
            }
        };
        // Takes this read off the list however it ends, cancelled included.
        let _done = ReadUnderWay {
            reading: &self.reading,
            key,
            mine,
        };
        let outcome = self.read_and_keep(key, read).await;
        publish.send_replace(Some(outcome.clone()));
        outcome
    }

    async fn read_and_keep(
        &self,
        key: &str,
        read: impl Future<Output = Result<Option<T>, E>>,
    ) -> Result<Option<T>, E> {
        let ticket = self.ticket();
        let found = read.await?;
        if let Some(value) = &found {
            self.put(key, value.clone(), ticket);
        }
        Ok(found)
    }

    /// Drops the copy of `key`: it was written. A read of it under way is no longer shared:
    /// a miss after the write reads again, so this node never serves its own stale write.
    pub fn forget(&self, key: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(key);
        // Locked in this order (entries, then reads) here only.
        let mut reading = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        reading.remove(key);
    }
}

/// Removes a key from [`Recent`]'s reads under way when its reader ends (unless a write
/// already did, and another read of it is under way now).
struct ReadUnderWay<'a, T, E> {
    reading: &'a ReadsUnderWay<T, E>,
    key: &'a str,
    mine: watch::Receiver<Outcome<T, E>>,
}

type ReadsUnderWay<T, E> = Mutex<HashMap<String, watch::Receiver<Outcome<T, E>>>>;

impl<T, E> Drop for ReadUnderWay<'_, T, E> {
    fn drop(&mut self) {
        let mut reading = self.reading.lock().unwrap_or_else(|p| p.into_inner());
        if reading
            .get(self.key)
            .is_some_and(|under_way| under_way.same_channel(&self.mine))
        {
            reading.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use lanyard_store::ManualClock;

    use super::*;

    #[test]
    fn a_copy_is_served_until_it_is_forgotten_or_too_old() {
        let clock = ManualClock::new(Timestamp::from_secs(1_000));
        let recent = Recent::<u32, ()>::new(Arc::new(clock.clone()));
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

    /// Misses of one key that come together make one read and share its outcome: what it
    /// found, and its failure too (each waiter failing at once, not reading in turn).
    #[tokio::test]
    async fn misses_that_come_together_share_one_read_and_its_failure() {
        for fails in [false, true] {
            let recent = Arc::new(Recent::<u32, String>::default());
            let reads = Arc::new(AtomicU64::new(0));
            let (open, gate) = watch::channel(false);
            let callers: Vec<_> = (0..32)
                .map(|_| {
                    let (recent, reads, mut gate) = (recent.clone(), reads.clone(), gate.clone());
                    tokio::spawn(async move {
                        recent
                            .get_or("client", async {
                                reads.fetch_add(1, Ordering::SeqCst);
                                // Held until every caller has missed and is waiting.
                                let _ = gate.wait_for(|open| *open).await;
                                if fails {
                                    Err("down".to_owned())
                                } else {
                                    Ok(Some(7))
                                }
                            })
                            .await
                    })
                })
                .collect();
            while recent.reading.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
            // Every caller has run to its first wait (this runtime runs one task at a time, in
            // turn).
            for _ in 0..64 {
                tokio::task::yield_now().await;
            }
            open.send_replace(true);
            for caller in callers {
                let want = if fails {
                    Err("down".to_owned())
                } else {
                    Ok(Some(7))
                };
                assert_eq!(caller.await.unwrap(), want);
            }
            assert_eq!(reads.load(Ordering::SeqCst), 1, "fails: {fails}");
            assert!(recent.reading.lock().unwrap().is_empty());
        }
    }

    /// A miss that comes after a write of the key does not take a read that began before it.
    #[tokio::test]
    async fn a_miss_after_a_write_does_not_share_a_read_from_before_it() {
        let recent = Arc::new(Recent::<u32, String>::default());
        let (open, gate) = watch::channel(false);
        let before = {
            let (recent, mut gate) = (recent.clone(), gate.clone());
            tokio::spawn(async move {
                recent
                    .get_or("k", async {
                        let _ = gate.wait_for(|open| *open).await;
                        Ok(Some(1))
                    })
                    .await
            })
        };
        while recent.reading.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        recent.forget("k");
        let after = recent.get_or("k", async { Ok(Some(2)) }).await;
        assert_eq!(after, Ok(Some(2)), "read again, after the write");
        open.send_replace(true);
        assert_eq!(before.await.unwrap(), Ok(Some(1)));
        // The old read kept nothing (the write came after it began), and left no entry.
        assert_eq!(recent.get("k"), Some(2));
        assert!(recent.reading.lock().unwrap().is_empty());
    }

    /// A reader that goes away (its request dropped) does not leave the others waiting.
    #[tokio::test]
    async fn a_dropped_reader_leaves_the_others_to_read() {
        let recent = Arc::new(Recent::<u32, String>::default());
        let reader = {
            let recent = recent.clone();
            tokio::spawn(async move { recent.get_or("k", std::future::pending()).await })
        };
        while recent.reading.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let waiter = {
            let recent = recent.clone();
            tokio::spawn(async move { recent.get_or("k", async { Ok(Some(3)) }).await })
        };
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        assert!(!waiter.is_finished(), "the waiter waits for the reader");
        reader.abort();
        assert_eq!(waiter.await.unwrap(), Ok(Some(3)));
        assert_eq!(recent.get("k"), Some(3));
        assert!(recent.reading.lock().unwrap().is_empty());
    }
}
