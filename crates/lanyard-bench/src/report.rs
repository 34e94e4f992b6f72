//! The figures: each run, the medians per scenario and side, the table, the targets, the
//! JSON and the chart.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use serde::Serialize;

use crate::limits::{Limits, PasswordHashes};
use crate::wrk::Outcome;
use crate::{Args, Scenario};

const LANYARD: &str = "Lanyard";
const PEER: &str = "oidc-provider";

/// One measured run of one side.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Run {
    pub(crate) side: &'static str,
    pub(crate) conns: usize,
    pub(crate) round: usize,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) errors: u64,
    pub(crate) requests: u64,
    /// Server CPU time (every thread) during the run, seconds.
    pub(crate) cpu_s: f64,
    /// Flows completed (a token answer with an ID token each); `None` for the scenarios of
    /// single requests.
    pub(crate) flows: Option<u64>,
    /// Requests sent when no code was left (the code exchange alone): its pool was too small.
    pub(crate) dry: u64,
}

impl Run {
    pub(crate) fn new(
        side: &'static str,
        conns: usize,
        round: usize,
        outcome: &Outcome,
        cpu_s: f64,
    ) -> Self {
        Self {
            side,
            conns,
            round,
            rps: outcome.requests as f64 * 1e6 / outcome.duration_us.max(1) as f64,
            p50_ms: outcome.p50_us as f64 / 1e3,
            p99_ms: outcome.p99_us as f64 / 1e3,
            errors: outcome.errors(),
            requests: outcome.requests,
            cpu_s,
            flows: outcome.flows,
            dry: outcome.dry,
        }
    }

    fn cpu_us_per_request(&self) -> f64 {
        self.cpu_s * 1e6 / self.requests.max(1) as f64
    }

    /// Flows per second, for the flow scenarios.
    fn flows_per_s(&self) -> Option<f64> {
        let seconds = self.requests as f64 / self.rps.max(1e-9);
        self.flows.map(|f| f as f64 / seconds.max(1e-9))
    }

    /// Server CPU time per completed flow, microseconds, for the flow scenarios.
    fn cpu_us_per_flow(&self) -> Option<f64> {
        self.flows.map(|f| self.cpu_s * 1e6 / f.max(1) as f64)
    }

    /// A progress line.
    pub(crate) fn line(&self) -> String {
        let mut line = format!(
            "   {:<14} c={:<3} run {}: {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {:>5.0} µs CPU/req  {} errors",
            self.side,
            self.conns,
            self.round + 1,
            self.rps,
            self.p50_ms,
            self.p99_ms,
            self.cpu_us_per_request(),
            self.errors
        );
        if let (Some(fps), Some(cpu)) = (self.flows_per_s(), self.cpu_us_per_flow()) {
            line.push_str(&format!("  {fps:>7.0} flows/s  {cpu:>5.0} µs CPU/flow"));
        }
        if self.dry > 0 {
            line.push_str(&format!(
                "  ({} requests found no code left: the pool was too small)",
                self.dry
            ));
        }
        line
    }
}

/// The medians of one side's runs of one scenario at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measured {
    pub(crate) scenario: Scenario,
    pub(crate) side: &'static str,
    pub(crate) conns: usize,
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Server CPU time per request, microseconds.
    pub(crate) cpu_us_per_request: f64,
    /// Server CPU use during the runs; 100 = one core.
    pub(crate) cpu_percent: f64,
    /// Over every run, summed.
    pub(crate) errors: u64,
    /// Resident memory after start and set-up, before any load, MiB.
    pub(crate) idle_rss_mib: f64,
    /// The most resident memory the process had in the scenario, MiB.
    pub(crate) peak_rss_mib: f64,
    /// Completed flows per second (a token answer with an ID token each), for the flow
    /// scenarios (`sso`, `code`, `signin`).
    pub(crate) flows_per_s: Option<f64>,
    /// Server CPU time per completed flow, microseconds, for the flow scenarios.
    pub(crate) cpu_us_per_flow: Option<f64>,
    pub(crate) runs: Vec<Run>,
}

