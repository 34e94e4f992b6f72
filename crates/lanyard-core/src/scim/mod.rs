//! SCIM 2.0 (RFC 7643, RFC 7644): HR and provisioning systems create, change, disable and
//! delete people and groups in Lanyard. This module is the service: resources as SCIM JSON
//! (`users.rs`, `groups.rs`), PATCH (`patch.rs`), the discovery documents (`schema.rs`),
//! and SCIM's errors. `lanyard-idp`'s `http/scim.rs` serves it at `{issuer}/scim/v2`.
//!
//! What Lanyard keeps of a User: `userName`, `displayName`, one address of `emails`,
//! `active`, `externalId`, and a `password` (write-only). Of a Group: `displayName`,
//! `externalId`, `members`. Other attributes a client sends (`name`, `title`, the enterprise
//! extension, ...) are accepted and not kept. A User's `groups` is read-only, as RFC 7643
//! §4.1.2 says.
//!
//! Every change goes through the services the admin API uses (`users`, `access`), so the same
//! rules hold: `active: false` and DELETE revoke everything of the person's at once, and a
//! member removed loses the group in every token within a second.

pub mod groups;
mod patch;
pub mod schema;
pub mod users;

use serde_json::{Map, Value, json};

use crate::Core;
use crate::db::{DbError, SearchError};
use crate::error::ServiceError;
use lanyard_store::Timestamp;

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// An error document.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// A list response.
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// A PATCH request.
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Most resources a page holds (`ServiceProviderConfig`'s `filter.maxResults`).
pub const MAX_RESULTS: u64 = 200;
/// A page's size when the client names none.
pub const DEFAULT_COUNT: u64 = 100;

/// A SCIM error (RFC 7644 §3.12): the status, and for 400s the `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {detail}")]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// `invalidFilter`, `invalidSyntax`, `invalidPath`, `noTarget`, `invalidValue`,
    /// `mutability`, `uniqueness`, `tooMany`...
    pub scim_type: Option<&'static str>,
    /// What was wrong, for the operator.
    pub detail: String,
}

impl ScimError {
    /// A 400 of `scim_type`.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    /// A 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self {
            status: 404,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// A 412: the resource changed since the version the client names (`If-Match`).
    pub fn changed() -> Self {
        Self {
            status: 412,
            scim_type: None,
            detail: "the resource changed since the version in If-Match; read it again".into(),
        }
    }

    /// The error document.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        body
    }
}

impl From<ServiceError> for ScimError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid(m) => Self::bad("invalidValue", m),
            ServiceError::Field { field, message } => {
                Self::bad("invalidValue", format!("{}: {message}", scim_name(&field)))
            }
            ServiceError::NotFound(m) => Self::not_found(m),
            ServiceError::Conflict(m) => Self {
                status: 409,
                scim_type: Some("uniqueness"),
                detail: m,
            },
            ServiceError::Unavailable(m) => Self {
                status: 503,
                scim_type: None,
                detail: format!("try again shortly ({m})"),
            },
        }
    }
}

impl From<DbError> for ScimError {
    fn from(e: DbError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<SearchError> for ScimError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Filter(m) => Self::bad("invalidFilter", m),
            SearchError::Db(e) => e.into(),
        }
    }
}

/// The resource types served, for the HTTP layer to dispatch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/Users`.
    Users,
    /// `/Groups`.
    Groups,
}

impl Resource {
    /// The resource type a path segment names (`Users`, `Groups`).
    pub fn named(segment: &str) -> Option<Self> {
        match segment {
            "Users" => Some(Self::Users),
            "Groups" => Some(Self::Groups),
            _ => None,
        }
    }

    /// The resource `id`.
    pub async fn get(self, state: &Core, id: &str) -> Result<Value, ScimError> {
        match self {
            Self::Users => users::get_one(state, id).await,
            Self::Groups => groups::get_one(state, id).await,
        }
    }

    /// A page of the resources matching `filter` (RFC 7644 §3.4.2).
    pub async fn search(
        self,
        state: &Core,
        filter: Option<&str>,
        start_index: Option<i64>,
        count: Option<i64>,
    ) -> Result<Value, ScimError> {
        let filter = match filter.filter(|f| !f.trim().is_empty()) {
            Some(f) => Some(
                crate::scim_filter::parse(f)
                    .map_err(|e| ScimError::bad("invalidFilter", e.to_string()))?,
            ),
            None => None,
        };
        let (start, offset, count) = page(start_index, count);
        let (total, resources) = match self {
            Self::Users => users::page(state, filter.as_ref(), offset, count).await?,
            Self::Groups => groups::page(state, filter.as_ref(), offset, count).await?,
        };
        Ok(list_response(total, start, resources))
    }

