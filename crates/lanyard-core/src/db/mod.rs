//! The SQL database, through sea-orm: the only module that knows sea-orm. One file per
//! record kind, each a narrow view of the [`Db`] ([`Db::users`], [`Db::clients`],
//! [`Db::consents`], [`Db::factors`], [`Db::groups`], [`Db::roles`], [`Db::keys`],
//! [`Db::revocations`], [`Db::audit`], [`Db::outbox`], [`Db::mail_links`], [`Db::streams`],
//! [`Db::events`]) that reads and
//! writes the types of `model`. `crates/lanyard-core/tests/sql/` runs one suite of them on
//! SQLite and on PostgreSQL.
//!
//! Times are stored as `BIGINT` milliseconds and lists as JSON text, so SQLite and
//! PostgreSQL hold exactly the same values.

mod audit;
mod clients;
mod consents;
mod entities;
mod factors;
mod groups;
mod keys;
mod mail;
mod revocations;
mod roles;
mod search;
mod signals;
mod users;

use std::sync::Arc;
use std::time::Duration;

use lanyard_migration::{Migrator, MigratorTrait};
use lanyard_store::{Clock, Timestamp};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, SqlErr};

pub use self::audit::AuditLog;
pub use self::clients::Clients;
pub use self::consents::Consents;
pub use self::factors::Factors;
pub use self::groups::Groups;
pub use self::keys::Keys;
pub use self::mail::{MailLinks, Outbox};
pub use self::revocations::{Revocations, target_columns};
pub use self::roles::Roles;
pub use self::search::SearchError;
pub use self::signals::{Events, Hold, Streams};
pub use self::users::Users;
use crate::crypto::MasterKey;
use crate::model::{Client, User};
use crate::recent::Recent;

/// Why the database could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or failed; callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique value is taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A stored record does not decode.
    #[error("corrupt {what} record: {detail}")]
    Corrupt {
        /// Which kind of record.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

fn unavailable(e: DbErr) -> DbError {
    // A statement that ran and failed is counted by the connection's metric callback; one
    // that never got a connection (the database is down) is counted here.
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        crate::metrics::db_unreachable();
    }
    DbError::Unavailable(e.to_string())
}

fn conflict_or_unavailable(what: &'static str) -> impl Fn(DbErr) -> DbError {
    move |e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => DbError::Conflict(what),
        _ => unavailable(e),
    }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// Clients and users as recently read, for the endpoints that read them on every
    /// request (`Clients::recent`, `Users::recent`); shared by this node's clones.
    recent_clients: Arc<Recent<Client, DbError>>,
    recent_users: Arc<Recent<User, DbError>>,
    /// Seals the signing keys and server secrets at rest (`keys.rs`); `None`: they are
    /// stored as they are (tests of the SQL layer; Lanyard itself always sets one).
    master: Option<Arc<MasterKey>>,
}

