//! SCIM Groups (RFC 7643 §4.2): a group as SCIM shows it, and create, read, search, replace,
//! patch (members added and removed) and delete through the `access` service's rules: a
//! member removed loses the group in every token within a second.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::patch::{self, Shape};
use super::{GROUP_SCHEMA, ScimError, get, meta, object, text};
use crate::Core;
use crate::access::{self, GroupChange, NewGroup};
use crate::model::Group;
use crate::scim_filter;

/// What a SCIM Group keeps.
const SHAPE: Shape = Shape {
    attributes: &["displayName", "externalId", "members"],
    lists: &["members"],
    one_of: &[],
};

/// The group as SCIM shows it, with its members' ids.
pub fn to_json(base: &str, group: &Group, members: &[String]) -> Value {
    let mut out = json!({
        "schemas": [GROUP_SCHEMA],
        "id": group.id,
        "displayName": group.name,
        "meta": meta("Group", format!("{base}/Groups/{}", group.id), group.created_at, group.updated_at),
    });
    if let Some(id) = &group.external_id {
        out["externalId"] = json!(id);
    }
    if !members.is_empty() {
        out["members"] = members
            .iter()
            .map(|sub| json!({"value": sub, "$ref": format!("{base}/Users/{sub}"), "type": "User"}))
            .collect();
    }
    out
}

/// The group `id`, as SCIM shows it.
pub async fn get_one(state: &Core, id: &str) -> Result<Value, ScimError> {
    let group = find(state, id).await?;
    let members = members_of(state, &group.id).await?;
    Ok(to_json(&base(state), &group, &members))
}

/// One page of the groups matching `filter`, as SCIM shows them; and how many match.
pub(super) async fn page(
    state: &Core,
    filter: Option<&scim_filter::Filter>,
    offset: u64,
    count: u64,
) -> Result<(u64, Vec<Value>), ScimError> {
    let (total, groups) = state.db.groups().search(filter, offset, count).await?;
    let ids: Vec<String> = groups.iter().map(|g| g.id.clone()).collect();
    let mut members = state.db.groups().member_subs(&ids).await?;
    let base = base(state);
    let resources = groups
        .iter()
        .map(|g| to_json(&base, g, &members.remove(&g.id).unwrap_or_default()))
        .collect();
    Ok((total, resources))
}

/// Creates a group from a SCIM Group, with its members.
pub async fn create(state: &Core, body: &Value, actor: &str) -> Result<Value, ScimError> {
    let map = object(body, GROUP_SCHEMA)?;
    let fields = Fields::read(map)?;
    check_members(state, &fields.members).await?;
    let group = access::create_group(
        state,
        NewGroup {
            name: fields.name,
            description: None,
            external_id: fields.external_id,
        },
        actor,
    )
    .await?;
    if !fields.members.is_empty() {
        access::change_members(state, &group.id, &fields.members, &[], actor).await?;
    }
    get_one(state, &group.id).await
}

/// Replaces the group `id` with a SCIM Group (PUT): name, external id and members as given.
pub async fn replace(
    state: &Core,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    actor: &str,
) -> Result<Value, ScimError> {
    let current = find(state, id).await?;
    check_version(&current, if_match)?;
    let map = object(body, GROUP_SCHEMA)?;
    store(state, current, Fields::read(map)?, None, actor).await
}

/// Applies a PatchOp to the group `id` (members added and removed; a new name).
pub async fn patch(
    state: &Core,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    actor: &str,
) -> Result<Value, ScimError> {
    let current = find(state, id).await?;
    check_version(&current, if_match)?;
    let members = members_of(state, &current.id).await?;
    let mut doc = Map::new();
    doc.insert("displayName".into(), json!(current.name));
    if let Some(x) = &current.external_id {
        doc.insert("externalId".into(), json!(x));
    }
    doc.insert(
        "members".into(),
        members.iter().map(|m| json!({ "value": m })).collect(),
    );
    patch::apply(&SHAPE, &mut doc, body)?;
    // The members' change is what this PATCH did to the members it read: two PATCHes at
    // once (each adding someone) both take effect, as each one's add and remove alone.
    store(state, current, Fields::read(&doc)?, Some(members), actor).await
}

