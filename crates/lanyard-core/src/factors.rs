//! Second factors as a service: enrolling a one-time-code generator (TOTP, RFC 6238: SHA-1,
//! 6 digits, 30 s, what authenticator apps expect), checking a code at sign-in (a step
//! either side tolerated, a step never accepted twice), recovery codes (ten, shown once,
//! stored as keyed hashes, single use), removing factors, and resetting them all. Every
//! change and every use is audited; throttling the checks is the caller's (`lockout`), as
//! for passwords.

use rand::{Rng, RngExt};
use totp_rs::{Algorithm, Totp};

use crate::Core;
use crate::error::ServiceError;
use crate::mail::Notice;
use crate::model::{Factor, FactorKind, RECOVERY_CODES, factor_name};
use crate::revoke::{self, Outcome, Subject};
use crate::signals::{self, Change, Credential, Signal};

/// Seconds per time step.
const STEP: u64 = 30;

/// Bytes of a new seed (160 bits, RFC 4226 §4's recommendation).
const SEED_BYTES: usize = 20;

/// Recovery codes are written with these letters and digits (no 0/o, 1/l/i).
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";

/// Characters of a recovery code (shown as two groups of five: about 50 bits).
const RECOVERY_LEN: usize = 10;

/// A one-time-code generator being set up: its seed, and how an app is given it.
#[derive(Clone)]
pub struct TotpSetup {
    /// The seed (kept by the page between showing it and the confirming code).
    pub seed: Vec<u8>,
    /// The seed in base32, for typing into an app.
    pub secret: String,
    /// The `otpauth://totp/...` URI (for the QR code and to copy).
    pub uri: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup([redacted])")
    }
}

/// What a second-step code turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUsed {
    /// A one-time code of this factor.
    Totp {
        /// The factor's id.
        factor: String,
    },
    /// A recovery code (now used up).
    Recovery {
        /// How many are left.
        left: u64,
    },
}

fn totp(seed: &[u8], label: Option<(&str, &str)>) -> Result<Totp, ServiceError> {
    let mut builder = totp_rs::Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(STEP)
        .with_secret(seed.to_vec());
    if let Some((issuer, account)) = label {
        // The otpauth label may not hold a colon (it separates issuer and account).
        builder = builder
            .with_issuer(Some(issuer.replace(':', " ")))
            .with_account_name(account.replace(':', " "));
    }
    builder
        .build()
        .map_err(|e| ServiceError::Unavailable(format!("one-time codes: {e}")))
}

/// What an authenticator app shows the codes under: the issuer's host.
fn issuer_label(state: &Core) -> String {
    url::Url::parse(&state.config.issuer)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("Lanyard ({h})")))
        .unwrap_or_else(|| "Lanyard".to_owned())
}

/// A new seed for `username`, not yet stored: the page shows it and keeps it until the
/// person confirms it with a code ([`enrol_totp`]).
pub fn new_totp(state: &Core, username: &str) -> Result<TotpSetup, ServiceError> {
    let mut seed = vec![0u8; SEED_BYTES];
    rand::rng().fill_bytes(&mut seed);
    totp_setup(state, username, seed)
}

/// How an app is given `seed` (the page rebuilds it from the seed it kept).
pub fn totp_setup(state: &Core, username: &str, seed: Vec<u8>) -> Result<TotpSetup, ServiceError> {
    let generator = totp(&seed, Some((&issuer_label(state), username)))?;
    let uri = generator
        .to_url()
        .map_err(|e| ServiceError::Unavailable(format!("one-time codes: {e}")))?;
    Ok(TotpSetup {
        secret: generator.secret().to_base32(),
        seed,
        uri,
    })
}

/// The time step whose code `code` is under `seed` now, a step either side tolerated.
fn matching_step(state: &Core, seed: &[u8], code: &str) -> Result<Option<i64>, ServiceError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now = u64::try_from(state.clock.now().as_secs()).unwrap_or(0);
    Ok(totp(seed, None)?
        .check(&code, now)
        .and_then(|step| i64::try_from(step).ok()))
}

