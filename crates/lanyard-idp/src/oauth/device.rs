//! The device authorization grant (RFC 8628): a device without a browser (a command-line
//! tool, a TV) asks at the device authorization endpoint (§3.1–3.2), shows the person a
//! short code, and polls the token endpoint (`grants/device_code.rs`) while the person
//! approves or denies it at `{issuer}/device` with their SSO session (§3.3, this module's
//! [`approve`] and [`deny`]).
//!
//! What a device is given (Lanyard's choices, `docs/protocols.md`): the tokens of the person
//! who approved, with the scope the device asked for; a refresh token when the client may
//! refresh, in a family of its own, not bound to the browser session that approved it (a TV
//! stays signed in when the person signs out of their laptop; revoking the person or the app
//! ends it). Approving is consenting: an app that is not first-party is remembered as
//! allowed on the person's account page, where it can be withdrawn.

use lanyard_store::{
    AccessTokenRef, CodeGrant, DeviceDecision, FamilyId, GrantId, Issuance, NewDeviceGrant,
    PendingDevice, Session, UserCode,
};
use serde::{Deserialize, Serialize};

use crate::oauth::checks::scope::Scope;
use crate::oauth::discovery::paths;
use crate::oauth::error::{AuthorizeError, TokenError};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::config::MAX_CLIENT_TOKEN_LIFETIME;
use lanyard_core::crypto::random_token;
use lanyard_core::model::{Client, GrantType};

/// The device authorization response (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    /// What the device polls with.
    pub device_code: String,
    /// What the person types, as `XXXX-XXXX`.
    pub user_code: String,
    /// Where the person goes: `{issuer}/device`.
    pub verification_uri: String,
    /// The same with the code filled in (for a QR code or a link).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: u64,
    /// Seconds the device waits between polls.
    pub interval: u64,
}

/// What the device asked for, kept with its request (the store's `payload`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// The scope asked for (each value allowed for the client).
    pub scope: Vec<String>,
}

/// What the person approved, kept with the grant until the device collects its tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovedDevice {
    /// The scope granted.
    pub scope: Vec<String>,
    /// When the person authenticated (seconds).
    pub auth_time: i64,
    /// How.
    pub amr: Vec<String>,
}

/// How many fresh user codes to try before giving up (a clash is rare: 20^8 codes).
const USER_CODE_TRIES: usize = 5;

/// The device authorization endpoint's answer for an authenticated `client`.
pub async fn start(
    state: &Core,
    client: &Client,
    params: &Params,
) -> Result<DeviceAuthorization, TokenError> {
    if !client.allows(GrantType::DeviceCode) {
        return Err(TokenError::unauthorized_client(
            "this client may not use the device authorization grant (register it with --grant-type urn:ietf:params:oauth:grant-type:device_code)",
        ));
    }
    let scope = Scope::parse(params.get("scope").unwrap_or(""))
        .ok_or_else(|| TokenError::invalid_scope("scope has a malformed value"))?;
    if let Some(value) = scope.first_not_allowed(client) {
        return Err(TokenError::invalid_scope(format!(
            "scope {value} is not allowed for this client"
        )));
    }
    let lifetime = state.config.lifetimes.device_code;
    let interval = state.config.lifetimes.device_poll;
    let payload = serde_json::to_value(DeviceRequest {
        scope: scope.values().to_vec(),
    })
    .map_err(|_| TokenError::server_error())?;
    for _ in 0..USER_CODE_TRIES {
        let user_code = UserCode::generate();
        let new = NewDeviceGrant {
            client_id: client.client_id.clone(),
            user_code: user_code.clone(),
            lifetime,
            interval,
            payload: payload.clone(),
        };
        if let Some(device_code) = state.store.put_device(&new).await? {
            let verification_uri = state.config.url(paths::DEVICE);
            return Ok(DeviceAuthorization {
                device_code: device_code.secret().to_owned(),
                verification_uri_complete: format!(
                    "{verification_uri}?user_code={}",
                    user_code.display()
                ),
                user_code: user_code.display(),
                verification_uri,
                expires_in: lifetime.as_secs(),
                interval: interval.as_secs(),
            });
        }
    }
    Err(TokenError::unavailable(
        "no free user code was found; try again",
    ))
}

