//! The second step of a sign-in: after the password (or, for step-up, an existing session
//! that is too weak for the app), a one-time code or a recovery code; or, for a person who
//! must have a second factor and has none, setting one up there and then.
//!
//! Between the two steps the browser carries a [`Pending`] sign-in in a form field: what was
//! checked so far, MAC-sealed by the server, bound to the browser's CSRF cookie, valid five
//! minutes. Nothing in it is secret (the page shows the person their own username), and it
//! grants nothing alone: the second factor is still to be given, and its checks are counted
//! under the same keys as the password's (`lockout`, issue 11's rules).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lanyard_store::{Session, Timestamp};
use serde::{Deserialize, Serialize};

use crate::oauth::error::AuthorizeError;
use crate::oauth::signin::{Browser, SignInOutcome, paused};
use lanyard_core::Core;
use lanyard_core::crypto::{ServerKeys, same_secret};
use lanyard_core::factors;
use lanyard_core::lockout::{self, Key};
use lanyard_core::model::{Acr, FactorKind, User, amr_with};

/// How long a person has for the second step.
pub const PENDING_FOR: Duration = Duration::from_secs(300);

/// What the second step asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A second factor: a one-time code from their app, a recovery code, or a passkey.
    Code,
    /// A passkey, nothing less (the app asked for a phishing-resistant sign-in).
    Passkey,
    /// Setting up an authenticator app (they have no second factor, and one is required).
    Enrol,
}

/// A sign-in half done, carried by the browser between the two steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// Who.
    pub sub: String,
    /// Their username (the throttling keys, the page).
    pub username: String,
    /// What they did so far (`pwd`; for step-up, the session's).
    pub amr: Vec<String>,
    /// "Remember me" at the password step.
    pub remember_me: bool,
    /// Step-up: the session to strengthen, rather than starting a new one.
    pub sid: Option<String>,
    /// What is asked.
    pub step: Step,
    /// Until when (ms since the epoch).
    pub expires: i64,
}

/// The MAC purpose of a pending sign-in.
const PURPOSE: &str = "signin-second-step";

impl Pending {
    /// The form field's value, bound to the browser's CSRF token `csrf`.
    pub fn seal(&self, keys: &ServerKeys, csrf: &str) -> String {
        let json = serde_json::to_vec(&(self, csrf)).unwrap_or_default();
        keys.seal_cookie(PURPOSE, &URL_SAFE_NO_PAD.encode(json))
    }

    /// The pending sign-in in `sealed`, if the server made it for this browser (`csrf`) and
    /// it has not expired.
    pub fn open(keys: &ServerKeys, sealed: &str, csrf: &str, now: Timestamp) -> Option<Self> {
        let value = keys.open_cookie(PURPOSE, sealed)?;
        let json = URL_SAFE_NO_PAD.decode(value).ok()?;
        let (pending, bound): (Self, String) = serde_json::from_slice(&json).ok()?;
        (same_secret(&bound, csrf) && now.as_millis() < pending.expires).then_some(pending)
    }
}

/// What the app needs of `user` beyond what `amr` did: nothing, a second step, or something
/// they cannot give here (`Err`: `unmet_authentication_requirements`).
pub async fn next_step(
    state: &Core,
    user: &User,
    amr: &[String],
    required: Acr,
) -> Result<Result<Option<Step>, ()>, AuthorizeError> {
    let kinds = factors::kinds(state, &user.sub).await?;
    let done = Acr::of(amr);
    // A person who set up a second factor is asked for it at every password sign-in.
    let chose_mfa = !kinds.is_empty() && done < Acr::Mfa;
    if required == Acr::Phr && done < Acr::Phr {
        // Only a passkey is phishing-resistant; a code cannot make up for it.
        return Ok(if kinds.contains(&FactorKind::Passkey) {
            Ok(Some(Step::Passkey))
        } else {
            Err(())
        });
    }
    if done >= required && !chose_mfa {
        return Ok(Ok(None));
    }
    if !kinds.is_empty() {
        return Ok(Ok(Some(Step::Code)));
    }
    Ok(Ok(Some(Step::Enrol)))
}

