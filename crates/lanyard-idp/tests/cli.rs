//! The `lanyard` command line: what it prints, and exit code 2 with a clear message for
//! every input the operator must fix; nothing half-written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

mod common;

struct Home {
    dir: PathBuf,
}

impl Home {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "lanyard-cli-{}-{}",
            std::process::id(),
            lanyard_core::crypto::random_token(6)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(args, stdin, &[])
    }

    fn run_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lanyard"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env(
                "LANYARD_DATABASE_URL",
                format!("sqlite://{}/lanyard.db", self.dir.display()),
            )
            .env_remove("LANYARD_REDIS_URL")
            .env_remove("LANYARD_CONFIG")
            .env("RUST_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_refused(o: &Output, words: &str) {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    assert!(
        stderr(o).contains(words),
        "expected {words:?} in: {}",
        stderr(o)
    );
}

#[test]
fn migrate_then_add_users() {
    let home = Home::new();
    let out = home.run(&["migrate"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("migrations applied"));

    let out = home.run(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--email",
            "alice@example.com",
        ],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("added user alice (sub "),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("a long password") && !stderr(&out).contains("a long password"));

    assert_refused(
        &home.run(
            &["user", "add", "ALICE", "--password-stdin"],
            Some("another password\n"),
        ),
        "already exists",
    );
    assert_refused(
        &home.run(&["user", "add", "bob", "--password-stdin"], Some("short\n")),
        "8 to 1024",
    );
    assert_refused(&home.run(&["user", "add", "bob"], None), "--password-stdin");
    assert_refused(
        &home.run(
            &["user", "add", "b ob", "--password-stdin"],
            Some("a long password\n"),
        ),
        "no spaces",
    );
    assert_refused(
        &home.run(
            &["user", "add", "bob", "--password-stdin", "--email", "nope"],
            Some("a long password\n"),
        ),
        "not an email",
    );
}

