//! The claims of the tokens Lanyard issues.

use serde::{Deserialize, Deserializer, Serialize};

/// An access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// The user, or the client itself for `client_credentials`.
    pub sub: String,
    /// The resource(s) the token is for.
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// Unique id, for revocation.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// For a token got by token exchange (RFC 8693): the person's first token (its client
    /// and `jti`), so that revoking it, or the person's grant at that client, revokes this
    /// one too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<lanyard_store::Origin>,
    /// For a token got by token exchange: the client acting on the person's behalf, and the
    /// actors before it (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<lanyard_store::Actor>,
    /// The key the token is bound to (RFC 9449 §6: DPoP), if any: only a request with a
    /// proof signed by that key may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Space-delimited scope.
    pub scope: String,
    /// The SSO session, when a user signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the user authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How strongly the user authenticated (`urn:lanyard:acr:...`; RFC 9068 §2.2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// How the user authenticated (RFC 8176 values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The roles the user holds at the token's audience (RFC 9068 §2.2.3.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The names of the user's groups, when the `groups` scope was granted (RFC 9068
    /// §2.2.3.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// The `cnf` claim of a DPoP-bound token (RFC 9449 §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The JWK SHA-256 thumbprint of the key (RFC 7638).
    pub jkt: String,
}

impl AccessClaims {
    /// Whether the token was granted `scope` (one of the space-separated values of `scope`).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.split(' ').any(|s| s == scope)
    }

    /// What revocation judges this token on.
    pub fn facts(&self) -> lanyard_store::TokenFacts<'_> {
        lanyard_store::TokenFacts {
            jti: &self.jti,
            sid: self.sid.as_deref(),
            sub: &self.sub,
            client_id: &self.client_id,
            origin: self.origin.as_ref(),
            act: self.act.as_ref(),
            iat: lanyard_store::Timestamp::from_secs(self.iat),
            exp: lanyard_store::Timestamp::from_secs(self.exp),
        }
    }
}

/// An ID token (OIDC Core §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// How strongly the user authenticated (`urn:lanyard:acr:...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The client's nonce, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The SSO session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Hash of the access token issued with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// How the user authenticated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The names of the user's groups, when the `groups` scope was granted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// A logout token (OpenID Connect Back-Channel Logout 1.0 §2.4): never a `nonce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogoutClaims {
    /// Issuer.
    pub iss: String,
    /// The client it is sent to.
    pub aud: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expiry (seconds): two minutes after `iat`.
    pub exp: i64,
    /// Unique id, so that the client can refuse a replay.
    pub jti: String,
    /// The user signed out.
    pub sub: String,
    /// The SSO session that ended.
    pub sid: String,
    /// `{"http://schemas.openid.net/event/backchannel-logout": {}}`.
    pub events: serde_json::Value,
}

/// The one member of a logout token's `events` claim.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// `aud` may be a string or an array (RFC 7519 §4.1.3).
pub(crate) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}
