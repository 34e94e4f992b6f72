//! Second factors and how strong a sign-in was.
//!
//! A person may hold one-time-code generators (TOTP, RFC 6238) and passkeys, and ten
//! recovery codes. What a sign-in used is its `amr` (RFC 8176 values); its strength, the
//! `acr` that apps ask for, follows from the `amr` alone ([`Acr::of`]), so no two places
//! can disagree about it.

use lanyard_store::Timestamp;

use super::Invalid;

/// What kind of factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    /// An authenticator app's one-time codes (TOTP: SHA-1, 6 digits, 30 s).
    Totp,
    /// A passkey (WebAuthn).
    Passkey,
}

impl FactorKind {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(Self::Totp),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }
}

/// One of a person's factors, as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    /// Its id.
    pub id: String,
    /// What kind.
    pub kind: FactorKind,
    /// What the person called it.
    pub name: String,
    /// When it was added (ms since the epoch).
    pub created_at: Timestamp,
    /// When it was last used to sign in (ms since the epoch).
    pub last_used_at: Option<Timestamp>,
}

/// How many recovery codes a person is given at once.
pub const RECOVERY_CODES: usize = 10;

/// The longest name a factor may have.
pub const MAX_FACTOR_NAME: usize = 64;

/// A factor's name as a person gave it, trimmed: at most [`MAX_FACTOR_NAME`] characters, no
/// control characters; `default` when they gave none.
pub fn factor_name(name: &str, default: &str) -> Result<String, Invalid> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(default.to_owned());
    }
    if name.chars().count() > MAX_FACTOR_NAME || name.chars().any(char::is_control) {
        return Err(Invalid {
            field: "name",
            message: format!(
                "a name is at most {MAX_FACTOR_NAME} characters, without control characters"
            ),
        });
    }
    Ok(name.to_owned())
}

/// The strength of a sign-in, as apps ask for it (`acr_values`) and tokens say it (`acr`).
/// Ordered: a stronger one meets every weaker requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Acr {
    /// A password only.
    Pwd,
    /// Two factors: a password and a one-time code, a recovery code or a passkey.
    Mfa,
    /// Phishing-resistant: a passkey with user verification (itself two factors).
    Phr,
}

impl Acr {
    /// Every value, weakest first (discovery's `acr_values_supported`).
    pub const ALL: [Self; 3] = [Self::Pwd, Self::Mfa, Self::Phr];

    /// The `acr` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "urn:lanyard:acr:pwd",
            Self::Mfa => "urn:lanyard:acr:mfa",
            Self::Phr => "urn:lanyard:acr:phr",
        }
    }

    /// From an `acr` value; `None` for one Lanyard does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// The strength of a sign-in that used `amr`: a passkey with user verification
    /// (`hwk` or `swk`, with `user`) is phishing-resistant; `mfa` is two factors; anything
    /// else is a password.
    pub fn of(amr: &[String]) -> Self {
        let has = |v: &str| amr.iter().any(|a| a == v);
        if (has("hwk") || has("swk")) && has("user") {
            Self::Phr
        } else if has("mfa") {
            Self::Mfa
        } else {
            Self::Pwd
        }
    }
}

/// The `amr` of a sign-in with a password and then `second` (`otp` for a one-time or
/// recovery code): RFC 8176's values, with `mfa` for the two together.
pub fn amr_with(first: &[String], second: &[&str]) -> Vec<String> {
    let mut amr: Vec<String> = first.iter().filter(|a| *a != "mfa").cloned().collect();
    for s in second.iter().filter(|s| **s != "mfa") {
        if !amr.iter().any(|a| a == s) {
            amr.push((*s).to_owned());
        }
    }
    let factors = amr
        .iter()
        .filter(|a| matches!(a.as_str(), "pwd" | "otp" | "hwk" | "swk"))
        .count();
    if factors >= 2
        || ((amr.iter().any(|a| a == "hwk" || a == "swk")) && amr.iter().any(|a| a == "user"))
    {
        amr.push("mfa".to_owned());
    }
    amr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn strength_follows_from_what_was_used() {
        assert_eq!(Acr::of(&v(&["pwd"])), Acr::Pwd);
        assert_eq!(Acr::of(&v(&["pwd", "otp", "mfa"])), Acr::Mfa);
        assert_eq!(Acr::of(&v(&["hwk", "user", "mfa"])), Acr::Phr);
        assert_eq!(
            Acr::of(&v(&["swk", "mfa"])),
            Acr::Mfa,
            "no user verification"
        );
        assert_eq!(Acr::of(&[]), Acr::Pwd);
        assert!(Acr::Phr > Acr::Mfa && Acr::Mfa > Acr::Pwd);
        for a in Acr::ALL {
            assert_eq!(Acr::parse(a.as_str()), Some(a));
        }
        assert_eq!(Acr::parse("urn:lanyard:acr:gold"), None);
    }

    #[test]
    fn a_name_is_trimmed_bounded_and_defaulted() {
        assert_eq!(factor_name("  Phone ", "x").unwrap(), "Phone");
        assert_eq!(factor_name(" ", "Passkey").unwrap(), "Passkey");
        assert_eq!(factor_name(&"a".repeat(65), "x").unwrap_err().field, "name");
        assert!(factor_name("a\nb", "x").is_err());
    }

    #[test]
    fn a_second_factor_adds_mfa_once() {
        assert_eq!(amr_with(&v(&["pwd"]), &["otp"]), v(&["pwd", "otp", "mfa"]));
        assert_eq!(
            amr_with(&v(&["pwd", "otp", "mfa"]), &["otp"]),
            v(&["pwd", "otp", "mfa"])
        );
        assert_eq!(amr_with(&[], &["hwk", "user"]), v(&["hwk", "user", "mfa"]));
        assert_eq!(amr_with(&[], &["otp"]), v(&["otp"]));
        assert_eq!(
            amr_with(&v(&["pwd"]), &["swk", "user", "mfa"]),
            v(&["pwd", "swk", "user", "mfa"]),
            "mfa once"
        );
    }
}