#[test]
fn add_clients() {
    let home = Home::new();
    let out = home.run(
        &[
            "client",
            "add",
            "wiki",
            "--redirect-uri",
            "https://wiki.example.com/callback",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("added confidential client wiki"));
    let secret = text.split("store it now): ").nth(1).unwrap().trim();
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    let out = home.run(
        &[
            "client",
            "add",
            "payroll",
            "--require-mfa",
            "--redirect-uri",
            "https://payroll.example.com/callback",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (payroll, wiki) = inspect(&home, async |db| {
        let get = async |id: &str| {
            db.clients()
                .get(id)
                .await
                .unwrap()
                .unwrap()
                .settings
                .require_mfa
        };
        (get("payroll").await, get("wiki").await)
    });
    assert!(payroll && !wiki, "--require-mfa is kept; off by default");

    let out = home.run(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1:5173/cb",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("secret"));

    // A TV or command-line tool (RFC 8628): public, the device grant, no redirect URI.
    let out = home.run(
        &[
            "client",
            "add",
            "tv",
            "--public",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:device_code",
            "--grant-type",
            "refresh_token",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let grants = inspect(&home, async |db| {
        db.clients()
            .get("tv")
            .await
            .unwrap()
            .unwrap()
            .grant_types
            .clone()
    });
    assert_eq!(
        grants,
        [
            lanyard_core::model::GrantType::DeviceCode,
            lanyard_core::model::GrantType::RefreshToken
        ]
    );

    // An API that calls two others on the caller's behalf (RFC 8693); a public client may not.
    let out = home.run(
        &[
            "client",
            "add",
            "orders",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "--exchange-audience",
            "stock",
            "--exchange-audience",
            "ledger",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (grants, audiences) = inspect(&home, async |db| {
        let c = db.clients().get("orders").await.unwrap().unwrap();
        (c.grant_types.clone(), c.exchange_audiences.clone())
    });
    assert_eq!(grants, [lanyard_core::model::GrantType::TokenExchange]);
    assert_eq!(audiences, ["stock", "ledger"]);
    let out = home.run(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--grant-type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("token exchange"), "{}", stderr(&out));

    // A bank's app that must push its authorization requests (RFC 9126).
    let out = home.run(
        &[
            "client",
            "add",
            "bank",
            "--redirect-uri",
            "https://bank.example.com/cb",
            "--require-par",
            "--require-dpop",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(inspect(&home, async |db| {
        let bank = db.clients().get("bank").await.unwrap().unwrap();
        bank.require_par && bank.require_dpop
    }));

    // A service without a secret (RFC 7523): its public keys from a file; no secret made.
    let jwks = home.dir.join("reports.jwks");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"r1"}]}"#,
    )
    .unwrap();
    let out = home.run(
        &[
            "client",
            "add",
            "reports",
            "--grant-type",
            "client_credentials",
            "--token-endpoint-auth-method",
            "private_key_jwt",
            "--jwks-file",
            jwks.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added private_key_jwt client reports"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("secret"), "{}", stdout(&out));
    let (secret, keys) = inspect(&home, async |db| {
        let c = db.clients().get("reports").await.unwrap().unwrap();
        (c.secret_hash.clone(), c.jwks.clone())
    });
    assert!(secret.is_none());
    assert_eq!(keys.unwrap()["keys"][0]["kid"], "r1");
    std::fs::write(&jwks, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "leaky",
                "--grant-type",
                "client_credentials",
                "--token-endpoint-auth-method",
                "private_key_jwt",
                "--jwks-file",
                jwks.to_str().unwrap(),
            ],
            None,
        ),
        "public keys only",
    );

    let out = home.run(
        &[
            "client",
            "add",
            "ops",
            "--secret-stdin",
            "--grant-type",
            "client_credentials",
            "--scope",
            "lanyard:admin",
        ],
        Some("a-supplied-secret-that-is-long-enough-0123\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("a-supplied-secret"),
        "a supplied secret is not echoed"
    );

    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "wiki",
                "--redirect-uri",
                "https://x.example.com/cb",
            ],
            None,
        ),
        "already exists",
    );
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "short",
                "--secret-stdin",
                "--grant-type",
                "client_credentials",
            ],
            Some("tooshort\n"),
        ),
        "at least 32",
    );
    assert_refused(
        &home.run(&["client", "add", "noredirect"], None),
        "redirect-uri",
    );
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "plain",
                "--redirect-uri",
                "http://app.example.com/cb",
            ],
            None,
        ),
        "loopback",
    );
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "js",
                "--redirect-uri",
                "javascript:alert(1)",
            ],
            None,
        ),
        "never a redirect URI",
    );
    assert_refused(
        &home.run(&["client", "add", "pw", "--grant-type", "password"], None),
        "unknown grant type",
    );
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "pub",
                "--public",
                "--grant-type",
                "client_credentials",
            ],
            None,
        ),
        "public client",
    );
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "bad id",
                "--redirect-uri",
                "https://x.example.com/cb",
            ],
            None,
        ),
        "client id",
    );
    let clap = home.run(
        &["client", "add", "both", "--public", "--secret-stdin"],
        None,
    );
    assert_eq!(clap.status.code(), Some(2));
}

#[test]
fn bad_configuration_is_refused_with_exit_code_2() {
    let home = Home::new();
    let out = home.run_env(
        &["migrate"],
        None,
        &[("LANYARD_ISSUER", "ftp://example.com")],
    );
    assert_refused(&out, "issuer scheme");
    let out = home.run_env(
        &["migrate"],
        None,
        &[("LANYARD_ACCESS_TOKEN_LIFETIME_SECS", "forever")],
    );
    assert_refused(&out, "number of seconds");
    let missing = home.run(&["--config", "/no/such/file.toml", "migrate"], None);
    assert_refused(&missing, "cannot read");
}

