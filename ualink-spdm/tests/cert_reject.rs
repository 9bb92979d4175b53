//! One chain per rejection reason, built with rcgen, each refused with its own CertError.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use ualink_spdm::algo::{AsymAlg, HashAlg};
use ualink_spdm::cert_chain::{
    encode_spdm_cert_chain, CertError, ChainVerifier, PeerRole, SpdmCertChain, TrustAnchors,
    VerifyTime, MAX_CERTS,
};

/// 2030-01-01T00:00:00Z.
const NOW: u64 = 1_893_456_000;
const RSP_EKU: [u64; 9] = [1, 3, 6, 1, 4, 1, 412, 274, 3];
const REQ_EKU: [u64; 9] = [1, 3, 6, 1, 4, 1, 412, 274, 4];
static P256: &SignatureAlgorithm = &rcgen::PKCS_ECDSA_P256_SHA256;
static P384: &SignatureAlgorithm = &rcgen::PKCS_ECDSA_P384_SHA384;

fn base(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = date_time_ymd(2024, 1, 1);
    p.not_after = date_time_ymd(2049, 12, 31);
    p
}

fn ca(cn: &str) -> CertificateParams {
    let mut p = base(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn leaf(cn: &str) -> CertificateParams {
    let mut p = base(cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(RSP_EKU.to_vec())];
    p
}

/// A root-first chain: `specs[0]` is self-signed, each next one is signed by the previous.
/// Each spec gives the params and the key algorithm of that certificate's subject key.
fn build(specs: Vec<(CertificateParams, &'static SignatureAlgorithm)>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut issuer: Option<Issuer<'static, KeyPair>> = None;
    for (params, alg) in specs {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = match &issuer {
            None => params.self_signed(&key).unwrap(),
            Some(i) => params.signed_by(&key, i).unwrap(),
        };
        out.push(cert.der().to_vec());
        issuer = Some(Issuer::new(params, key));
    }
    out
}

fn standard(alg: &'static SignatureAlgorithm) -> Vec<Vec<u8>> {
    build(vec![
        (ca("Root"), alg),
        (ca("Intermediate"), alg),
        (leaf("Leaf"), alg),
    ])
}

fn anchors(root: &[u8]) -> TrustAnchors {
    let mut a = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
    a.add_der(root).unwrap();
    a
}

fn verify(chain: &[Vec<u8>], asym: AsymAlg) -> Result<(), CertError> {
    anchors(&chain[0]).verify(&chain.concat(), asym).map(|_| ())
}

#[test]
fn good_chains_verify_p256_p384_two_and_three_certs() {
    assert_eq!(verify(&standard(P256), AsymAlg::EcdsaP256), Ok(()));
    assert_eq!(verify(&standard(P384), AsymAlg::EcdsaP384), Ok(()));
    let two = build(vec![(ca("Root"), P384), (leaf("Leaf"), P384)]);
    assert_eq!(verify(&two, AsymAlg::EcdsaP384), Ok(()));
    // Mixed curves: a P-384 root may sign a P-256 leaf; only the leaf must match.
    let mixed = build(vec![(ca("Root"), P384), (leaf("Leaf"), P256)]);
    assert_eq!(verify(&mixed, AsymAlg::EcdsaP256), Ok(()));
    // A leaf without basicConstraints and without EKU is fine.
    let mut plain = leaf("Leaf");
    plain.is_ca = IsCa::NoCa;
    plain.extended_key_usages.clear();
    let c = build(vec![(ca("Root"), P256), (plain, P256)]);
    assert_eq!(verify(&c, AsymAlg::EcdsaP256), Ok(()));
    // A trust anchor that matches by SPKI (re-issued root, same key) is accepted too: the
    // self-signature and the root's own constraints are still checked.
    let key = KeyPair::generate_for(P256).unwrap();
    let root_params = ca("Root");
    let root = root_params.self_signed(&key).unwrap();
    let mut reissued = ca("Root");
    reissued.not_after = date_time_ymd(2048, 1, 1);
    let reissued = reissued.self_signed(&key).unwrap();
    assert_ne!(root.der().as_ref(), reissued.der().as_ref());
    let issuer = Issuer::new(root_params, key);
    let leaf_key = KeyPair::generate_for(P256).unwrap();
    let l = leaf("Leaf").signed_by(&leaf_key, &issuer).unwrap();
    let chain = [root.der().to_vec(), l.der().to_vec()].concat();
    let v = anchors(reissued.der())
        .verify(&chain, AsymAlg::EcdsaP256)
        .unwrap();
    assert_eq!(v.leaf_public_key(), leaf_key.public_key_raw());
    // A root that only shares the anchor's key must carry a valid self-signature.
    let mut bad_root = root.der().to_vec();
    let last = bad_root.len() - 1;
    bad_root[last] ^= 1;
    let chain = [bad_root.clone(), l.der().to_vec()].concat();
    assert_eq!(
        anchors(reissued.der()).verify(&chain, AsymAlg::EcdsaP256),
        Err(CertError::BadSignature { index: 0 })
    );
    // The same corruption against the DER anchor: the root no longer equals it, so the
    // self-signature is checked (the key still matches) and fails.
    assert_eq!(
        anchors(root.der()).verify(&chain, AsymAlg::EcdsaP256),
        Err(CertError::BadSignature { index: 0 })
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let mut old = leaf("Leaf");
    old.not_after = date_time_ymd(2025, 1, 1);
    let c = build(vec![
        (ca("Root"), P256),
        (ca("Intermediate"), P256),
        (old, P256),
    ]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::Expired { index: 2 })
    );

    let mut young = ca("Intermediate");
    young.not_before = date_time_ymd(2040, 1, 1);
    let c = build(vec![
        (ca("Root"), P256),
        (young, P256),
        (leaf("Leaf"), P256),
    ]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::NotYetValid { index: 1 })
    );
}

#[test]
fn wrong_issuer_name_and_wrong_issuer_key() {
    let a = standard(P256);
    let b = standard(P256);
    // Leaf of another chain with a different issuer name.
    let other = build(vec![(ca("Other root"), P256), (leaf("Leaf"), P256)]);
    let c = vec![a[0].clone(), a[1].clone(), other[1].clone()];
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::IssuerMismatch { index: 2 })
    );
    // Same names, different keys: only the signature tells them apart.
    let c = vec![a[0].clone(), a[1].clone(), b[2].clone()];
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::BadSignature { index: 2 })
    );
    let c = vec![a[0].clone(), b[1].clone(), b[2].clone()];
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::BadSignature { index: 1 })
    );
}

