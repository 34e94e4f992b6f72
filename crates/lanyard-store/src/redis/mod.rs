//! `RedisStore`: the backend for any number of Lanyard nodes sharing one Redis.
//!
//! - One reconnecting multiplexed connection ([`ConnectionManager`]) for all operations;
//!   each subscription opens its own, because a blocking stream read would stall the shared
//!   one.
//! - Every step that touches several keys is one Lua script on one hash slot (`scripts`,
//!   `keys`); steps that also update a per-user or per-client index send the index update
//!   first in the same pipeline, so an entity is never without its index entry.
//! - Every call is bounded by `operation_timeout`; past it the caller gets
//!   [`StoreError::Timeout`], never a stale answer.
//! - Revocation events go to a capped Redis Stream whose entry ids are `<seq>-0`, so a
//!   subscriber sees a gap as a jump in `seq` and takes a new snapshot. Subscribers read it
//!   with blocking `XREAD` (push without a pub/sub channel, and replay from any cursor
//!   still in the stream).
//! - The revocation lists carry an epoch marker. A Redis that lost it (restarted without
//!   persistence, flushed) answers [`StoreError::RevocationStateLost`] to every revocation
//!   call until [`TokenStore::reseed`] rebuilds the lists from the durable record; so an
//!   emptied Redis never reads as "nothing is revoked".

mod conn;
mod keys;
mod scripts;
mod subscription;

pub use self::conn::RedisTopology;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use self::conn::{Conn, Connector};
use async_trait::async_trait;
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, Script, ServerErrorKind};

use self::keys::{FamilyKeys, Keys};
use crate::RefreshInfo;
use crate::codes::CodeGrant;
use crate::ids::{SessionId, secret_hash};
use crate::refresh::{Minted, RETIRED_KEPT, reopen_successor};
use crate::revocation::{Entry, Kind, judge};
use crate::store::oldest_first;
use crate::time::duration_millis;
use crate::{
    AccessTokenRef, Attempt, AuthorizationCode, Clock, Cursor, Family, FamilyId, GrantId,
    IssuedRefresh, NewFamily, NewSession, RedeemedCode, Redemption, RefreshToken, Revocation,
    RevocationEvent, RevokedFamily, Rotation, Session, Snapshot, StoreConfig, StoreError,
    Subscription, SystemClock, Target, Throttle, ThrottlePolicy, Timestamp, TokenFacts, TokenStore,
    Verdict,
};

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://` with TLS); for a cluster, a
    /// comma-separated list of seed nodes' URLs.
    pub url: String,
    /// One Redis, a Redis Cluster, or Redis with Sentinel. Default: one.
    pub topology: RedisTopology,
    /// With Sentinel: the monitored master's name. Default `lanyard`.
    pub sentinel_master: String,
    /// Every key starts with this. Default `lanyard:`. Must not contain `{` or `}`.
    pub prefix: String,
    /// The longest any one store call may take before it fails with
    /// [`StoreError::Timeout`]. Default 1 s.
    pub operation_timeout: Duration,
    /// The longest a connection attempt may take. Default 1 s.
    pub connect_timeout: Duration,
}

