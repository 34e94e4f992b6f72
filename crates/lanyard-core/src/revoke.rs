//! Revoking by admin: a token, a `jti`, a user, a session or a client. Each ends what can
//! mint new tokens first (sessions, refresh-token families), then revokes the access tokens
//! already out (a `jti` entry or a watermark, recorded durably and pushed to every app), so
//! a call that fails half-way (503) leaves nothing a retry would not complete.

use lanyard_store::{SessionId, Target, Timestamp};
use serde::Serialize;

use crate::Core;
use crate::error::ServiceError;
use crate::model::RefreshPayload;
use crate::revocation;
use crate::signals::{self, Signal};

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A refresh token (its family and the access tokens it issued) or an access token.
    Token(String),
    /// One access token by `jti`, whether or not Lanyard still knows its expiry.
    Jti(String),
    /// Everything of a user: sessions, refresh families, access tokens.
    Sub(String),
    /// One SSO session and every token issued in it.
    Sid(String),
    /// Everything issued to a client.
    ClientId(String),
}

/// What a revocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// The SSO sessions ended (their `sid`s).
    pub sessions_ended: Vec<String>,
    /// How many refresh-token families were revoked.
    pub refresh_families_revoked: usize,
    /// How many access tokens were revoked one by one (by `jti`).
    pub access_tokens_revoked: usize,
    /// The entry now in force in the revocation lists, if one was set.
    pub entry: Option<Entry>,
    /// The sessions ended, as they were: their apps are told (back-channel logout).
    #[serde(skip)]
    pub ended: Vec<lanyard_store::Session>,
}

/// One entry of the revocation lists, as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    /// `jti`, `sid`, `sub`, `client_id` or `grant` (one user at one client, when they
    /// withdrew their consent).
    pub kind: String,
    /// The revoked `jti`, `sid`, `sub` or client id; for `grant`, `<client_id> <sub>`.
    pub value: String,
    /// `jti`: the token's expiry. Otherwise the watermark: tokens issued at or before it are
    /// refused. Seconds since the Unix epoch.
    pub at: i64,
    /// The entry is dropped after this instant, when no token it covers can still be valid.
    /// Seconds since the Unix epoch.
    pub until: i64,
}

impl Entry {
    /// The entry of `revocation`.
    pub fn of(revocation: &lanyard_store::Revocation) -> Self {
        // The names the SQL record uses, so the API, the record and the metrics agree.
        let (kind, value) = crate::db::target_columns(&revocation.target);
        Self {
            kind: kind.to_owned(),
            value: value.to_owned(),
            at: revocation.at.as_secs(),
            until: revocation.until.as_secs(),
        }
    }
}

impl Subject {
    fn describe(&self) -> (&'static str, &str) {
        match self {
            // Never the token itself in the trail.
            Subject::Token(_) => ("token", "-"),
            Subject::Jti(v) => ("jti", v),
            Subject::Sub(v) => ("sub", v),
            Subject::Sid(v) => ("sid", v),
            Subject::ClientId(v) => ("client_id", v),
        }
    }
}

/// Revokes `subject` on behalf of `actor` (for example `admin:ops`, `cli`), and records it
/// in the audit trail, success or failure. The apps of every session it ends are told
/// (back-channel logout, in the background), and so are Shared Signals receivers.
pub async fn revoke(state: &Core, subject: Subject, actor: &str) -> Result<Outcome, ServiceError> {
    revoke_as(state, subject, actor, "admin.revoke").await
}

/// Moves the revocation of `target` (a user or a client that can no longer get tokens) past
/// the copies other nodes keep of its row for up to a second (`recent.rs`): a token one of
/// them issued from its copy after the revocation is refused too. Returns the entry.
pub(crate) async fn revoke_beyond_copies(
    state: &Core,
    target: Target,
    actor: &str,
) -> Result<Entry, ServiceError> {
    let beyond_copies = state
        .clock
        .now()
        .plus(crate::recent::RECENT + std::time::Duration::from_secs(1));
    let event = revocation::revoke(state, target, beyond_copies, actor).await?;
    Ok(Entry::of(&event.revocation))
}

