//! The playground: Lanyard on its embedded defaults (a fresh SQLite file, the in-process
//! store), a demo user, and two demo apps (wiki, billing) registered as first-party clients,
//! all in one process. Sign in at one app and open the other: you are already signed in.
//!
//! The demo user is in the group Finance, which holds billing's role `billing:admin`; a
//! second user, `viewer`, holds nothing: billing's `/invoices` shows one the invoices and
//! the other a 403. The demo user is also an operator: the console at `/console` is theirs
//! (it asks them to set up an authenticator app first: operators sign in with two factors).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lanyard_core::clients::{NewClient, add_client};
use lanyard_core::config::Config;
use lanyard_core::model::ClientSettings;
use lanyard_core::users::add_demo_user;
use lanyard_idp::state::AppState as Lanyard;
use lanyard_rp::StoreSource;
use lanyard_store::{Clock, SystemClock};

use crate::{DemoConfig, app};

/// Where the playground listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Lanyard.
    pub lanyard: u16,
    /// The wiki app.
    pub wiki: u16,
    /// The billing app.
    pub billing: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            lanyard: 8080,
            wiki: 8081,
            billing: 8082,
        }
    }
}

/// What a running playground offers.
#[derive(Debug, Clone)]
pub struct Running {
    /// Lanyard's issuer URL.
    pub issuer: String,
    /// The apps: name and URL.
    pub apps: Vec<(String, String)>,
    /// The demo user's username.
    pub username: String,
    /// The demo user's password.
    pub password: String,
    /// The second user (`viewer`, without billing's `billing:admin`) and their password.
    pub viewer: (String, String),
    /// Where Lanyard's mail goes (no relay here): one `.eml` file per mail.
    pub outbox: std::path::PathBuf,
    /// The operators' console (the demo user is an operator).
    pub console: String,
}

/// Why the playground could not start.
#[derive(Debug, thiserror::Error)]
pub enum PlaygroundError {
    /// Lanyard did not start.
    #[error("Lanyard: {0}")]
    Lanyard(String),
    /// A port is taken.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    /// A demo app did not start.
    #[error("demo app: {0}")]
    App(#[from] crate::DemoError),
}

/// Starts everything (Lanyard's database in `dir`) and returns once all of it answers; it
/// runs until the process ends.
pub async fn start(ports: Ports, dir: &Path) -> Result<Running, PlaygroundError> {
    let issuer = format!("http://localhost:{}", ports.lanyard);
    let lanyard_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.lanyard));
    let config = Config {
        issuer: issuer.clone(),
        listen: lanyard_addr,
        database_url: format!("sqlite://{}/playground.db?mode=rwc", dir.display()),
        // The demo apps' back-channel logout addresses are on this machine.
        outbound_allow: lanyard_core::outbound::loopback(),
        ..Config::default()
    };
    let outbox = lanyard_core::mail::outbox_folder(&config);
    let state = Lanyard::build(config)
        .await
        .map_err(|e| PlaygroundError::Lanyard(e.to_string()))?;
    let now = SystemClock.now();
    let password = add_demo_user(&state.db, &state.passwords, now)
        .await
        .map_err(|e| PlaygroundError::Lanyard(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(lanyard_addr)
        .await
        .map_err(|e| PlaygroundError::Listen(lanyard_addr, e))?;
    tokio::spawn(lanyard_idp::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));

    let mut apps = Vec::new();
    for (name, port) in [("wiki", ports.wiki), ("billing", ports.billing)] {
        let base_url = format!("http://localhost:{port}");
        let (client, secret) = add_client(
            &state.db,
            &state.server_keys,
            NewClient {
                settings: ClientSettings {
                    name: format!("The {name} app"),
                    redirect_uris: vec![format!("{base_url}/callback")],
                    post_logout_redirect_uris: vec![format!("{base_url}/")],
                    backchannel_logout_uri: Some(format!("{base_url}/backchannel-logout")),
                    first_party: true,
                    ..ClientSettings::new(name)
                },
                secret: None,
            },
            now,
        )
        .await
        .map_err(|e| PlaygroundError::Lanyard(e.to_string()))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let config = DemoConfig {
            name: name.into(),
            issuer: issuer.clone(),
            client_id: client.settings.client_id,
            client_secret: secret.unwrap_or_default(),
            listen: addr,
            base_url: base_url.clone(),
            staleness_bound: Duration::from_secs(10),
            clock: state.clock.clone(),
        };
        // In one process the apps follow Lanyard's own store; apart, they would follow Redis.
        let (router, _) = app(&config, Arc::new(StoreSource(state.store.clone()))).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| PlaygroundError::Listen(addr, e))?;
        tokio::spawn(crate::serve(listener, router, std::future::pending()));
        apps.push((name.to_owned(), base_url));
    }
    let viewer = seed_access(&state)
        .await
        .map_err(|e| PlaygroundError::Lanyard(e.to_string()))?;
    // The demo user runs the playground's Lanyard from its console too.
    let demo = lanyard_core::users::by_username(&state, "demo")
        .await
        .map_err(|e| PlaygroundError::Lanyard(e.to_string()))?;
    lanyard_core::operators::add(&state, &demo.sub, "playground")
        .await
        .map_err(|e| PlaygroundError::Lanyard(e.to_string()))?;
    Ok(Running {
        console: format!("{issuer}/console"),
        issuer,
        apps,
        username: "demo".into(),
        password,
        viewer,
        outbox,
    })
}

/// The group Finance (the demo user) holding billing's `billing:admin`, and a user `viewer`
/// outside it; returns the viewer's username and password.
async fn seed_access(state: &Lanyard) -> Result<(String, String), lanyard_core::ServiceError> {
    use lanyard_core::access;
    use lanyard_core::model::Holder;
    const ACTOR: &str = "playground";
    let password = lanyard_core::crypto::random_token(12);
    lanyard_core::users::add_user(
        &state.db,
        &state.passwords,
        lanyard_core::users::NewUser {
            username: "viewer".into(),
            password: password.clone(),
            email: Some("viewer@example.com".into()),
            display_name: Some("Viewer Example".into()),
        },
        state.clock.now(),
    )
    .await?;
    let finance = access::create_group(
        state,
        access::NewGroup {
            name: "Finance".into(),
            description: Some("Approves invoices".into()),
            external_id: None,
        },
        ACTOR,
    )
    .await?;
    let demo = lanyard_core::users::by_username(state, "demo").await?;
    access::change_members(state, &finance.id, &[demo.sub], &[], ACTOR).await?;
    access::create_role(
        state,
        "billing",
        "billing:admin",
        Some("Sees and approves invoices".into()),
        ACTOR,
    )
    .await?;
    access::grant_role(
        state,
        "billing",
        "billing:admin",
        &Holder::Group(finance.id),
        ACTOR,
    )
    .await?;
    Ok(("viewer".into(), password))
}
