//! Clients (applications), for admins: register, read, list, update, rotate the secret,
//! delete. Every change is audited; a deleted client's tokens are revoked first.

use std::time::Duration;

use serde::Serialize;

use lanyard_store::{Target, Timestamp};

use crate::Core;
use crate::crypto::{ServerKeys, random_token};
use crate::db::Db;
use crate::error::ServiceError;
use crate::model::{Client, GrantType};
use crate::revoke::{self, Outcome, Subject};

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
) -> Result<(Client, Option<String>), ServiceError> {
    let (public, secret, shown) = match new.secret {
        Secret::Public => (true, None, None),
        Secret::Given(s) if s.chars().count() < MIN_GIVEN_SECRET => {
            return Err(ServiceError::field(
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
            .map_err(|e| ServiceError::field("grant_types", e))?
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
    db.clients().insert(&client).await?;
    Ok((client, shown))
}

/// A client as admins see it (never its secret or the secret's hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The `client_id`.
    pub client_id: String,
    /// Shown to people on the sign-in and consent pages.
    pub name: String,
    /// A public client (browser or native app) has no secret and must use PKCE.
    pub public: bool,
    /// Redirect URIs, matched exactly.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<String>,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// First-party: no consent; refresh tokens without `offline_access`.
    pub first_party: bool,
    /// Its access-token lifetime in seconds, when it overrides the server's.
    pub access_token_lifetime: Option<u64>,
    /// Its ID-token lifetime in seconds, when it overrides the server's.
    pub id_token_lifetime: Option<u64>,
    /// Its offline refresh-token lifetime in seconds, when it overrides the server's.
    pub refresh_token_lifetime: Option<u64>,
    /// Seconds since the Unix epoch.
    pub created_at: i64,
    /// Seconds since the Unix epoch.
    pub updated_at: i64,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            public: c.public,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            scopes: c.scopes.clone(),
            first_party: c.first_party,
            access_token_lifetime: c.access_token_lifetime.map(|d| d.as_secs()),
            id_token_lifetime: c.id_token_lifetime.map(|d| d.as_secs()),
            refresh_token_lifetime: c.refresh_token_lifetime.map(|d| d.as_secs()),
            created_at: c.created_at.as_secs(),
            updated_at: c.updated_at.as_secs(),
        }
    }
}

/// A change to a client: a field left out stays; `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientChange {
    /// Display name.
    pub name: Option<String>,
    /// Redirect URIs (the whole list).
    pub redirect_uris: Option<Vec<String>>,
    /// Post-logout redirect URIs (the whole list).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Back-channel logout URI.
    pub backchannel_logout_uri: Option<Option<String>>,
    /// Grant types (the whole list).
    pub grant_types: Option<Vec<String>>,
    /// Scopes (the whole list).
    pub scopes: Option<Vec<String>>,
    /// First-party.
    pub first_party: Option<bool>,
    /// Access-token lifetime, seconds.
    pub access_token_lifetime: Option<Option<u64>>,
    /// ID-token lifetime, seconds.
    pub id_token_lifetime: Option<Option<u64>>,
    /// Offline refresh-token lifetime, seconds.
    pub refresh_token_lifetime: Option<Option<u64>>,
}

