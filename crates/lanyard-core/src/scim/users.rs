//! SCIM Users (RFC 7643 §4.1): a person as SCIM shows them, and create, read, search,
//! replace, patch and delete through the `users` service's rules.

use serde_json::{Map, Value, json};

use super::patch::{self, Shape};
use super::{ScimError, USER_SCHEMA, get, meta, object, text};
use crate::Core;
use crate::crypto::random_token;
use crate::model::{Group, User, check_display_name, check_email, check_password, check_username};
use crate::scim_filter;

/// What a SCIM User keeps.
const SHAPE: Shape = Shape {
    attributes: &[
        "userName",
        "displayName",
        "externalId",
        "emails",
        "active",
        "password",
    ],
    lists: &["emails"],
    one_of: &["emails"],
};

/// The person as a SCIM User, with the groups they are in.
pub fn to_json(base: &str, user: &User, groups: &[Group]) -> Value {
    let mut out = json!({
        "schemas": [USER_SCHEMA],
        "id": user.sub,
        "userName": user.username,
        "active": !user.disabled,
        "meta": meta("User", format!("{base}/Users/{}", user.sub), user.created_at, user.updated_at),
    });
    if let Some(id) = &user.external_id {
        out["externalId"] = json!(id);
    }
    if let Some(name) = &user.display_name {
        out["displayName"] = json!(name);
    }
    if let Some(email) = &user.email {
        out["emails"] = json!([{ "value": email }]);
    }
    if !groups.is_empty() {
        out["groups"] = groups
            .iter()
            .map(|g| {
                json!({"value": g.id, "$ref": format!("{base}/Groups/{}", g.id), "display": g.name})
            })
            .collect();
    }
    out
}

/// The user `id`, as SCIM shows them.
pub async fn get_one(state: &Core, id: &str) -> Result<Value, ScimError> {
    let user = find(state, id).await?;
    let groups = state.db.groups().of_user(&user.sub).await?;
    Ok(to_json(&base(state), &user, &groups))
}

/// One page of the people matching `filter`, as SCIM shows them; and how many match.
pub(super) async fn page(
    state: &Core,
    filter: Option<&scim_filter::Filter>,
    offset: u64,
    count: u64,
) -> Result<(u64, Vec<Value>), ScimError> {
    let (total, users) = state.db.users().search(filter, offset, count).await?;
    let subs: Vec<String> = users.iter().map(|u| u.sub.clone()).collect();
    let mut groups = state.db.groups().of_users(&subs).await?;
    let base = base(state);
    let resources = users
        .iter()
        .map(|u| to_json(&base, u, &groups.remove(&u.sub).unwrap_or_default()))
        .collect();
    Ok((total, resources))
}

/// Creates a person from a SCIM User. Without a `password` they have none until they set
/// one; `active: false` creates them disabled.
pub async fn create(state: &Core, body: &Value, actor: &str) -> Result<Value, ScimError> {
    let map = object(body, USER_SCHEMA)?;
    let fields = Fields::read(map)?;
    let password_hash = match &fields.password {
        Some(p) => {
            check_password(p).map_err(crate::ServiceError::from)?;
            state
                .passwords
                .hash(p)
                .await
                .map_err(|e| crate::ServiceError::Unavailable(e.to_string()))?
        }
        None => String::new(),
    };
    let now = state.clock.now();
    let user = User {
        sub: random_token(16),
        username: fields.username.clone(),
        email: fields.email,
        display_name: fields.display_name,
        password_hash,
        disabled: !fields.active.unwrap_or(true),
        created_at: now,
        updated_at: now,
        external_id: fields.external_id,
        email_verified: false,
        pending_email: None,
    };
    let result = state
        .db
        .users()
        .insert(&user)
        .await
        .map_err(ScimError::from);
    state
        .record(actor, "user.create", &fields.username, &result)
        .await;
    result?;
    // A person the HR system made without a password learns of their account by mail, when
    // the deployment says so (`scim_invite`). A mail that cannot be queued does not undo the
    // provisioning: the operator can invite them again.
    if state.config.mail.scim_invite
        && user.password_hash.is_empty()
        && user.email.is_some()
        && !user.disabled
        && let Err(e) = crate::email::send_invitation(state, &user, actor).await
    {
        tracing::warn!(error = %e, sub = %user.sub, "could not invite a person SCIM made");
    }
    Ok(to_json(&base(state), &user, &[]))
}

/// Replaces the person `id` with a SCIM User (PUT): what is left out is cleared, except
/// `active` and `password`, which stay as they are unless given.
pub async fn replace(
    state: &Core,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    actor: &str,
) -> Result<Value, ScimError> {
    let current = find(state, id).await?;
    check_version(&current, if_match)?;
    let map = object(body, USER_SCHEMA)?;
    store(state, current, Fields::read(map)?, actor).await
}