    /// Creates one from `body` (POST).
    pub async fn create(self, state: &Core, body: &Value, actor: &str) -> Result<Value, ScimError> {
        match self {
            Self::Users => users::create(state, body, actor).await,
            Self::Groups => groups::create(state, body, actor).await,
        }
    }

    /// Replaces `id` with `body` (PUT).
    pub async fn replace(
        self,
        state: &Core,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        actor: &str,
    ) -> Result<Value, ScimError> {
        match self {
            Self::Users => users::replace(state, id, body, if_match, actor).await,
            Self::Groups => groups::replace(state, id, body, if_match, actor).await,
        }
    }

    /// Applies the PatchOp `body` to `id`.
    pub async fn patch(
        self,
        state: &Core,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
        actor: &str,
    ) -> Result<Value, ScimError> {
        match self {
            Self::Users => users::patch(state, id, body, if_match, actor).await,
            Self::Groups => groups::patch(state, id, body, if_match, actor).await,
        }
    }

    /// Deletes `id`.
    pub async fn delete(
        self,
        state: &Core,
        id: &str,
        if_match: Option<&str>,
        actor: &str,
    ) -> Result<(), ScimError> {
        match self {
            Self::Users => users::delete(state, id, if_match, actor).await,
            Self::Groups => groups::delete(state, id, if_match, actor).await,
        }
    }
}

/// The SCIM name of a field the services name.
fn scim_name(field: &str) -> &str {
    match field {
        "username" => "userName",
        "display_name" | "name" => "displayName",
        "email" => "emails",
        "external_id" => "externalId",
        other => other,
    }
}

/// Where SCIM is served: `{issuer}/scim/v2`.
pub fn base(issuer: &str) -> String {
    format!("{}/scim/v2", issuer.trim_end_matches('/'))
}

/// A version (`meta.version`, the `ETag`) from a record's `updated_at`.
pub fn version(updated_at: Timestamp) -> String {
    format!("W/\"{}\"", updated_at.as_millis())
}

/// Whether an `If-Match` header allows a change of the resource at `current` (no header,
/// `*`, or one of the versions it lists).
pub fn matches(if_match: Option<&str>, current: &str) -> bool {
    let Some(header) = if_match else { return true };
    header.split(',').map(str::trim).any(|v| {
        v == "*" || v == current || v.trim_start_matches("W/") == current.trim_start_matches("W/")
    })
}

/// An instant as RFC 3339 with milliseconds, in UTC.
pub fn instant(t: Timestamp) -> String {
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(t.as_millis());
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `meta` of a resource.
fn meta(kind: &str, location: String, created: Timestamp, updated: Timestamp) -> Value {
    json!({
        "resourceType": kind,
        "created": instant(created),
        "lastModified": instant(updated),
        "location": location,
        "version": version(updated),
    })
}

/// A list response (RFC 7644 §3.4.2): one page.
pub fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// A page as asked: `startIndex` (1-based; less than 1 is 1) and `count` (default
/// [`DEFAULT_COUNT`], at most [`MAX_RESULTS`]; negative is 0). Returns (start index,
/// offset, count).
pub fn page(start_index: Option<i64>, count: Option<i64>) -> (u64, u64, u64) {
    let start = u64::try_from(start_index.unwrap_or(1).max(1)).unwrap_or(1);
    let count = count.map_or(DEFAULT_COUNT, |c| u64::try_from(c.max(0)).unwrap_or(0));
    (start, start - 1, count.min(MAX_RESULTS))
}

/// Only the attributes asked for (`attributes`), or all but those excluded
/// (`excludedAttributes`); `id` and `schemas` always stay (RFC 7644 §3.4.2.5). Names are
/// compared ignoring case, with or without the schema URI; `a.b` names a sub-attribute.
pub fn project(resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names = |list: &str| -> Vec<(String, Option<String>)> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                let s = s.rsplit_once(':').map_or(s, |(_, tail)| tail);
                match s.split_once('.') {
                    Some((a, b)) => (a.to_lowercase(), Some(b.to_lowercase())),
                    None => (s.to_lowercase(), None),
                }
            })
            .collect()
    };
    let Value::Object(map) = resource else {
        return resource;
    };
    let always = |k: &str| k == "id" || k == "schemas";
    if let Some(list) = attributes.filter(|l| !l.trim().is_empty()) {
        let wanted = names(list);
        let mut out = Map::new();
        for (k, v) in map {
            let key = k.to_lowercase();
            if always(&k) {
                out.insert(k, v);
                continue;
            }
            let subs: Vec<&String> = wanted
                .iter()
                .filter(|(a, _)| *a == key)
                .filter_map(|(_, b)| b.as_ref())
                .collect();
            if wanted.iter().any(|(a, b)| *a == key && b.is_none()) {
                out.insert(k, v);
            } else if !subs.is_empty() {
                out.insert(k, keep_subs(v, &subs));
            }
        }
        return Value::Object(out);
    }
    if let Some(list) = excluded {
        let unwanted = names(list);
        let mut out = Map::new();
        for (k, v) in map {
            let key = k.to_lowercase();
            if !always(&k) && unwanted.iter().any(|(a, b)| *a == key && b.is_none()) {
                continue;
            }
            out.insert(k, v);
        }
        return Value::Object(out);
    }
    Value::Object(map)
}

