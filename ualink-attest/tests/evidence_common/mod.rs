//! Shared plumbing for the device evidence and TDI report tests: ualink-spdm's requester
//! against its responder in memory, and the captured libspdm transcripts.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use ualink_attest::spdm_evidence::{DeviceEvidenceBundle, DeviceTrustAnchors};
use ualink_attest::UnixTime;
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::device::SoftDevice;
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::{Attestation, MeasurementPlan, Progress, Requester, RequesterConfig};
use ualink_spdm::responder::{Responder, ResponderConfig};

/// A time inside the generated identities' validity (2024..2049): 2026-11-25.
pub const NOW: UnixTime = UnixTime::from_secs(1_795_000_000);
/// 2050-06-01: after every generated certificate expired.
pub const AFTER_EXPIRY: UnixTime = UnixTime::from_secs(2_538_000_000);

/// One generated identity (root → intermediate → leaf) per curve for the whole test binary.
pub fn identity(asym: AsymAlg) -> DeviceIdentity {
    static P256: OnceLock<DeviceIdentity> = OnceLock::new();
    static P384: OnceLock<DeviceIdentity> = OnceLock::new();
    let cell = match asym {
        AsymAlg::EcdsaP256 => &P256,
        AsymAlg::EcdsaP384 => &P384,
    };
    cell.get_or_init(|| {
        let opts = IdentityOptions {
            intermediate: true,
            name: "ualink-attest test accelerator".into(),
            ..IdentityOptions::default()
        };
        DeviceIdentity::generate(asym, &opts).unwrap()
    })
    .clone()
}

/// SPDM trust anchors holding `asym`'s generated root.
pub fn anchors(asym: AsymAlg) -> DeviceTrustAnchors {
    let mut t = DeviceTrustAnchors::new();
    t.add_der(identity(asym).ca_der()).unwrap();
    t
}

/// Runs a full attestation (VCA, digests, certificate, signed measurements; no session).
pub fn attest(asym: AsymAlg, version: SpdmVersion, plan: MeasurementPlan) -> Attestation {
    let mut rsp = Responder::new(
        SoftDevice::new(identity(asym), 7).unwrap(),
        ResponderConfig::default(),
    );
    let config = RequesterConfig {
        versions: vec![version],
        algorithms: AlgorithmPolicy::suite(asym),
        challenge: false,
        measurements: plan,
        session: None,
        ..RequesterConfig::default()
    };
    let mut req = Requester::new(config, Arc::new(anchors(asym))).unwrap();
    let mut out = req.start().unwrap();
    loop {
        let answer = rsp.handle(out.kind, &out.bytes).expect("responder answers");
        match req.handle(answer.kind, &answer.bytes).unwrap() {
            Progress::Send(next) => out = next,
            Progress::Attested(a) => return *a,
            other => panic!("unexpected progress {other:?}"),
        }
    }
}

/// A bundle from a fresh attestation, taken at [`NOW`].
pub fn bundle(asym: AsymAlg, version: SpdmVersion) -> (DeviceEvidenceBundle, Attestation) {
    let att = attest(asym, version, MeasurementPlan::AllSigned);
    (
        DeviceEvidenceBundle::from_attestation(&att, NOW).unwrap(),
        att,
    )
}

/// One record of a `*.transcript.full.txt` file.
#[derive(Debug, Clone)]
pub struct Record {
    pub index: usize,
    pub decode: String,
    pub bytes: Vec<u8>,
}

/// Reads a capture in tests/data/spdm/.
pub fn transcript(name: &str) -> Vec<Record> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/spdm")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let mut out: Vec<Record> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            let (idx, decode) = rest.split_once(' ').unwrap();
            out.push(Record {
                index: idx.parse().unwrap(),
                decode: decode.trim().to_string(),
                bytes: Vec::new(),
            });
        } else if !line.trim().is_empty() {
            out.last_mut()
                .unwrap()
                .bytes
                .extend(hex::decode(line.trim()).unwrap());
        }
    }
    out
}
