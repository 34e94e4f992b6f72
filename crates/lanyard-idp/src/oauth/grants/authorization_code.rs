//! `authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).

use std::time::Duration;

use lanyard_store::{NewFamily, RedeemedCode, Redemption, Timestamp};

use crate::oauth::checks::{pkce, scope::Scope};
use crate::oauth::code::CodePayload;
use crate::oauth::error::TokenError;
use crate::oauth::issue::{Grant, TokenResponse, audience, held, mint};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::REVOKED;
use lanyard_core::model::RefreshPayload;
use lanyard_core::model::{Client, GrantType};
use lanyard_core::revocation;

const BAD_CODE: &str = "the authorization code is invalid, expired, or already used";
const SESSION_ENDED: &str = "the sign-in session has ended; sign in again";

/// Exchanges a code.
pub async fn exchange(
    state: &Core,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(TokenError::unauthorized_client(
            "this client may not use authorization_code",
        ));
    }
    let code = params
        .get("code")
        .ok_or_else(|| TokenError::invalid_request("code is missing"))?;
    // Checked before the code is spent, so a mistake here does not cost the code.
    let audience = audience(state, client, params).await?;
    // The tokens' `iat`, taken before what the person holds is read: a role taken away
    // after this read is revoked with a watermark later than `iat`, so a token made from the
    // read is covered by it, whenever it is signed.
    let now = state.clock.now();
    // The user, and what they hold, are read before the code is spent: if the database is
    // down, the 503 leaves the code for the client's retry (read after, the code would be
    // spent and the retry taken for a replay). The row read is the one checked below.
    let (read_first, held_first) = match state.store.peek_code(code, &client.client_id).await? {
        Some(live) => {
            let user = state.db.users().recent(&live.sub).await?;
            let groups = may_carry_groups(&live.payload);
            let held = held(state, client, &audience, &live.sub, groups).await?;
            (Some(user), Some(held))
        }
        None => (None, None),
    };
    // Another client's attempt leaves the code to its owner (the store checks the client).
    let grant = match state.store.redeem_code(code, &client.client_id).await? {
        Redemption::Redeemed(grant) => grant,
        Redemption::NotFound => return Err(TokenError::invalid_grant(BAD_CODE)),
        Redemption::AlreadyRedeemed(spent) => {
            revoke_replayed(state, &spent).await?;
            return Err(TokenError::invalid_grant(BAD_CODE));
        }
    };
    let payload: CodePayload = serde_json::from_value(grant.payload.clone())
        .map_err(|e| TokenError::unavailable(format!("stored code unreadable: {e}")))?;
    if !payload.redirect_uri.is(params.get("redirect_uri")) {
        return Err(TokenError::invalid_grant(
            "redirect_uri must be the one sent with the authorization request",
        ));
    }
    match (&payload.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(TokenError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ));
        }
        (Some(_), None) => return Err(TokenError::invalid_grant("code_verifier is missing")),
        // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade.
        (None, Some(_)) => {
            return Err(TokenError::invalid_grant(
                "code_verifier sent for a code issued without code_challenge",
            ));
        }
        (None, None) => {}
    }
    // The row read before the code was spent. (A code the peek did not see cannot have been
    // redeemed just now, since nothing makes a code live again; the read below is a guard.)
    let user = match read_first {
        Some(user) => user,
        None => state.db.users().recent(&grant.sub).await?,
    };
    if user.as_ref().is_none_or(|u| u.disabled) {
        return Err(TokenError::invalid_grant("the user can no longer sign in"));
    }
    // A code outlives nothing: if the sign-in session it was issued in has ended since (the
    // person signed out, or was disabled), no tokens, as at Keycloak ("session not active").
    // A session-bound family is checked by the store as it is issued; others here.
    if let Some(sid) = &grant.sid
        && grant
            .issuance
            .family
            .as_ref()
            .is_none_or(|f| f.session().is_none())
        && state.store.session(sid.as_str()).await?.is_none()
    {
        return Err(TokenError::invalid_grant(SESSION_ENDED));
    }
    let scope = Scope::from(payload.scope.clone());
    let sid = grant.sid.as_ref().map(|s| s.as_str().to_owned());
    let jti = grant
        .issuance
        .access_token
        .as_ref()
        .map(|at| at.jti.clone())
        .ok_or_else(|| TokenError::unavailable("stored code has no access token id"))?;
    let refresh_token = match &grant.issuance.family {
        None => None,
        Some(family) => {
            // A session-bound family asks for what the session has left (the store also
            // caps it); an offline one for the client's or the default lifetime.
            let lifetime = if family.session().is_some() {
                now.until(Timestamp::from_millis(payload.session_expires_at))
            } else {
                client
                    .refresh_token_ttl()
                    .unwrap_or(state.config.lifetimes.refresh_token)
            };
            let issued = state
                .store
                .issue_refresh(NewFamily {
                    id: family.clone(),
                    grant_id: grant.grant_id.clone(),
                    client_id: client.client_id.clone(),
                    sub: grant.sub.clone(),
                    scope: payload.scope.clone(),
                    lifetime: lifetime.max(Duration::from_secs(1)),
                    payload: serde_json::to_value(RefreshPayload {
                        auth_time: payload.auth_time,
                        amr: payload.amr.clone(),
                        sid: sid.clone(),
                        // A public client's refresh tokens are bound to its DPoP key.
                        jkt: jkt.filter(|_| client.public).map(str::to_owned),
                    })
                    .unwrap_or_default(),
                    access_token: grant.issuance.access_token.clone(),
                })
                .await?;
            match issued {
                Some(issued) => Some(issued.token.secret().to_owned()),
                // The session ended, or a replay of this code revoked the family first.
                None => return Err(TokenError::invalid_grant(SESSION_ENDED)),
            }
        }
    };
    let held = match held_first {
        Some(held) => held,
        None => {
            held(
                state,
                client,
                &audience,
                &grant.sub,
                payload.scope.iter().any(|s| s == "groups"),
            )
            .await?
        }
    };
    let mut response = mint(
        state,
        Grant {
            client,
            sub: &grant.sub,
            scope: &scope,
            sid: sid.as_deref(),
            auth_time: Some(payload.auth_time),
            amr: &payload.amr,
            nonce: payload.nonce.as_deref(),
            jti,
            audience,
            held,
            jkt: jkt.map(str::to_owned),
            delegation: None,
        },
        now,
    )
    .await?;
    response.refresh_token = refresh_token;
    Ok(response)
}

