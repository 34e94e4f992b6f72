//! What goes by e-mail: invitations (a person made without a password, who sets one by a
//! link), "Forgot your password?", and verified addresses. Each link is single use, bound
//! to one person and one purpose, stored as the SHA-256 hash of its token, built from the
//! issuer URL only, and made void by a newer link of its kind or by being used.
//!
//! A reset request answers the same whatever it names: the caller gets `Ok` before anything
//! is looked up (the lookup and the mail run in the background), and only the address's own
//! request count can refuse it.

use std::time::Duration;

use lanyard_store::Timestamp;

use crate::Core;
use crate::crypto::random_token;
use crate::error::ServiceError;
use crate::lockout::{self, Key};
use crate::mail::{self, Message, Notice};
use crate::model::{LinkPurpose, MailLink, User, check_display_name, check_email, check_username};
use crate::revoke::{self, Subject};
use crate::signals::{self, Change, Credential};
use crate::users;

/// A mail with a link, queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The mail's id in the outbox.
    pub mail_id: String,
    /// Where it goes.
    pub to: String,
    /// When its link stops working.
    pub expires_at: Timestamp,
}

/// Why a link cannot be used; each is a clear page.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// No such link (mistyped, cut short, or for another purpose).
    #[error("this link is not valid: it may have been copied incompletely")]
    Unknown,
    /// It was used already, or a newer one was sent.
    #[error("this link was used already, or a newer one was sent")]
    Used,
    /// It ran out.
    #[error("this link has expired")]
    Expired,
    /// Its person is gone or disabled, or the address it was sent to is no longer theirs.
    #[error("this link no longer applies to the account")]
    Stale,
    /// Something else (a bad password, the database).
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<crate::db::DbError> for LinkError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Service(e.into())
    }
}

/// The token's stored form.
fn token_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The page a link of `purpose` opens.
pub fn path_of(purpose: LinkPurpose) -> &'static str {
    match purpose {
        LinkPurpose::Invitation => "/invitation",
        LinkPurpose::PasswordReset => "/reset-password",
        LinkPurpose::VerifyEmail => "/verify-email",
    }
}

/// Makes a link of `purpose` for `user` to `to` (older ones of its kind made void) and
/// queues the mail it goes in.
async fn send_link(
    core: &Core,
    user: &User,
    to: &str,
    purpose: LinkPurpose,
) -> Result<Sent, ServiceError> {
    let now = core.clock.now();
    let lifetime = match purpose {
        LinkPurpose::Invitation => core.config.mail.invitation_lifetime,
        LinkPurpose::PasswordReset => core.config.mail.reset_lifetime,
        LinkPurpose::VerifyEmail => core.config.mail.verification_lifetime,
    };
    let token = random_token(32);
    let link = MailLink {
        sub: user.sub.clone(),
        purpose,
        email: to.to_owned(),
        created_at: now,
        expires_at: now.plus(lifetime),
        used_at: None,
    };
    let links = core.db.mail_links();
    links.void(&user.sub, purpose, now).await?;
    links.insert(&token_hash(&token), &link).await?;
    let url = format!("{}?token={token}", core.config.url(path_of(purpose)));
    let message = match purpose {
        LinkPurpose::Invitation => Message::Invitation {
            username: user.username.clone(),
            link: url,
            valid_for: lifetime,
        },
        LinkPurpose::PasswordReset => Message::PasswordReset {
            username: user.username.clone(),
            link: url,
            valid_for: lifetime,
        },
        LinkPurpose::VerifyEmail => Message::VerifyEmail {
            link: url,
            valid_for: lifetime,
        },
    };
    let mail_id = mail::send(core, to, user.name(), &message).await?;
    Ok(Sent {
        mail_id,
        to: to.to_owned(),
        expires_at: link.expires_at,
    })
}

/// Someone to invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitee {
    /// The username they will sign in with.
    pub username: String,
    /// Where the invitation goes (verified when they follow it).
    pub email: String,
    /// Their display name.
    pub display_name: Option<String>,
}

