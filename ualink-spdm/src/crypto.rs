//! Cryptographic primitives for SPDM 1.2/1.3, all over `ring`.
//!
//! * Hashing: one-shot [`hash`] and incremental [`HashCtx`] (clonable, so a transcript can be
//!   snapshotted with [`HashCtx::current`] and keep growing).
//! * HMAC ([`hmac()`], [`hmac_verify`] in constant time) and HKDF ([`hkdf_extract`],
//!   [`hkdf_expand`]): RFC 5869 written directly over `ring::hmac`, because SPDM needs Extract
//!   with a raw salt and Expand to arbitrary lengths (keys, 12-byte IVs), which `ring::hkdf`
//!   does not expose.
//! * SPDM 1.2+ signatures ([`sign`], [`verify`]): ECDSA over
//!   `combined_spdm_prefix ‖ Hash(transcript)` where the 100-byte prefix is
//!   `"dmtf-spdm-v1.N.*"` four times followed by the signing context right-aligned in 36
//!   zero-padded bytes (DSP0274 1.2 §"Signature generation"). Signatures are raw `r ‖ s`.
//! * ECDHE ([`EphemeralDhe`]): exchange data is the uncompressed point `X ‖ Y` without the
//!   0x04 SEC1 prefix; the shared secret (the X coordinate) is returned in a zeroizing buffer.
//! * [`SigningKey`] (PKCS#8 ECDSA key, `Debug` redacted) and [`Rng`] (the system RNG).
//!
//! Every secret this module returns lives in [`SecretBytes`] or `Zeroizing`, never in `Debug`.
//! Limitation: `ring`'s own key objects (`hmac::Key`, `aead::LessSafeKey`, ECDSA and ECDHE
//! private keys) hold expanded key material that `ring` does not zeroize on drop; our copies of
//! key bytes are zeroized, and those objects live no longer than the session or key they serve.

use alloc::vec::Vec;
use core::fmt;

use ring::rand::SecureRandom;
use ring::{agreement, digest, hmac, signature};
use zeroize::Zeroizing;

use crate::algo::{AsymAlg, DheGroup, HashAlg, SpdmVersion};
use crate::error::{Error, Malformed, PeerMisbehaved, Result};

// ---------------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------------

/// Largest digest this crate produces (SHA-384).
pub const MAX_HASH_LEN: usize = 48;

const fn digest_alg(alg: HashAlg) -> &'static digest::Algorithm {
    match alg {
        HashAlg::Sha256 => &digest::SHA256,
        HashAlg::Sha384 => &digest::SHA384,
    }
}

const fn hmac_alg(alg: HashAlg) -> hmac::Algorithm {
    match alg {
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha384 => hmac::HMAC_SHA384,
    }
}

/// A message digest (not secret): exactly [`HashAlg::len`] bytes of the algorithm that made it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    len: u8,
    bytes: [u8; MAX_HASH_LEN],
}

