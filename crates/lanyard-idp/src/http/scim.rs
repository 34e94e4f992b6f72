//! SCIM 2.0 at `/scim/v2` (RFC 7644): `Users`, `Groups`, `ServiceProviderConfig`,
//! `ResourceTypes`, `Schemas`. Authorised by a `client_credentials` access token for the scope
//! `lanyard:scim` (a scope apart from `lanyard:admin`); answered in `application/scim+json`,
//! with SCIM error documents for every refusal. The work is `lanyard_core::scim`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

use super::admin::auth::scoped_caller;
use crate::state::AppState;
use lanyard_core::scim::{self, Resource, ScimError, schema};

/// Where SCIM is mounted.
pub(crate) const PREFIX: &str = "/scim/v2";
/// The scope SCIM requires.
pub(crate) const SCIM_SCOPE: &str = "lanyard:scim";
/// The largest request body (a group replaced with its members is the largest).
const BODY_LIMIT: usize = 1024 * 1024;

/// The SCIM routes, to be nested at [`PREFIX`].
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/ServiceProviderConfig",
            get(service_provider_config).fallback(not_allowed),
        )
        .route("/ResourceTypes", get(resource_types).fallback(not_allowed))
        .route(
            "/ResourceTypes/{id}",
            get(resource_type).fallback(not_allowed),
        )
        .route("/Schemas", get(schemas).fallback(not_allowed))
        .route("/Schemas/{id}", get(one_schema).fallback(not_allowed))
        // `Users` and `Groups` (`resource` refuses any other name with a SCIM 404).
        .route("/{resource}", get(list).post(create))
        .route("/{resource}/.search", post(search))
        .route(
            "/{resource}/{id}",
            get(get_one).put(replace).patch(patch).delete(delete),
        )
        .route("/.search", post(search_everything))
        .fallback(unknown)
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
}

/// An authorised SCIM caller: the client its token was issued to.
pub(crate) struct Caller {
    client_id: String,
}

impl Caller {
    fn actor(&self) -> String {
        format!("scim:{}", self.client_id)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let body = |status: u16, detail: &str| {
            reply(ScimError {
                status,
                scim_type: None,
                detail: detail.to_owned(),
            })
        };
        let client_id = scoped_caller(parts, state, SCIM_SCOPE, body).await?;
        Ok(Self { client_id })
    }
}

const SCIM_JSON: HeaderValue = HeaderValue::from_static("application/scim+json");

/// A SCIM answer: `body` as `application/scim+json`, with `ETag` when it is one resource.
fn answer(status: StatusCode, body: Value) -> Response {
    let etag = body["meta"]["version"].as_str().map(str::to_owned);
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, SCIM_JSON);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        headers.insert(header::ETAG, v);
    }
    response
}

