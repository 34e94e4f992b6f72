//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (RFC 7523, OIDC Core §9; the assertion is checked
//! by `lanyard_core::tokens::assertion` and its `jti` claimed once in the token store), or
//! `none` for public clients. Exactly one method per request; a client authenticates only the
//! way it is registered for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

use crate::oauth::error::TokenError;
use crate::params::Params;
use lanyard_core::Core;
use lanyard_core::crypto::ServerKeys;
use lanyard_core::lockout::{self, Key};
use lanyard_core::model::{AuthMethod, Client};
use lanyard_core::tokens::assertion::{self, AssertionError, JWT_BEARER};

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// HTTP Basic.
    Basic,
    /// `client_id` and `client_secret` in the body.
    Post,
    /// Only `client_id` (public clients).
    None,
    /// `client_assertion` (RFC 7523 §2.2).
    PrivateKeyJwt,
}

/// The credentials a request presents.
#[derive(Clone)]
pub struct Presented {
    /// Which client.
    pub client_id: String,
    secret: Option<String>,
    assertion: Option<String>,
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
    let assertion_type = params.get("client_assertion_type");
    let assertion = params.get("client_assertion");
    if assertion_type.is_some() || assertion.is_some() {
        if basic.is_some() || body_secret.is_some() {
            return Err(TokenError::invalid_request(
                "use one client authentication method, not a secret and client_assertion together",
            ));
        }
        if assertion_type != Some(JWT_BEARER) {
            return Err(TokenError::invalid_request(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let assertion =
            assertion.ok_or_else(|| TokenError::invalid_request("client_assertion is missing"))?;
        let client_id = match body_id {
            Some(id) => id.to_owned(),
            None => assertion::named_client(assertion).ok_or_else(|| {
                TokenError::invalid_client("client_assertion names no client (sub)")
            })?,
        };
        return Ok(Presented {
            client_id,
            secret: None,
            assertion: Some(assertion.to_owned()),
            method: Method::PrivateKeyJwt,
        });
    }
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
                assertion: None,
                method: Method::Basic,
            })
        }
        None => match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Presented {
                client_id: id.to_owned(),
                secret: Some(secret.to_owned()),
                assertion: None,
                method: Method::Post,
            }),
            (Some(id), None) => Ok(Presented {
                client_id: id.to_owned(),
                secret: None,
                assertion: None,
                method: Method::None,
            }),
            (None, _) => Err(TokenError::invalid_client(
                "client authentication is required",
            )),
        },
    }
}

/// A client's request to the token, revocation or introspection endpoint, read but not yet
/// authenticated: nothing here has been checked against the registered clients.
#[derive(Debug, Clone)]
pub struct ClientRequest {
    /// The form body's parameters.
    pub params: Params,
    /// The credentials it presents.
    pub presented: Presented,
}

/// Reads a client's POST to the token, revocation or introspection endpoint (RFC 6749 §2.3,
/// §3.2, RFC 7009 §2.1, RFC 7662 §2.1): no parameters in the URL (`query`), a form body
/// (`form`: whether the `Content-Type` says so), no parameter twice, and the credentials of
/// one method, from the `Authorization` header values (`authorization`) or the body.
pub fn read_request(
    query: Option<&str>,
    form: bool,
    authorization: &[&[u8]],
    body: &[u8],
) -> Result<ClientRequest, TokenError> {
    // RFC 6749 §2.3.1, §3.2: credentials and parameters never in the URL.
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(TokenError::invalid_request(
            "parameters belong in the request body, not the URL",
        ));
    }
    if !form {
        return Err(TokenError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body).map_err(|e| TokenError::invalid_request(e.to_string()))?;
    let basic = basic_credentials(authorization)?;
    let presented = presented(basic, &params)?;
    if let Some(name) = params.duplicated() {
        return Err(TokenError::invalid_request(format!(
            "{name} is sent more than once"
        )));
    }
    Ok(ClientRequest { params, presented })
}

/// The id and secret of `Authorization: Basic base64(urlencode(id):urlencode(secret))`
/// (RFC 6749 §2.3.1), given the values of the request's `Authorization` headers; `None`
/// when there is none. Two headers, another scheme, or a value that is not visible ASCII
/// are refused.
pub fn basic_credentials(authorization: &[&[u8]]) -> Result<Option<(String, String)>, TokenError> {
    let malformed =
        || TokenError::invalid_client("the Authorization header is not valid Basic credentials");
    let value = match authorization {
        [] => return Ok(None),
        [value] => value,
        _ => return Err(malformed()),
    };
    // What `HeaderValue::to_str` accepts: visible ASCII, space and tab.
    if !value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(malformed());
    }
    let text = std::str::from_utf8(value).map_err(|_| malformed())?;
    let (scheme, encoded) = text.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let unescape = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| malformed())
    };
    let id = unescape(id)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, unescape(secret)?)))
}

/// Checks a secret (or its absence, for a public client) against the registered client.
/// Every failure reads the same, so the endpoint does not tell which client ids exist. A
/// `private_key_jwt` client has no secret, so nothing but its assertion gets it in
/// ([`authenticate_counted`] checks that).
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

