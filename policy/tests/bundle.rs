//! Bundle loading, validation, digests, replay and the output convention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::path::Path;
use ualink_policy::{DecisionKind, PolicyBundle, PolicyEngine, PolicyError};

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn defaults_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("defaults")
}

#[test]
fn defaults_dir_and_embedded_defaults_are_the_same_bundle() {
    let from_dir = PolicyBundle::load(defaults_dir()).unwrap();
    let embedded = PolicyBundle::defaults().unwrap();
    assert_eq!(from_dir.digest(), embedded.digest());
    assert_eq!(from_dir.decision_kinds(), DecisionKind::ALL.to_vec());
    let names: Vec<_> = embedded.rego_files().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "cvm.rego",
            "device.rego",
            "key_rotation.rego",
            "lib.rego",
            "share.rego",
            "tdi_accept.rego"
        ]
    );
}

#[test]
fn digest_is_sha384_of_documented_canonical_bytes() {
    let b = PolicyBundle::defaults().unwrap();
    let bytes = b.canonical_bytes();
    assert!(bytes.starts_with(b"UALINK-POLICY-BUNDLE/1\0\0\0\0\x06\0\0\0\x08cvm.rego"));
    let d = ring::digest::digest(&ring::digest::SHA384, &bytes);
    assert_eq!(d.as_ref(), b.digest());
    assert_eq!(b.digest_hex(), hex::encode(b.digest()));
}

