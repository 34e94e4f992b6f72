//! What the fuzz targets share: a fixed issuer key set and the guards that use it, fixed
//! clients, a fixed clock, and the framing of the targets' inputs.
//!
//! `fixtures/jwks.json` and `fixtures/accepted_tokens.txt` are written by the seed-corpus
//! generator (`cargo run --example seed_corpus`), which signs with a key it makes and then
//! forgets: the fuzzer holds no private key, so it cannot sign anything itself.

use std::sync::Arc;
use std::time::Duration;

/// The instant everything is judged at (seconds since the epoch): the seed tokens are valid
/// at this instant, forever.
pub const NOW: i64 = 1_750_000_000;

/// Splits a target's input at the first empty line (`\n\n`): a head (request line or
/// headers) and, if there is one, a body.
pub fn split_head(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], Some(&data[i + 2..])),
        None => (data, None),
    }
}

/// The relying party's side: guards over a fixed key set.
pub mod jwt {
    use super::*;
    use lanyard_rp::keys::{JwksSource, KeyCache};
    use lanyard_rp::{Claims, Guard, GuardConfig, Mirror, StoreSource};
    use lanyard_store::{ManualClock, MemoryStore, StoreConfig, Target, Timestamp, TokenStore};

    /// `iss` of the seed tokens.
    pub const ISSUER: &str = "https://sso.example.com";
    /// The guarded API.
    pub const AUDIENCE: &str = "wiki";
    /// The one key's id.
    pub const KID: &str = "k1";
    /// A token with this `jti` is revoked in the guards' mirror.
    pub const REVOKED_JTI: &str = "revoked-token";
    /// The issuer's key set (public keys only).
    pub const JWKS: &str = include_str!("../fixtures/jwks.json");
    /// The tokens the guard must accept, one a line. Nothing else may be accepted.
    const ACCEPTED: &str = include_str!("../fixtures/accepted_tokens.txt");

    /// The tokens the guard must accept.
    pub fn accepted() -> impl Iterator<Item = &'static str> {
        ACCEPTED.lines().filter(|l| !l.is_empty())
    }

    struct StaticJwks;

    #[async_trait::async_trait]
    impl JwksSource for StaticJwks {
        async fn fetch(&self) -> Result<String, String> {
            Ok(JWKS.to_owned())
        }
    }

    /// Two guards sharing one key cache and one revocation mirror, on a runtime to drive them.
    pub struct Fixture {
        /// A current-thread runtime: `block_on` each check.
        pub runtime: tokio::runtime::Runtime,
        /// The default settings (tokens in the `Authorization` header only).
        pub guard: Guard,
        /// The same, also reading `?access_token=` (RFC 6750 §2.3).
        pub query_guard: Guard,
        /// The claims of the accepted tokens.
        pub accepted_claims: Vec<Claims>,
    }

    /// Builds the guards, and checks that every accepted token is accepted (otherwise the
    /// target's assertions would hold vacuously).
    #[allow(clippy::expect_used)]
    pub fn fixture() -> Fixture {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let clock = Arc::new(ManualClock::new(Timestamp::from_secs(NOW)));
        let (guard, query_guard) = runtime.block_on(async {
            let store: Arc<dyn TokenStore> = Arc::new(
                MemoryStore::with_clock(StoreConfig::default(), clock.clone()).expect("a store"),
            );
            store
                .revoke(
                    Target::Jti(REVOKED_JTI.to_owned()),
                    Timestamp::from_secs(NOW),
                )
                .await
                .expect("revoked");
            let config = GuardConfig::new(ISSUER, AUDIENCE);
            let keys = Arc::new(
                KeyCache::load(Box::new(StaticJwks), config.jwks_cooldown)
                    .await
                    .expect("the key set loads"),
            );
            assert_eq!(
                keys.snapshot().len(),
                1,
                "fixtures/jwks.json has one usable key"
            );
            let mirror = Mirror::follow(
                Arc::new(StoreSource(store)),
                config.staleness_bound,
                config.max_token_lifetime,
                clock.clone(),
            );
            assert!(
                mirror.ready(Duration::from_secs(5)).await,
                "the mirror starts"
            );
            let mut with_query = config.clone();
            with_query.allow_query_token = true;
            (
                Guard::from_parts(config, keys.clone(), mirror.clone(), clock.clone())
                    .expect("a guard"),
                Guard::from_parts(with_query, keys, mirror, clock).expect("a guard"),
            )
        });
        let accepted_claims = accepted()
            .map(|token| {
                runtime
                    .block_on(guard.verify(token))
                    .unwrap_or_else(|e| panic!("seed token refused ({e:?}): {token}"))
                    .claims
            })
            .collect();
        Fixture {
            runtime,
            guard,
            query_guard,
            accepted_claims,
        }
    }
}

