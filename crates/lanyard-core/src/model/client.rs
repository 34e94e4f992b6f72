//! An application registered to use Lanyard.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::time::Duration;

use lanyard_store::Timestamp;
use serde::{Deserialize, Serialize};

use super::Invalid;
use super::redirect_uri;

/// The grant types Lanyard implements (RFC 6749 §4.1, §6, §4.4; RFC 8628). Implicit and password
/// grants are not offered (RFC 9700 §2.1.2, §2.4).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code`: the code flow (RFC 6749 §4.1).
    AuthorizationCode,
    /// `refresh_token`: refresh tokens (§6).
    RefreshToken,
    /// `client_credentials`: the client acting for itself (§4.4).
    ClientCredentials,
    /// `urn:ietf:params:oauth:grant-type:device_code`: a device without a browser, approved
    /// by the person at `{issuer}/device` (RFC 8628).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// `urn:ietf:params:oauth:grant-type:token-exchange`: an API exchanges an access token it
    /// received for one meant for another API, acting on the person's behalf (RFC 8693), for
    /// the audiences of its `exchange_audiences`.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// Every grant type, for discovery.
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
        Self::DeviceCode,
        Self::TokenExchange,
    ];
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unknown grant type {s:?} (known: authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, urn:ietf:params:oauth:grant-type:token-exchange)"))
    }
}

/// How a client proves who it is at the token, revocation and introspection endpoints
/// (RFC 6749 §2.3, OIDC Core §9, RFC 7523).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A secret, in HTTP Basic (`client_secret_post`, in the body, is accepted too).
    ClientSecretBasic,
    /// A secret, in the body (HTTP Basic is accepted too).
    ClientSecretPost,
    /// A JWT the client signs with one of its keys (`jwks` or `jwks_uri`); no secret.
    PrivateKeyJwt,
    /// Nothing but the `client_id`: a public client.
    None,
}

impl AuthMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// Whether a secret is how the client authenticates.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [
            Self::ClientSecretBasic,
            Self::ClientSecretPost,
            Self::PrivateKeyJwt,
            Self::None,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| {
            format!(
                "unknown authentication method {s:?} (known: client_secret_basic, client_secret_post, private_key_jwt, none)"
            )
        })
    }
}

