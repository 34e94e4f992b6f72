//! What the benchmarks of this folder share.

use std::time::Duration;

/// The process's CPU time so far (user + system).
pub(crate) fn cpu() -> Duration {
    process_cpu("self")
}

/// The CPU time (user + system) of process `pid` (a number, or `self`) so far, from
/// `/proc/<pid>/stat`: utime and stime, in clock ticks (100 per second on Linux). Zero for a
/// process that is gone.
#[allow(dead_code)] // Not every bench measures another process.
pub(crate) fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