/// Adds a person without a password and mails them a link (valid `invitation_lifetime`,
/// 72 hours by default) to set one. A person of that username who has not set a password
/// yet is invited again (a new link; the old one void), at the address given.
pub async fn invite(
    core: &Core,
    invitee: Invitee,
    actor: &str,
) -> Result<(User, Sent), ServiceError> {
    let result = async {
        check_username(&invitee.username)?;
        check_email(Some(&invitee.email))?;
        check_display_name(invitee.display_name.as_deref())?;
        let user = match core.db.users().by_username(&invitee.username).await? {
            Some(existing) if !existing.password_hash.is_empty() => {
                return Err(ServiceError::Conflict(format!(
                    "{} has a password already: they can sign in, or use \"Forgot your password?\"",
                    existing.username
                )));
            }
            Some(existing) => {
                users::rewrite(core, &existing.sub, |u| {
                    u.set_email(Some(invitee.email.clone()));
                    if invitee.display_name.is_some() {
                        u.display_name.clone_from(&invitee.display_name);
                    }
                    Ok(())
                })
                .await?
            }
            None => {
                let now = core.clock.now();
                let user = User {
                    sub: random_token(16),
                    username: invitee.username.clone(),
                    email: Some(invitee.email.clone()),
                    display_name: invitee.display_name.clone(),
                    // No password: nobody can sign in as them until they accept.
                    password_hash: String::new(),
                    disabled: false,
                    created_at: now,
                    updated_at: now,
                    external_id: None,
                    email_verified: false,
                    pending_email: None,
                };
                core.db.users().insert(&user).await?;
                user
            }
        };
        let sent = send_link(core, &user, &invitee.email, LinkPurpose::Invitation).await?;
        Ok((user, sent))
    }
    .await;
    core.record(actor, "user.invite", &invitee.username, &result)
        .await;
    result
}

/// Mails `user` (made without a password, with an address: a SCIM client made them, with
/// `scim_invite` on) an invitation.
pub async fn send_invitation(core: &Core, user: &User, actor: &str) -> Result<Sent, ServiceError> {
    let result = async {
        let to = user.email.clone().ok_or_else(|| {
            ServiceError::Conflict("the person has no address to send an invitation to".to_owned())
        })?;
        send_link(core, user, &to, LinkPurpose::Invitation).await
    }
    .await;
    core.record(actor, "user.invite", &user.username, &result)
        .await;
    result
}

/// Invites again the person `sub`, who has not set a password yet, at their address.
pub async fn reinvite(core: &Core, sub: &str, actor: &str) -> Result<Sent, ServiceError> {
    let user = users::get(core, sub).await?;
    let email = user.email.clone().ok_or_else(|| {
        ServiceError::Conflict("the person has no address to send an invitation to".to_owned())
    })?;
    invite(
        core,
        Invitee {
            username: user.username.clone(),
            email,
            display_name: None,
        },
        actor,
    )
    .await
    .map(|(_, sent)| sent)
}

/// The outcome a reset request may have for its caller: go on (`Ok`), or wait (this address
/// asked too often).
pub type Requested = Result<(), Duration>;

/// "Forgot your password?" for `typed` (a username or an address), asked from `ip`. Counts
/// the address's requests; then, in the background, finds the account(s) and mails each a
/// link, unless it was sent too many lately. The answer does not depend on any account.
pub async fn request_reset(core: &Core, typed: &str, ip: &str) -> Result<Requested, ServiceError> {
    let key = [Key::MailRequestIp(ip.to_owned())];
    if let Err(wait) = lockout::attempt(core, &key).await? {
        return Ok(Err(wait));
    }
    let typed = typed.trim().to_owned();
    let core = core.clone();
    let ip = ip.to_owned();
    tokio::spawn(async move {
        if let Err(e) = mail_reset_links(&core, &typed, &ip).await {
            tracing::warn!(error = %e, "a password-reset request could not be handled");
        }
    });
    Ok(Ok(()))
}

