//! `/admin/v1/clients`: register, list, get, update, rotate the secret, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::error::AdminError;
use super::error::{Body, present};
use super::query::{Query, next_cursor};
use super::{ApiError, Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::clients::{self, ClientChange, ClientView};
use lanyard_core::clients::{NewClient, Secret};
use lanyard_core::revoke::Outcome;

/// A client to register. Left out: a confidential client with a secret Lanyard makes,
/// `authorization_code` and `refresh_token`, scopes `openid profile email offline_access`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateClient {
    /// Letters, digits, `-`, `.`, `_`, `~`; not 22 base64url characters (a user's `sub` has
    /// that shape).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^(?![A-Za-z0-9_-]{22}$)[A-Za-z0-9._~-]+$"
    )]
    client_id: String,
    /// Shown to people (default: the id).
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: Option<String>,
    /// A browser or native app: no secret, PKCE required.
    #[serde(default)]
    public: bool,
    /// Redirect URIs: https, http on a loopback address, or a reverse-domain private-use
    /// scheme; no fragment. Needed for `authorization_code`.
    #[serde(default)]
    redirect_uris: Vec<String>,
    /// Post-logout redirect URIs (same rules).
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    backchannel_logout_uri: Option<String>,
    /// Grant types.
    #[serde(default)]
    #[schema(inline)]
    grant_types: Vec<GrantName>,
    /// Scopes it may ask for.
    #[serde(default)]
    #[schema(inline)]
    scopes: Vec<ScopeName>,
    /// No consent; refresh tokens without `offline_access`.
    #[serde(default)]
    first_party: bool,
}

/// A grant type.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GrantName {
    /// The code flow (RFC 6749 §4.1).
    AuthorizationCode,
    /// Refresh tokens (§6).
    RefreshToken,
    /// The client acting for itself (§4.4).
    ClientCredentials,
}

impl GrantName {
    fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }
}

/// A scope token (RFC 6749 §3.3).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(value_type = String, pattern = r#"^[!#-\[\]-~]+$"#)]
pub(crate) struct ScopeName(String);

fn names(grants: Vec<GrantName>) -> Vec<String> {
    grants.into_iter().map(|g| g.as_str().to_owned()).collect()
}

fn scopes(scopes: Vec<ScopeName>) -> Vec<String> {
    scopes.into_iter().map(|s| s.0).collect()
}

/// A registered client and, when Lanyard made one, its secret: shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Registered {
    client: ClientView,
    /// The secret; store it now, it is never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

/// Registers a client.
#[utoipa::path(
    post,
    path = "/clients",
    tag = "clients",
    request_body = CreateClient,
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 409, description = "The client id is taken", body = ApiError),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    Body(body): Body<CreateClient>,
) -> Result<(StatusCode, Json<Registered>), AdminError> {
    let new = NewClient {
        client_id: body.client_id,
        name: body.name,
        secret: if body.public {
            Secret::Public
        } else {
            Secret::Generate
        },
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        backchannel_logout_uri: body.backchannel_logout_uri,
        grant_types: names(body.grant_types),
        scopes: scopes(body.scopes),
        first_party: body.first_party,
    };
    let (client, client_secret) = clients::create(&state, new, &admin.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            client: ClientView::from(&client),
            client_secret,
        }),
    ))
}

/// A page of clients.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ClientPage {
    /// In id order.
    clients: Vec<ClientView>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Lists clients in id order, a page at a time.
#[utoipa::path(
    get,
    path = "/clients",
    tag = "clients",
    params(
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Clients per page (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of clients", body = ClientPage),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Query,
) -> Result<Json<ClientPage>, AdminError> {
    let limit = query.limit(50, 200)?;
    let found = clients::list(&state, query.text("after"), limit).await?;
    Ok(Json(ClientPage {
        next: next_cursor(&found, limit, |c| c.client_id.clone()),
        clients: found.iter().map(ClientView::from).collect(),
    }))
}

/// Gets a client.
#[utoipa::path(
    get,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(client_id): Path<String>,
) -> Result<Json<ClientView>, AdminError> {
    Ok(Json(ClientView::from(
        &clients::get(&state, &client_id).await?,
    )))
}

/// A change to a client: a field left out stays; `null` clears an optional one. Lists are
/// replaced whole.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateClient {
    /// Shown to people.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$"
    )]
    name: Option<String>,
    /// Redirect URIs.
    redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URIs.
    post_logout_redirect_uris: Option<Vec<String>>,
    /// Back-channel logout URI, or null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    backchannel_logout_uri: Option<Option<String>>,
    /// Grant types.
    #[schema(inline)]
    grant_types: Option<Vec<GrantName>>,
    /// Scopes.
    #[schema(inline)]
    scopes: Option<Vec<ScopeName>>,
    /// First-party.
    first_party: Option<bool>,
    /// Access-token lifetime in seconds (1 to 3600), or null for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, nullable, minimum = 1, maximum = 3600)]
    access_token_lifetime: Option<Option<u64>>,
    /// ID-token lifetime in seconds (1 to 3600), or null for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, nullable, minimum = 1, maximum = 3600)]
    id_token_lifetime: Option<Option<u64>>,
    /// Offline refresh-token lifetime in seconds (1 to 31536000), or null for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, nullable, minimum = 1, maximum = 31_536_000)]
    refresh_token_lifetime: Option<Option<u64>>,
}

/// Updates a client. Tokens already issued keep what they were issued with.
#[utoipa::path(
    patch,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body = UpdateClient,
    responses(
        (status = 200, description = "The client as changed", body = ClientView),
        (status = 409, description = "The client changed meanwhile; read it and retry", body = ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
    Body(body): Body<UpdateClient>,
) -> Result<Json<ClientView>, AdminError> {
    let change = ClientChange {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        backchannel_logout_uri: body.backchannel_logout_uri,
        grant_types: body.grant_types.map(names),
        scopes: body.scopes.map(scopes),
        first_party: body.first_party,
        access_token_lifetime: body.access_token_lifetime,
        id_token_lifetime: body.id_token_lifetime,
        refresh_token_lifetime: body.refresh_token_lifetime,
    };
    let client = clients::update(&state, &client_id, change, &admin.actor()).await?;
    Ok(Json(ClientView::from(&client)))
}

/// A new client secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct NewSecret {
    /// Store it now; it is never shown again. The old one no longer works.
    client_secret: String,
}

/// Gives a confidential client a new secret; the old one stops working at once.
#[utoipa::path(
    post,
    path = "/clients/{client_id}/secret",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "The new secret", body = NewSecret),
        (status = 409, description = "A public client has no secret", body = ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
) -> Result<Json<NewSecret>, AdminError> {
    let client_secret = clients::rotate_secret(&state, &client_id, &admin.actor()).await?;
    Ok(Json(NewSecret { client_secret }))
}

/// Deletes a client after revoking every token issued to it.
#[utoipa::path(
    delete,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    responses(
        (status = 200, description = "Deleted; what was revoked", body = Outcome),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
) -> Result<Json<Outcome>, AdminError> {
    Ok(Json(
        clients::delete(&state, &client_id, &admin.actor()).await?,
    ))
}
