//! SPDM device evidence bundles: built from real requester/responder runs and from libspdm's
//! captured bytes; valid ones verify, and each single corruption fails with its own reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod evidence_common;

use evidence_common::{anchors, attest, bundle, identity, transcript, AFTER_EXPIRY, NOW};
use ualink_attest::spdm_evidence::{
    DeviceEvidenceBundle, DeviceEvidenceVerifier, DeviceTrustAnchors, ExpectedNonce,
    MeasurementExchange,
};
use ualink_attest::{Error, ErrorClass, UnixTime};
use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::requester::MeasurementPlan;

const SUITES: [(AsymAlg, SpdmVersion); 4] = [
    (AsymAlg::EcdsaP256, SpdmVersion::V12),
    (AsymAlg::EcdsaP256, SpdmVersion::V13),
    (AsymAlg::EcdsaP384, SpdmVersion::V12),
    (AsymAlg::EcdsaP384, SpdmVersion::V13),
];

fn sha384(b: &[u8]) -> [u8; 48] {
    ring::digest::digest(&ring::digest::SHA384, b)
        .as_ref()
        .try_into()
        .unwrap()
}

fn verifier(asym: AsymAlg) -> DeviceEvidenceVerifier {
    DeviceEvidenceVerifier::new(anchors(asym))
}

#[test]
fn real_runs_verify_for_both_curves_and_versions() {
    for (asym, version) in SUITES {
        let (b, att) = bundle(asym, version);
        let bytes = b.encode().unwrap();
        let signed = att.measurements.as_ref().unwrap();
        let v = verifier(asym)
            .verify(
                &bytes,
                &ExpectedNonce::Expected(signed.requester_nonce),
                NOW,
            )
            .unwrap();
        assert_eq!(v.version, version);
        assert_eq!(v.algorithms.asym, asym);
        let hash = match asym {
            AsymAlg::EcdsaP256 => HashAlg::Sha256,
            AsymAlg::EcdsaP384 => HashAlg::Sha384,
        };
        assert_eq!(v.algorithms.hash, hash);
        assert_eq!(
            v.algorithms.measurement_hash_algo,
            att.measurement_hash_algo
        );
        assert_eq!(v.slot, 0);
        assert_eq!(v.chain_subjects.len(), 3);
        assert_eq!(v.root_fingerprint, sha384(identity(asym).ca_der()));
        assert_eq!(v.leaf_public_key, att.chain.leaf_public_key());
        assert!(v.nonce_checked);
        assert_eq!(v.requester_nonce, signed.requester_nonce);
        assert_eq!(v.responder_nonce, signed.responder_nonce);
        assert_eq!(v.taken_at, NOW);
        assert_eq!(v.bundle_digest, sha384(&bytes));
        assert_eq!(v.measurements.len(), signed.blocks.len());
        for (got, want) in v.measurements.iter().zip(&signed.blocks) {
            assert_eq!(got.index, want.index);
            assert_eq!(got.value_type, want.value_type.kind());
            assert_eq!(got.raw_bit_stream, want.value_type.is_raw());
            assert_eq!(got.value, want.value);
        }
        // Without an expected nonce the result says so.
        let v = verifier(asym)
            .verify(&bytes, &ExpectedNonce::NotProvided, NOW)
            .unwrap();
        assert!(!v.nonce_checked);
    }
}

#[test]
fn a_walk_of_every_index_verifies_as_one_l1() {
    let att = attest(
        AsymAlg::EcdsaP384,
        SpdmVersion::V13,
        MeasurementPlan::EachIndex,
    );
    let b = DeviceEvidenceBundle::from_attestation(&att, NOW).unwrap();
    assert!(b.measurements.len() > 2, "count + one request per index");
    let v = verifier(AsymAlg::EcdsaP384)
        .verify(&b.encode().unwrap(), &ExpectedNonce::NotProvided, NOW)
        .unwrap();
    assert_eq!(
        v.measurements.len(),
        att.measurements.as_ref().unwrap().blocks.len()
    );
}