/// The background half of [`request_reset`].
async fn mail_reset_links(core: &Core, typed: &str, ip: &str) -> Result<(), ServiceError> {
    if typed.is_empty() || typed.chars().count() > 254 {
        return Ok(());
    }
    let mut people = match core.db.users().by_username(typed).await? {
        Some(user) => vec![user],
        None if typed.contains('@') => core.db.users().with_email(typed).await?,
        None => Vec::new(),
    };
    people.retain(|u| !u.disabled && u.email.is_some());
    if people.is_empty() {
        let event = core
            .event(format!("ip:{ip}"), "password.reset.request")
            .target(format!("username:{typed}"))
            .outcome("no_account");
        core.audit.record(event).await;
    }
    for user in people {
        let key = [Key::MailRequestAccount(user.sub.clone())];
        let outcome = match lockout::attempt(core, &key).await? {
            Err(_) => "too_many",
            Ok(_) => {
                let to = user.email.clone().unwrap_or_default();
                send_link(core, &user, &to, LinkPurpose::PasswordReset).await?;
                "sent"
            }
        };
        let event = core
            .event(format!("ip:{ip}"), "password.reset.request")
            .target(format!("sub:{}", user.sub))
            .outcome(outcome);
        core.audit.record(event).await;
    }
    Ok(())
}

/// An operator sends `sub` a password-reset link (no request count applies).
pub async fn send_reset(core: &Core, sub: &str, actor: &str) -> Result<Sent, ServiceError> {
    let result = async {
        let user = users::get(core, sub).await?;
        let to = user.email.clone().ok_or_else(|| {
            ServiceError::Conflict("the person has no address to send a link to".to_owned())
        })?;
        send_link(core, &user, &to, LinkPurpose::PasswordReset).await
    }
    .await;
    core.record(actor, "password.reset.send", sub, &result)
        .await;
    result
}

/// The link behind `token` and its person, if it may be used now (the pages show their
/// form only then; using it is [`reset_password`], [`accept_invitation`], [`verify_email`]).
pub async fn check_link(
    core: &Core,
    token: &str,
    purpose: LinkPurpose,
) -> Result<(MailLink, User), LinkError> {
    let link = core
        .db
        .mail_links()
        .find(&token_hash(token), purpose)
        .await?
        .ok_or(LinkError::Unknown)?;
    if link.used_at.is_some() {
        return Err(LinkError::Used);
    }
    if link.expires_at <= core.clock.now() {
        return Err(LinkError::Expired);
    }
    let user = core
        .db
        .users()
        .by_sub(&link.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(LinkError::Stale)?;
    Ok((link, user))
}

/// Uses the link: checked, then taken in one conditional write (of two requests with one
/// link, one gets it).
async fn take_link(
    core: &Core,
    token: &str,
    purpose: LinkPurpose,
) -> Result<(MailLink, User), LinkError> {
    let (_, user) = check_link(core, token, purpose).await?;
    let link = core
        .db
        .mail_links()
        .take(&token_hash(token), purpose, core.clock.now())
        .await?
        .ok_or(LinkError::Used)?;
    Ok((link, user))
}

/// Marks the address the link went to verified, if it is still the person's.
fn verified_by(user: &mut User, link: &MailLink) {
    if user
        .email
        .as_deref()
        .is_some_and(|e| e.eq_ignore_ascii_case(&link.email))
    {
        user.email_verified = true;
    }
}

/// Sets a new password through a reset link: the password checked first (a refused one
/// leaves the link usable), then the link used, every session ended and every token revoked
/// (the person's apps refuse them within a second), the address marked verified, the
/// username's sign-in waits lifted, and a notice mailed.
pub async fn reset_password(core: &Core, token: &str, password: &str) -> Result<User, LinkError> {
    crate::model::check_password(password).map_err(ServiceError::from)?;
    let (link, user) = take_link(core, token, LinkPurpose::PasswordReset).await?;
    let actor = format!("sub:{}", user.sub);
    let result = async {
        users::store_password(core, &user.sub, password).await?;
        let user = users::rewrite(core, &user.sub, |u| {
            verified_by(u, &link);
            Ok(())
        })
        .await?;
        core.db
            .mail_links()
            .void(&user.sub, LinkPurpose::PasswordReset, core.clock.now())
            .await?;
        revoke::revoke_as(
            core,
            Subject::Sub(user.sub.clone()),
            &actor,
            "password.reset",
        )
        .await?;
        if let Err(e) = lockout::clear(core, &Key::account(&user.username)).await {
            tracing::warn!(error = %e, "could not lift the username's sign-in waits after a reset");
        }
        Ok::<_, ServiceError>(user)
    }
    .await;
    core.record(&actor, "password.reset", &user.sub, &result)
        .await;
    let user = result?;
    mail::notify(core, &user, Notice::PasswordChanged { reset: true }).await;
    signals::credential_changed(
        core,
        &user.sub,
        Credential::Password,
        Change::Update,
        &actor,
    )
    .await;
    Ok(user)
}

/// Accepts an invitation: sets the first password (checked first; a refused one leaves the
/// link usable), uses the link, marks the address verified.
pub async fn accept_invitation(
    core: &Core,
    token: &str,
    password: &str,
) -> Result<User, LinkError> {
    crate::model::check_password(password).map_err(ServiceError::from)?;
    let (link, user) = take_link(core, token, LinkPurpose::Invitation).await?;
    let actor = format!("sub:{}", user.sub);
    let result = async {
        users::store_password(core, &user.sub, password).await?;
        users::rewrite(core, &user.sub, |u| {
            verified_by(u, &link);
            Ok(())
        })
        .await
    }
    .await;
    core.record(&actor, "invitation.accept", &user.sub, &result)
        .await;
    let user = result?;
    signals::credential_changed(
        core,
        &user.sub,
        Credential::Password,
        Change::Create,
        &actor,
    )
    .await;
    Ok(user)
}

/// The person `sub` asks to use `new_email`: it waits as `pending_email` (the old address
/// stays) until the link mailed to it is followed; the old address is told.
pub async fn change_email(
    core: &Core,
    sub: &str,
    new_email: &str,
    actor: &str,
) -> Result<Sent, ServiceError> {
    let result = async {
        let new_email = new_email.trim();
        check_email(Some(new_email))?;
        let before = users::get(core, sub).await?;
        if before
            .email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(new_email))
            && before.email_verified
        {
            return Err(ServiceError::field(
                "email",
                "this is your address already, and it is verified",
            ));
        }
        let user = users::rewrite(core, sub, |u| {
            u.pending_email = Some(new_email.to_owned());
            Ok(())
        })
        .await?;
        let sent = send_link(core, &user, new_email, LinkPurpose::VerifyEmail).await?;
        if before
            .email
            .as_deref()
            .is_some_and(|old| !old.eq_ignore_ascii_case(new_email))
        {
            let notice = Notice::EmailChanging {
                new_address: new_email.to_owned(),
            };
            mail::notify(core, &before, notice).await;
        }
        Ok(sent)
    }
    .await;
    core.record(actor, "email.change", sub, &result).await;
    result
}

