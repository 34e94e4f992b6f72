//! Calling other services with a bearer token. On `401` with `error="invalid_token"` the
//! client gets a fresh token once and resends once (RFC 6750 §3.1: the client may
//! re-authenticate and retry). It never loops. On `401` with
//! `error="insufficient_user_authentication"` (RFC 9470) it tries nothing: the caller learns
//! what the API asks for (`ClientError::StepUp`) and sends the person to sign in again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openidconnect::reqwest;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::dpop::DpopKey;

/// Why a call could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No token could be had from the issuer.
    #[error("no access token: {0}")]
    Token(String),
    /// The request itself failed (network, timeout).
    #[error("request failed: {0}")]
    Request(String),
    /// The person's sign-in has ended: the API refused their access token (`reason`, the
    /// API's `error_description`, when it gave one) and no other could be had. A browser
    /// app sends them to sign in again, coming back to the page they were on.
    #[error("the sign-in has ended ({reason}); sign in again")]
    SignInAgain {
        /// Why the token was refused, or why none could be had.
        reason: String,
    },
    /// The API needs a stronger or more recent sign-in than the person's token shows (401
    /// `insufficient_user_authentication`, RFC 9470). A new token of the same sign-in would
    /// not do, so none is tried; a browser app sends the person to sign in again asking for
    /// these (`SignInFirst::step_up`), coming back to the page they were on.
    #[error("a stronger sign-in is needed")]
    StepUp {
        /// The `acr` value(s) the API takes.
        acr_values: Option<String>,
        /// How recent the sign-in must be, in seconds.
        max_age: Option<u64>,
    },
}

/// Where access tokens come from.
#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A token to use now (cached while it lives).
    async fn token(&self) -> Result<String, ClientError>;
    /// A token other than `refused`, which an API just refused. Concurrent callers that
    /// were refused the same token share one renewal.
    async fn renew(&self, refused: &str) -> Result<String, ClientError>;
}

/// Tokens for the app itself, by `client_credentials` (RFC 6749 §4.4), cached until 30 s
/// before they expire.
pub struct ClientCredentials {
    token_endpoint: String,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    resource: Option<String>,
    dpop: Option<Arc<DpopKey>>,
    http: reqwest::Client,
    cached: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Tokens from `token_endpoint` for this client; `resource` names the API (RFC 8707).
    pub fn new(
        token_endpoint: &str,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Self {
        Self {
            token_endpoint: token_endpoint.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            scope: scope.map(str::to_owned),
            resource: resource.map(str::to_owned),
            dpop: None,
            http: crate::http_client(),
            cached: Mutex::new(None),
        }
    }

    /// Asks for tokens bound to `key` (RFC 9449 §5): each token request carries a proof by
    /// it. Send them with a [`ServiceClient`] made [`with_dpop`](ServiceClient::with_dpop)
    /// the same key.
    #[must_use]
    pub fn with_dpop(mut self, key: Arc<DpopKey>) -> Self {
        self.dpop = Some(key);
        self
    }

    async fn fetch(&self) -> Result<(String, Instant), ClientError> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        if let Some(r) = &self.resource {
            form.push(("resource", r));
        }
        request_token(
            &self.http,
            &self.token_endpoint,
            (&self.client_id, &self.client_secret),
            &form,
            self.dpop.as_deref(),
        )
        .await
        .map_err(|refusal| ClientError::Token(refusal.to_string()))
    }
}

