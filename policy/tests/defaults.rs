//! The default policies (with the test data overlay in test_data/overlay.json) allow each
//! happy path and deny each bad case with the expected rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use ualink_policy::{DecisionKind, PolicyBundle, PolicyEngine, Sha384};

use DecisionKind::*;

/// Evaluates `kind` on the fixture after `edit`, expecting a deny by exactly `rule` (plus
/// possibly others listed in `also`).
fn deny_case(kind: DecisionKind, edit: impl FnOnce(&mut Value), rule: &str) {
    let e = engine();
    let mut i = input(kind);
    edit(&mut i);
    let d = e.evaluate(kind, &i).unwrap();
    assert_denied_by(&d, rule);
}

#[test]
fn happy_paths_allow_with_named_rules() {
    let e = engine();
    let b = bundle();
    for (kind, expect) in [
        (
            DeviceAppraisal,
            &[
                "allow.fresh_attestation",
                "allow.reference_values_match",
                "allow.spdm_parameters_accepted",
                "allow.trusted_vendor_root",
            ][..],
        ),
        (
            TdiAcceptance,
            &["allow.device_appraised", "allow.tdi_report_accepted"][..],
        ),
        (
            Share,
            &[
                "allow.both_ends_running_and_fresh",
                "allow.listed_share_pair",
            ][..],
        ),
        (
            KeyRotation,
            &["allow.both_ends_fresh", "allow.epoch_advances"][..],
        ),
        (
            CvmAppraisal,
            &["allow.reference_measurement", "allow.tee_evidence_accepted"][..],
        ),
    ] {
        let d = e.evaluate(kind, &input(kind)).unwrap();
        assert!(d.allow, "{kind}: {d:?}");
        assert_eq!(d.rules, expect, "{kind}");
        assert_eq!(d.reasons.len(), d.rules.len());
        assert!(d.reasons.iter().all(|r| !r.is_empty()));
        assert_eq!(d.policy_digest, b.digest());
    }
}

#[test]
fn typed_calls_match_generic_evaluate() {
    let e = engine();
    let dev: ualink_policy::DeviceAppraisalInput =
        serde_json::from_value(input(DeviceAppraisal)).unwrap();
    assert_eq!(
        e.evaluate_device(&dev).unwrap(),
        e.evaluate(DeviceAppraisal, &input(DeviceAppraisal))
            .unwrap()
    );
    let tdi: ualink_policy::TdiAcceptInput = serde_json::from_value(input(TdiAcceptance)).unwrap();
    assert!(e.evaluate_tdi_accept(&tdi).unwrap().allow);
    let share: ualink_policy::ShareInput = serde_json::from_value(input(Share)).unwrap();
    assert!(e.evaluate_share(&share).unwrap().allow);
    let rot: ualink_policy::KeyRotationInput = serde_json::from_value(input(KeyRotation)).unwrap();
    assert!(e.evaluate_key_rotation(&rot).unwrap().allow);
    let cvm: ualink_policy::CvmAppraisalInput =
        serde_json::from_value(input(CvmAppraisal)).unwrap();
    assert!(e.evaluate_cvm(&cvm).unwrap().allow);
}

#[test]
fn defaults_without_data_deny_everything() {
    let e = PolicyEngine::new(&PolicyBundle::defaults().unwrap());
    let cases = [
        (DeviceAppraisal, "untrusted_vendor_root"),
        (TdiAcceptance, "unknown_tenant"),
        (Share, "unlisted_share_pair"),
        (CvmAppraisal, "unknown_tenant"),
    ];
    for (kind, rule) in cases {
        let d = e.evaluate(kind, &input(kind)).unwrap();
        assert_denied_by(&d, rule);
    }
}

// --- device appraisal -------------------------------------------------------------------

#[test]
fn device_untrusted_root() {
    deny_case(
        DeviceAppraisal,
        |i| {
            set(
                i,
                "vendor_root_fingerprint",
                json!(Sha384::of(b"rogue root").to_string()),
            )
        },
        "untrusted_vendor_root",
    );
}

#[test]
fn device_root_of_another_vendor() {
    // Globex's root is trusted, but only for Globex devices.
    let globex = Sha384::of(b"globex-root-der").to_string();
    deny_case(
        DeviceAppraisal,
        |i| set(i, "vendor_root_fingerprint", json!(globex)),
        "vendor_root_mismatch",
    );
}

