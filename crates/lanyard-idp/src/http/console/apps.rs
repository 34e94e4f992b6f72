//! Apps (clients): the list, registering one, an app's page (its settings and roles), and
//! what an operator does to one: rotate the secret (shown once), turn it off and on, delete.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{Nav, Operator, confirmed, done, enc, form, notice, query};
use crate::params::Params;
use crate::state::AppState;
use lanyard_core::clients::{self, NewClient};
use lanyard_core::model::{ClientSettings, GrantType, Holder};
use lanyard_core::operators::{CONSOLE_CLIENT, OPERATOR_ROLE};
use lanyard_core::session::utc;
use lanyard_core::{ServiceError, access};

/// Apps per page of the list.
const PAGE: u64 = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/apps", get(list))
        .route("/apps/new", get(new_page).post(register))
        .route("/apps/{id}", get(show))
        .route("/apps/{id}/secret", post(rotate_secret))
        .route("/apps/{id}/disable", post(disable))
        .route("/apps/{id}/enable", post(enable))
        .route("/apps/{id}/delete", post(delete))
        .route("/apps/{id}/roles", post(define_role))
        .route("/apps/{id}/roles/{role}/grant", post(grant))
        .route("/apps/{id}/roles/{role}/take", post(take))
        .route("/apps/{id}/roles/{role}/delete", post(delete_role))
}

fn app_path(id: &str) -> String {
    format!("/console/apps/{}", enc(id))
}

/// A role of an app, with who holds it.
struct RoleRow {
    name: String,
    path: String,
    description: String,
    /// (the holder as the take-away form names it, as people read it).
    holders: Vec<(String, String)>,
}

struct AppRow {
    path: String,
    client_id: String,
    name: String,
    kind: &'static str,
    grants: String,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "console/apps.html")]
struct AppsPage {
    nav: Nav,
    apps: Vec<AppRow>,
    next: Option<String>,
    notice: Option<&'static str>,
}

fn kind(settings: &ClientSettings) -> &'static str {
    if settings.public {
        "Public (PKCE, no secret)"
    } else {
        "Confidential (secret)"
    }
}

