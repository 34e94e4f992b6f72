//! `/admin/v1/clients/{client_id}/roles`: the roles an application defines (create, list,
//! delete) and who holds them (grant to a group or a person, take away). Taking a role away
//! revokes the access tokens that carry it within a second (see `lanyard_core::access`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::error::{AdminError, Body};
use super::groups::Added;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::access::{self, Withdrawn};
use lanyard_core::model::{Holder, MAX_ROLE_NAME, Role};

/// A role as admins see it, with who holds it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RoleView {
    /// The application.
    client_id: String,
    /// What the `roles` claim carries.
    name: String,
    /// What the role allows.
    description: Option<String>,
    /// Seconds since the Unix epoch.
    created_at: i64,
    /// The groups that hold it (their ids).
    groups: Vec<String>,
    /// The people who hold it directly (their `sub`s).
    users: Vec<String>,
}

impl RoleView {
    fn new(role: &Role, holders: Vec<Holder>) -> Self {
        let (mut groups, mut users) = (Vec::new(), Vec::new());
        for h in holders {
            match h {
                Holder::Group(id) => groups.push(id),
                Holder::User(sub) => users.push(sub),
            }
        }
        Self {
            client_id: role.client_id.clone(),
            name: role.name.clone(),
            description: role.description.clone(),
            created_at: role.created_at.as_secs(),
            groups,
            users,
        }
    }
}

/// A role to define.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRole {
    /// Printable ASCII without spaces, quotes or backslashes, such as `billing:admin`.
    #[schema(min_length = 1, max_length = 100, pattern = r#"^[!#-\[\]-~]+$"#)]
    name: String,
    /// What the role allows (line breaks allowed, no other control characters).
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    description: Option<String>,
}

const _: () = assert!(MAX_ROLE_NAME == 100);

/// Defines a role of an application.
#[utoipa::path(
    post,
    path = "/clients/{client_id}/roles",
    tag = "roles",
    params(("client_id" = String, Path, description = "The application's client id")),
    request_body = CreateRole,
    responses(
        (status = 201, description = "Defined", body = RoleView),
        (status = 409, description = "The application has a role of that name", body = super::ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
    Body(body): Body<CreateRole>,
) -> Result<(StatusCode, Json<RoleView>), AdminError> {
    let role = access::create_role(
        &state,
        &client_id,
        &body.name,
        body.description,
        &admin.actor(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(RoleView::new(&role, Vec::new()))))
}

/// An application's roles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RoleList {
    /// In name order.
    roles: Vec<RoleView>,
}

/// Lists an application's roles and who holds each.
#[utoipa::path(
    get,
    path = "/clients/{client_id}/roles",
    tag = "roles",
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 200, description = "The roles", body = RoleList),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Path(client_id): Path<String>,
) -> Result<Json<RoleList>, AdminError> {
    let mut roles = Vec::new();
    for role in access::roles(&state, &client_id).await? {
        let holders = access::holders(&state, &client_id, &role.name).await?;
        roles.push(RoleView::new(&role, holders));
    }
    Ok(Json(RoleList { roles }))
}

/// Deletes a role: everyone who held it loses it, and the apps refuse their tokens that
/// carried it within a second.
#[utoipa::path(
    delete,
    path = "/clients/{client_id}/roles/{role}",
    tag = "roles",
    params(
        ("client_id" = String, Path, description = "The application's client id"),
        ("role" = String, Path, description = "The role's name"),
    ),
    responses(
        (status = 200, description = "Deleted; what was revoked", body = Withdrawn),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, role)): Path<(String, String)>,
) -> Result<Json<Withdrawn>, AdminError> {
    Ok(Json(
        access::delete_role(&state, &client_id, &role, &admin.actor()).await?,
    ))
}

/// Grants a role to every member of a group (idempotent).
#[utoipa::path(
    put,
    path = "/clients/{client_id}/roles/{role}/groups/{group_id}",
    tag = "roles",
    params(
        ("client_id" = String, Path, description = "The application's client id"),
        ("role" = String, Path, description = "The role's name"),
        ("group_id" = String, Path, description = "The group's id"),
    ),
    responses(
        (status = 200, description = "Granted", body = Added),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn grant_group(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, role, group_id)): Path<(String, String, String)>,
) -> Result<Json<Added>, AdminError> {
    grant(&state, &admin, &client_id, &role, Holder::Group(group_id)).await
}

/// Takes a role from a group; its members who do not hold it another way lose it, and the
/// apps refuse their tokens that carried it within a second.
#[utoipa::path(
    delete,
    path = "/clients/{client_id}/roles/{role}/groups/{group_id}",
    tag = "roles",
    params(
        ("client_id" = String, Path, description = "The application's client id"),
        ("role" = String, Path, description = "The role's name"),
        ("group_id" = String, Path, description = "The group's id"),
    ),
    responses(
        (status = 200, description = "Taken away; what was revoked", body = Withdrawn),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn revoke_group(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, role, group_id)): Path<(String, String, String)>,
) -> Result<Json<Withdrawn>, AdminError> {
    revoke(&state, &admin, &client_id, &role, Holder::Group(group_id)).await
}

/// Grants a role to one person (idempotent).
#[utoipa::path(
    put,
    path = "/clients/{client_id}/roles/{role}/users/{sub}",
    tag = "roles",
    params(
        ("client_id" = String, Path, description = "The application's client id"),
        ("role" = String, Path, description = "The role's name"),
        ("sub" = String, Path, description = "The person's sub"),
    ),
    responses(
        (status = 200, description = "Granted", body = Added),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn grant_user(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, role, sub)): Path<(String, String, String)>,
) -> Result<Json<Added>, AdminError> {
    grant(&state, &admin, &client_id, &role, Holder::User(sub)).await
}

/// Takes a role from one person (unless they hold it through a group too); the apps refuse
/// their tokens that carried it within a second.
#[utoipa::path(
    delete,
    path = "/clients/{client_id}/roles/{role}/users/{sub}",
    tag = "roles",
    params(
        ("client_id" = String, Path, description = "The application's client id"),
        ("role" = String, Path, description = "The role's name"),
        ("sub" = String, Path, description = "The person's sub"),
    ),
    responses(
        (status = 200, description = "Taken away; what was revoked", body = Withdrawn),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn revoke_user(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, role, sub)): Path<(String, String, String)>,
) -> Result<Json<Withdrawn>, AdminError> {
    revoke(&state, &admin, &client_id, &role, Holder::User(sub)).await
}

async fn grant(
    state: &AppState,
    admin: &Admin,
    client_id: &str,
    role: &str,
    holder: Holder,
) -> Result<Json<Added>, AdminError> {
    let added = access::grant_role(state, client_id, role, &holder, &admin.actor()).await?;
    Ok(Json(Added { added }))
}

async fn revoke(
    state: &AppState,
    admin: &Admin,
    client_id: &str,
    role: &str,
    holder: Holder,
) -> Result<Json<Withdrawn>, AdminError> {
    Ok(Json(
        access::revoke_role(state, client_id, role, &holder, &admin.actor()).await?,
    ))
}
