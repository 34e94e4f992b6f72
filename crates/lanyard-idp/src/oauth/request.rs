//! An authorization request that passed every check (`authorize::validate`): what the
//! sign-in and consent pages carry, and what the code is issued for.

use lanyard_core::config::Config;
use lanyard_core::model::{Acr, Client};

use crate::oauth::checks::{prompt::Prompt, scope::Scope};
use crate::oauth::reply::ReplyTo;

/// An authorization request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: Client,
    /// Where the answer goes.
    pub reply: ReplyTo,
    /// Requested scope (contains `openid`, every value allowed for the client).
    pub scope: Scope,
    /// `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// PKCE `S256` challenge.
    pub code_challenge: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
    /// `login_hint`: pre-fills the username.
    pub login_hint: Option<String>,
    /// `id_token_hint`, unverified.
    pub id_token_hint: Option<String>,
    /// The strength the app asked for (`acr_values`, or `acr` in `claims`), if any.
    pub acr: Option<Acr>,
}

impl AuthorizationRequest {
    /// The strength this sign-in needs: what the app asked for, and two factors when the
    /// client is registered with `require_mfa` or the deployment requires them for everyone.
    pub fn required_acr(&self, config: &Config) -> Acr {
        let least = least_acr(&self.client, config);
        self.acr.map_or(least, |asked| asked.max(least))
    }
}

/// The least strength any sign-in for `client` needs, whatever it asks: two factors when it
/// is registered with `require_mfa` or the deployment requires them for everyone.
pub fn least_acr(client: &Client, config: &Config) -> Acr {
    if client.require_mfa || config.mfa_required {
        Acr::Mfa
    } else {
        Acr::Pwd
    }
}
