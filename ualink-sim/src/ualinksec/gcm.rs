//! AES-256-GCM with UALinkSec's 8-byte tag and IV = 64-bit zero || 32-bit per-stream counter.
//!
//! # Tag verification construction
//!
//! A GCM tag truncated to 64 bits is the leftmost 64 bits of the full 128-bit tag (SP 800-38D
//! §7.1, MSB_t). Sealing is therefore ring's full-tag seal with the tag cut to 8 bytes.
//!
//! Opening is the problem: ring's `open_in_place` demands the full 16-byte tag, and RustCrypto's
//! `aes-gcm` refuses tag sizes below 12 bytes (`AesGcm<Aes256, U12, U8>` does not compile: its
//! `TagSize` is sealed to 12..=16), and is about 6x slower than ring here anyway. Hand-rolling
//! GHASH is not an option for a security product. We compute the GCM decryption function from
//! ring's own GCM encryption, which is exact because GCM encryption and decryption use the same
//! CTR keystream (counter blocks from J0 = IV || 0^31 || 1) and the tag is always
//! `E_K(J0) xor GHASH_H(A, C)` over the *ciphertext*:
//!
//! 1. `seal_in_place(IV, A, buf = C)` turns `buf` into `C xor keystream = P`; its tag (computed
//!    over P as if P were ciphertext) is discarded.
//! 2. Copy P into a scratch buffer and `seal_in_place(IV, A, scratch)`: this yields `C` again and
//!    the full tag `T = E_K(J0) xor GHASH_H(A, C)` of exactly the received ciphertext and AAD.
//! 3. Compare `T[..8]` with the received 8-byte tag in constant time (`subtle`). Only on equality
//!    is `buf` (the plaintext) released; otherwise both buffers are zeroed and the caller gets an
//!    error and nothing else.
//!
//! Reusing the IV in steps 1-2 is sound: GCM's nonce-uniqueness rule protects keystream and H
//! from an observer of *ciphertexts*; the outputs of steps 1-2 never leave the verifier, which
//! already holds the key, and all an adversary learns is accept/reject, exactly as from a normal
//! GCM decryption. The cost is two GCM passes plus one copy per opened transaction (a standard
//! open is one pass); the bench in `benches/link.rs` reports the effect. Unit tests check the
//! construction against ring's full-tag seal and open and against published GCM test vectors.
//!
//! A true single pass (GHASH over the received AAD and ciphertext, compare, then CTR-decrypt)
//! from RustCrypto's `aes` 0.8 + `ctr` 0.9 + `ghash` 0.5 was built and measured with the
//! `gcm/*` sub-benches (November 2026, AES-NI/PCLMULQDQ/VAES host): at 256-byte transactions it
//! costs the same as the two ring passes (both ~2.2x one ring open), and per byte it is about
//! 2x slower (a 64 KiB write in 32 KiB transactions: ~56 µs vs ~30 µs), because `polyval` 0.6
//! multiplies one block at a time while ring's stitched AES-GCM aggregates blocks. So the
//! two-pass construction stays.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// UALinkSec tag length in bytes (UALink_200 §9.5).
pub const TAG_LEN: usize = 8;

/// Builds the 96-bit IV: 64 zero bits followed by the big-endian 32-bit stream counter.
pub fn iv(counter: u32) -> [u8; 12] {
    let c = counter.to_be_bytes();
    [0, 0, 0, 0, 0, 0, 0, 0, c[0], c[1], c[2], c[3]]
}

/// A stream's AES-256-GCM key (ring's expanded key; the 32 raw bytes are not kept).
pub struct StreamCipher {
    key: LessSafeKey,
}

impl core::fmt::Debug for StreamCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("StreamCipher(<redacted>)")
    }
}

/// ring refused to build an AES-256-GCM key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherInitError;

/// Tag verification failed (or the input was too long for AES-GCM); nothing was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagMismatch;

impl StreamCipher {
    /// Builds the cipher from a 256-bit key. ring accepts every 32-byte key for AES-256-GCM;
    /// the error exists only so that no panic is reachable if it ever did not.
    pub fn new(key: &[u8; 32]) -> Result<Self, CipherInitError> {
        let k = UnboundKey::new(&AES_256_GCM, key).map_err(|_| CipherInitError)?;
        Ok(Self {
            key: LessSafeKey::new(k),
        })
    }

