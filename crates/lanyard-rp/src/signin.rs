//! Sign-in for web apps (feature `axum`), with the `openidconnect` crate: the code flow with
//! PKCE, `state` and `nonce` kept in a signed, `HttpOnly`, `SameSite=Lax` cookie; the app's own
//! session; a return to the page first asked for; refresh before the access token expires;
//! RP-Initiated Logout when the issuer offers it.
//!
//! Routes: `GET /login?return_to=/path`, `GET /callback`, `GET|POST /logout`, and
//! `POST /backchannel-logout` (OpenID Connect Back-Channel Logout 1.0: register
//! `<base_url>/backchannel-logout` as the client's `backchannel_logout_uri`, and a sign-out
//! anywhere ends this app's session too). Handlers take [`SignedIn`]: an anonymous visitor
//! is sent to sign in and brought back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::hmac;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, JsonWebKeySet, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

use lanyard_store::{Clock, SystemClock, Timestamp};

use crate::client::{ClientError, TokenSource};
use crate::http_client;
use crate::logout::LogoutRejection;

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How an app signs people in.
#[derive(Clone)]
pub struct SignInConfig {
    /// The issuer URL.
    pub issuer: String,
    /// This app's client id.
    pub client_id: String,
    /// Its secret (confidential apps).
    pub client_secret: Option<String>,
    /// Where the app is reached, e.g. `https://wiki.example.com`; the redirect URI is this
    /// plus `/callback`. It may have a path (`https://id.example.com/console`): the routes are
    /// then nested there ([`WebSignIn::routes`] under that path), and every address this
    /// module sends a browser to (`/login`, back after signing out) is under it.
    pub base_url: String,
    /// Where this app reaches the issuer's server-to-server endpoints (discovery, keys,
    /// token, UserInfo) when the public address is not reachable from where it runs: an app
    /// beside Lanyard in a cluster, or Lanyard's own console calling its node. Browsers are
    /// still sent to the public address, and the metadata and tokens must still name
    /// `issuer`. Default: none (the issuer's address).
    pub backchannel_url: Option<String>,
    /// Names the cookies (`<app>_session`, `<app>_signin`), so apps on one host do not clash.
    pub app_name: String,
    /// Scopes to ask for.
    pub scopes: Vec<String>,
    /// How long the app's own session lasts at most.
    pub session_lifetime: Duration,
    /// The time every deadline here is counted on (sessions, access tokens, the sign-in
    /// cookie, ID and logout tokens); tests move a `ManualClock` instead of sleeping.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SignInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .field("backchannel_url", &self.backchannel_url)
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

impl SignInConfig {
    /// Defaults: scopes `openid profile email offline_access`, sessions of 8 hours.
    pub fn new(
        issuer: &str,
        client_id: &str,
        client_secret: Option<String>,
        base_url: &str,
        app_name: &str,
    ) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            base_url: base_url.trim_end_matches('/').to_owned(),
            backchannel_url: None,
            app_name: app_name.to_owned(),
            scopes: ["openid", "profile", "email", "offline_access"]
                .map(str::to_owned)
                .to_vec(),
            session_lifetime: Duration::from_secs(8 * 3600),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The signed-in person, as the app sees them. `Debug` leaves the token and session out.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The user's `sub`.
    pub sub: String,
    /// A name to show: the display name, else the username, else the `sub`.
    pub name: String,
    /// The current access token, for calling APIs on the user's behalf (see
    /// [`WebSignIn::tokens_for`]).
    pub access_token: String,
    /// How strongly they signed in (the ID token's `acr`).
    pub acr: Option<String>,
    session: String,
    /// The app's path (see [`SignInConfig::base_url`]).
    mount: String,
}

impl SignedIn {
    /// `Ok` if the person signed in at least as strongly as `acr` (as the guard's
    /// [`Principal::require_acr`](crate::Principal::require_acr) judges); otherwise to a new
    /// sign-in asking for it, then back to `here` (a local path).
    pub fn require_acr(&self, acr: &str, here: &str) -> Result<(), SignInFirst> {
        if crate::guard::acr_satisfies(self.acr.as_deref(), acr) {
            Ok(())
        } else {
            Err(SignInFirst::login(
                &self.mount,
                here,
                false,
                Some(acr),
                None,
            ))
        }
    }
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("sub", &self.sub)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why an access token could not be renewed.
#[derive(Debug)]
enum Renewal {
    /// The session is over (signed out, refresh refused): sign in again.
    Ended,
    /// The issuer could not be asked.
    Unreachable(String),
}

/// The signed-in person's tokens (see [`WebSignIn::tokens_for`]).
struct UserTokens {
    signin: WebSignIn,
    session: String,
}

#[async_trait::async_trait]
impl TokenSource for UserTokens {
    async fn token(&self) -> Result<String, ClientError> {
        self.signin
            .session(&self.session)
            .map(|s| s.access_token)
            .ok_or_else(ended)
    }