/// Stores the generator of `seed` for `sub` if `code` is one of its codes now (which is
/// then used up). `Ok(None)`: the code is wrong, nothing stored.
pub async fn enrol_totp(
    state: &Core,
    sub: &str,
    name: &str,
    seed: &[u8],
    code: &str,
) -> Result<Option<Factor>, ServiceError> {
    let name = factor_name(name, "Authenticator app")?;
    let Some(step) = matching_step(state, seed, code)? else {
        let event = state
            .event(sub, "factor.add")
            .target(format!("sub:{sub}"))
            .outcome(crate::model::FAILURE)
            .detail(serde_json::json!({ "kind": "totp", "reason": "wrong code" }));
        state.audit.record(event).await;
        return Ok(None);
    };
    let id = crate::crypto::random_token(12);
    let now = state.clock.now();
    let factor = state
        .db
        .factors()
        .add_totp(&id, sub, &name, seed, now)
        .await?;
    state.db.factors().use_step(&id, step, now).await?;
    let event = state
        .event(sub, "factor.add")
        .target(format!("sub:{sub}"))
        .detail(serde_json::json!({ "kind": "totp", "factor": id, "name": name }));
    state.audit.record(event).await;
    let what = format!("An authenticator app ({name})");
    crate::mail::notify_sub(state, sub, Notice::FactorAdded { what }).await;
    signals::credential_changed(state, sub, Credential::App, Change::Create, sub).await;
    Ok(Some(factor))
}

/// Checks `code` as the second step of `sub`'s sign-in: a one-time code of one of their
/// generators not used before, or one of their recovery codes. `Ok(None)`: neither.
/// Audited either way (`factor.use`); throttling is the caller's.
pub async fn check_code(
    state: &Core,
    sub: &str,
    code: &str,
) -> Result<Option<CodeUsed>, ServiceError> {
    let now = state.clock.now();
    let mut replayed = false;
    let mut used = None;
    for (id, seed) in state.db.factors().totp_seeds(sub).await? {
        if let Some(step) = matching_step(state, &seed, code)? {
            if state.db.factors().use_step(&id, step, now).await? {
                used = Some(CodeUsed::Totp { factor: id });
                break;
            }
            replayed = true;
        }
    }
    if used.is_none() && !replayed {
        let normalised = normalise_recovery_code(code);
        if normalised.len() == RECOVERY_LEN {
            let hash = state.server_keys.hash_recovery_code(&normalised);
            if state.db.factors().use_recovery_code(sub, &hash).await? {
                let left = state.db.factors().recovery_codes_left(sub).await?;
                used = Some(CodeUsed::Recovery { left });
            }
        }
    }
    let event = state.event(sub, "factor.use").target(format!("sub:{sub}"));
    let event = match &used {
        Some(CodeUsed::Totp { factor }) => {
            event.detail(serde_json::json!({ "kind": "totp", "factor": factor }))
        }
        Some(CodeUsed::Recovery { left }) => {
            event.detail(serde_json::json!({ "kind": "recovery_code", "left": left }))
        }
        None => event
            .outcome(crate::model::FAILURE)
            .detail(serde_json::json!({
                "reason": if replayed { "code already used" } else { "wrong code" },
            })),
    };
    state.audit.record(event).await;
    Ok(used)
}

/// Lower case, without the dash and spaces people type.
fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Ten new recovery codes for `sub`, replacing any earlier ones; shown once (only their
/// hashes are kept).
pub async fn new_recovery_codes(
    state: &Core,
    sub: &str,
    actor: &str,
) -> Result<Vec<String>, ServiceError> {
    let codes: Vec<String> = {
        let mut rng = rand::rng();
        (0..RECOVERY_CODES)
            .map(|_| {
                let raw: String = (0..RECOVERY_LEN)
                    .map(|_| {
                        char::from(RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())])
                    })
                    .collect();
                format!("{}-{}", &raw[..5], &raw[5..])
            })
            .collect()
    };
    let hashes: Vec<String> = codes
        .iter()
        .map(|c| {
            state
                .server_keys
                .hash_recovery_code(&normalise_recovery_code(c))
        })
        .collect();
    state
        .db
        .factors()
        .replace_recovery_codes(sub, &hashes, state.clock.now())
        .await?;
    let event = state
        .event(actor, "recovery_codes.new")
        .target(format!("sub:{sub}"))
        .detail(serde_json::json!({ "count": codes.len() }));
    state.audit.record(event).await;
    Ok(codes)
}

