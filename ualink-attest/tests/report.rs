//! `ualink-attest report` and `policy test` on a known log: a small simulated history written
//! with the audit writer, with real evidence built in-process (SPDM device evidence from
//! ualink-spdm's requester/responder, sim TEE reports for the TSM and a CVM, a signed TDI
//! report) and decisions made by ualink-policy under the defaults + test overlay.
//!
//! Golden files: tests/golden/report.{txt,json}; digests and fingerprints (which change each
//! run: keys are generated) are replaced by `<hex>`. Regenerate with
//! `UALINK_REGENERATE_GOLDEN=1 cargo test -p ualink-attest --test report`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod evidence_common;

use evidence_common::{anchors, bundle, identity, NOW};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use ualink_attest::audit::event::{
    AcceleratorInfo, AuditEvent, Bytes, LinkEnd, ShareParty, SwitchInfo, TsmEvidenceBytes,
};
use ualink_attest::audit::{
    AuditLogWriter, AuditRecord, CheckpointSigner, DecisionKind, Digest384, Outcome,
};
use ualink_attest::sim::SimPlatform;
use ualink_attest::spdm_evidence::{DeviceEvidenceVerifier, ExpectedNonce};
use ualink_attest::tdi_report::{
    tsm_report_data, TdiReportBundle, TdiReportContent, TsmEvidence, TsmSigningKey,
};
use ualink_attest::UnixTime;
use ualink_policy::{PolicyBundle, PolicyEngine};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::tdisp::msg::{
    InterfaceId, InterfaceInfo, InterfaceReport, MmioRange, MmioRangeAttributes,
};
use ualink_spdm::tdisp::TdiState;

const BIN: &str = env!("CARGO_BIN_EXE_ualink-attest");

