//! Lanyard end to end: the server on an ephemeral port, driven over HTTP as apps and browsers
//! drive it. One binary; each module one area; every test makes its own server (own database,
//! own Redis prefix) and depends on no other test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod support;

mod access;
mod account;
mod admin;
mod admin_clients;
mod admin_users;
mod apps;
mod attacks;
mod authorize;
mod browser;
mod conformance;
mod consent;
mod console;
mod device;
mod discovery;
mod docs;
mod dpop;
mod faults;
mod feed;
mod flow;
mod interop;
mod introspect;
mod jar;
mod keys;
mod lockout;
mod logout;
mod mail;
mod mfa;
mod nodes;
mod operations;
mod par;
mod passkeys;
mod private_key_jwt;
mod proxy;
mod refresh;
mod revocation;
mod revoke;
mod scim;
mod sessions;
mod smtp_sink;
mod ssf;
mod token;
mod token_exchange;
mod userinfo;