impl Digest {
    /// Wraps digest bytes received or logged elsewhere (e.g. a transcript hash from a peer's log).
    /// Returns `None` unless `bytes` is 32 or 48 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != HashAlg::Sha256.len() && bytes.len() != HashAlg::Sha384.len() {
            return None;
        }
        let mut out = [0u8; MAX_HASH_LEN];
        out.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            len: u8::try_from(bytes.len()).ok()?,
            bytes: out,
        })
    }

    fn from_ring(d: digest::Digest) -> Self {
        let src = d.as_ref();
        let mut bytes = [0u8; MAX_HASH_LEN];
        let n = src.len().min(MAX_HASH_LEN);
        if let (Some(dst), Some(s)) = (bytes.get_mut(..n), src.get(..n)) {
            dst.copy_from_slice(s);
        }
        Self {
            // n <= 48 by construction.
            len: u8::try_from(n).unwrap_or(0),
            bytes,
        }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Digest(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// One-shot hash of `data`.
pub fn hash(alg: HashAlg, data: &[u8]) -> Digest {
    Digest::from_ring(digest::digest(digest_alg(alg), data))
}

/// An incremental hash (a running transcript). Cloning snapshots the state.
#[derive(Clone)]
pub struct HashCtx {
    alg: HashAlg,
    ctx: digest::Context,
}

impl HashCtx {
    /// Starts an empty hash.
    pub fn new(alg: HashAlg) -> Self {
        Self {
            alg,
            ctx: digest::Context::new(digest_alg(alg)),
        }
    }

    /// The algorithm in use.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Appends `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// The hash of everything appended so far; the context keeps accepting data.
    pub fn current(&self) -> Digest {
        Digest::from_ring(self.ctx.clone().finish())
    }

    /// Consumes the context and returns the hash.
    pub fn finish(self) -> Digest {
        Digest::from_ring(self.ctx.finish())
    }
}

impl fmt::Debug for HashCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HashCtx").field("alg", &self.alg).finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets, HMAC and HKDF
// ---------------------------------------------------------------------------------------------

/// Secret bytes: zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies secret bytes from a slice.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The secret itself. Callers must not log or persist it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality with `other` (lengths are not secret).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.len() && bool::from(self.0.as_slice().ct_eq(other))
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// HMAC-`alg`(key, data). The output is H bytes; it is a secret when used as a key.
pub fn hmac(alg: HashAlg, key: &[u8], data: &[u8]) -> SecretBytes {
    let k = hmac::Key::new(hmac_alg(alg), key);
    SecretBytes::from_slice(hmac::sign(&k, data).as_ref())
}

/// Checks `tag == HMAC-alg(key, data)` in constant time.
pub fn hmac_verify(alg: HashAlg, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
    let k = hmac::Key::new(hmac_alg(alg), key);
    hmac::verify(&k, data, tag).is_ok()
}

/// HKDF-Extract (RFC 5869 §2.2): `PRK = HMAC(salt, ikm)`. The salt is used as given (SPDM passes
/// H zero bytes, or the "derived" secret).
pub fn hkdf_extract(alg: HashAlg, salt: &[u8], ikm: &[u8]) -> SecretBytes {
    hmac(alg, salt, ikm)
}

/// HKDF-Expand (RFC 5869 §2.3) of `prk` with `info` to `len` bytes (`len <= 255 * H`).
pub fn hkdf_expand(alg: HashAlg, prk: &[u8], info: &[u8], len: usize) -> Result<SecretBytes> {
    let h = alg.len();
    if len > 255 * h {
        return Err(Error::ApiMisuse("HKDF-Expand output longer than 255*H"));
    }
    let key = hmac::Key::new(hmac_alg(alg), prk);
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut prev: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut counter: u8 = 1;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&prev);
        ctx.update(info);
        ctx.update(&[counter]);
        let t = ctx.sign();
        let take = (len - out.len()).min(h);
        out.extend_from_slice(t.as_ref().get(..take).unwrap_or(&[]));
        prev = Zeroizing::new(t.as_ref().to_vec());
        counter = counter.wrapping_add(1);
    }
    Ok(SecretBytes(out))
}

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/// Handle on the operating system's CSPRNG.
#[derive(Clone)]
pub struct Rng(ring::rand::SystemRandom);

impl Rng {
    /// The system RNG.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&self, buf: &mut [u8]) -> Result<()> {
        self.0
            .fill(buf)
            .map_err(|_| Error::Crypto("system RNG failed"))
    }

    /// A fresh 32-byte nonce (SPDM nonces, Random fields, TDISP nonces).
    pub fn nonce32(&self) -> Result<[u8; 32]> {
        let mut n = [0u8; 32];
        self.fill(&mut n)?;
        Ok(n)
    }

    pub(crate) fn ring(&self) -> &ring::rand::SystemRandom {
        &self.0
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rng(system)")
    }
}

// ---------------------------------------------------------------------------------------------
// SPDM 1.2+ signatures
// ---------------------------------------------------------------------------------------------

/// Signing context of CHALLENGE_AUTH from the responder.
pub const CTX_CHALLENGE_AUTH: &str = "responder-challenge_auth signing";
/// Signing context of CHALLENGE_AUTH from the requester (mutual authentication).
pub const CTX_MUT_CHALLENGE_AUTH: &str = "requester-challenge_auth signing";
/// Signing context of MEASUREMENTS.
pub const CTX_MEASUREMENTS: &str = "responder-measurements signing";
/// Signing context of KEY_EXCHANGE_RSP.
pub const CTX_KEY_EXCHANGE_RSP: &str = "responder-key_exchange_rsp signing";
/// Signing context of FINISH (mutual authentication).
pub const CTX_FINISH: &str = "requester-finish signing";
/// Signing context of ENDPOINT_INFO from the responder (1.3).
pub const CTX_ENDPOINT_INFO: &str = "responder-endpoint_info signing";
/// Signing context of ENDPOINT_INFO from the requester (1.3, encapsulated).
pub const CTX_MUT_ENDPOINT_INFO: &str = "requester-endpoint_info signing";

