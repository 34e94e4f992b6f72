//! Consent (OIDC Core §3.1.2.4): an app that is not first-party gets what the person allowed
//! it, and is shown nothing more without asking. The answer is remembered per user, client
//! and scopes (SQL, `consents`): asked again only for a scope not yet allowed, or with
//! `prompt=consent`. Recording and withdrawing a consent are `lanyard_core::consents`.

use lanyard_core::Core;

use crate::oauth::error::AuthorizeError;
use crate::oauth::request::AuthorizationRequest;

/// A scope in plain words, for the consent and account pages.
pub fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your account's identifier)".to_owned(),
        "profile" => "See your name and username".to_owned(),
        "email" => "See your email address".to_owned(),
        "groups" => "See which groups you are in".to_owned(),
        "offline_access" => {
            "Keep access while you are away, until you withdraw it here (not only while you are signed in)"
                .to_owned()
        }
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

/// Whether the person must be asked before `request` is answered for user `sub`.
pub async fn needed(
    state: &Core,
    request: &AuthorizationRequest,
    sub: &str,
) -> Result<bool, AuthorizeError> {
    if request.client.first_party {
        return Ok(false);
    }
    if request.prompt.consent {
        return Ok(true);
    }
    let allowed = state
        .db
        .consents()
        .get(sub, &request.client.client_id)
        .await?
        .map(|c| c.scopes)
        .unwrap_or_default();
    Ok(request
        .scope
        .values()
        .iter()
        .any(|s| !allowed.iter().any(|a| a == s)))
}
