//! Passkeys (WebAuthn Level 3) as a service, with `webauthn-rs`: registering one (user
//! verification required, a discoverable credential asked for, so that it can sign in without
//! a username), and checking an assertion, with a username (the second step after a password)
//! or without (the "Sign in with a passkey" button, autofill). The relying-party id is the
//! issuer's host and the only origin the issuer's.
//!
//! Each ceremony is two requests; its state waits in the token store between them and is taken
//! once (`TokenStore::put_once`), so an assertion answers one challenge, once. The signature
//! counter and backup flags are kept after every use; a counter that does not move forward
//! (a cloned authenticator) is refused and audited.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::Core;
use crate::error::ServiceError;
use crate::model::{FAILURE, Factor, User, factor_name};

/// How long a person has to answer a ceremony.
pub const CEREMONY_FOR: Duration = Duration::from_secs(300);

/// A ceremony begun: its id (the page sends it back) and the options for
/// `navigator.credentials.create()` or `.get()` (JSON, binary fields base64url).
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The id the answer must carry.
    pub id: String,
    /// `{"publicKey": {...}}`, and for sign-in maybe `"mediation"`.
    pub options: serde_json::Value,
}

/// What a ceremony waits with.
#[derive(Serialize, Deserialize)]
enum Waiting {
    /// Registering a passkey for `sub`.
    Register {
        sub: String,
        state: PasskeyRegistration,
    },
    /// Signing `sub` in (the second step).
    Known {
        sub: String,
        state: PasskeyAuthentication,
    },
    /// Signing someone in who has not said who they are.
    Anyone { state: DiscoverableAuthentication },
}

/// A passkey sign-in that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySignIn {
    /// Who.
    pub sub: String,
    /// The passkey (its factor id).
    pub factor: String,
    /// RFC 8176 `amr`: `hwk` (a device-bound key) or `swk` (one that can be synced), `user`
    /// (user verification), `mfa`.
    pub amr: Vec<String>,
}

/// The relying party: the issuer's host and origin.
fn webauthn(state: &Core) -> Result<Webauthn, ServiceError> {
    let origin = Url::parse(&state.config.issuer)
        .map_err(|e| ServiceError::Unavailable(format!("the issuer is not a URL: {e}")))?;
    let rp_id = origin
        .host_str()
        .ok_or_else(|| ServiceError::Unavailable("the issuer has no host".to_owned()))?
        .to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name("Lanyard").timeout(CEREMONY_FOR).build())
        .map_err(|e| ServiceError::Unavailable(format!("passkeys cannot work here: {e}")))
}

/// The WebAuthn user handle of `sub`: its 16 random bytes (a `sub` Lanyard made), else the
/// first 16 bytes of its SHA-256. Never personal data.
pub fn user_handle(sub: &str) -> Uuid {
    match URL_SAFE_NO_PAD.decode(sub) {
        Ok(bytes) if bytes.len() == 16 => Uuid::from_slice(&bytes).unwrap_or_default(),
        _ => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, sub.as_bytes());
            Uuid::from_slice(&digest.as_ref()[..16]).unwrap_or_default()
        }
    }
}

fn bad(what: &str, e: &WebauthnError) -> ServiceError {
    ServiceError::Invalid(format!("{what}: {e}"))
}

async fn wait(state: &Core, waiting: &Waiting) -> Result<String, ServiceError> {
    let json = serde_json::to_string(waiting)
        .map_err(|e| ServiceError::Unavailable(format!("ceremony state: {e}")))?;
    Ok(state.store.put_once(&json, CEREMONY_FOR).await?)
}

async fn take(state: &Core, id: &str) -> Result<Waiting, ServiceError> {
    let json = state.store.take_once(id).await?.ok_or_else(|| {
        ServiceError::Invalid(
            "this passkey request has expired or was answered already; start again".to_owned(),
        )
    })?;
    serde_json::from_str(&json)
        .map_err(|e| ServiceError::Unavailable(format!("ceremony state: {e}")))
}

fn options(value: impl Serialize) -> Result<serde_json::Value, ServiceError> {
    serde_json::to_value(value).map_err(|e| ServiceError::Unavailable(format!("options: {e}")))
}

fn passkeys_from(rows: &[(String, String)]) -> Result<Vec<Passkey>, ServiceError> {
    rows.iter()
        .map(|(id, data)| {
            serde_json::from_str(data).map_err(|e| {
                ServiceError::Unavailable(format!("passkey {id} does not read back: {e}"))
            })
        })
        .collect()
}