impl RedisConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            topology: RedisTopology::Single,
            sentinel_master: "lanyard".to_owned(),
            prefix: "lanyard:".to_owned(),
            operation_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for RedisConfig {
    /// The URL may hold a password, so what precedes `@` is not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = match self.url.rsplit_once('@') {
            Some((_, host)) => format!("[redacted]@{host}"),
            None => self.url.clone(),
        };
        f.debug_struct("RedisConfig")
            .field("url", &url)
            .field("topology", &self.topology)
            .field("prefix", &self.prefix)
            .field("operation_timeout", &self.operation_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// The Redis backend. Cloning shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    connector: Connector,
    /// Replaced when the sentinels name another master.
    conn: std::sync::RwLock<Conn>,
    /// When the master was last looked up (at most one lookup per half second).
    resolved: tokio::sync::Mutex<std::time::Instant>,
    keys: Keys,
    config: StoreConfig,
    redis: RedisConfig,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.inner.redis)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// [`TokenStore::inspect_refresh`], with the family's access tokens or without them
    /// (`find_refresh` needs only the family, and a long chain has many).
    async fn inspect(
        &self,
        token: &str,
        with_tokens: bool,
    ) -> Result<Option<RefreshInfo>, StoreError> {
        let Some(id) = RefreshToken::parse_family(token) else {
            return Ok(None);
        };
        let mut cmd = self.family_call(&scripts::FAMILY_INSPECT, &id, self.now());
        cmd.arg(secret_hash(token))
            .arg(if with_tokens { "1" } else { "0" });
        let reply: Option<(String, String, i64, Vec<String>)> = self.eval(cmd).await?;
        reply
            .map(|(d, exp, current, tokens)| {
                Ok(RefreshInfo {
                    family: decode_family(&d, &exp)?,
                    current: current == 1,
                    access_tokens: decode_tokens(&tokens)?,
                })
            })
            .transpose()
    }

    /// Connects (failing if Redis cannot be reached now) and loads the scripts.
    ///
    /// A Redis without revocation lists (a first start, or one that lost them) answers
    /// [`StoreError::RevocationStateLost`] to revocation calls until someone who knows the
    /// truth calls [`TokenStore::reseed`]; `connect` never assumes "nothing is revoked".
    pub async fn connect(config: StoreConfig, redis: RedisConfig) -> Result<Self, StoreError> {
        Self::connect_with_clock(config, redis, Arc::new(SystemClock)).await
    }

    /// [`RedisStore::connect`], reading the time for every deadline it decides (session
    /// liveness, the refresh grace window, revocation expiry) from `clock`: the server's, so
    /// that every part of a node agrees, and tests move it rather than sleep. Key expiry
    /// (TTLs) stays Redis's own.
    pub async fn connect_with_clock(
        config: StoreConfig,
        redis: RedisConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        config.validate()?;
        let keys = Keys::new(&redis.prefix)?;
        let connector = Connector::new(&redis)?;
        let conn = connector.shared(&redis).await?;
        let store = Self {
            inner: Arc::new(Inner {
                connector,
                conn: std::sync::RwLock::new(conn),
                resolved: tokio::sync::Mutex::new(std::time::Instant::now()),
                keys,
                config,
                redis,
                clock,
            }),
        };
        store.with_timeout(store.load_scripts()).await?;
        store.inspect_server().await?;
        Ok(store)
    }

    /// Refuses a Redis that may evict revocations, and warns about one that may lose them in
    /// a crash. A Redis that hides its settings (`INFO` denied) gets a warning.
    async fn inspect_server(&self) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO")
            .arg("memory")
            .cmd("INFO")
            .arg("persistence");
        let info: (String, String) = match self.run(&pipe).await {
            Ok(info) => info,
            Err(e) if !e.is_transient() => {
                tracing::warn!(error = %e, "cannot read Redis INFO; make sure maxmemory-policy is noeviction and appendfsync always");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let field = |text: &str, name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_owned())
        };
        let policy = field(&info.0, "maxmemory_policy").unwrap_or_default();
        if policy.starts_with("allkeys-") {
            return Err(StoreError::InvalidRequest(
                "Redis maxmemory-policy allkeys-* may evict revocation lists; set it to noeviction",
            ));
        }
        if policy != "noeviction" && !policy.is_empty() {
            tracing::warn!(%policy, "Redis may evict sessions and refresh tokens under memory pressure; noeviction is recommended");
        }
        if field(&info.1, "aof_enabled").as_deref() != Some("1") {
            tracing::warn!(
                "Redis has no append-only file: a crash loses acknowledged revocations; run it with appendonly yes, appendfsync always"
            );
        }
        Ok(())
    }

    /// The key prefix this store writes under.
    pub fn prefix(&self) -> &str {
        self.inner.keys.prefix()
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn conn(&self) -> Conn {
        self.inner
            .conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// With Sentinel, after a failed call: asks the sentinels for the master and, whatever
    /// they say, connects afresh (a failover moves the master; a restart may not). At most
    /// once per half second; the failed call has failed (503) either way.
    async fn follow_master(&self) {
        if self.inner.redis.topology != RedisTopology::Sentinel {
            return;
        }
        let Ok(mut last) = self.inner.resolved.try_lock() else {
            return; // another call is already looking
        };
        if last.elapsed() < Duration::from_millis(500) {
            return;
        }
        *last = std::time::Instant::now();
        match self.inner.connector.shared(&self.inner.redis).await {
            Ok(conn) => {
                *self.inner.conn.write().unwrap_or_else(|p| p.into_inner()) = conn;
                tracing::info!("reconnected to the master the sentinels name");
            }
            Err(e) => tracing::warn!(error = %e, "the sentinels name no reachable master yet"),
        }
    }

    async fn load_scripts(&self) -> Result<(), RedisError> {
        let mut conn = self.conn();
        for script in scripts::all() {
            script.load_async(&mut conn).await?;
        }
        Ok(())
    }

    async fn with_timeout<T>(
        &self,
        work: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        let limit = self.inner.redis.operation_timeout;
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(limit, work).await {
            Ok(result) => result.map_err(map_error),
            Err(_) => Err(StoreError::Timeout(limit)),
        };
        // Named as lanyard-idp's `metrics` module describes them.
        metrics::histogram!("lanyard_store_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("lanyard_store_errors_total").increment(1);
        }
        result
    }

    /// Sends a pipeline in one round trip. If Redis forgot the scripts (a restart), loads
    /// them and sends it once more: a script that hit `NOSCRIPT` did not run.
    async fn run<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, StoreError> {
        let result = self
            .with_timeout(async {
                let mut conn = self.conn();
                match pipe.query_async(&mut conn).await {
                    Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        tracing::info!(
                            "Redis lost the store's scripts (a restart?); loading them again"
                        );
                        self.load_scripts().await?;
                        pipe.query_async(&mut conn).await
                    }
                    other => other,
                }
            })
            .await;
        if result.as_ref().is_err_and(StoreError::is_transient) {
            self.follow_master().await;
        }
        result
    }

    /// One script call, in one round trip.
    async fn eval<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd);
        let (out,): (T,) = self.run(&pipe).await?;
        Ok(out)
    }

    fn family_call(&self, script: &Script, id: &FamilyId, now: Timestamp) -> Cmd {
        let FamilyKeys(keys) = self.inner.keys.family(id);
        let mut cmd = evalsha(script, &keys);
        cmd.arg(now.as_millis())
            .arg(if id.session().is_some() { "1" } else { "0" })
            .arg(id.as_str());
        cmd
    }

    fn index_add(index: &str, now: Timestamp, deadline: Timestamp, member: &str) -> Cmd {
        let mut cmd = evalsha(&scripts::INDEX_ADD, &[index]);
        cmd.arg(now.as_millis())
            .arg(deadline.as_millis())
            .arg(member);
        cmd
    }

    async fn index_members(&self, index: &str, now: Timestamp) -> Result<Vec<String>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGEBYSCORE")
            .arg(index)
            .arg(format!("({}", now.as_millis()))
            .arg("+inf");
        let (members,): (Vec<String>,) = self.run(&pipe).await?;
        Ok(members)
    }

    fn session_read(&self, sid: &SessionId, now: Timestamp, touch: Option<Option<&str>>) -> Cmd {
        let k = self.inner.keys.session(sid);
        let mut cmd = evalsha(&scripts::SESSION_READ, &[&k.session, &k.clients]);
        cmd.arg(now.as_millis())
            .arg(if touch.is_some() { "1" } else { "0" })
            .arg(touch.flatten().unwrap_or(""));
        cmd
    }

    /// The sessions the user's index lists (some may have ended since).
    async fn user_sids(&self, sub: &str, now: Timestamp) -> Result<Vec<SessionId>, StoreError> {
        let (index, _) = self.inner.keys.user(sub);
        let members = self.index_members(&index, now).await?;
        Ok(members.iter().filter_map(|s| SessionId::parse(s)).collect())
    }

    fn session_end(&self, sid: &SessionId, now: Timestamp) -> Cmd {
        let k = self.inner.keys.session(sid);
        let mut cmd = evalsha(
            &scripts::SESSION_END,
            &[&k.session, &k.clients, &k.families],
        );
        cmd.arg(now.as_millis()).arg(&k.family_prefix);
        cmd
    }

    /// Sends one command per item in one pipeline and collects the answers.
    async fn each<T: FromRedisValue>(&self, cmds: Vec<Cmd>) -> Result<Vec<T>, StoreError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        if self.inner.redis.topology == RedisTopology::Cluster {
            // A cluster refuses a pipeline whose keys span hash slots: one request per
            // command, all sent at once (each is atomic on its own, as in the pipeline).
            let calls = cmds.into_iter().map(|cmd| async move {
                let mut pipe = redis::pipe();
                pipe.add_command(cmd);
                let (reply,): (T,) = self.run(&pipe).await?;
                Ok::<T, StoreError>(reply)
            });
            return futures_util::future::try_join_all(calls).await;
        }
        let mut pipe = redis::pipe();
        for cmd in cmds {
            pipe.add_command(cmd);
        }
        self.run(&pipe).await
    }

    /// Revokes the families named, each only if `owner` (`("sub", sub)`, `("cli", client)`
    /// or `("", "")` for any) owns it. A family whose record does not decode is still revoked;
    /// it is reported in the log, since what it remembered cannot be returned.
    async fn revoke_families(
        &self,
        ids: Vec<String>,
        owner: (&str, &str),
    ) -> Result<Vec<RevokedFamily>, StoreError> {
        let now = self.now();
        let ids: Vec<FamilyId> = ids.iter().filter_map(|id| FamilyId::parse(id)).collect();
        let remember = duration_millis(self.inner.config.tombstone_ttl());
        let calls = ids
            .iter()
            .map(|id| {
                let mut cmd = self.family_call(&scripts::FAMILY_REVOKE, id, now);
                cmd.arg(remember).arg(owner.0).arg(owner.1);
                cmd
            })
            .collect();
        let replies: Vec<Option<(String, String, Vec<String>)>> = self.each(calls).await?;
        let mut revoked = Vec::new();
        for (id, reply) in ids.iter().zip(replies) {
            let Some((d, exp, tokens)) = reply else {
                continue;
            };
            match (decode_family(&d, &exp), decode_tokens(&tokens)) {
                (Ok(family), Ok(access_tokens)) => revoked.push(RevokedFamily {
                    family,
                    access_tokens,
                }),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(family = %id, error = %e, "revoked a refresh family whose record is corrupt");
                }
            }
        }
        Ok(revoked)
    }

    /// Removes index entries. Best effort: a stale entry is skipped by every reader and
    /// drops out at its deadline, so a failure here must not turn a done step into an error.
    async fn unindex(&self, index: String, members: Vec<&str>) {
        if members.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(index).arg(members);
        if let Err(e) = self.run::<(i64,)>(&pipe).await {
            tracing::warn!(error = %e, "could not remove index entries; they expire by themselves");
        }
    }

    fn revocation_call(&self, script: &Script) -> Cmd {
        evalsha(script, &self.inner.keys.revocation())
    }
}

