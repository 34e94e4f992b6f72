//! Signals in SQL: Shared Signals streams (`ssf_streams`; a push endpoint's `Authorization`
//! value sealed under the master key with the stream id as associated data), the subjects
//! receivers added or removed (`ssf_subjects`), and the event outbox (`event_outbox`, one row
//! per event per channel; `event_channels`, where each channel's deliveries stand).
//!
//! Several nodes share the outbox: a node takes a channel with one conditional `UPDATE`
//! (`claimed_until`) and delivers its events in order, so two never deliver one channel at
//! once; one that dies holding it lets it go when the claim runs out.

use std::collections::HashMap;
use std::time::Duration;

use lanyard_store::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::entities::{event_channels, event_outbox, ssf_streams, ssf_subjects};
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{
    Channel, ChannelKind, ChannelState, NewEvent, OutboxEvent, Stream, StreamConfig, StreamStatus,
    SubjectRule,
};

/// The `ssf_streams` and `ssf_subjects` tables ([`Db::streams`]).
#[derive(Debug, Clone, Copy)]
pub struct Streams<'a>(pub(super) &'a Db);

/// The `event_outbox` and `event_channels` tables ([`Db::events`]).
#[derive(Debug, Clone, Copy)]
pub struct Events<'a>(pub(super) &'a Db);

/// The name a stream's authorization header is sealed under (its associated data).
pub(super) fn header_name(stream_id: &str) -> String {
    format!("ssf_stream:{stream_id}")
}

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> DbError {
    move |e| DbError::Corrupt {
        what,
        detail: e.to_string(),
    }
}

fn kind_of(stream: &Stream) -> ChannelKind {
    match stream.config.method {
        crate::model::DeliveryMethod::Push => ChannelKind::SsfPush,
        crate::model::DeliveryMethod::Poll => ChannelKind::SsfPoll,
    }
}

