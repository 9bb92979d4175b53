//! `ualink-tsm demo` as a user runs it: the binary plays the lifecycle to the end in a fresh
//! state directory, prints its summary, registers its simulated roots in the auditor's trust
//! store, and leaves a directory the bare `ualink-attest report --state DIR` verifies.
//!
//! Every run points `UALINK_ATTEST_TRUST_DIR` at a temporary directory: the real home's
//! trust store is never touched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use ualink_attest::trust_store::{RootKind, TrustStore};

fn demo(state: &Path, trust: &Path, accelerators: u16) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ualink-tsm"))
        .args([
            "demo",
            "--accelerators",
            &accelerators.to_string(),
            "--state",
        ])
        .arg(state)
        .env("UALINK_ATTEST_TRUST_DIR", trust)
        .output()
        .unwrap()
}

/// The `ualink-attest` binary of this build if it is there and knows the trust store (it is
/// built by `cargo test -p ualink-attest` or `cargo build`, not by this crate's tests).
fn attest_bin(trust: &Path) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/demo-<hash> -> target/<profile>/ualink-attest
    let bin = exe.parent()?.parent()?.join("ualink-attest");
    let ok = Command::new(&bin)
        .args(["trust", "list"])
        .env("UALINK_ATTEST_TRUST_DIR", trust)
        .output()
        .ok()?
        .status
        .success();
    ok.then_some(bin)
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
    let trust = dir.path().join("auditor-trust");
    let out = demo(&state, &trust, 8);
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
    // The next command is the bare one.
    let canonical = state.canonicalize().unwrap();
    let next = line(&stdout, "ualink-attest report --state");
    assert_eq!(
        next.trim(),
        format!("ualink-attest report --state {}", canonical.display())
    );

    // What the demo registered: its sim TEE root and every device vendor root, under
    // demo-<hash>-* names, in the trust store it was pointed at (not in the state directory),
    // each printed with its file and fingerprint, with the command that removes them.
    let store = TrustStore::open(&trust);
    let entries = store.list().unwrap();
    let prefix = ualink_tsm::demo::demo_trust_prefix(&canonical);
    let tee: Vec<_> = entries.iter().filter(|e| e.kind == RootKind::Tee).collect();
    let devices: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == RootKind::Device)
        .collect();
    assert_eq!(tee.len(), 1, "{entries:?}");
    assert_eq!(tee[0].name, format!("{prefix}-sim-tee"));
    let ark = std::fs::read(state.join("sim-platform/ark.pem")).unwrap();
    assert_eq!(
        tee[0].certs,
        ualink_attest::pki::certs_from_pem_or_der(&ark).unwrap()
    );
    let device_files = std::fs::read_dir(state.join("device-roots"))
        .unwrap()
        .count();
    assert!(device_files > 0);
    assert_eq!(devices.len(), device_files, "{entries:?}");
    for e in &entries {
        assert!(e.name.starts_with(&format!("{prefix}-")), "{}", e.name);
        assert!(e.path.starts_with(&trust), "{}", e.path.display());
        assert!(
            stdout.lines().any(|l| l.contains(&e.name)
                && l.contains(&e.path.display().to_string())
                && l.contains(&e.fingerprints()[0])),
            "{} not printed with its file and fingerprint:\n{stdout}",
            e.name
        );
    }
    let remove = line(&stdout, "ualink-attest trust remove");
    for e in &entries {
        assert!(remove.split_whitespace().any(|w| w == e.name), "{remove}");
    }

    // The bare command, with the trust store the demo populated: exit 0. Through the
    // ualink-attest binary when this build has it, else through the same library logic.
    if let Some(bin) = attest_bin(&trust) {
        let out = Command::new(&bin)
            .args(["report", "--state"])
            .arg(&canonical)
            .env("UALINK_ATTEST_TRUST_DIR", &trust)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The report names what vouched: every store entry, with its fingerprint.
        for e in &entries {
            assert!(text.contains(&e.path.display().to_string()), "{text}");
            assert!(text.contains(&e.fingerprints()[0]), "{text}");
        }
    }
    let (report, used) = ualink_tsm::demo::auditor_report_from_store(&canonical, &store).unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.to_text());
    assert_eq!(used, entries);

    // With an empty trust store, the bare command does not verify: the roots in the state
    // directory are not trusted by being there.
    let empty = TrustStore::open(dir.path().join("empty-trust"));
    let (report, _) = ualink_tsm::demo::auditor_report_from_store(&canonical, &empty).unwrap();
    assert_ne!(report.exit_code(), 0);
    // Without the device roots the auditor cannot verify the devices' evidence.
    let tee_root = vec![state.join("sim-platform/ark.pem")];
    let report = ualink_tsm::demo::auditor_report(&state, &tee_root, &[]).unwrap();
    assert_ne!(report.exit_code(), 0);
    // A trust store inside the audited directory is refused.
    let inside = TrustStore::open(canonical.join("trust"));
    assert!(ualink_tsm::demo::auditor_report_from_store(&canonical, &inside).is_err());
}

#[test]
fn the_demo_refuses_a_state_dir_in_use_and_a_pod_too_small_for_two_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let trust = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit.log"), b"x").unwrap();
    let out = demo(dir.path(), trust.path(), 8);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let empty = tempfile::tempdir().unwrap();
    let out = demo(empty.path(), trust.path(), 3);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 4"));
    // A demo that did not run registers nothing.
    assert!(TrustStore::open(trust.path()).list().unwrap().is_empty());
}