/// Everything an operator chooses about an application: the one shape of a client. The
/// admin API's request and response bodies, the command line's `client add` flags and the
/// database row are all made from it (the row holds it as JSON beside the secret's hash),
/// so a new setting is a field here, and the places that use it.
///
/// A field left out of a registration takes its default ([`ClientSettings::with_defaults`]
/// fills the name, grant types and scopes); a change is a JSON merge patch (RFC 7396) of
/// these fields, and may not change `client_id` or `public`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// The client id: letters, digits, `-`, `.`, `_`, `~`; not 22 base64url characters (a
    /// user's `sub` has that shape).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^(?![A-Za-z0-9_-]{22}$)[A-Za-z0-9._~-]+$"
    )]
    #[arg(value_name = "CLIENT_ID")]
    pub client_id: String,
    /// Shown to people on the sign-in and consent pages (default: the client id).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    #[arg(long, default_value_t)]
    pub name: String,
    /// A public client (a browser or native app): no secret, PKCE required.
    #[serde(default)]
    #[arg(long)]
    pub public: bool,
    /// Redirect URIs, matched exactly: https, http on a loopback address, or a
    /// reverse-domain private-use scheme; no fragment. Needed for `authorization_code`.
    #[serde(default)]
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// Where people may be sent after signing out (the same rules).
    #[serde(default)]
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the app is told that a session ended (OpenID Back-Channel Logout 1.0).
    #[serde(default)]
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// The grants it may use (default: authorization_code and refresh_token).
    #[serde(default)]
    #[arg(long = "grant-type", value_name = "GRANT")]
    pub grant_types: Vec<GrantType>,
    /// The scopes it may ask for (default: openid profile email offline_access groups).
    #[serde(default)]
    #[schema(value_type = Vec<ScopeToken>)]
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// First-party: no consent, and refresh tokens without `offline_access`, bound to the
    /// sign-in session.
    #[serde(default)]
    #[arg(long)]
    pub first_party: bool,
    /// Its access-token lifetime in seconds (1 to 3600), when it overrides the server's.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    #[arg(long, value_name = "SECONDS")]
    pub access_token_lifetime: Option<u64>,
    /// Its ID-token lifetime in seconds (1 to 3600), when it overrides the server's.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    #[arg(long, value_name = "SECONDS")]
    pub id_token_lifetime: Option<u64>,
    /// Its offline refresh-token lifetime in seconds (1 to 31536000), when it overrides the
    /// server's.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    #[arg(long, value_name = "SECONDS")]
    pub refresh_token_lifetime: Option<u64>,
    /// The other registered clients (APIs) it may ask access tokens for with `resource`
    /// (RFC 8707); besides itself, none by default. The consent page names them.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    #[arg(long = "resource", value_name = "CLIENT_ID")]
    pub resources: Vec<String>,
    /// The other registered clients (APIs) it may get access tokens for by token exchange
    /// (RFC 8693), acting on behalf of the person whose token it received; none by default.
    /// Needs the grant type `urn:ietf:params:oauth:grant-type:token-exchange`.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    #[arg(long = "exchange-audience", value_name = "CLIENT_ID")]
    pub exchange_audiences: Vec<String>,
    /// Every sign-in for this app takes two factors (`urn:lanyard:acr:mfa`): a person with
    /// only a password is asked for a second factor, or to set one up.
    #[serde(default)]
    #[arg(long)]
    pub require_mfa: bool,
    /// Its access tokens carry `roles`: the roles the person holds at the token's audience
    /// (RFC 9068 §2.2.3.1). On by default; `false` (`--no-roles-claim`) for an app that does
    /// not want them.
    #[serde(default = "on")]
    #[schema(default = true)]
    #[arg(long = "no-roles-claim", action = clap::ArgAction::SetFalse)]
    pub roles_claim: bool,
    /// With the `groups` scope, its ID tokens, userinfo and access tokens carry `groups`:
    /// the names of the person's groups. On by default; `false` (`--no-groups-claim`) for an
    /// app that does not want them.
    #[serde(default = "on")]
    #[schema(default = true)]
    #[arg(long = "no-groups-claim", action = clap::ArgAction::SetFalse)]
    pub groups_claim: bool,
    /// Its authorization requests must be pushed first (RFC 9126, `POST /par`): one sent
    /// straight to `/authorize` is refused (`invalid_request`).
    #[serde(default)]
    #[arg(long)]
    pub require_par: bool,
    /// Its tokens must be bound to a key by DPoP (RFC 9449): a token request without a
    /// proof is refused (`invalid_dpop_proof`).
    #[serde(default)]
    #[arg(long)]
    pub require_dpop: bool,
    /// How it authenticates at the token endpoint: `client_secret_basic` or
    /// `client_secret_post` (a secret; either is accepted), `private_key_jwt` (a JWT signed
    /// with one of its keys, `jwks` or `jwks_uri`; it has no secret), or `none` (a public
    /// client). Default: `none` for a public client, a secret otherwise.
    #[serde(default)]
    #[arg(long, value_name = "METHOD")]
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Its public keys, as a JWK Set (RFC 7517): what its `private_key_jwt` assertions are
    /// checked with. On the command line, `--jwks-file FILE`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    #[arg(skip)]
    pub jwks: Option<serde_json::Value>,
    /// Where its public keys are published (a JWK Set): fetched when first needed, kept five
    /// minutes, and fetched again for a key id not seen yet. https, or http on a loopback
    /// address; internal addresses only with `outbound_allow`.
    #[serde(default)]
    #[arg(long, value_name = "URI")]
    pub jwks_uri: Option<String>,
    /// Turned off: nobody can sign in to it and it gets no tokens (its authorization
    /// requests end on a page saying so; the token endpoint answers `invalid_client`).
    /// Turning it off revokes every token it holds; turning it on again gives none back.
    #[serde(default)]
    #[arg(long)]
    pub disabled: bool,
}

/// A JWK Set (RFC 7517 §5) of public keys only, each one able to verify signatures.
fn check_public_jwks(jwks: &serde_json::Value) -> Result<(), String> {
    let keys = jwks
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| "a JWK Set is an object with \"keys\": [...]".to_owned())?;
    if keys.is_empty() {
        return Err("the JWK Set has no keys".to_owned());
    }
    for key in keys {
        if let Some(private) = ["d", "p", "q", "dp", "dq", "qi", "k"]
            .into_iter()
            .find(|member| key.get(member).is_some())
        {
            return Err(format!(
                "a key holds private or secret material (\"{private}\"); register public keys only"
            ));
        }
        let jwk: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(key.clone()).map_err(|e| format!("a key is not a JWK: {e}"))?;
        jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|e| format!("a key cannot verify signatures: {e}"))?;
    }
    Ok(())
}

