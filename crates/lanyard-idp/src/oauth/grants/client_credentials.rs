//! `client_credentials` (RFC 6749 §4.4): a confidential client acting for itself. No ID
//! token and no refresh token (§4.4.3).

use crate::oauth::checks::scope::Scope;
use crate::oauth::error::TokenError;
use crate::oauth::issue::{Grant, Held, TokenResponse, audience, mint};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::crypto::random_token;
use lanyard_core::model::{Client, GrantType};

/// Scopes that only make sense with a signed-in user.
const USER_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "groups"];

/// Mints an access token for the client itself.
pub async fn grant(
    state: &Core,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    if client.public || !client.allows(GrantType::ClientCredentials) {
        return Err(TokenError::unauthorized_client(
            "this client may not use client_credentials",
        ));
    }
    let scope = match params.get("scope") {
        Some(raw) => {
            let requested = Scope::parse(raw)
                .ok_or_else(|| TokenError::invalid_scope("scope has a malformed value"))?;
            if let Some(v) = requested
                .values()
                .iter()
                .find(|v| USER_SCOPES.contains(&v.as_str()))
            {
                return Err(TokenError::invalid_scope(format!(
                    "scope {v} needs a signed-in user"
                )));
            }
            if let Some(v) = requested.first_not_allowed(client) {
                return Err(TokenError::invalid_scope(format!(
                    "scope {v} is not allowed for this client"
                )));
            }
            requested
        }
        // Omitted: every scope the client may have, user scopes aside (RFC 6749 §3.3).
        None => Scope::from(
            client
                .scopes
                .iter()
                .filter(|s| !USER_SCOPES.contains(&s.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        ),
    };
    mint(
        state,
        Grant {
            client,
            sub: &client.client_id,
            scope: &scope,
            sid: None,
            auth_time: None,
            amr: &[],
            nonce: None,
            jti: random_token(16),
            audience: audience(state, client, params).await?,
            held: Held::default(),
            jkt: jkt.map(str::to_owned),
            delegation: None,
        },
        state.clock.now(),
    )
    .await
}
