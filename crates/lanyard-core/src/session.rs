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
    // Only a scheme-host-port origin names a page: an opaque one (a sandboxed frame, a
    // `data:` page, a native app's private-use scheme) serializes as `null` for all alike.
    let own = |uri: &str| {
        Url::parse(uri)
            .ok()
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| o.ascii_serialization())
    };
    if origin == "null" {
        return false;
    }
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

/// "Firefox on Linux": the browser and system a `User-Agent` names, for people to recognise
/// their sessions (not for any decision).
pub fn device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|u| !u.is_empty()) else {
        return "Unknown device".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map_or("A browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(marker, _)| ua.contains(marker))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

/// `2026-11-27 05:50 UTC`.
pub fn utc(t: Timestamp) -> String {
    let secs = t.as_secs();
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (H. Hinnant, "chrono-compatible low-level date algorithms").
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_times_read_as_people_say_them() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0";
        assert_eq!(device(Some(firefox)), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";
        assert_eq!(device(Some(chrome)), "Chrome on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device(Some(iphone)), "Safari on iPhone");
        assert_eq!(device(Some("curl/8.0")), "A browser");
        assert_eq!(device(None), "Unknown device");
        assert_eq!(utc(Timestamp::from_secs(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            utc(Timestamp::from_secs(1_795_758_600)),
            "2026-11-27 05:50 UTC"
        );
        assert_eq!(
            utc(Timestamp::from_secs(951_782_400)),
            "2000-02-29 00:00 UTC"
        );
    }

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
