//! `/admin/v1/clients`: register, list, get, update, rotate the secret, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lanyard_core::model::{Client, ClientSettings};
use serde::Serialize;
use utoipa::PartialSchema as _;
use utoipa::openapi::{RefOr, Schema};

use super::auth::Admin;
use super::error::{AdminError, Body};
use super::query::{PageSize, Query, next_cursor};
use super::{ApiError, Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::clients;
use lanyard_core::clients::NewClient;
use lanyard_core::revoke::Outcome;

/// A client as admins see it: its settings and when it was registered and last changed
/// (never its secret or the secret's hash).
#[derive(Debug, Serialize)]
pub(crate) struct ClientView {
    #[serde(flatten)]
    settings: ClientSettings,
    /// Seconds since the Unix epoch.
    created_at: i64,
    /// Seconds since the Unix epoch.
    updated_at: i64,
}

/// The settings' own schema (`ClientSettings`), changed by `edit`: the schemas of the
/// shapes the API derives from the settings are made from it, never written again.
fn settings_schema(edit: impl FnOnce(&mut utoipa::openapi::schema::Object)) -> RefOr<Schema> {
    let mut schema = ClientSettings::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        edit(object);
    }
    schema
}

impl utoipa::PartialSchema for ClientView {
    fn schema() -> RefOr<Schema> {
        settings_schema(|object| {
            object.description = Some(
                "A client: its settings, and when it was registered and last changed (seconds since the Unix epoch)."
                    .to_owned(),
            );
            for time in ["created_at", "updated_at"] {
                object.properties.insert(time.to_owned(), i64::schema());
                object.required.push(time.to_owned());
            }
        })
    }
}

impl utoipa::ToSchema for ClientView {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        // What the settings' schema refers to (the grant types, the scope token).
        <ClientSettings as utoipa::ToSchema>::schemas(schemas);
    }
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            settings: c.settings.clone(),
            created_at: c.created_at.as_secs(),
            updated_at: c.updated_at.as_secs(),
        }
    }
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
    request_body(
        content = ClientSettings,
        description = "The client's settings. Left out: a confidential client with a secret Lanyard makes, \
            `authorization_code` and `refresh_token`, scopes `openid profile email offline_access`, \
            the client id as its name."
    ),
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
    Body(settings): Body<ClientSettings>,
) -> Result<(StatusCode, Json<Registered>), AdminError> {
    let new = NewClient {
        settings,
        secret: None,
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

/// Clients per page.
const PAGE: PageSize = PageSize {
    default: 50,
    max: 200,
};

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
    let limit = query.limit(PAGE)?;
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

/// A change to a client, as the OpenAPI document describes it: a JSON merge patch (RFC 7396)
/// of its settings. A field left out stays, `null` clears it, lists are replaced whole;
/// `client_id` and `public` cannot change. The schema is the settings' own, every field
/// optional (`ClientSettings` stays the one shape).
pub(crate) struct ClientPatch;

impl utoipa::PartialSchema for ClientPatch {
    fn schema() -> RefOr<Schema> {
        settings_schema(|object| {
            object.required.clear();
            object.properties.remove("client_id");
            object.properties.remove("public");
            object.description = Some(
                "A JSON merge patch (RFC 7396) of the client's settings: a field left out stays, \
                 null clears it, lists are replaced whole."
                    .to_owned(),
            );
        })
    }
}

impl utoipa::ToSchema for ClientPatch {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        // What the settings' schema refers to (the grant types, the scope token).
        <ClientSettings as utoipa::ToSchema>::schemas(schemas);
    }
}

/// Updates a client. Tokens already issued keep what they were issued with.
#[utoipa::path(
    patch,
    path = "/clients/{client_id}",
    tag = "clients",
    params(("client_id" = String, Path, description = "The client's id")),
    request_body = ClientPatch,
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
    Body(patch): Body<serde_json::Value>,
) -> Result<Json<ClientView>, AdminError> {
    let client = clients::update(&state, &client_id, &patch, &admin.actor()).await?;
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
