//! Small checks, one concern each, used by the endpoints' protocol logic.

pub mod acr;
pub mod pkce;
pub mod prompt;
pub mod scope;
