//! A user's SSO sessions, for admins: list them, end one, end all. Ending a session revokes
//! it by `sid` (see `revocations`): its refresh tokens go and its access tokens are refused
//! by every app at once.

use serde::Serialize;

use crate::Core;
use crate::error::ServiceError;
use crate::revoke::{self, Outcome, Subject};
use crate::users;

/// An SSO session as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session id (`sid` in the tokens issued in it).
    pub sid: String,
    /// The user.
    pub sub: String,
    /// When it began (seconds since the Unix epoch).
    pub created_at: i64,
    /// When it was last used.
    pub last_seen: i64,
    /// When it ends unless used before (idle timeout).
    pub idle_deadline: i64,
    /// When it ends whatever happens.
    pub absolute_deadline: i64,
    /// Whether the user asked to be remembered.
    pub remember_me: bool,
    /// The browser's `User-Agent` at sign-in.
    pub user_agent: Option<String>,
    /// The client IP at sign-in.
    pub ip: Option<String>,
    /// The clients that received tokens in it.
    pub clients: Vec<String>,
}

impl From<&lanyard_store::Session> for SessionView {
    fn from(s: &lanyard_store::Session) -> Self {
        Self {
            sid: s.sid.as_str().to_owned(),
            sub: s.sub.clone(),
            created_at: s.created_at.as_secs(),
            last_seen: s.last_seen.as_secs(),
            idle_deadline: s.idle_deadline.as_secs(),
            absolute_deadline: s.absolute_deadline.as_secs(),
            remember_me: s.remember_me,
            user_agent: s.user_agent.clone(),
            ip: s.ip.clone(),
            clients: s.clients.iter().cloned().collect(),
        }
    }
}

/// The live sessions of the user with `sub`, oldest first. 404 for an unknown user.
pub async fn list(state: &Core, sub: &str) -> Result<Vec<SessionView>, ServiceError> {
    users::get(state, sub).await?;
    let sessions = state.store.user_sessions(sub).await?;
    Ok(sessions.iter().map(SessionView::from).collect())
}

/// Ends the user's session `sid` and revokes what was issued in it. 404 when the user has
/// no such live session.
pub async fn end(state: &Core, sub: &str, sid: &str, actor: &str) -> Result<Outcome, ServiceError> {
    let held = state.store.session(sid).await?;
    if held.is_none_or(|s| s.sub != sub) {
        return Err(ServiceError::NotFound(format!(
            "the user {sub:?} has no live session {sid:?}"
        )));
    }
    revoke::revoke(state, Subject::Sid(sid.to_owned()), actor).await
}

/// Ends every live session of the user, each as [`end`] does. Refresh tokens issued outside
/// a session (none today) and the user's access to sign in again are untouched: to stop
/// everything, revoke the `sub` or disable the user.
pub async fn end_all(state: &Core, sub: &str, actor: &str) -> Result<Outcome, ServiceError> {
    let mut total = Outcome::default();
    for session in list(state, sub).await? {
        let done = revoke::revoke(state, Subject::Sid(session.sid), actor).await?;
        total.sessions_ended.extend(done.sessions_ended);
        total.refresh_families_revoked += done.refresh_families_revoked;
        total.access_tokens_revoked += done.access_tokens_revoked;
    }
    Ok(total)
}