#[test]
fn encoding_is_deterministic_and_round_trips() {
    let (b, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V12);
    let bytes = b.encode().unwrap();
    let back = DeviceEvidenceBundle::decode(&bytes).unwrap();
    assert_eq!(back, b);
    assert_eq!(back.encode().unwrap(), bytes);
    // Map header (7 entries), key 0, version 1.
    assert_eq!(&bytes[..3], &[0xA7, 0x00, 0x01]);
}

/// Encodes `b` after `f` changed it, and verifies with the suite's anchors.
fn verify_changed(
    asym: AsymAlg,
    version: SpdmVersion,
    f: impl FnOnce(&mut DeviceEvidenceBundle),
) -> Error {
    let (mut b, _) = bundle(asym, version);
    f(&mut b);
    verifier(asym)
        .verify(&b.encode().unwrap(), &ExpectedNonce::NotProvided, NOW)
        .unwrap_err()
}

fn last_response(b: &mut DeviceEvidenceBundle) -> &mut Vec<u8> {
    &mut b.measurements.last_mut().unwrap().response
}

#[test]
fn flipped_signature_bit_is_a_bad_signature() {
    for (asym, version) in SUITES {
        let e = verify_changed(asym, version, |b| {
            *last_response(b).last_mut().unwrap() ^= 0x01;
        });
        assert_eq!(
            e,
            Error::BadSignature {
                check: "MEASUREMENTS (L1) signed by the device leaf key"
            },
            "{asym:?} {version:?}"
        );
    }
}

#[test]
fn changed_measurement_byte_is_a_bad_signature() {
    for (asym, version) in SUITES {
        // MEASUREMENTS: header 4, NumberOfBlocks 1, RecordLength 3, then the first block's
        // 7-byte header (index, spec, size, type, value size) and its value.
        let e = verify_changed(asym, version, |b| last_response(b)[8 + 7] ^= 0x80);
        assert_eq!(e.class(), ErrorClass::Crypto, "{e}");
    }
}

#[test]
fn changed_vca_byte_is_a_bad_signature() {
    // CAPABILITIES CTExponent: still parses, but L1 differs from what the device signed.
    let e = verify_changed(AsymAlg::EcdsaP384, SpdmVersion::V13, |b| {
        b.vca[3][5] ^= 0x01
    });
    assert_eq!(e.class(), ErrorClass::Crypto, "{e}");
}

#[test]
fn algorithm_claim_mismatch_is_named() {
    let want = Error::BindingMismatch {
        field: "claimed negotiation (version/algorithms) vs the ALGORITHMS message",
    };
    // The claim lies about the hash...
    let e = verify_changed(AsymAlg::EcdsaP384, SpdmVersion::V13, |b| {
        b.claimed.base_hash_sel = 0x1
    });
    assert_eq!(e, want);
    // ... or ALGORITHMS was changed under the claim (MeasurementHashAlgo, offset 8).
    let e = verify_changed(AsymAlg::EcdsaP256, SpdmVersion::V12, |b| {
        b.vca[5][8] ^= 0x06
    });
    assert_eq!(e, want);
}

#[test]
fn wrong_expected_nonce_is_a_binding_mismatch() {
    let (b, att) = bundle(AsymAlg::EcdsaP384, SpdmVersion::V12);
    let mut nonce = att.measurements.unwrap().requester_nonce;
    nonce[31] ^= 1;
    let e = verifier(AsymAlg::EcdsaP384)
        .verify(&b.encode().unwrap(), &ExpectedNonce::Expected(nonce), NOW)
        .unwrap_err();
    assert_eq!(
        e,
        Error::BindingMismatch {
            field: "GET_MEASUREMENTS requester nonce"
        }
    );
}

