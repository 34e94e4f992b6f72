//! PATCH (RFC 7644 §3.5.2) on a resource's writable attributes as JSON: `add`, `remove` and
//! `replace`, with or without a `path`; paths `attr`, `attr.sub`, `attr[filter]` and
//! `attr[filter].sub`, with or without the schema URI. The result is then stored as a PUT
//! would store it, so PATCH and PUT keep the same rules.
//!
//! Attributes Lanyard does not keep are accepted and dropped (provisioning clients send many:
//! `name.givenName`, `title`, the enterprise extension). Names compare ignoring case.

use serde_json::{Map, Value};

use super::{PATCH_SCHEMA, ScimError};
use crate::scim_filter::{self, AttrPath, CompareOp, Filter};

/// What a resource keeps: its attributes' canonical names, and which hold lists.
pub(super) struct Shape {
    /// Every attribute kept, as spelt in responses.
    pub(super) attributes: &'static [&'static str],
    /// The multi-valued ones (`emails`, `members`): `add` appends to them.
    pub(super) lists: &'static [&'static str],
    /// Lists of which Lanyard keeps one untyped value (`emails`): a value filter on `type`
    /// matches it whatever the type named, and `add`/`replace` through a filter that matches
    /// nothing sets it (Entra ID updates `emails[type eq "work"].value`).
    pub(super) one_of: &'static [&'static str],
}

impl Shape {
    fn canonical(&self, name: &str) -> Option<&'static str> {
        self.attributes
            .iter()
            .copied()
            .find(|a| a.eq_ignore_ascii_case(name))
    }

    fn is_list(&self, name: &str) -> bool {
        self.lists.contains(&name)
    }
}

/// A parsed PATCH path.
struct Path {
    attr: String,
    filter: Option<Filter>,
    sub: Option<String>,
}

fn parse_path(raw: &str) -> Result<Path, ScimError> {
    let invalid = |why: &str| ScimError::bad("invalidPath", format!("path {raw:?}: {why}"));
    // A schema URI in front (`urn:...:User:userName`): the attribute is after its last ':'
    // that comes before any '['.
    let head_end = raw.find('[').unwrap_or(raw.len());
    let start = raw[..head_end].rfind(':').map_or(0, |i| i + 1);
    let rest = &raw[start..];
    if let Some(open) = rest.find('[') {
        let close = rest
            .rfind(']')
            .ok_or_else(|| invalid("a '[' without its ']'"))?;
        if close < open {
            return Err(invalid("a ']' before its '['"));
        }
        let filter = scim_filter::parse(&rest[open + 1..close])
            .map_err(|e| ScimError::bad("invalidPath", format!("path {raw:?}: {e}")))?;
        let after = &rest[close + 1..];
        let sub = match after.strip_prefix('.') {
            Some(s) if !s.is_empty() => Some(s.to_owned()),
            None if after.is_empty() => None,
            _ => return Err(invalid("only .subAttribute may follow ']'")),
        };
        return Ok(Path {
            attr: rest[..open].to_owned(),
            filter: Some(filter),
            sub,
        });
    }
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a.to_owned(), Some(s.to_owned())),
        None => (rest.to_owned(), None),
    };
    if attr.is_empty() {
        return Err(invalid("no attribute named"));
    }
    Ok(Path {
        attr,
        filter: None,
        sub,
    })
}

/// Applies the PatchOp `body` to `doc` (the resource's writable attributes).
pub(super) fn apply(
    shape: &Shape,
    doc: &mut Map<String, Value>,
    body: &Value,
) -> Result<(), ScimError> {
    let map = super::object(body, PATCH_SCHEMA)?;
    let ops = super::get(map, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::bad("invalidSyntax", "Operations must be a list"))?;
    for op in ops {
        let op = op
            .as_object()
            .ok_or_else(|| ScimError::bad("invalidSyntax", "each operation is an object"))?;
        let kind = super::get(op, "op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| ScimError::bad("invalidSyntax", "each operation needs op"))?;
        let path = match super::get(op, "path") {
            None => None,
            Some(Value::String(p)) => Some(parse_path(p)?),
            Some(_) => return Err(ScimError::bad("invalidPath", "path must be a string")),
        };
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match kind.as_str() {
            "add" | "replace" => set(shape, doc, path, value, kind == "add")?,
            "remove" => remove(shape, doc, path, &value)?,
            other => {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    format!("op {other:?} is not add, remove or replace"),
                ));
            }
        }
    }
    Ok(())
}