/// Why the token endpoint gave no token.
#[derive(Debug)]
enum Refusal {
    /// It could not be asked, or its answer could not be read.
    Unreachable(String),
    /// It answered an RFC 6749 §5.2 error.
    Refused {
        status: u16,
        error: String,
        description: Option<String>,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unreachable(e) => f.write_str(e),
            Refusal::Refused {
                status,
                error,
                description,
            } => {
                write!(f, "{status}: {error}")?;
                if let Some(d) = description {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
        }
    }
}

/// Asks `token_endpoint` for an access token with `form`, authenticating with HTTP Basic
/// (with a DPoP proof by `dpop`, and once more with the server's nonce if it asks for one);
/// the token and when to stop using it (30 s before it expires).
async fn request_token(
    http: &reqwest::Client,
    token_endpoint: &str,
    (client_id, client_secret): (&str, &str),
    form: &[(&str, &str)],
    dpop: Option<&DpopKey>,
) -> Result<(String, Instant), Refusal> {
    let unreachable = |e: &dyn std::fmt::Display| Refusal::Unreachable(e.to_string());
    let mut nonce: Option<String> = None;
    let (status, body) = loop {
        let mut request = http
            .post(token_endpoint)
            .basic_auth(
                percent_encode(client_id),
                Some(percent_encode(client_secret)),
            )
            .form(form);
        if let Some(key) = dpop {
            let proof = key.proof("POST", token_endpoint, None, nonce.as_deref(), unix_now());
            request = request.header("dpop", proof);
        }
        let response = request.send().await.map_err(|e| unreachable(&e))?;
        let status = response.status();
        let given = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.map_err(|e| unreachable(&e))?)
                .map_err(|e| unreachable(&e))?;
        match given {
            Some(given)
                if dpop.is_some() && nonce.is_none() && body["error"] == "use_dpop_nonce" =>
            {
                nonce = Some(given);
            }
            _ => break (status, body),
        }
    };
    let Some(token) = body["access_token"].as_str() else {
        return Err(Refusal::Refused {
            status: status.as_u16(),
            error: body["error"]
                .as_str()
                .unwrap_or("no access_token")
                .to_owned(),
            description: body["error_description"].as_str().map(str::to_owned),
        });
    };
    let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(60));
    Ok((
        token.to_owned(),
        Instant::now() + lifetime.saturating_sub(Duration::from_secs(30)),
    ))
}

/// RFC 6749 §2.3.1: client credentials are form-urlencoded inside Basic.
pub(crate) fn percent_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[async_trait]
impl TokenSource for ClientCredentials {
    async fn token(&self) -> Result<String, ClientError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let fresh = self.fetch().await?;
        *cached = Some(fresh.clone());
        Ok(fresh.0)
    }

    async fn renew(&self, refused: &str) -> Result<String, ClientError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && token != refused
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let fresh = self.fetch().await?;
        *cached = Some(fresh.clone());
        Ok(fresh.0)
    }
}

/// Tokens for calling one downstream API on behalf of the people who call this one, by
/// token exchange (RFC 8693): the caller's access token (meant for this API) is exchanged
/// for one meant for `audience`, which carries the person and names this API in `act`.
/// Exchanged tokens are cached per caller token until 30 s before they expire (at most
/// 10,000 at once).
///
/// ```no_run
/// # async fn f(caller_token: &str) -> Result<(), lanyard_rp::client::ClientError> {
/// use std::sync::Arc;
/// use lanyard_rp::client::TokenExchange;
/// let stock = Arc::new(TokenExchange::new(
///     "https://sso.example.com/token", "orders", "orders-secret", "stock",
/// ));
/// let answer = stock
///     .on_behalf_of(caller_token)
///     .send(|http| http.get("https://stock.example.com/api/items"))
///     .await?;
/// # Ok(()) }
/// ```
///
/// If Lanyard refuses the caller's token (revoked, expired, its person disabled), the call
/// fails with [`ClientError::SignInAgain`]: answer the caller `401 invalid_token`.
pub struct TokenExchange {
    token_endpoint: String,
    client_id: String,
    client_secret: String,
    audience: String,
    http: reqwest::Client,
    cached: std::sync::Mutex<std::collections::HashMap<[u8; 32], (String, Instant)>>,
}

/// How many exchanged tokens a [`TokenExchange`] keeps.
const EXCHANGE_CACHE: usize = 10_000;

impl std::fmt::Debug for TokenExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenExchange")
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenExchange {
    /// Exchanges at `token_endpoint` as this client (a secret, HTTP Basic) for tokens meant
    /// for the API whose client id is `audience` (one of this client's exchange audiences).
    pub fn new(token_endpoint: &str, client_id: &str, client_secret: &str, audience: &str) -> Self {
        Self {
            token_endpoint: token_endpoint.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            audience: audience.to_owned(),
            http: crate::http_client(),
            cached: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// A client that calls the downstream API on behalf of the person whose access token
    /// (`caller_token`, as this API received it) is given.
    pub fn on_behalf_of(self: &Arc<Self>, caller_token: &str) -> ServiceClient {
        // One HTTP client (its connections, its TLS set-up) serves every caller.
        ServiceClient {
            http: self.http.clone(),
            tokens: Arc::new(OnBehalfOf {
                exchange: self.clone(),
                caller_token: caller_token.to_owned(),
            }),
            dpop: None,
        }
    }

    fn key(caller_token: &str) -> [u8; 32] {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, caller_token.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(digest.as_ref());
        key
    }

    fn cached(&self, caller_token: &str, not: Option<&str>) -> Option<String> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .get(&Self::key(caller_token))
            .filter(|(token, until)| Instant::now() < *until && Some(token.as_str()) != not)
            .map(|(token, _)| token.clone())
    }

    async fn exchange(&self, caller_token: &str) -> Result<String, ClientError> {
        let form = [
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", caller_token),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", &self.audience),
        ];
        let (token, until) = request_token(
            &self.http,
            &self.token_endpoint,
            (&self.client_id, &self.client_secret),
            &form,
            None,
        )
        .await
        .map_err(|refusal| match refusal {
            // The caller's token itself was refused: their sign-in has ended.
            Refusal::Refused {
                status: 400,
                error,
                description,
            } if error == "invalid_request" || error == "invalid_grant" => {
                ClientError::SignInAgain {
                    reason: description.unwrap_or(error),
                }
            }
            other => ClientError::Token(other.to_string()),
        })?;
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if cached.len() >= EXCHANGE_CACHE {
            let now = Instant::now();
            cached.retain(|_, (_, until)| now < *until);
            if cached.len() >= EXCHANGE_CACHE {
                cached.clear();
            }
        }
        cached.insert(Self::key(caller_token), (token.clone(), until));
        Ok(token)
    }
}