#[test]
fn device_measurement_mismatch() {
    deny_case(
        DeviceAppraisal,
        |i| {
            set(
                i,
                "measurements/1/value",
                json!(Sha384::of(b"patched firmware").to_string()),
            )
        },
        "measurement_mismatch",
    );
}

#[test]
fn device_genuine_image_of_other_version_is_a_mismatch() {
    // Firmware 1.1.0's genuine image reported while claiming 1.0.0.
    let fw110 = Sha384::of(b"acme/x1/fw/1.1.0").to_string();
    deny_case(
        DeviceAppraisal,
        |i| set(i, "measurements/1/value", json!(fw110)),
        "measurement_mismatch",
    );
}

#[test]
fn device_other_known_version_allows() {
    let e = engine();
    let mut i = input(DeviceAppraisal);
    set(&mut i, "firmware_version", json!("1.1.0"));
    set(
        &mut i,
        "measurements/1/value",
        json!(Sha384::of(b"acme/x1/fw/1.1.0").to_string()),
    );
    set(
        &mut i,
        "measurements/2/value",
        json!(Sha384::of(b"acme/x1/cfg/1.1.0").to_string()),
    );
    assert!(e.evaluate(DeviceAppraisal, &i).unwrap().allow);
}

#[test]
fn device_unknown_firmware_version() {
    deny_case(
        DeviceAppraisal,
        |i| set(i, "firmware_version", json!("0.9.0")),
        "unknown_firmware_version",
    );
}

#[test]
fn device_unknown_model() {
    deny_case(
        DeviceAppraisal,
        |i| set(i, "model", json!("X2")),
        "unknown_device_model",
    );
}

#[test]
fn device_missing_and_unreferenced_measurements() {
    deny_case(
        DeviceAppraisal,
        |i| {
            i["measurements"].as_array_mut().unwrap().remove(2);
        },
        "missing_measurement",
    );
    deny_case(
        DeviceAppraisal,
        |i| {
            i["measurements"]
                .as_array_mut()
                .unwrap()
                .push(json!({"index": 9, "value_type": 10, "value": "00"}));
        },
        "unreferenced_measurement",
    );
    deny_case(
        DeviceAppraisal,
        |i| {
            let dup = i["measurements"][0].clone();
            i["measurements"].as_array_mut().unwrap().push(dup);
        },
        "duplicate_measurement_index",
    );
    deny_case(
        DeviceAppraisal,
        |i| set(i, "measurements", json!([])),
        "no_measurements",
    );
}

#[test]
fn device_old_spdm_version() {
    deny_case(
        DeviceAppraisal,
        |i| set(i, "spdm/version", json!("1.1")),
        "spdm_version_too_old",
    );
    deny_case(
        DeviceAppraisal,
        |i| set(i, "spdm/version", json!("junk")),
        "spdm_version_too_old",
    );
    // 1.3 and a hypothetical 2.0 are above the minimum.
    let e = engine();
    for v in ["1.3", "2.0"] {
        let mut i = input(DeviceAppraisal);
        set(&mut i, "spdm/version", json!(v));
        assert!(e.evaluate(DeviceAppraisal, &i).unwrap().allow, "{v}");
    }
}

#[test]
fn device_weak_algorithms() {
    for (field, weak) in [
        ("base_asym", "rsassa-2048"),
        ("base_hash", "sha-1"),
        ("measurement_hash", "md5"),
        ("dhe", "ffdhe2048"),
        ("aead", "aes-128-gcm"),
    ] {
        let e = engine();
        let mut i = input(DeviceAppraisal);
        set(&mut i, &format!("spdm/{field}"), json!(weak));
        let d = e.evaluate(DeviceAppraisal, &i).unwrap();
        assert_denied_by(&d, "weak_algorithm");
        assert!(
            d.reasons
                .iter()
                .any(|r| r.contains(field) && r.contains(weak)),
            "{d:?}"
        );
    }
}

#[test]
fn device_p256_allowed_only_because_a_tenant_opted_down() {
    let mut i = input(DeviceAppraisal);
    set(&mut i, "spdm/base_asym", json!("ecdsa-p256"));
    // tenant-legacy opted down to P-256: the provider's appraisal lets it through ...
    assert!(engine().evaluate(DeviceAppraisal, &i).unwrap().allow);
    // ... but without that tenant, P-256 is weak.
    let mut overlay = read_json("overlay.json");
    overlay["ualink_data"]["tenants"]
        .as_object_mut()
        .unwrap()
        .remove("tenant-legacy");
    let b = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay)
        .unwrap();
    let d = PolicyEngine::new(&b).evaluate(DeviceAppraisal, &i).unwrap();
    assert_denied_by(&d, "weak_algorithm");
}

