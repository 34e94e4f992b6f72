//! `/admin/v1/groups`: create, list and search, get, rename, delete; members: list, add,
//! remove. `/admin/v1/users/{sub}/access`: a person's groups and roles. Removing a member
//! revokes, at every app it matters to, the access tokens that carry it (see
//! `lanyard_core::access`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::error::AdminError;
use super::error::{Body, present};
use super::query::{PageSize, Query, next_cursor};
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::access::{self, GroupChange, HeldRole, NewGroup, Withdrawn};
use lanyard_core::model::{Group, MAX_DESCRIPTION, MAX_GROUP_NAME};

/// A group as admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct GroupView {
    /// Opaque, never reused.
    id: String,
    /// Unique regardless of letter case; what the `groups` claim carries.
    name: String,
    /// What it is for.
    description: Option<String>,
    /// The id a provisioning system (SCIM) knows it by.
    external_id: Option<String>,
    /// Seconds since the Unix epoch.
    created_at: i64,
    /// When it or its members last changed; seconds since the Unix epoch.
    updated_at: i64,
}

impl From<&Group> for GroupView {
    fn from(g: &Group) -> Self {
        Self {
            id: g.id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            external_id: g.external_id.clone(),
            created_at: g.created_at.as_secs(),
            updated_at: g.updated_at.as_secs(),
        }
    }
}

/// A group to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGroup {
    /// Unique regardless of letter case; no control characters, no space at either end.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff](?:[^\u0000-\u001f\u007f-\u009f\ufeff]*[^\s\u0000-\u001f\u007f-\u009f\ufeff])?$"
    )]
    name: String,
    /// What it is for (line breaks allowed, no other control characters).
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    description: Option<String>,
}

// The limits above are literals (attributes take no constants); this keeps them honest.
const _: () = assert!(MAX_GROUP_NAME == 100 && MAX_DESCRIPTION == 500);

/// Creates a group.
#[utoipa::path(
    post,
    path = "/groups",
    tag = "groups",
    request_body = CreateGroup,
    responses(
        (status = 201, description = "Created", body = GroupView),
        (status = 409, description = "The name is taken", body = super::ApiError),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    Body(body): Body<CreateGroup>,
) -> Result<(StatusCode, Json<GroupView>), AdminError> {
    let new = NewGroup {
        name: body.name,
        description: body.description,
        external_id: None,
    };
    let group = access::create_group(&state, new, &admin.actor()).await?;
    Ok((StatusCode::CREATED, Json(GroupView::from(&group))))
}

/// A page of groups.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct GroupPage {
    /// Groups in name order.
    groups: Vec<GroupView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Groups per page.
const PAGE: PageSize = PageSize {
    default: 50,
    max: 200,
};

/// Lists groups in name order, a page at a time.
#[utoipa::path(
    get,
    path = "/groups",
    tag = "groups",
    params(
        ("search" = Option<String>, Query, description = "Only groups whose name contains this (case-insensitively)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Groups per page (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of groups", body = GroupPage),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Query,
) -> Result<Json<GroupPage>, AdminError> {
    let limit = query.limit(PAGE)?;
    let found =
        access::list_groups(&state, query.text("search"), query.text("after"), limit).await?;
    Ok(Json(GroupPage {
        next: next_cursor(&found, limit, |g| g.name.clone()),
        groups: found.iter().map(GroupView::from).collect(),
    }))
}

/// Gets a group.
#[utoipa::path(
    get,
    path = "/groups/{id}",
    tag = "groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = GroupView),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<GroupView>, AdminError> {
    Ok(Json(GroupView::from(&access::group(&state, &id).await?)))
}

/// A change to a group: a field left out stays as it is; `null` clears the description.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateGroup {
    /// A new name. The old one leaves the tokens that carry it at once.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff](?:[^\u0000-\u001f\u007f-\u009f\ufeff]*[^\s\u0000-\u001f\u007f-\u009f\ufeff])?$"
    )]
    name: Option<String>,
    /// A new description, or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, max_length = 500, pattern = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    description: Option<Option<String>>,
}

