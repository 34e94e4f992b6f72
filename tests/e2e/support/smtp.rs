//! A real SMTP server for the tests: `tests/interop/smtp/sink.py` (aiosmtpd, pinned in
//! `tests/interop/smtp/requirements.txt`) on a free port of 127.0.0.1, keeping each message it
//! accepts as a file in a folder of its own, read back as [`Mail`].
//!
//! The Python comes from `LANYARD_SMTP_PYTHON` (`.ci/run` sets it), else
//! `tests/interop/smtp/.venv/bin/python`; without it the sink fails saying how to make it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the server may take to print `ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// What sink.py writes before a message, once per envelope recipient (`…: <address>\r\n`).
const RCPT_LINE: &[u8] = b"X-Sink-Rcpt-To: ";

/// `tests/interop/smtp/sink.py`.
fn sink_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/smtp/sink.py")
}

/// The Python that has the pins of requirements.txt, or a panic saying how to get one.
fn python() -> String {
    let python = std::env::var("LANYARD_SMTP_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("interop/smtp/.venv/bin/python")
            .display()
            .to_string()
    });
    let why = match std::process::Command::new(&python)
        .arg(sink_script())
        .arg("--check-requirements")
        .output()
    {
        Ok(out) if out.status.success() => return python,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => e.to_string(),
    };
    panic!(
        "the SMTP sink needs aiosmtpd as tests/interop/smtp/requirements.txt pins it, in a virtual environment: \
         python3 -m venv tests/interop/smtp/.venv && tests/interop/smtp/.venv/bin/pip install -r tests/interop/smtp/requirements.txt \
         (or set LANYARD_SMTP_PYTHON to a python that has them). Tried: {python} ({why})"
    );
}

/// A running SMTP server on 127.0.0.1 that keeps what it receives; dropping it kills the
/// server and removes its folder.
pub(crate) struct SmtpSink {
    /// Its port, the same across restarts.
    port: u16,
    /// The Python it runs on.
    python: String,
    /// A temporary folder of its own: `mail/` (the messages) and `sink.log` (its stderr).
    root: PathBuf,
    /// The server, while it runs.
    child: Option<Child>,
    /// While it is stopped: its port, bound but not listening, so no other test's server
    /// takes it meanwhile (a client is still refused, as by a relay that is down).
    reserved: Option<tokio::net::TcpSocket>,
}

impl SmtpSink {
    /// Starts a sink on a free port, with an empty folder.
    pub(crate) async fn start() -> SmtpSink {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let python = python();
        let root = std::env::temp_dir().join(format!(
            "lanyard-smtp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("mail")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sink = SmtpSink {
            port,
            python,
            root,
            child: None,
            reserved: None,
        };
        sink.spawn().await;
        sink
    }

    /// `smtp://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGTERM, then waits for it), keeping the port and the messages.
    pub(crate) async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            child.kill().await.unwrap();
        }
        self.reserved = tokio::net::TcpSocket::new_v4().ok().and_then(|socket| {
            socket.set_reuseaddr(true).ok()?;
            socket.bind(([127, 0, 0, 1], self.port).into()).ok()?;
            Some(socket)
        });
    }

    /// Starts the server again (stopping it first if it runs), on the same port and folder.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        self.reserved = None;
        self.spawn().await;
    }

    /// Every message received so far, in arrival order.
    pub(crate) fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.root.join("mail"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|path| Mail::parse(&std::fs::read(path).unwrap()))
            .collect()
    }

    /// Every message, once there are at least `n` (polled every 50 ms); panics with what
    /// there is after `timeout`.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.messages();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "waited {timeout:?} for {n} mails; the SMTP sink has {}: {mails:#?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs sink.py and waits for its `ready` (sink.py itself retries a port still held).
    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("sink.log"))
            .unwrap();
        let mut child = Command::new(&self.python)
            .arg(sink_script())
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(self.root.join("mail"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("could not run {}: {e}", self.python));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, lines.next_line()).await;
        assert!(
            matches!(&ready, Ok(Ok(Some(line))) if line == "ready"),
            "the SMTP sink did not start on port {} within {READY_TIMEOUT:?} ({ready:?}); its stderr:\n{}",
            self.port,
            std::fs::read_to_string(self.root.join("sink.log")).unwrap_or_default()
        );
        self.child = Some(child);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A message the sink accepted.