/// `EVALSHA` of a script with its keys; the caller appends the arguments.
fn evalsha<K: AsRef<str>>(script: &Script, keys: &[K]) -> Cmd {
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(script.get_hash()).arg(keys.len());
    for key in keys {
        cmd.arg(key.as_ref());
    }
    cmd
}

/// Maps a Redis error onto what callers act on. Connection trouble is `Unavailable`; our
/// scripts' own error replies name what they found.
fn map_error(e: RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return StoreError::Unavailable(e.to_string());
    }
    if let ErrorKind::Server(
        ServerErrorKind::BusyLoading
        | ServerErrorKind::TryAgain
        | ServerErrorKind::ClusterDown
        | ServerErrorKind::MasterDown
        | ServerErrorKind::ReadOnly,
    ) = e.kind()
    {
        return StoreError::Unavailable(e.to_string());
    }
    if let Some(errors) = e.clone().into_server_errors() {
        for (_, error) in errors.iter() {
            let detail = error.details().unwrap_or_default();
            match error.code() {
                "LANYARD_NOEPOCH" => return StoreError::RevocationStateLost,
                "LANYARD_CORRUPT" => {
                    return StoreError::corrupt("stored", detail.to_owned());
                }
                "LANYARD_EXISTS" => {
                    return StoreError::InvalidRequest("refresh family id already in use");
                }
                _ => {}
            }
        }
    }
    if matches!(e.kind(), ErrorKind::Parse | ErrorKind::UnexpectedReturnType) {
        return StoreError::corrupt("reply", e.to_string());
    }
    StoreError::Backend(e.to_string())
}