    /// Encrypts `in_out` in place and returns the 8-byte tag over (`aad`, ciphertext).
    pub fn seal(
        &self,
        counter: u32,
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], TagMismatch> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv(counter)),
                Aad::from(aad),
                in_out,
            )
            .map_err(|_| TagMismatch)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref().get(..TAG_LEN).ok_or(TagMismatch)?);
        Ok(out)
    }

    /// Verifies the 8-byte `tag` over (`aad`, `in_out`) and decrypts `in_out` in place (see the
    /// module doc for the construction). `scratch` is a reusable buffer; on return it holds only
    /// ciphertext. On error `in_out` is zeroed.
    pub fn open(
        &self,
        counter: u32,
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
        scratch: &mut Vec<u8>,
    ) -> Result<(), TagMismatch> {
        self.open_with_iv(iv(counter), aad, in_out, tag, scratch)
    }

    /// [`StreamCipher::open`] for any 96-bit IV (the GCM test vectors use IVs outside the
    /// UALinkSec layout).
    fn open_with_iv(
        &self,
        iv: [u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
        scratch: &mut Vec<u8>,
    ) -> Result<(), TagMismatch> {
        // Step 1: CTR-decrypt C into P (the tag of this pass is over P and is discarded).
        if self
            .key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(aad), in_out)
            .is_err()
        {
            in_out.zeroize();
            return Err(TagMismatch);
        }
        // Step 2: re-encrypt a copy of P to obtain the full tag over the received C.
        scratch.clear();
        scratch.extend_from_slice(in_out);
        // After this pass `scratch` holds C again: public ciphertext, so it is not zeroized.
        let full = self.key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(aad),
            scratch,
        );
        let ok = match full {
            Ok(full) => match full.as_ref().get(..TAG_LEN) {
                Some(prefix) => bool::from(prefix.ct_eq(tag)),
                None => false,
            },
            Err(_) => false,
        };
        // Step 3: release P only when the truncated tags match.
        if ok {
            Ok(())
        } else {
            in_out.zeroize();
            Err(TagMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn ring_full_seal(key: &[u8; 32], counter: u32, aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap());
        let t = k
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv(counter)),
                Aad::from(aad),
                data,
            )
            .unwrap();
        t.as_ref().try_into().unwrap()
    }

    #[test]
    fn iv_layout() {
        assert_eq!(iv(0x0102_0304), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
    }

    /// McGrew & Viega GCM test cases 13 and 14 (AES-256, K = 0, IV = 0^96 which is our IV for
    /// counter 0): ciphertext and the leftmost 8 tag bytes.
    #[test]
    fn gcm_spec_test_cases_13_and_14() {
        let c = StreamCipher::new(&[0u8; 32]).unwrap();
        let mut empty: [u8; 0] = [];
        assert_eq!(
            c.seal(0, &[], &mut empty).unwrap().to_vec(),
            hex("530f8afbc74536b9")
        );
        let mut p = [0u8; 16];
        let tag = c.seal(0, &[], &mut p).unwrap();
        assert_eq!(p.to_vec(), hex("cea7403d4d606b6e074ec5d3baf39d18"));
        assert_eq!(tag.to_vec(), hex("d0d1c8a799996bf0"));
        let mut s = Vec::new();
        c.open(0, &[], &mut p, &tag, &mut s).unwrap();
        assert_eq!(p, [0u8; 16]);
    }

    /// McGrew & Viega GCM test case 16 (AES-256, 20-byte AAD, 60-byte plaintext: partial final
    /// blocks in both GHASH inputs): ring's seal gives the published ciphertext and tag, and our
    /// open accepts the leftmost 8 tag bytes, decrypts, and rejects a wrong 8-byte tag.
    #[test]
    fn gcm_spec_test_case_16() {
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let p = hex(concat!(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72",
            "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
        ));
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let iv: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let c = hex(concat!(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa",
            "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"
        ));
        let t = hex("76fc6ece0f4e1768cddf8853bb2d551b");
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut buf = p.clone();
        let full = k
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(&aad), &mut buf)
            .unwrap();
        assert_eq!(buf, c);
        assert_eq!(full.as_ref(), &t[..]);
        let ours = StreamCipher::new(&key).unwrap();
        let tag: [u8; TAG_LEN] = t[..TAG_LEN].try_into().unwrap();
        ours.open_with_iv(iv, &aad, &mut buf, &tag, &mut Vec::new())
            .unwrap();
        assert_eq!(buf, p);
        let mut buf = c.clone();
        let mut bad = tag;
        bad[7] ^= 0x80;
        assert_eq!(
            ours.open_with_iv(iv, &aad, &mut buf, &bad, &mut Vec::new()),
            Err(TagMismatch)
        );
        assert_eq!(buf, vec![0u8; c.len()]);
    }

    /// Our 8-byte tag is the first 8 bytes of ring's full tag, our open accepts what ring sealed,
    /// and ring's full-tag open agrees on the plaintext, for many lengths and counters.
    #[test]
    fn equivalent_to_ring_full_tag() {
        let key = [0x5au8; 32];
        let c = StreamCipher::new(&key).unwrap();
        let mut scratch = Vec::new();
        for len in [0usize, 1, 15, 16, 17, 63, 64, 255, 256, 1000, 4096] {
            for counter in [0u32, 1, 0xffff_fffe] {
                let aad: Vec<u8> = (0..(len % 23) as u8).collect();
                let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut ring_buf = plain.clone();
                let full = ring_full_seal(&key, counter, &aad, &mut ring_buf);
                let mut ours = plain.clone();
                let tag = c.seal(counter, &aad, &mut ours).unwrap();
                assert_eq!(ours, ring_buf, "same ciphertext");
                assert_eq!(tag[..], full[..8], "tag is the leftmost 8 bytes");
                c.open(counter, &aad, &mut ours, &tag, &mut scratch)
                    .unwrap();
                assert_eq!(ours, plain);
                // ring's full-tag open of the same bytes gives the same plaintext.
                let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
                let mut both = ring_buf.clone();
                both.extend_from_slice(&full);
                let p = k
                    .open_in_place(
                        Nonce::assume_unique_for_key(iv(counter)),
                        Aad::from(&aad),
                        &mut both,
                    )
                    .unwrap();
                assert_eq!(p, &plain[..]);
            }
        }
    }

    /// Any single bit flip in ciphertext, tag or AAD, or a wrong counter or key, is rejected
    /// and the buffer is zeroed.
    #[test]
    fn every_bit_flip_rejected() {
        let c = StreamCipher::new(&[9u8; 32]).unwrap();
        let aad = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut ct = [0xabu8; 40];
        let tag = c.seal(5, &aad, &mut ct).unwrap();
        let mut s = Vec::new();
        for i in 0..ct.len() * 8 {
            let mut b = ct;
            b[i / 8] ^= 1 << (i % 8);
            assert_eq!(c.open(5, &aad, &mut b, &tag, &mut s), Err(TagMismatch));
            assert_eq!(b, [0u8; 40], "no plaintext released");
        }
        for i in 0..TAG_LEN * 8 {
            let mut t = tag;
            t[i / 8] ^= 1 << (i % 8);
            let mut b = ct;
            assert_eq!(c.open(5, &aad, &mut b, &t, &mut s), Err(TagMismatch));
        }
        for i in 0..aad.len() * 8 {
            let mut a = aad;
            a[i / 8] ^= 1 << (i % 8);
            let mut b = ct;
            assert_eq!(c.open(5, &a, &mut b, &tag, &mut s), Err(TagMismatch));
        }
        let mut b = ct;
        assert_eq!(c.open(6, &aad, &mut b, &tag, &mut s), Err(TagMismatch));
        let mut b = ct;
        let other = StreamCipher::new(&[8u8; 32]).unwrap();
        assert_eq!(other.open(5, &aad, &mut b, &tag, &mut s), Err(TagMismatch));
        let mut b = ct;
        c.open(5, &aad, &mut b, &tag, &mut s).unwrap();
        assert_eq!(b, [0xabu8; 40]);
    }
}
