//! axum glue (feature `axum`): the [`Authenticated`] extractor and responses for refusals.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::{Denial, Guard, Principal};

/// A handler argument: the request carried a valid, unrevoked access token for this API.
/// Uses the [`Principal`] left by a [`GuardLayer`](crate::GuardLayer) if one ran, and checks
/// the token itself otherwise (the app's state must give a [`Guard`]).
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who, with the token's claims.
    pub principal: Principal,
    realm: Arc<str>,
}

impl Authenticated {
    /// `Ok` if the token carries `scope`; otherwise the 403 `insufficient_scope` answer.
    pub fn require_scope(&self, scope: &str) -> Result<(), Refused> {
        self.principal
            .require_scope(scope)
            .map_err(|d| Refused::new(&d, &self.realm))
    }

    /// `Ok` if the person holds `role` at this API; otherwise the 403 `insufficient_scope`
    /// answer naming it (`missing_roles` in the body).
    pub fn require_role(&self, role: &str) -> Result<(), Refused> {
        self.principal
            .require_role(role)
            .map_err(|d| Refused::new(&d, &self.realm))
    }

    /// `Ok` if the person holds one of `roles`; otherwise the 403 naming them.
    pub fn require_any_role(&self, roles: &[&str]) -> Result<(), Refused> {
        self.principal
            .require_any_role(roles)
            .map_err(|d| Refused::new(&d, &self.realm))
    }

    /// `Ok` if the person is in `group`; otherwise the 403 naming it (`missing_group`).
    pub fn require_group(&self, group: &str) -> Result<(), Refused> {
        self.principal
            .require_group(group)
            .map_err(|d| Refused::new(&d, &self.realm))
    }

    /// `Ok` if the person signed in at least as strongly as `acr`; otherwise the 401
    /// `insufficient_user_authentication` answer with `acr_values` (RFC 9470), which
    /// [`ServiceClient`](crate::ServiceClient) and the web sign-in turn into a new sign-in.
    pub fn require_acr(&self, acr: &str) -> Result<(), Refused> {
        self.principal
            .require_acr(acr)
            .map_err(|d| Refused::new(&d, &self.realm))
    }

    /// `Ok` if the person signed in at most `max_age` before `now` (the guard's clock:
    /// [`Guard::now`]); otherwise the 401 `insufficient_user_authentication` with `max_age`.
    pub fn require_recent_sign_in(
        &self,
        max_age: std::time::Duration,
        now: lanyard_store::Timestamp,
    ) -> Result<(), Refused> {
        self.principal
            .require_recent_sign_in(max_age, now)
            .map_err(|d| Refused::new(&d, &self.realm))
    }
}

/// A refusal: turns into the RFC 6750 response (status, challenge, JSON body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub denial: Denial,
    realm: Arc<str>,
}

impl Refused {
    /// The refusal for `denial` under `realm`.
    pub fn new(denial: &Denial, realm: &str) -> Self {
        Self {
            denial: denial.clone(),
            realm: realm.into(),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.denial
            .to_response(&self.realm)
            .map(axum::body::Body::from)
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Guard: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refused> {
        let guard = Guard::from_ref(state);
        let realm: Arc<str> = guard.config().realm.as_str().into();
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Self {
                principal: principal.clone(),
                realm,
            });
        }
        match guard
            .authenticate_request(&parts.method, &parts.uri, &parts.headers)
            .await
        {
            Ok(principal) => Ok(Self { principal, realm }),
            Err(denial) => Err(Refused::new(&denial, &realm)),
        }
    }
}

/// The route an app mounts for push delivery (`axum` feature): `POST` with the SET as the
/// body; 202, or 400 with RFC 8935's `{"err", "description"}`.
pub async fn receive_signals(
    axum::extract::State(receiver): axum::extract::State<crate::signals::SsfReceiver>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: axum::http::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let authorization = header(axum::http::header::AUTHORIZATION);
    let content_type = header(axum::http::header::CONTENT_TYPE);
    match receiver
        .accept_push(authorization.as_deref(), content_type.as_deref(), &body)
        .await
    {
        Ok(()) => axum::http::StatusCode::ACCEPTED.into_response(),
        Err(e) => {
            let status = axum::http::StatusCode::from_u16(e.status)
                .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
            let mut response = (
                status,
                [(axum::http::header::CONTENT_LANGUAGE, "en")],
                axum::Json(e.body()),
            )
                .into_response();
            if e.is_temporary() {
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from_static("5"),
                );
            }
            response
        }
    }
}
