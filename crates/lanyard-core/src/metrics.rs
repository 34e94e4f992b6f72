//! What `/metrics` reports, in Prometheus' text format: every metric Lanyard records, named
//! and described in one place (`docs/operations.md` says what each means for an operator).
//!
//! Code records through the small functions below (over the `metrics` facade); the recorder
//! is installed once per process, so several servers in one process (the tests) share it and
//! counters only ever grow.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests, by route (the matched path, never the raw URI), method and status.
pub const HTTP_REQUESTS: &str = "lanyard_http_requests_total";
/// HTTP request latency in seconds, by route, method and status.
pub const HTTP_SECONDS: &str = "lanyard_http_request_duration_seconds";
/// Tokens issued at the token endpoint, by grant type.
pub const TOKENS_ISSUED: &str = "lanyard_tokens_issued_total";
/// Password sign-ins, by outcome (`success`, `failure`, `refused`, `locked`).
pub const SIGNINS: &str = "lanyard_signins_total";
/// Wrong secrets presented for registered clients.
pub const CLIENT_AUTH_FAILURES: &str = "lanyard_client_auth_failures_total";
/// Revocations recorded, by kind (`jti`, `sid`, `sub`, `client_id`, `grant`).
pub const REVOCATIONS: &str = "lanyard_revocations_total";
/// Token-store round-trip latency in seconds.
pub const STORE_SECONDS: &str = "lanyard_store_duration_seconds";
/// Token-store calls that failed (unreachable, timed out, refused).
pub const STORE_ERRORS: &str = "lanyard_store_errors_total";
/// Database statement latency in seconds.
pub const DB_SECONDS: &str = "lanyard_db_duration_seconds";
/// Database statements that failed.
pub const DB_ERRORS: &str = "lanyard_db_errors_total";
/// Audit events dropped: the queue stayed full, or the database kept refusing them.
pub const AUDIT_DROPPED: &str = "lanyard_audit_dropped_total";
/// Apps following the revocation feed over HTTP right now.
pub const FEED_SUBSCRIBERS: &str = "lanyard_revocation_feed_subscribers";
/// Seconds between a revocation's event and its delivery to a feed subscriber.
pub const FEED_LAG_SECONDS: &str = "lanyard_revocation_feed_lag_seconds";
/// Mails put in the outbox, by kind.
pub const MAIL_QUEUED: &str = "lanyard_mail_queued_total";
/// Attempts to send a mail, by kind and outcome (`sent`, `retry`, `failed`).
pub const MAIL_ATTEMPTS: &str = "lanyard_mail_attempts_total";
/// Events put in the outbox (Shared Signals events and back-channel logouts).
pub const EVENTS_QUEUED: &str = "lanyard_events_queued_total";
/// Attempts to deliver an event, by channel kind and outcome (`delivered`, `retry`,
/// `failed`).
pub const EVENT_DELIVERIES: &str = "lanyard_event_deliveries_total";
/// Events that could not be put in the outbox (the database refused).
pub const EVENTS_LOST: &str = "lanyard_events_lost_total";

/// Latency buckets, in seconds: from a Redis round trip to a slow argon2 sign-in.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// How often histogram samples are drained into their buckets.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder, installed on first use. If the embedding program installed a
/// recorder of its own, Lanyard's metrics go there and `/metrics` shows none of them.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
        };
        let handle = builder()
            .install_recorder()
            .unwrap_or_else(|_| builder().build_recorder().handle());
        describe();
        // A histogram keeps every sample until it is drained into its buckets, which
        // `install_recorder` leaves to the caller: without this, a node nobody scrapes grew by
        // tens of MiB per hundred thousand requests (issue 26).
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .stack_size(64 * 1024)
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "the metrics upkeep thread could not start; histograms are drained only when /metrics is read");
        }
        handle
    })
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route, method and status");
    describe_histogram!(
        HTTP_SECONDS,
        metrics::Unit::Seconds,
        "HTTP request latency by route, method and status"
    );
    describe_counter!(
        TOKENS_ISSUED,
        "tokens issued at the token endpoint, by grant type"
    );
    describe_counter!(SIGNINS, "password sign-ins by outcome");
    describe_counter!(
        CLIENT_AUTH_FAILURES,
        "failed secret checks for registered clients (counted and alerted, never locking)"
    );
    describe_counter!(REVOCATIONS, "revocations recorded, by kind");
    describe_histogram!(
        STORE_SECONDS,
        metrics::Unit::Seconds,
        "token-store round trips"
    );
    describe_counter!(STORE_ERRORS, "token-store calls that failed");
    describe_histogram!(DB_SECONDS, metrics::Unit::Seconds, "database statements");
    describe_counter!(DB_ERRORS, "database statements that failed");
    describe_counter!(AUDIT_DROPPED, "audit events that could not be stored");
    describe_counter!(MAIL_QUEUED, "mails put in the outbox, by kind");
    describe_counter!(
        MAIL_ATTEMPTS,
        "attempts to send a mail, by kind and outcome (sent, retry, failed: given up)"
    );
    describe_counter!(EVENTS_QUEUED, "events put in the outbox");
    describe_counter!(
        EVENT_DELIVERIES,
        "attempts to deliver an event, by channel kind and outcome (delivered, retry, failed: given up)"
    );
    describe_counter!(EVENTS_LOST, "events that could not be put in the outbox");
    describe_gauge!(
        FEED_SUBSCRIBERS,
        "apps following the HTTP revocation feed now"
    );
    describe_histogram!(
        FEED_LAG_SECONDS,
        metrics::Unit::Seconds,
        "from a revocation to its delivery on the HTTP feed"
    );
}

