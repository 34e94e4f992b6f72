//! The resource guard: reads the bearer token of a request (RFC 6750 §2), validates it
//! offline, checks the revocation mirror, and answers exactly as RFC 6750 §3 says.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, header};
use lanyard_store::{Clock, SystemClock, Timestamp, TokenFacts, Verdict};

use crate::challenge::Denial;
use crate::dpop::{self, ReplayCache};
use crate::keys::{HttpJwks, KeyCache};
use crate::mirror::{Mirror, RevocationSource};
use crate::validate::{self, Claims};
use crate::{Discovery, GuardConfig};

/// Why a guard could not start.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A setting would weaken the checks.
    #[error("guard configuration: {0}")]
    Config(String),
    /// The issuer's discovery document or keys could not be fetched.
    #[error("cannot reach the issuer: {0}")]
    Issuer(String),
}

/// Who a request acts for, once its token passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's claims.
    pub claims: Claims,
}

impl Principal {
    /// `Ok` if the token was granted `scope`; otherwise the 403 to answer.
    pub fn require_scope(&self, scope: &str) -> Result<(), Denial> {
        if self.claims.has_scope(scope) {
            Ok(())
        } else {
            Err(Denial::InsufficientScope(scope.to_owned()))
        }
    }

    /// `Ok` if the person holds `role` at this API (the token's `roles`); otherwise the 403
    /// naming it. Never 401: the token is good, the person is not allowed.
    pub fn require_role(&self, role: &str) -> Result<(), Denial> {
        self.require_any_role(&[role])
    }

    /// `Ok` if the person holds at least one of `roles`; otherwise the 403 naming them.
    pub fn require_any_role(&self, roles: &[&str]) -> Result<(), Denial> {
        if roles.iter().any(|r| self.claims.has_role(r)) {
            Ok(())
        } else {
            Err(Denial::MissingRole(
                roles.iter().map(|r| (*r).to_owned()).collect(),
            ))
        }
    }

    /// `Ok` if the person is in the group `group` (the token's `groups`, present when it was
    /// granted the `groups` scope); otherwise the 403 naming it.
    pub fn require_group(&self, group: &str) -> Result<(), Denial> {
        if self.claims.in_group(group) {
            Ok(())
        } else {
            Err(Denial::MissingGroup(group.to_owned()))
        }
    }

    /// `Ok` if the person signed in at least as strongly as `acr` (Lanyard's values are
    /// ordered: `urn:lanyard:acr:pwd` < `...:mfa` < `...:phr`; any other value must match
    /// exactly); otherwise the 401 `insufficient_user_authentication` to answer (RFC 9470).
    pub fn require_acr(&self, acr: &str) -> Result<(), Denial> {
        if acr_satisfies(self.claims.acr.as_deref(), acr) {
            Ok(())
        } else {
            Err(Denial::InsufficientUserAuthentication {
                acr_values: Some(acr.to_owned()),
                max_age: None,
            })
        }
    }

    /// `Ok` if the person signed in at most `max_age` ago (by `now`); otherwise the 401
    /// `insufficient_user_authentication` with `max_age` (RFC 9470). A token without
    /// `auth_time` (a client's own) never meets it.
    pub fn require_recent_sign_in(&self, max_age: Duration, now: Timestamp) -> Result<(), Denial> {
        let fresh = self.claims.auth_time.is_some_and(|at| {
            now.as_secs().saturating_sub(at) <= i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX)
        });
        if fresh {
            Ok(())
        } else {
            Err(Denial::InsufficientUserAuthentication {
                acr_values: None,
                max_age: Some(max_age.as_secs()),
            })
        }
    }
}

/// Lanyard's `acr` values, weakest first.
const LANYARD_ACR: [&str; 3] = [
    "urn:lanyard:acr:pwd",
    "urn:lanyard:acr:mfa",
    "urn:lanyard:acr:phr",
];

/// Whether a sign-in of strength `had` meets `needed`.
pub(crate) fn acr_satisfies(had: Option<&str>, needed: &str) -> bool {
    let Some(had) = had else {
        return false;
    };
    let rank = |v: &str| LANYARD_ACR.iter().position(|a| *a == v);
    match (rank(had), rank(needed)) {
        (Some(h), Some(n)) => h >= n,
        _ => had == needed,
    }
}

