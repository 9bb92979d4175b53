//! ualink-e2e: end-to-end attack and fault scenarios for ualink-cc.
//!
//! The library holds only what the scenario binaries share outside a test harness: how to
//! find the other crates' binaries (`ualink-tsm`, `ualink-guest-agent`, `ualink-attest`) next
//! to the test executable. The scenarios themselves live in `tests/attacks/` (one `#[test]`
//! per attack, each asserting the specific error, the audit record that explains it and that
//! the simulator's leak oracle saw zero bytes cross without a live grant) and `tests/faults/`.
//! SECURITY.md maps every attack to the test that proves it is refused.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// The path of the workspace binary `name` built into the same target directory as the
/// running test executable (`target/<profile>/<name>`), if it exists.
///
/// Integration-test executables live in `target/<profile>/deps/`; binaries of other
/// workspace crates are placed in `target/<profile>/`. They are built by
/// `cargo build -p ualink-tsm -p ualink-guest-agent -p ualink-attest --bins` (with the same
/// `CARGO_TARGET_DIR`) before `cargo test -p ualink-e2e`; a test that needs one and does not
/// find it fails with the command to run, rather than skipping.
pub fn workspace_bin(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    let profile = deps.parent()?;
    let p = profile.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    p.is_file().then_some(p)
}
