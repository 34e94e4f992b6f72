//! The SQL database, through sea-orm: the only module that knows sea-orm. Users, clients,
//! signing keys, server keys and audit events, as the types of `model` and `tokens`.
//!
//! Times are stored as `BIGINT` milliseconds and lists as JSON text, so SQLite and
//! PostgreSQL hold exactly the same values.

mod entities;

use std::sync::Arc;
use std::time::Duration;

use lanyard_migration::{Migrator, MigratorTrait};
use lanyard_store::{Revocation, Target, Timestamp};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectOptions, ConnectionTrait,
    Database, DatabaseConnection, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};

use self::entities::{
    audit_events, clients, consents, revocations, server_keys, signing_keys, users,
};
use crate::model::{Client, GrantType, User};
use crate::recent::Recent;

/// What a user allowed a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The client.
    pub client_id: String,
    /// The scopes allowed.
    pub scopes: Vec<String>,
    /// When (last) allowed.
    pub granted_at: Timestamp,
}

fn consent_from(row: consents::Model) -> Result<Consent, DbError> {
    let scopes = serde_json::from_str(&row.scopes).map_err(|e| DbError::Corrupt {
        what: "consent",
        detail: e.to_string(),
    })?;
    Ok(Consent {
        client_id: row.client_id,
        scopes,
        granted_at: Timestamp::from_millis(row.granted_at),
    })
}

/// Why the database could not do what was asked.
#[derive(Debug, thiserror::Error)]
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

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: Timestamp,
    /// Who acted: a `sub`, a `client:<id>`, or `anonymous`.
    pub actor: String,
    /// What happened, e.g. `signin`, `token.issue`.
    pub action: String,
    /// What it happened to, if anything.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The request it happened in.
    pub request_id: Option<String>,
    /// More, as JSON. Never a secret.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// A successful `action` by `actor` at `at`, with no target, request or detail yet.
    pub fn success(at: Timestamp, actor: &str, action: &str) -> Self {
        Self {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: None,
            outcome: "success".to_owned(),
            request_id: None,
            detail: None,
        }
    }
}