struct Dir(PathBuf);
impl Dir {
    fn new(tag: &str) -> Self {
        let mut bytes = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-attest-{tag}-{}", hex::encode(bytes)));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Good,
    /// The share decision is recorded as the opposite of what the policy says.
    FlippedDecision,
    /// The CVM's report has a flipped signature byte.
    CorruptEvidence,
    /// A device decision was made on measurements the evidence does not contain.
    InputNotEvidence,
    /// ualink-tsm quarantined accel-0009 on a failed certificate chain check (its evidence,
    /// under a root the auditor does not trust, embedded) and accel-0002 on the same check
    /// without evidence: verification outcomes, not policy decisions.
    CheckQuarantine,
    /// A `check.certificate_chain` quarantine whose embedded evidence verifies.
    CheckQuarantineThatVerifies,
    /// A quarantine Deny with a non-`check.` rule and no policy input: not replayable.
    UnreplayableDeny,
    /// ualink-tsm refused a rotation of accel-0001<->accel-0010 (`check.fresh_attestation`,
    /// no policy input) after accel-0010's appraisal denied it: a verification outcome.
    RotationRefusal,
    /// The same refusal for accel-0001<->accel-0002, whose appraisals both allowed them.
    RotationRefusalWithoutFailure,
    /// The share's importer claims a TDI in RUN that the log never started.
    ShareClaimsUnstartedTdi,
    /// The share claims live link keys but only one direction was ever keyed.
    ShareClaimsOneWayKeys,
    /// The TDI acceptance decided on a report digest no issued bundle has.
    AcceptanceOfUnissuedReport,
    /// The TDI acceptance cites (`tdi-report` input) a bundle the log never issued.
    AcceptanceCitesUnissuedBundle,
    /// The key rotation decided from epoch 3, the log's link is at epoch 1.
    RotationFromWrongEpoch,
    /// The key rotation claims an end attested at another time than its appraisal.
    RotationClaimsOtherAttestationTime,
    /// Keys programmed again on 1:0 -> 9:0 at epoch 1 (an epoch reused with another key, as
    /// a TSM that logs before persisting its epoch could after a crash).
    KeysReprogrammedAtSameEpoch,
    /// tenant-b's agent rejected tdi-9's report; the TSM relays it (Deny, no digest, no
    /// input, citing the bundle) and stops the TDI.
    TenantRejection,
    /// The same, citing a bundle the log never issued.
    TenantRejectionOfUnissuedBundle,
}

struct Pod {
    dir: Dir,
}

impl Pod {
    fn state(&self) -> PathBuf {
        self.dir.0.join("state")
    }
    fn ark(&self) -> PathBuf {
        self.dir.0.join("sim/ark.pem")
    }
    fn device_root(&self) -> PathBuf {
        self.dir.0.join("device-root.der")
    }
    fn log(&self) -> PathBuf {
        self.state().join("audit.log")
    }
    fn report(&self, format: &str, extra: &[&str]) -> (i32, String) {
        let state = self.state();
        let (ark, root) = (self.ark(), self.device_root());
        let mut args = vec![
            "report",
            "--state",
            state.to_str().unwrap(),
            "--trust",
            ark.to_str().unwrap(),
            "--device-trust",
            root.to_str().unwrap(),
            "--format",
            format,
        ];
        args.extend_from_slice(extra);
        run(&args)
    }
}

fn run(args: &[&str]) -> (i32, String) {
    // An empty auditor trust store: the golden outputs must not depend on the home directory.
    let store =
        std::env::temp_dir().join(format!("ualink-attest-empty-store-{}", std::process::id()));
    std::fs::create_dir_all(&store).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .env("UALINK_ATTEST_TRUST_DIR", &store)
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn input(name: &str, now: i64) -> Value {
    let p = format!(
        "{}/../policy/test_data/inputs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    // Move the whole input in time: `now` becomes the record time, and every other time
    // keeps its distance to `now` (so freshness checks decide as in the policy's tests).
    let delta = now - v["now"].as_i64().unwrap();
    fn shift(v: &mut Value, delta: i64) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "attested_at" {
                        *x = json!(x.as_i64().unwrap() + delta);
                    } else {
                        shift(x, delta);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| shift(x, delta)),
            _ => {}
        }
    }
    shift(&mut v, delta);
    v["now"] = json!(now);
    v
}

fn policy_bundle() -> PolicyBundle {
    let overlay: Value = serde_json::from_slice(
        &std::fs::read(format!(
            "{}/../policy/test_data/overlay.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay)
        .unwrap()
}

fn interface_report() -> Vec<u8> {
    InterfaceReport {
        interface_info: InterfaceInfo::from_bits(
            InterfaceInfo::NO_UPDATE_AFTER_LOCK | InterfaceInfo::DMA_WITHOUT_PASID,
        )
        .unwrap(),
        msix_message_control: 0x0007,
        lnr_control: 0,
        tph_control: 0,
        mmio_ranges: vec![MmioRange {
            first_page: 0x8000_0000,
            number_of_pages: 16,
            attributes: MmioRangeAttributes::from_bits(MmioRangeAttributes::MSIX_TABLE).unwrap(),
            range_id: 0,
        }],
        device_specific_info: b"ualink accel fw 1.2.3".to_vec(),
    }
    .encode()
    .unwrap()
}

/// A record of a decision made now by the engine (or its opposite, to plant a mismatch).
fn decided(
    engine: &PolicyEngine,
    t: i64,
    kind: DecisionKind,
    subject: &str,
    input: &Value,
    flip: bool,
) -> AuditRecord {
    let pk = ualink_policy::DecisionKind::from_name(kind.name()).unwrap();
    let d = engine.evaluate(pk, input).unwrap();
    let allow = d.allow != flip;
    let mut r = AuditRecord::new(
        UnixTime::from_secs(t),
        kind,
        subject,
        if allow { Outcome::Allow } else { Outcome::Deny },
    )
    .unwrap()
    .with_policy(Digest384::from_bytes(d.policy_digest))
    .with_policy_input(pk, &ualink_policy::canonical_input(pk, input).unwrap())
    .unwrap();
    for (rule, reason) in d.rules.iter().zip(&d.reasons) {
        r = r.with_rule(rule).unwrap().with_reason(reason).unwrap();
    }
    r
}

/// A quarantine as ualink-tsm records a failed verification check: rule `check.<check>`, no
/// policy digest, no policy input.
fn quarantine(t: i64, a: u16, rule: &str, evidence: Option<Vec<u8>>) -> AuditRecord {
    let device_id = format!("accel-{a:04}");
    AuditRecord::new(
        UnixTime::from_secs(t),
        DecisionKind::DeviceAppraisal,
        &device_id,
        Outcome::Deny,
    )
    .unwrap()
    .with_rule(rule)
    .unwrap()
    .with_reason("certificate chain does not end at a trusted root")
    .unwrap()
    .with_event(AuditEvent::DeviceQuarantined {
        device_id,
        accelerator_id: a,
        cause: "certificate_chain: no trusted root".into(),
        evidence: evidence.map(Bytes),
    })
}

/// A rotation ualink-tsm refused because an end failed re-attestation: rule
/// `check.fresh_attestation`, no event, no policy digest, no policy input.
fn rotation_refusal(t: i64, subject: &str) -> AuditRecord {
    AuditRecord::new(
        UnixTime::from_secs(t),
        DecisionKind::KeyRotation,
        subject,
        Outcome::Deny,
    )
    .unwrap()
    .with_rule("check.fresh_attestation")
    .unwrap()
    .with_reason("an end failed re-attestation; the pair is stopped")
    .unwrap()
}

fn info(t: i64, kind: DecisionKind, subject: &str, ev: AuditEvent) -> AuditRecord {
    AuditRecord::new(UnixTime::from_secs(t), kind, subject, Outcome::Info)
        .unwrap()
        .with_event(ev)
}

fn build(variant: Variant) -> Pod {
    let dir = Dir::new("report");
    let pod = Pod { dir };
    std::fs::create_dir_all(pod.state()).unwrap();
    let sim = SimPlatform::load_or_create(&pod.dir.0.join("sim")).unwrap();
    std::fs::write(pod.device_root(), identity(AsymAlg::EcdsaP384).ca_der()).unwrap();

    let (signer, _pkcs8) = CheckpointSigner::generate().unwrap();
    let (tsm_key, _k) = TsmSigningKey::generate().unwrap();
    let (dev, att) = bundle(AsymAlg::EcdsaP384, SpdmVersion::V13);
    let device_bundle = dev.encode().unwrap();
    let nonce = att.measurements.unwrap().requester_nonce;
    let verified = DeviceEvidenceVerifier::new(anchors(AsymAlg::EcdsaP384))
        .verify(&device_bundle, &ExpectedNonce::Expected(nonce), NOW)
        .unwrap();
    let bundle_policy = policy_bundle()
        .with_data(device_overlay(&verified))
        .unwrap();
    bundle_policy.write_to(pod.state().join("policy")).unwrap();
    let engine = PolicyEngine::new(&bundle_policy);
    let snp = |rd: [u8; 64]| TsmEvidenceBytes {
        report: Bytes(sim.report(&rd).unwrap()),
        leaf: Bytes(sim.certs().leaf),
        intermediates: sim.certs().intermediates.into_iter().map(Bytes).collect(),
    };

    let t0 = NOW.secs() + 10;
    let mut w = AuditLogWriter::create(&pod.log()).unwrap();
    let mut t = t0;
    let push = |w: &mut AuditLogWriter, r: AuditRecord| {
        w.append(&r).unwrap();
    };
    use DecisionKind::*;
    push(
        &mut w,
        info(
            t,
            Lifecycle,
            "tsm",
            AuditEvent::TsmIdentity {
                public_key: Bytes(signer.public_key().to_vec()),
                evidence: snp(tsm_report_data(signer.public_key())),
            },
        ),
    );
    push(
        &mut w,
        info(
            t,
            Lifecycle,
            "pod-0",
            AuditEvent::PodDiscovered {
                pod_id: "pod-0".into(),
                switches: vec![
                    SwitchInfo {
                        switch_id: 0,
                        accelerator_ids: vec![1, 2],
                    },
                    SwitchInfo {
                        switch_id: 1,
                        accelerator_ids: vec![9, 10],
                    },
                ],
                accelerators: [1u16, 2, 9, 10]
                    .iter()
                    .map(|a| AcceleratorInfo {
                        accelerator_id: *a,
                        device_id: format!("accel-{a:04}"),
                    })
                    .collect(),
            },
        ),
    );
    let mut accel1_decision = None;
    for a in [1u16, 2, 9, 10] {
        t += 1;
        let mut i = device_input(&verified, &format!("accel-{a:04}"), t);
        if variant == Variant::InputNotEvidence && a == 2 {
            i["measurements"][0]["value"] = json!("00".repeat(48));
        }
        if a == 1 {
            let d = engine
                .evaluate(ualink_policy::DecisionKind::DeviceAppraisal, &i)
                .unwrap();
            accel1_decision = Some(json!({
                "allow": d.allow,
                "rules": d.rules,
                "policy_digest": hex::encode(d.policy_digest),
            }));
        }
        push(
            &mut w,
            decided(
                &engine,
                t,
                DeviceAppraisal,
                &format!("accel-{a:04}"),
                &i,
                false,
            )
            .with_event(AuditEvent::DeviceAttested {
                device_id: format!("accel-{a:04}"),
                accelerator_id: a,
                epoch: 1,
                nonce: Bytes(nonce.to_vec()),
                evidence: Bytes(device_bundle.clone()),
            }),
        );
    }
    for (tenant, vpod, members) in [
        ("tenant-a", "vpod-a", vec![1u16, 2]),
        ("tenant-b", "vpod-b", vec![9, 10]),
    ] {
        t += 1;
        push(
            &mut w,
            info(
                t,
                Lifecycle,
                tenant,
                AuditEvent::TenantAdded {
                    tenant_id: tenant.into(),
                },
            ),
        );
        push(
            &mut w,
            info(
                t,
                Lifecycle,
                vpod,
                AuditEvent::VpodFormed {
                    vpod_id: vpod.into(),
                    tenant_id: tenant.into(),
                    accelerator_ids: members,
                },
            ),
        );
    }
    for (a, base) in [(1u16, 0x1_0000u64), (2, 0x2_0000)] {
        push(
            &mut w,
            info(
                t,
                Lifecycle,
                "vpod-a",
                AuditEvent::WindowCarved {
                    vpod_id: "vpod-a".into(),
                    accelerator_id: a,
                    base,
                    size: 0x1_0000,
                },
            ),
        );
    }
    t += 1;
    let (tx, rx) = (
        LinkEnd {
            accelerator_id: 1,
            port: 0,
        },
        LinkEnd {
            accelerator_id: 9,
            port: 0,
        },
    );
    push(
        &mut w,
        info(
            t,
            KeyRotation,
            "link 1:0->9:0",
            AuditEvent::KeysProgrammed {
                tx: tx.clone(),
                rx: rx.clone(),
                epoch: 1,
                key_fingerprint: Digest384::of(b"link key epoch 1"),
            },
        ),
    );
    if variant == Variant::KeysReprogrammedAtSameEpoch {
        push(
            &mut w,
            info(
                t,
                KeyRotation,
                "link 1:0->9:0",
                AuditEvent::KeysProgrammed {
                    tx: tx.clone(),
                    rx: rx.clone(),
                    epoch: 1,
                    key_fingerprint: Digest384::of(b"another key at epoch 1"),
                },
            ),
        );
    }
    if variant != Variant::ShareClaimsOneWayKeys {
        push(
            &mut w,
            info(
                t,
                KeyRotation,
                "link 9:0->1:0",
                AuditEvent::KeysProgrammed {
                    tx: rx.clone(),
                    rx: tx.clone(),
                    epoch: 1,
                    key_fingerprint: Digest384::of(b"link key epoch 1 back"),
                },
            ),
        );
    }
    t += 1;
    let locked = AuditEvent::TdiLocked {
        tdi_id: "tdi-1".into(),
        accelerator_id: 1,
        tenant_id: "tenant-a".into(),
    };
    push(&mut w, info(t, Lifecycle, "tdi-1", locked));
    let tdi_bundle = TdiReportBundle::sign(
        &TdiReportContent {
            interface_report: interface_report(),
            interface_id: InterfaceId::new(1).unwrap(),
            state: TdiState::ConfigLocked,
            tenant_id: "tenant-a".into(),
            accelerator_id: 1,
            epoch: 1,
            issued_at: UnixTime::from_secs(t),
        },
        &device_bundle,
        &TsmEvidence::SnpReport {
            report: sim.report(&tsm_key.report_data()).unwrap(),
            certs: sim.certs(),
        },
        &tsm_key,
    )
    .unwrap();
    push(
        &mut w,
        info(
            t,
            Lifecycle,
            "tdi-1",
            AuditEvent::TdiReportIssued {
                tdi_id: "tdi-1".into(),
                bundle: Bytes(tdi_bundle.clone()),
            },
        ),
    );
    t += 1;
    let mut cvm_ev = snp([7u8; 64]);
    if variant == Variant::CorruptEvidence {
        cvm_ev.report.0[0x2A0 + 5] ^= 0x01;
    }
    push(
        &mut w,
        decided(&engine, t, CvmAppraisal, "vm-1", &cvm_input(t), false).with_event(
            AuditEvent::CvmAttested {
                cvm_id: "vm-1".into(),
                tenant_id: "tenant-a".into(),
                evidence: cvm_ev,
            },
        ),
    );
    t += 1;
    // The tenant agent's input, from the issued bundle (as ualink-guest-agent builds it).
    let mut accept_in = input("tdi_accept", t);
    accept_in["vpod_accelerator_ids"] = json!([1, 2]);
    accept_in["tdi"]["interface_id"] = json!(1);
    accept_in["tdi"]["mmio_ranges"] = json!([{
        "first_page": 0x8000_0000u64, "number_of_pages": 16, "range_id": 0,
        "msix_table": true, "msix_pba": false, "non_tee_mem": false,
        "mem_attr_updatable": false}]);
    accept_in["tdi"]["report_digest"] = json!(hex::encode(ring::digest::digest(
        &ring::digest::SHA384,
        &interface_report()
    )));
    if variant == Variant::AcceptanceOfUnissuedReport {
        accept_in["tdi"]["report_digest"] = json!("ab".repeat(48));
    }
    accept_in["device"]["spdm"]["version"] = json!("1.3");
    accept_in["device"]["attested_at"] = json!(verified.taken_at.secs());
    accept_in["device_appraisal"] = accel1_decision.unwrap();
    let cited = if variant == Variant::AcceptanceCitesUnissuedBundle {
        Digest384::of(b"another bundle")
    } else {
        Digest384::of(&tdi_bundle)
    };
    push(
        &mut w,
        decided(&engine, t, TdiAcceptance, "tdi-1", &accept_in, false)
            .with_input("tdi-report", cited)
            .unwrap()
            .with_event(AuditEvent::TdiAccepted {
                tdi_id: "tdi-1".into(),
                tenant_id: "tenant-a".into(),
                cvm_id: "vm-1".into(),
            }),
    );
    t += 1;
    push(
        &mut w,
        info(
            t,
            Lifecycle,
            "tdi-1",
            AuditEvent::TdiStarted {
                tdi_id: "tdi-1".into(),
                accelerator_id: 1,
                tenant_id: "tenant-a".into(),
            },
        ),
    );
    // tenant-b's TDI on accel-0009 (its agent's acceptance is not part of this log).
    let (tdi_id, accelerator_id, tenant_id) = ("tdi-9".to_string(), 9, "tenant-b".to_string());
    let tdi9_locked = AuditEvent::TdiLocked {
        tdi_id: tdi_id.clone(),
        accelerator_id,
        tenant_id: tenant_id.clone(),
    };
    push(&mut w, info(t, Lifecycle, "tdi-9", tdi9_locked));
    if matches!(
        variant,
        Variant::TenantRejection | Variant::TenantRejectionOfUnissuedBundle
    ) {
        let bundle9 = TdiReportBundle::sign(
            &TdiReportContent {
                interface_report: interface_report(),
                interface_id: InterfaceId::new(9).unwrap(),
                state: TdiState::ConfigLocked,
                tenant_id: "tenant-b".into(),
                accelerator_id: 9,
                epoch: 1,
                issued_at: UnixTime::from_secs(t),
            },
            &device_bundle,
            &TsmEvidence::SnpReport {
                report: sim.report(&tsm_key.report_data()).unwrap(),
                certs: sim.certs(),
            },
            &tsm_key,
        )
        .unwrap();
        push(
            &mut w,
            info(
                t,
                Lifecycle,
                "tdi-9",
                AuditEvent::TdiReportIssued {
                    tdi_id: "tdi-9".into(),
                    bundle: Bytes(bundle9.clone()),
                },
            ),
        );
        let cited = if variant == Variant::TenantRejection {
            Digest384::of(&bundle9)
        } else {
            Digest384::of(b"a bundle never issued")
        };
        push(
            &mut w,
            AuditRecord::new(
                UnixTime::from_secs(t),
                TdiAcceptance,
                "accel-0009",
                Outcome::Deny,
            )
            .unwrap()
            .with_input("tdi-report", cited)
            .unwrap()
            .with_reason("rejected by vm-7 of tenant 2; STOP")
            .unwrap()
            .with_reason("tdi_accept:deny.vendor_not_accepted")
            .unwrap(),
        );
    }
    if variant != Variant::ShareClaimsUnstartedTdi {
        let started = AuditEvent::TdiStarted {
            tdi_id,
            accelerator_id,
            tenant_id,
        };
        push(&mut w, info(t, Lifecycle, "tdi-9", started));
    }
    t += 1;
    let mut share_in = input("share", t);
    share_in["exporter"]["attested_at"] = json!(verified.taken_at.secs());
    share_in["importer"]["attested_at"] = json!(verified.taken_at.secs());
    let share = decided(
        &engine,
        t,
        Share,
        "grant-1",
        &share_in,
        variant == Variant::FlippedDecision,
    );
    let party = |tenant: &str, os: &str, a: u16| ShareParty {
        tenant_id: tenant.into(),
        os_instance: os.into(),
        accelerator_id: a,
    };
    let (exporter, importer, rights) = (
        party("tenant-a", "vm-1", 1),
        party("tenant-b", "vm-7", 9),
        vec!["read".to_string()],
    );
    let ev = if share.outcome() == Outcome::Allow {
        AuditEvent::ShareAllowed {
            grant_id: "grant-1".into(),
            exporter,
            importer,
            rights,
        }
    } else {
        AuditEvent::ShareDenied {
            grant_id: "grant-1".into(),
            exporter,
            importer,
            rights,
        }
    };
    push(&mut w, share.with_event(ev));
    t += 1;
    let mut rot_in = input("key_rotation", t);
    let from = if variant == Variant::RotationFromWrongEpoch {
        3
    } else {
        1
    };
    rot_in["current_epoch"] = json!(from);
    rot_in["new_epoch"] = json!(from + 1);
    rot_in["rx"]["accelerator_id"] = json!(9);
    rot_in["rx"]["port"] = json!(0);
    rot_in["tx"]["attested_at"] = json!(verified.taken_at.secs());
    rot_in["rx"]["attested_at"] = json!(verified.taken_at.secs());
    if variant == Variant::RotationClaimsOtherAttestationTime {
        rot_in["rx"]["attested_at"] = json!(verified.taken_at.secs() + 5);
    }
    push(
        &mut w,
        decided(&engine, t, KeyRotation, "link 1:0->9:0", &rot_in, false).with_event(
            AuditEvent::KeysRotated {
                tx,
                rx,
                previous_epoch: from,
                epoch: from + 1,
                key_fingerprint: Digest384::of(b"link key epoch 2"),
            },
        ),
    );
    t += 5;
    push(
        &mut w,
        info(
            t,
            Revocation,
            "grant-1",
            AuditEvent::AttachmentRevoked {
                grant_id: "grant-1".into(),
                cause: "tenant-b offboarding".into(),
                requested_at: t - 2,
                drained_at: t,
            },
        ),
    );
    t += 1;
    push(
        &mut w,
        info(
            t,
            Lifecycle,
            "tdi-1",
            AuditEvent::TdiStopped {
                tdi_id: "tdi-1".into(),
                accelerator_id: 1,
                tenant_id: "tenant-a".into(),
            },
        ),
    );
    push(
        &mut w,
        info(
            t,
            Lifecycle,
            "tenant-b",
            AuditEvent::TenantOffboarded {
                tenant_id: "tenant-b".into(),
            },
        ),
    );
    // accel-0010 re-attested reporting a firmware version the policy does not know:
    // denied, quarantined, its evidence kept.
    t += 1;
    let mut i = device_input(&verified, "accel-0010", t);
    i["firmware_version"] = json!("9.9.9");
    let d = decided(&engine, t, DeviceAppraisal, "accel-0010", &i, false);
    assert_eq!(d.outcome(), Outcome::Deny);
    push(
        &mut w,
        d.with_event(AuditEvent::DeviceQuarantined {
            device_id: "accel-0010".into(),
            accelerator_id: 10,
            cause: "unknown firmware 9.9.9".into(),
            evidence: Some(Bytes(device_bundle.clone())),
        }),
    );
    if matches!(
        variant,
        Variant::CheckQuarantine
            | Variant::CheckQuarantineThatVerifies
            | Variant::UnreplayableDeny
            | Variant::RotationRefusal
            | Variant::RotationRefusalWithoutFailure
    ) {
        t += 1;
    }
    match variant {
        Variant::CheckQuarantine => {
            let (untrusted, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V13);
            let rule = "check.certificate_chain";
            push(
                &mut w,
                quarantine(t, 9, rule, Some(untrusted.encode().unwrap())),
            );
            push(&mut w, quarantine(t, 2, rule, None));
        }
        Variant::CheckQuarantineThatVerifies => push(
            &mut w,
            quarantine(t, 9, "check.certificate_chain", Some(device_bundle.clone())),
        ),
        Variant::UnreplayableDeny => push(&mut w, quarantine(t, 9, "firmware_known", None)),
        Variant::RotationRefusal => push(&mut w, rotation_refusal(t, "accel-0001<->accel-0010")),
        Variant::RotationRefusalWithoutFailure => {
            push(&mut w, rotation_refusal(t, "accel-0001<->accel-0002"))
        }
        Variant::ShareClaimsUnstartedTdi
        | Variant::ShareClaimsOneWayKeys
        | Variant::AcceptanceOfUnissuedReport
        | Variant::AcceptanceCitesUnissuedBundle
        | Variant::RotationFromWrongEpoch
        | Variant::RotationClaimsOtherAttestationTime
        | Variant::KeysReprogrammedAtSameEpoch
        | Variant::TenantRejection
        | Variant::TenantRejectionOfUnissuedBundle
        | Variant::Good
        | Variant::FlippedDecision
        | Variant::CorruptEvidence
        | Variant::InputNotEvidence => {}
    }
    w.checkpoint(&signer, UnixTime::from_secs(t)).unwrap();
    pod
}

/// Replaces digests and fingerprints (runs of 16+ hex digits, shortened or not) by `<hex>`.
fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j].is_ascii_hexdigit() && !chars[j].is_ascii_uppercase() {
            j += 1;
        }
        let boundary = i == 0 || !chars[i - 1].is_ascii_alphanumeric();
        if j - i >= 16 && boundary {
            out.push_str("<hex>");
            if j < chars.len() && chars[j] == '…' {
                j += 1;
            }
            i = j;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = normalize(actual);
    if std::env::var_os("UALINK_REGENERATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} missing: run with UALINK_REGENERATE_GOLDEN=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "golden {name} differs");
}

#[test]
fn known_log_reports_text_and_json_matching_golden_files() {
    let pod = build(Variant::Good);
    let (code, text) = pod.report("text", &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("ualink-attest audit report: VERIFIED"),
        "{text}"
    );
    golden("report.txt", &text);
    let (code, out) = pod.report("json", &[]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["verdict"], "VERIFIED");
    assert_eq!(v["devices"].as_array().unwrap().len(), 4);
    assert_eq!(v["replay"]["replayed"], v["replay"]["identical"]);
    assert_eq!(v["replay"]["replayed"], 9);
    assert_eq!(
        v["devices"][3]["verdict"],
        "quarantined: unknown firmware 9.9.9"
    );
    assert_eq!(v["devices"][3]["evidence"], "verified");
    golden("report.json", &out);
}

#[test]
fn tampered_log_exits_log_tampered() {
    let pod = build(Variant::Good);
    let mut bytes = std::fs::read(pod.log()).unwrap();
    let at = bytes
        .windows(12)
        .position(|w| w == b"vpod-b\x00\x00\x00\x00\x00\x00" || w.starts_with(b"vpod-b"))
        .unwrap();
    bytes[at + 5] = b'c';
    std::fs::write(pod.log(), &bytes).unwrap();
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 21, "{out}");
    assert!(out.contains("LOG TAMPERED"), "{out}");
}

#[test]
fn decision_the_policy_would_not_make_exits_decision_mismatch() {
    let pod = build(Variant::FlippedDecision);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 22, "{out}");
    assert!(out.contains("decision-mismatch"), "{out}");
    assert!(out.contains("share grant-1"), "{out}");
}

#[test]
fn policy_digest_mismatch_is_flagged() {
    let pod = build(Variant::Good);
    let other = pod.dir.0.join("defaults");
    PolicyBundle::defaults().unwrap().write_to(&other).unwrap();
    let (code, out) = pod.report("text", &["--policy", other.to_str().unwrap()]);
    assert_eq!(code, 22, "{out}");
    assert!(out.contains("policy mismatch"), "{out}");
}

#[test]
fn decision_on_inputs_the_evidence_does_not_support_is_flagged() {
    let pod = build(Variant::InputNotEvidence);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 22, "{out}");
    assert!(
        out.contains("device accel-0002: policy input lists other measurements"),
        "{out}"
    );
}

#[test]
fn check_quarantines_are_verification_outcomes_not_replayable_decisions() {
    let pod = build(Variant::CheckQuarantine);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("not-replayable"), "{out}");
    let line = |dev: &str| {
        out.lines()
            .find(|l| l.contains(dev) && l.contains("quarantined: certificate_chain"))
            .unwrap_or_else(|| panic!("no quarantine line for {dev}: {out}"))
            .to_string()
    };
    let with_evidence = line("accel-0009");
    assert!(with_evidence.contains("check.certificate_chain"), "{out}");
    assert!(with_evidence.contains("failed as recorded"), "{out}");
    let without = line("accel-0002");
    assert!(without.contains("check.certificate_chain"), "{out}");
    assert!(without.contains("none embedded"), "{out}");
    let (code, out) = pod.report("json", &[]);
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // Not decisions: the replay count is the Good log's.
    assert_eq!(v["replay"]["replayed"], 9);
    assert_eq!(v["replay"]["identical"], 9);
}

