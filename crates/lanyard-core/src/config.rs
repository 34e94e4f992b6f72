//! Configuration: defaults, then an optional TOML file, then `LANYARD_*` environment
//! variables (each key in the file has the environment variable `LANYARD_<KEY>`).
//!
//! [`RawConfig`] is what was written; [`Config`] is what was validated. Every default is
//! documented in `docs/configuration.md`, which a test checks against [`Config::default`].

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use lanyard_store::StoreConfig;
use serde::Deserialize;
use url::Url;

/// A JWS algorithm Lanyard signs with (RFC 7518 §3.3, §3.4; RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    #[default]
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm, in the order their names are listed to people.
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    /// The `alg` name (JOSE).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with this `alg` name (exact, as JOSE names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The algorithms that need keys when access tokens are signed with `access`: RS256 for
    /// ID and logout tokens, and `access`.
    pub fn in_use(access: Self) -> Vec<Self> {
        let mut algs = vec![Self::Rs256];
        if access != Self::Rs256 {
            algs.push(access);
        }
        algs
    }
}

/// A setting that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The validated configuration. Its `Debug` hides the passwords in URLs.
#[derive(Clone)]
pub struct Config {
    /// The issuer URL, exactly as it appears in tokens and discovery (no trailing slash).
    pub issuer: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where to serve `/metrics` and the detailed `/readyz` for operators, apart from the
    /// public listener. `None`: `/metrics` is on the public listener.
    pub ops_listen: Option<SocketAddr>,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Redis for the token store; `None`: the in-process store (one node only).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key.
    pub redis_prefix: String,
    /// One Redis, a Redis Cluster (`redis_url` lists seed nodes, comma-separated), or Redis
    /// with Sentinel (`redis_url` lists the sentinels).
    pub redis_topology: lanyard_store::RedisTopology,
    /// With Sentinel: the name the sentinels monitor the master under.
    pub redis_sentinel_master: String,
    /// How long things live.
    pub lifetimes: Lifetimes,
    /// When signing keys change.
    pub keys: KeyPolicy,
    /// What access tokens are signed with (ID and logout tokens: always RS256).
    pub access_token_alg: SigningAlg,
    /// How apps are told of a sign-out.
    pub logout: LogoutPolicy,
    /// When repeated failures lock (see `lockout`).
    pub lockout: LockoutPolicy,
    /// On SIGTERM: how long requests in flight may take to finish before the process exits
    /// anyway (it stops accepting at once, and `/readyz` answers 503 meanwhile).
    pub shutdown_grace: Duration,
    /// A refresh token presented again within this long of its rotation gets the same
    /// successor instead of counting as reuse (a client retrying a lost answer). Zero turns
    /// it off. Default 2 s; at most 60 s.
    pub refresh_retry_grace: Duration,
    /// The reverse proxies in front of Lanyard: only a request whose TCP peer is one of these
    /// has its `Forwarded` / `X-Forwarded-For` read for the client's address. Default none.
    pub trusted_proxies: Vec<Network>,
    /// `LANYARD_MFA=required`: every person needs a second factor (one without is taken to
    /// enrol right after the password). Default `optional`: people choose.
    pub mfa_required: bool,
    /// The file holding the master key (the key-encryption key that seals the signing keys
    /// and server secrets at rest; `crypto::MasterKey`). `None` with `master_key` unset: a
    /// SQLite database keeps one in a file beside it; PostgreSQL refuses to start.
    pub master_key_file: Option<std::path::PathBuf>,
    /// The master key itself (`LANYARD_MASTER_KEY`), where a file is not practical.
    pub master_key: Option<String>,
    /// How long revocation entries outlive the tokens they cover, which is the most leeway
    /// an app's guard may grant past `exp` (guards cap theirs to it; it is in every
    /// snapshot). Default 60 s; at most 10 minutes.
    pub revocation_leeway: Duration,
    /// Loopback, link-local and private addresses Lanyard may call nonetheless (an app's
    /// `backchannel_logout_uri` on the company network; see `outbound`). Default none.
    pub outbound_allow: Vec<Network>,
    /// How mail is sent, and how long its links work (see `mail`).
    pub mail: MailPolicy,
    /// How far ahead a client assertion's `exp` may be (`private_key_jwt`). Default an
    /// hour; at most an hour.
    pub client_assertion_max_lifetime: Duration,
    /// Every DPoP proof must carry a nonce Lanyard gave out (RFC 9449 §8): proofs made in
    /// advance stop working within two minutes. Default false (`dpop_nonce`).
    pub dpop_nonce: bool,
}

/// How Lanyard sends mail, and how long the links in it work.
#[derive(Clone, PartialEq, Eq)]
pub struct MailPolicy {
    /// The SMTP relay (`smtp_url`); `None`: mail is written to `folder` instead.
    pub smtp: Option<SmtpRelay>,
    /// The `From` of every mail (`mail_from`). Default `Lanyard <noreply@ISSUER-HOST>`.
    pub from: String,
    /// Where mail goes without a relay (`mail_folder`). `None`: beside a SQLite database
    /// (`lanyard.db` → `lanyard.db.outbox/`), else `./lanyard-outbox/`.
    pub folder: Option<std::path::PathBuf>,
    /// How long an invitation's link works. Default 72 hours.
    pub invitation_lifetime: Duration,
    /// How long a password-reset link works. Default 30 minutes.
    pub reset_lifetime: Duration,
    /// How long a link that verifies an address works. Default 24 hours.
    pub verification_lifetime: Duration,
    /// Whether a person SCIM creates with an address and no password is sent an invitation
    /// (`scim_invite`). Default false.
    pub scim_invite: bool,
}

impl Default for MailPolicy {
    fn default() -> Self {
        Self {
            smtp: None,
            from: "Lanyard <noreply@localhost>".to_owned(),
            folder: None,
            invitation_lifetime: Duration::from_secs(72 * 3600),
            reset_lifetime: Duration::from_secs(30 * 60),
            verification_lifetime: Duration::from_secs(24 * 3600),
            scim_invite: false,
        }
    }
}

