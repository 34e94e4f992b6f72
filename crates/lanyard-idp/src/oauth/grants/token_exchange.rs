//! Token exchange (RFC 8693): an API that received a person's access token gets one meant
//! for another API, to call it on the person's behalf.
//!
//! What Lanyard accepts (and why):
//! - the requesting client is confidential, may use the grant, and names the downstream API
//!   with `audience` or `resource` (a client id), one of its `exchange_audiences` (§2.1;
//!   `invalid_target` otherwise, §2.2.2);
//! - `subject_token` is one of Lanyard's access tokens (`subject_token_type`
//!   `urn:ietf:params:oauth:token-type:access_token`), valid now, not revoked, its person
//!   still enabled, and **meant for the requesting client** (one of its audiences): an API
//!   exchanges what it was sent, never a token it merely saw. An ID token is not a grant;
//!   `actor_token` is not taken (the authenticated client is the actor);
//! - the new token carries the person (`sub`, `sid`, `auth_time`, `acr`, `amr`), the scope
//!   asked for (a subset of the subject token's; by default all of it but `offline_access`),
//!   the roles the person holds at the downstream API, `act` naming the requesting client
//!   with the earlier actors nested (§4.1), and `origin`, the person's first token. It never
//!   outlives the subject token. No refresh token, no ID token.
//!
//! Revocation follows it: the person, the session, the first token (or its refresh family),
//! and the person's grant at any client of the chain each revoke it (see
//! `lanyard_store::TokenFacts::clients`).

use lanyard_store::{Actor, Origin, Timestamp, Verdict};

use crate::oauth::checks::scope::Scope;
use crate::oauth::error::TokenError;
use crate::oauth::issue::{Delegation, Grant, TokenResponse, held, mint};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::crypto::random_token;
use lanyard_core::model::{AuditEvent, Client, GrantType};
use lanyard_core::revocation;
use lanyard_core::tokens::AccessClaims;

/// The token type of an access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// The token type of an ID token.
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// The token type of a JWT: Lanyard's access tokens are JWTs, so asking for one is fine.
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// How many clients may act in a row: a chain longer than this is refused.
pub const MAX_ACTORS: usize = 4;

/// Exchanges the subject token for a token meant for the named downstream API.
pub async fn exchange(
    state: &Core,
    client: &Client,
    params: &Params,
    jkt: Option<&str>,
) -> Result<TokenResponse, TokenError> {
    if client.public || !client.allows(GrantType::TokenExchange) {
        return Err(TokenError::unauthorized_client(
            "this client may not use token exchange",
        ));
    }
    let target = target(client, params)?;
    match state.db.clients().recent(target).await? {
        Some(api) if !api.settings.disabled => {}
        _ => {
            return Err(TokenError::invalid_target(format!(
                "{target} is not a registered client that is turned on"
            )));
        }
    }
    if let Some(wanted) = params.get("requested_token_type")
        && wanted != ACCESS_TOKEN_TYPE
        && wanted != JWT_TOKEN_TYPE
    {
        return Err(TokenError::invalid_request(format!(
            "requested_token_type {wanted} is not issued here (use {ACCESS_TOKEN_TYPE})"
        )));
    }
    if params.get("actor_token").is_some() || params.get("actor_token_type").is_some() {
        return Err(TokenError::invalid_request(
            "actor_token is not taken: the authenticated client is the actor",
        ));
    }
    let subject = subject(state, client, params).await?;
    let scope = scope(&subject, params)?;
    let now = state.clock.now();
    let act = Actor {
        sub: client.client_id.clone(),
        act: subject.act.clone().map(Box::new),
    };
    if act.chain().count() > MAX_ACTORS {
        return Err(TokenError::invalid_request(format!(
            "the subject token has been exchanged too many times (at most {MAX_ACTORS} clients may act in a row)"
        )));
    }
    let origin = subject.origin.clone().unwrap_or_else(|| Origin {
        client_id: subject.client_id.clone(),
        jti: subject.jti.clone(),
    });
    let audience = vec![target.to_owned()];
    let held = if subject.auth_time.is_some() {
        held(
            state,
            client,
            &audience,
            &subject.sub,
            scope.contains("groups"),
        )
        .await?
    } else {
        Default::default()
    };
    let jti = random_token(16);
    let mut issued = mint(
        state,
        Grant {
            client,
            sub: &subject.sub,
            scope: &scope,
            sid: subject.sid.as_deref(),
            auth_time: subject.auth_time,
            amr: &subject.amr,
            nonce: None,
            jti: jti.clone(),
            audience,
            held,
            jkt: jkt.map(str::to_owned),
            delegation: Some(Delegation {
                act,
                origin,
                not_after: Timestamp::from_secs(subject.exp),
            }),
        },
        now,
    )
    .await?;
    issued.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    let event = AuditEvent::new(
        now,
        format!("client:{}", client.client_id),
        "token.exchange",
    )
    .target(&subject.sub)
    .detail_json(
        serde_json::json!({
            "jti": jti,
            "subject_jti": subject.jti,
            "audience": target,
        })
        .to_string(),
    );
    state.audit.record(event).await;
    Ok(issued)
}