/// Checks access tokens for one API. Cheap to clone.
#[derive(Clone)]
pub struct Guard {
    config: Arc<GuardConfig>,
    keys: Arc<KeyCache>,
    mirror: Mirror,
    clock: Arc<dyn Clock>,
    replays: Arc<ReplayCache>,
    nonces: Arc<dpop::Nonces>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Discovers the issuer, loads its keys, and starts the revocation mirror on `source`.
    /// Waits up to 5 s for the mirror's first snapshot (it keeps trying after that; until
    /// then the guard answers 503).
    pub async fn connect(
        config: GuardConfig,
        source: Arc<dyn RevocationSource>,
    ) -> Result<Self, GuardError> {
        Self::connect_with_clock(config, source, Arc::new(SystemClock)).await
    }

    /// [`Guard::connect`] judging time (`exp`, `iat`, the mirror's staleness) on `clock`:
    /// tests move a `ManualClock` rather than sleep.
    pub async fn connect_with_clock(
        config: GuardConfig,
        source: Arc<dyn RevocationSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, GuardError> {
        config.validate().map_err(GuardError::Config)?;
        let discovery = Discovery::fetch(&config.issuer)
            .await
            .map_err(GuardError::Issuer)?;
        let jwks = HttpJwks {
            http: crate::http_client(),
            uri: discovery.jwks_uri.clone(),
        };
        let keys = Arc::new(
            KeyCache::load_with_clock(Box::new(jwks), config.jwks_cooldown, clock.clone())
                .await
                .map_err(GuardError::Issuer)?,
        );
        keys.refresh_every(config.jwks_max_age);
        let mirror = Mirror::follow(
            source,
            config.staleness_bound,
            config.max_token_lifetime,
            clock.clone(),
        );
        if !mirror.ready(Duration::from_secs(5)).await {
            tracing::warn!("the revocation mirror has no snapshot yet; answering 503 until it has");
        }
        Self::from_parts(config, keys, mirror, clock)
    }

    /// A guard from its parts (tests, or apps with their own key source). The settings are
    /// checked as by [`Guard::connect`].
    pub fn from_parts(
        config: GuardConfig,
        keys: Arc<KeyCache>,
        mirror: Mirror,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, GuardError> {
        config.validate().map_err(GuardError::Config)?;
        refetch_on_withdrawal(&mirror, &keys);
        let nonces = match &config.dpop_nonce_secret {
            Some(secret) => dpop::Nonces::new(secret),
            None => dpop::Nonces::random().map_err(GuardError::Config)?,
        };
        Ok(Self {
            nonces: Arc::new(nonces),
            replays: Arc::new(ReplayCache::new(config.dpop_replay_capacity)),
            config: Arc::new(config),
            keys,
            mirror,
            clock,
        })
    }

    /// The time on the guard's clock (for [`Principal::require_recent_sign_in`]).
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The settings.
    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The revocation mirror (for its status).
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// Checks the request's credentials: `headers`, and `query` (only read when query tokens
    /// are allowed, and then only to refuse two tokens at once). Bearer tokens only: a
    /// DPoP-bound token needs the request's method and URL, [`Guard::authenticate_request`].
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Principal, Denial> {
        let token = bearer_token(headers, query, self.config.allow_query_token)?;
        let principal = self.verify(&token).await?;
        if principal.claims.cnf.is_some() {
            return Err(bound_as_bearer());
        }
        Ok(principal)
    }

    /// Checks a request's credentials: a `Bearer` token, or a DPoP-bound token sent with
    /// the `DPoP` scheme and a proof for this request (RFC 9449 §7.1): the proof's
    /// signature, `typ`, `htm` and `htu` (against `public_url`, or the `Host` header), its
    /// `iat` within a minute, `ath` the token's hash, its `jti` never seen before, and its
    /// key the one the token's `cnf.jkt` names.
    pub async fn authenticate_request(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Result<Principal, Denial> {
        let (token, dpop) = access_token(headers, uri.query(), self.config.allow_query_token)?;
        let principal = self.verify(&token).await.map_err(|denial| match denial {
            Denial::InvalidToken(d) if dpop => Denial::InvalidDpopToken(d),
            other => other,
        })?;
        let Some(cnf) = &principal.claims.cnf else {
            if dpop {
                return Err(Denial::InvalidDpopToken(
                    "this access token is not bound to a key: send it as Bearer".to_owned(),
                ));
            }
            return Ok(principal);
        };
        if !dpop {
            return Err(bound_as_bearer());
        }
        let mut proofs = headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(Denial::InvalidDpopProof(
                "send exactly one DPoP proof with a DPoP-bound token".to_owned(),
            ));
        };
        let proof = proof.to_str().unwrap_or("");
        let now = self.clock.now().as_secs();
        let mut refusal = None;
        for url in self.urls(uri, headers) {
            let expected = dpop::Expected {
                method: method.as_str(),
                url: &url,
                access_token: Some(&token),
                now,
            };
            match dpop::verify(proof, &expected) {
                Ok(proof) => {
                    if proof.jkt != cnf.jkt {
                        return Err(Denial::InvalidDpopProof(
                            "the DPoP proof is signed by another key than the one the token is bound to"
                                .to_owned(),
                        ));
                    }
                    if self.config.dpop_nonce
                        && !proof
                            .nonce
                            .as_deref()
                            .is_some_and(|n| self.nonces.is_fresh(n, now))
                    {
                        return Err(Denial::UseDpopNonce(self.nonce(now)));
                    }
                    if !self.replays.first_use(&proof, now) {
                        return Err(Denial::InvalidDpopProof(
                            "this DPoP proof was used before: make a fresh proof for each request"
                                .to_owned(),
                        ));
                    }
                    return Ok(principal);
                }
                Err(e) => refusal = Some(e.0),
            }
        }
        Err(Denial::InvalidDpopProof(refusal.unwrap_or_else(|| {
            "the request's URL cannot be known (no Host header)".to_owned()
        })))
    }

    /// The nonce of the minute `now` is in (RFC 9449 §9).
    pub fn nonce(&self, now: i64) -> String {
        self.nonces.current(now)
    }

    /// The URLs this request may have been addressed as: `public_url` and its path, or the
    /// `Host` header's with either scheme.
    fn urls(&self, uri: &http::Uri, headers: &HeaderMap) -> Vec<String> {
        let path = uri.path();
        if let Some(base) = &self.config.public_url {
            return vec![format!("{}{path}", base.trim_end_matches('/'))];
        }
        let host = uri.authority().map(|a| a.as_str().to_owned()).or_else(|| {
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        });
        host.map(|host| {
            vec![
                format!("https://{host}{path}"),
                format!("http://{host}{path}"),
            ]
        })
        .unwrap_or_default()
    }

    /// Checks one access token.
    pub async fn verify(&self, token: &str) -> Result<Principal, Denial> {
        let invalid = |r: validate::Rejection| Denial::InvalidToken(r.description().to_owned());
        let header = validate::header(token).map_err(invalid)?;
        let kid = header
            .kid
            .as_deref()
            .ok_or(invalid(validate::Rejection::UnknownKey))?;
        // A kid is only ever a map key: no file, URL or query is built from it.
        if kid.len() > 256 {
            return Err(invalid(validate::Rejection::UnknownKey));
        }
        let key = self
            .keys
            .key(kid)
            .await
            .ok_or(invalid(validate::Rejection::UnknownKey))?;
        let now = self.clock.now();
        // No more leeway past `exp` than the issuer keeps revocation entries past it: else a
        // revoked token could outlive its entry and pass.
        let leeway = self
            .mirror
            .retention()
            .map_or(self.config.leeway, |kept| kept.min(self.config.leeway));
        let claims = validate::claims_within(token, &key, &self.config, now.as_secs(), leeway)
            .map_err(invalid)?;
        let facts = TokenFacts {
            jti: &claims.jti,
            sid: claims.sid.as_deref(),
            sub: &claims.sub,
            client_id: &claims.client_id,
            origin: claims.origin.as_ref(),
            act: claims.act.as_ref(),
            iat: Timestamp::from_secs(claims.iat),
            exp: Timestamp::from_secs(claims.exp),
        };
        match self.mirror.check(&facts) {
            Ok(Verdict::NotRevoked) => {}
            Ok(Verdict::Revoked(by)) => {
                return Err(Denial::InvalidToken(by.description().to_owned()));
            }
            Err(stale) if self.config.fail_open => {
                tracing::warn!(%stale, "revocation not checked: the mirror is stale and the guard fails open");
            }
            Err(_) => return Err(Denial::Unavailable(Duration::from_secs(2))),
        }
        Ok(Principal { claims })
    }
}

/// Fetches the issuer's keys again each time the mirror hears that one was withdrawn (a
/// leaked key removed in an emergency), so tokens it signed are refused within a second, not
/// at the next scheduled refresh. Ends with the mirror or the key cache.
fn refetch_on_withdrawal(mirror: &Mirror, keys: &Arc<KeyCache>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no Tokio runtime: keys are refetched on schedule only");
        return;
    };
    let mut changed = mirror.keys_changed();
    let keys = Arc::downgrade(keys);
    runtime.spawn(async move {
        while changed.changed().await.is_ok() {
            let Some(keys) = keys.upgrade() else { return };
            tracing::info!("the issuer withdrew a signing key; fetching its keys again");
            keys.refetch().await;
        }
    });
}

/// A DPoP-bound token sent as a bearer token (RFC 9449 §7.1).
fn bound_as_bearer() -> Denial {
    Denial::InvalidDpopToken(
        "this access token is bound to a key (DPoP): send it with the DPoP scheme and a proof, not as Bearer"
            .to_owned(),
    )
}

/// The one bearer token of a request (RFC 6750 §2.1, §2.3). The form-body method (§2.2) is
/// not read: it needs the body, which belongs to the handler. A token sent with the `DPoP`
/// scheme is not a bearer token (no token).
pub fn bearer_token(
    headers: &HeaderMap,
    query: Option<&str>,
    allow_query: bool,
) -> Result<String, Denial> {
    match access_token(headers, query, allow_query)? {
        (token, false) => Ok(token),
        (_, true) => Err(Denial::NoToken),
    }
}

/// The one access token of a request, sent as `Bearer` (RFC 6750 §2.1, §2.3) or with the
/// `DPoP` scheme (RFC 9449 §7.1, then `true` beside it).
pub fn access_token(
    headers: &HeaderMap,
    query: Option<&str>,
    allow_query: bool,
) -> Result<(String, bool), Denial> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let from_header = match values.next() {
        None => None,
        Some(value) => {
            if values.next().is_some() {
                return Err(Denial::InvalidRequest("send one Authorization header"));
            }
            let text = value
                .to_str()
                .map_err(|_| Denial::InvalidRequest("the Authorization header is not valid"))?;
            match text.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer")
                        || scheme.eq_ignore_ascii_case("dpop") =>
                {
                    let token = token.trim();
                    let b64token = !token.is_empty()
                        && token
                            .trim_end_matches('=')
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
                    if !b64token {
                        return Err(Denial::InvalidRequest(
                            "the Bearer credentials are malformed",
                        ));
                    }
                    Some((token.to_owned(), scheme.eq_ignore_ascii_case("dpop")))
                }
                // Another scheme (Basic, ...): not our credentials.
                _ if !["bearer", "dpop"]
                    .iter()
                    .any(|s| text.to_ascii_lowercase().starts_with(s)) =>
                {
                    None
                }
                _ => {
                    return Err(Denial::InvalidRequest(
                        "the Bearer credentials are malformed",
                    ));
                }
            }
        }
    };
    let from_query = query_token(query);
    match (from_header, from_query) {
        (Some(_), Some(_)) => Err(Denial::InvalidRequest("send the access token one way only")),
        (Some(token), None) => Ok(token),
        (None, Some(token)) if allow_query => Ok((token, false)),
        (None, Some(_)) => Err(Denial::InvalidRequest(
            "send the access token in the Authorization header, not the URL",
        )),
        (None, None) => Err(Denial::NoToken),
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "access_token")
        .and_then(|(_, v)| percent_encoding::percent_decode_str(v).decode_utf8().ok())
        .map(|v| v.into_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                header::AUTHORIZATION,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("x")),
            );
        }
        h
    }

    #[test]
    fn reading_the_token_follows_rfc_6750_section_2() {
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def"]), None, false),
            Ok("abc.def".into())
        );
        assert_eq!(
            bearer_token(&headers(&["bearer abc"]), None, false),
            Ok("abc".into())
        );
        assert_eq!(
            bearer_token(&headers(&[]), None, false),
            Err(Denial::NoToken)
        );
        assert_eq!(
            bearer_token(&headers(&["Basic YTpi"]), None, false),
            Err(Denial::NoToken)
        );
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer ä!"] {
            assert!(
                matches!(
                    bearer_token(&headers(&[bad]), None, false),
                    Err(Denial::InvalidRequest(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            bearer_token(&headers(&["Bearer a", "Bearer b"]), None, false),
            Err(Denial::InvalidRequest(_))
        ));
        assert!(matches!(
            bearer_token(&headers(&[]), Some("access_token=abc"), false),
            Err(Denial::InvalidRequest(_))
        ));
        assert_eq!(
            bearer_token(&headers(&[]), Some("x=1&access_token=abc"), true),
            Ok("abc".into())
        );
        assert!(matches!(
            bearer_token(&headers(&["Bearer a"]), Some("access_token=b"), true),
            Err(Denial::InvalidRequest(_))
        ));
    }
}