impl std::fmt::Debug for MailPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailPolicy")
            .field("smtp", &self.smtp)
            .field("from", &self.from)
            .field("folder", &self.folder)
            .finish_non_exhaustive()
    }
}

/// How the connection to the SMTP relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// None: only for a relay on this machine or one a URL names with `?tls=none`.
    None,
    /// STARTTLS, required (the default for `smtp://` to another host).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// An SMTP relay (`smtp_url`, and `smtp_password_file`).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpRelay {
    /// Host name or address.
    pub host: String,
    /// Port (default 25 for `smtp://`, 465 for `smtps://`).
    pub port: u16,
    /// The protection.
    pub tls: SmtpTls,
    /// The user to log in as, if any.
    pub username: Option<String>,
    /// The password: from the URL, or read from `smtp_password_file` at start.
    pub password: Option<String>,
    /// `smtp_password_file`, read when the relay is first used.
    pub password_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// `smtp://[user[:password]@]host[:port][?tls=none|starttls]` or `smtps://...`: plain to a
/// relay on this machine, STARTTLS required to any other unless `?tls=none` says otherwise,
/// implicit TLS for `smtps`. Credentials are percent-decoded.
fn smtp_relay(raw: &str, password_file: Option<&str>) -> Result<SmtpRelay, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        bad(format!(
            "smtp_url is not a URL ({e}); write smtp://host:port"
        ))
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("smtp_url names no host; write smtp://host:port"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let local = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let asked = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    if url.query_pairs().any(|(k, _)| k != "tls") || !matches!(url.path(), "" | "/") {
        return Err(bad(
            "smtp_url takes only a host, a port, credentials and ?tls=none|starttls",
        ));
    }
    let (tls, default_port) = match (url.scheme(), asked.as_deref()) {
        ("smtps", None) => (SmtpTls::Implicit, 465),
        ("smtp", None) if local => (SmtpTls::None, 25),
        ("smtp", None | Some("starttls")) => (SmtpTls::StartTls, 25),
        ("smtp", Some("none")) => (SmtpTls::None, 25),
        ("smtp" | "smtps", Some(other)) => {
            return Err(bad(format!(
                "smtp_url: tls={other:?}; use tls=none or tls=starttls with smtp://, nothing with smtps://"
            )));
        }
        (other, _) => {
            return Err(bad(format!(
                "smtp_url scheme {other:?}: use smtp:// (STARTTLS) or smtps:// (implicit TLS)"
            )));
        }
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| bad("smtp_url: the credentials are not UTF-8"))
    };
    let username = match url.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = url.password().map(decode).transpose()?;
    let password_file = password_file
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(std::path::PathBuf::from);
    if password.is_some() && password_file.is_some() {
        return Err(bad(
            "the SMTP password is given twice: in smtp_url and in smtp_password_file; keep one",
        ));
    }
    if username.is_none() && (password.is_some() || password_file.is_some()) {
        return Err(bad(
            "an SMTP password without a user: write smtp://USER@host:port",
        ));
    }
    Ok(SmtpRelay {
        host,
        port: url.port().unwrap_or(default_port),
        tls,
        username,
        password,
        password_file,
    })
}

/// An address or a range of them (CIDR: `10.0.0.0/8`, `fd00::/8`; a bare address is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is in the range. An IPv4 address written as IPv6 (`::ffff:10.0.0.1`)
    /// is taken as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl Network {
    /// `addr/prefix` (the prefix capped at the address's length).
    pub fn from(addr: IpAddr, prefix: u8) -> Self {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        Self {
            addr,
            prefix: prefix.min(max),
        }
    }
}

/// Seconds from 0 to `max` (zero allowed), or the default.
fn up_to(
    value: Option<u64>,
    default: Duration,
    key: &str,
    max: u64,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(s) if s <= max => Ok(Duration::from_secs(s)),
        Some(_) => Err(bad(format!("{key} must be between 0 and {max} seconds"))),
    }
}

/// A comma-separated list of addresses and ranges (the setting `key`).
fn networks(list: Option<&str>, key: &str) -> Result<Vec<Network>, String> {
    list.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().map_err(|e| format!("{key}: {e}")))
        .collect()
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an address or an address/prefix range"))?;
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length is 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// When repeated failures lock (see `lockout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed sign-ins for one username that lock it (waits grow after the third).
    pub account_threshold: u32,
    /// Failed sign-ins from one IP, any usernames, that lock the IP.
    pub ip_threshold: u32,
    /// Failed authentications of one client (wrong secrets, from anywhere) within the window
    /// that raise an alert, and again at each tenfold; a client is never locked.
    pub client_threshold: u32,
    /// How long a lock lasts; failures are counted over the same window.
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            account_threshold: 10,
            ip_threshold: 100,
            client_threshold: 10,
            duration: Duration::from_secs(900),
        }
    }
}

/// How back-channel logout tokens are delivered (see `logout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutPolicy {
    /// Each delivery attempt gives up after this long.
    pub backchannel_timeout: Duration,
    /// Attempts per app and session, the first included.
    pub backchannel_attempts: u32,
    /// The pause after the first failed attempt; it doubles after each further one.
    pub backchannel_backoff: Duration,
}

impl Default for LogoutPolicy {
    fn default() -> Self {
        Self {
            backchannel_timeout: Duration::from_secs(5),
            backchannel_attempts: 5,
            backchannel_backoff: Duration::from_secs(2),
        }
    }
}

/// When signing keys change (see `tokens::rotation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPolicy {
    /// A key signs for this long, then its successor takes over.
    pub rotation: Duration,
    /// A new key is published (JWKS, as "next") this long before it signs anything; the
    /// JWKS may be cached for half of it, so every app has seen the key before it meets a
    /// token signed with it.
    pub publish: Duration,
    /// How often each node reloads its keys from the database and moves the rotation on.
    pub refresh: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            rotation: Duration::from_secs(30 * 24 * 3600),
            publish: Duration::from_secs(3600),
            refresh: Duration::from_secs(60),
        }
    }
}

