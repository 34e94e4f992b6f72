//! The authorization endpoint's protocol logic (RFC 6749 §4.1.1, OIDC Core §3.1.2): a list of
//! checks turning raw parameters into an [`AuthorizationRequest`], the decision whether the
//! user must sign in, and the issuing of the code.
//!
//! Order matters (RFC 6749 §4.1.2.1): until the client and redirect URI are verified, every
//! error is a page and nothing is redirected; after that, errors go back to the client.

use std::time::Duration;

use lanyard_store::{
    AccessTokenRef, AuthorizationCode, CodeGrant, FamilyId, GrantId, Issuance, Session, Timestamp,
};

use crate::oauth::checks::{acr, pkce, prompt::Prompt, scope::Scope};
use crate::oauth::code::CodePayload;
use crate::oauth::error::AuthorizeError;
use crate::oauth::reply::{AuthorizationResponse, ReplyTo, ResponseMode};
use crate::oauth::request::AuthorizationRequest;
use crate::params::{Params, ParamsError};
use lanyard_core::Core;
use lanyard_core::config::MAX_CLIENT_TOKEN_LIFETIME;
use lanyard_core::crypto::random_token;
use lanyard_core::model::RedirectUri;
use lanyard_core::model::{Acr, Client, GrantType};
use lanyard_core::tokens::IdTokenHint;

/// The longest `state` and `nonce` accepted.
const MAX_ECHOED: usize = 2048;

/// The parameters of an authorization request (RFC 6749 §3.1): the query string and, for a
/// POST, the form body (`form`). A parameter in both counts as sent twice.
pub fn parameters(query: Option<&str>, form: Option<&[u8]>) -> Result<Params, ParamsError> {
    let from_query = Params::parse(query.unwrap_or("").as_bytes())?;
    match form {
        None => Ok(from_query),
        Some(body) => Ok(Params::parse(body)?.merge(from_query)),
    }
}

/// The first checks: which client, and whether its redirect URI can be trusted. Errors are
/// pages.
pub fn identify(params: &Params) -> Result<(&str, &str), AuthorizeError> {
    for name in ["client_id", "redirect_uri"] {
        if params.is_duplicated(name) {
            return Err(AuthorizeError::page(
                "This sign-in link is broken",
                format!(
                    "The request names its {name} twice. Go back to the application and try again; if this keeps happening, tell the application's developers."
                ),
            ));
        }
    }
    let client_id = params.get("client_id").ok_or_else(|| {
        AuthorizeError::page(
            "This sign-in link is broken",
            "The request does not say which application it is for (client_id is missing). Go back to the application and try again.",
        )
    })?;
    let redirect = params.get("redirect_uri").ok_or_else(|| {
        AuthorizeError::page(
            "This sign-in link is broken",
            "The request does not say where to return after sign-in (redirect_uri is missing). Go back to the application and try again.",
        )
    })?;
    Ok((client_id, redirect))
}

/// The page shown for an unknown client.
pub fn unknown_client() -> AuthorizeError {
    AuthorizeError::page(
        "Unknown application",
        "The application that sent you here is not registered with this sign-in service. Go back to it and tell its administrators.",
    )
}

