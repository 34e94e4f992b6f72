//! The physical limits the servers' figures are compared against, measured in the same run:
//! RSA-2048 signing per core (OpenSSL and the signer Lanyard uses), a bare RS256
//! verification, and a Redis round trip on loopback.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _, UnparsedPublicKey};
use tokio::process::Command;

/// The references, per core unless named otherwise.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Limits {
    /// `openssl speed -seconds 3 rsa2048`: RSA-2048 signatures per second, one core.
    pub(crate) openssl_sign_per_s: Option<f64>,
    /// The same with `-multi <cores>`: every core at once.
    pub(crate) openssl_sign_per_s_all_cores: Option<f64>,
    /// OpenSSL's RSA-2048 verifications per second, one core.
    pub(crate) openssl_verify_per_s: Option<f64>,
    /// Lanyard's signer (aws-lc-rs `RsaKeyPair::sign`, PKCS#1 v1.5 SHA-256), one thread.
    pub(crate) lanyard_sign_per_s: f64,
    /// The same on every core at once.
    pub(crate) lanyard_sign_per_s_all_cores: f64,
    /// A bare RS256 signature verification with aws-lc-rs (what the guard's crate uses),
    /// microseconds.
    pub(crate) rs256_verify_us: f64,
    /// Redis `PING` round trips on one connection, back to back: median and 99th percentile,
    /// microseconds. `None` with the in-process store.
    pub(crate) redis_rtt_p50_us: Option<f64>,
    pub(crate) redis_rtt_p99_us: Option<f64>,
    pub(crate) cores: usize,
}

/// Measures every reference (about 25 s).
pub(crate) async fn measure(store: &str) -> anyhow::Result<Limits> {
    println!("== limits");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let single = openssl_speed(&[]).await;
    let multi = openssl_speed(&["-multi", &cores.to_string()]).await;
    let lanyard_sign_per_s =
        tokio::task::spawn_blocking(|| sign_rate(Duration::from_secs(3))).await??;
    let mut all = Vec::new();
    for _ in 0..cores {
        all.push(tokio::task::spawn_blocking(|| {
            sign_rate(Duration::from_secs(3))
        }));
    }
    let mut lanyard_sign_per_s_all_cores = 0.0;
    for rate in all {
        lanyard_sign_per_s_all_cores += rate.await??;
    }
    let rs256_verify_us = tokio::task::spawn_blocking(verify_cost).await??;
    let (redis_rtt_p50_us, redis_rtt_p99_us) = match store {
        "memory" => (None, None),
        url => {
            let (p50, p99) = redis_rtt(url).await?;
            (Some(p50), Some(p99))
        }
    };
    Ok(Limits {
        openssl_sign_per_s: single.as_ref().map(|s| s.0),
        openssl_verify_per_s: single.as_ref().map(|s| s.1),
        openssl_sign_per_s_all_cores: multi.map(|s| s.0),
        lanyard_sign_per_s,
        lanyard_sign_per_s_all_cores,
        rs256_verify_us,
        redis_rtt_p50_us,
        redis_rtt_p99_us,
        cores,
    })
}

/// `openssl speed -seconds 3 [extra] rsa2048`: (signs/s, verifies/s), or `None` without
/// openssl.
async fn openssl_speed(extra: &[&str]) -> Option<(f64, f64)> {
    let out = Command::new("openssl")
        .arg("speed")
        .args(["-seconds", "3"])
        .args(extra)
        .arg("rsa2048")
        .output()
        .await
        .ok()?;
    parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
}

/// (signs/s, verifies/s) from the summary line of `openssl speed rsa2048`:
/// `rsa 2048 bits 0.000211s 0.000013s 4738.0 78800.0`.
fn parse_openssl_speed(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().rev().find(|l| l.contains("2048 bits"))?;
    let after: Vec<&str> = line.split("bits").nth(1)?.split_whitespace().collect();
    Some((after.get(2)?.parse().ok()?, after.get(3)?.parse().ok()?))
}

/// Signatures per second of the signer Lanyard uses, on this thread, for `time`.
fn sign_rate(time: Duration) -> anyhow::Result<f64> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA keygen"))?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let message = [7u8; 400];
    let mut sig = vec![0u8; key.public_modulus_len()];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        key.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
            .map_err(|_| anyhow::anyhow!("RSA sign"))?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Microseconds per bare RS256 verification (aws-lc-rs), over 2 s.
fn verify_cost() -> anyhow::Result<f64> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA keygen"))?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let message = [7u8; 400];
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
        .map_err(|_| anyhow::anyhow!("RSA sign"))?;
    let public = UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key().as_ref().to_vec(),
    );
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        public
            .verify(&message, &sig)
            .map_err(|_| anyhow::anyhow!("RSA verify"))?;
        n += 1;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

/// Median and 99th percentile of 20,000 back-to-back `PING`s, microseconds.
async fn redis_rtt(url: &str) -> anyhow::Result<(f64, f64)> {
    let mut conn = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
        .context("Redis for the round-trip reference")?;
    let mut times = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let start = Instant::now();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        times.push(start.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times[times.len() * 99 / 100]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line_of_openssl_speed() {
        let text = "CPUINFO: OPENSSL_ia32cap=0xfffa3203078bffff:0x405fc6f1bf07ab\n                  sign    verify    sign/s verify/s\nrsa 2048 bits 0.000257s 0.000017s   3883.8  57768.3\n";
        assert_eq!(parse_openssl_speed(text), Some((3883.8, 57768.3)));
        assert_eq!(parse_openssl_speed("openssl: unknown algorithm"), None);
    }

    #[test]
    fn the_signer_reference_signs_and_the_verifier_checks() {
        let rate = sign_rate(Duration::from_millis(50)).unwrap();
        assert!(rate > 0.0, "no signature in 50 ms");
        let cost = verify_cost().unwrap();
        assert!(cost > 0.0 && cost < 10_000.0, "{cost} µs per verification");
    }
}