impl KeyPolicy {
    /// The JWKS `Cache-Control: max-age`: half the publication window.
    pub fn jwks_max_age(&self) -> Duration {
        self.publish / 2
    }
}

/// Lifetimes of codes, tokens and sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifetimes {
    /// Authorization codes.
    pub code: Duration,
    /// Access tokens (a client may set its own).
    pub access_token: Duration,
    /// ID tokens (a client may set its own).
    pub id_token: Duration,
    /// Offline refresh-token families (`offline_access`); session-bound families end with
    /// their session.
    pub refresh_token: Duration,
    /// An SSO session ends after this long without activity.
    pub session_idle: Duration,
    /// An SSO session ends this long after sign-in.
    pub session_max: Duration,
    /// Idle timeout of a session whose user ticked "remember me".
    pub remember_me_idle: Duration,
    /// Lifetime of a session whose user ticked "remember me".
    pub remember_me_max: Duration,
    /// How long a device's request (RFC 8628) waits for the person to approve it.
    pub device_code: Duration,
    /// The least time between a device's polls (RFC 8628 §3.2 `interval`).
    pub device_poll: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        const MIN: u64 = 60;
        const HOUR: u64 = 3600;
        const DAY: u64 = 24 * HOUR;
        Self {
            code: Duration::from_secs(MIN),
            access_token: Duration::from_secs(10 * MIN),
            id_token: Duration::from_secs(10 * MIN),
            refresh_token: Duration::from_secs(30 * 24 * 3600),
            session_idle: Duration::from_secs(30 * MIN),
            session_max: Duration::from_secs(12 * HOUR),
            remember_me_idle: Duration::from_secs(7 * DAY),
            remember_me_max: Duration::from_secs(30 * 24 * 3600),
            device_code: Duration::from_secs(10 * MIN),
            device_poll: Duration::from_secs(5),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ops_listen: None,
            database_url: "sqlite://lanyard.db?mode=rwc".to_owned(),
            redis_url: None,
            redis_prefix: "lanyard:".to_owned(),
            redis_topology: lanyard_store::RedisTopology::Single,
            redis_sentinel_master: "lanyard".to_owned(),
            lifetimes: Lifetimes::default(),
            keys: KeyPolicy::default(),
            access_token_alg: SigningAlg::default(),
            logout: LogoutPolicy::default(),
            lockout: LockoutPolicy::default(),
            shutdown_grace: Duration::from_secs(20),
            refresh_retry_grace: StoreConfig::default().refresh_grace,
            trusted_proxies: Vec::new(),
            mfa_required: false,
            outbound_allow: Vec::new(),
            mail: MailPolicy::default(),
            revocation_leeway: Duration::from_secs(60),
            client_assertion_max_lifetime: Duration::from_secs(3600),
            dpop_nonce: false,
            master_key_file: None,
            master_key: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("issuer", &self.issuer)
            .field("listen", &self.listen)
            .field("ops_listen", &self.ops_listen)
            .field("master_key_file", &self.master_key_file)
            .field("master_key", &self.master_key.as_ref().map(|_| "(set)"))
            .field("database_url", &redact_url(&self.database_url))
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("redis_prefix", &self.redis_prefix)
            .field("redis_topology", &self.redis_topology)
            .field("lifetimes", &self.lifetimes)
            .finish()
    }
}

/// A URL with its user information (and so any password) replaced.
pub fn redact_url(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://[redacted]@{host}"),
        _ => url.to_owned(),
    }
}

impl Config {
    /// The token store's settings that follow from this configuration.
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            code_ttl: self.lifetimes.code,
            // Revocation lists must cover the longest access token any client may get.
            max_access_token_lifetime: self.lifetimes.access_token.max(MAX_CLIENT_TOKEN_LIFETIME),
            refresh_grace: self.refresh_retry_grace,
            leeway: self.revocation_leeway,
            ..StoreConfig::default()
        }
    }

    /// Whether the issuer is served over TLS (cookies are then `Secure` and `__Host-`).
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// The file of a SQLite `database_url` (`sqlite://lanyard.db?mode=rwc` → `lanyard.db`);
    /// `None` for another database or an in-memory one.
    pub fn sqlite_file(&self) -> Option<String> {
        let rest = self.database_url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
        (!memory).then(|| path.to_owned())
    }

    /// The full URL of a path under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// The longest access-token lifetime a client may be registered with.
pub const MAX_CLIENT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The configuration as written, before validation. Every field is optional.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    issuer: Option<String>,
    listen: Option<String>,
    ops_listen: Option<String>,
    database_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    redis_topology: Option<String>,
    redis_sentinel_master: Option<String>,
    code_lifetime_secs: Option<u64>,
    access_token_lifetime_secs: Option<u64>,
    id_token_lifetime_secs: Option<u64>,
    refresh_token_lifetime_secs: Option<u64>,
    session_idle_timeout_secs: Option<u64>,
    session_lifetime_secs: Option<u64>,
    remember_me_idle_timeout_secs: Option<u64>,
    remember_me_lifetime_secs: Option<u64>,
    device_code_lifetime_secs: Option<u64>,
    device_poll_interval_secs: Option<u64>,
    key_rotation_secs: Option<u64>,
    key_publish_secs: Option<u64>,
    access_token_alg: Option<String>,
    backchannel_logout_timeout_secs: Option<u64>,
    backchannel_logout_attempts: Option<u64>,
    signin_lockout_threshold: Option<u64>,
    signin_ip_lockout_threshold: Option<u64>,
    client_lockout_threshold: Option<u64>,
    lockout_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    refresh_retry_grace_secs: Option<u64>,
    trusted_proxies: Option<String>,
    mfa: Option<String>,
    outbound_allow: Option<String>,
    revocation_leeway_secs: Option<u64>,
    master_key_file: Option<String>,
    master_key: Option<String>,
    smtp_url: Option<String>,
    smtp_password_file: Option<String>,
    mail_from: Option<String>,
    mail_folder: Option<String>,
    invitation_lifetime_secs: Option<u64>,
    password_reset_lifetime_secs: Option<u64>,
    email_verification_lifetime_secs: Option<u64>,
    scim_invite: Option<bool>,
    client_assertion_max_lifetime_secs: Option<u64>,
    dpop_nonce: Option<bool>,
}

