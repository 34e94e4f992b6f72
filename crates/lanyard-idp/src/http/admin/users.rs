//! `/admin/v1/users`: create, list and search, get, update the profile, set the password,
//! disable, enable, delete.

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
use lanyard_core::model::{MAX_DISPLAY_NAME, MAX_EMAIL, MAX_PASSWORD, MAX_USERNAME, MIN_PASSWORD};
use lanyard_core::revoke::Outcome;
use lanyard_core::users::NewUser;
use lanyard_core::users::{self, ProfileChange, UserView};

/// A user to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// What they sign in with: unique (case-insensitively), no spaces or control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff]+$"
    )]
    username: String,
    /// Their first password: 8 to 1024 characters, not one of the most common passwords.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
    /// Email address.
    #[schema(
        max_length = 254,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff]*@[^\s\u0000-\u001f\u007f-\u009f\ufeff]*$"
    )]
    email: Option<String>,
    /// Display name.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    display_name: Option<String>,
}

// The limits above are literals (attributes take no constants); these keep them honest.
const _: () = assert!(
    MAX_USERNAME == 64
        && MIN_PASSWORD == 8
        && MAX_PASSWORD == 1024
        && MAX_EMAIL == 254
        && MAX_DISPLAY_NAME == 200
);

/// Creates a user.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "The username is taken", body = super::ApiError),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    admin: Admin,
    Body(body): Body<CreateUser>,
) -> Result<(StatusCode, Json<UserView>), AdminError> {
    let new = NewUser {
        username: body.username,
        password: body.password,
        email: body.email,
        display_name: body.display_name,
    };
    let user = users::create(&state, new, &admin.actor()).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// A page of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct UserPage {
    /// Users in username order.
    users: Vec<UserView>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Users per page.
const PAGE: PageSize = PageSize {
    default: 50,
    max: 200,
};

/// Lists users in username order, a page at a time.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(
        ("search" = Option<String>, Query, description = "Only users whose username, email or display name contains this (case-insensitively)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 200, description = "Users per page (default 50)"),
    ),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Query,
) -> Result<Json<UserPage>, AdminError> {
    let limit = query.limit(PAGE)?;
    let found = users::list(&state, query.text("search"), query.text("after"), limit).await?;
    Ok(Json(UserPage {
        next: next_cursor(&found, limit, |u| u.username.clone()),
        users: found.iter().map(UserView::from).collect(),
    }))
}

/// Gets a user by `sub`.
#[utoipa::path(
    get,
    path = "/users/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "The user", body = UserView),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<UserView>, AdminError> {
    Ok(Json(UserView::from(&users::get(&state, &sub).await?)))
}

/// A profile change: a field left out stays as it is; `null` clears it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    /// The new email address, or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, max_length = 254, pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff]*@[^\s\u0000-\u001f\u007f-\u009f\ufeff]*$")]
    email: Option<Option<String>>,
    /// The new display name, or null to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    display_name: Option<Option<String>>,
    /// Whether the address is known to be the person's. A changed `email` is not, unless
    /// this says so in the same request.
    email_verified: Option<bool>,
}

/// Changes a user's email or display name, or whether the address is verified.
#[utoipa::path(
    patch,
    path = "/users/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The user as changed", body = UserView),
        (status = 409, description = "The user changed meanwhile; read it and retry", body = super::ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
    Body(body): Body<UpdateUser>,
) -> Result<Json<UserView>, AdminError> {
    let change = ProfileChange {
        email: body.email,
        display_name: body.display_name,
        email_verified: body.email_verified,
    };
    let user = users::update(&state, &sub, change, &admin.actor()).await?;
    Ok(Json(UserView::from(&user)))
}

/// A new password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPassword {
    /// The new password: 8 to 1024 characters, not one of the most common passwords.
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// Sets a user's password. Their sessions and tokens stay; revoke the user's `sub` to end
/// them too.
#[utoipa::path(
    put,
    path = "/users/{sub}/password",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    request_body = SetPassword,
    responses(
        (status = 204, description = "Set"),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
    Body(body): Body<SetPassword>,
) -> Result<StatusCode, AdminError> {
    users::set_password(&state, &sub, &body.password, &admin.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A disabled user and what disabling revoked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Disabled {
    /// The user, now disabled.
    user: UserView,
    /// What was revoked.
    revoked: Outcome,
}

/// Disables a user: no more sign-ins, and every session and token of theirs is revoked at
/// once (as a revocation by `sub`).
#[utoipa::path(
    post,
    path = "/users/{sub}/disable",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "Disabled", body = Disabled),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn disable(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<Disabled>, AdminError> {
    let (user, revoked) = users::disable(&state, &sub, &admin.actor()).await?;
    Ok(Json(Disabled {
        user: UserView::from(&user),
        revoked,
    }))
}

/// Lets a disabled user sign in again (their old tokens stay revoked).
#[utoipa::path(
    post,
    path = "/users/{sub}/enable",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 200, description = "Enabled", body = UserView),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn enable(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<Json<UserView>, AdminError> {
    let user = users::enable(&state, &sub, &admin.actor()).await?;
    Ok(Json(UserView::from(&user)))
}

/// Deletes a user, revoking everything of theirs first.
#[utoipa::path(
    delete,
    path = "/users/{sub}",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
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
    Path(sub): Path<String>,
) -> Result<Json<Outcome>, AdminError> {
    Ok(Json(users::delete(&state, &sub, &admin.actor()).await?))
}
