//! People: search, a person's page (details, groups and roles, factors, sessions, recent
//! audit events) and what an operator does to them (edit, disable and enable, end sessions,
//! revoke everything, reset second factors, mail an invitation or a reset link, invite).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::{Nav, Operator, confirm, done, enc, form, notice, query, when};
use crate::state::AppState;
use lanyard_core::model::{AuditFilter, FactorKind, User};
use lanyard_core::revoke::{self, Subject};
use lanyard_core::session::{device, utc};
use lanyard_core::users::ProfileChange;
use lanyard_core::{ServiceError, access, email, factors, sessions, users};

/// People per page of the list.
const PAGE: u64 = 50;
/// Audit events on a person's page.
const RECENT: u64 = 20;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/people", get(list))
        .route("/people/invite", get(invite_page).post(invite))
        .route("/people/{sub}", get(show))
        .route("/people/{sub}/edit", get(edit_page).post(edit))
        .route("/people/{sub}/{action}", post(act))
}

fn person_path(sub: &str) -> String {
    format!("/console/people/{}", enc(sub))
}

/// A person as the list shows them.
pub(super) struct PersonRow {
    pub(super) path: String,
    pub(super) username: String,
    pub(super) name: String,
    pub(super) email: String,
    pub(super) disabled: bool,
    pub(super) invited: bool,
}