/// Every key, for the environment overlay.
const KEYS: [&str; 45] = [
    "issuer",
    "listen",
    "ops_listen",
    "database_url",
    "redis_url",
    "redis_prefix",
    "redis_topology",
    "redis_sentinel_master",
    "code_lifetime_secs",
    "access_token_lifetime_secs",
    "id_token_lifetime_secs",
    "refresh_token_lifetime_secs",
    "session_idle_timeout_secs",
    "session_lifetime_secs",
    "remember_me_idle_timeout_secs",
    "remember_me_lifetime_secs",
    "device_code_lifetime_secs",
    "device_poll_interval_secs",
    "key_rotation_secs",
    "key_publish_secs",
    "access_token_alg",
    "backchannel_logout_timeout_secs",
    "backchannel_logout_attempts",
    "signin_lockout_threshold",
    "signin_ip_lockout_threshold",
    "client_lockout_threshold",
    "lockout_secs",
    "shutdown_grace_secs",
    "refresh_retry_grace_secs",
    "trusted_proxies",
    "mfa",
    "outbound_allow",
    "revocation_leeway_secs",
    "master_key_file",
    "master_key",
    "smtp_url",
    "smtp_password_file",
    "mail_from",
    "mail_folder",
    "invitation_lifetime_secs",
    "password_reset_lifetime_secs",
    "email_verification_lifetime_secs",
    "scim_invite",
    "client_assertion_max_lifetime_secs",
    "dpop_nonce",
];

/// Every environment variable the configuration reads (`LANYARD_<KEY>` for each key),
/// besides `LANYARD_CONFIG` (the file's path) and `LANYARD_LOG_FORMAT` (read before the
/// configuration, by the binary).
pub fn environment_variables() -> Vec<String> {
    KEYS.iter()
        .map(|k| format!("LANYARD_{}", k.to_uppercase()))
        .collect()
}

