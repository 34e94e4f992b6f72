//! The audit trail's records.

use lanyard_store::Timestamp;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// When it happened.
    pub at: Timestamp,
    /// Who acted: a `sub`, a `client:<id>`, or `anonymous`.
    pub actor: String,
    /// What happened, e.g. `signin`, `token.issue`.
    pub action: String,
    /// What it happened to, if anything.
    pub target: Option<String>,
    /// `success` or `failure`.
    pub outcome: String,
    /// The request it happened in.
    pub request_id: Option<String>,
    /// More, as JSON. Never a secret.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// The one way to make an event: `actor` did `action` at `at`, successfully, with no
    /// target, request or detail until the builder methods below add them.
    pub fn new(at: Timestamp, actor: impl Into<String>, action: &str) -> Self {
        Self {
            at,
            actor: actor.into(),
            action: action.to_owned(),
            target: None,
            outcome: SUCCESS.to_owned(),
            request_id: None,
            detail: None,
        }
    }

    /// What it happened to.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// The outcome when it is not `success`: `failure`, `revoked` (something was taken
    /// away because of what was seen), `locked` (too many failures).
    #[must_use]
    pub fn outcome(mut self, outcome: &str) -> Self {
        self.outcome = outcome.to_owned();
        self
    }

    /// `success`, or `failure` with the error as the detail (`{"error": ...}`).
    #[must_use]
    pub fn result<T, E: std::fmt::Display>(self, result: &Result<T, E>) -> Self {
        match result {
            Ok(_) => self,
            Err(e) => self
                .outcome(FAILURE)
                .detail(serde_json::json!({ "error": e.to_string() })),
        }
    }

    /// More about it, as JSON. Never a secret.
    #[must_use]
    pub fn detail(mut self, detail: impl serde::Serialize) -> Self {
        self.detail = serde_json::to_string(&detail).ok();
        self
    }

    /// More about it, already written as JSON (a hot path that builds its detail without a
    /// map). Never a secret.
    #[must_use]
    pub fn detail_json(mut self, json: String) -> Self {
        self.detail = Some(json);
        self
    }

    /// The request it happened in.
    #[must_use]
    pub fn request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }
}

/// The outcome of what went as asked.
pub const SUCCESS: &str = "success";
/// The outcome of what was refused or failed.
pub const FAILURE: &str = "failure";
/// The outcome when something was taken away because of what was seen (a replayed code, a
/// reused refresh token, a token revoked by its client).
pub const REVOKED: &str = "revoked";

/// Which audit events to read: each given field must match exactly; times are a
/// half-open range `[since, until)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who acted.
    pub actor: Option<String>,
    /// What happened.
    pub action: Option<String>,
    /// What it happened to.
    pub target: Option<String>,
    /// At or after.
    pub since: Option<Timestamp>,
    /// Before.
    pub until: Option<Timestamp>,
}