/// The client with `client_id`.
pub async fn get(state: &Core, client_id: &str) -> Result<Client, ServiceError> {
    state
        .db
        .clients()
        .get(client_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no client has client_id {client_id:?}")))
}

/// Up to `limit` clients in id order after `after`.
pub async fn list(
    state: &Core,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Client>, ServiceError> {
    Ok(state.db.clients().list(after, limit).await?)
}

/// Registers a client (see [`add_client`]); the secret Lanyard made, if any, is returned
/// this once.
pub async fn create(
    state: &Core,
    new: NewClient,
    actor: &str,
) -> Result<(Client, Option<String>), ServiceError> {
    let id = new.client_id.clone();
    let result = add_client(&state.db, &state.server_keys, new, state.clock.now()).await;
    state
        .audit
        .record(
            state
                .event(actor, "client.create")
                .target(&id)
                .result(&result),
        )
        .await;
    result
}

/// Applies `change`. Tokens already issued keep what they were issued with; new ones follow
/// the change. 409 when the client changed between our read and our write.
pub async fn update(
    state: &Core,
    client_id: &str,
    change: ClientChange,
    actor: &str,
) -> Result<Client, ServiceError> {
    let result = async {
        let mut client = get(state, client_id).await?;
        let seen = client.updated_at;
        apply(&mut client, change)?;
        client.validate()?;
        client.updated_at = state.clock.now().max(seen.plus(Duration::from_millis(1)));
        if !state.db.clients().update(&client, seen).await? {
            return Err(ServiceError::Conflict(
                "the client changed while this update was made; read it again and retry".to_owned(),
            ));
        }
        Ok(client)
    }
    .await;
    state
        .audit
        .record(
            state
                .event(actor, "client.update")
                .target(client_id)
                .result(&result),
        )
        .await;
    result
}

fn apply(client: &mut Client, change: ClientChange) -> Result<(), ServiceError> {
    if let Some(name) = change.name {
        client.name = name;
    }
    if let Some(uris) = change.redirect_uris {
        client.redirect_uris = uris;
    }
    if let Some(uris) = change.post_logout_redirect_uris {
        client.post_logout_redirect_uris = uris;
    }
    if let Some(uri) = change.backchannel_logout_uri {
        client.backchannel_logout_uri = uri;
    }
    if let Some(grants) = change.grant_types {
        client.grant_types = grants
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<_, _>>()
            .map_err(|e| ServiceError::field("grant_types", e))?;
    }
    if let Some(scopes) = change.scopes {
        client.scopes = scopes;
    }
    if let Some(first_party) = change.first_party {
        client.first_party = first_party;
    }
    let secs = |s: Option<u64>| s.map(Duration::from_secs);
    if let Some(s) = change.access_token_lifetime {
        client.access_token_lifetime = secs(s);
    }
    if let Some(s) = change.id_token_lifetime {
        client.id_token_lifetime = secs(s);
    }
    if let Some(s) = change.refresh_token_lifetime {
        client.refresh_token_lifetime = secs(s);
    }
    Ok(())
}

/// Gives a confidential client a new secret (256 bits), returned this once. The old secret
/// stops working at once on this node and within a second on the others (`recent.rs`);
/// tokens already issued stay valid.
pub async fn rotate_secret(
    state: &Core,
    client_id: &str,
    actor: &str,
) -> Result<String, ServiceError> {
    let result = async {
        let client = get(state, client_id).await?;
        if client.public {
            return Err(ServiceError::Conflict(
                "a public client has no secret to rotate".to_owned(),
            ));
        }
        let secret = random_token(32);
        let hash = state.server_keys.hash_client_secret(&secret);
        if !state
            .db
            .clients()
            .set_secret_hash(client_id, &hash, state.clock.now())
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "no client has client_id {client_id:?}"
            )));
        }
        Ok(secret)
    }
    .await;
    state
        .audit
        .record(
            state
                .event(actor, "client.secret")
                .target(client_id)
                .result(&result),
        )
        .await;
    result
}

/// Deletes the client after revoking every token issued to it (as a revocation by
/// `client_id`). Its id may be registered again later; tokens issued before stay refused.
///
/// Other nodes may still hold the client for up to a second (`recent.rs`) and issue it a
/// token meanwhile; the watermark is therefore moved that far past the deletion, so such a
/// token is refused too (re-registering the id within those two seconds would see its first
/// tokens refused).
pub async fn delete(state: &Core, client_id: &str, actor: &str) -> Result<Outcome, ServiceError> {
    let result = async {
        let mut outcome =
            revoke::revoke(state, Subject::ClientId(client_id.to_owned()), actor).await?;
        state.db.clients().delete(client_id).await?;
        let entry =
            revoke::revoke_beyond_copies(state, Target::ClientId(client_id.to_owned()), actor)
                .await?;
        outcome.entry = Some(entry);
        Ok(outcome)
    }
    .await;
    state
        .audit
        .record(
            state
                .event(actor, "client.delete")
                .target(client_id)
                .result(&result),
        )
        .await;
    result
}
