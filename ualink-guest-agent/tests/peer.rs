//! Peer acceptance: real TDI report bundles (ualink-spdm requester against its responder in
//! memory, signed by a TSM key bound to sim SNP evidence, as in ualink-attest's tests) judged
//! against the tenant's own roots and policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use ualink_attest::pki::AnchorOrigin;
use ualink_attest::sim::SimPlatform;
use ualink_attest::spdm_evidence::{
    DeviceEvidenceBundle, DeviceEvidenceVerifier, DeviceTrustAnchors, ExpectedNonce,
};
use ualink_attest::tdi_report::{TdiReportBundle, TdiReportContent, TsmEvidence, TsmSigningKey};
use ualink_attest::UnixTime;
use ualink_guest_agent::peer::{Candidate, DeviceClaims, PeerAcceptor, TenantTrust, Verdict};
use ualink_policy::{PolicyBundle, PolicyEngine};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::device::SoftDevice;
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::{Attestation, MeasurementPlan, Progress, Requester, RequesterConfig};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::tdisp::msg::{
    InterfaceId, InterfaceInfo, InterfaceReport, MmioRange, MmioRangeAttributes,
};
use ualink_spdm::tdisp::TdiState;

const NOW: UnixTime = UnixTime::from_secs(1_795_000_000);
const ASYM: AsymAlg = AsymAlg::EcdsaP384;
const TENANT: &str = "tenant-a";
const ACCEL: u16 = 0x12A;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-ga-{tag}-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn identity() -> DeviceIdentity {
    static ID: OnceLock<DeviceIdentity> = OnceLock::new();
    ID.get_or_init(|| {
        let opts = IdentityOptions {
            intermediate: true,
            name: "guest-agent test accelerator".into(),
            ..IdentityOptions::default()
        };
        DeviceIdentity::generate(ASYM, &opts).unwrap()
    })
    .clone()
}

fn device_roots(id: &DeviceIdentity) -> DeviceTrustAnchors {
    let mut t = DeviceTrustAnchors::new();
    t.add_der(id.ca_der()).unwrap();
    t
}

fn attest() -> Attestation {
    let mut rsp = Responder::new(
        SoftDevice::new(identity(), 7).unwrap(),
        ResponderConfig::default(),
    );
    let config = RequesterConfig {
        versions: vec![SpdmVersion::V13],
        algorithms: AlgorithmPolicy::suite(ASYM),
        challenge: false,
        measurements: MeasurementPlan::AllSigned,
        session: None,
        ..RequesterConfig::default()
    };
    let mut req = Requester::new(config, Arc::new(device_roots(&identity()))).unwrap();
    let mut out = req.start().unwrap();
    loop {
        let answer = rsp.handle(out.kind, &out.bytes).unwrap();
        match req.handle(answer.kind, &answer.bytes).unwrap() {
            Progress::Send(next) => out = next,
            Progress::Attested(a) => return *a,
            other => panic!("unexpected progress {other:?}"),
        }
    }
}

struct Fixture {
    _dir: TempDir,
    sim: SimPlatform,
    bundle: Vec<u8>,
    device_bundle: Vec<u8>,
    nonce: [u8; 32],
}