#[test]
fn device_stale_and_future_attestation() {
    deny_case(
        DeviceAppraisal,
        |i| set(i, "attested_at", json!(1_800_000_000u64 - 86_401)),
        "stale_attestation",
    );
    deny_case(
        DeviceAppraisal,
        |i| set(i, "attested_at", json!(1_800_000_000u64 + 61)),
        "attestation_in_future",
    );
    // Exactly at the limit is still fresh; within the skew is fine.
    let e = engine();
    for at in [1_800_000_000u64 - 86_400, 1_800_000_000 + 60] {
        let mut i = input(DeviceAppraisal);
        set(&mut i, "attested_at", json!(at));
        assert!(e.evaluate(DeviceAppraisal, &i).unwrap().allow, "{at}");
    }
}

// --- TDI acceptance -----------------------------------------------------------------------

#[test]
fn tdi_unknown_tenant() {
    deny_case(
        TdiAcceptance,
        |i| set(i, "tenant_id", json!("mallory")),
        "unknown_tenant",
    );
}

#[test]
fn tdi_device_not_appraised() {
    deny_case(
        TdiAcceptance,
        |i| set(i, "device_appraisal/allow", json!(false)),
        "device_not_appraised",
    );
}

#[test]
fn tdi_state_must_be_locked_or_run() {
    for s in ["CONFIG_UNLOCKED", "ERROR"] {
        deny_case(
            TdiAcceptance,
            |i| set(i, "tdi/state", json!(s)),
            "tdi_not_locked",
        );
    }
    let mut i = input(TdiAcceptance);
    set(&mut i, "tdi/state", json!("RUN"));
    assert!(engine().evaluate(TdiAcceptance, &i).unwrap().allow);
}

#[test]
fn tdi_report_fields() {
    deny_case(
        TdiAcceptance,
        |i| set(i, "tdi/interface_info/no_update_after_lock", json!(false)),
        "firmware_update_after_lock",
    );
    deny_case(
        TdiAcceptance,
        |i| set(i, "tdi/mmio_ranges/1/non_tee_mem", json!(true)),
        "non_tee_mmio",
    );
}

#[test]
fn tdi_tenant_vendor_and_algorithms() {
    deny_case(
        TdiAcceptance,
        |i| set(i, "device/vendor", json!("Globex")),
        "vendor_not_accepted",
    );
    // tenant-a did not opt down: a P-256 device is weak for it ...
    deny_case(
        TdiAcceptance,
        |i| set(i, "device/spdm/base_asym", json!("ecdsa-p256")),
        "weak_algorithm",
    );
    // ... but tenant-legacy accepts it.
    let mut i = input(TdiAcceptance);
    set(&mut i, "device/spdm/base_asym", json!("ecdsa-p256"));
    set(&mut i, "tenant_id", json!("tenant-legacy"));
    let d = engine().evaluate(TdiAcceptance, &i).unwrap();
    assert!(d.allow, "{d:?}");
}

#[test]
fn tdi_vpod_membership() {
    deny_case(
        TdiAcceptance,
        |i| set(i, "accelerator_id", json!(77)),
        "accelerator_not_in_vpod",
    );
    deny_case(
        TdiAcceptance,
        |i| set(i, "vpod_accelerator_ids", json!([1, 2, 2, 4])),
        "duplicate_accelerator_id",
    );
}

#[test]
fn tdi_stale_attestation_uses_tenant_limit() {
    // tenant-a allows 3600 s (the provider's device limit is 86400 s).
    deny_case(
        TdiAcceptance,
        |i| set(i, "device/attested_at", json!(1_800_000_000u64 - 3601)),
        "stale_attestation",
    );
}

// --- shares -------------------------------------------------------------------------------

#[test]
fn share_unlisted_pair() {
    // tenant-b may not export to tenant-a (pairs are directed).
    deny_case(
        Share,
        |i| {
            set(i, "exporter/tenant_id", json!("tenant-b"));
            set(i, "importer/tenant_id", json!("tenant-a"));
        },
        "unlisted_share_pair",
    );
    // No cross-OS entry for tenant-b.
    deny_case(
        Share,
        |i| {
            set(i, "exporter/tenant_id", json!("tenant-b"));
        },
        "unlisted_share_pair",
    );
}

