//! `lanyard-bench`: Lanyard and the peer provider side by side, in one run on one machine.
//!
//! Both servers get the same requests from the same load generator (wrk), with the same
//! concurrency and duration, in alternating runs (A B A B) so drift hits both alike. The
//! scenarios are single endpoints, and whole flows (single sign-on, the code exchange, fresh
//! sign-ins: Lanyard's alone), counted in flows too. The runner measures each server
//! process's CPU time per request (per flow) and peak memory, the physical limits the
//! figures are compared against (RSA signing per core, a bare RS256 verification, a Redis
//! round trip, the password hashes per second), prints a table, and writes it as JSON and as
//! a chart.
//! `bench/run` builds everything and starts it; `docs/performance.md` shows the output.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool whose output is its table"
)]

mod fanout;
mod limits;
mod report;
mod servers;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::report::{Measured, Run};
use crate::servers::{Backends, Side};
use crate::wrk::Outcome;

/// Lanyard against panva's oidc-provider: the same load, one machine, one run.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Seconds of load before a scenario's first measured run on each side.
    #[arg(long, default_value_t = 5)]
    warmup: u64,
    /// Measured runs per side, scenario and concurrency (the table shows medians).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Open connections (wrk -c), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    conns: Vec<usize>,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Scenarios, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    scenarios: Vec<Scenario>,
    /// Lanyard's database: `sqlite` (a fresh file) or a PostgreSQL server URL, in which the
    /// runner creates a fresh database and drops it at the end.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Lanyard processes on the one database and store, each with its share of the
    /// connections (more than one needs PostgreSQL and Redis).
    #[arg(long, default_value_t = 1)]
    lanyard_nodes: usize,
    /// Lanyard's token store: a Redis URL (keys under a fresh prefix, deleted at the end), or
    /// `memory` for the in-process store.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    store: String,
    /// The `lanyard` binary (default: beside this one).
    #[arg(long)]
    lanyard: Option<PathBuf>,
    /// Where `oidc-provider` is installed, with `provider.mjs` beside its node_modules.
    #[arg(long)]
    peer_dir: PathBuf,
    /// Where the JSON and the chart go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// What both sides sign access tokens with (ID tokens: RS256 on both).
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256", "EdDSA"])]
    access_token_alg: String,
    /// Apps following the revocation feed in the `fanout` scenario.
    #[arg(long, default_value_t = 10_000)]
    subscribers: usize,
    /// Skip the physical references (openssl, signer, verifier, Redis). The password-hash
    /// reference of the `signin` scenario is measured with that scenario all the same.
    #[arg(long)]
    skip_limits: bool,
}

/// What is measured: one endpoint, one kind of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    /// `GET` the discovery document.
    Discovery,
    /// `GET` the JWKS.
    Jwks,
    /// `POST /token`, `client_credentials`, a JWT access token back (`--access-token-alg`).
    Token,
    /// `POST /token`, `refresh_token`: each request spends a refresh token and gets the next
    /// (ID token signed RS256, access token `--access-token-alg`).
    Refresh,
    /// `POST` introspection of a valid user access token.
    Introspect,
    /// `GET` userinfo with a valid user access token.
    Userinfo,
    /// Single sign-on into another app: `GET /authorize` with the session cookie of a person
    /// already signed in, a redirect with a code, the code exchanged at the token endpoint
    /// (`authorization_code`, PKCE; an RS256 ID token and an access token back). Measured
    /// in flows as well as requests.
    Sso,
    /// The code exchange alone: `POST /token` with codes made right before each run by
    /// authorize requests with a session cookie.
    Code,
    /// Fresh sign-ins, Lanyard only (the peer has no password sign-in in this set-up): the
    /// sign-in form posted with the right password (64 users in turn), a redirect with a
    /// code, the code exchanged; compared with the argon2id hashes the cores can do.
    Signin,
    /// Lanyard only: `--subscribers` apps follow one node's revocation feed (Server-Sent
    /// Events); revocations through the admin API are timed to each of them.
    Fanout,
}

impl Scenario {
    const ALL: [Scenario; 10] = [
        Scenario::Discovery,
        Scenario::Jwks,
        Scenario::Token,
        Scenario::Refresh,
        Scenario::Introspect,
        Scenario::Userinfo,
        Scenario::Sso,
        Scenario::Code,
        Scenario::Signin,
        Scenario::Fanout,
    ];