#[test]
fn check_quarantine_whose_evidence_verifies_exits_decision_mismatch() {
    let pod = build(Variant::CheckQuarantineThatVerifies);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 22, "{out}");
    assert!(out.contains("quarantine-without-failure"), "{out}");
    assert!(out.contains("device accel-0009"), "{out}");
}

#[test]
fn deny_without_policy_input_and_non_check_rule_stays_not_replayable() {
    let pod = build(Variant::UnreplayableDeny);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 22, "{out}");
    assert!(out.contains("not-replayable"), "{out}");
}

#[test]
fn rotation_refused_on_a_failed_reattestation_is_a_verification_outcome() {
    let pod = build(Variant::RotationRefusal);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("not-replayable"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("refused") && l.contains("1 <-> 10"))
        .unwrap_or_else(|| panic!("no refused key row: {out}"));
    assert!(line.contains("check.fresh_attestation"), "{line}");
    let (_, out) = pod.report("json", &[]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replay"]["replayed"], 9);
    assert_eq!(v["replay"]["identical"], 9);
}

#[test]
fn rotation_refused_without_a_failed_appraisal_exits_decision_mismatch() {
    let pod = build(Variant::RotationRefusalWithoutFailure);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 22, "{out}");
    assert!(out.contains("rotation-refusal-without-failure"), "{out}");
    assert!(out.contains("accel-0001<->accel-0002"), "{out}");
    assert!(!out.contains("not-replayable"), "{out}");
}

