//! [`Fanout`]: one subscription to the store's revocation events, shared by every follower
//! of a node's revocation feed.
//!
//! Without it each follower would hold a subscription of its own — on Redis a connection of
//! its own blocked in `XREAD` — so 10,000 apps following one node would be 10,000 Redis
//! connections (past Redis's default `maxclients`) and 10,000 copies of every event read.
//! A `Fanout` reads the store once (its *leader*, a task that runs while anyone follows)
//! and keeps the last [`RING`] events; a follower whose cursor lies in that range is served
//! from it, one just ahead of it waits for the leader to get there (the first app back after
//! a restart may have started the leader further back), and one outside it (older than the
//! ring, another epoch) gets a subscription of its own until it has caught up.
//!
//! The promises of [`Subscription`] hold for each follower: events in order from its
//! cursor, `Events([])` only once the store has answered "nothing new" to the leader since
//! the follower's last answer (so a feed's heartbeat stays true; what each answer was is
//! recorded with a serial number under the state's lock, the watch channel only wakes),
//! [`Feed::Resnapshot`] when the store says so, and the store's error when it fails (the
//! follower's stream ends and reconnects). A leader that is no longer the current one (it
//! stopped, or a new one started) changes nothing, and its followers join the next.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{Cursor, Feed, RevocationEvent, StoreError, Subscription, TokenStore};

/// Events kept for followers that are a little behind.
pub(crate) const RING: usize = 4_096;

/// The most events one answer to a follower carries.
const BATCH: usize = 1_000;

/// How long the leader waits before it reads the store again after a failure.
const RETRY: Duration = Duration::from_millis(250);

/// Shares one subscription to `store` among all followers (see the module documentation).
#[derive(Clone)]
pub struct Fanout {
    store: Arc<dyn TokenStore>,
    shared: Arc<Shared>,
    wait: Duration,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("Fanout")
            .field("following", &state.following)
            .field("followers", &state.followers)
            .field("head", &state.head)
            .finish_non_exhaustive()
    }
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the followers after each answer of the store to the leader. Only a wake-up:
    /// what the answer was is read from the state, under its lock.
    wake: watch::Sender<()>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct State {
    /// A leader is reading the store.
    following: bool,
    /// Which leader: each start is a new one, and a leader that is no longer the current one
    /// changes nothing.
    generation: u64,
    /// Followers of the current leader served from the ring (it stops when there are none).
    followers: usize,
    /// The leader's cursor: the ring holds the events after `base` up to `head.seq`.
    head: Cursor,
    base: u64,
    ring: VecDeque<RevocationEvent>,
    /// Counts the store's answers to the leader; `last` is what the latest one was.
    serial: u64,
    last: Last,
    /// How the previous leader ended, for its followers that had not looked yet.
    ended: Option<(u64, Last)>,
}

/// What an answer of the store to the leader was, beyond the events it put in the ring.
#[derive(Clone)]
enum Last {
    /// Events, or none yet (a leader that has not heard from the store).
    Events,
    /// Nothing new: the only answer that lets a follower at the head say so.
    Quiet,
    Failed(StoreError),
    Resnapshot,
}

/// Where a cursor stands against the ring.
enum Place {
    Within,
    /// Same epoch, past what the leader has read (it started further back, or lags).
    Ahead,
    Outside,
}

fn place(state: &State, cursor: &Cursor) -> Place {
    if cursor.epoch != state.head.epoch || cursor.seq < state.base {
        Place::Outside
    } else if cursor.seq > state.head.seq {
        Place::Ahead
    } else {
        Place::Within
    }
}

