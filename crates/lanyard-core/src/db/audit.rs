//! The audit trail (`audit_events`): written in batches by `audit.rs`'s writer, read by the
//! admin API, pruned by `lanyard audit prune`.

use lanyard_store::Timestamp;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::entities::audit_events;
use super::{Db, DbError, unavailable};
use crate::model::{AuditEvent, AuditFilter};

/// The `audit_events` table ([`Db::audit`]).
#[derive(Debug, Clone, Copy)]
pub struct AuditLog<'a>(pub(super) &'a Db);

impl AuditLog<'_> {
    /// Stores audit events, all or none.
    pub async fn insert(&self, events: &[AuditEvent]) -> Result<(), DbError> {
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
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deletes the audit events from before `before`, `batch` at a time (each batch its own
    /// short statement, so a busy table is never locked for long); returns how many.
    pub async fn prune(&self, before: Timestamp, batch: u64) -> Result<u64, DbError> {
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
                .one(&self.0.conn)
                .await
                .map_err(unavailable)?;
            let mut delete = audit_events::Entity::delete_many().filter(old);
            if let Some(last) = last {
                delete = delete.filter(audit_events::Column::Id.lte(last));
            }
            deleted += delete
                .exec(&self.0.conn)
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
    pub async fn by_action(&self, action: &str) -> Result<Vec<AuditEvent>, DbError> {
        let filter = AuditFilter {
            action: Some(action.to_owned()),
            ..AuditFilter::default()
        };
        let mut rows = self.query(&filter, None, None).await?;
        rows.reverse();
        Ok(rows.into_iter().map(|(_, e)| e).collect())
    }

    /// Up to `limit` (all when `None`) audit events matching `filter`, newest first, with
    /// their ids; only those with an id below `before` when given (the cursor of the previous
    /// page).
    pub async fn query(
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
            None => query.all(&self.0.conn).await,
            Some(limit) => query.paginate(&self.0.conn, limit).fetch_page(0).await,
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
}