    async fn renew(&self, refused: &str) -> Result<String, ClientError> {
        match self.signin.renew(&self.session, refused, true).await {
            Ok(s) => Ok(s.access_token),
            Err(Renewal::Ended) => Err(ended()),
            Err(Renewal::Unreachable(why)) => Err(ClientError::Token(why)),
        }
    }
}

fn ended() -> ClientError {
    ClientError::SignInAgain {
        reason: "the app's session has ended".into(),
    }
}

#[derive(Clone)]
struct AppSession {
    sub: String,
    name: String,
    access_token: String,
    access_expires: Timestamp,
    refresh_token: Option<String>,
    id_token: String,
    /// The SSO session the sign-in belongs to (`sid` of the ID token).
    sid: Option<String>,
    /// How strongly the person signed in (`acr` of the ID token).
    acr: Option<String>,
    ends: Timestamp,
    refresh_lock: Arc<tokio::sync::Mutex<()>>,
}

/// What the sign-in cookie carries between `/login` and `/callback`.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
    return_to: String,
    /// Unix seconds after which it is refused.
    expires: u64,
}

/// Why a sign-in failed (shown to the person as a page).
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The issuer could not be reached or answered wrongly.
    #[error("the sign-in service could not be reached: {0}")]
    Issuer(String),
    /// The settings cannot work.
    #[error("{0}")]
    Config(String),
}

struct Inner {
    config: SignInConfig,
    /// The path the app's routes are under (`""` at the root; see
    /// [`SignInConfig::base_url`]).
    mount: String,
    /// Replaced when the issuer's keys rotate (the client holds the JWKS it was built with).
    client: std::sync::RwLock<OidcClient>,
    /// When the issuer was last rediscovered for an ID token no known key verified: at
    /// most once per [`REDISCOVER_EVERY`]. The first discovery does not count, or a key
    /// rotated just after the app started would lock people out for that long.
    discovered: Mutex<Option<Timestamp>>,
    end_session: Option<String>,
    /// The issuer's keys, for logout tokens; replaced with the client on rediscovery.
    keys: std::sync::RwLock<crate::keys::KeySet>,
    /// Logout tokens already taken (`jti` → `exp`), so a replay is refused.
    logout_jtis: Mutex<HashMap<String, i64>>,
    http: openidconnect::reqwest::Client,
    key: hmac::Key,
    sessions: Mutex<HashMap<String, AppSession>>,
}

