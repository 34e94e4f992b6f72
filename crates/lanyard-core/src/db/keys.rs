//! Keys: the signing keys (`signing_keys`: private keys as PKCS#8 DER, their state and
//! when they stop being published) and the server's own secrets (`server_keys`: the
//! client-secret pepper and the cookie MAC key). Both are sealed at rest under the master key
//! (`crypto::MasterKey`), each with its row's name as associated data; [`Keys::reseal`]
//! seals what an older Lanyard stored in the clear and moves everything to a new master key
//! (the one-time-code seeds of `factors.rs`, the bodies of mails waiting in the outbox and
//! the `Authorization` values of Shared Signals push endpoints included).

use lanyard_store::Timestamp;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

use super::entities::{factors, server_keys, signing_keys, ssf_streams};
use super::factors::factor_name;
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::crypto::MasterKey;
use crate::model::StoredKey;

/// The `signing_keys` and `server_keys` tables ([`Db::keys`]).
#[derive(Debug, Clone, Copy)]
pub struct Keys<'a>(pub(super) &'a Db);

impl Keys<'_> {
    /// Every signing key that is not yet past its `usable_until`, newest first.
    pub async fn published(&self, now: Timestamp) -> Result<Vec<StoredKey>, DbError> {
        let rows = signing_keys::Entity::find()
            .filter(
                Condition::any()
                    .add(signing_keys::Column::UsableUntil.is_null())
                    .add(signing_keys::Column::UsableUntil.gt(now.as_millis())),
            )
            .order_by_desc(signing_keys::Column::CreatedAt)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|m| {
                Ok(StoredKey {
                    private_key: self.0.open(&signing_name(&m.kid), m.private_key)?,
                    kid: m.kid,
                    alg: m.alg,
                    state: m.state,
                    created_at: Timestamp::from_millis(m.created_at),
                    usable_until: m.usable_until.map(Timestamp::from_millis),
                })
            })
            .collect()
    }

    /// Seals under the current master key every secret not sealed under it: those stored in
    /// the clear, and (with `previous`, the master key they were sealed under) those of a
    /// master key being replaced. One transaction: all or nothing. Returns how many rows
    /// changed.
    pub async fn reseal(&self, previous: Option<&MasterKey>) -> Result<usize, DbError> {
        let Some(master) = &self.0.master else {
            return Ok(0);
        };
        let unseal = |name: &str, stored: &[u8]| -> Result<Option<Vec<u8>>, DbError> {
            if master.sealed_here(stored) {
                return Ok(None);
            }
            if !MasterKey::is_sealed(stored) {
                return Ok(Some(stored.to_vec()));
            }
            let previous = previous.ok_or_else(|| DbError::Corrupt {
                what: "sealed secret",
                detail: format!("{name} is sealed under another master key"),
            })?;
            previous
                .open(name, stored)
                .map(Some)
                .map_err(|detail| DbError::Corrupt {
                    what: "sealed secret",
                    detail,
                })
        };
        let txn = self.0.begin_write().await?;
        let mut changed = 0;
        for row in signing_keys::Entity::find()
            .all(&txn)
            .await
            .map_err(unavailable)?
        {
            let name = signing_name(&row.kid);
            if let Some(plain) = unseal(&name, &row.private_key)? {
                signing_keys::Entity::update_many()
                    .col_expr(
                        signing_keys::Column::PrivateKey,
                        Expr::value(master.seal(&name, &plain)),
                    )
                    .filter(signing_keys::Column::Kid.eq(row.kid.as_str()))
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
                changed += 1;
            }
        }
        for row in server_keys::Entity::find()
            .all(&txn)
            .await
            .map_err(unavailable)?
        {
            let name = server_name(&row.name);
            if let Some(plain) = unseal(&name, &row.secret)? {
                server_keys::Entity::update_many()
                    .col_expr(
                        server_keys::Column::Secret,
                        Expr::value(master.seal(&name, &plain)),
                    )
                    .filter(server_keys::Column::Name.eq(row.name.as_str()))
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
                changed += 1;
            }
        }
        for row in factors::Entity::find()
            .filter(factors::Column::Secret.is_not_null())
            .all(&txn)
            .await
            .map_err(unavailable)?
        {
            let name = factor_name(&row.id);
            let Some(stored) = &row.secret else { continue };
            if let Some(plain) = unseal(&name, stored)? {
                factors::Entity::update_many()
                    .col_expr(
                        factors::Column::Secret,
                        Expr::value(master.seal(&name, &plain)),
                    )
                    .filter(factors::Column::Id.eq(row.id.as_str()))
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
                changed += 1;
            }
        }
        let outbox = self.0.outbox();
        for (id, stored) in outbox.bodies(&txn).await? {
            let name = super::mail::mail_name(&id);
            if let Some(plain) = unseal(&name, &stored)? {
                outbox
                    .set_body(&txn, &id, master.seal(&name, &plain))
                    .await?;
                changed += 1;
            }
        }
        for row in ssf_streams::Entity::find()
            .filter(ssf_streams::Column::AuthorizationHeader.is_not_null())
            .all(&txn)
            .await
            .map_err(unavailable)?
        {
            let name = super::signals::header_name(&row.stream_id);
            let Some(stored) = &row.authorization_header else {
                continue;
            };
            if let Some(plain) = unseal(&name, stored)? {
                ssf_streams::Entity::update_many()
                    .col_expr(
                        ssf_streams::Column::AuthorizationHeader,
                        Expr::value(master.seal(&name, &plain)),
                    )
                    .filter(ssf_streams::Column::StreamId.eq(row.stream_id.as_str()))
                    .exec(&txn)
                    .await
                    .map_err(unavailable)?;
                changed += 1;
            }
        }
        txn.commit().await.map_err(unavailable)?;
        Ok(changed)
    }

    /// Stores a signing key.
    pub async fn insert(&self, key: &StoredKey) -> Result<(), DbError> {
        self.signing_key_model(key)
            .insert(&self.0.conn)
            .await
            .map_err(conflict_or_unavailable("a signing key with this kid"))?;
        Ok(())
    }

    /// Stores `key` unless a key of its algorithm in its state (`active`) is stored already;
    /// returns whether it did. Nodes started at once on an empty database each make a first key: this lets
    /// one in, and the others sign with it. On PostgreSQL the check and the insert hold an
    /// advisory lock for their transaction; SQLite lets one writer in at a time (and serves
    /// one node).
    pub async fn insert_first(&self, key: &StoredKey) -> Result<bool, DbError> {
        let txn = self.0.begin_write().await?;
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
        self.signing_key_model(key)
            .insert(&txn)
            .await
            .map_err(conflict_or_unavailable("a signing key with this kid"))?;
        txn.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// Moves a signing key to `state` (`active`, `retired`), published until `usable_until`
    /// (`None`: for as long as it is not retired). False if there is no such key.
    pub async fn set_state(
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
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes a signing key (emergency removal); false if there was none.
    pub async fn delete(&self, kid: &str) -> Result<bool, DbError> {
        let result = signing_keys::Entity::delete_by_id(kid.to_owned())
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// The server key named `name`, created from `fresh` if there is none yet. Two nodes
    /// starting at once agree on one key: the first insert wins, both read it back.
    pub async fn server_secret(
        &self,
        name: &str,
        fresh: Vec<u8>,
        now: Timestamp,
    ) -> Result<Vec<u8>, DbError> {
        let sealed_name = server_name(name);
        let insert = server_keys::Entity::insert(server_keys::ActiveModel {
            name: Set(name.to_owned()),
            secret: Set(self.0.seal(&sealed_name, &fresh)),
            created_at: Set(now.as_millis()),
        })
        .on_conflict_do_nothing()
        .exec(&self.0.conn)
        .await;
        insert.map_err(unavailable)?;
        let row = server_keys::Entity::find_by_id(name.to_owned())
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        let stored = row.map(|r| r.secret).ok_or_else(|| DbError::Corrupt {
            what: "server key",
            detail: format!("{name} vanished after insert"),
        })?;
        self.0.open(&sealed_name, stored)
    }

    /// Every secret as stored (sealed or not), by row name: for tests that look at rest.
    #[cfg(feature = "testing")]
    pub async fn stored_raw(&self) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let mut out: Vec<(String, Vec<u8>)> = signing_keys::Entity::find()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|r| (signing_name(&r.kid), r.private_key))
            .collect();
        out.extend(
            server_keys::Entity::find()
                .all(&self.0.conn)
                .await
                .map_err(unavailable)?
                .into_iter()
                .map(|r| (server_name(&r.name), r.secret)),
        );
        Ok(out)
    }

    fn signing_key_model(&self, key: &StoredKey) -> signing_keys::ActiveModel {
        signing_keys::ActiveModel {
            kid: Set(key.kid.clone()),
            alg: Set(key.alg.clone()),
            private_key: Set(self.0.seal(&signing_name(&key.kid), &key.private_key)),
            state: Set(key.state.clone()),
            created_at: Set(key.created_at.as_millis()),
            usable_until: Set(key.usable_until.map(Timestamp::as_millis)),
        }
    }
}

/// The associated data of a signing key's seal.
fn signing_name(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The associated data of a server secret's seal.
fn server_name(name: &str) -> String {
    format!("server_key:{name}")
}

/// The advisory lock key for choosing the first signing key ("LYRD" and 1).
const FIRST_KEY_LOCK: i64 = 0x4c59_5244_0000_0001;
