//! The SSO session cookie, the sign-in form's CSRF cookie, and where to go after a sign-in
//! no app asked for.
//!
//! The session cookie carries the `sid` with a MAC (`crypto::ServerKeys::seal_cookie`): a
//! `sid` alone is not a secret (every app sees it in its tokens), so the cookie must be
//! something only Lanyard can mint. Cookies are `HttpOnly`; `SameSite=Lax` for the session
//! (a top-level GET from an app must carry it), `Strict` for CSRF; `Secure` and `__Host-`
//! when the issuer is https.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};

use lanyard_core::config::Config;
use lanyard_core::crypto::{ServerKeys, random_token, same_secret};

const SESSION: &str = "lanyard_session";
const CSRF: &str = "lanyard_csrf";
const NEXT: &str = "lanyard_next";

/// The SSO session cookie's name in this deployment.
pub(crate) fn session_name(config: &Config) -> String {
    name(config, SESSION)
}

/// A cookie's name for this deployment.
fn name(config: &Config, base: &str) -> String {
    if config.is_https() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

/// The value of cookie `name` in the request, if present once.
fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((n, v)) = pair.trim().split_once('=')
                && n == name
            {
                if found.is_some() {
                    return None; // two cookies of one name: trust neither
                }
                found = Some(v);
            }
        }
    }
    found
}

fn set_cookie(
    config: &Config,
    base: &str,
    value: &str,
    same_site: &str,
    max_age: Option<Duration>,
) -> HeaderValue {
    let mut cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite={same_site}",
        name(config, base)
    );
    if config.is_https() {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

/// The `sid` in a valid session cookie.
pub(crate) fn session_sid(
    config: &Config,
    keys: &ServerKeys,
    headers: &HeaderMap,
) -> Option<String> {
    let sealed = read(headers, &name(config, SESSION))?;
    keys.open_cookie("session", sealed).map(str::to_owned)
}

/// The session cookie for `session`, kept as long as a remembered session lives when the
/// person ticked "remember me".
pub(crate) fn for_session(
    state: &crate::state::AppState,
    session: &lanyard_store::Session,
) -> HeaderValue {
    let remember_for = session
        .remember_me
        .then_some(state.config.lifetimes.remember_me_max);
    set_session(
        &state.config,
        &state.server_keys,
        session.sid.as_str(),
        remember_for,
    )
}

/// `Set-Cookie` for a new session. A remembered session's cookie outlives the browser
/// session; otherwise the cookie ends when the browser closes.
pub(crate) fn set_session(
    config: &Config,
    keys: &ServerKeys,
    sid: &str,
    remember_for: Option<Duration>,
) -> HeaderValue {
    set_cookie(
        config,
        SESSION,
        &keys.seal_cookie("session", sid),
        "Lax",
        remember_for,
    )
}

/// `Set-Cookie` that ends the session cookie.
pub(crate) fn clear_session(config: &Config) -> HeaderValue {
    set_cookie(config, SESSION, "", "Lax", Some(Duration::ZERO))
}

/// `Set-Cookie` for the page to go to after a sign-in that no app asked for (the account
/// sign-in, from the device page): a path of ours, sealed so that no sibling site can plant
/// one, kept for `ttl`.
pub(crate) fn set_next(
    config: &Config,
    keys: &ServerKeys,
    path: &str,
    ttl: Duration,
) -> HeaderValue {
    set_cookie(
        config,
        NEXT,
        &keys.seal_cookie("next", path),
        "Lax",
        Some(ttl),
    )
}

/// The page to go to after the account sign-in: the sealed path in the request, if it is
/// one of ours (an absolute path, never `//host`), else the account page; with the
/// `Set-Cookie` that forgets it.
pub(crate) fn take_next(
    config: &Config,
    keys: &ServerKeys,
    headers: &HeaderMap,
) -> (String, Option<HeaderValue>) {
    let Some(sealed) = read(headers, &name(config, NEXT)) else {
        return ("/account".to_owned(), None);
    };
    let clear = set_cookie(config, NEXT, "", "Lax", Some(Duration::ZERO));
    match keys.open_cookie("next", sealed) {
        Some(path) if is_local_path(path) => (path.to_owned(), Some(clear)),
        _ => ("/account".to_owned(), Some(clear)),
    }
}

/// Where a sign-in that no app asked for goes: the page that sent the person to sign in
/// (the device page), else the account page; the redirect forgets it.
pub(crate) fn after_sign_in(config: &Config, keys: &ServerKeys, headers: &HeaderMap) -> Response {
    let (next, forget) = take_next(config, keys, headers);
    let mut response = Redirect::to(&next).into_response();
    if let Some(forget) = forget {
        response.headers_mut().append(header::SET_COOKIE, forget);
    }
    response
}

/// An absolute path on this host: `/x`, never `//host` or `/\host`, no scheme.
fn is_local_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && path.bytes().all(|b| b.is_ascii_graphic())
}

