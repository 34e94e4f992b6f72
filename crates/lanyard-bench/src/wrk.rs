//! The load generator: wrk, driven by a Lua script written for each run, which reports its
//! figures as one JSON line.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::Command;

/// The requests of one run.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    pub(crate) method: reqwest::Method,
    pub(crate) url: String,
    /// wrk threads and connections, set when the load is spread (`Side::loads`).
    pub(crate) threads: usize,
    pub(crate) conns: usize,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
}

/// What each request carries.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// The same body every time (may be empty).
    Fixed(String),
    /// `grant_type=refresh_token` with a token from a pool: each answer's new refresh token
    /// goes back into the pool, so every token is spent once and each connection follows a
    /// rotation chain.
    Refresh(Vec<String>),
}

impl Load {
    fn new(
        method: reqwest::Method,
        url: String,
        headers: Vec<(&'static str, String)>,
        body: Body,
    ) -> Self {
        Self {
            method,
            url,
            threads: 1,
            conns: 1,
            headers,
            body,
        }
    }

    pub(crate) fn get(url: String) -> Self {
        Self::new(
            reqwest::Method::GET,
            url,
            Vec::new(),
            Body::Fixed(String::new()),
        )
    }

    pub(crate) fn post(url: String, headers: Vec<(&'static str, String)>, body: String) -> Self {
        Self::new(reqwest::Method::POST, url, headers, Body::Fixed(body))
    }

    pub(crate) fn refresh(
        url: String,
        headers: Vec<(&'static str, String)>,
        tokens: Vec<String>,
    ) -> Self {
        Self::new(reqwest::Method::POST, url, headers, Body::Refresh(tokens))
    }

    /// The Lua script for wrk.
    fn script(&self, threads: usize) -> String {
        let mut lua = String::new();
        let headers: String = self
            .headers
            .iter()
            .map(|(name, value)| format!("[{}] = {}, ", lua_string(name), lua_string(value)))
            .collect();
        match &self.body {
            Body::Fixed(body) => {
                lua.push_str(&format!(
                    "wrk.method = {}\n",
                    lua_string(self.method.as_str())
                ));
                if !body.is_empty() {
                    lua.push_str(&format!("wrk.body = {}\n", lua_string(body)));
                }
                lua.push_str(&format!("wrk.headers = {{ {headers} }}\n"));
            }
            Body::Refresh(tokens) => {
                let all: String = tokens.iter().map(|t| lua_string(t) + ", ").collect();
                lua.push_str(&format!(
                    r#"local ALL = {{ {all} }}
local HEADERS = {{ {headers} }}
local NTHREADS = {threads}
local made = 0
function setup(thread)
  made = made + 1
  thread:set("id", made)
end
function init(args)
  pool = {{}}
  for i, t in ipairs(ALL) do
    if (i - 1) % NTHREADS == id - 1 then pool[#pool + 1] = t end
  end
end
function request()
  local t = table.remove(pool) or "the-pool-ran-dry"
  return wrk.format("POST", nil, HEADERS, "grant_type=refresh_token&refresh_token=" .. t)
end
function response(status, headers, body)
  local t = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if t then pool[#pool + 1] = t end
end
"#
                ));
            }
        }
        lua.push_str(
            r#"function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"#,
        );
        lua
    }
}

/// A Lua string literal.
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What wrk reports of one run.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct Outcome {
    pub(crate) requests: u64,
    pub(crate) duration_us: u64,
    pub(crate) connect: u64,
    pub(crate) read: u64,
    pub(crate) write: u64,
    /// Answers with a status of 400 or more.
    pub(crate) status: u64,
    pub(crate) timeout: u64,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) max_us: u64,
}

impl Outcome {
    /// Requests that did not get a 2xx/3xx answer.
    pub(crate) fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout
    }
}

/// `wrk` must be on the path.
pub(crate) async fn check_installed() -> anyhow::Result<()> {
    let found = Command::new("wrk").arg("--version").output().await;
    if found.is_err() {
        bail!("wrk is missing: apt-get install wrk (bench/run installs it)");
    }
    Ok(())
}

/// One wrk per load, all at once for `duration` (one per process of a side), their figures
/// merged: requests and errors summed, the median latency averaged over the instances
/// weighted by requests, the 99th percentile and the maximum the worst instance's.
pub(crate) async fn run_all(loads: &[Load], duration: Duration) -> anyhow::Result<Outcome> {
    let mut runs = tokio::task::JoinSet::new();
    for (i, load) in loads.iter().enumerate() {
        let load = load.clone();
        runs.spawn(async move { run(&load, load.threads, load.conns, duration, i).await });
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = runs.join_next().await {
        outcomes.push(outcome??);
    }
    Ok(merge(&outcomes))
}

fn merge(outcomes: &[Outcome]) -> Outcome {
    let requests: u64 = outcomes.iter().map(|o| o.requests).sum();
    let weighted: u64 = outcomes.iter().map(|o| o.p50_us * o.requests).sum();
    Outcome {
        requests,
        duration_us: outcomes.iter().map(|o| o.duration_us).max().unwrap_or(0),
        connect: outcomes.iter().map(|o| o.connect).sum(),
        read: outcomes.iter().map(|o| o.read).sum(),
        write: outcomes.iter().map(|o| o.write).sum(),
        status: outcomes.iter().map(|o| o.status).sum(),
        timeout: outcomes.iter().map(|o| o.timeout).sum(),
        p50_us: weighted / requests.max(1),
        p99_us: outcomes.iter().map(|o| o.p99_us).max().unwrap_or(0),
        max_us: outcomes.iter().map(|o| o.max_us).max().unwrap_or(0),
    }
}

/// One wrk run of `load`.
async fn run(
    load: &Load,
    threads: usize,
    conns: usize,
    duration: Duration,
    instance: usize,
) -> anyhow::Result<Outcome> {
    let threads = threads.min(conns).max(1);
    let script = std::env::temp_dir().join(format!(
        "lanyard-bench-{}-{conns}-{instance}.lua",
        std::process::id(),
    ));
    std::fs::write(&script, load.script(threads))?;
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .args(["--timeout", "10s", "-s"])
        .arg(&script)
        .arg(&load.url)
        .kill_on_drop(true)
        .output()
        .await
        .context("wrk")?;
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK-JSON "))
        .with_context(|| {
            format!(
                "wrk printed no figures: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    Ok(serde_json::from_str(line)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refresh_script_splits_the_pool_between_threads_and_keeps_each_new_token() {
        let load = Load::refresh(
            "http://127.0.0.1:1/token".to_owned(),
            vec![("Authorization", "Basic YTpi".to_owned())],
            vec!["t1".to_owned(), "t\"2".to_owned()],
        );
        let lua = load.script(2);
        assert!(lua.contains(r#"local ALL = { "t1", "t\"2",  }"#), "{lua}");
        assert!(lua.contains("local NTHREADS = 2"));
        assert!(lua.contains(r#"["Authorization"] = "Basic YTpi""#));
        assert!(lua.contains("pool[#pool + 1] = t"), "answers feed the pool");
        assert!(lua.contains("WRK-JSON"), "figures come back as JSON");
    }

    #[test]
    fn runs_at_several_processes_add_up() {
        let one = |requests, p50_us, p99_us, status| Outcome {
            requests,
            duration_us: 10_000_000,
            connect: 0,
            read: 0,
            write: 0,
            status,
            timeout: 0,
            p50_us,
            p99_us,
            max_us: p99_us,
        };
        let merged = merge(&[one(300, 1_000, 5_000, 1), one(100, 2_000, 9_000, 2)]);
        assert_eq!(merged.requests, 400);
        assert_eq!(merged.errors(), 3);
        assert_eq!(merged.p50_us, 1_250, "weighted by requests");
        assert_eq!(merged.p99_us, 9_000, "the worst instance's");
    }

    #[test]
    fn a_fixed_request_sets_method_body_and_headers() {
        let lua = Load::post(
            "http://127.0.0.1:1/token".to_owned(),
            vec![(
                "Content-Type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            "grant_type=client_credentials".to_owned(),
        )
        .script(1);
        assert!(lua.contains(r#"wrk.method = "POST""#));
        assert!(lua.contains(r#"wrk.body = "grant_type=client_credentials""#));
        assert!(
            !Load::get("http://x/".to_owned())
                .script(1)
                .contains("wrk.body")
        );
    }
}
