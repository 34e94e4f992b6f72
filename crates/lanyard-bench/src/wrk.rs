//! The load generator: wrk, driven by a Lua script written for each run, which reports its
//! figures as one JSON line.

use std::path::Path;
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
    /// An authorization-code flow, or its last step alone (`Flow`).
    Flow(Flow),
}

/// A flow driven from a pool of authorization codes, one pool per wrk thread: a request
/// spends a code from the pool at the token endpoint if there is one, else runs `start`;
/// an answer redirecting with `code=` in its `Location` puts the code into the pool, and a
/// token answer with an `"id_token"` counts as a completed flow. The load's URL is the token
/// endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    /// The request that is answered with a code: `GET /authorize` with a session cookie
    /// (single sign-on), or the sign-in form's `POST`. `None`: only the codes made beforehand
    /// are spent (the code exchange alone); once they are gone, each request sends a code
    /// that does not exist, counted as `dry` (and answered 400).
    pub(crate) start: Option<Step>,
    /// The token request's headers (client authentication, form type).
    pub(crate) token_headers: Vec<(&'static str, String)>,
    /// The token request's form without the code, which is appended: it ends in `code=`.
    pub(crate) token_form: String,
    /// Codes made beforehand, oldest first (spent in that order: codes expire).
    pub(crate) codes: Vec<String>,
}

/// One request of a flow, other than the token request.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) method: reqwest::Method,
    /// Absolute; wrk sends its path and query to the load's host.
    pub(crate) url: String,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: String,
    /// Above 0: each request's body gets a number appended, counting up and wrapping at
    /// this (`...&username=bench` then `0`, `1`, ...); each wrk thread starts at its own
    /// offset, so that threads do not send the same number at once.
    pub(crate) numbered: usize,
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

    pub(crate) fn flow(url: String, flow: Flow) -> Self {
        Self::new(reqwest::Method::POST, url, Vec::new(), Body::Flow(flow))
    }

    /// The Lua script for wrk; `codes` is the file `run` writes a flow's codes to, one a line.
    fn script(&self, threads: usize, codes: &Path) -> anyhow::Result<String> {
        let mut lua = String::new();
        let headers = lua_headers(&self.headers);
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
            Body::Flow(flow) => lua.push_str(&flow.script(threads, codes)?),
        }
        lua.push_str(
            r#"function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d%s}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, extra and extra() or ""))
end
"#,
        );
        Ok(lua)
    }
}

