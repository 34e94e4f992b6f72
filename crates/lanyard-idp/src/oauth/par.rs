//! Pushed authorization requests (RFC 9126): a client sends its authorization request to
//! the server directly (authenticated, as at the token endpoint), gets a `request_uri`, and
//! sends the browser to `/authorize` with only that and its `client_id`. The request never
//! travels through the browser, cannot be changed there, and is checked before anyone is
//! asked to sign in.
//!
//! The pushed request is checked as `/authorize` would check it (every check that can be
//! answered without the person), kept in the token store for [`LIFETIME`], and taken once:
//! a `request_uri` used twice, or late, finds nothing. A client registered with
//! `require_par` has every authorization request refused that does not come this way.

use std::time::Duration;

use serde::Serialize;

use crate::oauth::authorize;
use crate::oauth::error::{AuthorizeError, TokenError};
use crate::oauth::request_object::{self, Refused};
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::Client;

/// What a `request_uri` starts with (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request waits for its browser.
pub const LIFETIME: Duration = Duration::from_secs(60);

/// The parameters of client authentication, which are not part of the request kept.
const CLIENT_AUTHENTICATION: [&str; 3] =
    ["client_secret", "client_assertion", "client_assertion_type"];

/// The answer to a push (RFC 9126 §2.2).
#[derive(Debug, Serialize)]
pub struct Pushed {
    /// What the browser brings to `/authorize`.
    pub request_uri: String,
    /// Seconds it may be used in.
    pub expires_in: u64,
}

/// Checks and keeps the authenticated `client`'s pushed request.
pub async fn push(state: &Core, client: Client, params: &Params) -> Result<Pushed, TokenError> {
    if params.get("request_uri").is_some() {
        return Err(TokenError::invalid_request(
            "request_uri cannot be pushed (RFC 9126 §2.1)",
        ));
    }
    if params
        .get("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(TokenError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    let client_id = client.client_id.clone();
    let kept = params.edited(&CLIENT_AUTHENTICATION, "client_id", &client_id);
    // A signed request object (RFC 9101) pushed: the request is its claims.
    let kept = match request_object::resolve(state, kept).await {
        Ok(Ok(kept)) => kept,
        Ok(Err(Refused(why))) => return Err(TokenError::pushed("invalid_request_object", why)),
        Err(e) => return Err(as_token_error(e)),
    };
    if let Err(e) = authorize::validate(&kept, client, &state.config.issuer) {
        return Err(as_token_error(e));
    }
    let id = state.store.put_once(&kept.encoded(), LIFETIME).await?;
    Ok(Pushed {
        request_uri: format!("{REQUEST_URI_PREFIX}{}.{id}", client_tag(&client_id)),
        expires_in: LIFETIME.as_secs(),
    })
}

/// What `/authorize` would have answered, as a push's JSON error.
fn as_token_error(e: AuthorizeError) -> TokenError {
    match e {
        AuthorizeError::Unavailable(why) => TokenError::unavailable(why),
        AuthorizeError::Page { message, .. } => TokenError::invalid_request(message),
        AuthorizeError::Redirect {
            code, description, ..
        } => TokenError::pushed(code, description),
    }
}

/// The request an authorization request stands for: the pushed one its `request_uri` names
/// (taken: it cannot be used again), or itself. With a `request_uri`, only `client_id` may
/// come beside it, and it must be the pushing client's.
pub async fn resolve(state: &Core, params: Params) -> Result<Params, AuthorizeError> {
    // Not one of ours (a request object by reference, which is not offered): left for the
    // checks to answer `request_uri_not_supported`.
    let Some(uri) = params
        .get("request_uri")
        .filter(|u| u.starts_with(REQUEST_URI_PREFIX))
    else {
        return Ok(params);
    };
    let broken = |why: &str| {
        AuthorizeError::page(
            "This sign-in link is broken",
            format!("{why} Go back to the application and try again."),
        )
    };
    let client_id = params
        .get("client_id")
        .ok_or_else(|| broken("The request does not say which application it is for."))?;
    if params.get("request").is_some() {
        return Err(broken(
            "It holds both a pushed request and a request object (request with request_uri).",
        ));
    }
    // The client the request_uri was made for is checked before it is taken, so another
    // application's attempt cannot spend it.
    let Some((tag, id)) = uri[REQUEST_URI_PREFIX.len()..].split_once('.') else {
        return Err(broken(
            "Its request_uri is not one this sign-in service issued.",
        ));
    };
    if tag != client_tag(client_id) {
        return Err(broken("It was made for another application."));
    }
    let Some(encoded) = state.store.take_once(id).await? else {
        return Err(AuthorizeError::page(
            "This sign-in link has expired",
            "It works once, within a minute of the application making it. Go back to the application and sign in again.",
        ));
    };
    let pushed =
        Params::parse(encoded.as_bytes()).map_err(|_| broken("Its request could not be read."))?;
    if pushed.get("client_id") != Some(client_id) {
        return Err(broken("It was made for another application."));
    }
    Ok(pushed)
}

/// The client a `request_uri` is for, as it names it: the client id in base64url (no `.`).
fn client_tag(client_id: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(client_id.as_bytes())
}

/// Whether `client` must push its requests and this one was not pushed.
pub fn required_but_missing(client: &Client, pushed: bool) -> bool {
    client.require_par && !pushed
}
