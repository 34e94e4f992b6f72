//! `POST /token` (RFC 6749 §3.2).

use axum::Json;
use axum::body::Bytes;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::forms::is_form;
use super::reply::no_store;
use crate::dpop::DpopError;
use crate::oauth::client_auth;
use crate::oauth::error::TokenError;
use crate::oauth::grants::{
    self, authorization_code, client_credentials, device_code, refresh_token, token_exchange,
};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::model::{Client, GrantType};

/// The token endpoint.
pub(crate) async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut response = match respond(&state, &headers, query.as_deref(), &body).await {
        Ok(response) => (no_store(), Json(response)).into_response(),
        Err(e) => e.into_response(),
    };
    // With nonces required, every answer carries the one to use next (RFC 9449 §8).
    if let Some(nonce) = crate::dpop::nonce(&state)
        && let Ok(value) = HeaderValue::from_str(&nonce)
    {
        response.headers_mut().insert("dpop-nonce", value);
    }
    response
}

/// The DPoP proof sent with a token request (RFC 9449 §5), checked; its key's thumbprint.
/// A client that must use DPoP (`require_dpop`) gets nothing without one.
async fn dpop_key(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
) -> Result<Option<String>, TokenError> {
    let proofs = super::reply::dpop_proofs(headers);
    // Most token requests carry no proof: no URL is built for them.
    let url = if proofs.is_empty() {
        String::new()
    } else {
        state.config.url(super::paths::TOKEN)
    };
    match crate::dpop::check(state, &proofs, "POST", &url, None).await {
        Ok(Some(proof)) => Ok(Some(proof.jkt)),
        Ok(None) if client.require_dpop => Err(TokenError::invalid_dpop_proof(
            "this client must send a DPoP proof (RFC 9449) with every token request",
        )),
        Ok(None) => Ok(None),
        Err(DpopError::Invalid(why)) => Err(TokenError::invalid_dpop_proof(why)),
        Err(DpopError::UseNonce) => Err(TokenError::use_dpop_nonce()),
        Err(DpopError::Unavailable(e)) => Err(e.into()),
    }
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<crate::oauth::issue::TokenResponse, TokenError> {
    let (client, params, _) = client_request(state, headers, query, body).await?;
    let grant = grants::grant_type(&params)?;
    let jkt = dpop_key(state, headers, &client).await?;
    let jkt = jkt.as_deref();
    let issued = match grant {
        GrantType::AuthorizationCode => {
            authorization_code::exchange(state, &client, &params, jkt).await
        }
        GrantType::RefreshToken => refresh_token::refresh(state, &client, &params, jkt).await,
        GrantType::ClientCredentials => {
            client_credentials::grant(state, &client, &params, jkt).await
        }
        GrantType::DeviceCode => device_code::poll(state, &client, &params, jkt).await,
        GrantType::TokenExchange => token_exchange::exchange(state, &client, &params, jkt).await,
    }?;
    lanyard_core::metrics::token_issued(grant.as_str());
    Ok(issued)
}

/// A client's POST to the token, revocation or introspection endpoint: a form body with no
/// parameters in the URL, no parameter twice, and the client authenticated (RFC 6749 §2.3,
/// RFC 7009 §2.1, RFC 7662 §2.1). Returns the client, the parameters, and how it
/// authenticated.
pub(super) async fn client_request(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(Client, Params, client_auth::Method), TokenError> {
    let client_auth::ClientRequest { params, presented } =
        client_auth::read_request(query, is_form(headers), &authorization(headers), body)?;
    let client = state.db.clients().recent(&presented.client_id).await?;
    client_auth::authenticate_counted(state, &presented, client.as_ref()).await?;
    let client =
        client.ok_or_else(|| TokenError::invalid_client("client authentication failed"))?;
    Ok((client, params, presented.method))
}

/// The confidential client behind a request's HTTP Basic credentials, for endpoints that
/// take no body (the revocation feed's GETs). Public clients cannot authenticate here.
pub(super) async fn secret_client(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Client, TokenError> {
    let basic = client_auth::basic_credentials(&authorization(headers))?.ok_or_else(|| {
        TokenError::invalid_client("send the client's id and secret with HTTP Basic")
    })?;
    let presented = client_auth::presented(Some(basic), &Params::default())?;
    let client = state.db.clients().recent(&presented.client_id).await?;
    client_auth::authenticate_counted(state, &presented, client.as_ref()).await?;
    client.ok_or_else(|| TokenError::invalid_client("client authentication failed"))
}

/// The values of the request's `Authorization` headers.
fn authorization(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes())
        .collect()
}