#[test]
fn tampered_signature_and_tampered_tbs() {
    let mut c = standard(P384);
    let last = c[2].len() - 1;
    c[2][last] ^= 0x01;
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP384),
        Err(CertError::BadSignature { index: 2 })
    );
    let mut c = standard(P384);
    // A byte inside the leaf's subject CN ("Leaf" → "Lea\x67").
    let pos = c[2].windows(4).position(|w| w == b"Leaf").unwrap();
    c[2][pos + 3] ^= 0x01;
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP384),
        Err(CertError::BadSignature { index: 2 })
    );
}

#[test]
fn non_ca_intermediate() {
    for is_ca in [IsCa::NoCa, IsCa::ExplicitNoCa] {
        let mut inter = ca("Intermediate");
        inter.is_ca = is_ca;
        let c = build(vec![
            (ca("Root"), P256),
            (inter, P256),
            (leaf("Leaf"), P256),
        ]);
        assert_eq!(
            verify(&c, AsymAlg::EcdsaP256),
            Err(CertError::NotCa { index: 1 })
        );
    }
    let mut root = ca("Root");
    root.is_ca = IsCa::NoCa;
    let c = build(vec![(root, P256), (leaf("Leaf"), P256)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::NotCa { index: 0 })
    );
}

#[test]
fn path_len_exceeded() {
    let mut root = ca("Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let c = build(vec![
        (root.clone(), P256),
        (ca("Intermediate"), P256),
        (leaf("Leaf"), P256),
    ]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::PathLenExceeded { index: 0 })
    );
    // pathLen 0 still allows a root that signs the leaf directly.
    let c = build(vec![(root, P256), (leaf("Leaf"), P256)]);
    assert_eq!(verify(&c, AsymAlg::EcdsaP256), Ok(()));
    let mut root = ca("Root");
    root.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    let mut i1 = ca("I1");
    i1.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let c = build(vec![
        (root, P256),
        (i1, P256),
        (ca("I2"), P256),
        (leaf("Leaf"), P256),
    ]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::PathLenExceeded { index: 0 })
    );
}