impl From<&User> for PersonRow {
    fn from(u: &User) -> Self {
        Self {
            path: person_path(&u.sub),
            username: u.username.clone(),
            name: u.display_name.clone().unwrap_or_default(),
            email: u.email.clone().unwrap_or_default(),
            disabled: u.disabled,
            invited: u.password_hash.is_empty(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/people.html")]
struct PeoplePage {
    nav: Nav,
    q: String,
    people: Vec<PersonRow>,
    /// The next page's address.
    next: Option<String>,
    notice: Option<&'static str>,
}

/// `GET /console/people?q=&after=`: people by username, name or e-mail, a page at a time.
async fn list(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw.as_deref());
    let search = q.get("q").map(str::trim).filter(|s| !s.is_empty());
    let after = q.get("after").filter(|s| !s.is_empty());
    let found = match users::list(&state, search, after, PAGE).await {
        Ok(found) => found,
        Err(e) => return op.refused(e, "/console/people"),
    };
    let next = super::next_page(&found, PAGE, |last| {
        format!(
            "/console/people?q={}&after={}",
            enc(search.unwrap_or("")),
            enc(&last.username)
        )
    });
    op.page(&PeoplePage {
        nav: op.nav("people"),
        q: search.unwrap_or("").to_owned(),
        people: found.iter().map(PersonRow::from).collect(),
        next,
        notice: notice(&q, &[("invited", "The invitation is on its way.")]),
    })
}

struct SessionRow {
    sid: String,
    device: String,
    ip: String,
    since: String,
    last_seen: String,
    apps: String,
    remember_me: bool,
}

struct FactorRow {
    kind: &'static str,
    name: String,
    added: String,
    last_used: String,
}

pub(super) struct EventRow {
    pub(super) at: String,
    pub(super) actor: String,
    pub(super) action: String,
    pub(super) target: String,
    pub(super) outcome: String,
}

impl EventRow {
    /// The rows of `events`, people named by username where the trail has their `sub`.
    pub(super) async fn all(
        state: &AppState,
        events: &[(i64, lanyard_core::model::AuditEvent)],
    ) -> Vec<(i64, Self)> {
        let mut mentioned: Vec<&str> = Vec::with_capacity(events.len() * 2);
        for (_, e) in events {
            mentioned.push(&e.actor);
            mentioned.extend(e.target.as_deref());
        }
        let names = super::names(state, &mentioned).await;
        events
            .iter()
            .map(|(id, e)| {
                let row = Self {
                    at: utc(e.at),
                    actor: names.readable(&e.actor),
                    action: e.action.clone(),
                    target: e
                        .target
                        .as_deref()
                        .map(|t| names.readable(t))
                        .unwrap_or_default(),
                    outcome: e.outcome.clone(),
                };
                (*id, row)
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "console/person.html")]
struct PersonPage {
    nav: Nav,
    path: String,
    user: User,
    created: String,
    groups: Vec<String>,
    roles: Vec<String>,
    factors: Vec<FactorRow>,
    recovery_left: u64,
    sessions: Vec<SessionRow>,
    events: Vec<EventRow>,
    notice: Option<&'static str>,
}

const PERSON_NOTICES: [(&str, &str); 10] = [
    (
        "disabled",
        "Disabled: signed out everywhere, and every token refused.",
    ),
    ("enabled", "Enabled: they can sign in again."),
    ("ended", "That session was ended; its apps were told."),
    (
        "ended-all",
        "Every session was ended; their apps were told.",
    ),
    (
        "revoked",
        "Everything they held was revoked: sessions, refresh and access tokens.",
    ),
    (
        "factors-reset",
        "Their second factors were removed, and everything they held revoked.",
    ),
    ("invitation", "An invitation was mailed to them."),
    ("reset", "A password reset link was mailed to them."),
    ("edited", "Saved."),
    ("none", "There was nothing to end."),
];

/// `GET /console/people/{sub}`.
async fn show(
    State(state): State<AppState>,
    op: Operator,
    Path(sub): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let loaded = async {
        let user = users::get(&state, &sub).await?;
        let (groups, roles, (factors, recovery_left), sessions, events) = tokio::try_join!(
            access::groups_of(&state, &sub),
            access::roles_of(&state, &sub),
            factors::list(&state, &sub),
            sessions::list(&state, &sub),
            recent_events(&state, &sub),
        )?;
        Ok::<_, ServiceError>((
            user,
            groups,
            roles,
            factors,
            recovery_left,
            sessions,
            events,
        ))
    };
    let (user, groups, roles, factor_list, recovery_left, session_list, events) = match loaded.await
    {
        Ok(loaded) => loaded,
        Err(e) => return op.refused(e, "/console/people"),
    };
    let q = query(raw.as_deref());
    op.page(&PersonPage {
        nav: op.nav("people"),
        path: person_path(&sub),
        created: utc(user.created_at),
        groups: groups.into_iter().map(|g| g.name).collect(),
        roles: roles
            .into_iter()
            .map(|r| {
                let via = if r.direct || r.via.is_empty() {
                    String::new()
                } else {
                    format!(" (through {})", r.via.join(", "))
                };
                format!("{}: {}{via}", r.client_id, r.role)
            })
            .collect(),
        factors: factor_list
            .iter()
            .map(|f| FactorRow {
                kind: match f.kind {
                    FactorKind::Totp => "Authenticator app",
                    FactorKind::Passkey => "Passkey",
                },
                name: f.name.clone(),
                added: utc(f.created_at),
                last_used: f.last_used_at.map_or_else(|| "never".to_owned(), utc),
            })
            .collect(),
        recovery_left,
        sessions: session_list
            .iter()
            .map(|s| SessionRow {
                sid: s.sid.clone(),
                device: device(s.user_agent.as_deref()),
                ip: s.ip.clone().unwrap_or_else(|| "unknown".to_owned()),
                since: when(s.created_at),
                last_seen: when(s.last_seen),
                apps: if s.clients.is_empty() {
                    "none yet".to_owned()
                } else {
                    s.clients.join(", ")
                },
                remember_me: s.remember_me,
            })
            .collect(),
        events: EventRow::all(&state, &events)
            .await
            .into_iter()
            .map(|(_, row)| row)
            .collect(),
        notice: notice(&q, &PERSON_NOTICES),
        user,
    })
}

/// The newest events about `sub` or by them: the trail names a person as `sub:<sub>` in
/// some events and by the bare `sub` in others, and their own actions (signing in) by actor.
async fn recent_events(
    state: &AppState,
    sub: &str,
) -> Result<Vec<(i64, lanyard_core::model::AuditEvent)>, ServiceError> {
    let filters = [
        AuditFilter {
            target: Some(format!("sub:{sub}")),
            ..AuditFilter::default()
        },
        AuditFilter {
            target: Some(sub.to_owned()),
            ..AuditFilter::default()
        },
        AuditFilter {
            actor: Some(sub.to_owned()),
            ..AuditFilter::default()
        },
    ];
    let audit = state.db.audit();
    let (a, b, c) = tokio::try_join!(
        audit.query(&filters[0], None, Some(RECENT)),
        audit.query(&filters[1], None, Some(RECENT)),
        audit.query(&filters[2], None, Some(RECENT)),
    )?;
    let mut events: Vec<_> = a.into_iter().chain(b).chain(c).collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.0));
    events.dedup_by_key(|e| e.0);
    events.truncate(usize::try_from(RECENT).unwrap_or(usize::MAX));
    Ok(events)
}

/// What `POST /console/people/{sub}/{action}` may do, and the question a dangerous one asks
/// first (title, what happens, the button).
fn question(action: &str) -> Option<Option<(&'static str, &'static str, &'static str)>> {
    Some(match action {
        "disable" => Some((
            "Disable this person?",
            "They are signed out of every app at once, every token of theirs is refused within a second, and they cannot sign in until enabled again.",
            "Disable",
        )),
        "revoke" => Some((
            "Revoke everything this person holds?",
            "Every session ends and every refresh and access token of theirs is refused within a second. They can sign in again.",
            "Revoke everything",
        )),
        "reset-factors" => Some((
            "Reset this person's second factors?",
            "Their authenticator apps, passkeys and recovery codes are removed and everything they hold is revoked. Do this only once you are sure who asked: they will sign in with their password alone, and set up a new factor.",
            "Reset second factors",
        )),
        "enable" | "end-session" | "end-sessions" | "mail-invitation" | "mail-reset" => None,
        _ => return None,
    })
}

/// `POST /console/people/{sub}/{action}`: disable, enable, end-session (`sid`), end-sessions,
/// revoke, reset-factors, mail-invitation, mail-reset; then back to the person's page.
async fn act(
    State(state): State<AppState>,
    op: Operator,
    Path((sub, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = person_path(&sub);
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let Some(question) = question(&action) else {
        return op.refused(
            ServiceError::NotFound(format!("no action {action:?}")),
            &path,
        );
    };
    if let Some(question) = question {
        let target = format!("{path}/{action}");
        if let Some(ask) = confirm(&op, &form, question, &target, &path) {
            return ask;
        }
    }
    let actor = op.actor();
    let done_what = match action.as_str() {
        "disable" => users::disable(&state, &sub, &actor)
            .await
            .map(|_| "disabled"),
        "enable" => users::enable(&state, &sub, &actor).await.map(|_| "enabled"),
        "end-session" => {
            let sid = form.get("sid").unwrap_or_default();
            sessions::end(&state, &sub, sid, &actor)
                .await
                .map(|_| "ended")
        }
        "end-sessions" => sessions::end_all(&state, &sub, &actor).await.map(|o| {
            if o.sessions_ended.is_empty() {
                "none"
            } else {
                "ended-all"
            }
        }),
        "revoke" => match users::get(&state, &sub).await {
            Ok(_) => revoke::revoke(&state, Subject::Sub(sub.clone()), &actor)
                .await
                .map(|_| "revoked"),
            Err(e) => Err(e),
        },
        "reset-factors" => factors::reset(&state, &sub, &actor)
            .await
            .map(|_| "factors-reset"),
        "mail-invitation" => email::reinvite(&state, &sub, &actor)
            .await
            .map(|_| "invitation"),
        "mail-reset" => email::send_reset(&state, &sub, &actor)
            .await
            .map(|_| "reset"),
        _ => Err(ServiceError::NotFound(format!("no action {action:?}"))),
    };
    match done_what {
        Ok(what) => done(&path, what),
        Err(e) => op.refused(e, &path),
    }
}

#[derive(Template)]
#[template(path = "console/person_edit.html")]
struct EditPage<'a> {
    nav: Nav,
    path: String,
    username: &'a str,
    display_name: &'a str,
    email: &'a str,
    email_verified: bool,
    error: Option<String>,
}

/// `GET /console/people/{sub}/edit`.
async fn edit_page(
    State(state): State<AppState>,
    op: Operator,
    Path(sub): Path<String>,
) -> Response {
    match users::get(&state, &sub).await {
        Ok(user) => op.page(&EditPage {
            nav: op.nav("people"),
            path: person_path(&sub),
            username: &user.username,
            display_name: user.display_name.as_deref().unwrap_or(""),
            email: user.email.as_deref().unwrap_or(""),
            email_verified: user.email_verified,
            error: None,
        }),
        Err(e) => op.refused(e, "/console/people"),
    }
}

/// `POST /console/people/{sub}/edit`: display name and address (an empty field clears it),
/// and whether the address is known to be theirs.
async fn edit(
    State(state): State<AppState>,
    op: Operator,
    Path(sub): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let text = |name: &str| {
        form.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let change = ProfileChange {
        email: Some(text("email")),
        display_name: Some(text("display_name")),
        email_verified: Some(form.get("email_verified") == Some("yes")),
    };
    match users::update(&state, &sub, change, &op.actor()).await {
        Ok(_) => done(&person_path(&sub), "edited"),
        Err(e @ (ServiceError::Invalid(_) | ServiceError::Field { .. })) => {
            let username = users::get(&state, &sub)
                .await
                .map(|u| u.username)
                .unwrap_or_default();
            op.page_with(
                StatusCode::BAD_REQUEST,
                &EditPage {
                    nav: op.nav("people"),
                    path: person_path(&sub),
                    username: &username,
                    display_name: form.get("display_name").unwrap_or(""),
                    email: form.get("email").unwrap_or(""),
                    email_verified: form.get("email_verified") == Some("yes"),
                    error: Some(e.to_string()),
                },
            )
        }
        Err(e) => op.refused(e, &person_path(&sub)),
    }
}

#[derive(Template)]
#[template(path = "console/invite.html")]
struct InvitePage<'a> {
    nav: Nav,
    username: &'a str,
    email: &'a str,
    display_name: &'a str,
    error: Option<String>,
}

/// `GET /console/people/invite`.
async fn invite_page(op: Operator) -> Response {
    op.page(&InvitePage {
        nav: op.nav("people"),
        username: "",
        email: "",
        display_name: "",
        error: None,
    })
}

/// `POST /console/people/invite`: a new person without a password, mailed a link to set one.
async fn invite(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match form(&state, &headers, &body) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let field = |name: &str| form.get(name).map(str::trim).unwrap_or("");
    let invitee = email::Invitee {
        username: field("username").to_owned(),
        email: field("email").to_owned(),
        display_name: Some(field("display_name").to_owned()).filter(|n| !n.is_empty()),
    };
    match email::invite(&state, invitee, &op.actor()).await {
        Ok((user, _)) => {
            Redirect::to(&format!("{}?done=invitation", person_path(&user.sub))).into_response()
        }
        Err(
            e @ (ServiceError::Invalid(_) | ServiceError::Field { .. } | ServiceError::Conflict(_)),
        ) => op.page_with(
            StatusCode::BAD_REQUEST,
            &InvitePage {
                nav: op.nav("people"),
                username: field("username"),
                email: field("email"),
                display_name: field("display_name"),
                error: Some(e.to_string()),
            },
        ),
        Err(e) => op.refused(e, "/console/people"),
    }
}