impl RawConfig {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", path.display())))
    }

    /// Lays `LANYARD_<KEY>` variables over the file's values. `env` is `std::env::var` in the
    /// binary; tests pass a map.
    pub fn overlay_env(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        for key in KEYS {
            let var = format!("LANYARD_{}", key.to_uppercase());
            let Some(value) = env(&var).filter(|v| !v.is_empty()) else {
                continue;
            };
            let secs = || {
                value
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad(format!("{var}={value:?} is not a number of seconds")))
            };
            let count = || {
                value
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| bad(format!("{var}={value:?} is not a number")))
            };
            let flag = || match value.trim() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(bad(format!("{var}={value:?}: use true or false"))),
            };
            match key {
                "issuer" => self.issuer = Some(value.clone()),
                "listen" => self.listen = Some(value.clone()),
                "ops_listen" => self.ops_listen = Some(value.clone()),
                "database_url" => self.database_url = Some(value.clone()),
                "redis_url" => self.redis_url = Some(value.clone()),
                "redis_prefix" => self.redis_prefix = Some(value.clone()),
                "redis_topology" => self.redis_topology = Some(value.clone()),
                "redis_sentinel_master" => self.redis_sentinel_master = Some(value.clone()),
                "code_lifetime_secs" => self.code_lifetime_secs = secs()?,
                "access_token_lifetime_secs" => self.access_token_lifetime_secs = secs()?,
                "id_token_lifetime_secs" => self.id_token_lifetime_secs = secs()?,
                "refresh_token_lifetime_secs" => self.refresh_token_lifetime_secs = secs()?,
                "session_idle_timeout_secs" => self.session_idle_timeout_secs = secs()?,
                "session_lifetime_secs" => self.session_lifetime_secs = secs()?,
                "remember_me_idle_timeout_secs" => self.remember_me_idle_timeout_secs = secs()?,
                "remember_me_lifetime_secs" => self.remember_me_lifetime_secs = secs()?,
                "device_code_lifetime_secs" => self.device_code_lifetime_secs = secs()?,
                "device_poll_interval_secs" => self.device_poll_interval_secs = secs()?,
                "key_rotation_secs" => self.key_rotation_secs = secs()?,
                "key_publish_secs" => self.key_publish_secs = secs()?,
                "access_token_alg" => self.access_token_alg = Some(value.clone()),
                "backchannel_logout_timeout_secs" => {
                    self.backchannel_logout_timeout_secs = secs()?;
                }
                "backchannel_logout_attempts" => self.backchannel_logout_attempts = count()?,
                "signin_lockout_threshold" => self.signin_lockout_threshold = count()?,
                "signin_ip_lockout_threshold" => self.signin_ip_lockout_threshold = count()?,
                "client_lockout_threshold" => self.client_lockout_threshold = count()?,
                "lockout_secs" => self.lockout_secs = secs()?,
                "shutdown_grace_secs" => self.shutdown_grace_secs = secs()?,
                "refresh_retry_grace_secs" => self.refresh_retry_grace_secs = secs()?,
                "trusted_proxies" => self.trusted_proxies = Some(value.clone()),
                "mfa" => self.mfa = Some(value.clone()),
                "outbound_allow" => self.outbound_allow = Some(value.clone()),
                "revocation_leeway_secs" => self.revocation_leeway_secs = secs()?,
                "master_key_file" => self.master_key_file = Some(value.clone()),
                "master_key" => self.master_key = Some(value.clone()),
                "smtp_url" => self.smtp_url = Some(value.clone()),
                "smtp_password_file" => self.smtp_password_file = Some(value.clone()),
                "mail_from" => self.mail_from = Some(value.clone()),
                "mail_folder" => self.mail_folder = Some(value.clone()),
                "invitation_lifetime_secs" => self.invitation_lifetime_secs = secs()?,
                "client_assertion_max_lifetime_secs" => {
                    self.client_assertion_max_lifetime_secs = secs()?
                }
                "password_reset_lifetime_secs" => self.password_reset_lifetime_secs = secs()?,
                "email_verification_lifetime_secs" => {
                    self.email_verification_lifetime_secs = secs()?;
                }
                "scim_invite" => self.scim_invite = Some(flag()?),
                "dpop_nonce" => self.dpop_nonce = Some(flag()?),
                _ => {}
            }
        }
        Ok(self)
    }

    /// Checks everything and fills in defaults.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let d = Config::default();
        let issuer = match self.issuer {
            Some(i) => validate_issuer(&i)?,
            None => d.issuer,
        };
        let address = |key: &str, value: &str| {
            value.parse::<SocketAddr>().map_err(|_| {
                bad(format!(
                    "{key} = {value:?} is not an address like 127.0.0.1:8080"
                ))
            })
        };
        let listen = match self.listen {
            Some(l) => address("listen", &l)?,
            None => d.listen,
        };
        let ops_listen = match self.ops_listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(l) => Some(address("ops_listen", l)?),
        };
        let redis_topology = match self.redis_topology.as_deref() {
            None | Some("single") => lanyard_store::RedisTopology::Single,
            Some("cluster") => lanyard_store::RedisTopology::Cluster,
            Some("sentinel") => lanyard_store::RedisTopology::Sentinel,
            Some(other) => {
                return Err(bad(format!(
                    "redis_topology = {other:?}: use single, cluster or sentinel"
                )));
            }
        };
        let redis_prefix = self.redis_prefix.unwrap_or(d.redis_prefix);
        if redis_prefix.contains(['{', '}']) {
            return Err(bad("redis_prefix must not contain '{' or '}'"));
        }
        let l = d.lifetimes;
        let secs = |v: Option<u64>, default: Duration, name: &str, max: Duration| {
            let d = v.map_or(default, Duration::from_secs);
            if d.is_zero() || d > max {
                Err(bad(format!(
                    "{name} must be between 1 and {} seconds",
                    max.as_secs()
                )))
            } else {
                Ok(d)
            }
        };
        const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);
        let lifetimes = Lifetimes {
            code: secs(
                self.code_lifetime_secs,
                l.code,
                "code_lifetime_secs",
                Duration::from_secs(600),
            )?,
            access_token: secs(
                self.access_token_lifetime_secs,
                l.access_token,
                "access_token_lifetime_secs",
                MAX_CLIENT_TOKEN_LIFETIME,
            )?,
            id_token: secs(
                self.id_token_lifetime_secs,
                l.id_token,
                "id_token_lifetime_secs",
                YEAR,
            )?,
            refresh_token: secs(
                self.refresh_token_lifetime_secs,
                l.refresh_token,
                "refresh_token_lifetime_secs",
                YEAR,
            )?,
            session_idle: secs(
                self.session_idle_timeout_secs,
                l.session_idle,
                "session_idle_timeout_secs",
                YEAR,
            )?,
            session_max: secs(
                self.session_lifetime_secs,
                l.session_max,
                "session_lifetime_secs",
                YEAR,
            )?,
            remember_me_idle: secs(
                self.remember_me_idle_timeout_secs,
                l.remember_me_idle,
                "remember_me_idle_timeout_secs",
                YEAR,
            )?,
            remember_me_max: secs(
                self.remember_me_lifetime_secs,
                l.remember_me_max,
                "remember_me_lifetime_secs",
                YEAR,
            )?,
            device_code: secs(
                self.device_code_lifetime_secs,
                l.device_code,
                "device_code_lifetime_secs",
                Duration::from_secs(1800),
            )?,
            device_poll: secs(
                self.device_poll_interval_secs,
                l.device_poll,
                "device_poll_interval_secs",
                Duration::from_secs(60),
            )?,
        };
        let publish = secs(
            self.key_publish_secs,
            d.keys.publish,
            "key_publish_secs",
            Duration::from_secs(7 * 24 * 3600),
        )?;
        let rotation = secs(
            self.key_rotation_secs,
            d.keys.rotation,
            "key_rotation_secs",
            YEAR,
        )?;
        // Every node must have published a key before it signs: nodes reload every
        // `refresh` (60 s), so the window must span two reloads.
        if publish < d.keys.refresh * 2 {
            return Err(bad(format!(
                "key_publish_secs must be at least {} (two key reloads of every node)",
                (d.keys.refresh * 2).as_secs()
            )));
        }
        if rotation <= publish {
            return Err(bad(
                "key_rotation_secs must be longer than key_publish_secs (a key is published that long before it signs)",
            ));
        }
        let access_token_alg = match self.access_token_alg.as_deref() {
            None => d.access_token_alg,
            Some(name) => SigningAlg::from_name(name).ok_or_else(|| {
                bad(format!(
                    "access_token_alg = {name:?}: use RS256, ES256 or EdDSA"
                ))
            })?,
        };
        let backchannel_timeout = secs(
            self.backchannel_logout_timeout_secs,
            d.logout.backchannel_timeout,
            "backchannel_logout_timeout_secs",
            Duration::from_secs(60),
        )?;
        let count = |v: Option<u64>, default: u32, name: &str, max: u32| match v {
            None => Ok(default),
            Some(n) if n >= 1 && n <= u64::from(max) => Ok(u32::try_from(n).unwrap_or(max)),
            Some(_) => Err(bad(format!("{name} must be between 1 and {max}"))),
        };
        let backchannel_attempts = count(
            self.backchannel_logout_attempts,
            d.logout.backchannel_attempts,
            "backchannel_logout_attempts",
            10,
        )?;
        let lockout = LockoutPolicy {
            account_threshold: count(
                self.signin_lockout_threshold,
                d.lockout.account_threshold,
                "signin_lockout_threshold",
                1000,
            )?,
            ip_threshold: count(
                self.signin_ip_lockout_threshold,
                d.lockout.ip_threshold,
                "signin_ip_lockout_threshold",
                100_000,
            )?,
            client_threshold: count(
                self.client_lockout_threshold,
                d.lockout.client_threshold,
                "client_lockout_threshold",
                1000,
            )?,
            duration: secs(
                self.lockout_secs,
                d.lockout.duration,
                "lockout_secs",
                Duration::from_secs(24 * 3600),
            )?,
        };
        let dm = d.mail;
        let mail = MailPolicy {
            smtp: match self.smtp_url.as_deref().map(str::trim) {
                None | Some("") => {
                    if self.smtp_password_file.is_some() {
                        return Err(bad("smtp_password_file is set without smtp_url"));
                    }
                    None
                }
                Some(url) => Some(smtp_relay(url, self.smtp_password_file.as_deref())?),
            },
            from: match self.mail_from.as_deref().map(str::trim) {
                None | Some("") => format!(
                    "Lanyard <noreply@{}>",
                    Url::parse(&issuer)
                        .ok()
                        .and_then(|u| u.host_str().map(str::to_owned))
                        .unwrap_or_else(|| "localhost".to_owned())
                ),
                Some(from) => check_mailbox(from)?,
            },
            folder: self
                .mail_folder
                .filter(|f| !f.trim().is_empty())
                .map(std::path::PathBuf::from),
            invitation_lifetime: secs(
                self.invitation_lifetime_secs,
                dm.invitation_lifetime,
                "invitation_lifetime_secs",
                Duration::from_secs(30 * 24 * 3600),
            )?,
            reset_lifetime: secs(
                self.password_reset_lifetime_secs,
                dm.reset_lifetime,
                "password_reset_lifetime_secs",
                Duration::from_secs(24 * 3600),
            )?,
            verification_lifetime: secs(
                self.email_verification_lifetime_secs,
                dm.verification_lifetime,
                "email_verification_lifetime_secs",
                Duration::from_secs(30 * 24 * 3600),
            )?,
            scim_invite: self.scim_invite.unwrap_or(dm.scim_invite),
        };
        let client_assertion_max_lifetime = secs(
            self.client_assertion_max_lifetime_secs,
            d.client_assertion_max_lifetime,
            "client_assertion_max_lifetime_secs",
            Duration::from_secs(3600),
        )?;
        Ok(Config {
            client_assertion_max_lifetime,
            dpop_nonce: self.dpop_nonce.unwrap_or(d.dpop_nonce),
            mail,
            issuer,
            listen,
            ops_listen,
            database_url: self.database_url.unwrap_or(d.database_url),
            redis_url: self.redis_url,
            redis_prefix,
            redis_topology,
            redis_sentinel_master: self
                .redis_sentinel_master
                .unwrap_or(d.redis_sentinel_master),
            lifetimes,
            keys: KeyPolicy {
                rotation,
                publish,
                refresh: d.keys.refresh,
            },
            access_token_alg,
            logout: LogoutPolicy {
                backchannel_timeout,
                backchannel_attempts,
                backchannel_backoff: d.logout.backchannel_backoff,
            },
            lockout,
            shutdown_grace: secs(
                self.shutdown_grace_secs,
                d.shutdown_grace,
                "shutdown_grace_secs",
                Duration::from_secs(3600),
            )?,
            trusted_proxies: networks(self.trusted_proxies.as_deref(), "trusted_proxies")
                .map_err(bad)?,
            mfa_required: match self.mfa.as_deref().map(str::trim) {
                None | Some("" | "optional") => false,
                Some("required") => true,
                Some(other) => {
                    return Err(bad(format!("mfa = {other:?}: use optional or required")));
                }
            },
            outbound_allow: networks(self.outbound_allow.as_deref(), "outbound_allow")
                .map_err(bad)?,
            master_key_file: self
                .master_key_file
                .filter(|f| !f.trim().is_empty())
                .map(std::path::PathBuf::from),
            master_key: self.master_key.filter(|k| !k.trim().is_empty()),
            // Zero is allowed: guards then grant no leeway past `exp`.
            revocation_leeway: up_to(
                self.revocation_leeway_secs,
                d.revocation_leeway,
                "revocation_leeway_secs",
                600,
            )?,
            // Zero is allowed: it turns the grace off.
            refresh_retry_grace: up_to(
                self.refresh_retry_grace_secs,
                d.refresh_retry_grace,
                "refresh_retry_grace_secs",
                60,
            )?,
        })
    }
}

