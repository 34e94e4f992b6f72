//! Scopes (RFC 6749 §3.3): space-delimited, order does not matter, each one allowed for the
//! client.

use lanyard_core::model::Client;

/// A parsed scope: distinct values, in the order first given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Parses `scope`; `None` if a value is not a scope token.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut values: Vec<String> = Vec::new();
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                return None;
            }
            if !values.iter().any(|v| v == value) {
                values.push(value.to_owned());
            }
        }
        Some(Self(values))
    }

    /// Whether `value` is in the scope.
    pub fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|v| v == value)
    }

    /// The values.
    pub fn values(&self) -> &[String] {
        &self.0
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first value the client may not ask for, if any.
    pub fn first_not_allowed<'a>(&'a self, client: &Client) -> Option<&'a str> {
        self.0
            .iter()
            .find(|v| !client.allows_scope(v))
            .map(String::as_str)
    }

    /// Whether every value is also in `granted` (a refresh may narrow, never widen: §6).
    pub fn is_subset_of(&self, granted: &Scope) -> bool {
        self.0.iter().all(|v| granted.contains(v))
    }

    /// Space-delimited, for tokens and responses.
    pub fn to_wire(&self) -> String {
        self.0.join(" ")
    }
}

impl From<Vec<String>> for Scope {
    fn from(values: Vec<String>) -> Self {
        Self(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_any_order_and_refuses_bad_tokens() {
        let s = Scope::parse("email  openid email profile").unwrap();
        assert_eq!(s.values(), ["email", "openid", "profile"]);
        assert!(s.contains("openid"));
        assert!(Scope::parse("openid \"x\"").is_none());
        assert!(Scope::parse("openid caf\u{e9}").is_none());
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn narrowing_only() {
        let granted = Scope::parse("openid profile offline_access").unwrap();
        assert!(Scope::parse("openid").unwrap().is_subset_of(&granted));
        assert!(!Scope::parse("openid email").unwrap().is_subset_of(&granted));
    }
}
