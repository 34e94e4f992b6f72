//! Following the revocation stream with blocking `XREAD` on a connection of its own.

use std::time::Duration;

use async_trait::async_trait;
use redis::streams::{StreamId, StreamReadReply};

use super::conn::{Conn, Connector};
use super::{RedisConfig, decode_entry_parts, map_error, parse_seq};
use crate::{Cursor, Feed, RevocationEvent, StoreError, Subscription};

/// The most events one `next` returns.
const BATCH: usize = 1_000;

pub(super) struct RedisSubscription {
    connector: Connector,
    conn: Option<Conn>,
    /// Epoch, sequence and events keys.
    epoch_key: String,
    seq_key: String,
    events_key: String,
    redis: RedisConfig,
    cursor: Cursor,
}

impl RedisSubscription {
    pub(super) fn new(
        connector: Connector,
        keys: [String; 10],
        redis: RedisConfig,
        cursor: Cursor,
    ) -> Self {
        let [epoch_key, seq_key, events_key, ..] = keys;
        Self {
            connector,
            conn: None,
            epoch_key,
            seq_key,
            events_key,
            redis,
            cursor,
        }
    }

    async fn connection(&mut self) -> Result<Conn, StoreError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        // No response timeout on the connection: blocking reads wait on purpose, and each
        // call below has its own deadline.
        let conn = self.connector.dedicated(&self.redis).await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    fn decode(&self, id: &StreamId) -> Result<RevocationEvent, StoreError> {
        let seq = id
            .id
            .strip_suffix("-0")
            .ok_or_else(|| StoreError::corrupt("revocation event", "unexpected id"))
            .and_then(parse_seq)?;
        let field = |name: &str| {
            id.get::<String>(name)
                .ok_or_else(|| StoreError::corrupt("revocation event", format!("no {name}")))
        };
        Ok(RevocationEvent {
            cursor: Cursor {
                epoch: self.cursor.epoch.clone(),
                seq,
            },
            revocation: decode_entry_parts(&field("k")?, field("v")?, &field("a")?, &field("u")?)?,
        })
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    fn cursor(&self) -> &Cursor {
        &self.cursor
    }

    async fn next(&mut self, wait: Duration) -> Result<Feed, StoreError> {
        let mut conn = self.connection().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&self.epoch_key);
        pipe.cmd("GET").arg(&self.seq_key);
        let read = pipe.cmd("XREAD").arg("COUNT").arg(BATCH);
        // BLOCK 0 would wait forever; a zero wait is a plain read.
        let block = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if block > 0 {
            read.arg("BLOCK").arg(block);
        }
        read.arg("STREAMS")
            .arg(&self.events_key)
            .arg(format!("{}-0", self.cursor.seq));
        let limit = wait.saturating_add(self.redis.operation_timeout);
        let reply = tokio::time::timeout(limit, pipe.query_async(&mut conn)).await;
        type Reply = (Option<String>, Option<String>, Option<StreamReadReply>);
        let (epoch, seq, events): Reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "revocation subscription lost its connection");
                self.conn = None;
                return Err(map_error(e));
            }
            Err(_) => {
                self.conn = None;
                return Err(StoreError::Timeout(limit));
            }
        };
        match epoch {
            None => return Err(StoreError::RevocationStateLost),
            Some(epoch) if epoch != self.cursor.epoch => return Ok(Feed::Resnapshot),
            Some(_) => {}
        }
        let seq = seq.as_deref().map_or(Ok(0), parse_seq)?;
        if self.cursor.seq > seq {
            // Redis went back in time under an unchanged epoch (restored from an older file,
            // or a replica that lagged took over): events this subscriber saw are gone, and new
            // ones will reuse their numbers. Only a new snapshot is safe.
            return Ok(Feed::Resnapshot);
        }
        let ids: Vec<&StreamId> = events
            .iter()
            .flat_map(|r| r.keys.iter())
            .flat_map(|k| k.ids.iter())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let event = self.decode(id)?;
            let expected = out
                .last()
                .map_or(self.cursor.seq, |e: &RevocationEvent| e.cursor.seq)
                + 1;
            if event.cursor.seq != expected {
                // Events between were trimmed from the stream: this subscriber is too far
                // behind to catch up by replay.
                return Ok(Feed::Resnapshot);
            }
            out.push(event);
        }
        if let Some(last) = out.last() {
            self.cursor = last.cursor.clone();
        }
        Ok(Feed::Events(out))
    }
}
