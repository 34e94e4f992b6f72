//! An arbitrary string presented as an access token, to a guard over a fixed key set
//! (`lanyard_rp::Guard::verify`, and `Guard::authenticate` with it in the `Authorization`
//! header and in `?access_token=`). It must never panic, and never accept a token the
//! fuzzer could have made: it holds no private key, so whatever the guard accepts must be
//! one of the seed tokens (`fixtures/accepted_tokens.txt`), character for character.
#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, header};
use lanyard_fuzz::jwt::{self, Fixture};
use libfuzzer_sys::fuzz_target;

static FIXTURE: LazyLock<Fixture> = LazyLock::new(jwt::fixture);

fn is_accepted(token: &str) -> bool {
    jwt::accepted().any(|t| t == token)
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let text = std::str::from_utf8(data).ok();

    if let Some(token) = text
        && let Ok(principal) = f.runtime.block_on(f.guard.verify(token))
    {
        assert!(
            is_accepted(token),
            "accepted a token it was not given: {token:?}"
        );
        assert!(f.accepted_claims.contains(&principal.claims));
    }

    // As the Authorization header (the bytes as sent: not necessarily UTF-8).
    let mut value = b"Bearer ".to_vec();
    value.extend_from_slice(data);
    if let Ok(value) = HeaderValue::from_bytes(&value) {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        if f.runtime
            .block_on(f.guard.authenticate(&headers, None))
            .is_ok()
        {
            let token = text.map(str::trim);
            assert!(
                token.is_some_and(is_accepted),
                "accepted a header it was not given: {data:?}"
            );
        }
    }

    // As a query string, to the guard that reads `access_token` there.
    if let Some(query) = text
        && let Ok(principal) = f
            .runtime
            .block_on(f.query_guard.authenticate(&HeaderMap::new(), Some(query)))
    {
        assert!(
            f.accepted_claims.contains(&principal.claims),
            "accepted a query it was not given: {query:?}"
        );
    }
});