#[test]
fn share_excessive_rights() {
    let e = engine();
    let mut i = input(Share);
    set(&mut i, "rights", json!(["read", "write"]));
    let d = e.evaluate(Share, &i).unwrap();
    assert_denied_by(&d, "excessive_rights");
    assert_eq!(d.rules, ["deny.excessive_rights"]);
    assert!(d.reasons[0].contains("\"write\""), "{:?}", d.reasons);
    deny_case(Share, |i| set(i, "rights", json!([])), "no_rights");
}

#[test]
fn share_cross_os_within_tenant() {
    let e = engine();
    let mut i = input(Share);
    set(&mut i, "importer/tenant_id", json!("tenant-a"));
    set(&mut i, "rights", json!(["read", "write", "atomic"]));
    assert!(e.evaluate(Share, &i).unwrap().allow);
    set(&mut i, "importer/os_instance", json!("vm-1"));
    assert_denied_by(&e.evaluate(Share, &i).unwrap(), "same_endpoint");
}

#[test]
fn share_tdi_not_in_run() {
    deny_case(
        Share,
        |i| set(i, "importer/tdi_state", json!("CONFIG_LOCKED")),
        "importer_tdi_not_running",
    );
    deny_case(
        Share,
        |i| set(i, "exporter/tdi_state", json!("ERROR")),
        "exporter_tdi_not_running",
    );
}

#[test]
fn share_stale_ends_and_dead_keys() {
    deny_case(
        Share,
        |i| set(i, "exporter/attested_at", json!(1_800_000_000u64 - 3601)),
        "exporter_attestation_stale",
    );
    deny_case(
        Share,
        |i| set(i, "importer/attested_at", json!(1_800_000_000u64 - 4000)),
        "importer_attestation_stale",
    );
    deny_case(
        Share,
        |i| set(i, "importer/attested_at", json!(1_800_000_000u64 + 4000)),
        "importer_attestation_in_future",
    );
    deny_case(
        Share,
        |i| set(i, "link_keys_live", json!(false)),
        "link_keys_not_live",
    );
}

// --- key rotation -------------------------------------------------------------------------

#[test]
fn key_rotation_cases() {
    deny_case(
        KeyRotation,
        |i| set(i, "rx/attested_at", json!(1_800_000_000u64 - 3601)),
        "rx_attestation_stale",
    );
    deny_case(
        KeyRotation,
        |i| set(i, "tx/attested_at", json!(1_800_000_000u64 - 7200)),
        "tx_attestation_stale",
    );
    deny_case(
        KeyRotation,
        |i| set(i, "tx/device_appraised", json!(false)),
        "tx_device_not_appraised",
    );
    deny_case(
        KeyRotation,
        |i| set(i, "new_epoch", json!(4)),
        "epoch_not_increasing",
    );
    deny_case(
        KeyRotation,
        |i| set(i, "rx/accelerator_id", json!(1)),
        "self_pair",
    );
}

// --- CVM appraisal ------------------------------------------------------------------------

fn sim_cvm(i: &mut Value) {
    set(i, "tee", json!("sim"));
    set(i, "root", json!("explicit"));
    set(
        i,
        "measurement",
        json!(Sha384::of(b"tenant-a-cvm-sim").to_string()),
    );
}

#[test]
fn cvm_sim_refused_without_allow_sim_tee() {
    deny_case(CvmAppraisal, sim_cvm, "sim_tee_not_allowed");
    // With allow_sim_tee (tests and demo only) the same evidence passes.
    let b = bundle()
        .with_data(json!({"ualink_data": {"allow_sim_tee": true}}))
        .unwrap();
    let mut i = input(CvmAppraisal);
    sim_cvm(&mut i);
    let d = PolicyEngine::new(&b).evaluate(CvmAppraisal, &i).unwrap();
    assert!(d.allow, "{d:?}");
    assert_ne!(b.digest(), bundle().digest());
}

#[test]
fn cvm_snp_with_software_root_refused() {
    deny_case(
        CvmAppraisal,
        |i| set(i, "root", json!("explicit")),
        "root_mismatch",
    );
}

#[test]
fn cvm_debug() {
    deny_case(
        CvmAppraisal,
        |i| set(i, "debug", json!(true)),
        "debug_enabled",
    );
    deny_case(
        CvmAppraisal,
        |i| set(i, "policy/debug_allowed", json!(true)),
        "debug_allowed_by_guest_policy",
    );
}

#[test]
fn cvm_report_data_binding_failed() {
    deny_case(
        CvmAppraisal,
        |i| set(i, "report_data_bound", json!(false)),
        "report_data_not_bound",
    );
}