impl Measured {
    /// One entry per concurrency that `side` ran `scenario` at.
    pub(crate) fn of(
        scenario: Scenario,
        side: &'static str,
        runs: &[Run],
        idle_kib: u64,
        peak_kib: u64,
    ) -> Vec<Self> {
        let mut conns: Vec<usize> = runs.iter().map(|r| r.conns).collect();
        conns.sort_unstable();
        conns.dedup();
        conns
            .into_iter()
            .map(|c| {
                let mine: Vec<Run> = runs
                    .iter()
                    .filter(|r| r.side == side && r.conns == c)
                    .cloned()
                    .collect();
                let duration: f64 = mine
                    .iter()
                    .map(|r| r.requests as f64 / r.rps.max(1e-9))
                    .sum();
                let cpu: f64 = mine.iter().map(|r| r.cpu_s).sum();
                Self {
                    scenario,
                    side,
                    conns: c,
                    rps: median(mine.iter().map(|r| r.rps)),
                    p50_ms: median(mine.iter().map(|r| r.p50_ms)),
                    p99_ms: median(mine.iter().map(|r| r.p99_ms)),
                    cpu_us_per_request: median(mine.iter().map(Run::cpu_us_per_request)),
                    cpu_percent: 100.0 * cpu / duration.max(1e-9),
                    errors: mine.iter().map(|r| r.errors).sum(),
                    idle_rss_mib: idle_kib as f64 / 1024.0,
                    peak_rss_mib: peak_kib as f64 / 1024.0,
                    flows_per_s: scenario
                        .is_flow()
                        .then(|| median(mine.iter().filter_map(Run::flows_per_s))),
                    cpu_us_per_flow: scenario
                        .is_flow()
                        .then(|| median(mine.iter().filter_map(Run::cpu_us_per_flow))),
                    runs: mine,
                }
            })
            .collect()
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Where and how the run was made.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Setting {
    pub(crate) date: String,
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) memory: String,
    pub(crate) kernel: String,
    pub(crate) lanyard_commit: String,
    pub(crate) lanyard_on: String,
    /// Lanyard processes sharing the load (figures of CPU and memory are their sums).
    pub(crate) lanyard_nodes: usize,
    /// What access tokens are signed with, on both sides.
    pub(crate) access_token_alg: String,
    pub(crate) peer: String,
    pub(crate) node: String,
    pub(crate) wrk: String,
    pub(crate) duration_s: u64,
    pub(crate) warmup_s: u64,
    pub(crate) runs: usize,
    pub(crate) threads: usize,
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) setting: Setting,
    pub(crate) results: Vec<Measured>,
    pub(crate) limits: Option<Limits>,
    /// The password hashes the cores can do: measured with the `signin` scenario (with or
    /// without the other limits).
    pub(crate) password_hashes: Option<PasswordHashes>,
    /// The `fanout` scenario.
    pub(crate) fanout: Option<crate::fanout::Fanout>,
}

