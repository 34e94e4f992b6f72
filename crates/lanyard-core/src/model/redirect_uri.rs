//! Redirect URIs: what may be registered, and the exact match a request must pass.
//!
//! Matching is simple string comparison (RFC 3986 §6.2.1; RFC 9700 §2.1 and §4.1.3; OIDC Core
//! §3.1.2.1). The only allowance is RFC 8252 §7.3: for an `http` loopback IP literal, any port
//! matches, since native apps bind an ephemeral one.

use serde::{Deserialize, Serialize};
use url::{Host, Url};

/// A redirect URI that matched one registered for the client: where the authorization
/// request is answered, what its code remembers, and what the token request must send
/// again, identically (RFC 6749 §4.1.3). Made only by [`RedirectUri::matching`] (and read
/// back from a code this server stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// `requested`, if it matches one of `registered` (see the module docs).
    pub fn matching(registered: &[String], requested: &str) -> Option<Self> {
        matches(registered, requested).then(|| Self(requested.to_owned()))
    }

    /// The URI.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `presented` (the token request's `redirect_uri`) is this URI, character for
    /// character.
    pub fn is(&self, presented: Option<&str>) -> bool {
        presented == Some(self.0.as_str())
    }
}

/// Checks a URI before it is registered.
pub fn validate_registration(uri: &str) -> Result<(), &'static str> {
    let url = Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err("a redirect URI must not contain a fragment (RFC 6749 §3.1.2)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not contain user information");
    }
    // Compared lower-case: `JavaScript:` is as dangerous as `javascript:`.
    match url.scheme().to_ascii_lowercase().as_str() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err("plain http is allowed only for loopback addresses (RFC 9700 §2.6)"),
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => {
            Err("this scheme can run code or read files; it is never a redirect URI")
        }
        // Private-use schemes of native apps are reverse domain names (RFC 8252 §7.1).
        scheme if scheme.contains('.') => Ok(()),
        _ => Err("use https, http on a loopback address, or a reverse-domain private-use scheme"),
    }
}

/// Whether `requested` matches one of `registered` (see the module docs).
pub fn matches(registered: &[String], requested: &str) -> bool {
    registered
        .iter()
        .any(|r| r == requested || loopback_port_may_vary(r, requested))
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// RFC 8252 §7.3: `http://127.0.0.1:{any}/path` matches a registered
/// `http://127.0.0.1/path` (or one with another port). Only IP literals, only `http`, and only
/// a requested URI already in its normal form (no backslash, no user information, no percent-encoding
/// the parser would change): then every part but the port must be equal.
fn loopback_port_may_vary(registered: &str, requested: &str) -> bool {
    let (Ok(r), Ok(q)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback_ip = |u: &Url| match u.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    // What was sent, port aside, must be exactly what the parser understood: otherwise the
    // browser would go somewhere else than the string that was compared.
    let normal = |u: &Url, raw: &str| {
        let mut portless = u.clone();
        portless.set_port(None).is_ok() && strip_port(raw).as_deref() == Some(portless.as_str())
    };
    r.scheme() == "http"
        && q.scheme() == "http"
        && loopback_ip(&r)
        && normal(&q, requested)
        && q.username().is_empty()
        && q.password().is_none()
        && q.fragment().is_none()
        && r.host() == q.host()
        && r.path() == q.path()
        && r.query() == q.query()
}

/// `http://host:port/rest` → `http://host/rest`.
fn strip_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let host = match authority.rfind(':') {
        // An IPv6 literal's own colons sit inside the brackets.
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    };
    Some(format!("http://{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_refuses_dangerous_and_sloppy_uris() {
        for ok in [
            "https://wiki.example.com/callback",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(validate_registration(ok), Ok(()), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "http://wiki.example.com/cb",
            "https://wiki.example.com/cb#frag",
            "https://user:pw@wiki.example.com/cb",
            "/relative",
            "custom:/cb",
        ] {
            assert!(validate_registration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_is_exact() {
        let registered = vec!["https://wiki.example.com/callback".to_owned()];
        assert!(matches(&registered, "https://wiki.example.com/callback"));
        // SECURITY.md 2.1: case, query, path, fragment, trailing slash, traversal, userinfo,
        // look-alike hosts.
        for attack in [
            "https://wiki.example.com/CALLBACK",
            "https://WIKI.example.com/callback",
            "https://wiki.example.com/callback?x=1",
            "https://wiki.example.com/callback/extra",
            "https://wiki.example.com/callback#x",
            "https://wiki.example.com/callback/",
            "https://wiki.example.com/callback/..;/",
            "https://wiki.example.com@evil.example/callback",
            "https://wiki.example.com.evil.example/callback",
            "https://wiki.example.com:443/callback",
            "https://wiki.example.com/%63allback",
            "",
        ] {
            assert!(!matches(&registered, attack), "{attack}");
        }
    }

    #[test]
    fn loopback_ports_may_vary_and_nothing_else() {
        let registered = vec![
            "http://127.0.0.1/cb".to_owned(),
            "http://[::1]:1234/cb".to_owned(),
            "http://localhost:3000/cb".to_owned(),
        ];
        assert!(matches(&registered, "http://127.0.0.1:51234/cb"));
        assert!(matches(&registered, "http://127.0.0.1/cb"));
        assert!(matches(&registered, "http://[::1]:80/cb"));
        assert!(matches(&registered, "http://localhost:3000/cb"));
        for attack in [
            "http://127.0.0.1:51234/cb?x=1",
            "http://127.0.0.1:51234/CB",
            "http://127.0.0.2:51234/cb",
            "http://localhost:3001/cb",
            "http://localhost.evil:3000/cb",
            "https://127.0.0.1:51234/cb",
            "http://127.0.0.1:51234@evil/cb",
            "http://127.0.0.1:5\\x/cb",
            "http://127.0.0.1:5\\/cb",
            "http://u@127.0.0.1:5/cb",
            "http://127.0.0.1:5/%63b",
            "http://127.0.0.1:5/cb#f",
        ] {
            assert!(!matches(&registered, attack), "{attack}");
        }
    }
}
