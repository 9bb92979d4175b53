//! The crypto backend: the only way kdrv hashes or verifies a signature.
//!
//! A kernel module implements [`CryptoBackend`] over the kernel crypto API (`crypto_shash` for SHA-384,
//! `public_key_verify_signature` for ECDSA P-384); hosted builds and tests use [`RingCrypto`] (feature
//! `ring`). Neither ring nor RustCrypto's sha2 builds for `x86_64-unknown-none`, which is why this is a
//! trait and not a dependency.

use core::fmt;

/// A P-384 public key in SEC1 uncompressed form (`0x04 || X || Y`, 97 bytes): the TSM's grant-signing key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TsmPublicKey([u8; 97]);

impl TsmPublicKey {
    /// Length of a SEC1 uncompressed P-384 point.
    pub const LEN: usize = 97;

    /// Accepts a SEC1 uncompressed P-384 point. Only the form is checked here; that the point is on the
    /// curve is checked by the backend at every verification.
    ///
    /// Return: `None` if `bytes` is not 97 bytes starting with `0x04`.
    pub fn from_sec1(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 97] = bytes.try_into().ok()?;
        if arr.first() != Some(&0x04) {
            return None;
        }
        Some(TsmPublicKey(arr))
    }

    /// The SEC1 bytes.
    pub fn as_bytes(&self) -> &[u8; 97] {
        &self.0
    }

    /// The key id used in the COSE `kid` header: the first 16 bytes of SHA-384 over the SEC1 bytes.
    pub fn key_id(&self, crypto: &dyn CryptoBackend) -> KeyId {
        let d = crypto.sha384(&[&self.0]);
        let mut id = [0u8; 16];
        for (dst, src) in id.iter_mut().zip(d.iter()) {
            *dst = *src;
        }
        KeyId(id)
    }
}

impl fmt::Debug for TsmPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TsmPublicKey(")?;
        for b in self.0.iter().skip(1).take(8) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("..)")
    }
}

/// A 16-byte key identifier (see [`TsmPublicKey::key_id`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct KeyId(pub [u8; 16]);

/// The signature did not verify (or the key or signature was malformed). Carries no detail on purpose.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BadSignature;

/// Digest and signature verification, provided by the embedding environment.
pub trait CryptoBackend {
    /// SHA-384 over the concatenation of `parts`.
    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48];

    /// Verifies an ES384 signature (`r || s`, 96 bytes, COSE form) by `key` over `message`.
    fn verify_es384(
        &self,
        key: &TsmPublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), BadSignature>;
}

/// The hosted backend over ring.
#[cfg(feature = "ring")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RingCrypto;

#[cfg(feature = "ring")]
impl CryptoBackend for RingCrypto {
    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA384);
        for p in parts {
            ctx.update(p);
        }
        let d = ctx.finish();
        let mut out = [0u8; 48];
        for (dst, src) in out.iter_mut().zip(d.as_ref().iter()) {
            *dst = *src;
        }
        out
    }

    fn verify_es384(
        &self,
        key: &TsmPublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), BadSignature> {
        if signature.len() != 96 {
            return Err(BadSignature);
        }
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P384_SHA384_FIXED, &key.0)
            .verify(message, signature)
            .map_err(|_| BadSignature)
    }
}

#[cfg(all(test, feature = "ring"))]
mod tests {
    use super::*;

    #[test]
    fn sha384_known_answer() {
        // FIPS 180-2 "abc".
        let d = RingCrypto.sha384(&[b"a", b"bc"]);
        assert_eq!(&d[..8], &[0xcb, 0x00, 0x75, 0x3f, 0x45, 0xa3, 0x5e, 0x8b]);
    }

    #[test]
    fn public_key_form_is_checked() {
        assert!(TsmPublicKey::from_sec1(&[4u8; 97]).is_some());
        assert!(TsmPublicKey::from_sec1(&[2u8; 97]).is_none());
        assert!(TsmPublicKey::from_sec1(&[4u8; 96]).is_none());
    }
}
