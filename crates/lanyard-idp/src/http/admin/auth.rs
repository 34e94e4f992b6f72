//! Who may call the admin API: the bearer of a live access token with scope `lanyard:admin`,
//! answered per RFC 6750 §3 (no token: 401 with a bare challenge; a bad one: 401
//! `invalid_token`; one without the scope: 403 `insufficient_scope`). The token must have
//! been issued by `client_credentials` (its `sub` is its client and it has no session) to a
//! client that still holds that scope and still exists.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use lanyard_core::revocation::{self, LiveError};
use lanyard_core::{Core, ServiceError};

use super::error::AdminError;

use crate::dpop::{Presented, SenderError, check_sender};
use crate::http::reply::{bearer_error, dpop_error, dpop_proofs};
use crate::http::userinfo::bearer_header;
use crate::state::AppState;

/// An authorized admin caller: the client the token was issued to.
#[derive(Debug, Clone)]
pub(crate) struct Admin {
    /// The admin client's id.
    pub client_id: String,
}

impl Admin {
    /// How the audit trail and the revocation record name this caller.
    pub(crate) fn actor(&self) -> String {
        format!("admin:{}", self.client_id)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (token, dpop_scheme) = match bearer_header(&parts.headers) {
            Ok(Some(token)) => token,
            Ok(None) => return Err(bearer_error(StatusCode::UNAUTHORIZED, None, None, None)),
            Err(description) => {
                return Err(bearer_error(
                    StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    Some(description),
                    None,
                ));
            }
        };
        let presented = presented(state, parts, &token, dpop_scheme);
        match authorize(state, &presented).await {
            Ok(client_id) => Ok(Admin { client_id }),
            Err(refused) => Err(refusal(state, refused, dpop_scheme, ADMIN_SCOPE)),
        }
    }
}

/// The client behind a request to an API of its own scope (SCIM: `lanyard:scim`, Shared
/// Signals: `lanyard:ssf`), or the refusal as RFC 6750 §3 says: the challenge in
/// `WWW-Authenticate`, the body in the API's own format, written by `body(status, detail)`.
pub(crate) async fn scoped_caller(
    parts: &Parts,
    state: &AppState,
    scope: &str,
    body: impl Fn(u16, &str) -> Response,
) -> Result<String, Response> {
    let refuse = |status: u16, error: Option<&str>, detail: &str| {
        let mut challenge = r#"Bearer realm="lanyard""#.to_owned();
        if let Some(e) = error {
            challenge.push_str(&format!(
                r#", error="{e}", error_description="{}""#,
                detail.replace(['"', '\\'], "'")
            ));
        }
        if status == 403 {
            challenge.push_str(&format!(r#", scope="{scope}""#));
        }
        let mut response = body(status, detail);
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    };
    let (token, dpop_scheme) = match bearer_header(&parts.headers) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(refuse(401, None, "an access token is required")),
        Err(description) => return Err(refuse(400, Some("invalid_request"), description)),
    };
    let presented = presented(state, parts, &token, dpop_scheme);
    match authorize_for(state, &presented, scope).await {
        Ok(client_id) => Ok(client_id),
        Err(
            refused @ (AdminAuthError::InvalidDpopProof(_)
            | AdminAuthError::InvalidDpopToken(_)
            | AdminAuthError::UseDpopNonce),
        ) => Err(refusal(state, refused, true, scope)),
        Err(AdminAuthError::InvalidToken(d)) => Err(refuse(401, Some("invalid_token"), &d)),
        Err(AdminAuthError::InsufficientScope(d)) => {
            Err(refuse(403, Some("insufficient_scope"), &d))
        }
        Err(AdminAuthError::Unavailable(d)) => {
            tracing::error!(error = %d, %scope, "a caller's token could not be checked");
            let mut response = body(503, &format!("try again shortly ({d})"));
            response
                .headers_mut()
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static("5"));
            Err(response)
        }
    }
}

/// The token as the request presented it, for [`authorize_for`].
pub(crate) fn presented<'a>(
    state: &AppState,
    parts: &'a Parts,
    token: &'a str,
    dpop_scheme: bool,
) -> Presented<'a> {
    Presented {
        token,
        dpop_scheme,
        proofs: dpop_proofs(&parts.headers),
        method: parts.method.as_str(),
        // Under a nested router the URI lost its prefix; the original has it.
        url: state.config.url(
            parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or(parts.uri.path(), |o| o.0.path()),
        ),
    }
}

