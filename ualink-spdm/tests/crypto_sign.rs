//! SPDM 1.2+ signatures: the combined prefix byte for byte, sign/verify round trips and every
//! way a signature must fail, and known answers: every ECDSA signature the reference responder
//! made in the captured sessions (CHALLENGE_AUTH, MEASUREMENTS, KEY_EXCHANGE_RSP) verifies over
//! the transcript hash libspdm logged, with the leaf key of the captured chain of that slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod secured_logparse;

use std::collections::HashMap;

use secured_logparse::Event;
use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::crypto::{
    self, signing_prefix, Rng, SigningKey, CTX_CHALLENGE_AUTH, CTX_ENDPOINT_INFO, CTX_FINISH,
    CTX_KEY_EXCHANGE_RSP, CTX_MEASUREMENTS, CTX_MUT_CHALLENGE_AUTH, CTX_MUT_ENDPOINT_INFO,
};
use ualink_spdm::error::{Error, Malformed, PeerMisbehaved};

#[test]
fn combined_prefix_layout() {
    let p = signing_prefix(SpdmVersion::V12, CTX_CHALLENGE_AUTH).unwrap();
    assert_eq!(
        &p[..64],
        b"dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*dmtf-spdm-v1.2.*"
    );
    // "responder-challenge_auth signing" is 32 bytes: 4 zero bytes, then the context.
    assert_eq!(&p[64..68], &[0, 0, 0, 0]);
    assert_eq!(&p[68..], CTX_CHALLENGE_AUTH.as_bytes());

    let p = signing_prefix(SpdmVersion::V13, CTX_KEY_EXCHANGE_RSP).unwrap();
    assert_eq!(&p[..16], b"dmtf-spdm-v1.3.*");
    assert_eq!(&p[48..64], b"dmtf-spdm-v1.3.*");
    assert_eq!(&p[64..66], &[0, 0]);
    assert_eq!(&p[66..], b"responder-key_exchange_rsp signing");

    for ctx in [
        CTX_CHALLENGE_AUTH,
        CTX_MUT_CHALLENGE_AUTH,
        CTX_MEASUREMENTS,
        CTX_KEY_EXCHANGE_RSP,
        CTX_FINISH,
        CTX_ENDPOINT_INFO,
        CTX_MUT_ENDPOINT_INFO,
    ] {
        let p = signing_prefix(SpdmVersion::V13, ctx).unwrap();
        assert!(p.ends_with(ctx.as_bytes()));
        assert!(p[64..100 - ctx.len()].iter().all(|&b| b == 0));
    }
    assert!(signing_prefix(SpdmVersion::V12, &"x".repeat(37)).is_err());
}

#[test]
fn sign_verify_round_trip_and_every_failure() {
    let rng = Rng::new();
    for (asym, hash, version) in [
        (AsymAlg::EcdsaP256, HashAlg::Sha256, SpdmVersion::V12),
        (AsymAlg::EcdsaP384, HashAlg::Sha384, SpdmVersion::V13),
    ] {
        let (key, _der) = SigningKey::generate(asym, &rng).unwrap();
        let pk = key.public_key_sec1().to_vec();
        assert_eq!(pk[0], 0x04);
        let th = crypto::hash(hash, b"M1 transcript");
        let sig = crypto::sign(&key, &rng, version, CTX_CHALLENGE_AUTH, th.as_ref()).unwrap();
        assert_eq!(sig.len(), asym.sig_len());
        let v = |ver, ctx, h: &[u8], s: &[u8]| {
            crypto::verify(asym, &pk, ver, ctx, h, s, "CHALLENGE_AUTH")
        };
        v(version, CTX_CHALLENGE_AUTH, th.as_ref(), &sig).unwrap();

        let bad = PeerMisbehaved::BadSignature {
            what: "CHALLENGE_AUTH",
        }
        .into();
        // Wrong context, wrong version, wrong transcript.
        assert_eq!(
            v(version, CTX_MEASUREMENTS, th.as_ref(), &sig).unwrap_err(),
            bad
        );
        let other_version = if version == SpdmVersion::V12 {
            SpdmVersion::V13
        } else {
            SpdmVersion::V12
        };
        assert_eq!(
            v(other_version, CTX_CHALLENGE_AUTH, th.as_ref(), &sig).unwrap_err(),
            bad
        );
        let th2 = crypto::hash(hash, b"M1 transcript.");
        assert_eq!(
            v(version, CTX_CHALLENGE_AUTH, th2.as_ref(), &sig).unwrap_err(),
            bad
        );
        // Any flipped bit.
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut s = sig.clone();
            s[i] ^= 0x80;
            assert_eq!(
                v(version, CTX_CHALLENGE_AUTH, th.as_ref(), &s).unwrap_err(),
                bad
            );
        }
        // Wrong length (e.g. DER instead of raw r‖s).
        assert_eq!(
            v(version, CTX_CHALLENGE_AUTH, th.as_ref(), &sig[1..]).unwrap_err(),
            Malformed::BadLength { what: "signature" }.into()
        );
        // Another key.
        let (other, _) = SigningKey::generate(asym, &rng).unwrap();
        assert_eq!(
            crypto::verify(
                asym,
                other.public_key_sec1(),
                version,
                CTX_CHALLENGE_AUTH,
                th.as_ref(),
                &sig,
                "CHALLENGE_AUTH"
            )
            .unwrap_err(),
            bad
        );
        // A public key that is not a point.
        assert!(crypto::verify(
            asym,
            &[0x04; 65],
            version,
            CTX_CHALLENGE_AUTH,
            th.as_ref(),
            &sig,
            "x"
        )
        .is_err());
    }
}

