//! [`Fanout`]: one subscription to the store's revocation events, shared by every follower
//! of a node's revocation feed.
//!
//! Without it each follower would hold a subscription of its own — on Redis a connection of
//! its own blocked in `XREAD` — so 10,000 apps following one node would be 10,000 Redis
//! connections (past Redis's default `maxclients`) and 10,000 copies of every event read.
//! A `Fanout` reads the store once (its *leader*, a task that runs while anyone follows)
//! and keeps the last [`RING`] events; a follower whose cursor lies in that range is served
//! from it, and one outside it (older than the ring, another epoch, ahead of the leader)
//! gets a subscription of its own until it has caught up.
//!
//! The promises of [`Subscription`] hold for each follower: events in order from its
//! cursor, `Events([])` only once the store has answered "nothing new" since the follower's
//! last answer (so a feed's heartbeat stays true), [`Feed::Resnapshot`] when the store says
//! so, and the store's error when it fails (the follower's stream ends and reconnects).

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
    /// Bumped after every answer of the store to the leader (events, nothing new, failure).
    answers: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct State {
    /// A leader is reading the store.
    following: bool,
    /// Followers served from the ring (the leader stops when there are none).
    followers: usize,
    /// The leader's cursor: the ring holds the events after `base` up to `head.seq`.
    head: Cursor,
    base: u64,
    ring: VecDeque<RevocationEvent>,
    /// The store's last answer to the leader, when it was not events.
    last: Last,
}

#[derive(Clone)]
enum Last {
    Fine,
    Failed(StoreError),
    Resnapshot,
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
                    followers: 0,
                    head: Cursor {
                        epoch: String::new(),
                        seq: 0,
                    },
                    base: 0,
                    ring: VecDeque::new(),
                    last: Last::Fine,
                }),
                answers: watch::Sender::new(0),
            }),
            wait,
        }
    }

    /// Follows the events after `from`, like [`TokenStore::subscribe`].
    pub async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        let mut follower = Follower {
            fanout: self.clone(),
            cursor: from.clone(),
            answers: self.shared.answers.subscribe(),
            joined: false,
            own: None,
        };
        if !follower.join() {
            follower.own = Some(self.store.subscribe(from).await?);
        }
        Ok(Box::new(follower))
    }

    /// How many followers the shared subscription serves now.
    pub fn followers(&self) -> usize {
        self.shared.lock().followers
    }

    /// Starts the leader at `from` (the state is locked and no leader runs).
    fn lead(&self, state: &mut State, from: &Cursor) {
        state.following = true;
        state.head = from.clone();
        state.base = from.seq;
        state.ring.clear();
        state.last = Last::Fine;
        let store = self.store.clone();
        let shared = Arc::downgrade(&self.shared);
        let from = from.clone();
        let wait = self.wait;
        tokio::spawn(async move {
            // Subscribing is lazy on every backend (Redis connects on the first read).
            let sub = store.subscribe(&from).await;
            leader(sub, shared, wait).await;
        });
    }
}

