//! `lanyard-bench`: Lanyard and the peer provider side by side, in one run on one machine.
//!
//! Both servers get the same requests from the same load generator (wrk), with the same
//! concurrency and duration, in alternating runs (A B A B) so drift hits both alike. The
//! runner measures each server process's CPU time per request and peak memory, the
//! physical limits the figures are compared against (RSA signing per core, a bare RS256
//! verification, a Redis round trip), prints a table, and writes it as JSON and as a chart.
//! `bench/run` builds everything and starts it; `docs/performance.md` shows the output.
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool whose output is its table"
)]

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
    /// Skip the physical references (openssl, signer, verifier, Redis).
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
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::Discovery,
        Scenario::Jwks,
        Scenario::Token,
        Scenario::Refresh,
        Scenario::Introspect,
        Scenario::Userinfo,
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
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.scenarios.is_empty() {
        args.scenarios = Scenario::ALL.to_vec();
    }
    if args.runs == 0 || args.conns.is_empty() || args.duration == 0 || args.lanyard_nodes == 0 {
        bail!("--runs, --conns, --duration and --lanyard-nodes must be at least 1");
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
        let sides = [
            Side::start_lanyard(
                lanyard,
                backends,
                args.lanyard_nodes,
                &args.access_token_alg,
            )
            .await?,
            Side::start_peer(&args.peer_dir, &args.access_token_alg).await?,
        ];
        let mut idle_rss = Vec::new();
        for side in &sides {
            side.prepare(scenario).await?;
            idle_rss.push(side.rss_kib()?);
        }
        for side in &sides {
            let loads = side.loads(scenario, args.threads, 16).await?;
            wrk::run_all(&loads, Duration::from_secs(args.warmup)).await?;
        }
        let mut runs: Vec<Run> = Vec::new();
        for round in 0..args.runs {
            for &conns in &args.conns {
                for side in &sides {
                    // Stateful scenarios spend tokens: each run gets its own.
                    let loads = side.loads(scenario, args.threads, conns).await?;
                    let before = side.cpu_ticks()?;
                    let result = wrk::run_all(&loads, Duration::from_secs(args.duration)).await?;
                    let cpu = (side.cpu_ticks()? - before) as f64 / hz;
                    let run = Run::new(side.name(), conns, round, &result, cpu);
                    println!("{}", run.line());
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
    }
    Ok(report)
}
