//! The provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2), built once.

use serde_json::json;

use lanyard_core::config::Config;
use lanyard_core::model::{Acr, GrantType};
use lanyard_core::tokens::assertion;

/// The endpoint paths, relative to the issuer.
pub mod paths {
    /// Authorization endpoint.
    pub const AUTHORIZE: &str = "/authorize";
    /// Where the sign-in form posts.
    pub const SIGNIN: &str = "/signin";
    /// The person's account page.
    pub const ACCOUNT: &str = "/account";
    /// Where the consent form posts.
    pub const CONSENT: &str = "/consent";
    /// End-session endpoint (RP-Initiated Logout 1.0).
    pub const END_SESSION: &str = "/logout";
    /// How long the browser's sign-in session has left (Lanyard's own).
    pub const SESSION_STATUS: &str = "/session/status";
    /// "Stay signed in".
    pub const SESSION_EXTEND: &str = "/session/extend";
    /// A session's status, asked by one of its apps server to server (its own credentials).
    pub const SESSION_APP_STATUS: &str = "/session/app-status";
    /// "Stay signed in", asked by one of a session's apps server to server.
    pub const SESSION_APP_EXTEND: &str = "/session/app-extend";
    /// The timeout-warning script apps include.
    pub const SESSION_WARNING_JS: &str = "/session/warning.js";
    /// Token endpoint.
    pub const TOKEN: &str = "/token";
    /// Pushed authorization request endpoint (RFC 9126 §2).
    pub const PAR: &str = "/par";
    /// Device authorization endpoint (RFC 8628 §3.1).
    pub const DEVICE_AUTHORIZATION: &str = "/device_authorization";
    /// Where a person approves a device (RFC 8628 §3.3 `verification_uri`).
    pub const DEVICE: &str = "/device";
    /// Revocation endpoint (RFC 7009).
    pub const REVOCATION: &str = "/revoke";
    /// Introspection endpoint (RFC 7662).
    pub const INTROSPECTION: &str = "/introspect";
    /// The revocation feed's snapshot (Lanyard's own; `docs/admin-api.md`).
    pub const REVOCATION_SNAPSHOT: &str = "/revocations/snapshot";
    /// The revocation feed's event stream (Server-Sent Events).
    pub const REVOCATION_EVENTS: &str = "/revocations/events";
    /// UserInfo endpoint.
    pub const USERINFO: &str = "/userinfo";
    /// JWKS.
    pub const JWKS: &str = "/jwks";
    /// Liveness: the process answers.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness: this node can serve now.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// OpenID Connect Discovery.
    pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
    /// RFC 8414 metadata.
    pub const OAUTH_METADATA: &str = "/.well-known/oauth-authorization-server";
}

/// The metadata document. Only what is implemented is advertised.
pub fn metadata(config: &Config) -> String {
    let grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": config.url(paths::AUTHORIZE),
        "pushed_authorization_request_endpoint": config.url(paths::PAR),
        "require_pushed_authorization_requests": false,
        "token_endpoint": config.url(paths::TOKEN),
        "device_authorization_endpoint": config.url(paths::DEVICE_AUTHORIZATION),
        "userinfo_endpoint": config.url(paths::USERINFO),
        "revocation_endpoint": config.url(paths::REVOCATION),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": assertion::algorithm_names(),
        "introspection_endpoint": config.url(paths::INTROSPECTION),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_signing_alg_values_supported": assertion::algorithm_names(),
        "lanyard_revocation_snapshot_endpoint": config.url(paths::REVOCATION_SNAPSHOT),
        "lanyard_revocation_events_endpoint": config.url(paths::REVOCATION_EVENTS),
        "end_session_endpoint": config.url(paths::END_SESSION),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "jwks_uri": config.url(paths::JWKS),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": grants,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": assertion::algorithm_names(),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": lanyard_rp::dpop::ALGORITHMS,
        "scopes_supported": ["openid", "profile", "email", "offline_access", "groups"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "acr", "amr", "at_hash",
            "name", "preferred_username", "updated_at", "email", "email_verified", "groups", "roles"
        ],
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": ["en"],
        "claims_locales_supported": ["en"],
        "claims_parameter_supported": true,
        "acr_values_supported": Acr::ALL.map(Acr::as_str),
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": assertion::algorithm_names(),
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
    })
    .to_string()
}