/// Deletes the group `id`; its members lose it, and the roles it held, at once.
pub async fn delete(
    state: &Core,
    id: &str,
    if_match: Option<&str>,
    actor: &str,
) -> Result<(), ScimError> {
    let current = find(state, id).await?;
    check_version(&current, if_match)?;
    access::delete_group(state, &current.id, actor).await?;
    Ok(())
}

fn base(state: &Core) -> String {
    super::base(&state.config.issuer)
}

async fn find(state: &Core, id: &str) -> Result<Group, ScimError> {
    state
        .db
        .groups()
        .get(id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no Group has id {id:?}")))
}

async fn members_of(state: &Core, id: &str) -> Result<Vec<String>, ScimError> {
    Ok(state
        .db
        .groups()
        .member_subs(&[id.to_owned()])
        .await?
        .remove(id)
        .unwrap_or_default())
}

fn check_version(group: &Group, if_match: Option<&str>) -> Result<(), ScimError> {
    if super::matches(if_match, &super::version(group.updated_at)) {
        Ok(())
    } else {
        Err(ScimError::changed())
    }
}

/// Every member named must be a user here.
async fn check_members(state: &Core, members: &[String]) -> Result<(), ScimError> {
    for sub in members {
        if state.db.users().by_sub(sub).await?.is_none() {
            return Err(ScimError::bad(
                "invalidValue",
                format!("members: no User has id {sub:?}"),
            ));
        }
    }
    Ok(())
}

/// What a SCIM Group body says, checked.
struct Fields {
    name: String,
    external_id: Option<String>,
    members: Vec<String>,
}

impl Fields {
    fn read(map: &Map<String, Value>) -> Result<Self, ScimError> {
        let name = text(map, "displayName")?
            .ok_or_else(|| ScimError::bad("invalidValue", "displayName is required"))?;
        let external_id = text(map, "externalId")?;
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        match get(map, "members") {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item.get("value") {
                        Some(Value::String(sub)) => {
                            if seen.insert(sub.clone()) {
                                members.push(sub.clone());
                            }
                        }
                        _ => {
                            return Err(ScimError::bad(
                                "invalidValue",
                                "each of members needs a value: a User's id",
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(ScimError::bad("invalidValue", "members must be a list")),
        }
        Ok(Self {
            name,
            external_id,
            members,
        })
    }
}

/// Stores `fields` over `current`: the name and external id, then the members added and
/// removed (those removed lose the group at once) relative to `before`, the members the
/// change was made from (a PATCH), or to the members now (a PUT replaces them).
async fn store(
    state: &Core,
    current: Group,
    fields: Fields,
    before: Option<Vec<String>>,
    actor: &str,
) -> Result<Value, ScimError> {
    if fields.name != current.name || fields.external_id != current.external_id {
        access::update_group(
            state,
            &current.id,
            GroupChange {
                name: Some(fields.name),
                description: None,
                external_id: Some(fields.external_id),
            },
            actor,
        )
        .await?;
    }
    let before = match before {
        Some(members) => members,
        None => members_of(state, &current.id).await?,
    };
    let had: HashSet<&String> = before.iter().collect();
    let wanted: HashSet<&String> = fields.members.iter().collect();
    let add: Vec<String> = fields
        .members
        .iter()
        .filter(|m| !had.contains(m))
        .cloned()
        .collect();
    // Only newcomers are looked up: a large group's members were checked as they came.
    check_members(state, &add).await?;
    let remove: Vec<String> = before
        .iter()
        .filter(|m| !wanted.contains(m))
        .cloned()
        .collect();
    if !add.is_empty() || !remove.is_empty() {
        access::change_members(state, &current.id, &add, &remove, actor).await?;
    }
    get_one(state, &current.id).await
}
