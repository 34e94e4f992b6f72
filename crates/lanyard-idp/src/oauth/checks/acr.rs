//! The strength an app asks for: `acr_values` (OIDC Core §3.1.2.1) and the `acr` member of
//! the `claims` request (§5.5.1.1). Either names one or more of Lanyard's `acr` values; any
//! one of them satisfies the app, so the requirement is the weakest one named. Values
//! Lanyard does not know are passed over (a request naming only those asks for nothing).
//! Other members of `claims` are accepted and not acted on (§5.5: the server may ignore
//! them).

use lanyard_core::model::Acr;
use serde_json::Value;

/// The strength `acr_values` and `claims` ask for together (the stronger of the two), if
/// any. `Err`: `claims` is not a JSON object (`invalid_request`).
pub fn requested(
    acr_values: Option<&str>,
    claims: Option<&str>,
) -> Result<Option<Acr>, &'static str> {
    let from_values = weakest(acr_values.unwrap_or("").split(' '));
    let from_claims = match claims {
        None => None,
        Some(raw) => {
            let parsed: Value =
                serde_json::from_str(raw).map_err(|_| "claims must be a JSON object")?;
            let Value::Object(members) = parsed else {
                return Err("claims must be a JSON object");
            };
            ["id_token", "userinfo"]
                .iter()
                .filter_map(|target| members.get(*target)?.get("acr"))
                .filter_map(from_claim)
                .max()
        }
    };
    Ok(from_values.max(from_claims))
}

/// What one `"acr": {...}` asks for: `value`, or the weakest of `values`.
fn from_claim(request: &Value) -> Option<Acr> {
    if let Some(value) = request.get("value").and_then(Value::as_str) {
        return Acr::parse(value);
    }
    let values = request.get("values")?.as_array()?;
    weakest(values.iter().filter_map(Value::as_str))
}

fn weakest<'a>(values: impl Iterator<Item = &'a str>) -> Option<Acr> {
    values.filter_map(Acr::parse).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MFA: &str = "urn:lanyard:acr:mfa";

    #[test]
    fn the_weakest_value_named_is_the_requirement() {
        assert_eq!(requested(Some(MFA), None), Ok(Some(Acr::Mfa)));
        assert_eq!(
            requested(Some("urn:lanyard:acr:phr urn:lanyard:acr:mfa"), None),
            Ok(Some(Acr::Mfa))
        );
        assert_eq!(requested(Some("gold silver"), None), Ok(None));
        assert_eq!(requested(None, None), Ok(None));
    }

    #[test]
    fn the_claims_request_asks_too() {
        let c = r#"{"id_token":{"acr":{"essential":true,"values":["urn:lanyard:acr:phr"]}}}"#;
        assert_eq!(requested(None, Some(c)), Ok(Some(Acr::Phr)));
        let c = r#"{"userinfo":{"acr":{"value":"urn:lanyard:acr:mfa"}},"id_token":{"name":null}}"#;
        assert_eq!(
            requested(Some("urn:lanyard:acr:pwd"), Some(c)),
            Ok(Some(Acr::Mfa))
        );
        assert!(requested(None, Some("[1]")).is_err());
        assert!(requested(None, Some("{")).is_err());
    }
}
