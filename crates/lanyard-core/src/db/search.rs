//! SCIM searches in SQL: a parsed filter (`scim_filter`) becomes a `WHERE` clause on
//! `users` or `user_groups`, with a count and one page, so a search over 100,000 people reads
//! one page of rows, never all of them.
//!
//! What each attribute maps to, and how it compares (RFC 7643 §4.1, §4.2: `caseExact`):
//!
//! | resource | attribute | column | compares |
//! |---|---|---|---|
//! | User | `id` | `sub` | exactly |
//! | User | `userName` | `username_key` | ignoring case |
//! | User | `displayName` | `display_name` | ignoring case |
//! | User | `emails`, `emails.value` (and `emails[value ...]`) | `email` | ignoring case |
//! | User | `externalId` | `external_id` | exactly |
//! | User | `active` | `NOT disabled` | `eq`, `ne`, `pr` |
//! | both | `meta.created`, `meta.lastModified` | `created_at`, `updated_at` | as instants (RFC 3339 values) |
//! | Group | `id`, `displayName`, `externalId` | `id`, `name_key`, `external_id` | as for User |
//! | Group | `members`, `members.value` | a member's `sub` | `eq` only |
//!
//! Any other attribute, or an operator that does not suit the attribute's type (`gt` on a
//! boolean, `co` on an instant), is a [`SearchError::Filter`] naming it: SCIM's
//! `invalidFilter`.

use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{group_members, user_groups, users};
use super::groups::group_from;
use super::users::{escape_like, like, user_from};
use super::{Db, DbError, unavailable};
use crate::model::{Group, User};
use crate::scim_filter::{AttrPath, CompareOp, Filter, Value};

/// Why a search could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The filter names an attribute or comparison this server does not search by.
    #[error("{0}")]
    Filter(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// How an attribute compares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Text, exactly.
    Exact,
    /// Text, ignoring case (the column or `lower()` of it, against a lower-cased value).
    IgnoreCase,
    /// An instant, in milliseconds; filter values are RFC 3339.
    Instant,
    /// A boolean stored inverted (`active` is `NOT disabled`).
    NotFlag,
}

/// What a filter's attribute names.
enum Target {
    /// A column and how it compares.
    Column(Expr, Kind, &'static str),
    /// Groups with this member (`members.value eq ...`).
    Member,
}

impl super::Users<'_> {
    /// One page of the people matching a SCIM `filter` (all without one), in username
    /// order, from the 0-based `offset`, at most `count`; and how many match in all.
    pub async fn search(
        &self,
        filter: Option<&Filter>,
        offset: u64,
        count: u64,
    ) -> Result<(u64, Vec<User>), SearchError> {
        users(self.0, filter, offset, count).await
    }
}

impl super::Groups<'_> {
    /// [`Users::search`](super::Users::search) for groups, in name order.
    pub async fn search(
        &self,
        filter: Option<&Filter>,
        offset: u64,
        count: u64,
    ) -> Result<(u64, Vec<Group>), SearchError> {
        groups(self.0, filter, offset, count).await
    }
}

async fn users(
    db: &Db,
    filter: Option<&Filter>,
    offset: u64,
    count: u64,
) -> Result<(u64, Vec<User>), SearchError> {
    let condition = match filter {
        Some(f) => condition(f, &user_attribute)?,
        None => Condition::all(),
    };
    let query = users::Entity::find().filter(condition);
    let total = query.clone().count(&db.conn).await.map_err(unavailable)?;
    if count == 0 {
        return Ok((total, Vec::new()));
    }
    let rows = query
        .order_by_asc(users::Column::UsernameKey)
        .offset(offset)
        .limit(count)
        .all(&db.conn)
        .await
        .map_err(unavailable)?;
    Ok((total, rows.into_iter().map(user_from).collect()))
}

async fn groups(
    db: &Db,
    filter: Option<&Filter>,
    offset: u64,
    count: u64,
) -> Result<(u64, Vec<Group>), SearchError> {
    let condition = match filter {
        Some(f) => condition(f, &group_attribute)?,
        None => Condition::all(),
    };
    let query = user_groups::Entity::find().filter(condition);
    let total = query.clone().count(&db.conn).await.map_err(unavailable)?;
    if count == 0 {
        return Ok((total, Vec::new()));
    }
    let rows = query
        .order_by_asc(user_groups::Column::NameKey)
        .offset(offset)
        .limit(count)
        .all(&db.conn)
        .await
        .map_err(unavailable)?;
    Ok((total, rows.into_iter().map(group_from).collect()))
}

