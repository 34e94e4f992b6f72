//! The `fanout` scenario: `--subscribers` apps follow one Lanyard node's revocation feed
//! (`GET /revocations/events`, Server-Sent Events), and revocations made through the admin
//! API are timed to each of them.
//!
//! The subscribers are plain HTTP/1.1 connections read by this process (a `lanyard-rp`
//! mirror each would time this process's own work 10,000 times over): each one looks for the
//! revocation's marker in what it reads and notes the instant. A revocation's delay to a
//! subscriber runs from the moment the admin call is sent. Also measured: Lanyard's resident
//! memory before and after the subscribers connect (per subscriber), and the connections
//! Redis holds (one shared subscription, not one per subscriber).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::servers::Side;

/// Revocations timed per run.
const REVOCATIONS: usize = 20;
/// Time between two revocations.
const GAP: Duration = Duration::from_millis(300);
/// Connections opened at once while the subscribers connect.
const CONNECTING: usize = 256;
/// A revocation that has not reached every subscriber by then is a failure of the run.
const DEADLINE: Duration = Duration::from_secs(10);
/// What the marker in each revoked `jti` starts with.
const MARK: &[u8] = b"fanout-mark-";

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Fanout {
    pub(crate) subscribers: usize,
    pub(crate) revocations: usize,
    /// Delays of every (revocation, subscriber) pair, from the admin call sent: ms.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Per revocation, until the last subscriber had it: ms.
    pub(crate) all_p50_ms: f64,
    pub(crate) all_max_ms: f64,
    /// The admin call itself (sent → answered): ms, p50.
    pub(crate) admin_call_p50_ms: f64,
    /// Lanyard's resident memory with no subscriber and with all of them, KiB.
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) bytes_per_subscriber: f64,
    /// Lanyard's CPU time over the timed revocations (heartbeats included), seconds.
    pub(crate) cpu_s: f64,
    /// Redis's `connected_clients` before and after the subscribers connected (`None` on
    /// the in-process store).
    pub(crate) redis_clients: Option<(u64, u64)>,
}

impl Fanout {
    pub(crate) fn line(&self) -> String {
        let redis = match self.redis_clients {
            Some((before, after)) => format!(", Redis connections {before} → {after}"),
            None => String::new(),
        };
        format!(
            "{} subscribers, {} revocations: each subscriber p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; every subscriber p50 {:.1} ms, max {:.1} ms (admin call p50 {:.1} ms); Lanyard {:.1} → {:.1} MiB, {:.0} bytes per subscriber{redis}",
            self.subscribers,
            self.revocations,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.all_p50_ms,
            self.all_max_ms,
            self.admin_call_p50_ms,
            self.rss_before_kib as f64 / 1024.0,
            self.rss_after_kib as f64 / 1024.0,
            self.bytes_per_subscriber,
        )
    }
}

