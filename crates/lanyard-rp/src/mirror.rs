//! The revocation mirror: a local copy of Lanyard's revocation lists, so the guard checks a
//! token with no network round trip.
//!
//! It starts from a snapshot, then applies every event in order from the snapshot's cursor;
//! after a gap (or a new epoch) it takes a new snapshot. After a lost connection it resumes
//! from its last cursor. Entries leave once nothing they cover can be valid, so memory stays
//! bounded. The mirror remembers when it last heard from its source: past the staleness bound
//! the guard fails closed (503) unless the app chose availability.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use lanyard_store::{
    Clock, Cursor, Feed, RevocationSet, Snapshot, StoreError, Subscription, Target, Timestamp,
    TokenFacts, TokenStore, Verdict,
};

/// Where the revocation lists come from: Lanyard's token store (Redis, or in process), or its
/// HTTP feed.
#[async_trait]
pub trait RevocationSource: Send + Sync + 'static {
    /// The whole lists and the cursor to follow from.
    async fn snapshot(&self) -> Result<Snapshot, StoreError>;
    /// Events after `from`.
    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError>;
}

/// Follows a token store directly.
pub struct StoreSource(pub Arc<dyn TokenStore>);

#[async_trait]
impl RevocationSource for StoreSource {
    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        self.0.snapshot().await
    }
    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        self.0.subscribe(from).await
    }
}

/// What the mirror can say about itself (export it to your health checks and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorStatus {
    /// Whether it heard from its source within the staleness bound.
    pub healthy: bool,
    /// Time since it last heard from its source.
    pub lag: Duration,
    /// The last event applied (its sequence number within the epoch).
    pub last_event: Option<u64>,
    /// Revocation entries held.
    pub entries: usize,
    /// Snapshots taken since start (1 + resnapshots).
    pub snapshots: u64,
}

/// The mirror is too far behind to say "not revoked".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the revocation mirror has not heard from its source for {0:?}")]
pub struct Stale(pub Duration);

struct Inner {
    set: RwLock<RevocationSet>,
    /// When the source last answered (ms), 0 before the first snapshot.
    last_contact: AtomicI64,
    last_event: AtomicU64,
    has_event: AtomicBool,
    snapshots: AtomicU64,
    /// How long the issuer keeps entries past the expiry of what they cover (seconds, from
    /// its snapshot); `u64::MAX` before the first.
    retention: AtomicU64,
    /// Counts the `kid` entries seen (a signing key withdrawn): guards fetch the keys again.
    keys_changed: tokio::sync::watch::Sender<u64>,
    bound: Duration,
    max_lifetime: Duration,
    clock: Arc<dyn Clock>,
}

/// A live copy of the revocation lists. Cloning shares it; the follower task stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Mirror {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("status", &self.status())
            .finish()
    }
}

/// How long one wait for events lasts; a live source is heard from at least this often.
const WAIT: Duration = Duration::from_secs(1);

impl Mirror {
    /// Starts following `source`. `bound`: the staleness bound. `max_lifetime`: the issuer's
    /// longest access-token lifetime.
    pub fn follow(
        source: Arc<dyn RevocationSource>,
        bound: Duration,
        max_lifetime: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mirror = Self {
            inner: Arc::new(Inner {
                set: RwLock::new(RevocationSet::new()),
                last_contact: AtomicI64::new(0),
                last_event: AtomicU64::new(0),
                has_event: AtomicBool::new(false),
                snapshots: AtomicU64::new(0),
                retention: AtomicU64::new(u64::MAX),
                keys_changed: tokio::sync::watch::Sender::new(0),
                bound,
                max_lifetime,
                clock,
            }),
        };
        tokio::spawn(follow(Arc::downgrade(&mirror.inner), source));
        mirror
    }

    /// Waits until the first snapshot is in, or `timeout` passes. Returns whether it is.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.inner.last_contact.load(Ordering::Acquire) == 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Judges a token. What the mirror holds always counts: a token it knows to be revoked
    /// is revoked however stale the mirror is. Only "not revoked" needs a fresh mirror;
    /// when it is too far behind to say that, the answer is [`Stale`].
    pub fn check(&self, facts: &TokenFacts<'_>) -> Result<Verdict, Stale> {
        let now = self.inner.clock.now();
        let verdict = self
            .inner
            .set
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .check(facts, now, self.inner.max_lifetime);
        let lag = self.lag(now);
        match verdict {
            Verdict::NotRevoked if lag > self.inner.bound => Err(Stale(lag)),
            verdict => Ok(verdict),
        }
    }