fn lower(column: impl sea_orm::sea_query::IntoColumnRef) -> Expr {
    Expr::expr(Func::lower(Expr::col(column)))
}

fn user_attribute(path: &AttrPath) -> Option<Target> {
    let is = |name: &str| path.is(name);
    Some(if is("id") {
        Target::Column(Expr::col(users::Column::Sub), Kind::Exact, "id")
    } else if is("userName") {
        Target::Column(
            Expr::col(users::Column::UsernameKey),
            Kind::IgnoreCase,
            "userName",
        )
    } else if is("displayName") {
        Target::Column(
            lower(users::Column::DisplayName),
            Kind::IgnoreCase,
            "displayName",
        )
    } else if is("emails") || is("emails.value") {
        Target::Column(lower(users::Column::Email), Kind::IgnoreCase, "emails")
    } else if is("externalId") {
        Target::Column(
            Expr::col(users::Column::ExternalId),
            Kind::Exact,
            "externalId",
        )
    } else if is("active") {
        Target::Column(Expr::col(users::Column::Disabled), Kind::NotFlag, "active")
    } else if is("meta.created") {
        Target::Column(
            Expr::col(users::Column::CreatedAt),
            Kind::Instant,
            "meta.created",
        )
    } else if is("meta.lastModified") {
        Target::Column(
            Expr::col(users::Column::UpdatedAt),
            Kind::Instant,
            "meta.lastModified",
        )
    } else {
        return None;
    })
}

fn group_attribute(path: &AttrPath) -> Option<Target> {
    let is = |name: &str| path.is(name);
    Some(if is("id") {
        Target::Column(Expr::col(user_groups::Column::Id), Kind::Exact, "id")
    } else if is("displayName") {
        Target::Column(
            Expr::col(user_groups::Column::NameKey),
            Kind::IgnoreCase,
            "displayName",
        )
    } else if is("externalId") {
        Target::Column(
            Expr::col(user_groups::Column::ExternalId),
            Kind::Exact,
            "externalId",
        )
    } else if is("members") || is("members.value") {
        Target::Member
    } else if is("meta.created") {
        Target::Column(
            Expr::col(user_groups::Column::CreatedAt),
            Kind::Instant,
            "meta.created",
        )
    } else if is("meta.lastModified") {
        Target::Column(
            Expr::col(user_groups::Column::UpdatedAt),
            Kind::Instant,
            "meta.lastModified",
        )
    } else {
        return None;
    })
}

type Resolve<'a> = dyn Fn(&AttrPath) -> Option<Target> + 'a;

fn unknown(path: &AttrPath) -> SearchError {
    SearchError::Filter(format!(
        "this server cannot filter on {path}; it filters on id, userName, displayName, emails.value, externalId, active, members.value, meta.created and meta.lastModified"
    ))
}

/// The `WHERE` clause of `filter`.
fn condition(filter: &Filter, resolve: &Resolve<'_>) -> Result<Condition, SearchError> {
    Ok(match filter {
        Filter::And(a, b) => Condition::all()
            .add(condition(a, resolve)?)
            .add(condition(b, resolve)?),
        Filter::Or(a, b) => Condition::any()
            .add(condition(a, resolve)?)
            .add(condition(b, resolve)?),
        Filter::Not(inner) => condition(inner, resolve)?.not(),
        Filter::Present(path) => {
            match resolve(path).ok_or_else(|| unknown(path))? {
                // Every group may have members; "present" means it has one.
                Target::Member => Condition::all().add(
                    user_groups::Column::Id.in_subquery(
                        Query::select()
                            .column(group_members::Column::GroupId)
                            .from(group_members::Entity)
                            .to_owned(),
                    ),
                ),
                Target::Column(expr, Kind::Exact | Kind::IgnoreCase, _) => Condition::all()
                    .add(expr.clone().is_not_null())
                    .add(ExprTrait::ne(expr, "")),
                Target::Column(expr, _, _) => Condition::all().add(expr.is_not_null()),
            }
        }
        Filter::Compare { path, op, value } => {
            let target = resolve(path).ok_or_else(|| unknown(path))?;
            compare(target, *op, value)?
        }
        // `emails[value co "x"]`: the sub-attribute paths are relative to `attr`.
        Filter::ValuePath { attr, filter } => {
            let prefix = attr.to_string();
            let nested = move |p: &AttrPath| {
                let full = AttrPath {
                    uri: attr.uri.clone(),
                    attr: attr.attr.clone(),
                    sub: Some(p.attr.clone()),
                };
                if p.sub.is_some() || p.uri.is_some() {
                    return None;
                }
                resolve(&full)
            };
            condition(filter, &nested).map_err(|e| match e {
                SearchError::Filter(m) => SearchError::Filter(format!("{prefix}[...]: {m}")),
                other => other,
            })?
        }
    })
}

