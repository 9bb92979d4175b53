//! Device PKI and measurements of simulated accelerators.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_ASN1_SIGNING};
use ualink_sim::measurement::{reference_digests, MeasurementKind, Tamper};
use x509_parser::prelude::*;

#[test]
fn chain_is_root_to_model_ca_to_leaf_p384() {
    let p = pod(3);
    let chains: Vec<[Vec<u8>; 3]> = [1u16, 2, 3]
        .iter()
        .map(|&a| {
            p.with_accelerator(id(a), |acc| acc.pki().chain_der().map(<[u8]>::to_vec))
                .unwrap()
        })
        .collect();
    for c in &chains {
        let (_, root) = X509Certificate::from_der(&c[0]).unwrap();
        let (_, ca) = X509Certificate::from_der(&c[1]).unwrap();
        let (_, leaf) = X509Certificate::from_der(&c[2]).unwrap();
        root.verify_signature(None).unwrap();
        ca.verify_signature(Some(root.public_key())).unwrap();
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        assert!(leaf.verify_signature(Some(root.public_key())).is_err());
        assert!(root.is_ca() && ca.is_ca() && !leaf.is_ca());
        assert_eq!(leaf.issuer(), ca.subject());
        assert_eq!(ca.issuer(), root.subject());
        // P-384 keys.
        assert_eq!(
            leaf.public_key()
                .algorithm
                .parameters
                .as_ref()
                .unwrap()
                .as_oid()
                .unwrap(),
            x509_parser::oid_registry::OID_NIST_EC_P384
        );
        // SPDM responder-authentication EKU.
        let eku = leaf.extended_key_usage().unwrap().unwrap().value;
        assert!(eku
            .other
            .iter()
            .any(|o| o.to_id_string() == "1.3.6.1.4.1.412.274.3"));
    }
    // Accelerators 1 and 3 share vendor and model: same root and model CA, distinct leaves.
    assert_eq!(chains[0][0], chains[2][0]);
    assert_eq!(chains[0][1], chains[2][1]);
    assert_ne!(chains[0][2], chains[2][2]);
    // Accelerator 2 is another vendor.
    assert_ne!(chains[0][0], chains[1][0]);
    assert_eq!(p.vendor_roots().len(), 2);
    // The leaf key is usable by a responder and matches the certificate.
    p.with_accelerator(id(1), |acc| {
        let rng = ring::rand::SystemRandom::new();
        let kp = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_ASN1_SIGNING,
            acc.pki().leaf_key_pkcs8(),
            &rng,
        )
        .unwrap();
        let (_, leaf) = X509Certificate::from_der(&acc.pki().leaf_der).unwrap();
        use ring::signature::KeyPair;
        assert_eq!(
            kp.public_key().as_ref(),
            leaf.public_key().subject_public_key.data.as_ref()
        );
        assert!(format!("{:?}", acc.pki()).contains("redacted"));
    })
    .unwrap();
}

#[test]
fn measurements_are_golden_until_tampered() {
    let p = pod(1);
    let (vendor, model, fw) = p
        .with_accelerator(id(1), |a| {
            let s = a.spec();
            (s.vendor.clone(), s.model.clone(), s.firmware.clone())
        })
        .unwrap();
    let refs = reference_digests(&vendor, &model, &fw);
    let digests = |p: &ualink_sim::SimPod| {
        p.with_accelerator(id(1), |a| {
            a.measurements().blocks().clone().map(|b| b.digest())
        })
        .unwrap()
    };
    assert_eq!(digests(&p), refs);
    p.tamper_measurement(
        id(1),
        MeasurementKind::Firmware,
        Tamper::FlipBit { offset: 100 },
    )
    .unwrap();
    let d = digests(&p);
    assert_eq!(d[0], refs[0]);
    assert_ne!(d[1], refs[1]);
    assert_eq!(d[2], refs[2]);
    // Tamper persists across a device reset (it is in flash).
    p.reset_device(id(1)).unwrap();
    assert_ne!(digests(&p)[1], refs[1]);
}
