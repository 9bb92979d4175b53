//! `ualink-guest-agent`: see the library documentation.
fn main() {}
