//! Operators: the people who may run Lanyard from its console (issue 23). An operator holds
//! the built-in role [`OPERATOR_ROLE`] of the built-in client [`CONSOLE_CLIENT`] (the
//! console's own OpenID Connect client, a public client with PKCE whose addresses are under
//! the issuer), directly or through a group, so the console learns it from the `roles` claim
//! of the operator's own sign-in, as any app learns its roles. The client and the role are made
//! the first time they are needed and kept pointing at the current issuer.
//!
//! Granting and taking away go through `access`: audited, and taking the role away refuses the
//! person's console tokens at once.

use crate::Core;
use crate::access::{self, Withdrawn};
use crate::clients::{NewClient, add_client};
use crate::error::ServiceError;
use crate::model::{ClientSettings, GrantType, Holder, User};
use crate::users;

/// The console's client id.
pub const CONSOLE_CLIENT: &str = "lanyard-console";
/// The role that makes a person an operator.
pub const OPERATOR_ROLE: &str = "operator";

/// The console client's settings for this issuer.
fn console_settings(core: &Core) -> ClientSettings {
    ClientSettings {
        name: "Lanyard console".to_owned(),
        public: true,
        redirect_uris: vec![core.config.url("/console/callback")],
        post_logout_redirect_uris: vec![core.config.url("/console/")],
        // First party: its refresh tokens are bound to the operator's sign-in session.
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".to_owned(), "profile".to_owned()],
        first_party: true,
        // Operators can end anyone's access, so the console asks them for two factors (a
        // step-up, RFC 9470) once it knows they are operators: a person who is not one is told
        // so straight after the password, not first made to set up a factor.
        require_mfa: false,
        groups_claim: false,
        ..ClientSettings::new(CONSOLE_CLIENT)
    }
}

/// Makes the console client and the operator role if they are missing, and points the
/// client's addresses at the current issuer. Several nodes doing it at once is harmless.
pub async fn ensure_console(core: &Core, actor: &str) -> Result<(), ServiceError> {
    let wanted = console_settings(core);
    match core.db.clients().get(CONSOLE_CLIENT).await? {
        None => {
            let new = NewClient {
                settings: wanted,
                secret: None,
            };
            match add_client(&core.db, &core.server_keys, new, core.clock.now()).await {
                Ok(_) | Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Some(client)
            if client.settings.redirect_uris != wanted.redirect_uris
                || client.settings.grant_types != wanted.grant_types
                || client.settings.require_mfa != wanted.require_mfa =>
        {
            let change = serde_json::json!({
                "redirect_uris": wanted.redirect_uris,
                "post_logout_redirect_uris": wanted.post_logout_redirect_uris,
                "grant_types": wanted.grant_types,
                "require_mfa": wanted.require_mfa,
            });
            crate::clients::update(core, CONSOLE_CLIENT, &change, actor).await?;
        }
        Some(_) => {}
    }
    if core
        .db
        .roles()
        .get(CONSOLE_CLIENT, OPERATOR_ROLE)
        .await?
        .is_none()
    {
        let description = Some("Runs Lanyard from its console".to_owned());
        match access::create_role(core, CONSOLE_CLIENT, OPERATOR_ROLE, description, actor).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Makes the person `sub` an operator. Returns false if they were one already.
pub async fn add(core: &Core, sub: &str, actor: &str) -> Result<bool, ServiceError> {
    ensure_console(core, actor).await?;
    let holder = Holder::User(sub.to_owned());
    access::grant_role(core, CONSOLE_CLIENT, OPERATOR_ROLE, &holder, actor).await
}

/// Takes the operator role from the person `sub` (given to them directly; a group that
/// holds it is changed through the group). Their console tokens are refused at once. 404
/// if they do not hold it (nor when nobody was ever made an operator).
pub async fn remove(core: &Core, sub: &str, actor: &str) -> Result<Withdrawn, ServiceError> {
    let holder = Holder::User(sub.to_owned());
    access::revoke_role(core, CONSOLE_CLIENT, OPERATOR_ROLE, &holder, actor).await
}

/// Who holds the operator role: people directly, and groups. Reads only (none before the
/// first operator is made).
pub async fn list(core: &Core) -> Result<(Vec<User>, Vec<String>), ServiceError> {
    let mut people = Vec::new();
    let mut groups = Vec::new();
    for holder in core
        .db
        .roles()
        .holders(CONSOLE_CLIENT, OPERATOR_ROLE)
        .await?
    {
        match holder {
            Holder::User(sub) => people.push(users::get(core, &sub).await?),
            Holder::Group(id) => groups.push(access::group(core, &id).await?.name),
        }
    }
    Ok((people, groups))
}

/// Whether the person `sub` is an operator (directly or through a group).
pub async fn is_operator(core: &Core, sub: &str) -> Result<bool, ServiceError> {
    let held = access::roles_of(core, sub).await?;
    Ok(held
        .iter()
        .any(|r| r.client_id == CONSOLE_CLIENT && r.role == OPERATOR_ROLE))
}