/// Reads the CLI's database directly.
fn inspect<T>(home: &Home, f: impl AsyncFnOnce(&lanyard_core::db::Db) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Opened as the command line opens it: with the master key beside the file.
        let config = lanyard_core::config::Config {
            database_url: format!("sqlite://{}/lanyard.db", home.dir.display()),
            ..lanyard_core::config::Config::default()
        };
        let clock = std::sync::Arc::new(lanyard_store::SystemClock);
        let db = lanyard_core::start::open_db(&config, clock).await.unwrap();
        f(&db).await
    })
}

#[test]
fn a_refused_command_writes_nothing_and_a_supplied_secret_works() {
    let home = Home::new();
    assert!(home.run(&["migrate"], None).status.success());
    assert_refused(
        &home.run(
            &["user", "add", "carol", "--password-stdin"],
            Some("short\n"),
        ),
        "8 to 1024",
    );
    assert_refused(
        &home.run(
            &[
                "client",
                "add",
                "bad",
                "--redirect-uri",
                "http://app.example.com/cb",
            ],
            None,
        ),
        "loopback",
    );
    let (users, clients) = inspect(&home, async |db| {
        (
            db.users().count().await.unwrap(),
            db.clients().count().await.unwrap(),
        )
    });
    assert_eq!((users, clients), (0, 0), "nothing half-written");

    let secret = "a-supplied-secret-that-is-long-enough-0123";
    let out = home.run(
        &[
            "client",
            "add",
            "ops",
            "--secret-stdin",
            "--grant-type",
            "client_credentials",
        ],
        Some(&format!("{secret}\r\n")),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (stored, keys) = inspect(&home, async |db| {
        let client = db.clients().get("ops").await.unwrap().unwrap();
        let keys =
            lanyard_core::start::load_server_keys(db, lanyard_store::Timestamp::from_secs(1))
                .await
                .unwrap();
        (client.secret_hash.unwrap(), keys)
    });
    assert!(!stored.contains(secret), "only a hash is stored");
    assert!(
        keys.verify_client_secret(secret, &stored),
        "the line ending is not part of the secret"
    );
}

#[test]
fn emergencies_revoke_and_disable_from_the_command_line() {
    let home = Home::new();
    let out = home.run(
        &["user", "add", "alice", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sub = inspect(&home, async |db| {
        db.users().by_username("alice").await.unwrap().unwrap().sub
    });

    let out = home.run(&["token", "revoke", "--sub", &sub], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("revoked: "), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("sub {sub} refused")),
        "{}",
        stdout(&out)
    );
    let out = home.run(&["token", "revoke", "--jti", "a-stolen-jti"], None);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = home.run(&["user", "disable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("disabled alice"),
        "{}",
        stdout(&out)
    );

    let (disabled, recorded, audited) = inspect(&home, async |db| {
        let user = db.users().by_username("alice").await.unwrap().unwrap();
        let now = lanyard_store::Clock::now(&lanyard_store::SystemClock);
        let recorded: Vec<(String, String)> = db
            .revocations()
            .in_force(now)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.revocation.target.value().to_owned(), r.actor))
            .collect();
        let audited = db.audit().by_action("admin.revoke").await.unwrap();
        (user.disabled, recorded, audited)
    });
    assert!(disabled);
    assert!(
        recorded.contains(&(sub.clone(), "cli".to_owned())),
        "{recorded:?}"
    );
    assert!(
        recorded.contains(&("a-stolen-jti".to_owned(), "cli".to_owned())),
        "{recorded:?}"
    );
    assert_eq!(audited.len(), 3, "each revocation is in the audit trail");
    assert!(
        audited
            .iter()
            .all(|e| e.actor == "cli" && e.outcome == "success")
    );

    assert_refused(&home.run(&["token", "revoke"], None), "required");
    assert_refused(
        &home.run(&["token", "revoke", "--sub", "a", "--sid", "b"], None),
        "cannot be used with",
    );
    assert_refused(
        &home.run(&["token", "revoke", "--sub", "nobody"], None),
        "no user",
    );
    assert_refused(
        &home.run(&["token", "revoke", "--client", "nothing"], None),
        "no client",
    );
    assert_refused(&home.run(&["user", "disable", "nobody"], None), "no user");
}

#[test]
fn keys_rotate_list_and_remove_from_the_command_line() {
    let home = Home::new();
    let out = home.run(&["keys", "rotate"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    let kid = said
        .strip_prefix("published ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{said}"))
        .to_owned();
    assert!(said.contains("as the next key"), "{said}");
    // Asking again while one waits gives the same key.
    let again = stdout(&home.run(&["keys", "rotate"], None));
    assert!(again.starts_with(&format!("published {kid} ")), "{again}");

    let listed = stdout(&home.run(&["keys", "list"], None));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&kid) && l.contains("next")),
        "{listed}"
    );
    let out = home.run(&["keys", "remove", &kid], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with(&format!("removed {kid}")));
    assert!(!stdout(&home.run(&["keys", "list"], None)).contains(&kid));
    assert_refused(
        &home.run(&["keys", "remove", &kid], None),
        "no published key",
    );
}