fn fixture(state: TdiState) -> Fixture {
    let dir = TempDir::new("peer");
    let sim = SimPlatform::load_or_create(dir.path()).unwrap();
    let (key, _pkcs8) = TsmSigningKey::generate().unwrap();
    let att = attest();
    let nonce = att.measurements.as_ref().unwrap().requester_nonce;
    let device_bundle = DeviceEvidenceBundle::from_attestation(&att, NOW)
        .unwrap()
        .encode()
        .unwrap();
    let report = InterfaceReport {
        interface_info: InterfaceInfo::from_bits(
            InterfaceInfo::NO_UPDATE_AFTER_LOCK | InterfaceInfo::DMA_WITHOUT_PASID,
        )
        .unwrap(),
        msix_message_control: 0,
        lnr_control: 0,
        tph_control: 0,
        mmio_ranges: vec![MmioRange {
            first_page: 0x8000_0000,
            number_of_pages: 16,
            attributes: MmioRangeAttributes::from_bits(MmioRangeAttributes::MSIX_TABLE).unwrap(),
            range_id: 0,
        }],
        device_specific_info: Vec::new(),
    }
    .encode()
    .unwrap();
    let content = TdiReportContent {
        interface_report: report,
        interface_id: InterfaceId::new(1).unwrap(),
        state,
        tenant_id: TENANT.into(),
        accelerator_id: ACCEL,
        epoch: 1,
        issued_at: NOW,
    };
    let evidence = TsmEvidence::SnpReport {
        report: sim.report(&key.report_data()).unwrap(),
        certs: sim.certs(),
    };
    let bundle = TdiReportBundle::sign(&content, &device_bundle, &evidence, &key).unwrap();
    Fixture {
        _dir: dir,
        sim,
        bundle,
        device_bundle,
        nonce,
    }
}

/// The tenant's policy: the defaults with the test device's vendor root and reference values
/// taken from its verified measurements (`corrupt` alters one reference digest).
fn engine(f: &Fixture, corrupt: bool) -> PolicyEngine {
    let dev = DeviceEvidenceVerifier::new(device_roots(&identity()))
        .verify(&f.device_bundle, &ExpectedNonce::NotProvided, NOW)
        .unwrap();
    let measurements: Vec<serde_json::Value> = dev
        .measurements
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut v = m.value.clone();
            if corrupt && i == 0 {
                v[0] ^= 1;
            }
            let mval = if m.raw_bit_stream {
                serde_json::json!({"version": {"version": "1.0.0"}, "raw-value": hex::encode(&v)})
            } else {
                serde_json::json!({"version": {"version": "1.0.0"},
                    "digests": [{"alg": "sha-384", "value": hex::encode(&v)}]})
            };
            serde_json::json!({"mkey": m.index, "mval": mval})
        })
        .collect();
    let overlay = serde_json::json!({"ualink_data": {
        "allow_sim_tee": true,
        "device": {"trusted_vendor_roots": [{"vendor": "Acme Accel",
            "sha384": hex::encode(dev.root_fingerprint)}]},
        "reference_values": {"tags": [{"comid": {"triples": {"reference-triples": [{
            "environment": {"class": {"vendor": "Acme Accel", "model": "A100X"}},
            "measurements": measurements}]}}}]},
        "tenants": {TENANT: {"accept": {"vendors": ["Acme Accel"]}}},
    }});
    PolicyEngine::new(
        &PolicyBundle::defaults()
            .unwrap()
            .with_data(overlay)
            .unwrap(),
    )
}

fn claims() -> DeviceClaims {
    DeviceClaims {
        device_id: "accel-0001".into(),
        vendor: "Acme Accel".into(),
        model: "A100X".into(),
        firmware_version: "1.0.0".into(),
        dhe: "secp384r1".into(),
        aead: "aes-256-gcm".into(),
    }
}

fn acceptor(
    f: &Fixture,
    corrupt: bool,
    tsm_root: &SimPlatform,
    dev_id: &DeviceIdentity,
) -> PeerAcceptor {
    PeerAcceptor::new(
        TENANT,
        TenantTrust {
            device_roots: device_roots(dev_id),
            tsm_roots: tsm_root.trust_anchors().unwrap(),
        },
        engine(f, corrupt),
    )
}

fn candidate<'a>(f: &'a Fixture, vpod: Vec<u16>) -> Candidate<'a> {
    Candidate {
        bundle: &f.bundle,
        device_nonce: ExpectedNonce::Expected(f.nonce),
        claims: claims(),
        vpod_accelerator_ids: vpod,
    }
}

fn rejected(v: Verdict) -> Vec<String> {
    match v {
        Verdict::Rejected(checks) => checks
            .into_iter()
            .map(|c| format!("{}: {}", c.check, c.reason))
            .collect(),
        Verdict::Accepted(_) => panic!("accepted"),
    }
}