#[derive(Clone)]
pub(crate) struct Mail {
    /// The envelope recipients (`RCPT TO`), in order.
    pub(crate) to: Vec<String>,
    /// The address of the `From` header ("" if none).
    pub(crate) from: String,
    /// The `Subject` header, decoded ("" if none).
    pub(crate) subject: String,
    /// The text/plain body, decoded, with `\n` line ends ("" if none).
    pub(crate) text: String,
    /// The text/html body, decoded, with `\n` line ends ("" if none).
    pub(crate) html: String,
    /// The `Message-ID` header, without its angle brackets ("" if none).
    pub(crate) message_id: String,
    /// The message exactly as `DATA` carried it.
    pub(crate) raw: Vec<u8>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("from", &self.from)
            .field("subject", &self.subject)
            .field("text", &self.text)
            .field("html", &self.html)
            .field("message_id", &self.message_id)
            .field("raw", &String::from_utf8_lossy(&self.raw))
            .finish()
    }
}

impl Mail {
    /// A file of sink.py: the recipient lines, then the message.
    fn parse(file: &[u8]) -> Mail {
        let mut to = Vec::new();
        let mut rest = file;
        while let Some(line) = rest.strip_prefix(RCPT_LINE) {
            let end = line.windows(2).position(|w| w == b"\r\n").unwrap();
            to.push(String::from_utf8_lossy(&line[..end]).into_owned());
            rest = &line[end + 2..];
        }
        let raw = rest.to_vec();
        let message = MessageParser::default()
            .parse(&raw)
            .unwrap_or_else(|| panic!("not a message: {}", String::from_utf8_lossy(&raw)));
        let owned = |s: Option<&str>| s.unwrap_or_default().replace("\r\n", "\n");
        let text = message.text_part(0).filter(|p| !p.is_text_html());
        let html = message.html_part(0).filter(|p| p.is_text_html());
        let (from, subject, text, html, message_id) = (
            owned(message.from().and_then(|a| a.first()?.address())),
            owned(message.subject()),
            owned(text.and_then(|p| p.text_contents())),
            owned(html.and_then(|p| p.text_contents())),
            owned(message.message_id()),
        );
        drop(message);
        Mail {
            to,
            from,
            subject,
            text,
            html,
            message_id,
            raw,
        }
    }

    /// Every `http://` or `https://` URL in the text part, in order: each ends before
    /// whitespace, `>`, `)` or `"`, and a sentence's final `.` or `,` is not part of it.
    pub(crate) fn links(&self) -> Vec<String> {
        let mut links = Vec::new();
        let mut rest = self.text.as_str();
        while let Some(start) = rest.find("http") {
            rest = &rest[start..];
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '>' | ')' | '"'))
                .unwrap_or(rest.len());
            let link = &rest[..end];
            if link.starts_with("http://") || link.starts_with("https://") {
                links.push(link.trim_end_matches(['.', ',']).to_owned());
            }
            rest = &rest[end..];
        }
        links
    }

    /// The link of the text part that contains `path_fragment`; panics if there is none,
    /// or several different ones.
    pub(crate) fn link_to(&self, path_fragment: &str) -> String {
        let mut found: Vec<String> = self
            .links()
            .into_iter()
            .filter(|link| link.contains(path_fragment))
            .collect();
        found.sort();
        found.dedup();
        match found.as_slice() {
            [link] => link.clone(),
            [] => panic!(
                "no link containing {path_fragment:?} in the mail {:?}:\n{}",
                self.subject, self.text
            ),
            _ => panic!(
                "several links contain {path_fragment:?} in the mail {:?}: {found:?}",
                self.subject
            ),
        }
    }
}
