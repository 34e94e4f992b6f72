//! The answers RFC 6750 §3 prescribes, as plain `http` responses (the axum glue turns a
//! [`Denial`] into one): a `WWW-Authenticate: Bearer` challenge, and a JSON body carrying the
//! same `error` for API clients.

use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// No credentials: 401 with a bare challenge (no `error`).
    NoToken,
    /// A malformed request (two tokens, bad header syntax, a token in the URL): 400
    /// `invalid_request`.
    InvalidRequest(&'static str),
    /// Expired, revoked, forged, not for this API: 401 `invalid_token` saying which.
    InvalidToken(String),
    /// [`Denial::InvalidToken`] for a request that used (or should have used) the `DPoP`
    /// scheme: the challenge is `DPoP` (RFC 9449 §7.1).
    InvalidDpopToken(String),
    /// The DPoP proof is missing, malformed, replayed, or by another key than the token's:
    /// 401 `invalid_dpop_proof` with a `DPoP` challenge (RFC 9449 §7.1).
    InvalidDpopProof(String),
    /// The DPoP proof lacks the API's current nonce: 401 `use_dpop_nonce`, the nonce to use
    /// in `DPoP-Nonce` (RFC 9449 §9).
    UseDpopNonce(String),
    /// Valid, but without the scope the route needs: 403 `insufficient_scope`.
    InsufficientScope(String),
    /// Valid, but the person holds none of these roles: 403 `insufficient_scope` (RFC 6750
    /// §3.1: "higher privileges than provided by the access token"), with the roles named
    /// in the body (`missing_roles`: any one would do). A new token helps only once an
    /// operator granted the role.
    MissingRole(Vec<String>),
    /// Valid, but the person is not in this group: 403 `insufficient_scope`, the group named
    /// in the body (`missing_group`).
    MissingGroup(String),
    /// Valid, but the person signed in too weakly or too long ago for this route: 401
    /// `insufficient_user_authentication` (RFC 9470), with what would do (`acr_values`,
    /// `max_age`). A new sign-in with those satisfies it; a refreshed token would not.
    InsufficientUserAuthentication {
        /// The `acr` value(s) the route takes, space-separated.
        acr_values: Option<String>,
        /// The longest the sign-in may be ago, in seconds.
        max_age: Option<u64>,
    },
    /// Revocation cannot be checked right now (the mirror is stale): 503 with `Retry-After`.
    /// Not 401: a 401 would make clients throw away tokens that are still good.
    Unavailable(Duration),
}

