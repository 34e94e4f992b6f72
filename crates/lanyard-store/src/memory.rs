//! `MemoryStore`: the in-process backend, the embedded default for a single node.
//!
//! Same rules, deadlines and events as the Redis backend, under one mutex that is never held
//! across an `.await`. Time comes from the injected [`Clock`]; expired records read as absent
//! at once and are swept out at most once per second of clock time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::codes::CodeRecord;
use crate::device::{DeviceCode, DeviceRecord, DeviceState};
use crate::ids::{SessionId, secret_hash};
use crate::refresh::{Decision, FamilyState, Minted, reopen_successor};
use crate::store::oldest_first;
use crate::{
    AccessTokenRef, Attempt, AuthorizationCode, Clock, CodeGrant, Cursor, DeviceDecision,
    DevicePoll, Family, FamilyId, Feed, IssuedRefresh, NewDeviceGrant, NewFamily, NewSession,
    PendingDevice, RedeemedCode, Redemption, RefreshInfo, RefreshToken, Revocation,
    RevocationEvent, RevocationSet, RevokedFamily, Rotation, Session, Snapshot, StoreConfig,
    StoreError, Subscription, SystemClock, Target, Throttle, ThrottlePolicy, Timestamp, TokenFacts,
    TokenStore, UserCode, Verdict,
};

const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The in-process store. Cloning shares the state.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: StoreConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// The latest event number (or a bump on re-seed): wakes subscribers.
    published: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<String, (CodeRecord, Timestamp)>,
    sessions: HashMap<SessionId, SessionEntry>,
    user_sessions: HashMap<String, HashSet<SessionId>>,
    families: HashMap<FamilyId, FamilyState>,
    user_families: HashMap<String, HashSet<FamilyId>>,
    client_families: HashMap<String, HashSet<FamilyId>>,
    /// Ids revoked (whether or not they existed yet), until when they stay refused.
    revoked_families: HashMap<FamilyId, Timestamp>,
    revocations: RevocationSet,
    epoch: String,
    seq: u64,
    events: VecDeque<RevocationEvent>,
    /// Failed-attempt counters, with the end of their window.
    throttles: HashMap<String, (Throttle, Timestamp)>,
    /// Single-use values (`put_once`), with their expiry.
    once: HashMap<String, (String, Timestamp)>,
    /// Keys claimed once (`claim_once`), by hash, with when they are forgotten.
    claimed: HashMap<String, Timestamp>,
    /// Device grants by user code, with when they are forgotten.
    devices: HashMap<UserCode, (DeviceRecord, Timestamp)>,
    next_sweep: Timestamp,
}

/// When a counter is forgotten: its window and its block both over.
fn forget_at(entry: &(Throttle, Timestamp)) -> Timestamp {
    entry.0.blocked_until.map_or(entry.1, |b| b.max(entry.1))
}

#[derive(Debug)]
struct SessionEntry {
    session: Session,
    families: HashSet<FamilyId>,
}

impl MemoryStore {
    /// [`TokenStore::inspect_refresh`], with the family's access tokens or without them
    /// (`find_refresh` needs only the family, and a long chain has many).
    fn inspect(&self, token: &str, with_tokens: bool) -> Option<RefreshInfo> {
        let id = RefreshToken::parse_family(token)?;
        let presented = secret_hash(token);
        let now = self.now();
        let mut state = self.state(now);
        state.live_family(&id, now).and_then(|f| {
            let current = f.current_hash == presented;
            (current || f.retired.contains(&presented)).then(|| RefreshInfo {
                family: f.family.clone(),
                current,
                access_tokens: if with_tokens {
                    f.access_tokens
                        .iter()
                        .filter(|t| t.expires_at > now)
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                },
            })
        })
    }