/// One caller's tokens from a [`TokenExchange`].
struct OnBehalfOf {
    exchange: Arc<TokenExchange>,
    caller_token: String,
}

#[async_trait]
impl TokenSource for OnBehalfOf {
    async fn token(&self) -> Result<String, ClientError> {
        match self.exchange.cached(&self.caller_token, None) {
            Some(token) => Ok(token),
            None => self.exchange.exchange(&self.caller_token).await,
        }
    }

    async fn renew(&self, refused: &str) -> Result<String, ClientError> {
        match self.exchange.cached(&self.caller_token, Some(refused)) {
            Some(token) => Ok(token),
            None => self.exchange.exchange(&self.caller_token).await,
        }
    }
}

/// An HTTP client that attaches the bearer token and retries once on `invalid_token`.
#[derive(Clone)]
pub struct ServiceClient {
    http: reqwest::Client,
    tokens: Arc<dyn TokenSource>,
    dpop: Option<Arc<DpopKey>>,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient").finish_non_exhaustive()
    }
}

impl ServiceClient {
    /// A client taking tokens from `tokens`.
    pub fn new(tokens: Arc<dyn TokenSource>) -> Self {
        Self {
            http: crate::http_client(),
            tokens,
            dpop: None,
        }
    }

    /// Sends its tokens with the `DPoP` scheme and a fresh proof by `key` for each request
    /// (RFC 9449 §7.1): for tokens bound to `key` (a [`ClientCredentials`] made
    /// [`with_dpop`](ClientCredentials::with_dpop) the same key).
    #[must_use]
    pub fn with_dpop(mut self, key: Arc<DpopKey>) -> Self {
        self.dpop = Some(key);
        self
    }

    /// Sends one request with `token`: as `Bearer`, or with a DPoP proof (and, asked for
    /// one, again once with the API's nonce).
    async fn attempt(
        &self,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        token: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let failed = |e: reqwest::Error| ClientError::Request(e.to_string());
        let Some(key) = &self.dpop else {
            return build(&self.http)
                .bearer_auth(token)
                .send()
                .await
                .map_err(failed);
        };
        let mut nonce: Option<String> = None;
        loop {
            let request = build(&self.http).build().map_err(failed)?;
            let proof = key.proof(
                request.method().as_str(),
                request.url().as_str(),
                Some(token),
                nonce.as_deref(),
                unix_now(),
            );
            let mut request = request;
            let headers = request.headers_mut();
            for (name, value) in [
                (
                    reqwest::header::AUTHORIZATION.as_str(),
                    format!("DPoP {token}"),
                ),
                ("dpop", proof),
            ] {
                let value = reqwest::header::HeaderValue::from_str(&value)
                    .map_err(|e| ClientError::Request(e.to_string()))?;
                headers.insert(name, value);
            }
            let response = self.http.execute(request).await.map_err(failed)?;
            let asked = response.status() == reqwest::StatusCode::UNAUTHORIZED
                && challenge_param(first_challenges(&response), "dpop", "error").as_deref()
                    == Some("use_dpop_nonce");
            match response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
            {
                Some(given) if asked && nonce.is_none() => nonce = Some(given.to_owned()),
                _ => return Ok(response),
            }
        }
    }

