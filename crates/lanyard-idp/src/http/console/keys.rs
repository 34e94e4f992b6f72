//! Signing keys: the published keys and their ages, starting a rotation, and removing a key
//! (a leaked one: every token it signed is refused).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Nav, Operator, confirmed, done, form, notice, query, when};
use crate::state::AppState;
use lanyard_core::keys;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys", get(list))
        .route("/keys/rotate", post(rotate))
        .route("/keys/remove", post(remove))
}

pub(super) struct KeyRow {
    pub(super) kid: String,
    pub(super) state: String,
    pub(super) alg: String,
    pub(super) created: String,
    pub(super) age_days: i64,
    pub(super) note: String,
}

/// The published keys as rows, newest first.
pub(super) fn rows(keys: &[keys::KeyView], now_secs: i64) -> Vec<KeyRow> {
    keys.iter()
        .map(|k| KeyRow {
            kid: k.kid.clone(),
            state: k.state.clone(),
            alg: k.alg.clone(),
            created: when(k.created_at),
            age_days: (now_secs - k.created_at).max(0) / 86_400,
            note: match (k.signs_from, k.published_until) {
                (Some(from), _) => format!("signs from {}", when(from)),
                (_, Some(until)) => format!("published until {}", when(until)),
                _ => String::new(),
            },
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    nav: Nav,
    keys: Vec<KeyRow>,
    notice: Option<&'static str>,
}

/// `GET /console/keys`.
async fn list(State(state): State<AppState>, op: Operator, RawQuery(raw): RawQuery) -> Response {
    let published = match keys::list(&state).await {
        Ok(keys) => keys,
        Err(e) => return op.refused(e, "/console/keys"),
    };
    let q = query(raw.as_deref());
    op.page(&KeysPage {
        nav: op.nav("keys"),
        keys: rows(&published, state.clock.now().as_secs()),
        notice: notice(
            &q,
            &[
                ("rotated", "A new key is published; it starts to sign once apps have had time to fetch it, and the old one retires."),
                ("removed", "The key was removed: every token it signed is refused, and apps fetch the keys again."),
            ],
        ),
    })
}

/// `POST /console/keys/rotate`: a new key, published before it signs (no token is refused).
async fn rotate(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = form(&state, &headers, &body) {
        return *response;
    }
    match keys::rotate(&state, &op.actor()).await {
        Ok(_) => done("/console/keys", "rotated"),
        Err(e) => op.refused(e, "/console/keys"),
    }
}

/// `POST /console/keys/remove` (`kid`): an emergency, for a key that leaked.
async fn remove(
    State(state): State<AppState>,
    op: Operator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let question = (
        "Remove this signing key?",
        "Every token it signed is refused at once, so people may have to sign in again. Do this when the key leaked; for a routine change, rotate instead.",
        "Remove the key",
    );
    let at = ("/console/keys/remove", "/console/keys");
    let form = match confirmed(&state, &op, (&headers, &body), question, at) {
        Ok(form) => form,
        Err(response) => return *response,
    };
    let kid = form.get("kid").unwrap_or_default();
    match keys::remove(&state, kid, &op.actor()).await {
        Ok(_) => done("/console/keys", "removed"),
        Err(e) => op.refused(e, "/console/keys"),
    }
}