/// `value` (an object, or an array of them) with only the sub-attributes `subs`.
fn keep_subs(value: Value, subs: &[&String]) -> Value {
    let keep = |v: Value| match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| subs.iter().any(|s| **s == k.to_lowercase()))
                .collect(),
        ),
        other => other,
    };
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(keep).collect()),
        other => keep(other),
    }
}

/// The object a request's body must be, naming the schema it must carry.
fn object<'a>(body: &'a Value, schema: &str) -> Result<&'a Map<String, Value>, ScimError> {
    let map = body
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidSyntax", "the body is not a JSON object"))?;
    if let Some(schemas) = map.get("schemas") {
        let listed = schemas
            .as_array()
            .is_some_and(|s| s.iter().any(|v| v.as_str() == Some(schema)));
        if !listed {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("schemas must list {schema}"),
            ));
        }
    }
    Ok(map)
}

/// The member of `map` named `name`, ignoring case (RFC 7643 §2.1).
fn get<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

/// An optional string attribute.
fn text(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match get(map, name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScimError::bad(
            "invalidValue",
            format!("{name} must be a string"),
        )),
    }
}

/// An optional boolean attribute (`"True"` and `"false"` as strings are read too: some
/// provisioning clients send them so).
fn flag(map: &Map<String, Value>, name: &str) -> Result<Option<bool>, ScimError> {
    match get(map, name) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(ScimError::bad(
            "invalidValue",
            format!("{name} must be true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim_filter::parse_instant;

    #[test]
    fn instants_versions_pages_and_projections() {
        let t = Timestamp::from_millis(1_796_000_000_123);
        let text = instant(t);
        assert_eq!(text, "2026-11-30T00:53:20.123Z");
        assert_eq!(parse_instant(&text), Some(1_796_000_000_123));
        assert_eq!(
            parse_instant("2026-11-30T01:53:20.123+01:00"),
            Some(1_796_000_000_123)
        );
        assert_eq!(parse_instant("yesterday"), None);
        let v = version(t);
        assert!(matches(None, &v) && matches(Some("*"), &v) && matches(Some(&v), &v));
        assert!(
            matches(Some("\"1796000000123\""), &v),
            "weak or strong alike"
        );
        assert!(!matches(Some("W/\"1\""), &v));
        assert_eq!(page(None, None), (1, 0, DEFAULT_COUNT));
        assert_eq!(page(Some(0), Some(-5)), (1, 0, 0));
        assert_eq!(page(Some(201), Some(1000)), (201, 200, MAX_RESULTS));
        let user = json!({"schemas": [USER_SCHEMA], "id": "x", "userName": "a",
            "emails": [{"value": "a@x", "type": "work"}], "meta": {"version": "v"}});
        assert_eq!(
            project(user.clone(), Some("userName,emails.value"), None),
            json!({"schemas": [USER_SCHEMA], "id": "x", "userName": "a", "emails": [{"value": "a@x"}]})
        );
        assert_eq!(
            project(
                user.clone(),
                Some("urn:ietf:params:scim:schemas:core:2.0:User:USERNAME"),
                None
            ),
            json!({"schemas": [USER_SCHEMA], "id": "x", "userName": "a"})
        );
        assert_eq!(
            project(user, None, Some("emails,meta,id")),
            json!({"schemas": [USER_SCHEMA], "id": "x", "userName": "a"})
        );
        let e = ScimError::bad("invalidFilter", "no").to_json();
        assert_eq!(e["status"], "400");
        assert_eq!(e["scimType"], "invalidFilter");
        assert_eq!(e["schemas"][0], ERROR_SCHEMA);
    }
}
