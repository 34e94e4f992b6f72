//! The audit trail: sign-ins, token issuance, and later admin actions.
//!
//! Events go through a bounded queue to one writer task that stores them in batches, so the
//! token endpoint does not wait on a database write per request, and the database sees one
//! commit per batch. A database outage holds the batch and retries it until the database is
//! back; a full queue makes callers wait up to a second, then the event is dropped and
//! counted (`lanyard_audit_dropped_total`): a request that has spent a code must answer.
//! `flush` waits until everything queued so far is stored, and `serve` flushes on shutdown
//! (for at most [`SHUTDOWN_FLUSH`]). A crash loses what is queued: the
//! batch in flight (about 100 ms), or, during a database outage, what arrived since it began.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::model::AuditEvent;

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
/// How long `serve` waits at shutdown for queued events to be stored.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
/// After the first event of a batch, wait this long for more: one commit (one fsync) per
/// batch instead of one per event.
const GATHER: Duration = Duration::from_millis(20);
/// The longest wait between attempts to store a batch while the database is unreachable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long a batch may be refused by a database that answers before it is dropped.
const REFUSED_FOR: Duration = Duration::from_secs(60);
/// How long `record` waits for room in a full queue before dropping the event.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

enum Message {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `work` as part of request `id`: events it records carry the id.
pub async fn in_request<F: Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// Where events are recorded. Cloning shares the writer.
#[derive(Clone, Debug)]
pub struct Audit {
    tx: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl Audit {
    /// Starts the writer.
    pub fn start(db: Db) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(db, rx));
        Self { tx }
    }

    /// Queues an event; it carries the current request's id unless it names one.
    pub async fn record(&self, mut event: AuditEvent) {
        if event.request_id.is_none() {
            event.request_id = REQUEST_ID.try_with(Clone::clone).ok();
        }
        // A full queue (the database has been slow or down for a while) makes the caller wait,
        // but not for long: the caller may be a token request that has already spent a code
        // or a refresh token, and must answer rather than time out.
        match tokio::time::timeout(QUEUE_WAIT, self.tx.send(Message::Event(event))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                tracing::error!("the audit writer has stopped; an event was not recorded")
            }
            Err(_) => {
                crate::metrics::audit_dropped(1);
                tracing::error!(
                    "the audit queue stayed full for a second; an event was not recorded"
                );
            }
        }
    }

    /// [`Audit::flush`] for at most `limit`: whether everything queued was stored in time
    /// (the database may be down; a process about to exit must not wait forever).
    pub async fn flush_for(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.flush()).await.is_ok()
    }

    /// Waits until every event queued before this call is stored (or the writer gave up).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(db: Db, mut rx: mpsc::Receiver<Message>) {
    let mut buffer = Vec::with_capacity(BATCH);
    loop {
        buffer.clear();
        if rx.recv_many(&mut buffer, BATCH).await == 0 {
            return;
        }
        let flushing = buffer.iter().any(|m| matches!(m, Message::Flush(_)));
        if !flushing && buffer.len() < BATCH {
            tokio::time::sleep(GATHER).await;
            while buffer.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => buffer.push(m),
                    Err(_) => break,
                }
            }
        }
        let mut events = Vec::with_capacity(buffer.len());
        let mut flushes = Vec::new();
        for message in buffer.drain(..) {
            match message {
                Message::Event(e) => events.push(e),
                Message::Flush(done) => flushes.push(done),
            }
        }
        // While the database is unreachable, or answers but refuses the write for a while (a
        // read-only standby in a failover, a full disk), the batch is retried with backoff:
        // the queue holds what arrives meanwhile. Only a batch refused for REFUSED_FOR while
        // the database answers is dropped, with a log, so that it cannot hold the queue.
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1u32;
        let mut refused_since: Option<Instant> = None;
        while let Err(e) = db.audit().insert(&events).await {
            if db.ping().await.is_ok() {
                let since = *refused_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= REFUSED_FOR {
                    crate::metrics::audit_dropped(events.len());
                    tracing::error!(error = %e, lost = events.len(), "audit events refused by the database");
                    break;
                }
            } else {
                refused_since = None;
            }
            tracing::warn!(error = %e, attempt, "audit write failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
            attempt += 1;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
