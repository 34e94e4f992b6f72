//! Where and how the authorization endpoint's answer, success or error, goes back to the
//! client (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 `iss`; OAuth 2.0 Form Post Response Mode).
//! The HTTP layer sends it (`http/reply.rs`).

use lanyard_core::model::RedirectUri;

/// How the response reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Redirect with the parameters in the query (the default for `code`).
    Query,
    /// An auto-submitting HTML form POSTed to the redirect URI (OAuth 2.0 Form Post Response
    /// Mode).
    FormPost,
}

/// Where and how an answer, success or error, goes back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// The verified redirect URI.
    pub redirect_uri: RedirectUri,
    /// Query or form post.
    pub mode: ResponseMode,
    /// The client's `state`, echoed.
    pub state: Option<String>,
    /// The issuer, sent as `iss` with every answer (RFC 9207).
    pub iss: String,
}

impl ReplyTo {
    /// The parameters of an answer: `first` (the code, or the error and its description),
    /// then `state` and `iss`.
    pub fn params(&self, mut first: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        if let Some(state) = &self.state {
            first.push(("state", state.clone()));
        }
        first.push(("iss", self.iss.clone()));
        first
    }
}

/// The answer to send back on success.
#[derive(Debug, Clone)]
pub struct AuthorizationResponse {
    /// Where.
    pub to: ReplyTo,
    /// `code`, `state`, `iss`.
    pub params: Vec<(&'static str, String)>,
}

impl AuthorizationResponse {
    /// The answer that carries `code`.
    pub fn code(to: &ReplyTo, code: &str) -> Self {
        Self {
            to: to.clone(),
            params: to.params(vec![("code", code.to_owned())]),
        }
    }
}
