//! `lanyard-demo`: the playground, or one demo app on its own.

// A command line prints what it started on standard output.
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lanyard_demo::playground::{self, Ports};
use lanyard_demo::{DemoConfig, app};
use lanyard_store::{RedisConfig, RedisStore, StoreConfig};

/// Demo apps for Lanyard.
#[derive(Parser)]
#[command(name = "lanyard-demo", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Lanyard on its embedded defaults plus the wiki and billing apps, in one process.
    Playground {
        /// Lanyard's port.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// The wiki's port.
        #[arg(long, default_value_t = 8081)]
        wiki_port: u16,
        /// The billing app's port.
        #[arg(long, default_value_t = 8082)]
        billing_port: u16,
    },
    /// One demo app against a running Lanyard. Revocations are followed through Lanyard's
    /// Redis when --redis-url is given, else through its HTTP revocation feed.
    App {
        /// The app's name (shown, and in its cookie names).
        #[arg(long, env = "LANYARD_DEMO_NAME")]
        name: String,
        /// Lanyard's issuer URL.
        #[arg(long, env = "LANYARD_DEMO_ISSUER")]
        issuer: String,
        /// The app's client id.
        #[arg(long, env = "LANYARD_DEMO_CLIENT_ID")]
        client_id: String,
        /// The app's client secret (from the environment, never the command line).
        #[arg(
            long = "client-secret-env",
            hide = true,
            env = "LANYARD_DEMO_CLIENT_SECRET"
        )]
        client_secret: String,
        /// Where to listen.
        #[arg(long, env = "LANYARD_DEMO_LISTEN", default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Where browsers reach the app (redirect URI = this + /callback).
        #[arg(long, env = "LANYARD_DEMO_BASE_URL")]
        base_url: String,
        /// Lanyard's Redis, for the revocation mirror (default: Lanyard's HTTP revocation
        /// feed, read with the app's client credentials).
        #[arg(long, env = "LANYARD_DEMO_REDIS_URL")]
        redis_url: Option<String>,
        /// Lanyard's Redis key prefix.
        #[arg(long, env = "LANYARD_DEMO_REDIS_PREFIX", default_value = "lanyard:")]
        redis_prefix: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanyard-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Playground {
            port,
            wiki_port,
            billing_port,
        } => {
            let dir =
                std::env::temp_dir().join(format!("lanyard-playground-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let running = playground::start(
                Ports {
                    lanyard: port,
                    wiki: wiki_port,
                    billing: billing_port,
                },
                &dir,
            )
            .await?;
            println!("\nLanyard playground is running.\n");
            println!("  Lanyard (issuer):  {}", running.issuer);
            for (name, url) in &running.apps {
                println!("  {name:<8}           {url}");
            }
            println!(
                "\n  Sign in as:        {} / {}   (in the group Finance: billing's invoices)",
                running.username, running.password
            );
            println!(
                "  or as:             {} / {}   (no role: billing's invoices answer 403)",
                running.viewer.0, running.viewer.1
            );
            println!(
                "\n  Console:           {}   (the demo user is an operator; it asks them to set\n                     up an authenticator app first: operators sign in with two factors)",
                running.console
            );
            println!(
                "\n  Mail (\"Forgot your password?\" on the sign-in page) has no SMTP relay here: each mail\n  is a file in {} and its link is in the log.",
                running.outbox.display()
            );
            println!("\nOpen the wiki, sign in, then open billing: you are already signed in.");
            println!(
                "What just happened, and how to point a real app at Lanyard: docs/quickstart.md"
            );
            println!("Stop with Ctrl-C.\n");
            lanyard_idp::shutdown_signal().await;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(())
        }
        Command::App {
            name,
            issuer,
            client_id,
            client_secret,
            listen,
            base_url,
            redis_url,
            redis_prefix,
        } => {
            let source: Arc<dyn lanyard_rp::RevocationSource> = match redis_url {
                Some(url) => {
                    let mut redis = RedisConfig::new(url);
                    redis.prefix = redis_prefix;
                    let store = RedisStore::connect(StoreConfig::default(), redis).await?;
                    Arc::new(lanyard_rp::StoreSource(Arc::new(store)))
                }
                None => Arc::new(
                    lanyard_rp::HttpSource::discover(&issuer, &client_id, &client_secret).await?,
                ),
            };
            let config = DemoConfig {
                name,
                issuer,
                client_id,
                client_secret,
                listen,
                base_url,
                staleness_bound: Duration::from_secs(10),
                clock: std::sync::Arc::new(lanyard_store::SystemClock),
            };
            let (router, _) = app(&config, source).await?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            println!("{} is listening on {}", config.name, config.base_url);
            lanyard_demo::serve(listener, router, lanyard_idp::shutdown_signal()).await?;
            Ok(())
        }
    }
}