impl Db {
    /// Connects. SQLite files are created when missing (`?mode=rwc` is added if no mode is
    /// given).
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let url = if url.starts_with("sqlite:") && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_owned()
        };
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(16)
            .connect_timeout(Duration::from_secs(3))
            .acquire_timeout(Duration::from_secs(3))
            .sqlx_logging(false)
            // SQLite's default rollback journal locks readers out while anything writes
            // (the audit trail writes all the time), so every read would queue behind a
            // fsync. Write-ahead logging lets reads proceed; commits still fsync.
            .map_sqlx_sqlite_opts(|o| {
                o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(3))
            });
        let mut conn = Database::connect(options).await.map_err(unavailable)?;
        conn.set_metric_callback(|info| crate::metrics::db_statement(info.elapsed, info.failed));
        Ok(Self {
            conn,
            recent_clients: Arc::default(),
            recent_users: Arc::default(),
            master: None,
        })
    }

    /// The same database, with the copies of clients and users (`Clients::recent`,
    /// `Users::recent`) aged on `clock`: the server's, which tests move.
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self {
            recent_clients: Arc::new(Recent::new(clock.clone())),
            recent_users: Arc::new(Recent::new(clock)),
            ..self
        }
    }

    /// The same database, sealing secrets at rest under `master` (see `keys.rs`).
    #[must_use]
    pub fn with_master_key(self, master: Arc<MasterKey>) -> Self {
        Self {
            master: Some(master),
            ..self
        }
    }

    /// Seals `plain` for the row `name` (as it is, without a master key).
    pub(super) fn seal(&self, name: &str, plain: &[u8]) -> Vec<u8> {
        match &self.master {
            Some(master) => master.seal(name, plain),
            None => plain.to_vec(),
        }
    }

    /// Opens the stored value of the row `name`. A value stored in the clear (by an older
    /// Lanyard, until `reseal` runs at start) is taken as it is.
    pub(super) fn open(&self, name: &str, stored: Vec<u8>) -> Result<Vec<u8>, DbError> {
        if !MasterKey::is_sealed(&stored) {
            return Ok(stored);
        }
        let master = self.master.as_ref().ok_or_else(|| DbError::Corrupt {
            what: "sealed secret",
            detail: format!("{name} is sealed, and no master key is set (LANYARD_MASTER_KEY_FILE)"),
        })?;
        master
            .open(name, &stored)
            .map_err(|detail| DbError::Corrupt {
                what: "sealed secret",
                detail,
            })
    }

    /// Starts a transaction that will write after it reads. On SQLite it takes the write
    /// lock at once (a no-op `UPDATE`): a deferred transaction that read first cannot upgrade
    /// once another connection has written since, and fails at once with `SQLITE_BUSY_SNAPSHOT`
    /// ("database is locked", code 517) instead of waiting its turn.
    pub(super) async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, DbError> {
        use sea_orm::{DbBackend, TransactionTrait};
        let txn = self.conn.begin().await.map_err(unavailable)?;
        if txn.get_database_backend() == DbBackend::Sqlite {
            txn.execute_unprepared("UPDATE server_keys SET name = name WHERE 1 = 0")
                .await
                .map_err(unavailable)?;
        }
        Ok(txn)
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbError> {
        Migrator::up(&self.conn, None).await.map_err(unavailable)
    }

    /// Applies the first `steps` migrations only (tests of a migration: a database as an older
    /// Lanyard left it).
    #[cfg(feature = "testing")]
    pub async fn migrate_first(&self, steps: u32) -> Result<(), DbError> {
        Migrator::up(&self.conn, Some(steps))
            .await
            .map_err(unavailable)
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.conn.ping().await.map_err(unavailable)
    }

    /// The database server's clock, when it runs on another host (PostgreSQL); `None` for
    /// SQLite, which shares the node's clock.
    pub async fn server_time(&self) -> Result<Option<Timestamp>, DbError> {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        if self.conn.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let row = self
            .conn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint AS ms",
            ))
            .await
            .map_err(unavailable)?;
        let ms: i64 = row
            .ok_or_else(|| DbError::Unavailable("the database returned no time".to_owned()))?
            .try_get("", "ms")
            .map_err(unavailable)?;
        Ok(Some(Timestamp::from_millis(ms)))
    }

    /// People.
    pub fn users(&self) -> Users<'_> {
        Users(self)
    }

    /// Applications.
    pub fn clients(&self) -> Clients<'_> {
        Clients(self)
    }

    /// What people allowed applications.
    pub fn consents(&self) -> Consents<'_> {
        Consents(self)
    }

    /// Second factors and recovery codes.
    pub fn factors(&self) -> Factors<'_> {
        Factors(self)
    }

    /// Groups of people and their members.
    pub fn groups(&self) -> Groups<'_> {
        Groups(self)
    }

    /// The roles applications define, and who holds them.
    pub fn roles(&self) -> Roles<'_> {
        Roles(self)
    }

    /// Signing keys and the server's own secrets.
    pub fn keys(&self) -> Keys<'_> {
        Keys(self)
    }

    /// The durable revocation record.
    pub fn revocations(&self) -> Revocations<'_> {
        Revocations(self)
    }

    /// The audit trail.
    pub fn audit(&self) -> AuditLog<'_> {
        AuditLog(self)
    }

    /// Mail waiting to be sent, and what was sent.
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox(self)
    }

    /// The links mails carry.
    pub fn mail_links(&self) -> MailLinks<'_> {
        MailLinks(self)
    }

    /// Shared Signals streams and the subjects their receivers named.
    pub fn streams(&self) -> Streams<'_> {
        Streams(self)
    }

    /// The event outbox: what waits to leave, channel by channel.
    pub fn events(&self) -> Events<'_> {
        Events(self)
    }

    /// Runs a statement that needs no model (tests use it to reach into the database).
    pub async fn execute_unprepared(&self, sql: &str) -> Result<(), DbError> {
        self.conn
            .execute_unprepared(sql)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
