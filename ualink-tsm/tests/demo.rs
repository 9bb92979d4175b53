//! `ualink-tsm demo` as a user runs it: the binary plays the lifecycle to the end in a fresh
//! state directory, prints its summary, and leaves a directory the auditor's report verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn demo(state: &std::path::Path, accelerators: u16) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ualink-tsm"))
        .args([
            "demo",
            "--accelerators",
            &accelerators.to_string(),
            "--state",
        ])
        .arg(state)
        .output()
        .unwrap()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{out}"))
}

#[test]
fn the_demo_plays_the_lifecycle_and_leaves_a_state_dir_the_auditor_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = demo(&state, 8);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    assert!(line(&stdout, "devices").contains("8 attested at bring-up, 0 quarantined"));
    let allowed = line(&stdout, "share allowed");
    assert!(
        allowed.contains("4096 bytes over encrypted links"),
        "{allowed}"
    );
    assert!(allowed.contains("ciphertext only"), "{allowed}");
    assert!(allowed.contains("allow.listed_share_pair"), "{allowed}");
    assert!(line(&stdout, "share denied").contains("deny.excessive_rights"));
    let tamper = line(&stdout, "tamper ");
    assert!(tamper.contains("share revoked: yes"), "{tamper}");
    assert!(tamper.contains("deny.measurement_mismatch"), "{tamper}");
    assert!(tamper.contains("agent withdrew trust: yes"), "{tamper}");
    let rotation = line(&stdout, "rotation ");
    assert!(
        rotation.contains("keys re-programmed by the TSM"),
        "{rotation}"
    );
    assert!(
        rotation.contains("re-keyed by its lead at epoch 2"),
        "{rotation}"
    );
    assert!(line(&stdout, "tenants ").contains("8 TDIs accepted by the tenants' agents"));
    let keys = line(&stdout, "keys ");
    assert!(
        keys.contains("from its lead agent") && !keys.contains("acme: 0 "),
        "{keys}"
    );
    assert!(line(&stdout, "audit log").contains("auditor replay exit 0"));
    let next = line(&stdout, "ualink-attest report --state");
    assert!(next.contains(&state.canonicalize().unwrap().display().to_string()));

    // The auditor's report over what the demo left, with the roots the printed command names.
    let tee = vec![state.join("sim-platform/ark.pem")];
    let mut devices: Vec<_> = std::fs::read_dir(state.join("device-roots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    devices.sort();
    assert!(!devices.is_empty());
    let report = ualink_tsm::demo::auditor_report(&state, &tee, &devices).unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    for d in &devices {
        assert!(next.contains(&d.display().to_string()), "{next}");
    }
    // Without the device roots the auditor cannot verify the devices' evidence.
    let report = ualink_tsm::demo::auditor_report(&state, &tee, &[]).unwrap();
    assert_ne!(report.exit_code(), 0);
}

#[test]
fn the_demo_refuses_a_state_dir_in_use_and_a_pod_too_small_for_two_tenants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.log"), b"x").unwrap();
    let out = demo(dir.path(), 8);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let empty = tempfile::tempdir().unwrap();
    let out = demo(empty.path(), 3);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 4"));
}
