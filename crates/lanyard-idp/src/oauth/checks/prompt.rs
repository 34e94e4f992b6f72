//! The `prompt` parameter (OIDC Core §3.1.2.1).

/// What the client asked the server to show (or not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: show nothing; fail with `login_required` if the user must sign in.
    pub none: bool,
    /// `login`: make the user sign in again even with a live session.
    pub login: bool,
    /// `consent`: ask for consent again.
    pub consent: bool,
    /// `select_account`: let the user pick an account.
    pub select_account: bool,
}

impl Prompt {
    /// Parses `prompt`. `none` with any other value is an error (OIDC Core §3.1.2.1).
    pub fn parse(raw: Option<&str>) -> Result<Self, &'static str> {
        let mut p = Prompt::default();
        for value in raw.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                _ => return Err("prompt has an unknown value"),
            }
        }
        if p.none && (p.login || p.consent || p.select_account) {
            return Err("prompt=none cannot be combined with other values");
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_stands_alone() {
        assert!(Prompt::parse(Some("none")).unwrap().none);
        assert!(Prompt::parse(Some("login consent")).unwrap().login);
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("maybe")).is_err());
        assert_eq!(Prompt::parse(None).unwrap(), Prompt::default());
    }
}