#[test]
fn good_tdi_is_accepted() {
    let f = fixture(TdiState::ConfigLocked);
    let a = acceptor(&f, false, &f.sim, &identity());
    match a.judge(&candidate(&f, vec![ACCEL, 0x001]), NOW).unwrap() {
        Verdict::Accepted(acc) => {
            assert_eq!(acc.tsm_root, AnchorOrigin::Explicit);
            assert!(acc.device_decision.allow && acc.tdi_decision.allow);
            assert!(
                acc.tdi_decision
                    .rules
                    .contains(&"allow.tdi_report_accepted".to_string()),
                "{:?}",
                acc.tdi_decision.rules
            );
            assert_eq!(acc.report.content.accelerator_id, ACCEL);
        }
        Verdict::Rejected(r) => panic!("rejected: {r:?}"),
    }
}

#[test]
fn bad_measurements_are_rejected_with_the_failed_rules() {
    let f = fixture(TdiState::ConfigLocked);
    let a = acceptor(&f, true, &f.sim, &identity());
    let checks = rejected(a.judge(&candidate(&f, vec![ACCEL]), NOW).unwrap());
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("device:deny.measurement_mismatch")),
        "{checks:?}"
    );
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("tdi_accept:deny.device_not_appraised")),
        "{checks:?}"
    );
}

#[test]
fn untrusted_tsm_root_is_rejected() {
    let f = fixture(TdiState::ConfigLocked);
    let other_dir = TempDir::new("other-ark");
    let other = SimPlatform::load_or_create(other_dir.path()).unwrap();
    let a = acceptor(&f, false, &other, &identity());
    let checks = rejected(a.judge(&candidate(&f, vec![ACCEL]), NOW).unwrap());
    assert_eq!(checks.len(), 1);
    assert!(
        checks[0].starts_with("verification: untrusted root"),
        "{checks:?}"
    );
}

#[test]
fn untrusted_device_root_is_rejected() {
    let f = fixture(TdiState::ConfigLocked);
    let stranger = DeviceIdentity::generate(ASYM, &IdentityOptions::default()).unwrap();
    let a = acceptor(&f, false, &f.sim, &stranger);
    let checks = rejected(a.judge(&candidate(&f, vec![ACCEL]), NOW).unwrap());
    assert!(checks[0].starts_with("verification:"), "{checks:?}");
}

#[test]
fn duplicate_accelerator_ids_and_unlocked_tdis_are_rejected() {
    let f = fixture(TdiState::ConfigLocked);
    let a = acceptor(&f, false, &f.sim, &identity());
    let checks = rejected(a.judge(&candidate(&f, vec![ACCEL, 7, 7]), NOW).unwrap());
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("tdi_accept:deny.duplicate_accelerator_id")),
        "{checks:?}"
    );
    let checks = rejected(a.judge(&candidate(&f, vec![7]), NOW).unwrap());
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("tdi_accept:deny.accelerator_not_in_vpod")),
        "{checks:?}"
    );

    let f = fixture(TdiState::ConfigUnlocked);
    let a = acceptor(&f, false, &f.sim, &identity());
    let checks = rejected(a.judge(&candidate(&f, vec![ACCEL]), NOW).unwrap());
    assert!(
        checks
            .iter()
            .any(|c| c.starts_with("tdi_accept:deny.tdi_not_locked")),
        "{checks:?}"
    );
}

#[test]
fn wrong_device_nonce_and_stale_decisions_are_rejected() {
    let f = fixture(TdiState::ConfigLocked);
    let a = acceptor(&f, false, &f.sim, &identity());
    let mut c = candidate(&f, vec![ACCEL]);
    c.device_nonce = ExpectedNonce::Expected([0; 32]);
    let checks = rejected(a.judge(&c, NOW).unwrap());
    assert!(checks[0].starts_with("verification:"), "{checks:?}");
    let later = UnixTime::from_secs(NOW.secs() + 10 * 86_400);
    let checks = rejected(a.judge(&candidate(&f, vec![ACCEL]), later).unwrap());
    assert!(
        checks.iter().any(|c| c.contains("stale_attestation")),
        "{checks:?}"
    );
}
