//! An application registered to use Lanyard.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lanyard_store::Timestamp;

use super::Invalid;
use super::redirect_uri;

/// The grant types Lanyard implements (RFC 6749 §4.1, §6, §4.4). Implicit and password
/// grants are not offered (RFC 9700 §2.1.2, §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantType {
    /// `authorization_code`
    AuthorizationCode,
    /// `refresh_token`
    RefreshToken,
    /// `client_credentials`
    ClientCredentials,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// Every grant type, for discovery.
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unknown grant type {s:?} (known: authorization_code, refresh_token, client_credentials)"))
    }
}

/// An application registered to use Lanyard.
#[derive(Clone, PartialEq, Eq)]
pub struct Client {
    /// The `client_id`.
    pub client_id: String,
    /// Shown to people.
    pub name: String,
    /// A public client has no secret (a browser or native app) and must use PKCE.
    pub public: bool,
    /// Keyed hash of the secret (confidential clients).
    pub secret_hash: Option<String>,
    /// Registered redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// Grants the client may use.
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// First-party clients skip consent and get refresh tokens without `offline_access`.
    pub first_party: bool,
    /// Overrides the default access-token lifetime.
    pub access_token_lifetime: Option<Duration>,
    /// Overrides the default ID-token lifetime.
    pub id_token_lifetime: Option<Duration>,
    /// Overrides the default offline refresh-token lifetime.
    pub refresh_token_lifetime: Option<Duration>,
    /// When the record was created.
    pub created_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
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
    /// Whether the client may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether the client may ask for `scope`.
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Checks a client before it is stored: what registration must refuse, naming the
    /// field at fault (as the admin API names it).
    pub fn validate(&self) -> Result<(), Invalid> {
        let invalid = |field: &'static str, message: String| Err(Invalid { field, message });
        if self.client_id.is_empty()
            || self.client_id.len() > 128
            || !self
                .client_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
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
        if self.public == self.secret_hash.is_some() {
            return invalid(
                "public",
                "a client is either public or has a secret".to_owned(),
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
                self.access_token_lifetime,
                crate::config::MAX_CLIENT_TOKEN_LIFETIME,
            ),
            (
                "id_token_lifetime",
                self.id_token_lifetime,
                crate::config::MAX_CLIENT_TOKEN_LIFETIME,
            ),
            (
                "refresh_token_lifetime",
                self.refresh_token_lifetime,
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

/// The longest offline refresh-token lifetime a client may have (a year).
pub const MAX_REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
