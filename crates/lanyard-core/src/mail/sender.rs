//! Each node's sender: takes due mails from the outbox (one conditional `UPDATE` each, so
//! nodes never send one mail at once), hands them to the transport, and marks them sent, or
//! due again later (30 s, doubling, at most an hour apart), or given up (the relay refused
//! for good, or a day passed). A mail the relay took but whose answer was lost is sent again
//! with the same `Message-ID`: delivery is at least once, never lost.

use std::time::Duration;

use crate::Core;
use crate::context::WeakCore;

/// How long a node holds a mail it took (a node that dies holding it frees it after this).
const HOLD: Duration = Duration::from_secs(120);
/// How many mails one pass takes.
const BATCH: u64 = 20;
/// How often a sender looks without being rung (retries; mail queued on another node).
const POLL: Duration = Duration::from_secs(5);
/// The first retry's delay; each later one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// After this long in the outbox a mail is given up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay before attempt `attempts + 1`.
fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.min(12))
        .min(MAX_BACKOFF)
}

/// One pass: sends every mail due now (a batch at a time); returns how many were sent.
/// Errors of the database end the pass (the next one tries again).
pub async fn deliver_due(core: &Core) -> Result<usize, crate::db::DbError> {
    let mut sent = 0;
    loop {
        let now = core.clock.now();
        let batch = core.db.outbox().claim_due(now, HOLD, BATCH).await?;
        if batch.is_empty() {
            return Ok(sent);
        }
        for outgoing in batch {
            let outcome = core.mailer.transport.deliver(&core.config, &outgoing).await;
            let now = core.clock.now();
            match outcome {
                Ok(()) => {
                    core.db.outbox().sent(&outgoing.id, now).await?;
                    crate::metrics::mail_sent(&outgoing.mail.kind, "sent");
                    sent += 1;
                }
                Err(failure)
                    if failure.permanent || outgoing.created_at.until(now) >= GIVE_UP_AFTER =>
                {
                    tracing::error!(
                        id = %outgoing.id, to = %outgoing.mail.to, kind = %outgoing.mail.kind,
                        error = %failure.message,
                        "a mail could not be sent; giving up on it"
                    );
                    core.db
                        .outbox()
                        .give_up(&outgoing.id, now, &failure.message)
                        .await?;
                    crate::metrics::mail_sent(&outgoing.mail.kind, "failed");
                }
                Err(failure) => {
                    let wait = backoff(outgoing.attempts);
                    tracing::warn!(
                        id = %outgoing.id, kind = %outgoing.mail.kind, error = %failure.message,
                        retry_in_secs = wait.as_secs(),
                        "a mail could not be sent yet; it stays in the outbox"
                    );
                    core.db
                        .outbox()
                        .retry_at(&outgoing.id, now.plus(wait), &failure.message)
                        .await?;
                    crate::metrics::mail_sent(&outgoing.mail.kind, "retry");
                }
            }
        }
    }
}

/// Starts this node's sender: a pass when a mail is queued here, and every few seconds. It
/// stops when the core is gone.
pub fn spawn_sender(core: &Core) -> tokio::task::JoinHandle<()> {
    let weak: WeakCore = core.downgrade();
    let wake = core.mailer.wake.clone();
    tracing::info!(to = %core.mailer.transport.describe(), "sending mail");
    tokio::spawn(async move {
        loop {
            let Some(core) = weak.upgrade() else { return };
            if let Err(e) = deliver_due(&core).await {
                tracing::warn!(error = %e, "the outbox could not be read; trying again shortly");
            }
            drop(core);
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_and_at_most_an_hour() {
        assert_eq!(backoff(0), Duration::from_secs(30));
        assert_eq!(backoff(1), Duration::from_secs(60));
        assert_eq!(backoff(3), Duration::from_secs(240));
        assert_eq!(backoff(7), Duration::from_secs(3600));
        assert_eq!(backoff(40), Duration::from_secs(3600));
    }
}