/// Length of the combined SPDM prefix.
pub const SIGNING_PREFIX_LEN: usize = 100;
const CONTEXT_FIELD_LEN: usize = 36;

/// The 100-byte `combined_spdm_prefix`: `"dmtf-spdm-v1.N.*"` ×4 ‖ zero pad ‖ `context`.
/// Fails if `context` is longer than 36 bytes.
pub fn signing_prefix(version: SpdmVersion, context: &str) -> Result<[u8; SIGNING_PREFIX_LEN]> {
    let ver: &[u8; 16] = match version {
        SpdmVersion::V12 => b"dmtf-spdm-v1.2.*",
        SpdmVersion::V13 => b"dmtf-spdm-v1.3.*",
    };
    let ctx = context.as_bytes();
    let pad = CONTEXT_FIELD_LEN
        .checked_sub(ctx.len())
        .ok_or(Error::ApiMisuse("signing context longer than 36 bytes"))?;
    let mut out = [0u8; SIGNING_PREFIX_LEN];
    for chunk in out.chunks_exact_mut(16).take(4) {
        chunk.copy_from_slice(ver);
    }
    let start = 64 + pad;
    out.get_mut(start..)
        .ok_or(Error::ApiMisuse("signing context longer than 36 bytes"))?
        .copy_from_slice(ctx);
    Ok(out)
}

/// The exact bytes an SPDM 1.2+ signature covers: `combined_spdm_prefix ‖ transcript_hash`.
pub fn signed_message(
    version: SpdmVersion,
    context: &str,
    transcript_hash: &[u8],
) -> Result<Vec<u8>> {
    let prefix = signing_prefix(version, context)?;
    let mut m = Vec::with_capacity(SIGNING_PREFIX_LEN + transcript_hash.len());
    m.extend_from_slice(&prefix);
    m.extend_from_slice(transcript_hash);
    Ok(m)
}

/// An ECDSA private key (PKCS#8 v1/v2, named curve) for signing SPDM messages.
pub struct SigningKey {
    asym: AsymAlg,
    pair: signature::EcdsaKeyPair,
}

const fn signing_alg(asym: AsymAlg) -> &'static signature::EcdsaSigningAlgorithm {
    match asym {
        AsymAlg::EcdsaP256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        AsymAlg::EcdsaP384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
    }
}

const fn verify_alg(asym: AsymAlg) -> &'static signature::EcdsaVerificationAlgorithm {
    match asym {
        AsymAlg::EcdsaP256 => &signature::ECDSA_P256_SHA256_FIXED,
        AsymAlg::EcdsaP384 => &signature::ECDSA_P384_SHA384_FIXED,
    }
}

impl SigningKey {
    /// Loads a PKCS#8 DER private key for `asym`; fails if the curve differs or the key is invalid.
    pub fn from_pkcs8(asym: AsymAlg, pkcs8_der: &[u8], rng: &Rng) -> Result<Self> {
        let pair = signature::EcdsaKeyPair::from_pkcs8(signing_alg(asym), pkcs8_der, rng.ring())
            .map_err(|_| Error::Crypto("PKCS#8 key rejected (wrong curve or malformed)"))?;
        Ok(Self { asym, pair })
    }

    /// Generates a fresh key and returns it with its PKCS#8 DER encoding (zeroized on drop).
    pub fn generate(asym: AsymAlg, rng: &Rng) -> Result<(Self, Zeroizing<Vec<u8>>)> {
        let doc = signature::EcdsaKeyPair::generate_pkcs8(signing_alg(asym), rng.ring())
            .map_err(|_| Error::Crypto("ECDSA key generation failed"))?;
        let der = Zeroizing::new(doc.as_ref().to_vec());
        let key = Self::from_pkcs8(asym, &der, rng)?;
        Ok((key, der))
    }

    /// The signature algorithm.
    pub fn asym(&self) -> AsymAlg {
        self.asym
    }

    /// The public key as an uncompressed SEC1 point (`0x04 ‖ X ‖ Y`).
    pub fn public_key_sec1(&self) -> &[u8] {
        use signature::KeyPair;
        self.pair.public_key().as_ref()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("asym", &self.asym)
            .field("private", &"<redacted>")
            .finish()
    }
}