/// Sign-in for one app. Cheap to clone; sessions live in this process.
#[derive(Clone)]
pub struct WebSignIn {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WebSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSignIn")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Accepts only paths on this app: `/`, then visible ASCII with no `\` anywhere and no
/// second `/` straight after the first (browsers read `//host`, `/\host` and even
/// `/<tab>/host` as another host; they drop tabs and newlines from URLs). Everything else
/// returns to `/`: never an open redirect. A browser sends non-ASCII paths percent-encoded,
/// so no real page is lost.
pub fn safe_return_to(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\') =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The issuer is rediscovered (for new signing keys) at most this often.
const REDISCOVER_EVERY: Duration = Duration::from_secs(30);

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The `openidconnect` client for `config` from the issuer's discovery document, and its
/// `end_session_endpoint` (RP-Initiated Logout is an extension field; read from the raw
/// document).
async fn build_client(
    config: &SignInConfig,
    http: &openidconnect::reqwest::Client,
) -> Result<(OidcClient, Option<String>, crate::keys::KeySet), SignInError> {
    let issuer = |e: String| SignInError::Issuer(e);
    let doc = crate::discovery::document(&config.issuer, config.backchannel_url.as_deref())
        .await
        .map_err(issuer)?;
    let end_session = doc
        .get("end_session_endpoint")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let metadata: CoreProviderMetadata =
        serde_json::from_value(doc).map_err(|e| issuer(e.to_string()))?;
    let jwks = JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(|e| issuer(format!("{}: {e}", metadata.jwks_uri().as_str())))?;
    let metadata = metadata.set_jwks(jwks);
    let redirect = RedirectUrl::new(format!("{}/callback", config.base_url))
        .map_err(|e| issuer(e.to_string()))?;
    let keys = serde_json::to_string(metadata.jwks())
        .map_err(|e| e.to_string())
        .and_then(|json| crate::keys::KeySet::from_jwks(&json))
        .map_err(issuer)?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        config.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect);
    Ok((client, end_session, keys))
}

/// The path of `base_url` (`""` for an app at the root of its host).
fn mount_of(base_url: &str) -> String {
    url::Url::parse(base_url)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

impl WebSignIn {
    /// Discovers the issuer and prepares the client.
    pub async fn discover(config: SignInConfig) -> Result<Self, SignInError> {
        if config.app_name.is_empty()
            || !config
                .app_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(SignInError::Config(format!(
                "the app name {:?} names cookies: use letters, digits, '-' and '.'",
                config.app_name
            )));
        }
        let http = http_client();
        let (client, end_session, keys) = build_client(&config, &http).await?;
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| SignInError::Issuer("no randomness".into()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                mount: mount_of(&config.base_url),
                config,
                client: std::sync::RwLock::new(client),
                discovered: Mutex::new(None),
                end_session,
                keys: std::sync::RwLock::new(keys),
                logout_jtis: Mutex::new(HashMap::new()),
                http,
                key: hmac::Key::new(hmac::HMAC_SHA256, &key),
                sessions: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Now, on the configured clock.
    fn now(&self) -> Timestamp {
        self.inner.config.clock.now()
    }

    fn client(&self) -> OidcClient {
        self.inner
            .client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Discovers the issuer again (its keys may have rotated), unless that was done less
    /// than [`REDISCOVER_EVERY`] ago. Returns whether the client was replaced.
    async fn rediscover(&self) -> bool {
        {
            let mut last = self
                .inner
                .discovered
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = self.now();
            if last.is_some_and(|t| now < t.plus(REDISCOVER_EVERY)) {
                return false;
            }
            *last = Some(now);
        }
        match build_client(&self.inner.config, &self.inner.http).await {
            Ok((client, _, keys)) => {
                *self.inner.client.write().unwrap_or_else(|p| p.into_inner()) = client;
                *self.inner.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not rediscover the issuer");
                false
            }
        }
    }

    fn https(&self) -> bool {
        self.inner
            .config
            .base_url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    }

    /// `<app>_<what>`; over HTTPS with the `__Host-` prefix, so that no sibling subdomain can
    /// plant one (RFC 6265bis §4.1.3.2).
    fn cookie_name(&self, what: &str) -> String {
        let prefix = if self.https() { "__Host-" } else { "" };
        format!("{prefix}{}_{what}", self.inner.config.app_name)
    }

    fn session_cookie(&self) -> String {
        self.cookie_name("session")
    }

    fn signin_cookie(&self) -> String {
        self.cookie_name("signin")
    }

    fn set_cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
        let secure = if self.https() { "; Secure" } else { "" };
        let age = max_age
            .map(|a| format!("; Max-Age={a}"))
            .unwrap_or_default();
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
    }

    fn seal(&self, pending: &Pending) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(pending).unwrap_or_default());
        let tag = hmac::sign(&self.inner.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    fn open(&self, sealed: &str) -> Option<Pending> {
        let (body, tag) = sealed.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        hmac::verify(&self.inner.key, body.as_bytes(), &tag).ok()?;
        let pending: Pending = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (i64::try_from(pending.expires).is_ok_and(|e| e > self.now().as_secs())).then_some(pending)
    }

    /// The routes `/login`, `/callback`, `/logout`, for an app whose state gives a
    /// `WebSignIn`.
    pub fn routes<S>() -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
        WebSignIn: FromRef<S>,
    {
        Router::new()
            .route("/login", get(login::<S>))
            .route("/callback", get(callback::<S>))
            .route("/logout", get(confirm_logout::<S>).post(logout::<S>))
            .route("/backchannel-logout", post(backchannel_logout::<S>))
            .route("/session/status", get(session_status))
            .route("/session/extend", post(session_extend))
    }

    /// Takes a logout token from the issuer (Back-Channel Logout 1.0 §2.6) and ends the app
    /// sessions it names. Returns how many ended.
    pub async fn accept_logout_token(&self, token: &str) -> Result<usize, LogoutRejection> {
        let kid = crate::logout::key_id(token)?;
        let key = self.logout_key(&kid);
        let key = match key {
            Some(key) => key,
            // Signed with a key this app has not seen: the issuer may have rotated.
            None if self.rediscover().await => {
                self.logout_key(&kid).ok_or(LogoutRejection::UnknownKey)?
            }
            None => return Err(LogoutRejection::UnknownKey),
        };
        let now = self.now().as_secs();
        let config = &self.inner.config;
        let logout =
            crate::logout::validate(token, &key, &config.issuer, &config.client_id, now, 60)?;
        {
            let mut seen = self
                .inner
                .logout_jtis
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            seen.retain(|_, exp| *exp + 60 > now);
            if seen.insert(logout.jti.clone(), logout.exp).is_some() {
                return Err(LogoutRejection::Replayed);
            }
        }
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, s| !logout.ends(&s.sub, s.sid.as_deref()));
        Ok(before - sessions.len())
    }

    fn logout_key(&self, kid: &str) -> Option<Arc<crate::keys::IssuerKey>> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(kid)
            .cloned()
    }

    /// The signed-in person of a request, refreshing the access token when it is about to
    /// expire. `Err(true)`: there was a session but it ended.
    async fn signed_in(&self, headers: &HeaderMap) -> Result<SignedIn, bool> {
        let id = cookie(headers, &self.session_cookie())
            .ok_or(false)?
            .to_owned();
        let mut session = self.session(&id).ok_or(true)?;
        let left = self.now().until(session.access_expires);
        if left < Duration::from_secs(30) {
            session = match self.renew(&id, &session.access_token, false).await {
                Ok(renewed) => renewed,
                Err(Renewal::Ended) => return Err(true),
                // The issuer may only be busy: the page still shows; API calls will tell.
                Err(Renewal::Unreachable(_)) => session,
            };
        }
        Ok(SignedIn {
            sub: session.sub,
            name: session.name,
            access_token: session.access_token,
            acr: session.acr,
            session: id,
            mount: self.inner.mount.clone(),
        })
    }

    /// The live session `id`, dropping it when it has ended.
    fn session(&self, id: &str) -> Option<AppSession> {
        let mut sessions = self.sessions();
        let session = sessions.get(id)?;
        if self.now() >= session.ends {
            sessions.remove(id);
            return None;
        }
        Some(session.clone())
    }

    /// Replaces the access token `stale` of session `id` by refreshing, once: concurrent
    /// callers wait for the same refresh (a refresh token is single-use; a second use would
    /// look like theft to the issuer and end the whole session). `forced`: `stale` was
    /// refused, so keeping it is no answer.
    async fn renew(&self, id: &str, stale: &str, forced: bool) -> Result<AppSession, Renewal> {
        let lock = self.session(id).ok_or(Renewal::Ended)?.refresh_lock;
        let _one_at_a_time = lock.lock().await;
        let session = self.session(id).ok_or(Renewal::Ended)?;
        if session.access_token != stale {
            return Ok(session);
        }
        match self.refresh(session.clone()).await {
            Ok(renewed) => {
                if let Some(s) = self.sessions().get_mut(id) {
                    *s = renewed.clone();
                }
                Ok(renewed)
            }
            Err(Renewal::Unreachable(why)) if !forced && self.now() < session.access_expires => {
                tracing::debug!(error = %why, "refresh failed; the access token still holds");
                Ok(session)
            }
            Err(Renewal::Ended) => {
                self.sessions().remove(id);
                Err(Renewal::Ended)
            }
            Err(e) => Err(e),
        }
    }

    async fn refresh(&self, mut session: AppSession) -> Result<AppSession, Renewal> {
        let token = RefreshToken::new(session.refresh_token.clone().ok_or(Renewal::Ended)?);
        let response = self
            .client()
            .exchange_refresh_token(&token)
            .map_err(|e| Renewal::Unreachable(e.to_string()))?
            .request_async(&self.inner.http)
            .await
            .map_err(|e| match e {
                // The issuer said no (revoked, expired): only signing in again helps.
                openidconnect::RequestTokenError::ServerResponse(_) => Renewal::Ended,
                other => Renewal::Unreachable(other.to_string()),
            })?;
        session.access_token = response.access_token().secret().clone();
        session.access_expires = self
            .now()
            .plus(response.expires_in().unwrap_or(Duration::from_secs(60)));
        if let Some(rt) = response.refresh_token() {
            session.refresh_token = Some(rt.secret().clone());
        }
        Ok(session)
    }

    /// Access tokens of the signed-in `user`, for a [`ServiceClient`](crate::client::ServiceClient)
    /// calling APIs on their behalf: a refused token is replaced by refreshing once.
    pub fn tokens_for(&self, user: &SignedIn) -> Arc<dyn TokenSource> {
        Arc::new(UserTokens {
            signin: self.clone(),
            session: user.session.clone(),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, AppSession>> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session, dropping ended ones so that memory stays bounded by the sessions
    /// alive.
    fn start_session(&self, id: String, session: AppSession) {
        let now = self.now();
        let mut sessions = self.sessions();
        sessions.retain(|_, s| s.ends > now);
        sessions.insert(id, session);
    }

    /// To this app's sign-in, then back to `path` (see [`SignInFirst::to`]), for an app whose
    /// routes are under a path ([`SignInConfig::base_url`]). An app whose own check refuses a
    /// signed-in person's token answers with this.
    pub fn sign_in_first(&self, path: &str, ended: bool) -> SignInFirst {
        SignInFirst::login(&self.inner.mount, path, ended, None, None)
    }

    /// What Lanyard says of the sign-in session behind this request's app session, asked
    /// server to server with the app's credentials (`extend`: "stay signed in"); not active
    /// when there is no app session, it has no `sid`, or the app has no secret.
    async fn issuer_session(
        &self,
        headers: &HeaderMap,
        extend: bool,
    ) -> Result<serde_json::Value, String> {
        let inactive = serde_json::json!({ "active": false });
        let Some(id) = cookie(headers, &self.session_cookie()) else {
            return Ok(inactive);
        };
        let Some(sid) = self.session(id).and_then(|s| s.sid) else {
            return Ok(inactive);
        };
        let config = &self.inner.config;
        let Some(secret) = &config.client_secret else {
            return Ok(inactive);
        };
        let base = config
            .backchannel_url
            .as_deref()
            .unwrap_or(&config.issuer)
            .trim_end_matches('/');
        let path = if extend { "app-extend" } else { "app-status" };
        let response = self
            .inner
            .http
            .post(format!("{base}/session/{path}"))
            .basic_auth(
                crate::client::percent_encode(&config.client_id),
                Some(crate::client::percent_encode(secret)),
            )
            .form(&[("sid", sid.as_str())])
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if !response.status().is_success() {
            return Err(format!("the issuer answered {}", response.status()));
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// Ends every app session of this process (tests; an admin's "sign everyone out").
    pub fn clear_sessions(&self) {
        self.sessions().clear();
    }

    /// Ends the app sessions begun in the SSO session `sid`, or (without one) every session
    /// of the person `sub`: what a Shared Signals event said ended
    /// ([`crate::signals::SecurityEvent`]). Returns how many ended.
    pub fn end_sessions(&self, sub: Option<&str>, sid: Option<&str>) -> usize {
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, s| {
            let person = sub.is_none_or(|sub| sub == s.sub);
            let ended = match sid {
                Some(sid) => person && s.sid.as_deref() == Some(sid),
                None => sub.is_some() && person,
            };
            !ended
        });
        before - sessions.len()
    }

    /// Ends app sessions as `event` says (a session revoked, an account disabled); returns how
    /// many ended.
    pub fn apply(&self, event: &crate::signals::SecurityEvent) -> usize {
        use crate::signals::SecurityEvent;
        match event {
            SecurityEvent::SessionRevoked { sub, sid } => {
                self.end_sessions(sub.as_deref(), Some(sid))
            }
            SecurityEvent::AccountDisabled { sub } => self.end_sessions(Some(sub), None),
            SecurityEvent::Other { .. } => 0,
        }
    }
}

/// `GET {mount}/session/status`: how long the person's Lanyard session has left, for the
/// timeout warning on this app's own pages (`warning.js` with `data-session-url`), from the
/// app's origin: an app on another site than Lanyard's, where Lanyard's cookie cannot reach,
/// shows the warning too. Not activity.
async fn session_status(State(signin): State<WebSignIn>, headers: HeaderMap) -> Response {
    session_answer(signin.issuer_session(&headers, false).await)
}

/// `POST {mount}/session/extend`: "Stay signed in", from this app's own pages only (the
/// request's `Origin`, when sent, must be the app's).
async fn session_extend(State(signin): State<WebSignIn>, headers: HeaderMap) -> Response {
    let own = url::Url::parse(&signin.inner.config.base_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s != "same-origin");
    if origin.is_some_and(|o| o != own) || cross_site {
        return (
            StatusCode::FORBIDDEN,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({ "error": "invalid_request", "error_description": "only this app's own pages may extend the session" })),
        )
            .into_response();
    }
    session_answer(signin.issuer_session(&headers, true).await)
}

fn session_answer(result: Result<serde_json::Value, String>) -> Response {
    match result {
        Ok(status) => ([(header::CACHE_CONTROL, "no-store")], axum::Json(status)).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "the sign-in session's status could not be had from the issuer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CACHE_CONTROL, "no-store"), (header::RETRY_AFTER, "5")],
                axum::Json(serde_json::json!({ "error": "temporarily_unavailable", "error_description": "the sign-in service could not be reached; try again in a moment" })),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
    expired: Option<String>,
    /// A step-up: the `acr` value(s) to ask the issuer for (RFC 9470 §4).
    acr_values: Option<String>,
    /// A step-up: how recent the sign-in must be, in seconds.
    max_age: Option<u64>,
}

async fn login<S>(State(signin): State<WebSignIn>, Query(q): Query<LoginQuery>) -> Response
where
    WebSignIn: FromRef<S>,
{
    let return_to = safe_return_to(q.return_to.as_deref());
    if q.expired.is_some() {
        // Say what happened before sending the person away.
        let target = SignInFirst::login(&signin.inner.mount, &return_to, false, None, None).0;
        return page(
            StatusCode::OK,
            "Your session has ended",
            &format!(
                r#"<p>For your security you were signed out of {}.</p><p><a href="{}">Sign in again</a> to continue where you were.</p>"#,
                html_escape(&signin.inner.config.app_name),
                html_escape(&target)
            ),
        );
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let client = signin.client();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in &signin.inner.config.scopes {
        if scope != "openid" {
            request = request.add_scope(Scope::new(scope.clone()));
        }
    }
    for acr in q
        .acr_values
        .iter()
        .flat_map(|v| v.split(' '))
        .filter(|v| !v.is_empty())
    {
        request = request.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
    }
    if let Some(secs) = q.max_age {
        request = request.set_max_age(Duration::from_secs(secs));
    }
    let (url, state, nonce) = request.url();
    let pending = Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        return_to,
        expires: u64::try_from(signin.now().as_secs()).unwrap_or(0) + 600,
    };
    let cookie = signin.set_cookie(&signin.signin_cookie(), &signin.seal(&pending), Some(600));
    ([(header::SET_COOKIE, cookie)], Redirect::to(url.as_str())).into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback<S>(
    State(signin): State<WebSignIn>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response
where
    WebSignIn: FromRef<S>,
{
    let retry = format!(
        r#"<p><a href="{}/login">Try signing in again</a>.</p>"#,
        html_escape(&signin.inner.mount)
    );
    let retry = retry.as_str();
    let Some(pending) = cookie(&headers, &signin.signin_cookie()).and_then(|c| signin.open(c))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "This sign-in has expired",
            &format!("<p>The sign-in took too long or was started in another browser.</p>{retry}"),
        );
    };
    let state_ok = q.state.as_deref().is_some_and(|s| {
        aws_lc_rs::constant_time::verify_slices_are_equal(s.as_bytes(), pending.state.as_bytes())
            .is_ok()
    });
    if !state_ok {
        return page(
            StatusCode::BAD_REQUEST,
            "This sign-in could not be completed",
            &format!(
                "<p>The answer from the sign-in service does not match this browser's request.</p>{retry}"
            ),
        );
    }
    if let Some(error) = q.error {
        let detail = q.error_description.unwrap_or(error);
        return page(
            StatusCode::UNAUTHORIZED,
            "You are not signed in",
            &format!(
                "<p>The sign-in service said: {}.</p>{retry}",
                html_escape(&detail)
            ),
        );
    }
    let Some(code) = q.code else {
        return page(
            StatusCode::BAD_REQUEST,
            "This sign-in could not be completed",
            retry,
        );
    };
    match complete(&signin, code, &pending).await {
        Ok(session) => {
            let mut id = [0u8; 32];
            if aws_lc_rs::rand::fill(&mut id).is_err() {
                return page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Sign-in could not be completed",
                    &format!("<p>The app could not start a session. Try again.</p>{retry}"),
                );
            }
            let id = URL_SAFE_NO_PAD.encode(id);
            let lifetime = signin.inner.config.session_lifetime;
            signin.start_session(id.clone(), session);
            let mut response = Redirect::to(&pending.return_to).into_response();
            let headers = response.headers_mut();
            headers.append(
                header::SET_COOKIE,
                signin.set_cookie(&signin.session_cookie(), &id, Some(lifetime.as_secs())),
            );
            headers.append(
                header::SET_COOKIE,
                signin.set_cookie(&signin.signin_cookie(), "", Some(0)),
            );
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in could not be completed");
            page(
                StatusCode::BAD_GATEWAY,
                "Sign-in could not be completed",
                &format!(
                    "<p>The sign-in service did not complete the sign-in. Wait a moment and try again.</p>{retry}"
                ),
            )
        }
    }
}

async fn complete(
    signin: &WebSignIn,
    code: String,
    pending: &Pending,
) -> Result<AppSession, String> {
    let inner = &signin.inner;
    let tokens = signin
        .client()
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&inner.http)
        .await
        .map_err(|e| e.to_string())?;
    let id_token = tokens.id_token().ok_or("no ID token")?;
    let nonce = Nonce::new(pending.nonce.clone());
    let clock = inner.config.clock.clone();
    let verify = |client: &OidcClient| {
        let now = clock.clone();
        let verifier = client.id_token_verifier().set_time_fn(move || {
            let ms = now.now().as_millis();
            chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
        });
        id_token
            .claims(&verifier, &nonce)
            .map(|claims| claims.subject().clone())
    };
    let subject = match verify(&signin.client()) {
        Ok(subject) => subject,
        // Signed with a key this client has not seen: the issuer may have rotated its keys.
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
            if signin.rediscover().await =>
        {
            verify(&signin.client()).map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let sub = subject.to_string();
    let name = user_name(signin, tokens.access_token(), subject)
        .await
        .unwrap_or_else(|| sub.clone());
    let now = signin.now();
    Ok(AppSession {
        sub,
        name,
        access_token: tokens.access_token().secret().clone(),
        access_expires: now.plus(tokens.expires_in().unwrap_or(Duration::from_secs(60))),
        refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
        id_token: id_token.to_string(),
        sid: jwt_claim(&id_token.to_string(), "sid"),
        acr: jwt_claim(&id_token.to_string(), "acr"),
        ends: now.plus(inner.config.session_lifetime),
        refresh_lock: Arc::default(),
    })
}

/// The person's name from UserInfo: display name, else username. The answer must be about
/// the person the ID token names (OIDC Core §5.3.4); otherwise it is not used.
async fn user_name(
    signin: &WebSignIn,
    token: &AccessToken,
    subject: openidconnect::SubjectIdentifier,
) -> Option<String> {
    let info: CoreUserInfoClaims = signin
        .client()
        .user_info(token.clone(), Some(subject))
        .ok()?
        .request_async(&signin.inner.http)
        .await
        .ok()?;
    info.name()
        .and_then(|n| n.get(None))
        .map(|n| n.to_string())
        .or_else(|| info.preferred_username().map(|u| u.to_string()))
}

/// `GET /logout` only asks: a link or an image on another site must not sign anyone out.
async fn confirm_logout<S>(State(signin): State<WebSignIn>) -> Response
where
    WebSignIn: FromRef<S>,
{
    page(
        StatusCode::OK,
        "Sign out?",
        &format!(
            r#"<p>Sign out of {}? You will also be signed out of the sign-in service.</p><form method="post" action="{m}/logout"><button type="submit">Sign out</button></form><p><a href="{m}/">Stay signed in</a></p>"#,
            html_escape(&signin.inner.config.app_name),
            m = html_escape(&signin.inner.mount)
        ),
    )
}

/// `POST /logout`: ends the app session and, when the issuer offers RP-Initiated Logout,
/// ends the sign-in there too (with `id_token_hint` when the session is still known, else
/// `client_id`). The session cookie is `SameSite=Lax`, so another site's form cannot post it.
async fn logout<S>(State(signin): State<WebSignIn>, headers: HeaderMap) -> Response
where
    WebSignIn: FromRef<S>,
{
    let ended =
        cookie(&headers, &signin.session_cookie()).and_then(|id| signin.sessions().remove(id));
    let target = logout_target(
        signin.inner.end_session.as_deref(),
        ended.as_ref().map(|s| s.id_token.as_str()),
        &signin.inner.config,
    );
    let clear = signin.set_cookie(&signin.session_cookie(), "", Some(0));
    ([(header::SET_COOKIE, clear)], Redirect::to(&target)).into_response()
}

/// Where the browser goes after the app session ended: the issuer's `end_session_endpoint`
/// (OpenID RP-Initiated Logout 1.0 §2) with `id_token_hint` when known, else `client_id`,
/// and the app's `/` as `post_logout_redirect_uri`; without one, the app's `/`.
fn logout_target(
    end_session: Option<&str>,
    id_token: Option<&str>,
    config: &SignInConfig,
) -> String {
    let Some(mut url) = end_session.and_then(|e| url::Url::parse(e).ok()) else {
        return format!("{}/", mount_of(&config.base_url));
    };
    {
        let mut query = url.query_pairs_mut();
        match id_token {
            Some(hint) => query.append_pair("id_token_hint", hint),
            None => query.append_pair("client_id", &config.client_id),
        };
        query.append_pair("post_logout_redirect_uri", &format!("{}/", config.base_url));
    }
    url.to_string()
}

/// A string claim of a JWT whose signature was verified already.
fn jwt_claim(jwt: &str, name: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get(name)?.as_str().map(str::to_owned)
}

/// `POST /backchannel-logout`: a logout token from the issuer (§2.5). 200 when it was valid
/// (whether or not a session here matched); 400 with a JSON error otherwise (§2.8).
async fn backchannel_logout<S>(
    State(signin): State<WebSignIn>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response
where
    WebSignIn: FromRef<S>,
{
    let refuse = |description: &str| {
        let body =
            serde_json::json!({ "error": "invalid_request", "error_description": description });
        (
            StatusCode::BAD_REQUEST,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(body),
        )
            .into_response()
    };
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return refuse("the request must be a form (application/x-www-form-urlencoded)");
    }
    let tokens: Vec<String> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .collect();
    let [token] = tokens.as_slice() else {
        return refuse("the request must carry exactly one logout_token");
    };
    match signin.accept_logout_token(token).await {
        Ok(ended) => {
            tracing::info!(ended, "back-channel logout");
            (
                StatusCode::OK,
                [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            )
                .into_response()
        }
        Err(why) => {
            tracing::warn!(error = %why, "a logout token was refused");
            refuse(&why.to_string())
        }
    }
}

/// Rejection of [`SignedIn`]: to sign-in, then back here.
#[derive(Debug)]
pub struct SignInFirst(String);

impl SignInFirst {
    /// To sign-in, then back to `path` (a local path; anything else goes back to `/`).
    /// `ended`: the person had a session that is over, so they are told so first ("Your
    /// session has ended"). An app answers a [`ClientError::SignInAgain`] from an API call
    /// with `SignInFirst::to(path, true)`.
    ///
    /// [`ClientError::SignInAgain`]: crate::client::ClientError::SignInAgain
    pub fn to(path: &str, ended: bool) -> Self {
        Self::login("", path, ended, None, None)
    }

    /// To a new sign-in that asks the issuer for `acr_values` and/or `max_age` (a step-up,
    /// RFC 9470 §4), then back to `path`. An app answers a [`ClientError::StepUp`] from an
    /// API call, or a page of its own that needs more, with this.
    ///
    /// [`ClientError::StepUp`]: crate::client::ClientError::StepUp
    pub fn step_up(path: &str, acr_values: Option<&str>, max_age: Option<u64>) -> Self {
        Self::login("", path, false, acr_values, max_age)
    }

    /// `{mount}/login` with what it should do (see [`to`](Self::to) and
    /// [`step_up`](Self::step_up)), for an app whose routes are under `mount`.
    fn login(
        mount: &str,
        path: &str,
        ended: bool,
        acr_values: Option<&str>,
        max_age: Option<u64>,
    ) -> Self {
        let enc = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let mut to = format!(
            "{mount}/login?return_to={}",
            enc(&safe_return_to(Some(path)))
        );
        if ended {
            to.push_str("&expired=1");
        }
        if let Some(acr) = acr_values {
            to.push_str(&format!("&acr_values={}", enc(acr)));
        }
        if let Some(secs) = max_age {
            to.push_str(&format!("&max_age={secs}"));
        }
        Self(to)
    }

    /// Where it sends the browser.
    pub fn location(&self) -> &str {
        &self.0
    }
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        Redirect::to(&self.0).into_response()
    }
}

impl<S> FromRequestParts<S> for SignedIn
where
    WebSignIn: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, SignInFirst> {
        let signin = WebSignIn::from_ref(state);
        match signin.signed_in(&parts.headers).await {
            Ok(user) => Ok(user),
            Err(had_session) => {
                // Nested routes see their own part of the path; the browser needs all of it.
                let uri = parts
                    .extensions
                    .get::<axum::extract::OriginalUri>()
                    .map_or(&parts.uri, |o| &o.0);
                let here = uri.path_and_query().map_or("/", |p| p.as_str());
                let mount = &signin.inner.mount;
                Err(SignInFirst::login(mount, here, had_session, None, None))
            }
        }
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title></head><body><main><h1>{t}</h1>{body}</main></body></html>",
        t = html_escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        // RFC 9110 §11.6.1: every 401 carries a challenge. Here the credential is the app's
        // session cookie, which signing in at /login sets (the shape of
        // draft-broyer-http-cookie-auth; no scheme for forms is registered).
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Cookie realm="sign-in", form-action="/login""#),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_defaults_are_documented() {
        use crate::config::tests::human;
        let doc = include_str!("../../../docs/configuration.md");
        let s = SignInConfig::new("https://i", "c", None, "https://a", "a");
        for row in [
            format!("| `scopes` | `{}` |", s.scopes.join(" ")),
            format!("| `session_lifetime` | {} |", human(s.session_lifetime)),
        ] {
            assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
        }
    }

    #[test]
    fn logout_goes_to_the_issuer_when_it_offers_to_end_the_session() {
        let config = SignInConfig::new(
            "https://sso.example.com",
            "wiki",
            None,
            "https://wiki.example.com/",
            "wiki",
        );
        let end = Some("https://sso.example.com/logout?ui=1");
        assert_eq!(
            logout_target(end, Some("a.b.c"), &config),
            "https://sso.example.com/logout?ui=1&id_token_hint=a.b.c&post_logout_redirect_uri=https%3A%2F%2Fwiki.example.com%2F"
        );
        assert_eq!(
            logout_target(end, None, &config),
            "https://sso.example.com/logout?ui=1&client_id=wiki&post_logout_redirect_uri=https%3A%2F%2Fwiki.example.com%2F",
            "the app session was already gone: the issuer's still ends"
        );
        assert_eq!(logout_target(None, Some("a.b.c"), &config), "/");
    }

    #[test]
    fn return_to_is_never_an_open_redirect() {
        assert_eq!(
            safe_return_to(Some("/reports?month=11")),
            "/reports?month=11"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "",
            "/x\r\nSet-Cookie: a=b",
            "/\t/evil.example",
            "/\t\\evil.example",
            "/\n/evil.example",
            "/ok/\\evil",
            "/\u{1}x",
            "/caf\u{e9}",
        ] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