    /// How long the issuer keeps a revocation entry past the expiry of the tokens it covers
    /// (its snapshot says); `None` before the first snapshot. A guard accepting a token longer
    /// than this past its `exp` could miss its revocation, so it caps its leeway to this.
    pub fn retention(&self) -> Option<Duration> {
        match self.inner.retention.load(Ordering::Acquire) {
            u64::MAX => None,
            secs => Some(Duration::from_secs(secs)),
        }
    }

    /// Changes each time the issuer withdraws a signing key (a `kid` entry arrives, or a new
    /// snapshot holds one): fetch the keys again then. The guard does.
    pub fn keys_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.keys_changed.subscribe()
    }

    /// Its state now.
    pub fn status(&self) -> MirrorStatus {
        let now = self.inner.clock.now();
        let lag = self.lag(now);
        MirrorStatus {
            healthy: lag <= self.inner.bound,
            lag,
            last_event: self
                .inner
                .has_event
                .load(Ordering::Acquire)
                .then(|| self.inner.last_event.load(Ordering::Acquire)),
            entries: self.inner.set.read().map(|s| s.len()).unwrap_or(0),
            snapshots: self.inner.snapshots.load(Ordering::Acquire),
        }
    }

    fn lag(&self, now: Timestamp) -> Duration {
        match self.inner.last_contact.load(Ordering::Acquire) {
            0 => Duration::MAX,
            ms => Timestamp::from_millis(ms).until(now),
        }
    }
}

impl Inner {
    fn heard(&self) {
        self.last_contact
            .store(self.clock.now().as_millis().max(1), Ordering::Release);
    }

    fn replace(&self, snapshot: &Snapshot) {
        let mut set = RevocationSet::new();
        for r in &snapshot.revocations {
            set.apply(r);
        }
        set.prune(self.clock.now());
        *self.set.write().unwrap_or_else(|p| p.into_inner()) = set;
        // A new snapshot after the first may stand for `kid` events this mirror missed.
        if self.snapshots.load(Ordering::Acquire) > 0
            && snapshot
                .revocations
                .iter()
                .any(|r| matches!(r.target, Target::Kid(_)))
        {
            self.keys_changed.send_modify(|n| *n += 1);
        }
        self.retention
            .store(snapshot.leeway_secs.min(u64::MAX - 1), Ordering::Release);
        self.snapshots.fetch_add(1, Ordering::AcqRel);
        self.heard();
    }
}

/// The follower: snapshot, then events; resnapshot on a gap; back off on errors.
async fn follow(inner: std::sync::Weak<Inner>, source: Arc<dyn RevocationSource>) {
    let mut backoff = Duration::from_millis(100);
    'snapshot: loop {
        let snapshot = match source.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "revocation mirror: snapshot failed; retrying");
                if inner.upgrade().is_none() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        strong.replace(&snapshot);
        drop(strong);
        let mut cursor = snapshot.cursor;
        let mut subscription: Option<Box<dyn Subscription>> = None;
        loop {
            if inner.upgrade().is_none() {
                return;
            }
            let sub = match &mut subscription {
                Some(s) => s,
                None => match source.subscribe(&cursor).await {
                    Ok(s) => subscription.insert(s),
                    Err(e) => {
                        tracing::warn!(error = %e, "revocation mirror: cannot subscribe; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            match sub.next(WAIT).await {
                Ok(Feed::Events(events)) => {
                    backoff = Duration::from_millis(100);
                    let Some(strong) = inner.upgrade() else {
                        return;
                    };
                    if let Some(last) = events.last() {
                        let mut set = strong.set.write().unwrap_or_else(|p| p.into_inner());
                        let mut keys_changed = false;
                        for event in &events {
                            set.apply(&event.revocation);
                            keys_changed |= matches!(event.revocation.target, Target::Kid(_));
                        }
                        if keys_changed {
                            strong.keys_changed.send_modify(|n| *n += 1);
                        }
                        set.prune(strong.clock.now());
                        drop(set);
                        cursor = last.cursor.clone();
                        strong.last_event.store(cursor.seq, Ordering::Release);
                        strong.has_event.store(true, Ordering::Release);
                    } else {
                        // Quiet times prune too: entries leave once the tokens they cover
                        // have expired, events or not.
                        strong
                            .set
                            .write()
                            .unwrap_or_else(|p| p.into_inner())
                            .prune(strong.clock.now());
                    }
                    strong.heard();
                }
                Ok(Feed::Resnapshot) => continue 'snapshot,
                Err(e) => {
                    // Resume from the same cursor with a fresh subscription.
                    tracing::debug!(error = %e, "revocation mirror: lost its source; resuming");
                    subscription = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