#[test]
fn audit_prune_deletes_what_is_older_than_the_days_kept_and_records_itself() {
    let home = Home::new();
    assert!(home.run(&["migrate"], None).status.success());
    let now = lanyard_store::Clock::now(&lanyard_store::SystemClock);
    let day = std::time::Duration::from_secs(86_400);
    let event = |days_ago: u32, action: &str| {
        lanyard_core::model::AuditEvent::new(now.minus(day * days_ago), "anonymous", action)
    };
    let events: Vec<_> = (0..25)
        .map(|i| event(100 + i, "test.old"))
        .chain((0..5).map(|i| event(i, "test.recent")))
        .collect();
    inspect(&home, async |db| db.audit().insert(&events).await.unwrap());

    let out = home.run(&["audit", "prune", "--days", "90"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("deleted 25 audit events from before Unix time"),
        "{}",
        stdout(&out)
    );
    let (old, recent, pruned) = inspect(&home, async |db| {
        (
            db.audit().by_action("test.old").await.unwrap().len(),
            db.audit().by_action("test.recent").await.unwrap().len(),
            db.audit().by_action("audit.prune").await.unwrap(),
        )
    });
    assert_eq!(
        (old, recent),
        (0, 5),
        "only what is older than 90 days goes"
    );
    assert_eq!(pruned.len(), 1);
    assert!(
        pruned[0]
            .detail
            .as_deref()
            .unwrap()
            .contains(r#""deleted":25"#),
        "{:?}",
        pruned[0]
    );
    // In batches: 25 events, 10 at a time.
    let more: Vec<_> = (0..25).map(|i| event(100 + i, "test.old")).collect();
    let deleted = inspect(&home, async |db| {
        db.audit().insert(&more).await.unwrap();
        db.audit().prune(now.minus(day * 90), 10).await.unwrap()
    });
    assert_eq!(deleted, 25);
    // Again: nothing more to delete. Keeping zero days is refused.
    let again = home.run(&["audit", "prune", "--days", "90"], None);
    assert!(
        stdout(&again).starts_with("deleted 0 "),
        "{}",
        stdout(&again)
    );
    assert_refused(&home.run(&["audit", "prune", "--days", "0"], None), "0");
}

/// The `sh` blocks of docs/operations.md's "Backup and restore", in order.
fn backup_blocks() -> Vec<String> {
    let doc = include_str!("../../../docs/operations.md");
    let section = doc
        .split("## Backup and restore")
        .nth(1)
        .expect("a Backup and restore section")
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

/// Runs `script` with bash in `dir`, with the `lanyard` binary first on the PATH.
fn run_script(dir: &PathBuf, script: &str, env: &[(&str, &str)]) -> Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lanyard"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("LANYARD_DATABASE_URL")
        .env_remove("LANYARD_REDIS_URL")
        .env_remove("LANYARD_CONFIG")
        .env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// docs/operations.md's backup and restore commands, run as written: a PostgreSQL database
/// dumped and restored into a new one keeps its users and signing keys; a SQLite copy opens.
#[test]
fn backup_and_restore_as_operations_md_says() {
    let blocks = backup_blocks();
    assert_eq!(blocks.len(), 2, "a PostgreSQL block and a SQLite block");
    let home = Home::new();
    let (source, restored) = (
        common::PgDatabase::create("lanyard_bk"),
        common::PgDatabase::create("lanyard_rs"),
    );
    let (source_url, restored_url) = (source.url.clone(), restored.url.clone());
    let master = lanyard_core::crypto::MasterKey::generate().1;
    let on = |url: &str| {
        [
            ("LANYARD_DATABASE_URL", url.to_owned()),
            ("LANYARD_MASTER_KEY", master.clone()),
        ]
    };
    let run_on = |url: &str, args: &[&str], stdin: Option<&str>| {
        let env = on(url);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        home.run_env(args, stdin, &env)
    };
    let out = run_on(
        &source_url,
        &["user", "add", "alice", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The CLI makes no key until a node starts; a rotation publishes one.
    assert!(
        run_on(&source_url, &["keys", "rotate"], None)
            .status
            .success()
    );
    let keys = stdout(&run_on(&source_url, &["keys", "list"], None));
    let kid = keys.split_whitespace().next().unwrap().to_owned();

    let out = run_script(
        &home.dir,
        &blocks[0],
        &[
            ("DATABASE_URL", source_url.as_str()),
            ("RESTORED_URL", restored_url.as_str()),
            ("LANYARD_MASTER_KEY", master.as_str()),
        ],
    );
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&kid),
        "the restored keys list the same key: {said}"
    );
    // alice came back: disabling her works (an unknown user is refused).
    let out = run_on(&restored_url, &["user", "disable", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_on(&restored_url, &["user", "disable", "nobody"], None);
    assert_eq!(out.status.code(), Some(2));

    // SQLite: Home's own database is lanyard.db in its folder.
    let out = home.run(
        &["user", "add", "bob", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.run(&["keys", "rotate"], None).status.success());
    let kid = stdout(&home.run(&["keys", "list"], None))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let out = run_script(&home.dir, &blocks[1], &[]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "sqlite3 is needed (apt-get install sqlite3): {said}"
    );
    assert!(said.contains(&kid), "the copy holds the keys: {said}");
    let copy = format!("sqlite://{}/lanyard-backup.db", home.dir.display());
    let env = [("LANYARD_DATABASE_URL", copy.as_str())];
    let out = home.run_env(&["user", "disable", "bob"], None, &env);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The master key (issue 19 §4): the embedded default keeps one beside the SQLite file,
/// readable by its owner only; the secrets in the database are sealed under it, so the
/// database without it does not open; `keys rewrap` moves them to a new key.
#[test]
fn secrets_are_sealed_under_a_master_key_kept_apart_and_rewrapped() {
    let home = Home::new();
    assert!(home.run(&["keys", "rotate"], None).status.success());
    let added = home.run(
        &[
            "client",
            "add",
            "wiki",
            "--redirect-uri",
            "https://wiki.example.com/cb",
        ],
        None,
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let kid = stdout(&home.run(&["keys", "list"], None))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let key_file = home.dir.join("lanyard.db.master-key");
    let meta = std::fs::metadata(&key_file).expect("a master key beside the database");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    // What is stored is sealed: no private key in the clear.
    let raw = inspect(&home, async |db| db.keys().stored_raw().await.unwrap());
    assert!(
        raw.len() >= 3,
        "a signing key and two server secrets: {raw:?}"
    );
    assert!(
        raw.iter()
            .all(|(_, v)| lanyard_core::crypto::MasterKey::is_sealed(v)),
        "sealed at rest"
    );
    // The database with another master key does not open.
    let wrong = lanyard_core::crypto::MasterKey::generate().1;
    let out = home.run_env(&["keys", "list"], None, &[("LANYARD_MASTER_KEY", &wrong)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("another master key"),
        "{}",
        stderr(&out)
    );

    // Rewrapped under a new key: it opens with the new one only.
    let made = home.run(&["keys", "master-key"], None);
    assert!(made.status.success());
    let new_key = stdout(&made).trim().to_owned();
    assert_eq!(new_key.len(), 43);
    let new_file = home.dir.join("new-master-key");
    std::fs::write(&new_file, format!("{new_key}\n")).unwrap();
    let out = home.run(
        &[
            "keys",
            "rewrap",
            "--new-master-key-file",
            new_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("sealed"), "{}", stdout(&out));
    let with_new = [("LANYARD_MASTER_KEY_FILE", new_file.to_str().unwrap())];
    let listed = home.run_env(&["keys", "list"], None, &with_new);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains(&kid));
    assert!(
        !home.run(&["keys", "list"], None).status.success(),
        "the old key no longer opens it"
    );
}

#[test]
fn second_factors_are_listed_and_reset_from_the_command_line() {
    let home = Home::new();
    let out = home.run(
        &["user", "add", "bob", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let sub = inspect(&home, async |db| {
        let sub = db.users().by_username("bob").await.unwrap().unwrap().sub;
        let now = lanyard_store::Clock::now(&lanyard_store::SystemClock);
        db.factors()
            .add_totp("f1", &sub, "Phone", b"twenty bytes of seed", now)
            .await
            .unwrap();
        db.factors()
            .replace_recovery_codes(&sub, &["h1".to_owned(), "h2".to_owned()], now)
            .await
            .unwrap();
        sub
    });
    let out = home.run(&["user", "mfa", "list", "bob"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("f1\ttotp\tPhone\tadded "),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("2 recovery code(s) left"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("twenty bytes"), "never the seed");

    let out = home.run(&["user", "mfa", "reset", "bob"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("second factors of bob removed;"),
        "{}",
        stdout(&out)
    );
    let (left, audited) = inspect(&home, async |db| {
        let left = db.factors().of_user(&sub).await.unwrap().len()
            + usize::try_from(db.factors().recovery_codes_left(&sub).await.unwrap()).unwrap();
        (left, db.audit().by_action("mfa.reset").await.unwrap())
    });
    assert_eq!(left, 0);
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].actor, "cli");
    let out = home.run(&["user", "mfa", "list", "bob"], None);
    assert!(
        stdout(&out).contains("bob has no second factor"),
        "{}",
        stdout(&out)
    );
    assert_refused(
        &home.run(&["user", "mfa", "reset", "nobody"], None),
        "no user",
    );
}

#[test]
fn groups_and_roles_from_the_command_line() {
    let home = Home::new();
    for name in ["alice", "bob"] {
        let out = home.run(
            &["user", "add", name, "--password-stdin"],
            Some("a long password\n"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = home.run(
        &[
            "client",
            "add",
            "billing",
            "--redirect-uri",
            "https://billing.example.com/cb",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ok = |args: &[&str]| {
        let out = home.run(args, None);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    assert!(
        ok(&["group", "add", "Finance", "--description", "Pays the bills"])
            .starts_with("added group Finance (id ")
    );
    assert_eq!(
        ok(&["group", "member", "add", "finance", "alice"]),
        "added alice to Finance\n",
        "group names in any letter case"
    );
    assert_eq!(
        ok(&["group", "member", "add", "Finance", "alice"]),
        "alice was already in Finance\n"
    );
    ok(&["group", "member", "add", "Finance", "bob"]);
    assert_eq!(
        ok(&["role", "add", "billing", "billing:admin"]),
        "added role billing:admin to billing\n"
    );
    assert_eq!(
        ok(&[
            "role",
            "grant",
            "billing",
            "billing:admin",
            "--group",
            "Finance"
        ]),
        "granted billing:admin of billing to group Finance\n"
    );
    ok(&["role", "grant", "billing", "billing:admin", "--user", "bob"]);
    assert_eq!(
        ok(&["role", "list", "billing"]),
        "billing:admin\tgroup Finance, bob\n"
    );
    assert!(ok(&["group", "list"]).starts_with("Finance\t2 member(s)\tPays the bills"));
    assert_eq!(
        ok(&["group", "member", "list", "Finance"]).lines().count(),
        2
    );

    // Taken from bob he still holds it through Finance; taken from Finance, both lose it
    // and their tokens at billing are revoked.
    let out = ok(&[
        "role",
        "revoke",
        "billing",
        "billing:admin",
        "--user",
        "bob",
    ]);
    assert_eq!(
        out,
        "took billing:admin of billing from bob; no token needed revoking\n"
    );
    let out = ok(&[
        "role",
        "revoke",
        "billing",
        "billing:admin",
        "--group",
        "Finance",
    ]);
    assert!(
        out.contains("2 person(s) lost it; their access tokens at billing were revoked"),
        "{out}"
    );
    let out = ok(&["group", "member", "remove", "Finance", "bob"]);
    assert!(out.starts_with("removed bob from Finance;"), "{out}");
    let (subs, grants, audited) = inspect(&home, async |db| {
        let mut subs = Vec::new();
        for name in ["alice", "bob"] {
            subs.push(db.users().by_username(name).await.unwrap().unwrap().sub);
        }
        let grants = db
            .revocations()
            .live(lanyard_store::Clock::now(&lanyard_store::SystemClock))
            .await
            .unwrap()
            .into_iter()
            .filter(|r| matches!(r.target, lanyard_store::Target::Grant(_)))
            .map(|r| r.target.value().to_owned())
            .collect::<std::collections::BTreeSet<_>>();
        (
            subs,
            grants,
            db.audit().by_action("role.revoke").await.unwrap(),
        )
    });
    assert_eq!(
        grants,
        subs.iter().map(|s| format!("billing {s}")).collect(),
        "one entry per person at billing, nothing elsewhere"
    );
    assert_eq!(audited.len(), 2);
    assert!(audited.iter().all(|e| e.actor == "cli"));

    // Mistakes are refused with exit code 2 and say what is wrong.
    assert_refused(
        &home.run(&["group", "add", "Finance"], None),
        "already exists",
    );
    assert_refused(
        &home.run(&["group", "member", "add", "Nobody", "alice"], None),
        "no group is called",
    );
    assert_refused(
        &home.run(&["group", "member", "remove", "Finance", "bob"], None),
        "bob is not in Finance",
    );
    assert_refused(
        &home.run(&["role", "add", "billing", "has space"], None),
        "a role name is",
    );
    assert_refused(
        &home.run(&["role", "add", "nobody", "r"], None),
        "no client has client_id",
    );
    let out = home.run(&["role", "grant", "billing", "billing:admin"], None);
    assert_eq!(out.status.code(), Some(2), "neither --group nor --user");
    let out = home.run(
        &[
            "role",
            "grant",
            "billing",
            "billing:admin",
            "--group",
            "Finance",
            "--user",
            "bob",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "both --group and --user");
    assert_eq!(
        ok(&["group", "delete", "Finance"])
            .lines()
            .next()
            .map(|l| l.starts_with("deleted group Finance;")),
        Some(true)
    );
}

/// The `.eml` files in `dir`, oldest first.
fn mails_in(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "eml"));
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Issue 22: `lanyard user invite USERNAME --email ADDRESS --name NAME` adds the person
/// without a password and sends the invitation at once (here to the outbox folder, beside the
/// database by default); inviting someone who has a password is refused; `lanyard user
/// send-reset` mails a reset link. Every link is under the issuer.
#[test]
fn invitations_and_reset_links_from_the_command_line() {
    let home = Home::new();
    let issuer = [("LANYARD_ISSUER", "https://sso.example.com")];
    let out = home.run_env(
        &[
            "user",
            "invite",
            "carol",
            "--email",
            "carol@example.com",
            "--name",
            "Carol Jones",
        ],
        None,
        &issuer,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("invited carol (sub "),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("sent 1 mail(s)"), "{}", stdout(&out));
    let folder = home.dir.join("lanyard.db.outbox");
    let mails = mails_in(&folder);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].contains("To: carol@example.com"), "{}", mails[0]);
    assert!(
        mails[0].contains("https://sso.example.com/invitation?token="),
        "{}",
        mails[0]
    );
    let carol = inspect(&home, async |db| {
        db.users().by_username("carol").await.unwrap().unwrap()
    });
    assert!(
        carol.password_hash.is_empty(),
        "no password until she accepts"
    );
    assert!(!carol.email_verified);
    assert_eq!(carol.display_name.as_deref(), Some("Carol Jones"));

    let out = home.run(
        &[
            "user",
            "add",
            "dave",
            "--password-stdin",
            "--email",
            "dave@example.com",
        ],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_refused(
        &home.run(
            &["user", "invite", "dave", "--email", "dave@example.com"],
            None,
        ),
        "has a password already",
    );
    assert_refused(
        &home.run(
            &["user", "invite", "erin", "--email", "not-an-address"],
            None,
        ),
        "not an email address",
    );
    let out = home.run_env(&["user", "send-reset", "dave"], None, &issuer);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("went to dave@example.com"),
        "{}",
        stdout(&out)
    );
    let mails = mails_in(&folder);
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .any(|m| m.contains("https://sso.example.com/reset-password?token="))
    );
    let audited = inspect(&home, async |db| {
        db.audit().by_action("user.invite").await.unwrap()
    });
    assert_eq!(audited.iter().filter(|e| e.outcome == "success").count(), 1);
    assert_eq!(audited[0].actor, "cli");
}

/// Issue 23: `lanyard operator add|remove|list USERNAME`: the built-in console client and its
/// `operator` role are made when first needed; adding twice says so; removing someone who is
/// not an operator, or an unknown username, is refused.
#[test]
fn operators_from_the_command_line() {
    let home = Home::new();
    let out = home.run(
        &["user", "add", "olga", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = home.run(&["operator", "list"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no operators yet"),
        "{}",
        stdout(&out)
    );
    let out = home.run(&["operator", "add", "olga"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "olga is an operator\n");
    let out = home.run(&["operator", "add", "olga"], None);
    assert_eq!(stdout(&out), "olga was an operator already\n");
    let out = home.run(&["operator", "list"], None);
    assert!(stdout(&out).starts_with("olga\t"), "{}", stdout(&out));
    let console = inspect(&home, async |db| {
        db.clients().get("lanyard-console").await.unwrap().unwrap()
    });
    // Public, first party with session-bound refresh tokens; two factors are the console's
    // own step-up once it knows the person is an operator (docs/console.md), not the client's.
    assert!(console.settings.public && console.settings.first_party);
    assert!(!console.settings.require_mfa);
    assert_eq!(
        console.settings.grant_types,
        [
            lanyard_core::model::GrantType::AuthorizationCode,
            lanyard_core::model::GrantType::RefreshToken
        ]
    );
    assert_eq!(
        console.settings.redirect_uris,
        ["http://localhost:8080/console/callback"]
    );
    let out = home.run(&["operator", "remove", "olga"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "olga is no longer an operator\n");
    assert_refused(
        &home.run(&["operator", "remove", "olga"], None),
        "does not hold role",
    );
    assert_refused(&home.run(&["operator", "add", "nobody"], None), "no user");
    // A new issuer moves the console's addresses with it.
    let out = home.run_env(
        &["operator", "add", "olga"],
        None,
        &[("LANYARD_ISSUER", "https://sso.example.com")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let console = inspect(&home, async |db| {
        db.clients().get("lanyard-console").await.unwrap().unwrap()
    });
    assert_eq!(
        console.settings.redirect_uris,
        ["https://sso.example.com/console/callback"]
    );
}