/// Each planted contradiction between a decision's input and the log before it: exit 22
/// with the record and the reason, while the decision itself replays identically.
#[test]
fn inputs_that_contradict_the_log_exit_decision_mismatch() {
    for (variant, subject, why) in [
        (
            Variant::ShareClaimsUnstartedTdi,
            "share grant-1",
            "importer claims its TDI on accelerator 9 is RUN for tenant-b, but the log shows \
             TDI tdi-9 CONFIG_LOCKED",
        ),
        (
            Variant::ShareClaimsOneWayKeys,
            "share grant-1",
            "claims live link keys",
        ),
        (
            Variant::AcceptanceOfUnissuedReport,
            "tdi-acceptance tdi-1",
            "is not the interface report of a TDI report bundle issued for tdi-1",
        ),
        (
            Variant::AcceptanceCitesUnissuedBundle,
            "tdi-acceptance tdi-1",
            "cites a TDI report bundle",
        ),
        (
            Variant::RotationFromWrongEpoch,
            "key-rotation link 1:0->9:0",
            "current epoch 3 is not the log's last key epoch 1",
        ),
        (
            Variant::RotationClaimsOtherAttestationTime,
            "key-rotation link 1:0->9:0",
            "rx claims accelerator 9 was attested at",
        ),
        (
            Variant::TenantRejectionOfUnissuedBundle,
            "tdi-acceptance accel-0009",
            "cites a TDI report bundle",
        ),
        (
            Variant::KeysReprogrammedAtSameEpoch,
            "key-rotation link 1:0->9:0",
            "keys programmed at epoch 1 on 1:0 -> 9:0, which already had epoch 1",
        ),
    ] {
        let pod = build(variant);
        let (code, out) = pod.report("text", &[]);
        assert_eq!(code, 22, "{subject}: {out}");
        let line = out
            .lines()
            .find(|l| l.contains("input-contradicts-log") && l.contains(why))
            .unwrap_or_else(|| panic!("{subject}: no input-contradicts-log {why:?}: {out}"));
        assert!(line.contains(subject), "{line}");
        assert!(!out.contains("decision-mismatch"), "{out}");
    }
}

