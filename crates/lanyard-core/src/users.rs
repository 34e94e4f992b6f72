//! Users, for admins: create, read, list and search, change the profile or the password,
//! disable (which revokes everything of theirs), enable, delete. Every change is audited.
//! Input is checked before anything is written.

use lanyard_store::{Target, Timestamp};
use serde::Serialize;

use crate::Core;
use crate::crypto::{Passwords, random_token};
use crate::db::Db;
use crate::error::ServiceError;
use crate::mail::Notice;
use crate::model::{User, check_display_name, check_email, check_password, check_username};
use crate::revoke::{self, Outcome, Subject};
use crate::signals::{self, Change, Credential, Signal};

/// A user to add.
pub struct NewUser {
    /// What they sign in with.
    pub username: String,
    /// Their password (hashed before it is stored; never logged).
    pub password: String,
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
}

/// Adds the demo user `demo` (Demo User, demo@example.com) with a fresh random password,
/// and returns that password: the one time it is known in clear.
pub async fn add_demo_user(
    db: &Db,
    passwords: &Passwords,
    now: Timestamp,
) -> Result<String, ServiceError> {
    let password = random_token(12);
    let new = NewUser {
        username: "demo".into(),
        password: password.clone(),
        email: Some("demo@example.com".into()),
        display_name: Some("Demo User".into()),
    };
    add_user(db, passwords, new, now).await?;
    Ok(password)
}

/// Adds a user with a fresh, opaque, never-reused `sub`.
pub async fn add_user(
    db: &Db,
    passwords: &Passwords,
    new: NewUser,
    now: Timestamp,
) -> Result<User, ServiceError> {
    check_username(&new.username)?;
    check_password(&new.password)?;
    check_email(new.email.as_deref())?;
    check_display_name(new.display_name.as_deref())?;
    let username = new.username.as_str();
    let password_hash = passwords
        .hash(&new.password)
        .await
        .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
    let user = User {
        sub: random_token(16),
        username: username.to_owned(),
        email: new.email,
        display_name: new.display_name,
        password_hash,
        disabled: false,
        created_at: now,
        updated_at: now,
        external_id: None,
        email_verified: false,
        pending_email: None,
    };
    db.users().insert(&user).await?;
    Ok(user)
}

/// A user as admins see it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Stable, opaque, never reused: the `sub` claim, and the id in the API's paths.
    pub sub: String,
    /// What they sign in with.
    pub username: String,
    /// Email address.
    pub email: Option<String>,
    /// Whether the address was shown to be theirs (a link sent to it was followed).
    pub email_verified: bool,
    /// An address they asked to change to, waiting for its link to be followed.
    pub pending_email: Option<String>,
    /// Whether they have set a password (an invited person has not, until they accept).
    pub has_password: bool,
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
            email_verified: u.email_verified,
            pending_email: u.pending_email.clone(),
            has_password: !u.password_hash.is_empty(),
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
    /// An operator's word that the address is the person's (or no longer known to be).
    /// Applied after `email`, whose change otherwise makes it false.
    pub email_verified: Option<bool>,
}

/// The user with `sub`.
pub async fn get(state: &Core, sub: &str) -> Result<User, ServiceError> {
    state
        .db
        .users()
        .by_sub(sub)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no user has sub {sub:?}")))
}

/// Up to `limit` users in username order after `after` (a username) whose username or
/// email contains `search`.
pub async fn list(
    state: &Core,
    search: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<User>, ServiceError> {
    Ok(state.db.users().list(search, after, limit).await?)
}

/// Adds a user (see [`add_user`]).
pub async fn create(state: &Core, new: NewUser, actor: &str) -> Result<User, ServiceError> {
    let username = new.username.clone();
    let result = add_user(&state.db, &state.passwords, new, state.clock.now()).await;
    state.record(actor, "user.create", &username, &result).await;
    result
}

/// Applies `change` to the user's profile. 409 when the user changed between our read and
/// our write (another admin at the same moment): nothing is written; read and try again.
pub async fn update(
    state: &Core,
    sub: &str,
    change: ProfileChange,
    actor: &str,
) -> Result<User, ServiceError> {
    let result = rewrite(state, sub, |user| {
        if let Some(email) = change.email {
            check_email(email.as_deref())?;
            user.set_email(email);
        }
        if let Some(name) = change.display_name {
            check_display_name(name.as_deref())?;
            user.display_name = name;
        }
        if let Some(verified) = change.email_verified {
            if verified && user.email.is_none() {
                return Err(ServiceError::field(
                    "email_verified",
                    "there is no address to call verified",
                ));
            }
            user.email_verified = verified;
        }
        Ok(())
    })
    .await;
    state.record(actor, "user.update", sub, &result).await;
    result
}

/// Reads the user, lets `change` alter the record, and writes it if nobody wrote it in
/// between: 409 otherwise (nothing is written; read and try again).
pub(crate) async fn rewrite(
    state: &Core,
    sub: &str,
    change: impl FnOnce(&mut User) -> Result<(), ServiceError>,
) -> Result<User, ServiceError> {
    let mut user = get(state, sub).await?;
    let seen = user.updated_at;
    change(&mut user)?;
    // Strictly later than `seen`, so that the next write's check sees this one.
    user.updated_at = state
        .clock
        .now()
        .max(seen.plus(std::time::Duration::from_millis(1)));
    if !state.db.users().update_profile(&user, seen).await? {
        return Err(ServiceError::Conflict(
            "the user changed while this update was made; read it again and retry".to_owned(),
        ));
    }
    Ok(user)
}

/// Sets a new password. Sessions and tokens stay: to end them too, revoke the user's `sub`.
/// The person is told by mail (a notice to the address on file).
pub async fn set_password(
    state: &Core,
    sub: &str,
    password: &str,
    actor: &str,
) -> Result<(), ServiceError> {
    let result = store_password(state, sub, password).await;
    state.record(actor, "user.password", sub, &result).await;
    if let Ok(user) = &result {
        crate::mail::notify(state, user, Notice::PasswordChanged { reset: false }).await;
        signals::credential_changed(state, sub, Credential::Password, Change::Update, actor).await;
    }
    result.map(|_| ())
}

/// Checks and stores a new password for `sub` (no audit, no notice: the caller's).
pub(crate) async fn store_password(
    state: &Core,
    sub: &str,
    password: &str,
) -> Result<User, ServiceError> {
    {
        check_password(password)?;
        let user = get(state, sub).await?;
        let hash = state
            .passwords
            .hash(password)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        if !state
            .db
            .users()
            .set_password(sub, &hash, state.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound(format!("no user has sub {sub:?}")));
        }
        Ok(user)
    }
}

