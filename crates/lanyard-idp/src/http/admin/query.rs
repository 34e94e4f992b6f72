//! Query-string parameters for the admin API's lists: parsed strictly (a repeated name is a
//! 400 naming it), with typed readers whose errors name the parameter.

use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;

use lanyard_core::ServiceError;

use super::error::AdminError;
use crate::params::Params;

/// The query string of an admin request.
pub(crate) struct Query(Params);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let params = Params::parse(raw.unwrap_or_default().as_bytes())
            .map_err(|e| ServiceError::field("query", e.to_string()))?;
        if let Some(name) = params.duplicated() {
            return Err(
                ServiceError::field(name, format!("{name} is given more than once")).into(),
            );
        }
        Ok(Self(params))
    }
}

impl Query {
    /// A text parameter.
    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }

    /// An integer parameter within `range`.
    pub(crate) fn int(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ServiceError> {
        // A number given without a value is no number (the protocol endpoints take such a
        // parameter as omitted; the admin API is stricter).
        let given = if self.0.is_empty_value(name) {
            Some("")
        } else {
            self.0.get(name)
        };
        given
            .map(|raw| {
                raw.parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        ServiceError::field(
                            name,
                            format!(
                                "{name} is a whole number from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )
                    })
            })
            .transpose()
    }

    /// `limit`: how many rows a page holds, within `size`.
    pub(crate) fn limit(&self, size: PageSize) -> Result<u64, ServiceError> {
        let max = i64::try_from(size.max).unwrap_or(i64::MAX);
        Ok(self
            .int("limit", 1..=max)?
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(size.default))
    }
}

/// How many rows a page of an admin list holds: `limit` may ask for 1 to `max`, and gets
/// `default` when it does not ask (the OpenAPI annotations repeat these as literals).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageSize {
    /// Rows per page when `limit` is absent.
    pub(crate) default: u64,
    /// The most `limit` may ask for.
    pub(crate) max: u64,
}

/// The cursor for the page after `rows`: that of its last row when the page is full (there
/// may be more), none when it is not.
pub(crate) fn next_cursor<T, C>(rows: &[T], limit: u64, cursor: impl Fn(&T) -> C) -> Option<C> {
    if rows.len() as u64 == limit {
        rows.last().map(cursor)
    } else {
        None
    }
}
