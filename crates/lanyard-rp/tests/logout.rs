//! Logout tokens (Back-Channel Logout 1.0 §2.6): one valid token, then one token per rule,
//! crafted to break exactly that rule (SECURITY.md 2.7, 2.8: type confusion, `alg: none`,
//! HMAC keyed with the public key, foreign keys, a `nonce`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::{Algorithm, DecodingKey};
use lanyard_rp::keys::IssuerKey;
use lanyard_rp::logout::{
    BACKCHANNEL_LOGOUT_EVENT, LogoutRejection, LogoutToken, key_id, validate,
};
use serde_json::{Value, json};

mod support;
use support::{AUDIENCE, ISSUER, NOW, raw_token, rsa_key, sign_with};

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": NOW - 5, "exp": NOW + 115, "jti": "lt-1",
        "sub": "alice-sub", "sid": "sid-1", "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

/// What the app would do with `token`: read the header, pick the issuer's key, validate.
fn check(token: &str) -> Result<LogoutToken, LogoutRejection> {
    let kid = key_id(token)?;
    let key = match kid.as_str() {
        "k0" => IssuerKey {
            alg: Algorithm::RS256,
            key: DecodingKey::from_rsa_pem(rsa_key(0).public_pem.as_bytes()).unwrap(),
        },
        _ => return Err(LogoutRejection::UnknownKey),
    };
    validate(token, &key, ISSUER, AUDIENCE, NOW, 60)
}

fn logout_token(claims: &Value) -> String {
    sign_with(claims, "k0", "logout+jwt", rsa_key(0))
}

fn without(name: &str) -> Value {
    let mut c = claims();
    c.as_object_mut().unwrap().remove(name);
    c
}

fn with(name: &str, value: Value) -> Value {
    let mut c = claims();
    c[name] = value;
    c
}

#[test]
fn a_valid_logout_token_names_the_user_and_session() {
    let token = check(&logout_token(&claims())).unwrap();
    assert_eq!(token.sub.as_deref(), Some("alice-sub"));
    assert_eq!(token.sid.as_deref(), Some("sid-1"));
    assert_eq!(token.jti, "lt-1");
    // `application/logout+jwt` is the same media type (RFC 7515 §4.1.9).
    assert!(
        check(&sign_with(
            &claims(),
            "k0",
            "application/logout+jwt",
            rsa_key(0)
        ))
        .is_ok()
    );
    // sub alone or sid alone will do (§2.4).
    assert!(check(&logout_token(&without("sid"))).is_ok());
    assert!(check(&logout_token(&without("sub"))).is_ok());
    // `aud` as an array containing the client.
    assert!(check(&logout_token(&with("aud", json!(["other", AUDIENCE])))).is_ok());
}

#[test]
fn each_broken_rule_is_refused() {
    use LogoutRejection as R;
    let cases: Vec<(&str, String, R)> = vec![
        (
            "an ID token (typ JWT)",
            sign_with(&claims(), "k0", "JWT", rsa_key(0)),
            R::WrongType,
        ),
        (
            "an access token (typ at+jwt)",
            sign_with(&claims(), "k0", "at+jwt", rsa_key(0)),
            R::WrongType,
        ),
        (
            "a nonce, as an ID token has",
            logout_token(&with("nonce", json!("n-1"))),
            R::Nonce,
        ),
        ("no events", logout_token(&without("events")), R::Malformed),
        (
            "events without the back-channel logout member",
            logout_token(&with(
                "events",
                json!({ "http://schemas.openid.net/event/other": {} }),
            )),
            R::NoEvent,
        ),
        (
            "the event's value is not an object",
            logout_token(&with("events", json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" }))),
            R::NoEvent,
        ),
        (
            "neither sub nor sid",
            logout_token(&{
                let mut c = without("sub");
                c.as_object_mut().unwrap().remove("sid");
                c
            }),
            R::NoSubject,
        ),
        ("no jti", logout_token(&without("jti")), R::Malformed),
        ("no exp", logout_token(&without("exp")), R::Malformed),
        (
            "exp as a string",
            logout_token(&with("exp", json!("9999999999"))),
            R::Malformed,
        ),
        (
            "expired beyond the leeway",
            logout_token(&with("exp", json!(NOW - 61))),
            R::Time,
        ),
        (
            "issued in the future",
            logout_token(&with("iat", json!(NOW + 120))),
            R::Time,
        ),
        (
            "another issuer",
            logout_token(&with("iss", json!("https://evil.example"))),
            R::WrongIssuer,
        ),
        (
            "another app",
            logout_token(&with("aud", json!("billing"))),
            R::WrongAudience,
        ),
        (
            "signed by a foreign key under our kid",
            sign_with(&claims(), "k0", "logout+jwt", rsa_key(1)),
            R::BadSignature,
        ),
        (
            "an unknown kid",
            sign_with(&claims(), "k9", "logout+jwt", rsa_key(0)),
            R::UnknownKey,
        ),
        (
            "alg none",
            raw_token(
                json!({ "alg": "none", "typ": "logout+jwt", "kid": "k0" }),
                &claims(),
                None,
            ),
            R::Algorithm,
        ),
        (
            "HS256 keyed with the public key",
            raw_token(
                json!({ "alg": "HS256", "typ": "logout+jwt", "kid": "k0" }),
                &claims(),
                Some(rsa_key(0).public_pem.as_bytes()),
            ),
            R::Algorithm,
        ),
        (
            "a crit header",
            raw_token(
                json!({ "alg": "RS256", "typ": "logout+jwt", "kid": "k0", "crit": ["exp"] }),
                &claims(),
                None,
            ),
            R::Malformed,
        ),
        ("not a JWT", "logout".to_owned(), R::Malformed),
    ];
    for (what, token, expected) in cases {
        assert_eq!(check(&token).err(), Some(expected), "{what}");
    }
}
