//! Shared helpers for the integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::PathBuf;
use ualink_policy::{Decision, DecisionKind, PolicyBundle, PolicyEngine};

/// The test_data directory.
pub fn test_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test_data")
}

/// Reads a JSON file under test_data.
pub fn read_json(rel: &str) -> Value {
    let s = std::fs::read_to_string(test_data().join(rel)).unwrap();
    serde_json::from_str(&s).unwrap()
}

/// The default policies with the test overlay (trusted roots, reference values, tenants).
pub fn bundle() -> PolicyBundle {
    PolicyBundle::defaults()
        .unwrap()
        .with_data(read_json("overlay.json"))
        .unwrap()
}

/// An engine over [`bundle`].
pub fn engine() -> PolicyEngine {
    PolicyEngine::new(&bundle())
}

/// The happy-path input fixture of `kind`.
pub fn input(kind: DecisionKind) -> Value {
    let name = match kind {
        DecisionKind::DeviceAppraisal => "device",
        DecisionKind::TdiAcceptance => "tdi_accept",
        DecisionKind::Share => "share",
        DecisionKind::KeyRotation => "key_rotation",
        DecisionKind::CvmAppraisal => "cvm",
    };
    read_json(&format!("inputs/{name}.json"))
}

/// Sets `path` (slash-separated, array indices allowed) in `v` to `new`.
pub fn set(v: &mut Value, path: &str, new: Value) {
    let ptr = format!("/{path}");
    *v.pointer_mut(&ptr).unwrap_or_else(|| panic!("no {ptr}")) = new;
}

/// A fresh temporary directory (removed by the caller if it cares).
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "ualink-policy-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts `d` denies and names `deny.<rule>`.
pub fn assert_denied_by(d: &Decision, rule: &str) {
    assert!(!d.allow, "expected deny by {rule}, got {d:?}");
    let want = format!("deny.{rule}");
    assert!(
        d.rules.contains(&want),
        "expected rule {want} in {:?} (reasons {:?})",
        d.rules,
        d.reasons
    );
    assert_eq!(d.rules.len(), d.reasons.len());
}