/// A pending sign-in for `user` after `amr`, asking for `step`.
pub fn pending(
    state: &Core,
    user: &User,
    amr: Vec<String>,
    remember_me: bool,
    sid: Option<String>,
    step: Step,
) -> Pending {
    Pending {
        sub: user.sub.clone(),
        username: user.username.clone(),
        amr,
        remember_me,
        sid,
        step,
        expires: state.clock.now().plus(PENDING_FOR).as_millis(),
    }
}

/// The message when the code is wrong.
const WRONG_CODE: &str = "That code is not right, or was used already. Enter the current code from your authenticator app, or one of your recovery codes.";

/// Checks `code` for `pending` (counted before it is checked, as passwords are). `Ok(Ok)`:
/// the session, new or strengthened.
pub async fn complete(
    state: &Core,
    target: &str,
    pending: &Pending,
    code: &str,
    browser: &Browser,
) -> Result<Result<Session, SignInOutcome>, AuthorizeError> {
    if code.trim().is_empty() {
        return Ok(Err(refused("Enter the code from your authenticator app.")));
    }
    if pending.step == Step::Passkey {
        return Ok(Err(refused(
            "This app needs your passkey: a code will not do.",
        )));
    }
    let keys = Key::signin(&pending.username, browser.ip.as_deref());
    let wait_if_wrong = match lockout::attempt(state, &keys).await? {
        Ok(wait) => wait,
        Err(wait) => return Ok(Err(paused(wait))),
    };
    let Some(user) = usable_user(state, &pending.sub).await? else {
        return Ok(Err(refused(
            "This account can no longer sign in. Ask your administrator.",
        )));
    };
    if factors::check_code(state, &user.sub, code).await?.is_none() {
        lanyard_core::metrics::signin("failure");
        return Ok(Err(match wait_if_wrong {
            Some(wait) => paused(wait),
            None => refused(WRONG_CODE),
        }));
    }
    lockout::clear_all(state, &keys).await?;
    match finish(state, target, pending, &user, &["otp"], browser).await? {
        Some(session) => Ok(Ok(session)),
        None => Ok(Err(session_gone())),
    }
}

/// The second step done with a passkey (`signed_in`, checked already, must be the pending
/// person's): the session, new or strengthened.
pub async fn complete_with_passkey(
    state: &Core,
    target: &str,
    pending: &Pending,
    signed_in: &lanyard_core::passkeys::PasskeySignIn,
    browser: &Browser,
) -> Result<Result<Session, SignInOutcome>, AuthorizeError> {
    if signed_in.sub != pending.sub {
        return Ok(Err(refused(
            "That passkey belongs to another account. Use your own, or start again.",
        )));
    }
    let Some(user) = usable_user(state, &pending.sub).await? else {
        return Ok(Err(refused(
            "This account can no longer sign in. Ask your administrator.",
        )));
    };
    let second: Vec<&str> = signed_in.amr.iter().map(String::as_str).collect();
    match finish(state, target, pending, &user, &second, browser).await? {
        Some(session) => Ok(Ok(session)),
        None => Ok(Err(session_gone())),
    }
}

