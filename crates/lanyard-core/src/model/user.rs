//! A person who can sign in, and what their fields may hold.

use std::fmt;

use lanyard_store::Timestamp;

use super::Invalid;

/// A person who can sign in.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable, opaque, never reused: the `sub` claim.
    pub sub: String,
    /// What the person types to sign in (unique, case-insensitively).
    pub username: String,
    /// Email address, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub display_name: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled user cannot sign in and their tokens are refused.
    pub disabled: bool,
    /// When the record was created.
    pub created_at: Timestamp,
    /// When the record last changed.
    pub updated_at: Timestamp,
    /// The id a provisioning system (SCIM's `externalId`) knows the person by.
    pub external_id: Option<String>,
    /// Whether `email` was shown to be the person's: a link sent to it was followed (or an
    /// operator said so). Any change of `email` makes it false again.
    pub email_verified: bool,
    /// An address the person asked to change to, kept apart until a link sent to it is
    /// followed (`email` stays what it was meanwhile).
    pub pending_email: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("sub", &self.sub)
            .field("username", &self.username)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl User {
    /// Sets the address; a different one (letter case aside) is not verified, and an address
    /// waiting to be verified is dropped.
    pub fn set_email(&mut self, email: Option<String>) {
        let same = match (&self.email, &email) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.email_verified = false;
            self.pending_email = None;
        }
        self.email = email;
    }

    /// The name to greet the person by: the display name, else the username.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        field,
        message: message.into(),
    }
}

/// Shortest password accepted (OWASP ASVS 5.0 6.2.1).
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted (ASVS asks for at least 64).
pub const MAX_PASSWORD: usize = 1024;

/// Characters no username or email may hold: whitespace and control characters (as
/// [`SPACE_OR_CONTROL`] says for the OpenAPI document).
fn space_or_control(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '\u{feff}'
}

/// [`space_or_control`] as a regular-expression character class, for the OpenAPI document.
pub const SPACE_OR_CONTROL: &str = r"\s\u0000-\u001f\u007f-\u009f\ufeff";
/// Longest username.
pub const MAX_USERNAME: usize = 64;
/// Longest email address (RFC 5321 §4.5.3.1.3's path limit).
pub const MAX_EMAIL: usize = 254;
/// Longest display name.
pub const MAX_DISPLAY_NAME: usize = 200;

/// A username: 1 to [`MAX_USERNAME`] characters, none of them a space or control character.
pub fn check_username(username: &str) -> Result<(), Invalid> {
    if username.is_empty()
        || username.chars().count() > MAX_USERNAME
        || username.chars().any(space_or_control)
    {
        return Err(invalid(
            "username",
            format!(
                "a username is 1 to {MAX_USERNAME} characters with no spaces or control characters"
            ),
        ));
    }
    Ok(())
}

/// A password: [`MIN_PASSWORD`] to [`MAX_PASSWORD`] characters, and not one of the most
/// common passwords (in any letter case). No composition rules (ASVS 6.2.5).
pub fn check_password(password: &str) -> Result<(), Invalid> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(invalid(
            "password",
            format!("a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    if is_common_password(password) {
        return Err(invalid("password",
            "this password is among the most common ones, which attackers try first; choose another (a few unrelated words make a strong one)".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `password` is on the list of common passwords (`assets/common-passwords.txt`:
/// the most used passwords of 8 characters or more, from breaches), in any letter case.
pub fn is_common_password(password: &str) -> bool {
    static COMMON: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
        std::sync::LazyLock::new(|| {
            include_str!("../../assets/common-passwords.txt")
                .lines()
                .filter(|l| !l.starts_with("# ") && !l.is_empty())
                .collect()
        });
    COMMON.contains(password.to_lowercase().as_str())
}

/// An email address, if given: an `@`, no spaces or control characters, at most
/// [`MAX_EMAIL`] characters.
pub fn check_email(email: Option<&str>) -> Result<(), Invalid> {
    if let Some(email) = email
        && (!email.contains('@')
            || email.chars().any(space_or_control)
            || email.chars().count() > MAX_EMAIL)
    {
        return Err(invalid(
            "email",
            format!("{email:?} is not an email address"),
        ));
    }
    Ok(())
}

/// A display name, if given: at most [`MAX_DISPLAY_NAME`] characters, no control characters.
pub fn check_display_name(name: Option<&str>) -> Result<(), Invalid> {
    if let Some(name) = name
        && (name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control))
    {
        return Err(invalid(
            "display_name",
            format!(
                "a display name is at most {MAX_DISPLAY_NAME} characters, with no control characters"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_refused_in_any_case_and_others_pass() {
        for common in ["password", "Password1", "QWERTY123", "iloveyou", "12345678"] {
            let refused = check_password(common);
            assert!(
                matches!(&refused, Err(Invalid { field, message })
                    if *field == "password" && message.contains("most common")),
                "{common}: {refused:?}"
            );
        }
        for fine in [
            "correct horse battery staple",
            "violet-anchor-tundra-7",
            "a long password",
        ] {
            assert!(check_password(fine).is_ok(), "{fine}");
        }
        // The list is the real one, not a stub: tens of thousands of entries, no short ones.
        let list = include_str!("../../assets/common-passwords.txt");
        let entries: Vec<&str> = list.lines().filter(|l| !l.starts_with("# ")).collect();
        assert!(entries.len() > 30_000, "{}", entries.len());
        assert!(entries.iter().all(|p| p.chars().count() >= MIN_PASSWORD));
    }
}
