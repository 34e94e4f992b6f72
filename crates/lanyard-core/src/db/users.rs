//! People: `users` rows. Usernames are unique regardless of letter case (the
//! `username_key` column holds the lower-cased name).

use lanyard_store::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};

use super::entities::{consents, users};
use super::{Db, DbError, conflict_or_unavailable, unavailable};
use crate::model::{Holder, User};

/// The `users` table ([`Db::users`]).
#[derive(Debug, Clone, Copy)]
pub struct Users<'a>(pub(super) &'a Db);

impl Users<'_> {
    /// Stores a new user. `Conflict` if the username (case-insensitively) or `sub` is taken.
    pub async fn insert(&self, user: &User) -> Result<(), DbError> {
        users::ActiveModel {
            sub: Set(user.sub.clone()),
            username: Set(user.username.clone()),
            username_key: Set(username_key(&user.username)),
            email: Set(user.email.clone()),
            display_name: Set(user.display_name.clone()),
            password_hash: Set(user.password_hash.clone()),
            disabled: Set(user.disabled),
            created_at: Set(user.created_at.as_millis()),
            updated_at: Set(user.updated_at.as_millis()),
            external_id: Set(user.external_id.clone()),
            email_verified: Set(user.email_verified),
            pending_email: Set(user.pending_email.clone()),
        }
        .insert(&self.0.conn)
        .await
        .map_err(conflict_or_unavailable("a user with this username"))?;
        Ok(())
    }

    /// The user who signs in as `username` (case-insensitively).
    pub async fn by_username(&self, username: &str) -> Result<Option<User>, DbError> {
        let found = users::Entity::find()
            .filter(users::Column::UsernameKey.eq(username_key(username)))
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(user_from))
    }

    /// Up to ten users whose address is `email` (letter case aside), in username order.
    pub async fn with_email(&self, email: &str) -> Result<Vec<User>, DbError> {
        let found = users::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(users::Column::Email))).eq(email.to_lowercase()),
            )
            .order_by_asc(users::Column::UsernameKey)
            .paginate(&self.0.conn, 10)
            .fetch_page(0)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(user_from).collect())
    }

    /// The user with this `sub`.
    pub async fn by_sub(&self, sub: &str) -> Result<Option<User>, DbError> {
        let found = users::Entity::find_by_id(sub.to_owned())
            .one(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.map(user_from))
    }

    /// The usernames of those of `subs` who exist, by `sub`, in one query (pages that show
    /// many events or sessions name people by it).
    pub async fn usernames(
        &self,
        subs: &[String],
    ) -> Result<std::collections::HashMap<String, String>, DbError> {
        if subs.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let found = users::Entity::find()
            .filter(users::Column::Sub.is_in(subs.iter().cloned()))
            .all(&self.0.conn)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(|u| (u.sub, u.username)).collect())
    }

    /// [`Users::by_sub`] as read at most a second ago on this node (writes
    /// through this node are seen at once), for the endpoints that ask on every request.
    pub async fn recent(&self, sub: &str) -> Result<Option<User>, DbError> {
        self.0.recent_users.get_or(sub, self.by_sub(sub)).await
    }

    /// Up to `limit` users in username order, after the username `after` (exclusive), whose
    /// username, email or display name contains `search` (case-insensitively).
    pub async fn list(
        &self,
        search: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<User>, DbError> {
        let mut query = users::Entity::find().order_by_asc(users::Column::UsernameKey);
        if let Some(after) = after {
            query = query.filter(users::Column::UsernameKey.gt(username_key(after)));
        }
        if let Some(search) = search.filter(|s| !s.is_empty()) {
            let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
            query = query.filter(
                Condition::any()
                    .add(Expr::col(users::Column::UsernameKey).like(like(&pattern)))
                    .add(
                        Expr::expr(Func::lower(Expr::col(users::Column::Email)))
                            .like(like(&pattern)),
                    )
                    .add(
                        Expr::expr(Func::lower(Expr::col(users::Column::DisplayName)))
                            .like(like(&pattern)),
                    ),
            );
        }
        let found = query
            .paginate(&self.0.conn, limit)
            .fetch_page(0)
            .await
            .map_err(unavailable)?;
        Ok(found.into_iter().map(user_from).collect())
    }

    /// Writes the user's username, email (verified or not, and the one waiting to be),
    /// display name and external id, if the record is
    /// still as `seen` (its `updated_at`); returns false when it changed meanwhile (or is
    /// gone). `Conflict` if the username is taken.
    pub async fn update_profile(&self, user: &User, seen: Timestamp) -> Result<bool, DbError> {
        let result = users::Entity::update_many()
            .col_expr(users::Column::Username, Expr::value(user.username.clone()))
            .col_expr(
                users::Column::UsernameKey,
                Expr::value(username_key(&user.username)),
            )
            .col_expr(users::Column::Email, Expr::value(user.email.clone()))
            .col_expr(
                users::Column::DisplayName,
                Expr::value(user.display_name.clone()),
            )
            .col_expr(
                users::Column::ExternalId,
                Expr::value(user.external_id.clone()),
            )
            .col_expr(
                users::Column::EmailVerified,
                Expr::value(user.email_verified),
            )
            .col_expr(
                users::Column::PendingEmail,
                Expr::value(user.pending_email.clone()),
            )
            .col_expr(
                users::Column::UpdatedAt,
                Expr::value(user.updated_at.as_millis()),
            )
            .filter(users::Column::Sub.eq(user.sub.as_str()))
            .filter(users::Column::UpdatedAt.eq(seen.as_millis()))
            .exec(&self.0.conn)
            .await
            .map_err(conflict_or_unavailable("a user with this username"))?;
        self.0.recent_users.forget(&user.sub);
        Ok(result.rows_affected > 0)
    }

    /// Replaces the user's password hash; false if there is no such user.
    pub async fn set_password(
        &self,
        sub: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        self.set_column(
            sub,
            users::Column::PasswordHash,
            Expr::value(password_hash),
            now,
        )
        .await
    }

    /// Sets one column of the user and `updated_at`; false if there is no such user.
    async fn set_column(
        &self,
        sub: &str,
        column: users::Column,
        value: Expr,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        let result = users::Entity::update_many()
            .col_expr(column, value)
            .col_expr(users::Column::UpdatedAt, Expr::value(now.as_millis()))
            .filter(users::Column::Sub.eq(sub))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0.recent_users.forget(sub);
        Ok(result.rows_affected > 0)
    }

    /// Deletes the user; false if there was none.
    pub async fn delete(&self, sub: &str) -> Result<bool, DbError> {
        // What they allowed, their second factors, their groups and roles go with them.
        self.0.groups().forget_member(sub).await?;
        self.0
            .roles()
            .forget_holder(&Holder::User(sub.to_owned()))
            .await?;
        consents::Entity::delete_many()
            .filter(consents::Column::Sub.eq(sub))
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0.factors().remove_all(sub).await?;
        self.0.mail_links().forget(sub).await?;
        let result = users::Entity::delete_by_id(sub.to_owned())
            .exec(&self.0.conn)
            .await
            .map_err(unavailable)?;
        self.0.recent_users.forget(sub);
        Ok(result.rows_affected > 0)
    }

    /// How many users there are.
    pub async fn count(&self) -> Result<u64, DbError> {
        users::Entity::find()
            .count(&self.0.conn)
            .await
            .map_err(unavailable)
    }

    /// Marks a user disabled or enabled.
    pub async fn set_disabled(
        &self,
        sub: &str,
        disabled: bool,
        now: Timestamp,
    ) -> Result<bool, DbError> {
        self.set_column(sub, users::Column::Disabled, Expr::value(disabled), now)
            .await
    }
}

/// Usernames are unique regardless of letter case.
fn username_key(username: &str) -> String {
    username.to_lowercase()
}

/// `%`, `_` and `\` taken literally in a LIKE pattern (escape character `\`).
pub(super) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn like(pattern: &str) -> LikeExpr {
    LikeExpr::new(pattern).escape('\\')
}

pub(super) fn user_from(m: users::Model) -> User {
    User {
        sub: m.sub,
        username: m.username,
        email: m.email,
        display_name: m.display_name,
        password_hash: m.password_hash,
        disabled: m.disabled,
        created_at: Timestamp::from_millis(m.created_at),
        updated_at: Timestamp::from_millis(m.updated_at),
        external_id: m.external_id,
        email_verified: m.email_verified,
        pending_email: m.pending_email,
    }
}