    /// Sends the request `build` makes (called again for the one retry), with the token.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let token = self.tokens.token().await?;
        let first = self.attempt(&build, &token).await?;
        if first.status() == reqwest::StatusCode::UNAUTHORIZED
            && bearer_error(first_challenges(&first)).as_deref()
                == Some("insufficient_user_authentication")
        {
            return Err(ClientError::StepUp {
                acr_values: bearer_param(first_challenges(&first), "acr_values"),
                max_age: bearer_param(first_challenges(&first), "max_age")
                    .and_then(|v| v.parse().ok()),
            });
        }
        if !refused_token(&first) {
            return Ok(first);
        }
        let token = match self.tokens.renew(&token).await {
            Err(ClientError::SignInAgain { .. }) => {
                let reason = bearer_param(first_challenges(&first), "error_description")
                    .unwrap_or_else(|| "the access token was refused".to_owned());
                return Err(ClientError::SignInAgain { reason });
            }
            other => other?,
        };
        self.attempt(&build, &token).await
    }
}

/// A 401 whose challenge (`Bearer` or `DPoP`) says the token itself was bad (not missing,
/// not insufficient).
fn refused_token(response: &reqwest::Response) -> bool {
    response.status() == reqwest::StatusCode::UNAUTHORIZED
        && ["bearer", "dpop"].iter().any(|scheme| {
            challenge_param(first_challenges(response), scheme, "error").as_deref()
                == Some("invalid_token")
        })
}

/// Seconds since the Unix epoch, for proofs' `iat`.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn first_challenges(response: &reqwest::Response) -> impl Iterator<Item = &str> {
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
}

/// The `error` parameter of the `Bearer` challenge in `WWW-Authenticate` values (RFC 9110
/// §11.6.1, RFC 6750 §3): scheme in any case, value quoted or bare, spaces around `=`,
/// other schemes' challenges in the same header skipped.
pub fn bearer_error<'a>(values: impl Iterator<Item = &'a str>) -> Option<String> {
    bearer_param(values, "error")
}

/// The parameter `wanted` (`error`, `error_description`, `scope`, ...) of the `Bearer`
/// challenge, read as [`bearer_error`] reads `error`.
pub fn bearer_param<'a>(values: impl Iterator<Item = &'a str>, wanted: &str) -> Option<String> {
    challenge_param(values, "bearer", wanted)
}

/// The parameter `wanted` of the challenge of `scheme` (`Bearer`, `DPoP`), read as
/// [`bearer_error`] reads `error`.
pub fn challenge_param<'a>(
    values: impl Iterator<Item = &'a str>,
    scheme: &str,
    wanted: &str,
) -> Option<String> {
    for value in values {
        let mut rest = value;
        let mut in_bearer = false;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let end = rest.find([' ', '\t', ',', '=']).unwrap_or(rest.len());
            let name = &rest[..end];
            rest = rest[end..].trim_start_matches([' ', '\t']);
            let Some(after) = rest.strip_prefix('=') else {
                // A token not followed by `=`: the next challenge's scheme.
                in_bearer = name.eq_ignore_ascii_case(scheme);
                continue;
            };
            let (param, tail) = param_value(after.trim_start_matches([' ', '\t']));
            rest = tail;
            if in_bearer && name.eq_ignore_ascii_case(wanted) {
                return Some(param);
            }
        }
    }
    None
}

/// A quoted-string (with `\` escapes) or a token, and what follows it.
fn param_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_error;

    fn error(values: &[&str]) -> Option<String> {
        bearer_error(values.iter().copied())
    }

    #[test]
    fn the_bearer_error_in_any_legal_spelling() {
        let want = Some("invalid_token".to_owned());
        assert_eq!(
            error(&[r#"Bearer realm="api", error="invalid_token", error_description="x, y""#]),
            want
        );
        assert_eq!(error(&["bearer error=invalid_token"]), want);
        assert_eq!(
            error(&[r#"Bearer realm="a" , error = "invalid_token""#]),
            want
        );
        assert_eq!(
            error(&[r#"Basic realm="b", Bearer realm="a", error="invalid_token""#]),
            want
        );
        assert_eq!(
            error(&[r#"Basic realm="b""#, r#"Bearer error="invalid_token""#]),
            want
        );
        assert_eq!(
            error(&[r#"Bearer realm="say \"error=invalid_token\"", error="insufficient_scope""#]),
            Some("insufficient_scope".to_owned()),
            "a quoted value is not a parameter"
        );
        assert_eq!(
            error(&[r#"Basic error="invalid_token""#]),
            None,
            "not Bearer"
        );
        assert_eq!(error(&[r#"Bearer realm="api""#]), None);
        assert_eq!(
            error(&[r#"Bearer error="unterminated"#]),
            Some("unterminated".to_owned())
        );
    }
}
