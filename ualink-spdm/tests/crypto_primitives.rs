//! Hashing, HMAC, HKDF (RFC 5869 vectors), ECDHE and the secret container.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_spdm::algo::{DheGroup, HashAlg};
use ualink_spdm::crypto::{
    hash, hkdf_expand, hkdf_extract, hmac, hmac_verify, Digest, EphemeralDhe, HashCtx, Rng,
    SecretBytes,
};
use ualink_spdm::error::{Error, Malformed};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn sha_known_answers() {
    assert_eq!(
        hex::encode(hash(HashAlg::Sha256, b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        hex::encode(hash(HashAlg::Sha384, b"abc")),
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
    );
}

#[test]
fn hash_ctx_snapshots_without_disturbing_the_running_hash() {
    for alg in [HashAlg::Sha256, HashAlg::Sha384] {
        let mut ctx = HashCtx::new(alg);
        ctx.update(b"VCA");
        let snap = ctx.current();
        assert_eq!(snap, hash(alg, b"VCA"));
        assert_eq!(snap.as_bytes().len(), alg.len());
        let fork = ctx.clone();
        ctx.update(b" and more");
        assert_eq!(ctx.current(), hash(alg, b"VCA and more"));
        assert_eq!(fork.finish(), hash(alg, b"VCA"));
        assert_eq!(ctx.finish(), hash(alg, b"VCA and more"));
    }
}

#[test]
fn digest_from_slice_accepts_only_digest_lengths() {
    assert!(Digest::from_slice(&[0u8; 32]).is_some());
    assert!(Digest::from_slice(&[0u8; 48]).is_some());
    assert!(Digest::from_slice(&[0u8; 33]).is_none());
    assert!(Digest::from_slice(&[]).is_none());
    let d = Digest::from_slice(&[0xab; 32]).unwrap();
    assert_eq!(d.as_bytes(), &[0xab; 32]);
    assert!(format!("{d:?}").contains("abab"));
}

#[test]
fn hmac_rfc4231_case_2() {
    let tag = hmac(HashAlg::Sha256, b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(tag.expose()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let tag384 = hmac(HashAlg::Sha384, b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(tag384.expose()),
        "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"
    );
    assert!(hmac_verify(
        HashAlg::Sha256,
        b"Jefe",
        b"what do ya want for nothing?",
        tag.expose()
    ));
    assert!(!hmac_verify(
        HashAlg::Sha256,
        b"Jefe",
        b"what do ya want for nothing!",
        tag.expose()
    ));
    assert!(!hmac_verify(
        HashAlg::Sha256,
        b"Jefe",
        b"what do ya want for nothing?",
        &tag.expose()[..31]
    ));
}

#[test]
fn hkdf_rfc5869_vectors() {
    // Test case 1.
    let prk = hkdf_extract(
        HashAlg::Sha256,
        &h("000102030405060708090a0b0c"),
        &[0x0b; 22],
    );
    assert_eq!(
        hex::encode(prk.expose()),
        "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    );
    let okm = hkdf_expand(
        HashAlg::Sha256,
        prk.expose(),
        &h("f0f1f2f3f4f5f6f7f8f9"),
        42,
    )
    .unwrap();
    assert_eq!(
        hex::encode(okm.expose()),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );

    // Test case 2 (multi-block output).
    let ikm: Vec<u8> = (0x00..=0x4f).collect();
    let salt: Vec<u8> = (0x60..=0xaf).collect();
    let info: Vec<u8> = (0xb0..=0xff).collect();
    let prk = hkdf_extract(HashAlg::Sha256, &salt, &ikm);
    assert_eq!(
        hex::encode(prk.expose()),
        "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244"
    );
    let okm = hkdf_expand(HashAlg::Sha256, prk.expose(), &info, 82).unwrap();
    assert_eq!(
        hex::encode(okm.expose()),
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
         59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
         cc30c58179ec3e87c14c01d5c1f3434f1d87"
    );

    // Test case 3 (empty salt and info).
    let prk = hkdf_extract(HashAlg::Sha256, &[], &[0x0b; 22]);
    assert_eq!(
        hex::encode(prk.expose()),
        "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04"
    );
    let okm = hkdf_expand(HashAlg::Sha256, prk.expose(), &[], 42).unwrap();
    assert_eq!(
        hex::encode(okm.expose()),
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    );
}

#[test]
fn hkdf_expand_lengths() {
    let prk = [7u8; 48];
    for len in [0, 1, 12, 32, 48, 49, 255 * 48] {
        assert_eq!(
            hkdf_expand(HashAlg::Sha384, &prk, b"i", len).unwrap().len(),
            len
        );
    }
    // A shorter output is a prefix of a longer one (same info).
    let a = hkdf_expand(HashAlg::Sha384, &prk, b"i", 12).unwrap();
    let b = hkdf_expand(HashAlg::Sha384, &prk, b"i", 100).unwrap();
    assert_eq!(a.expose(), &b.expose()[..12]);
    assert!(matches!(
        hkdf_expand(HashAlg::Sha384, &prk, b"i", 255 * 48 + 1),
        Err(Error::ApiMisuse(_))
    ));
}

#[test]
fn ecdhe_agreement_both_groups() {
    let rng = Rng::new();
    for group in [DheGroup::Secp256r1, DheGroup::Secp384r1] {
        let a = EphemeralDhe::generate(group, &rng).unwrap();
        let b = EphemeralDhe::generate(group, &rng).unwrap();
        assert_eq!(a.exchange_data().len(), group.exchange_len());
        assert_ne!(a.exchange_data(), b.exchange_data());
        let (ea, eb) = (a.exchange_data().to_vec(), b.exchange_data().to_vec());
        let sa = a.agree(&eb).unwrap();
        let sb = b.agree(&ea).unwrap();
        assert_eq!(sa.len(), group.exchange_len() / 2);
        assert!(sa.ct_eq(sb.expose()));
        assert!(format!("{sa:?}").contains("redacted"));
    }
}

#[test]
fn ecdhe_rejects_bad_peer_exchange_data() {
    let rng = Rng::new();
    let other = EphemeralDhe::generate(DheGroup::Secp256r1, &rng).unwrap();
    let good = other.exchange_data().to_vec();

    // Wrong length (e.g. with the 0x04 prefix, or a P-384 point to a P-256 key).
    let mut prefixed = vec![0x04];
    prefixed.extend_from_slice(&good);
    for bad in [prefixed, good[..63].to_vec(), vec![1u8; 96]] {
        let me = EphemeralDhe::generate(DheGroup::Secp256r1, &rng).unwrap();
        assert_eq!(
            me.agree(&bad).unwrap_err(),
            Malformed::BadLength {
                what: "ExchangeData"
            }
            .into()
        );
    }
    // Right length, not on the curve.
    let mut off_curve = good.clone();
    off_curve[63] ^= 1;
    let me = EphemeralDhe::generate(DheGroup::Secp256r1, &rng).unwrap();
    assert!(matches!(
        me.agree(&off_curve).unwrap_err(),
        Error::Malformed(Malformed::UnknownValue { .. })
    ));
    // All zeros (point at infinity has no affine encoding).
    let me = EphemeralDhe::generate(DheGroup::Secp256r1, &rng).unwrap();
    assert!(me.agree(&[0u8; 64]).is_err());
}

#[test]
fn secret_bytes_compare_in_constant_time_and_redact() {
    let s = SecretBytes::from_slice(b"secret-value");
    assert!(s.ct_eq(b"secret-value"));
    assert!(!s.ct_eq(b"secret-valuf"));
    assert!(!s.ct_eq(b"secret-valu"));
    let dbg = format!("{s:?}");
    assert!(
        !dbg.contains("secret-value") && !dbg.contains("7365"),
        "{dbg}"
    );
    assert!(dbg.contains("12 bytes"));
}

#[test]
fn rng_nonces_differ() {
    let rng = Rng::new();
    let a = rng.nonce32().unwrap();
    let b = rng.nonce32().unwrap();
    assert_ne!(a, b);
    assert_ne!(a, [0u8; 32]);
}