impl Fanout {
    /// Shares `store`'s events; the leader waits up to `wait` on the store per read (so the
    /// store answers "nothing new" at least that often).
    pub fn new(store: Arc<dyn TokenStore>, wait: Duration) -> Self {
        Self {
            store,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    following: false,
                    generation: 0,
                    followers: 0,
                    head: Cursor {
                        epoch: String::new(),
                        seq: 0,
                    },
                    base: 0,
                    ring: VecDeque::new(),
                    serial: 0,
                    last: Last::Events,
                    ended: None,
                }),
                wake: watch::Sender::new(()),
            }),
            wait,
        }
    }

    /// Follows the events after `from`, like [`TokenStore::subscribe`].
    pub async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        let mut follower = Follower {
            fanout: self.clone(),
            cursor: from.clone(),
            wake: self.shared.wake.subscribe(),
            joined: None,
            seen: 0,
            own: None,
        };
        follower.ready().await?;
        Ok(Box::new(follower))
    }

    /// How many followers the shared subscription serves now.
    pub fn followers(&self) -> usize {
        self.shared.lock().followers
    }

    /// Starts a new leader at `from` (the state is locked and no leader runs).
    fn lead(&self, state: &mut State, from: &Cursor) {
        state.following = true;
        state.generation += 1;
        state.followers = 0;
        state.head = from.clone();
        state.base = from.seq;
        state.ring.clear();
        state.last = Last::Events;
        let store = self.store.clone();
        let shared = Arc::downgrade(&self.shared);
        let from = from.clone();
        let wait = self.wait;
        let generation = state.generation;
        tokio::spawn(async move {
            // Subscribing is lazy on every backend (Redis connects on the first read).
            let sub = store.subscribe(&from).await;
            let mut lead = Lead { shared, generation };
            match sub {
                Ok(sub) => lead.follow(sub, wait).await,
                Err(e) => lead.end(Last::Failed(e)),
            }
        });
    }
}

/// The leader task: reads the store for the followers until none is left or the store says
/// "resnapshot". Whatever ends it (a panic included), it hands over when dropped.
struct Lead {
    shared: Weak<Shared>,
    generation: u64,
}

impl Lead {
    async fn follow(&mut self, mut sub: Box<dyn Subscription>, wait: Duration) {
        loop {
            let answer = sub.next(wait).await;
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            let retry = {
                let mut state = shared.lock();
                if state.generation != self.generation || !state.following {
                    return;
                }
                state.serial += 1;
                let retry = answer.is_err();
                match answer {
                    Ok(Feed::Events(events)) if events.is_empty() => state.last = Last::Quiet,
                    Ok(Feed::Events(events)) => {
                        state.ring.extend(events);
                        while state.ring.len() > RING {
                            if let Some(dropped) = state.ring.pop_front() {
                                state.base = dropped.cursor.seq;
                            }
                        }
                        state.head = sub.cursor().clone();
                        state.last = Last::Events;
                    }
                    Ok(Feed::Resnapshot) => {
                        // Every follower's cursor is on the old line: they all take a new
                        // snapshot, and the next one to subscribe starts a new leader.
                        drop(state);
                        self.end(Last::Resnapshot);
                        return;
                    }
                    Err(e) => state.last = Last::Failed(e),
                }
                if state.followers == 0 {
                    drop(state);
                    self.end(Last::Events);
                    return;
                }
                retry
            };
            shared.wake.send_replace(());
            drop(shared);
            if retry {
                tokio::time::sleep(RETRY).await;
            }
        }
    }

    /// Stops being the leader (if it still is), saying how it ended.
    fn end(&mut self, how: Last) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        {
            let mut state = shared.lock();
            if state.generation != self.generation || !state.following {
                return;
            }
            state.following = false;
            state.serial += 1;
            state.ended = Some((self.generation, how));
        }
        shared.wake.send_replace(());
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.end(Last::Failed(StoreError::Unavailable(
            "the revocation feed's reader stopped".to_owned(),
        )));
    }
}

/// One follower: served from the [`Fanout`]'s ring while its cursor lies within it (or just
/// ahead of it), otherwise from a subscription of its own.
struct Follower {
    fanout: Fanout,
    cursor: Cursor,
    wake: watch::Receiver<()>,
    /// The leader it is counted by (its generation).
    joined: Option<u64>,
    /// The serial of the last answer it took into account.
    seen: u64,
    own: Option<Box<dyn Subscription>>,
}

impl Follower {
    /// Counts this follower in if the ring can serve its cursor (starting a leader at its
    /// cursor when none runs). False when it must read on its own.
    fn join(&mut self) -> bool {
        let mut state = self.fanout.shared.lock();
        if !state.following {
            self.fanout.lead(&mut state, &self.cursor);
        } else if matches!(place(&state, &self.cursor), Place::Outside) {
            return false;
        }
        state.followers += 1;
        self.joined = Some(state.generation);
        // Only answers from now on count for this follower.
        self.seen = state.serial;
        self.wake.mark_unchanged();
        true
    }

    fn leave(&mut self) {
        if let Some(generation) = self.joined.take() {
            let mut state = self.fanout.shared.lock();
            if state.generation == generation {
                state.followers -= 1;
            }
        }
    }

