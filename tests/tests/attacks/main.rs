//! Attack scenarios on the real components, in process: each `#[test]` is one attack, refused
//! with its specific error, explained by an audit record where the TSM decides, and with the
//! simulator's leak oracle showing zero bytes crossed without a live grant. SECURITY.md maps
//! each test to the attack it proves refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod audit_log;
mod cvm;
mod devices;
mod grants;
mod host;
mod links;
