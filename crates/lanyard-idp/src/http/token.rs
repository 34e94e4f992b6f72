//! `POST /token` (RFC 6749 §3.2).

use axum::Json;
use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;

use super::authorize::is_form;
use super::reply::no_store;
use crate::model::Client;
use crate::oauth::client_auth;
use crate::oauth::error::TokenError;
use crate::oauth::grants::{authorization_code, client_credentials, refresh_token};
use crate::oauth::params::Params;
use crate::state::AppState;

/// The token endpoint.
pub(crate) async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match respond(&state, peer, &headers, query.as_deref(), &body).await {
        Ok(response) => (no_store(), Json(response)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn respond(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<crate::oauth::issue::TokenResponse, TokenError> {
    let (client, params, _) = client_request(state, peer, headers, query, body).await?;
    match params.get("grant_type") {
        Some("authorization_code") => authorization_code::exchange(state, &client, &params).await,
        Some("refresh_token") => refresh_token::refresh(state, &client, &params).await,
        Some("client_credentials") => client_credentials::grant(state, &client, &params).await,
        Some(other) => Err(TokenError::unsupported_grant_type(format!(
            "grant_type {other} is not supported (use authorization_code, refresh_token or client_credentials)"
        ))),
        None => Err(TokenError::invalid_request("grant_type is missing")),
    }
}

/// A client's POST to the token, revocation or introspection endpoint: a form body with no
/// parameters in the URL, no parameter twice, and the client authenticated (RFC 6749 §2.3,
/// RFC 7009 §2.1, RFC 7662 §2.1). Returns the client, the parameters, and how it
/// authenticated.
pub(super) async fn client_request(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(Client, Params, client_auth::Method), TokenError> {
    // RFC 6749 §2.3.1, §3.2: credentials and parameters never in the URL.
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(TokenError::invalid_request(
            "parameters belong in the request body, not the URL",
        ));
    }
    if !is_form(headers) {
        return Err(TokenError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body).map_err(|e| TokenError::invalid_request(e.to_string()))?;
    let basic = basic_credentials(headers)?;
    let presented = client_auth::presented(basic, &params)?;
    if let Some(name) = params.duplicated() {
        return Err(TokenError::invalid_request(format!(
            "{name} is sent more than once"
        )));
    }
    let client = state.db.client(&presented.client_id).await?;
    let ip = peer.ip().to_string();
    client_auth::authenticate_throttled(state, &presented, client.as_ref(), &ip).await?;
    let client =
        client.ok_or_else(|| TokenError::invalid_client("client authentication failed"))?;
    Ok((client, params, presented.method))
}

/// The confidential client behind a request's HTTP Basic credentials, for endpoints that
/// take no body (the revocation feed's GETs). Public clients cannot authenticate here.
pub(super) async fn secret_client(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<Client, TokenError> {
    let basic = basic_credentials(headers)?.ok_or_else(|| {
        TokenError::invalid_client("send the client's id and secret with HTTP Basic")
    })?;
    let presented = client_auth::presented(Some(basic), &Params::default())?;
    let client = state.db.client(&presented.client_id).await?;
    let ip = peer.ip().to_string();
    client_auth::authenticate_throttled(state, &presented, client.as_ref(), &ip).await?;
    client.ok_or_else(|| TokenError::invalid_client("client authentication failed"))
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, TokenError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let malformed =
        || TokenError::invalid_client("the Authorization header is not valid Basic credentials");
    if values.next().is_some() {
        return Err(malformed());
    }
    let text = value.to_str().map_err(|_| malformed())?;
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
