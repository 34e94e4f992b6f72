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
        Self::fetch_via(issuer, None).await
    }

    /// Fetches the document, through `backchannel` when given (see [`document`]).
    pub async fn fetch_via(issuer: &str, backchannel: Option<&str>) -> Result<Self, String> {
        let doc = document(issuer, backchannel).await?;
        serde_json::from_value(doc).map_err(|e| format!("the discovery document of {issuer}: {e}"))
    }
}

/// The endpoints an app calls itself (never a browser): with a back-channel address they are
/// reached there instead of at the issuer's public address.
const SERVER_TO_SERVER: [&str; 7] = [
    "jwks_uri",
    "token_endpoint",
    "userinfo_endpoint",
    "introspection_endpoint",
    "revocation_endpoint",
    "lanyard_revocation_snapshot_endpoint",
    "lanyard_revocation_events_endpoint",
];

/// The issuer's discovery document as JSON, its `issuer` checked against `issuer` exactly
/// (§4.3). With `backchannel` (say `http://lanyard.internal:8080`, where this app reaches the
/// issuer when its public address is not reachable from inside, as Keycloak's "backchannel
/// URL"), the document is fetched there, and each server-to-server endpoint under the issuer
/// is rewritten to it; the `issuer`, the authorization and end-session endpoints (browsers go
/// there) stay as published.
pub(crate) async fn document(
    issuer: &str,
    backchannel: Option<&str>,
) -> Result<serde_json::Value, String> {
    let issuer = issuer.trim_end_matches('/');
    let base = backchannel.map_or(issuer, |b| b.trim_end_matches('/'));
    let url = format!("{base}/.well-known/openid-configuration");
    let response = http_client()
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    let mut doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
    let named = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
    if named != issuer {
        return Err(format!("{url} names issuer {named:?}, not {issuer:?}"));
    }
    if base != issuer {
        for field in SERVER_TO_SERVER {
            if let Some(serde_json::Value::String(endpoint)) = doc.get_mut(field) {
                match endpoint.strip_prefix(issuer) {
                    Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                        *endpoint = format!("{base}{rest}");
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(doc)
}

/// The HTTP client for talking to the issuer: no redirects (SSRF), bounded time.
pub(crate) fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::Client::builder()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}
