//! Passkeys (issue 20, part 1), the service under the pages: registering one and signing in
//! with it, with and without a username, answered by a software passkey
//! (`support::passkey`, written from the WebAuthn text), so these run without a browser; and
//! the attacks: another origin or relying-party id, a replayed assertion, a cloned
//! authenticator (a counter that goes backwards), someone else's passkey, no user
//! verification.
//!
//! WebAuthn needs a secure context: `https`, or `http://localhost`. The server here is
//! `http://localhost:<port>` (its listener is on 127.0.0.1).

use lanyard_core::ServiceError;
use lanyard_core::model::{Acr, User};
use lanyard_core::passkeys::{self, Ceremony};
use serde_json::Value;

use crate::support::TestServer;
use crate::support::passkey::SoftPasskey;

const PASSWORD: &str = "correct horse battery staple";

/// A server whose issuer is `http://localhost:<port>`, with alice and bob.
async fn server() -> (TestServer, User, User) {
    let server = TestServer::start_with(
        crate::support::Db::Sqlite,
        crate::support::Store::Memory,
        |c| {
            c.issuer = c.issuer.replace("127.0.0.1", "localhost");
        },
    )
    .await;
    let alice = server.user("alice", PASSWORD).await;
    let bob = server.user("bob", PASSWORD).await;
    (server, alice, bob)
}

fn origin(server: &TestServer) -> String {
    server.state.config.issuer.clone()
}

/// Registers a new software passkey for `user`; returns it.
async fn register(server: &TestServer, user: &User, name: &str) -> SoftPasskey {
    let ceremony = passkeys::start_registration(&server.state, user)
        .await
        .unwrap();
    assert_eq!(
        ceremony.options["publicKey"]["authenticatorSelection"]["residentKey"], "required",
        "a discoverable credential"
    );
    assert_eq!(
        ceremony.options["publicKey"]["authenticatorSelection"]["userVerification"],
        "required"
    );
    let (key, answer) = SoftPasskey::register(&ceremony.options, &origin(server));
    let json = answer.to_string();
    let factor = passkeys::finish_registration(&server.state, user, &ceremony.id, &json, name)
        .await
        .unwrap();
    assert_eq!(factor.name, name);
    key
}

/// The software passkey's answer to `ceremony`, from `origin`.
fn assert_with(key: &mut SoftPasskey, ceremony: &Ceremony, origin: String) -> String {
    key.assert(&ceremony.options, &origin, None).to_string()
}

fn refused(result: Result<passkeys::PasskeySignIn, ServiceError>, why: &str) {
    assert!(
        matches!(result, Err(ServiceError::Invalid(_))),
        "{why}: {result:?}"
    );
}

#[tokio::test]
async fn a_passkey_signs_in_without_a_username_and_as_the_second_step() {
    let (server, alice, bob) = server().await;
    let mut key = register(&server, &alice, "Laptop").await;

    // The button: no username; the passkey says whose it is.
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    assert!(
        ceremony.options.get("mediation").is_none(),
        "a dialog, not autofill"
    );
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    let signed_in = passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    assert_eq!(signed_in.sub, alice.sub);
    assert!(signed_in.amr.contains(&"user".to_owned()));
    assert_eq!(
        Acr::of(&signed_in.amr),
        Acr::Phr,
        "phishing-resistant by itself"
    );
    // Autofill asks for conditional mediation.
    let autofill = passkeys::start_sign_in(&server.state, None, true)
        .await
        .unwrap();
    assert_eq!(autofill.options["mediation"], "conditional");

    // The second step after alice's password: only her passkeys are offered.
    let ceremony = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let allowed = ceremony.options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(allowed.len(), 1);
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    let again = passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    assert_eq!(again.factor, signed_in.factor);

    // Bob has none; alice's passkey cannot answer for bob.
    assert!(
        passkeys::start_sign_in(&server.state, Some(&bob), false)
            .await
            .is_err()
    );
    let mut bobs = register(&server, &bob, "Phone").await;
    let for_bob = passkeys::start_sign_in(&server.state, Some(&bob), false)
        .await
        .unwrap();
    let for_alice = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let bobs_answer = assert_with(&mut bobs, &for_alice, origin(&server));
    refused(
        passkeys::finish_sign_in(&server.state, &for_alice.id, &bobs_answer).await,
        "bob's passkey for alice's sign-in",
    );
    drop(for_bob);

    // Listed with the factors, with when they were used.
    let (factors, _) = lanyard_core::factors::list(&server.state, &alice.sub)
        .await
        .unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0].name, "Laptop");
    assert!(factors[0].last_used_at.is_some());
}

