//! Mail from the admin API: invite someone (`/invitations`), send a person a new
//! invitation, a password-reset link or a verification link (`/users/{sub}/...`), and see
//! the outbox (`/mail`: what waits, what went, what failed; never a body).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::Admin;
use super::error::{AdminError, Body};
use super::query::{PageSize, Query};
use super::{Refusals, Unknown};
use crate::state::AppState;
use lanyard_core::email::{self, Invitee, Sent};
use lanyard_core::model::MailStatus;
use lanyard_core::users::UserView;

/// Someone to invite.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateInvitation {
    /// What they will sign in with: unique (case-insensitively), no spaces or control
    /// characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff]+$"
    )]
    username: String,
    /// Where the invitation goes (verified when they follow it).
    #[schema(
        max_length = 254,
        pattern = r"^[^\s\u0000-\u001f\u007f-\u009f\ufeff]*@[^\s\u0000-\u001f\u007f-\u009f\ufeff]*$"
    )]
    email: String,
    /// Display name.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    display_name: Option<String>,
}

/// A mail with a link, queued (it leaves in the background).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MailSent {
    /// The mail's id in the outbox (see `GET /mail`).
    mail_id: String,
    /// Where it goes.
    to: String,
    /// When its link stops working (seconds since the epoch).
    link_expires_at: i64,
}

impl From<Sent> for MailSent {
    fn from(s: Sent) -> Self {
        Self {
            mail_id: s.mail_id,
            to: s.to,
            link_expires_at: s.expires_at.as_secs(),
        }
    }
}

/// An invitation made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Invitation {
    /// The person, without a password until they accept.
    user: UserView,
    /// The mail.
    mail: MailSent,
}

/// Invites someone: adds them without a password and mails them a single-use link (valid
/// `invitation_lifetime_secs`, 72 hours by default) to set one. A person of that username
/// who has not accepted yet is sent a new link (the old one stops working); one who has a
/// password is a 409.
#[utoipa::path(
    post,
    path = "/invitations",
    tag = "users",
    request_body = CreateInvitation,
    responses(
        (status = 201, description = "Invited; the mail is queued", body = Invitation),
        (status = 409, description = "The username belongs to someone with a password", body = super::ApiError),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn invite(
    State(state): State<AppState>,
    admin: Admin,
    Body(body): Body<CreateInvitation>,
) -> Result<(StatusCode, Json<Invitation>), AdminError> {
    let invitee = Invitee {
        username: body.username,
        email: body.email,
        display_name: body.display_name,
    };
    let (user, sent) = email::invite(&state, invitee, &admin.actor()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            user: UserView::from(&user),
            mail: sent.into(),
        }),
    ))
}

/// Sends a person who has not accepted their invitation a new one.
#[utoipa::path(
    post,
    path = "/users/{sub}/invitation",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 202, description = "Queued", body = MailSent),
        (status = 409, description = "They have a password already, or no address", body = super::ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn reinvite(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<(StatusCode, Json<MailSent>), AdminError> {
    let sent = email::reinvite(&state, &sub, &admin.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(sent.into())))
}

/// Mails a person a password-reset link (valid `password_reset_lifetime_secs`, 30 minutes
/// by default), as "Forgot your password?" does.
#[utoipa::path(
    post,
    path = "/users/{sub}/password-reset",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 202, description = "Queued", body = MailSent),
        (status = 409, description = "The person has no address", body = super::ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn send_reset(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<(StatusCode, Json<MailSent>), AdminError> {
    let sent = email::send_reset(&state, &sub, &admin.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(sent.into())))
}

/// Mails a person a link that verifies the address on file.
#[utoipa::path(
    post,
    path = "/users/{sub}/email-verification",
    tag = "users",
    params(("sub" = String, Path, description = "The user's sub")),
    responses(
        (status = 202, description = "Queued", body = MailSent),
        (status = 409, description = "The person has no address", body = super::ApiError),
        Refusals,
        Unknown,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn send_verification(
    State(state): State<AppState>,
    admin: Admin,
    Path(sub): Path<String>,
) -> Result<(StatusCode, Json<MailSent>), AdminError> {
    let sent = email::send_verification(&state, &sub, &admin.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(sent.into())))
}

/// A mail in the outbox (never its body).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MailView {
    /// Its id (also its `Message-ID`'s left part).
    id: String,
    /// The recipient.
    to: String,
    /// `invitation`, `password_reset`, `verify_email`, `notice.password_changed`, ...
    kind: String,
    /// The subject line.
    subject: String,
    /// `waiting`, `sent` or `failed` (given up).
    status: &'static str,
    /// Attempts made so far.
    attempts: u32,
    /// When it was queued (seconds since the epoch).
    created_at: i64,
    /// When the next attempt is due, while waiting.
    next_attempt_at: Option<i64>,
    /// When the relay took it.
    sent_at: Option<i64>,
    /// The last attempt's error.
    last_error: Option<String>,
}

impl From<MailStatus> for MailView {
    fn from(m: MailStatus) -> Self {
        let status = match (m.sent_at, m.failed_at) {
            (Some(_), _) => "sent",
            (None, Some(_)) => "failed",
            (None, None) => "waiting",
        };
        Self {
            id: m.id,
            to: m.to,
            kind: m.kind,
            subject: m.subject,
            status,
            attempts: m.attempts,
            created_at: m.created_at.as_secs(),
            next_attempt_at: (status == "waiting").then(|| m.next_attempt_at.as_secs()),
            sent_at: m.sent_at.map(|t| t.as_secs()),
            last_error: m.last_error,
        }
    }
}

/// The newest mails, with how many wait.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MailList {
    /// How many mails wait to be sent.
    waiting: u64,
    /// The newest mails, newest first.
    mails: Vec<MailView>,
}

/// The outbox: the newest mails and how each went.
#[utoipa::path(
    get,
    path = "/mail",
    tag = "users",
    params(("limit" = Option<u64>, Query, minimum = 1, maximum = 500, description = "How many (default 50)")),
    responses(
        (status = 200, description = "The outbox", body = MailList),
        Refusals,
    ),
    security(("bearer" = ["lanyard:admin"])),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    query: Query,
) -> Result<Json<MailList>, AdminError> {
    let limit = query.limit(PageSize {
        default: 50,
        max: 500,
    })?;
    let outbox = state.db.outbox();
    let waiting = outbox
        .waiting()
        .await
        .map_err(lanyard_core::ServiceError::from)?;
    let mails = outbox
        .recent(limit)
        .await
        .map_err(lanyard_core::ServiceError::from)?;
    Ok(Json(MailList {
        waiting,
        mails: mails.into_iter().map(MailView::from).collect(),
    }))
}