/// A request waiting for the person, with its app, as the verification page shows it.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The code, as the person typed it (normalised).
    pub user_code: UserCode,
    /// The app that asks.
    pub client: Client,
    /// What it asks for.
    pub scope: Vec<String>,
}

/// The live request behind a code the person typed. `None`: no such request waits (unknown,
/// expired, decided, or its app is gone or turned off).
pub async fn find(state: &Core, typed: &str) -> Result<Option<Waiting>, AuthorizeError> {
    let Some(user_code) = UserCode::parse(typed) else {
        return Ok(None);
    };
    let Some(pending) = state.store.pending_device(user_code.as_str()).await? else {
        return Ok(None);
    };
    waiting(state, user_code, pending).await
}

async fn waiting(
    state: &Core,
    user_code: UserCode,
    pending: PendingDevice,
) -> Result<Option<Waiting>, AuthorizeError> {
    let request: DeviceRequest = serde_json::from_value(pending.payload)
        .map_err(|e| AuthorizeError::Unavailable(format!("stored device request: {e}")))?;
    let client = state.db.clients().recent(&pending.client_id).await?;
    Ok(client
        .filter(|c| !c.settings.disabled && c.allows(GrantType::DeviceCode))
        .map(|client| Waiting {
            user_code,
            client,
            scope: request.scope,
        }))
}

/// The person of `session` approves `waiting`. `false`: it was decided (or expired) meanwhile.
pub async fn approve(
    state: &Core,
    waiting: &Waiting,
    session: &Session,
) -> Result<bool, AuthorizeError> {
    let now = state.clock.now();
    let client = &waiting.client;
    let issuance = Issuance {
        access_token: Some(AccessTokenRef {
            jti: random_token(16),
            expires_at: now
                .plus(state.config.lifetimes.device_code)
                .plus(MAX_CLIENT_TOKEN_LIFETIME)
                .plus(std::time::Duration::from_secs(60)),
        }),
        family: client
            .allows(GrantType::RefreshToken)
            .then(|| FamilyId::generate(None)),
    };
    let approved = ApprovedDevice {
        scope: waiting.scope.clone(),
        auth_time: session.auth_time.as_secs(),
        amr: session.amr.clone(),
    };
    let grant = CodeGrant {
        grant_id: GrantId::generate(),
        client_id: client.client_id.clone(),
        sub: session.sub.clone(),
        sid: None,
        issuance,
        payload: serde_json::to_value(&approved)
            .map_err(|e| AuthorizeError::Unavailable(e.to_string()))?,
    };
    let decided = state
        .store
        .decide_device(
            waiting.user_code.as_str(),
            &DeviceDecision::Approve(grant.clone()),
        )
        .await?;
    if decided {
        if !client.first_party {
            lanyard_core::consents::grant(state, &session.sub, &client.client_id, &waiting.scope)
                .await?;
        }
        let event = state
            .event(session.sub.clone(), "device.approve")
            .target(format!("client_id:{}", client.client_id))
            .detail(serde_json::json!({ "grant_id": grant.grant_id.to_string(), "scope": waiting.scope }));
        state.audit.record(event).await;
    }
    Ok(decided)
}

/// The person of `session` denies `waiting`. `false`: it was decided (or expired) meanwhile.
pub async fn deny(
    state: &Core,
    waiting: &Waiting,
    session: &Session,
) -> Result<bool, AuthorizeError> {
    let decided = state
        .store
        .decide_device(waiting.user_code.as_str(), &DeviceDecision::Deny)
        .await?;
    if decided {
        let event = state
            .event(session.sub.clone(), "device.deny")
            .target(format!("client_id:{}", waiting.client.client_id));
        state.audit.record(event).await;
    }
    Ok(decided)
}