impl Streams<'_> {
    fn row(&self, stream: &Stream) -> Result<ssf_streams::ActiveModel, DbError> {
        let config = serde_json::to_string(&stream.config).map_err(corrupt("stream"))?;
        Ok(ssf_streams::ActiveModel {
            stream_id: Set(stream.stream_id.clone()),
            client_id: Set(stream.client_id.clone()),
            config: Set(config),
            authorization_header: Set(stream
                .authorization_header
                .as_ref()
                .map(|h| self.0.seal(&header_name(&stream.stream_id), h.as_bytes()))),
            status: Set(stream.status.as_str().to_owned()),
            reason: Set(stream.reason.clone()),
            created_at: Set(stream.created_at.as_millis()),
            updated_at: Set(stream.updated_at.as_millis()),
            verified_at: Set(stream.verified_at.map(Timestamp::as_millis)),
        })
    }

    fn stream_from(&self, row: ssf_streams::Model) -> Result<Stream, DbError> {
        let config: StreamConfig = serde_json::from_str(&row.config).map_err(corrupt("stream"))?;
        let authorization_header = match row.authorization_header {
            Some(sealed) => {
                let plain = self.0.open(&header_name(&row.stream_id), sealed)?;
                Some(String::from_utf8(plain).map_err(|e| DbError::Corrupt {
                    what: "stream",
                    detail: e.to_string(),
                })?)
            }
            None => None,
        };
        Ok(Stream {
            status: StreamStatus::parse(&row.status).ok_or_else(|| DbError::Corrupt {
                what: "stream",
                detail: format!("unknown status {:?}", row.status),
            })?,
            stream_id: row.stream_id,
            client_id: row.client_id,
            config,
            authorization_header,
            reason: row.reason,
            created_at: Timestamp::from_millis(row.created_at),
            updated_at: Timestamp::from_millis(row.updated_at),
            verified_at: row.verified_at.map(Timestamp::from_millis),
        })
    }

    /// Stores a new stream and its channel.
    pub async fn create(&self, stream: &Stream) -> Result<(), DbError> {
        let txn = self.0.conn.begin().await.map_err(unavailable)?;
        self.row(stream)?
            .insert(&txn)
            .await
            .map_err(conflict_or_unavailable("a stream with this id"))?;
        event_channels::ActiveModel {
            channel: Set(Channel::Stream(stream.stream_id.clone()).key()),
            kind: Set(kind_of(stream).as_str().to_owned()),
            active: Set(stream.status == StreamStatus::Enabled),
            next_attempt_at: Set(None),
            attempts: Set(0),
            claimed_until: Set(None),
            last_error: Set(None),
            last_delivered_at: Set(None),
        }
        .insert(&txn)
        .await
        .map_err(conflict_or_unavailable("a channel with this name"))?;
        txn.commit().await.map_err(unavailable)
    }

    /// Stores what changed in `stream` (configuration, status), and its channel's kind and
    /// whether it delivers. A disabled stream holds no events: its pending ones are dropped.
    pub async fn save(&self, stream: &Stream, now: Timestamp) -> Result<bool, DbError> {
        let txn = self.0.conn.begin().await.map_err(unavailable)?;
        let updated = ssf_streams::Entity::update_many()
            .set(self.row(stream)?)
            .filter(ssf_streams::Column::StreamId.eq(stream.stream_id.as_str()))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        let channel = Channel::Stream(stream.stream_id.clone()).key();
        event_channels::Entity::update_many()
            .col_expr(
                event_channels::Column::Kind,
                Expr::value(kind_of(stream).as_str()),
            )
            .col_expr(
                event_channels::Column::Active,
                Expr::value(stream.status == StreamStatus::Enabled),
            )
            .filter(event_channels::Column::Channel.eq(channel.as_str()))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        if stream.status == StreamStatus::Disabled {
            finish_pending(&txn, &channel, now, "dropped", "the stream was disabled").await?;
        }
        txn.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// The stream `stream_id`.
    pub async fn get(&self, stream_id: &str) -> Result<Option<Stream>, DbError> {
        ssf_streams::Entity::find_by_id(stream_id.to_owned())
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?
            .map(|row| self.stream_from(row))
            .transpose()
    }

    /// The streams of the receiver `client_id`, oldest first.
    pub async fn of_client(&self, client_id: &str) -> Result<Vec<Stream>, DbError> {
        self.find(Some(ssf_streams::Column::ClientId.eq(client_id)))
            .await
    }

    /// Every stream, oldest first.
    pub async fn all(&self) -> Result<Vec<Stream>, DbError> {
        self.find(None).await
    }

    /// The streams that take events now (enabled or paused), oldest first.
    pub async fn live(&self) -> Result<Vec<Stream>, DbError> {
        self.find(Some(
            ssf_streams::Column::Status.ne(StreamStatus::Disabled.as_str()),
        ))
        .await
    }

    async fn find(
        &self,
        filter: Option<sea_orm::sea_query::SimpleExpr>,
    ) -> Result<Vec<Stream>, DbError> {
        let mut query = ssf_streams::Entity::find();
        if let Some(filter) = filter {
            query = query.filter(filter);
        }
        query
            .order_by_asc(ssf_streams::Column::CreatedAt)
            .order_by_asc(ssf_streams::Column::StreamId)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| self.stream_from(row))
            .collect()
    }

    /// Deletes the stream, its subjects, its channel and its events. Returns whether there
    /// was one.
    pub async fn delete(&self, stream_id: &str) -> Result<bool, DbError> {
        let txn = self.0.conn.begin().await.map_err(unavailable)?;
        let channel = Channel::Stream(stream_id.to_owned()).key();
        event_outbox::Entity::delete_many()
            .filter(event_outbox::Column::Channel.eq(channel.as_str()))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        event_channels::Entity::delete_by_id(channel)
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        ssf_subjects::Entity::delete_many()
            .filter(ssf_subjects::Column::StreamId.eq(stream_id))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        let deleted = ssf_streams::Entity::delete_by_id(stream_id.to_owned())
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        txn.commit().await.map_err(unavailable)?;
        Ok(deleted.rows_affected > 0)
    }

    /// Records a verification asked for at `now`, unless one was asked for after
    /// `not_before` (returns false then).
    pub async fn mark_verified(
        &self,
        stream_id: &str,
        now: Timestamp,
        not_before: Timestamp,
    ) -> Result<bool, DbError> {
        let updated = ssf_streams::Entity::update_many()
            .col_expr(
                ssf_streams::Column::VerifiedAt,
                Expr::value(now.as_millis()),
            )
            .filter(ssf_streams::Column::StreamId.eq(stream_id))
            .filter(
                Condition::any()
                    .add(ssf_streams::Column::VerifiedAt.is_null())
                    .add(ssf_streams::Column::VerifiedAt.lte(not_before.as_millis())),
            )
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(updated.rows_affected > 0)
    }

    /// Records the receiver's word about a subject (added or removed), replacing an earlier
    /// one about the same subject.
    pub async fn set_subject(&self, rule: &SubjectRule, now: Timestamp) -> Result<(), DbError> {
        let row = ssf_subjects::ActiveModel {
            stream_id: Set(rule.stream_id.clone()),
            subject_key: Set(rule.key.clone()),
            subject: Set(rule.subject.to_string()),
            included: Set(rule.included),
            added_at: Set(now.as_millis()),
        };
        ssf_subjects::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    ssf_subjects::Column::StreamId,
                    ssf_subjects::Column::SubjectKey,
                ])
                .update_columns([
                    ssf_subjects::Column::Subject,
                    ssf_subjects::Column::Included,
                    ssf_subjects::Column::AddedAt,
                ])
                .to_owned(),
            )
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// What the receivers of `stream_ids` said about the subjects `keys`.
    pub async fn subject_rules(
        &self,
        stream_ids: &[String],
        keys: &[String],
    ) -> Result<Vec<SubjectRule>, DbError> {
        if stream_ids.is_empty() || keys.is_empty() {
            return Ok(Vec::new());
        }
        ssf_subjects::Entity::find()
            .filter(ssf_subjects::Column::StreamId.is_in(stream_ids.iter().map(String::as_str)))
            .filter(ssf_subjects::Column::SubjectKey.is_in(keys.iter().map(String::as_str)))
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                Ok(SubjectRule {
                    subject: serde_json::from_str(&row.subject).map_err(corrupt("subject"))?,
                    stream_id: row.stream_id,
                    key: row.subject_key,
                    included: row.included,
                })
            })
            .collect()
    }
}