/// The factors of `sub`, oldest first, and how many recovery codes are left.
pub async fn list(state: &Core, sub: &str) -> Result<(Vec<Factor>, u64), ServiceError> {
    let factors = state.db.factors().of_user(sub).await?;
    let left = state.db.factors().recovery_codes_left(sub).await?;
    Ok((factors, left))
}

/// Whether `sub` has a second factor (a generator or a passkey).
pub async fn has_second_factor(state: &Core, sub: &str) -> Result<bool, ServiceError> {
    Ok(!state.db.factors().of_user(sub).await?.is_empty())
}

/// Removes factor `id` of `sub`. Refused when it is the last one and the deployment
/// requires a second factor. The recovery codes go with the last factor.
pub async fn remove(state: &Core, sub: &str, id: &str, actor: &str) -> Result<(), ServiceError> {
    let factors = state.db.factors().of_user(sub).await?;
    let Some(factor) = factors.iter().find(|f| f.id == id) else {
        return Err(ServiceError::NotFound(format!("no factor {id}")));
    };
    if factors.len() == 1 && state.config.mfa_required {
        return Err(ServiceError::Invalid(
            "This is your only second factor, and this organisation requires one. Add another (an authenticator app or a passkey) before removing it.".to_owned(),
        ));
    }
    state.db.factors().remove(sub, id).await?;
    if factors.len() == 1 {
        state
            .db
            .factors()
            .replace_recovery_codes(sub, &[], state.clock.now())
            .await?;
    }
    let event = state
        .event(actor, "factor.remove")
        .target(format!("sub:{sub}"))
        .detail(serde_json::json!({ "kind": factor.kind.as_str(), "factor": id }));
    state.audit.record(event).await;
    let what = match factor.kind {
        FactorKind::Passkey => format!("The passkey {}", factor.name),
        _ => format!("The authenticator app {}", factor.name),
    };
    crate::mail::notify_sub(state, sub, Notice::FactorRemoved { what }).await;
    let credential = Credential::of(factor.kind);
    signals::credential_changed(state, sub, credential, Change::Delete, actor).await;
    Ok(())
}

/// Removes every factor and recovery code of `sub`, then ends their sessions and revokes
/// their tokens (whoever holds a session may have added the factors). `lanyard user mfa
/// reset` and the admin API.
pub async fn reset(state: &Core, sub: &str, actor: &str) -> Result<Outcome, ServiceError> {
    crate::users::get(state, sub).await?;
    let mut kinds: Vec<Credential> = state
        .db
        .factors()
        .of_user(sub)
        .await?
        .iter()
        .map(|f| Credential::of(f.kind))
        .collect();
    kinds.dedup();
    let removed = state.db.factors().remove_all(sub).await?;
    let outcome =
        revoke::revoke_as(state, Subject::Sub(sub.to_owned()), actor, "mfa.reset").await?;
    let event = state
        .event(actor, "factor.remove")
        .target(format!("sub:{sub}"))
        .detail(serde_json::json!({ "all": true, "factors": removed }));
    state.audit.record(event).await;
    if removed > 0 {
        let what = "Every passkey, authenticator app and recovery code".to_owned();
        crate::mail::notify_sub(state, sub, Notice::FactorRemoved { what }).await;
    }
    let signals = kinds
        .into_iter()
        .map(|credential| Signal::CredentialChange {
            sub: sub.to_owned(),
            credential,
            change: Change::Delete,
        })
        .collect();
    signals::emit(state, signals, actor).await;
    Ok(outcome)
}

/// The kind of each of `sub`'s factors (which second steps to offer).
pub async fn kinds(state: &Core, sub: &str) -> Result<Vec<FactorKind>, ServiceError> {
    let factors = state.db.factors().of_user(sub).await?;
    Ok(factors.into_iter().map(|f| f.kind).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_read_as_people_type_them() {
        assert_eq!(normalise_recovery_code(" AbCde-23456 "), "abcde23456");
        assert_eq!(normalise_recovery_code("abcde 23456"), "abcde23456");
    }
}
