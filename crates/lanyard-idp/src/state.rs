//! Everything a request needs, built once at start and shared (`AppState` is cheap to clone).

use std::ops::Deref;
use std::sync::Arc;

use lanyard_store::{
    Clock, MemoryStore, RedisConfig, RedisStore, StoreError, SystemClock, TokenStore,
};

use crate::audit::Audit;
use crate::config::Config;
use crate::crypto::{Passwords, ServerKeys, random_token};
use crate::db::Db;
use crate::oauth::discovery;
use crate::tokens::{self, LiveKeys};

/// The shared state.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What the state holds.
#[derive(Debug)]
pub struct Inner {
    /// The validated configuration.
    pub config: Config,
    /// The SQL database.
    pub db: Db,
    /// Codes, sessions, refresh families, revocation lists.
    pub store: Arc<dyn TokenStore>,
    /// Signing and verification keys.
    pub keys: LiveKeys,
    /// Client-secret pepper and cookie MAC key.
    pub server_keys: ServerKeys,
    /// Password hashing.
    pub passwords: Passwords,
    /// The audit trail.
    pub audit: Audit,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The discovery document, serialised once.
    pub discovery: String,
    /// Held while the store's revocation lists are rebuilt from the record.
    pub restoring: tokio::sync::Mutex<()>,
    /// How many revocations were recorded that the store could not take; while this is
    /// ahead of `restored_through`, the lists are restored before anything is judged.
    pub unlisted: std::sync::atomic::AtomicU64,
    /// `unlisted` as it was when the last successful restore read the record.
    pub restored_through: std::sync::atomic::AtomicU64,
    /// Turns true when the server begins to shut down: long-lived responses (the revocation
    /// feed's streams) end, so that the graceful shutdown does not wait on them forever.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Client ids and addresses the token store said were not locked out, less than a
    /// second ago (`oauth::client_auth::authenticate_throttled`).
    pub(crate) unlocked_clients: crate::recent::Recent<()>,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error("database: {0}")]
    Db(#[from] crate::db::DbError),
    /// The token store.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// The signing keys.
    #[error("signing keys: {0}")]
    Keys(#[from] tokens::KeyError),
    /// Password hashing.
    #[error("password hashing: {0}")]
    Passwords(#[from] crate::crypto::PasswordError),
}

impl AppState {
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Self(inner)
    }

    /// Connects to the database (migrating it) and the store, and loads or makes the keys.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with(config, Arc::new(SystemClock), None).await
    }

    /// Like [`build`](Self::build), with a clock and, optionally, a store made by the caller
    /// (tests).
    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Self, StartError> {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let store = match store {
            Some(store) => store,
            None => open_store(&config, clock.clone()).await?,
        };
        let now = clock.now();
        let keys = tokens::load_or_create(&db, now, config.access_token_alg).await?;
        let server_keys = load_server_keys(&db, now).await?;
        let audit = Audit::start(db.clone());
        // The lists must hold every recorded revocation before the first request is judged
        // (an in-process store starts empty; a Redis may have lost them).
        match crate::revocation::restore(&db, store.as_ref(), now).await {
            Ok(_) => {}
            Err(crate::revocation::RevocationError::Db(e)) => return Err(e.into()),
            // A Redis that is down now: nothing is judged while it is, and the watch restores
            // the lists as soon as it answers. No reason not to start.
            Err(crate::revocation::RevocationError::Store(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "the token store is not ready; its revocation lists will be checked when it is");
            }
            Err(crate::revocation::RevocationError::Store(e)) => return Err(e.into()),
        }
        let state = Self(Arc::new(Inner {
            discovery: discovery::metadata(&config),
            server_keys,
            passwords: Passwords::new()?,
            config,
            db,
            store,
            keys: LiveKeys::new(keys),
            audit,
            clock,
            restoring: tokio::sync::Mutex::new(()),
            unlisted: std::sync::atomic::AtomicU64::new(0),
            restored_through: std::sync::atomic::AtomicU64::new(0),
            stopping: tokio::sync::watch::Sender::new(false),
            unlocked_clients: crate::recent::Recent::default(),
        }));
        crate::revocation::watch(Arc::downgrade(&state.0));
        crate::tokens::rotation::watch(Arc::downgrade(&state.0), state.config.keys.refresh);
        Ok(state)
    }
}

/// The server's own keys, made at first start and kept in the database. The command line
/// needs them (to hash a client secret) without starting anything else.
pub async fn load_server_keys(
    db: &Db,
    now: lanyard_store::Timestamp,
) -> Result<ServerKeys, crate::db::DbError> {
    let pepper = db
        .server_key("client_secret_pepper", random_token(32).into_bytes(), now)
        .await?;
    let cookie_key = db
        .server_key("cookie_mac", random_token(32).into_bytes(), now)
        .await?;
    Ok(ServerKeys::new(&pepper, &cookie_key))
}

async fn open_store(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<Arc<dyn TokenStore>, StoreError> {
    let store_config = config.store_config();
    let Some(url) = &config.redis_url else {
        tracing::warn!(
            "no LANYARD_REDIS_URL: using the in-process token store, which serves one node only and forgets sessions on restart"
        );
        return Ok(Arc::new(MemoryStore::with_clock(store_config, clock)?));
    };
    let mut redis = RedisConfig::new(url.clone());
    redis.topology = config.redis_topology;
    redis.sentinel_master = config.redis_sentinel_master.clone();
    redis.prefix = config.redis_prefix.clone();
    Ok(Arc::new(RedisStore::connect(store_config, redis).await?))
}
