//! `ualink-spdm`: probe, respond, decode.
fn main() {}
