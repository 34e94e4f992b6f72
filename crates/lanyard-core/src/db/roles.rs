//! The roles applications define and who holds them: `app_roles` and `role_grants` rows.
//! A grant names its holder by kind (`group` or `user`) and id (a group's id or a `sub`).

use lanyard_store::Timestamp;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::entities::{app_roles, group_members, role_grants};
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{Holder, Role};

/// The `app_roles` and `role_grants` tables ([`Db::roles`]).
#[derive(Debug, Clone, Copy)]
pub struct Roles<'a>(pub(super) &'a Db);

impl Roles<'_> {
    /// Defines a role. `Conflict` if the client has one of that name.
    pub async fn insert(&self, role: &Role) -> Result<(), DbError> {
        app_roles::ActiveModel {
            client_id: Set(role.client_id.clone()),
            name: Set(role.name.clone()),
            description: Set(role.description.clone()),
            created_at: Set(role.created_at.as_millis()),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable(
            "a role of this name at this client",
        ))?;
        Ok(())
    }

    /// The role `name` of `client_id`.
    pub async fn get(&self, client_id: &str, name: &str) -> Result<Option<Role>, DbError> {
        let found = app_roles::Entity::find_by_id((client_id.to_owned(), name.to_owned()))
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(role_from))
    }

    /// The roles of `client_id`, in name order.
    pub async fn of_client(&self, client_id: &str) -> Result<Vec<Role>, DbError> {
        let found = app_roles::Entity::find()
            .filter(app_roles::Column::ClientId.eq(client_id))
            .order_by_asc(app_roles::Column::Name)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(role_from).collect())
    }

    /// Deletes a role and every grant of it; false if there was none.
    pub async fn delete(&self, client_id: &str, name: &str) -> Result<bool, DbError> {
        role_grants::Entity::delete_many()
            .filter(role_grants::Column::ClientId.eq(client_id))
            .filter(role_grants::Column::Role.eq(name))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        let result = app_roles::Entity::delete_by_id((client_id.to_owned(), name.to_owned()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes every role of a client and their grants (the client is being deleted).
    pub(super) async fn forget_client(&self, client_id: &str) -> Result<(), DbError> {
        role_grants::Entity::delete_many()
            .filter(role_grants::Column::ClientId.eq(client_id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        app_roles::Entity::delete_many()
            .filter(app_roles::Column::ClientId.eq(client_id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Grants the role to `holder`; false if they held it already.
    pub async fn grant(
        &self,
        client_id: &str,
        role: &str,
        holder: &Holder,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let inserted = role_grants::ActiveModel {
            client_id: Set(client_id.to_owned()),
            role: Set(role.to_owned()),
            holder_kind: Set(holder.kind().to_owned()),
            holder: Set(holder.id().to_owned()),
            granted_at: Set(now.as_millis()),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable("this grant"));
        match inserted {
            Ok(_) => Ok(true),
            Err(DbError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes the role from `holder`; false if they did not hold it.
    pub async fn revoke(
        &self,
        client_id: &str,
        role: &str,
        holder: &Holder,
    ) -> Result<bool, DbError> {
        let result = role_grants::Entity::delete_many()
            .filter(role_grants::Column::ClientId.eq(client_id))
            .filter(role_grants::Column::Role.eq(role))
            .filter(role_grants::Column::HolderKind.eq(holder.kind()))
            .filter(role_grants::Column::Holder.eq(holder.id()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// Who holds the role, groups first.
    pub async fn holders(&self, client_id: &str, role: &str) -> Result<Vec<Holder>, DbError> {
        let rows: Vec<(String, String)> = role_grants::Entity::find()
            .select_only()
            .column(role_grants::Column::HolderKind)
            .column(role_grants::Column::Holder)
            .filter(role_grants::Column::ClientId.eq(client_id))
            .filter(role_grants::Column::Role.eq(role))
            .order_by_asc(role_grants::Column::HolderKind)
            .order_by_asc(role_grants::Column::Holder)
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, id)| Holder::from_parts(&kind, id))
            .collect())
    }

    /// The roles `holder` holds itself (not through a group): (client id, role).
    pub async fn held_by(&self, holder: &Holder) -> Result<Vec<(String, String)>, DbError> {
        role_grants::Entity::find()
            .select_only()
            .column(role_grants::Column::ClientId)
            .column(role_grants::Column::Role)
            .filter(role_grants::Column::HolderKind.eq(holder.kind()))
            .filter(role_grants::Column::Holder.eq(holder.id()))
            .order_by_asc(role_grants::Column::ClientId)
            .order_by_asc(role_grants::Column::Role)
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)
    }

    /// The roles `sub` holds at the clients `client_ids`, directly or through any group of
    /// theirs: (client id, role), each once, in that order. One query: what a token carries.
    pub async fn of_user_at(
        &self,
        sub: &str,
        client_ids: &[String],
    ) -> Result<Vec<(String, String)>, DbError> {
        role_grants::Entity::find()
            .select_only()
            .column(role_grants::Column::ClientId)
            .column(role_grants::Column::Role)
            .distinct()
            .filter(role_grants::Column::ClientId.is_in(client_ids.iter().cloned()))
            .filter(held_by_user(sub))
            .order_by_asc(role_grants::Column::ClientId)
            .order_by_asc(role_grants::Column::Role)
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)
    }

    /// Removes every grant to `holder` (the user or group is being deleted).
    pub(super) async fn forget_holder(&self, holder: &Holder) -> Result<(), DbError> {
        role_grants::Entity::delete_many()
            .filter(role_grants::Column::HolderKind.eq(holder.kind()))
            .filter(role_grants::Column::Holder.eq(holder.id()))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Grants held by `sub` directly or through a group of theirs.
fn held_by_user(sub: &str) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(role_grants::Column::HolderKind.eq("user"))
                .add(role_grants::Column::Holder.eq(sub)),
        )
        .add(
            Condition::all()
                .add(role_grants::Column::HolderKind.eq("group"))
                .add(
                    role_grants::Column::Holder.in_subquery(
                        Query::select()
                            .column(group_members::Column::GroupId)
                            .from(group_members::Entity)
                            .and_where(group_members::Column::Sub.eq(sub))
                            .to_owned(),
                    ),
                ),
        )
}

fn role_from(m: app_roles::Model) -> Role {
    Role {
        client_id: m.client_id,
        name: m.name,
        description: m.description,
        created_at: Timestamp::from_millis(m.created_at),
    }
}
