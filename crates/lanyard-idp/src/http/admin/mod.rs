//! The admin API, `/admin/v1`: JSON in and out, authorized by a bearer token with scope
//! `lanyard:admin` (`auth`), errors as `error::ApiError`. Each resource has its file; the
//! OpenAPI document at `/admin/v1/openapi.json` is generated from their annotations.

mod audit;
pub(crate) mod auth;
mod clients;
mod error;
mod factors;
mod groups;
mod keys;
mod locks;
mod mail;
mod operators;
mod query;
mod revocations;
mod roles;
mod sessions;
mod signals;
mod users;

use axum::Json;
use axum::Router;
use axum::routing::get;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) use error::ApiError;

use crate::state::AppState;

/// Where the admin API is mounted.
pub(crate) const PREFIX: &str = "/admin/v1";

/// The refusals every admin route can give.
#[derive(IntoResponses)]
#[allow(dead_code)] // Only documents responses.
pub(crate) enum Refusals {
    /// The input is not valid; `field` names what to fix.
    #[response(status = 400)]
    BadRequest(ApiError),
    /// No access token, or one that is not valid (expired, revoked, forged); see
    /// `WWW-Authenticate`.
    #[response(status = 401)]
    Unauthorized(BearerRefusal),
    /// The access token lacks the scope `lanyard:admin`, or is a user's.
    #[response(status = 403)]
    Forbidden(BearerRefusal),
    /// The database or token store is unavailable; retry after `Retry-After` seconds.
    #[response(status = 503)]
    Unavailable(ApiError),
}

/// A refusal per RFC 6750 §3; `WWW-Authenticate` carries the same.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Only documents responses (`reply::bearer_error` renders them).
pub(crate) struct BearerRefusal {
    /// `invalid_request`, `invalid_token` or `insufficient_scope`; absent when no token was
    /// sent.
    error: Option<String>,
    /// What was wrong.
    error_description: String,
}

/// The user, client, session or token named does not exist.
#[derive(IntoResponses)]
#[response(status = 404)]
#[allow(dead_code)]
pub(crate) struct Unknown(ApiError);

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lanyard admin API",
        version = "1",
        description = "Revoke tokens, manage users, groups, clients, their roles, sessions and keys, read the audit trail. \
            Authorize with an access token for scope `lanyard:admin` from the client_credentials grant."
    ),
    servers((url = "/admin/v1")),
    components(schemas(ApiError, BearerRefusal)),
    modifiers(&BearerScheme),
    tags(
        (name = "revocations", description = "Revoking tokens, users, sessions and clients"),
        (name = "users", description = "The people who sign in"),
        (name = "sessions", description = "Users' SSO sessions"),
        (name = "clients", description = "The applications that use Lanyard"),
        (name = "groups", description = "Groups of people and their members (the `groups` claim)"),
        (name = "roles", description = "The roles each application defines, and who holds them (the `roles` claim)"),
        (name = "keys", description = "Signing keys and their rotation"),
        (name = "locks", description = "Brute-force locks on usernames, IPs and clients"),
        (name = "audit", description = "The audit trail"),
        (name = "signals", description = "Shared Signals streams, the event outbox's deliveries, compromised credentials"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token with scope lanyard:admin (client_credentials grant)",
                    ))
                    .build(),
            ),
        );
    }
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(revocations::revoke, revocations::list))
        .routes(routes!(users::create, users::list))
        .routes(routes!(users::get, users::update, users::delete))
        .routes(routes!(users::set_password))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(mail::invite))
        .routes(routes!(mail::reinvite))
        .routes(routes!(mail::send_reset))
        .routes(routes!(mail::send_verification))
        .routes(routes!(mail::list))
        .routes(routes!(operators::list))
        .routes(routes!(operators::add, operators::remove))
        .routes(routes!(sessions::list, sessions::end_all))
        .routes(routes!(sessions::end))
        .routes(routes!(factors::list, factors::reset))
        .routes(routes!(clients::create, clients::list))
        .routes(routes!(clients::get, clients::update, clients::delete))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(groups::create, groups::list))
        .routes(routes!(groups::get, groups::update, groups::delete))
        .routes(routes!(groups::members))
        .routes(routes!(groups::add_member, groups::remove_member))
        .routes(routes!(groups::of_user))
        .routes(routes!(roles::create, roles::list))
        .routes(routes!(roles::delete))
        .routes(routes!(roles::grant_group, roles::revoke_group))
        .routes(routes!(roles::grant_user, roles::revoke_user))
        .routes(routes!(keys::list))
        .routes(routes!(keys::rotate))
        .routes(routes!(keys::remove))
        .routes(routes!(locks::user, locks::lift_user))
        .routes(routes!(locks::lift_ip))
        .routes(routes!(locks::lift_client))
        .routes(routes!(audit::list))
        .routes(routes!(signals::streams))
        .routes(routes!(signals::deliveries))
        .routes(routes!(signals::credential_compromise))
}

/// The admin routes, to be nested at [`PREFIX`], with `/openapi.json` describing them.
pub(crate) fn router() -> Router<AppState> {
    let (router, openapi) = api().split_for_parts();
    let document = std::sync::Arc::new(openapi);
    router.route(
        "/openapi.json",
        get(move || {
            let document = document.clone();
            async move { Json(document.as_ref().clone()) }
        }),
    )
}
