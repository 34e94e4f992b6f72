//! `refresh_token` (RFC 6749 §6) with rotation and reuse detection (RFC 9700 §4.14.2).

use lanyard_store::{AccessTokenRef, Rotation};

use crate::oauth::checks::scope::Scope;
use crate::oauth::error::TokenError;
use crate::oauth::issue::{Grant, TokenResponse, access_token_lifetime, audience, held, mint};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::crypto::random_token;
use lanyard_core::model::RefreshPayload;
use lanyard_core::model::{AuditEvent, REVOKED};
use lanyard_core::model::{Client, GrantType};
use lanyard_core::revocation;

const BAD_TOKEN: &str = "the refresh token is invalid, expired, or revoked";

/// Rotates a refresh token and mints fresh tokens.
pub async fn refresh(
    state: &Core,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    if !client.allows(GrantType::RefreshToken) {
        return Err(TokenError::unauthorized_client(
            "this client may not use refresh_token",
        ));
    }
    let token = params
        .get("refresh_token")
        .ok_or_else(|| TokenError::invalid_request("refresh_token is missing"))?;
    // The family as it stands, before anything is spent.
    let known = state
        .store
        .find_refresh(token)
        .await?
        .filter(|f| f.client_id == client.client_id);
    // The user is read before rotating: if the database is down, the 503 leaves the token
    // unspent, and the client's retry after the outage works. (Read after rotating, the
    // token would be spent, and a retry later than the store's short retry grace would be
    // taken for reuse and end the family.) The read is kept for a second, so the check after
    // rotating costs nothing.
    // What the person holds is read before rotating too, for the same reason; the tokens'
    // `iat` is taken before that read (see `authorization_code.rs`).
    let audience = audience(state, client, params).await?;
    let now = state.clock.now();
    let held_first = match &known {
        Some(family) => {
            state.db.users().recent(&family.sub).await?;
            let groups = family.scope.iter().any(|s| s == "groups");
            Some(held(state, client, &audience, &family.sub, groups).await?)
        }
        None => None,
    };
    // A family bound to a DPoP key (a public client's, RFC 9449 §5) refreshes only with a
    // proof by that key; checked before rotating, so a refused request spends nothing.
    if let Some(family) = &known {
        let bound = serde_json::from_value::<RefreshPayload>(family.payload.clone())
            .ok()
            .and_then(|p| p.jkt);
        match (bound, jkt) {
            (Some(bound), Some(jkt)) if bound == jkt => {}
            (Some(_), Some(_)) => {
                return Err(TokenError::invalid_dpop_proof(
                    "the refresh token is bound to another DPoP key",
                ));
            }
            (Some(_), None) => {
                return Err(TokenError::invalid_dpop_proof(
                    "the refresh token is bound to a DPoP key: send a DPoP proof signed by it",
                ));
            }
            (None, _) => {}
        }
    }
    // A narrower scope may be asked for, never a wider one (§6). Checked before rotating, so
    // a refused request leaves the token as it was.
    let narrowed = match params.get("scope") {
        None => None,
        Some(raw) => {
            let requested = Scope::parse(raw)
                .ok_or_else(|| TokenError::invalid_scope("scope has a malformed value"))?;
            let family = known
                .as_ref()
                .ok_or_else(|| TokenError::invalid_grant(BAD_TOKEN))?;
            if !requested.is_subset_of(&Scope::from(family.scope.clone())) {
                return Err(TokenError::invalid_scope(
                    "a refresh may not ask for more scope than was granted",
                ));
            }
            Some(requested)
        }
    };
    let jti = random_token(16);
    let at = AccessTokenRef {
        jti: jti.clone(),
        expires_at: now.plus(access_token_lifetime(state, client)),
    };
    let (new_token, family) = match state
        .store
        .rotate_refresh(token, &client.client_id, Some(&at))
        .await?
    {
        Rotation::Rotated { token, family } | Rotation::Replayed { token, family } => {
            (token, family)
        }
        Rotation::Invalid => return Err(TokenError::invalid_grant(BAD_TOKEN)),
        Rotation::Reused(revoked) => {
            let actor = format!("client:{}", client.client_id);
            revocation::revoke_access_tokens(state, &revoked.access_tokens, &actor).await?;
            let event = AuditEvent::new(now, actor, "refresh.reuse")
                .target(revoked.family.sub.clone())
                .outcome(REVOKED)
                .detail(serde_json::json!({ "family": revoked.family.id }));
            state.audit.record(event).await;
            return Err(TokenError::invalid_grant(BAD_TOKEN));
        }
    };
    let user = state.db.users().recent(&family.sub).await?;
    if user.as_ref().is_none_or(|u| u.disabled) {
        let actor = format!("client:{}", client.client_id);
        revocation::end_family(state, &family.id, &actor).await?;
        return Err(TokenError::invalid_grant("the user can no longer sign in"));
    }
    // Using a token bound to the sign-in session is using the session: it stays alive while
    // the person works in an app, as a Keycloak user expects.
    if let Some(sid) = family.sid() {
        state.store.touch_session(sid.as_str(), None).await?;
    }
    let payload: RefreshPayload = serde_json::from_value(family.payload.clone())
        .map_err(|e| TokenError::unavailable(format!("stored refresh family unreadable: {e}")))?;
    let scope = narrowed.unwrap_or_else(|| Scope::from(family.scope.clone()));
    let sid = family.sid().map(|s| s.to_string());
    let held = match held_first {
        Some(held) => held,
        None => {
            let groups = family.scope.iter().any(|s| s == "groups");
            held(state, client, &audience, &family.sub, groups).await?
        }
    };
    let mut response = mint(
        state,
        Grant {
            client,
            sub: &family.sub,
            scope: &scope,
            sid: sid.as_deref(),
            auth_time: Some(payload.auth_time),
            amr: &payload.amr,
            // OIDC Core §12.2: a refreshed ID token carries no new nonce.
            nonce: None,
            jti,
            audience,
            held,
            jkt: jkt.map(str::to_owned),
            delegation: None,
        },
        now,
    )
    .await?;
    response.refresh_token = Some(new_token.secret().to_owned());
    Ok(response)
}