/// [`revoke`], recorded in the audit trail as `action` (`logout` when a person signs out).
pub async fn revoke_as(
    state: &Core,
    subject: Subject,
    actor: &str,
    action: &str,
) -> Result<Outcome, ServiceError> {
    let (kind, value) = subject.describe();
    let target = format!("{kind}:{value}");
    let mut result = revoke_subject(state, subject.clone(), actor).await;
    if let Ok(done) = &mut result {
        let ended = std::mem::take(&mut done.ended);
        let signals = ended
            .iter()
            .map(|s| Signal::SessionRevoked {
                sub: s.sub.clone(),
                sid: s.sid.to_string(),
            })
            .collect();
        crate::logout::notify(state, ended).await;
        signals::emit(state, signals, actor).await;
    }
    let mut event = state.event(actor, action).target(target).result(&result);
    if let Ok(done) = &result {
        event = event.detail(done);
    }
    state.audit.record(event).await;
    result
}

async fn revoke_subject(
    state: &Core,
    subject: Subject,
    actor: &str,
) -> Result<Outcome, ServiceError> {
    let now = state.clock.now();
    let mut outcome = Outcome::default();
    let target = match subject {
        Subject::Token(token) => return revoke_token(state, &token, actor).await,
        Subject::Jti(jti) => {
            // Its expiry is unknown here: kept as long as any access token can live.
            let exp = now.plus(state.store.config().max_access_token_lifetime);
            let event = revocation::revoke(state, Target::Jti(jti), exp, actor).await?;
            outcome.access_tokens_revoked = 1;
            outcome.entry = Some(Entry::of(&event.revocation));
            return Ok(outcome);
        }
        Subject::Sub(sub) => {
            if state.db.users().by_sub(&sub).await?.is_none() {
                return Err(ServiceError::NotFound(format!("no user has sub {sub:?}")));
            }
            outcome.ended = state.store.end_user_sessions(&sub).await?;
            outcome.sessions_ended = outcome.ended.iter().map(|s| s.sid.to_string()).collect();
            outcome.refresh_families_revoked = state.store.revoke_user_families(&sub).await?.len();
            Target::Sub(sub)
        }
        Subject::ClientId(client_id) => {
            if state.db.clients().get(&client_id).await?.is_none() {
                return Err(ServiceError::NotFound(format!(
                    "no client has client_id {client_id:?}"
                )));
            }
            outcome.refresh_families_revoked =
                state.store.revoke_client_families(&client_id).await?.len();
            Target::ClientId(client_id)
        }
        Subject::Sid(sid) => {
            if SessionId::parse(&sid).is_none() {
                return Err(ServiceError::NotFound(format!(
                    "{sid:?} is not a session id Lanyard issues"
                )));
            }
            // An ended session's tokens outlive it by up to their lifetime, so a `sid`
            // Lanyard no longer holds is still revoked. Refresh tokens issued in the session
            // go too, offline ones included: a stolen laptop keeps nothing.
            if let Some(session) = state.store.end_session(&sid).await? {
                for family in state.store.user_families(&session.sub).await? {
                    if !RefreshPayload::issued_in(&family, &sid) {
                        continue;
                    }
                    // By jti too: tokens refreshed from an offline family carry no sid.
                    if let Some(n) = revocation::end_family(state, &family.id, actor).await? {
                        outcome.refresh_families_revoked += 1;
                        outcome.access_tokens_revoked += n;
                    }
                }
                outcome.sessions_ended.push(sid.clone());
                outcome.ended.push(session);
            }
            Target::Sid(sid)
        }
    };
    // The watermark is taken after sessions and families ended: a token minted from a
    // family in the meantime was issued before it, and is covered.
    let event = revocation::revoke(state, target, state.clock.now(), actor).await?;
    outcome.entry = Some(Entry::of(&event.revocation));
    Ok(outcome)
}

async fn revoke_token(state: &Core, token: &str, actor: &str) -> Result<Outcome, ServiceError> {
    let mut outcome = Outcome::default();
    if let Some(info) = state.store.inspect_refresh(token).await? {
        outcome.access_tokens_revoked = revocation::revoke_family(state, &info, actor).await?;
        outcome.refresh_families_revoked = 1;
        return Ok(outcome);
    }
    let claims = state
        .keys
        .verify_access_token(token, &state.config.issuer)
        .map_err(|_| {
            ServiceError::NotFound(
                "the token is not a live refresh or access token issued by this Lanyard (it may have expired)"
                    .to_owned(),
            )
        })?;
    let event = revocation::revoke(
        state,
        Target::Jti(claims.jti),
        Timestamp::from_secs(claims.exp),
        actor,
    )
    .await?;
    outcome.access_tokens_revoked = 1;
    outcome.entry = Some(Entry::of(&event.revocation));
    Ok(outcome)
}
