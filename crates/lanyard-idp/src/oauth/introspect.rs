//! Token introspection (RFC 7662), for authenticated confidential clients. A token is
//! `active` only when it is ours, unexpired, not revoked, its user still enabled, and the
//! asking client is the token's client or one of its audiences (§4: a resource server learns
//! nothing about tokens that are not meant for it). Everything else is `{"active": false}`.

use lanyard_store::Verdict;
use serde_json::{Value, json};

use crate::oauth::error::TokenError;
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::{Acr, Client, RefreshPayload};
use lanyard_core::revocation;

fn inactive() -> Value {
    json!({ "active": false })
}

/// The introspection response for the `token` presented by `client`.
pub async fn introspect(
    state: &Core,
    client: &Client,
    params: &Params,
) -> Result<Value, TokenError> {
    let token = params
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::invalid_request("token is missing"))?;
    if params.get("token_type_hint") == Some("refresh_token") {
        if let Some(answer) = refresh_token(state, client, token).await? {
            return Ok(answer);
        }
        return access_token(state, client, token).await;
    }
    match access_token(state, client, token).await? {
        answer if answer["active"] == true => Ok(answer),
        _ => Ok(refresh_token(state, client, token)
            .await?
            .unwrap_or_else(inactive)),
    }
}

async fn access_token(state: &Core, client: &Client, token: &str) -> Result<Value, TokenError> {
    let Ok(claims) = state.keys.verify_access_token(token, &state.config.issuer) else {
        return Ok(inactive());
    };
    // The verifier allows a few seconds of clock skew; introspection answers for now.
    if claims.exp <= state.clock.now().as_secs() {
        return Ok(inactive());
    }
    let id = &client.client_id;
    if &claims.client_id != id && !claims.aud.contains(id) {
        return Ok(inactive());
    }
    let facts = claims.facts();
    if let Verdict::Revoked(_) = revocation::check(state, &facts).await? {
        return Ok(inactive());
    }
    // A user's token dies with the user; a client's own token (client_credentials) has the
    // client as its subject.
    let username = if claims.sub == claims.client_id && claims.sid.is_none() {
        None
    } else {
        match state.db.users().recent(&claims.sub).await? {
            Some(user) if !user.disabled => Some(user.username),
            _ => return Ok(inactive()),
        }
    };
    let mut answer = json!({
        "active": true,
        "scope": claims.scope,
        "client_id": claims.client_id,
        "token_type": if claims.cnf.is_some() { "DPoP" } else { "Bearer" },
        "exp": claims.exp,
        "iat": claims.iat,
        "nbf": claims.iat,
        "sub": claims.sub,
        "aud": claims.aud,
        "iss": claims.iss,
        "jti": claims.jti,
    });
    if let Some(username) = username {
        answer["username"] = json!(username);
    }
    // RFC 9449 §6.2: the key a bound token needs, for the resource server to check.
    if let Some(cnf) = &claims.cnf {
        answer["cnf"] = json!({ "jkt": cnf.jkt });
    }
    if let Some(act) = &claims.act {
        answer["act"] = json!(act);
    }
    if let Some(sid) = claims.sid {
        answer["sid"] = json!(sid);
    }
    if let Some(acr) = claims.acr {
        answer["acr"] = json!(acr);
    }
    if !claims.amr.is_empty() {
        answer["amr"] = json!(claims.amr);
    }
    if let Some(auth_time) = claims.auth_time {
        answer["auth_time"] = json!(auth_time);
    }
    Ok(answer)
}

/// `Some` when `token` is one of our refresh tokens; only its own client learns about it,
/// and only the current token of a family is active (a rotated one would be reuse).
async fn refresh_token(
    state: &Core,
    client: &Client,
    token: &str,
) -> Result<Option<Value>, TokenError> {
    let Some(info) = state.store.inspect_refresh(token).await? else {
        return Ok(None);
    };
    let family = info.family;
    if family.client_id != client.client_id || !info.current {
        return Ok(Some(inactive()));
    }
    let Some(user) = state
        .db
        .users()
        .recent(&family.sub)
        .await?
        .filter(|u| !u.disabled)
    else {
        return Ok(Some(inactive()));
    };
    let mut answer = json!({
        "active": true,
        "scope": family.scope.join(" "),
        "client_id": family.client_id,
        "username": user.username,
        "token_type": "refresh_token",
        "exp": family.expires_at.as_secs(),
        "iat": family.created_at.as_secs(),
        "nbf": family.created_at.as_secs(),
        "sub": family.sub,
        "aud": [family.client_id.clone()],
        "iss": state.config.issuer,
    });
    if let Some(sid) = family.sid() {
        answer["sid"] = json!(sid.to_string());
    }
    // How the person signed in when the family began (a later step-up does not raise it).
    if let Ok(payload) = serde_json::from_value::<RefreshPayload>(family.payload.clone()) {
        answer["acr"] = json!(Acr::of(&payload.amr).as_str());
        answer["amr"] = json!(payload.amr);
        answer["auth_time"] = json!(payload.auth_time);
    }
    Ok(Some(answer))
}
