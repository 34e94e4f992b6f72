//! What admins do, for the command line and the admin API alike: adding users and clients
//! (here), revoking (`revocations`), disabling users (`users`), and who may (`auth`). Input
//! is checked here; nothing is written unless all of it is good.

pub mod auth;
pub mod clients;
pub mod keys;
pub mod locks;
pub mod revocations;
pub mod sessions;
pub mod users;

pub use auth::{ADMIN_SCOPE, AdminAuthError, authorize};

use lanyard_store::Timestamp;

use crate::crypto::{Passwords, ServerKeys, random_token};
use crate::db::{Db, DbError};
use crate::model::{Client, GrantType, User};
use crate::state::AppState;

/// Why an admin action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is not acceptable; the message says why and what to do.
    #[error("{0}")]
    Invalid(String),
    /// One field of the input is not acceptable.
    #[error("{field}: {message}")]
    Field {
        /// The field, as the caller named it (`email`, `redirect_uris[1]`).
        field: String,
        /// Why, and what to do.
        message: String,
    },
    /// Something with this name exists.
    #[error("{0}")]
    Conflict(String),
    /// No such user, client, token, ...
    #[error("{0}")]
    NotFound(String),
    /// The database (or hashing) failed.
    #[error("{0}")]
    Unavailable(String),
}

impl AdminError {
    /// [`AdminError::Field`] for `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<crate::model::Invalid> for AdminError {
    fn from(e: crate::model::Invalid) -> Self {
        Self::field(e.field, e.message)
    }
}

impl From<DbError> for AdminError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Records an admin action in the audit trail: `success`, or `failure` with the reason.
pub(crate) async fn record<T>(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    result: &Result<T, AdminError>,
) {
    let (outcome, detail) = match result {
        Ok(_) => ("success", None),
        Err(e) => (
            "failure",
            Some(serde_json::json!({ "error": e.to_string() }).to_string()),
        ),
    };
    record_event(state, actor, action, target, outcome, detail).await;
}

/// Records an admin action with its own detail (JSON, never a secret).
pub(crate) async fn record_event(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    outcome: &str,
    detail: Option<String>,
) {
    state
        .audit
        .record(crate::db::AuditEvent {
            at: state.clock.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: Some(target.to_owned()),
            outcome: outcome.to_owned(),
            request_id: None,
            detail,
        })
        .await;
}

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

/// Shortest password accepted (OWASP ASVS 5.0 6.2.1).
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (ASVS asks for at least 64).
pub const MAX_PASSWORD: usize = 1024;

/// Characters no username or email may hold: whitespace and control characters (as
/// [`SPACE_OR_CONTROL`] says for the OpenAPI document).
fn space_or_control(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\u{feff}'
}

/// [`space_or_control`] as a regular-expression character class, for the OpenAPI document.
pub const SPACE_OR_CONTROL: &str = r"\s\u0000-\u001f\u007f-\u009f\ufeff";
/// Longest username.
pub const MAX_USERNAME: usize = 64;
/// Longest email address (RFC 5321 §4.5.3.1.3's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest display name.
pub const MAX_DISPLAY_NAME: usize = 200;

/// A username: 1 to [`MAX_USERNAME`] characters, none of them a space or control character.
pub fn check_username(username: &str) -> Result<(), AdminError> {
    if username.is_empty()
        || username.chars().count() > MAX_USERNAME
        || username.chars().any(space_or_control)
    {
        return Err(AdminError::field(
            "username",
            format!(
                "a username is 1 to {MAX_USERNAME} characters with no spaces or control characters"
            ),
        ));
    }
    Ok(())
}