fn parse_ms(s: &str, what: &'static str) -> Result<Timestamp, StoreError> {
    s.parse::<i64>()
        .map(Timestamp::from_millis)
        .map_err(|_| StoreError::corrupt(what, format!("not a time: {s:?}")))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &'static str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::corrupt(what, e.to_string()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|_| StoreError::InvalidRequest("a payload that cannot be serialized"))
}

/// `[session JSON, idle deadline, last seen, clients...]` as the session scripts return it.
fn decode_session(reply: Vec<String>) -> Result<Session, StoreError> {
    let mut parts = reply.into_iter();
    let (Some(d), Some(idle), Some(seen)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StoreError::corrupt("session", "short reply"));
    };
    let mut session: Session = from_json(&d, "session")?;
    session.idle_deadline = parse_ms(&idle, "session")?;
    session.last_seen = parse_ms(&seen, "session")?;
    session.clients = parts.collect();
    Ok(session)
}

/// The live sessions among session-script replies, oldest first.
fn decode_sessions(replies: Vec<Option<Vec<String>>>) -> Result<Vec<Session>, StoreError> {
    let sessions = replies
        .into_iter()
        .flatten()
        .map(decode_session)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(oldest_first(sessions))
}

fn decode_family(d: &str, exp: &str) -> Result<Family, StoreError> {
    let mut family: Family = from_json(d, "refresh family")?;
    family.expires_at = parse_ms(exp, "refresh family")?;
    Ok(family)
}

/// `[jti, exp, jti, exp, ...]`.
fn decode_tokens(flat: &[String]) -> Result<Vec<AccessTokenRef>, StoreError> {
    flat.chunks(2)
        .map(|pair| match pair {
            [jti, exp] => Ok(AccessTokenRef {
                jti: jti.clone(),
                expires_at: parse_ms(exp, "access token record")?,
            }),
            _ => Err(StoreError::corrupt("access token record", "odd reply")),
        })
        .collect()
}

/// A stream event's fields: kind code, value, at, until.
fn decode_entry_parts(
    kind: &str,
    value: String,
    at: &str,
    until: &str,
) -> Result<Revocation, StoreError> {
    let kind = Kind::from_code(kind)
        .ok_or_else(|| StoreError::corrupt("revocation event", "unknown kind"))?;
    Ok(Revocation {
        target: Target::from_kind(kind, value),
        at: parse_ms(at, "revocation event")?,
        until: parse_ms(until, "revocation event")?,
    })
}

/// `at:until`.
fn decode_entry(v: &str) -> Result<Entry, StoreError> {
    let (at, until) = v
        .split_once(':')
        .ok_or_else(|| StoreError::corrupt("revocation entry", "no separator"))?;
    Ok(Entry {
        at: parse_ms(at, "revocation entry")?,
        until: parse_ms(until, "revocation entry")?,
    })
}

fn parse_seq(s: &str) -> Result<u64, StoreError> {
    s.parse()
        .map_err(|_| StoreError::corrupt("revocation sequence", s.to_owned()))
}

#[async_trait]
impl TokenStore for RedisStore {
    fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    async fn put_code(&self, grant: &CodeGrant) -> Result<AuthorizationCode, StoreError> {
        let code = AuthorizationCode::generate();
        let key = self.inner.keys.code(&secret_hash(code.secret()));
        let mut cmd = evalsha(&scripts::CODE_PUT, &[key]);
        cmd.arg(to_json(grant)?)
            .arg(grant.grant_id.as_str())
            .arg(&grant.client_id)
            .arg(to_json(&grant.issuance)?)
            .arg(duration_millis(self.inner.config.code_ttl));
        let _: i64 = self.eval(cmd).await?;
        Ok(code)
    }

    async fn redeem_code(&self, code: &str, client_id: &str) -> Result<Redemption, StoreError> {
        let key = self.inner.keys.code(&secret_hash(code));
        let mut cmd = evalsha(&scripts::CODE_REDEEM, &[key]);
        cmd.arg(duration_millis(self.inner.config.tombstone_ttl()))
            .arg(client_id);
        let reply: Vec<String> = self.eval(cmd).await?;
        match reply.as_slice() {
            [status, grant] if status == "redeemed" => Ok(Redemption::Redeemed(from_json(
                grant,
                "authorization code",
            )?)),
            [status, grant_id, client_id, issued] if status == "spent" => {
                Ok(Redemption::AlreadyRedeemed(RedeemedCode {
                    grant_id: GrantId::parse(grant_id)
                        .ok_or_else(|| StoreError::corrupt("authorization code", "grant id"))?,
                    client_id: client_id.clone(),
                    issued: from_json(issued, "authorization code")?,
                }))
            }
            [status] if status == "none" => Ok(Redemption::NotFound),
            _ => Err(StoreError::corrupt(
                "authorization code",
                "unexpected reply",
            )),
        }
    }