/// A `From` address: `Name <address>` or a bare address, with an `@` and no line breaks.
fn check_mailbox(from: &str) -> Result<String, ConfigError> {
    let address = match from.rsplit_once('<') {
        Some((_, rest)) => rest.strip_suffix('>').unwrap_or(""),
        None => from,
    };
    if !address.contains('@')
        || from.contains(['\r', '\n'])
        || address.contains(char::is_whitespace)
    {
        return Err(bad(format!(
            "mail_from = {from:?}: write an address, or Name <address>"
        )));
    }
    Ok(from.to_owned())
}

/// An issuer is an `https` URL (or `http` on this machine, for development) with no query or
/// fragment (OpenID Connect Discovery §3, RFC 8414 §2). A trailing slash is dropped, so the
/// issuer compares equal to itself everywhere.
fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    let url = Url::parse(raw).map_err(|e| bad(format!("issuer {raw:?} is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(bad(format!(
            "issuer {raw:?} must not have a query or fragment"
        )));
    }
    // Every endpoint and page lives at the root of the host; serve Lanyard on a host (or
    // port) of its own.
    if url.path() != "/" {
        return Err(bad(format!(
            "issuer {raw:?} must not have a path; give Lanyard a host of its own"
        )));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            if !matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) {
                tracing::warn!(
                    issuer = raw,
                    "the issuer is plain http: tokens and cookies cross the network unprotected; use https outside development"
                );
            }
        }
        other => return Err(bad(format!("issuer scheme must be https, not {other:?}"))),
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn mail_from_env(pairs: &[(&str, &str)]) -> Result<MailPolicy, ConfigError> {
        RawConfig::default()
            .overlay_env(env(pairs))?
            .validate()
            .map(|c| c.mail)
    }

    /// `smtp_url`: plain only to this machine (or when `?tls=none` says so), STARTTLS
    /// required to any other host, implicit TLS for `smtps`; credentials percent-decoded; a
    /// password given twice or without a user refused.
    #[test]
    fn smtp_urls_require_tls_beyond_this_machine() {
        let relay = |url: &str| {
            mail_from_env(&[("LANYARD_SMTP_URL", url)]).map(|m| {
                m.smtp
                    .map(|r| (r.host, r.port, r.tls, r.username, r.password))
            })
        };
        assert_eq!(
            relay("smtp://localhost:2525").unwrap(),
            Some(("localhost".into(), 2525, SmtpTls::None, None, None))
        );
        assert_eq!(relay("smtp://[::1]").unwrap().unwrap().2, SmtpTls::None);
        assert_eq!(
            relay("smtp://lanyard%40example.com:p%40ss@smtp.example.com:587").unwrap(),
            Some((
                "smtp.example.com".into(),
                587,
                SmtpTls::StartTls,
                Some("lanyard@example.com".into()),
                Some("p@ss".into())
            ))
        );
        assert_eq!(relay("smtps://smtp.example.com").unwrap().unwrap().1, 465);
        assert_eq!(
            relay("smtps://smtp.example.com").unwrap().unwrap().2,
            SmtpTls::Implicit
        );
        assert_eq!(
            relay("smtp://relay.internal?tls=none").unwrap().unwrap().2,
            SmtpTls::None
        );
        for bad in [
            "smtp://relay.internal?tls=opportunistic",
            "smtps://relay.internal?tls=none",
            "http://relay.internal",
            "smtp://:secret@relay.internal",
            "smtp://relay.internal/path",
            "smtp://",
        ] {
            assert!(relay(bad).is_err(), "{bad} is refused");
        }
        let twice = mail_from_env(&[
            ("LANYARD_SMTP_URL", "smtp://u:p@relay.example.com"),
            ("LANYARD_SMTP_PASSWORD_FILE", "/run/secrets/smtp"),
        ]);
        assert!(twice.unwrap_err().to_string().contains("given twice"));
        let debug = format!(
            "{:?}",
            mail_from_env(&[("LANYARD_SMTP_URL", "smtp://u:hunter22@relay.example.com")]).unwrap()
        );
        assert!(!debug.contains("hunter22"), "{debug}");
        let defaults = mail_from_env(&[("LANYARD_ISSUER", "https://sso.example.com")]).unwrap();
        assert_eq!(defaults.from, "Lanyard <noreply@sso.example.com>");
        assert!(defaults.smtp.is_none());
        assert!(mail_from_env(&[("LANYARD_MAIL_FROM", "not an address")]).is_err());
        assert!(mail_from_env(&[("LANYARD_SCIM_INVITE", "maybe")]).is_err());
        assert!(
            mail_from_env(&[("LANYARD_SCIM_INVITE", "true")])
                .unwrap()
                .scim_invite
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let c = Config {
            database_url: "postgres://lanyard:s3cret@db/lanyard".into(),
            redis_url: Some("redis://:hunter2@cache:6379".into()),
            ..Config::default()
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(text.contains("postgres://[redacted]@db/lanyard"));
    }

    #[test]
    fn defaults_are_the_embedded_setup() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.issuer, "http://localhost:8080");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.database_url.starts_with("sqlite://"));
        assert!(c.redis_url.is_none());
    }

    #[test]
    fn environment_overrides_the_file() {
        let file: RawConfig =
            toml::from_str("issuer = \"https://file.example\"\naccess_token_lifetime_secs = 300\n")
                .unwrap();
        let c = file
            .overlay_env(env(&[
                ("LANYARD_ISSUER", "https://sso.example.com/"),
                ("LANYARD_REDIS_URL", "redis://127.0.0.1:6379"),
            ]))
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(c.issuer, "https://sso.example.com");
        assert_eq!(c.lifetimes.access_token, Duration::from_secs(300));
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let cases: [(&[(&str, &str)], &str); 12] = [
            (
                &[("LANYARD_TRUSTED_PROXIES", "10.0.0.1, nginx")],
                "trusted_proxies: \"nginx\"",
            ),
            (
                &[("LANYARD_TRUSTED_PROXIES", "10.0.0.0/33")],
                "prefix length is 0 to 32",
            ),
            (&[("LANYARD_TRUSTED_PROXIES", "fd00::/129")], "0 to 128"),
            (
                &[("LANYARD_REFRESH_RETRY_GRACE_SECS", "61")],
                "between 0 and 60",
            ),
            (&[("LANYARD_ISSUER", "ftp://x")], "scheme"),
            (&[("LANYARD_ISSUER", "https://x/?a=b")], "query"),
            (&[("LANYARD_ISSUER", "https://x/sso")], "path"),
            (&[("LANYARD_LISTEN", "nowhere")], "address"),
            (&[("LANYARD_ACCESS_TOKEN_LIFETIME_SECS", "ten")], "number"),
            (
                &[("LANYARD_ACCESS_TOKEN_LIFETIME_SECS", "99999")],
                "between",
            ),
            (&[("LANYARD_KEY_PUBLISH_SECS", "60")], "two key reloads"),
            (
                &[
                    ("LANYARD_KEY_PUBLISH_SECS", "7200"),
                    ("LANYARD_KEY_ROTATION_SECS", "3600"),
                ],
                "longer than key_publish_secs",
            ),
        ];
        for (vars, expected) in cases {
            let got = RawConfig::default()
                .overlay_env(env(vars))
                .and_then(RawConfig::validate);
            let err = got.expect_err("must be refused").to_string();
            assert!(err.contains(expected), "{vars:?}: {err}");
        }
        assert!(toml::from_str::<RawConfig>("unknown_key = 1").is_err());
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges() {
        let config = RawConfig::default()
            .overlay_env(env(&[(
                "LANYARD_TRUSTED_PROXIES",
                " 10.1.0.0/16, 192.0.2.7 ,fd00::/8,::ffff:198.51.100.1",
            )]))
            .and_then(RawConfig::validate)
            .unwrap();
        let trusted = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            config.trusted_proxies.iter().any(|n| n.contains(ip))
        };
        for yes in [
            "10.1.0.1",
            "10.1.255.255",
            "192.0.2.7",
            "fd12::1",
            "::ffff:10.1.2.3",
            "198.51.100.1",
        ] {
            assert!(trusted(yes), "{yes}");
        }
        for no in [
            "10.2.0.1",
            "192.0.2.8",
            "fe80::1",
            "::1",
            "127.0.0.1",
            "::ffff:10.2.0.1",
        ] {
            assert!(!trusted(no), "{no}");
        }
        let every: Network = "0.0.0.0/0".parse().unwrap();
        assert!(every.contains("203.0.113.9".parse().unwrap()));
        assert!(!every.contains("2001:db8::1".parse().unwrap()));
        assert_eq!(
            Config::default().trusted_proxies,
            Vec::new(),
            "no proxy is trusted unless named"
        );
        let outbound = RawConfig::default()
            .overlay_env(env(&[("LANYARD_OUTBOUND_ALLOW", "127.0.0.0/8, ::1")]))
            .and_then(RawConfig::validate)
            .unwrap()
            .outbound_allow;
        assert_eq!(outbound.len(), 2);
        assert!(
            RawConfig::default()
                .overlay_env(env(&[("LANYARD_OUTBOUND_ALLOW", "intranet")]))
                .and_then(RawConfig::validate)
                .is_err()
        );
    }

    #[test]
    fn the_refresh_retry_grace_reaches_the_store_and_may_be_off() {
        for (value, grace) in [("0", 0), ("30", 30)] {
            let config = RawConfig::default()
                .overlay_env(env(&[("LANYARD_REFRESH_RETRY_GRACE_SECS", value)]))
                .and_then(RawConfig::validate)
                .unwrap();
            assert_eq!(
                config.store_config().refresh_grace,
                Duration::from_secs(grace)
            );
        }
    }
}

