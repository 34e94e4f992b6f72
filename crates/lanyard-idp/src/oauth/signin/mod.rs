//! Signing in with a username and password, then continuing the authorization request.
//!
//! Every failure looks the same to the person and takes about as long: "Incorrect username or
//! password", whether the user exists or typed the wrong password (an unknown user is
//! checked against a dummy argon2 hash). Only the right password of a disabled account is
//! told so (403): whoever sees that knows the password already. Repeated failures slow down and
//! then lock the username at that address and the address (`lockout`), for known and unknown
//! usernames alike; the attempt is counted before the password hash runs.

pub mod mfa;

use std::time::Duration;

use lanyard_store::{NewSession, Session};

use self::mfa::Pending;
use crate::oauth::authorize::{AfterSignIn, proceed};
use crate::oauth::error::AuthorizeError;
use crate::oauth::request::AuthorizationRequest;
use lanyard_core::Core;
use lanyard_core::lockout::{self, Key};
use lanyard_core::model::{Acr, AuditEvent, FAILURE, User};

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
    /// The password was right; a second factor is next (or setting one up).
    SecondStep(Box<Pending>),
    /// The password was right, but the app needs a strength this person cannot give here
    /// (`unmet_authentication_requirements`).
    Unmet,
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
    let required = request.required_acr(&state.config);
    match authenticate(
        state,
        &request.client.client_id,
        credentials,
        browser,
        required,
    )
    .await?
    {
        Err(SignInOutcome::Unmet) => Err(unmet(request)),
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

/// `unmet_authentication_requirements` (OpenID Connect Core errata, RFC 9470's sibling):
/// back to the app, which asked for more than this person can give.
pub fn unmet(request: &AuthorizationRequest) -> AuthorizeError {
    AuthorizeError::Redirect {
        to: request.reply.clone(),
        code: "unmet_authentication_requirements",
        description: "the user cannot sign in as strongly as this app asks".to_owned(),
    }
}

/// Checks the credentials (waits and locks included) and, if they are right and nothing
/// more is needed for `required`, starts a new session. `target` says what the sign-in is
/// for in the audit trail (a client id, or `account`). `Err` inside: refused, with what to
/// tell the person, or a second step to take.
pub async fn authenticate(
    state: &Core,
    target: &str,
    credentials: Credentials<'_>,
    browser: &Browser,
    required: Acr,
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
    let amr = vec!["pwd".to_owned()];
    match mfa::next_step(state, &user, &amr, required).await? {
        Ok(None) => {}
        Ok(Some(step)) => {
            let pending = mfa::pending(state, &user, amr, credentials.remember_me, None, step);
            return Ok(Err(SignInOutcome::SecondStep(Box::new(pending))));
        }
        Err(()) => return Ok(Err(SignInOutcome::Unmet)),
    }
    lanyard_core::metrics::signin("success");
    let session = start_session(state, &user, amr, credentials.remember_me, browser).await?;
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

/// Starts a new SSO session for `user`, who signed in with `amr` just now.
pub async fn start_session(
    state: &Core,
    user: &User,
    amr: Vec<String>,
    remember_me: bool,
    browser: &Browser,
) -> Result<Session, AuthorizeError> {
    let lifetimes = &state.config.lifetimes;
    let (idle, max) = if remember_me {
        (lifetimes.remember_me_idle, lifetimes.remember_me_max)
    } else {
        (lifetimes.session_idle, lifetimes.session_max)
    };
    Ok(state
        .store
        .create_session(NewSession {
            sub: user.sub.clone(),
            auth_time: state.clock.now(),
            amr,
            remember_me,
            idle_timeout: idle,
            absolute_lifetime: max,
            user_agent: browser.user_agent.clone(),
            ip: browser.ip.clone(),
        })
        .await?)
}

/// Attempts are paused: what to tell the person (the same whether the account exists).
pub fn paused(wait: Duration) -> SignInOutcome {
    SignInOutcome::Refused {
        message: format!(
            "Too many failed sign-in attempts. For your security, wait {} before trying again. If you have forgotten your password, use \"Forgot your password?\" below.",
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
