//! OAuth parameters from a query string or an `application/x-www-form-urlencoded` body.
//!
//! Stricter than a generic form parser, as RFC 6749 asks: a parameter sent twice is
//! remembered so the endpoint can refuse it (§3.1, §3.2), an empty value counts as absent
//! (§3.1), and bytes that are not UTF-8 are an error, never a replacement character.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use percent_encoding::percent_decode;

/// The most parameters one request may carry.
const MAX_PARAMS: usize = 100;

/// Why parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Not UTF-8 after percent-decoding.
    #[error("a parameter is not valid UTF-8")]
    NotUtf8,
    /// More than [`MAX_PARAMS`].
    #[error("too many parameters")]
    TooMany,
}

/// Parsed parameters.
#[derive(Debug, Clone, Default)]
pub struct Params {
    values: HashMap<String, String>,
    duplicated: BTreeSet<String>,
    /// Names sent without a value (treated as omitted, RFC 6749 §3.1).
    empty: BTreeSet<String>,
}

impl Params {
    /// Parses `a=1&b=2` (query string or form body).
    pub fn parse(raw: &[u8]) -> Result<Self, ParamsError> {
        let mut params = Params::default();
        let mut count = 0;
        for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(ParamsError::TooMany);
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.is_empty() {
                params.empty.insert(name);
                continue;
            }
            if params.values.contains_key(&name) {
                params.duplicated.insert(name);
                continue;
            }
            params.values.insert(name, value);
        }
        Ok(params)
    }

    /// Merges parameters from a second source (the query string of a POST); a name present in
    /// both counts as sent twice.
    pub fn merge(mut self, other: Params) -> Self {
        self.duplicated.extend(other.duplicated);
        self.empty.extend(other.empty);
        for (name, value) in other.values {
            match self.values.entry(name) {
                Entry::Occupied(e) => {
                    self.duplicated.insert(e.key().clone());
                }
                Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
        }
        self
    }

    /// The value of `name`, if sent once or more with a non-empty value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `name` was sent without a value (and so counts as omitted).
    pub fn is_empty_value(&self, name: &str) -> bool {
        self.empty.contains(name)
    }

    /// A parameter sent more than once (the first by name), for an error message.
    pub fn duplicated(&self) -> Option<&str> {
        self.duplicated.iter().next().map(String::as_str)
    }

    /// Whether `name` was sent more than once.
    pub fn is_duplicated(&self, name: &str) -> bool {
        self.duplicated.contains(name)
    }

    /// Every parameter, for re-sending an authorization request through the sign-in form.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Parameters given as name–value pairs (an empty value counts as omitted).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut params = Params::default();
        for (name, value) in pairs {
            if value.is_empty() {
                params.empty.insert(name);
            } else {
                params.values.insert(name, value);
            }
        }
        params
    }

    /// The parameters as a form body, names in order (`a=1&b=2`): what [`Params::parse`]
    /// reads back as the same parameters.
    pub fn encoded(&self) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        pairs.sort_unstable();
        pairs
            .into_iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, NON_ALPHANUMERIC),
                    utf8_percent_encode(v, NON_ALPHANUMERIC)
                )
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// These parameters without `names`, and with `name` set to `value`.
    #[must_use]
    pub fn edited(&self, without: &[&str], name: &str, value: &str) -> Self {
        let mut edited = self.clone();
        edited.values.retain(|k, _| !without.contains(&k.as_str()));
        edited.values.insert(name.to_owned(), value.to_owned());
        edited
    }
}

fn decode(raw: &[u8]) -> Result<String, ParamsError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ParamsError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_form() {
        let p =
            Params::parse(b"a=1&redirect_uri=https%3A%2F%2Fx%2Fcb&scope=openid+email&b=").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("redirect_uri"), Some("https://x/cb"));
        assert_eq!(p.get("scope"), Some("openid email"));
        assert_eq!(p.get("b"), None, "an empty value is absent");
        assert_eq!(p.duplicated(), None);
    }

    #[test]
    fn remembers_duplicates_and_refuses_bad_bytes() {
        let p =
            Params::parse(b"state=1&client_id=a&state=2&redirect_uri=x&redirect_uri=y").unwrap();
        assert_eq!(p.duplicated(), Some("redirect_uri"));
        assert!(p.is_duplicated("state") && p.is_duplicated("redirect_uri"));
        assert!(!p.is_duplicated("client_id"));
        assert_eq!(Params::parse(b"a=%ff").err(), Some(ParamsError::NotUtf8));
        let many: Vec<u8> = (0..101)
            .flat_map(|i| format!("p{i}=1&").into_bytes())
            .collect();
        assert_eq!(Params::parse(&many).err(), Some(ParamsError::TooMany));
        let merged = Params::parse(b"a=1")
            .unwrap()
            .merge(Params::parse(b"a=2").unwrap());
        assert_eq!(merged.duplicated(), Some("a"));
    }
}