#[test]
fn wrong_root_is_untrusted() {
    let (b, _) = bundle(AsymAlg::EcdsaP384, SpdmVersion::V13);
    // The P-256 identity's root: a real CA, just not this device's.
    let e = DeviceEvidenceVerifier::new(anchors(AsymAlg::EcdsaP256))
        .verify(&b.encode().unwrap(), &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
    let e = DeviceEvidenceVerifier::new(DeviceTrustAnchors::new())
        .verify(&b.encode().unwrap(), &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
}

#[test]
fn expired_certificate_is_named_with_its_validity() {
    let (b, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V13);
    let e = verifier(AsymAlg::EcdsaP256)
        .verify(
            &b.encode().unwrap(),
            &ExpectedNonce::NotProvided,
            AFTER_EXPIRY,
        )
        .unwrap_err();
    match e {
        Error::Expired { now, not_after, .. } => {
            assert_eq!(now, AFTER_EXPIRY.secs());
            assert!(not_after < now);
        }
        other => panic!("expected Expired, got {other}"),
    }
}

#[test]
fn truncated_trailing_and_non_deterministic_bytes_are_malformed() {
    let (b, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V12);
    let bytes = b.encode().unwrap();
    let v = verifier(AsymAlg::EcdsaP256);
    for cut in [1, 10, bytes.len() / 2, bytes.len() - 1] {
        let e = v
            .verify(&bytes[..cut], &ExpectedNonce::NotProvided, NOW)
            .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Malformed, "cut {cut}: {e}");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    let e = v
        .verify(&trailing, &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Malformed { reason, .. } if reason.contains("trailing")),
        "{e}"
    );
    // The version as a two-byte integer (0x18 0x01): same value, not deterministic.
    let mut long = vec![0xA7, 0x00, 0x18, 0x01];
    long.extend_from_slice(&bytes[3..]);
    let e = v
        .verify(&long, &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Malformed { reason, .. } if reason.contains("deterministic")),
        "{e}"
    );
    // A truncated MEASUREMENTS inside a well-formed bundle.
    let e = verify_changed(AsymAlg::EcdsaP256, SpdmVersion::V12, |b| {
        last_response(b).pop();
    });
    assert_eq!(e.class(), ErrorClass::Malformed, "{e}");
    // A byte after the signature.
    let e = verify_changed(AsymAlg::EcdsaP256, SpdmVersion::V12, |b| {
        last_response(b).push(0);
    });
    assert_eq!(e.class(), ErrorClass::Malformed, "{e}");
}

#[test]
fn unknown_format_version_fails_closed() {
    let (b, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V12);
    let mut bytes = b.encode().unwrap();
    assert_eq!(bytes[2], 0x01);
    bytes[2] = 0x02;
    let e = verifier(AsymAlg::EcdsaP256)
        .verify(&bytes, &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert_eq!(
        e,
        Error::UnsupportedVersion {
            what: "device evidence bundle",
            version: 2
        }
    );
}

#[test]
fn unsigned_last_exchange_and_slot_mismatch_are_refused() {
    // Claiming another slot than the device signed with.
    let e = verify_changed(AsymAlg::EcdsaP384, SpdmVersion::V13, |b| b.slot = 1);
    assert!(matches!(e, Error::BindingMismatch { .. }), "{e}");
    // Dropping the signed pair leaves no signature at all (a count-only walk would remain).
    let att = attest(
        AsymAlg::EcdsaP256,
        SpdmVersion::V12,
        MeasurementPlan::EachIndex,
    );
    let mut b = DeviceEvidenceBundle::from_attestation(&att, NOW).unwrap();
    b.measurements.pop();
    let e = verifier(AsymAlg::EcdsaP256)
        .verify(&b.encode().unwrap(), &ExpectedNonce::NotProvided, NOW)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Malformed, "{e}");
}

// ---- known answers from libspdm's captured bytes --------------------------------------------

/// 2027-01-01T00:00:00Z: inside every libspdm sample certificate's validity (the v13
/// slot-4 leaf starts 2026-06).
const KAT_NOW: UnixTime = UnixTime::from_secs(1_798_761_600);

struct Captured {
    bundle: DeviceEvidenceBundle,
    root_der: Vec<u8>,
    nonce: [u8; 32],
}

