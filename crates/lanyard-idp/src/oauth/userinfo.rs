//! UserInfo (OIDC Core §5.3): who the bearer of an access token is, by scope.

use serde_json::{Map, Value, json};

use crate::dpop::{Presented, SenderError, check_sender};
use crate::oauth::checks::scope::Scope;
use lanyard_core::Core;
use lanyard_core::model::User;
use lanyard_core::revocation::LiveError;

/// Why UserInfo refused (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserinfoError {
    /// 401 `invalid_token`, with this description.
    InvalidToken(String),
    /// 403 `insufficient_scope`: the token lacks `openid`.
    InsufficientScope,
    /// 401 `invalid_token` with a `DPoP` challenge: the token was sent with the wrong
    /// scheme for its binding (RFC 9449 §7.1).
    InvalidDpopToken(String),
    /// 401 `invalid_dpop_proof` (RFC 9449 §7.1), with this description.
    InvalidDpopProof(String),
    /// 401 `use_dpop_nonce` (RFC 9449 §8).
    UseDpopNonce,
    /// 503: the store or database is down; the token was not judged.
    Unavailable,
}

/// The claims for the holder of the token `presented`.
pub async fn userinfo(state: &Core, presented: &Presented<'_>) -> Result<Value, UserinfoError> {
    let claims = match lanyard_core::revocation::live_access_token(state, presented.token).await {
        Ok(claims) => claims,
        Err(LiveError::Invalid(description)) => {
            return Err(UserinfoError::InvalidToken(description));
        }
        Err(LiveError::Unavailable(e)) => {
            tracing::error!(error = %e, "revocation check failed");
            return Err(UserinfoError::Unavailable);
        }
    };
    match check_sender(state, claims.cnf.as_ref(), presented).await {
        Ok(()) => {}
        Err(SenderError::InvalidToken(d)) => return Err(UserinfoError::InvalidDpopToken(d)),
        Err(SenderError::InvalidProof(d)) => return Err(UserinfoError::InvalidDpopProof(d)),
        Err(SenderError::UseNonce) => return Err(UserinfoError::UseDpopNonce),
        Err(SenderError::Unavailable(e)) => {
            tracing::error!(error = %e, "DPoP replay check failed");
            return Err(UserinfoError::Unavailable);
        }
    }
    let scope = Scope::parse(&claims.scope).unwrap_or_default();
    if !scope.contains("openid") {
        return Err(UserinfoError::InsufficientScope);
    }
    let user = match state.db.users().recent(&claims.sub).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(Some(_)) => {
            return Err(UserinfoError::InvalidToken(
                "the user is disabled".to_owned(),
            ));
        }
        Ok(None) => {
            return Err(UserinfoError::InvalidToken(
                "the user no longer exists".to_owned(),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return Err(UserinfoError::Unavailable);
        }
    };
    let mut out = claims_for(&user, &scope);
    if scope.contains("groups") {
        match groups(state, &claims.client_id, &user.sub).await {
            Ok(Some(names)) => {
                out.insert("groups".to_owned(), json!(names));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "group lookup failed");
                return Err(UserinfoError::Unavailable);
            }
        }
    }
    // How the person signed in, as the access token says (OIDC Core §5.5.1.1 lets UserInfo
    // carry `acr`; apps that read UserInfo rather than the token see it too).
    if let Some(acr) = &claims.acr {
        out.insert("acr".to_owned(), json!(acr));
    }
    if !claims.amr.is_empty() {
        out.insert("amr".to_owned(), json!(claims.amr));
    }
    if let Some(auth_time) = claims.auth_time {
        out.insert("auth_time".to_owned(), json!(auth_time));
    }
    Ok(Value::Object(out))
}

/// The names of the user's groups, unless the client turned the `groups` claim off.
async fn groups(
    state: &Core,
    client_id: &str,
    sub: &str,
) -> Result<Option<Vec<String>>, lanyard_core::db::DbError> {
    let wanted = state
        .db
        .clients()
        .recent(client_id)
        .await?
        .is_some_and(|c| c.groups_claim);
    if !wanted {
        return Ok(None);
    }
    let (_, groups) = lanyard_core::access::token_claims(state, sub, &[], false, true).await?;
    Ok(Some(groups))
}

/// Standard claims by scope (OIDC Core §5.4).
pub fn claims_for(user: &User, scope: &Scope) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".to_owned(), json!(user.sub));
    if scope.contains("profile") {
        out.insert("preferred_username".to_owned(), json!(user.username));
        out.insert(
            "name".to_owned(),
            json!(
                user.display_name
                    .clone()
                    .unwrap_or_else(|| user.username.clone())
            ),
        );
        out.insert("updated_at".to_owned(), json!(user.updated_at.as_secs()));
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        out.insert("email".to_owned(), json!(email));
        // True only once a link mailed to this very address was followed (or an operator
        // said so); a changed address starts unverified.
        out.insert("email_verified".to_owned(), json!(user.email_verified));
    }
    out
}
