//! `lanyard`: the command line. Parsing, configuration and wiring only; the work is in the
//! library.

// A command line prints its results on standard output.
#![allow(clippy::print_stdout)]

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lanyard_core::ServiceError;
use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::{Config, RawConfig, redact_url};
use lanyard_core::crypto::Passwords;
use lanyard_core::model::AuditEvent;
use lanyard_core::model::ClientSettings;
use lanyard_core::revoke::{Outcome, Subject};
use lanyard_core::users::{NewUser, add_demo_user, add_user};
use lanyard_idp::state::AppState;
use lanyard_store::{Clock, SystemClock};

/// Lanyard: single sign-on for one company (OpenID Connect).
#[derive(Parser)]
#[command(name = "lanyard", version)]
struct Cli {
    /// A TOML file with settings (keys as in docs/configuration.md); LANYARD_* variables win.
    #[arg(long, global = true, env = "LANYARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve {
        /// Add a demo user and a demo client if missing, and print their credentials.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Ask the node listening on `listen` whether it is ready (`/readyz`): exit 0 if so, 1
    /// if not. For container health checks, where no curl is at hand.
    Probe,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage clients (applications).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Revoke tokens (emergencies; the admin API does the same).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Signing keys: list, rotate, remove a leaked one.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Groups of people (the `groups` claim).
    #[command(subcommand)]
    Group(GroupCommand),
    /// The roles an application defines, and who holds them (the `roles` claim).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Operators: the people who may run Lanyard from its console (the role `operator` of
    /// the built-in client `lanyard-console`).
    #[command(subcommand)]
    Operator(OperatorCommand),
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Make someone an operator.
    Add {
        /// Their username.
        username: String,
    },
    /// Take the operator role from someone (their console tokens are refused at once).
    Remove {
        /// Their username.
        username: String,
    },
    /// Who the operators are (people, and groups that hold the role).
    List,
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Add a group.
    Add {
        /// Its name (unique regardless of letter case; what the `groups` claim carries).
        name: String,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
    },
    /// List the groups and how many members each has.
    List,
    /// Delete a group: its members lose it, and the roles it held, at once.
    Delete {
        /// The group's name.
        name: String,
    },
    /// A group's members.
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Add a person to a group.
    Add {
        /// The group's name.
        group: String,
        /// The person's username.
        username: String,
    },
    /// Remove a person from a group: the apps refuse their tokens that carry it within a
    /// second.
    Remove {
        /// The group's name.
        group: String,
        /// The person's username.
        username: String,
    },
    /// List a group's members.
    List {
        /// The group's name.
        group: String,
    },
}

/// Who a role is granted to: a group or one person.
#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct RoleHolder {
    /// Every member of the group with this name.
    #[arg(long, value_name = "NAME")]
    group: Option<String>,
    /// The person with this username.
    #[arg(long, value_name = "USERNAME")]
    user: Option<String>,
}