/// Connects `subscribers` followers to `side`'s first node and times [`REVOCATIONS`]
/// revocations to every one of them.
pub(crate) async fn measure(
    side: &Side,
    subscribers: usize,
    redis: Option<&str>,
    hz: f64,
) -> anyhow::Result<Fanout> {
    let snapshot: Value = side.feed_snapshot().await?;
    let epoch = snapshot["cursor"]["epoch"]
        .as_str()
        .context("the snapshot's cursor")?
        .to_owned();
    let seq = snapshot["cursor"]["seq"]
        .as_u64()
        .context("the snapshot's cursor")?;
    let token = side.admin_token().await?;
    let redis_before = match redis {
        Some(url) => Some(redis_clients(url).await?),
        None => None,
    };
    let rss_before_kib = side.rss_kib()?;

    let (arrivals, mut arrived) = mpsc::unbounded_channel::<(usize, Instant)>();
    let request = Arc::new(format!(
        "GET /revocations/events?epoch={epoch}&seq={seq} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\nAccept: text/event-stream\r\n\r\n",
        host = side.host(),
        auth = side.basic(),
    ));
    let addr = side.host().to_owned();
    let mut readers = tokio::task::JoinSet::new();
    let mut opened = 0;
    while opened < subscribers {
        let batch = CONNECTING.min(subscribers - opened);
        let (ready, mut readied) = mpsc::channel::<anyhow::Result<()>>(batch);
        for _ in 0..batch {
            let (addr, request, arrivals, ready) = (
                addr.clone(),
                request.clone(),
                arrivals.clone(),
                ready.clone(),
            );
            readers.spawn(async move {
                let stream = subscribe(&addr, &request).await;
                let stream = match stream {
                    Ok(stream) => {
                        let _ = ready.send(Ok(())).await;
                        stream
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e)).await;
                        return;
                    }
                };
                follow(stream, arrivals).await;
            });
        }
        drop(ready);
        for _ in 0..batch {
            readied
                .recv()
                .await
                .context("a subscriber task ended")?
                .with_context(|| format!("subscriber {opened} could not follow the feed"))?;
        }
        opened += batch;
    }
    // Let the server settle (its streams' first heartbeats).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss_after_kib = side.rss_kib()?;
    let redis_after = match redis {
        Some(url) => Some(redis_clients(url).await?),
        None => None,
    };

    let cpu_before = side.cpu_ticks()?;
    let mut delays = Vec::with_capacity(subscribers * REVOCATIONS);
    let mut all = Vec::with_capacity(REVOCATIONS);
    let mut calls = Vec::with_capacity(REVOCATIONS);
    for n in 0..REVOCATIONS {
        let jti = format!("{}{n}-", String::from_utf8_lossy(MARK));
        let sent = Instant::now();
        side.revoke_jti(&token, &jti).await?;
        calls.push(sent.elapsed());
        let mut reached = 0;
        let mut last = Duration::ZERO;
        while reached < subscribers {
            let (which, at) = tokio::time::timeout(DEADLINE, arrived.recv())
                .await
                .with_context(|| {
                    format!(
                        "revocation {n} reached {reached} of {subscribers} subscribers in {} s",
                        DEADLINE.as_secs()
                    )
                })?
                .context("every subscriber stopped")?;
            if which != n {
                bail!("a subscriber saw revocation {which} while {n} was awaited");
            }
            let delay = at.saturating_duration_since(sent);
            last = last.max(delay);
            delays.push(delay);
            reached += 1;
        }
        all.push(last);
        tokio::time::sleep(GAP).await;
    }
    let cpu_s = (side.cpu_ticks()? - cpu_before) as f64 / hz;
    readers.abort_all();
    delays.sort();
    all.sort();
    calls.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Fanout {
        subscribers,
        revocations: REVOCATIONS,
        p50_ms: ms(percentile(&delays, 50.0)),
        p99_ms: ms(percentile(&delays, 99.0)),
        max_ms: ms(percentile(&delays, 100.0)),
        all_p50_ms: ms(percentile(&all, 50.0)),
        all_max_ms: ms(percentile(&all, 100.0)),
        admin_call_p50_ms: ms(percentile(&calls, 50.0)),
        rss_before_kib,
        rss_after_kib,
        bytes_per_subscriber: rss_after_kib.saturating_sub(rss_before_kib) as f64 * 1024.0
            / subscribers.max(1) as f64,
        cpu_s,
        redis_clients: redis_before.zip(redis_after),
    })
}

/// Opens the feed: the response's head read, its status 200.
async fn subscribe(addr: &str, request: &str) -> anyhow::Result<(TcpStream, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(request.as_bytes()).await?;
    let mut read = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the feed closed before answering");
        }
        read.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&read, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&read[..end]);
            if !head.starts_with("HTTP/1.1 200") {
                bail!(
                    "the feed answered {}",
                    head.lines().next().unwrap_or_default()
                );
            }
            let rest = read.split_off(end + 4);
            return Ok((stream, rest));
        }
        if read.len() > 16 * 1024 {
            bail!("no end to the feed's response head");
        }
    }
}

/// Reads the stream and reports each marker it sees, once, with the instant it was read.
async fn follow(
    (mut stream, mut carry): (TcpStream, Vec<u8>),
    arrivals: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let mut next = 0;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let seen = markers(&carry);
        let at = Instant::now();
        for n in seen {
            if n >= next {
                next = n + 1;
                if arrivals.send((n, at)).is_err() {
                    return;
                }
            }
        }
        // Keep a tail, in case a marker is split between two reads.
        let keep = carry.len().saturating_sub(64);
        carry.drain(..keep);
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => carry.extend_from_slice(&buf[..n]),
        }
    }
}

/// The numbers of the markers in `bytes` (`fanout-mark-<n>-`).
fn markers(bytes: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find(&bytes[from..], MARK) {
        let start = from + at + MARK.len();
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if bytes.get(start + digits) == Some(&b'-')
            && let Ok(n) = std::str::from_utf8(&bytes[start..start + digits])
                .unwrap_or_default()
                .parse()
        {
            found.push(n);
        }
        from = start;
    }
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Redis's `connected_clients`.
async fn redis_clients(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut conn)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .context("connected_clients in INFO clients")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_read_whole_and_only_whole() {
        let text = b"data: {\"jti\":\"fanout-mark-12-\"}\n\ndata: fanout-mark-3";
        assert_eq!(markers(text), [12]);
        assert_eq!(markers(b"fanout-mark-4-fanout-mark-5-"), [4, 5]);
        assert!(markers(b"fanout-mark--").is_empty());
    }
}
