//! What a request needs, built once at start and shared (`AppState` is cheap to clone): the
//! core's services (`lanyard_core::Core`, which `AppState` dereferences to) and what only the
//! web layer holds.

use std::ops::Deref;
use std::sync::Arc;

use lanyard_core::Core;
use lanyard_core::config::Config;
use lanyard_core::start::StartError;
use lanyard_store::{Clock, SystemClock, TokenStore};

use crate::oauth::discovery;

/// How often the revocation feed's streams hear from the store at the latest: each store
/// answer ("nothing new" included) becomes a heartbeat on every stream (`http/feed.rs`).
pub const FEED_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// The shared state.
#[derive(Clone, Debug)]
pub struct AppState {
    core: Core,
    web: Arc<Web>,
}

/// What only the web layer holds.
#[derive(Debug)]
pub struct Web {
    /// The discovery document, serialised once.
    pub discovery: String,
    /// Turns true when the server begins to shut down: long-lived responses (the revocation
    /// feed's streams) end, so that the graceful shutdown does not wait on them forever.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Where this node listens (set when it starts serving): the console reaches its own
    /// node's token endpoint there rather than through the public address.
    pub listening: std::sync::OnceLock<std::net::SocketAddr>,
    /// The console's sign-in (`lanyard-rp`), made at its first use: discovery needs the
    /// node to be serving.
    pub console: tokio::sync::OnceCell<lanyard_rp::signin::WebSignIn>,
    /// The revocation feed's followers share one subscription to the store (on Redis, one
    /// connection for all of them instead of one each).
    pub feed: lanyard_store::Fanout,
}

impl Deref for AppState {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl AppState {
    /// Starts the core ([`Core::start`]) and adds the web layer's parts.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with(config, Arc::new(SystemClock), None).await
    }

    /// Like [`build`](Self::build), with a clock and, optionally, a store made by the caller
    /// (tests).
    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Option<Arc<dyn TokenStore>>,
    ) -> Result<Self, StartError> {
        Ok(Self::new(Core::start_with(config, clock, store).await?))
    }

    /// The web layer around a started core.
    pub fn new(core: Core) -> Self {
        let web = Web {
            discovery: discovery::metadata(&core.config),
            stopping: tokio::sync::watch::Sender::new(false),
            listening: std::sync::OnceLock::new(),
            console: tokio::sync::OnceCell::new(),
            feed: lanyard_store::Fanout::new(core.store.clone(), FEED_HEARTBEAT),
        };
        Self {
            core,
            web: Arc::new(web),
        }
    }

    /// The core's services.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// What only the web layer holds.
    pub fn web(&self) -> &Web {
        &self.web
    }
}
