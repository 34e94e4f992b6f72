//! What people allowed applications (OIDC Core §3.1.2.4), as a service: record a consent,
//! withdraw one (which also revokes what the app holds for the person). Deciding whether to
//! ask is the authorization endpoint's (`lanyard-idp`'s `oauth/consent.rs`).

use lanyard_store::Target;

use crate::Core;
use crate::error::ServiceError;
use crate::revocation;

/// Records that user `sub` allowed `client_id` the `scopes` (with what they allowed
/// before).
pub async fn grant(
    state: &Core,
    sub: &str,
    client_id: &str,
    asked: &[String],
) -> Result<(), ServiceError> {
    let mut scopes = state
        .db
        .consents()
        .get(sub, client_id)
        .await?
        .map(|c| c.scopes)
        .unwrap_or_default();
    for s in asked {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    state
        .db
        .consents()
        .grant(sub, client_id, &scopes, state.clock.now())
        .await?;
    let event = state
        .event(sub, "consent.grant")
        .target(format!("client_id:{client_id}"))
        .detail(serde_json::json!({ "scopes": scopes }));
    state.audit.record(event).await;
    Ok(())
}

/// Withdraws user `sub`'s consent to `client_id`: revokes the client's refresh tokens of
/// theirs, then every access token the client holds for them (a `grant` watermark, pushed to
/// every app's guard, so tokens issued without a refresh token go too). Returns whether
/// there was a consent.
pub async fn withdraw(state: &Core, sub: &str, client_id: &str) -> Result<bool, ServiceError> {
    let had = state.db.consents().withdraw(sub, client_id).await?;
    let mut revoked = 0;
    for family in state.store.user_families(sub).await? {
        if family.client_id == client_id && state.store.revoke_family(&family.id).await?.is_some() {
            revoked += 1;
        }
    }
    revocation::revoke(state, Target::grant(sub, client_id), state.clock.now(), sub).await?;
    let event = state
        .event(sub, "consent.withdraw")
        .target(format!("client_id:{client_id}"))
        .detail(serde_json::json!({ "had_consent": had, "refresh_families_revoked": revoked }));
    state.audit.record(event).await;
    Ok(had)
}