/// Marks every pending event of `channel` done with `outcome`.
async fn finish_pending(
    conn: &impl sea_orm::ConnectionTrait,
    channel: &str,
    now: Timestamp,
    outcome: &str,
    why: &str,
) -> Result<u64, DbError> {
    let done = event_outbox::Entity::update_many()
        .col_expr(event_outbox::Column::DoneAt, Expr::value(now.as_millis()))
        .col_expr(event_outbox::Column::Outcome, Expr::value(outcome))
        .col_expr(event_outbox::Column::LastError, Expr::value(why))
        .filter(event_outbox::Column::Channel.eq(channel))
        .filter(event_outbox::Column::DoneAt.is_null())
        .exec(conn)
        .await
        .map_err(unavailable)?;
    Ok(done.rows_affected)
}

/// A node's hold on a channel ([`Events::claim`]): the `claimed_until` it wrote, which no
/// other holder's can equal, so only the node that holds it can renew, release or finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold(i64);

impl Hold {
    /// A new hold from `now` for `hold`, never equal to `other` (the one it replaces). The
    /// random milliseconds make two nodes' holds differ even when taken in the same one.
    fn new(now: Timestamp, hold: Duration, other: Option<Hold>) -> Hold {
        use rand::RngExt;
        let jitter: i64 = rand::rng().random_range(0..1000);
        let until = now.plus(hold).as_millis() + jitter;
        Hold(if Some(Hold(until)) == other {
            until + 1
        } else {
            until
        })
    }