impl Denial {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoToken
            | Self::InvalidToken(_)
            | Self::InvalidDpopToken(_)
            | Self::InvalidDpopProof(_)
            | Self::UseDpopNonce(_)
            | Self::InsufficientUserAuthentication { .. } => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) | Self::MissingRole(_) | Self::MissingGroup(_) => {
                StatusCode::FORBIDDEN
            }
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 error code, if any.
    pub fn error(&self) -> Option<&'static str> {
        match self {
            Self::NoToken => None,
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) | Self::InvalidDpopToken(_) => Some("invalid_token"),
            Self::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Self::UseDpopNonce(_) => Some("use_dpop_nonce"),
            Self::InsufficientScope(_) | Self::MissingRole(_) | Self::MissingGroup(_) => {
                Some("insufficient_scope")
            }
            Self::InsufficientUserAuthentication { .. } => Some("insufficient_user_authentication"),
            Self::Unavailable(_) => Some("temporarily_unavailable"),
        }
    }

    /// The human-readable description.
    pub fn description(&self) -> String {
        match self {
            Self::NoToken => "an access token is required".to_owned(),
            Self::InvalidRequest(d) => (*d).to_owned(),
            Self::InvalidToken(d) | Self::InvalidDpopToken(d) | Self::InvalidDpopProof(d) => {
                d.clone()
            }
            Self::InsufficientScope(scope) => format!("the access token lacks the scope {scope}"),
            Self::MissingRole(roles) => match roles.as_slice() {
                [one] => format!("this needs the role {one}, which you do not hold"),
                many => format!(
                    "this needs one of the roles {}, and you hold none of them",
                    many.join(", ")
                ),
            },
            Self::MissingGroup(group) => {
                format!("this is for members of the group {group}, and you are not one")
            }
            Self::InsufficientUserAuthentication {
                acr_values,
                max_age,
            } => match (acr_values, max_age) {
                (Some(acr), _) => format!("this needs a stronger sign-in ({acr})"),
                (None, Some(secs)) => {
                    format!("this needs a sign-in within the last {secs} seconds")
                }
                (None, None) => "this needs a new sign-in".to_owned(),
            },
            Self::Unavailable(_) => "access cannot be checked right now; retry shortly".to_owned(),
            Self::UseDpopNonce(_) => {
                "send the DPoP proof again with the nonce in the DPoP-Nonce header".to_owned()
            }
        }
    }

    /// The whole response, for `realm`.
    pub fn to_response(&self, realm: &str) -> Response<String> {
        let scheme = match self {
            Self::InvalidDpopToken(_) | Self::InvalidDpopProof(_) | Self::UseDpopNonce(_) => "DPoP",
            _ => "Bearer",
        };
        let mut challenge = format!(r#"{scheme} realm="{}""#, quote(realm));
        if let Some(error) = self
            .error()
            .filter(|_| !matches!(self, Self::Unavailable(_)))
        {
            challenge.push_str(&format!(
                r#", error="{error}", error_description="{}""#,
                quote(&self.description())
            ));
        }
        if let Self::InsufficientScope(scope) = self {
            challenge.push_str(&format!(r#", scope="{}""#, quote(scope)));
        }
        if scheme == "DPoP" {
            challenge.push_str(&format!(
                r#", algs="{}""#,
                crate::dpop::ALGORITHMS.join(" ")
            ));
        }
        if let Self::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } = self
        {
            if let Some(acr) = acr_values {
                challenge.push_str(&format!(r#", acr_values="{}""#, quote(acr)));
            }
            if let Some(secs) = max_age {
                challenge.push_str(&format!(r#", max_age="{secs}""#));
            }
        }
        // No `null` members: a field that does not apply is left out.
        let mut body = serde_json::json!({ "error_description": self.description() });
        if let Some(error) = self.error() {
            body["error"] = serde_json::json!(error);
        }
        if let Self::InsufficientUserAuthentication {
            acr_values,
            max_age,
        } = self
        {
            if let Some(acr) = acr_values {
                body["acr_values"] = serde_json::json!(acr);
            }
            if let Some(secs) = max_age {
                body["max_age"] = serde_json::json!(secs);
            }
        }
        if let Self::MissingRole(roles) = self {
            body["missing_roles"] = serde_json::json!(roles);
        }
        if let Self::MissingGroup(group) = self {
            body["missing_group"] = serde_json::json!(group);
        }
        let mut response = Response::new(body.to_string());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::Unavailable(retry) = self {
            if let Ok(v) = HeaderValue::from_str(&retry.as_secs().max(1).to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        } else if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Self::UseDpopNonce(nonce) = self
            && let Ok(v) = HeaderValue::from_str(nonce)
        {
            headers.insert("dpop-nonce", v);
        }
        response
    }
}

/// A value fit for a quoted auth-param: RFC 6750 §3 allows %x20-21 / %x23-5B / %x5D-7E in
/// `error_description` and `scope`. Anything else becomes `?`, so the challenge is always
/// sent (a value that broke the header would drop it).
fn quote(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(d: &Denial) -> String {
        d.to_response("wiki").headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap_or("")
            .to_owned()
    }

    #[test]
    fn rfc_6750_section_3() {
        assert_eq!(challenge(&Denial::NoToken), r#"Bearer realm="wiki""#);
        let bad = Denial::InvalidToken("the access token expired".into());
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&bad),
            r#"Bearer realm="wiki", error="invalid_token", error_description="the access token expired""#
        );
        let scope = Denial::InsufficientScope("reports:read".into());
        assert_eq!(scope.status(), StatusCode::FORBIDDEN);
        assert!(challenge(&scope).ends_with(r#", scope="reports:read""#));
        assert_eq!(
            Denial::InvalidRequest("x").status(),
            StatusCode::BAD_REQUEST
        );
        let busy = Denial::Unavailable(Duration::from_secs(5)).to_response("wiki");
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "5");
        let odd = Denial::InsufficientScope("a\nb\"c\u{7f}é".into());
        assert_eq!(
            challenge(&odd),
            r#"Bearer realm="wiki", error="insufficient_scope", error_description="the access token lacks the scope a?b'c??", scope="a?b'c??""#,
            "the challenge survives any value"
        );
        let body: serde_json::Value =
            serde_json::from_str(bad.to_response("wiki").body()).unwrap_or_default();
        assert_eq!(body["error"], "invalid_token");
    }

    #[test]
    fn bodies_carry_no_null_members() {
        for denial in [
            Denial::NoToken,
            Denial::InvalidToken("x".into()),
            Denial::InsufficientUserAuthentication {
                acr_values: None,
                max_age: Some(60),
            },
            Denial::Unavailable(Duration::from_secs(1)),
        ] {
            let body = denial.to_response("wiki").into_body();
            assert!(!body.contains("null"), "{body}");
        }
        let none: serde_json::Value =
            serde_json::from_str(Denial::NoToken.to_response("wiki").body()).unwrap_or_default();
        assert!(none.get("error").is_none(), "{none}");
        assert_eq!(none["error_description"], "an access token is required");
    }

    #[test]
    fn dpop_refusals_challenge_with_the_dpop_scheme() {
        let proof = Denial::InvalidDpopProof("the DPoP proof was used before".into());
        assert_eq!(proof.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&proof),
            format!(
                r#"DPoP realm="wiki", error="invalid_dpop_proof", error_description="the DPoP proof was used before", algs="{}""#,
                crate::dpop::ALGORITHMS.join(" ")
            )
        );
        let bound = Denial::InvalidDpopToken("bound".into());
        assert!(challenge(&bound).starts_with(r#"DPoP realm="wiki", error="invalid_token""#));
    }

    #[test]
    fn a_missing_role_or_group_is_403_naming_it_never_401() {
        let role = Denial::MissingRole(vec!["billing:admin".into()]);
        let response = role.to_response("billing");
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            challenge(&role),
            r#"Bearer realm="wiki", error="insufficient_scope", error_description="this needs the role billing:admin, which you do not hold""#
        );
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap_or_default();
        assert_eq!(body["missing_roles"], serde_json::json!(["billing:admin"]));
        assert_eq!(body["error"], "insufficient_scope");
        let either = Denial::MissingRole(vec!["a".into(), "b".into()]);
        assert!(either.description().contains("one of the roles a, b"));
        let group = Denial::MissingGroup("Finance".into());
        assert_eq!(group.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value =
            serde_json::from_str(group.to_response("billing").body()).unwrap_or_default();
        assert_eq!(body["missing_group"], "Finance");
    }

    #[test]
    fn rfc_9470_step_up_challenge() {
        let weak = Denial::InsufficientUserAuthentication {
            acr_values: Some("urn:lanyard:acr:mfa".into()),
            max_age: None,
        };
        assert_eq!(weak.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&weak),
            r#"Bearer realm="wiki", error="insufficient_user_authentication", error_description="this needs a stronger sign-in (urn:lanyard:acr:mfa)", acr_values="urn:lanyard:acr:mfa""#
        );
        let old = Denial::InsufficientUserAuthentication {
            acr_values: None,
            max_age: Some(300),
        };
        assert!(challenge(&old).ends_with(r#", max_age="300""#));
        let body: serde_json::Value =
            serde_json::from_str(weak.to_response("wiki").body()).unwrap_or_default();
        assert_eq!(body["acr_values"], "urn:lanyard:acr:mfa");
    }
}