/// Whether a code's grant asked for the `groups` scope (an unreadable payload is refused
/// later; here it asks for nothing).
fn may_carry_groups(payload: &serde_json::Value) -> bool {
    serde_json::from_value::<CodePayload>(payload.clone())
        .is_ok_and(|p| p.scope.iter().any(|s| s == "groups"))
}

/// A code came back after it was spent: revoke everything its first redemption produced
/// (RFC 6749 §4.1.2, RFC 9700 §4.2.4): its access token, its refresh-token family, and
/// every access token a refresh minted from that family.
async fn revoke_replayed(state: &Core, spent: &RedeemedCode) -> Result<(), TokenError> {
    let actor = format!("client:{}", spent.client_id);
    let ended = match &spent.issued.family {
        Some(family) => revocation::end_family(state, family, &actor).await?,
        None => None,
    };
    // The family lists the first access token too; without a family (no refresh token, or
    // ended already), it is revoked on its own.
    if ended.is_none()
        && let Some(at) = &spent.issued.access_token
    {
        revocation::revoke_access_tokens(state, std::slice::from_ref(at), &actor).await?;
    }
    let event = state
        .event(actor, "code.replay")
        .target(spent.grant_id.to_string())
        .outcome(REVOKED);
    state.audit.record(event).await;
    Ok(())
}