fn compare(target: Target, op: CompareOp, value: &Value) -> Result<Condition, SearchError> {
    let (expr, kind, name) = match target {
        Target::Member => {
            let Value::Str(sub) = value else {
                return Err(SearchError::Filter(
                    "members.value is compared with a string (a user's id)".to_owned(),
                ));
            };
            if op != CompareOp::Eq {
                return Err(SearchError::Filter(
                    "members.value takes only eq".to_owned(),
                ));
            }
            return Ok(Condition::all().add(
                user_groups::Column::Id.in_subquery(
                    Query::select()
                        .column(group_members::Column::GroupId)
                        .from(group_members::Entity)
                        .and_where(group_members::Column::Sub.eq(sub.as_str()))
                        .to_owned(),
                ),
            ));
        }
        Target::Column(expr, kind, name) => (expr, kind, name),
    };
    let wrong = |what: &str| {
        SearchError::Filter(format!(
            "{name} cannot be compared with {} {what}",
            op.as_str()
        ))
    };
    if let Value::Str(text) = value
        && text.contains('\0')
    {
        return Err(SearchError::Filter(format!(
            "{name}: a value may not hold a NUL character"
        )));
    }
    if *value == Value::Null {
        // `eq null` is "has no value", `ne null` "has one" (RFC 7644 §3.4.2.2 treats null as
        // unassigned).
        return match op {
            CompareOp::Eq => Ok(Condition::all().add(expr.is_null())),
            CompareOp::Ne => Ok(Condition::all().add(expr.is_not_null())),
            _ => Err(wrong("null")),
        };
    }
    match kind {
        Kind::NotFlag => {
            let Value::Bool(b) = value else {
                return Err(wrong("a value that is not true or false"));
            };
            let disabled = !*b;
            match op {
                CompareOp::Eq => Ok(Condition::all().add(ExprTrait::eq(expr, disabled))),
                CompareOp::Ne => Ok(Condition::all().add(ExprTrait::ne(expr, disabled))),
                _ => Err(wrong("(a boolean takes eq and ne)")),
            }
        }
        Kind::Instant => {
            let Value::Str(text) = value else {
                return Err(wrong("a value that is not an RFC 3339 time in quotes"));
            };
            let ms = crate::scim_filter::parse_instant(text).ok_or_else(|| {
                SearchError::Filter(format!(
                    "{name}: {text:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z"
                ))
            })?;
            let e = match op {
                CompareOp::Eq => ExprTrait::eq(expr, ms),
                CompareOp::Ne => ExprTrait::ne(expr, ms),
                CompareOp::Gt => expr.gt(ms),
                CompareOp::Ge => expr.gte(ms),
                CompareOp::Lt => expr.lt(ms),
                CompareOp::Le => expr.lte(ms),
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                    return Err(wrong("(an instant takes eq, ne, gt, ge, lt, le)"));
                }
            };
            Ok(Condition::all().add(e))
        }
        Kind::Exact | Kind::IgnoreCase => {
            let Value::Str(text) = value else {
                return Err(wrong("a value that is not a string"));
            };
            let text = if kind == Kind::IgnoreCase {
                text.to_lowercase()
            } else {
                text.clone()
            };
            let pattern =
                |before: &str, after: &str| like(&format!("{before}{}{after}", escape_like(&text)));
            let e = match op {
                CompareOp::Eq => ExprTrait::eq(expr, text),
                // A person without the attribute is "not equal" too.
                CompareOp::Ne => {
                    return Ok(Condition::any()
                        .add(expr.clone().is_null())
                        .add(ExprTrait::ne(expr, text)));
                }
                CompareOp::Co => expr.like(pattern("%", "%")),
                CompareOp::Sw => expr.like(pattern("", "%")),
                CompareOp::Ew => expr.like(pattern("%", "")),
                CompareOp::Gt => expr.gt(text),
                CompareOp::Ge => expr.gte(text),
                CompareOp::Lt => expr.lt(text),
                CompareOp::Le => expr.lte(text),
            };
            Ok(Condition::all().add(e))
        }
    }
}
