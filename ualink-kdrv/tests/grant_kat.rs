//! Known-answer test for the grant format: a grant produced once by a ring ES384 key (the bytes and
//! the public key are in tests/data/, origin: this test with UALINK_REGEN_KAT=1) must keep verifying
//! and decoding to exactly these claims; a one-bit change anywhere must not verify.
#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod common;

use std::path::PathBuf;

use common::*;
use ualink_kdrv::crypto::{RingCrypto, TsmPublicKey};
use ualink_kdrv::grant::verify_grant_with_key;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::Denial;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn kat_claims() -> Claims {
    Claims {
        grant_id: *b"grant-kat-000001",
        exporter_tenant: 1,
        exporter_accel: 0,
        buffer: [0xb0; 16],
        importer_tenant: 2,
        importer_os: 20,
        importer_accel: 1023,
        rights: 5,
        exporter_epoch: 7,
        importer_epoch: 0x1_0000_0000,
        not_before: 1_000,
        expiry: 0xffff_ffff_ffff,
        nonce: *b"nonce-kat-000001",
    }
}

#[test]
fn grant_known_answer() {
    if std::env::var_os("UALINK_REGEN_KAT").is_some() {
        let tsm = Tsm::new();
        std::fs::write(data("grant-kat.cose"), tsm.grant(&kat_claims())).unwrap();
        std::fs::write(data("tsm-kat.pub"), tsm.public.as_bytes()).unwrap();
    }
    let grant = std::fs::read(data("grant-kat.cose")).unwrap();
    let key = TsmPublicKey::from_sec1(&std::fs::read(data("tsm-kat.pub")).unwrap()).unwrap();
    // Tagged COSE_Sign1: tag 18, array of 4.
    assert_eq!(&grant[..2], &[0xd2, 0x84]);
    let v = verify_grant_with_key(&grant, &key, &RingCrypto).unwrap();
    let c = v.claims();
    let k = kat_claims();
    assert_eq!(c.grant_id.0, k.grant_id);
    assert_eq!(c.exporter_tenant.0, 1);
    assert_eq!(c.exporter_accel.get(), 0);
    assert_eq!(c.buffer.0, [0xb0; 16]);
    assert_eq!(c.importer_tenant.0, 2);
    assert_eq!(c.importer_os.0, 20);
    assert_eq!(c.importer_accel.get(), 1023);
    assert_eq!(c.rights, Rights::READ.union(Rights::ATOMIC));
    assert_eq!(c.exporter_epoch, 7);
    assert_eq!(c.importer_epoch, 0x1_0000_0000);
    assert_eq!(c.not_before.0, 1_000);
    assert_eq!(c.expiry.0, 0xffff_ffff_ffff);
    assert_eq!(c.nonce, k.nonce);
    // The claims are in the exact deterministic encoding.
    let payload = k.encode();
    assert!(grant
        .windows(payload.len())
        .any(|w| w == payload.as_slice()));
    // Every single-bit flip is refused (malformed or bad signature), never accepted.
    for i in 0..grant.len() {
        for bit in [0x01u8, 0x80] {
            let mut g = grant.clone();
            g[i] ^= bit;
            let r = verify_grant_with_key(&g, &key, &RingCrypto);
            assert!(
                matches!(
                    r,
                    Err(Denial::BadSignature) | Err(Denial::MalformedGrant(_))
                ),
                "byte {i} bit {bit:#x}: {r:?}"
            );
        }
    }
    // Trailing bytes after the COSE structure are refused.
    let mut g = grant.clone();
    g.push(0);
    assert!(matches!(
        verify_grant_with_key(&g, &key, &RingCrypto),
        Err(Denial::MalformedGrant(_))
    ));
}