    /// Until when it holds.
    pub fn until(self) -> Timestamp {
        Timestamp::from_millis(self.0)
    }
}

impl Events<'_> {
    /// Queues `events`, in this order, in one transaction. An app's back-channel channel is
    /// made at its first logout; an event for a stream that no longer exists (deleted
    /// meanwhile) is not queued.
    ///
    /// The channels' rows are locked first, in one order: two transactions queueing for one
    /// channel then commit in the order their events were numbered, so a reader never sees a
    /// later event of a channel before an earlier one commits.
    pub async fn enqueue(&self, events: &[NewEvent], now: Timestamp) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut keys: Vec<String> = events.iter().map(|e| e.channel.key()).collect();
        keys.sort();
        keys.dedup();
        let txn = self.0.begin_write().await?;
        for key in &keys {
            if matches!(Channel::parse(key), Some(Channel::Backchannel(_))) {
                event_channels::Entity::insert(event_channels::ActiveModel {
                    channel: Set(key.clone()),
                    kind: Set(ChannelKind::Backchannel.as_str().to_owned()),
                    active: Set(true),
                    next_attempt_at: Set(None),
                    attempts: Set(0),
                    claimed_until: Set(None),
                    last_error: Set(None),
                    last_delivered_at: Set(None),
                })
                .on_conflict_do_nothing()
                .exec_without_returning(&txn)
                .await
                .map_err(unavailable)?;
            }
        }
        // `FOR UPDATE` after `ORDER BY`: locked in key order (no two transactions wait on
        // each other); SQLite has no row locks, but one writer at a time does the same.
        let existing: std::collections::HashSet<String> = event_channels::Entity::find()
            .select_only()
            .column(event_channels::Column::Channel)
            .filter(event_channels::Column::Channel.is_in(keys))
            .order_by_asc(event_channels::Column::Channel)
            .lock_exclusive()
            .into_tuple::<String>()
            .all(&txn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .collect();
        let rows: Vec<_> = events
            .iter()
            .filter(|event| existing.contains(&event.channel.key()))
            .map(|event| event_outbox::ActiveModel {
                channel: Set(event.channel.key()),
                jti: Set(event.jti.clone()),
                payload: Set(event.payload.to_string()),
                created_at: Set(now.as_millis()),
                attempts: Set(0),
                done_at: Set(None),
                outcome: Set(None),
                last_error: Set(None),
                ..Default::default()
            })
            .collect();
        if !rows.is_empty() {
            event_outbox::Entity::insert_many(rows)
                .exec(&txn)
                .await
                .map_err(conflict_or_unavailable("an event with this jti"))?;
        }
        txn.commit().await.map_err(unavailable)
    }

    /// Up to `limit` pending events of `channel`, in order.
    pub async fn pending(
        &self,
        channel: &Channel,
        limit: u64,
    ) -> Result<Vec<OutboxEvent>, DbError> {
        event_outbox::Entity::find()
            .filter(event_outbox::Column::Channel.eq(channel.key()))
            .filter(event_outbox::Column::DoneAt.is_null())
            .order_by_asc(event_outbox::Column::Seq)
            .limit(limit)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|row| {
                Ok(OutboxEvent {
                    seq: row.seq,
                    payload: serde_json::from_str(&row.payload).map_err(corrupt("event"))?,
                    jti: row.jti,
                    created_at: Timestamp::from_millis(row.created_at),
                    attempts: u32::try_from(row.attempts).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Marks the pending events of `channel` named by `jtis` acknowledged. Returns how many
    /// were pending.
    pub async fn acknowledge(
        &self,
        channel: &Channel,
        jtis: &[String],
        outcome: &str,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, DbError> {
        if jtis.is_empty() {
            return Ok(0);
        }
        let done = event_outbox::Entity::update_many()
            .col_expr(event_outbox::Column::DoneAt, Expr::value(now.as_millis()))
            .col_expr(event_outbox::Column::Outcome, Expr::value(outcome))
            .col_expr(
                event_outbox::Column::LastError,
                Expr::value(error.map(str::to_owned)),
            )
            .filter(event_outbox::Column::Channel.eq(channel.key()))
            .filter(event_outbox::Column::Jti.is_in(jtis.iter().map(String::as_str)))
            .filter(event_outbox::Column::DoneAt.is_null())
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        if done.rows_affected > 0 && outcome == "delivered" {
            event_channels::Entity::update_many()
                .col_expr(
                    event_channels::Column::LastDeliveredAt,
                    Expr::value(now.as_millis()),
                )
                .filter(event_channels::Column::Channel.eq(channel.key()))
                .exec(&self.0.conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(done.rows_affected)
    }

    /// Channels that are pushed, active, due at `now`, held by no node, and have pending
    /// events: at most `limit`, in random order (no channel waits behind others that are
    /// always due).
    pub async fn due_channels(&self, now: Timestamp, limit: u64) -> Result<Vec<Channel>, DbError> {
        let pending = sea_orm::sea_query::Query::select()
            .column(event_outbox::Column::Channel)
            .from(event_outbox::Entity)
            .and_where(event_outbox::Column::DoneAt.is_null())
            .to_owned();
        let due: Vec<String> = event_channels::Entity::find()
            .select_only()
            .column(event_channels::Column::Channel)
            .filter(deliverable(now.as_millis()))
            .filter(event_channels::Column::Channel.in_subquery(pending))
            .order_by(Expr::cust("RANDOM()"), sea_orm::Order::Asc)
            .limit(limit)
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(due.iter().filter_map(|c| Channel::parse(c)).collect())
    }

    /// Takes `channel` for `hold` if it is deliverable now (pushed, active, due) and no node
    /// holds it; returns this caller's hold, or `None` when it has not got it.
    pub async fn claim(
        &self,
        channel: &Channel,
        now: Timestamp,
        hold: Duration,
    ) -> Result<Option<Hold>, DbError> {
        let mine = Hold::new(now, hold, None);
        let claimed = event_channels::Entity::update_many()
            .col_expr(event_channels::Column::ClaimedUntil, Expr::value(mine.0))
            .filter(event_channels::Column::Channel.eq(channel.key()))
            .filter(deliverable(now.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok((claimed.rows_affected > 0).then_some(mine))
    }

    /// Extends this caller's `held` hold on `channel` to `hold` from `now`, if it still has it
    /// and the channel is still pushed and active (not paused, not switched to polling);
    /// returns whether it goes on holding it.
    pub async fn renew(
        &self,
        channel: &Channel,
        held: &mut Hold,
        now: Timestamp,
        hold: Duration,
    ) -> Result<bool, DbError> {
        let next = Hold::new(now, hold, Some(*held));
        let renewed = event_channels::Entity::update_many()
            .col_expr(event_channels::Column::ClaimedUntil, Expr::value(next.0))
            .filter(event_channels::Column::Channel.eq(channel.key()))
            .filter(event_channels::Column::ClaimedUntil.eq(held.0))
            .filter(event_channels::Column::Kind.ne(ChannelKind::SsfPoll.as_str()))
            .filter(event_channels::Column::Active.eq(true))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        if renewed.rows_affected == 0 {
            return Ok(false);
        }
        *held = next;
        Ok(true)
    }

    /// Lets another node take `channel` now, if this caller still holds it.
    pub async fn release(&self, channel: &Channel, held: Hold) -> Result<(), DbError> {
        event_channels::Entity::update_many()
            .col_expr(
                event_channels::Column::ClaimedUntil,
                Expr::value(None::<i64>),
            )
            .filter(event_channels::Column::Channel.eq(channel.key()))
            .filter(event_channels::Column::ClaimedUntil.eq(held.0))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Event `seq` of `channel` reached it (`delivered`) or will never (`failed`, with
    /// `error`): the next one is due at once. Only the holder `held` records it; returns
    /// false (and records nothing) when the caller's hold ran out and it no longer holds the
    /// channel — the event stays pending, and the new holder sends it again.
    pub async fn finished(
        &self,
        channel: &Channel,
        held: Hold,
        seq: i64,
        outcome: &str,
        error: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let txn = self.0.begin_write().await?;
        // The channel first, then its event (as everywhere: no two transactions wait on
        // each other).
        let mut update = event_channels::Entity::update_many()
            .col_expr(event_channels::Column::Attempts, Expr::value(0))
            .col_expr(
                event_channels::Column::NextAttemptAt,
                Expr::value(None::<i64>),
            )
            .col_expr(
                event_channels::Column::LastError,
                Expr::value(error.map(str::to_owned)),
            );
        if outcome == "delivered" {
            update = update.col_expr(
                event_channels::Column::LastDeliveredAt,
                Expr::value(now.as_millis()),
            );
        }
        if !update_if_held(&txn, update, channel, held).await? {
            return Ok(false);
        }
        event_outbox::Entity::update_many()
            .col_expr(event_outbox::Column::DoneAt, Expr::value(now.as_millis()))
            .col_expr(event_outbox::Column::Outcome, Expr::value(outcome))
            .col_expr(
                event_outbox::Column::LastError,
                Expr::value(error.map(str::to_owned)),
            )
            .col_expr(
                event_outbox::Column::Attempts,
                Expr::col(event_outbox::Column::Attempts).add(1),
            )
            .filter(event_outbox::Column::Seq.eq(seq))
            .filter(event_outbox::Column::DoneAt.is_null())
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        txn.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// Event `seq` of `channel` could not be delivered now: it and every later one of the
    /// channel wait until `next`. Only the holder `held` records it (false when it no longer
    /// holds the channel).
    pub async fn retry_at(
        &self,
        channel: &Channel,
        held: Hold,
        seq: i64,
        next: Timestamp,
        error: &str,
    ) -> Result<bool, DbError> {
        let txn = self.0.begin_write().await?;
        let update = event_channels::Entity::update_many()
            .col_expr(
                event_channels::Column::NextAttemptAt,
                Expr::value(next.as_millis()),
            )
            .col_expr(
                event_channels::Column::Attempts,
                Expr::col(event_channels::Column::Attempts).add(1),
            )
            .col_expr(event_channels::Column::LastError, Expr::value(error));
        if !update_if_held(&txn, update, channel, held).await? {
            return Ok(false);
        }
        event_outbox::Entity::update_many()
            .col_expr(event_outbox::Column::LastError, Expr::value(error))
            .col_expr(
                event_outbox::Column::Attempts,
                Expr::col(event_outbox::Column::Attempts).add(1),
            )
            .filter(event_outbox::Column::Seq.eq(seq))
            .exec(&txn)
            .await
            .map_err(unavailable)?;
        txn.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    /// Gives up the events of streams (polled or pushed) still pending since before
    /// `before`: a receiver that has not acknowledged or taken them by then (a poller gone
    /// for good, a stream paused and forgotten) does not hold them forever. Returns how many.
    pub async fn expire_stream_events(
        &self,
        before: Timestamp,
        now: Timestamp,
    ) -> Result<u64, DbError> {
        let streams = sea_orm::sea_query::Query::select()
            .column(event_channels::Column::Channel)
            .from(event_channels::Entity)
            .and_where(event_channels::Column::Kind.ne(ChannelKind::Backchannel.as_str()))
            .to_owned();
        let expired = event_outbox::Entity::update_many()
            .col_expr(event_outbox::Column::DoneAt, Expr::value(now.as_millis()))
            .col_expr(event_outbox::Column::Outcome, Expr::value("failed"))
            .col_expr(
                event_outbox::Column::LastError,
                Expr::value("not taken by the receiver within a day"),
            )
            .filter(event_outbox::Column::DoneAt.is_null())
            .filter(event_outbox::Column::CreatedAt.lt(before.as_millis()))
            .filter(event_outbox::Column::Channel.in_subquery(streams))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(expired.rows_affected)
    }

    /// Where every channel stands, optionally only `channels`.
    pub async fn states(&self, channels: Option<&[Channel]>) -> Result<Vec<ChannelState>, DbError> {
        let mut query =
            event_channels::Entity::find().order_by_asc(event_channels::Column::Channel);
        let mut pending_query = event_outbox::Entity::find()
            .select_only()
            .column(event_outbox::Column::Channel)
            .column_as(event_outbox::Column::Seq.count(), "pending")
            .column_as(event_outbox::Column::CreatedAt.min(), "oldest")
            .filter(event_outbox::Column::DoneAt.is_null())
            .group_by(event_outbox::Column::Channel);
        if let Some(channels) = channels {
            let keys: Vec<String> = channels.iter().map(Channel::key).collect();
            query = query.filter(event_channels::Column::Channel.is_in(keys.clone()));
            pending_query = pending_query.filter(event_outbox::Column::Channel.is_in(keys));
        }
        let rows = query.all(&self.0.conn).await.map_err(unavailable)?;
        let pending: HashMap<String, (i64, Option<i64>)> = pending_query
            .into_tuple::<(String, i64, Option<i64>)>()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|(channel, count, oldest)| (channel, (count, oldest)))
            .collect();
        let secs = |ms: Option<i64>| ms.map(|ms| ms.div_euclid(1000));
        Ok(rows
            .into_iter()
            .map(|row| {
                let (count, oldest) = pending.get(&row.channel).copied().unwrap_or((0, None));
                ChannelState {
                    pending: u64::try_from(count).unwrap_or(0),
                    oldest_pending_at: secs(oldest),
                    kind: row.kind,
                    active: row.active,
                    attempts: u32::try_from(row.attempts).unwrap_or(0),
                    next_attempt_at: secs(row.next_attempt_at),
                    last_error: row.last_error,
                    last_delivered_at: secs(row.last_delivered_at),
                    channel: row.channel,
                }
            })
            .collect())
    }

    /// Deletes events done before `before`; returns how many.
    pub async fn prune(&self, before: Timestamp) -> Result<u64, DbError> {
        let deleted = event_outbox::Entity::delete_many()
            .filter(event_outbox::Column::DoneAt.lt(before.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(deleted.rows_affected)
    }

    /// Every event of `channel`, pending or done, oldest first (tests and operators).
    pub async fn history(
        &self,
        channel: &Channel,
    ) -> Result<Vec<(String, Option<String>)>, DbError> {
        event_outbox::Entity::find()
            .select_only()
            .column(event_outbox::Column::Jti)
            .column(event_outbox::Column::Outcome)
            .filter(event_outbox::Column::Channel.eq(channel.key()))
            .order_by_asc(event_outbox::Column::Seq)
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)
    }
}

/// Applies `update` to `channel`'s row if `held` is still the hold on it; returns whether it
/// was (nothing changed otherwise).
async fn update_if_held(
    txn: &sea_orm::DatabaseTransaction,
    update: sea_orm::UpdateMany<event_channels::Entity>,
    channel: &Channel,
    held: Hold,
) -> Result<bool, DbError> {
    let updated = update
        .filter(event_channels::Column::Channel.eq(channel.key()))
        .filter(event_channels::Column::ClaimedUntil.eq(held.0))
        .exec(txn)
        .await
        .map_err(unavailable)?;
    Ok(updated.rows_affected > 0)
}

/// A channel a node may take at `now_ms`: pushed, active, due, and held by no node.
fn deliverable(now_ms: i64) -> Condition {
    Condition::all()
        .add(event_channels::Column::Kind.ne(ChannelKind::SsfPoll.as_str()))
        .add(event_channels::Column::Active.eq(true))
        .add(
            Condition::any()
                .add(event_channels::Column::ClaimedUntil.is_null())
                .add(event_channels::Column::ClaimedUntil.lte(now_ms)),
        )
        .add(
            Condition::any()
                .add(event_channels::Column::NextAttemptAt.is_null())
                .add(event_channels::Column::NextAttemptAt.lte(now_ms)),
        )
}