/// Disables the user (no new sign-in, no refresh) and then revokes everything of theirs:
/// sessions, refresh-token families, access tokens, also those another node issues in the
/// second it may still hold the user's row as enabled (`recent.rs`; re-enabling within two
/// seconds would see the first new tokens refused). Disabling a disabled user revokes again
/// (harmless), so a retry after a 503 completes the job.
pub async fn disable(
    state: &Core,
    sub: &str,
    actor: &str,
) -> Result<(User, Outcome), ServiceError> {
    let result = async {
        let user = get(state, sub).await?;
        state
            .db
            .users()
            .set_disabled(&user.sub, true, state.clock.now())
            .await?;
        let mut outcome = revoke::revoke(state, Subject::Sub(user.sub.clone()), actor).await?;
        let entry =
            revoke::revoke_beyond_copies(state, Target::Sub(user.sub.clone()), actor).await?;
        outcome.entry = Some(entry);
        Ok((get(state, sub).await?, outcome))
    }
    .await;
    state.record(actor, "user.disable", sub, &result).await;
    if result.is_ok() {
        let disabled = Signal::AccountDisabled {
            sub: sub.to_owned(),
        };
        signals::emit(state, vec![disabled], actor).await;
    }
    result
}

/// The user who signs in as `username` (the command line names people so).
pub async fn by_username(state: &Core, username: &str) -> Result<User, ServiceError> {
    state
        .db
        .users()
        .by_username(username)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no user is called {username:?}")))
}

/// [`disable`] by username (the command line's way).
pub async fn disable_by_username(
    state: &Core,
    username: &str,
    actor: &str,
) -> Result<(User, Outcome), ServiceError> {
    let user = by_username(state, username).await?;
    disable(state, &user.sub, actor).await
}

/// Lets the user sign in again. (Their old tokens stay revoked.)
pub async fn enable(state: &Core, sub: &str, actor: &str) -> Result<User, ServiceError> {
    let result = async {
        if !state
            .db
            .users()
            .set_disabled(sub, false, state.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound(format!("no user has sub {sub:?}")));
        }
        get(state, sub).await
    }
    .await;
    state.record(actor, "user.enable", sub, &result).await;
    if result.is_ok() {
        let enabled = Signal::AccountEnabled {
            sub: sub.to_owned(),
        };
        signals::emit(state, vec![enabled], actor).await;
    }
    result
}

/// Deletes the user after revoking everything of theirs (as [`disable`] does). Their `sub`
/// is never given to anyone else; the audit trail keeps what they did.
pub async fn delete(state: &Core, sub: &str, actor: &str) -> Result<Outcome, ServiceError> {
    let result = async {
        let (user, outcome) = disable(state, sub, actor).await?;
        state.db.users().delete(sub).await?;
        Ok::<_, ServiceError>((user, outcome))
    }
    .await;
    state.record(actor, "user.delete", sub, &result).await;
    let (user, outcome) = result?;
    let purged = Signal::AccountPurged {
        user: Box::new(user),
    };
    signals::emit(state, vec![purged], actor).await;
    Ok(outcome)
}

/// Records that a credential of `sub` is known to be compromised and tells Shared Signals
/// receivers (RISC `credential-compromise`). It changes nothing else: reset the password or
/// the factors, or revoke the user, as well.
pub async fn mark_compromised(
    state: &Core,
    sub: &str,
    credential: Credential,
    reason: Option<&str>,
    actor: &str,
) -> Result<(), ServiceError> {
    let result = async {
        get(state, sub).await?;
        if reason.is_some_and(|r| r.chars().count() > 500) {
            return Err(ServiceError::Invalid(
                "reason must be at most 500 characters".to_owned(),
            ));
        }
        Ok(credential)
    }
    .await;
    state
        .record(actor, "user.credential_compromise", sub, &result)
        .await;
    let compromised = Signal::CredentialCompromise {
        sub: sub.to_owned(),
        credential: result?,
        reason: reason.map(str::to_owned),
    };
    signals::emit(state, vec![compromised], actor).await;
    Ok(())
}