#[test]
fn leaf_that_is_a_ca() {
    let mut l = leaf("Leaf");
    l.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    assert_eq!(verify(&c, AsymAlg::EcdsaP256), Err(CertError::LeafIsCa));
}

#[test]
fn explicit_ca_false_is_not_der() {
    // basicConstraints = SEQUENCE { BOOLEAN FALSE }: BER, not DER (libspdm refuses it too).
    let mut l = leaf("Leaf");
    l.is_ca = IsCa::NoCa;
    let mut ext =
        CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x03, 0x01, 0x01, 0x00]);
    ext.set_criticality(true);
    l.custom_extensions = vec![ext];
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::NonDerBasicConstraints { index: 1 })
    );
}

#[test]
fn bad_key_usage() {
    let mut l = leaf("Leaf");
    l.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::BadKeyUsage { index: 1 })
    );
    // A leaf without keyUsage at all.
    let mut l = leaf("Leaf");
    l.key_usages.clear();
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::BadKeyUsage { index: 1 })
    );
    // A CA without keyUsage is fine (libspdm's sample roots), one without keyCertSign is not.
    let mut root = ca("Root");
    root.key_usages.clear();
    let c = build(vec![(root, P256), (leaf("Leaf"), P256)]);
    assert_eq!(verify(&c, AsymAlg::EcdsaP256), Ok(()));
    let mut inter = ca("Intermediate");
    inter.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let c = build(vec![
        (ca("Root"), P256),
        (inter, P256),
        (leaf("Leaf"), P256),
    ]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::BadKeyUsage { index: 1 })
    );
}

#[test]
fn requester_only_eku_refused_for_a_responder() {
    let mut l = leaf("Leaf");
    l.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::Other(REQ_EKU.to_vec()),
    ];
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    let a = anchors(&c[0]);
    assert_eq!(
        a.verify(&c.concat(), AsymAlg::EcdsaP256),
        Err(CertError::WrongEku)
    );
    assert!(a
        .verify_for_role(&c.concat(), AsymAlg::EcdsaP256, PeerRole::Requester)
        .is_ok());
    // A responder-only leaf is refused as a requester; a leaf with both is fine for both.
    let c = standard(P256);
    assert_eq!(
        anchors(&c[0]).verify_for_role(&c.concat(), AsymAlg::EcdsaP256, PeerRole::Requester),
        Err(CertError::WrongEku)
    );
    let mut l = leaf("Leaf");
    l.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::Other(REQ_EKU.to_vec()),
        ExtendedKeyUsagePurpose::Other(RSP_EKU.to_vec()),
    ];
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    for role in [PeerRole::Responder, PeerRole::Requester] {
        assert!(anchors(&c[0])
            .verify_for_role(&c.concat(), AsymAlg::EcdsaP256, role)
            .is_ok());
    }
}

#[test]
fn untrusted_root() {
    let c = standard(P256);
    let other = standard(P256);
    assert_eq!(
        anchors(&other[0]).verify(&c.concat(), AsymAlg::EcdsaP256),
        Err(CertError::UntrustedRoot)
    );
    assert_eq!(
        TrustAnchors::new()
            .with_time(VerifyTime::Fixed(NOW))
            .verify(&c.concat(), AsymAlg::EcdsaP256),
        Err(CertError::UntrustedRoot)
    );
}

#[test]
fn p256_leaf_when_p384_negotiated() {
    let c = build(vec![(ca("Root"), P384), (leaf("Leaf"), P256)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP384),
        Err(CertError::LeafAlgorithmMismatch {
            negotiated: AsymAlg::EcdsaP384
        })
    );
}

