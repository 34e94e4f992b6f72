//! Groups and their members: `user_groups` and `group_members` rows. Group names are unique
//! regardless of letter case (`name_key` holds the lower-cased name). A change of members
//! moves the group's `updated_at` too, so a reader comparing versions sees it.

use lanyard_store::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::entities::{group_members, user_groups, users};
use super::users::user_from;
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{Group, Holder, User};

/// The `user_groups` and `group_members` tables ([`Db::groups`]).
#[derive(Debug, Clone, Copy)]
pub struct Groups<'a>(pub(super) &'a Db);

const TAKEN: &str = "a group with this name";

impl Groups<'_> {
    /// Stores a new group. `Conflict` if the name (case-insensitively) is taken.
    pub async fn insert(&self, group: &Group) -> Result<(), DbError> {
        user_groups::ActiveModel {
            id: Set(group.id.clone()),
            name: Set(group.name.clone()),
            name_key: Set(name_key(&group.name)),
            description: Set(group.description.clone()),
            external_id: Set(group.external_id.clone()),
            created_at: Set(group.created_at.as_millis()),
            updated_at: Set(group.updated_at.as_millis()),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable(TAKEN))?;
        Ok(())
    }

    /// The group with this id.
    pub async fn get(&self, id: &str) -> Result<Option<Group>, DbError> {
        let found = user_groups::Entity::find_by_id(id.to_owned())
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(group_from))
    }

    /// The group called `name` (case-insensitively).
    pub async fn by_name(&self, name: &str) -> Result<Option<Group>, DbError> {
        let found = user_groups::Entity::find()
            .filter(user_groups::Column::NameKey.eq(name_key(name)))
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(group_from))
    }

    /// Up to `limit` groups in name order, after the name `after` (exclusive), whose name
    /// contains `search` (case-insensitively).
    pub async fn list(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Group>, DbError> {
        let mut query = user_groups::Entity::find().order_by_asc(user_groups::Column::NameKey);
        if let Some(after) = after {
            query = query.filter(user_groups::Column::NameKey.gt(name_key(after)));
        }
        if let Some(search) = search.filter(|s| !s.is_empty()) {
            let pattern = format!("%{}%", super::users::escape_like(&search.to_lowercase()));
            query = query
                .filter(Expr::col(user_groups::Column::NameKey).like(super::users::like(&pattern)));
        }
        let found = query
            .paginate(&self.0.conn, limit)
            .fetch_page(0)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(group_from).collect())
    }

    /// Writes the group's name, description and external id, if the record is still as
    /// `seen` (its `updated_at`); false when it changed meanwhile (or is gone). `Conflict`
    /// if the new name is taken.
    pub async fn update(&self, group: &Group, seen: Timestamp) -> Result<bool, DbError> {
        let result = user_groups::Entity::update_many()
            .col_expr(user_groups::Column::Name, Expr::value(group.name.clone()))
            .col_expr(
                user_groups::Column::NameKey,
                Expr::value(name_key(&group.name)),
            )
            .col_expr(
                user_groups::Column::Description,
                Expr::value(group.description.clone()),
            )
            .col_expr(
                user_groups::Column::ExternalId,
                Expr::value(group.external_id.clone()),
            )
            .col_expr(
                user_groups::Column::UpdatedAt,
                Expr::value(group.updated_at.as_millis()),
            )
            .filter(user_groups::Column::Id.eq(group.id.as_str()))
            .filter(user_groups::Column::UpdatedAt.eq(seen.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(conflict_or_unavailable(TAKEN))?;
        Ok(result.rows_affected > 0)
    }

    /// Deletes the group, its memberships and the roles it holds; false if there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, DbError> {
        group_members::Entity::delete_many()
            .filter(group_members::Column::GroupId.eq(id))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0
            .roles()
            .forget_holder(&Holder::Group(id.to_owned()))
            .await?;
        let result = user_groups::Entity::delete_by_id(id.to_owned())
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected > 0)
    }

    /// Makes the people `add` members and `remove` no longer members, in one transaction
    /// that also moves the group's `updated_at` to `now` when anything changed. Returns the
    /// `sub`s actually added and actually removed. People who are not users are skipped by
    /// the caller, which checks them first.
    pub async fn change_members(
        &self,
        group_id: &str,
        add: &[String],
        remove: &[String],
        now: Timestamp,
    ) -> Result<(Vec<String>, Vec<String>), DbError> {
        let tx = self.0.conn.begin().await.map_err(unavailable)?;
        // A write first: it takes the group's row (PostgreSQL) or the write lock (SQLite)
        // before anything is read, so two changes of one group run one after the other, and
        // SQLite never has to upgrade a read snapshot that a writer made stale (SQLITE_BUSY).
        user_groups::Entity::update_many()
            .col_expr(
                user_groups::Column::UpdatedAt,
                Expr::col(user_groups::Column::UpdatedAt),
            )
            .filter(user_groups::Column::Id.eq(group_id))
            .exec(&tx)
            .await
            .map_err(unavailable)?;
        let current: std::collections::HashSet<String> = group_members::Entity::find()
            .select_only()
            .column(group_members::Column::Sub)
            .filter(group_members::Column::GroupId.eq(group_id))
            .into_tuple::<String>()
            .all(&tx)
            .await
            .map_err(unavailable)?
            .into_iter()
            .collect();
        let mut added: Vec<String> = Vec::new();
        let mut adding = std::collections::HashSet::new();
        for sub in add {
            if !current.contains(sub) && adding.insert(sub) {
                added.push(sub.clone());
            }
        }
        let mut removed: Vec<String> = Vec::new();
        let mut removing = std::collections::HashSet::new();
        for sub in remove {
            if current.contains(sub) && !adding.contains(sub) && removing.insert(sub) {
                removed.push(sub.clone());
            }
        }
        for chunk in added.chunks(500) {
            group_members::Entity::insert_many(chunk.iter().map(|sub| {
                group_members::ActiveModel {
                    group_id: Set(group_id.to_owned()),
                    sub: Set(sub.clone()),
                    added_at: Set(now.as_millis()),
                }
            }))
            .exec(&tx)
            .await
            .map_err(unavailable)?;
        }
        for chunk in removed.chunks(500) {
            group_members::Entity::delete_many()
                .filter(group_members::Column::GroupId.eq(group_id))
                .filter(group_members::Column::Sub.is_in(chunk.iter().cloned()))
                .exec(&tx)
                .await
                .map_err(unavailable)?;
        }
        if !added.is_empty() || !removed.is_empty() {
            // Strictly later than before, so a version read before this change differs.
            let before = user_groups::Entity::find_by_id(group_id.to_owned())
                .one(&tx)
                .await
                .map_err(unavailable)?
                .map_or(0, |g| g.updated_at);
            user_groups::Entity::update_many()
                .col_expr(
                    user_groups::Column::UpdatedAt,
                    Expr::value(Ord::max(now.as_millis(), before + 1)),
                )
                .filter(user_groups::Column::Id.eq(group_id))
                .exec(&tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok((added, removed))
    }

    /// The members, in username order.
    pub async fn members(&self, group_id: &str) -> Result<Vec<User>, DbError> {
        let found = users::Entity::find()
            .filter(
                Condition::all().add(
                    users::Column::Sub.in_subquery(
                        Query::select()
                            .column(group_members::Column::Sub)
                            .from(group_members::Entity)
                            .and_where(group_members::Column::GroupId.eq(group_id))
                            .to_owned(),
                    ),
                ),
            )
            .order_by_asc(users::Column::UsernameKey)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(user_from).collect())
    }

    /// How many members the group has.
    pub async fn member_count(&self, group_id: &str) -> Result<u64, DbError> {
        group_members::Entity::find()
            .filter(group_members::Column::GroupId.eq(group_id))
            .count(&self.0.conn)
            .await
            .map_err(unavailable)
    }

    /// The groups `sub` is in, in name order.
    pub async fn of_user(&self, sub: &str) -> Result<Vec<Group>, DbError> {
        let found = user_groups::Entity::find()
            .filter(
                user_groups::Column::Id.in_subquery(
                    Query::select()
                        .column(group_members::Column::GroupId)
                        .from(group_members::Entity)
                        .and_where(group_members::Column::Sub.eq(sub))
                        .to_owned(),
                ),
            )
            .order_by_asc(user_groups::Column::NameKey)
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(group_from).collect())
    }

    /// The groups of each of `subs` (a page of people), in name order: one query.
    pub async fn of_users(
        &self,
        subs: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<Group>>, DbError> {
        let mut out: std::collections::HashMap<String, Vec<Group>> =
            std::collections::HashMap::new();
        if subs.is_empty() {
            return Ok(out);
        }
        let pairs: Vec<(String, String)> = group_members::Entity::find()
            .select_only()
            .column(group_members::Column::Sub)
            .column(group_members::Column::GroupId)
            .filter(group_members::Column::Sub.is_in(subs.iter().cloned()))
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        let ids: Vec<String> = pairs.iter().map(|(_, g)| g.clone()).collect();
        let groups: std::collections::HashMap<String, Group> = user_groups::Entity::find()
            .filter(user_groups::Column::Id.is_in(ids))
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?
            .into_iter()
            .map(|m| (m.id.clone(), group_from(m)))
            .collect();
        for (sub, id) in pairs {
            if let Some(g) = groups.get(&id) {
                out.entry(sub).or_default().push(g.clone());
            }
        }
        for list in out.values_mut() {
            list.sort_by_key(|g| g.name.to_lowercase());
        }
        Ok(out)
    }

    /// The members' `sub`s of each of `group_ids` (a page of groups): one query.
    pub async fn member_subs(
        &self,
        group_ids: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<String>>, DbError> {
        let mut out: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        if group_ids.is_empty() {
            return Ok(out);
        }
        let pairs: Vec<(String, String)> = group_members::Entity::find()
            .select_only()
            .column(group_members::Column::GroupId)
            .column(group_members::Column::Sub)
            .filter(group_members::Column::GroupId.is_in(group_ids.iter().cloned()))
            .order_by_asc(group_members::Column::Sub)
            .into_tuple()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        for (group, sub) in pairs {
            out.entry(group).or_default().push(sub);
        }
        Ok(out)
    }

    /// The names of the groups `sub` is in (for tokens: names only, one query).
    pub async fn names_of(&self, sub: &str) -> Result<Vec<String>, DbError> {
        user_groups::Entity::find()
            .select_only()
            .column(user_groups::Column::Name)
            .filter(
                user_groups::Column::Id.in_subquery(
                    Query::select()
                        .column(group_members::Column::GroupId)
                        .from(group_members::Entity)
                        .and_where(group_members::Column::Sub.eq(sub))
                        .to_owned(),
                ),
            )
            .order_by_asc(user_groups::Column::NameKey)
            .into_tuple::<String>()
            .all(&self.0.conn)
            .await
            .map_err(unavailable)
    }

    /// Removes `sub` from every group (the user is being deleted).
    pub(super) async fn forget_member(&self, sub: &str) -> Result<(), DbError> {
        group_members::Entity::delete_many()
            .filter(group_members::Column::Sub.eq(sub))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// How many groups there are.
    pub async fn count(&self) -> Result<u64, DbError> {
        user_groups::Entity::find()
            .count(&self.0.conn)
            .await
            .map_err(unavailable)
    }
}

/// Group names are unique regardless of letter case.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

pub(super) fn group_from(m: user_groups::Model) -> Group {
    Group {
        id: m.id,
        name: m.name,
        description: m.description,
        external_id: m.external_id,
        created_at: Timestamp::from_millis(m.created_at),
        updated_at: Timestamp::from_millis(m.updated_at),
    }
}