impl Report {
    pub(crate) fn new(args: &Args, lanyard_on: String) -> Self {
        let peer_version = std::fs::read_to_string(
            args.peer_dir
                .join("node_modules/oidc-provider/package.json"),
        )
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|json| json["version"].as_str().map(str::to_owned))
        .unwrap_or_default();
        Self {
            setting: Setting {
                date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
                cpu: proc_field("/proc/cpuinfo", "model name"),
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                memory: proc_field("/proc/meminfo", "MemTotal"),
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                lanyard_commit: output("git", &["rev-parse", "--short", "HEAD"]),
                lanyard_on,
                lanyard_nodes: args.lanyard_nodes,
                access_token_alg: args.access_token_alg.clone(),
                peer: format!("oidc-provider {peer_version}"),
                node: output("node", &["--version"]),
                wrk: output("wrk", &["--version"])
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" "),
                duration_s: args.duration,
                warmup_s: args.warmup,
                runs: args.runs,
                threads: args.threads,
            },
            results: Vec::new(),
            limits: None,
            password_hashes: None,
            fanout: None,
        }
    }

    fn find(&self, scenario: Scenario, side: &str, conns: usize) -> Option<&Measured> {
        self.results
            .iter()
            .find(|m| m.scenario == scenario && m.side == side && m.conns == conns)
    }

    /// Scenario and concurrency pairs, in the order measured.
    fn pairs(&self) -> Vec<(Scenario, usize)> {
        let mut pairs = Vec::new();
        for m in &self.results {
            if !pairs.contains(&(m.scenario, m.conns)) {
                pairs.push((m.scenario, m.conns));
            }
        }
        pairs
    }

    /// The table (Markdown, for docs/performance.md), the limits and the targets.
    pub(crate) fn print(&self) {
        let s = &self.setting;
        println!(
            "\n{} · {} × {} · {} · Linux {} · Lanyard {} on {}, {} node(s) · {} on node {} · access tokens {} · {}, {} threads, {} s runs × {} per side, {} s warm-up\n",
            s.date,
            s.cores,
            s.cpu,
            s.memory,
            s.kernel,
            s.lanyard_commit,
            s.lanyard_on,
            s.lanyard_nodes,
            s.peer,
            s.node,
            s.access_token_alg,
            s.wrk,
            s.threads,
            s.duration_s,
            s.runs,
            s.warmup_s
        );
        println!(
            "| scenario | conns | Lanyard req/s | peer req/s | Lanyard/peer | Lanyard p50 / p99 ms | peer p50 / p99 ms | Lanyard CPU µs/req | peer CPU µs/req | Lanyard CPU % | peer CPU % | peak RSS MiB Lanyard / peer | errors Lanyard / peer |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for (scenario, conns) in self.pairs() {
            let Some(a) = self.find(scenario, LANYARD, conns) else {
                continue;
            };
            // A scenario the peer does not run (`signin`) shows "—" on its side.
            let b = self.find(scenario, PEER, conns);
            let peer = |f: &dyn Fn(&Measured) -> String| b.map_or_else(|| "—".to_owned(), f);
            println!(
                "| {} | {} | {:.0} | {} | {} | {:.2} / {:.2} | {} | {:.0} | {} | {:.0} | {} | {:.0} / {} | {} / {} |",
                scenario.name(),
                conns,
                a.rps,
                peer(&|b| format!("{:.0}", b.rps)),
                peer(&|b| format!("**{:.2}×**", a.rps / b.rps.max(1e-9))),
                a.p50_ms,
                a.p99_ms,
                peer(&|b| format!("{:.2} / {:.2}", b.p50_ms, b.p99_ms)),
                a.cpu_us_per_request,
                peer(&|b| format!("{:.0}", b.cpu_us_per_request)),
                a.cpu_percent,
                peer(&|b| format!("{:.0}", b.cpu_percent)),
                a.peak_rss_mib,
                peer(&|b| format!("{:.0}", b.peak_rss_mib)),
                a.errors,
                peer(&|b| b.errors.to_string()),
            );
        }
        let flows: Vec<(Scenario, usize)> = self
            .pairs()
            .into_iter()
            .filter(|(scenario, _)| scenario.is_flow())
            .collect();
        if !flows.is_empty() {
            println!(
                "\nWhole flows (a token answer with an ID token each):\n\n| flow | conns | Lanyard flows/s | peer flows/s | Lanyard/peer | Lanyard CPU µs/flow | peer CPU µs/flow | of the password-hash limit |"
            );
            println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
        }
        for (scenario, conns) in flows {
            let Some(a) = self.find(scenario, LANYARD, conns) else {
                continue;
            };
            let b = self.find(scenario, PEER, conns);
            let peer = |f: &dyn Fn(&Measured) -> String| b.map_or_else(|| "—".to_owned(), f);
            let fps = |m: &Measured| m.flows_per_s.unwrap_or_default();
            let cpu = |m: &Measured| m.cpu_us_per_flow.unwrap_or_default();
            let of_limit = match (scenario, &self.password_hashes) {
                (Scenario::Signin, Some(h)) => {
                    format!("{:.0}%", 100.0 * fps(a) / h.per_s_all_cores.max(1e-9))
                }
                _ => "—".to_owned(),
            };
            println!(
                "| {} | {} | {:.0} | {} | {} | {:.0} | {} | {} |",
                scenario.name(),
                conns,
                fps(a),
                peer(&|b| format!("{:.0}", fps(b))),
                peer(&|b| format!("**{:.2}×**", fps(a) / fps(b).max(1e-9))),
                cpu(a),
                peer(&|b| format!("{:.0}", cpu(b))),
                of_limit,
            );
        }
        let idle: Vec<String> = [LANYARD, PEER]
            .iter()
            .filter_map(|side| {
                let m = self.results.iter().find(|m| m.side == *side)?;
                Some(format!("{side} {:.1} MiB", m.idle_rss_mib))
            })
            .collect();
        println!("\nIdle resident memory after start: {}", idle.join(", "));
        if let Some(l) = &self.limits {
            println!("\nLimits on this machine:");
            if let (Some(one), Some(all)) = (l.openssl_sign_per_s, l.openssl_sign_per_s_all_cores) {
                println!(
                    "- openssl speed ({}): {one:.0} signs/s on one core ({:.1} µs), {all:.0}/s on {} cores; {:.0} verifies/s",
                    l.alg,
                    1e6 / one,
                    l.cores,
                    l.openssl_verify_per_s.unwrap_or_default()
                );
            }
            println!(
                "- Lanyard's {} signer (aws-lc-rs): {:.0} signs/s on one core ({:.1} µs), {:.0}/s on {} cores",
                l.alg,
                l.lanyard_sign_per_s,
                1e6 / l.lanyard_sign_per_s,
                l.lanyard_sign_per_s_all_cores,
                l.cores
            );
            println!(
                "- bare RS256 verification (aws-lc-rs): {:.1} µs",
                l.rs256_verify_us
            );
            if let (Some(p50), Some(p99)) = (l.redis_rtt_p50_us, l.redis_rtt_p99_us) {
                println!("- Redis PING round trip: p50 {p50:.0} µs, p99 {p99:.0} µs");
            }
        }
        if let Some(h) = &self.password_hashes {
            println!(
                "\nPassword hashes on this machine (Lanyard's hasher, {}): {:.0}/s on one core ({:.1} ms), {:.0}/s on {} cores; {:.1} ms of CPU each ({:.0}/s on {} idle cores)",
                h.params,
                h.per_s_one_core,
                1e3 / h.per_s_one_core.max(1e-9),
                h.per_s_all_cores,
                h.cores,
                h.cpu_ms_per_hash,
                h.cores as f64 * 1e3 / h.cpu_ms_per_hash.max(1e-9),
                h.cores
            );
        }
        if let Some(f) = &self.fanout {
            println!("\nRevocation feed fan-out: {}", f.line());
        }
        println!("\nTargets (issue 26):");
        for line in self.verdicts() {
            println!("- {line}");
        }
    }

    /// Each target of issue 9 (and of issue 26 for the flows) this run can judge, with its
    /// figures.
    pub(crate) fn verdicts(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let judge = |met: bool| if met { "met" } else { "MISSED" };
        for (scenario, conns) in self.pairs() {
            // Sign-ins are measured against the password hashes the cores can do.
            if scenario == Scenario::Signin {
                if let (Some(a), Some(h)) =
                    (self.find(scenario, LANYARD, conns), &self.password_hashes)
                {
                    let fps = a.flows_per_s.unwrap_or_default();
                    let share = fps / h.per_s_all_cores.max(1e-9);
                    // The same from CPU times, which other work on the machine moves less:
                    // the share of a sign-in's CPU that is its password hash.
                    let cpu_ms = a.cpu_us_per_flow.unwrap_or_default() / 1e3;
                    lines.push(format!(
                        "{} c={conns}: {fps:.0} sign-ins/s, {:.0}% of the password hashes {} cores do ({:.0}/s, {}), target 90%: {}; by CPU time: {cpu_ms:.1} ms per sign-in, {:.1} ms of it the hash ({:.0}%)",
                        scenario.name(),
                        100.0 * share,
                        h.cores,
                        h.per_s_all_cores,
                        h.params,
                        judge(share >= 0.9),
                        h.cpu_ms_per_hash,
                        100.0 * h.cpu_ms_per_hash / cpu_ms.max(1e-9),
                    ));
                }
                continue;
            }
            let (Some(a), Some(b)) = (
                self.find(scenario, LANYARD, conns),
                self.find(scenario, PEER, conns),
            ) else {
                continue;
            };
            // Flows are compared in flows, the rest in requests.
            let ratio = match (a.flows_per_s, b.flows_per_s) {
                (Some(x), Some(y)) => x / y.max(1e-9),
                _ => a.rps / b.rps.max(1e-9),
            };
            let (want, extra) = match scenario {
                Scenario::Discovery | Scenario::Jwks => (3.0, String::new()),
                Scenario::Introspect | Scenario::Userinfo => (2.0, String::new()),
                Scenario::Token => {
                    let lower_p99 = a.p99_ms < b.p99_ms;
                    let mut extra = format!(
                        ", p99 {:.1} vs {:.1} ms: {}",
                        a.p99_ms,
                        b.p99_ms,
                        judge(lower_p99)
                    );
                    // The 75% target is for RS256, where signing bounds the endpoint; with
                    // ES256 or EdDSA the fraction is shown, and the target is 3× the peer.
                    let rs256 = self.setting.access_token_alg == "RS256";
                    if let Some(l) = &self.limits
                        && let Some(all) = l.openssl_sign_per_s_all_cores
                    {
                        let fraction = a.rps / all;
                        extra.push_str(&format!(
                            "; {:.0}% of what {} cores sign {} with OpenSSL ({all:.0}/s), {:.0}% of Lanyard's signer on them ({:.0}/s)",
                            100.0 * fraction,
                            l.cores,
                            l.alg,
                            100.0 * a.rps / l.lanyard_sign_per_s_all_cores,
                            l.lanyard_sign_per_s_all_cores,
                        ));
                        if rs256 {
                            extra.push_str(&format!(", target 85%: {}", judge(fraction >= 0.85)));
                        }
                    }
                    (if rs256 { 2.3 } else { 3.0 }, extra)
                }
                Scenario::Sso => (2.0, " (flows/s)".to_owned()),
                Scenario::Refresh => (2.2, String::new()),
                // No target of its own; shown for completeness.
                Scenario::Code | Scenario::Signin | Scenario::Fanout => (0.0, String::new()),
            };
            if want > 0.0 {
                lines.push(format!(
                    "{} c={conns}: {ratio:.2}× the peer, target {want}×: {}{extra}",
                    scenario.name(),
                    judge(ratio >= want)
                ));
            }
        }
        let nodes = self.setting.lanyard_nodes.max(1) as f64;
        if let Some(m) = self.results.iter().find(|m| m.side == LANYARD) {
            let per_node = m.idle_rss_mib / nodes;
            lines.push(format!(
                "idle node: {per_node:.1} MiB resident, target 20 MiB: {}",
                judge(per_node <= 20.0)
            ));
        }
        let peaks = self.results.iter().filter(|m| m.side == LANYARD);
        if let Some(m) = peaks.max_by(|a, b| a.peak_rss_mib.total_cmp(&b.peak_rss_mib)) {
            let per_node = m.peak_rss_mib / nodes;
            lines.push(format!(
                "highest peak of a node: {per_node:.1} MiB resident ({}), target 64 MiB under every scenario: {}",
                m.scenario.name(),
                judge(per_node <= 64.0)
            ));
        }
        if let Some(f) = &self.fanout {
            lines.push(format!(
                "revocation feed to {} subscribers: p99 {:.1} ms, target 250 ms: {}; {:.0} bytes of Lanyard's memory per subscriber",
                f.subscribers,
                f.p99_ms,
                judge(f.p99_ms <= 250.0),
                f.bytes_per_subscriber
            ));
        }
        lines
    }
}