/// A TDI rejection the tenant's agent made (under the tenant's policy, not in the log) and
/// the TSM relayed is not a provider decision: not replayed, shown in the TDI's history, and
/// it must cite a bundle the log issued for that TDI.
#[test]
fn a_relayed_tenant_rejection_is_recorded_not_replayed() {
    let pod = build(Variant::TenantRejection);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("not-replayable"), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("tdi-9"))
        .unwrap_or_else(|| panic!("no tdi-9 row: {out}"));
    assert!(line.contains("rejected by the tenant"), "{line}");
    let (_, out) = pod.report("json", &[]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["replay"]["replayed"], 9);
}

#[test]
fn corrupted_evidence_exits_evidence_failed() {
    let pod = build(Variant::CorruptEvidence);
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 20, "{out}");
    assert!(out.contains("CVM vm-1 evidence"), "{out}");
}

#[test]
fn without_the_sim_root_the_tsm_identity_does_not_verify() {
    let pod = build(Variant::Good);
    let state = pod.state();
    let root = pod.device_root();
    let (code, out) = run(&[
        "report",
        "--state",
        state.to_str().unwrap(),
        "--device-trust",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, 21, "{out}");
    assert!(out.contains("no checkpoint key"), "{out}");
}

#[test]
fn verify_detects_and_checks_both_bundle_types() {
    let pod = build(Variant::Good);
    let bytes = std::fs::read(pod.log()).unwrap();
    // Take the evidence back out of the log through the library.
    let v = ualink_attest::audit::verify_log(
        &bytes,
        &ualink_attest::audit::CheckpointVerifier::new(&tsm_pub(&pod)),
        &[],
    )
    .unwrap();
    let mut device = None;
    let mut tdi = None;
    for seq in 0..v.size() {
        match v.record(&bytes, seq).unwrap().event() {
            Some(AuditEvent::DeviceAttested { evidence, .. }) => device = Some(evidence.0.clone()),
            Some(AuditEvent::TdiReportIssued { bundle, .. }) => tdi = Some(bundle.0.clone()),
            _ => {}
        }
    }
    let (dfile, tfile) = (pod.dir.0.join("device.cbor"), pod.dir.0.join("tdi.cbor"));
    std::fs::write(&dfile, device.unwrap()).unwrap();
    std::fs::write(&tfile, tdi.unwrap()).unwrap();
    let now = "2026-11-19T10:00:00Z";
    let (code, out) = run(&[
        "verify",
        dfile.to_str().unwrap(),
        "--trust",
        pod.device_root().to_str().unwrap(),
        "--now",
        now,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("spdm-device-evidence"), "{out}");
    // --nonce binds freshness: the wrong nonce is a binding mismatch (14).
    let (code, out) = run(&[
        "verify",
        dfile.to_str().unwrap(),
        "--trust",
        pod.device_root().to_str().unwrap(),
        "--now",
        now,
        "--nonce",
        &"11".repeat(32),
    ]);
    assert_eq!(code, 14, "{out}");
    let (code, out) = run(&[
        "verify",
        tfile.to_str().unwrap(),
        "--trust",
        pod.ark().to_str().unwrap(),
        "--device-trust",
        pod.device_root().to_str().unwrap(),
        "--now",
        now,
    ]);
    assert_eq!(code, 0, "{out}");
    // Without the sim ARK the TSM evidence is untrusted.
    let (code, out) = run(&[
        "verify",
        tfile.to_str().unwrap(),
        "--device-trust",
        pod.device_root().to_str().unwrap(),
        "--now",
        now,
    ]);
    assert_eq!(code, 13, "{out}");
}

fn tsm_pub(pod: &Pod) -> Vec<u8> {
    let bytes = std::fs::read(pod.log()).unwrap();
    // The first record is the TSM identity (unverified here; verify_log checks it).
    let start = 12 + 5 + 56;
    let len = u32::from_be_bytes(bytes[13..17].try_into().unwrap()) as usize;
    let rec = AuditRecord::from_cbor(&bytes[start..12 + 5 + len]).unwrap();
    match rec.event() {
        Some(AuditEvent::TsmIdentity { public_key, .. }) => public_key.0.clone(),
        _ => panic!("first record is not the TSM identity"),
    }
}

#[test]
fn policy_test_lists_exactly_the_changed_decisions() {
    let pod = build(Variant::Good);
    let candidate = pod.dir.0.join("candidate");
    let cand_bundle = PolicyBundle::defaults().unwrap();
    cand_bundle.write_to(&candidate).unwrap();
    // Expected: every replayable decision whose outcome or rules differ under the candidate.
    let bytes = std::fs::read(pod.log()).unwrap();
    let v = ualink_attest::audit::verify_log(
        &bytes,
        &ualink_attest::audit::CheckpointVerifier::new(&tsm_pub(&pod)),
        &[],
    )
    .unwrap();
    let cand = PolicyEngine::new(&cand_bundle);
    let mut expected = Vec::new();
    for seq in 0..v.size() {
        let r = v.record(&bytes, seq).unwrap();
        if let Some(Ok(x)) = ualink_attest::report::replay_record(seq, &r, &cand) {
            if x.recorded != x.replayed {
                expected.push(format!("seq {seq} "));
            }
        }
    }
    assert!(!expected.is_empty(), "the candidate must change something");
    let (code, out) = run(&[
        "policy",
        "test",
        "--policy",
        candidate.to_str().unwrap(),
        "--log",
        pod.log().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("seq ")).collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (l, e) in lines.iter().zip(&expected) {
        assert!(l.starts_with(e.as_str()), "{l} vs {e}");
    }
    assert!(out.contains("share grant-1: allow [allow"), "{out}");
    // The same bundle against itself changes nothing.
    let (code, out) = run(&[
        "policy",
        "test",
        "--policy",
        pod.state().join("policy").to_str().unwrap(),
        "--log",
        pod.log().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("9 decisions replayed, 0 would change"),
        "{out}"
    );
}

#[test]
fn html_report_renders_in_headless_chromium_with_one_node_per_accelerator() {
    let pod = build(Variant::Good);
    let html = pod.dir.0.join("report.html");
    let (code, out) = pod.report("html", &["--out", html.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(!page.contains("<script"), "self-contained, no scripts");
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok())
        .expect("chromium is required for this test (CI: apt-get install -y chromium)");
    let profile = pod.dir.0.join("chromium-profile");
    let png = pod.dir.0.join("shot.png");
    let url = format!("file://{}", html.display());
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let user_data = format!("--user-data-dir={}", profile.display());
    let shot = Command::new(chromium)
        .args(common)
        .arg(&user_data)
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1200,900")
        .arg(&url)
        .output()
        .unwrap();
    if let Some(keep) = std::env::var_os("UALINK_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&png, keep);
    }
    assert!(
        png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    assert!(info.width > 0 && info.height > 0);
    let px = info.color_type.samples();
    let first = &pixels[..px];
    let distinct = pixels.chunks(px).filter(|p| *p != first).count();
    assert!(distinct > 1000, "screenshot is (nearly) one colour");
    let dom = Command::new(chromium)
        .args(common)
        .arg(&user_data)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("<svg"), "{dom}");
    let nodes = dom.matches("class=\"accelerator\"").count();
    assert_eq!(nodes, 4, "one SVG node per accelerator");
    for a in [1, 2, 9, 10] {
        assert!(dom.contains(&format!("id=\"accel-{a}\"")), "accel-{a}");
    }
    assert_eq!(dom.matches("class=\"share cross-tenant\"").count(), 1);
    // The windows carved for vpod-a, one bar each under its accelerator.
    assert_eq!(dom.matches("class=\"window\"").count(), 2, "{dom}");
    // One row per switch: accelerators 1 and 2 (switch 0) above 9 and 10 (switch 1).
    let y_of = |a: u16| {
        let at = dom.find(&format!("id=\"accel-{a}\"")).unwrap();
        let rest = &dom[at..];
        let y = rest.find(" y=\"").unwrap() + 4;
        rest[y..y + rest[y..].find('"').unwrap()]
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(y_of(1), y_of(2));
    assert_eq!(y_of(9), y_of(10));
    assert!(y_of(9) > y_of(1));
    // The timeline: one dot per record, one row per record kind, window-carved shown.
    assert_eq!(dom.matches("class=\"record\"").count(), 27, "{dom}");
    for kind in [
        "lifecycle",
        "device-appraisal",
        "cvm-appraisal",
        "tdi-acceptance",
        "share",
        "key-rotation",
        "revocation",
    ] {
        assert!(dom.contains(&format!("data-kind=\"{kind}\"")), "{kind}");
    }
    assert_eq!(dom.matches("data-event=\"window-carved\"").count(), 2);
}

/// The device-appraisal input the TSM builds from verified evidence.
fn device_input(
    v: &ualink_attest::spdm_evidence::VerifiedDeviceEvidence,
    device_id: &str,
    now: i64,
) -> Value {
    let mut i = input("device", now);
    i["device_id"] = json!(device_id);
    i["model"] = json!("SoftDevice");
    i["vendor_root_fingerprint"] = json!(hex::encode(v.root_fingerprint));
    i["spdm"]["version"] = json!("1.3");
    i["attested_at"] = json!(v.taken_at.secs());
    i["measurements"] = json!(v
        .measurements
        .iter()
        .map(|m| json!({
            "index": m.index,
            "value_type": m.value_type | if m.raw_bit_stream { 0x80 } else { 0 },
            "value": hex::encode(&m.value),
        }))
        .collect::<Vec<_>>());
    i
}

/// Data trusting the test device root and holding the test device's reference values, and
/// accepting the sim CVM's launch measurement for tenant-a.
fn device_overlay(v: &ualink_attest::spdm_evidence::VerifiedDeviceEvidence) -> Value {
    let measurements: Vec<Value> = v
        .measurements
        .iter()
        .map(|m| {
            if m.raw_bit_stream {
                json!({"mkey": m.index, "mval": {"version": {"version": "1.0.0"},
                       "raw-value": hex::encode(&m.value)}})
            } else {
                json!({"mkey": m.index, "mval": {"version": {"version": "1.0.0"},
                       "digests": [{"alg": "sha-384", "value": hex::encode(&m.value)}]}})
            }
        })
        .collect();
    json!({"ualink_data": {
        "device": {"trusted_vendor_roots": [
            {"vendor": "Acme", "sha384": hex::encode(v.root_fingerprint)}]},
        "allow_sim_tee": true,
        "tenants": {"tenant-a": {"cvm": {"measurements": {
            "sim": [hex::encode(ualink_attest::sim::default_measurement())]}}}},
        "reference_values": {"tags": [{"comid": {"tag-identity": {"id": "soft-device"},
            "triples": {"reference-triples": [{
                "environment": {"class": {"vendor": "Acme", "model": "SoftDevice"}},
                "measurements": measurements}]}}}]}
    }})
}

/// The CVM-appraisal input for the sim CVM report (default sim launch measurement).
fn cvm_input(now: i64) -> Value {
    let mut i = input("cvm", now);
    i["tee"] = json!("sim");
    i["root"] = json!("explicit");
    i["measurement"] = json!(hex::encode(ualink_attest::sim::default_measurement()));
    i
}

#[test]
fn a_key_file_that_disagrees_with_the_tsm_identity_is_refused() {
    let pod = build(Variant::Good);
    let (good, bad) = (pod.dir.0.join("good.pub"), pod.dir.0.join("bad.pub"));
    std::fs::write(&good, hex::encode(tsm_pub(&pod))).unwrap();
    let (other, _) = CheckpointSigner::generate().unwrap();
    std::fs::write(&bad, hex::encode(other.public_key())).unwrap();
    let (code, out) = pod.report("text", &["--key", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = pod.report("text", &["--key", bad.to_str().unwrap()]);
    assert_eq!(code, 21, "{out}");
    assert!(
        out.contains("differs from the key in the tsm-identity record"),
        "{out}"
    );
}

#[test]
fn decisions_under_a_replaced_policy_replay_from_the_archive() {
    let pod = build(Variant::Good);
    let (current, archive) = (
        pod.state().join("policy"),
        pod.state().join("policy-archive"),
    );
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::rename(&current, archive.join("earlier")).unwrap();
    PolicyBundle::defaults()
        .unwrap()
        .write_to(&current)
        .unwrap();
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 0, "{out}");
    // Without the archive the same decisions are a policy mismatch.
    std::fs::remove_dir_all(&archive).unwrap();
    let (code, out) = pod.report("text", &[]);
    assert_eq!(code, 22, "{out}");
    assert!(out.contains("policy mismatch"), "{out}");
}

/// A CVM attested with Intel TDX: the `cvm-attested-tdx` record embeds the real sample quote
/// and its collateral; the report re-verifies it at the record's time (inside the
/// collateral's validity) and requires the recorded input to say what the quote says. The
/// log has no tsm-identity record (the sim TSM's certificates postdate the vector), so the
/// checkpoint key comes from STATE/tsm.pub.
#[test]
fn tdx_cvm_evidence_is_reverified_and_must_support_its_input() {
    let tdx = |name: &str| {
        std::fs::read(format!(
            "{}/tests/data/tdx/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let quote = ualink_attest::tdx::trim_zero_padding(&tdx("tdx_quote"))
        .unwrap()
        .to_vec();
    let collateral = tdx("tdx_quote_collateral.json");
    // tcbInfo issueDate of the collateral plus one hour (as in tests/tdx.rs).
    let t = 1_750_331_763;
    let v = ualink_attest::tdx::verify_quote(
        &quote,
        &ualink_attest::tdx::TdxCollateral::from_json(&collateral).unwrap(),
        &ualink_attest::ExpectedReportData::NotProvided,
        UnixTime::from_secs(t),
    )
    .unwrap();
    let mrtd = hex::encode(v.td.mr_td);
    let bundle = policy_bundle()
        .with_data(json!({"ualink_data": {"tenants": {"tenant-a": {"cvm": {
            "measurements": {"tdx": [mrtd.clone()]}}}}}}))
        .unwrap();
    let engine = PolicyEngine::new(&bundle);
    let mut i = input("cvm", t);
    i["tee"] = json!("tdx");
    i["root"] = json!("intel");
    i["measurement"] = json!(mrtd);
    i["policy"]["vmpl"] = Value::Null;
    i["tcb"] = json!({"components": {}, "status": v.tcb_status});

    for (case, input, quote, want) in [
        ("good", i.clone(), quote.clone(), 0),
        (
            "other MRTD",
            {
                let mut j = i.clone();
                j["measurement"] = json!("00".repeat(48));
                j
            },
            quote.clone(),
            22,
        ),
        (
            "altered quote",
            i.clone(),
            {
                let mut q = quote.clone();
                let n = q.len();
                q[n - 200] ^= 1;
                q
            },
            20,
        ),
    ] {
        let dir = Dir::new("report-tdx");
        let state = dir.0.join("state");
        std::fs::create_dir_all(&state).unwrap();
        bundle.write_to(state.join("policy")).unwrap();
        let (signer, _) = CheckpointSigner::generate().unwrap();
        std::fs::write(state.join("tsm.pub"), hex::encode(signer.public_key())).unwrap();
        let mut w = AuditLogWriter::create(&state.join("audit.log")).unwrap();
        w.append(
            &decided(
                &engine,
                t,
                DecisionKind::CvmAppraisal,
                "td-1",
                &input,
                false,
            )
            .with_event(AuditEvent::CvmAttestedTdx {
                cvm_id: "td-1".into(),
                tenant_id: "tenant-a".into(),
                quote: Bytes(quote),
                collateral: Bytes(collateral.clone()),
            }),
        )
        .unwrap();
        w.checkpoint(&signer, UnixTime::from_secs(t)).unwrap();
        let (code, out) = run(&["report", "--state", state.to_str().unwrap()]);
        assert_eq!(code, want, "{case}: {out}");
        match want {
            0 => assert!(out.contains("td-1 (accepted TDX MRTD"), "{out}"),
            22 => assert!(out.contains("claims another MRTD than the quote"), "{out}"),
            _ => assert!(out.contains("CVM td-1 TDX evidence"), "{out}"),
        }
    }
}
