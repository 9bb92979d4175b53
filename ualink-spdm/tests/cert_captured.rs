//! The libspdm sample chains captured in tests/data verify under our policy.
//!
//! Findings about these chains (root → intermediate → leaf): the roots carry only a critical
//! basicConstraints cA=TRUE (no keyUsage); the intermediates carry cA=TRUE, keyUsage with
//! keyCertSign and a critical EKU serverAuth/clientAuth; the leaves carry a critical
//! basicConstraints encoded as the DER-minimal empty SEQUENCE (`30 00`), keyUsage
//! digitalSignature|nonRepudiation|keyEncipherment, a critical EKU serverAuth/clientAuth/
//! OCSPSigning (no SPDM EKU, so the role check does not apply) and the non-critical DMTF
//! extension 1.3.6.1.4.1.412.274.6.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use ualink_spdm::algo::{AsymAlg, HashAlg};
use ualink_spdm::cert_chain::{
    encode_spdm_cert_chain, CertError, ChainVerifier, PeerRole, SpdmCertChain, TrustAnchors,
    VerifyTime,
};

/// 2027-01-01T00:00:00Z: inside every sample certificate's validity (the slot-4 leaf starts 2026-06).
const NOW: u64 = 1_798_761_600;

/// Reassembles the chain of `slot` from the first run of CERTIFICATE responses for it.
/// Response layout: header 4, PortionLength u16, RemainderLength u16, portion.
fn captured_chain(transcript: &str, slot: u8) -> Vec<u8> {
    let mut chain = Vec::new();
    for rec in common::transcript(transcript) {
        if !rec.decode.contains("CERTIFICATE(0x02)") || rec.bytes[2] & 0x0f != slot {
            continue;
        }
        let portion = usize::from(u16::from_le_bytes([rec.bytes[4], rec.bytes[5]]));
        let remainder = u16::from_le_bytes([rec.bytes[6], rec.bytes[7]]);
        chain.extend_from_slice(&rec.bytes[8..8 + portion]);
        if remainder == 0 {
            return chain;
        }
    }
    panic!("no complete chain for slot {slot} in {transcript}");
}

fn anchors_for(chain: &SpdmCertChain<'_>) -> TrustAnchors {
    let mut a = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
    a.add_der(chain.certs().next().unwrap()).unwrap();
    a
}

fn check(transcript: &str, slot: u8, hash: HashAlg, asym: AsymAlg, leaf_cn: &str) {
    let bytes = captured_chain(transcript, slot);
    let chain = SpdmCertChain::parse(&bytes, hash).unwrap();
    assert_eq!(chain.cert_count(), 3);
    // Re-encoding gives the captured bytes (Length, reserved, root hash).
    let certs: Vec<&[u8]> = chain.certs().collect();
    assert_eq!(encode_spdm_cert_chain(hash, &certs).unwrap(), bytes);

    let anchors = anchors_for(&chain);
    let v = anchors.verify(chain.certs_der(), asym).unwrap();
    assert_eq!(v.asym(), asym);
    assert_eq!(v.subjects().len(), 3);
    assert!(v.subjects()[2].contains(leaf_cn), "{:?}", v.subjects());
    let key_len = if asym == AsymAlg::EcdsaP256 { 65 } else { 97 };
    assert_eq!(v.leaf_public_key().len(), key_len);
    // The leaf key is the one in the leaf certificate's SPKI (its last bytes).
    assert!(certs[2].windows(key_len).any(|w| w == v.leaf_public_key()));
    // No SPDM EKU on these leaves: acceptable for either role.
    assert!(anchors
        .verify_for_role(chain.certs_der(), asym, PeerRole::Requester)
        .is_ok());

    let other = if asym == AsymAlg::EcdsaP256 {
        AsymAlg::EcdsaP384
    } else {
        AsymAlg::EcdsaP256
    };
    assert_eq!(
        anchors.verify(chain.certs_der(), other),
        Err(CertError::LeafAlgorithmMismatch { negotiated: other })
    );
    // Outside the validity period.
    assert_eq!(
        anchors.verify_at(chain.certs_der(), asym, PeerRole::Responder, 1_600_000_000),
        Err(CertError::NotYetValid { index: 0 })
    );
    assert_eq!(
        anchors.verify_at(chain.certs_der(), asym, PeerRole::Responder, 2_200_000_000),
        Err(CertError::Expired { index: 0 })
    );
    // Without the right root.
    let mut wrong = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
    wrong.add_der(certs[1]).unwrap();
    assert_eq!(
        wrong.verify(chain.certs_der(), asym),
        Err(CertError::UntrustedRoot)
    );
    // Leaf only after the root: the intermediate is missing.
    let mut skip = certs[0].to_vec();
    skip.extend_from_slice(certs[2]);
    assert_eq!(
        anchors.verify(&skip, asym),
        Err(CertError::IssuerMismatch { index: 1 })
    );
}

#[test]
fn v13_p384_slot0_chain_verifies() {
    check(
        "v13_p384_session.transcript.full.txt",
        0,
        HashAlg::Sha384,
        AsymAlg::EcdsaP384,
        "ECP384 responder cert",
    );
}

#[test]
fn v13_p384_slot4_chain_verifies() {
    check(
        "v13_p384_session.transcript.full.txt",
        4,
        HashAlg::Sha384,
        AsymAlg::EcdsaP384,
        "responder cert slot4",
    );
}

#[test]
fn v12_p256_slot0_and_slot1_chains_verify() {
    for slot in [0, 1] {
        check(
            "v12_p256_nosession.transcript.full.txt",
            slot,
            HashAlg::Sha256,
            AsymAlg::EcdsaP256,
            "ECP256 responder cert",
        );
    }
}

#[test]
fn doe_capture_chain_verifies_despite_doe_padding() {
    // The DOE records carry padding after the portion; PortionLength bounds the chain.
    check(
        "tsm_like_v12_p256_pcidoe.transcript.full.txt",
        0,
        HashAlg::Sha256,
        AsymAlg::EcdsaP256,
        "ECP256 responder cert",
    );
}

#[test]
fn captured_chain_rejects_wrong_hash_and_tampering() {
    let bytes = captured_chain("v13_p384_session.transcript.full.txt", 0);
    assert!(SpdmCertChain::parse(&bytes, HashAlg::Sha256).is_err());
    let mut tampered = bytes.clone();
    tampered[4] ^= 0x01;
    assert_eq!(
        SpdmCertChain::parse(&tampered, HashAlg::Sha384),
        Err(CertError::RootHashMismatch)
    );
    // Flip one bit of the leaf's signature (the last byte of the chain).
    let mut sig = bytes.clone();
    *sig.last_mut().unwrap() ^= 0x01;
    let chain = SpdmCertChain::parse(&sig, HashAlg::Sha384).unwrap();
    let anchors = anchors_for(&chain);
    assert_eq!(
        anchors.verify(chain.certs_der(), AsymAlg::EcdsaP384),
        Err(CertError::BadSignature { index: 2 })
    );
}
