//! The guard's settings. Defaults are the safe ones; `docs/configuration.md` lists them.

use std::time::Duration;

/// How an API checks access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardConfig {
    /// The issuer, exactly as in its tokens (`iss`) and discovery document.
    pub issuer: String,
    /// This API's audience: tokens must name it in `aud` (RFC 9068 §4).
    pub audience: String,
    /// The `realm` in `WWW-Authenticate` challenges.
    pub realm: String,
    /// Clock leeway for `exp`, `nbf` and `iat`. Default 60 s; at most 5 minutes; and never
    /// more than the issuer keeps revocation entries past expiry (its snapshot's
    /// `leeway_secs`), to which the guard caps it.
    pub leeway: Duration,
    /// Accept `?access_token=` (RFC 6750 §2.3, which says SHOULD NOT). Default off.
    pub allow_query_token: bool,
    /// An unknown `kid` refetches the JWKS at most once per this interval, so a flood of
    /// made-up key ids cannot flood the issuer. Default 30 s.
    pub jwks_cooldown: Duration,
    /// The JWKS is refetched this often anyway, to learn keys announced for rotation.
    /// Default 5 minutes.
    pub jwks_max_age: Duration,
    /// When the revocation mirror has heard nothing from its source for longer than this,
    /// the guard answers 503 (or, with `fail_open`, stops checking revocations). Default 10 s.
    pub staleness_bound: Duration,
    /// Prefer availability: with a stale mirror, accept tokens unchecked for revocation
    /// instead of answering 503. Default off (fail closed).
    pub fail_open: bool,
    /// The longest access-token lifetime the issuer gives (its `max_access_token_lifetime`);
    /// a token living longer is refused, since the revocation lists could not cover it.
    /// Default 1 hour.
    pub max_token_lifetime: Duration,
    /// This API's origin as its clients address it (`https://api.example.com`): what a
    /// DPoP proof's `htu` must name (RFC 9449 §4.3), with the request's path. Unset, the
    /// request's `Host` header is taken, with `http` or `https`: set it for an API behind a
    /// proxy, so a proof made for another host is never taken.
    pub public_url: Option<String>,
    /// How many DPoP proofs' `jti`s the guard remembers to refuse a replay (each for about
    /// a minute). Default 100,000.
    pub dpop_replay_capacity: usize,
    /// Require every DPoP proof to carry a nonce this API gave out (RFC 9449 §9): a proof
    /// without one, or with an old one, is answered 401 `use_dpop_nonce` with a fresh nonce
    /// in `DPoP-Nonce`. Nonces change every minute; the last two are taken. Default off.
    pub dpop_nonce: bool,
    /// The secret nonces are derived from: give every instance of one API the same (at least
    /// 32 bytes), so a nonce one gave out is taken by all. Unset: a random secret per guard.
    pub dpop_nonce_secret: Option<Vec<u8>>,
}

impl GuardConfig {
    /// The defaults for `issuer` and `audience`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into().trim_end_matches('/').to_owned(),
            audience: audience.into(),
            realm: "api".to_owned(),
            leeway: Duration::from_secs(60),
            allow_query_token: false,
            jwks_cooldown: Duration::from_secs(30),
            jwks_max_age: Duration::from_secs(300),
            staleness_bound: Duration::from_secs(10),
            fail_open: false,
            max_token_lifetime: Duration::from_secs(3600),
            public_url: None,
            dpop_replay_capacity: 100_000,
            dpop_nonce: false,
            dpop_nonce_secret: None,
        }
    }

    /// Refuses settings that would weaken the checks.
    pub fn validate(&self) -> Result<(), String> {
        if self
            .dpop_nonce_secret
            .as_ref()
            .is_some_and(|secret| secret.len() < 32)
        {
            return Err("dpop_nonce_secret must be at least 32 bytes".to_owned());
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err("issuer and audience must be set".to_owned());
        }
        if self.leeway > Duration::from_secs(300) {
            return Err("leeway above 5 minutes would accept long-expired tokens".to_owned());
        }
        if self.realm.is_empty()
            || self
                .realm
                .chars()
                .any(|c| !(' '..='~').contains(&c) || c == '"' || c == '\\')
        {
            return Err(
                "the realm must be printable ASCII without quotes or backslashes".to_owned(),
            );
        }
        for (name, value) in [
            ("jwks_cooldown", self.jwks_cooldown),
            ("jwks_max_age", self.jwks_max_age),
            ("staleness_bound", self.staleness_bound),
            ("max_token_lifetime", self.max_token_lifetime),
        ] {
            if value < Duration::from_secs(1) {
                return Err(format!("{name} must be at least one second"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// How `docs/configuration.md` writes a default.
    pub(crate) fn human(d: Duration) -> String {
        let s = d.as_secs();
        if s >= 3600 && s.is_multiple_of(3600) {
            format!("{} h", s / 3600)
        } else {
            format!("{s} s")
        }
    }

    #[test]
    fn documented_defaults() {
        let doc = include_str!("../../../docs/configuration.md");
        let d = GuardConfig::new("https://sso.example.com", "wiki");
        let on_off = |b: bool| if b { "on" } else { "off" }.to_owned();
        for (name, default) in [
            ("realm", format!("`{}`", d.realm)),
            ("leeway", human(d.leeway)),
            ("allow_query_token", on_off(d.allow_query_token)),
            ("jwks_cooldown", human(d.jwks_cooldown)),
            ("jwks_max_age", human(d.jwks_max_age)),
            ("staleness_bound", human(d.staleness_bound)),
            ("fail_open", on_off(d.fail_open)),
            ("max_token_lifetime", human(d.max_token_lifetime)),
        ] {
            let row = format!("| `{name}` | {default} |");
            assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
        }
    }

    #[test]
    fn validate_refuses_what_would_weaken_the_checks() {
        let good = GuardConfig::new("https://sso.example.com", "wiki");
        assert!(good.validate().is_ok());
        let bad: [fn(&mut GuardConfig); 6] = [
            |c| c.audience.clear(),
            |c| c.leeway = Duration::from_secs(301),
            |c| c.realm = "a\"b".into(),
            |c| c.realm = "line\nbreak".into(),
            |c| c.jwks_max_age = Duration::ZERO,
            |c| c.staleness_bound = Duration::from_millis(10),
        ];
        for (i, tweak) in bad.into_iter().enumerate() {
            let mut c = good.clone();
            tweak(&mut c);
            assert!(c.validate().is_err(), "case {i}: {c:?}");
        }
    }
}
