//! Evidence bundles: `DeviceEvidenceBundle::decode` (decode → encode → decode gives the same
//! bundle), `DeviceEvidenceVerifier::verify` and `TdiReportVerifier::verify` on arbitrary bytes.
//!
//! Input: the bundle bytes (the same bytes go to both verifiers).
//!
//! Oracles beyond "no panic": with no device trust anchors, no device evidence and no TDI
//! report bundle verifies.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ualink_attest::snp::SnpVerifier;
use ualink_attest::spdm_evidence::{
    DeviceEvidenceBundle, DeviceEvidenceVerifier, DeviceTrustAnchors, ExpectedNonce,
};
use ualink_attest::tdi_report::TdiReportVerifier;
use ualink_attest::UnixTime;

const NOW: UnixTime = UnixTime::from_secs(1_748_736_000);

fn verifiers() -> &'static (DeviceEvidenceVerifier, TdiReportVerifier) {
    static V: OnceLock<(DeviceEvidenceVerifier, TdiReportVerifier)> = OnceLock::new();
    V.get_or_init(|| {
        let dev = DeviceEvidenceVerifier::new(DeviceTrustAnchors::new());
        let tdi = TdiReportVerifier::new(
            DeviceEvidenceVerifier::new(DeviceTrustAnchors::new()),
            SnpVerifier::amd().expect("AMD trust anchors"),
        );
        (dev, tdi)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = DeviceEvidenceBundle::decode(data) {
        let enc = b.encode().expect("encoding a decoded bundle");
        let b2 = DeviceEvidenceBundle::decode(&enc).expect("decoding our own encoding");
        assert_eq!(b, b2, "decode(encode(b)) != b");
    }
    let (dev, tdi) = verifiers();
    for nonce in [ExpectedNonce::NotProvided, ExpectedNonce::Expected([0; 32])] {
        if let Ok(v) = dev.verify(data, &nonce, NOW) {
            panic!("device evidence verified with no trust anchors: {v:?}");
        }
        if let Ok(v) = tdi.verify(data, &nonce, NOW) {
            panic!("TDI report bundle verified with no device trust anchors: {v:?}");
        }
    }
});