/// Signs `combined_spdm_prefix(version, context) ‖ transcript_hash` with `key`; returns raw
/// `r ‖ s` ([`AsymAlg::sig_len`] bytes). The message is hashed with the curve's hash
/// (SHA-256 for P-256, SHA-384 for P-384), so the negotiated BaseHashAlgo must match the curve.
pub fn sign(
    key: &SigningKey,
    rng: &Rng,
    version: SpdmVersion,
    context: &str,
    transcript_hash: &[u8],
) -> Result<Vec<u8>> {
    let msg = signed_message(version, context, transcript_hash)?;
    let sig = key
        .pair
        .sign(rng.ring(), &msg)
        .map_err(|_| Error::Crypto("ECDSA signing failed"))?;
    Ok(sig.as_ref().to_vec())
}

/// Verifies a raw `r ‖ s` signature over `combined_spdm_prefix(version, context) ‖
/// transcript_hash` with an uncompressed SEC1 public key (`0x04 ‖ X ‖ Y`, e.g. a certificate's
/// subjectPublicKey). `what` names the signed message in the error.
pub fn verify(
    asym: AsymAlg,
    public_key_sec1: &[u8],
    version: SpdmVersion,
    context: &str,
    transcript_hash: &[u8],
    sig: &[u8],
    what: &'static str,
) -> Result<()> {
    if sig.len() != asym.sig_len() {
        return Err(Malformed::BadLength { what: "signature" }.into());
    }
    let msg = signed_message(version, context, transcript_hash)?;
    signature::UnparsedPublicKey::new(verify_alg(asym), public_key_sec1)
        .verify(&msg, sig)
        .map_err(|_| PeerMisbehaved::BadSignature { what }.into())
}

// ---------------------------------------------------------------------------------------------
// ECDHE
// ---------------------------------------------------------------------------------------------

const fn agreement_alg(group: DheGroup) -> &'static agreement::Algorithm {
    match group {
        DheGroup::Secp256r1 => &agreement::ECDH_P256,
        DheGroup::Secp384r1 => &agreement::ECDH_P384,
    }
}

/// An ephemeral ECDHE key pair for one KEY_EXCHANGE. Single use: [`EphemeralDhe::agree`]
/// consumes it.
pub struct EphemeralDhe {
    group: DheGroup,
    private: agreement::EphemeralPrivateKey,
    exchange: Vec<u8>,
}

impl EphemeralDhe {
    /// Generates a key pair for `group`.
    pub fn generate(group: DheGroup, rng: &Rng) -> Result<Self> {
        let private = agreement::EphemeralPrivateKey::generate(agreement_alg(group), rng.ring())
            .map_err(|_| Error::Crypto("ECDHE key generation failed"))?;
        let public = private
            .compute_public_key()
            .map_err(|_| Error::Crypto("ECDHE public key computation failed"))?;
        // ring returns the uncompressed SEC1 point 0x04 ‖ X ‖ Y; SPDM sends X ‖ Y.
        let exchange = public
            .as_ref()
            .get(1..)
            .filter(|x| x.len() == group.exchange_len())
            .ok_or(Error::Crypto("unexpected ECDHE public key encoding"))?
            .to_vec();
        Ok(Self {
            group,
            private,
            exchange,
        })
    }

    /// The group.
    pub fn group(&self) -> DheGroup {
        self.group
    }

    /// Our ExchangeData: `X ‖ Y`, [`DheGroup::exchange_len`] bytes.
    pub fn exchange_data(&self) -> &[u8] {
        &self.exchange
    }

    /// Computes the shared secret (the X coordinate, 32 or 48 bytes) with the peer's
    /// ExchangeData `X ‖ Y`. A wrong length is [`Malformed::BadLength`]; a point that is not on
    /// the curve is [`Malformed::UnknownValue`] naming ExchangeData.
    pub fn agree(self, peer_exchange: &[u8]) -> Result<SecretBytes> {
        if peer_exchange.len() != self.group.exchange_len() {
            return Err(Malformed::BadLength {
                what: "ExchangeData",
            }
            .into());
        }
        let mut point = Vec::with_capacity(peer_exchange.len() + 1);
        point.push(0x04);
        point.extend_from_slice(peer_exchange);
        let peer = agreement::UnparsedPublicKey::new(agreement_alg(self.group), point);
        agreement::agree_ephemeral(self.private, &peer, SecretBytes::from_slice).map_err(|_| {
            Malformed::UnknownValue {
                what: "ExchangeData (not a point on the curve)",
                value: 0,
            }
            .into()
        })
    }
}

impl fmt::Debug for EphemeralDhe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EphemeralDhe")
            .field("group", &self.group)
            .field("private", &"<redacted>")
            .finish()
    }
}