/// Begins registering a passkey for `user` (the caller has confirmed it is them).
pub async fn start_registration(state: &Core, user: &User) -> Result<Ceremony, ServiceError> {
    let webauthn = webauthn(state)?;
    let existing = passkeys_from(&state.db.factors().passkeys_of(&user.sub).await?)?;
    let exclude =
        (!existing.is_empty()).then(|| existing.iter().map(|p| p.cred_id().clone()).collect());
    let display = user.display_name.as_deref().unwrap_or(&user.username);
    let (challenge, registration) = webauthn
        .start_passkey_registration(user_handle(&user.sub), &user.username, display, exclude)
        .map_err(|e| bad("a passkey cannot be registered", &e))?;
    let mut options = options(challenge)?;
    // A discoverable credential: it can then sign in without a username typed first.
    if let Some(selection) = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".to_owned(), "required".into());
        selection.insert("requireResidentKey".to_owned(), true.into());
    }
    let id = wait(
        state,
        &Waiting::Register {
            sub: user.sub.clone(),
            state: registration,
        },
    )
    .await?;
    Ok(Ceremony { id, options })
}

/// Finishes registering: `response` is the browser's `PublicKeyCredential` as JSON. Stores the
/// passkey named `name` and audits it.
pub async fn finish_registration(
    state: &Core,
    user: &User,
    ceremony: &str,
    response: &str,
    name: &str,
) -> Result<Factor, ServiceError> {
    let name = factor_name(name, "Passkey")?;
    let Waiting::Register {
        sub,
        state: registration,
    } = take(state, ceremony).await?
    else {
        return Err(ServiceError::Invalid(
            "this is not a passkey registration".to_owned(),
        ));
    };
    if sub != user.sub {
        return Err(ServiceError::Invalid(
            "this passkey registration is someone else's".to_owned(),
        ));
    }
    let credential: RegisterPublicKeyCredential = serde_json::from_str(response)
        .map_err(|e| ServiceError::field("credential", format!("not a passkey's answer: {e}")))?;
    let passkey = match webauthn(state)?.finish_passkey_registration(&credential, &registration) {
        Ok(passkey) => passkey,
        Err(e) => {
            audit_failure(state, &user.sub, "factor.add", &e).await;
            return Err(bad("the passkey was not accepted", &e));
        }
    };
    let id = URL_SAFE_NO_PAD.encode(passkey.cred_id().as_slice());
    let data = serde_json::to_string(&passkey)
        .map_err(|e| ServiceError::Unavailable(format!("passkey: {e}")))?;
    let factor = state
        .db
        .factors()
        .add_passkey(&id, &user.sub, &name, &data, state.clock.now())
        .await?;
    let event = state
        .event(user.sub.clone(), "factor.add")
        .target(format!("sub:{}", user.sub))
        .detail(serde_json::json!({ "kind": "passkey", "factor": id, "name": name }));
    state.audit.record(event).await;
    let what = format!("A passkey named {name}");
    crate::mail::notify(state, user, crate::mail::Notice::FactorAdded { what }).await;
    crate::signals::credential_changed(
        state,
        &user.sub,
        crate::signals::Credential::Passkey,
        crate::signals::Change::Create,
        &user.sub,
    )
    .await;
    Ok(factor)
}

/// Begins a passkey sign-in: for `user` (the second step: only their passkeys are offered),
/// or for whoever answers (`None`: a discoverable credential names its owner). `conditional`:
/// the options ask for autofill (`mediation: conditional`) rather than a dialog.
pub async fn start_sign_in(
    state: &Core,
    user: Option<&User>,
    conditional: bool,
) -> Result<Ceremony, ServiceError> {
    let webauthn = webauthn(state)?;
    let (options, waiting) = match user {
        Some(user) => {
            let passkeys = passkeys_from(&state.db.factors().passkeys_of(&user.sub).await?)?;
            if passkeys.is_empty() {
                return Err(ServiceError::Invalid(
                    "this account has no passkey".to_owned(),
                ));
            }
            let (challenge, auth) = webauthn
                .start_passkey_authentication(&passkeys)
                .map_err(|e| bad("a passkey sign-in cannot start", &e))?;
            (
                options(challenge)?,
                Waiting::Known {
                    sub: user.sub.clone(),
                    state: auth,
                },
            )
        }
        None => {
            let (challenge, auth) = webauthn
                .start_discoverable_authentication()
                .map_err(|e| bad("a passkey sign-in cannot start", &e))?;
            let mut options = options(challenge)?;
            if !conditional && let Some(o) = options.as_object_mut() {
                o.remove("mediation");
            }
            (options, Waiting::Anyone { state: auth })
        }
    };
    let id = wait(state, &waiting).await?;
    Ok(Ceremony { id, options })
}

