//! The discovery documents (RFC 7643 §5–7, RFC 7644 §4): what this service provider does
//! (`ServiceProviderConfig`), its resource types, and the schemas of what it keeps. The
//! schemas declare only the attributes Lanyard keeps, with their real mutability, so a client
//! that builds its models from them (scim2-client does) sends nothing Lanyard would drop.

use serde_json::{Value, json};

use super::{GROUP_SCHEMA, MAX_RESULTS, USER_SCHEMA};

/// `GET /ServiceProviderConfig`.
pub fn service_provider_config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/lanyard/lanyard/blob/main/docs/authorization.md",
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": true},
        "sort": {"supported": false},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "An access token for the scope lanyard:scim from the client_credentials grant",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base}/ServiceProviderConfig"),
        },
    })
}

/// One resource type.
fn resource_type(base: &str, name: &str, endpoint: &str, schema: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": name,
        "name": name,
        "endpoint": endpoint,
        "schema": schema,
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{name}")},
    })
}

/// Every resource type.
pub fn resource_types(base: &str) -> Vec<Value> {
    vec![
        resource_type(base, "User", "/Users", USER_SCHEMA),
        resource_type(base, "Group", "/Groups", GROUP_SCHEMA),
    ]
}

/// An attribute's definition (RFC 7643 §7), with the defaults spelt out.
fn attribute(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": false,
        "caseExact": false,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    })
}

fn with(mut attribute: Value, changes: Value) -> Value {
    if let (Some(a), Value::Object(c)) = (attribute.as_object_mut(), changes) {
        a.extend(c);
    }
    attribute
}

/// Every schema.
pub fn schemas(base: &str) -> Vec<Value> {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A person who signs in with Lanyard",
        "attributes": [
            with(attribute("userName", "string", "What the person signs in with; unique regardless of letter case"),
                json!({"required": true, "uniqueness": "server"})),
            attribute("displayName", "string", "The name shown for the person"),
            with(attribute("emails", "complex", "The person's email address (Lanyard keeps one: the primary, or else the first)"),
                json!({"multiValued": true, "subAttributes": [
                    attribute("value", "string", "The address"),
                ]})),
            // Every person has a status, so it cannot be removed; a create without it is true.
            with(attribute("active", "boolean", "false: the person cannot sign in, and every token of theirs is revoked (true when a create leaves it out)"),
                json!({"required": true})),
            with(attribute("password", "string", "A new password (never returned); without one the person has none until they set it"),
                json!({"mutability": "writeOnly", "returned": "never", "caseExact": true})),
            with(attribute("groups", "complex", "The groups the person is in (change them through the Group)"),
                json!({"multiValued": true, "mutability": "readOnly", "subAttributes": [
                    with(attribute("value", "string", "The group's id"), json!({"mutability": "readOnly"})),
                    with(attribute("$ref", "reference", "The group's URI"),
                        json!({"mutability": "readOnly", "referenceTypes": ["Group"]})),
                    with(attribute("display", "string", "The group's name"), json!({"mutability": "readOnly"})),
                ]})),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}")},
    });
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A group of people (the groups claim carries its name)",
        "attributes": [
            with(attribute("displayName", "string", "The group's name; unique regardless of letter case"),
                json!({"required": true, "uniqueness": "server"})),
            with(attribute("members", "complex", "The people in the group"),
                json!({"multiValued": true, "subAttributes": [
                    with(attribute("value", "string", "The person's id"), json!({"mutability": "immutable"})),
                    with(attribute("$ref", "reference", "The person's URI"),
                        json!({"mutability": "immutable", "referenceTypes": ["User"]})),
                    with(attribute("type", "string", "Always User"),
                        json!({"mutability": "immutable", "canonicalValues": ["User"]})),
                ]})),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}")},
    });
    vec![user, group]
}

/// A list of all of `items` (the discovery endpoints page nothing).
pub fn all(items: Vec<Value>) -> Value {
    super::list_response(items.len() as u64, 1, items)
}

/// The one of `items` whose `id` is `id`.
pub fn one(items: Vec<Value>, id: &str) -> Option<Value> {
    items.into_iter().find(|i| i["id"] == id)
}
