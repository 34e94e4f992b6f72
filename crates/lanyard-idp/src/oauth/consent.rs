//! Consent (OIDC Core §3.1.2.4): an app that is not first-party gets what the person allowed
//! it, and is shown nothing more without asking. The answer is remembered per user, client
//! and scopes (SQL, `consents`): asked again only for a scope not yet allowed, or with
//! `prompt=consent`. Withdrawing it (the account page) also revokes what the app holds.

use lanyard_store::Target;

use crate::admin::record_event;
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::error::AuthorizeError;
use crate::revocation;
use crate::state::AppState;

/// A scope in plain words, for the consent and account pages.
pub fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your account's identifier)".to_owned(),
        "profile" => "See your name and username".to_owned(),
        "email" => "See your email address".to_owned(),
        "offline_access" => {
            "Keep access while you are away, until you withdraw it here (not only while you are signed in)"
                .to_owned()
        }
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

/// Whether the person must be asked before `request` is answered for user `sub`.
pub async fn needed(
    state: &AppState,
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
        .consent(sub, &request.client.client_id)
        .await?
        .map(|c| c.scopes)
        .unwrap_or_default();
    Ok(request
        .scope
        .values()
        .iter()
        .any(|s| !allowed.iter().any(|a| a == s)))
}

/// Records that user `sub` allowed what `request` asks (with what they allowed before).
pub async fn grant(
    state: &AppState,
    request: &AuthorizationRequest,
    sub: &str,
) -> Result<(), AuthorizeError> {
    let client_id = &request.client.client_id;
    let mut scopes = state
        .db
        .consent(sub, client_id)
        .await?
        .map(|c| c.scopes)
        .unwrap_or_default();
    for s in request.scope.values() {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    state
        .db
        .grant_consent(sub, client_id, &scopes, state.clock.now())
        .await?;
    record_event(
        state,
        sub,
        "consent.grant",
        &format!("client_id:{client_id}"),
        "success",
        Some(serde_json::json!({ "scopes": scopes }).to_string()),
    )
    .await;
    Ok(())
}

/// Withdraws user `sub`'s consent to `client_id`: revokes the client's refresh tokens of
/// theirs, then every access token the client holds for them (a `grant` watermark, pushed to
/// every app's guard, so tokens issued without a refresh token go too). Returns whether
/// there was a consent.
pub async fn withdraw(
    state: &AppState,
    sub: &str,
    client_id: &str,
) -> Result<bool, AuthorizeError> {
    let had = state.db.withdraw_consent(sub, client_id).await?;
    let mut revoked = 0;
    for family in state.store.user_families(sub).await? {
        if family.client_id == client_id && state.store.revoke_family(&family.id).await?.is_some() {
            revoked += 1;
        }
    }
    revocation::revoke(state, Target::grant(sub, client_id), state.clock.now(), sub)
        .await
        .map_err(|e| AuthorizeError::Unavailable(e.to_string()))?;
    record_event(
        state,
        sub,
        "consent.withdraw",
        &format!("client_id:{client_id}"),
        "success",
        Some(
            serde_json::json!({ "had_consent": had, "refresh_families_revoked": revoked })
                .to_string(),
        ),
    )
    .await;
    Ok(had)
}