fn output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn proc_field(file: &str, name: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

const FONT_FILES: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Two panels for the highest concurrency measured: requests per second (log scale) and
/// p99 latency, Lanyard beside the peer for each scenario.
pub(crate) fn chart(report: &Report, path: &Path) -> anyhow::Result<()> {
    let font = FONT_FILES
        .iter()
        .find_map(|f| std::fs::read(f).ok())
        .context("the chart needs DejaVu Sans: apt-get install fonts-dejavu-core")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| anyhow::anyhow!("DejaVu Sans did not load"))?;
    let conns = report.results.iter().map(|m| m.conns).max().unwrap_or(0);
    // A scenario the peer does not run (`signin`) has Lanyard's bar alone.
    let rows: Vec<(Scenario, &Measured, Option<&Measured>)> = report
        .pairs()
        .into_iter()
        .filter(|(_, c)| *c == conns)
        .filter_map(|(s, c)| Some((s, report.find(s, LANYARD, c)?, report.find(s, PEER, c))))
        .collect();
    // The flows of several requests are charted in flows per second.
    let per_second = |m: &Measured| m.flows_per_s.unwrap_or(m.rps);
    let root = BitMapBackend::new(path, (1500, 620)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        &format!(
            "Lanyard ({}) vs {} · {} access tokens · {} connections · {} × {} · {}",
            report.setting.lanyard_on,
            report.setting.peer,
            report.setting.access_token_alg,
            conns,
            report.setting.cores,
            report.setting.cpu,
            report.setting.date
        ),
        ("sans-serif", 20),
    )?;
    let (left, right) = root.split_horizontally(750);
    let names: Vec<&'static str> = rows.iter().map(|r| short(r.0)).collect();
    panel(
        &left,
        "requests per second; flows for sso, sign-in (log scale; more is better)",
        &names,
        &rows
            .iter()
            .map(|r| (per_second(r.1), r.2.map_or(f64::NAN, per_second)))
            .collect::<Vec<_>>(),
        true,
    )?;
    panel(
        &right,
        "p99 latency, ms (less is better)",
        &names,
        &rows
            .iter()
            .map(|r| (r.1.p99_ms, r.2.map_or(f64::NAN, |m| m.p99_ms)))
            .collect::<Vec<_>>(),
        false,
    )?;
    root.present()?;
    Ok(())
}