fn set(
    shape: &Shape,
    doc: &mut Map<String, Value>,
    path: Option<Path>,
    value: Value,
    add: bool,
) -> Result<(), ScimError> {
    let Some(path) = path else {
        // No path: the value is an object of attributes (RFC 7644 §3.5.2.1, §3.5.2.3).
        let Value::Object(attributes) = value else {
            return Err(ScimError::bad(
                "invalidValue",
                "without a path the value is an object of attributes",
            ));
        };
        for (name, v) in attributes {
            if name.eq_ignore_ascii_case("schemas") {
                continue;
            }
            // `{"urn:...:User:userName": ...}` or an extension object: by its last part.
            let name = name.rsplit(':').next().unwrap_or(&name).to_owned();
            let path = Path {
                attr: name,
                filter: None,
                sub: None,
            };
            set(shape, doc, Some(path), v, add)?;
        }
        return Ok(());
    };
    let Some(attr) = shape.canonical(&path.attr) else {
        return Ok(()); // Not kept.
    };
    match (path.filter, path.sub) {
        (None, None) => {
            if shape.is_list(attr) {
                let items = match value {
                    Value::Array(items) => items,
                    Value::Null => Vec::new(),
                    one => vec![one],
                };
                if add {
                    with_list(doc, attr, |list| {
                        for item in items {
                            if !list.iter().any(|v| same_value(v, &item)) {
                                list.push(item);
                            }
                        }
                    });
                } else {
                    doc.insert(attr.to_owned(), Value::Array(items));
                }
            } else {
                doc.insert(attr.to_owned(), value);
            }
        }
        (None, Some(sub)) => {
            // `emails.value`: the sub-attribute of every value (one made if there is none).
            if shape.is_list(attr) {
                with_list(doc, attr, |list| {
                    if list.is_empty() {
                        list.push(Value::Object(Map::new()));
                    }
                    for item in list.iter_mut() {
                        if let Value::Object(m) = item {
                            m.insert(sub.clone(), value.clone());
                        }
                    }
                });
            }
        }
        (Some(filter), sub) => {
            if !shape.is_list(attr) {
                return Err(ScimError::bad(
                    "invalidPath",
                    format!("{attr} is not multi-valued: it takes no [filter]"),
                ));
            }
            let untyped = shape.one_of.contains(&attr);
            let hit = with_list(doc, attr, |list| {
                let mut hit = false;
                for item in list.iter_mut() {
                    if !matches_value(&filter, item, untyped) {
                        continue;
                    }
                    hit = true;
                    match (&sub, item) {
                        (Some(sub), Value::Object(m)) => {
                            m.insert(sub.clone(), value.clone());
                        }
                        (None, item) => match (&value, item) {
                            (Value::Object(new), Value::Object(old)) => {
                                old.extend(new.clone());
                            }
                            (new, old) => *old = new.clone(),
                        },
                        _ => {}
                    }
                }
                hit
            });
            if !hit && shape.one_of.contains(&attr) {
                // The one value Lanyard keeps, named through the filter: set it, first.
                let item = match (sub, value) {
                    (Some(sub), v) => Value::Object(Map::from_iter([(sub, v)])),
                    (None, v) => v,
                };
                with_list(doc, attr, |list| list.insert(0, item));
                return Ok(());
            }
            if !hit {
                return Err(ScimError::bad(
                    "noTarget",
                    format!("no value of {attr} matches the path's filter"),
                ));
            }
        }
    }
    Ok(())
}