/// The answer to a refused call (RFC 6750 §3, RFC 9449 §7.1).
pub(crate) fn refusal(
    state: &AppState,
    refused: AdminAuthError,
    dpop_scheme: bool,
    scope: &str,
) -> Response {
    match refused {
        AdminAuthError::InvalidToken(description) if dpop_scheme => {
            dpop_error(state, "invalid_token", &description)
        }
        AdminAuthError::InvalidDpopToken(description) => {
            dpop_error(state, "invalid_token", &description)
        }
        AdminAuthError::InvalidDpopProof(description) => {
            dpop_error(state, "invalid_dpop_proof", &description)
        }
        AdminAuthError::UseDpopNonce => dpop_error(
            state,
            "use_dpop_nonce",
            "send the DPoP proof again with the nonce in the DPoP-Nonce header",
        ),
        AdminAuthError::InvalidToken(description) => bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            Some(&description),
            None,
        ),
        AdminAuthError::InsufficientScope(description) => bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            Some(&description),
            Some(scope),
        ),
        AdminAuthError::Unavailable(detail) => {
            AdminError(ServiceError::Unavailable(detail)).into_response()
        }
    }
}

/// The scope the admin API requires.
pub(crate) const ADMIN_SCOPE: &str = "lanyard:admin";

/// Why an admin call was refused (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminAuthError {
    /// 401 `invalid_token`, with this description.
    InvalidToken(String),
    /// 403 `insufficient_scope`, with this description.
    InsufficientScope(String),
    /// 401 `invalid_token` with a `DPoP` challenge: the token was sent with the wrong
    /// scheme for its binding (RFC 9449 §7.1).
    InvalidDpopToken(String),
    /// 401 `invalid_dpop_proof` (RFC 9449 §7.1), with this description.
    InvalidDpopProof(String),
    /// 401 `use_dpop_nonce`.
    UseDpopNonce,
    /// 503: the token could not be judged.
    Unavailable(String),
}

/// The admin client behind the token `presented`.
pub(crate) async fn authorize(
    state: &Core,
    presented: &Presented<'_>,
) -> Result<String, AdminAuthError> {
    authorize_for(state, presented, ADMIN_SCOPE).await
}

/// The client behind `token`, a live `client_credentials` token for `scope` (`lanyard:admin`
/// for the admin API, `lanyard:scim` for SCIM) of a client that still holds that scope.
pub(crate) async fn authorize_for(
    state: &Core,
    presented: &Presented<'_>,
    scope: &str,
) -> Result<String, AdminAuthError> {
    let claims = revocation::live_access_token(state, presented.token)
        .await
        .map_err(|e| match e {
            LiveError::Invalid(d) => AdminAuthError::InvalidToken(d),
            LiveError::Unavailable(e) => AdminAuthError::Unavailable(e.to_string()),
        })?;
    check_sender(state, claims.cnf.as_ref(), presented)
        .await
        .map_err(|e| match e {
            SenderError::InvalidToken(d) => AdminAuthError::InvalidDpopToken(d),
            SenderError::InvalidProof(d) => AdminAuthError::InvalidDpopProof(d),
            SenderError::UseNonce => AdminAuthError::UseDpopNonce,
            SenderError::Unavailable(e) => AdminAuthError::Unavailable(e.to_string()),
        })?;
    if !claims.has_scope(scope) {
        return Err(AdminAuthError::InsufficientScope(format!(
            "the access token was not granted the {scope} scope"
        )));
    }
    // A token issued for another resource (`resource=...`) is not for us, whatever its scope
    // (RFC 9068 §4): an API that received it must not be able to replay it here.
    if !claims.aud.contains(&claims.client_id) {
        return Err(AdminAuthError::InvalidToken(
            "the access token was issued for another resource, not this API".to_owned(),
        ));
    }
    // A user's token never administers, whatever its scope says.
    if claims.sub != claims.client_id || claims.sid.is_some() {
        return Err(AdminAuthError::InsufficientScope(format!(
            "this API takes a client_credentials token for the {scope} scope, not a user's token"
        )));
    }
    let client = state
        .db
        .clients()
        .get(&claims.client_id)
        .await
        .map_err(|e| AdminAuthError::Unavailable(e.to_string()))?
        .ok_or_else(|| AdminAuthError::InvalidToken("the client no longer exists".to_owned()))?;
    if !client.scopes.iter().any(|s| s == scope) {
        return Err(AdminAuthError::InsufficientScope(format!(
            "the client no longer holds the {scope} scope"
        )));
    }
    Ok(claims.client_id)
}
