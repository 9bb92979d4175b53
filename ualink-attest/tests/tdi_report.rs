//! TDI report bundles: a TSM (with sim TEE evidence for its key) signs a TDISP interface report
//! over real device evidence; valid bundles verify and each single corruption fails with its
//! own reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod evidence_common;

use ciborium::value::Value;
use evidence_common::{anchors, bundle, NOW};
use ualink_attest::pki::AnchorOrigin;
use ualink_attest::sim::SimPlatform;
use ualink_attest::snp::SnpVerifier;
use ualink_attest::spdm_evidence::{DeviceEvidenceVerifier, ExpectedNonce};
use ualink_attest::tdi_report::{
    encode_bundle, encode_payload, sign_payload, TdiReportBundle, TdiReportContent,
    TdiReportVerifier, TsmEvidence, TsmSigningKey,
};
use ualink_attest::{Error, ErrorClass};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::tdisp::msg::{
    InterfaceId, InterfaceInfo, InterfaceReport, MmioRange, MmioRangeAttributes,
};
use ualink_spdm::tdisp::TdiState;

mod tempdir {
    //! A minimal self-cleaning temporary directory.
    pub(crate) struct Dir(std::path::PathBuf);
    impl Dir {
        pub(crate) fn new(tag: &str) -> Self {
            let mut bytes = [0u8; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
            Self(std::env::temp_dir().join(format!("ualink-attest-{tag}-{}", hex::encode(bytes))))
        }
        pub(crate) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const ASYM: AsymAlg = AsymAlg::EcdsaP384;

struct Fixture {
    _dir: tempdir::Dir,
    sim: SimPlatform,
    key: TsmSigningKey,
    content: TdiReportContent,
    device_bundle: Vec<u8>,
    device_nonce: [u8; 32],
    evidence: TsmEvidence,
}

fn interface_report() -> Vec<u8> {
    InterfaceReport {
        interface_info: InterfaceInfo::from_bits(InterfaceInfo::DMA_WITHOUT_PASID).unwrap(),
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

fn fixture() -> Fixture {
    let dir = tempdir::Dir::new("tdi");
    let sim = SimPlatform::load_or_create(dir.path()).unwrap();
    let (key, _pkcs8) = TsmSigningKey::generate().unwrap();
    let (b, att) = bundle(ASYM, SpdmVersion::V13);
    let evidence = TsmEvidence::SnpReport {
        report: sim.report(&key.report_data()).unwrap(),
        certs: sim.certs(),
    };
    Fixture {
        _dir: dir,
        sim,
        key,
        content: TdiReportContent {
            interface_report: interface_report(),
            interface_id: InterfaceId::new(0x0001).unwrap(),
            state: TdiState::ConfigLocked,
            tenant_id: "tenant-a".into(),
            accelerator_id: 0x12A,
            epoch: 3,
            issued_at: NOW,
        },
        device_bundle: b.encode().unwrap(),
        device_nonce: att.measurements.unwrap().requester_nonce,
        evidence,
    }
}

impl Fixture {
    fn verifier(&self) -> TdiReportVerifier {
        TdiReportVerifier::new(
            DeviceEvidenceVerifier::new(anchors(ASYM)),
            SnpVerifier::new(self.sim.trust_anchors().unwrap()),
        )
    }

    fn signed(&self) -> Vec<u8> {
        TdiReportBundle::sign(
            &self.content,
            &self.device_bundle,
            &self.evidence,
            &self.key,
        )
        .unwrap()
    }

    fn verify(&self, bytes: &[u8]) -> Result<ualink_attest::tdi_report::VerifiedTdiReport, Error> {
        self.verifier()
            .verify(bytes, &ExpectedNonce::Expected(self.device_nonce), NOW)
    }

    /// A bundle assembled by hand: `content` signed by the fixture key over `device`.
    fn assembled(
        &self,
        content: &TdiReportContent,
        device: &[u8],
        signed_device: &[u8],
    ) -> Vec<u8> {
        let payload = encode_payload(content, &sha384(signed_device)).unwrap();
        let cose = sign_payload(payload, &self.key).unwrap();
        encode_bundle(&cose, device, self.key.public_key(), &self.evidence).unwrap()
    }
}

fn sha384(b: &[u8]) -> [u8; 48] {
    ring::digest::digest(&ring::digest::SHA384, b)
        .as_ref()
        .try_into()
        .unwrap()
}

/// The outer map's entries.
fn entries(bytes: &[u8]) -> Vec<(Value, Value)> {
    match ciborium::from_reader::<Value, _>(bytes).unwrap() {
        Value::Map(m) => m,
        _ => panic!("not a map"),
    }
}

fn rebuild(m: Vec<(Value, Value)>) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(&Value::Map(m), &mut out).unwrap();
    out
}

/// Applies `f` to the byte string under outer key `key`.
fn with_field(bytes: &[u8], key: usize, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut m = entries(bytes);
    let Value::Bytes(b) = &mut m[key].1 else {
        panic!("not bytes")
    };
    f(b);
    rebuild(m)
}

#[test]
fn valid_report_verifies_with_everything_bound() {
    let f = fixture();
    let bytes = f.signed();
    let v = f.verify(&bytes).unwrap();
    assert_eq!(v.content, f.content);
    assert_eq!(v.interface_report.mmio_ranges.len(), 1);
    assert_eq!(v.device.bundle_digest, sha384(&f.device_bundle));
    assert!(v.device.nonce_checked);
    assert_eq!(v.tsm.root, AnchorOrigin::Explicit);
    assert!(v.tsm.report_data_checked);
    assert_eq!(v.tsm_key_fingerprint, sha384(f.key.public_key()));
    // Deterministic outer map: 5 entries, version 1.
    assert_eq!(&bytes[..3], &[0xA5, 0x00, 0x01]);
}

#[test]
fn cose_signature_bit_is_a_bad_signature() {
    let f = fixture();
    let bad = with_field(&f.signed(), 1, |cose| *cose.last_mut().unwrap() ^= 0x01);
    assert_eq!(
        f.verify(&bad).unwrap_err(),
        Error::BadSignature {
            check: "TDI report COSE_Sign1 signed by the TSM key"
        }
    );
}

#[test]
fn changed_payload_is_a_bad_signature() {
    let f = fixture();
    let bad = with_field(&f.signed(), 1, |cose| {
        // The tenant id's last letter, inside the signed payload.
        let at = cose.windows(8).position(|w| w == b"tenant-a").unwrap() + 7;
        cose[at] = b'b';
    });
    assert_eq!(
        f.verify(&bad).unwrap_err(),
        Error::BadSignature {
            check: "TDI report COSE_Sign1 signed by the TSM key"
        }
    );
}

#[test]
fn tsm_evidence_for_another_key_is_a_report_data_mismatch() {
    let f = fixture();
    let (other, _) = TsmSigningKey::generate().unwrap();
    let foreign = TsmEvidence::SnpReport {
        report: f.sim.report(&other.report_data()).unwrap(),
        certs: f.sim.certs(),
    };
    // The builder refuses it...
    assert!(matches!(
        TdiReportBundle::sign(&f.content, &f.device_bundle, &foreign, &f.key),
        Err(Error::ApiMisuse { .. })
    ));
    // ... and a bundle assembled anyway is refused by the verifier.
    let payload = encode_payload(&f.content, &sha384(&f.device_bundle)).unwrap();
    let cose = sign_payload(payload, &f.key).unwrap();
    let bad = encode_bundle(&cose, &f.device_bundle, f.key.public_key(), &foreign).unwrap();
    assert_eq!(
        f.verify(&bad).unwrap_err(),
        Error::BindingMismatch {
            field: "report_data"
        }
    );
}

#[test]
fn tsm_evidence_under_an_untrusted_root_is_refused() {
    let f = fixture();
    let bytes = f.signed();
    // AMD's roots only: the sim ARK is never trusted by default.
    let amd = TdiReportVerifier::new(
        DeviceEvidenceVerifier::new(anchors(ASYM)),
        SnpVerifier::amd().unwrap(),
    );
    let e = amd
        .verify(&bytes, &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Trust, "{e}");
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
}

#[test]
fn corrupted_device_evidence_is_refused() {
    let f = fixture();
    // Swapped under the TSM's signature: the signed digest no longer matches.
    let bad = with_field(&f.signed(), 2, |d| *d.last_mut().unwrap() ^= 0x01);
    assert_eq!(
        f.verify(&bad).unwrap_err(),
        Error::BindingMismatch {
            field: "signed device evidence digest"
        }
    );
    // Signed by the TSM as it is: the device's own signature fails. The device signature
    // sits inside the CBOR, so flip a byte of the last measurement response's signature by
    // re-encoding the decoded bundle.
    let mut db =
        ualink_attest::spdm_evidence::DeviceEvidenceBundle::decode(&f.device_bundle).unwrap();
    *db.measurements
        .last_mut()
        .unwrap()
        .response
        .last_mut()
        .unwrap() ^= 0x01;
    let corrupted = db.encode().unwrap();
    let bad = f.assembled(&f.content, &corrupted, &corrupted);
    assert_eq!(f.verify(&bad).unwrap_err().class(), ErrorClass::Crypto);
    // Wrong device nonce.
    let e = f
        .verifier()
        .verify(&f.signed(), &ExpectedNonce::Expected([0; 32]), NOW)
        .unwrap_err();
    assert!(matches!(e, Error::BindingMismatch { .. }), "{e}");
}

#[test]
fn malformed_interface_report_is_refused() {
    let f = fixture();
    let mut content = f.content.clone();
    // MMIO_RANGE_COUNT says 2, one range present.
    content.interface_report[12] = 2;
    assert!(matches!(
        TdiReportBundle::sign(&content, &f.device_bundle, &f.evidence, &f.key),
        Err(Error::Malformed { .. })
    ));
    let bad = f.assembled(&content, &f.device_bundle, &f.device_bundle);
    assert!(
        matches!(
            f.verify(&bad).unwrap_err(),
            Error::Malformed {
                what: "TDISP device interface report",
                ..
            }
        ),
        "malformed report must be named"
    );
}

#[test]
fn trailing_truncated_and_unknown_version_are_refused() {
    let f = fixture();
    let bytes = f.signed();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        f.verify(&trailing).unwrap_err().class(),
        ErrorClass::Malformed
    );
    assert_eq!(
        f.verify(&bytes[..bytes.len() - 1]).unwrap_err().class(),
        ErrorClass::Malformed
    );
    let mut v2 = bytes.clone();
    v2[2] = 0x02;
    assert_eq!(
        f.verify(&v2).unwrap_err(),
        Error::UnsupportedVersion {
            what: "TDI report bundle",
            version: 2
        }
    );
    // Trailing bytes inside the COSE_Sign1 itself.
    let bad = with_field(&bytes, 1, |c| c.push(0));
    assert_eq!(f.verify(&bad).unwrap_err().class(), ErrorClass::Malformed);
}

#[test]
fn detection_markers_recognise_tdi_bundles_only() {
    let f = fixture();
    let bytes = f.signed();
    assert!(ualink_attest::tdi_report::looks_like_bundle(&bytes));
    assert!(!ualink_attest::spdm_evidence::looks_like_bundle(&bytes));
    assert!(!ualink_attest::tdi_report::looks_like_bundle(
        &f.device_bundle
    ));
}

#[test]
fn flipped_bytes_in_every_signed_field_fail() {
    let f = fixture();
    let bytes = f.signed();
    let v = f.verifier();
    // Every 5th byte, a rotating bit, of the COSE envelope, the device bundle (including its
    // TSM-claimed time, covered by the signed digest), the TSM key and the TSM's report. The
    // TSM's certificates are left to the SNP verifier's own tests (crate::pki).
    let TsmEvidence::SnpReport { report, .. } = &f.evidence;
    let report_at = bytes
        .windows(report.len())
        .position(|w| w == &report[..])
        .unwrap();
    let ranges = [0..report_at, report_at..report_at + report.len()];
    for i in ranges.into_iter().flatten().step_by(5) {
        let mut bad = bytes.clone();
        bad[i] ^= 1 << (i % 8);
        assert!(
            v.verify(&bad, &ExpectedNonce::NotProvided, NOW).is_err(),
            "flip in byte {i} verified"
        );
    }
}

#[test]
fn libspdm_interface_report_bytes_sign_and_verify() {
    use ualink_spdm::tdisp::msg::{TdispResponse, TdispResponseBody};
    let recs = evidence_common::transcript("tsm_like_v12_p256_pcidoe.vdm_plaintext.txt");
    // VENDOR_DEFINED_RESPONSE: header 4 | StandardID 2 | Len 1 | VendorID 2 | RespLength 2.
    const PREFIX: usize = 11;
    let mut report = Vec::new();
    let mut interface = None;
    for index in [37, 39] {
        let r = recs.iter().find(|r| r.index == index).unwrap();
        assert!(r.decode.contains("DEVICE_INTERFACE_REPORT"), "{}", r.decode);
        let rsp = TdispResponse::parse(&r.bytes[PREFIX..]).unwrap();
        let TdispResponseBody::DeviceInterfaceReport {
            portion,
            remainder_length,
        } = rsp.body
        else {
            panic!("not a report portion")
        };
        report.extend_from_slice(&portion);
        interface = Some(rsp.interface_id);
        if index == 39 {
            assert_eq!(remainder_length, 0);
        }
    }
    let mut f = fixture();
    f.content.interface_report = report.clone();
    f.content.interface_id = interface.unwrap();
    let v = f.verify(&f.signed()).unwrap();
    assert_eq!(v.content.interface_report, report);
    assert_eq!(v.content.interface_id.function_id(), 0xBEEF);
    assert_eq!(v.interface_report, InterfaceReport::parse(&report).unwrap());
    assert_eq!(
        v.interface_report.device_specific_info,
        b"tdisp_dev_emu\0\0\0"
    );
}

#[test]
fn json_summary_names_what_was_verified() {
    let f = fixture();
    let v = f.verify(&f.signed()).unwrap();
    let j = v.to_json();
    assert_eq!(j["type"], "tdi-report");
    assert_eq!(j["tenant"], "tenant-a");
    assert_eq!(j["accelerator_id"], 0x12A);
    assert_eq!(j["state"], "ConfigLocked");
    assert_eq!(j["device"]["type"], "spdm-device-evidence");
    assert_eq!(j["device"]["spdm_version"], "1.3");
    assert_eq!(j["device"]["asym"], "ECDSA P-384");
    assert_eq!(j["device"]["nonce_checked"], true);
    assert_eq!(
        j["device"]["bundle_sha384"],
        hex::encode(sha384(&f.device_bundle))
    );
    // Fingerprints only: no key bytes in the summary.
    let text = j.to_string();
    assert!(!text.contains(&hex::encode(f.key.public_key())));
    assert!(!text.contains(&hex::encode(&v.device.leaf_public_key)));
}

#[test]
fn report_issued_before_its_device_evidence_is_refused() {
    let mut f = fixture();
    f.content.issued_at = ualink_attest::UnixTime::from_secs(NOW.secs() - 1);
    assert_eq!(
        f.verify(&f.signed()).unwrap_err(),
        Error::BindingMismatch {
            field: "device evidence taken after the TDI report was issued"
        }
    );
}
