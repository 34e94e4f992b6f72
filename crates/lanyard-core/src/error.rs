//! The one error of the services (`users`, `clients`, `sessions`, `keys`, `locks`,
//! `revoke`, `consents`): what the admin API, the command line and the account page answer
//! from.

use crate::db::DbError;
use crate::model::Invalid;
use crate::revocation::RevocationError;
use crate::tokens::KeyError;
use lanyard_store::StoreError;

/// Why a service refused or could not do what was asked (the admin API, the command line
/// and the account page answer from it).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input is not acceptable; the message says why and what to do.
    #[error("{0}")]
    Invalid(String),
    /// One field of the input is not acceptable.
    #[error("{field}: {message}")]
    Field {
        /// The field, as the caller named it (`email`, `redirect_uris[1]`).
        field: String,
        /// Why, and what to do.
        message: String,
    },
    /// Something with this name exists.
    #[error("{0}")]
    Conflict(String),
    /// No such user, client, token, ...
    #[error("{0}")]
    NotFound(String),
    /// The database (or hashing) failed.
    #[error("{0}")]
    Unavailable(String),
}

impl ServiceError {
    /// [`ServiceError::Field`] for `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<Invalid> for ServiceError {
    fn from(e: Invalid) -> Self {
        Self::field(e.field, e.message)
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(what) => Self::Conflict(format!("{what} already exists")),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<RevocationError> for ServiceError {
    fn from(e: RevocationError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<KeyError> for ServiceError {
    fn from(e: KeyError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// Reads JSON into `T`; a refusal names the field at fault (`email`, `redirect_uris[1]`, a
/// missing or unknown field by its name, `body` for the whole).
pub fn from_json<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, ServiceError> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(named)?;
    deserializer
        .end()
        .map_err(|e| ServiceError::Invalid(format!("the body is not valid: {e}")))?;
    Ok(value)
}

/// [`from_json`] for a JSON value already read.
pub fn from_json_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ServiceError> {
    serde_path_to_error::deserialize(value).map_err(named)
}

fn named<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ServiceError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let field = missing_or_unknown(&inner.to_string()).unwrap_or(path);
    ServiceError::Field {
        field: if field == "." {
            "body".to_owned()
        } else {
            field
        },
        message: format!("the body is not valid: {inner}"),
    }
}

/// serde reports a missing or unknown field at its parent's path; the field is in the
/// message.
fn missing_or_unknown(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    Some(rest.split('`').next()?.to_owned())
}

/// Applies a JSON merge patch (RFC 7396 §2) to `target`: each member of an object `patch`
/// replaces the target's (recursively for objects), `null` removes it; any other `patch`
/// replaces the target whole.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let serde_json::Value::Object(fields) = target {
        for (name, value) in members {
            if value.is_null() {
                fields.remove(name);
            } else {
                merge_patch(
                    fields
                        .entry(name.clone())
                        .or_insert(serde_json::Value::Null),
                    value,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396_appendix_a() {
        // The examples of RFC 7396 Appendix A: (original, patch, result).
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (mut original, patch, result) in cases {
            merge_patch(&mut original, &patch);
            assert_eq!(original, result, "patch {patch}");
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Body {
            name: String,
            #[serde(default)]
            list: Vec<u8>,
        }
        let field = |json: &str| match from_json::<Body>(json.as_bytes()) {
            Err(ServiceError::Field { field, .. }) => field,
            other => panic!("{json}: {other:?}"),
        };
        assert_eq!(field(r#"{"list":[]}"#), "name");
        assert_eq!(field(r#"{"name":"a","other":1}"#), "other");
        assert_eq!(field(r#"{"name":"a","list":[1,"x"]}"#), "list[1]");
        assert_eq!(field(r#""text""#), "body");
        assert!(matches!(
            from_json::<Body>(br#"{"name":"a"} trailing"#),
            Err(ServiceError::Invalid(_))
        ));
        let value = serde_json::json!({"name": 3});
        assert!(matches!(
            from_json_value::<Body>(value),
            Err(ServiceError::Field { field, .. }) if field == "name"
        ));
    }
}
