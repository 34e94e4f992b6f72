//! Who may do what, as a service: groups and their members, the roles applications define
//! and who holds them, and what a token says about them. Every change is audited.
//!
//! **Taking something away revokes at once.** A person removed from a group, or a role taken
//! from a person or a group, loses it in every token already out: the access tokens the
//! affected apps hold for them are revoked (a `grant` watermark per person and app, recorded
//! and pushed to every app's guard like any revocation). Their sessions and refresh tokens
//! stay: the next token, refreshed or after sign-in, is made from what they hold now. Giving
//! something revokes nothing; it is in the next token.
//!
//! The apps affected by a change are the role's own app, the apps that may ask tokens for it
//! as a resource (their tokens carry its roles), and, when group membership changed, every
//! app that may put `groups` in its tokens.

use std::collections::BTreeSet;

use lanyard_store::Target;
use serde::Serialize;

use crate::Core;
use crate::crypto::random_token;
use crate::db::DbError;
use crate::error::ServiceError;
use crate::model::{
    Client, Group, Holder, Role, User, check_description, check_group_name, check_role_name,
};
use crate::revocation;
use crate::signals::{self, Signal};

/// A group to add.
#[derive(Debug, Clone, Default)]
pub struct NewGroup {
    /// Its name (unique regardless of letter case).
    pub name: String,
    /// What it is for.
    pub description: Option<String>,
    /// The id a provisioning system knows it by.
    pub external_id: Option<String>,
}

/// A change to a group: a field left out stays, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct GroupChange {
    /// A new name.
    pub name: Option<String>,
    /// A new description, or `Some(None)` to clear it.
    pub description: Option<Option<String>>,
    /// A new external id, or `Some(None)` to clear it.
    pub external_id: Option<Option<String>>,
}

/// What taking a membership or a role away revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Withdrawn {
    /// How many people lost something.
    pub people: usize,
    /// The apps at which their access tokens were revoked.
    pub clients: Vec<String>,
    /// How many revocations were recorded (one per person and app).
    pub revocations: usize,
}

/// A role a person holds, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HeldRole {
    /// The app.
    pub client_id: String,
    /// The role.
    pub role: String,
    /// The groups (their names) it is held through.
    pub via: Vec<String>,
    /// Held directly, not only through a group.
    pub direct: bool,
}

// --- Groups -------------------------------------------------------------------------------

