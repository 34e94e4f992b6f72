//! Clients (applications), for admins: register, read, list, update, rotate the secret,
//! delete. Every change is audited; a deleted client's tokens are revoked first.

use std::time::Duration;

use lanyard_store::{Target, Timestamp};

use crate::Core;
use crate::crypto::{ServerKeys, random_token};
use crate::db::Db;
use crate::error::{ServiceError, from_json_value, merge_patch};
use crate::model::{Client, ClientSettings};
use crate::revoke::{self, Outcome, Subject};

/// A client to register.
pub struct NewClient {
    /// What the operator chose ([`ClientSettings::with_defaults`] fills what was left out).
    pub settings: ClientSettings,
    /// The secret the operator gives (at least [`MIN_GIVEN_SECRET`] characters); `None`: a
    /// confidential client gets one Lanyard makes (256 bits), shown once. A public client has
    /// none.
    pub secret: Option<String>,
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
    let settings = new.settings.with_defaults();
    let (secret, shown) = match new.secret {
        Some(_) if !settings.has_secret() => {
            return Err(ServiceError::field(
                "secret",
                "a public or private_key_jwt client has no secret; leave it out",
            ));
        }
        None if !settings.has_secret() => (None, None),
        Some(s) if s.chars().count() < MIN_GIVEN_SECRET => {
            return Err(ServiceError::field(
                "secret",
                format!(
                    "a client secret must be at least {MIN_GIVEN_SECRET} characters; leave it out and Lanyard makes one"
                ),
            ));
        }
        Some(s) => (Some(s), None),
        None => {
            let s = random_token(32);
            (Some(s.clone()), Some(s))
        }
    };
    let client = Client {
        settings,
        secret_hash: secret.as_deref().map(|s| keys.hash_client_secret(s)),
        created_at: now,
        updated_at: now,
    };
    client.validate()?;
    db.clients().insert(&client).await?;
    Ok((client, shown))
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
    let id = new.settings.client_id.clone();
    let result = add_client(&state.db, &state.server_keys, new, state.clock.now()).await;
    state.record(actor, "client.create", &id, &result).await;
    result
}

/// Applies `patch`, a JSON merge patch (RFC 7396) of the client's settings: a field left out
/// stays, `null` clears it (an optional one; a list becomes empty), lists are replaced whole;
/// `client_id` and `public` stay as registered. Tokens already issued keep what they were
/// issued with; new ones follow the change. 409 when the client changed between our read
/// and our write.
pub async fn update(
    state: &Core,
    client_id: &str,
    patch: &serde_json::Value,
    actor: &str,
) -> Result<Client, ServiceError> {
    let result = async {
        let mut client = get(state, client_id).await?;
        let seen = client.updated_at;
        let was_disabled = client.settings.disabled;
        client.settings = patched(&client.settings, patch)?;
        client.validate()?;
        client.updated_at = state.clock.now().max(seen.plus(Duration::from_millis(1)));
        let turning_off = client.settings.disabled && !was_disabled;
        if turning_off {
            // Off: what it holds goes first, so that a failure leaves it on (and a retry
            // revokes), as deleting does.
            revoke::revoke(state, Subject::ClientId(client_id.to_owned()), actor).await?;
        }
        if !state.db.clients().update(&client, seen).await? {
            return Err(ServiceError::Conflict(
                "the client changed while this update was made; read it again and retry".to_owned(),
            ));
        }
        if turning_off {
            // ... and so does whatever a node's copy of the row (up to a second old) let it
            // get meanwhile.
            revoke::revoke_beyond_copies(state, Target::ClientId(client_id.to_owned()), actor)
                .await?;
        }
        Ok(client)
    }
    .await;
    state
        .record(actor, "client.update", client_id, &result)
        .await;
    result
}

/// `settings` with `patch` applied, read back as settings (so a refusal names the field).
fn patched(
    settings: &ClientSettings,
    patch: &serde_json::Value,
) -> Result<ClientSettings, ServiceError> {
    if !patch.is_object() {
        return Err(ServiceError::field(
            "body",
            "send the fields to change as a JSON object",
        ));
    }
    let mut merged = serde_json::to_value(settings)
        .map_err(|e| ServiceError::Unavailable(format!("client settings: {e}")))?;
    merge_patch(&mut merged, patch);
    let changed: ClientSettings = from_json_value(merged)?;
    for (field, same) in [
        ("client_id", changed.client_id == settings.client_id),
        ("public", changed.public == settings.public),
    ] {
        if !same {
            return Err(ServiceError::field(
                field,
                format!(
                    "{field} is chosen at registration and cannot change; register another client"
                ),
            ));
        }
    }
    Ok(changed)
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
        .record(actor, "client.secret", client_id, &result)
        .await;
    result
}

/// Deletes the client after revoking every token issued to it (as a revocation by
/// `client_id`), with its Shared Signals streams. Its id may be registered again later;
/// tokens issued before stay refused.
///
/// Other nodes may still hold the client for up to a second (`recent.rs`) and issue it a
/// token meanwhile; the watermark is therefore moved that far past the deletion, so such a
/// token is refused too (re-registering the id within those two seconds would see its first
/// tokens refused).
pub async fn delete(state: &Core, client_id: &str, actor: &str) -> Result<Outcome, ServiceError> {
    let result = async {
        let mut outcome =
            revoke::revoke(state, Subject::ClientId(client_id.to_owned()), actor).await?;
        // Its Shared Signals streams go with it (and their waiting events): a client
        // registered later under the same id must not inherit them.
        for stream in state.db.streams().of_client(client_id).await? {
            state.db.streams().delete(&stream.stream_id).await?;
        }
        state.db.clients().delete(client_id).await?;
        let entry =
            revoke::revoke_beyond_copies(state, Target::ClientId(client_id.to_owned()), actor)
                .await?;
        outcome.entry = Some(entry);
        Ok(outcome)
    }
    .await;
    state
        .record(actor, "client.delete", client_id, &result)
        .await;
    result
}
