//! Token revocation (RFC 7009). A refresh token revokes its family and the access tokens
//! issued from it; an access token revokes its `jti` until it expires. `token_type_hint` only
//! orders the search. An unknown, malformed or expired token is answered like a revoked one
//! (§2.2): 200. So is another client's token, which stays valid: answering it differently
//! would let anyone with a client id learn whether a stolen token is live.

use lanyard_store::{Target, Timestamp};

use crate::oauth::error::TokenError;
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::Client;
use lanyard_core::revocation;

/// What kind of token was presented, as far as we could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// A refresh token: its family (and the access tokens it issued) is revoked.
    RefreshToken,
    /// An access token: its `jti` is revoked until `exp`.
    AccessToken,
    /// Nothing we know (unknown, malformed, expired, already revoked): nothing to do.
    Nothing,
}

/// Revokes the `token` of the authenticated `client`.
pub async fn revoke(state: &Core, client: &Client, params: &Params) -> Result<Revoked, TokenError> {
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::invalid_request("token is missing"))?;
    let refresh_first = params.get("token_type_hint") != Some("access_token");
    if refresh_first {
        if let Some(done) = revoke_refresh(state, client, token).await? {
            return Ok(done);
        }
        revoke_access(state, client, token).await
    } else {
        match revoke_access(state, client, token).await? {
            Revoked::Nothing => Ok(revoke_refresh(state, client, token)
                .await?
                .unwrap_or(Revoked::Nothing)),
            done => Ok(done),
        }
    }
}

/// `Some` when `token` is one of our refresh tokens.
async fn revoke_refresh(
    state: &Core,
    client: &Client,
    token: &str,
) -> Result<Option<Revoked>, TokenError> {
    let Some(info) = state.store.inspect_refresh(token).await? else {
        return Ok(None);
    };
    if info.family.client_id != client.client_id {
        return Ok(Some(Revoked::Nothing));
    }
    let actor = format!("client:{}", client.client_id);
    revocation::revoke_family(state, &info, &actor).await?;
    record(state, &actor, "refresh_token", &info.family.sub).await;
    Ok(Some(Revoked::RefreshToken))
}

async fn revoke_access(state: &Core, client: &Client, token: &str) -> Result<Revoked, TokenError> {
    // An expired or forged token needs no revoking.
    let Ok(claims) = state.keys.verify_access_token(token, &state.config.issuer) else {
        return Ok(Revoked::Nothing);
    };
    if claims.client_id != client.client_id {
        return Ok(Revoked::Nothing);
    }
    let actor = format!("client:{}", client.client_id);
    revocation::revoke(
        state,
        Target::Jti(claims.jti.clone()),
        Timestamp::from_secs(claims.exp),
        &actor,
    )
    .await?;
    record(state, &actor, "access_token", &claims.sub).await;
    Ok(Revoked::AccessToken)
}

async fn record(state: &Core, actor: &str, kind: &str, sub: &str) {
    let event = state
        .event(actor, "token.revoke")
        .target(sub)
        .outcome(lanyard_core::model::REVOKED)
        .detail(serde_json::json!({ "token_type": kind }));
    state.audit.record(event).await;
}