    /// Joined, or with a subscription of its own.
    async fn ready(&mut self) -> Result<(), StoreError> {
        if self.joined.is_none() && self.own.is_none() && !self.join() {
            self.own = Some(self.fanout.store.subscribe(&self.cursor).await?);
        }
        Ok(())
    }

    /// One read of its own subscription; caught up with the ring (or no leader runs: one
    /// starts at this cursor), it gives the subscription back and follows the leader again.
    async fn read_alone(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        let Some(own) = self.own.as_mut() else {
            return Err(StoreError::InvalidRequest("no subscription of its own"));
        };
        let feed = own.next(wait).await?;
        self.cursor = own.cursor().clone();
        if feed != Feed::Resnapshot && self.join() {
            self.own = None;
        }
        Ok(feed)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.leave();
    }
}

/// What the ring has for a follower at `cursor` (within it).
fn from_ring(state: &State, cursor: &Cursor) -> Vec<RevocationEvent> {
    let skip = usize::try_from(cursor.seq - state.base).unwrap_or(usize::MAX);
    state.ring.iter().skip(skip).take(BATCH).cloned().collect()
}

#[async_trait]
impl Subscription for Follower {
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn next(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        self.ready().await?;
        if self.own.is_some() {
            return self.read_alone(wait).await;
        }
        // The leader answers at least every `fanout.wait` (plus a retry's pause): a follower
        // that hears nothing for much longer gives up (the store hangs).
        let deadline =
            tokio::time::Instant::now() + wait.max(self.fanout.wait) + 2 * self.fanout.wait;
        loop {
            // Marked before looking, so an answer recorded after the look still wakes it.
            self.wake.mark_unchanged();
            let step = {
                let state = self.fanout.shared.lock();
                let answered = state.serial > self.seen;
                let step = if !state.following || self.joined != Some(state.generation) {
                    // Its leader has ended: how, if it had something to say; the next call
                    // joins the current leader (or starts one).
                    let ended = match &state.ended {
                        Some((generation, Last::Resnapshot))
                            if Some(*generation) == self.joined =>
                        {
                            Step::Answer(Ok(Feed::Resnapshot))
                        }
                        Some((generation, Last::Failed(e))) if Some(*generation) == self.joined => {
                            Step::Answer(Err(e.clone()))
                        }
                        _ => Step::Rejoin,
                    };
                    self.joined = None;
                    ended
                } else {
                    match place(&state, &self.cursor) {
                        Place::Within => {
                            let events = from_ring(&state, &self.cursor);
                            if !events.is_empty() {
                                Step::Answer(Ok(Feed::Events(events)))
                            } else if !answered {
                                Step::Wait
                            } else {
                                match &state.last {
                                    Last::Quiet => Step::Answer(Ok(Feed::Events(Vec::new()))),
                                    Last::Failed(e) => Step::Answer(Err(e.clone())),
                                    Last::Resnapshot => Step::Answer(Ok(Feed::Resnapshot)),
                                    Last::Events => Step::Wait,
                                }
                            }
                        }
                        // The store said nothing new, and the leader is still behind this
                        // cursor: the store itself must judge it (a cursor from the future
                        // gets "resnapshot").
                        Place::Ahead if answered && matches!(state.last, Last::Quiet) => {
                            Step::Alone
                        }
                        Place::Ahead => Step::Wait,
                        // Fell behind the ring.
                        Place::Outside => Step::Alone,
                    }
                };
                self.seen = state.serial;
                step
            };
            match step {
                Step::Answer(Ok(Feed::Events(events))) => {
                    if let Some(last) = events.last() {
                        self.cursor = last.cursor.clone();
                    }
                    return Ok(Feed::Events(events));
                }
                Step::Answer(answer) => return answer,
                Step::Rejoin => {
                    self.ready().await?;
                    if self.own.is_some() {
                        return self.read_alone(wait).await;
                    }
                }
                Step::Alone => {
                    self.leave();
                    self.own = Some(self.fanout.store.subscribe(&self.cursor).await?);
                    return self.read_alone(wait).await;
                }
                Step::Wait => {
                    if tokio::time::timeout_at(deadline, self.wake.changed())
                        .await
                        .is_err()
                    {
                        return Err(StoreError::Timeout(wait));
                    }
                }
            }
        }
    }
}

/// What a follower does on one look at the ring.
enum Step {
    Answer(Result<Feed, StoreError>),
    /// Nothing for it yet: wait for the leader's next answer.
    Wait,
    /// Its leader ended: join the current one (or start one).
    Rejoin,
    /// The ring does not cover its cursor: read on its own.
    Alone,
}