fn captured(name: &str, hash_len: usize) -> Captured {
    let recs = transcript(name);
    let rec = |i: usize| {
        let r = recs.iter().find(|r| r.index == i).unwrap();
        r.bytes.clone()
    };
    let vca: [Vec<u8>; 6] = std::array::from_fn(rec);
    // CERTIFICATE #9: header 4 | PortionLength u16 | RemainderLength u16 | portion (slot 0's
    // whole chain in one portion).
    let cert = rec(9);
    assert!(recs[9].decode.contains("CERTIFICATE(0x02)"));
    let portion = usize::from(u16::from_le_bytes([cert[4], cert[5]]));
    assert_eq!(u16::from_le_bytes([cert[6], cert[7]]), 0);
    let chain = cert[8..8 + portion].to_vec();
    let certs = &chain[4 + hash_len..];
    let (rest, _) = x509_parser::parse_x509_certificate(certs).unwrap();
    let root_der = certs[..certs.len() - rest.len()].to_vec();
    // GET_MEASUREMENTS #28: header 4 | Nonce 32 | SlotIDParam | [RequesterContext 8].
    let get = rec(28);
    assert!(recs[28].decode.contains("GET_MEASUREMENTS(0xe0)"));
    let nonce: [u8; 32] = get[4..36].try_into().unwrap();
    let slot = get[36] & 0x0F;
    let bundle = DeviceEvidenceBundle::from_parts(
        slot,
        chain,
        vca,
        vec![MeasurementExchange {
            request: get,
            response: rec(29),
        }],
        KAT_NOW,
    )
    .unwrap();
    Captured {
        bundle,
        root_der,
        nonce,
    }
}

fn kat(name: &str, asym: AsymAlg, hash: HashAlg, version: SpdmVersion, blocks: usize) {
    let c = captured(name, hash.len());
    let mut anchors = DeviceTrustAnchors::new();
    anchors.add_der(&c.root_der).unwrap();
    let v = DeviceEvidenceVerifier::new(anchors.clone());
    let bytes = c.bundle.encode().unwrap();
    let r = v
        .verify(&bytes, &ExpectedNonce::Expected(c.nonce), KAT_NOW)
        .unwrap();
    assert_eq!(r.version, version);
    assert_eq!(r.algorithms.asym, asym);
    assert_eq!(r.algorithms.hash, hash);
    assert_eq!(r.root_fingerprint, sha384(&c.root_der));
    assert!(
        r.chain_subjects[0].contains("DMTF libspdm"),
        "{:?}",
        r.chain_subjects
    );
    assert_eq!(r.measurements.len(), blocks);
    assert!(r.nonce_checked);
    // Any single flipped bit of the device's signature, or of a signed measurement byte,
    // is refused.
    let mut bad = c.bundle.clone();
    *bad.measurements[0].response.last_mut().unwrap() ^= 0x40;
    assert_eq!(
        v.verify(&bad.encode().unwrap(), &ExpectedNonce::NotProvided, KAT_NOW)
            .unwrap_err()
            .class(),
        ErrorClass::Crypto
    );
    let mut bad = c.bundle.clone();
    bad.measurements[0].response[20] ^= 0x01;
    assert_eq!(
        v.verify(&bad.encode().unwrap(), &ExpectedNonce::NotProvided, KAT_NOW)
            .unwrap_err()
            .class(),
        ErrorClass::Crypto
    );
    // Before the sample certificates were issued.
    assert_eq!(
        v.verify(
            &bytes,
            &ExpectedNonce::NotProvided,
            UnixTime::from_secs(1_600_000_000)
        )
        .unwrap_err()
        .class(),
        ErrorClass::Trust
    );
}

#[test]
fn libspdm_v12_p256_capture_verifies() {
    kat(
        "v12_p256_nosession.transcript.full.txt",
        AsymAlg::EcdsaP256,
        HashAlg::Sha256,
        SpdmVersion::V12,
        KAT_BLOCKS_V12,
    );
}

#[test]
fn libspdm_v13_p384_capture_verifies() {
    kat(
        "v13_p384_session.transcript.full.txt",
        AsymAlg::EcdsaP384,
        HashAlg::Sha384,
        SpdmVersion::V13,
        KAT_BLOCKS_V13,
    );
}

