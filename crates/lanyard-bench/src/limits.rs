//! The physical limits the servers' figures are compared against, measured in the same run:
//! signing per core with the access-token algorithm (RSA-2048, P-256 or Ed25519; OpenSSL and
//! the signer Lanyard uses), a bare RS256 verification, a Redis round trip on loopback, and
//! (with the sign-in scenario) the password hashes the cores can do.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use tokio::process::Command;

/// The references, per core unless named otherwise.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Limits {
    /// The algorithm signed: the access tokens' (`--access-token-alg`).
    pub(crate) alg: String,
    /// `openssl speed -seconds 3 rsa2048` (`ecdsap256`, `ed25519`): signatures per second,
    /// one core.
    pub(crate) openssl_sign_per_s: Option<f64>,
    /// The same with `-multi <cores>`: every core at once.
    pub(crate) openssl_sign_per_s_all_cores: Option<f64>,
    /// OpenSSL's verifications per second, one core.
    pub(crate) openssl_verify_per_s: Option<f64>,
    /// Lanyard's signer (aws-lc-rs: `RsaKeyPair::sign` PKCS#1 v1.5 SHA-256,
    /// `EcdsaKeyPair::sign` P-256 SHA-256, `Ed25519KeyPair::sign`), one thread.
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

/// Measures every reference (about 25 s), signing with `alg` (RS256, ES256, EdDSA).
pub(crate) async fn measure(store: &str, alg: &str) -> anyhow::Result<Limits> {
    println!("== limits");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let single = openssl_speed(alg, &[]).await;
    let multi = openssl_speed(alg, &["-multi", &cores.to_string()]).await;
    let owned = alg.to_owned();
    let lanyard_sign_per_s =
        tokio::task::spawn_blocking(move || sign_rate(&owned, Duration::from_secs(3))).await??;
    let mut all = Vec::new();
    for _ in 0..cores {
        let owned = alg.to_owned();
        all.push(tokio::task::spawn_blocking(move || {
            sign_rate(&owned, Duration::from_secs(3))
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
        alg: alg.to_owned(),
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

/// `openssl speed -seconds 3 [extra] <alg>`: (signs/s, verifies/s), or `None` without
/// openssl.
async fn openssl_speed(alg: &str, extra: &[&str]) -> Option<(f64, f64)> {
    let name = match alg {
        "ES256" => "ecdsap256",
        "EdDSA" => "ed25519",
        _ => "rsa2048",
    };
    let out = Command::new("openssl")
        .arg("speed")
        .args(["-seconds", "3"])
        .args(extra)
        .arg(name)
        .output()
        .await
        .ok()?;
    parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
}

/// (signs/s, verifies/s): the last two figures of the summary line of `openssl speed`, e.g.
/// `rsa 2048 bits 0.000211s 0.000013s 4738.0 78800.0` or
/// ` 256 bits ecdsa (nistp256)   0.0000s   0.0001s  38164.3  12613.9`.
fn parse_openssl_speed(text: &str) -> Option<(f64, f64)> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains(" bits ") && l.trim_end().ends_with(|c: char| c.is_ascii_digit()))?;
    let mut figures = line.split_whitespace().rev();
    let verify = figures.next()?.parse().ok()?;
    let sign = figures.next()?.parse().ok()?;
    Some((sign, verify))
}

/// Signatures per second of the signer Lanyard uses for `alg`, on this thread, for `time`.
fn sign_rate(alg: &str, time: Duration) -> anyhow::Result<f64> {
    let failed = |what: &str| anyhow::anyhow!("{alg} {what} failed");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let message = [7u8; 400];
    let mut sign: Box<dyn FnMut() -> anyhow::Result<()>> = match alg {
        "ES256" => {
            let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| failed("keygen"))?;
            Box::new(move || {
                key.sign(&rng, &message).map_err(|_| failed("signing"))?;
                Ok(())
            })
        }
        "EdDSA" => {
            let key = Ed25519KeyPair::generate().map_err(|_| failed("keygen"))?;
            Box::new(move || {
                std::hint::black_box(key.sign(&message));
                Ok(())
            })
        }
        _ => {
            let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("keygen"))?;
            let mut sig = vec![0u8; key.public_modulus_len()];
            Box::new(move || {
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                    .map_err(|_| failed("signing"))
            })
        }
    };
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < time {
        sign()?;
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

/// What a sign-in cannot go faster than: one argon2id verification each, with Lanyard's own
/// hasher (`lanyard_core::crypto::Passwords`: its parameters, on the blocking pool, at most
/// one per core at a time).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PasswordHashes {
    /// The parameters, as the stored hash names them: `argon2id v=19 m=19456,t=2,p=1`.
    pub(crate) params: String,
    /// Verifications per second, one at a time.
    pub(crate) per_s_one_core: f64,
    /// Verifications per second with every core busy: the sign-ins' limit.
    pub(crate) per_s_all_cores: f64,
    /// This process's CPU time per verification with every core busy, milliseconds: less
    /// sensitive to other work on the machine than the rates (`cores` × 1000 / this is what
    /// idle cores would do).
    pub(crate) cpu_ms_per_hash: f64,
    pub(crate) cores: usize,
}

/// Measures [`PasswordHashes`] (about 6 s): 3 s one at a time, 3 s with a verification
/// waiting for each core.
pub(crate) async fn password_hashes() -> anyhow::Result<PasswordHashes> {
    println!("== password hashes (argon2id, Lanyard's hasher)");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let passwords = lanyard_core::crypto::Passwords::new()
        .context("Lanyard's password hasher did not start")?;
    let hash = passwords
        .hash("a bench user's long password 7f3c")
        .await
        .context("hashing a password")?;
    let params = argon2_params(&hash);
    let time = Duration::from_secs(3);
    let hz = crate::servers::clock_ticks_per_second().await?;
    let (per_s_one_core, _) = verify_rate(&passwords, &hash, 1, time).await?;
    let before = own_cpu_ticks()?;
    let (per_s_all_cores, n) = verify_rate(&passwords, &hash, cores, time).await?;
    let cpu_s = (own_cpu_ticks()? - before) as f64 / hz;
    Ok(PasswordHashes {
        params,
        per_s_one_core,
        per_s_all_cores,
        cpu_ms_per_hash: cpu_s * 1e3 / n.max(1) as f64,
        cores,
    })
}

/// This process's CPU time so far (user + system, every thread), in clock ticks.
fn own_cpu_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // After the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("/proc/self/stat")?
        .1
        .split_whitespace()
        .collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

/// Verifications of `hash` by `tasks` tasks at once, each one after the other, for `time`:
/// (per second, how many).
async fn verify_rate(
    passwords: &lanyard_core::crypto::Passwords,
    hash: &str,
    tasks: usize,
    time: Duration,
) -> anyhow::Result<(f64, u64)> {
    let start = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..tasks {
        let (passwords, hash) = (passwords.clone(), hash.to_owned());
        running.spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < time {
                let right = passwords
                    .verify("a bench user's long password 7f3c", Some(&hash))
                    .await?;
                anyhow::ensure!(right, "the password did not verify against its own hash");
                n += 1;
            }
            anyhow::Ok(n)
        });
    }
    let mut n = 0;
    while let Some(done) = running.join_next().await {
        n += done??;
    }
    Ok((n as f64 / start.elapsed().as_secs_f64(), n))
}

/// `argon2id v=19 m=19456,t=2,p=1` from a PHC string `$argon2id$v=19$m=19456,t=2,p=1$...`.
fn argon2_params(phc: &str) -> String {
    phc.split('$')
        .filter(|part| !part.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
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
        let ec = "                              sign    verify    sign/s verify/s\n 256 bits ecdsa (nistp256)   0.0000s   0.0001s  38164.3  12613.9\n";
        assert_eq!(parse_openssl_speed(ec), Some((38164.3, 12613.9)));
        assert_eq!(parse_openssl_speed("openssl: unknown algorithm"), None);
    }

    #[test]
    fn names_the_argon2_parameters_of_a_hash() {
        assert_eq!(
            argon2_params("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"),
            "argon2id v=19 m=19456,t=2,p=1"
        );
    }

    #[test]
    fn the_signer_reference_signs_and_the_verifier_checks() {
        for alg in ["RS256", "ES256", "EdDSA"] {
            let rate = sign_rate(alg, Duration::from_millis(50)).unwrap();
            assert!(rate > 0.0, "no {alg} signature in 50 ms");
        }
        let cost = verify_cost().unwrap();
        assert!(cost > 0.0 && cost < 10_000.0, "{cost} µs per verification");
    }
}