#[tokio::test]
async fn assertions_for_another_origin_or_relying_party_or_twice_are_refused() {
    let (server, alice, _) = server().await;
    let mut key = register(&server, &alice, "Laptop").await;

    // Another origin (a phishing site under the same name).
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let phishing = origin(&server).replace("localhost", "evil.localhost");
    let answer = assert_with(&mut key, &ceremony, phishing);
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "another origin",
    );

    // Another relying-party id: the authenticator signs for the name it was given.
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let answer = key
        .assert(&ceremony.options, &origin(&server), Some("sub.localhost"))
        .to_string();
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "another relying party",
    );

    // A good assertion is good once: its ceremony is taken, and a new one has another challenge.
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "the same answer again",
    );
    let fresh = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    refused(
        passkeys::finish_sign_in(&server.state, &fresh.id, &answer).await,
        "an old answer to a new challenge",
    );

    // Failures are audited.
    server.state.audit.flush().await;
    let failures = server
        .state
        .db
        .audit()
        .by_action("factor.use")
        .await
        .unwrap();
    assert!(failures.iter().filter(|e| e.outcome == "failure").count() >= 3);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_is_refused_and_audited() {
    let (server, alice, _) = server().await;
    let mut key = register(&server, &alice, "Security key").await;
    let ceremony = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    passkeys::finish_sign_in(&server.state, &ceremony.id, &answer)
        .await
        .unwrap();
    // As if a clone of this authenticator had signed in many times since.
    let (id, data) = server
        .state
        .db
        .factors()
        .passkeys_of(&alice.sub)
        .await
        .unwrap()
        .remove(0);
    let mut stored: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert!(
        stored["cred"]["counter"].as_u64().unwrap() >= 1,
        "the counter is kept"
    );
    stored["cred"]["counter"] = 1000.into();
    server
        .state
        .db
        .factors()
        .used_passkey(
            &id,
            &stored.to_string(),
            lanyard_store::Clock::now(&lanyard_store::SystemClock),
        )
        .await
        .unwrap();
    let ceremony = passkeys::start_sign_in(&server.state, Some(&alice), false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "a counter below the stored one",
    );
    server.state.audit.flush().await;
    let events = server
        .state
        .db
        .audit()
        .by_action("factor.use")
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.outcome == "failure"
            && e.detail.as_deref().is_some_and(|d| d.contains("counter"))),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_passkey_that_does_not_verify_the_user_is_refused() {
    let (server, alice, _) = server().await;
    let mut key = register(&server, &alice, "Laptop").await;
    key.verifies_user = false;
    let ceremony = passkeys::start_sign_in(&server.state, None, false)
        .await
        .unwrap();
    let answer = assert_with(&mut key, &ceremony, origin(&server));
    refused(
        passkeys::finish_sign_in(&server.state, &ceremony.id, &answer).await,
        "no user verification",
    );
    // Registration without it is refused too.
    let ceremony = passkeys::start_registration(&server.state, &alice)
        .await
        .unwrap();
    let answer: Value = lazy_registration(&ceremony.options, &origin(&server));
    assert!(
        passkeys::finish_registration(
            &server.state,
            &alice,
            &ceremony.id,
            &answer.to_string(),
            "x"
        )
        .await
        .is_err()
    );
}

/// A registration answer from an authenticator that does not verify the user.
fn lazy_registration(options: &Value, origin: &str) -> Value {
    SoftPasskey::register_unverified(options, origin).1
}
