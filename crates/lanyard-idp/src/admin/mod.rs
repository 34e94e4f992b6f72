//! What admins do, for the command line and the admin API alike: adding users and clients.
//! Input is checked here; nothing is written unless all of it is good.

use lanyard_store::Timestamp;

use crate::crypto::{Passwords, ServerKeys, random_token};
use crate::db::{Db, DbError};
use crate::model::{Client, GrantType, User};

/// Why an admin action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The input is not acceptable; the message says why and what to do.
    #[error("{0}")]
    Invalid(String),
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

impl From<DbError> for AdminError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Unavailable(other.to_string()),
        }
    }
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
    let username = new.username.trim();
    if username.is_empty()
        || username.chars().count() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(AdminError::Invalid(
            "a username is 1 to 64 characters with no spaces or control characters".to_owned(),
        ));
    }
    let length = new.password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(AdminError::Invalid(format!(
            "a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    if let Some(email) = &new.email
        && (!email.contains('@') || email.chars().any(char::is_whitespace) || email.len() > 254)
    {
        return Err(AdminError::Invalid(format!(
            "{email:?} is not an email address"
        )));
    }
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
            return Err(AdminError::Invalid(format!(
                "a client secret must be at least {MIN_GIVEN_SECRET} characters; leave it out and Lanyard makes one"
            )));
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
            .map_err(AdminError::Invalid)?
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
    client.validate().map_err(AdminError::Invalid)?;
    db.insert_client(&client).await?;
    Ok((client, shown))
}