    /// A store on the system clock.
    pub fn new(config: StoreConfig) -> Result<Self, StoreError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A store on the given clock (tests move a [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        config.validate()?;
        let state = State {
            epoch: SessionId::generate().to_string(),
            ..State::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                clock,
                state: Mutex::new(state),
                published: watch::channel(0).0,
            }),
        })
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// Revokes every family an index lists for `owner`.
    fn revoke_indexed(
        &self,
        index: fn(&State) -> &HashMap<String, HashSet<FamilyId>>,
        owner: &str,
    ) -> Vec<RevokedFamily> {
        let now = self.now();
        let mut state = self.state(now);
        let remember = now.plus(self.inner.config.tombstone_ttl());
        indexed(index(&state), owner)
            .iter()
            .filter_map(|id| state.revoke_family(id, now, remember))
            .collect()
    }

    /// Locks the state and sweeps expired records when a sweep is due.
    fn state(&self, now: Timestamp) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave a half-applied step behind: every
        // step mutates only after all its checks. So a poisoned lock is still consistent.
        let mut state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if now >= state.next_sweep {
            state.sweep(now);
            state.next_sweep = now.plus(SWEEP_EVERY);
        }
        state
    }
}

impl State {
    fn sweep(&mut self, now: Timestamp) {
        self.codes.retain(|_, (_, expires)| *expires > now);
        self.revoked_families.retain(|_, until| *until > now);
        let dead_sessions: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, e)| !e.session.is_live(now))
            .map(|(sid, _)| sid.clone())
            .collect();
        for sid in dead_sessions {
            self.remove_session(&sid);
        }
        let dead_families: Vec<FamilyId> = self
            .families
            .iter()
            .filter(|(_, f)| f.family.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead_families {
            self.remove_family(&id);
        }
        self.revocations.prune(now);
        self.throttles.retain(|_, e| forget_at(e) > now);
        self.once.retain(|_, (_, expires)| *expires > now);
        self.devices.retain(|_, (_, kept_until)| *kept_until > now);
        self.claimed.retain(|_, until| *until > now);
    }

    /// The live counter of `key`, dropping it if it is over.
    fn throttle(&mut self, key: &str, now: Timestamp) -> Option<&mut (Throttle, Timestamp)> {
        if self.throttles.get(key).is_some_and(|e| forget_at(e) <= now) {
            self.throttles.remove(key);
        }
        self.throttles.get_mut(key)
    }

    /// One more failure under `key`.
    fn count(&mut self, key: &str, policy: &ThrottlePolicy, now: Timestamp) -> Throttle {
        let (before, window_ends) = self
            .throttle(key, now)
            .map(|e| *e)
            .unwrap_or((Throttle::default(), now.plus(policy.window)));
        let after = before.fail(policy, now);
        self.throttles.insert(key.to_owned(), (after, window_ends));
        after
    }

    fn live_session(&mut self, sid: &SessionId, now: Timestamp) -> Option<&mut SessionEntry> {
        let live = self.sessions.get(sid)?.session.is_live(now);
        if !live {
            self.remove_session(sid);
            return None;
        }
        self.sessions.get_mut(sid)
    }

    fn remove_session(&mut self, sid: &SessionId) -> Option<Session> {
        let entry = self.sessions.remove(sid)?;
        for family in &entry.families {
            self.remove_family(family);
        }
        remove_from_index(&mut self.user_sessions, &entry.session.sub, sid);
        Some(entry.session)
    }

    fn live_family(&mut self, id: &FamilyId, now: Timestamp) -> Option<&mut FamilyState> {
        let expired = self.families.get(id)?.family.expires_at <= now;
        let session_ended = id
            .session()
            .is_some_and(|sid| self.live_session(&sid, now).is_none());
        if expired || session_ended {
            self.remove_family(id);
            return None;
        }
        self.families.get_mut(id)
    }

    fn remove_family(&mut self, id: &FamilyId) -> Option<FamilyState> {
        let state = self.families.remove(id)?;
        remove_from_index(&mut self.user_families, &state.family.sub, id);
        remove_from_index(&mut self.client_families, &state.family.client_id, id);
        if let Some(entry) = id.session().and_then(|sid| self.sessions.get_mut(&sid)) {
            entry.families.remove(id);
        }
        Some(state)
    }

    /// Revokes a family and remembers its id as revoked until `remember_until`, so that a
    /// family revoked before it is issued never comes to life.
    fn revoke_family(
        &mut self,
        id: &FamilyId,
        now: Timestamp,
        remember_until: Timestamp,
    ) -> Option<RevokedFamily> {
        self.revoked_families.insert(id.clone(), remember_until);
        self.live_family(id, now)?;
        let state = self.remove_family(id)?;
        Some(revoked(state, now))
    }

    fn publish(&mut self, revocation: Revocation, retention: usize) -> RevocationEvent {
        self.seq += 1;
        let event = RevocationEvent {
            cursor: Cursor {
                epoch: self.epoch.clone(),
                seq: self.seq,
            },
            revocation,
        };
        self.events.push_back(event.clone());
        while self.events.len() > retention {
            self.events.pop_front();
        }
        event
    }

    /// Events after `cursor`, `None` when there are none yet.
    fn feed_after(&self, cursor: &Cursor) -> Option<Feed> {
        if cursor.epoch != self.epoch || cursor.seq > self.seq {
            return Some(Feed::Resnapshot);
        }
        if cursor.seq == self.seq {
            return None;
        }
        let first = self.events.front().map_or(self.seq + 1, |e| e.cursor.seq);
        if first > cursor.seq + 1 {
            return Some(Feed::Resnapshot);
        }
        let events = self
            .events
            .iter()
            .filter(|e| e.cursor.seq > cursor.seq)
            .cloned()
            .collect();
        Some(Feed::Events(events))
    }
}

