//! The issuer's public keys: parsed from a JWKS, cached, refetched on a schedule and on an
//! unknown `kid` at most once per cooldown. Signature keys for RS256 (RSA), ES256 (EC P-256)
//! and EdDSA (OKP Ed25519) are taken, each with its one algorithm: the algorithm a token may
//! use comes from the key set, never from the token.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use lanyard_store::{Clock, SystemClock, Timestamp};
use tokio::sync::Mutex;

/// One of the issuer's public keys, with the one algorithm it verifies.
pub struct IssuerKey {
    /// RS256, ES256 or EdDSA.
    pub alg: Algorithm,
    /// The key.
    pub key: DecodingKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one JWKS.
#[derive(Clone, Default)]
pub struct KeySet {
    /// Shared, so that handing a key to a request copies a pointer, not the key.
    keys: HashMap<String, Arc<IssuerKey>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

impl KeySet {
    /// Parses a JWKS document, keeping signature keys that have a `kid`: RSA for RS256, EC
    /// P-256 for ES256, OKP Ed25519 for EdDSA (each naming that algorithm or none). Everything
    /// else is ignored.
    pub fn from_jwks(json: &str) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            // RFC 7517 §4.2, §4.3: a key published for encryption does not verify signatures.
            let for_signing = !matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature)
                && jwk
                    .common
                    .key_operations
                    .as_ref()
                    .is_none_or(|ops| ops.contains(&KeyOperations::Verify));
            let Some(alg) = algorithm_of(jwk).filter(|_| for_signing) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, Arc::new(IssuerKey { alg, key }));
            }
        }
        Ok(Self { keys })
    }

    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&Arc<IssuerKey>> {
        self.keys.get(kid)
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The one algorithm a JWK verifies, from its key type and curve; `None` when that is not
/// RS256, ES256 or EdDSA, or when the key names another algorithm than its type's.
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let (alg, named) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (Algorithm::RS256, KeyAlgorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(alg),
        Some(a) if a == named => Some(alg),
        Some(_) => None,
    }
}

/// Where a JWKS comes from (an HTTP fetch in production, anything in tests).
#[async_trait]
pub trait JwksSource: Send + Sync + 'static {
    /// The current JWKS document.
    async fn fetch(&self) -> Result<String, String>;
}

/// The issuer's JWKS at `uri`, over HTTP.
pub(crate) struct HttpJwks {
    pub(crate) http: openidconnect::reqwest::Client,
    pub(crate) uri: String,
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<String, String> {
        let response = self
            .http
            .get(&self.uri)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", self.uri, response.status()));
        }
        response.text().await.map_err(|e| e.to_string())
    }
}

/// A cached key set with a refetch policy.
pub struct KeyCache {
    current: RwLock<Arc<KeySet>>,
    source: Box<dyn JwksSource>,
    /// When the last fetch for an unknown `kid` started; one fetch at a time. Scheduled
    /// fetches do not count: the cooldown stops a flood of made-up `kid`s, and must not
    /// blind the cache to a real new key right after a scheduled fetch (or the first load).
    last_fetch: Mutex<Option<Timestamp>>,
    cooldown: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("keys", &self.snapshot())
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    /// Fetches the keys once and builds the cache.
    pub async fn load(source: Box<dyn JwksSource>, cooldown: Duration) -> Result<Self, String> {
        Self::load_with_clock(source, cooldown, Arc::new(SystemClock)).await
    }

    /// [`KeyCache::load`], counting the cooldown on `clock`.
    pub async fn load_with_clock(
        source: Box<dyn JwksSource>,
        cooldown: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let keys = KeySet::from_jwks(&source.fetch().await?)?;
        Ok(Self {
            current: RwLock::new(Arc::new(keys)),
            source,
            last_fetch: Mutex::new(None),
            cooldown,
            clock,
        })
    }

    /// The keys now.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .map(|k| k.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The key for `kid`; an unknown one triggers a refetch unless one started within the
    /// cooldown. Concurrent callers share one fetch.
    pub async fn key(&self, kid: &str) -> Option<Arc<IssuerKey>> {
        if let Some(key) = self.snapshot().get(kid) {
            return Some(key.clone());
        }
        {
            let mut last = self.last_fetch.lock().await;
            // Another caller may have refreshed while we waited for the lock.
            if let Some(key) = self.snapshot().get(kid) {
                return Some(key.clone());
            }
            let now = self.clock.now();
            if last.is_some_and(|t| now < t.plus(self.cooldown)) {
                return None;
            }
            *last = Some(now);
            self.refetch().await;
        }
        self.snapshot().get(kid).cloned()
    }

    /// Refetches now (the scheduled refresh). A failed fetch keeps the keys it had.
    pub async fn refetch(&self) {
        match self
            .source
            .fetch()
            .await
            .and_then(|json| KeySet::from_jwks(&json))
        {
            Ok(keys) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(keys);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh the issuer's keys; keeping the ones known")
            }
        }
    }

    /// Refetches on the schedule, while `self` lives.
    pub fn refresh_every(self: &Arc<Self>, period: Duration) {
        let cache = Arc::downgrade(self);
        // A zero period would make `interval` panic (and hammer the issuer).
        let period = period.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(cache) = cache.upgrade() else { return };
                cache.refetch().await;
            }
        });
    }
}
