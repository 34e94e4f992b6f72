//! `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): a device polls with
//! its device code until the person has decided at `{issuer}/device`.

use std::time::Duration;

use lanyard_store::{DevicePoll, NewFamily};

use crate::oauth::checks::scope::Scope;
use crate::oauth::device::ApprovedDevice;
use crate::oauth::error::{TokenError, TokenErrorCode};
use crate::oauth::issue::{Grant, TokenResponse, audience, held, mint};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::{Client, GrantType, RefreshPayload};

/// One poll.
pub async fn poll(
    state: &Core,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    if !client.allows(GrantType::DeviceCode) {
        return Err(TokenError::unauthorized_client(
            "this client may not use the device authorization grant",
        ));
    }
    let device_code = params
        .get("device_code")
        .ok_or_else(|| TokenError::invalid_request("device_code is missing"))?;
    // Checked before the poll, so a mistake here does not cost the approval.
    let audience = audience(state, client, params).await?;
    let now = state.clock.now();
    let grant = match state
        .store
        .poll_device(device_code, &client.client_id)
        .await?
    {
        DevicePoll::Approved(grant) => grant,
        DevicePoll::Pending => {
            return Err(TokenError::device(
                TokenErrorCode::AuthorizationPending,
                "the person has not approved this device yet; poll again after the interval",
            ));
        }
        DevicePoll::SlowDown { interval } => {
            return Err(TokenError::device(
                TokenErrorCode::SlowDown,
                format!(
                    "polled too soon; wait at least {} seconds between polls from now on",
                    interval.as_secs()
                ),
            ));
        }
        DevicePoll::Denied => {
            return Err(TokenError::device(
                TokenErrorCode::AccessDenied,
                "the person denied this device",
            ));
        }
        DevicePoll::Expired => {
            return Err(TokenError::device(
                TokenErrorCode::ExpiredToken,
                "the device code has expired; start again with a new one",
            ));
        }
        DevicePoll::NotFound => {
            return Err(TokenError::invalid_grant(
                "the device code is invalid, or its tokens were already issued",
            ));
        }
    };
    let approved: ApprovedDevice = serde_json::from_value(grant.payload.clone())
        .map_err(|e| TokenError::unavailable(format!("stored device grant unreadable: {e}")))?;
    let user = state.db.users().recent(&grant.sub).await?;
    if user.as_ref().is_none_or(|u| u.disabled) {
        return Err(TokenError::invalid_grant("the user can no longer sign in"));
    }
    let jti = grant
        .issuance
        .access_token
        .as_ref()
        .map(|at| at.jti.clone())
        .ok_or_else(|| TokenError::unavailable("stored device grant has no access token id"))?;
    let held = held(
        state,
        client,
        &audience,
        &grant.sub,
        approved.scope.iter().any(|s| s == "groups"),
    )
    .await?;
    let refresh_token = match &grant.issuance.family {
        None => None,
        Some(family) => {
            let lifetime = client
                .refresh_token_ttl()
                .unwrap_or(state.config.lifetimes.refresh_token);
            let issued = state
                .store
                .issue_refresh(NewFamily {
                    id: family.clone(),
                    grant_id: grant.grant_id.clone(),
                    client_id: client.client_id.clone(),
                    sub: grant.sub.clone(),
                    scope: approved.scope.clone(),
                    lifetime: lifetime.max(Duration::from_secs(1)),
                    payload: serde_json::to_value(RefreshPayload {
                        auth_time: approved.auth_time,
                        amr: approved.amr.clone(),
                        sid: None,
                        // A public client's refresh tokens are bound to its DPoP key.
                        jkt: jkt.filter(|_| client.public).map(str::to_owned),
                    })
                    .unwrap_or_default(),
                    access_token: grant.issuance.access_token.clone(),
                })
                .await?;
            match issued {
                Some(issued) => Some(issued.token.secret().to_owned()),
                None => {
                    return Err(TokenError::invalid_grant(
                        "this device's sign-in was revoked; start again",
                    ));
                }
            }
        }
    };
    let scope = Scope::from(approved.scope.clone());
    let mut response = mint(
        state,
        Grant {
            client,
            sub: &grant.sub,
            scope: &scope,
            sid: None,
            auth_time: Some(approved.auth_time),
            amr: &approved.amr,
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
    response.refresh_token = refresh_token;
    Ok(response)
}