/// The group with this id.
pub async fn group(state: &Core, id: &str) -> Result<Group, ServiceError> {
    state
        .db
        .groups()
        .get(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no group has id {id:?}")))
}

/// The group called `name` (the command line names groups so).
pub async fn group_by_name(state: &Core, name: &str) -> Result<Group, ServiceError> {
    state
        .db
        .groups()
        .by_name(name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no group is called {name:?}")))
}

/// Up to `limit` groups in name order after `after` (a name) whose name contains `search`.
pub async fn list_groups(
    state: &Core,
    search: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Group>, ServiceError> {
    Ok(state.db.groups().list(search, after, limit).await?)
}

/// Adds a group. 409 if the name is taken.
pub async fn create_group(state: &Core, new: NewGroup, actor: &str) -> Result<Group, ServiceError> {
    let result = async {
        check_group_name(&new.name)?;
        check_description(new.description.as_deref())?;
        check_external_id(new.external_id.as_deref())?;
        let now = state.clock.now();
        let group = Group {
            id: random_token(16),
            name: new.name.clone(),
            description: new.description,
            external_id: new.external_id,
            created_at: now,
            updated_at: now,
        };
        state.db.groups().insert(&group).await?;
        Ok(group)
    }
    .await;
    state
        .record(
            actor,
            "group.create",
            &format!("group:{}", new.name),
            &result,
        )
        .await;
    result
}

/// Renames a group or changes its description. 409 if the new name is taken, or if the
/// group changed between our read and our write.
pub async fn update_group(
    state: &Core,
    id: &str,
    change: GroupChange,
    actor: &str,
) -> Result<Group, ServiceError> {
    let result = async {
        let mut group = group(state, id).await?;
        let seen = group.updated_at;
        let renamed = change.name.as_ref().is_some_and(|n| *n != group.name);
        if let Some(name) = change.name {
            check_group_name(&name)?;
            group.name = name;
        }
        if let Some(description) = change.description {
            check_description(description.as_deref())?;
            group.description = description;
        }
        if let Some(external_id) = change.external_id {
            check_external_id(external_id.as_deref())?;
            group.external_id = external_id;
        }
        group.updated_at = state
            .clock
            .now()
            .max(seen.plus(std::time::Duration::from_millis(1)));
        if !state.db.groups().update(&group, seen).await? {
            return Err(ServiceError::Conflict(
                "the group changed while this update was made; read it again and retry".to_owned(),
            ));
        }
        Ok((group, renamed))
    }
    .await;
    state
        .record(actor, "group.update", &format!("group:{id}"), &result)
        .await;
    let (group, renamed) = result?;
    if renamed {
        // The old name is in `groups` claims already out.
        let members: Vec<String> = members(state, &group.id)
            .await?
            .into_iter()
            .map(|u| u.sub)
            .collect();
        withdraw(state, &members, &BTreeSet::new(), true, actor).await?;
    }
    Ok(group)
}

/// Deletes a group: its members lose it and the roles it held, at once.
pub async fn delete_group(state: &Core, id: &str, actor: &str) -> Result<Withdrawn, ServiceError> {
    let result = async {
        let group = group(state, id).await?;
        let members: Vec<String> = members(state, &group.id)
            .await?
            .into_iter()
            .map(|u| u.sub)
            .collect();
        let held = role_clients_of(state, &Holder::Group(group.id.clone())).await?;
        state.db.groups().delete(&group.id).await?;
        withdraw(state, &members, &held, true, actor).await
    }
    .await;
    state
        .record(actor, "group.delete", &format!("group:{id}"), &result)
        .await;
    result
}

/// The members of a group, in username order.
pub async fn members(state: &Core, group_id: &str) -> Result<Vec<User>, ServiceError> {
    Ok(state.db.groups().members(group_id).await?)
}

/// Adds the people `add` to the group and removes the people `remove`; those removed lose
/// it at once (see the module docs). Every `sub` must be a user's. Returns who was added
/// and what the removal revoked.
pub async fn change_members(
    state: &Core,
    group_id: &str,
    add: &[String],
    remove: &[String],
    actor: &str,
) -> Result<(Vec<String>, Withdrawn), ServiceError> {
    let result = async {
        let group = group(state, group_id).await?;
        for sub in add {
            if state.db.users().by_sub(sub).await?.is_none() {
                return Err(ServiceError::NotFound(format!("no user has sub {sub:?}")));
            }
        }
        let (added, removed) = state
            .db
            .groups()
            .change_members(&group.id, add, remove, state.clock.now())
            .await?;
        Ok((group, added, removed))
    }
    .await;
    let target = format!("group:{group_id}");
    let (group, added, removed) = match result {
        Ok(done) => done,
        Err(e) => {
            let failed: Result<(), _> = Err(&e);
            state.record(actor, "group.members", &target, &failed).await;
            return Err(e);
        }
    };
    claims_changed(state, &added, actor).await;
    let withdrawn = if removed.is_empty() {
        Ok(Withdrawn::default())
    } else {
        let held = role_clients_of(state, &Holder::Group(group.id.clone())).await?;
        withdraw(state, &removed, &held, true, actor).await
    };
    let event = state
        .event(actor, "group.members")
        .target(target)
        .result(&withdrawn)
        .detail(serde_json::json!({ "added": added, "removed": removed }));
    state.audit.record(event).await;
    Ok((added, withdrawn?))
}

// --- Roles --------------------------------------------------------------------------------

/// Defines role `name` at client `client_id`. 409 if it has one of that name.
pub async fn create_role(
    state: &Core,
    client_id: &str,
    name: &str,
    description: Option<String>,
    actor: &str,
) -> Result<Role, ServiceError> {
    let result = async {
        check_role_name(name)?;
        check_description(description.as_deref())?;
        client(state, client_id).await?;
        let role = Role {
            client_id: client_id.to_owned(),
            name: name.to_owned(),
            description,
            created_at: state.clock.now(),
        };
        state.db.roles().insert(&role).await?;
        Ok(role)
    }
    .await;
    state
        .record(actor, "role.create", &role_target(client_id, name), &result)
        .await;
    result
}

/// The roles client `client_id` defines.
pub async fn roles(state: &Core, client_id: &str) -> Result<Vec<Role>, ServiceError> {
    client(state, client_id).await?;
    Ok(state.db.roles().of_client(client_id).await?)
}

/// The role `name` of `client_id`.
pub async fn role(state: &Core, client_id: &str, name: &str) -> Result<Role, ServiceError> {
    state
        .db
        .roles()
        .get(client_id, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("client {client_id:?} has no role {name:?}")))
}

/// Deletes a role; everyone who held it loses it at once.
pub async fn delete_role(
    state: &Core,
    client_id: &str,
    name: &str,
    actor: &str,
) -> Result<Withdrawn, ServiceError> {
    let result = async {
        role(state, client_id, name).await?;
        let people = holders_people(state, client_id, name).await?;
        state.db.roles().delete(client_id, name).await?;
        withdraw(
            state,
            &people,
            &BTreeSet::from([client_id.to_owned()]),
            false,
            actor,
        )
        .await
    }
    .await;
    state
        .record(actor, "role.delete", &role_target(client_id, name), &result)
        .await;
    result
}

/// Who holds role `name` of `client_id` (groups and people, not expanded).
pub async fn holders(
    state: &Core,
    client_id: &str,
    name: &str,
) -> Result<Vec<Holder>, ServiceError> {
    role(state, client_id, name).await?;
    Ok(state.db.roles().holders(client_id, name).await?)
}

/// Grants the role to `holder` (a group's id or a person's `sub`, which must exist).
/// Returns false if they held it already. Tokens issued from now on carry it.
pub async fn grant_role(
    state: &Core,
    client_id: &str,
    name: &str,
    holder: &Holder,
    actor: &str,
) -> Result<bool, ServiceError> {
    let result = async {
        role(state, client_id, name).await?;
        check_holder(state, holder).await?;
        Ok(state
            .db
            .roles()
            .grant(client_id, name, holder, state.clock.now())
            .await?)
    }
    .await;
    let event = state
        .event(actor, "role.grant")
        .target(role_target(client_id, name))
        .result(&result)
        .detail(serde_json::json!({ holder.kind(): holder.id() }));
    state.audit.record(event).await;
    if let Ok(true) = result {
        let people = match holder {
            Holder::User(sub) => Ok(vec![sub.clone()]),
            Holder::Group(id) => state
                .db
                .groups()
                .members(id)
                .await
                .map(|users| users.into_iter().map(|u| u.sub).collect()),
        };
        match people {
            Ok(people) => claims_changed(state, &people, actor).await,
            Err(e) => tracing::warn!(error = %e, "could not tell receivers of a granted role"),
        }
    }
    result
}

/// Takes the role from `holder`; whoever loses it by that loses it at once (a person who
/// still holds it another way keeps it, and their tokens). 404 if they did not hold it.
pub async fn revoke_role(
    state: &Core,
    client_id: &str,
    name: &str,
    holder: &Holder,
    actor: &str,
) -> Result<Withdrawn, ServiceError> {
    let result = async {
        role(state, client_id, name).await?;
        let before = holders_people(state, client_id, name).await?;
        if !state.db.roles().revoke(client_id, name, holder).await? {
            return Err(ServiceError::NotFound(format!(
                "the {} {:?} does not hold role {name:?} of {client_id:?}",
                holder.kind(),
                holder.id()
            )));
        }
        let after: BTreeSet<String> = holders_people(state, client_id, name)
            .await?
            .into_iter()
            .collect();
        let lost: Vec<String> = before.into_iter().filter(|s| !after.contains(s)).collect();
        withdraw(
            state,
            &lost,
            &BTreeSet::from([client_id.to_owned()]),
            false,
            actor,
        )
        .await
    }
    .await;
    let event = state
        .event(actor, "role.revoke")
        .target(role_target(client_id, name))
        .result(&result)
        .detail(serde_json::json!({ holder.kind(): holder.id() }));
    state.audit.record(event).await;
    result
}

// --- What a person holds ------------------------------------------------------------------

/// The groups `sub` is in.
pub async fn groups_of(state: &Core, sub: &str) -> Result<Vec<Group>, ServiceError> {
    Ok(state.db.groups().of_user(sub).await?)
}

/// Every role `sub` holds, at every app, and how.
pub async fn roles_of(state: &Core, sub: &str) -> Result<Vec<HeldRole>, ServiceError> {
    let roles = state.db.roles();
    let direct: BTreeSet<(String, String)> = roles
        .held_by(&Holder::User(sub.to_owned()))
        .await?
        .into_iter()
        .collect();
    // Each role, with the groups (names) it comes through: one read per group of theirs.
    let mut via: std::collections::BTreeMap<(String, String), Vec<String>> = direct
        .iter()
        .map(|held| (held.clone(), Vec::new()))
        .collect();
    for group in groups_of(state, sub).await? {
        for held in roles.held_by(&Holder::Group(group.id.clone())).await? {
            via.entry(held).or_default().push(group.name.clone());
        }
    }
    Ok(via
        .into_iter()
        .map(|((client_id, role), via)| HeldRole {
            direct: direct.contains(&(client_id.clone(), role.clone())),
            client_id,
            role,
            via,
        })
        .collect())
}

/// What a token for `sub` says about them: the names of the roles they hold at the
/// `audience` (when `roles`), and the names of their groups (when `groups`). At most two
/// queries, none when neither is wanted.
pub async fn token_claims(
    state: &Core,
    sub: &str,
    audience: &[String],
    roles: bool,
    groups: bool,
) -> Result<(Vec<String>, Vec<String>), DbError> {
    let roles = if roles && !audience.is_empty() {
        let mut names: Vec<String> = state
            .db
            .roles()
            .of_user_at(sub, audience)
            .await?
            .into_iter()
            .map(|(_, role)| role)
            .collect();
        names.sort();
        names.dedup();
        names
    } else {
        Vec::new()
    };
    let groups = if groups {
        state.db.groups().names_of(sub).await?
    } else {
        Vec::new()
    };
    Ok((roles, groups))
}

// --- Helpers ------------------------------------------------------------------------------

fn role_target(client_id: &str, name: &str) -> String {
    format!("role:{client_id}/{name}")
}

/// The longest external id (SCIM `externalId`).
pub const MAX_EXTERNAL_ID: usize = 200;

/// An external id, if given: 1 to [`MAX_EXTERNAL_ID`] characters, no control characters.
pub fn check_external_id(id: Option<&str>) -> Result<(), ServiceError> {
    if let Some(id) = id
        && (id.is_empty()
            || id.chars().count() > MAX_EXTERNAL_ID
            || id.chars().any(char::is_control))
    {
        return Err(ServiceError::Field {
            field: "external_id".to_owned(),
            message: format!(
                "an external id is 1 to {MAX_EXTERNAL_ID} characters, with no control characters"
            ),
        });
    }
    Ok(())
}

async fn client(state: &Core, client_id: &str) -> Result<Client, ServiceError> {
    state
        .db
        .clients()
        .get(client_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no client has client_id {client_id:?}")))
}

async fn check_holder(state: &Core, holder: &Holder) -> Result<(), ServiceError> {
    match holder {
        Holder::Group(id) => group(state, id).await.map(|_| ()),
        Holder::User(sub) => match state.db.users().by_sub(sub).await? {
            Some(_) => Ok(()),
            None => Err(ServiceError::NotFound(format!("no user has sub {sub:?}"))),
        },
    }
}

/// Everyone who holds role `name` of `client_id`, directly or through a group.
async fn holders_people(
    state: &Core,
    client_id: &str,
    name: &str,
) -> Result<Vec<String>, ServiceError> {
    let mut people = BTreeSet::new();
    for holder in state.db.roles().holders(client_id, name).await? {
        match holder {
            Holder::User(sub) => {
                people.insert(sub);
            }
            Holder::Group(id) => {
                for user in state.db.groups().members(&id).await? {
                    people.insert(user.sub);
                }
            }
        }
    }
    Ok(people.into_iter().collect())
}

/// The apps at which `holder` holds roles itself.
async fn role_clients_of(state: &Core, holder: &Holder) -> Result<BTreeSet<String>, ServiceError> {
    Ok(state
        .db
        .roles()
        .held_by(holder)
        .await?
        .into_iter()
        .map(|(client_id, _)| client_id)
        .collect())
}

/// Every client whose tokens may carry a role of `role_clients` (the client itself, and the
/// clients that may ask tokens for it as a resource), and with `groups`, every client that
/// may put `groups` in its tokens.
async fn affected_clients(
    state: &Core,
    role_clients: &BTreeSet<String>,
    groups: bool,
) -> Result<Vec<String>, ServiceError> {
    let mut affected = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.db.clients().list(after.as_deref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.client_id.clone());
        for c in &page {
            if role_clients.contains(&c.client_id)
                || c.resources.iter().any(|r| role_clients.contains(r))
                || (groups && c.groups_claim && c.allows_scope("groups"))
            {
                affected.push(c.client_id.clone());
            }
        }
    }
    Ok(affected)
}

/// Revokes the access tokens that `people` hold at the affected apps (see
/// [`affected_clients`]): one `grant` watermark per person and app.
/// Tells Shared Signals receivers that what tokens say about `people` changed.
async fn claims_changed(state: &Core, people: &[String], actor: &str) {
    let signals = people
        .iter()
        .map(|sub| Signal::ClaimsChange { sub: sub.clone() })
        .collect();
    signals::emit(state, signals, actor).await;
}

async fn withdraw(
    state: &Core,
    people: &[String],
    role_clients: &BTreeSet<String>,
    groups: bool,
    actor: &str,
) -> Result<Withdrawn, ServiceError> {
    if people.is_empty() {
        return Ok(Withdrawn::default());
    }
    let clients = affected_clients(state, role_clients, groups).await?;
    // On a task of its own: the change is stored already, so a caller that goes away (a
    // client hanging up, a request timeout) must not cut the revocations short.
    let task = {
        let (state, people, clients, actor) = (
            state.clone(),
            people.to_vec(),
            clients.clone(),
            actor.to_owned(),
        );
        tokio::spawn(async move {
            let mut revocations = 0;
            for sub in &people {
                for client_id in &clients {
                    revocation::revoke(
                        &state,
                        Target::grant(sub, client_id),
                        state.clock.now(),
                        &actor,
                    )
                    .await?;
                    revocations += 1;
                }
            }
            Ok::<usize, revocation::RevocationError>(revocations)
        })
    };
    let revocations = task
        .await
        .map_err(|e| ServiceError::Unavailable(format!("revoking stopped: {e}")))??;
    claims_changed(state, people, actor).await;
    Ok(Withdrawn {
        people: people.len(),
        clients,
        revocations,
    })
}