    async fn peek_code(
        &self,
        code: &str,
        client_id: &str,
    ) -> Result<Option<CodeGrant>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.inner.keys.code(&secret_hash(code)))
            .arg("live")
            .arg("c");
        let ((live, owner),): ((Option<String>, Option<String>),) = self.run(&pipe).await?;
        match (live, owner) {
            (Some(grant), Some(owner)) if owner == client_id => {
                Ok(Some(from_json(&grant, "authorization code")?))
            }
            _ => Ok(None),
        }
    }

    async fn put_device(
        &self,
        new: &crate::NewDeviceGrant,
    ) -> Result<Option<crate::DeviceCode>, StoreError> {
        let code = crate::DeviceCode::generate(&new.user_code);
        let expires_at = self.now().plus(new.lifetime);
        let keep = new.lifetime + self.inner.config.redeemed_code_retention;
        let mut cmd = evalsha(
            &scripts::DEVICE_PUT,
            &[self.inner.keys.device(&new.user_code)],
        );
        cmd.arg(secret_hash(code.secret()))
            .arg(&new.client_id)
            .arg(expires_at.as_millis())
            .arg(duration_millis(new.interval))
            .arg(to_json(&new.payload)?)
            .arg(duration_millis(keep).max(1));
        let stored: i64 = self.eval(cmd).await?;
        Ok((stored == 1).then_some(code))
    }

    async fn pending_device(
        &self,
        user_code: &str,
    ) -> Result<Option<crate::PendingDevice>, StoreError> {
        let Some(user_code) = crate::UserCode::parse(user_code) else {
            return Ok(None);
        };
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.inner.keys.device(&user_code))
            .arg("s")
            .arg("x")
            .arg("c")
            .arg("r");
        type Fields = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let ((state, expires, client, payload),): (Fields,) = self.run(&pipe).await?;
        let (Some(state), Some(expires), Some(client_id), Some(payload)) =
            (state, expires, client, payload)
        else {
            return Ok(None);
        };
        let expires_at = parse_ms(&expires, "device grant")?;
        if state != "p" || self.now() >= expires_at {
            return Ok(None);
        }
        Ok(Some(crate::PendingDevice {
            client_id,
            payload: from_json(&payload, "device grant")?,
            expires_at,
        }))
    }

    async fn decide_device(
        &self,
        user_code: &str,
        decision: &crate::DeviceDecision,
    ) -> Result<bool, StoreError> {
        let Some(user_code) = crate::UserCode::parse(user_code) else {
            return Ok(false);
        };
        let mut cmd = evalsha(
            &scripts::DEVICE_DECIDE,
            &[self.inner.keys.device(&user_code)],
        );
        cmd.arg(self.now().as_millis());
        match decision {
            crate::DeviceDecision::Approve(grant) => cmd.arg("a").arg(to_json(grant)?),
            crate::DeviceDecision::Deny => cmd.arg("d").arg(""),
        };
        let decided: i64 = self.eval(cmd).await?;
        Ok(decided == 1)
    }

    async fn poll_device(
        &self,
        device_code: &str,
        client_id: &str,
    ) -> Result<crate::DevicePoll, StoreError> {
        use crate::DevicePoll;
        let Some(user_code) = crate::DeviceCode::user_code_of(device_code) else {
            return Ok(DevicePoll::NotFound);
        };
        let mut cmd = evalsha(&scripts::DEVICE_POLL, &[self.inner.keys.device(&user_code)]);
        cmd.arg(self.now().as_millis())
            .arg(secret_hash(device_code))
            .arg(client_id);
        let reply: Vec<String> = self.eval(cmd).await?;
        match reply.as_slice() {
            [status] if status == "none" => Ok(DevicePoll::NotFound),
            [status] if status == "expired" => Ok(DevicePoll::Expired),
            [status] if status == "denied" => Ok(DevicePoll::Denied),
            [status] if status == "pending" => Ok(DevicePoll::Pending),
            [status, grant] if status == "approved" => {
                Ok(DevicePoll::Approved(from_json(grant, "device grant")?))
            }
            [status, interval] if status == "slow_down" => {
                let ms = interval
                    .parse::<u64>()
                    .map_err(|_| StoreError::corrupt("device grant", "interval"))?;
                Ok(DevicePoll::SlowDown {
                    interval: Duration::from_millis(ms),
                })
            }
            _ => Err(StoreError::corrupt("device grant", "unexpected reply")),
        }
    }

    async fn create_session(&self, new: NewSession) -> Result<Session, StoreError> {
        let now = self.now();
        let session = Session::start(SessionId::generate(), new, now);
        let k = self.inner.keys.session(&session.sid);
        let (user_sessions, _) = self.inner.keys.user(&session.sub);
        let mut create = evalsha(&scripts::SESSION_CREATE, &[&k.session]);
        create
            .arg(to_json(&session)?)
            .arg(session.idle_deadline.as_millis())
            .arg(session.absolute_deadline.as_millis())
            .arg(duration_millis(session.idle_timeout))
            .arg(now.as_millis());
        let _: Vec<i64> = self
            .each(vec![
                Self::index_add(
                    &user_sessions,
                    now,
                    session.absolute_deadline,
                    session.sid.as_str(),
                ),
                create,
            ])
            .await?;
        Ok(session)
    }

    async fn session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let reply: Option<Vec<String>> =
            self.eval(self.session_read(&sid, self.now(), None)).await?;
        reply.map(decode_session).transpose()
    }

    async fn touch_session(
        &self,
        sid: &str,
        client_id: Option<&str>,
    ) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let cmd = self.session_read(&sid, self.now(), Some(client_id));
        let reply: Option<Vec<String>> = self.eval(cmd).await?;
        reply.map(decode_session).transpose()
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
        let k = self.inner.keys.session(&sid);
        // Read, change, write back if unchanged: the record is JSON that Lua does not edit.
        for _ in 0..3 {
            let now = self.now();
            let Some(reply) = self
                .eval::<Option<Vec<String>>>(self.session_read(&sid, now, None))
                .await?
            else {
                return Ok(None);
            };
            let Some(expected) = reply.first().cloned() else {
                return Err(StoreError::corrupt("session", "short reply"));
            };
            let mut session = decode_session(reply)?;
            let mut record: Session = from_json(&expected, "session")?;
            record.amr.clone_from(&amr);
            record.auth_time = auth_time;
            let mut cmd = evalsha(&scripts::SESSION_REWRITE, &[&k.session]);
            cmd.arg(now.as_millis())
                .arg(&expected)
                .arg(to_json(&record)?);
            match self.eval::<Option<i64>>(cmd).await? {
                None => return Ok(None),
                Some(1) => {
                    session.amr = record.amr;
                    session.auth_time = auth_time;
                    return Ok(Some(session));
                }
                Some(_) => {}
            }
        }
        Err(StoreError::Unavailable(
            "the session kept changing while it was being strengthened".to_owned(),
        ))
    }

    async fn put_once(&self, value: &str, ttl: Duration) -> Result<String, StoreError> {
        let id = crate::ids::once_id();
        // The deadline travels with the value and is judged on the store's clock; Redis's own
        // expiry only cleans up.
        let deadline = self.now().plus(ttl);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.inner.keys.once(&id))
            .arg(format!("{}|{value}", deadline.as_millis()))
            .arg("PX")
            .arg(duration_millis(ttl).max(1))
            .ignore();
        let () = self.run(&pipe).await?;
        Ok(id)
    }

    async fn take_once(&self, id: &str) -> Result<Option<String>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("GETDEL").arg(self.inner.keys.once(id));
        let (stored,): (Option<String>,) = self.run(&pipe).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let (deadline, value) = stored
            .split_once('|')
            .ok_or_else(|| StoreError::corrupt("single-use value", "no deadline"))?;
        let deadline = parse_ms(deadline, "single-use value")?;
        Ok((self.now() < deadline).then(|| value.to_owned()))
    }

    async fn claim_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(self.inner.keys.claimed(key))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(duration_millis(ttl).max(1));
        let (set,): (Option<String>,) = self.run(&pipe).await?;
        Ok(set.is_some())
    }

    async fn end_session(&self, sid: &str) -> Result<Option<Session>, StoreError> {
        let Some(sid) = SessionId::parse(sid) else {
            return Ok(None);
        };
        let reply: Option<Vec<String>> = self.eval(self.session_end(&sid, self.now())).await?;
        let Some(session) = reply.map(decode_session).transpose()? else {
            return Ok(None);
        };
        let (user_sessions, _) = self.inner.keys.user(&session.sub);
        self.unindex(user_sessions, vec![sid.as_str()]).await;
        Ok(Some(session))
    }

    async fn user_sessions(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        let sids = self.user_sids(sub, now).await?;
        let calls = sids
            .iter()
            .map(|sid| self.session_read(sid, now, None))
            .collect();
        decode_sessions(self.each(calls).await?)
    }

    async fn end_user_sessions(&self, sub: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        let sids = self.user_sids(sub, now).await?;
        let calls = sids.iter().map(|sid| self.session_end(sid, now)).collect();
        let ended = decode_sessions(self.each(calls).await?)?;
        let (index, _) = self.inner.keys.user(sub);
        self.unindex(index, sids.iter().map(SessionId::as_str).collect())
            .await;
        Ok(ended)
    }

    async fn issue_refresh(&self, new: NewFamily) -> Result<Option<IssuedRefresh>, StoreError> {
        let now = self.now();
        let (mut family, access_token) = new.start(now);
        let requested_expiry = family.expires_at;
        let minted = Minted::new(&family.id);
        let (_, user_families) = self.inner.keys.user(&family.sub);
        let client_families = self.inner.keys.client_families(&family.client_id);
        let mut issue = self.family_call(&scripts::FAMILY_ISSUE, &family.id, now);
        issue
            .arg(to_json(&family)?)
            .arg(&minted.hash)
            .arg(requested_expiry.as_millis());
        match &access_token {
            Some(at) => issue.arg(&at.jti).arg(at.expires_at.as_millis()),
            None => issue.arg("").arg(0),
        };
        issue.arg(&family.sub).arg(&family.client_id);
        // The indexes first: an entry whose family never came to be is skipped by readers.
        let replies: Vec<redis::Value> = self
            .each(vec![
                Self::index_add(&user_families, now, requested_expiry, family.id.as_str()),
                Self::index_add(&client_families, now, requested_expiry, family.id.as_str()),
                issue,
            ])
            .await?;
        let expiry: Option<String> = replies
            .last()
            .map(redis::from_redis_value_ref)
            .transpose()
            .map_err(|e| StoreError::corrupt("refresh family", e.to_string()))?
            .flatten();
        let Some(expiry) = expiry else {
            return Ok(None);
        };
        family.expires_at = parse_ms(&expiry, "refresh family")?;
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
        let now = self.now();
        let next = Minted::new(&id);
        let mut cmd = self.family_call(&scripts::FAMILY_ROTATE, &id, now);
        cmd.arg(secret_hash(token))
            .arg(&next.hash)
            .arg(next.sealed_for(token))
            .arg(duration_millis(self.inner.config.refresh_grace));
        match access_token {
            Some(at) => cmd.arg(&at.jti).arg(at.expires_at.as_millis()),
            None => cmd.arg("").arg(0),
        };
        cmd.arg(RETIRED_KEPT).arg(client_id);
        let (status, d, exp, sealed, tokens): (String, String, String, String, Vec<String>) =
            self.eval(cmd).await?;
        match status.as_str() {
            "rotated" => Ok(Rotation::Rotated {
                token: next.token,
                family: decode_family(&d, &exp)?,
            }),
            "replayed" => Ok(Rotation::Replayed {
                token: reopen_successor(&id, token, &sealed)
                    .ok_or_else(|| StoreError::corrupt("refresh family", "sealed successor"))?,
                family: decode_family(&d, &exp)?,
            }),
            "reused" => Ok(Rotation::Reused(RevokedFamily {
                family: decode_family(&d, &exp)?,
                access_tokens: decode_tokens(&tokens)?,
            })),
            "invalid" => Ok(Rotation::Invalid),
            _ => Err(StoreError::corrupt("refresh family", "unexpected status")),
        }
    }

    async fn inspect_refresh(&self, token: &str) -> Result<Option<RefreshInfo>, StoreError> {
        self.inspect(token, true).await
    }

    async fn find_refresh(&self, token: &str) -> Result<Option<Family>, StoreError> {
        Ok(self.inspect(token, false).await?.map(|i| i.family))
    }

    async fn revoke_family(&self, id: &FamilyId) -> Result<Option<RevokedFamily>, StoreError> {
        Ok(self
            .revoke_families(vec![id.as_str().to_owned()], ("", ""))
            .await?
            .pop())
    }

    async fn user_families(&self, sub: &str) -> Result<Vec<Family>, StoreError> {
        let now = self.now();
        let (_, index) = self.inner.keys.user(sub);
        let ids: Vec<FamilyId> = self
            .index_members(&index, now)
            .await?
            .iter()
            .filter_map(|s| FamilyId::parse(s))
            .collect();
        let calls = ids
            .iter()
            .map(|id| {
                let mut cmd = self.family_call(&scripts::FAMILY_READ, id, now);
                cmd.arg("").arg("sub").arg(sub);
                cmd
            })
            .collect();
        let replies: Vec<Option<(String, String)>> = self.each(calls).await?;
        let families = replies
            .into_iter()
            .flatten()
            .map(|(d, exp)| decode_family(&d, &exp))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(oldest_first(families))
    }

    async fn revoke_user_families(&self, sub: &str) -> Result<Vec<RevokedFamily>, StoreError> {
        let (_, index) = self.inner.keys.user(sub);
        let ids = self.index_members(&index, self.now()).await?;
        self.revoke_families(ids, ("sub", sub)).await
    }

    async fn revoke_client_families(
        &self,
        client_id: &str,
    ) -> Result<Vec<RevokedFamily>, StoreError> {
        let index = self.inner.keys.client_families(client_id);
        let ids = self.index_members(&index, self.now()).await?;
        self.revoke_families(ids, ("cli", client_id)).await
    }

    async fn revoke(&self, target: Target, at: Timestamp) -> Result<RevocationEvent, StoreError> {
        let entry = Revocation::new(target, at, &self.inner.config);
        let mut cmd = self.revocation_call(&scripts::REVOKE);
        cmd.arg(self.now().as_millis())
            .arg(entry.target.kind().code())
            .arg(entry.target.value())
            .arg(entry.at.as_millis())
            .arg(entry.until.as_millis())
            .arg(self.inner.config.event_retention);
        let (epoch, seq, at, until): (String, String, String, String) = self.eval(cmd).await?;
        Ok(RevocationEvent {
            cursor: Cursor {
                epoch,
                seq: parse_seq(&seq)?,
            },
            revocation: Revocation {
                target: entry.target,
                at: parse_ms(&at, "revocation entry")?,
                until: parse_ms(&until, "revocation entry")?,
            },
        })
    }

    async fn check(&self, facts: &TokenFacts<'_>) -> Result<Verdict, StoreError> {
        let keys = self.inner.keys.revocation();
        let (epoch, lists) = (&keys[0], &keys[4..]);
        let lookups = facts.lookups();
        let mut pipe = redis::pipe();
        // MULTI/EXEC: one consistent view of the epoch and the lists. `kid` entries judge no
        // token: not read here.
        pipe.atomic().cmd("GET").arg(epoch);
        for (kind, key) in &lookups {
            let list = lists
                .get(kind.index())
                .ok_or_else(|| StoreError::corrupt("revocation lists", "one list missing"))?;
            pipe.cmd("HGET").arg(list).arg(key);
        }
        let (epoch, found): (Option<String>, Vec<Option<String>>) = {
            let mut reply: Vec<Option<String>> = self.run(&pipe).await?;
            if reply.len() != 1 + lookups.len() {
                return Err(StoreError::corrupt("revocation lists", "short reply"));
            }
            let epoch = reply.remove(0);
            (epoch, reply)
        };
        if epoch.is_none() {
            return Err(StoreError::RevocationStateLost);
        }
        let mut entries = Vec::with_capacity(found.len());
        for ((kind, key), value) in lookups.iter().zip(&found) {
            if let Some(value) = value {
                entries.push((*kind, key.as_ref(), decode_entry(value)?));
            }
        }
        Ok(judge(
            facts,
            self.now(),
            self.inner.config.max_access_token_lifetime,
            |kind, key| {
                let key = key.text();
                entries
                    .iter()
                    .find(|(k, text, _)| *k == kind && *text == key)
                    .map(|(_, _, e)| *e)
            },
        ))
    }

    async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let now = self.now();
        let mut cmd = self.revocation_call(&scripts::SNAPSHOT);
        cmd.arg(now.as_millis());
        let (epoch, seq, lists): (String, String, Vec<Vec<String>>) = self.eval(cmd).await?;
        if lists.len() != Kind::ALL.len() {
            return Err(StoreError::corrupt("revocation lists", "one list missing"));
        }
        let mut revocations = Vec::new();
        for (kind, flat) in Kind::ALL.into_iter().zip(lists) {
            for pair in flat.chunks(2) {
                let [value, entry] = pair else {
                    return Err(StoreError::corrupt("revocation list", "odd reply"));
                };
                let entry = decode_entry(entry)?;
                if entry.until > now {
                    revocations.push(Revocation {
                        target: Target::from_kind(kind, value.clone()),
                        at: entry.at,
                        until: entry.until,
                    });
                }
            }
        }
        Ok(Snapshot {
            cursor: Cursor {
                epoch,
                seq: parse_seq(&seq)?,
            },
            revocations,
            leeway_secs: self.config().leeway.as_secs(),
        })
    }

    async fn subscribe(&self, from: &Cursor) -> Result<Box<dyn Subscription>, StoreError> {
        Ok(Box::new(subscription::RedisSubscription::new(
            self.inner.connector.clone(),
            self.inner.keys.revocation(),
            self.inner.redis.clone(),
            from.clone(),
        )))
    }

    async fn throttle(&self, key: &str) -> Result<Throttle, StoreError> {
        let now = self.now();
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.inner.keys.throttle(key))
            .arg("n")
            .arg("ends")
            .arg("until");
        let ((n, ends, until),): ((Option<u32>, Option<i64>, Option<i64>),) =
            self.run(&pipe).await?;
        let (Some(n), Some(ends)) = (n, ends) else {
            return Ok(Throttle::default());
        };
        let until = until.unwrap_or(0);
        if now.as_millis() >= ends.max(until) {
            return Ok(Throttle::default());
        }
        Ok(Throttle {
            failures: n,
            blocked_until: (until > 0).then(|| Timestamp::from_millis(until)),
        })
    }

    async fn record_failure(
        &self,
        key: &str,
        policy: &ThrottlePolicy,
    ) -> Result<Throttle, StoreError> {
        let mut cmd = evalsha(&scripts::THROTTLE_FAIL, &[&self.inner.keys.throttle(key)]);
        cmd.arg(self.now().as_millis())
            .arg(duration_millis(policy.window).max(1));
        for (from, block) in &policy.steps {
            cmd.arg(*from).arg(duration_millis(*block));
        }
        let (n, until): (u32, i64) = self.eval(cmd).await?;
        Ok(Throttle {
            failures: n,
            blocked_until: (until > 0).then(|| Timestamp::from_millis(until)),
        })
    }

    async fn attempt(&self, keys: &[(&str, &ThrottlePolicy)]) -> Result<Attempt, StoreError> {
        let names: Vec<String> = keys
            .iter()
            .map(|(key, _)| self.inner.keys.throttle(key))
            .collect();
        let mut cmd = evalsha(&scripts::THROTTLE_ATTEMPT, &names);
        let now = self.now();
        cmd.arg(now.as_millis());
        for (_, policy) in keys {
            cmd.arg(duration_millis(policy.window).max(1))
                .arg(policy.steps.len());
            for (from, block) in &policy.steps {
                cmd.arg(*from).arg(duration_millis(*block));
            }
        }
        let reply: Vec<i64> = self.eval(cmd).await?;
        match reply.as_slice() {
            [0, until] => Ok(Attempt::Blocked(
                Throttle {
                    failures: 0,
                    blocked_until: Some(Timestamp::from_millis(*until)),
                }
                .blocked_for(now)
                .unwrap_or_default(),
            )),
            [1, counted @ ..] if counted.len() == 2 * keys.len() => Ok(Attempt::Allowed(
                counted
                    .chunks_exact(2)
                    .map(|c| Throttle {
                        failures: u32::try_from(c[0]).unwrap_or(u32::MAX),
                        blocked_until: (c[1] > 0).then(|| Timestamp::from_millis(c[1])),
                    })
                    .collect(),
            )),
            other => Err(StoreError::corrupt(
                "throttle",
                format!("unexpected attempt reply of {} numbers", other.len()),
            )),
        }
    }

    async fn clear_throttle(&self, key: &str) -> Result<bool, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.inner.keys.throttle(key));
        let (removed,): (u32,) = self.run(&pipe).await?;
        Ok(removed > 0)
    }

    async fn ping(&self) -> Result<Option<Timestamp>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        let ((secs, micros),): ((i64, i64),) = self.run(&pipe).await?;
        Ok(Some(Timestamp::from_millis(
            secs.saturating_mul(1000) + micros / 1000,
        )))
    }

    async fn reseed(&self, revocations: Vec<Revocation>) -> Result<Cursor, StoreError> {
        const CHUNK: usize = 1_000;
        let epoch = SessionId::generate().to_string();
        let mut chunks: Vec<&[Revocation]> = revocations.chunks(CHUNK).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        let mut seq = String::new();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let mut cmd = self.revocation_call(&scripts::RESEED);
            cmd.arg(if i == last { epoch.as_str() } else { "" });
            for r in chunk {
                cmd.arg(r.target.kind().code())
                    .arg(r.target.value())
                    .arg(r.at.as_millis())
                    .arg(r.until.as_millis());
            }
            seq = self.eval(cmd).await?;
        }
        Ok(Cursor {
            epoch,
            seq: parse_seq(&seq)?,
        })
    }
}

#[cfg(test)]
mod documented {
    use super::RedisConfig;
    use crate::config::tests::human;

    #[test]
    fn redis_defaults_are_documented() {
        let doc = include_str!("../../../../docs/configuration.md");
        let r = RedisConfig::new("redis://x");
        for row in [
            format!("| `prefix` | `{}` |", r.prefix),
            format!("| `operation_timeout` | {} |", human(r.operation_timeout)),
            format!("| `connect_timeout` | {} |", human(r.connect_timeout)),
        ] {
            assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
        }
    }
}