/// The downstream API: `audience` or `resource` (the same client id if both), one of the
/// client's `exchange_audiences`.
fn target<'p>(client: &Client, params: &'p Params) -> Result<&'p str, TokenError> {
    let target = match (params.get("audience"), params.get("resource")) {
        (Some(a), Some(r)) if a != r => {
            return Err(TokenError::invalid_target(
                "audience and resource name different APIs; name one",
            ));
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => {
            return Err(TokenError::invalid_request(
                "name the API the new token is for with audience (its client id)",
            ));
        }
    };
    if !client.exchange_audiences.iter().any(|a| a == target) {
        return Err(TokenError::invalid_target(format!(
            "this client may not exchange tokens for {target} (not one of its exchange audiences)"
        )));
    }
    Ok(target)
}

/// The subject token's claims, when it is a live access token of ours meant for `client`.
async fn subject(
    state: &Core,
    client: &Client,
    params: &Params,
) -> Result<AccessClaims, TokenError> {
    let token = params
        .get("subject_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| TokenError::invalid_request("subject_token is missing"))?;
    match params.get("subject_token_type") {
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(ID_TOKEN_TYPE) => {
            return Err(TokenError::invalid_request(
                "an ID token says who signed in; it grants nothing: exchange the access token you received",
            ));
        }
        Some(other) => {
            return Err(TokenError::invalid_request(format!(
                "subject_token_type {other} is not taken (use {ACCESS_TOKEN_TYPE})"
            )));
        }
        None => {
            return Err(TokenError::invalid_request("subject_token_type is missing"));
        }
    }
    let claims = state
        .keys
        .verify_access_token(token, &state.config.issuer)
        .map_err(|r| TokenError::invalid_request(format!("subject_token is not valid: {r}")))?;
    // The verifier allows a little clock skew; an exchange is judged on now.
    if claims.exp <= state.clock.now().as_secs() {
        return Err(TokenError::invalid_request("subject_token has expired"));
    }
    if !claims.aud.contains(&client.client_id) {
        return Err(TokenError::invalid_request(
            "subject_token was not issued for this client: exchange only a token sent to you",
        ));
    }
    if let Verdict::Revoked(by) = revocation::check(state, &claims.facts()).await? {
        return Err(TokenError::invalid_request(format!(
            "subject_token is revoked: {}",
            by.description()
        )));
    }
    // A person's token lives only while the person is enabled.
    if claims.auth_time.is_some() {
        match state.db.users().recent(&claims.sub).await? {
            Some(user) if !user.disabled => {}
            _ => {
                return Err(TokenError::invalid_request(
                    "subject_token's user is disabled or gone",
                ));
            }
        }
    }
    Ok(claims)
}

/// The scope asked for, within the subject token's; by default all of it but
/// `offline_access` (no refresh token is issued).
fn scope(subject: &AccessClaims, params: &Params) -> Result<Scope, TokenError> {
    let granted = Scope::parse(&subject.scope).unwrap_or_default();
    match params.get("scope") {
        Some(raw) => {
            let requested = Scope::parse(raw)
                .ok_or_else(|| TokenError::invalid_scope("scope has a malformed value"))?;
            if let Some(v) = requested.values().iter().find(|v| !granted.contains(v)) {
                return Err(TokenError::invalid_scope(format!(
                    "scope {v} was not granted to the subject token"
                )));
            }
            Ok(requested)
        }
        None => Ok(Scope::from(
            granted
                .values()
                .iter()
                .filter(|v| *v != "offline_access")
                .cloned()
                .collect::<Vec<_>>(),
        )),
    }
}