#[test]
fn digest_is_stable_and_changes_when_any_file_changes() {
    let dir = temp_dir("digest");
    copy_dir(&defaults_dir(), &dir);
    let base = PolicyBundle::load(&dir).unwrap().digest();
    assert_eq!(PolicyBundle::load(&dir).unwrap().digest(), base, "stable");

    // Any byte of any Rego file counts, comments included.
    for name in ["device.rego", "lib.rego", "cvm.rego"] {
        let p = dir.join(name);
        let orig = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, format!("{orig}# trailing comment\n")).unwrap();
        assert_ne!(PolicyBundle::load(&dir).unwrap().digest(), base, "{name}");
        std::fs::write(&p, orig).unwrap();
    }
    // Any data value counts.
    let p = dir.join("data.json");
    let orig = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        orig.replace("\"min_version\": \"1.2\"", "\"min_version\": \"1.3\""),
    )
    .unwrap();
    assert_ne!(PolicyBundle::load(&dir).unwrap().digest(), base);
    // Data counts by value: reformatting does not change the digest ...
    let v: serde_json::Value = serde_json::from_str(&orig).unwrap();
    std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
    assert_eq!(PolicyBundle::load(&dir).unwrap().digest(), base);
    // ... nor does splitting the data over two files.
    let mut v2 = v.clone();
    let cvm = v2["ualink_data"]
        .as_object_mut()
        .unwrap()
        .remove("cvm")
        .unwrap();
    std::fs::write(&p, serde_json::to_string(&v2).unwrap()).unwrap();
    std::fs::write(
        dir.join("cvm.json"),
        json!({"ualink_data": {"cvm": cvm}}).to_string(),
    )
    .unwrap();
    assert_eq!(PolicyBundle::load(&dir).unwrap().digest(), base);
    // Adding a Rego file changes it; a README does not.
    std::fs::write(dir.join("README.md"), "notes").unwrap();
    assert_eq!(PolicyBundle::load(&dir).unwrap().digest(), base);
    std::fs::write(
        dir.join("extra.rego"),
        "package ualink.extra\n\nimport rego.v1\n\nx := 1\n",
    )
    .unwrap();
    assert_ne!(PolicyBundle::load(&dir).unwrap().digest(), base);
    // Renaming a file changes it.
    std::fs::remove_file(dir.join("extra.rego")).unwrap();
    std::fs::rename(dir.join("lib.rego"), dir.join("lib2.rego")).unwrap();
    assert_ne!(PolicyBundle::load(&dir).unwrap().digest(), base);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn with_data_overlay_changes_digest_and_write_to_round_trips() {
    let b = bundle();
    assert_ne!(b.digest(), PolicyBundle::defaults().unwrap().digest());
    let dir = temp_dir("export");
    let out = dir.join("bundle");
    b.write_to(&out).unwrap();
    let back = PolicyBundle::load(&out).unwrap();
    assert_eq!(back.digest(), b.digest());
    // Refuses to write over an existing bundle.
    assert!(matches!(
        b.write_to(&out),
        Err(PolicyError::BadBundle { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn malformed_policy_rejected_with_file_and_line() {
    match PolicyBundle::load(test_data().join("bad/malformed")) {
        Err(PolicyError::Malformed {
            file,
            line,
            column,
            reason,
        }) => {
            assert_eq!(file, "device.rego");
            assert!((9..=10).contains(&line), "line {line}");
            assert!(column > 0);
            assert!(!reason.is_empty() && !reason.contains("-->"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_error_display_names_location() {
    let e = PolicyBundle::load(test_data().join("bad/malformed")).unwrap_err();
    assert!(e.to_string().starts_with("device.rego:"), "{e}");
}

#[test]
fn policy_without_import_rego_v1_rejected() {
    assert!(matches!(
        PolicyBundle::load(test_data().join("bad/no_rego_v1")),
        Err(PolicyError::MissingRegoV1Import { file }) if file == "device.rego"
    ));
}

#[test]
fn policy_reading_the_clock_rejected() {
    match PolicyBundle::load(test_data().join("bad/now_ns")) {
        Err(PolicyError::ForbiddenBuiltin {
            file,
            line,
            builtin,
            ..
        }) => {
            assert_eq!(file, "device.rego");
            assert_eq!(line, 9);
            assert_eq!(builtin, "time.now_ns");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_forbidden_builtin_is_refused() {
    for (name, _) in ualink_policy::forbidden_builtins() {
        let src = format!("package ualink.t\n\nimport rego.v1\n\nx := {name}(1)\n");
        let r = PolicyBundle::from_parts([("t.rego".to_string(), src)], json!({}));
        assert!(
            matches!(&r, Err(PolicyError::ForbiddenBuiltin { builtin, line: 5, .. }) if builtin == name),
            "{name}: {r:?}"
        );
    }
}

#[test]
fn unknown_function_rejected_at_load_with_location() {
    match PolicyBundle::load(test_data().join("bad/unknown_function")) {
        Err(PolicyError::Malformed { file, line, .. }) => {
            assert_eq!(file, "device.rego");
            assert_eq!(line, 9);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn policy_allowing_empty_input_rejected() {
    assert!(matches!(
        PolicyBundle::load(test_data().join("bad/allows_empty")),
        Err(PolicyError::AllowsEmptyInput {
            kind: DecisionKind::DeviceAppraisal
        })
    ));
}

#[test]
fn decision_package_must_define_deny() {
    assert!(matches!(
        PolicyBundle::load(test_data().join("bad/missing_deny")),
        Err(PolicyError::BadBundle { .. })
    ));
}

#[test]
fn bad_data_json_rejected_with_location() {
    match PolicyBundle::load(test_data().join("bad/bad_data")) {
        Err(PolicyError::BadData { file, line, .. }) => {
            assert_eq!(file, "data.json");
            assert_eq!(line, 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn conflicting_data_files_rejected() {
    let dir = temp_dir("conflict");
    copy_dir(&test_data().join("custom"), &dir);
    std::fs::write(
        dir.join("more.json"),
        r#"{"ualink_data": {"sharing": {"max_attestation_age_seconds": 20}}}"#,
    )
    .unwrap();
    match PolicyBundle::load(&dir) {
        Err(PolicyError::DataConflict {
            path,
            first,
            second,
        }) => {
            assert_eq!(path, "/ualink_data/sharing/max_attestation_age_seconds");
            assert_eq!(
                (first.as_str(), second.as_str()),
                ("limits.json", "more.json")
            );
        }
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn reserved_data_root_and_empty_bundle_rejected() {
    let src = "package ualink.t\n\nimport rego.v1\n\nx := 1\n".to_string();
    assert!(matches!(
        PolicyBundle::from_parts([("t.rego".into(), src.clone())], json!({"ualink": {}})),
        Err(PolicyError::BadData { .. })
    ));
    assert!(matches!(
        PolicyBundle::from_parts([], json!({})),
        Err(PolicyError::BadBundle { .. })
    ));
    assert!(matches!(
        PolicyBundle::from_parts([("../t.rego".into(), src)], json!({})),
        Err(PolicyError::BadBundle { .. })
    ));
}

#[test]
fn missing_package_and_undefined_allow_are_default_deny() {
    let b = PolicyBundle::load(test_data().join("custom")).unwrap();
    assert_eq!(b.decision_kinds(), [DecisionKind::Share]);
    let e = PolicyEngine::new(&b);
    // No ualink.device package at all.
    let d = e
        .evaluate(
            DecisionKind::DeviceAppraisal,
            &input(DecisionKind::DeviceAppraisal),
        )
        .unwrap();
    assert!(!d.allow);
    assert_eq!(d.rules, ["default_deny"]);
    // The package exists, no deny fires, allow is false.
    let d = e
        .evaluate(DecisionKind::Share, &input(DecisionKind::Share))
        .unwrap();
    assert_eq!(d.rules, ["default_deny"]);
    assert_eq!(d.policy_digest, b.digest());
    // A deny entry is named.
    let mut i = input(DecisionKind::Share);
    set(&mut i, "rights", json!(["read", "write"]));
    assert_eq!(
        e.evaluate(DecisionKind::Share, &i).unwrap().rules,
        ["deny.write_refused"]
    );
    // The allow path.
    set(&mut i, "rights", json!(["read"]));
    set(&mut i, "exporter/tenant_id", json!("x"));
    let d = e.evaluate(DecisionKind::Share, &i).unwrap();
    assert!(d.allow);
    assert_eq!(d.rules, ["allow.x_reads"]);
}

#[test]
fn deny_wins_over_allow() {
    let src = r#"package ualink.share

import rego.v1

allow := true if input.now > 0

deny contains {"rule": "always", "reason": "always denied"} if input.now > 0

allow_rules contains {"rule": "never", "reason": "unused"} if false
"#;
    let b = PolicyBundle::from_parts([("s.rego".into(), src.into())], json!({})).unwrap();
    let d = PolicyEngine::new(&b)
        .evaluate(DecisionKind::Share, &input(DecisionKind::Share))
        .unwrap();
    assert!(!d.allow);
    assert_eq!(d.rules, ["deny.always"]);
}

#[test]
fn output_outside_the_convention_is_an_error() {
    for (deny, why) in [
        (
            r#"deny contains "bare string" if input.now > 0"#,
            "not an object",
        ),
        (
            r#"deny contains {"rule": "x"} if input.now > 0"#,
            "no reason",
        ),
        (
            r#"deny contains {"rule": "Bad Name", "reason": "r"} if input.now > 0"#,
            "bad name",
        ),
        (
            r#"deny contains {"rule": "x", "reason": "r", "extra": 1} if input.now > 0"#,
            "extra key",
        ),
    ] {
        let src = format!(
            "package ualink.share\n\nimport rego.v1\n\ndefault allow := false\n\n{deny}\n\nallow_rules contains {{\"rule\": \"a\", \"reason\": \"b\"}} if false\n"
        );
        let b = PolicyBundle::from_parts([("s.rego".into(), src)], json!({})).unwrap();
        let r = PolicyEngine::new(&b).evaluate(DecisionKind::Share, &input(DecisionKind::Share));
        assert!(
            matches!(r, Err(PolicyError::PolicyOutput { .. })),
            "{why}: {r:?}"
        );
    }
}

#[test]
fn replay_is_deterministic_and_json_round_trips() {
    let e = engine();
    for kind in DecisionKind::ALL {
        let i = input(kind);
        let first = e.evaluate(kind, &i).unwrap();
        // The same input, as stored text and re-read, gives the same decision.
        let stored = serde_json::to_string(&i).unwrap();
        let replayed: serde_json::Value = serde_json::from_str(&stored).unwrap();
        for _ in 0..3 {
            assert_eq!(e.evaluate(kind, &replayed).unwrap(), first, "{kind}");
        }
        // A fresh engine over a freshly loaded bundle agrees.
        assert_eq!(
            PolicyEngine::new(&bundle())
                .evaluate(kind, &replayed)
                .unwrap(),
            first
        );
        // The decision itself round-trips through JSON.
        let dj = serde_json::to_string(&first).unwrap();
        assert_eq!(
            serde_json::from_str::<ualink_policy::Decision>(&dj).unwrap(),
            first
        );
    }
}

#[test]
fn replay_with_denied_decision_is_deterministic() {
    let e = engine();
    let mut i = input(DecisionKind::CvmAppraisal);
    set(&mut i, "debug", json!(true));
    set(&mut i, "tee", json!("sim"));
    let a = e.evaluate(DecisionKind::CvmAppraisal, &i).unwrap();
    let b = e.evaluate(DecisionKind::CvmAppraisal, &i).unwrap();
    assert_eq!(a, b);
    assert!(a.rules.len() >= 3, "{a:?}");
}

#[test]
fn typed_inputs_round_trip_through_json_exactly() {
    use ualink_policy::input::*;
    fn rt<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: serde_json::Value,
    ) {
        let t: T = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&t).unwrap(), v);
    }
    rt::<DeviceAppraisalInput>(input(DecisionKind::DeviceAppraisal));
    rt::<TdiAcceptInput>(input(DecisionKind::TdiAcceptance));
    rt::<ShareInput>(input(DecisionKind::Share));
    rt::<KeyRotationInput>(input(DecisionKind::KeyRotation));
    rt::<CvmAppraisalInput>(input(DecisionKind::CvmAppraisal));
}

#[test]
fn inputs_outside_the_schema_are_refused() {
    let e = engine();
    let kind = DecisionKind::DeviceAppraisal;
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("unknown field", Box::new(|i| i["debug"] = json!(true))),
        (
            "missing field",
            Box::new(|i| {
                i.as_object_mut().unwrap().remove("now");
            }),
        ),
        (
            "uppercase hex",
            Box::new(|i| {
                let up = i["vendor_root_fingerprint"]
                    .as_str()
                    .unwrap()
                    .to_uppercase();
                i["vendor_root_fingerprint"] = json!(up);
            }),
        ),
        (
            "short digest",
            Box::new(|i| i["vendor_root_fingerprint"] = json!("abcd")),
        ),
        (
            "odd hex",
            Box::new(|i| i["measurements"][0]["value"] = json!("abc")),
        ),
        ("negative time", Box::new(|i| i["now"] = json!(-1))),
        (
            "index out of range",
            Box::new(|i| i["measurements"][0]["index"] = json!(256)),
        ),
    ];
    for (why, edit) in cases {
        let mut i = input(kind);
        edit(&mut i);
        assert!(
            matches!(e.evaluate(kind, &i), Err(PolicyError::InvalidInput { .. })),
            "{why}"
        );
    }
    // Another kind's input is not this kind's.
    assert!(matches!(
        e.evaluate(kind, &input(DecisionKind::Share)),
        Err(PolicyError::InvalidInput { .. })
    ));
}

#[test]
fn engine_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicyEngine>();
    assert_send_sync::<PolicyBundle>();
    let e = std::sync::Arc::new(engine());
    let want = e
        .evaluate(DecisionKind::Share, &input(DecisionKind::Share))
        .unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                e.evaluate(DecisionKind::Share, &input(DecisionKind::Share))
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

#[test]
fn decision_kind_names_match_the_audit_log() {
    for k in DecisionKind::ALL {
        assert_eq!(serde_json::to_value(k).unwrap(), json!(k.name()));
        assert_eq!(DecisionKind::from_name(k.name()), Some(k));
    }
    assert_eq!(DecisionKind::TdiAcceptance.name(), "tdi-acceptance");
}

#[test]
fn canonical_input_is_stable_across_formatting_and_matches_typed() {
    use ualink_policy::{canonical_input, DecisionInput};
    let kind = DecisionKind::KeyRotation;
    let v = input(kind);
    let canon = canonical_input(kind, &v).unwrap();
    assert!(!canon.contains(' ') && !canon.contains('\n'));
    assert!(
        canon.starts_with(r#"{"current_epoch":4,"new_epoch":5,"now":"#),
        "{canon}"
    );
    // Reordered members (a reversed re-serialisation) give the same bytes.
    let mut reordered = serde_json::Map::new();
    for (k, val) in v.as_object().unwrap().iter().rev() {
        reordered.insert(k.clone(), val.clone());
    }
    assert_eq!(
        canonical_input(kind, &serde_json::Value::Object(reordered)).unwrap(),
        canon
    );
    let typed: ualink_policy::KeyRotationInput = serde_json::from_value(v).unwrap();
    assert_eq!(typed.to_canonical_json().unwrap(), canon);
    assert_eq!(
        <ualink_policy::KeyRotationInput as DecisionInput>::KIND,
        kind
    );
    // Replaying the canonical text gives the typed decision.
    let e = engine();
    let replay: serde_json::Value = serde_json::from_str(&canon).unwrap();
    assert_eq!(
        e.evaluate(kind, &replay).unwrap(),
        e.evaluate_input(&typed).unwrap()
    );
    // Schema violations are refused here too.
    assert!(matches!(
        canonical_input(kind, &json!({"now": 1})),
        Err(PolicyError::InvalidInput { .. })
    ));
}
