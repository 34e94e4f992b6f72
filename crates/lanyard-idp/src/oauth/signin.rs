//! Signing in with a username and password, then continuing the authorization request.
//!
//! Every failure looks the same to the person and takes about as long: "Incorrect username or
//! password", whether the user exists or typed the wrong password (an unknown user is
//! checked against a dummy argon2 hash). Only the right password of a disabled account is
//! told so (403): whoever sees that knows the password already. Repeated failures slow down and
//! then lock the username at that address and the address (`lockout`), for known and unknown
//! usernames alike; the attempt is counted before the password hash runs.

use std::time::Duration;

use lanyard_store::{NewSession, Session};

use crate::oauth::authorize::{AfterSignIn, proceed};
use crate::oauth::error::AuthorizeError;
use crate::oauth::request::AuthorizationRequest;
use lanyard_core::Core;
use lanyard_core::lockout::{self, Key};
use lanyard_core::model::{AuditEvent, FAILURE};

/// The one message for every failed sign-in.
pub const INCORRECT: &str = "Incorrect username or password.";

/// The message for the right password of a disabled account.
pub const DISABLED: &str = "This account is disabled, so you cannot sign in. If you think this is a mistake, ask your administrator.";

/// What the person typed.
pub struct Credentials<'a> {
    /// Username.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
    /// "Remember me" was ticked.
    pub remember_me: bool,
}

/// Where the sign-in came from, for the session record and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// Client IP.
    pub ip: Option<String>,
    /// This request's id.
    pub request_id: Option<String>,
}

/// How a sign-in attempt ended.
#[derive(Debug)]
pub enum SignInOutcome {
    /// Signed in: a new session, and what follows (the code, or the consent page).
    SignedIn {
        /// The new SSO session (a new `sid`: the pre-login session id, if any, is never reused).
        session: Box<Session>,
        /// What follows.
        next: AfterSignIn,
    },
    /// Not signed in: show the form again with this message.
    Refused {
        /// The message.
        message: String,
        /// Set when attempts are paused: how long (the page answers 429 with `Retry-After`).
        retry_after: Option<Duration>,
        /// The right password of a disabled account: signed in as someone who may not use
        /// Lanyard (the page answers 403).
        forbidden: bool,
    },
}

/// Checks the credentials; on success starts a session and answers the request (the code,
/// or the consent page).
pub async fn sign_in(
    state: &Core,
    request: &AuthorizationRequest,
    credentials: Credentials<'_>,
    browser: &Browser,
) -> Result<SignInOutcome, AuthorizeError> {
    match authenticate(state, &request.client.client_id, credentials, browser).await? {
        Err(refused) => Ok(refused),
        Ok(session) => {
            let next = proceed(state, request, &session).await?;
            Ok(SignInOutcome::SignedIn {
                session: Box::new(session),
                next,
            })
        }
    }
}

/// Checks the credentials (waits and locks included) and, if they are right, starts a new
/// session. `target` says what the sign-in is for in the audit trail (a client id, or
/// `account`). `Err` inside: refused, with what to tell the person.
pub async fn authenticate(
    state: &Core,
    target: &str,
    credentials: Credentials<'_>,
    browser: &Browser,
) -> Result<Result<Session, SignInOutcome>, AuthorizeError> {
    let username = credentials.username.trim();
    if username.is_empty() || credentials.password.is_empty() {
        return Ok(Err(SignInOutcome::Refused {
            message: "Enter your username and password.".to_owned(),
            retry_after: None,
            forbidden: false,
        }));
    }
    // The address's failures count after the check (an office's successes never do); the
    // username's keys count this attempt before the hash runs, in one step.
    let address: Vec<Key> = browser.ip.iter().map(|ip| Key::Ip(ip.clone())).collect();
    let keys = Key::signin(username, browser.ip.as_deref());
    let counted = match lockout::blocked(state, &address).await? {
        Some(wait) => Err(wait),
        None => lockout::attempt(state, &keys).await?,
    };
    let wait_if_wrong = match counted {
        Ok(wait) => wait,
        Err(wait) => {
            audit_failure(state, target, browser, "anonymous", "paused").await;
            lanyard_core::metrics::signin("locked");
            return Ok(Err(paused(wait)));
        }
    };
    let user = if username.len() > 256 {
        None
    } else {
        state.db.users().by_username(username).await?
    };
    let matched = state
        .passwords
        .verify(
            credentials.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await
        .map_err(|e| AuthorizeError::Unavailable(e.to_string()))?;
    let now = state.clock.now();
    let user = match user {
        Some(user) if matched && !user.disabled => user,
        // Only someone who knows the password learns that the account is disabled.
        Some(user) if matched => {
            audit_failure(state, target, browser, &user.sub, "user disabled").await;
            lanyard_core::metrics::signin("refused");
            return Ok(Err(SignInOutcome::Refused {
                message: DISABLED.to_owned(),
                retry_after: None,
                forbidden: true,
            }));
        }
        other => {
            let reason = match &other {
                None => "unknown user",
                Some(u) if u.disabled => "user disabled",
                Some(_) => "wrong password",
            };
            let actor = other.map_or_else(|| "anonymous".to_owned(), |u| u.sub);
            audit_failure(state, target, browser, &actor, reason).await;
            lanyard_core::metrics::signin("failure");
            let wait = lockout::failed(state, &address).await?.max(wait_if_wrong);
            return Ok(Err(match wait {
                Some(wait) => paused(wait),
                None => SignInOutcome::Refused {
                    message: INCORRECT.to_owned(),
                    retry_after: None,
                    forbidden: false,
                },
            }));
        }
    };
    lockout::clear_all(state, &keys).await?;
    lanyard_core::metrics::signin("success");
    let lifetimes = &state.config.lifetimes;
    let (idle, max) = if credentials.remember_me {
        (lifetimes.remember_me_idle, lifetimes.remember_me_max)
    } else {
        (lifetimes.session_idle, lifetimes.session_max)
    };
    let session = state
        .store
        .create_session(NewSession {
            sub: user.sub.clone(),
            auth_time: now,
            amr: vec!["pwd".to_owned()],
            remember_me: credentials.remember_me,
            idle_timeout: idle,
            absolute_lifetime: max,
            user_agent: browser.user_agent.clone(),
            ip: browser.ip.clone(),
        })
        .await?;
    let event = AuditEvent::new(now, user.sub.clone(), "signin")
        .target(target)
        .request_id(browser.request_id.clone())
        .detail(serde_json::json!({
            "sid": session.sid,
            "remember_me": credentials.remember_me,
            "ip": browser.ip,
        }));
    state.audit.record(event).await;
    Ok(Ok(session))
}

/// Attempts are paused: what to tell the person (the same whether the account exists).
fn paused(wait: Duration) -> SignInOutcome {
    SignInOutcome::Refused {
        message: format!(
            "Too many failed sign-in attempts. For your security, wait {} before trying again. If you have forgotten your password, ask your administrator to reset it.",
            lockout::wait_text(wait)
        ),
        retry_after: Some(wait),
        forbidden: false,
    }
}

async fn audit_failure(state: &Core, target: &str, browser: &Browser, actor: &str, reason: &str) {
    let event = state
        .event(actor, "signin")
        .target(target)
        .outcome(FAILURE)
        .request_id(browser.request_id.clone())
        .detail(serde_json::json!({ "reason": reason, "ip": browser.ip }));
    state.audit.record(event).await;
}