/// Mails `sub` a link that verifies the address on file.
pub async fn send_verification(core: &Core, sub: &str, actor: &str) -> Result<Sent, ServiceError> {
    let result = async {
        let user = users::get(core, sub).await?;
        let to = user
            .email
            .clone()
            .ok_or_else(|| ServiceError::Conflict("there is no address to verify".to_owned()))?;
        send_link(core, &user, &to, LinkPurpose::VerifyEmail).await
    }
    .await;
    core.record(actor, "email.verification.send", sub, &result)
        .await;
    result
}

/// Follows a verification link: the address it went to becomes the person's verified
/// address (a pending one replaces the old), if it is still theirs or pending.
pub async fn verify_email(core: &Core, token: &str) -> Result<User, LinkError> {
    let (link, user) = take_link(core, token, LinkPurpose::VerifyEmail).await?;
    let actor = format!("sub:{}", user.sub);
    let result = users::rewrite(core, &user.sub, |u| {
        if u.pending_email
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(&link.email))
        {
            u.email = u.pending_email.take();
            u.email_verified = true;
            Ok(())
        } else if u
            .email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(&link.email))
        {
            u.email_verified = true;
            Ok(())
        } else {
            Err(ServiceError::Conflict(
                "the address this link went to is no longer on the account".to_owned(),
            ))
        }
    })
    .await;
    core.record(&actor, "email.verify", &user.sub, &result)
        .await;
    match result {
        Ok(user) => Ok(user),
        Err(ServiceError::Conflict(_)) => Err(LinkError::Stale),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_as_their_sha256() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