/// The keys an index holds for `owner`.
fn indexed<K: Clone>(index: &HashMap<String, HashSet<K>>, owner: &str) -> Vec<K> {
    index
        .get(owner)
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

fn remove_from_index<K: Eq + std::hash::Hash>(
    index: &mut HashMap<String, HashSet<K>>,
    owner: &str,
    key: &K,
) {
    if let Some(set) = index.get_mut(owner) {
        set.remove(key);
        if set.is_empty() {
            index.remove(owner);
        }
    }
}

fn revoked(mut state: FamilyState, now: Timestamp) -> RevokedFamily {
    state.record(None, now);
    RevokedFamily {
        family: state.family,
        access_tokens: state.access_tokens,
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    async fn put_code(&self, grant: &CodeGrant) -> Result<AuthorizationCode, StoreError> {
        let now = self.now();
        let code = AuthorizationCode::generate();
        let expires = now.plus(self.inner.config.code_ttl);
        self.state(now).codes.insert(
            secret_hash(code.secret()),
            (CodeRecord::Live(grant.clone()), expires),
        );
        Ok(code)
    }

    async fn redeem_code(&self, code: &str, client_id: &str) -> Result<Redemption, StoreError> {
        let now = self.now();
        let key = secret_hash(code);
        let mut state = self.state(now);
        let Some((record, expires)) = state.codes.remove(&key) else {
            return Ok(Redemption::NotFound);
        };
        if expires <= now {
            return Ok(Redemption::NotFound);
        }
        match record {
            CodeRecord::Live(grant) if grant.client_id != client_id => {
                state.codes.insert(key, (CodeRecord::Live(grant), expires));
                Ok(Redemption::NotFound)
            }
            CodeRecord::Live(grant) => {
                let tombstone = CodeRecord::Redeemed(RedeemedCode::of(&grant));
                let kept_until = now.plus(self.inner.config.tombstone_ttl());
                state.codes.insert(key, (tombstone, kept_until));
                Ok(Redemption::Redeemed(grant))
            }
            CodeRecord::Redeemed(spent) => {
                state
                    .codes
                    .insert(key, (CodeRecord::Redeemed(spent.clone()), expires));
                Ok(Redemption::AlreadyRedeemed(spent))
            }
        }
    }

    async fn peek_code(
        &self,
        code: &str,
        client_id: &str,
    ) -> Result<Option<CodeGrant>, StoreError> {
        let now = self.now();
        let state = self.state(now);
        Ok(match state.codes.get(&secret_hash(code)) {
            Some((CodeRecord::Live(grant), expires))
                if *expires > now && grant.client_id == client_id =>
            {
                Some(grant.clone())
            }
            _ => None,
        })
    }

    async fn put_device(&self, new: &NewDeviceGrant) -> Result<Option<DeviceCode>, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        if state
            .devices
            .get(&new.user_code)
            .is_some_and(|(_, kept_until)| *kept_until > now)
        {
            return Ok(None);
        }
        let code = DeviceCode::generate(&new.user_code);
        let expires_at = now.plus(new.lifetime);
        let record = DeviceRecord {
            code_hash: secret_hash(code.secret()),
            client_id: new.client_id.clone(),
            expires_at,
            interval: new.interval,
            last_poll: None,
            payload: new.payload.clone(),
            state: DeviceState::Pending,
        };
        let kept_until = expires_at.plus(self.inner.config.redeemed_code_retention);
        state
            .devices
            .insert(new.user_code.clone(), (record, kept_until));
        Ok(Some(code))
    }

    async fn pending_device(&self, user_code: &str) -> Result<Option<PendingDevice>, StoreError> {
        let Some(user_code) = UserCode::parse(user_code) else {
            return Ok(None);
        };
        let now = self.now();
        let state = self.state(now);
        Ok(state
            .devices
            .get(&user_code)
            .and_then(|(record, _)| record.pending(now)))
    }

    async fn decide_device(
        &self,
        user_code: &str,
        decision: &DeviceDecision,
    ) -> Result<bool, StoreError> {
        let Some(user_code) = UserCode::parse(user_code) else {
            return Ok(false);
        };
        let now = self.now();
        let mut state = self.state(now);
        Ok(state
            .devices
            .get_mut(&user_code)
            .is_some_and(|(record, _)| record.decide(now, decision)))
    }

    async fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
    ) -> Result<DevicePoll, StoreError> {
        let Some(user_code) = DeviceCode::user_code_of(device_code) else {
            return Ok(DevicePoll::NotFound);
        };
        let now = self.now();
        let mut state = self.state(now);
        Ok(match state.devices.get_mut(&user_code) {
            Some((record, _)) => record.poll(now, &secret_hash(device_code), client_id),
            None => DevicePoll::NotFound,
        })
    }

    async fn create_session(&self, new: NewSession) -> Result<Session, StoreError> {
        let now = self.now();
        let session = Session::start(SessionId::generate(), new, now);
        let mut state = self.state(now);
        state
            .user_sessions
            .entry(session.sub.clone())
            .or_default()
            .insert(session.sid.clone());
        state.sessions.insert(
            session.sid.clone(),
            SessionEntry {
                session: session.clone(),
                families: HashSet::new(),
            },
        );
        Ok(session)
    }

    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let now = self.now();
        let mut state = self.state(now);
        Ok(state.live_session(&sid, now).map(|e| e.session.clone()))
    }

    async fn touch_session(
        &self,
        sid: &str,
        client_id: Option<&str>,
    ) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let now = self.now();
        let mut state = self.state(now);
        let client_id = client_id.filter(|c| !c.is_empty());
        Ok(state.live_session(&sid, now).map(|e| {
            e.session.touch(now, client_id);
            e.session.clone()
        }))
    }

    async fn strengthen_session(
        &self,
        sid: &str,
        amr: Vec<String>,
        auth_time: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let now = self.now();
        let mut state = self.state(now);
        Ok(state.live_session(&sid, now).map(|e| {
            e.session.amr = amr;
            e.session.auth_time = auth_time;
            e.session.clone()
        }))
    }

    async fn put_once(&self, value: &str, ttl: Duration) -> Result<String, StoreError> {
        let now = self.now();
        let id = crate::ids::once_id();
        self.state(now)
            .once
            .insert(id.clone(), (value.to_owned(), now.plus(ttl)));
        Ok(id)
    }

    async fn take_once(&self, id: &str) -> Result<Option<String>, StoreError> {
        let now = self.now();
        Ok(self
            .state(now)
            .once
            .remove(id)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value))
    }

    async fn claim_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        let hash = secret_hash(key);
        if state.claimed.get(&hash).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        state.claimed.insert(hash, now.plus(ttl));
        Ok(true)
    }

    async fn end_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let now = self.now();
        let mut state = self.state(now);
        if state.live_session(&sid, now).is_none() {
            return Ok(None);
        }
        Ok(state.remove_session(&sid))
    }

    async fn user_sessions(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        let sessions = indexed(&state.user_sessions, sub)
            .iter()
            .filter_map(|sid| state.live_session(sid, now).map(|e| e.session.clone()))
            .collect();
        Ok(oldest_first(sessions))
    }

    async fn end_user_sessions(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        let live = self.user_sessions(sub).await?;
        let mut state = self.state(self.now());
        Ok(live
            .iter()
            .filter_map(|s| state.remove_session(&s.sid))
            .collect())
    }

    async fn issue_refresh(&self, new: NewFamily) -> Result<Option<IssuedRefresh>, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        if state.families.contains_key(&new.id) {
            return Err(StoreError::InvalidRequest(
                "refresh family id already in use",
            ));
        }
        if state
            .revoked_families
            .get(&new.id)
            .is_some_and(|until| *until > now)
        {
            return Ok(None);
        }
        let (mut family, access_token) = new.start(now);
        if let Some(sid) = family.sid() {
            let Some(entry) = state.live_session(&sid, now) else {
                return Ok(None);
            };
            family.expires_at = family.expires_at.min(entry.session.absolute_deadline);
            if family.expires_at > now {
                entry.families.insert(family.id.clone());
            }
        }
        if family.expires_at <= now {
            return Ok(None);
        }
        let minted = Minted::new(&family.id);
        let mut family_state = FamilyState {
            family: family.clone(),
            current_hash: minted.hash.clone(),
            last: None,
            retired: VecDeque::new(),
            access_tokens: Vec::new(),
        };
        family_state.record(access_token.as_ref(), now);
        let state = &mut *state;
        for (index, owner) in [
            (&mut state.user_families, &family.sub),
            (&mut state.client_families, &family.client_id),
        ] {
            index
                .entry(owner.clone())
                .or_default()
                .insert(family.id.clone());
        }
        state.families.insert(family.id.clone(), family_state);
        Ok(Some(IssuedRefresh {
            token: minted.token,
            family,
        }))
    }

    async fn rotate_refresh(
        &self,
        token: &str,
        client_id: &str,
        access_token: Option<&AccessTokenRef>,
    ) -> Result<Rotation, StoreError> {
        let Some(id) = RefreshToken::parse_family(token) else {
            return Ok(Rotation::Invalid);
        };
        let presented = secret_hash(token);
        let now = self.now();
        let grace = self.inner.config.refresh_grace;
        let mut state = self.state(now);
        let Some(family) = state.live_family(&id, now) else {
            return Ok(Rotation::Invalid);
        };
        if family.family.client_id != client_id {
            return Ok(Rotation::Invalid);
        }
        match family.decide(&presented, now, grace) {
            Decision::Rotate => {
                let next = Minted::new(&id);
                family.rotate(token, &next, now);
                family.record(access_token, now);
                Ok(Rotation::Rotated {
                    token: next.token,
                    family: family.family.clone(),
                })
            }
            Decision::Replay(sealed) => {
                let successor = reopen_successor(&id, token, &sealed)
                    .ok_or_else(|| StoreError::corrupt("refresh family", "sealed successor"))?;
                family.record(access_token, now);
                Ok(Rotation::Replayed {
                    token: successor,
                    family: family.family.clone(),
                })
            }
            Decision::Reuse => Ok(state
                .remove_family(&id)
                .map_or(Rotation::Invalid, |f| Rotation::Reused(revoked(f, now)))),
            Decision::Invalid => Ok(Rotation::Invalid),
        }
    }

    async fn inspect_refresh(&self, token: &str) -> Result<Option<RefreshInfo>, StoreError> {
        Ok(self.inspect(token, true))
    }

    async fn find_refresh(&self, token: &str) -> Result<Option<Family>, StoreError> {
        Ok(self.inspect(token, false).map(|i| i.family))
    }

    async fn revoke_family(&self, id: &FamilyId) -> Result<Option<RevokedFamily>, StoreError> {
        let now = self.now();
        let remember = now.plus(self.inner.config.tombstone_ttl());
        Ok(self.state(now).revoke_family(id, now, remember))
    }

    async fn user_families(&self, sub: &str) -> Result<Vec<Family>, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        let families = indexed(&state.user_families, sub)
            .iter()
            .filter_map(|id| state.live_family(id, now).map(|f| f.family.clone()))
            .collect();
        Ok(oldest_first(families))
    }

    async fn revoke_user_families(&self, sub: &str) -> Result<Vec<RevokedFamily>, StoreError> {
        Ok(self.revoke_indexed(|s| &s.user_families, sub))
    }

    async fn revoke_client_families(
        &self,
        client_id: &str,
    ) -> Result<Vec<RevokedFamily>, StoreError> {
        Ok(self.revoke_indexed(|s| &s.client_families, client_id))
    }

    async fn revoke(&self, target: Target, at: Timestamp) -> Result<RevocationEvent, StoreError> {
        let now = self.now();
        let entry = Revocation::new(target, at, &self.inner.config);
        let event = {
            let mut state = self.state(now);
            let in_force = state.revocations.apply(&entry);
            state.publish(in_force, self.inner.config.event_retention)
        };
        self.inner.published.send_replace(event.cursor.seq);
        Ok(event)
    }

    async fn check(&self, facts: &TokenFacts<'_>) -> Result<Verdict, StoreError> {
        let now = self.now();
        let state = self.state(now);
        Ok(state
            .revocations
            .check(facts, now, self.inner.config.max_access_token_lifetime))
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        state.revocations.prune(now);
        Ok(Snapshot {
            cursor: Cursor {
                epoch: state.epoch.clone(),
                seq: state.seq,
            },
            revocations: state.revocations.iter().collect(),
            leeway_secs: self.config().leeway.as_secs(),
        })
    }

    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        Ok(Box::new(MemorySubscription {
            store: self.clone(),
            cursor: from.clone(),
            wake: self.inner.published.subscribe(),
        }))
    }

    async fn throttle(&self, key: &str) -> Result<Throttle, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        Ok(state.throttle(key, now).map(|e| e.0).unwrap_or_default())
    }

    async fn record_failure(
        &self,
        key: &str,
        policy: &ThrottlePolicy,
    ) -> Result<Throttle, StoreError> {
        let now = self.now();
        Ok(self.state(now).count(key, policy, now))
    }

    async fn attempt(&self, keys: &[(&str, &ThrottlePolicy)]) -> Result<Attempt, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        let blocked = keys
            .iter()
            .filter_map(|(key, _)| state.throttle(key, now).and_then(|e| e.0.blocked_for(now)))
            .max();
        if let Some(wait) = blocked {
            return Ok(Attempt::Blocked(wait));
        }
        Ok(Attempt::Allowed(
            keys.iter()
                .map(|(key, policy)| state.count(key, policy, now))
                .collect(),
        ))
    }

    async fn clear_throttle(&self, key: &str) -> Result<bool, StoreError> {
        let now = self.now();
        let mut state = self.state(now);
        Ok(state.throttle(key, now).is_some() && state.throttles.remove(key).is_some())
    }

    async fn reseed(&self, revocations: Vec<Revocation>) -> Result<Cursor, StoreError> {
        let now = self.now();
        let cursor = {
            let mut state = self.state(now);
            for revocation in &revocations {
                state.revocations.apply(revocation);
            }
            state.epoch = SessionId::generate().to_string();
            state.events.clear();
            Cursor {
                epoch: state.epoch.clone(),
                seq: state.seq,
            }
        };
        // Wake subscribers so they notice the new epoch now, not at their next event.
        self.inner.published.send_modify(|n| *n = n.wrapping_add(1));
        Ok(cursor)
    }
}

struct MemorySubscription {
    store: MemoryStore,
    cursor: Cursor,
    wake: watch::Receiver<u64>,
}

#[async_trait]
impl Subscription for MemorySubscription {
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn next(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        let start = tokio::time::Instant::now();
        // A wait too long to represent is as good as forever: a year.
        let deadline = start
            .checked_add(wait)
            .unwrap_or_else(|| start + Duration::from_secs(365 * 24 * 3600));
        loop {
            // Mark the current value seen before looking, so an event published after the
            // look still wakes us.
            self.wake.borrow_and_update();
            let feed = {
                let now = self.store.now();
                self.store.state(now).feed_after(&self.cursor)
            };
            match feed {
                Some(Feed::Events(events)) => {
                    if let Some(last) = events.last() {
                        self.cursor = last.cursor.clone();
                    }
                    return Ok(Feed::Events(events));
                }
                Some(Feed::Resnapshot) => return Ok(Feed::Resnapshot),
                None => {
                    let woke = tokio::time::timeout_at(deadline, self.wake.changed()).await;
                    if !matches!(woke, Ok(Ok(()))) {
                        return Ok(Feed::Events(Vec::new()));
                    }
                }
            }
        }
    }
}