/// Which audit events to read: each given field must match exactly; times are a
/// half-open range `[since, until)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who acted.
    pub actor: Option<String>,
    /// What happened.
    pub action: Option<String>,
    /// What it happened to.
    pub target: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// `next`, `active` or `retired`.
    pub state: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Published until then (retired keys).
    pub usable_until: Option<Timestamp>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    /// Clients and users as recently read, for the endpoints that read them on every
    /// request (`recent_client`, `recent_user`); shared by this node's clones.
    recent_clients: Arc<Recent<Client>>,
    recent_users: Arc<Recent<User>>,
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
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), DbError> {
        Migrator::up(&self.conn, None).await.map_err(unavailable)
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

    // ---------------------------------------------------------------- users

    /// Stores a new user. `Conflict` if the username (case-insensitively) or `sub` is taken.
    pub async fn insert_user(&self, user: &User) -> Result<(), DbError> {
        users::ActiveModel {
            sub: Set(user.sub.clone()),
            username: Set(user.username.clone()),
            username_key: Set(username_key(&user.username)),
            email: Set(user.email.clone()),
            display_name: Set(user.display_name.clone()),
            password_hash: Set(user.password_hash.clone()),
            disabled: Set(user.disabled),
            created_at: Set(user.created_at.as_millis()),
            updated_at: Set(user.updated_at.as_millis()),
        }
        .insert(&self.conn)
        .await
        .map_err(conflict_or_unavailable("a user with this username"))?;
        Ok(())
    }

    /// The user who signs in as `username` (case-insensitively).
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, DbError> {
        let found = users::Entity::find()
            .filter(users::Column::UsernameKey.eq(username_key(username)))
            .one(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(user_from))
    }

    /// The user with this `sub`.
    pub async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, DbError> {
        let found = users::Entity::find_by_id(sub.to_owned())
            .one(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(user_from))
    }

    /// [`Db::user_by_sub`] as read at most a second ago on this node (writes
    /// through this node are seen at once), for the endpoints that ask on every request.
    pub async fn recent_user(&self, sub: &str) -> Result<Option<User>, DbError> {
        self.recent_users.get_or(sub, self.user_by_sub(sub)).await
    }

    /// Up to `limit` users in username order, after the username `after` (exclusive), whose
    /// username or email contains `search` (case-insensitively).
    pub async fn list_users(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<User>, DbError> {
        let mut query = users::Entity::find().order_by_asc(users::Column::UsernameKey);
        if let Some(after) = after {
            query = query.filter(users::Column::UsernameKey.gt(username_key(after)));
        }
        if let Some(search) = search.filter(|s| !s.is_empty()) {
            let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
            query = query.filter(
                Condition::any()
                    .add(Expr::col(users::Column::UsernameKey).like(like(&pattern)))
                    .add(
                        Expr::expr(Func::lower(Expr::col(users::Column::Email)))
                            .like(like(&pattern)),
                    ),
            );
        }
        let found = query
            .paginate(&self.conn, limit)
            .fetch_page(0)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(user_from).collect())
    }

    /// Writes the user's email and display name, if the record is still as `seen` (its
    /// `updated_at`); returns false when it changed meanwhile (or is gone).
    pub async fn update_user_profile(&self, user: &User, seen: Timestamp) -> Result<bool, DbError> {
        let result = users::Entity::update_many()
            .col_expr(users::Column::Email, Expr::value(user.email.clone()))
            .col_expr(
                users::Column::DisplayName,
                Expr::value(user.display_name.clone()),
            )
            .col_expr(
                users::Column::UpdatedAt,
                Expr::value(user.updated_at.as_millis()),
            )
            .filter(users::Column::Sub.eq(user.sub.as_str()))
            .filter(users::Column::UpdatedAt.eq(seen.as_millis()))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        self.recent_users.forget(&user.sub);
        Ok(result.rows_affected > 0)
    }

    /// Replaces the user's password hash; false if there is no such user.
    pub async fn set_user_password(
        &self,
        sub: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        self.set_user_column(
            sub,
            users::Column::PasswordHash,
            Expr::value(password_hash),
            now,
        )
        .await
    }

    /// Sets one column of the user and `updated_at`; false if there is no such user.
    async fn set_user_column(
        &self,
        sub: &str,
        column: users::Column,
        value: Expr,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let result = users::Entity::update_many()
            .col_expr(column, value)
            .col_expr(users::Column::UpdatedAt, Expr::value(now.as_millis()))
            .filter(users::Column::Sub.eq(sub))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        self.recent_users.forget(sub);
        Ok(result.rows_affected > 0)
    }

    /// Deletes the user; false if there was none.
    pub async fn delete_user(&self, sub: &str) -> Result<bool, DbError> {
        consents::Entity::delete_many()
            .filter(consents::Column::Sub.eq(sub))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        let result = users::Entity::delete_by_id(sub.to_owned())
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        self.recent_users.forget(sub);
        Ok(result.rows_affected > 0)
    }

    /// How many users there are.
    pub async fn count_users(&self) -> Result<u64, DbError> {
        users::Entity::find()
            .count(&self.conn)
            .await
            .map_err(unavailable)
    }

    // ---------------------------------------------------------------- clients

    /// Stores a new client. `Conflict` if the id is taken.
    pub async fn insert_client(&self, client: &Client) -> Result<(), DbError> {
        client_model(client)
            .insert(&self.conn)
            .await
            .map_err(conflict_or_unavailable("a client with this id"))?;
        Ok(())
    }

    /// The client with this id.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>, DbError> {
        let found = clients::Entity::find_by_id(client_id.to_owned())
            .one(&self.conn)
            .await
            .map_err(unavailable)?;
        found.map(client_from).transpose()
    }

    /// [`Db::client`] as read at most a second ago on this node (writes through
    /// this node are seen at once), for the endpoints every client request goes through.
    pub async fn recent_client(&self, client_id: &str) -> Result<Option<Client>, DbError> {
        self.recent_clients
            .get_or(client_id, self.client(client_id))
            .await
    }

    /// Up to `limit` clients in id order, after `after` (exclusive).
    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Client>, DbError> {
        let mut query = clients::Entity::find().order_by_asc(clients::Column::ClientId);
        if let Some(after) = after {
            query = query.filter(clients::Column::ClientId.gt(after));
        }
        query
            .paginate(&self.conn, limit)
            .fetch_page(0)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(client_from)
            .collect()
    }

    /// Writes the client, if its record is still as `seen` (its `updated_at`); false when
    /// it changed meanwhile (or is gone).
    pub async fn update_client(&self, client: &Client, seen: Timestamp) -> Result<bool, DbError> {
        let result = clients::Entity::update_many()
            .set(client_model(client))
            .filter(clients::Column::ClientId.eq(client.client_id.as_str()))
            .filter(clients::Column::UpdatedAt.eq(seen.as_millis()))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        self.recent_clients.forget(&client.client_id);
        Ok(result.rows_affected > 0)
    }

    /// Replaces a client's secret hash; false if there is no such client.
    pub async fn set_client_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let result = clients::Entity::update_many()
            .col_expr(clients::Column::SecretHash, Expr::value(secret_hash))
            .col_expr(clients::Column::UpdatedAt, Expr::value(now.as_millis()))
            .filter(clients::Column::ClientId.eq(client_id))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        self.recent_clients.forget(client_id);
        Ok(result.rows_affected > 0)
    }

    /// Deletes a client; false if there was none.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, DbError> {
        consents::Entity::delete_many()
            .filter(consents::Column::ClientId.eq(client_id))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        let result = clients::Entity::delete_by_id(client_id.to_owned())
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        self.recent_clients.forget(client_id);
        Ok(result.rows_affected > 0)
    }

    /// How many clients there are.
    pub async fn count_clients(&self) -> Result<u64, DbError> {
        clients::Entity::find()
            .count(&self.conn)
            .await
            .map_err(unavailable)
    }

    // ---------------------------------------------------------------- consents

    /// What user `sub` allowed client `client_id`, if anything.
    pub async fn consent(&self, sub: &str, client_id: &str) -> Result<Option<Consent>, DbError> {
        let row = consents::Entity::find_by_id((sub.to_owned(), client_id.to_owned()))
            .one(&self.conn)
            .await
            .map_err(unavailable)?;
        row.map(consent_from).transpose()
    }

    /// Every client user `sub` allowed, oldest first.
    pub async fn consents(&self, sub: &str) -> Result<Vec<Consent>, DbError> {
        let rows = consents::Entity::find()
            .filter(consents::Column::Sub.eq(sub))
            .order_by_asc(consents::Column::GrantedAt)
            .all(&self.conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(consent_from).collect()
    }

    /// Records that user `sub` allowed `client_id` exactly `scopes` (what they saw on the
    /// page; a consent to more replaces one to less).
    pub async fn grant_consent(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<(), DbError> {
        let row = consents::ActiveModel {
            sub: Set(sub.to_owned()),
            client_id: Set(client_id.to_owned()),
            scopes: Set(serde_json::to_string(scopes).unwrap_or_else(|_| "[]".to_owned())),
            granted_at: Set(now.as_millis()),
        };
        consents::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    consents::Column::Sub,
                    consents::Column::ClientId,
                ])
                .update_columns([consents::Column::Scopes, consents::Column::GrantedAt])
                .to_owned(),
            )
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Forgets what user `sub` allowed `client_id`. Returns whether there was a consent.
    pub async fn withdraw_consent(&self, sub: &str, client_id: &str) -> Result<bool, DbError> {
        let result = consents::Entity::delete_by_id((sub.to_owned(), client_id.to_owned()))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    // ---------------------------------------------------------------- keys

    /// Every signing key that is not yet past its `usable_until`, newest first.
    pub async fn signing_keys(&self, now: Timestamp) -> Result<Vec<StoredKey>, DbError> {
        let rows = signing_keys::Entity::find()
            .filter(
                Condition::any()
                    .add(signing_keys::Column::UsableUntil.is_null())
                    .add(signing_keys::Column::UsableUntil.gt(now.as_millis())),
            )
            .order_by_desc(signing_keys::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|m| StoredKey {
                kid: m.kid,
                alg: m.alg,
                private_key: m.private_key,
                state: m.state,
                created_at: Timestamp::from_millis(m.created_at),
                usable_until: m.usable_until.map(Timestamp::from_millis),
            })
            .collect())
    }

    /// Stores a signing key.
    pub async fn insert_signing_key(&self, key: &StoredKey) -> Result<(), DbError> {
        signing_key_model(key)
            .insert(&self.conn)
            .await
            .map_err(conflict_or_unavailable("a signing key with this kid"))?;
        Ok(())
    }

    /// Stores `key` unless a key of its algorithm in its state (`active`) is stored already;
    /// returns whether it did. Nodes started at once on an empty database each make a first key: this lets
    /// one in, and the others sign with it. On PostgreSQL the check and the insert hold an
    /// advisory lock for their transaction; SQLite lets one writer in at a time (and serves
    /// one node).
    pub async fn insert_first_signing_key(&self, key: &StoredKey) -> Result<bool, DbError> {
        let txn = self.conn.begin().await.map_err(unavailable)?;
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({FIRST_KEY_LOCK})"))
                .await
                .map_err(unavailable)?;
        }
        let present = signing_keys::Entity::find()
            .filter(signing_keys::Column::State.eq(key.state.as_str()))
            .filter(signing_keys::Column::Alg.eq(key.alg.as_str()))
            .count(&txn)
            .await
            .map_err(unavailable)?;
        if present > 0 {
            txn.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        signing_key_model(key)
            .insert(&txn)
            .await
            .map_err(conflict_or_unavailable("a signing key with this kid"))?;
        txn.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// Moves a signing key to `state` (`active`, `retired`), published until `usable_until`
    /// (`None`: for as long as it is not retired). False if there is no such key.
    pub async fn set_signing_key_state(
        &self,
        kid: &str,
        state: &str,
        usable_until: Option<Timestamp>,
    ) -> Result<bool, DbError> {
        let result = signing_keys::Entity::update_many()
            .col_expr(signing_keys::Column::State, Expr::value(state))
            .col_expr(
                signing_keys::Column::UsableUntil,
                Expr::value(usable_until.map(Timestamp::as_millis)),
            )
            .filter(signing_keys::Column::Kid.eq(kid))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes a signing key (emergency removal); false if there was none.
    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool, DbError> {
        let result = signing_keys::Entity::delete_by_id(kid.to_owned())
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// The server key named `name`, created from `fresh` if there is none yet. Two nodes
    /// starting at once agree on one key: the first insert wins, both read it back.
    pub async fn server_key(
        &self,
        name: &str,
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<Vec<u8>, DbError> {
        let insert = server_keys::Entity::insert(server_keys::ActiveModel {
            name: Set(name.to_owned()),
            secret: Set(fresh),
            created_at: Set(now.as_millis()),
        })
        .on_conflict_do_nothing()
        .exec(&self.conn)
        .await;
        insert.map_err(unavailable)?;
        let row = server_keys::Entity::find_by_id(name.to_owned())
            .one(&self.conn)
            .await
            .map_err(unavailable)?;
        row.map(|r| r.secret).ok_or_else(|| DbError::Corrupt {
            what: "server key",
            detail: format!("{name} vanished after insert"),
        })
    }

    // ---------------------------------------------------------------- revocations

    /// Deletes the records whose `until` has passed: no token they cover can be valid.
    pub async fn prune_revocations(&self, now: Timestamp) -> Result<u64, DbError> {
        let result = revocations::Entity::delete_many()
            .filter(revocations::Column::Until.lte(now.as_millis()))
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected)
    }

    /// Records a revocation durably, by `actor`, at `now`. Called before the token store
    /// hears of it: what is acknowledged is in here. A revocation an earlier record already
    /// covers (the same target, as late and as long) adds no row; returns whether it added.
    pub async fn insert_revocation(
        &self,
        revocation: &Revocation,
        actor: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let (kind, value) = target_columns(&revocation.target);
        let covered = revocations::Entity::find()
            .filter(revocations::Column::Kind.eq(kind))
            .filter(revocations::Column::Value.eq(value))
            .filter(revocations::Column::At.gte(revocation.at.as_millis()))
            .filter(revocations::Column::Until.gte(revocation.until.as_millis()))
            .one(&self.conn)
            .await
            .map_err(unavailable)?;
        if covered.is_some() {
            return Ok(false);
        }
        revocations::ActiveModel {
            kind: Set(kind.to_owned()),
            value: Set(value.to_owned()),
            at: Set(revocation.at.as_millis()),
            until: Set(revocation.until.as_millis()),
            recorded_at: Set(now.as_millis()),
            actor: Set(actor.to_owned()),
            ..Default::default()
        }
        .insert(&self.conn)
        .await
        .map_err(unavailable)?;
        Ok(true)
    }

    /// Every recorded revocation still in force at `now` (its `until` after `now`), oldest
    /// first.
    pub async fn live_revocations(&self, now: Timestamp) -> Result<Vec<Revocation>, DbError> {
        Ok(self
            .revocations_in_force(now)
            .await?
            .into_iter()
            .map(|r| r.revocation)
            .collect())
    }

    /// [`Db::live_revocations`] with who recorded each and when.
    pub async fn revocations_in_force(
        &self,
        now: Timestamp,
    ) -> Result<Vec<RecordedRevocation>, DbError> {
        let rows = revocations::Entity::find()
            .filter(revocations::Column::Until.gt(now.as_millis()))
            .order_by_asc(revocations::Column::Id)
            .all(&self.conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|r| {
                let target = match r.kind.as_str() {
                    "jti" => Target::Jti(r.value),
                    "sid" => Target::Sid(r.value),
                    "sub" => Target::Sub(r.value),
                    "client_id" => Target::ClientId(r.value),
                    "grant" => Target::Grant(r.value),
                    other => {
                        return Err(DbError::Corrupt {
                            what: "revocation",
                            detail: format!("unknown kind {other:?}"),
                        });
                    }
                };
                Ok(RecordedRevocation {
                    revocation: Revocation {
                        target,
                        at: Timestamp::from_millis(r.at),
                        until: Timestamp::from_millis(r.until),
                    },
                    recorded_at: Timestamp::from_millis(r.recorded_at),
                    actor: r.actor,
                })
            })
            .collect()
    }

    // ---------------------------------------------------------------- audit

    /// Stores audit events, all or none.
    pub async fn insert_audit(&self, events: &[AuditEvent]) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events.iter().map(|e| audit_events::ActiveModel {
            at: Set(e.at.as_millis()),
            actor: Set(e.actor.clone()),
            action: Set(e.action.clone()),
            target: Set(e.target.clone()),
            outcome: Set(e.outcome.clone()),
            request_id: Set(e.request_id.clone()),
            detail: Set(e.detail.clone()),
            ..Default::default()
        });
        audit_events::Entity::insert_many(rows)
            .exec(&self.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deletes the audit events from before `before`, `batch` at a time (each batch its own
    /// short statement, so a busy table is never locked for long); returns how many.
    pub async fn prune_audit(&self, before: Timestamp, batch: u64) -> Result<u64, DbError> {
        let mut deleted = 0;
        // Each batch starts after the last one's end, so no batch rescans what was deleted.
        let mut after = i64::MIN;
        loop {
            let old = Condition::all()
                .add(audit_events::Column::At.lt(before.as_millis()))
                .add(audit_events::Column::Id.gt(after));
            // The id that ends this batch; none when fewer are left than a batch.
            let last: Option<i64> = audit_events::Entity::find()
                .select_only()
                .column(audit_events::Column::Id)
                .filter(old.clone())
                .order_by_asc(audit_events::Column::Id)
                .offset(batch.saturating_sub(1))
                .limit(1)
                .into_tuple()
                .one(&self.conn)
                .await
                .map_err(unavailable)?;
            let mut delete = audit_events::Entity::delete_many().filter(old);
            if let Some(last) = last {
                delete = delete.filter(audit_events::Column::Id.lte(last));
            }
            deleted += delete
                .exec(&self.conn)
                .await
                .map_err(unavailable)?
                .rows_affected;
            match last {
                Some(last) => after = last,
                None => return Ok(deleted),
            }
        }
    }

    /// Audit events with `action`, oldest first (for tests and, later, the admin API).
    pub async fn audit_by_action(&self, action: &str) -> Result<Vec<AuditEvent>, DbError> {
        let filter = AuditFilter {
            action: Some(action.to_owned()),
            ..AuditFilter::default()
        };
        let mut rows = self.query_audit(&filter, None, None).await?;
        rows.reverse();
        Ok(rows.into_iter().map(|(_, e)| e).collect())
    }

    /// Up to `limit` (all when `None`) audit events matching `filter`, newest first, with
    /// their ids; only those with an id below `before` when given (the cursor of the previous
    /// page).
    pub async fn query_audit(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: Option<u64>,
    ) -> Result<Vec<(i64, AuditEvent)>, DbError> {
        let mut query = audit_events::Entity::find().order_by_desc(audit_events::Column::Id);
        if let Some(before) = before {
            query = query.filter(audit_events::Column::Id.lt(before));
        }
        if let Some(actor) = &filter.actor {
            query = query.filter(audit_events::Column::Actor.eq(actor.as_str()));
        }
        if let Some(action) = &filter.action {
            query = query.filter(audit_events::Column::Action.eq(action.as_str()));
        }
        if let Some(target) = &filter.target {
            query = query.filter(audit_events::Column::Target.eq(target.as_str()));
        }
        if let Some(since) = filter.since {
            query = query.filter(audit_events::Column::At.gte(since.as_millis()));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_events::Column::At.lt(until.as_millis()));
        }
        let rows = match limit {
            None => query.all(&self.conn).await,
            Some(limit) => query.paginate(&self.conn, limit).fetch_page(0).await,
        }
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|m| {
                (
                    m.id,
                    AuditEvent {
                        at: Timestamp::from_millis(m.at),
                        actor: m.actor,
                        action: m.action,
                        target: m.target,
                        outcome: m.outcome,
                        request_id: m.request_id,
                        detail: m.detail,
                    },
                )
            })
            .collect())
    }

    /// Runs a statement that needs no model (tests use it to reach into the database).
    pub async fn execute_unprepared(&self, sql: &str) -> Result<(), DbError> {
        self.conn
            .execute_unprepared(sql)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// Marks a user disabled or enabled.
    pub async fn set_user_disabled(
        &self,
        sub: &str,
        disabled: bool,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        self.set_user_column(sub, users::Column::Disabled, Expr::value(disabled), now)
            .await
    }
}

/// The advisory lock key for choosing the first signing key ("LYRD" and 1).
const FIRST_KEY_LOCK: i64 = 0x4c59_5244_0000_0001;

fn signing_key_model(key: &StoredKey) -> signing_keys::ActiveModel {
    signing_keys::ActiveModel {
        kid: Set(key.kid.clone()),
        alg: Set(key.alg.clone()),
        private_key: Set(key.private_key.clone()),
        state: Set(key.state.clone()),
        created_at: Set(key.created_at.as_millis()),
        usable_until: Set(key.usable_until.map(Timestamp::as_millis)),
    }
}

/// A revocation as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRevocation {
    /// The list entry.
    pub revocation: Revocation,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// Who revoked (`admin:<client_id>`, `client:<client_id>`, `cli`, `system`).
    pub actor: String,
}

/// The `kind` and `value` columns of a revocation's target.
pub(crate) fn target_columns(target: &Target) -> (&'static str, &str) {
    let kind = match target {
        Target::Jti(_) => "jti",
        Target::Sid(_) => "sid",
        Target::Sub(_) => "sub",
        Target::ClientId(_) => "client_id",
        Target::Grant(_) => "grant",
    };
    (kind, target.value())
}

/// Usernames are unique regardless of letter case.
fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// `%`, `_` and `\` taken literally in a LIKE pattern (escape character `\`).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn like(pattern: &str) -> LikeExpr {
    LikeExpr::new(pattern).escape('\\')
}

