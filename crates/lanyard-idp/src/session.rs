//! The sign-in session as people and their apps see it: how long it has left (the status
//! behind the timeout warning), and who may ask.
//!
//! Reading the status is not activity: a page that polls it does not keep anyone signed in.
//! Only the person's own action does ("Stay signed in", which extends the session), as does
//! using it: single sign-on at an app, or an app refreshing a token bound to it.

use lanyard_store::{Session, Timestamp};
use serde::Serialize;
use url::Url;

use crate::config::Config;
use crate::model::Client;

/// What the warning script is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Whether this browser has a live sign-in session.
    pub active: bool,
    /// Seconds until it ends unless used (the idle deadline, capped by the absolute one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// Seconds until it ends whatever happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absolute_expires_in: Option<i64>,
    /// The idle timeout in seconds: what "Stay signed in" gives back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
    /// Whether the person ticked "remember me".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remember_me: Option<bool>,
}

impl Status {
    /// The status of `session` (the browser's, if live) at `now`.
    pub fn of(session: Option<&Session>, now: Timestamp) -> Self {
        let left = |deadline: Timestamp| (deadline.as_millis() - now.as_millis()).max(0) / 1000;
        match session.filter(|s| s.is_live(now)) {
            None => Self {
                active: false,
                expires_in: None,
                absolute_expires_in: None,
                idle_timeout: None,
                remember_me: None,
            },
            Some(s) => Self {
                active: true,
                expires_in: Some(left(s.idle_deadline.min(s.absolute_deadline))),
                absolute_expires_in: Some(left(s.absolute_deadline)),
                idle_timeout: Some(s.idle_timeout.as_secs()),
                remember_me: Some(s.remember_me),
            },
        }
    }
}

/// Whether a page at `origin` may read the status and extend the session: Lanyard's own
/// pages, and the origins of the registered redirect and post-logout URIs of `client` (the
/// app the page says it belongs to). The session cookie is `SameSite=Lax`, so only apps on
/// the same site as Lanyard ever send it along; this keeps even those to registered apps.
pub fn origin_allowed(config: &Config, client: Option<&Client>, origin: &str) -> bool {
    let own = |uri: &str| {
        Url::parse(uri)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    };
    if own(&config.issuer).as_deref() == Some(origin) {
        return true;
    }
    client.is_some_and(|c| {
        c.redirect_uris
            .iter()
            .chain(&c.post_logout_redirect_uris)
            .any(|uri| own(uri).as_deref() == Some(origin))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_or_ended_session_is_inactive_and_says_nothing_more() {
        let status = Status::of(None, Timestamp::from_secs(10));
        assert!(!status.active);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({ "active": false })
        );
    }

    #[test]
    fn only_lanyard_and_the_apps_own_origins_may_ask() {
        let config = Config {
            issuer: "https://sso.example.com".into(),
            ..Config::default()
        };
        assert!(origin_allowed(&config, None, "https://sso.example.com"));
        assert!(!origin_allowed(&config, None, "https://wiki.example.com"));
        assert!(!origin_allowed(&config, None, "null"));
    }
}