/// Renames a group or changes its description.
#[utoipa::path(
    patch,
    path = "/groups/{id}",
    tag = "groups",
    params(("id" = String, Path, description = "The group's id")),
    request_body = UpdateGroup,
    responses(
        (status = 200, description = "The group as changed", body = GroupView),
        (status = 409, description = "The name is taken, or the group changed meanwhile", body = super::ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Body(body): Body<UpdateGroup>,
) -> Result<Json<GroupView>, AdminError> {
    let change = GroupChange {
        name: body.name,
        description: body.description,
        external_id: None,
    };
    let group = access::update_group(&state, &id, change, &admin.actor()).await?;
    Ok(Json(GroupView::from(&group)))
}

/// Deletes a group: its members lose it and the roles it held, and the apps refuse their
/// tokens that carried them within a second.
#[utoipa::path(
    delete,
    path = "/groups/{id}",
    tag = "groups",
    params(("id" = String, Path, description = "The group's id")),
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
    Path(id): Path<String>,
) -> Result<Json<Withdrawn>, AdminError> {
    Ok(Json(
        access::delete_group(&state, &id, &admin.actor()).await?,
    ))
}

/// A member of a group.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Member {
    /// The person's `sub`.
    sub: String,
    /// Their username.
    username: String,
    /// Their display name.
    display_name: Option<String>,
}

/// A group's members.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Members {
    /// In username order.
    members: Vec<Member>,
}

/// Lists a group's members.
#[utoipa::path(
    get,
    path = "/groups/{id}/members",
    tag = "groups",
    params(("id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The members", body = Members),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn members(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Members>, AdminError> {
    let group = access::group(&state, &id).await?;
    let members = access::members(&state, &group.id)
        .await?
        .into_iter()
        .map(|u| Member {
            sub: u.sub,
            username: u.username,
            display_name: u.display_name,
        })
        .collect();
    Ok(Json(Members { members }))
}

/// Whether a call added something.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Added {
    /// False when it was there already (the call changes nothing then).
    pub(super) added: bool,
}

/// Adds a person to a group (idempotent).
#[utoipa::path(
    put,
    path = "/groups/{id}/members/{sub}",
    tag = "groups",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("sub" = String, Path, description = "The person's sub"),
    ),
    responses(
        (status = 200, description = "A member now", body = Added),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, sub)): Path<(String, String)>,
) -> Result<Json<Added>, AdminError> {
    let (added, _) = access::change_members(&state, &id, &[sub], &[], &admin.actor()).await?;
    Ok(Json(Added {
        added: !added.is_empty(),
    }))
}

/// Removes a person from a group; the apps refuse their tokens that carried it (its name,
/// or a role it gave) within a second.
#[utoipa::path(
    delete,
    path = "/groups/{id}/members/{sub}",
    tag = "groups",
    params(
        ("id" = String, Path, description = "The group's id"),
        ("sub" = String, Path, description = "The person's sub"),
    ),
    responses(
        (status = 200, description = "Removed; what was revoked", body = Withdrawn),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    admin: Admin,
    Path((id, sub)): Path<(String, String)>,
) -> Result<Json<Withdrawn>, AdminError> {
    let (_, withdrawn) =
        access::change_members(&state, &id, &[], std::slice::from_ref(&sub), &admin.actor())
            .await?;
    if withdrawn.people == 0 {
        return Err(lanyard_core::ServiceError::NotFound(format!(
            "{sub:?} is not a member of group {id:?}"
        ))
        .into());
    }
    Ok(Json(withdrawn))
}

/// A person's groups and roles.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Access {
    /// Their groups, in name order.
    groups: Vec<GroupView>,
    /// Every role they hold, at every app, and how.
    roles: Vec<HeldRole>,
}

/// A person's groups and roles (what their tokens carry).
#[utoipa::path(
    get,
    path = "/users/{sub}/access",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "Their groups and roles", body = Access),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn of_user(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<Access>, AdminError> {
    lanyard_core::users::get(&state, &sub).await?;
    Ok(Json(Access {
        groups: access::groups_of(&state, &sub)
            .await?
            .iter()
            .map(GroupView::from)
            .collect(),
        roles: access::roles_of(&state, &sub).await?,
    }))
}
