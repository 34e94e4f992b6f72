//! What people allowed applications: `consents` rows, one per user and client.

use lanyard_store::Timestamp;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::consents;
use super::{Db, DbError, unavailable};
use crate::model::Consent;

/// The `consents` table ([`Db::consents`]).
#[derive(Debug, Clone, Copy)]
pub struct Consents<'a>(pub(super) &'a Db);

impl Consents<'_> {
    /// What user `sub` allowed client `client_id`, if anything.
    pub async fn get(&self, sub: &str, client_id: &str) -> Result<Option<Consent>, DbError> {
        let row = consents::Entity::find_by_id((sub.to_owned(), client_id.to_owned()))
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        row.map(consent_from).transpose()
    }

    /// Every client user `sub` allowed, oldest first.
    pub async fn of_user(&self, sub: &str) -> Result<Vec<Consent>, DbError> {
        let rows = consents::Entity::find()
            .filter(consents::Column::Sub.eq(sub))
            .order_by_asc(consents::Column::GrantedAt)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        rows.into_iter().map(consent_from).collect()
    }

    /// Records that user `sub` allowed `client_id` exactly `scopes` (what they saw on the
    /// page; a consent to more replaces one to less).
    pub async fn grant(
        &self,
        sub: &str,
        client_id: &str,
        scopes: &[String],
        now: Timestamp,
    ) -> Result<(), DbError> {
        let row = consents::ActiveModel {
            sub: Set(sub.to_owned()),
            client_id: Set(client_id.to_owned()),
            scopes: Set(serde_json::to_string(scopes).unwrap_or_else(|_| "[]".to_owned())),
            granted_at: Set(now.as_millis()),
        };
        consents::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    consents::Column::Sub,
                    consents::Column::ClientId,
                ])
                .update_columns([consents::Column::Scopes, consents::Column::GrantedAt])
                .to_owned(),
            )
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Forgets what user `sub` allowed `client_id`. Returns whether there was a consent.
    pub async fn withdraw(&self, sub: &str, client_id: &str) -> Result<bool, DbError> {
        let result = consents::Entity::delete_by_id((sub.to_owned(), client_id.to_owned()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }
}

fn consent_from(row: consents::Model) -> Result<Consent, DbError> {
    let scopes = serde_json::from_str(&row.scopes).map_err(|e| DbError::Corrupt {
        what: "consent",
        detail: e.to_string(),
    })?;
    Ok(Consent {
        client_id: row.client_id,
        scopes,
        granted_at: Timestamp::from_millis(row.granted_at),
    })
}
