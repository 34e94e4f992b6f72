//! The records Lanyard keeps, as the services see them (the `db` module maps them to and
//! from SQL): people, applications, what people allowed applications, signing keys, the
//! durable revocation record, the audit trail, groups and roles, mail and its links, Shared Signals streams and the event outbox. Each checks what it may hold.

mod access;
mod audit;
mod client;
mod consent;
mod factor;
mod key;
mod mail;
pub mod redirect_uri;
mod refresh;
mod revocation;
mod signals;
mod user;

pub use access::{
    Group, Holder, MAX_DESCRIPTION, MAX_GROUP_NAME, MAX_ROLE_NAME, Role, check_description,
    check_group_name, check_role_name,
};
pub use audit::{AuditEvent, AuditFilter, FAILURE, REVOKED, SUCCESS};
pub use client::{AuthMethod, Client, ClientSettings, GrantType, MAX_REFRESH_TOKEN_LIFETIME};
pub use consent::Consent;
pub use factor::{Acr, Factor, FactorKind, MAX_FACTOR_NAME, RECOVERY_CODES, amr_with, factor_name};
pub use key::StoredKey;
pub use mail::{LinkPurpose, MailLink, MailStatus, NewMail, OutgoingMail};
pub use redirect_uri::RedirectUri;
pub use refresh::RefreshPayload;
pub use revocation::RecordedRevocation;
pub use signals::{
    Channel, ChannelKind, ChannelState, DefaultSubjects, DeliveryMethod, NewEvent, OutboxEvent,
    Stream, StreamConfig, StreamStatus, SubjectRule,
};
pub use user::{
    MAX_DISPLAY_NAME, MAX_EMAIL, MAX_PASSWORD, MAX_USERNAME, MIN_PASSWORD, SPACE_OR_CONTROL, User,
    check_display_name, check_email, check_password, check_username, is_common_password,
};

/// Why a record may not be stored: the field at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The field, as the admin API names it.
    pub field: &'static str,
    /// Why, and what to do.
    pub message: String,
}
