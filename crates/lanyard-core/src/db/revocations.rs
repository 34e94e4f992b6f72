//! The durable revocation record (`revocations`): every revocation the server made, kept
//! until no token it covers can still be valid, so the token store's lists can be rebuilt.

use lanyard_store::{Revocation, Target, Timestamp};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::entities::revocations;
use super::{Db, DbError, unavailable};
use crate::model::RecordedRevocation;

/// The `revocations` table ([`Db::revocations`]).
#[derive(Debug, Clone, Copy)]
pub struct Revocations<'a>(pub(super) &'a Db);

impl Revocations<'_> {
    /// Deletes the records whose `until` has passed: no token they cover can be valid.
    pub async fn prune(&self, now: Timestamp) -> Result<u64, DbError> {
        let result = revocations::Entity::delete_many()
            .filter(revocations::Column::Until.lte(now.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected)
    }

    /// Records a revocation durably, by `actor`, at `now`. Called before the token store
    /// hears of it: what is acknowledged is in here. A revocation an earlier record already
    /// covers (the same target, as late and as long) adds no row; returns whether it added.
    pub async fn record(
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
            .one(&self.0.conn)
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
        .insert(&self.0.conn)
        .await
        .map_err(unavailable)?;
        Ok(true)
    }

    /// Every recorded revocation still in force at `now` (its `until` after `now`), oldest
    /// first.
    pub async fn live(&self, now: Timestamp) -> Result<Vec<Revocation>, DbError> {
        Ok(self
            .in_force(now)
            .await?
            .into_iter()
            .map(|r| r.revocation)
            .collect())
    }

    /// [`Revocations::live`] with who recorded each and when.
    pub async fn in_force(&self, now: Timestamp) -> Result<Vec<RecordedRevocation>, DbError> {
        let rows = revocations::Entity::find()
            .filter(revocations::Column::Until.gt(now.as_millis()))
            .order_by_asc(revocations::Column::Id)
            .all(&self.0.conn)
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
                    "kid" => Target::Kid(r.value),
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
}

/// The `kind` and `value` columns of a revocation's target.
pub fn target_columns(target: &Target) -> (&'static str, &str) {
    let kind = match target {
        Target::Jti(_) => "jti",
        Target::Sid(_) => "sid",
        Target::Sub(_) => "sub",
        Target::ClientId(_) => "client_id",
        Target::Grant(_) => "grant",
        Target::Kid(_) => "kid",
    };
    (kind, target.value())
}
