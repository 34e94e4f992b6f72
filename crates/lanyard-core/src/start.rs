//! Starting the core: connect to the database (migrating it) and the token store, load or
//! make the keys, make the token store's lists hold every recorded revocation, and start the
//! background tasks (the revocation watch, the key rotation tick).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use lanyard_store::{
    Clock, MemoryStore, RedisConfig, RedisStore, StoreError, SystemClock, Timestamp, TokenStore,
};

use crate::audit::Audit;
use crate::config::Config;
use crate::context::{Core, Parts};
use crate::crypto::{MasterKey, PasswordError, Passwords, ServerKeys, random_token};
use crate::db::{Db, DbError};
use crate::revocation::{self, RevocationError};
use crate::tokens::{self, KeyError, LiveKeys};

/// Why the core could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The token store.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// The signing keys.
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    /// Password hashing.
    #[error("password hashing: {0}")]
    Passwords(#[from] PasswordError),
    /// The master key (the key-encryption key of the secrets at rest).
    #[error("master key: {0}")]
    MasterKey(String),
    /// The mail settings.
    #[error("{0}")]
    Mail(#[from] crate::mailer::TransportError),
}

impl Core {
    /// Connects to the database (migrating it) and the store, and loads or makes the keys.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        Self::start_with(config, Arc::new(SystemClock), None).await
    }

    /// Like [`start`](Self::start), with a clock and, optionally, a store made by the caller
    /// (tests).
    pub async fn start_with(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Self, StartError> {
        let db = open_db(&config, clock.clone()).await?;
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
        match revocation::restore(&db, store.as_ref(), now).await {
            Ok(_) => {}
            Err(RevocationError::Db(e)) => return Err(e.into()),
            // A Redis that is down now: nothing is judged while it is, and the watch restores
            // the lists as soon as it answers. No reason not to start.
            Err(RevocationError::Store(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "the token store is not ready; its revocation lists will be checked when it is");
            }
            Err(RevocationError::Store(e)) => return Err(e.into()),
        }
        let mailer = crate::mailer::Mailer::new(&config)?;
        let core = Core::new(Parts {
            client_keys: tokens::assertion::ClientKeys::new(
                &config.outbound_allow,
                config.client_assertion_max_lifetime,
            ),
            mailer,
            server_keys,
            passwords: Passwords::new()?,
            db,
            store,
            keys: LiveKeys::new(keys),
            audit,
            outbox_bell: tokio::sync::watch::Sender::new(0),
            restoring: tokio::sync::Mutex::new(()),
            unlisted: AtomicU64::new(0),
            restored_through: AtomicU64::new(0),
            clock,
            config,
        });
        revocation::watch(core.downgrade());
        crate::keys::watch(core.downgrade(), core.config.keys.refresh);
        Ok(core)
    }
}

/// Connects to the database, migrates it, and seals its secrets under the master key (those
/// an older Lanyard stored in the clear are sealed now). The server and the command line
/// both open it so.
pub async fn open_db(config: &Config, clock: Arc<dyn Clock>) -> Result<Db, StartError> {
    let db = Db::connect(&config.database_url).await?.with_clock(clock);
    db.migrate().await?;
    let db = db.with_master_key(Arc::new(master_key(config)?));
    let sealed = db.keys().reseal(None).await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed the secrets an older Lanyard stored in the clear under the master key"
        );
    }
    Ok(db)
}

/// The master key: `master_key`, else the file `master_key_file`; else, for a SQLite
/// database, the file beside it (made at first start); for an in-memory one, a key of this
/// process. PostgreSQL without one is refused: the secrets would be as safe as every backup.
pub fn master_key(config: &Config) -> Result<MasterKey, StartError> {
    let bad = |e: String| StartError::MasterKey(e);
    if let Some(text) = &config.master_key {
        return MasterKey::parse(text).map_err(|e| bad(format!("LANYARD_MASTER_KEY: {e}")));
    }
    if let Some(path) = &config.master_key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        return MasterKey::parse(&text).map_err(|e| bad(format!("{}: {e}", path.display())));
    }
    let Some(db_file) = config.sqlite_file() else {
        if config.database_url.starts_with("sqlite:") {
            return Ok(MasterKey::generate().0);
        }
        return Err(bad(
            "set LANYARD_MASTER_KEY_FILE to a file holding the master key (make one with \
             `lanyard keys master-key > FILE`, readable by Lanyard only): the signing keys and \
             secrets in the database are sealed under it"
                .to_owned(),
        ));
    };
    let path = std::path::PathBuf::from(format!("{db_file}.master-key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::parse(&text).map_err(|e| bad(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, text) = MasterKey::generate();
            write_private(&path, &text)
                .map_err(|e| bad(format!("cannot write {}: {e}", path.display())))?;
            tracing::warn!(
                path = %path.display(),
                "made a master key beside the SQLite database; keep it out of the database's backups, or set LANYARD_MASTER_KEY_FILE"
            );
            Ok(key)
        }
        Err(e) => Err(bad(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The server's own keys, made at first start and kept in the database. The command line
/// needs them (to hash a client secret) without starting anything else.
pub async fn load_server_keys(db: &Db, now: Timestamp) -> Result<ServerKeys, DbError> {
    let pepper = db
        .keys()
        .server_secret("client_secret_pepper", random_token(32).into_bytes(), now)
        .await?;
    let cookie_key = db
        .keys()
        .server_secret("cookie_mac", random_token(32).into_bytes(), now)
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
    Ok(Arc::new(
        RedisStore::connect_with_clock(store_config, redis, clock).await?,
    ))
}