fn remove(
    shape: &Shape,
    doc: &mut Map<String, Value>,
    path: Option<Path>,
    value: &Value,
) -> Result<(), ScimError> {
    let Some(path) = path else {
        return Err(ScimError::bad("noTarget", "remove needs a path"));
    };
    let Some(attr) = shape.canonical(&path.attr) else {
        return Ok(());
    };
    match (path.filter, path.sub) {
        (None, None) => {
            // `{"op": "remove", "path": "members", "value": [{"value": "id"}]}` removes those
            // (as Entra ID sends it; a bare id too); an empty list removes nothing; only no
            // value at all removes the whole attribute.
            if shape.is_list(attr) && !value.is_null() {
                let named: Vec<Value> = match value {
                    Value::Array(items) => items.clone(),
                    Value::String(id) => vec![serde_json::json!({ "value": id })],
                    Value::Object(_) => vec![value.clone()],
                    _ => {
                        return Err(ScimError::bad(
                            "invalidValue",
                            format!(
                                "remove from {attr} takes a list of values, such as [{{\"value\": \"...\"}}]"
                            ),
                        ));
                    }
                };
                with_list(doc, attr, |list| {
                    list.retain(|v| !named.iter().any(|n| same_value(v, n)));
                });
            } else {
                doc.remove(attr);
            }
        }
        (None, Some(sub)) => {
            if shape.is_list(attr) {
                with_list(doc, attr, |list| {
                    for item in list.iter_mut() {
                        if let Value::Object(m) = item {
                            m.remove(&sub);
                        }
                    }
                });
            } else {
                doc.remove(attr);
            }
        }
        (Some(filter), sub) => {
            if !shape.is_list(attr) {
                return Err(ScimError::bad(
                    "invalidPath",
                    format!("{attr} is not multi-valued: it takes no [filter]"),
                ));
            }
            with_list(doc, attr, |list| match sub {
                None => list.retain(|v| !matches(&filter, v)),
                Some(sub) => {
                    for item in list.iter_mut() {
                        if matches(&filter, item)
                            && let Value::Object(m) = item
                        {
                            m.remove(&sub);
                        }
                    }
                }
            });
        }
    }
    Ok(())
}

/// Runs `f` on the list `attr` of `doc` (made empty if missing or not a list).
fn with_list<R>(
    doc: &mut Map<String, Value>,
    attr: &str,
    f: impl FnOnce(&mut Vec<Value>) -> R,
) -> R {
    let mut items = match doc.remove(attr) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let result = f(&mut items);
    doc.insert(attr.to_owned(), Value::Array(items));
    result
}

/// Two values of a multi-valued attribute are the same when their `value`s are.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// [`matches`]; for a list of one untyped value, a `type` Lanyard does not keep matches.
fn matches_value(filter: &Filter, item: &Value, untyped: bool) -> bool {
    if !untyped {
        return matches(filter, item);
    }
    match filter {
        Filter::And(a, b) => matches_value(a, item, true) && matches_value(b, item, true),
        Filter::Or(a, b) => matches_value(a, item, true) || matches_value(b, item, true),
        Filter::Compare { path, .. } | Filter::Present(path)
            if path.attr.eq_ignore_ascii_case("type") && field(item, path).is_none() =>
        {
            true
        }
        other => matches(other, item),
    }
}

/// Whether one value of a multi-valued attribute matches a value-path filter.
fn matches(filter: &Filter, item: &Value) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, item) && matches(b, item),
        Filter::Or(a, b) => matches(a, item) || matches(b, item),
        Filter::Not(f) => !matches(f, item),
        Filter::ValuePath { .. } => false,
        Filter::Present(path) => field(item, path).is_some_and(|v| !v.is_null()),
        Filter::Compare { path, op, value } => {
            let Some(have) = field(item, path) else {
                return *op == CompareOp::Ne;
            };
            compare(have, *op, value)
        }
    }
}

fn field<'a>(item: &'a Value, path: &AttrPath) -> Option<&'a Value> {
    let map = item.as_object()?;
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&path.attr))
        .map(|(_, v)| v)
}

