//! Writes the seed corpus (`corpus/<target>/seed-*`) and the JWT fixtures (`fixtures/`).
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`
//!
//! The tokens are signed with a key made for the run and then dropped: only its public half
//! is kept (`fixtures/jwks.json`), so the fuzzer cannot sign anything. Running this again
//! makes a new key; seeds the fuzzer derived from the old tokens then no longer verify,
//! which costs coverage, not correctness.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lanyard_fuzz::jwt::{AUDIENCE, ISSUER, KID, REVOKED_JTI};
use lanyard_fuzz::{NOW, idp::CLIENT_SECRET};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// DER as PEM.
fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

fn write(dir: &Path, name: &str, contents: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), contents).unwrap();
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The issuer's key, for this run only.
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let public = key.public_key();
    let jwks = json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
        "n": b64(public.modulus().big_endian_without_leading_zero()),
        "e": b64(public.exponent().big_endian_without_leading_zero()),
    }]});
    fs::write(
        root.join("fixtures/jwks.json"),
        serde_json::to_string_pretty(&jwks).unwrap() + "\n",
    )
    .unwrap();
    let encoding =
        EncodingKey::from_rsa_pem(pem("PRIVATE KEY", key.as_der().unwrap().as_ref()).as_bytes())
            .unwrap();
    let public_pem = pem("PUBLIC KEY", public.as_der().unwrap().as_ref());

    let claims = json!({
        "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "exp": NOW + 3000, "iat": NOW - 60,
        "jti": "seed-1", "client_id": "web", "scope": "openid reports:read", "sid": "session-1",
        "auth_time": NOW - 600,
    });
    let with = |changes: Value| {
        let mut c = claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let header = |typ: &str, kid: Option<&str>| {
        let mut h = Header::new(Algorithm::RS256);
        h.typ = Some(typ.to_owned());
        h.kid = kid.map(str::to_owned);
        h
    };
    let sign = |h: &Header, c: &Value| jsonwebtoken::encode(h, c, &encoding).unwrap();
    let at = header("at+jwt", Some(KID));

    // What the guard must accept: nothing else may pass.
    let accepted = [
        ("accepted", sign(&at, &claims)),
        (
            "accepted-aud-array",
            sign(
                &at,
                &with(json!({"aud": ["other", AUDIENCE], "jti": "seed-2", "sid": null})),
            ),
        ),
        (
            "accepted-media-type",
            sign(
                &header("application/at+jwt", Some(KID)),
                &with(json!({"jti": "seed-3", "nbf": NOW - 60})),
            ),
        ),
    ];
    fs::write(
        root.join("fixtures/accepted_tokens.txt"),
        accepted
            .iter()
            .map(|(_, t)| format!("{t}\n"))
            .collect::<String>(),
    )
    .unwrap();

    // Near misses: each refused for one reason.
    let unsigned = |h: Value, c: &Value| {
        format!(
            "{}.{}.",
            b64(h.to_string().as_bytes()),
            b64(c.to_string().as_bytes())
        )
    };
    let hs256_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some(KID.into());
        jsonwebtoken::encode(
            &h,
            &claims,
            &EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .unwrap()
    };
    let mut crit = at.clone();
    crit.crit = Some(vec!["exp".into()]);
    let bad_signature = {
        let mut t = accepted[0].1.clone().into_bytes();
        let last = t.len() - 1;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    let refused = [
        ("revoked", sign(&at, &with(json!({"jti": REVOKED_JTI})))),
        (
            "expired",
            sign(&at, &with(json!({"exp": NOW - 120, "iat": NOW - 900}))),
        ),
        ("not-yet-valid", sign(&at, &with(json!({"nbf": NOW + 600})))),
        (
            "issued-in-future",
            sign(&at, &with(json!({"iat": NOW + 600}))),
        ),
        (
            "too-long-lived",
            sign(&at, &with(json!({"exp": NOW + 86_400}))),
        ),
        ("wrong-audience", sign(&at, &with(json!({"aud": "other"})))),
        (
            "wrong-issuer",
            sign(&at, &with(json!({"iss": "https://evil.example"}))),
        ),
        ("missing-sub", sign(&at, &with(json!({"sub": null})))),
        ("exp-a-string", sign(&at, &with(json!({"exp": "soon"})))),
        ("id-token-typ", sign(&header("JWT", Some(KID)), &claims)),
        ("no-typ", {
            let mut h = at.clone();
            h.typ = None;
            sign(&h, &claims)
        }),
        ("unknown-kid", sign(&header("at+jwt", Some("k2")), &claims)),
        ("no-kid", sign(&header("at+jwt", None), &claims)),
        ("crit", sign(&crit, &claims)),
        ("bad-signature", bad_signature),
        (
            "alg-none",
            unsigned(json!({"alg": "none", "typ": "at+jwt", "kid": KID}), &claims),
        ),
        ("hs256-with-public-key", hs256_with_public_key),
        ("not-a-jwt", "a.b.c".to_owned()),
    ];
    let dir = root.join("corpus/jwt_validate");
    for (name, token) in accepted.iter().chain(&refused) {
        write(&dir, name, token.as_bytes());
    }
    // The same, as a query string (the guard that reads `access_token` there).
    write(
        &dir,
        "query",
        format!("x=1&access_token={}", accepted[0].1).as_bytes(),
    );

    // Authorization requests: a query string, or `query\n\nform body` for a POST.
    let web = "client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb";
    let challenge =
        "code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let authorize = [
        (
            "web",
            format!("response_type={}&{web}&scope=openid+profile+email&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj", "code"),
        ),
        (
            "web-everything",
            format!(
                "response_type=code&{web}&scope=openid%20offline_access&response_mode=form_post&prompt=login+consent&max_age=300&login_hint=alice&id_token_hint=eyJ.eyJ.sig&{challenge}"
            ),
        ),
        (
            "spa-pkce",
            format!(
                "response_type=code&client_id=spa&redirect_uri=com.example.app%3A%2Fcb&scope=openid&{challenge}&prompt=none"
            ),
        ),
        (
            "loopback-port",
            "response_type=code&client_id=web&redirect_uri=http%3A%2F%2F127.0.0.1%3A51004%2Fcallback&scope=openid".to_owned(),
        ),
        (
            "loopback-ipv6",
            "response_type=code&client_id=web&redirect_uri=http://[::1]:8080/callback&scope=openid&max_age=0".to_owned(),
        ),
        (
            "post",
            format!("{web}\n\nresponse_type=code&scope=openid&state=s"),
        ),
        (
            "post-duplicate",
            format!("state=a\n\n{web}&response_type=code&scope=openid&state=b"),
        ),
        (
            "duplicate-redirect",
            format!("{web}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code&scope=openid"),
        ),
        (
            "unregistered-redirect",
            "response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%2F..%2Fevil&scope=openid".to_owned(),
        ),
        (
            "spa-without-pkce",
            "response_type=code&client_id=spa&redirect_uri=https%3A%2F%2Fspa.example%2Fcb&scope=openid".to_owned(),
        ),
        (
            "request-object",
            format!("response_type=code&{web}&scope=openid&request=eyJhbGciOiJub25lIn0.e30."),
        ),
        (
            "bad-values",
            format!("response_type=token&{web}&scope=openid+%22x%22&prompt=none+login&max_age=-1&code_challenge=x&code_challenge_method=plain"),
        ),
        ("unknown-client", "response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fx%2Fcb".to_owned()),
        ("not-utf8", "client_id=%ff%fe&redirect_uri=%C3%28".to_owned()),
    ];
    let dir = root.join("corpus/authorize_request");
    for (name, input) in &authorize {
        write(&dir, name, input.as_bytes());
    }

    // Token requests: head (`?query`, `Authorization: ...`, `Not-Form`), `\n\n`, form body.
    let basic = |id: &str, secret: &str| {
        format!(
            "Authorization: Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    let redirect = "redirect_uri=https%3A%2F%2Fapp.example%2Fcb";
    let token = [
        (
            "code-post",
            format!(
                "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&{redirect}&client_id=web&client_secret={CLIENT_SECRET}"
            ),
        ),
        (
            "code-basic",
            format!(
                "{}\n\ngrant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&{redirect}",
                basic("web", CLIENT_SECRET)
            ),
        ),
        (
            "code-public-pkce",
            format!(
                "grant_type=authorization_code&code=abc&{redirect}&client_id=spa&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r7wW1gFWFOEjXk"
            ),
        ),
        (
            "refresh",
            format!(
                "{}\n\ngrant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA&scope=openid",
                basic("spa", "")
            ),
        ),
        (
            "client-credentials",
            format!(
                "{}\n\ngrant_type=client_credentials&scope=reports%3Aread",
                basic("service", CLIENT_SECRET)
            ),
        ),
        (
            "basic-escaped",
            format!(
                "{}\n\ngrant_type=client_credentials",
                basic("ser%76ice", "a+b%3Ac")
            ),
        ),
        (
            "basic-and-post",
            format!(
                "{}\n\ngrant_type=client_credentials&client_id=other&client_secret=x",
                basic("service", CLIENT_SECRET)
            ),
        ),
        (
            "two-headers",
            format!(
                "{}\n{}\n\ngrant_type=client_credentials",
                basic("service", CLIENT_SECRET),
                basic("web", CLIENT_SECRET)
            ),
        ),
        (
            "bearer-header",
            "Authorization: Bearer abc\n\ngrant_type=client_credentials".to_owned(),
        ),
        (
            "query",
            "?grant_type=client_credentials&client_id=service\n\nclient_id=service".to_owned(),
        ),
        (
            "not-form",
            "Not-Form\n\ngrant_type=client_credentials&client_id=service".to_owned(),
        ),
        (
            "duplicate",
            "grant_type=password&grant_type=refresh_token&client_id=spa".to_owned(),
        ),
        (
            "unsupported-grant",
            "grant_type=password&username=alice&password=x&client_id=web".to_owned(),
        ),
    ];
    let dir = root.join("corpus/token_request");
    for (name, input) in &token {
        write(&dir, name, input.as_bytes());
    }
    println!(
        "wrote {} + {} + {} seeds and fixtures/ under {}",
        accepted.len() + refused.len() + 1,
        authorize.len(),
        token.len(),
        root.display()
    );
}