    /// The name in tables, JSON and the chart.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Discovery => "discovery",
            Scenario::Jwks => "jwks",
            Scenario::Token => "token (client_credentials)",
            Scenario::Refresh => "token (refresh_token)",
            Scenario::Introspect => "introspection",
            Scenario::Userinfo => "userinfo",
            Scenario::Sso => "sso flow (authorize + token)",
            Scenario::Code => "code exchange",
            Scenario::Signin => "sign-in (password + token)",
            Scenario::Fanout => "revocation feed fan-out",
        }
    }

    /// Whether the peer runs it too.
    pub(crate) fn has_peer(self) -> bool {
        !matches!(self, Scenario::Signin | Scenario::Fanout)
    }

    /// Whether it is counted in whole flows (a token answer with an ID token each) too.
    pub(crate) fn is_flow(self) -> bool {
        matches!(self, Scenario::Sso | Scenario::Code | Scenario::Signin)
    }
}

/// Codes a side is guessed to exchange per second, for the first warm-up of the `code`
/// scenario (doubled while the warm-up runs out of codes).
const CODE_GUESS_PER_S: f64 = 1_000.0;
/// The codes made for a run of the `code` scenario: the warm-up's rate times the run's
/// duration, times this.
const CODE_OVERPROVISION: f64 = 1.5;
/// How many times a run of the `code` scenario that ran out of codes is made again.
const CODE_RETRIES: usize = 2;
/// Codes live 60 s at both sides: a run of the `code` scenario must end well before, pool
/// making included.
const CODE_MAX_DURATION_S: u64 = 40;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.scenarios.is_empty() {
        args.scenarios = Scenario::ALL.to_vec();
    }
    if args.runs == 0 || args.conns.is_empty() || args.duration == 0 || args.lanyard_nodes == 0 {
        bail!("--runs, --conns, --duration and --lanyard-nodes must be at least 1");
    }
    if args.scenarios.contains(&Scenario::Code) && args.duration > CODE_MAX_DURATION_S {
        bail!(
            "the code scenario spends codes made before each run, which live 60 s: give --duration {CODE_MAX_DURATION_S} or less"
        );
    }
    if args.lanyard_nodes > 1 && (args.database == "sqlite" || args.store == "memory") {
        bail!(
            "several Lanyard nodes share a database and a store: give --database postgres://... and a Redis --store"
        );
    }
    wrk::check_installed().await?;
    let lanyard = match &args.lanyard {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the runner's own folder")?
            .join("lanyard"),
    };
    let backends = Backends::prepare(&args.database, &args.store).await?;
    let outcome = tokio::select! {
        outcome = measure(&args, &lanyard, &backends) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    // Every process started for a scenario has stopped by now (they are killed when dropped,
    // also on error); what is left is the database and the Redis keys.
    backends.clean_up().await;
    let mut report = outcome?;
    if !args.skip_limits {
        report.limits = Some(limits::measure(&args.store, &args.access_token_alg).await?);
    }
    report.print();
    std::fs::create_dir_all(&args.out)?;
    let json = args.out.join("latest.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    let chart = args.out.join("latest.png");
    report::chart(&report, &chart)?;
    println!("\nSaved {} and {}", json.display(), chart.display());
    Ok(())
}

/// Every scenario: fresh servers on both sides, a warm-up each, then the runs alternating.
async fn measure(
    args: &Args,
    lanyard: &std::path::Path,
    backends: &Backends,
) -> anyhow::Result<report::Report> {
    let mut report = report::Report::new(args, backends.describe());
    let hz = servers::clock_ticks_per_second().await?;
    for &scenario in &args.scenarios {
        println!("== {}", scenario.name());
        // Fresh processes per scenario: a store that grew in one scenario (refresh tokens,
        // the peer's in-process map) must not slow the next.
        let mut sides = vec![
            Side::start_lanyard(
                lanyard,
                backends,
                args.lanyard_nodes,
                &args.access_token_alg,
                scenario,
            )
            .await?,
        ];
        if scenario.has_peer() {
            sides.push(Side::start_peer(&args.peer_dir, &args.access_token_alg).await?);
        }
        if scenario == Scenario::Fanout {
            let side = sides.remove(0);
            let measured = fanout::measure(&side, args.subscribers, backends.redis(), hz).await;
            side.stop().await;
            let measured = measured?;
            println!("   {}", measured.line());
            report.fanout = Some(measured);
            continue;
        }
        let mut idle_rss = Vec::new();
        for side in &sides {
            side.prepare(scenario).await?;
            idle_rss.push(side.rss_kib()?);
        }
        // Codes to make before each run, per side (the `code` scenario only).
        let mut codes = Vec::new();
        for side in &sides {
            codes.push(warm_up(side, scenario, args).await?);
        }
        let mut runs: Vec<Run> = Vec::new();
        for round in 0..args.runs {
            for &conns in &args.conns {
                for (side, codes) in sides.iter().zip(&mut codes) {
                    let mut retries = 0;
                    let run = loop {
                        // Stateful scenarios spend tokens: each run gets its own.
                        let loads = side.loads(scenario, args.threads, conns, *codes).await?;
                        let before = side.cpu_ticks()?;
                        let result =
                            wrk::run_all(&loads, Duration::from_secs(args.duration)).await?;
                        let cpu = (side.cpu_ticks()? - before) as f64 / hz;
                        let run = Run::new(side.name(), conns, round, &result, cpu);
                        println!("{}", run.line());
                        // The code exchange alone: a run that ran out of codes measured
                        // something else at its end; it is made again with twice the codes.
                        if result.dry == 0 || retries == CODE_RETRIES {
                            // The next run's codes follow the rate this one reached.
                            if scenario == Scenario::Code {
                                *codes = (*codes).max(codes_for(run.rps, args.duration));
                            }
                            break run;
                        }
                        retries += 1;
                        *codes *= 2;
                        println!(
                            "   {:<14} c={conns} run {}: ran out of codes, again with {codes}",
                            side.name(),
                            round + 1
                        );
                    };
                    runs.push(run);
                }
            }
        }
        for (side, idle) in sides.iter().zip(idle_rss) {
            report.results.extend(Measured::of(
                scenario,
                side.name(),
                &runs,
                idle,
                side.peak_rss_kib()?,
            ));
        }
        for side in sides {
            side.stop().await;
        }
        // The sign-ins' reference, with no server running: what the cores hash.
        if scenario == Scenario::Signin {
            report.password_hashes = Some(limits::password_hashes().await?);
        }
    }
    Ok(report)
}

/// The warm-up of `scenario` on `side`: `--warmup` seconds of its load at 16 connections.
/// For the `code` scenario, also how many codes each measured run needs: the warm-up runs
/// with a pool of codes of a guessed size, doubled until it lasts the warm-up, and the rate
/// it measured sizes the runs' pools (`CODE_OVERPROVISION`). 0 for the other scenarios.
async fn warm_up(side: &Side, scenario: Scenario, args: &Args) -> anyhow::Result<usize> {
    let warmup = Duration::from_secs(args.warmup);
    if scenario != Scenario::Code {
        let loads = side.loads(scenario, args.threads, 16, 0).await?;
        wrk::run_all(&loads, warmup).await?;
        return Ok(0);
    }
    let seconds = args.warmup.max(1) as f64;
    let mut pool = (CODE_GUESS_PER_S * seconds) as usize;
    for _ in 0..4 {
        let loads = side.loads(scenario, args.threads, 16, pool).await?;
        let result: Outcome = wrk::run_all(&loads, warmup).await?;
        if result.dry == 0 {
            let rate = result.flows.unwrap_or(0) as f64 * 1e6 / result.duration_us.max(1) as f64;
            let codes = codes_for(rate, args.duration);
            println!(
                "   {:<14} warm-up: {rate:.0} codes exchanged/s, {codes} codes made before each run",
                side.name()
            );
            return Ok(codes);
        }
        pool *= 2;
    }
    bail!(
        "{}: the warm-up of the code exchange spent {} codes in under {} s, four times over",
        side.name(),
        pool / 2,
        args.warmup
    )
}

/// The codes a run of `duration` seconds of the `code` scenario needs at `rate` exchanges
/// per second, overprovisioned.
fn codes_for(rate: f64, duration: u64) -> usize {
    ((rate * duration as f64 * CODE_OVERPROVISION).ceil() as usize).max(100)
}
