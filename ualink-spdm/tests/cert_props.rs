//! Properties: the chain codec and verifier never panic, and no single-bit change to a real
//! captured chain still verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use proptest::prelude::*;
use ualink_spdm::algo::{AsymAlg, HashAlg};
use ualink_spdm::cert_chain::{
    split_certs, ChainVerifier, SpdmCertChain, TrustAnchors, VerifyTime,
};

/// 2027-01-01T00:00:00Z, inside the sample chain's validity.
const NOW: u64 = 1_798_761_600;

fn captured_v12_chain() -> Vec<u8> {
    let rec = common::transcript("v12_p256_nosession.transcript.full.txt")
        .into_iter()
        .find(|r| r.decode.contains("CERTIFICATE(0x02) p1=0x00"))
        .unwrap();
    let portion = usize::from(u16::from_le_bytes([rec.bytes[4], rec.bytes[5]]));
    rec.bytes[8..8 + portion].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parse_and_split_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SpdmCertChain::parse(&bytes, HashAlg::Sha256);
        let _ = SpdmCertChain::parse(&bytes, HashAlg::Sha384);
        let _ = split_certs(&bytes);
    }

    #[test]
    fn verifier_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let chain = captured_v12_chain();
        let parsed = SpdmCertChain::parse(&chain, HashAlg::Sha256).unwrap();
        let mut anchors = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
        anchors.add_der(parsed.certs().next().unwrap()).unwrap();
        prop_assert!(anchors.verify(&bytes, AsymAlg::EcdsaP256).is_err());
    }

    #[test]
    fn any_single_bit_flip_in_a_real_chain_is_rejected(bit in 0usize..(1390 - 36) * 8) {
        let chain = captured_v12_chain();
        let parsed = SpdmCertChain::parse(&chain, HashAlg::Sha256).unwrap();
        let mut anchors = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
        anchors.add_der(parsed.certs().next().unwrap()).unwrap();
        let mut certs = parsed.certs_der().to_vec();
        prop_assert!(anchors.verify(&certs, AsymAlg::EcdsaP256).is_ok());
        certs[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(anchors.verify(&certs, AsymAlg::EcdsaP256).is_err());
    }
}
