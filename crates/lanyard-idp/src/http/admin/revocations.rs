//! `POST /admin/v1/revocations` (revoke a token, jti, user, session or client) and
//! `GET /admin/v1/revocations` (what is in force).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};

use super::auth::Admin;
use super::error::AdminError;
use super::error::Body;
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::ServiceError;
use lanyard_core::revoke::{self, Entry, Outcome, Subject};

/// What to revoke: exactly one of the five. (Its schema, a `oneOf`, is written out below:
/// the struct's own would allow several at once.)
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeRequest {
    /// A refresh token (its family and the access tokens issued from it) or an access token.
    token: Option<String>,
    /// One access token's `jti`.
    jti: Option<String>,
    /// A user's `sub`: every session, refresh token and access token of theirs.
    sub: Option<String>,
    /// An SSO session's `sid`: the session and every token issued in it.
    sid: Option<String>,
    /// A client's id: every token issued to it.
    client_id: Option<String>,
}

/// The fields of [`RevokeRequest`] and what each revokes.
const FIELDS: [(&str, &str); 5] = [
    (
        "token",
        "A refresh token (its family and the access tokens issued from it) or an access token",
    ),
    ("jti", "One access token's jti"),
    (
        "sub",
        "A user's sub: every session, refresh token and access token of theirs",
    ),
    (
        "sid",
        "An SSO session's sid: the session and every token issued in it",
    ),
    ("client_id", "A client's id: every token issued to it"),
];

impl utoipa::PartialSchema for RevokeRequest {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "What to revoke: an object with exactly one of token, jti, sub, sid, client_id",
        ));
        for (name, description) in FIELDS {
            let value = ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"\S"))
                .description(Some(description));
            one_of = one_of.item(
                ObjectBuilder::new()
                    .property(name, value)
                    .required(name)
                    .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
            );
        }
        RefOr::T(Schema::OneOf(
            one_of
                .examples([json!({ "sub": "4yq8J2cVbqX0mHkQ1rJx7w" })])
                .build(),
        ))
    }
}

impl utoipa::ToSchema for RevokeRequest {}

impl RevokeRequest {
    fn subject(self) -> Result<Subject, AdminError> {
        let given: Vec<(&str, String)> = [
            ("token", self.token),
            ("jti", self.jti),
            ("sub", self.sub),
            ("sid", self.sid),
            ("client_id", self.client_id),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        let [(name, value)] = <[_; 1]>::try_from(given).map_err(|given| ServiceError::Field {
            field: given.get(1).map_or("body", |(name, _)| name).to_owned(),
            message: "give exactly one of token, jti, sub, sid, client_id".to_owned(),
        })?;
        if value.trim().is_empty() {
            return Err(ServiceError::Field {
                field: name.to_owned(),
                message: format!("{name} is empty"),
            }
            .into());
        }
        Ok(match name {
            "token" => Subject::Token(value),
            "jti" => Subject::Jti(value),
            "sub" => Subject::Sub(value),
            "sid" => Subject::Sid(value),
            _ => Subject::ClientId(value),
        })
    }
}

/// Revokes at once: refused from now on at userinfo, introspection and refresh, and pushed
/// to every app's revocation mirror. Recorded durably before it is acknowledged.
#[utoipa::path(
    post,
    path = "/revocations",
    tag = "revocations",
    request_body = RevokeRequest,
    responses(
        (status = 200, description = "Revoked; what was done", body = Outcome),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    admin: Admin,
    Body(request): Body<RevokeRequest>,
) -> Result<Json<Outcome>, AdminError> {
    let subject = request.subject()?;
    let outcome = revoke::revoke(&state, subject, &admin.actor()).await?;
    Ok(Json(outcome))
}

/// The revocations in force, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct RevocationList {
    /// Each entry, with who recorded it and when.
    revocations: Vec<Recorded>,
}

/// A revocation in force.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Recorded {
    #[serde(flatten)]
    entry: Entry,
    /// When it was recorded (seconds since the Unix epoch).
    recorded_at: i64,
    /// Who revoked: `admin:<client>`, `client:<client>` (RFC 7009) or `system`.
    actor: String,
}

/// Lists every revocation still in force.
#[utoipa::path(
    get,
    path = "/revocations",
    tag = "revocations",
    responses(
        (status = 200, description = "The revocations in force", body = RevocationList),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<RevocationList>, AdminError> {
    let now = state.clock.now();
    let revocations = state
        .db
        .revocations()
        .in_force(now)
        .await?
        .into_iter()
        .map(|r| Recorded {
            entry: Entry::of(&r.revocation),
            recorded_at: r.recorded_at.as_secs(),
            actor: r.actor,
        })
        .collect();
    Ok(Json(RevocationList { revocations }))
}