/// Sets up the generator of `seed` if `code` is one of its codes, then signs in as
/// [`complete`] does. `Ok(Ok)`: the session and the new recovery codes (shown once).
pub async fn complete_enrolment(
    state: &Core,
    target: &str,
    pending: &Pending,
    seed: &[u8],
    code: &str,
    browser: &Browser,
) -> Result<Result<(Session, Vec<String>), SignInOutcome>, AuthorizeError> {
    let keys = Key::signin(&pending.username, browser.ip.as_deref());
    if let Err(wait) = lockout::attempt(state, &keys).await? {
        return Ok(Err(paused(wait)));
    }
    let Some(user) = usable_user(state, &pending.sub).await? else {
        return Ok(Err(refused(
            "This account can no longer sign in. Ask your administrator.",
        )));
    };
    if factors::enrol_totp(state, &user.sub, "", seed, code)
        .await?
        .is_none()
    {
        return Ok(Err(refused(
            "That code is not right. Check that your app shows codes for this account and enter the current one.",
        )));
    }
    lockout::clear_all(state, &keys).await?;
    let codes = factors::new_recovery_codes(state, &user.sub, &user.sub).await?;
    match finish(state, target, pending, &user, &["otp"], browser).await? {
        Some(session) => Ok(Ok((session, codes))),
        None => Ok(Err(session_gone())),
    }
}

async fn usable_user(state: &Core, sub: &str) -> Result<Option<User>, AuthorizeError> {
    Ok(state.db.users().by_sub(sub).await?.filter(|u| !u.disabled))
}

/// The session after the second step: the step-up session strengthened, or a new one.
/// `None`: the step-up session ended meanwhile.
async fn finish(
    state: &Core,
    target: &str,
    pending: &Pending,
    user: &User,
    second: &[&str],
    browser: &Browser,
) -> Result<Option<Session>, AuthorizeError> {
    let now = state.clock.now();
    let amr = amr_with(&pending.amr, second);
    let session = match &pending.sid {
        Some(sid) => {
            state
                .store
                .strengthen_session(sid, amr.clone(), now)
                .await?
        }
        None => Some(
            crate::oauth::signin::start_session(
                state,
                user,
                amr.clone(),
                pending.remember_me,
                browser,
            )
            .await?,
        ),
    };
    if let Some(session) = &session {
        lanyard_core::metrics::signin("success");
        let event = state
            .event(
                user.sub.clone(),
                if pending.sid.is_some() {
                    "signin.step_up"
                } else {
                    "signin"
                },
            )
            .target(target)
            .request_id(browser.request_id.clone())
            .detail(serde_json::json!({
                "sid": session.sid,
                "amr": amr,
                "acr": Acr::of(&amr).as_str(),
                "remember_me": pending.remember_me,
                "ip": browser.ip,
            }));
        state.audit.record(event).await;
    }
    Ok(session)
}

fn refused(message: &str) -> SignInOutcome {
    SignInOutcome::Refused {
        message: message.to_owned(),
        retry_after: None,
        forbidden: false,
    }
}

fn session_gone() -> SignInOutcome {
    refused("Your session ended while you were signing in. Go back to the app and sign in again.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ServerKeys {
        ServerKeys::new(&[1; 32], &[2; 32])
    }

    fn sample(expires: i64) -> Pending {
        Pending {
            sub: "s".to_owned(),
            username: "alice".to_owned(),
            amr: vec!["pwd".to_owned()],
            remember_me: true,
            sid: None,
            step: Step::Code,
            expires,
        }
    }

    #[test]
    fn a_pending_sign_in_opens_only_in_its_browser_and_in_time() {
        let k = keys();
        let sealed = sample(10_000).seal(&k, "csrf-a");
        let now = Timestamp::from_millis(9_999);
        assert_eq!(
            Pending::open(&k, &sealed, "csrf-a", now),
            Some(sample(10_000))
        );
        assert_eq!(
            Pending::open(&k, &sealed, "csrf-b", now),
            None,
            "another browser"
        );
        assert_eq!(
            Pending::open(&k, &sealed, "csrf-a", Timestamp::from_millis(10_000)),
            None,
            "expired"
        );
        let forged = sample(99_999_999).seal(&ServerKeys::new(&[1; 32], &[3; 32]), "csrf-a");
        assert_eq!(
            Pending::open(&k, &forged, "csrf-a", now),
            None,
            "another key"
        );
        let (value, mac) = sealed.rsplit_once('.').unwrap();
        let tampered = format!("{}A.{mac}", value);
        assert_eq!(Pending::open(&k, &tampered, "csrf-a", now), None);
    }
}