#[test]
fn signing_key_loading_and_redaction() {
    let rng = Rng::new();
    let (_, der256) = SigningKey::generate(AsymAlg::EcdsaP256, &rng).unwrap();
    let key = SigningKey::from_pkcs8(AsymAlg::EcdsaP256, &der256, &rng).unwrap();
    assert_eq!(key.asym(), AsymAlg::EcdsaP256);
    assert_eq!(key.public_key_sec1().len(), 65);
    // A P-256 key is not a P-384 key, and garbage is not a key.
    assert!(matches!(
        SigningKey::from_pkcs8(AsymAlg::EcdsaP384, &der256, &rng),
        Err(Error::Crypto(_))
    ));
    assert!(SigningKey::from_pkcs8(AsymAlg::EcdsaP256, &der256[..40], &rng).is_err());
    let dbg = format!("{key:?}");
    assert!(dbg.contains("redacted"), "{dbg}");
    assert!(!dbg.contains(&hex::encode(&der256[der256.len() - 8..])));
}

// ------------------------------------------------------------------------------------------
// Known answers from the captures
// ------------------------------------------------------------------------------------------

/// Leaf public key (SEC1) of an SPDM certificate chain: Length u16 ‖ rsvd u16 ‖ RootHash ‖ DER.
fn leaf_key(chain: &[u8], hash: HashAlg) -> Vec<u8> {
    let declared = u16::from_le_bytes([chain[0], chain[1]]) as usize;
    assert_eq!(declared, chain.len());
    let mut rest = &chain[4 + hash.len()..];
    let mut leaf = None;
    while !rest.is_empty() {
        let (r, cert) = x509_parser::parse_x509_certificate(rest).unwrap();
        leaf = Some(cert.public_key().subject_public_key.data.to_vec());
        rest = r;
    }
    leaf.unwrap()
}

/// Replays the log: collects each slot's chain from CERTIFICATE responses and checks every
/// responder signature libspdm reported as verified. Returns how many were checked.
fn check_captured(log: &str, version: SpdmVersion, asym: AsymAlg, hash: HashAlg) -> usize {
    let events = secured_logparse::parse(log);
    let mut chains: HashMap<u8, Vec<u8>> = HashMap::new();
    let mut last_req: HashMap<u8, Vec<u8>> = HashMap::new(); // request code → bytes
    let mut hashes: HashMap<String, Vec<u8>> = HashMap::new();
    let mut last_sig = Vec::new();
    let mut checked = 0;
    for e in &events {
        match e {
            Event::Message {
                send: true, bytes, ..
            } => {
                if bytes[1] == 0x82 && u16::from_le_bytes([bytes[4], bytes[5]]) == 0 {
                    chains.insert(bytes[2] & 0x0f, Vec::new());
                }
                last_req.insert(bytes[1], bytes.clone());
            }
            Event::Message {
                send: false, bytes, ..
            } if bytes[1] == 0x02 => {
                let portion = u16::from_le_bytes([bytes[4], bytes[5]]) as usize;
                chains
                    .get_mut(&(bytes[2] & 0x0f))
                    .unwrap()
                    .extend_from_slice(&bytes[8..8 + portion]);
            }
            Event::Hash { name, bytes } => {
                hashes.insert(name.clone(), bytes.clone());
            }
            Event::Signature(s) => last_sig = s.clone(),
            Event::Pass(what) => {
                // libspdm prints the signature it verifies (as a dump, or after th_curr).
                let (ctx, th, slot) = match what.as_str() {
                    "verify_challenge_signature" => (
                        CTX_CHALLENGE_AUTH,
                        &hashes["m1m2 hash"],
                        last_req[&0x83][2] & 0x0f,
                    ),
                    "verify_measurement_signature" => (
                        CTX_MEASUREMENTS,
                        &hashes["l1l2 hash"],
                        last_req[&0xe0][4 + 32] & 0x0f,
                    ),
                    "verify_key_exchange_signature" => (
                        CTX_KEY_EXCHANGE_RSP,
                        &hashes["th_curr hash"],
                        last_req[&0xe4][3],
                    ),
                    _ => continue,
                };
                let sig = last_sig.clone();
                assert_eq!(sig.len(), asym.sig_len(), "{what}");
                let pk = leaf_key(&chains[&slot], hash);
                crypto::verify(asym, &pk, version, ctx, th, &sig, "captured")
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                // And the same signature under any other context fails.
                assert!(
                    crypto::verify(asym, &pk, version, CTX_FINISH, th, &sig, "captured").is_err()
                );
                checked += 1;
            }
            _ => {}
        }
    }
    checked
}

#[test]
fn captured_v13_p384_signatures_verify() {
    let n = check_captured(
        "v13_p384_session.req.log",
        SpdmVersion::V13,
        AsymAlg::EcdsaP384,
        HashAlg::Sha384,
    );
    assert_eq!(n, 6);
}

#[test]
fn captured_v12_p256_signatures_verify() {
    let n = check_captured(
        "tsm_like_v12_p256_pcidoe.req.log",
        SpdmVersion::V12,
        AsymAlg::EcdsaP256,
        HashAlg::Sha256,
    );
    assert_eq!(n, 6);
}
