//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients. Exactly one method per request.

use crate::crypto::ServerKeys;
use crate::model::Client;
use crate::oauth::error::TokenError;
use crate::oauth::params::Params;

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