/// The CSRF token for a form: the browser's own if it has one (so two open tabs both work),
/// else a new one with the `Set-Cookie` that gives it to the browser.
pub(crate) fn csrf_for_form(config: &Config, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match csrf(config, headers) {
        Some(token) if token.len() == 43 => (token, None),
        _ => {
            let token = random_token(32);
            let set = set_csrf(config, &token);
            (token, Some(set))
        }
    }
}

/// Whether a submitted form's `csrf` field equals the browser's CSRF cookie (double submit:
/// another site can make the browser post a form, but cannot read or set this cookie).
pub(crate) fn csrf_matches(config: &Config, headers: &HeaderMap, field: Option<&str>) -> bool {
    match (csrf(config, headers), field) {
        // Only a token of the shape we make: an empty cookie planted by a sibling host
        // (plain http has no `__Host-` prefix) must not match an empty field.
        (Some(cookie), Some(field)) if cookie.len() == 43 => same_secret(&cookie, field),
        _ => false,
    }
}

/// The CSRF token in the request's cookie, if any.
pub(crate) fn csrf(config: &Config, headers: &HeaderMap) -> Option<String> {
    read(headers, &name(config, CSRF)).map(str::to_owned)
}

/// `Set-Cookie` for a CSRF token (double-submit: the form carries the same value).
pub(crate) fn set_csrf(config: &Config, token: &str) -> HeaderValue {
    set_cookie(config, CSRF, token, "Strict", None)
}

/// `Set-Cookie` that deletes the CSRF cookie.
pub(crate) fn clear_csrf(config: &Config) -> HeaderValue {
    set_cookie(config, CSRF, "", "Strict", Some(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_duplicates_are_refused() {
        let config = Config::default();
        let keys = ServerKeys::new(b"p", b"c");
        let set = set_session(&config, &keys, "sid-1", None);
        let text = set.to_str().unwrap();
        assert!(text.starts_with("lanyard_session=sid-1."), "{text}");
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax"));
        let value = text.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {value}")).unwrap(),
        );
        assert_eq!(
            session_sid(&config, &keys, &headers).as_deref(),
            Some("sid-1")
        );
        headers.append(header::COOKIE, HeaderValue::from_str(value).unwrap());
        assert_eq!(session_sid(&config, &keys, &headers), None);
        let forged = HeaderValue::from_static("lanyard_session=sid-2.AAAA");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, forged);
        assert_eq!(session_sid(&config, &keys, &headers), None);
    }

    #[test]
    fn the_next_page_is_a_sealed_local_path() {
        let config = Config::default();
        let keys = ServerKeys::new(b"p", b"c");
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("lanyard_next={value}")).unwrap(),
            );
            take_next(&config, &keys, &headers)
        };
        let set = set_next(
            &config,
            &keys,
            "/device?user_code=BCDF-GHJK",
            Duration::from_secs(60),
        );
        let value = set.to_str().unwrap().split(';').next().unwrap();
        let (path, clear) = with(value.trim_start_matches("lanyard_next="));
        assert_eq!(path, "/device?user_code=BCDF-GHJK");
        assert!(clear.unwrap().to_str().unwrap().contains("Max-Age=0"));
        // Planted (unsealed), or sealed but leaving the site: the account page instead.
        assert_eq!(with("/device").0, "/account");
        for away in [
            "//evil.example/",
            "https://evil.example/",
            "/\\\\evil.example",
        ] {
            let sealed = keys.seal_cookie("next", away);
            assert_eq!(with(&sealed).0, "/account", "{away}");
        }
        assert_eq!(
            take_next(&config, &keys, &HeaderMap::new()),
            ("/account".to_owned(), None)
        );
    }

    #[test]
    fn https_cookies_are_secure_host_cookies() {
        let config = Config {
            issuer: "https://sso.example.com".into(),
            ..Config::default()
        };
        let text = set_csrf(&config, "t").to_str().unwrap().to_owned();
        assert!(
            text.starts_with("__Host-lanyard_csrf=t;") && text.contains("; Secure"),
            "{text}"
        );
    }
}
