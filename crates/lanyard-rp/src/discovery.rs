//! The issuer's metadata (OpenID Connect Discovery §4), fetched with redirects off and a
//! timeout; the `issuer` in it must equal the configured one exactly (§4.3).

use std::time::Duration;

use serde::Deserialize;

/// What an app needs from the discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Discovery {
    /// The issuer.
    pub issuer: String,
    /// Where the keys are.
    pub jwks_uri: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// UserInfo, if offered.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// RP-Initiated Logout, if offered.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// Lanyard's revocation feed: the snapshot, if offered.
    #[serde(default)]
    pub lanyard_revocation_snapshot_endpoint: Option<String>,
    /// Lanyard's revocation feed: the event stream, if offered.
    #[serde(default)]
    pub lanyard_revocation_events_endpoint: Option<String>,
}

impl Discovery {
    /// Fetches `{issuer}/.well-known/openid-configuration`.
    pub async fn fetch(issuer: &str) -> Result<Self, String> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let response = http_client()
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        let doc: Discovery = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
        if doc.issuer != issuer {
            return Err(format!(
                "{url} names issuer {:?}, not {issuer:?}",
                doc.issuer
            ));
        }
        Ok(doc)
    }
}

/// The HTTP client for talking to the issuer: no redirects (SSRF), bounded time.
pub(crate) fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}
