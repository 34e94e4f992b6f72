//! Minting tokens: the access token (RFC 9068), the ID token (OIDC Core §2), and the token
//! response (RFC 6749 §5.1).

use std::time::Duration;

use lanyard_store::Timestamp;
use serde::Serialize;

use crate::oauth::checks::scope::Scope;
use crate::oauth::error::TokenError;
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::Client;
use lanyard_core::model::{Acr, AuditEvent};
use lanyard_core::tokens::{ACCESS_TOKEN_TYP, AccessClaims, ID_TOKEN_TYP, IdClaims, at_hash};

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to a key (RFC 9449 §5).
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The refresh token, when one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scope.
    pub scope: String,
    /// Token exchange only: what `access_token` is (RFC 8693 §2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// Who and what a set of tokens is for.
pub struct Grant<'a> {
    /// The client.
    pub client: &'a Client,
    /// The user (or the client itself for `client_credentials`).
    pub sub: &'a str,
    /// Granted scope.
    pub scope: &'a Scope,
    /// The SSO session, if a user signed in.
    pub sid: Option<&'a str>,
    /// When the user authenticated (seconds).
    pub auth_time: Option<i64>,
    /// How.
    pub amr: &'a [String],
    /// For the ID token.
    pub nonce: Option<&'a str>,
    /// The access token's `jti`.
    pub jti: String,
    /// The access token's `aud` (see [`audience`]).
    pub audience: Vec<String>,
    /// What the person holds (see [`held`]); nothing for a client acting for itself.
    pub held: Held,
    /// The thumbprint of the DPoP key the access token is bound to (RFC 9449), if any.
    pub jkt: Option<String>,
    /// For token exchange (RFC 8693): the client acts on someone's behalf.
    pub delegation: Option<Delegation>,
}

/// A token issued by token exchange: on whose authority, and for how long at most.
#[derive(Debug, Clone)]
pub struct Delegation {
    /// The `act` claim: the exchanging client, and the actors before it.
    pub act: lanyard_store::Actor,
    /// The person's first token.
    pub origin: lanyard_store::Origin,
    /// The subject token's expiry: the new token never outlives it.
    pub not_after: Timestamp,
}

/// The roles and groups a person holds, as their tokens will carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// The roles at the token's audience (only audiences that want the claim).
    pub roles: Vec<String>,
    /// The person's groups (read only when the `groups` scope may be granted).
    pub groups: Vec<String>,
}

/// The audience of an access token (RFC 8707 §2): by default the client itself; with
/// `resource`, another registered client (an API) that is one of this client's `resources`.
/// One `resource` per request.
pub async fn audience(
    state: &Core,
    client: &Client,
    params: &Params,
) -> Result<Vec<String>, TokenError> {
    let Some(resource) = params.get("resource") else {
        return Ok(vec![client.client_id.clone()]);
    };
    if !client.may_address(resource) {
        return Err(TokenError::invalid_target(format!(
            "{resource} is not one of the resources registered for this client"
        )));
    }
    if resource == client.client_id || state.db.clients().get(resource).await?.is_some() {
        Ok(vec![resource.to_owned()])
    } else {
        Err(TokenError::invalid_target(format!(
            "{resource} is not a resource registered here"
        )))
    }
}

/// The access-token lifetime for a client.
pub fn access_token_lifetime(state: &Core, client: &Client) -> Duration {
    client
        .access_token_ttl()
        .unwrap_or(state.config.lifetimes.access_token)
}

