//! Groups: the list, making one, a group's page (its members), adding and removing members
//! (a member removed loses what the group gave at once), deleting a group.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::people::PersonRow;
use super::{Nav, Operator, confirmed, done, enc, form, notice, query};
use crate::state::AppState;
use lanyard_core::access::{self, NewGroup};
use lanyard_core::{ServiceError, users};

/// Groups per page.
const PAGE: u64 = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list).post(create))
        .route("/groups/{id}", get(show))
        .route("/groups/{id}/members/add", post(add_member))
        .route("/groups/{id}/members/remove", post(remove_member))
        .route("/groups/{id}/delete", post(delete))
}

fn group_path(id: &str) -> String {
    format!("/console/groups/{}", enc(id))
}

struct GroupRow {
    path: String,
    name: String,
    description: String,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage {
    nav: Nav,
    q: String,
    groups: Vec<GroupRow>,
    next: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn groups_page(
    state: &AppState,
    op: &Operator,
    q: &crate::params::Params,
    error: Option<String>,
) -> Response {
    let search = q.get("q").map(str::trim).filter(|s| !s.is_empty());
    let after = q.get("after").filter(|s| !s.is_empty());
    let found = match access::list_groups(state, search, after, PAGE).await {
        Ok(found) => found,
        Err(e) => return op.refused(e, "/console/groups"),
    };
    let next = super::next_page(&found, PAGE, |last| {
        format!(
            "/console/groups?q={}&after={}",
            enc(search.unwrap_or("")),
            enc(&last.name)
        )
    });
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    op.page_with(
        status,
        &GroupsPage {
            nav: op.nav("groups"),
            q: search.unwrap_or("").to_owned(),
            groups: found
                .iter()
                .map(|g| GroupRow {
                    path: group_path(&g.id),
                    name: g.name.clone(),
                    description: g.description.clone().unwrap_or_default(),
                })
                .collect(),
            next,
            notice: notice(
                q,
                &[(
                    "deleted",
                    "The group was deleted; its members lost what it gave them.",
                )],
            ),
            error,
        },
    )
}

/// `GET /console/groups?q=&after=`.
async fn list(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    groups_page(&state, &op, &query(raw.as_deref()), None).await
}

/// `POST /console/groups` (`name`, `description`).
async fn create(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let new = NewGroup {
        name: form.get("name").map(str::trim).unwrap_or("").to_owned(),
        description: form
            .get("description")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        external_id: None,
    };
    match access::create_group(&state, new, &op.actor()).await {
        Ok(group) => {
            Redirect::to(&format!("{}?done=created", group_path(&group.id))).into_response()
        }
        Err(
            e @ (ServiceError::Invalid(_) | ServiceError::Field { .. } | ServiceError::Conflict(_)),
        ) => {
            groups_page(
                &state,
                &op,
                &crate::params::Params::default(),
                Some(e.to_string()),
            )
            .await
        }
        Err(e) => op.refused(e, "/console/groups"),
    }
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage {
    nav: Nav,
    path: String,
    name: String,
    description: String,
    members: Vec<(String, PersonRow)>,
    notice: Option<&'static str>,
}

/// `GET /console/groups/{id}`.
async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let loaded = async {
        let group = access::group(&state, &id).await?;
        let members = access::members(&state, &id).await?;
        Ok::<_, ServiceError>((group, members))
    };
    let (group, members) = match loaded.await {
        Ok(loaded) => loaded,
        Err(e) => return op.refused(e, "/console/groups"),
    };
    let q = query(raw.as_deref());
    op.page(&GroupPage {
        nav: op.nav("groups"),
        path: group_path(&id),
        name: group.name,
        description: group.description.unwrap_or_default(),
        members: members
            .iter()
            .map(|u| (u.sub.clone(), PersonRow::from(u)))
            .collect(),
        notice: notice(
            &q,
            &[
                ("created", "The group was made."),
                (
                    "added",
                    "Added: their next tokens carry what the group gives.",
                ),
                (
                    "removed",
                    "Removed: what the group gave them is refused within a second.",
                ),
            ],
        ),
    })
}

/// `POST /console/groups/{id}/members/add` (`username`).
async fn add_member(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = group_path(&id);
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let username = form.get("username").map(str::trim).unwrap_or("");
    let result = async {
        let user = users::by_username(&state, username).await?;
        access::change_members(&state, &id, &[user.sub], &[], &op.actor()).await
    };
    match result.await {
        Ok(_) => done(&path, "added"),
        Err(e) => op.refused(e, &path),
    }
}

/// `POST /console/groups/{id}/members/remove` (`sub`).
async fn remove_member(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = group_path(&id);
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let sub = form.get("sub").unwrap_or_default().to_owned();
    match access::change_members(&state, &id, &[], &[sub], &op.actor()).await {
        Ok(_) => done(&path, "removed"),
        Err(e) => op.refused(e, &path),
    }
}

/// `POST /console/groups/{id}/delete`.
async fn delete(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = group_path(&id);
    let question = (
        "Delete this group?",
        "Its members lose the roles and app access it gave them, within a second. This cannot be undone.",
        "Delete the group",
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
    match access::delete_group(&state, &id, &op.actor()).await {
        Ok(_) => Redirect::to("/console/groups?done=deleted").into_response(),
        Err(e) => op.refused(e, &path),
    }
}