/// Applies a PatchOp to the person `id`.
pub async fn patch(
    state: &Core,
    id: &str,
    body: &Value,
    if_match: Option<&str>,
    actor: &str,
) -> Result<Value, ScimError> {
    let current = find(state, id).await?;
    check_version(&current, if_match)?;
    let mut doc = match to_json(&base(state), &current, &[]) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for gone in ["schemas", "id", "meta", "groups"] {
        doc.remove(gone);
    }
    // A password is never part of the resource: only one the patch sets is stored.
    patch::apply(&SHAPE, &mut doc, body)?;
    let mut fields = Fields::read(&doc)?;
    if !doc.contains_key("active") {
        // `remove active` leaves them as they are.
        fields.active = None;
    }
    store(state, current, fields, actor).await
}

/// Deletes the person `id` (everything of theirs revoked first).
pub async fn delete(
    state: &Core,
    id: &str,
    if_match: Option<&str>,
    actor: &str,
) -> Result<(), ScimError> {
    let current = find(state, id).await?;
    check_version(&current, if_match)?;
    crate::users::delete(state, &current.sub, actor).await?;
    Ok(())
}

fn base(state: &Core) -> String {
    super::base(&state.config.issuer)
}

async fn find(state: &Core, id: &str) -> Result<User, ScimError> {
    state
        .db
        .users()
        .by_sub(id)
        .await?
        .ok_or_else(|| ScimError::not_found(format!("no User has id {id:?}")))
}

fn check_version(user: &User, if_match: Option<&str>) -> Result<(), ScimError> {
    if super::matches(if_match, &super::version(user.updated_at)) {
        Ok(())
    } else {
        Err(ScimError::changed())
    }
}

/// What a SCIM User body says, checked.
struct Fields {
    username: String,
    display_name: Option<String>,
    email: Option<String>,
    external_id: Option<String>,
    active: Option<bool>,
    password: Option<String>,
}

impl Fields {
    fn read(map: &Map<String, Value>) -> Result<Self, ScimError> {
        let username = text(map, "userName")?
            .ok_or_else(|| ScimError::bad("invalidValue", "userName is required"))?;
        check_username(&username).map_err(crate::ServiceError::from)?;
        let display_name = text(map, "displayName")?;
        check_display_name(display_name.as_deref()).map_err(crate::ServiceError::from)?;
        let email = match get(map, "emails") {
            None => None,
            Some(Value::Array(emails)) => {
                let primary = emails
                    .iter()
                    .find(|e| e.get("primary") == Some(&Value::Bool(true)))
                    .or_else(|| emails.first());
                match primary.and_then(|e| e.get("value")) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) if s.is_empty() => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => {
                        return Err(ScimError::bad(
                            "invalidValue",
                            "emails.value must be a string",
                        ));
                    }
                }
            }
            Some(_) => return Err(ScimError::bad("invalidValue", "emails must be a list")),
        };
        check_email(email.as_deref()).map_err(crate::ServiceError::from)?;
        let external_id = text(map, "externalId")?;
        crate::access::check_external_id(external_id.as_deref())?;
        Ok(Self {
            username,
            display_name,
            email,
            external_id,
            active: super::flag(map, "active")?,
            password: text(map, "password")?,
        })
    }
}

/// Stores `fields` over `current`, then the password and `active` through the `users`
/// service (disabling revokes everything of theirs).
async fn store(
    state: &Core,
    current: User,
    fields: Fields,
    actor: &str,
) -> Result<Value, ScimError> {
    if let Some(p) = &fields.password {
        check_password(p).map_err(crate::ServiceError::from)?;
    }
    let seen = current.updated_at;
    let mut user = current;
    user.username = fields.username;
    user.display_name = fields.display_name;
    user.set_email(fields.email);
    user.external_id = fields.external_id;
    user.updated_at = state
        .clock
        .now()
        .max(seen.plus(std::time::Duration::from_millis(1)));
    let written = state
        .db
        .users()
        .update_profile(&user, seen)
        .await
        .map_err(ScimError::from)
        .and_then(|ok| {
            if ok {
                Ok(())
            } else {
                Err(ScimError::changed())
            }
        });
    state
        .record(actor, "user.update", &user.sub, &written)
        .await;
    written?;
    if let Some(password) = &fields.password {
        crate::users::set_password(state, &user.sub, password, actor).await?;
    }
    match fields.active {
        Some(false) if !user.disabled => {
            crate::users::disable(state, &user.sub, actor).await?;
        }
        Some(true) if user.disabled => {
            crate::users::enable(state, &user.sub, actor).await?;
        }
        _ => {}
    }
    get_one(state, &user.sub).await
}