fn short(s: Scenario) -> &'static str {
    match s {
        Scenario::Discovery => "discovery",
        Scenario::Jwks => "jwks",
        Scenario::Token => "token cc",
        Scenario::Refresh => "refresh",
        Scenario::Introspect => "introspect",
        Scenario::Userinfo => "userinfo",
        Scenario::Sso => "sso flow",
        Scenario::Code => "code exch.",
        Scenario::Signin => "sign-in",
        Scenario::Fanout => "feed fan-out",
    }
}

const LANYARD_COLOUR: RGBColor = RGBColor(0x1f, 0x5f, 0xa8);
const PEER_COLOUR: RGBColor = RGBColor(0xd9, 0x7a, 0x1c);

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    names: &[&str],
    values: &[(f64, f64)],
    log: bool,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let top = values
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .fold(1.0f64, f64::max)
        * 1.3;
    let x = -0.5..(names.len() as f64 - 0.5);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70);
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).copied().unwrap_or("").to_owned()
        } else {
            String::new()
        }
    };
    if log {
        let bottom = values
            .iter()
            .flat_map(|(a, b)| [*a, *b])
            .fold(f64::MAX, f64::min)
            .max(1.0)
            / 2.0;
        let mut chart = builder.build_cartesian_2d(x, (bottom..top).log_scale())?;
        chart
            .configure_mesh()
            .x_labels(names.len() * 2 + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .disable_x_mesh()
            .draw()?;
        bars(&mut chart, values, bottom)?;
    } else {
        let mut chart = builder.build_cartesian_2d(x, 0.0..top)?;
        chart
            .configure_mesh()
            .x_labels(names.len() * 2 + 1)
            .x_label_formatter(&label)
            .disable_x_mesh()
            .draw()?;
        bars(&mut chart, values, 0.0)?;
    }
    Ok(())
}