#[test]
fn cvm_measurement_tcb_and_policy_fields() {
    deny_case(
        CvmAppraisal,
        |i| {
            set(
                i,
                "measurement",
                json!(Sha384::of(b"other image").to_string()),
            )
        },
        "measurement_not_allowed",
    );
    // tenant-b's measurement is not tenant-a's.
    deny_case(
        CvmAppraisal,
        |i| {
            set(
                i,
                "measurement",
                json!(Sha384::of(b"tenant-b-cvm-snp").to_string()),
            )
        },
        "measurement_not_allowed",
    );
    deny_case(
        CvmAppraisal,
        |i| set(i, "tenant_id", json!("nobody")),
        "unknown_tenant",
    );
    deny_case(
        CvmAppraisal,
        |i| set(i, "policy/migration_agent_allowed", json!(true)),
        "migration_agent_allowed",
    );
    deny_case(
        CvmAppraisal,
        |i| set(i, "policy/vmpl", json!(2)),
        "vmpl_not_allowed",
    );
    deny_case(
        CvmAppraisal,
        |i| {
            i["tcb"]["components"]
                .as_object_mut()
                .unwrap()
                .remove("microcode");
        },
        "tcb_below_minimum",
    );
    deny_case(
        CvmAppraisal,
        |i| set(i, "attested_at", json!(1_800_000_000u64 - 601)),
        "stale_attestation",
    );
}

#[test]
fn cvm_tcb_minimum_from_data() {
    let b = bundle()
        .with_data(json!({"ualink_data": {"cvm": {"snp": {"min_tcb": {"snp": 24}}}}}))
        .unwrap();
    let d = PolicyEngine::new(&b)
        .evaluate(CvmAppraisal, &input(CvmAppraisal))
        .unwrap();
    assert_denied_by(&d, "tcb_below_minimum");
    assert!(d.reasons.iter().any(|r| r.contains("snp = 23")), "{d:?}");
}

#[test]
fn cvm_tdx_tcb_status() {
    let e = engine();
    let mut i = input(CvmAppraisal);
    set(&mut i, "tee", json!("tdx"));
    set(&mut i, "root", json!("intel"));
    set(
        &mut i,
        "measurement",
        json!(Sha384::of(b"tenant-a-cvm-tdx").to_string()),
    );
    set(&mut i, "policy/vmpl", Value::Null);
    set(
        &mut i,
        "tcb",
        json!({"components": {}, "status": "UpToDate"}),
    );
    let d = e.evaluate(CvmAppraisal, &i).unwrap();
    assert!(d.allow, "{d:?}");
    set(&mut i, "tcb/status", json!("OutOfDate"));
    assert_denied_by(
        &e.evaluate(CvmAppraisal, &i).unwrap(),
        "tcb_status_not_accepted",
    );
    set(&mut i, "tcb/status", Value::Null);
    assert_denied_by(
        &e.evaluate(CvmAppraisal, &i).unwrap(),
        "tcb_status_not_accepted",
    );
}

#[test]
fn several_failures_are_all_named_and_sorted() {
    let e = engine();
    let mut i = input(CvmAppraisal);
    set(&mut i, "debug", json!(true));
    set(&mut i, "report_data_bound", json!(false));
    let d = e.evaluate(CvmAppraisal, &i).unwrap();
    assert_eq!(
        d.rules,
        ["deny.debug_enabled", "deny.report_data_not_bound"]
    );
}

#[test]
fn device_appraisal_feeds_tdi_acceptance() {
    use ualink_policy::input::PriorDecision;
    let e = engine();
    let appraisal = e
        .evaluate(DeviceAppraisal, &input(DeviceAppraisal))
        .unwrap();
    let mut tdi: ualink_policy::TdiAcceptInput =
        serde_json::from_value(input(TdiAcceptance)).unwrap();
    tdi.device_appraisal = PriorDecision::from(&appraisal);
    let d = e.evaluate_tdi_accept(&tdi).unwrap();
    assert!(d.allow, "{d:?}");
    assert!(d
        .reasons
        .iter()
        .any(|r| r.contains(&hex::encode(appraisal.policy_digest))));

    let mut bad = input(DeviceAppraisal);
    set(&mut bad, "model", json!("X9"));
    tdi.device_appraisal = PriorDecision::from(&e.evaluate(DeviceAppraisal, &bad).unwrap());
    assert_denied_by(
        &e.evaluate_tdi_accept(&tdi).unwrap(),
        "device_not_appraised",
    );
}