/// A setting that is on unless turned off.
fn on() -> bool {
    true
}

/// 1 to 128 characters of letters, digits, `-`, `.`, `_` or `~`.
fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// A scope token (RFC 6749 §3.3), as the OpenAPI document describes one.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = r#"^[!#-\[\]-~]+$"#)]
#[allow(dead_code)] // Only describes `ClientSettings::scopes`.
struct ScopeToken(String);

impl ClientSettings {
    /// The settings of client `client_id` with nothing else chosen yet (a confidential
    /// client; [`with_defaults`](Self::with_defaults) fills the rest at registration).
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            name: String::new(),
            public: false,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            grant_types: Vec::new(),
            scopes: Vec::new(),
            first_party: false,
            access_token_lifetime: None,
            id_token_lifetime: None,
            refresh_token_lifetime: None,
            resources: Vec::new(),
            exchange_audiences: Vec::new(),
            require_mfa: false,
            roles_claim: true,
            groups_claim: true,
            require_par: false,
            require_dpop: false,
            token_endpoint_auth_method: None,
            jwks: None,
            jwks_uri: None,
            disabled: false,
        }
    }

    /// The settings of a new client: a name left empty is the client id; no grant types
    /// means `authorization_code` and `refresh_token`; no scopes means `openid profile email
    /// offline_access groups`.
    #[must_use]
    pub fn with_defaults(mut self) -> Self {
        if self.name.is_empty() {
            self.name.clone_from(&self.client_id);
        }
        if self.grant_types.is_empty() {
            self.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        }
        if self.scopes.is_empty() {
            self.scopes = ["openid", "profile", "email", "offline_access", "groups"]
                .map(str::to_owned)
                .to_vec();
        }
        self
    }

    /// How it authenticates: as registered, else `none` for a public client and a secret
    /// for any other.
    pub fn auth_method(&self) -> AuthMethod {
        match self.token_endpoint_auth_method {
            Some(method) => method,
            None if self.public => AuthMethod::None,
            None => AuthMethod::ClientSecretBasic,
        }
    }

    /// Whether it is given a secret: a confidential client that does not sign assertions.
    pub fn has_secret(&self) -> bool {
        self.auth_method().uses_secret()
    }

    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether the client may ask for `scope`.
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Its access-token lifetime, when it overrides the server's.
    pub fn access_token_ttl(&self) -> Option<Duration> {
        self.access_token_lifetime.map(Duration::from_secs)
    }

    /// Its ID-token lifetime, when it overrides the server's.
    pub fn id_token_ttl(&self) -> Option<Duration> {
        self.id_token_lifetime.map(Duration::from_secs)
    }

    /// Its offline refresh-token lifetime, when it overrides the server's.
    pub fn refresh_token_ttl(&self) -> Option<Duration> {
        self.refresh_token_lifetime.map(Duration::from_secs)
    }

    /// Whether it may ask access tokens for `audience` (itself, or one of its `resources`).
    pub fn may_address(&self, audience: &str) -> bool {
        audience == self.client_id || self.resources.iter().any(|r| r == audience)
    }

    /// Checks the settings before they are stored: what registration and every change must
    /// refuse, naming the field at fault (as the admin API and the command line name it).
    pub fn validate(&self) -> Result<(), Invalid> {
        let invalid = |field: &'static str, message: String| Err(Invalid { field, message });
        if let Some(bad) = self.resources.iter().find(|r| !is_client_id(r)) {
            return invalid(
                "resources",
                format!("{bad:?} is not a client id (a resource is another registered client)"),
            );
        }
        if let Some(bad) = self.exchange_audiences.iter().find(|r| !is_client_id(r)) {
            return invalid(
                "exchange_audiences",
                format!("{bad:?} is not a client id (an audience is another registered client)"),
            );
        }
        if !is_client_id(&self.client_id) {
            return invalid(
                "client_id",
                "a client id is 1 to 128 characters of letters, digits, '-', '.', '_' or '~'"
                    .to_owned(),
            );
        }
        // A client_credentials token's `sub` is the client id; it must never equal a user's
        // `sub`, which is 22 characters of base64url (RFC 9068 §5).
        if self.client_id.len() == 22
            && self
                .client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return invalid("client_id", "a client id of 22 base64url characters could be taken for a user's sub; choose another".to_owned());
        }
        if self.name.trim().is_empty()
            || self.name.chars().count() > 200
            || self.name.chars().any(char::is_control)
        {
            return invalid(
                "name",
                "a name is 1 to 200 characters, with no control characters".to_owned(),
            );
        }
        if self.grant_types.is_empty() {
            return invalid(
                "grant_types",
                "a client needs at least one grant type".to_owned(),
            );
        }
        if self.public && self.allows(GrantType::ClientCredentials) {
            return invalid(
                "grant_types",
                "a public client cannot use client_credentials (it has no secret)".to_owned(),
            );
        }
        if self.public && self.allows(GrantType::TokenExchange) {
            return invalid(
                "grant_types",
                "a public client cannot use token exchange: only an API that can authenticate may act on a person's behalf".to_owned(),
            );
        }
        match (self.auth_method(), self.public) {
            (AuthMethod::None, false) => {
                return invalid(
                    "token_endpoint_auth_method",
                    "none is for public clients; a confidential client uses a secret or private_key_jwt".to_owned(),
                );
            }
            (method, true) if method != AuthMethod::None => {
                return invalid(
                    "token_endpoint_auth_method",
                    format!(
                        "a public client authenticates with none, not {}",
                        method.as_str()
                    ),
                );
            }
            (AuthMethod::PrivateKeyJwt, _) if self.jwks.is_some() == self.jwks_uri.is_some() => {
                return invalid(
                    "jwks",
                    "private_key_jwt needs the client's keys: jwks or jwks_uri, one of them"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if let Some(jwks) = &self.jwks {
            check_public_jwks(jwks).or_else(|e| invalid("jwks", e))?;
        }
        if let Some(uri) = &self.jwks_uri {
            redirect_uri::validate_registration(uri)
                .or_else(|e| invalid("jwks_uri", format!("{uri}: {e}")))?;
            if !(uri.starts_with("https://") || uri.starts_with("http://")) {
                return invalid("jwks_uri", format!("{uri}: an https address"));
            }
        }
        if self.allows(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return invalid(
                "redirect_uris",
                "authorization_code needs at least one redirect URI".to_owned(),
            );
        }
        for (field, uris) in [
            ("redirect_uris", &self.redirect_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
        ] {
            for uri in uris {
                redirect_uri::validate_registration(uri)
                    .or_else(|e| invalid(field, format!("{uri}: {e}")))?;
            }
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            redirect_uri::validate_registration(uri)
                .or_else(|e| invalid("backchannel_logout_uri", format!("{uri}: {e}")))?;
        }
        for scope in &self.scopes {
            if scope.is_empty()
                || !scope
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                return invalid(
                    "scopes",
                    format!("{scope:?} is not a scope token (RFC 6749 §3.3)"),
                );
            }
        }
        for (field, lifetime, max) in [
            (
                "access_token_lifetime",
                self.access_token_lifetime.map(Duration::from_secs),
                crate::config::MAX_CLIENT_TOKEN_LIFETIME,
            ),
            (
                "id_token_lifetime",
                self.id_token_lifetime.map(Duration::from_secs),
                crate::config::MAX_CLIENT_TOKEN_LIFETIME,
            ),
            (
                "refresh_token_lifetime",
                self.refresh_token_lifetime.map(Duration::from_secs),
                MAX_REFRESH_TOKEN_LIFETIME,
            ),
        ] {
            if let Some(lifetime) = lifetime
                && (lifetime.is_zero() || lifetime > max)
            {
                return invalid(field, format!("{field} is 1 to {} seconds", max.as_secs()));
            }
        }
        Ok(())
    }
}

/// An application registered to use Lanyard: its settings (which it dereferences to), the
/// hash of its secret, and when it was registered and last changed.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    /// What the operator chose.
    pub settings: ClientSettings,
    /// Keyed hash of the secret; `None` for a public or `private_key_jwt` client.
    pub secret_hash: Option<String>,
    /// When the record was created.
    pub created_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
}

impl Deref for Client {
    type Target = ClientSettings;
    fn deref(&self) -> &ClientSettings {
        &self.settings
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("public", &self.public)
            .field("grant_types", &self.grant_types)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the client before it is stored: its settings, and a secret exactly when it
    /// authenticates with one (not public, not `private_key_jwt`).
    pub fn validate(&self) -> Result<(), Invalid> {
        self.settings.validate()?;
        if self.has_secret() != self.secret_hash.is_some() {
            return Err(Invalid {
                field: "public",
                message: "a client has a secret exactly when it authenticates with one (not public, not private_key_jwt)".to_owned(),
            });
        }
        Ok(())
    }
}

/// The longest offline refresh-token lifetime a client may have (a year).
pub const MAX_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