#[derive(Subcommand)]
enum RoleCommand {
    /// Define a role of an application (for example `lanyard role add billing billing:admin`).
    Add {
        /// The application's client id.
        client_id: String,
        /// The role's name, as tokens carry it.
        role: String,
        /// What the role allows.
        #[arg(long)]
        description: Option<String>,
    },
    /// List an application's roles and who holds each.
    List {
        /// The application's client id.
        client_id: String,
    },
    /// Delete a role: everyone who held it loses it at once.
    Delete {
        /// The application's client id.
        client_id: String,
        /// The role's name.
        role: String,
    },
    /// Grant a role to a group or a person.
    Grant {
        /// The application's client id.
        client_id: String,
        /// The role's name.
        role: String,
        #[command(flatten)]
        to: RoleHolder,
    },
    /// Take a role from a group or a person: the apps refuse their tokens that carry it
    /// within a second.
    Revoke {
        /// The application's client id.
        client_id: String,
        /// The role's name.
        role: String,
        #[command(flatten)]
        from: RoleHolder,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Delete the events older than --days days (run it daily, as a cron job or a Kubernetes
    /// CronJob); the pruning itself is recorded as an event.
    Prune {
        /// How many days of events to keep.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: u32,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List the published keys.
    List,
    /// Start a rotation: a new key is published now and signs after key_publish_secs.
    Rotate,
    /// Remove a key at once (it leaked); its tokens stop verifying. If it signs, its
    /// successor signs from now.
    Remove {
        /// The key's kid.
        kid: String,
    },
    /// Print a new master key, for a file that LANYARD_MASTER_KEY_FILE names (readable by
    /// Lanyard only, kept apart from the database's backups).
    MasterKey,
    /// Seal the signing keys and server secrets under a new master key. Then point
    /// LANYARD_MASTER_KEY_FILE at it and restart every node.
    Rewrap {
        /// The file holding the new master key.
        #[arg(long, value_name = "FILE")]
        new_master_key_file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Revoke at once every token of a user, a session, a client, or one access token.
    /// Recorded in the database and pushed to every app through the token store.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(false)))]
    Revoke {
        /// Everything of the user with this `sub`.
        #[arg(long, group = "what")]
        sub: Option<String>,
        /// Everything of the SSO session with this `sid`.
        #[arg(long, group = "what")]
        sid: Option<String>,
        /// The access token with this `jti`.
        #[arg(long, group = "what")]
        jti: Option<String>,
        /// Everything issued to this client.
        #[arg(long = "client", value_name = "CLIENT_ID", group = "what")]
        client_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user.
    Add {
        /// What the user signs in with.
        username: String,
        /// Read the password from one line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Invite someone: add them without a password and mail them a single-use link (valid
    /// 72 hours by default) to set one, and a passkey if they like. Following it verifies
    /// the address. Inviting someone who has not accepted yet sends a new link.
    Invite {
        /// What they will sign in with.
        username: String,
        /// Where the invitation goes.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Mail a user a password-reset link (as "Forgot your password?" does).
    SendReset {
        /// The user's username.
        username: String,
    },
    /// Disable a user: no more sign-ins, and every session and token of theirs revoked.
    Disable {
        /// The user's username.
        username: String,
    },
    /// A user's second factors (two-step verification).
    #[command(subcommand)]
    Mfa(MfaCommand),
}

#[derive(Subcommand)]
enum MfaCommand {
    /// List a user's second factors and how many recovery codes they have left.
    List {
        /// The user's username.
        username: String,
    },
    /// Remove every second factor and recovery code of a user (a lost phone), and end their
    /// sessions and revoke their tokens. They sign in with their password next, and set up
    /// a factor again if one is required.
    Reset {
        /// The user's username.
        username: String,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Register a client. Without --secret-stdin or --public, a secret is made and printed
    /// once.
    Add {
        /// What the client is: the same settings the admin API takes.
        #[command(flatten)]
        settings: Box<ClientSettings>,
        /// Read the client secret (at least 32 characters) from one line of standard input.
        #[arg(long, conflicts_with = "public")]
        secret_stdin: bool,
        /// The client's public keys, a JWK Set in this file (for
        /// `--token-endpoint-auth-method private_key_jwt`).
        #[arg(long, value_name = "FILE", conflicts_with = "jwks_uri")]
        jwks_file: Option<std::path::PathBuf>,
    },
}

/// Exit code for input the operator must fix (clap uses 2 too).
const BAD_INPUT: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let config = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lanyard: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::BadInput(msg)) => {
            eprintln!("lanyard: {msg}");
            ExitCode::from(BAD_INPUT)
        }
        Err(Failure::Other(msg)) => {
            eprintln!("lanyard: {msg}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    BadInput(String),
    Other(String),
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) | ServiceError::Conflict(m) | ServiceError::NotFound(m) => {
                Self::BadInput(m)
            }
            ServiceError::Unavailable(m) => Self::Other(m),
            ServiceError::Field { field, message } => {
                Self::BadInput(format!("{}: {message}", flag_for(&field)))
            }
        }
    }
}

/// The command-line spelling of an input field the library names (as the admin API does).
fn flag_for(field: &str) -> String {
    let flag = match field {
        "redirect_uris" => "--redirect-uri",
        "post_logout_redirect_uris" => "--post-logout-redirect-uri",
        "backchannel_logout_uri" => "--backchannel-logout-uri",
        "grant_types" => "--grant-type",
        "scopes" => "--scope",
        "secret" => "--secret-stdin",
        "password" => "--password-stdin",
        "email" => "--email",
        "name" | "display_name" => "--name",
        other => return other.to_owned(),
    };
    flag.to_owned()
}

async fn probe(config: &Config) -> Result<(), Failure> {
    // The operators' listener, when there is one, says what failed.
    let mut at = config.ops_listen.unwrap_or(config.listen);
    if at.ip().is_unspecified() {
        at.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{at}/readyz");
    let answer = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(other)?
        .get(&url)
        .send()
        .await
        .map_err(|e| other(format!("{url}: {e}")))?;
    let status = answer.status();
    let body = answer.text().await.unwrap_or_default();
    if status.is_success() {
        println!("ready");
        Ok(())
    } else {
        Err(other(format!("{url} answered {status}: {body}")))
    }
}

fn other(e: impl std::fmt::Display) -> Failure {
    Failure::Other(e.to_string())
}

/// Logs to stderr: `RUST_LOG` picks what (default `info`), `LANYARD_LOG_FORMAT=json` gives one
/// JSON object per line. Either way every line written while a request is served carries
/// that request's id (the `request` span), as the response's `X-Request-Id` does.
/// Whether logs are JSON lines (`LANYARD_LOG_FORMAT=json`): then the console hints for people
/// stay out of stderr, which a log pipeline reads.
fn json_logs() -> bool {
    std::env::var("LANYARD_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs() {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, String> {
    let raw = match path {
        Some(p) => RawConfig::from_file(p).map_err(|e| e.to_string())?,
        None => RawConfig::default(),
    };
    raw.overlay_env(|k| std::env::var(k).ok())
        .and_then(RawConfig::validate)
        .map_err(|e| e.to_string())
}

/// One line of standard input, without its line ending.
fn read_line(what: &str) -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| {
        Failure::BadInput(format!("cannot read the {what} from standard input: {e}"))
    })?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(line.to_owned())
}

async fn run(command: Command, config: Config) -> Result<(), Failure> {
    let now = SystemClock.now();
    match command {
        Command::Probe => probe(&config).await,
        Command::Migrate => {
            let db = lanyard_core::db::Db::connect(&config.database_url)
                .await
                .map_err(other)?;
            db.migrate().await.map_err(other)?;
            println!("migrations applied to {}", redact_url(&config.database_url));
            Ok(())
        }
        Command::User(UserCommand::Add {
            username,
            password_stdin,
            email,
            name,
        }) => {
            if !password_stdin {
                return Err(Failure::BadInput(
                    "give the password on standard input with --password-stdin (it never goes on the command line)".to_owned(),
                ));
            }
            let password = read_line("password")?;
            let db = migrated_db(&config).await?;
            let passwords = Passwords::new().map_err(other)?;
            let user = add_user(
                &db,
                &passwords,
                NewUser {
                    username,
                    password,
                    email,
                    display_name: name,
                },
                now,
            )
            .await?;
            println!("added user {} (sub {})", user.username, user.sub);
            Ok(())
        }
        Command::Client(ClientCommand::Add {
            mut settings,
            secret_stdin,
            jwks_file,
        }) => {
            if let Some(path) = jwks_file {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    Failure::BadInput(format!("cannot read {}: {e}", path.display()))
                })?;
                settings.jwks = Some(serde_json::from_str(&text).map_err(|e| {
                    Failure::BadInput(format!("{} is not JSON: {e}", path.display()))
                })?);
            }
            let secret = if secret_stdin {
                Some(read_line("client secret")?)
            } else {
                None
            };
            // Only the database: registering a client must not start (or re-seed) the store.
            let db = migrated_db(&config).await?;
            let keys = lanyard_core::start::load_server_keys(&db, now)
                .await
                .map_err(other)?;
            let new = NewClient {
                settings: *settings,
                secret,
            };
            let (client, shown) = add_client(&db, &keys, new, now).await?;
            let kind = if client.public {
                "public"
            } else if client.has_secret() {
                "confidential"
            } else {
                "private_key_jwt"
            };
            println!("added {kind} client {}", client.client_id);
            if let Some(secret) = shown {
                println!("client secret (shown once, store it now): {secret}");
            }
            Ok(())
        }
        Command::User(UserCommand::Invite {
            username,
            email,
            name,
        }) => {
            let state = AppState::build(config).await.map_err(other)?;
            let invitee = lanyard_core::email::Invitee {
                username,
                email,
                display_name: name,
            };
            let result = lanyard_core::email::invite(&state, invitee, CLI_ACTOR).await;
            flush_audit(&state).await;
            let (user, sent) = result?;
            println!(
                "invited {} (sub {}): the link to {} works until {}",
                user.username,
                user.sub,
                sent.to,
                lanyard_core::session::utc(sent.expires_at)
            );
            send_now(&state).await;
            Ok(())
        }
        Command::User(UserCommand::SendReset { username }) => {
            let state = AppState::build(config).await.map_err(other)?;
            let user = lanyard_core::users::by_username(&state, &username).await?;
            let result = lanyard_core::email::send_reset(&state, &user.sub, CLI_ACTOR).await;
            flush_audit(&state).await;
            let sent = result?;
            println!(
                "a password-reset link for {} went to {}; it works until {}",
                user.username,
                sent.to,
                lanyard_core::session::utc(sent.expires_at)
            );
            send_now(&state).await;
            Ok(())
        }
        Command::User(UserCommand::Disable { username }) => {
            let state = AppState::build(config).await.map_err(other)?;
            let result =
                lanyard_core::users::disable_by_username(&state, &username, CLI_ACTOR).await;
            flush_audit(&state).await;
            let (user, outcome) = result?;
            println!(
                "disabled {} (sub {}); {}",
                user.username,
                user.sub,
                describe(&outcome)
            );
            Ok(())
        }
        Command::User(UserCommand::Mfa(command)) => {
            let state = AppState::build(config).await.map_err(other)?;
            let username = match &command {
                MfaCommand::List { username } | MfaCommand::Reset { username } => username,
            };
            let user = lanyard_core::users::by_username(&state, username).await?;
            match command {
                MfaCommand::List { .. } => {
                    let (factors, left) = lanyard_core::factors::list(&state, &user.sub).await?;
                    if factors.is_empty() {
                        println!("{} has no second factor", user.username);
                    }
                    for f in factors {
                        println!(
                            "{}\t{}\t{}\tadded {}\tlast used {}",
                            f.id,
                            f.kind.as_str(),
                            f.name,
                            lanyard_core::session::utc(f.created_at),
                            f.last_used_at
                                .map_or_else(|| "never".to_owned(), lanyard_core::session::utc),
                        );
                    }
                    println!("{left} recovery code(s) left");
                }
                MfaCommand::Reset { .. } => {
                    let result = lanyard_core::factors::reset(&state, &user.sub, CLI_ACTOR).await;
                    flush_audit(&state).await;
                    let outcome = result?;
                    println!(
                        "second factors of {} removed; {}",
                        user.username,
                        describe(&outcome)
                    );
                }
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke {
            sub,
            sid,
            jti,
            client_id,
        }) => {
            let subject = match (sub, sid, jti, client_id) {
                (Some(sub), ..) => Subject::Sub(sub),
                (_, Some(sid), ..) => Subject::Sid(sid),
                (_, _, Some(jti), _) => Subject::Jti(jti),
                (_, _, _, Some(client_id)) => Subject::ClientId(client_id),
                _ => return Err(Failure::BadInput("say what to revoke".to_owned())),
            };
            let state = AppState::build(config).await.map_err(other)?;
            let result = lanyard_core::revoke::revoke(&state, subject, CLI_ACTOR).await;
            flush_audit(&state).await;
            println!("revoked: {}", describe(&result?));
            Ok(())
        }
        Command::Keys(command) => keys(command, &config, now).await,
        Command::Audit(AuditCommand::Prune { days }) => {
            let db = migrated_db(&config).await?;
            let before = now.minus(std::time::Duration::from_secs(u64::from(days) * 86_400));
            let deleted = db.audit().prune(before, 10_000).await.map_err(other)?;
            let event = AuditEvent::new(now, CLI_ACTOR, "audit.prune")
                .detail(serde_json::json!({ "before": before.as_millis(), "deleted": deleted }));
            db.audit().insert(&[event]).await.map_err(other)?;
            println!(
                "deleted {deleted} audit events from before Unix time {}",
                before.as_secs()
            );
            Ok(())
        }
        Command::Group(command) => {
            let state = AppState::build(config).await.map_err(other)?;
            let result = group(&state, command).await;
            flush_audit(&state).await;
            result
        }
        Command::Role(command) => {
            let state = AppState::build(config).await.map_err(other)?;
            let result = role(&state, command).await;
            flush_audit(&state).await;
            result
        }
        Command::Operator(command) => {
            let state = AppState::build(config).await.map_err(other)?;
            let result = operator(&state, command).await;
            flush_audit(&state).await;
            result
        }
        Command::Serve { demo } => serve(config, demo).await,
    }
}

/// `lanyard operator ...`.
async fn operator(state: &AppState, command: OperatorCommand) -> Result<(), Failure> {
    use lanyard_core::operators;
    match command {
        OperatorCommand::Add { username } => {
            let user = lanyard_core::users::by_username(state, &username).await?;
            if operators::add(state, &user.sub, CLI_ACTOR).await? {
                println!("{} is an operator", user.username);
            } else {
                println!("{} was an operator already", user.username);
            }
        }
        OperatorCommand::Remove { username } => {
            let user = lanyard_core::users::by_username(state, &username).await?;
            operators::remove(state, &user.sub, CLI_ACTOR).await?;
            println!("{} is no longer an operator", user.username);
        }
        OperatorCommand::List => {
            let (people, groups) = operators::list(state).await?;
            if people.is_empty() && groups.is_empty() {
                println!("no operators yet: lanyard operator add USERNAME");
            }
            for user in people {
                println!("{}\t{}", user.username, user.sub);
            }
            for group in groups {
                println!("group {group}");
            }
        }
    }
    Ok(())
}

/// `lanyard group ...`: groups are named by name and people by username, as people know them.
async fn group(state: &AppState, command: GroupCommand) -> Result<(), Failure> {
    use lanyard_core::access;
    match command {
        GroupCommand::Add { name, description } => {
            let new = access::NewGroup {
                name,
                description,
                external_id: None,
            };
            let group = access::create_group(state, new, CLI_ACTOR).await?;
            println!("added group {} (id {})", group.name, group.id);
        }
        GroupCommand::List => {
            let mut after: Option<String> = None;
            loop {
                let page = access::list_groups(state, None, after.as_deref(), 200).await?;
                let Some(last) = page.last() else { break };
                after = Some(last.name.clone());
                for g in &page {
                    let count = state.db.groups().member_count(&g.id).await.map_err(other)?;
                    println!(
                        "{}\t{count} member(s)\t{}",
                        g.name,
                        g.description.as_deref().unwrap_or("")
                    );
                }
            }
        }
        GroupCommand::Delete { name } => {
            let group = access::group_by_name(state, &name).await?;
            let withdrawn = access::delete_group(state, &group.id, CLI_ACTOR).await?;
            println!(
                "deleted group {}; {}",
                group.name,
                withdrawn_text(&withdrawn)
            );
        }
        GroupCommand::Member(MemberCommand::List { group }) => {
            let group = access::group_by_name(state, &group).await?;
            for user in access::members(state, &group.id).await? {
                println!("{}\t{}", user.username, user.sub);
            }
        }
        GroupCommand::Member(MemberCommand::Add { group, username }) => {
            let group = access::group_by_name(state, &group).await?;
            let user = lanyard_core::users::by_username(state, &username).await?;
            let (added, _) =
                access::change_members(state, &group.id, &[user.sub], &[], CLI_ACTOR).await?;
            if added.is_empty() {
                println!("{} was already in {}", user.username, group.name);
            } else {
                println!("added {} to {}", user.username, group.name);
            }
        }
        GroupCommand::Member(MemberCommand::Remove { group, username }) => {
            let group = access::group_by_name(state, &group).await?;
            let user = lanyard_core::users::by_username(state, &username).await?;
            let (_, withdrawn) =
                access::change_members(state, &group.id, &[], &[user.sub], CLI_ACTOR).await?;
            if withdrawn.people == 0 {
                return Err(Failure::BadInput(format!(
                    "{} is not in {}",
                    user.username, group.name
                )));
            }
            println!(
                "removed {} from {}; {}",
                user.username,
                group.name,
                withdrawn_text(&withdrawn)
            );
        }
    }
    Ok(())
}

/// `lanyard role ...`.
async fn role(state: &AppState, command: RoleCommand) -> Result<(), Failure> {
    use lanyard_core::access;
    use lanyard_core::model::Holder;
    let holder = |to: RoleHolder| async move {
        match (to.group, to.user) {
            (Some(name), _) => Ok::<_, Failure>((
                Holder::Group(access::group_by_name(state, &name).await?.id),
                format!("group {name}"),
            )),
            (_, Some(username)) => Ok((
                Holder::User(
                    lanyard_core::users::by_username(state, &username)
                        .await?
                        .sub,
                ),
                username,
            )),
            _ => Err(Failure::BadInput("give --group or --user".to_owned())),
        }
    };
    match command {
        RoleCommand::Add {
            client_id,
            role,
            description,
        } => {
            access::create_role(state, &client_id, &role, description, CLI_ACTOR).await?;
            println!("added role {role} to {client_id}");
        }
        RoleCommand::List { client_id } => {
            for role in access::roles(state, &client_id).await? {
                let mut held = Vec::new();
                for h in access::holders(state, &client_id, &role.name).await? {
                    held.push(match h {
                        Holder::Group(id) => {
                            format!("group {}", access::group(state, &id).await?.name)
                        }
                        Holder::User(sub) => lanyard_core::users::get(state, &sub).await?.username,
                    });
                }
                println!("{}\t{}", role.name, held.join(", "));
            }
        }
        RoleCommand::Delete { client_id, role } => {
            let withdrawn = access::delete_role(state, &client_id, &role, CLI_ACTOR).await?;
            println!(
                "deleted role {role} of {client_id}; {}",
                withdrawn_text(&withdrawn)
            );
        }
        RoleCommand::Grant {
            client_id,
            role,
            to,
        } => {
            let (holder, who) = holder(to).await?;
            if access::grant_role(state, &client_id, &role, &holder, CLI_ACTOR).await? {
                println!("granted {role} of {client_id} to {who}");
            } else {
                println!("{who} already holds {role} of {client_id}");
            }
        }
        RoleCommand::Revoke {
            client_id,
            role,
            from,
        } => {
            let (holder, who) = holder(from).await?;
            let withdrawn =
                access::revoke_role(state, &client_id, &role, &holder, CLI_ACTOR).await?;
            println!(
                "took {role} of {client_id} from {who}; {}",
                withdrawn_text(&withdrawn)
            );
        }
    }
    Ok(())
}

/// What taking something away revoked, in words.
fn withdrawn_text(w: &lanyard_core::access::Withdrawn) -> String {
    if w.revocations == 0 {
        return "no token needed revoking".to_owned();
    }
    format!(
        "{} person(s) lost it; their access tokens at {} were revoked",
        w.people,
        w.clients.join(", ")
    )
}

/// Key commands work on the database (running nodes pick a change up within their refresh
/// interval, 60 s); `remove` also tells every app through the token store, as the admin API
/// does.
async fn keys(
    command: KeysCommand,
    config: &Config,
    now: lanyard_store::Timestamp,
) -> Result<(), Failure> {
    use lanyard_core::tokens::rotation;
    if let KeysCommand::MasterKey = command {
        println!("{}", lanyard_core::crypto::MasterKey::generate().1);
        return Ok(());
    }
    let db = migrated_db(config).await?;
    match command {
        KeysCommand::MasterKey => {}
        KeysCommand::Rewrap {
            new_master_key_file,
        } => {
            let current = lanyard_core::start::master_key(config).map_err(other)?;
            let text = std::fs::read_to_string(&new_master_key_file).map_err(|e| {
                Failure::BadInput(format!("{}: {e}", new_master_key_file.display()))
            })?;
            let new = lanyard_core::crypto::MasterKey::parse(&text).map_err(|e| {
                Failure::BadInput(format!("{}: {e}", new_master_key_file.display()))
            })?;
            let resealed = db
                .with_master_key(std::sync::Arc::new(new))
                .keys()
                .reseal(Some(&current))
                .await
                .map_err(other)?;
            println!(
                "sealed {resealed} secrets under the master key in {}; now set LANYARD_MASTER_KEY_FILE to it and restart every node",
                new_master_key_file.display()
            );
        }
        KeysCommand::List => {
            for key in db.keys().published(now).await.map_err(other)? {
                let when = match key.state.as_str() {
                    "next" => format!(
                        "signs from Unix time {}",
                        key.created_at.plus(config.keys.publish).as_secs()
                    ),
                    "retired" => format!(
                        "published until Unix time {}",
                        key.usable_until.map_or(0, |t| t.as_secs())
                    ),
                    _ => format!("made at Unix time {}", key.created_at.as_secs()),
                };
                println!("{}  {:<5}  {:<7}  {when}", key.kid, key.alg, key.state);
            }
        }
        KeysCommand::Rotate => {
            for (kid, from) in rotation::begin(&db, config, now).await.map_err(other)? {
                println!(
                    "published {kid} as the next key; it signs from Unix time {} (after key_publish_secs = {}); running nodes publish it within 60 s",
                    from.as_secs(),
                    config.keys.publish.as_secs()
                );
            }
        }
        KeysCommand::Remove { kid } => {
            // As the admin API does it: removed, and a `kid` entry pushed to every app's
            // revocation mirror (through Redis), so apps drop the key within a second.
            let state = AppState::build(config.clone()).await.map_err(other)?;
            let result = lanyard_core::keys::remove(&state, &kid, CLI_ACTOR).await;
            flush_audit(&state).await;
            let signing = result?;
            println!("removed {kid}; {signing} signs now (running nodes switch within 60 s)");
        }
    }
    Ok(())
}

/// How the command line is named in the audit trail and the revocation record.
const CLI_ACTOR: &str = "cli";

/// Stores the command's audit events before it exits, waiting at most as long as `serve` does
/// at shutdown: the action itself is done, and must be reported even if the database went away.
async fn flush_audit(state: &AppState) {
    if !state
        .audit
        .flush_for(lanyard_core::audit::SHUTDOWN_FLUSH)
        .await
    {
        eprintln!(
            "warning: the audit events of this command could not be stored (the database did not answer)"
        );
    }
}

fn describe(outcome: &Outcome) -> String {
    let mut parts = vec![
        format!("{} session(s) ended", outcome.sessions_ended.len()),
        format!(
            "{} refresh-token famil(ies) revoked",
            outcome.refresh_families_revoked
        ),
    ];
    if outcome.access_tokens_revoked > 0 {
        parts.push(format!(
            "{} access token(s) revoked",
            outcome.access_tokens_revoked
        ));
    }
    if let Some(entry) = &outcome.entry {
        parts.push(format!(
            "{} {} refused (entry kept until Unix time {})",
            entry.kind, entry.value, entry.until
        ));
    }
    parts.join(", ")
}

/// Sends what the outbox holds now (the mail just queued among it), so a command works
/// without a running server; what cannot go now stays for the servers' senders.
async fn send_now(state: &AppState) {
    match lanyard_core::mail::deliver_due(state).await {
        Ok(n) if n > 0 => println!(
            "sent {n} mail(s) through {}",
            state.mailer.transport.describe()
        ),
        Ok(_) => println!(
            "the mail waits in the outbox ({} did not take it yet); a running Lanyard sends it",
            state.mailer.transport.describe()
        ),
        Err(e) => println!("the mail waits in the outbox ({e}); a running Lanyard sends it"),
    }
}

async fn migrated_db(config: &Config) -> Result<lanyard_core::db::Db, Failure> {
    lanyard_core::start::open_db(config, std::sync::Arc::new(SystemClock))
        .await
        .map_err(other)
}

async fn serve(config: Config, demo: bool) -> Result<(), Failure> {
    let listen = config.listen;
    let issuer = config.issuer.clone();
    let state = AppState::build(config).await.map_err(other)?;
    if demo {
        seed_demo(&state).await?;
    }
    let users = state.db.users().count().await.map_err(other)?;
    let clients = state.db.clients().count().await.map_err(other)?;
    if (users == 0 || clients == 0) && !json_logs() {
        eprintln!(
            "\nLanyard has no {}. Add them with, for example:",
            if users == 0 && clients == 0 {
                "users or clients"
            } else if users == 0 {
                "users"
            } else {
                "clients"
            }
        );
        eprintln!(
            "  echo 'a-long-password' | lanyard user add alice --password-stdin --email alice@example.com"
        );
        eprintln!("  lanyard client add wiki --redirect-uri http://127.0.0.1:9000/callback");
        eprintln!("or restart with `lanyard serve --demo` for a demo user and client.\n");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| other(format!("cannot listen on {listen}: {e}")))?;
    if json_logs() {
        tracing::info!(%issuer, %listen, "Lanyard is running");
    } else {
        eprintln!("Lanyard is running. Issuer (give this to your OIDC library): {issuer}");
        eprintln!("Discovery: {issuer}/.well-known/openid-configuration");
    }
    lanyard_idp::serve(listener, state, lanyard_idp::shutdown_signal())
        .await
        .map_err(other)
}

async fn seed_demo(state: &AppState) -> Result<(), Failure> {
    let now = SystemClock.now();
    match add_demo_user(&state.db, &state.passwords, now).await {
        Ok(password) => eprintln!("demo user: username demo, password {password}"),
        Err(ServiceError::Conflict(_)) => {
            eprintln!("demo user `demo` exists already (its password was printed when it was made)")
        }
        Err(e) => return Err(e.into()),
    }
    let new = NewClient {
        settings: ClientSettings {
            name: "Demo app".into(),
            redirect_uris: vec!["http://127.0.0.1:9000/callback".into()],
            first_party: true,
            ..ClientSettings::new("demo")
        },
        secret: None,
    };
    match add_client(&state.db, &state.server_keys, new, now).await {
        Ok((_, Some(secret))) => eprintln!(
            "demo client: client_id demo, client_secret {secret}, redirect http://127.0.0.1:9000/callback"
        ),
        Ok((_, None)) => {}
        Err(ServiceError::Conflict(_)) => eprintln!("demo client `demo` exists already"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
