//! Who may do what: groups of people and the roles applications define.
//!
//! A group is flat (no group inside a group) and a person may be in many. A role belongs to
//! one application (`billing:admin` of client `billing`) and is held by groups or by people
//! directly. Tokens carry them: `groups` (names, with the `groups` scope) and `roles` (the
//! names of the roles of the token's audience), as RFC 9068 §2.2.3.1 names them.

use lanyard_store::Timestamp;

use super::Invalid;

/// A group of people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Opaque, never reused: the admin API's and SCIM's id.
    pub id: String,
    /// Unique regardless of letter case; what the `groups` claim carries.
    pub name: String,
    /// What the group is for.
    pub description: Option<String>,
    /// The id a provisioning system (SCIM) knows the group by.
    pub external_id: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it or its members last changed.
    pub updated_at: Timestamp,
}

/// A role an application defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The application (client) it belongs to.
    pub client_id: String,
    /// Unique within the application; what the `roles` claim carries.
    pub name: String,
    /// What the role allows.
    pub description: Option<String>,
    /// When it was defined.
    pub created_at: Timestamp,
}

/// Who holds a role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    /// Every member of the group with this id.
    Group(String),
    /// The person with this `sub`.
    User(String),
}

impl Holder {
    /// `group` or `user`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Group(_) => "group",
            Self::User(_) => "user",
        }
    }

    /// The group's id or the person's `sub`.
    pub fn id(&self) -> &str {
        match self {
            Self::Group(id) | Self::User(id) => id,
        }
    }

    /// From the stored kind and id.
    pub fn from_parts(kind: &str, id: String) -> Option<Self> {
        match kind {
            "group" => Some(Self::Group(id)),
            "user" => Some(Self::User(id)),
            _ => None,
        }
    }
}

/// Longest group name.
pub const MAX_GROUP_NAME: usize = 100;
/// Longest role name.
pub const MAX_ROLE_NAME: usize = 100;
/// Longest description of a group or role.
pub const MAX_DESCRIPTION: usize = 500;

/// A group name: 1 to [`MAX_GROUP_NAME`] characters, no control characters, not starting or
/// ending with a space (SCIM's `displayName`s, such as "Finance Team", have spaces inside).
pub fn check_group_name(name: &str) -> Result<(), Invalid> {
    if name.trim() != name
        || name.is_empty()
        || name.chars().count() > MAX_GROUP_NAME
        || name.chars().any(|c| c.is_control() || c == '\u{feff}')
    {
        return Err(Invalid {
            field: "name",
            message: format!(
                "a group name is 1 to {MAX_GROUP_NAME} characters, with no control characters and no space at either end"
            ),
        });
    }
    Ok(())
}

/// A role name: 1 to [`MAX_ROLE_NAME`] printable ASCII characters without spaces (a role is
/// compared by apps as it is, so it has one spelling), such as `billing:admin`.
pub fn check_role_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty()
        || name.len() > MAX_ROLE_NAME
        || !name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(Invalid {
            field: "role",
            message: format!(
                "a role name is 1 to {MAX_ROLE_NAME} printable ASCII characters with no spaces, quotes or backslashes (for example billing:admin)"
            ),
        });
    }
    Ok(())
}

/// A description, if given: at most [`MAX_DESCRIPTION`] characters, no control characters
/// other than line breaks.
pub fn check_description(description: Option<&str>) -> Result<(), Invalid> {
    if let Some(d) = description
        && (d.chars().count() > MAX_DESCRIPTION
            || d.chars().any(|c| c.is_control() && c != '\n' && c != '\r'))
    {
        return Err(Invalid {
            field: "description",
            message: format!(
                "a description is at most {MAX_DESCRIPTION} characters, with no control characters"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["Finance", "Finance Team", "ops-on-call", "Équipe"] {
            assert!(check_group_name(good).is_ok(), "{good}");
        }
        for bad in ["", " Finance", "Finance ", "a\nb", &"x".repeat(101)] {
            assert_eq!(check_group_name(bad).unwrap_err().field, "name", "{bad:?}");
        }
        for good in ["billing:admin", "reader", "urn:example:role:x"] {
            assert!(check_role_name(good).is_ok(), "{good}");
        }
        for bad in ["", "billing admin", "caf\u{e9}", "a\"b", &"r".repeat(101)] {
            assert_eq!(check_role_name(bad).unwrap_err().field, "role", "{bad:?}");
        }
        assert!(check_description(Some("Line one\nline two")).is_ok());
        assert!(check_description(Some("bell\u{7}")).is_err());
        assert_eq!(
            Holder::from_parts("group", "g1".into()),
            Some(Holder::Group("g1".into()))
        );
        assert_eq!(Holder::from_parts("team", "g1".into()), None);
    }
}
