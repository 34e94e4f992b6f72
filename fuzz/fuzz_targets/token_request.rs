//! An arbitrary request to the token endpoint (RFC 6749 §3.2), through the code the handler
//! runs before it looks the client up: `client_auth::read_request` (no parameters in the URL,
//! a form body, no parameter twice, one client authentication method, HTTP Basic decoding),
//! then `grants::grant_type` (the dispatch) and `client_auth::authenticate` against fixed
//! clients (`lanyard_fuzz::idp`). The grants themselves need the store and are not run.
//!
//! Input, HTTP-like: a head, an empty line (`\n\n`), the form body. Head lines: `?<query>`,
//! `Authorization: <value>` (any number), `Not-Form` (the Content-Type is not a form).
//! Without an empty line, the whole input is the body. Besides never panicking, it checks
//! that what passes is what the RFC allows, and that a confidential client never
//! authenticates without a secret nor a public one with one.
#![no_main]

use std::sync::LazyLock;

use lanyard_fuzz::{idp, split_head};
use lanyard_core::crypto::ServerKeys;
use lanyard_core::model::Client;
use lanyard_idp::oauth::client_auth::{self, Method};
use lanyard_idp::oauth::grants;
use libfuzzer_sys::fuzz_target;

static CLIENTS: LazyLock<Vec<Client>> = LazyLock::new(idp::clients);
static KEYS: LazyLock<ServerKeys> = LazyLock::new(idp::server_keys);

fuzz_target!(|data: &[u8]| {
    let (head, body) = match split_head(data) {
        (head, Some(body)) => (head, body),
        (body, None) => (&[][..], body),
    };
    let mut query = None;
    let mut form = true;
    let mut authorization = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        if let Some(q) = line.strip_prefix(b"?") {
            query = Some(String::from_utf8_lossy(q));
        } else if line.eq_ignore_ascii_case(b"not-form") {
            form = false;
        } else if line.len() > 14 && line[..14].eq_ignore_ascii_case(b"authorization:") {
            authorization.push(line[14..].trim_ascii_start());
        }
    }
    let Ok(request) = client_auth::read_request(query.as_deref(), form, &authorization, body)
    else {
        return;
    };
    assert!(form && query.is_none_or(|q| q.is_empty()));
    assert_eq!(request.params.duplicated(), None);
    assert!(authorization.len() <= 1);
    assert_eq!(
        request.presented.method == Method::Basic,
        authorization.len() == 1
    );
    assert!(!request.presented.client_id.is_empty());
    if let Ok(grant) = grants::grant_type(&request.params) {
        assert_eq!(request.params.get("grant_type"), Some(grant.as_str()));
    }
    let client = CLIENTS
        .iter()
        .find(|c| c.client_id == request.presented.client_id);
    if client_auth::authenticate(&request.presented, client, &KEYS).is_ok() {
        let client = client.expect("authenticated as no client");
        assert_eq!(client.public, request.presented.method == Method::None);
    }
});
