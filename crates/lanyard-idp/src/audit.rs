//! The audit trail: sign-ins, token issuance, and later admin actions.
//!
//! Events go through a bounded queue to one writer task that stores them in batches, so the
//! token endpoint does not wait on a database write per request, and the database sees one
//! commit per batch. A full queue makes callers
//! wait (never drops an event); a database outage holds the batch and retries it until the
//! database is back. `flush` waits until everything queued so far is stored, and `serve`
//! flushes on shutdown (for at most [`SHUTDOWN_FLUSH`]). A crash loses what is queued: the
//! batch in flight (about 100 ms), or, during a database outage, what arrived since it began.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::db::{AuditEvent, Db};

const QUEUE: usize = 10_000;
const BATCH: usize = 500;
/// How long `serve` waits at shutdown for queued events to be stored.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
/// After the first event of a batch, wait this long for more: one commit (one fsync) per
/// batch instead of one per event.
const GATHER: Duration = Duration::from_millis(20);
/// The longest wait between attempts to store a batch while the database is unreachable.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

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
        if self.tx.send(Message::Event(event)).await.is_err() {
            tracing::error!("the audit writer has stopped; an event was not recorded");
        }
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
        // While the database is unreachable the batch is retried until it is back, however
        // long that takes: the queue holds what arrives meanwhile, and once it is full
        // callers wait. A batch the database refuses twice while it answers (it would be
        // refused again) is dropped, with a log, so that it does not hold up the queue.
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1u32;
        let mut refused = 0;
        while let Err(e) = db.insert_audit(&events).await {
            if db.ping().await.is_ok() {
                refused += 1;
                if refused == 2 {
                    tracing::error!(error = %e, lost = events.len(), "audit events refused by the database");
                    break;
                }
                continue;
            }
            tracing::warn!(error = %e, attempt, "audit write failed; retrying until the database is back");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
            attempt += 1;
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}
