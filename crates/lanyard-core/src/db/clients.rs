//! Applications: `clients` rows. A row is the client id, the hash of its secret, its
//! times, and its settings (`ClientSettings`) as one JSON document: a new setting needs no
//! new column.

use lanyard_store::Timestamp;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};

use super::entities::{clients, consents};
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{Client, ClientSettings};

/// The `clients` table ([`Db::clients`]).
#[derive(Debug, Clone, Copy)]
pub struct Clients<'a>(pub(super) &'a Db);

impl Clients<'_> {
    /// Stores a new client. `Conflict` if the id is taken.
    pub async fn insert(&self, client: &Client) -> Result<(), DbError> {
        client_model(client)?
            .insert(&self.0.conn)
            .await
            .map_err(conflict_or_unavailable("a client with this id"))?;
        Ok(())
    }

    /// The client with this id.
    pub async fn get(&self, client_id: &str) -> Result<Option<Client>, DbError> {
        let found = clients::Entity::find_by_id(client_id.to_owned())
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        found.map(client_from).transpose()
    }

    /// [`Clients::get`] as read at most a second ago on this node (writes through
    /// this node are seen at once), for the endpoints every client request goes through.
    pub async fn recent(&self, client_id: &str) -> Result<Option<Client>, DbError> {
        self.0
            .recent_clients
            .get_or(client_id, self.get(client_id))
            .await
    }

    /// Up to `limit` clients in id order, after `after` (exclusive).
    pub async fn list(&self, after: Option<&str>, limit: u64) -> Result<Vec<Client>, DbError> {
        let mut query = clients::Entity::find().order_by_asc(clients::Column::ClientId);
        if let Some(after) = after {
            query = query.filter(clients::Column::ClientId.gt(after));
        }
        query
            .paginate(&self.0.conn, limit)
            .fetch_page(0)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(client_from)
            .collect()
    }

    /// Writes the client, if its record is still as `seen` (its `updated_at`); false when
    /// it changed meanwhile (or is gone).
    pub async fn update(&self, client: &Client, seen: Timestamp) -> Result<bool, DbError> {
        let result = clients::Entity::update_many()
            .set(client_model(client)?)
            .filter(clients::Column::ClientId.eq(client.client_id.as_str()))
            .filter(clients::Column::UpdatedAt.eq(seen.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0.recent_clients.forget(&client.client_id);
        Ok(result.rows_affected > 0)
    }

    /// Replaces a client's secret hash; false if there is no such client.
    pub async fn set_secret_hash(
        &self,
        client_id: &str,
        secret_hash: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let result = clients::Entity::update_many()
            .col_expr(clients::Column::SecretHash, Expr::value(secret_hash))
            .col_expr(clients::Column::UpdatedAt, Expr::value(now.as_millis()))
            .filter(clients::Column::ClientId.eq(client_id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0.recent_clients.forget(client_id);
        Ok(result.rows_affected > 0)
    }

    /// Deletes a client; false if there was none.
    pub async fn delete(&self, client_id: &str) -> Result<bool, DbError> {
        consents::Entity::delete_many()
            .filter(consents::Column::ClientId.eq(client_id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        // Its roles, and who held them, go with it.
        self.0.roles().forget_client(client_id).await?;
        let result = clients::Entity::delete_by_id(client_id.to_owned())
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0.recent_clients.forget(client_id);
        Ok(result.rows_affected > 0)
    }

    /// How many clients there are.
    pub async fn count(&self) -> Result<u64, DbError> {
        clients::Entity::find()
            .count(&self.0.conn)
            .await
            .map_err(unavailable)
    }
}

fn client_model(c: &Client) -> Result<clients::ActiveModel, DbError> {
    let settings = serde_json::to_string(&c.settings).map_err(|e| DbError::Corrupt {
        what: "client",
        detail: e.to_string(),
    })?;
    Ok(clients::ActiveModel {
        client_id: Set(c.client_id.clone()),
        secret_hash: Set(c.secret_hash.clone()),
        settings: Set(settings),
        created_at: Set(c.created_at.as_millis()),
        updated_at: Set(c.updated_at.as_millis()),
    })
}

fn client_from(m: clients::Model) -> Result<Client, DbError> {
    let corrupt = |detail: String| DbError::Corrupt {
        what: "client",
        detail,
    };
    let settings: ClientSettings =
        serde_json::from_str(&m.settings).map_err(|e| corrupt(e.to_string()))?;
    if settings.client_id != m.client_id {
        return Err(corrupt(format!(
            "the settings of {:?} name {:?}",
            m.client_id, settings.client_id
        )));
    }
    Ok(Client {
        settings,
        secret_hash: m.secret_hash,
        created_at: Timestamp::from_millis(m.created_at),
        updated_at: Timestamp::from_millis(m.updated_at),
    })
}
