//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients. Exactly one method per request.

use crate::crypto::ServerKeys;
use crate::lockout::{self, Key};
use crate::model::Client;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;
use crate::state::AppState;

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP Basic.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
    /// Only `client_id` (public clients).
    None,
}

/// The credentials a request presents.
#[derive(Clone)]
pub struct Presented {
    /// Which client.
    pub client_id: String,
    secret: Option<String>,
    /// How.
    pub method: Method,
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presented")
            .field("client_id", &self.client_id)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Reads the credentials: `basic` from the `Authorization` header (already decoded), or
/// `client_id`/`client_secret` from the body.
pub fn presented(
    basic: Option<(String, String)>,
    params: &Params,
) -> Result<Presented, TokenError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    match basic {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(TokenError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            if body_id.is_some_and(|b| b != id) {
                return Err(TokenError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            Ok(Presented {
                client_id: id,
                secret: Some(secret),
                method: Method::Basic,
            })
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Presented {
                client_id: id.to_owned(),
                secret: Some(secret.to_owned()),
                method: Method::Post,
            }),
            (Some(id), None) => Ok(Presented {
                client_id: id.to_owned(),
                secret: None,
                method: Method::None,
            }),
            (None, _) => Err(TokenError::invalid_client(
                "client authentication is required",
            )),
        },
    }
}

/// Checks the credentials against the registered client. Every failure reads the same, so
/// the endpoint does not tell which client ids exist.
pub fn authenticate(
    presented: &Presented,
    client: Option<&Client>,
    keys: &ServerKeys,
) -> Result<(), TokenError> {
    let failed = || TokenError::invalid_client("client authentication failed");
    let client = client.ok_or_else(failed)?;
    match (&presented.secret, &client.secret_hash) {
        (Some(secret), Some(stored)) if keys.verify_client_secret(secret, stored) => Ok(()),
        (None, None) if client.public => Ok(()),
        _ => Err(failed()),
    }
}

/// [`authenticate`], with brute-force protection: failed secrets are counted per client and
/// client IP (`lockout`); while that pair is blocked, every attempt is refused unchecked.
/// Requests without a secret (public clients) guess nothing and are not counted.
///
/// The count is best effort: with the token store unreachable the secret is still checked,
/// but not counted. Failing closed here would refuse every client during a Redis outage,
/// including revocations, which Lanyard records durably in SQL even then.
pub async fn authenticate_throttled(
    state: &AppState,
    presented: &Presented,
    client: Option<&Client>,
    ip: &str,
) -> Result<(), TokenError> {
    if presented.secret.is_none() {
        return authenticate(presented, client, &state.server_keys);
    }
    let key = [Key::Client(presented.client_id.clone(), ip.to_owned())];
    match lockout::blocked(state, &key).await {
        Ok(Some(wait)) => {
            return Err(TokenError::invalid_client(format!(
                "too many failed attempts from this address; try again in {}",
                lockout::wait_text(wait)
            )));
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "client authentication: failures cannot be counted now")
        }
    }
    let checked = authenticate(presented, client, &state.server_keys);
    if checked.is_err()
        && let Err(e) = lockout::failed(state, &key).await
    {
        tracing::warn!(error = %e, "client authentication: a failure could not be counted");
    }
    checked
}