#[test]
fn unsupported_algorithms() {
    static ED: &SignatureAlgorithm = &rcgen::PKCS_ED25519;
    // An Ed25519 intermediate signs the leaf with Ed25519.
    let c = build(vec![
        (ca("Root"), P256),
        (ca("Intermediate"), ED),
        (leaf("Leaf"), P256),
    ]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::UnsupportedSignatureAlgorithm { index: 2 })
    );
    // An Ed25519 leaf key.
    let c = build(vec![(ca("Root"), P256), (leaf("Leaf"), ED)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::UnsupportedKeyAlgorithm { index: 1 })
    );
}

#[test]
fn unknown_critical_extension() {
    let mut l = leaf("Leaf");
    let mut ext =
        CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]);
    ext.set_criticality(true);
    l.custom_extensions = vec![ext];
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    assert_eq!(
        verify(&c, AsymAlg::EcdsaP256),
        Err(CertError::UnknownCriticalExtension { index: 1 })
    );
    // The same extension, non-critical, is ignored.
    let mut l = leaf("Leaf");
    l.custom_extensions = vec![CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 4, 1, 99999, 1],
        vec![0x05, 0x00],
    )];
    let c = build(vec![(ca("Root"), P256), (l, P256)]);
    assert_eq!(verify(&c, AsymAlg::EcdsaP256), Ok(()));
}

#[test]
fn trailing_bytes_and_chain_shape() {
    let c = standard(P256);
    let mut der = c.concat();
    der.extend_from_slice(&[0, 0]);
    assert_eq!(
        anchors(&c[0]).verify(&der, AsymAlg::EcdsaP256),
        Err(CertError::Malformed { index: 3 })
    );
    // Inside the SPDM chain format, with Length covering the garbage.
    let mut spdm = encode_spdm_cert_chain(HashAlg::Sha256, &c).unwrap();
    assert!(SpdmCertChain::parse(&spdm, HashAlg::Sha256).is_ok());
    spdm.extend_from_slice(&[0x30, 0x00]);
    let len = u16::try_from(spdm.len()).unwrap().to_le_bytes();
    spdm[..2].copy_from_slice(&len);
    assert_eq!(
        SpdmCertChain::parse(&spdm, HashAlg::Sha256).map(|_| ()),
        Ok(()),
        "an empty SEQUENCE frames, so the codec accepts it ..."
    );
    let chain = SpdmCertChain::parse(&spdm, HashAlg::Sha256).unwrap();
    assert_eq!(
        anchors(&c[0]).verify(chain.certs_der(), AsymAlg::EcdsaP256),
        Err(CertError::Malformed { index: 3 }),
        "... and X.509 parsing refuses it"
    );
    // A certificate cut short.
    let cut = &c.concat()[..c.concat().len() - 1];
    assert_eq!(
        anchors(&c[0]).verify(cut, AsymAlg::EcdsaP256),
        Err(CertError::Malformed { index: 2 })
    );
    assert_eq!(
        anchors(&c[0]).verify(&c[0], AsymAlg::EcdsaP256),
        Err(CertError::TooFewCertificates)
    );
    assert_eq!(
        anchors(&c[0]).verify(&c[0].repeat(MAX_CERTS + 1), AsymAlg::EcdsaP256),
        Err(CertError::TooManyCertificates)
    );
    assert_eq!(
        anchors(&c[0]).verify(&[], AsymAlg::EcdsaP256),
        Err(CertError::Empty)
    );
}

#[test]
fn trust_anchor_loading() {
    let c = standard(P256);
    let mut a = TrustAnchors::new();
    assert!(a.is_empty());
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", c[0].clone()));
    a.add_pem_or_der(pem.as_bytes()).unwrap();
    a.add_pem_or_der(&c[1]).unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(a.add_pem_or_der(b"junk"), Err(CertError::BadTrustAnchor));
    let key = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]));
    assert_eq!(
        a.add_pem_or_der(key.as_bytes()),
        Err(CertError::BadTrustAnchor)
    );
    let mut trailing = c[0].clone();
    trailing.push(0);
    assert_eq!(a.add_der(&trailing), Err(CertError::BadTrustAnchor));
    // The system clock is inside the generated validity (2024..2049).
    assert!(a.verify(&c.concat(), AsymAlg::EcdsaP256).is_ok());
}