/// Signs the access token and, with `openid`, the ID token; returns the response without a
/// refresh token.
pub async fn mint(
    state: &Core,
    grant: Grant<'_>,
    now: Timestamp,
) -> Result<TokenResponse, TokenError> {
    let mut lifetime = access_token_lifetime(state, grant.client);
    if let Some(d) = &grant.delegation {
        lifetime = lifetime.min(now.until(d.not_after));
    }
    let issuer = &state.config.issuer;
    // Groups only with the scope actually granted (a refresh may have narrowed it).
    let groups = if grant.scope.contains("groups") {
        grant.held.groups.clone()
    } else {
        Vec::new()
    };
    let access = AccessClaims {
        iss: issuer.clone(),
        sub: grant.sub.to_owned(),
        aud: grant.audience.clone(),
        exp: now.plus(lifetime).as_secs(),
        iat: now.as_secs(),
        jti: grant.jti.clone(),
        client_id: grant.client.client_id.clone(),
        origin: grant.delegation.as_ref().map(|d| d.origin.clone()),
        act: grant.delegation.as_ref().map(|d| d.act.clone()),
        cnf: grant
            .jkt
            .clone()
            .map(|jkt| lanyard_core::tokens::Confirmation { jkt }),
        scope: grant.scope.to_wire(),
        sid: grant.sid.map(str::to_owned),
        auth_time: grant.auth_time,
        // A person signed in: how strongly. A client alone has no `acr`.
        acr: grant
            .auth_time
            .map(|_| Acr::of(grant.amr).as_str().to_owned()),
        amr: grant.amr.to_vec(),
        roles: grant.held.roles.clone(),
        groups: groups.clone(),
    };
    let scope = access.scope.clone();
    let access_token = state.keys.sign(ACCESS_TOKEN_TYP, &access).await?;
    // An exchanged token acts for a person who signed in elsewhere: no ID token (RFC 8693).
    let id_token = if grant.scope.contains("openid") && grant.delegation.is_none() {
        let id_lifetime = grant
            .client
            .id_token_ttl()
            .unwrap_or(state.config.lifetimes.id_token);
        let claims = IdClaims {
            iss: issuer.clone(),
            sub: grant.sub.to_owned(),
            aud: grant.client.client_id.clone(),
            exp: now.plus(id_lifetime).as_secs(),
            iat: now.as_secs(),
            auth_time: grant.auth_time.unwrap_or(now.as_secs()),
            acr: access.acr.clone(),
            nonce: grant.nonce.map(str::to_owned),
            sid: grant.sid.map(str::to_owned),
            at_hash: Some(at_hash(&access_token)),
            amr: grant.amr.to_vec(),
            groups,
        };
        Some(state.keys.sign(ID_TOKEN_TYP, &claims).await?)
    } else {
        None
    };
    let event = AuditEvent::new(
        now,
        format!("client:{}", grant.client.client_id),
        "token.issue",
    )
    .target(grant.sub)
    .detail_json(issue_detail(&grant.jti, &scope, id_token.is_some()));
    state.audit.record(event).await;
    Ok(TokenResponse {
        access_token,
        token_type: if grant.jkt.is_some() {
            "DPoP"
        } else {
            "Bearer"
        },
        expires_in: lifetime.as_secs(),
        id_token,
        refresh_token: None,
        scope,
        issued_token_type: None,
    })
}

/// What `sub` holds, for their tokens at `audience`: the roles at each audience that wants
/// the claim and, when `groups` (the grant may carry the `groups` scope), their groups.
/// Read fresh from SQL, so a token made after a change reflects it. The grants call this
/// **before** they spend a code or a refresh token: if the database is down, the 503 leaves
/// it for the client's retry.
pub async fn held(
    state: &Core,
    client: &Client,
    audience: &[String],
    sub: &str,
    groups: bool,
) -> Result<Held, TokenError> {
    let mut wanted = Vec::with_capacity(audience.len());
    for aud in audience {
        let wants_roles = if *aud == client.client_id {
            client.roles_claim
        } else {
            state
                .db
                .clients()
                .recent(aud)
                .await?
                .is_some_and(|c| c.roles_claim)
        };
        if wants_roles {
            wanted.push(aud.clone());
        }
    }
    let groups = groups && client.groups_claim;
    let (roles, groups) =
        lanyard_core::access::token_claims(state, sub, &wanted, true, groups).await?;
    Ok(Held { roles, groups })
}

/// The audit detail of an issued token: `{"jti":…,"scope":…,"id_token":…}`, serialised
/// from a struct (no map built per token).
fn issue_detail(jti: &str, scope: &str, id_token: bool) -> String {
    #[derive(Serialize)]
    struct Detail<'a> {
        jti: &'a str,
        scope: &'a str,
        id_token: bool,
    }
    serde_json::to_string(&Detail {
        jti,
        scope,
        id_token,
    })
    .unwrap_or_default()
}
