//! The end-session endpoint's logic (OpenID Connect RP-Initiated Logout 1.0): which requests
//! are trusted, whether to ask the person first, and where they go afterwards.
//!
//! The rules:
//! - An `id_token_hint` must be an ID token Lanyard signed (expired is fine, §2); anything
//!   else — `alg: none`, another key, an access or logout token — is refused with a page:
//!   nobody is signed out and nobody is sent anywhere.
//! - `client_id`, when sent with a hint, must be the hint's audience (§2).
//! - `post_logout_redirect_uri` must equal, character for character, one registered for the
//!   client (§3); otherwise the request is refused with a page. Lanyard redirects there only
//!   when the request also carries a valid hint; without one the person is asked to confirm
//!   and then shown a "signed out" page with a link back to the app (§4: never redirect to
//!   an address no hint vouches for).
//! - A hint naming the person signed in ends their session at once; otherwise (no hint, or
//!   a hint for someone else) the person confirms first, so that a link on another site
//!   cannot sign anyone out.

use lanyard_store::Session;

use crate::oauth::error::AuthorizeError;
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::model::Client;
use lanyard_core::revoke::{self, Subject};
use lanyard_core::tokens::IdTokenHint;

/// The longest `state` echoed back.
const MAX_STATE: usize = 2048;

/// A sign-out request that passed every check.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// The verified hint.
    pub hint: Option<IdTokenHint>,
    /// The app that sent the person here, if it said.
    pub client: Option<Client>,
    /// A `post_logout_redirect_uri` registered for `client`.
    pub redirect_uri: Option<String>,
    /// The app's `state`, echoed on the redirect.
    pub state: Option<String>,
}

impl LogoutRequest {
    /// Where to send the person once signed out: only with a verified hint (§4).
    pub fn redirect(&self) -> Option<(&str, Option<&str>)> {
        self.hint.as_ref()?;
        let uri = self.redirect_uri.as_deref()?;
        Some((uri, self.state.as_deref()))
    }
}

/// What to do with a valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// End the session (if there is one) and go on.
    SignOut,
    /// Ask the person first.
    Confirm,
}

fn broken(message: impl Into<String>) -> AuthorizeError {
    AuthorizeError::page("This sign-out link is not valid", message)
}

/// Checks a sign-out request (§2, §3).
pub async fn validate(state: &Core, params: &Params) -> Result<LogoutRequest, AuthorizeError> {
    if let Some(name) = params.duplicated() {
        return Err(broken(format!(
            "The request names its {name} twice, so you have not been signed out. Go back to the application and sign out again."
        )));
    }
    let hint = match params.get("id_token_hint") {
        None => None,
        Some(token) => Some(
            state
                .keys
                .verify_id_token_hint(token, &state.config.issuer)
                .map_err(|_| {
                    broken(
                        "The application sent a sign-in token this service did not issue, so you have not been signed out and will not be sent anywhere. Go back to the application and sign out again, or close this page.",
                    )
                })?,
        ),
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some(h)) if !h.aud.iter().any(|a| a == id) => {
            return Err(broken(
                "The request names one application but carries another application's sign-in token, so you have not been signed out. Go back to the application and sign out again.",
            ));
        }
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(h)) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client = match client_id {
        None => None,
        Some(id) => Some(state.db.clients().get(&id).await?.ok_or_else(|| {
            AuthorizeError::page(
                "Unknown application",
                "The application that sent you here is not registered with this sign-in service, so you have not been signed out. Go back to it and tell its administrators.",
            )
        })?),
    };
    let redirect_uri = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err(AuthorizeError::page(
                    "This sign-out link is not allowed",
                    "The address to return to after signing out is not registered for this application, so you have not been signed out and will not be sent there. Go back to the application and tell its administrators.",
                ));
            }
            Some(uri.to_owned())
        }
    };
    let state_param = params.get("state").map(str::to_owned);
    if state_param.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(broken(
            "The request is too long. Go back to the application and sign out again.",
        ));
    }
    Ok(LogoutRequest {
        hint,
        client,
        redirect_uri,
        state: state_param,
    })
}

/// Whether the person must confirm before `session` (the browser's) ends.
pub fn decide(request: &LogoutRequest, session: Option<&Session>) -> Next {
    match (session, &request.hint) {
        (None, _) => Next::SignOut,
        (Some(s), Some(hint)) if hint.sub == s.sub => Next::SignOut,
        _ => Next::Confirm,
    }
}

/// Ends `session`: its refresh tokens, its access tokens at every app (revocation by `sid`),
/// and, in the background, each app's own session (back-channel logout). Audited as
/// `logout`.
pub async fn sign_out(state: &Core, session: &Session) -> Result<(), AuthorizeError> {
    end(state, &session.sub, session.sid.as_str()).await
}

/// [`sign_out`] by `sid`, on behalf of the user `sub` (who must own it: the caller checks).
pub async fn end(state: &Core, sub: &str, sid: &str) -> Result<(), AuthorizeError> {
    revoke::revoke_as(state, Subject::Sid(sid.to_owned()), sub, "logout")
        .await
        .map(|_| ())
        .map_err(|e| AuthorizeError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanyard_store::SessionId;

    fn session(sub: &str) -> Session {
        serde_json::from_value(serde_json::json!({
            "sid": SessionId::generate().to_string(), "sub": sub, "auth_time": 1000,
            "amr": [], "remember_me": false, "created_at": 1000, "idle_timeout": 60000,
            "idle_deadline": 61000, "absolute_deadline": 61000, "last_seen": 1000,
            "clients": [], "user_agent": null, "ip": null
        }))
        .unwrap()
    }

    fn request(hint_sub: Option<&str>) -> LogoutRequest {
        LogoutRequest {
            hint: hint_sub.map(|s| IdTokenHint {
                sub: s.to_owned(),
                aud: vec!["app".to_owned()],
                sid: None,
            }),
            client: None,
            redirect_uri: Some("https://app.example/".to_owned()),
            state: Some("s".to_owned()),
        }
    }

    #[test]
    fn only_a_hint_for_the_person_signed_in_skips_the_question() {
        let alice = session("alice");
        assert_eq!(decide(&request(Some("alice")), Some(&alice)), Next::SignOut);
        assert_eq!(decide(&request(Some("bob")), Some(&alice)), Next::Confirm);
        assert_eq!(decide(&request(None), Some(&alice)), Next::Confirm);
        assert_eq!(decide(&request(None), None), Next::SignOut);
    }

    #[test]
    fn redirects_only_with_a_hint() {
        assert_eq!(
            request(Some("alice")).redirect(),
            Some(("https://app.example/", Some("s")))
        );
        assert_eq!(request(None).redirect(), None);
    }
}
