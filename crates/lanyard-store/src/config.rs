//! Settings every backend shares. Defaults are documented on the fields and in
//! `docs/configuration.md`.

use std::time::Duration;

use crate::StoreError;

/// How long things live in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// How long an authorization code can be redeemed. Default 60 s (RFC 6749 §4.1.2
    /// recommends at most 10 minutes).
    pub code_ttl: Duration,
    /// How long a redeemed code is remembered, so that a replay is recognised and the tokens
    /// of the first redemption can be revoked (RFC 6749 §4.1.2). Default 10 minutes; never
    /// shorter than `code_ttl` in effect.
    pub redeemed_code_retention: Duration,
    /// A retry of the very same refresh-token rotation within this window gets the same
    /// successor back instead of tripping reuse detection, so a response lost on the network
    /// does not sign the person out. Default 2 s; zero turns it off.
    pub refresh_grace: Duration,
    /// The longest lifetime of any access token the issuer mints. Revocation entries by
    /// `sid`, `sub` and `client_id` are kept this long (plus `leeway`), after which no token
    /// they cover can still be valid. A token whose own lifetime is longer is judged revoked,
    /// since the lists could not vouch for it. Default 1 hour.
    pub max_access_token_lifetime: Duration,
    /// Clock leeway granted by resource servers; revocation entries outlive the tokens they
    /// cover by this much. Default 60 s.
    pub leeway: Duration,
    /// How many revocation events are kept for subscribers to resume from; one that falls
    /// further behind is told to take a new snapshot. Default 10 000.
    pub event_retention: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(60),
            redeemed_code_retention: Duration::from_secs(600),
            refresh_grace: Duration::from_secs(2),
            max_access_token_lifetime: Duration::from_secs(3600),
            leeway: Duration::from_secs(60),
            event_retention: 10_000,
        }
    }
}

impl StoreConfig {
    /// Refuses settings under which the store could not keep its promises.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.code_ttl.is_zero() {
            return Err(StoreError::InvalidRequest("code_ttl must be positive"));
        }
        if self.max_access_token_lifetime.is_zero() {
            return Err(StoreError::InvalidRequest(
                "max_access_token_lifetime must be positive",
            ));
        }
        if self.event_retention == 0 {
            return Err(StoreError::InvalidRequest(
                "event_retention must be at least 1",
            ));
        }
        Ok(())
    }

    /// How long a redeemed code's tombstone lives, counted from redemption.
    pub(crate) fn tombstone_ttl(&self) -> Duration {
        self.redeemed_code_retention.max(self.code_ttl)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// How `docs/configuration.md` writes a default.
    pub(crate) fn human(d: Duration) -> String {
        let s = d.as_secs();
        match s {
            _ if s >= 3600 && s.is_multiple_of(3600) => format!("{} h", s / 3600),
            _ if s >= 600 && s.is_multiple_of(60) => format!("{} min", s / 60),
            _ => format!("{s} s"),
        }
    }

    #[test]
    fn documented_defaults() {
        let doc = include_str!("../../../docs/configuration.md");
        let d = StoreConfig::default();
        let rows = [
            ("code_ttl", human(d.code_ttl)),
            ("redeemed_code_retention", human(d.redeemed_code_retention)),
            ("refresh_grace", human(d.refresh_grace)),
            (
                "max_access_token_lifetime",
                human(d.max_access_token_lifetime),
            ),
            ("leeway", human(d.leeway)),
            ("event_retention", d.event_retention.to_string()),
        ];
        for (name, default) in rows {
            let row = format!("| `{name}` | {default} |");
            assert!(doc.contains(&row), "docs/configuration.md lacks {row}");
        }
    }

    #[test]
    fn validate_refuses_what_the_store_cannot_keep() {
        assert!(StoreConfig::default().validate().is_ok());
        for bad in [
            StoreConfig {
                code_ttl: Duration::ZERO,
                ..StoreConfig::default()
            },
            StoreConfig {
                max_access_token_lifetime: Duration::ZERO,
                ..StoreConfig::default()
            },
            StoreConfig {
                event_retention: 0,
                ..StoreConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
