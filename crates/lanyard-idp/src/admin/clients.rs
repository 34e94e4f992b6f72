//! Clients (applications), for admins: register, read, list, update, rotate the secret,
//! delete. Every change is audited; a deleted client's tokens are revoked first.

use std::time::Duration;

use serde::Serialize;

use crate::admin::revocations::{self, Outcome, Subject};
use crate::admin::{AdminError, NewClient, add_client, record};
use crate::crypto::random_token;
use crate::model::{Client, GrantType};
use crate::state::AppState;
use lanyard_store::Target;

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
pub async fn get(state: &AppState, client_id: &str) -> Result<Client, AdminError> {
    state
        .db
        .client(client_id)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no client has client_id {client_id:?}")))
}

/// Up to `limit` clients in id order after `after`.
pub async fn list(
    state: &AppState,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Client>, AdminError> {
    Ok(state.db.list_clients(after, limit).await?)
}

/// Registers a client (see [`add_client`]); the secret Lanyard made, if any, is returned
/// this once.
pub async fn create(
    state: &AppState,
    new: NewClient,
    actor: &str,
) -> Result<(Client, Option<String>), AdminError> {
    let id = new.client_id.clone();
    let result = add_client(&state.db, &state.server_keys, new, state.clock.now()).await;
    record(state, actor, "client.create", &id, &result).await;
    result
}

/// Applies `change`. Tokens already issued keep what they were issued with; new ones follow
/// the change. 409 when the client changed between our read and our write.
pub async fn update(
    state: &AppState,
    client_id: &str,
    change: ClientChange,
    actor: &str,
) -> Result<Client, AdminError> {
    let result = async {
        let mut client = get(state, client_id).await?;
        let seen = client.updated_at;
        apply(&mut client, change)?;
        client.validate()?;
        client.updated_at = state.clock.now().max(seen.plus(Duration::from_millis(1)));
        if !state.db.update_client(&client, seen).await? {
            return Err(AdminError::Conflict(
                "the client changed while this update was made; read it again and retry".to_owned(),
            ));
        }
        Ok(client)
    }
    .await;
    record(state, actor, "client.update", client_id, &result).await;
    result
}

fn apply(client: &mut Client, change: ClientChange) -> Result<(), AdminError> {
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
            .map_err(|e| AdminError::field("grant_types", e))?;
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
    state: &AppState,
    client_id: &str,
    actor: &str,
) -> Result<String, AdminError> {
    let result = async {
        let client = get(state, client_id).await?;
        if client.public {
            return Err(AdminError::Conflict(
                "a public client has no secret to rotate".to_owned(),
            ));
        }
        let secret = random_token(32);
        let hash = state.server_keys.hash_client_secret(&secret);
        if !state
            .db
            .set_client_secret_hash(client_id, &hash, state.clock.now())
            .await?
        {
            return Err(AdminError::NotFound(format!(
                "no client has client_id {client_id:?}"
            )));
        }
        Ok(secret)
    }
    .await;
    record(state, actor, "client.secret", client_id, &result).await;
    result
}

/// Deletes the client after revoking every token issued to it (as a revocation by
/// `client_id`). Its id may be registered again later; tokens issued before stay refused.
///
/// Other nodes may still hold the client for up to a second (`recent.rs`) and issue it a
/// token meanwhile; the watermark is therefore moved that far past the deletion, so such a
/// token is refused too (re-registering the id within those two seconds would see its first
/// tokens refused).
pub async fn delete(state: &AppState, client_id: &str, actor: &str) -> Result<Outcome, AdminError> {
    let result = async {
        let mut outcome =
            revocations::revoke(state, Subject::ClientId(client_id.to_owned()), actor).await?;
        state.db.delete_client(client_id).await?;
        let entry =
            revocations::revoke_beyond_copies(state, Target::ClientId(client_id.to_owned()), actor)
                .await?;
        outcome.entry = Some(entry);
        Ok(outcome)
    }
    .await;
    record(state, actor, "client.delete", client_id, &result).await;
    result
}