fn grants(settings: &ClientSettings) -> String {
    settings
        .grant_types
        .iter()
        .map(|g| g.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /console/apps?after=`.
async fn list(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw.as_deref());
    let after = q.get("after").filter(|s| !s.is_empty());
    let found = match clients::list(&state, after, PAGE).await {
        Ok(found) => found,
        Err(e) => return op.refused(e, "/console/apps"),
    };
    let next = super::next_page(&found, PAGE, |last| {
        format!("/console/apps?after={}", enc(&last.settings.client_id))
    });
    op.page(&AppsPage {
        nav: op.nav("apps"),
        apps: found
            .iter()
            .map(|c| AppRow {
                path: app_path(&c.settings.client_id),
                client_id: c.settings.client_id.clone(),
                name: c.settings.name.clone(),
                kind: kind(&c.settings),
                grants: grants(&c.settings),
                disabled: c.settings.disabled,
            })
            .collect(),
        next,
        notice: notice(
            &q,
            &[("deleted", "The app was deleted and its tokens revoked.")],
        ),
    })
}

#[derive(Template)]
#[template(path = "console/app.html")]
struct AppPage {
    nav: Nav,
    path: String,
    s: ClientSettings,
    kind: &'static str,
    grants: String,
    created: String,
    roles: Vec<RoleRow>,
    /// The console's own client: not to be turned off or deleted from here.
    console: bool,
    notice: Option<&'static str>,
}

/// `GET /console/apps/{id}`.
async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let loaded = async {
        let client = clients::get(&state, &id).await?;
        let mut roles = Vec::new();
        for role in access::roles(&state, &id).await? {
            let holders = access::holders(&state, &id, &role.name).await?;
            roles.push((role, holders));
        }
        Ok::<_, ServiceError>((client, roles))
    };
    let (client, roles) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return op.refused(e, "/console/apps"),
    };
    let q = query(raw.as_deref());
    op.page(&AppPage {
        nav: op.nav("apps"),
        path: app_path(&id),
        kind: kind(&client.settings),
        grants: grants(&client.settings),
        created: utc(client.created_at),
        roles: role_rows(&state, &id, roles).await,
        console: id == CONSOLE_CLIENT,
        notice: notice(
            &q,
            &[
                ("registered", "The app is registered."),
                (
                    "disabled",
                    "Turned off: its tokens were revoked, and it can get no more.",
                ),
                ("enabled", "Turned on: people can sign in to it again."),
                ("role-defined", "The role is defined; grant it below."),
                (
                    "granted",
                    "Granted: their next tokens for this app carry the role.",
                ),
                (
                    "taken",
                    "Taken away: tokens that carried it are refused within a second.",
                ),
                (
                    "role-deleted",
                    "The role is gone, from everyone who held it.",
                ),
            ],
        ),
        s: client.settings,
    })
}

#[derive(Template)]
#[template(path = "console/app_new.html")]
struct NewAppPage<'a> {
    nav: Nav,
    /// The form as sent (empty at first).
    f: &'a Params,
    /// Not sent yet: the usual choices are ticked.
    fresh: bool,
    error: Option<String>,
}

/// `GET /console/apps/new`.
async fn new_page(op: Operator) -> Response {
    let empty = Params::default();
    op.page(&NewAppPage {
        nav: op.nav("apps"),
        f: &empty,
        fresh: true,
        error: None,
    })
}

/// One value per line (or space), empty ones dropped.
fn lines(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The settings the registration form describes.
fn settings_of(form: &Params) -> ClientSettings {
    let on = |name: &str| form.get(name) == Some("yes");
    let grant_types = GrantType::ALL
        .into_iter()
        .filter(|g| on(&format!("grant_{}", g.as_str())))
        .collect();
    ClientSettings {
        name: form.get("name").map(str::trim).unwrap_or("").to_owned(),
        public: form.get("kind") == Some("public"),
        redirect_uris: lines(form.get("redirect_uris")),
        post_logout_redirect_uris: lines(form.get("post_logout_redirect_uris")),
        backchannel_logout_uri: form
            .get("backchannel_logout_uri")
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned),
        grant_types,
        scopes: lines(form.get("scopes")),
        first_party: on("first_party"),
        require_mfa: on("require_mfa"),
        ..ClientSettings::new(form.get("client_id").map(str::trim).unwrap_or(""))
    }
}

#[derive(Template)]
#[template(path = "console/secret.html")]
struct SecretPage<'a> {
    nav: Nav,
    path: String,
    client_id: &'a str,
    secret: &'a str,
    new: bool,
}

/// `POST /console/apps/new`: registers the app; a confidential one's secret is shown once.
async fn register(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let new = NewClient {
        settings: settings_of(&form),
        secret: None,
    };
    match clients::create(&state, new, &op.actor()).await {
        Ok((client, Some(secret))) => op.page(&SecretPage {
            nav: op.nav("apps"),
            path: app_path(&client.settings.client_id),
            client_id: &client.settings.client_id,
            secret: &secret,
            new: true,
        }),
        Ok((client, None)) => done(&app_path(&client.settings.client_id), "registered"),
        Err(
            e @ (ServiceError::Invalid(_) | ServiceError::Field { .. } | ServiceError::Conflict(_)),
        ) => op.page_with(
            StatusCode::BAD_REQUEST,
            &NewAppPage {
                nav: op.nav("apps"),
                f: &form,
                fresh: false,
                error: Some(e.to_string()),
            },
        ),
        Err(e) => op.refused(e, "/console/apps"),
    }
}

/// The console's own client is changed only by `lanyard operator add` (a console without it
/// would lock every operator out).
fn not_the_console(op: &Operator, id: &str) -> Option<Response> {
    (id == CONSOLE_CLIENT).then(|| {
        op.refused(
            ServiceError::Conflict(
                "the console's own client cannot be turned off or deleted from the console"
                    .to_owned(),
            ),
            &app_path(id),
        )
    })
}

/// `POST /console/apps/{id}/secret`: a new secret, shown once; the old one stops working.
async fn rotate_secret(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = app_path(&id);
    let question = (
        "Rotate this app's secret?",
        "The current secret stops working at once: the app gets no new tokens until it is given the new one, which is shown only once.",
        "Rotate the secret",
    );
    let at = (&format!("{path}/secret")[..], &path[..]);
    if let Err(response) = confirmed(&state, &op, (&headers, &body), question, at) {
        return *response;
    }
    match clients::rotate_secret(&state, &id, &op.actor()).await {
        Ok(secret) => op.page(&SecretPage {
            nav: op.nav("apps"),
            path: path.clone(),
            client_id: &id,
            secret: &secret,
            new: false,
        }),
        Err(e) => op.refused(e, &path),
    }
}

async fn set_disabled(
    state: &AppState,
    op: &Operator,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
    disabled: bool,
) -> Response {
    let path = app_path(id);
    let checked = if disabled {
        let question = (
            "Turn this app off?",
            "Every token it holds is refused within a second, nobody can sign in to it, and it gets no tokens until it is turned on again.",
            "Turn off",
        );
        let at = (&format!("{path}/disable")[..], &path[..]);
        confirmed(state, op, (headers, body), question, at)
    } else {
        form(state, headers, body)
    };
    if let Err(response) = checked {
        return *response;
    }
    if let Some(refusal) = not_the_console(op, id) {
        return refusal;
    }
    let patch = serde_json::json!({ "disabled": disabled });
    match clients::update(state, id, &patch, &op.actor()).await {
        Ok(_) => done(&path, if disabled { "disabled" } else { "enabled" }),
        Err(e) => op.refused(e, &path),
    }
}

async fn disable(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_disabled(&state, &op, &id, &headers, &body, true).await
}

async fn enable(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    set_disabled(&state, &op, &id, &headers, &body, false).await
}

/// `POST /console/apps/{id}/delete`: its tokens revoked, then the registration gone.
async fn delete(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = app_path(&id);
    if let Some(refusal) = not_the_console(&op, &id) {
        return refusal;
    }
    let question = (
        "Delete this app?",
        "Every token it holds is refused within a second and its registration, roles and grants are gone. This cannot be undone.",
        "Delete the app",
    );
    if let Err(response) = confirmed(
        &state,
        &op,
        (&headers, &body),
        question,
        (&format!("{path}/delete"), &path),
    ) {
        return *response;
    }
    match clients::delete(&state, &id, &op.actor()).await {
        Ok(_) => Redirect::to("/console/apps?done=deleted").into_response(),
        Err(e) => op.refused(e, &path),
    }
}

/// The roles' rows: holders named (people by username, groups by name).
async fn role_rows(
    state: &AppState,
    id: &str,
    roles: Vec<(lanyard_core::model::Role, Vec<Holder>)>,
) -> Vec<RoleRow> {
    let subs: Vec<&str> = roles
        .iter()
        .flat_map(|(_, holders)| holders)
        .filter_map(|h| match h {
            Holder::User(sub) => Some(sub.as_str()),
            Holder::Group(_) => None,
        })
        .collect();
    let names = super::names(state, &subs).await;
    let mut rows = Vec::with_capacity(roles.len());
    for (role, holders) in roles {
        let mut shown = Vec::with_capacity(holders.len());
        for holder in holders {
            shown.push(match holder {
                Holder::User(sub) => {
                    let name = names.readable(&sub);
                    (format!("user:{sub}"), name)
                }
                Holder::Group(group) => {
                    let name = access::group(state, &group)
                        .await
                        .map_or_else(|_| group.clone(), |g| g.name);
                    (format!("group:{group}"), format!("the group {name}"))
                }
            });
        }
        rows.push(RoleRow {
            path: format!("{}/roles/{}", app_path(id), enc(&role.name)),
            name: role.name,
            description: role.description.unwrap_or_default(),
            holders: shown,
        });
    }
    rows
}

/// Runs a role change from a checked form, then back to the app's page with `done`.
async fn role_change<F, Fut>(
    state: &AppState,
    op: &Operator,
    id: &str,
    headers: &HeaderMap,
    body: &[u8],
    work: F,
) -> Response
where
    F: FnOnce(Params, String) -> Fut,
    Fut: std::future::Future<Output = Result<&'static str, ServiceError>>,
{
    let path = app_path(id);
    let form = match form(state, headers, body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    match work(form, op.actor()).await {
        Ok(what) => done(&path, what),
        Err(e) => op.refused(e, &path),
    }
}

/// `POST /console/apps/{id}/roles` (`name`, `description`).
async fn define_role(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (core, cid) = (state.clone(), id.clone());
    role_change(
        &state,
        &op,
        &id,
        &headers,
        &body,
        move |form, actor| async move {
            let name = form.get("name").map(str::trim).unwrap_or("");
            let description = form
                .get("description")
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned);
            access::create_role(&core, &cid, name, description, &actor)
                .await
                .map(|_| "role-defined")
        },
    )
    .await
}

/// The holder a grant form names: `holder` is a username, or `group:` and a group's name.
async fn holder_named(state: &AppState, named: &str) -> Result<Holder, ServiceError> {
    let named = named.trim();
    match named.strip_prefix("group:") {
        Some(group) => Ok(Holder::Group(
            access::group_by_name(state, group.trim()).await?.id,
        )),
        None => Ok(Holder::User(
            lanyard_core::users::by_username(state, named).await?.sub,
        )),
    }
}

/// `POST /console/apps/{id}/roles/{role}/grant` (`holder`: a username, or `group:<name>`).
async fn grant(
    State(state): State<AppState>,
    op: Operator,
    Path((id, role)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (core, cid) = (state.clone(), id.clone());
    role_change(
        &state,
        &op,
        &id,
        &headers,
        &body,
        move |form, actor| async move {
            let holder = holder_named(&core, form.get("holder").unwrap_or("")).await?;
            access::grant_role(&core, &cid, &role, &holder, &actor)
                .await
                .map(|_| "granted")
        },
    )
    .await
}

/// `POST /console/apps/{id}/roles/{role}/take` (`holder`: `user:<sub>` or `group:<id>`).
async fn take(
    State(state): State<AppState>,
    op: Operator,
    Path((id, role)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (core, cid) = (state.clone(), id.clone());
    role_change(
        &state,
        &op,
        &id,
        &headers,
        &body,
        move |form, actor| async move {
            let holder = match form.get("holder").unwrap_or("").split_once(':') {
                Some(("user", sub)) => Holder::User(sub.to_owned()),
                Some(("group", group)) => Holder::Group(group.to_owned()),
                _ => return Err(ServiceError::field("holder", "name who holds the role")),
            };
            if cid == CONSOLE_CLIENT
                && role == OPERATOR_ROLE
                && access::holders(&core, &cid, &role).await?.len() <= 1
            {
                return Err(ServiceError::Conflict(
                    "this is the last holder of the operator role: make someone else an operator first, or nobody could use the console".to_owned(),
                ));
            }
            access::revoke_role(&core, &cid, &role, &holder, &actor)
                .await
                .map(|_| "taken")
        },
    )
    .await
}

/// `POST /console/apps/{id}/roles/{role}/delete`: asked first.
async fn delete_role(
    State(state): State<AppState>,
    op: Operator,
    Path((id, role)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = app_path(&id);
    if id == CONSOLE_CLIENT && role == OPERATOR_ROLE {
        let e = ServiceError::Conflict(
            "the operator role cannot be deleted: nobody could use the console".to_owned(),
        );
        return op.refused(e, &path);
    }
    let question = (
        "Delete this role?",
        "Everyone who holds it loses it: their tokens that carried it are refused within a second.",
        "Delete the role",
    );
    let action = format!("{path}/roles/{}/delete", enc(&role));
    if let Err(response) = confirmed(&state, &op, (&headers, &body), question, (&action, &path)) {
        return *response;
    }
    match access::delete_role(&state, &id, &role, &op.actor()).await {
        Ok(_) => done(&path, "role-deleted"),
        Err(e) => op.refused(e, &path),
    }
}
