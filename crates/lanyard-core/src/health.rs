//! Liveness and readiness, for load balancers and orchestrators: `/healthz` says the process
//! answers; `/readyz` says this node can serve sign-ins and tokens now — the database and the
//! token store answer, a signing key is loaded, its clock agrees with theirs, and it is not
//! shutting down. A node that is not ready answers 503, so traffic goes to the others.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Core;

/// How far this node's clock may drift from the database's or Redis's before the node is
/// taken out of service: tokens it signs would be refused (`iat`/`nbf` in the future) or
/// live too long elsewhere. Half of the 60 s leeway apps allow.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// How long each dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's answer.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Check {
    /// Whether it passed.
    pub ok: bool,
    /// What was found, in words.
    pub detail: String,
    /// How long the check took, in milliseconds.
    pub ms: f64,
}

/// The readiness report (the body of `/readyz`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// The database.
    pub database: Check,
    /// The token store.
    pub store: Check,
    /// The signing keys.
    pub keys: Check,
    /// This node's clock against the database's and the store's.
    pub clock: Check,
    /// Whether the node is shutting down (draining).
    pub stopping: bool,
}

impl Readiness {
    /// Whether traffic should come here.
    pub fn ready(&self) -> bool {
        self.status == "ready"
    }
}

/// Runs every check (concurrently; each bounded by a timeout).
pub async fn readiness(state: &Core, stopping: bool) -> Readiness {
    let started = Instant::now();
    let (database, store) = tokio::join!(
        timed(async {
            state.db.ping().await.map_err(|e| e.to_string())?;
            state.db.server_time().await.map_err(|e| e.to_string())
        }),
        timed(async { state.store.ping().await.map_err(|e| e.to_string()) }),
    );
    let now = state.clock.now();
    let mut skews = Vec::new();
    let database = check(database, "answers", |time| {
        if let Some(t) = time {
            skews.push(("database", t.as_millis() - now.as_millis()));
        }
    });
    let store = check(store, "answers", |time| {
        if let Some(t) = time {
            skews.push(("store", t.as_millis() - now.as_millis()));
        }
    });
    let keys = {
        let signers: Vec<String> = state
            .keys
            .signers()
            .into_iter()
            .map(|(kid, alg)| format!("{kid} ({})", alg.name()))
            .collect();
        Check {
            ok: !signers.is_empty(),
            detail: format!("signing with kid {}", signers.join(", ")),
            ms: 0.0,
        }
    };
    let clock = clock_check(&skews, started);
    let ready = database.ok && store.ok && keys.ok && clock.ok && !stopping;
    Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database,
        store,
        keys,
        clock,
        stopping,
    }
}

/// The clock check: every reference clock within [`MAX_CLOCK_SKEW`] of ours.
fn clock_check(skews: &[(&str, i64)], started: Instant) -> Check {
    let limit = i64::try_from(MAX_CLOCK_SKEW.as_millis()).unwrap_or(i64::MAX);
    let worst = skews.iter().max_by_key(|(_, ms)| ms.abs());
    let (ok, detail) = match worst {
        None => (
            true,
            "no other clock to compare with (SQLite and the in-process store share this host's)"
                .to_owned(),
        ),
        Some((name, ms)) => {
            // Ours runs ahead when theirs is behind: a positive `ms` means theirs is ahead.
            let (amount, direction) = (ms.abs(), if *ms > 0 { "behind" } else { "ahead of" });
            (
                amount <= limit,
                format!(
                    "this node's clock is {amount} ms {direction} the {name}'s (at most {limit} ms allowed)"
                ),
            )
        }
    };
    Check {
        ok,
        detail,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

async fn timed<T>(work: impl Future<Output = Result<T, String>>) -> (Result<T, String>, Duration) {
    let started = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    (result, started.elapsed())
}

fn check<T>(
    (result, took): (Result<T, String>, Duration),
    fine: &str,
    on_ok: impl FnOnce(T),
) -> Check {
    let ms = took.as_secs_f64() * 1000.0;
    match result {
        Ok(value) => {
            on_ok(value);
            Check {
                ok: true,
                detail: fine.to_owned(),
                ms,
            }
        }
        Err(e) => Check {
            ok: false,
            detail: e,
            ms,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_beyond_the_allowed_skew_fails_either_way() {
        let started = Instant::now();
        assert!(clock_check(&[], started).ok);
        assert!(clock_check(&[("store", 29_000), ("database", -1_000)], started).ok);
        let ahead = clock_check(&[("store", -90_000)], started);
        assert!(!ahead.ok);
        assert!(
            ahead.detail.contains("90000 ms ahead of the store's"),
            "{}",
            ahead.detail
        );
        let behind = clock_check(&[("database", 31_000), ("store", 100)], started);
        assert!(!behind.ok);
        assert!(
            behind.detail.contains("behind the database's"),
            "{}",
            behind.detail
        );
    }
}
