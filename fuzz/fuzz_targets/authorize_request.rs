//! An arbitrary authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2), through the code
//! the `/authorize` handler runs: `authorize::parameters` (query string, and for a POST the
//! form body), `identify`, then, for a registered client, `validate` and `decide`. Only the
//! database lookup of the client is left out: the clients are fixed (`lanyard_fuzz::idp`).
//!
//! Input: the query string; if it holds an empty line (`\n\n`), what follows is a POST's
//! form body. Besides never panicking, it checks what must hold whatever the input:
//! nothing is redirected but to a URI registered for the client (or a loopback one with
//! another port, RFC 8252 §7.3), and a request that passes names `openid`, only scopes the
//! client may have, no parameter twice, and PKCE for a public client.
#![no_main]

use std::sync::LazyLock;

use lanyard_fuzz::{NOW, idp, split_head};
use lanyard_core::config::Config;
use lanyard_core::model::Client;
use lanyard_idp::oauth::authorize;
use lanyard_idp::oauth::checks::pkce;
use lanyard_idp::oauth::error::AuthorizeError;
use lanyard_store::{Session, Timestamp};
use libfuzzer_sys::fuzz_target;

static CLIENTS: LazyLock<Vec<Client>> = LazyLock::new(idp::clients);
static SESSION: LazyLock<Session> = LazyLock::new(idp::session);

/// Whether an answer may be sent to `uri` for `client`: a registered URI, or a registered
/// `http` loopback IP literal with any port.
fn trusted(client: &Client, uri: &str) -> bool {
    client.redirect_uris.iter().any(|r| {
        r == uri
            || ["http://127.0.0.1", "http://[::1]"].iter().any(|host| {
                let (Some(path), Some(rest)) = (r.strip_prefix(host), uri.strip_prefix(host))
                else {
                    return false;
                };
                let Some(port) = rest.strip_suffix(path) else {
                    return false;
                };
                port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
            })
    })
}

fuzz_target!(|data: &[u8]| {
    let (query, form) = split_head(data);
    // The handler's query is a URI's, always a string.
    let query = String::from_utf8_lossy(query);
    let Ok(params) = authorize::parameters(Some(&query), form) else {
        return;
    };
    let client_id = match authorize::identify(&params) {
        Ok((client_id, _)) => client_id,
        Err(e) => {
            assert!(matches!(e, AuthorizeError::Page { .. }), "{e:?}");
            return;
        }
    };
    // Where the handler would look the client up.
    let Some(client) = CLIENTS.iter().find(|c| c.client_id == client_id) else {
        return;
    };
    let request = match authorize::validate(&params, client.clone(), "https://sso.example.com") {
        Ok(request) => request,
        Err(AuthorizeError::Redirect { to, .. }) => {
            assert!(trusted(client, to.redirect_uri.as_str()), "redirected to {to:?}");
            assert!(to.state.as_ref().is_none_or(|s| s.len() <= 2048));
            return;
        }
        Err(AuthorizeError::Page { .. }) => return,
        Err(e @ AuthorizeError::Unavailable(_)) => panic!("nothing here can be down: {e:?}"),
    };
    let reply = &request.reply;
    assert!(trusted(client, reply.redirect_uri.as_str()), "{reply:?}");
    assert_eq!(params.duplicated(), None);
    assert_eq!(params.get("response_type"), Some("code"));
    assert!(request.scope.contains("openid"));
    assert_eq!(request.scope.first_not_allowed(client), None);
    assert!(!client.public || request.code_challenge.is_some());
    if let Some(challenge) = &request.code_challenge {
        assert!(pkce::check_challenge(challenge, Some("S256")).is_ok());
    }
    assert!(reply.state.as_ref().is_none_or(|s| s.len() <= 2048));
    assert!(request.nonce.as_ref().is_none_or(|n| n.len() <= 2048));

    let now = Timestamp::from_secs(NOW);
    for session in [None, Some(SESSION.clone())] {
        let required = request.required_acr(&Config::default());
        match authorize::decide(&request, session, None, now, required) {
            Ok(_) => {}
            Err(AuthorizeError::Redirect { to, .. }) => assert_eq!(&to, reply),
            Err(e) => panic!("decide failed otherwise than back to the client: {e:?}"),
        }
    }
});
