//! Benchmark for issue #4 §5: verification of one SPDM device evidence bundle against its
//! crypto floor, measured in the same run.
//!
//! The bundle comes from a real requester/responder run (root → intermediate → leaf chain).
//! The floor is the ECDSA verifications the verifier cannot avoid, timed alone with ring on
//! pre-parsed inputs: the intermediate's and the leaf's certificate signatures (the root is
//! byte-identical to the configured anchor, so it is trusted as configured, not re-verified)
//! and the MEASUREMENTS signature over `combined prefix ‖ Hash(L1)`.
//! Report `verify / floor` from the two `mean` figures of each group.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/evidence_common/mod.rs"]
mod evidence_common;

use criterion::{criterion_group, criterion_main, Criterion};
use ring::signature::{
    UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED,
    ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED,
};
use std::hint::black_box;
use ualink_attest::spdm_evidence::{DeviceEvidenceVerifier, ExpectedNonce};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::crypto;

/// One signature check: algorithm, SEC1 key, message, signature.
struct Check {
    alg: &'static dyn VerificationAlgorithm,
    key: Vec<u8>,
    msg: Vec<u8>,
    sig: Vec<u8>,
}

fn floor_checks(asym: AsymAlg, att: &ualink_spdm::requester::Attestation) -> Vec<Check> {
    let (cert_alg, fixed): (
        &'static dyn VerificationAlgorithm,
        &'static dyn VerificationAlgorithm,
    ) = match asym {
        AsymAlg::EcdsaP256 => (&ECDSA_P256_SHA256_ASN1, &ECDSA_P256_SHA256_FIXED),
        AsymAlg::EcdsaP384 => (&ECDSA_P384_SHA384_ASN1, &ECDSA_P384_SHA384_FIXED),
    };
    let chain = evidence_common::identity(asym).chain_der().to_vec();
    let parsed: Vec<_> = chain
        .iter()
        .map(|d| x509_parser::parse_x509_certificate(d).unwrap().1)
        .collect();
    let mut checks: Vec<Check> = parsed
        .windows(2)
        .map(|w| Check {
            alg: cert_alg,
            key: w[0].public_key().subject_public_key.data.to_vec(),
            msg: w[1].tbs_certificate.as_ref().to_vec(),
            sig: w[1].signature_value.data.to_vec(),
        })
        .collect();
    let m = att.measurements.as_ref().unwrap();
    let hash = crypto::hash(att.negotiated.hash, &m.l1);
    checks.push(Check {
        alg: fixed,
        key: att.chain.leaf_public_key().to_vec(),
        msg: crypto::signed_message(
            att.negotiated.version,
            crypto::CTX_MEASUREMENTS,
            hash.as_bytes(),
        )
        .unwrap(),
        sig: m.signature.clone(),
    });
    // The floor must be the real work: every check passes.
    for c in &checks {
        UnparsedPublicKey::new(c.alg, &c.key)
            .verify(&c.msg, &c.sig)
            .unwrap();
    }
    checks
}

fn device_bundle(c: &mut Criterion) {
    for (asym, version, name) in [
        (AsymAlg::EcdsaP384, SpdmVersion::V13, "p384_v13"),
        (AsymAlg::EcdsaP256, SpdmVersion::V12, "p256_v12"),
    ] {
        let (b, att) = evidence_common::bundle(asym, version);
        let bytes = b.encode().unwrap();
        let verifier = DeviceEvidenceVerifier::new(evidence_common::anchors(asym));
        let nonce = ExpectedNonce::Expected(att.measurements.as_ref().unwrap().requester_nonce);
        verifier
            .verify(&bytes, &nonce, evidence_common::NOW)
            .unwrap();
        let checks = floor_checks(asym, &att);
        assert_eq!(checks.len(), 3, "two certificate signatures + MEASUREMENTS");

        let mut g = c.benchmark_group(format!("device_evidence_{name}"));
        g.bench_function("verify_bundle", |bch| {
            bch.iter(|| {
                verifier
                    .verify(black_box(&bytes), &nonce, evidence_common::NOW)
                    .unwrap()
            })
        });
        g.bench_function("crypto_floor_3_ecdsa_verifies", |bch| {
            bch.iter(|| {
                for ch in &checks {
                    UnparsedPublicKey::new(ch.alg, black_box(&ch.key))
                        .verify(black_box(&ch.msg), black_box(&ch.sig))
                        .unwrap();
                }
            })
        });
        g.finish();
    }
}

criterion_group!(benches, device_bundle);
criterion_main!(benches);