#[cfg(test)]
mod documented {
    use super::*;

    #[test]
    fn documented_defaults() {
        let doc = include_str!("../../../docs/configuration.md");
        let c = Config::default();
        let l = &c.lifetimes;
        let rows = [
            ("issuer", format!("`{}`", c.issuer)),
            ("listen", format!("`{}`", c.listen)),
            ("ops_listen", "(none)".to_owned()),
            ("database_url", format!("`{}`", c.database_url)),
            ("redis_prefix", format!("`{}`", c.redis_prefix)),
            ("redis_topology", "`single`".to_owned()),
            (
                "redis_sentinel_master",
                format!("`{}`", c.redis_sentinel_master),
            ),
            ("code_lifetime_secs", l.code.as_secs().to_string()),
            (
                "access_token_lifetime_secs",
                l.access_token.as_secs().to_string(),
            ),
            ("id_token_lifetime_secs", l.id_token.as_secs().to_string()),
            (
                "refresh_token_lifetime_secs",
                l.refresh_token.as_secs().to_string(),
            ),
            (
                "session_idle_timeout_secs",
                l.session_idle.as_secs().to_string(),
            ),
            ("session_lifetime_secs", l.session_max.as_secs().to_string()),
            (
                "remember_me_idle_timeout_secs",
                l.remember_me_idle.as_secs().to_string(),
            ),
            ("key_rotation_secs", c.keys.rotation.as_secs().to_string()),
            ("key_publish_secs", c.keys.publish.as_secs().to_string()),
            (
                "access_token_alg",
                format!("`{}`", c.access_token_alg.name()),
            ),
            (
                "remember_me_lifetime_secs",
                l.remember_me_max.as_secs().to_string(),
            ),
            (
                "device_code_lifetime_secs",
                l.device_code.as_secs().to_string(),
            ),
            (
                "device_poll_interval_secs",
                l.device_poll.as_secs().to_string(),
            ),
            (
                "backchannel_logout_timeout_secs",
                c.logout.backchannel_timeout.as_secs().to_string(),
            ),
            (
                "backchannel_logout_attempts",
                c.logout.backchannel_attempts.to_string(),
            ),
            (
                "signin_lockout_threshold",
                c.lockout.account_threshold.to_string(),
            ),
            (
                "signin_ip_lockout_threshold",
                c.lockout.ip_threshold.to_string(),
            ),
            (
                "client_lockout_threshold",
                c.lockout.client_threshold.to_string(),
            ),
            ("lockout_secs", c.lockout.duration.as_secs().to_string()),
            (
                "shutdown_grace_secs",
                c.shutdown_grace.as_secs().to_string(),
            ),
            (
                "refresh_retry_grace_secs",
                c.refresh_retry_grace.as_secs().to_string(),
            ),
            ("trusted_proxies", "(none)".to_owned()),
            (
                "mfa",
                if c.mfa_required {
                    "`required`"
                } else {
                    "`optional`"
                }
                .to_owned(),
            ),
            ("outbound_allow", "(none)".to_owned()),
            ("master_key_file", "(none)".to_owned()),
            ("master_key", "(none)".to_owned()),
            (
                "revocation_leeway_secs",
                c.revocation_leeway.as_secs().to_string(),
            ),
            ("smtp_url", "(none)".to_owned()),
            ("smtp_password_file", "(none)".to_owned()),
            ("mail_from", "`Lanyard <noreply@ISSUER-HOST>`".to_owned()),
            ("mail_folder", "(beside the database)".to_owned()),
            (
                "invitation_lifetime_secs",
                c.mail.invitation_lifetime.as_secs().to_string(),
            ),
            (
                "password_reset_lifetime_secs",
                c.mail.reset_lifetime.as_secs().to_string(),
            ),
            (
                "email_verification_lifetime_secs",
                c.mail.verification_lifetime.as_secs().to_string(),
            ),
            ("scim_invite", c.mail.scim_invite.to_string()),
            (
                "client_assertion_max_lifetime_secs",
                c.client_assertion_max_lifetime.as_secs().to_string(),
            ),
            ("dpop_nonce", c.dpop_nonce.to_string()),
        ];
        let count = rows.len();
        for (key, default) in rows {
            let row = format!("| `{key}` | {default} |");
            assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
            assert!(KEYS.contains(&key), "{key} is documented but not read");
        }
        assert_eq!(
            KEYS.len(),
            count + 1,
            "every key but redis_url has a default row"
        );
    }
}