/// One answered HTTP request.
pub fn http_request(route: &str, method: &str, status: u16, took: Duration) {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_SECONDS, &labels).record(took.as_secs_f64());
}

/// Tokens issued by a grant (`authorization_code`, `refresh_token`, `client_credentials`).
pub fn token_issued(grant: &'static str) {
    counter!(TOKENS_ISSUED, "grant" => grant).increment(1);
}

/// A password sign-in's outcome.
pub fn signin(outcome: &'static str) {
    counter!(SIGNINS, "outcome" => outcome).increment(1);
}

/// A wrong secret for a registered client.
pub fn client_auth_failure() {
    counter!(CLIENT_AUTH_FAILURES).increment(1);
}

/// A mail put in the outbox.
pub fn mail_queued(kind: &'static str) {
    counter!(MAIL_QUEUED, "kind" => kind).increment(1);
}

/// `n` events put in the outbox.
pub fn signals_queued(n: usize) {
    counter!(EVENTS_QUEUED).increment(n as u64);
}

/// `n` events that could not be put in the outbox.
pub fn signal_lost(n: usize) {
    counter!(EVENTS_LOST).increment(n as u64);
}

/// An attempt to deliver an event on a channel of `kind`, and how it went.
pub fn event_delivery(kind: &'static str, outcome: &'static str) {
    counter!(EVENT_DELIVERIES, "kind" => kind, "outcome" => outcome).increment(1);
}

/// `n` events of streams given up because no receiver took them within a day (kind `ssf`).
pub fn stream_events_expired(n: u64) {
    counter!(EVENT_DELIVERIES, "kind" => "ssf", "outcome" => "failed").increment(n);
}

/// An attempt to send a mail of `kind`, and how it went.
pub fn mail_sent(kind: &str, outcome: &'static str) {
    counter!(MAIL_ATTEMPTS, "kind" => kind.to_owned(), "outcome" => outcome).increment(1);
}

/// A revocation recorded.
pub fn revocation(kind: &'static str) {
    counter!(REVOCATIONS, "kind" => kind).increment(1);
}

/// Audit events that could not be stored (the queue stayed full, or the database refused
/// them for a minute while it answered).
pub fn audit_dropped(events: usize) {
    counter!(AUDIT_DROPPED).increment(u64::try_from(events).unwrap_or(u64::MAX));
}

/// A database call that got no connection (the database is down or unreachable).
pub fn db_unreachable() {
    counter!(DB_ERRORS).increment(1);
}

/// A database statement, timed; `failed` when it ran and failed.
pub fn db_statement(took: Duration, failed: bool) {
    histogram!(DB_SECONDS).record(took.as_secs_f64());
    if failed {
        counter!(DB_ERRORS).increment(1);
    }
}

/// A feed subscriber came (`+1.0`) or went (`-1.0`).
pub fn feed_subscribers(delta: f64) {
    gauge!(FEED_SUBSCRIBERS).increment(delta);
}

/// A revocation reached a feed subscriber `lag` after it was made.
pub fn feed_lag(lag: Duration) {
    histogram!(FEED_LAG_SECONDS).record(lag.as_secs_f64());
}
