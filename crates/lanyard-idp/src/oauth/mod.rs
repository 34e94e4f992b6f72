//! Protocol logic on typed inputs: never a request object, never axum (GUIDE §1).
//!
//! Each endpoint is a list of small checks (`checks/`), one file per grant (`grants/`), and
//! one error type per channel (`error`).

pub mod authorize;
pub mod checks;
pub mod client_auth;
pub mod code;
pub mod consent;
pub mod device;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod issue;
pub mod logout;
pub mod par;
pub mod reply;
pub mod request;
pub mod request_object;
pub mod revoke;
pub mod signin;
pub mod userinfo;