/// A password: [`MIN_PASSWORD`] to [`MAX_PASSWORD`] characters, and not one of the most
/// common passwords (in any letter case). No composition rules (ASVS 6.2.5).
pub fn check_password(password: &str) -> Result<(), AdminError> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(AdminError::field(
            "password",
            format!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    if is_common_password(password) {
        return Err(AdminError::field(
            "password",
            "this password is among the most common ones, which attackers try first; choose another (a few unrelated words make a strong one)".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `password` is on the list of common passwords (`assets/common-passwords.txt`:
/// the most used passwords of 8 characters or more, from breaches), in any letter case.
pub fn is_common_password(password: &str) -> bool {
    static COMMON: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
        std::sync::LazyLock::new(|| {
            include_str!("../../assets/common-passwords.txt")
                .lines()
                .filter(|l| !l.starts_with("# ") && !l.is_empty())
                .collect()
        });
    COMMON.contains(password.to_lowercase().as_str())
}

/// An email address, if given: an `@`, no spaces or control characters, at most
/// [`MAX_EMAIL`] characters.
pub fn check_email(email: Option<&str>) -> Result<(), AdminError> {
    if let Some(email) = email
        && (!email.contains('@')
            || email.chars().any(space_or_control)
            || email.chars().count() > MAX_EMAIL)
    {
        return Err(AdminError::field(
            "email",
            format!("{email:?} is not an email address"),
        ));
    }
    Ok(())
}

/// A display name, if given: at most [`MAX_DISPLAY_NAME`] characters, no control characters.
pub fn check_display_name(name: Option<&str>) -> Result<(), AdminError> {
    if let Some(name) = name
        && (name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control))
    {
        return Err(AdminError::field(
            "display_name",
            format!(
                "a display name is at most {MAX_DISPLAY_NAME} characters, with no control characters"
            ),
        ));
    }
    Ok(())
}

/// Adds the demo user `demo` (Demo User, demo@example.com) with a fresh random password,
/// and returns that password: the one time it is known in clear.
pub async fn add_demo_user(
    db: &Db,
    passwords: &Passwords,
    now: Timestamp,
) -> Result<String, AdminError> {
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
) -> Result<User, AdminError> {
    check_username(&new.username)?;
    check_password(&new.password)?;
    check_email(new.email.as_deref())?;
    check_display_name(new.display_name.as_deref())?;
    let username = new.username.as_str();
    let password_hash = passwords
        .hash(&new.password)
        .await
        .map_err(|e| AdminError::Unavailable(e.to_string()))?;
    let user = User {
        sub: random_token(16),
        username: username.to_owned(),
        email: new.email,
        display_name: new.display_name,
        password_hash,
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    db.insert_user(&user).await?;
    Ok(user)
}

/// How a new client gets (or does not get) a secret.
pub enum Secret {
    /// Lanyard makes one (256 bits) and shows it once.
    Generate,
    /// The operator supplies one (at least 32 characters).
    Given(String),
    /// A public client: no secret.
    Public,
}

/// A client to register.
pub struct NewClient {
    /// `client_id`.
    pub client_id: String,
    /// Display name (defaults to the id).
    pub name: Option<String>,
    /// Its secret.
    pub secret: Secret,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// Grant types (empty: `authorization_code refresh_token`).
    pub grant_types: Vec<String>,
    /// Scopes (empty: `openid profile email offline_access`).
    pub scopes: Vec<String>,
    /// Skips consent; refresh tokens without `offline_access`.
    pub first_party: bool,
}

/// Shortest client secret an operator may supply.
pub const MIN_GIVEN_SECRET: usize = 32;

/// Registers a client; returns it and, when Lanyard made the secret, the secret (shown once).
pub async fn add_client(
    db: &Db,
    keys: &ServerKeys,
    new: NewClient,
    now: Timestamp,
) -> Result<(Client, Option<String>), AdminError> {
    let (public, secret, shown) = match new.secret {
        Secret::Public => (true, None, None),
        Secret::Given(s) if s.chars().count() < MIN_GIVEN_SECRET => {
            return Err(AdminError::field(
                "secret",
                format!(
                    "a client secret must be at least {MIN_GIVEN_SECRET} characters; leave it out and Lanyard makes one"
                ),
            ));
        }
        Secret::Given(s) => (false, Some(s), None),
        Secret::Generate => {
            let s = random_token(32);
            (false, Some(s.clone()), Some(s))
        }
    };
    let grant_types = if new.grant_types.is_empty() {
        vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
    } else {
        new.grant_types
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AdminError::field("grant_types", e))?
    };
    let scopes = if new.scopes.is_empty() {
        ["openid", "profile", "email", "offline_access"]
            .map(str::to_owned)
            .to_vec()
    } else {
        new.scopes
    };
    let client = Client {
        name: new.name.unwrap_or_else(|| new.client_id.clone()),
        client_id: new.client_id,
        public,
        secret_hash: secret.as_deref().map(|s| keys.hash_client_secret(s)),
        redirect_uris: new.redirect_uris,
        post_logout_redirect_uris: new.post_logout_redirect_uris,
        backchannel_logout_uri: new.backchannel_logout_uri,
        grant_types,
        scopes,
        first_party: new.first_party,
        access_token_lifetime: None,
        id_token_lifetime: None,
        refresh_token_lifetime: None,
        created_at: now,
        updated_at: now,
    };
    client.validate()?;
    db.insert_client(&client).await?;
    Ok((client, shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_refused_in_any_case_and_others_pass() {
        for common in ["password", "Password1", "QWERTY123", "iloveyou", "12345678"] {
            let refused = check_password(common);
            assert!(
                matches!(&refused, Err(AdminError::Field { field, message })
                    if field == "password" && message.contains("most common")),
                "{common}: {refused:?}"
            );
        }
        for fine in [
            "correct horse battery staple",
            "violet-anchor-tundra-7",
            "a long password",
        ] {
            assert!(check_password(fine).is_ok(), "{fine}");
        }
        // The list is the real one, not a stub: tens of thousands of entries, no short ones.
        let list = include_str!("../../assets/common-passwords.txt");
        let entries: Vec<&str> = list.lines().filter(|l| !l.starts_with("# ")).collect();
        assert!(entries.len() > 30_000, "{}", entries.len());
        assert!(entries.iter().all(|p| p.chars().count() >= MIN_PASSWORD));
    }
}