/// Reads the store for the followers until none is left or the store says "resnapshot".
async fn leader(
    sub: Result<Box<dyn Subscription>, StoreError>,
    shared: Weak<Shared>,
    wait: Duration,
) {
    let mut sub = match sub {
        Ok(sub) => Some(sub),
        Err(e) => {
            if let Some(shared) = shared.upgrade() {
                let mut state = shared.lock();
                state.last = Last::Failed(e);
                state.following = false;
                drop(state);
                shared.answers.send_modify(|n| *n += 1);
            }
            None
        }
    };
    while let Some(current) = sub.as_mut() {
        let answer = current.next(wait).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let failed = {
            let mut state = shared.lock();
            let failed = answer.is_err();
            match answer {
                Ok(Feed::Events(events)) => {
                    state.ring.extend(events);
                    while state.ring.len() > RING {
                        if let Some(dropped) = state.ring.pop_front() {
                            state.base = dropped.cursor.seq;
                        }
                    }
                    state.head = current.cursor().clone();
                    state.last = Last::Fine;
                }
                Ok(Feed::Resnapshot) => {
                    // Every follower's cursor is on the old line: they all take a new
                    // snapshot, and the next one to subscribe starts a new leader.
                    state.last = Last::Resnapshot;
                    state.ring.clear();
                    state.following = false;
                    sub = None;
                }
                Err(e) => state.last = Last::Failed(e),
            }
            if state.followers == 0 && state.following {
                state.following = false;
                sub = None;
            }
            failed
        };
        shared.answers.send_modify(|n| *n += 1);
        drop(shared);
        if failed && sub.is_some() {
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// One follower: served from the [`Fanout`]'s ring while its cursor lies within it,
/// otherwise from a subscription of its own.
struct Follower {
    fanout: Fanout,
    cursor: Cursor,
    /// The answers counter as this follower last looked at it.
    answers: watch::Receiver<u64>,
    /// Counted among the fanout's followers.
    joined: bool,
    own: Option<Box<dyn Subscription>>,
}

impl Follower {
    /// Counts this follower in if the ring covers its cursor (starting the leader at its
    /// cursor when none runs). False when it must read on its own.
    fn join(&mut self) -> bool {
        let mut state = self.fanout.shared.lock();
        if !state.following {
            self.fanout.lead(&mut state, &self.cursor);
        } else if !covers(&state, &self.cursor) {
            return false;
        }
        state.followers += 1;
        self.joined = true;
        // Only answers from now on count for this follower.
        self.answers.mark_unchanged();
        true
    }

    fn leave(&mut self) {
        if self.joined {
            self.fanout.shared.lock().followers -= 1;
            self.joined = false;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.leave();
    }
}

/// Whether the ring can serve a follower at `cursor`.
fn covers(state: &State, cursor: &Cursor) -> bool {
    cursor.epoch == state.head.epoch && state.base <= cursor.seq && cursor.seq <= state.head.seq
}

/// What the ring has for a follower at `cursor`: `None` when it no longer covers it.
fn from_ring(state: &State, cursor: &Cursor) -> Option<Vec<RevocationEvent>> {
    if !covers(state, cursor) {
        return None;
    }
    let skip = usize::try_from(cursor.seq - state.base).unwrap_or(usize::MAX);
    Some(state.ring.iter().skip(skip).take(BATCH).cloned().collect())
}

#[async_trait]
impl Subscription for Follower {
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn next(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        if self.own.is_some() {
            return self.read_alone(wait).await;
        }
        // The leader answers at least every `fanout.wait`: a follower that hears nothing for
        // longer than that and its own wait gives up (the store hangs).
        let deadline = tokio::time::Instant::now() + wait.max(self.fanout.wait) + self.fanout.wait;
        loop {
            let answered = self.answers.has_changed().unwrap_or(false);
            self.answers.mark_unchanged();
            let step = {
                let state = self.fanout.shared.lock();
                match from_ring(&state, &self.cursor) {
                    Some(events) if !events.is_empty() => Step::Answer(Ok(Feed::Events(events))),
                    Some(_) if answered => Step::Answer(match &state.last {
                        Last::Fine => Ok(Feed::Events(Vec::new())),
                        Last::Failed(e) => Err(e.clone()),
                        Last::Resnapshot => Ok(Feed::Resnapshot),
                    }),
                    Some(_) => Step::Wait,
                    None if matches!(state.last, Last::Resnapshot) => {
                        Step::Answer(Ok(Feed::Resnapshot))
                    }
                    // Fell behind the ring, or the leader started again from elsewhere.
                    None => Step::Alone,
                }
            };
            match step {
                Step::Answer(Ok(Feed::Events(events))) => {
                    if let Some(last) = events.last() {
                        self.cursor = last.cursor.clone();
                    }
                    return Ok(Feed::Events(events));
                }
                Step::Answer(answer) => return answer,
                Step::Alone => {
                    self.leave();
                    self.own = Some(self.fanout.store.subscribe(&self.cursor).await?);
                    return self.read_alone(wait).await;
                }
                Step::Wait => {
                    if tokio::time::timeout_at(deadline, self.answers.changed())
                        .await
                        .is_err()
                    {
                        return Err(StoreError::Timeout(wait));
                    }
                    // Looked at on the next turn, with `answered` set.
                    self.answers.mark_changed();
                }
            }
        }
    }
}

impl Follower {
    /// One read of its own subscription; caught up with the ring (or no leader runs: one
    /// starts at this cursor), it gives the subscription back and follows the leader again.
    async fn read_alone(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        let Some(own) = self.own.as_mut() else {
            return Err(StoreError::InvalidRequest("no subscription of its own"));
        };
        let feed = own.next(wait).await?;
        self.cursor = own.cursor().clone();
        let caught_up = {
            let state = self.fanout.shared.lock();
            !state.following || covers(&state, &self.cursor)
        };
        if caught_up && self.join() {
            self.own = None;
        }
        Ok(feed)
    }
}

/// What a follower does on one look at the ring.
enum Step {
    Answer(Result<Feed, StoreError>),
    /// Nothing for it yet: wait for the leader's next answer.
    Wait,
    /// The ring does not cover its cursor: read on its own.
    Alone,
}
