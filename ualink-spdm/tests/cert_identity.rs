//! Generated and loaded device identities verify as responder chains.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use ualink_spdm::algo::{AsymAlg, HashAlg};
use ualink_spdm::cert_chain::{
    CertError, ChainVerifier, PeerRole, SpdmCertChain, TrustAnchors, VerifyTime,
};
use ualink_spdm::identity::{
    DeviceIdentity, IdentityError, IdentityOptions, IdentitySource, CA_FILE, CHAIN_FILE, KEY_FILE,
};

/// 2030-01-01T00:00:00Z.
const NOW: u64 = 1_893_456_000;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ualink-spdm-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn anchors(id: &DeviceIdentity) -> TrustAnchors {
    let mut a = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
    a.add_der(id.ca_der()).unwrap();
    a
}

#[test]
fn generated_identities_verify_for_every_shape() {
    for (asym, hash) in [
        (AsymAlg::EcdsaP256, HashAlg::Sha256),
        (AsymAlg::EcdsaP384, HashAlg::Sha384),
    ] {
        for intermediate in [false, true] {
            let opts = IdentityOptions {
                intermediate,
                ..IdentityOptions::default()
            };
            let id = DeviceIdentity::generate(asym, &opts).unwrap();
            assert_eq!(id.asym(), asym);
            assert_eq!(id.chain_der().len(), if intermediate { 3 } else { 2 });
            assert_eq!(id.ca_der(), id.chain_der()[0].as_slice());
            let spdm = id.spdm_cert_chain(hash).unwrap();
            let chain = SpdmCertChain::parse(&spdm, hash).unwrap();
            let v = anchors(&id).verify(chain.certs_der(), asym).unwrap();
            assert!(v.subjects().last().unwrap().contains("responder"));
            // The responder-auth EKU makes it unusable as a requester identity.
            assert_eq!(
                anchors(&id).verify_for_role(chain.certs_der(), asym, PeerRole::Requester),
                Err(CertError::WrongEku)
            );
            id.check(NOW, PeerRole::Responder).unwrap();
            // The key in the proof token is the one in the PKCS#8 key.
            let alg = match asym {
                AsymAlg::EcdsaP256 => &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                AsymAlg::EcdsaP384 => &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
            };
            let rng = ring::rand::SystemRandom::new();
            let pair =
                ring::signature::EcdsaKeyPair::from_pkcs8(alg, id.key_pkcs8(), &rng).unwrap();
            assert_eq!(
                ring::signature::KeyPair::public_key(&pair).as_ref(),
                v.leaf_public_key()
            );
        }
    }
}

#[test]
fn debug_output_redacts_the_key() {
    let id = DeviceIdentity::generate(AsymAlg::EcdsaP256, &IdentityOptions::default()).unwrap();
    let dbg = format!("{id:?}");
    assert!(dbg.contains("redacted"));
    assert!(!dbg.contains(&format!("{:?}", &id.key_pkcs8()[..8])));
}

#[test]
fn load_or_generate_writes_then_reuses_files() {
    let dir = scratch("gen");
    let (a, src) =
        DeviceIdentity::load_or_generate(&dir, AsymAlg::EcdsaP384, &IdentityOptions::default())
            .unwrap();
    assert_eq!(src, IdentitySource::Generated);
    for f in [CA_FILE, CHAIN_FILE, KEY_FILE] {
        assert!(dir.join(f).exists(), "{f}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
    }
    // Asking for P-256 now still loads the existing P-384 identity as it is.
    let (b, src) =
        DeviceIdentity::load_or_generate(&dir, AsymAlg::EcdsaP256, &IdentityOptions::default())
            .unwrap();
    assert_eq!(src, IdentitySource::Loaded);
    assert_eq!(b.asym(), AsymAlg::EcdsaP384);
    assert_eq!(a.chain_der(), b.chain_der());
    assert_eq!(a.key_pkcs8().as_slice(), b.key_pkcs8().as_slice());

    // A partial directory is refused, not overwritten.
    std::fs::remove_file(dir.join(CHAIN_FILE)).unwrap();
    assert!(matches!(
        DeviceIdentity::load_or_generate(&dir, AsymAlg::EcdsaP384, &IdentityOptions::default()),
        Err(IdentityError::Incomplete {
            missing: CHAIN_FILE
        })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_that_does_not_match_the_leaf_is_refused() {
    let dir = scratch("mismatch");
    let a = DeviceIdentity::generate(AsymAlg::EcdsaP256, &IdentityOptions::default()).unwrap();
    let b = DeviceIdentity::generate(AsymAlg::EcdsaP256, &IdentityOptions::default()).unwrap();
    a.save(&dir).unwrap();
    let other_key = dir.join("other");
    b.save(&other_key).unwrap();
    std::fs::copy(other_key.join(KEY_FILE), dir.join(KEY_FILE)).unwrap();
    assert!(matches!(
        DeviceIdentity::load(&dir),
        Err(IdentityError::KeyMismatch)
    ));
    // A certificate where the key should be.
    std::fs::copy(dir.join(CA_FILE), dir.join(KEY_FILE)).unwrap();
    assert!(matches!(
        DeviceIdentity::load(&dir),
        Err(IdentityError::BadFile { file: KEY_FILE, .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn openssl_made_identity_loads_and_verifies() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/openssl_identity");
    let id = DeviceIdentity::load(&dir).unwrap();
    assert_eq!(id.asym(), AsymAlg::EcdsaP384);
    assert_eq!(id.chain_der().len(), 2);
    // Made 2026-11-25, valid 9000 days.
    let when = 1_800_000_000;
    id.check(when, PeerRole::Responder).unwrap();
    let mut a = TrustAnchors::new().with_time(VerifyTime::Fixed(when));
    a.add_pem_or_der(&std::fs::read(dir.join(CA_FILE)).unwrap())
        .unwrap();
    let v = a.verify(&id.certs_der(), AsymAlg::EcdsaP384).unwrap();
    assert_eq!(v.subjects()[1], "CN=openssl test device");
}

#[test]
fn requester_identity_for_mutual_auth() {
    let opts = IdentityOptions {
        role: PeerRole::Requester,
        ..IdentityOptions::default()
    };
    let id = DeviceIdentity::generate(AsymAlg::EcdsaP256, &opts).unwrap();
    id.check(NOW, PeerRole::Requester).unwrap();
    assert_eq!(id.check(NOW, PeerRole::Responder), Err(CertError::WrongEku));
    let copy = id.clone();
    assert_eq!(copy.key_pkcs8().as_slice(), id.key_pkcs8().as_slice());
    assert_eq!(copy.chain_der(), id.chain_der());
}