/// Every other check, with the client loaded. After the redirect URI matches, errors go back
/// to the client.
/// `issuer` is what the answer names as `iss` (RFC 9207).
pub fn validate(
    params: &Params,
    client: Client,
    issuer: &str,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let (_, requested) = identify(params)?;
    if client.settings.disabled {
        return Err(AuthorizeError::page(
            "This application is turned off",
            "Its administrators turned sign-in to it off, so you cannot sign in to it now. Go back, or ask them if you need it.",
        ));
    }
    let Some(redirect_uri) = RedirectUri::matching(&client.redirect_uris, requested) else {
        return Err(AuthorizeError::page(
            "This sign-in link is not allowed",
            "The address to return to after sign-in is not registered for this application, so you will not be sent there. Go back to the application and tell its administrators.",
        ));
    };
    let mut reply = ReplyTo {
        redirect_uri,
        mode: ResponseMode::Query,
        state: params.get("state").map(str::to_owned),
        iss: issuer.to_owned(),
    };
    let fail = |reply: &ReplyTo, code: &'static str, description: &str| AuthorizeError::Redirect {
        to: reply.clone(),
        code,
        description: description.to_owned(),
    };
    match params.get("response_mode") {
        None | Some("query") => {}
        Some("form_post") => reply.mode = ResponseMode::FormPost,
        Some(_) => {
            return Err(fail(
                &reply,
                "invalid_request",
                "unsupported response_mode (use query or form_post)",
            ));
        }
    }
    if let Some(name) = params.duplicated() {
        return Err(fail(
            &reply,
            "invalid_request",
            &format!("{name} is sent more than once"),
        ));
    }
    if reply.state.as_ref().is_some_and(|s| s.len() > MAX_ECHOED) {
        reply.state = None;
        return Err(fail(&reply, "invalid_request", "state is too long"));
    }
    if params.get("request").is_some() {
        return Err(fail(
            &reply,
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            &reply,
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(fail(
                &reply,
                "invalid_request",
                "response_type is missing (use code)",
            ));
        }
        Some(_) => {
            return Err(fail(
                &reply,
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(fail(
            &reply,
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let scope = Scope::parse(params.get("scope").unwrap_or(""))
        .ok_or_else(|| fail(&reply, "invalid_scope", "scope has a malformed value"))?;
    if !scope.contains("openid") {
        return Err(fail(&reply, "invalid_scope", "scope must include openid"));
    }
    if let Some(value) = scope.first_not_allowed(&client) {
        return Err(fail(
            &reply,
            "invalid_scope",
            &format!("scope {value} is not allowed for this client"),
        ));
    }
    let method = params.get("code_challenge_method");
    let code_challenge = match params.get("code_challenge") {
        Some(challenge) => {
            pkce::check_challenge(challenge, method)
                .map_err(|e| fail(&reply, "invalid_request", e))?;
            Some(challenge.to_owned())
        }
        None if method.is_some() => {
            return Err(fail(
                &reply,
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        None if client.public => {
            return Err(fail(
                &reply,
                "invalid_request",
                "public clients must use PKCE (code_challenge with S256)",
            ));
        }
        None => None,
    };
    let prompt =
        Prompt::parse(params.get("prompt")).map_err(|e| fail(&reply, "invalid_request", e))?;
    let max_age = params
        .get("max_age")
        .map(|v| v.parse::<u64>())
        .transpose()
        .map_err(|_| {
            fail(
                &reply,
                "invalid_request",
                "max_age must be a number of seconds",
            )
        })?;
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_ECHOED) {
        return Err(fail(&reply, "invalid_request", "nonce is too long"));
    }
    let acr = acr::requested(params.get("acr_values"), params.get("claims"))
        .map_err(|e| fail(&reply, "invalid_request", e))?;
    Ok(AuthorizationRequest {
        client,
        reply,
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: params.get("login_hint").map(str::to_owned),
        id_token_hint: params.get("id_token_hint").map(str::to_owned),
        acr,
    })
}

/// What to do with a valid request.
#[derive(Debug)]
pub enum Next {
    /// The session answers the request: issue a code without showing anything (single
    /// sign-on).
    Issue(Box<Session>),
    /// The session is the user's, but weaker than the app needs: ask for the factor that is
    /// missing, then issue.
    StepUp(Box<Session>),
    /// The user must sign in (again).
    SignIn,
}

/// Decides between single sign-on and the sign-in page (OIDC Core §3.1.2.3, §3.1.2.6).
pub fn decide(
    request: &AuthorizationRequest,
    session: Option<Session>,
    hint: Option<&IdTokenHint>,
    now: Timestamp,
    required: Acr,
) -> Result<Next, AuthorizeError> {
    let usable = session.filter(|s| {
        // max_age=0 asks for a sign-in now, like prompt=login (OIDC Core §3.1.2.1). Compared
        // in milliseconds: 1.1 s after a sign-in, max_age=1 has passed even when both instants
        // fall within whole seconds one apart (the conformance suite's oidcc-max-age-1).
        let fresh_enough = request.max_age.is_none_or(|max| {
            let max_ms = i64::try_from(max).unwrap_or(i64::MAX).saturating_mul(1000);
            max > 0 && now.as_millis().saturating_sub(s.auth_time.as_millis()) <= max_ms
        });
        let same_user = hint.is_none_or(|h| h.sub == s.sub);
        fresh_enough && same_user && !request.prompt.login
    });
    match usable {
        Some(session) if Acr::of(&session.amr) >= required => Ok(Next::Issue(Box::new(session))),
        // Too weak for this app: ask only for what is missing (step-up), never without asking.
        Some(_) if request.prompt.none => Err(AuthorizeError::Redirect {
            to: request.reply.clone(),
            code: "interaction_required",
            description: "the app needs a stronger sign-in, which needs the user".to_owned(),
        }),
        Some(session) => Ok(Next::StepUp(Box::new(session))),
        None if request.prompt.none => Err(AuthorizeError::Redirect {
            to: request.reply.clone(),
            code: "login_required",
            description: "the user must sign in".to_owned(),
        }),
        None => Ok(Next::SignIn),
    }
}

/// What follows once the person is signed in.
#[derive(Debug)]
pub enum AfterSignIn {
    /// The answer for the client.
    Code(AuthorizationResponse),
    /// The person must be asked first (the consent page).
    AskConsent,
}

/// Answers `request` for the person of `session`: the code, unless they must consent first
/// (with `prompt=none`, `consent_required` goes back to the client).
pub async fn proceed(
    state: &Core,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<AfterSignIn, AuthorizeError> {
    if crate::oauth::consent::needed(state, request, &session.sub).await? {
        if request.prompt.none {
            return Err(AuthorizeError::Redirect {
                to: request.reply.clone(),
                code: "consent_required",
                description: "the user must allow this application first".to_owned(),
            });
        }
        return Ok(AfterSignIn::AskConsent);
    }
    Ok(AfterSignIn::Code(
        issue_code(state, request, session).await?,
    ))
}

/// Issues a code for `request` in `session` and records the client in the session.
pub async fn issue_code(
    state: &Core,
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<AuthorizationResponse, AuthorizeError> {
    let now = state.clock.now();
    let client = &request.client;
    // Decided now, so a replay of the code can revoke exactly this (see lanyard-store).
    // `offline_access` gets a family that outlives the session; a first-party client gets
    // one bound to it (it ends at sign-out); anyone else gets no refresh token.
    let family = if !client.allows(GrantType::RefreshToken) {
        None
    } else if request.scope.contains("offline_access") {
        Some(FamilyId::generate(None))
    } else if client.first_party {
        Some(FamilyId::generate(Some(&session.sid)))
    } else {
        None
    };
    let issuance = Issuance {
        access_token: Some(AccessTokenRef {
            jti: random_token(16),
            expires_at: now
                .plus(state.config.lifetimes.code)
                .plus(MAX_CLIENT_TOKEN_LIFETIME)
                .plus(Duration::from_secs(60)),
        }),
        family,
    };
    let payload = CodePayload {
        redirect_uri: request.reply.redirect_uri.clone(),
        code_challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scope: request.scope.values().to_vec(),
        auth_time: session.auth_time.as_secs(),
        amr: session.amr.clone(),
        session_expires_at: session.absolute_deadline.as_millis(),
    };
    let grant = CodeGrant {
        grant_id: GrantId::generate(),
        client_id: client.client_id.clone(),
        sub: session.sub.clone(),
        sid: Some(session.sid.clone()),
        issuance,
        payload: serde_json::to_value(&payload)
            .map_err(|e| AuthorizeError::Unavailable(e.to_string()))?,
    };
    state
        .store
        .touch_session(session.sid.as_str(), Some(&client.client_id))
        .await?;
    let code: AuthorizationCode = state.store.put_code(&grant).await?;
    Ok(AuthorizationResponse::code(&request.reply, code.secret()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_come_from_the_query_and_a_posted_form() {
        let get = parameters(Some("client_id=a&state=1"), None).unwrap();
        assert_eq!(get.get("client_id"), Some("a"));
        let post = parameters(Some("state=1"), Some(b"client_id=a")).unwrap();
        assert_eq!(
            (post.get("client_id"), post.get("state")),
            (Some("a"), Some("1"))
        );
        let twice = parameters(Some("state=1"), Some(b"state=2")).unwrap();
        assert!(twice.is_duplicated("state"));
        assert_eq!(
            parameters(None, Some(b"a=%ff")).err(),
            Some(ParamsError::NotUtf8)
        );
    }
}
