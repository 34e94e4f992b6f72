//! Users, for admins: create, read, list and search, change the profile or the password,
//! disable (which revokes everything of theirs), enable, delete. Every change is audited.

use lanyard_store::Target;
use serde::Serialize;

use crate::admin::revocations::{self, Outcome, Subject};
use crate::admin::{
    AdminError, NewUser, add_user, check_display_name, check_email, check_password, record,
};
use crate::model::User;
use crate::state::AppState;

/// A user as admins see it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Stable, opaque, never reused: the `sub` claim, and the id in the API's paths.
    pub sub: String,
    /// What they sign in with.
    pub username: String,
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// A disabled user cannot sign in and every token of theirs was revoked.
    pub disabled: bool,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// Seconds since the Unix epoch.
    pub updated_at: i64,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            sub: u.sub.clone(),
            username: u.username.clone(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            disabled: u.disabled,
            created_at: u.created_at.as_secs(),
            updated_at: u.updated_at.as_secs(),
        }
    }
}

/// A change to a user's profile: a field left out stays, `None` inside clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChange {
    /// The new email address, or `Some(None)` to clear it.
    pub email: Option<Option<String>>,
    /// The new display name, or `Some(None)` to clear it.
    pub display_name: Option<Option<String>>,
}

/// The user with `sub`.
pub async fn get(state: &AppState, sub: &str) -> Result<User, AdminError> {
    state
        .db
        .user_by_sub(sub)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user has sub {sub:?}")))
}

/// Up to `limit` users in username order after `after` (a username) whose username or
/// email contains `search`.
pub async fn list(
    state: &AppState,
    search: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<User>, AdminError> {
    Ok(state.db.list_users(search, after, limit).await?)
}

/// Adds a user (see [`add_user`]).
pub async fn create(state: &AppState, new: NewUser, actor: &str) -> Result<User, AdminError> {
    let username = new.username.clone();
    let result = add_user(&state.db, &state.passwords, new, state.clock.now()).await;
    record(state, actor, "user.create", &username, &result).await;
    result
}

/// Applies `change` to the user's profile. 409 when the user changed between our read and
/// our write (another admin at the same moment): nothing is written; read and try again.
pub async fn update(
    state: &AppState,
    sub: &str,
    change: ProfileChange,
    actor: &str,
) -> Result<User, AdminError> {
    let result = async {
        let mut user = get(state, sub).await?;
        let seen = user.updated_at;
        if let Some(email) = change.email {
            check_email(email.as_deref())?;
            user.email = email;
        }
        if let Some(name) = change.display_name {
            check_display_name(name.as_deref())?;
            user.display_name = name;
        }
        // Strictly later than `seen`, so that the next write's check sees this one.
        user.updated_at = state
            .clock
            .now()
            .max(seen.plus(std::time::Duration::from_millis(1)));
        if !state.db.update_user_profile(&user, seen).await? {
            return Err(AdminError::Conflict(
                "the user changed while this update was made; read it again and retry".to_owned(),
            ));
        }
        Ok(user)
    }
    .await;
    record(state, actor, "user.update", sub, &result).await;
    result
}

/// Sets a new password. Sessions and tokens stay: to end them too, revoke the user's `sub`.
pub async fn set_password(
    state: &AppState,
    sub: &str,
    password: &str,
    actor: &str,
) -> Result<(), AdminError> {
    let result = async {
        check_password(password)?;
        get(state, sub).await?;
        let hash = state
            .passwords
            .hash(password)
            .await
            .map_err(|e| AdminError::Unavailable(e.to_string()))?;
        if !state
            .db
            .set_user_password(sub, &hash, state.clock.now())
            .await?
        {
            return Err(AdminError::NotFound(format!("no user has sub {sub:?}")));
        }
        Ok(())
    }
    .await;
    record(state, actor, "user.password", sub, &result).await;
    result
}

/// Disables the user (no new sign-in, no refresh) and then revokes everything of theirs:
/// sessions, refresh-token families, access tokens, also those another node issues in the
/// second it may still hold the user's row as enabled (`recent.rs`; re-enabling within two
/// seconds would see the first new tokens refused). Disabling a disabled user revokes again
/// (harmless), so a retry after a 503 completes the job.
pub async fn disable(
    state: &AppState,
    sub: &str,
    actor: &str,
) -> Result<(User, Outcome), AdminError> {
    let result = async {
        let user = get(state, sub).await?;
        state
            .db
            .set_user_disabled(&user.sub, true, state.clock.now())
            .await?;
        let mut outcome = revocations::revoke(state, Subject::Sub(user.sub.clone()), actor).await?;
        let entry =
            revocations::revoke_beyond_copies(state, Target::Sub(user.sub.clone()), actor).await?;
        outcome.entry = Some(entry);
        Ok((get(state, sub).await?, outcome))
    }
    .await;
    record(state, actor, "user.disable", sub, &result).await;
    result
}

/// [`disable`] by username (the command line's way).
pub async fn disable_by_username(
    state: &AppState,
    username: &str,
    actor: &str,
) -> Result<(User, Outcome), AdminError> {
    let user = state
        .db
        .user_by_username(username)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no user is called {username:?}")))?;
    disable(state, &user.sub, actor).await
}

/// Lets the user sign in again. (Their old tokens stay revoked.)
pub async fn enable(state: &AppState, sub: &str, actor: &str) -> Result<User, AdminError> {
    let result = async {
        if !state
            .db
            .set_user_disabled(sub, false, state.clock.now())
            .await?
        {
            return Err(AdminError::NotFound(format!("no user has sub {sub:?}")));
        }
        get(state, sub).await
    }
    .await;
    record(state, actor, "user.enable", sub, &result).await;
    result
}

/// Deletes the user after revoking everything of theirs (as [`disable`] does). Their `sub`
/// is never given to anyone else; the audit trail keeps what they did.
pub async fn delete(state: &AppState, sub: &str, actor: &str) -> Result<Outcome, AdminError> {
    let result = async {
        let (_, outcome) = disable(state, sub, actor).await?;
        state.db.delete_user(sub).await?;
        Ok(outcome)
    }
    .await;
    record(state, actor, "user.delete", sub, &result).await;
    result
}