/// Measurement blocks in the captured signed MEASUREMENTS (NumberOfBlocks, byte 4 of #0029).
const KAT_BLOCKS_V12: usize = 8;
const KAT_BLOCKS_V13: usize = 8;

#[test]
fn every_flipped_byte_fails_except_the_unsigned_time() {
    let (b, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V12);
    let bytes = b.encode().unwrap();
    let v = verifier(AsymAlg::EcdsaP256);
    // taken_at is the TSM's claim (key 6, last: 0x06 0x1A + 4 bytes), not signed by the
    // device; the TDI report signature and the audit log bind it.
    let time_at = bytes.len() - 4;
    assert_eq!(&bytes[time_at - 2..time_at], &[0x06, 0x1A]);
    for i in 0..time_at {
        let mut bad = bytes.clone();
        bad[i] ^= 1 << (i % 8);
        assert!(
            v.verify(&bad, &ExpectedNonce::NotProvided, NOW).is_err(),
            "flip in byte {i} verified"
        );
    }
    let mut later = bytes.clone();
    later[bytes.len() - 1] ^= 1;
    assert_ne!(
        v.verify(&later, &ExpectedNonce::NotProvided, NOW)
            .unwrap()
            .taken_at,
        NOW
    );
}

#[test]
fn detection_markers_recognise_bundles_only() {
    use ualink_attest::spdm_evidence::looks_like_bundle;
    let (b, _) = bundle(AsymAlg::EcdsaP256, SpdmVersion::V13);
    let bytes = b.encode().unwrap();
    assert!(looks_like_bundle(&bytes));
    assert!(!ualink_attest::tdi_report::looks_like_bundle(&bytes));
    assert!(!looks_like_bundle(&bytes[..4]));
    assert!(!looks_like_bundle(&[0u8; 1184]));
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating() {
    let v = verifier(AsymAlg::EcdsaP256);
    for bytes in [
        // A map whose key 2 claims a 2^40-byte string.
        vec![
            0xA7, 0x00, 0x01, 0x01, 0x00, 0x02, 0x5B, 0, 0, 1, 0, 0, 0, 0, 0,
        ],
        // An array claiming 2^32 - 1 elements.
        vec![0x9A, 0xFF, 0xFF, 0xFF, 0xFF, 0x00],
        // A map claiming 2^63 entries.
        vec![0xBB, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
    ] {
        let e = v
            .verify(&bytes, &ExpectedNonce::NotProvided, NOW)
            .unwrap_err();
        assert_eq!(e.class(), ErrorClass::Malformed, "{e}");
    }
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn valid() -> &'static Vec<u8> {
        static B: OnceLock<Vec<u8>> = OnceLock::new();
        B.get_or_init(|| {
            bundle(AsymAlg::EcdsaP256, SpdmVersion::V13)
                .0
                .encode()
                .unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        /// Arbitrary bytes never panic and never verify.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let v = verifier(AsymAlg::EcdsaP256);
            prop_assert!(v.verify(&bytes, &ExpectedNonce::NotProvided, NOW).is_err());
            let _ = DeviceEvidenceBundle::decode(&bytes);
        }

        /// Mutated bundles never panic; any that still verifies differs only in the
        /// TSM-claimed time.
        #[test]
        fn mutated_bundle(edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
                          cut in proptest::option::of(any::<usize>())) {
            let base = valid();
            let mut b = base.clone();
            for (off, x) in &edits {
                let i = off % b.len();
                b[i] ^= x;
            }
            if let Some(n) = cut {
                b.truncate(n % (base.len() + 1));
            }
            let v = verifier(AsymAlg::EcdsaP256);
            if let Ok(r) = v.verify(&b, &ExpectedNonce::NotProvided, NOW) {
                prop_assert_eq!(b.len(), base.len());
                prop_assert_eq!(&b[..b.len() - 4], &base[..base.len() - 4]);
                prop_assert_eq!(r.bundle_digest, sha384(&b));
            }
        }
    }
}
