//! Signed request objects (JAR, RFC 9101; OIDC Core §6.1): an authorization request sent as
//! a JWT the client signs with one of its registered keys (`jwks` or `jwks_uri`), by value in
//! `request`, at `/authorize` or pushed to `/par`. Only a signed object is taken (never
//! `alg: none`), with `iss` the client and `aud` the issuer; its `client_id`, if it has one,
//! must be the one beside it. The request is then the object's claims alone (RFC 9101 §5:
//! parameters outside it are ignored, except `client_id`), checked as any request is.
//! Fetching a request object from a URL (`request_uri` other than a pushed one's) is not
//! offered.

use crate::oauth::error::AuthorizeError;
use crate::oauth::reply::{ReplyTo, ResponseMode};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::RedirectUri;
use lanyard_core::tokens::assertion::AssertionError;

/// Claims of a JWT that are not authorization request parameters.
const JWT_CLAIMS: [&str; 6] = ["iss", "aud", "exp", "iat", "nbf", "jti"];

/// Why a request object was not taken: said to the client (`invalid_request_object`) or on
/// the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The answer to a request whose object was refused (RFC 9101 §6.3): `invalid_request_object`
/// sent back to the client when the parameters beside the object name a redirect URI
/// registered for it (with their `state`; nothing inside the object is trusted), else a page.
pub async fn refusal(state: &Core, params: &Params, refused: Refused) -> AuthorizeError {
    let Refused(why) = refused;
    let page = || {
        AuthorizeError::page(
            "This sign-in request was not accepted",
            format!(
                "The application sent a signed request that could not be trusted: {why}. Go back to it and tell its administrators."
            ),
        )
    };
    let (Some(client_id), Some(requested)) = (params.get("client_id"), params.get("redirect_uri"))
    else {
        return page();
    };
    let client = match state.db.clients().recent(client_id).await {
        Ok(Some(client)) if !client.settings.disabled => client,
        Ok(_) => return page(),
        Err(e) => return e.into(),
    };
    match RedirectUri::matching(&client.redirect_uris, requested) {
        Some(redirect_uri) => AuthorizeError::Redirect {
            to: ReplyTo {
                redirect_uri,
                mode: ResponseMode::Query,
                state: params
                    .get("state")
                    .filter(|s| s.len() <= 2048)
                    .map(str::to_owned),
                iss: state.config.issuer.clone(),
            },
            code: "invalid_request_object",
            description: why,
        },
        None => page(),
    }
}

/// The request `params` stand for: the claims of its signed `request` object (with
/// `client_id`), or `params` themselves when there is none. The outer error is Lanyard's
/// (the database down); the inner one the request object's.
pub async fn resolve(
    state: &Core,
    params: Params,
) -> Result<Result<Params, Refused>, AuthorizeError> {
    let Some(request) = params.get("request") else {
        return Ok(Ok(params));
    };
    let refused = |why: String| Ok(Err(Refused(why)));
    if params.get("request_uri").is_some() {
        return refused("request and request_uri cannot come together".to_owned());
    }
    let Some(client_id) = params.get("client_id") else {
        return refused("a request object needs client_id beside it".to_owned());
    };
    let Some(client) = state.db.clients().recent(client_id).await? else {
        return refused(format!("{client_id} is not a registered application"));
    };
    if client.jwks.is_none() && client.jwks_uri.is_none() {
        return refused(
            "this application has no keys registered to sign its requests with (jwks or jwks_uri)"
                .to_owned(),
        );
    }
    let claims = match state
        .client_keys
        .verify_request_object(&client, request, &state.config.issuer, state.clock.now())
        .await
    {
        Ok(claims) => claims,
        Err(AssertionError::Invalid(why)) => return refused(why),
        Err(AssertionError::Unverified) => {
            return refused(
                "the request object is not signed by a key registered for this application"
                    .to_owned(),
            );
        }
        Err(AssertionError::Keys(why)) => {
            return refused(format!(
                "the application's keys could not be fetched from its jwks_uri ({why})"
            ));
        }
    };
    if claims
        .get("client_id")
        .is_some_and(|c| c.as_str() != Some(client_id))
    {
        return refused("the request object's client_id is not the one beside it".to_owned());
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return refused("a request object cannot hold another".to_owned());
    }
    let pairs = claims
        .into_iter()
        .filter(|(name, _)| !JWT_CLAIMS.contains(&name.as_str()))
        .map(|(name, value)| {
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (name, text)
        })
        .chain(std::iter::once((
            "client_id".to_owned(),
            client_id.to_owned(),
        )));
    Ok(Ok(Params::from_pairs(pairs)))
}