/// [`authenticate`], counting wrong secrets: each one presented for a registered client is
/// counted in the token store, per client from every address, and raises an alert at the
/// threshold (`lockout::failed` with `Key::ClientSecret`). Nothing is ever blocked: a
/// client presenting its right secret gets in whatever others sent, since a client's
/// secret (256 random bits, or at least 32 characters given) cannot be guessed, and a lock
/// would let anyone who knows a client id shut it out. Requests without a secret (public
/// clients) guess nothing and are not counted; nor are unknown client ids (nothing to
/// alert about, and no key per made-up id). With the token store unreachable the secret is
/// still checked, but not counted.
pub async fn authenticate_counted(
    state: &Core,
    presented: &Presented,
    client: Option<&Client>,
) -> Result<(), TokenError> {
    let checked = match &presented.assertion {
        Some(assertion) => verify_assertion(state, client, assertion).await,
        None => authenticate(presented, client, &state.server_keys),
    };
    if checked.is_err()
        && presented.secret.is_some()
        && let Some(client) = client
    {
        let key = [Key::ClientSecret(client.client_id.clone())];
        if let Err(e) = lockout::failed(state, &key).await {
            tracing::warn!(error = %e, "client authentication: a failure could not be counted");
        }
    }
    checked?;
    // Said only once the client proved who it is (a public client has only its id, which is
    // not secret); a right secret is not counted as a guess.
    if client.is_some_and(|c| c.settings.disabled) {
        return Err(TokenError::invalid_client("this client is disabled"));
    }
    Ok(())
}

/// A `private_key_jwt` client's assertion (module docs of `tokens::assertion`): checked
/// with its keys, then its `jti` claimed once until the assertion has expired, so a replay is
/// refused on every node.
async fn verify_assertion(
    state: &Core,
    client: Option<&Client>,
    assertion: &str,
) -> Result<(), TokenError> {
    let failed = || TokenError::invalid_client("client authentication failed");
    let client = client
        .filter(|c| c.auth_method() == AuthMethod::PrivateKeyJwt)
        .ok_or_else(failed)?;
    let now = state.clock.now();
    let asserted = state
        .client_keys
        .verify(client, assertion, &state.config.issuer, now)
        .await
        .map_err(|e| match e {
            AssertionError::Unverified => failed(),
            AssertionError::Invalid(why) => {
                TokenError::invalid_client(format!("client authentication failed: {why}"))
            }
            AssertionError::Keys(why) => {
                tracing::warn!(client_id = %client.client_id, error = %why, "a client's keys could not be fetched");
                TokenError::invalid_client(format!(
                    "client authentication failed: the client's keys could not be fetched from its jwks_uri ({why})"
                ))
            }
        })?;
    let until = asserted
        .exp
        .saturating_add(i64::try_from(assertion::LEEWAY.as_secs()).unwrap_or(60));
    let ttl = std::time::Duration::from_secs(
        u64::try_from(until.saturating_sub(now.as_secs())).unwrap_or(0),
    )
    .max(std::time::Duration::from_secs(1));
    let key = format!("assertion:{}:{}", client.client_id, asserted.jti);
    if !state.store.claim_once(&key, ttl).await? {
        return Err(TokenError::invalid_client(
            "client authentication failed: this client_assertion was used before (its jti)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_follow_rfc_6749_section_2_3_1() {
        // base64("a%2Bb:s+cr%3At")
        assert_eq!(
            basic_credentials(&[b"Basic YSUyQmI6cytjciUzQXQ="]),
            Ok(Some(("a+b".to_owned(), "s cr:t".to_owned())))
        );
        assert_eq!(basic_credentials(&[]), Ok(None));
        let bad: [&[&[u8]]; 7] = [
            &[b"Basic YTpi", b"Basic YTpi"],
            &[b"Bearer YTpi"],
            &[b"Basic"],
            &[b"Basic !!!"],
            &[b"Basic OmI="],         // ":b": no id
            &[b"Basic YWI="],         // "ab": no colon
            &[b"Basic YTpi\xc2\xa0"], // not visible ASCII (trim would drop a Unicode space)
        ];
        for value in bad {
            assert_eq!(
                basic_credentials(value).map_err(|e| e.code.as_str()),
                Err("invalid_client"),
                "{value:?}"
            );
        }
    }

    #[test]
    fn read_request_refuses_what_rfc_6749_refuses() {
        let read = |query, form, auth: &[&[u8]], body: &[u8]| {
            read_request(query, form, auth, body).map_err(|e| e.description)
        };
        let ok = read(None, true, &[], b"grant_type=x&client_id=c&client_secret=s").unwrap();
        assert_eq!(
            (ok.presented.client_id.as_str(), ok.presented.method),
            ("c", Method::Post)
        );
        let ok = read(Some(""), true, &[b"Basic YTpi"], b"client_id=a").unwrap();
        assert_eq!(ok.presented.method, Method::Basic);
        assert!(read(Some("a=1"), true, &[], b"client_id=c").is_err());
        assert!(read(None, false, &[], b"client_id=c").is_err());
        assert!(read(None, true, &[], b"client_id=c&scope=a&scope=b").is_err());
        assert!(read(None, true, &[b"Basic YTpi"], b"client_secret=s").is_err());
        assert!(read(None, true, &[], b"grant_type=x").is_err());
    }
}