/// The authorization server's side: registered clients and the server's keys.
pub mod idp {
    use super::*;
    use lanyard_core::crypto::ServerKeys;
    use lanyard_core::model::{Client, ClientSettings, GrantType};
    use lanyard_store::{Session, SessionId, Timestamp};

    /// The confidential clients' secret.
    pub const CLIENT_SECRET: &str = "fuzz-client-secret-0123456789abcdefghijklmnop";

    /// The server's keys (the client-secret pepper matters here).
    pub fn server_keys() -> ServerKeys {
        ServerKeys::new(b"fuzz client-secret pepper", b"fuzz cookie key")
    }

    /// The registered clients:
    /// - `web`: confidential, first party, every grant, an https redirect URI and two loopback
    ///   ones (any port may be sent for those, RFC 8252 §7.3);
    /// - `spa`: public (PKCE required), an https and a private-use-scheme redirect URI;
    /// - `service`: confidential, `client_credentials` only.
    pub fn clients() -> Vec<Client> {
        let keys = server_keys();
        let client = |id: &str, public: bool| Client {
            settings: ClientSettings {
                name: id.to_owned(),
                public,
                ..ClientSettings::new(id)
            },
            secret_hash: (!public).then(|| keys.hash_client_secret(CLIENT_SECRET)),
            created_at: Timestamp::from_secs(NOW),
            updated_at: Timestamp::from_secs(NOW),
        };
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut web = client("web", false);
        web.settings.first_party = true;
        web.settings.redirect_uris = strings(&[
            "https://app.example/cb",
            "http://127.0.0.1/callback",
            "http://[::1]/callback",
        ]);
        web.settings.grant_types = GrantType::ALL.to_vec();
        web.settings.scopes = strings(&[
            "openid",
            "profile",
            "email",
            "offline_access",
            "reports:read",
        ]);
        let mut spa = client("spa", true);
        spa.settings.redirect_uris = strings(&["https://spa.example/cb", "com.example.app:/cb"]);
        spa.settings.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        spa.settings.scopes = strings(&["openid", "profile"]);
        let mut service = client("service", false);
        service.settings.grant_types = vec![GrantType::ClientCredentials];
        service.settings.scopes = strings(&["reports:read"]);
        vec![web, spa, service]
    }

    /// A live SSO session of `alice`, signed in ten minutes before [`NOW`].
    pub fn session() -> Session {
        let now = Timestamp::from_secs(NOW);
        Session {
            sid: SessionId::generate(),
            sub: "alice".to_owned(),
            auth_time: Timestamp::from_secs(NOW - 600),
            amr: vec!["pwd".to_owned()],
            remember_me: false,
            created_at: Timestamp::from_secs(NOW - 600),
            idle_timeout: Duration::from_secs(1800),
            idle_deadline: now.plus(Duration::from_secs(1800)),
            absolute_deadline: now.plus(Duration::from_secs(36_000)),
            last_seen: now,
            clients: Default::default(),
            user_agent: None,
            ip: None,
        }
    }
}
