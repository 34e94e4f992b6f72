//! The revocation feed, for apps that cannot reach Redis: `GET /revocations/snapshot` (the
//! lists and the cursor to follow from) and `GET /revocations/events?epoch=E&seq=N` (every
//! event after that cursor, as Server-Sent Events). Both take a confidential client's
//! credentials (HTTP Basic).
//!
//! The stream sends `revocation` events (`id: <epoch>:<seq>`, data the event as JSON), a
//! `heartbeat` each time the store answered with nothing new (every [`HEARTBEAT`]) — so a
//! heartbeat says "nothing was revoked that you have not seen", never just "the socket is
//! open" — and `resnapshot` (then the end) when the client must take a new snapshot. A store
//! failure ends the stream: the client reconnects from its last cursor, and meanwhile hears
//! no heartbeat, so its staleness bound runs.
//!
//! Every stream of a node reads the store through one shared subscription
//! (`lanyard_store::Fanout`, in `Web::feed`): 10,000 apps following one node are one Redis
//! connection, not 10,000.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use futures_util::stream;
use lanyard_core::revocation::AppView;
use lanyard_store::{Cursor, Feed, Subscription};
use tokio::sync::watch;

use super::reply::no_store;
use super::token::secret_client;
use crate::oauth::error::TokenError;
use crate::params::Params;
use crate::state::AppState;

/// How long the stream waits on the store before it says "nothing new" (a heartbeat).
pub(crate) const HEARTBEAT: Duration = crate::state::FEED_HEARTBEAT;

/// `GET /revocations/snapshot`.
pub(crate) async fn snapshot(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let result = async {
        let app = secret_client(&state, &headers).await?;
        let snapshot = lanyard_core::revocation::snapshot(&state).await?;
        let mut view = AppView::new(&app.client_id);
        Ok::<_, TokenError>(view.snapshot(&state, snapshot).await?)
    }
    .await;
    match result {
        Ok(snapshot) => (no_store(), Json(snapshot)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /revocations/events?epoch=E&seq=N`.
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let app = secret_client(&state, &headers).await?;
        let cursor = cursor(query.as_deref())?;
        Ok::<_, TokenError>((
            state.web().feed.subscribe(&cursor).await?,
            app.client_id.clone(),
        ))
    }
    .await;
    match result {
        Ok((subscription, reader)) => {
            let stopping = state.web().stopping.subscribe();
            let view = AppView::new(&reader);
            let mut response =
                Sse::new(follow(subscription, stopping, state, view)).into_response();
            // Proxies must pass events on as they come.
            response
                .headers_mut()
                .insert("x-accel-buffering", HeaderValue::from_static("no"));
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

fn cursor(query: Option<&str>) -> Result<Cursor, TokenError> {
    let params = Params::parse(query.unwrap_or_default().as_bytes())
        .map_err(|e| TokenError::invalid_request(e.to_string()))?;
    if let Some(name) = params.duplicated() {
        return Err(TokenError::invalid_request(format!(
            "{name} is sent more than once"
        )));
    }
    let epoch = params
        .get("epoch")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| TokenError::invalid_request("epoch is missing (take it from a snapshot)"))?;
    let seq = params
        .get("seq")
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            TokenError::invalid_request("seq is missing or not a number (take it from a snapshot)")
        })?;
    Ok(Cursor {
        epoch: epoch.to_owned(),
        seq,
    })
}

enum Step {
    Open(Box<Stream>),
    Done,
}

/// A stream being followed: the subscription, the server's stop signal, the state, what the
/// app may see, and its place in the subscribers gauge.
struct Stream {
    sub: Box<dyn Subscription>,
    stopping: watch::Receiver<bool>,
    state: AppState,
    view: AppView,
    _counted: Subscriber,
}

/// Counts an open stream in the subscribers gauge, for as long as it lives.
struct Subscriber;

impl Subscriber {
    fn new() -> Self {
        lanyard_core::metrics::feed_subscribers(1.0);
        Self
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        lanyard_core::metrics::feed_subscribers(-1.0);
    }
}

/// The SSE events of a subscription, until it ends or the server stops.
fn follow(
    sub: Box<dyn Subscription>,
    stopping: watch::Receiver<bool>,
    state: AppState,
    view: AppView,
) -> impl futures_util::Stream<Item = Result<Event, Infallible>> {
    let open = Step::Open(Box::new(Stream {
        sub,
        stopping,
        state,
        view,
        _counted: Subscriber::new(),
    }));
    stream::unfold(open, |step| async move {
        let Step::Open(mut s) = step else {
            return None;
        };
        let next = tokio::select! {
            next = s.sub.next(HEARTBEAT) => next,
            _ = s.stopping.wait_for(|stop| *stop) => return None,
        };
        let events = match next {
            Ok(Feed::Events(events)) if events.is_empty() => {
                // "Nothing new" is true only once the lists hold every revocation recorded
                // here: one the store could not take is put back first (its event follows).
                // Boxed, here and below: a future held inline would make every open
                // stream (10,000 on a busy node) as large as the rarely taken path.
                if lanyard_core::revocation::behind(&s.state)
                    && let Err(e) =
                        Box::pin(lanyard_core::revocation::restore_once(&s.state)).await
                {
                    tracing::warn!(error = %e, "revocation feed: cannot restore the lists; ending the stream");
                    return None;
                }
                vec![heartbeat(s.sub.cursor())]
            }
            Ok(Feed::Events(events)) => {
                let now = s.state.clock.now();
                let mut sse = Vec::with_capacity(events.len());
                for e in &events {
                    // A watermark's `at` is when it was revoked (a jti's is the token's expiry).
                    if !matches!(e.revocation.target, lanyard_store::Target::Jti(_)) {
                        lanyard_core::metrics::feed_lag(e.revocation.at.until(now));
                    }
                    match Box::pin(s.view.shows(&s.state, &e.revocation.target)).await {
                        Ok(true) => sse.push(
                            Event::default()
                                .event("revocation")
                                .id(format!("{}:{}", e.cursor.epoch, e.cursor.seq))
                                .data(serde_json::to_string(e).unwrap_or_default()),
                        ),
                        Ok(false) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "revocation feed: cannot tell what this app may see; ending the stream");
                            return None;
                        }
                    }
                }
                // Only other apps' entries: the app is as current as the cursor says.
                if sse.is_empty() {
                    sse.push(heartbeat(s.sub.cursor()));
                }
                sse
            }
            Ok(Feed::Resnapshot) => {
                let done = vec![Event::default().event("resnapshot").data("{}")];
                return Some((stream::iter(done.into_iter().map(Ok)), Step::Done));
            }
            Err(e) => {
                tracing::warn!(error = %e, "revocation feed: the store failed; ending the stream");
                return None;
            }
        };
        Some((stream::iter(events.into_iter().map(Ok)), Step::Open(s)))
    })
    .flatten()
}

/// "Nothing was revoked that you have not seen, up to `cursor`."
fn heartbeat(cursor: &Cursor) -> Event {
    Event::default()
        .event("heartbeat")
        .data(serde_json::to_string(cursor).unwrap_or_default())
}