fn bars<'a, DB: DrawingBackend + 'a, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    values: &[(f64, f64)],
    bottom: f64,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let series = [
        (LANYARD, LANYARD_COLOUR, -0.4, 0.0),
        (PEER, PEER_COLOUR, 0.0, 0.4),
    ];
    for (k, (name, colour, from, to)) in series.into_iter().enumerate() {
        chart
            .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                let value = if k == 0 { v.0 } else { v.1 };
                // No bar for a side that did not run the scenario (NaN).
                let x = i as f64;
                value.is_finite().then(|| {
                    Rectangle::new(
                        [(x + from + 0.02, bottom), (x + to - 0.02, value)],
                        colour.filled(),
                    )
                })
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(side: &'static str, conns: usize, rps: f64, p99_us: u64) -> Run {
        let outcome = Outcome {
            requests: (rps * 10.0) as u64,
            duration_us: 10_000_000,
            connect: 0,
            read: 0,
            write: 0,
            status: 1,
            timeout: 0,
            p50_us: 1_000,
            p99_us,
            max_us: p99_us,
            flows: None,
            unexpected: 0,
            dry: 0,
        };
        Run::new(side, conns, 0, &outcome, 5.0)
    }

    #[test]
    fn medians_per_side_and_concurrency() {
        let runs = vec![
            run(LANYARD, 16, 100.0, 3_000),
            run(LANYARD, 16, 300.0, 1_000),
            run(LANYARD, 16, 200.0, 2_000),
            run(PEER, 16, 50.0, 9_000),
            run(LANYARD, 64, 400.0, 4_000),
        ];
        let measured = Measured::of(Scenario::Jwks, LANYARD, &runs, 10_240, 20_480);
        assert_eq!(measured.len(), 2, "one entry per concurrency");
        let m = &measured[0];
        assert_eq!(m.conns, 16);
        assert_eq!(m.rps, 200.0);
        assert_eq!(m.p99_ms, 2.0);
        assert_eq!(m.errors, 3);
        assert_eq!(m.runs.len(), 3, "the peer's run is not Lanyard's");
        assert_eq!(m.idle_rss_mib, 10.0);
        // 5 s of CPU over 10 s per run: half a core.
        assert!((m.cpu_percent - 50.0).abs() < 1e-6, "{}", m.cpu_percent);
        assert_eq!(median([4.0, 1.0].into_iter()), 2.5);
        assert_eq!(m.flows_per_s, None, "jwks is no flow");
    }

    #[test]
    fn flows_are_counted_per_second_and_per_cpu() {
        // 2,000 requests in 10 s, 1,000 of them completing a flow, 5 s of server CPU.
        let mut flow = run(LANYARD, 16, 200.0, 3_000);
        flow.flows = Some(1_000);
        let measured = Measured::of(Scenario::Sso, LANYARD, &[flow], 10_240, 20_480);
        let m = &measured[0];
        assert_eq!(m.rps, 200.0);
        assert!((m.flows_per_s.unwrap() - 100.0).abs() < 1e-6);
        assert!((m.cpu_us_per_flow.unwrap() - 5_000.0).abs() < 1e-6);
        assert!(
            !run(PEER, 16, 1.0, 1).line().contains("flows/s"),
            "no flows in the line of a single-request scenario"
        );
    }
}
