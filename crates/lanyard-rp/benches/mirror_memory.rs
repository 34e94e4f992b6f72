//! Memory of the guard's revocation mirror holding a million live revocations, and the
//! cost of a check against it (issue 9). The mirror keeps a `RevocationSet`; this fills one
//! with `ENTRIES` revocations by `jti` (22-character ids, as Lanyard's), the most numerous
//! kind, and reads the process's resident memory before and after.
//!
//! `cargo bench -p lanyard-rp --bench mirror_memory`. Figures are recorded in
//! `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_store::{Revocation, RevocationSet, Target, Timestamp, TokenFacts, Verdict};

const ENTRIES: usize = 1_000_000;

/// Resident memory of this process, KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn jti(i: usize) -> String {
    // 16 bytes, base64url: the shape of Lanyard's `jti`s.
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
    bytes[8..].copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"mirror_memory".contains(a.as_str()))
    {
        return;
    }
    let now = Timestamp::from_secs(1_800_000_000);
    let ids: Vec<String> = (0..ENTRIES).map(jti).collect();
    let before = rss_kib();
    let started = Instant::now();
    let mut set = RevocationSet::new();
    for id in &ids {
        set.apply(&Revocation {
            target: Target::Jti(id.clone()),
            at: now.plus(Duration::from_secs(600)),
            until: now.plus(Duration::from_secs(605)),
        });
    }
    let fill = started.elapsed();
    let after = rss_kib();
    assert_eq!(set.len(), ENTRIES);

    // A check of a token that is not revoked, and of one that is, against the full set.
    fn facts(jti: &str, now: Timestamp) -> TokenFacts<'_> {
        TokenFacts {
            jti,
            sid: Some("sid"),
            sub: "sub",
            client_id: "wiki",
            origin: None,
            act: None,
            iat: now,
            exp: now.plus(Duration::from_secs(600)),
        }
    }
    let fresh = jti(ENTRIES + 1);
    let rounds = 1_000_000u32;
    let started = Instant::now();
    for i in 0..rounds {
        let id = if i % 2 == 0 { &fresh } else { &ids[i as usize] };
        let _ = black_box(set.check(&facts(id, now), now, Duration::from_secs(3600)));
    }
    let per_check = started.elapsed() / rounds;
    assert_eq!(
        set.check(&facts(&ids[7], now), now, Duration::from_secs(3600)),
        Verdict::Revoked(lanyard_store::RevokedBy::Token)
    );
    let grown = after.saturating_sub(before);
    println!(
        "{ENTRIES} revocations by jti: resident memory +{:.1} MiB ({:.0} bytes per entry), filled in {:.2} s; a check against them takes {:.0} ns",
        grown as f64 / 1024.0,
        grown as f64 * 1024.0 / ENTRIES as f64,
        fill.as_secs_f64(),
        per_check.as_nanos()
    );
}