fn user_from(m: users::Model) -> User {
    User {
        sub: m.sub,
        username: m.username,
        email: m.email,
        display_name: m.display_name,
        password_hash: m.password_hash,
        disabled: m.disabled,
        created_at: Timestamp::from_millis(m.created_at),
        updated_at: Timestamp::from_millis(m.updated_at),
    }
}

fn json_list(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn client_model(c: &Client) -> clients::ActiveModel {
    let secs = |d: Option<Duration>| d.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let grants: Vec<String> = c
        .grant_types
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    clients::ActiveModel {
        client_id: Set(c.client_id.clone()),
        name: Set(c.name.clone()),
        public: Set(c.public),
        secret_hash: Set(c.secret_hash.clone()),
        redirect_uris: Set(json_list(&c.redirect_uris)),
        post_logout_redirect_uris: Set(json_list(&c.post_logout_redirect_uris)),
        backchannel_logout_uri: Set(c.backchannel_logout_uri.clone()),
        grant_types: Set(json_list(&grants)),
        scopes: Set(json_list(&c.scopes)),
        first_party: Set(c.first_party),
        access_token_lifetime_secs: Set(secs(c.access_token_lifetime)),
        id_token_lifetime_secs: Set(secs(c.id_token_lifetime)),
        refresh_token_lifetime_secs: Set(secs(c.refresh_token_lifetime)),
        created_at: Set(c.created_at.as_millis()),
        updated_at: Set(c.updated_at.as_millis()),
    }
}

fn client_from(m: clients::Model) -> Result<Client, DbError> {
    let corrupt = |detail: String| DbError::Corrupt {
        what: "client",
        detail,
    };
    let list = |text: &str| -> Result<Vec<String>, DbError> {
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))
    };
    let secs = |v: Option<i64>| -> Result<Option<Duration>, DbError> {
        v.map(|s| {
            u64::try_from(s)
                .map(Duration::from_secs)
                .map_err(|_| corrupt("negative lifetime".to_owned()))
        })
        .transpose()
    };
    let grant_types = list(&m.grant_types)?
        .iter()
        .map(|g| g.parse::<GrantType>().map_err(corrupt))
        .collect::<Result<_, _>>()?;
    Ok(Client {
        redirect_uris: list(&m.redirect_uris)?,
        post_logout_redirect_uris: list(&m.post_logout_redirect_uris)?,
        scopes: list(&m.scopes)?,
        grant_types,
        access_token_lifetime: secs(m.access_token_lifetime_secs)?,
        id_token_lifetime: secs(m.id_token_lifetime_secs)?,
        refresh_token_lifetime: secs(m.refresh_token_lifetime_secs)?,
        client_id: m.client_id,
        name: m.name,
        public: m.public,
        secret_hash: m.secret_hash,
        backchannel_logout_uri: m.backchannel_logout_uri,
        first_party: m.first_party,
        created_at: Timestamp::from_millis(m.created_at),
        updated_at: Timestamp::from_millis(m.updated_at),
    })
}