/// A created resource: 201 with `Location`.
fn created(body: Value) -> Response {
    let location = body["meta"]["location"].as_str().map(str::to_owned);
    let mut response = answer(StatusCode::CREATED, body);
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// A SCIM error document with its status.
fn reply(e: ScimError) -> Response {
    if e.status >= 500 {
        tracing::error!(detail = %e.detail, "SCIM request failed");
    }
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = answer(status, e.to_json());
    if e.status == 503 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

fn respond(result: Result<Value, ScimError>, attrs: &Attrs) -> Response {
    match result {
        Ok(body) => answer(StatusCode::OK, attrs.apply(body)),
        Err(e) => reply(e),
    }
}

/// `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5), for every answer that carries
/// resources.
#[derive(Default)]
struct Attrs {
    attributes: Option<String>,
    excluded: Option<String>,
}

impl Attrs {
    fn apply(&self, body: Value) -> Value {
        if self.attributes.is_none() && self.excluded.is_none() {
            return body;
        }
        let project =
            |r: Value| scim::project(r, self.attributes.as_deref(), self.excluded.as_deref());
        match body {
            Value::Object(mut map) if map.contains_key("Resources") => {
                if let Some(Value::Array(items)) = map.remove("Resources") {
                    map.insert(
                        "Resources".into(),
                        Value::Array(items.into_iter().map(project).collect()),
                    );
                }
                Value::Object(map)
            }
            other => project(other),
        }
    }
}

/// A search's parameters, from the query string or a `.search` body.
#[derive(Default)]
struct Search {
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    attrs: Attrs,
}

impl Search {
    fn from_query(raw: Option<&str>) -> Result<Self, ScimError> {
        let mut search = Self::default();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let number = |v: &str| {
                v.parse::<i64>().map_err(|_| {
                    ScimError::bad("invalidValue", format!("{k} must be a whole number"))
                })
            };
            match k.as_ref() {
                "filter" => search.filter = Some(v.into_owned()),
                "startIndex" => search.start_index = Some(number(&v)?),
                "count" => search.count = Some(number(&v)?),
                "attributes" => search.attrs.attributes = Some(v.into_owned()),
                "excludedAttributes" => search.attrs.excluded = Some(v.into_owned()),
                "sortBy" | "sortOrder" => {} // Not supported (ServiceProviderConfig says so).
                _ => {}
            }
        }
        Ok(search)
    }

    fn from_body(body: &Bytes) -> Result<Self, ScimError> {
        let v = json_body(body)?;
        let list = |name: &str| match v.get(name) {
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        Ok(Self {
            filter: v.get("filter").and_then(Value::as_str).map(str::to_owned),
            start_index: v.get("startIndex").and_then(Value::as_i64),
            count: v.get("count").and_then(Value::as_i64),
            attrs: Attrs {
                attributes: list("attributes"),
                excluded: list("excludedAttributes"),
            },
        })
    }
}

fn attrs_of(raw: Option<&str>) -> Attrs {
    Search::from_query(raw).map(|s| s.attrs).unwrap_or_default()
}

fn json_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn base(state: &AppState) -> String {
    scim::base(&state.config.issuer)
}

// --- Discovery ------------------------------------------------------------------------------

async fn service_provider_config(State(state): State<AppState>, _: Caller) -> Response {
    answer(
        StatusCode::OK,
        schema::service_provider_config(&base(&state)),
    )
}

async fn resource_types(State(state): State<AppState>, _: Caller) -> Response {
    answer(
        StatusCode::OK,
        schema::all(schema::resource_types(&base(&state))),
    )
}

async fn resource_type(
    State(state): State<AppState>,
    _: Caller,
    Path(id): Path<String>,
) -> Response {
    match schema::one(schema::resource_types(&base(&state)), &id) {
        Some(t) => answer(StatusCode::OK, t),
        None => reply(ScimError::not_found(format!("no resource type {id:?}"))),
    }
}

async fn schemas(State(state): State<AppState>, _: Caller) -> Response {
    answer(StatusCode::OK, schema::all(schema::schemas(&base(&state))))
}

async fn one_schema(State(state): State<AppState>, _: Caller, Path(id): Path<String>) -> Response {
    match schema::one(schema::schemas(&base(&state)), &id) {
        Some(s) => answer(StatusCode::OK, s),
        None => reply(ScimError::not_found(format!("no schema {id:?}"))),
    }
}

async fn not_allowed() -> Response {
    let mut response = reply(ScimError {
        status: 405,
        scim_type: None,
        detail: "this endpoint is read-only".to_owned(),
    });
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}

async fn unknown() -> Response {
    reply(ScimError::not_found(
        "no such SCIM endpoint: Users, Groups, ServiceProviderConfig, ResourceTypes and Schemas are served",
    ))
}

async fn search_everything(_: Caller) -> Response {
    reply(ScimError {
        status: 501,
        scim_type: None,
        detail: "search across resource types is not supported: search /Users or /Groups"
            .to_owned(),
    })
}

// --- Users and Groups ----------------------------------------------------------------------

/// The resource type a path names, or the SCIM 404.
/// An id no resource can have (a NUL or another control character, which PostgreSQL would
/// refuse as a database error): 404 before the database is asked.
fn no_such_id(id: &str) -> Option<ScimError> {
    id.chars()
        .any(char::is_control)
        .then(|| ScimError::not_found("no resource has that id"))
}

fn resource(segment: &str) -> Result<Resource, ScimError> {
    Resource::named(segment).ok_or_else(|| {
        ScimError::not_found(format!(
            "no resource type {segment:?}: Users and Groups are served"
        ))
    })
}

async fn list(
    State(state): State<AppState>,
    _: Caller,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let (kind, search) = match (resource(&kind), Search::from_query(raw.as_deref())) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(e), _) | (_, Err(e)) => return reply(e),
    };
    run_search(&state, kind, search).await
}

async fn search(
    State(state): State<AppState>,
    _: Caller,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    let (kind, search) = match (resource(&kind), Search::from_body(&body)) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(e), _) | (_, Err(e)) => return reply(e),
    };
    run_search(&state, kind, search).await
}

async fn run_search(state: &AppState, kind: Resource, search: Search) -> Response {
    let result = kind
        .search(
            state,
            search.filter.as_deref(),
            search.start_index,
            search.count,
        )
        .await;
    respond(result, &search.attrs)
}

async fn get_one(
    State(state): State<AppState>,
    _: Caller,
    Path((kind, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    if let Some(e) = no_such_id(&id) {
        return reply(e);
    }
    match resource(&kind) {
        Ok(kind) => respond(kind.get(&state, &id).await, &attrs_of(raw.as_deref())),
        Err(e) => reply(e),
    }
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    body: Bytes,
) -> Response {
    let kind = match resource(&kind) {
        Ok(k) => k,
        Err(e) => return reply(e),
    };
    let result = match json_body(&body) {
        Ok(v) => kind.create(&state, &v, &caller.actor()).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(made) => created(made),
        Err(e) => reply(e),
    }
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&state, &caller, &kind, &id, &headers, &body, false).await
}

async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change(&state, &caller, &kind, &id, &headers, &body, true).await
}

/// PUT (`patch` false) or PATCH of one resource.
async fn change(
    state: &AppState,
    caller: &Caller,
    kind: &str,
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    patch: bool,
) -> Response {
    if let Some(e) = no_such_id(id) {
        return reply(e);
    }
    let kind = match resource(kind) {
        Ok(k) => k,
        Err(e) => return reply(e),
    };
    let (if_match, actor) = (if_match(headers), caller.actor());
    let result = match json_body(body) {
        Ok(v) if patch => kind.patch(state, id, &v, if_match.as_deref(), &actor).await,
        Ok(v) => {
            kind.replace(state, id, &v, if_match.as_deref(), &actor)
                .await
        }
        Err(e) => Err(e),
    };
    respond(result, &Attrs::default())
}

async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(e) = no_such_id(&id) {
        return reply(e);
    }
    let kind = match resource(&kind) {
        Ok(k) => k,
        Err(e) => return reply(e),
    };
    match kind
        .delete(&state, &id, if_match(&headers).as_deref(), &caller.actor())
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => reply(e),
    }
}