impl Flow {
    /// The flow's part of the script: the pool, `request`, `response`, and `extra` (the
    /// flows, unexpected answers and dry requests of every thread, for `done`).
    fn script(&self, threads: usize, codes: &Path) -> anyhow::Result<String> {
        let start = match &self.start {
            None => "nil".to_owned(),
            Some(step) => {
                let headers = lua_headers(&step.headers);
                let body = if step.body.is_empty() && step.numbered == 0 {
                    "nil".to_owned()
                } else {
                    lua_string(&step.body)
                };
                format!(
                    "{{ method = {}, path = {}, headers = {{ {headers} }}, body = {body}, numbered = {} }}",
                    lua_string(step.method.as_str()),
                    lua_string(&path_and_query(&step.url)?),
                    step.numbered
                )
            }
        };
        let codes = if self.codes.is_empty() {
            "nil".to_owned()
        } else {
            lua_string(&codes.display().to_string())
        };
        Ok(format!(
            r#"local START = {start}
local TOKEN_HEADERS = {{ {token_headers} }}
local TOKEN_FORM = {token_form}
local CODES = {codes}
local NTHREADS = {threads}
local made = 0
local threads = {{}}
function setup(thread)
  made = made + 1
  thread:set("id", made)
  threads[made] = thread
end
function init(args)
  pool = {{}}
  flows = 0
  unexpected = 0
  dry = 0
  n = (id - 1) * math.floor(((START and START.numbered) or 0) / NTHREADS)
  if CODES then
    local mine, i = {{}}, 0
    for line in io.lines(CODES) do
      if i % NTHREADS == id - 1 then mine[#mine + 1] = line end
      i = i + 1
    end
    -- The pool is a stack: the oldest code goes on top.
    for k = #mine, 1, -1 do pool[#pool + 1] = mine[k] end
  end
end
function request()
  local code = table.remove(pool)
  if code then
    return wrk.format("POST", wrk.path, TOKEN_HEADERS, TOKEN_FORM .. code)
  end
  if START then
    local body = START.body
    if START.numbered > 0 then
      body = body .. (n % START.numbered)
      n = n + 1
    end
    return wrk.format(START.method, START.path, START.headers, body)
  end
  dry = dry + 1
  return wrk.format("POST", wrk.path, TOKEN_HEADERS, TOKEN_FORM .. "the-pool-ran-dry")
end
function response(status, headers, body)
  if status >= 300 and status < 400 then
    local location = headers["Location"] or headers["location"]
    local code = location and location:match("[?&]code=([^&#]+)")
    if code then pool[#pool + 1] = code else unexpected = unexpected + 1 end
  elseif status < 300 then
    if body and body:find('"id_token"', 1, true) then
      flows = flows + 1
    else
      unexpected = unexpected + 1
    end
  end
end
function extra()
  local f, u, d = 0, 0, 0
  for _, thread in ipairs(threads) do
    f = f + (thread:get("flows") or 0)
    u = u + (thread:get("unexpected") or 0)
    d = d + (thread:get("dry") or 0)
  end
  return string.format(',"flows":%d,"unexpected":%d,"dry":%d', f, u, d)
end
"#,
            token_headers = lua_headers(&self.token_headers),
            token_form = lua_string(&self.token_form),
        ))
    }
}

/// The path and query of an absolute URL: what wrk sends to its host.
fn path_and_query(url: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(url).with_context(|| format!("not a URL: {url}"))?;
    Ok(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// The inside of a Lua table of headers: `["Name"] = "value", ...`.
fn lua_headers(headers: &[(&'static str, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("[{}] = {}, ", lua_string(name), lua_string(value)))
        .collect()
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
    /// Flows only (`Body::Flow`): token answers with an ID token.
    #[serde(default)]
    pub(crate) flows: Option<u64>,
    /// Flows only: 2xx/3xx answers that brought neither a code nor an ID token (a sign-in
    /// page shown again, a redirect carrying an `error`).
    #[serde(default)]
    pub(crate) unexpected: u64,
    /// Flows only: requests sent with no code left in the pool (the code exchange alone).
    #[serde(default)]
    pub(crate) dry: u64,
}

impl Outcome {
    /// Requests that did not get a 2xx/3xx answer, and a flow's 2xx/3xx answers that did not
    /// do their step.
    pub(crate) fn errors(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.timeout + self.unexpected
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
        flows: outcomes.iter().filter_map(|o| o.flows).reduce(|a, b| a + b),
        unexpected: outcomes.iter().map(|o| o.unexpected).sum(),
        dry: outcomes.iter().map(|o| o.dry).sum(),
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
    let codes = script.with_extension("codes");
    if let Body::Flow(flow) = &load.body
        && !flow.codes.is_empty()
    {
        std::fs::write(&codes, flow.codes.join("\n") + "\n")?;
    }
    std::fs::write(&script, load.script(threads, &codes)?)?;
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
    let _ = std::fs::remove_file(&codes);
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
        let lua = load.script(2, Path::new("unused")).unwrap();
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
            flows: None,
            unexpected: 0,
            dry: 0,
        };
        let merged = merge(&[one(300, 1_000, 5_000, 1), one(100, 2_000, 9_000, 2)]);
        assert_eq!(merged.requests, 400);
        assert_eq!(merged.errors(), 3);
        assert_eq!(merged.p50_us, 1_250, "weighted by requests");
        assert_eq!(merged.p99_us, 9_000, "the worst instance's");
        assert_eq!(merged.flows, None, "no flows without a flow script");
        let flow = |flows, unexpected, dry| Outcome {
            flows: Some(flows),
            unexpected,
            dry,
            ..one(100, 1_000, 1_000, dry)
        };
        let merged = merge(&[flow(40, 1, 0), flow(50, 0, 2)]);
        assert_eq!(merged.flows, Some(90));
        assert_eq!(merged.dry, 2);
        assert_eq!(
            merged.errors(),
            3,
            "dry requests are answered 400; unexpected answers count too"
        );
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
        .script(1, Path::new("unused"))
        .unwrap();
        assert!(lua.contains(r#"wrk.method = "POST""#));
        assert!(lua.contains(r#"wrk.body = "grant_type=client_credentials""#));
        assert!(
            !Load::get("http://x/".to_owned())
                .script(1, Path::new("unused"))
                .unwrap()
                .contains("wrk.body")
        );
    }

    fn flow(start: Option<Step>, codes: Vec<String>) -> Load {
        Load::flow(
            "http://127.0.0.1:1/token".to_owned(),
            Flow {
                start,
                token_headers: vec![("Authorization", "Basic YTpi".to_owned())],
                token_form: "grant_type=authorization_code&code=".to_owned(),
                codes,
            },
        )
    }

    #[test]
    fn a_flow_script_starts_with_its_first_step_and_counts_what_comes_back() {
        let start = Step {
            method: reqwest::Method::POST,
            url: "http://127.0.0.1:1/signin?x=1".to_owned(),
            headers: vec![("Cookie", "lanyard_csrf=c".to_owned())],
            body: "password=p&username=bench".to_owned(),
            numbered: 64,
        };
        let lua = flow(Some(start), Vec::new())
            .script(2, Path::new("/tmp/codes"))
            .unwrap();
        assert!(
            lua.contains(r#"local START = { method = "POST", path = "/signin?x=1", headers = { ["Cookie"] = "lanyard_csrf=c",  }, body = "password=p&username=bench", numbered = 64 }"#),
            "{lua}"
        );
        assert!(
            lua.contains("local CODES = nil"),
            "no codes made beforehand"
        );
        assert!(lua.contains(r#"["Authorization"] = "Basic YTpi""#));
        assert!(lua.contains(r#"location:match("[?&]code=([^&#]+)")"#));
        assert!(
            lua.contains(r#"'"id_token"'"#),
            "an ID token completes a flow"
        );
        assert!(
            lua.contains("extra and extra()"),
            "done() reports the flows"
        );
    }

    #[test]
    fn the_code_exchange_alone_reads_its_codes_from_a_file() {
        let lua = flow(None, vec!["c1".to_owned()])
            .script(1, Path::new("/tmp/x.codes"))
            .unwrap();
        assert!(lua.contains("local START = nil"));
        assert!(lua.contains(r#"local CODES = "/tmp/x.codes""#), "{lua}");
        assert!(lua.contains("dry = dry + 1"), "an empty pool is counted");
    }
}