/// Finishes a passkey sign-in: `response` is the browser's `PublicKeyCredential` as JSON.
/// `Err(Invalid)` for every assertion that does not hold (wrong origin or relying party, a
/// bad signature, no user verification, an unknown or someone else's passkey, a ceremony
/// answered already, a counter that went backwards), each audited.
pub async fn finish_sign_in(
    state: &Core,
    ceremony: &str,
    response: &str,
) -> Result<PasskeySignIn, ServiceError> {
    let waiting = take(state, ceremony).await?;
    let credential: PublicKeyCredential = serde_json::from_str(response)
        .map_err(|e| ServiceError::field("credential", format!("not a passkey's answer: {e}")))?;
    let webauthn = webauthn(state)?;
    let factor = URL_SAFE_NO_PAD.encode(credential.get_credential_id());
    let Some((sub, data)) = state.db.factors().passkey(&factor).await? else {
        audit_unknown(state, &factor).await;
        return Err(ServiceError::Invalid(
            "this passkey is not registered here".to_owned(),
        ));
    };
    let mut passkey: Passkey = serde_json::from_str(&data)
        .map_err(|e| ServiceError::Unavailable(format!("passkey {factor}: {e}")))?;
    let result = match waiting {
        Waiting::Known {
            sub: expected,
            state: auth,
        } if expected == sub => webauthn.finish_passkey_authentication(&credential, &auth),
        Waiting::Anyone { state: auth } => {
            // The user handle the authenticator returns must be the passkey owner's.
            match webauthn.identify_discoverable_authentication(&credential) {
                Ok((handle, _)) if handle == user_handle(&sub) => {
                    webauthn.finish_discoverable_authentication_v2(&credential, auth, &passkey)
                }
                Ok(_) => Err(WebauthnError::InvalidUserUniqueId),
                Err(e) => Err(e),
            }
        }
        _ => Err(WebauthnError::CredentialNotFound),
    };
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            audit_failure(state, &sub, "factor.use", &e).await;
            return Err(bad("the passkey was not accepted", &e));
        }
    };
    passkey.update_credential(&result);
    let data = serde_json::to_string(&passkey)
        .map_err(|e| ServiceError::Unavailable(format!("passkey: {e}")))?;
    state
        .db
        .factors()
        .used_passkey(&factor, &data, state.clock.now())
        .await?;
    let key = if result.backup_eligible() {
        "swk"
    } else {
        "hwk"
    };
    let amr: Vec<String> = [key, "user", "mfa"].map(str::to_owned).to_vec();
    let event = state
        .event(sub.clone(), "factor.use")
        .target(format!("sub:{sub}"))
        .detail(serde_json::json!({
            "kind": "passkey",
            "factor": factor,
            "counter": result.counter(),
            "backed_up": result.backup_state(),
        }));
    state.audit.record(event).await;
    Ok(PasskeySignIn { sub, factor, amr })
}

async fn audit_failure(state: &Core, sub: &str, action: &str, e: &WebauthnError) {
    let reason = match e {
        WebauthnError::CredentialPossibleCompromise => {
            "the signature counter did not move forward (a cloned authenticator?)".to_owned()
        }
        other => other.to_string(),
    };
    if matches!(e, WebauthnError::CredentialPossibleCompromise) {
        tracing::warn!(%sub, "a passkey's signature counter went backwards");
    }
    let event = state
        .event(sub, action)
        .target(format!("sub:{sub}"))
        .outcome(FAILURE)
        .detail(serde_json::json!({ "kind": "passkey", "reason": reason }));
    state.audit.record(event).await;
}

async fn audit_unknown(state: &Core, factor: &str) {
    let event = state
        .event("anonymous", "factor.use")
        .outcome(FAILURE)
        .detail(
            serde_json::json!({ "kind": "passkey", "reason": "unknown passkey", "factor": factor }),
        );
    state.audit.record(event).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_handle_is_the_subs_random_bytes_or_a_hash() {
        let sub = "4yq8AAAAAAAAAAAAAAAAAA";
        assert_eq!(
            user_handle(sub).as_bytes()[..3],
            URL_SAFE_NO_PAD.decode(sub).unwrap()[..3]
        );
        assert_eq!(
            user_handle("alice@example.com"),
            user_handle("alice@example.com")
        );
        assert_ne!(
            user_handle("alice@example.com"),
            user_handle("bob@example.com")
        );
    }
}
