//! `GET|POST /userinfo` (OIDC Core §5.3) with RFC 6750 token handling.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::forms::is_form;
use super::reply::{bearer_error, dpop_error, dpop_proofs, no_store};
use crate::dpop::Presented;
use crate::oauth::userinfo::{UserinfoError, userinfo};
use crate::params::Params;
use crate::state::AppState;

/// UserInfo.
pub(crate) async fn handle(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let (token, dpop_scheme) = match bearer_token(&method, &headers, query.as_deref(), &body) {
        Ok(Some(token)) => token,
        Ok(None) => return bearer_error(StatusCode::UNAUTHORIZED, None, None, None),
        Err(description) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                Some(description),
                None,
            );
        }
    };
    let presented = Presented {
        token: &token,
        dpop_scheme,
        proofs: dpop_proofs(&headers),
        method: method.as_str(),
        url: state.config.url(crate::oauth::discovery::paths::USERINFO),
    };
    match userinfo(&state, &presented).await {
        Ok(claims) => (no_store(), Json(claims)).into_response(),
        Err(UserinfoError::InvalidToken(description)) if dpop_scheme => {
            dpop_error(&state, "invalid_token", &description)
        }
        Err(UserinfoError::InvalidDpopToken(description)) => {
            dpop_error(&state, "invalid_token", &description)
        }
        Err(UserinfoError::InvalidToken(description)) => bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            Some(&description),
            None,
        ),
        Err(UserinfoError::InvalidDpopProof(description)) => {
            dpop_error(&state, "invalid_dpop_proof", &description)
        }
        Err(UserinfoError::UseDpopNonce) => dpop_error(
            &state,
            "use_dpop_nonce",
            "send the DPoP proof again with the nonce in the DPoP-Nonce header",
        ),
        Err(UserinfoError::InsufficientScope) => bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            Some("the access token was not granted the openid scope"),
            Some("openid"),
        ),
        Err(UserinfoError::Unavailable) => {
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, no_store(), Json(serde_json::json!({
                "error": "temporarily_unavailable",
                "error_description": "the token could not be checked right now; retry in a moment",
            })))
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
    }
}

/// The access token: from `Authorization: Bearer` or `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1)
/// or, on POST, the `access_token` form field (§2.2, bearer only). Never the query string
/// (§2.3 SHOULD NOT; RFC 9700). Two at once, or a malformed header, is an
/// `invalid_request`. `true` beside it when sent with the `DPoP` scheme.
fn bearer_token(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Option<(String, bool)>, &'static str> {
    let header_token = bearer_header(headers)?;
    let query_params =
        Params::parse(query.unwrap_or("").as_bytes()).map_err(|_| "the query is not valid")?;
    if query_params.get("access_token").is_some() {
        return Err("send the access token in the Authorization header, not the URL");
    }
    let body_token = if *method == Method::POST && is_form(headers) {
        let form = Params::parse(body).map_err(|_| "the form is not valid")?;
        if form.is_duplicated("access_token") {
            return Err("access_token is sent more than once");
        }
        form.get("access_token").map(|t| (t.to_owned(), false))
    } else {
        None
    };
    match (header_token, body_token) {
        (Some(_), Some(_)) => Err("send the access token one way only"),
        (token, None) | (None, token) => Ok(token),
    }
}

/// The token of one `Authorization: Bearer` or `Authorization: DPoP` header (RFC 6750 §2.1,
/// RFC 9449 §7.1), if any, and whether it was `DPoP`. Two headers or credentials that are
/// not a b64token are an `invalid_request`; another scheme counts as no token.
pub(super) fn bearer_header(headers: &HeaderMap) -> Result<Option<(String, bool)>, &'static str> {
    let mut header_token = None;
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = values.next() {
        if values.next().is_some() {
            return Err("send one Authorization header");
        }
        let text = value
            .to_str()
            .map_err(|_| "the Authorization header is not valid")?;
        let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
        // Another scheme is no credentials at all: a bare challenge (RFC 6750 §3.1).
        let dpop = scheme.eq_ignore_ascii_case("dpop");
        if !dpop && !scheme.eq_ignore_ascii_case("bearer") {
            return Ok(None);
        }
        let token = token.trim();
        // b64token (RFC 6750 §2.1).
        let b64token = |t: &str| {
            !t.is_empty()
                && t.trim_end_matches('=')
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        };
        if !b64token(token) {
            return Err("the Bearer credentials are malformed");
        }
        header_token = Some((token.to_owned(), dpop));
    }
    Ok(header_token)
}
