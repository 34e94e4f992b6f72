//! Second factors: `factors` rows (one-time-code seeds sealed under the master key, passkeys'
//! public credentials) and `recovery_codes` (keyed hashes, deleted as they are used). Each
//! use is one conditional statement, so two nodes given the same code at once let one in.

use lanyard_store::Timestamp;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, TransactionTrait,
};

use super::entities::{factors, recovery_codes};
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{Factor, FactorKind};

/// The `factors` and `recovery_codes` tables ([`Db::factors`]).
#[derive(Debug, Clone, Copy)]
pub struct Factors<'a>(pub(super) &'a Db);

/// The associated data a factor's secret is sealed with.
pub(super) fn factor_name(id: &str) -> String {
    format!("factor:{id}")
}

impl Factors<'_> {
    /// Every factor of user `sub`, oldest first.
    pub async fn of_user(&self, sub: &str) -> Result<Vec<Factor>, DbError> {
        let rows = factors::Entity::find()
            .filter(factors::Column::Sub.eq(sub))
            .order_by_asc(factors::Column::CreatedAt)
            .order_by_asc(factors::Column::Id)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(factor_from).collect()
    }

    /// Stores a one-time-code generator for `sub` with its seed, sealed.
    pub async fn add_totp(
        &self,
        id: &str,
        sub: &str,
        name: &str,
        seed: &[u8],
        now: Timestamp,
    ) -> Result<Factor, DbError> {
        factors::ActiveModel {
            id: Set(id.to_owned()),
            sub: Set(sub.to_owned()),
            kind: Set(FactorKind::Totp.as_str().to_owned()),
            name: Set(name.to_owned()),
            secret: Set(Some(self.0.seal(&factor_name(id), seed))),
            data: Set(None),
            created_at: Set(now.as_millis()),
            last_used_at: Set(None),
            last_step: Set(None),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable("a factor with this id"))?;
        Ok(Factor {
            id: id.to_owned(),
            kind: FactorKind::Totp,
            name: name.to_owned(),
            created_at: now,
            last_used_at: None,
        })
    }

    /// The one-time-code generators of `sub`: each factor's id and seed.
    pub async fn totp_seeds(&self, sub: &str) -> Result<Vec<(String, Vec<u8>)>, DbError> {
        let rows = factors::Entity::find()
            .filter(factors::Column::Sub.eq(sub))
            .filter(factors::Column::Kind.eq(FactorKind::Totp.as_str()))
            .order_by_asc(factors::Column::CreatedAt)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|row| {
                let stored = row.secret.ok_or_else(|| DbError::Corrupt {
                    what: "factor",
                    detail: format!("one-time-code factor {} has no seed", row.id),
                })?;
                let seed = self.0.open(&factor_name(&row.id), stored)?;
                Ok((row.id, seed))
            })
            .collect()
    }

    /// Accepts time step `step` of factor `id`, once: true if no code of this step or a
    /// later one was accepted before (RFC 6238 §5.2). One conditional update.
    pub async fn use_step(&self, id: &str, step: i64, now: Timestamp) -> Result<bool, DbError> {
        let result = factors::Entity::update_many()
            .col_expr(factors::Column::LastStep, Expr::value(step))
            .col_expr(factors::Column::LastUsedAt, Expr::value(now.as_millis()))
            .filter(factors::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(factors::Column::LastStep.is_null())
                    .add(factors::Column::LastStep.lt(step)),
            )
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected == 1)
    }

    /// Stores a passkey for `sub`: `id` is its credential id (base64url), `data` the
    /// credential as the passkey library keeps it (public: no secret). `Conflict` if that
    /// credential is registered already.
    pub async fn add_passkey(
        &self,
        id: &str,
        sub: &str,
        name: &str,
        data: &str,
        now: Timestamp,
    ) -> Result<Factor, DbError> {
        factors::ActiveModel {
            id: Set(id.to_owned()),
            sub: Set(sub.to_owned()),
            kind: Set(FactorKind::Passkey.as_str().to_owned()),
            name: Set(name.to_owned()),
            secret: Set(None),
            data: Set(Some(data.to_owned())),
            created_at: Set(now.as_millis()),
            last_used_at: Set(None),
            last_step: Set(None),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable("this passkey"))?;
        Ok(Factor {
            id: id.to_owned(),
            kind: FactorKind::Passkey,
            name: name.to_owned(),
            created_at: now,
            last_used_at: None,
        })
    }

    /// The passkey whose credential id is `id`: its owner and data.
    pub async fn passkey(&self, id: &str) -> Result<Option<(String, String)>, DbError> {
        let row = factors::Entity::find_by_id(id.to_owned())
            .filter(factors::Column::Kind.eq(FactorKind::Passkey.as_str()))
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(row.and_then(|r| r.data.map(|d| (r.sub, d))))
    }

    /// The passkeys of `sub`: each credential id and data.
    pub async fn passkeys_of(&self, sub: &str) -> Result<Vec<(String, String)>, DbError> {
        let rows = factors::Entity::find()
            .filter(factors::Column::Sub.eq(sub))
            .filter(factors::Column::Kind.eq(FactorKind::Passkey.as_str()))
            .order_by_asc(factors::Column::CreatedAt)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.data.map(|d| (r.id, d)))
            .collect())
    }

    /// Records a use of passkey `id`: its data (the new signature counter and backup state)
    /// and when.
    pub async fn used_passkey(&self, id: &str, data: &str, now: Timestamp) -> Result<(), DbError> {
        factors::Entity::update_many()
            .col_expr(factors::Column::Data, Expr::value(data))
            .col_expr(factors::Column::LastUsedAt, Expr::value(now.as_millis()))
            .filter(factors::Column::Id.eq(id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Removes factor `id` of `sub`. Returns whether there was one.
    pub async fn remove(&self, sub: &str, id: &str) -> Result<bool, DbError> {
        let result = factors::Entity::delete_many()
            .filter(factors::Column::Sub.eq(sub))
            .filter(factors::Column::Id.eq(id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// Removes every factor and recovery code of `sub`, in one transaction. Returns how many
    /// factors there were.
    pub async fn remove_all(&self, sub: &str) -> Result<u64, DbError> {
        let txn = self.0.conn.begin().await.map_err(unavailable)?;
        let removed = factors::Entity::delete_many()
            .filter(factors::Column::Sub.eq(sub))
            .exec(&txn)
            .await
            .map_err(unavailable)?
            .rows_affected;
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::Sub.eq(sub))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        txn.commit().await.map_err(unavailable)?;
        Ok(removed)
    }

    /// Replaces the recovery codes of `sub` with `hashes`, in one transaction.
    pub async fn replace_recovery_codes(
        &self,
        sub: &str,
        hashes: &[String],
        now: Timestamp,
    ) -> Result<(), DbError> {
        let txn = self.0.conn.begin().await.map_err(unavailable)?;
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::Sub.eq(sub))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        for hash in hashes {
            recovery_codes::ActiveModel {
                sub: Set(sub.to_owned()),
                code_hash: Set(hash.clone()),
                created_at: Set(now.as_millis()),
            }
            .insert(&txn)
            .await
            .map_err(conflict_or_unavailable("a recovery code"))?;
        }
        txn.commit().await.map_err(unavailable)
    }

    /// Uses the recovery code of `sub` whose hash is `hash`: true if it was there (it is gone
    /// now). One delete: a code works once, however many nodes are given it at once.
    pub async fn use_recovery_code(&self, sub: &str, hash: &str) -> Result<bool, DbError> {
        let result = recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::Sub.eq(sub))
            .filter(recovery_codes::Column::CodeHash.eq(hash))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected == 1)
    }

    /// How many unused recovery codes `sub` has.
    pub async fn recovery_codes_left(&self, sub: &str) -> Result<u64, DbError> {
        recovery_codes::Entity::find()
            .filter(recovery_codes::Column::Sub.eq(sub))
            .count(&self.0.conn)
            .await
            .map_err(unavailable)
    }
}

fn factor_from(row: factors::Model) -> Result<Factor, DbError> {
    let kind = FactorKind::parse(&row.kind).ok_or_else(|| DbError::Corrupt {
        what: "factor",
        detail: format!("unknown kind {:?}", row.kind),
    })?;
    Ok(Factor {
        id: row.id,
        kind,
        name: row.name,
        created_at: Timestamp::from_millis(row.created_at),
        last_used_at: row.last_used_at.map(Timestamp::from_millis),
    })
}