fn compare(have: &Value, op: CompareOp, want: &scim_filter::Value) -> bool {
    use scim_filter::Value as F;
    match (have, want) {
        (Value::String(h), F::Str(w)) => {
            let (h, w) = (h.to_lowercase(), w.to_lowercase());
            match op {
                CompareOp::Eq => h == w,
                CompareOp::Ne => h != w,
                CompareOp::Co => h.contains(&w),
                CompareOp::Sw => h.starts_with(&w),
                CompareOp::Ew => h.ends_with(&w),
                CompareOp::Gt => h > w,
                CompareOp::Ge => h >= w,
                CompareOp::Lt => h < w,
                CompareOp::Le => h <= w,
            }
        }
        (Value::Bool(h), F::Bool(w)) => match op {
            CompareOp::Eq => h == w,
            CompareOp::Ne => h != w,
            _ => false,
        },
        (Value::Null, F::Null) => op == CompareOp::Eq,
        _ => op == CompareOp::Ne,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GROUP: Shape = Shape {
        attributes: &["displayName", "externalId", "members"],
        lists: &["members"],
        one_of: &[],
    };

    const USER: Shape = Shape {
        attributes: &["userName", "emails"],
        lists: &["emails"],
        one_of: &["emails"],
    };

    #[test]
    fn entra_ids_email_paths_set_the_one_address_and_empty_removals_remove_nothing() {
        let mut doc = json!({"userName": "a", "emails": [{"value": "old@x"}]})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let ops = |o: Value| json!({"schemas": [PATCH_SCHEMA], "Operations": o});
        apply(
            &USER,
            &mut doc,
            &ops(json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@x"}])),
        )
        .unwrap();
        assert_eq!(doc["emails"], json!([{"value": "new@x"}]));
        let mut none = json!({"userName": "a"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        apply(
            &USER,
            &mut none,
            &ops(json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "first@x"}])),
        )
        .unwrap();
        assert_eq!(none["emails"][0]["value"], "first@x");
        // An empty list removes nothing; a bare id removes that member only.
        let group = json!({"displayName": "G", "members": [{"value": "a"}, {"value": "b"}]});
        let kept = patched(
            group.clone(),
            json!([{"op": "remove", "path": "members", "value": []}]),
        )
        .unwrap();
        assert_eq!(kept["members"], group["members"]);
        let one = patched(
            group.clone(),
            json!([{"op": "remove", "path": "members", "value": "a"}]),
        )
        .unwrap();
        assert_eq!(one["members"], json!([{"value": "b"}]));
        let e = patched(
            group,
            json!([{"op": "remove", "path": "members", "value": 7}]),
        )
        .unwrap_err();
        assert_eq!(e.scim_type, Some("invalidValue"));
    }

    fn patched(doc: Value, ops: Value) -> Result<Value, ScimError> {
        let mut doc = doc.as_object().cloned().unwrap_or_default();
        apply(
            &GROUP,
            &mut doc,
            &json!({"schemas": [PATCH_SCHEMA], "Operations": ops}),
        )?;
        Ok(Value::Object(doc))
    }

    #[test]
    fn members_are_added_removed_and_replaced_as_clients_send_them() {
        let doc = json!({"displayName": "Finance", "members": [{"value": "a"}]});
        let added = patched(
            doc.clone(),
            json!([{"op": "Add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]}]),
        )
        .unwrap();
        assert_eq!(added["members"], json!([{"value": "a"}, {"value": "b"}]));
        let removed = patched(
            added.clone(),
            json!([{"op": "remove", "path": "members[value eq \"a\"]"}]),
        )
        .unwrap();
        assert_eq!(removed["members"], json!([{"value": "b"}]));
        // Entra ID's way: remove with the values in `value`.
        let removed = patched(
            added,
            json!([{"op": "Remove", "path": "members", "value": [{"value": "b"}]}]),
        )
        .unwrap();
        assert_eq!(removed["members"], json!([{"value": "a"}]));
        let replaced = patched(
            doc.clone(),
            json!([{"op": "replace", "value": {"displayName": "Finance EU", "externalId": "x",
                "urn:ietf:params:scim:schemas:core:2.0:Group:members": [{"value": "c"}]}}]),
        )
        .unwrap();
        assert_eq!(
            replaced,
            json!({"displayName": "Finance EU", "externalId": "x", "members": [{"value": "c"}]})
        );
        let renamed = patched(
            doc.clone(),
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:DISPLAYNAME", "value": "Ops"},
                   {"op": "add", "path": "title", "value": "kept nowhere"}]),
        )
        .unwrap();
        assert_eq!(renamed["displayName"], "Ops");
        assert!(renamed.get("title").is_none());
        for (ops, scim_type) in [
            (json!([{"op": "remove"}]), "noTarget"),
            (
                json!([{"op": "replace", "path": "members[value eq \"zz\"]", "value": {"value": "y"}}]),
                "noTarget",
            ),
            (json!([{"op": "copy", "path": "members"}]), "invalidSyntax"),
            (
                json!([{"op": "add", "path": "members[value eq ", "value": 1}]),
                "invalidPath",
            ),
            (
                json!([{"op": "add", "path": "displayName[value eq \"x\"]", "value": 1}]),
                "invalidPath",
            ),
            (json!({"op": "add"}), "invalidSyntax"),
        ] {
            let e = patched(doc.clone(), ops.clone()).unwrap_err();
            assert_eq!(e.scim_type, Some(scim_type), "{ops}: {e:?}");
            assert_eq!(e.status, 400);
        }
    }
}
