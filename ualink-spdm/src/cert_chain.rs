//! SPDM certificate chains: the wire format, the root-hash check, and verification of the
//! X.509 chain to configured trust anchors.
//!
//! # Wire format (DSP0274 "Certificate chain format")
//!
//! ```text
//! offset  size  field
//! 0       2     Length      u16 LE, total length of the chain including this header
//! 2       2     Reserved    must be zero
//! 4       H     RootHash    Hash(DER of the root certificate), H = negotiated BaseHashAlgo length
//! 4+H     ...   Certificates, DER, concatenated, root first, leaf last
//! ```
//!
//! [`SpdmCertChain::parse`] is strict: `Length` must equal the buffer length, the reserved
//! field must be zero, the certificates are split by the definite DER length of each outer
//! `SEQUENCE` (minimal length encoding only), there may be no bytes after the last
//! certificate, and the root hash must match. It does not interpret the certificates.
//!
//! # Verification policy (`std`: [`TrustAnchors`])
//!
//! A chain `[c0 (root), c1, ..., cn-1 (leaf)]` with `2 <= n <= MAX_CERTS` is accepted only if:
//! * every certificate parses as X.509 v3 with no trailing bytes and no duplicate
//!   extensions, and its unsigned outer layer is strict DER checked byte for byte (tags,
//!   minimal lengths, `signatureAlgorithm` identical to the signed TBS `signature` field, a
//!   BIT STRING signature with no unused bits), so no re-encoding of a signed certificate
//!   verifies (x509-parser alone accepts e.g. a wrong tag on the outer algorithm OID);
//! * the root equals a configured trust anchor: identical DER, or identical
//!   `SubjectPublicKeyInfo` (so a re-issued root with the same key is still trusted);
//! * `ci.issuer == c(i-1).subject` byte for byte (the root is self-issued), and `ci` carries
//!   a valid ECDSA signature by `c(i-1)`'s key (the root by its own key, unless it is
//!   byte-identical to a configured anchor, which is trusted as configured: an n-certificate
//!   chain then costs n-1 ECDSA verifications). Supported:
//!   ecdsa-with-SHA256 / ecdsa-with-SHA384 by a P-256 or P-384 key, parameters absent;
//! * `notBefore <= now <= notAfter` for every certificate;
//! * every CA (all but the leaf) has basicConstraints with `cA = TRUE`, and its
//!   `pathLenConstraint`, when present, is at least the number of CAs below it (excluding the
//!   leaf); if it has keyUsage, keyCertSign is set;
//! * the leaf is not a CA (no basicConstraints, or basicConstraints without `cA`); it has
//!   keyUsage with digitalSignature (mandatory for SPDM leaves, as libspdm checks); if it has
//!   extendedKeyUsage and names an SPDM EKU, the
//!   one for the peer's role is among them (a responder leaf carrying only
//!   `id-DMTF-eku-requester-auth` 1.3.6.1.4.1.412.274.4 is refused, and vice versa with
//!   `id-DMTF-eku-responder-auth` .3). A leaf without SPDM EKUs (e.g. only serverAuth/clientAuth,
//!   like libspdm's sample chains) is accepted;
//! * basicConstraints is DER: `SEQUENCE { cA BOOLEAN (0xFF) OPTIONAL, pathLen INTEGER OPTIONAL }`.
//!   An explicitly encoded `cA = FALSE` (`30 03 01 01 00`) is a DER violation (X.690 §11.5:
//!   DEFAULT values are not encoded) and is rejected; an empty `SEQUENCE {}` is the DER for
//!   "not a CA" and is accepted (it is what OpenSSL, rcgen and libspdm's sample leaves carry).
//!   Note: libspdm 3.1's `libspdm_verify_leaf_cert_basic_constraints` accepts both encodings,
//!   so a chain libspdm accepts can be refused here for this reason alone;
//! * no certificate has a critical extension we do not process (basicConstraints, keyUsage,
//!   extendedKeyUsage, subjectKeyIdentifier, authorityKeyIdentifier, subjectAltName);
//! * the leaf's key is on the curve of the negotiated BaseAsymAlgo.
//!
//! On CAs an absent keyUsage means "no restriction" (RFC 5280 §4.2.1.3); libspdm's sample
//! roots have none.
//! Each failure is its own [`CertError`] variant, carrying the index of the certificate.

use alloc::string::String;
use alloc::vec::Vec;

use crate::algo::{AsymAlg, HashAlg};

/// The most certificates a chain may hold (a bound on work done for a peer).
pub const MAX_CERTS: usize = 8;

/// Object identifier (dotted) of `id-DMTF-eku-responder-auth`.
pub const OID_EKU_SPDM_RESPONDER_AUTH: &str = "1.3.6.1.4.1.412.274.3";
/// Object identifier (dotted) of `id-DMTF-eku-requester-auth`.
pub const OID_EKU_SPDM_REQUESTER_AUTH: &str = "1.3.6.1.4.1.412.274.4";

/// Why a certificate chain was rejected. `index` counts from the root (0).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The chain is empty.
    #[error("empty certificate chain")]
    Empty,
    /// The chain is shorter than its header and root hash.
    #[error("certificate chain truncated in its header")]
    Truncated,
    /// The chain's Length field differs from the bytes received.
    #[error("certificate chain Length field {declared} does not match its size {actual}")]
    LengthMismatch {
        /// The Length field.
        declared: u16,
        /// The number of bytes received.
        actual: usize,
    },
    /// The chain's reserved field is not zero.
    #[error("certificate chain reserved field is not zero")]
    ReservedNonZero,
    /// The chain would not fit the 16-bit Length field.
    #[error("certificate chain longer than 65535 bytes")]
    TooLong,
    /// More certificates than [`MAX_CERTS`].
    #[error("more than {MAX_CERTS} certificates in the chain")]
    TooManyCertificates,
    /// Fewer than two certificates (a chain needs a root and a leaf).
    #[error("a chain needs at least a root and a leaf certificate")]
    TooFewCertificates,
    /// Certificate `index` is not a well-formed DER/X.509 certificate (or bytes trail the chain).
    #[error("certificate {index} is malformed")]
    Malformed {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index` is not X.509 version 3.
    #[error("certificate {index} is not X.509 v3")]
    NotV3 {
        /// Position in the chain.
        index: usize,
    },
    /// The RootHash field is not the hash of the root certificate.
    #[error("root hash does not match the root certificate")]
    RootHashMismatch,
    /// The root certificate is not one of the configured trust anchors.
    #[error("root certificate is not a configured trust anchor")]
    UntrustedRoot,
    /// Certificate `index`'s issuer is not the subject of the certificate above it.
    #[error("certificate {index}: issuer does not match the subject of its parent")]
    IssuerMismatch {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index`'s signature does not verify with its issuer's key.
    #[error("certificate {index}: signature does not verify")]
    BadSignature {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index` uses a signature algorithm we do not accept.
    #[error("certificate {index}: unsupported signature algorithm")]
    UnsupportedSignatureAlgorithm {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index` carries a key type/curve we do not support.
    #[error("certificate {index}: unsupported public key algorithm")]
    UnsupportedKeyAlgorithm {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index` expired before the verification time.
    #[error("certificate {index} has expired")]
    Expired {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index` is not valid yet at the verification time.
    #[error("certificate {index} is not yet valid")]
    NotYetValid {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index` signs another certificate but is not a CA.
    #[error("certificate {index} issues certificates but is not a CA")]
    NotCa {
        /// Position in the chain.
        index: usize,
    },
    /// Certificate `index`'s basicConstraints is not DER (e.g. an explicit cA=FALSE).
    #[error("certificate {index}: basicConstraints is not valid DER")]
    NonDerBasicConstraints {
        /// Position in the chain.
        index: usize,
    },
    /// CA certificate `index` has more CAs below it than its pathLenConstraint allows.
    #[error("certificate {index}: pathLenConstraint exceeded")]
    PathLenExceeded {
        /// Position in the chain.
        index: usize,
    },
    /// The leaf certificate is a CA.
    #[error("the leaf certificate is a CA")]
    LeafIsCa,
    /// Certificate `index`'s keyUsage does not allow its role in the chain.
    #[error("certificate {index}: keyUsage does not allow its use")]
    BadKeyUsage {
        /// Position in the chain.
        index: usize,
    },
    /// The leaf's SPDM extended key usage is for the other role.
    #[error("leaf SPDM extendedKeyUsage does not allow the peer's role")]
    WrongEku,
    /// Certificate `index` has a critical extension we do not process.
    #[error("certificate {index}: unknown critical extension")]
    UnknownCriticalExtension {
        /// Position in the chain.
        index: usize,
    },
    /// The leaf key is not on the curve of the negotiated BaseAsymAlgo.
    #[error("leaf key does not match the negotiated algorithm {negotiated:?}")]
    LeafAlgorithmMismatch {
        /// The negotiated algorithm.
        negotiated: AsymAlg,
    },
    /// A configured trust anchor could not be parsed.
    #[error("trust anchor is not a valid certificate")]
    BadTrustAnchor,
    /// The local clock could not be read.
    #[error("system clock unavailable")]
    NoClock,
}

/// A parsed SPDM certificate chain, borrowing the received bytes.
///
/// Exists only if the structure was valid and the root hash matched (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpdmCertChain<'a> {
    bytes: &'a [u8],
    hash: HashAlg,
    root_hash: &'a [u8],
    certs: &'a [u8],
    count: usize,
}

impl<'a> SpdmCertChain<'a> {
    /// Parses a whole SPDM certificate chain for the negotiated hash `hash`, checking the
    /// Length, the reserved field, the DER framing of every certificate and the root hash.
    pub fn parse(bytes: &'a [u8], hash: HashAlg) -> Result<Self, CertError> {
        if bytes.is_empty() {
            return Err(CertError::Empty);
        }
        let hdr_len = 4usize.checked_add(hash.len()).ok_or(CertError::Truncated)?;
        let (hdr, rest) = bytes.split_at_checked(4).ok_or(CertError::Truncated)?;
        let declared = u16::from_le_bytes([
            *hdr.first().ok_or(CertError::Truncated)?,
            *hdr.get(1).ok_or(CertError::Truncated)?,
        ]);
        if usize::from(declared) != bytes.len() {
            return Err(CertError::LengthMismatch {
                declared,
                actual: bytes.len(),
            });
        }
        if hdr.get(2..4).is_none_or(|r| r.iter().any(|b| *b != 0)) {
            return Err(CertError::ReservedNonZero);
        }
        if bytes.len() < hdr_len {
            return Err(CertError::Truncated);
        }
        let (root_hash, certs) = rest
            .split_at_checked(hash.len())
            .ok_or(CertError::Truncated)?;
        let count = count_certs(certs)?;
        let root = first_cert(certs)?;
        let digest = digest(hash, root);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(digest.as_ref(), root_hash)) {
            return Err(CertError::RootHashMismatch);
        }
        Ok(Self {
            bytes,
            hash,
            root_hash,
            certs,
            count,
        })
    }

    /// The whole chain as received (what the transcript and DIGESTS hash).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The hash algorithm the chain was parsed for.
    pub fn hash(&self) -> HashAlg {
        self.hash
    }

    /// The RootHash field (already checked against the root).
    pub fn root_hash(&self) -> &'a [u8] {
        self.root_hash
    }

    /// The concatenated DER certificates, root first (input for [`ChainVerifier`]).
    pub fn certs_der(&self) -> &'a [u8] {
        self.certs
    }

    /// Number of certificates (at least one).
    pub fn cert_count(&self) -> usize {
        self.count
    }

    /// Iterates over the DER certificates, root first.
    pub fn certs(&self) -> DerCerts<'a> {
        DerCerts { rest: self.certs }
    }
}

/// Iterator over concatenated DER certificates, produced by [`SpdmCertChain::certs`] or
/// [`split_certs`]. Stops at the first element that does not frame.
#[derive(Debug, Clone)]
pub struct DerCerts<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DerCerts<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = der_sequence_len(self.rest)?;
        let (cert, rest) = self.rest.split_at_checked(len)?;
        self.rest = rest;
        Some(cert)
    }
}

/// Splits concatenated DER certificates (root first) into a list, strictly: every byte
/// must belong to a certificate, and there are 1..=[`MAX_CERTS`] of them.
pub fn split_certs(certs_der: &[u8]) -> Result<Vec<&[u8]>, CertError> {
    count_certs(certs_der)?;
    Ok(DerCerts { rest: certs_der }.collect())
}

/// Encodes an SPDM certificate chain (header, root hash, certificates) for `hash`.
/// `certs` are DER certificates, root first; each must frame as one DER SEQUENCE.
pub fn encode_spdm_cert_chain<C: AsRef<[u8]>>(
    hash: HashAlg,
    certs: &[C],
) -> Result<Vec<u8>, CertError> {
    let root = certs.first().ok_or(CertError::Empty)?.as_ref();
    if certs.len() > MAX_CERTS {
        return Err(CertError::TooManyCertificates);
    }
    for (index, c) in certs.iter().enumerate() {
        if der_sequence_len(c.as_ref()) != Some(c.as_ref().len()) {
            return Err(CertError::Malformed { index });
        }
    }
    let total = certs
        .iter()
        .try_fold(4usize.saturating_add(hash.len()), |acc, c| {
            acc.checked_add(c.as_ref().len())
        })
        .ok_or(CertError::TooLong)?;
    let len = u16::try_from(total).map_err(|_| CertError::TooLong)?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(digest(hash, root).as_ref());
    for c in certs {
        out.extend_from_slice(c.as_ref());
    }
    Ok(out)
}

/// Hash of a whole SPDM chain as DIGESTS reports it, with the negotiated hash.
pub fn chain_digest(hash: HashAlg, chain: &[u8]) -> Vec<u8> {
    digest(hash, chain).as_ref().to_vec()
}

fn digest(hash: HashAlg, data: &[u8]) -> ring::digest::Digest {
    let alg = match hash {
        HashAlg::Sha256 => &ring::digest::SHA256,
        HashAlg::Sha384 => &ring::digest::SHA384,
    };
    ring::digest::digest(alg, data)
}

fn first_cert(certs: &[u8]) -> Result<&[u8], CertError> {
    let len = der_sequence_len(certs).ok_or(CertError::Malformed { index: 0 })?;
    certs.get(..len).ok_or(CertError::Malformed { index: 0 })
}

/// Counts the certificates in `certs`, failing on the first that does not frame exactly.
fn count_certs(mut certs: &[u8]) -> Result<usize, CertError> {
    if certs.is_empty() {
        return Err(CertError::Empty);
    }
    let mut index = 0usize;
    while !certs.is_empty() {
        if index >= MAX_CERTS {
            return Err(CertError::TooManyCertificates);
        }
        let len = der_sequence_len(certs).ok_or(CertError::Malformed { index })?;
        certs = certs.get(len..).ok_or(CertError::Malformed { index })?;
        index = index.saturating_add(1);
    }
    Ok(index)
}

/// Length (header + contents) of the DER `SEQUENCE` at the start of `buf`, if it is a
/// constructed SEQUENCE with a minimal definite length that fits in `buf`.
fn der_sequence_len(buf: &[u8]) -> Option<usize> {
    if *buf.first()? != 0x30 {
        return None;
    }
    let (hdr, content) = der_length(buf.get(1..)?)?;
    let total = hdr.checked_add(1)?.checked_add(content)?;
    (total <= buf.len()).then_some(total)
}

#[cfg(any(feature = "std", test))]
/// One DER TLV: its tag, the whole encoding, its contents and what follows it.
struct Tlv<'a> {
    tag: u8,
    whole: &'a [u8],
    contents: &'a [u8],
    rest: &'a [u8],
}

#[cfg(any(feature = "std", test))]
/// Splits the DER TLV at the start of `buf` (single-byte tag, minimal definite length).
fn der_tlv(buf: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = buf.split_first()?;
    // High-tag-number form is never used in certificates' outer structure.
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (hdr, len) = der_length(after_tag)?;
    let start = hdr.checked_add(1)?;
    let end = start.checked_add(len)?;
    Some(Tlv {
        tag,
        whole: buf.get(..end)?,
        contents: buf.get(start..end)?,
        rest: buf.get(end..)?,
    })
}

#[cfg(any(feature = "std", test))]
/// [`der_tlv`] that also requires `tag`.
fn der_expect(buf: &[u8], tag: u8) -> Option<Tlv<'_>> {
    der_tlv(buf).filter(|t| t.tag == tag)
}

/// Checks the unsigned outer layer of a DER certificate byte for byte, so that no
/// re-encoding of the same signed TBS verifies:
/// `SEQUENCE { tbs SEQUENCE, signatureAlgorithm SEQUENCE, signature BIT STRING (0 unused) }`
/// with `signatureAlgorithm` identical to the TBS `signature` field (after `[0] version` and
/// `serialNumber`).
#[cfg(any(feature = "std", test))]
fn outer_der_is_strict(cert: &[u8]) -> bool {
    fn check(cert: &[u8]) -> Option<()> {
        let outer = der_expect(cert, 0x30)?;
        outer.rest.is_empty().then_some(())?;
        let tbs = der_expect(outer.contents, 0x30)?;
        let sig_alg = der_expect(tbs.rest, 0x30)?;
        let sig = der_expect(sig_alg.rest, 0x03)?;
        (sig.rest.is_empty() && sig.contents.first() == Some(&0)).then_some(())?;
        let version = der_expect(tbs.contents, 0xA0)?;
        let serial = der_expect(version.rest, 0x02)?;
        let tbs_sig_alg = der_tlv(serial.rest)?;
        (tbs_sig_alg.whole == sig_alg.whole).then_some(())
    }
    check(cert).is_some()
}

/// Decodes a DER length at the start of `buf`: returns (bytes used, content length).
/// Rejects indefinite lengths, non-minimal encodings and lengths over 4 bytes.
fn der_length(buf: &[u8]) -> Option<(usize, usize)> {
    let first = *buf.first()?;
    if first < 0x80 {
        return Some((1, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let bytes = buf.get(1..n.checked_add(1)?)?;
    if *bytes.first()? == 0 {
        return None;
    }
    let len = bytes
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    if len < 0x80 {
        return None;
    }
    Some((n.checked_add(1)?, len))
}

/// Which role the certificate's owner plays, deciding which SPDM EKU its leaf must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// The chain belongs to a responder (the requester verifies it).
    Responder,
    /// The chain belongs to a requester (mutual authentication).
    Requester,
}

/// Proof that a chain verified: produced by a [`ChainVerifier`].
///
/// Holds the leaf's public key (SEC1 uncompressed point, `04 || X || Y`), its algorithm and
/// the subjects of the chain, root first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    leaf_public_key: Vec<u8>,
    asym: AsymAlg,
    subjects: Vec<String>,
}

impl VerifiedChain {
    /// Builds the proof token. Only a [`ChainVerifier`] that has checked the chain should
    /// call this; the engine trusts `leaf_public_key` for signature verification.
    pub fn new(leaf_public_key: Vec<u8>, asym: AsymAlg, subjects: Vec<String>) -> Self {
        Self {
            leaf_public_key,
            asym,
            subjects,
        }
    }

    /// The leaf's public key as an uncompressed SEC1 point.
    pub fn leaf_public_key(&self) -> &[u8] {
        &self.leaf_public_key
    }

    /// The signature algorithm of the leaf key (the negotiated one).
    pub fn asym(&self) -> AsymAlg {
        self.asym
    }

    /// The subject names of the chain, root first, in RFC 4514-like text.
    pub fn subjects(&self) -> &[String] {
        &self.subjects
    }
}

/// Verifies a peer's certificate chain. `no_std`: the engine calls it through this trait;
/// [`TrustAnchors`] is the X.509 implementation.
pub trait ChainVerifier {
    /// Verifies `certs_der` (concatenated DER certificates, root first: see
    /// [`SpdmCertChain::certs_der`]) for a peer in `role`, whose leaf key must be for `asym`.
    fn verify_for_role(
        &self,
        certs_der: &[u8],
        asym: AsymAlg,
        role: PeerRole,
    ) -> Result<VerifiedChain, CertError>;

    /// Verifies a responder's chain (the requester's usual case).
    fn verify(&self, certs_der: &[u8], asym: AsymAlg) -> Result<VerifiedChain, CertError> {
        self.verify_for_role(certs_der, asym, PeerRole::Responder)
    }
}

#[cfg(feature = "std")]
pub use x509::{TrustAnchors, VerifyTime};

#[cfg(feature = "std")]
mod x509 {
    use super::{
        split_certs, AsymAlg, CertError, ChainVerifier, PeerRole, VerifiedChain, MAX_CERTS,
        OID_EKU_SPDM_REQUESTER_AUTH, OID_EKU_SPDM_RESPONDER_AUTH,
    };
    use std::collections::HashSet;
    use std::string::{String, ToString};
    use std::vec::Vec;

    use x509_parser::certificate::X509Certificate;
    use x509_parser::prelude::FromDer;
    use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

    const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    const OID_P256: &str = "1.2.840.10045.3.1.7";
    const OID_P384: &str = "1.3.132.0.34";
    const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";
    const OID_ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";
    const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
    const OID_KEY_USAGE: &str = "2.5.29.15";
    const OID_EXT_KEY_USAGE: &str = "2.5.29.37";
    /// Extensions we understand (and may therefore be critical).
    const KNOWN_EXTENSIONS: [&str; 6] = [
        OID_BASIC_CONSTRAINTS,
        OID_KEY_USAGE,
        OID_EXT_KEY_USAGE,
        "2.5.29.14", // subjectKeyIdentifier
        "2.5.29.35", // authorityKeyIdentifier
        "2.5.29.17", // subjectAltName (identity only; never used for authorization)
    ];

    /// When to evaluate certificate validity periods.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum VerifyTime {
        /// The system clock at each verification.
        SystemClock,
        /// A fixed time, Unix seconds (tests, offline replays).
        Fixed(u64),
    }

    #[derive(Debug, Clone)]
    struct Anchor {
        der: Vec<u8>,
        spki: Vec<u8>,
    }

    /// Trusted roots plus the clock: the X.509 [`ChainVerifier`] (policy in the module docs).
    #[derive(Debug, Clone)]
    pub struct TrustAnchors {
        anchors: Vec<Anchor>,
        time: VerifyTime,
    }

    impl Default for TrustAnchors {
        fn default() -> Self {
            Self::new()
        }
    }

    impl TrustAnchors {
        /// No anchors (every chain is untrusted), system clock.
        pub fn new() -> Self {
            Self {
                anchors: Vec::new(),
                time: VerifyTime::SystemClock,
            }
        }

        /// Evaluates validity at `time` instead.
        pub fn with_time(mut self, time: VerifyTime) -> Self {
            self.time = time;
            self
        }

        /// Adds one DER root certificate.
        pub fn add_der(&mut self, der: &[u8]) -> Result<(), CertError> {
            let (rest, cert) =
                X509Certificate::from_der(der).map_err(|_| CertError::BadTrustAnchor)?;
            if !rest.is_empty() {
                return Err(CertError::BadTrustAnchor);
            }
            let spki = cert.public_key().raw.to_vec();
            self.anchors.push(Anchor {
                der: der.to_vec(),
                spki,
            });
            Ok(())
        }

        /// Adds every certificate in `bytes`: PEM (one or more `CERTIFICATE` blocks) or one
        /// DER certificate. Fails if nothing was added or any block is not a certificate.
        pub fn add_pem_or_der(&mut self, bytes: &[u8]) -> Result<(), CertError> {
            if bytes.first() == Some(&0x30) {
                return self.add_der(bytes);
            }
            let blocks = pem::parse_many(bytes).map_err(|_| CertError::BadTrustAnchor)?;
            if blocks.is_empty() {
                return Err(CertError::BadTrustAnchor);
            }
            for b in blocks {
                if b.tag() != "CERTIFICATE" {
                    return Err(CertError::BadTrustAnchor);
                }
                self.add_der(b.contents())?;
            }
            Ok(())
        }

        /// Number of configured anchors.
        pub fn len(&self) -> usize {
            self.anchors.len()
        }

        /// True if no anchor is configured.
        pub fn is_empty(&self) -> bool {
            self.anchors.is_empty()
        }

        fn now(&self) -> Result<u64, CertError> {
            match self.time {
                VerifyTime::Fixed(t) => Ok(t),
                VerifyTime::SystemClock => std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .map_err(|_| CertError::NoClock),
            }
        }

        /// Verifies `certs_der` (root first) at `now_unix` under the module's policy and
        /// returns the leaf key.
        pub fn verify_at(
            &self,
            certs_der: &[u8],
            asym: AsymAlg,
            role: PeerRole,
            now_unix: u64,
        ) -> Result<VerifiedChain, CertError> {
            let ders = split_certs(certs_der)?;
            if ders.len() < 2 {
                return Err(CertError::TooFewCertificates);
            }
            if ders.len() > MAX_CERTS {
                return Err(CertError::TooManyCertificates);
            }
            let mut certs = Vec::with_capacity(ders.len());
            for (index, der) in ders.iter().enumerate() {
                certs.push(parse_cert(der, index)?);
            }
            let (root_der, root) = match (ders.first(), certs.first()) {
                (Some(d), Some(c)) => (*d, c),
                _ => return Err(CertError::TooFewCertificates),
            };
            let root_spki = root.public_key().raw;
            // A root byte-identical to a configured anchor is trusted as configured; one that
            // only shares the anchor's key must prove it with its self-signature.
            let root_is_anchor = self.anchors.iter().any(|a| a.der == root_der);
            if !root_is_anchor && !self.anchors.iter().any(|a| a.spki == root_spki) {
                return Err(CertError::UntrustedRoot);
            }
            let now = i64::try_from(now_unix).unwrap_or(i64::MAX);
            let last = certs.len().saturating_sub(1);
            for (index, cert) in certs.iter().enumerate() {
                let issuer = match index.checked_sub(1) {
                    None => root,
                    Some(p) => certs.get(p).ok_or(CertError::Malformed { index })?,
                };
                if cert.issuer().as_raw() != issuer.subject().as_raw() {
                    return Err(CertError::IssuerMismatch { index });
                }
                if index != 0 || !root_is_anchor {
                    verify_signature(cert, issuer.public_key(), index)?;
                }
                let validity = cert.validity();
                if now < validity.not_before.timestamp() {
                    return Err(CertError::NotYetValid { index });
                }
                if now > validity.not_after.timestamp() {
                    return Err(CertError::Expired { index });
                }
                check_extensions(cert, index)?;
                let bc = basic_constraints(cert, index)?;
                let ku = cert
                    .key_usage()
                    .map_err(|_| CertError::Malformed { index })?;
                if index < last {
                    let Some(bc) = bc.filter(|b| b.ca) else {
                        return Err(CertError::NotCa { index });
                    };
                    // CAs strictly between this one and the leaf.
                    let below = last.saturating_sub(index).saturating_sub(1);
                    if let Some(max) = bc.path_len {
                        if u64::try_from(below).unwrap_or(u64::MAX) > u64::from(max) {
                            return Err(CertError::PathLenExceeded { index });
                        }
                    }
                    if ku.is_some_and(|k| !k.value.key_cert_sign()) {
                        return Err(CertError::BadKeyUsage { index });
                    }
                } else {
                    if bc.is_some_and(|b| b.ca) {
                        return Err(CertError::LeafIsCa);
                    }
                    // DSP0274 makes keyUsage mandatory on a DeviceCert/AliasCert leaf, and
                    // libspdm requires digitalSignature in it.
                    if !ku.is_some_and(|k| k.value.digital_signature()) {
                        return Err(CertError::BadKeyUsage { index });
                    }
                    check_spdm_eku(cert, role, index)?;
                }
            }
            let leaf = certs.last().ok_or(CertError::TooFewCertificates)?;
            let leaf_curve = curve(leaf.public_key(), last)?;
            if leaf_curve != asym {
                return Err(CertError::LeafAlgorithmMismatch { negotiated: asym });
            }
            let key = leaf.public_key().subject_public_key.data.to_vec();
            let expected_len = match asym {
                AsymAlg::EcdsaP256 => 65,
                AsymAlg::EcdsaP384 => 97,
            };
            if key.len() != expected_len || key.first() != Some(&0x04) {
                return Err(CertError::UnsupportedKeyAlgorithm { index: last });
            }
            let subjects = certs.iter().map(|c| c.subject().to_string()).collect();
            Ok(VerifiedChain::new(key, asym, subjects))
        }
    }

    impl ChainVerifier for TrustAnchors {
        fn verify_for_role(
            &self,
            certs_der: &[u8],
            asym: AsymAlg,
            role: PeerRole,
        ) -> Result<VerifiedChain, CertError> {
            self.verify_at(certs_der, asym, role, self.now()?)
        }
    }

    fn parse_cert(der: &[u8], index: usize) -> Result<X509Certificate<'_>, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| CertError::Malformed { index })?;
        if !rest.is_empty() {
            return Err(CertError::Malformed { index });
        }
        if cert.version().0 != 2 {
            return Err(CertError::NotV3 { index });
        }
        if cert.signature_algorithm != cert.tbs_certificate.signature
            || !super::outer_der_is_strict(der)
        {
            return Err(CertError::Malformed { index });
        }
        let mut seen = HashSet::new();
        for ext in cert.extensions() {
            if !seen.insert(ext.oid.to_id_string()) {
                return Err(CertError::Malformed { index });
            }
        }
        Ok(cert)
    }

    fn check_extensions(cert: &X509Certificate<'_>, index: usize) -> Result<(), CertError> {
        for ext in cert.extensions() {
            if ext.critical && !KNOWN_EXTENSIONS.contains(&ext.oid.to_id_string().as_str()) {
                return Err(CertError::UnknownCriticalExtension { index });
            }
        }
        Ok(())
    }

    fn curve(spki: &SubjectPublicKeyInfo<'_>, index: usize) -> Result<AsymAlg, CertError> {
        let unsupported = CertError::UnsupportedKeyAlgorithm { index };
        if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY {
            return Err(unsupported);
        }
        let params = spki
            .algorithm
            .parameters
            .as_ref()
            .ok_or(unsupported.clone())?;
        let oid = params.as_oid().map_err(|_| unsupported.clone())?;
        match oid.to_id_string().as_str() {
            OID_P256 => Ok(AsymAlg::EcdsaP256),
            OID_P384 => Ok(AsymAlg::EcdsaP384),
            _ => Err(unsupported),
        }
    }

    fn sig_hash(alg: &AlgorithmIdentifier<'_>, index: usize) -> Result<bool, CertError> {
        // RFC 5758 §3.2: the parameters of ecdsa-with-SHA* MUST be absent.
        if alg.parameters.is_some() {
            return Err(CertError::UnsupportedSignatureAlgorithm { index });
        }
        match alg.algorithm.to_id_string().as_str() {
            OID_ECDSA_SHA256 => Ok(false),
            OID_ECDSA_SHA384 => Ok(true),
            _ => Err(CertError::UnsupportedSignatureAlgorithm { index }),
        }
    }

    /// Checks `cert`'s signature over its TBS bytes as received, with the issuer's key.
    fn verify_signature(
        cert: &X509Certificate<'_>,
        issuer_spki: &SubjectPublicKeyInfo<'_>,
        index: usize,
    ) -> Result<(), CertError> {
        use ring::signature as sig;
        let sha384 = sig_hash(&cert.signature_algorithm, index)?;
        // The issuer is the certificate above (or the root itself); report its key problem
        // against the certificate being verified.
        let curve = curve(issuer_spki, index)?;
        let alg: &dyn sig::VerificationAlgorithm = match (curve, sha384) {
            (AsymAlg::EcdsaP256, false) => &sig::ECDSA_P256_SHA256_ASN1,
            (AsymAlg::EcdsaP256, true) => &sig::ECDSA_P256_SHA384_ASN1,
            (AsymAlg::EcdsaP384, false) => &sig::ECDSA_P384_SHA256_ASN1,
            (AsymAlg::EcdsaP384, true) => &sig::ECDSA_P384_SHA384_ASN1,
        };
        if cert.signature_value.unused_bits != 0 {
            return Err(CertError::BadSignature { index });
        }
        sig::UnparsedPublicKey::new(alg, &issuer_spki.subject_public_key.data)
            .verify(cert.tbs_certificate.as_ref(), &cert.signature_value.data)
            .map_err(|_| CertError::BadSignature { index })
    }

    struct Bc {
        ca: bool,
        path_len: Option<u32>,
    }

    /// Parses basicConstraints from its raw extension value, strictly DER.
    fn basic_constraints(
        cert: &X509Certificate<'_>,
        index: usize,
    ) -> Result<Option<Bc>, CertError> {
        let Some(ext) = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == OID_BASIC_CONSTRAINTS)
        else {
            return Ok(None);
        };
        parse_basic_constraints_der(ext.value)
            .map(Some)
            .ok_or(CertError::NonDerBasicConstraints { index })
    }

    /// `SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }`
    /// in DER: cA, when present, is `01 01 FF` (an encoded FALSE is a DEFAULT value and
    /// therefore not DER); pathLen is a minimal non-negative INTEGER.
    fn parse_basic_constraints_der(v: &[u8]) -> Option<Bc> {
        let (&tag, rest) = v.split_first()?;
        if tag != 0x30 {
            return None;
        }
        let (&len, mut body) = rest.split_first()?;
        if usize::from(len) != body.len() || len >= 0x80 {
            return None;
        }
        let mut ca = false;
        if body.first() == Some(&0x01) {
            if body.get(..3)? != [0x01, 0x01, 0xFF] {
                return None;
            }
            ca = true;
            body = body.get(3..)?;
        }
        let mut path_len = None;
        if let Some((&tag, rest)) = body.split_first() {
            if tag != 0x02 {
                return None;
            }
            let (&l, rest) = rest.split_first()?;
            let l = usize::from(l);
            if !(1..=4).contains(&l) || rest.len() != l {
                return None;
            }
            let first = *rest.first()?;
            // Negative, or a non-minimal leading zero.
            if first & 0x80 != 0 || (first == 0 && l > 1 && rest.get(1)? & 0x80 == 0) {
                return None;
            }
            path_len = Some(rest.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)));
        }
        Some(Bc { ca, path_len })
    }

    fn check_spdm_eku(
        cert: &X509Certificate<'_>,
        role: PeerRole,
        index: usize,
    ) -> Result<(), CertError> {
        let Some(eku) = cert
            .extended_key_usage()
            .map_err(|_| CertError::Malformed { index })?
        else {
            return Ok(());
        };
        let others: Vec<String> = eku.value.other.iter().map(|o| o.to_id_string()).collect();
        let has_rsp = others.iter().any(|o| o == OID_EKU_SPDM_RESPONDER_AUTH);
        let has_req = others.iter().any(|o| o == OID_EKU_SPDM_REQUESTER_AUTH);
        let ok = match role {
            PeerRole::Responder => has_rsp || !has_req,
            PeerRole::Requester => has_req || !has_rsp,
        };
        if ok {
            Ok(())
        } else {
            Err(CertError::WrongEku)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::parse_basic_constraints_der as p;

        #[test]
        fn basic_constraints_der_strictness() {
            assert!(p(&[0x30, 0x00]).is_some_and(|b| !b.ca && b.path_len.is_none()));
            assert!(p(&[0x30, 0x03, 0x01, 0x01, 0xFF]).is_some_and(|b| b.ca));
            assert!(p(&[0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x00])
                .is_some_and(|b| b.ca && b.path_len == Some(0)));
            // Explicit cA=FALSE is not DER.
            assert!(p(&[0x30, 0x03, 0x01, 0x01, 0x00]).is_none());
            // TRUE must be 0xFF in DER.
            assert!(p(&[0x30, 0x03, 0x01, 0x01, 0x01]).is_none());
            // Non-minimal and negative integers, trailing bytes, wrong lengths.
            assert!(p(&[0x30, 0x07, 0x01, 0x01, 0xFF, 0x02, 0x02, 0x00, 0x01]).is_none());
            assert!(p(&[0x30, 0x06, 0x01, 0x01, 0xFF, 0x02, 0x01, 0x80]).is_none());
            assert!(p(&[0x30, 0x03, 0x01, 0x01, 0xFF, 0x00]).is_none());
            assert!(p(&[0x30, 0x04, 0x01, 0x01, 0xFF]).is_none());
            assert!(p(&[]).is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_are_minimal_and_definite() {
        assert_eq!(der_length(&[0x05]), Some((1, 5)));
        assert_eq!(der_length(&[0x81, 0x80]), Some((2, 0x80)));
        assert_eq!(der_length(&[0x81, 0x7f]), None);
        assert_eq!(der_length(&[0x82, 0x00, 0x80]), None);
        assert_eq!(der_length(&[0x80]), None);
        assert_eq!(der_length(&[0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der_sequence_len(&[0x30, 0x02, 0, 0]), Some(4));
        assert_eq!(der_sequence_len(&[0x30, 0x03, 0, 0]), None);
        assert_eq!(der_sequence_len(&[0x31, 0x00]), None);
    }

    #[test]
    fn outer_layer_must_be_exact() {
        // SEQUENCE { tbs { [0] {INTEGER 2}, INTEGER 1, alg }, alg, BIT STRING 00 AA }
        let alg = [0x30, 0x03, 0x06, 0x01, 0x2a];
        let mut tbs = vec![0xA0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01];
        tbs.extend_from_slice(&alg);
        let build = |outer_alg: &[u8], sig: &[u8]| {
            let mut content = vec![0x30, u8::try_from(tbs.len()).unwrap()];
            content.extend_from_slice(&tbs);
            content.extend_from_slice(outer_alg);
            content.extend_from_slice(sig);
            let mut c = vec![0x30, u8::try_from(content.len()).unwrap()];
            c.extend_from_slice(&content);
            c
        };
        assert!(outer_der_is_strict(&build(&alg, &[0x03, 0x02, 0x00, 0xAA])));
        // Wrong OID tag in the outer algorithm, a different algorithm, unused bits, a
        // non-BIT STRING signature, trailing data.
        assert!(!outer_der_is_strict(&build(
            &[0x30, 0x03, 0x07, 0x01, 0x2a],
            &[0x03, 0x02, 0x00, 0xAA]
        )));
        assert!(!outer_der_is_strict(&build(
            &[0x30, 0x03, 0x06, 0x01, 0x2b],
            &[0x03, 0x02, 0x00, 0xAA]
        )));
        assert!(!outer_der_is_strict(&build(
            &alg,
            &[0x03, 0x02, 0x01, 0xAA]
        )));
        assert!(!outer_der_is_strict(&build(
            &alg,
            &[0x04, 0x02, 0x00, 0xAA]
        )));
        assert!(!outer_der_is_strict(&build(
            &alg,
            &[0x03, 0x02, 0x00, 0xAA, 0x00]
        )));
    }

    #[test]
    fn chain_round_trip_and_strictness() {
        let certs: [&[u8]; 2] = [&[0x30, 0x01, 0xAA], &[0x30, 0x00]];
        let chain = encode_spdm_cert_chain(HashAlg::Sha256, &certs).unwrap();
        assert_eq!(chain.len(), 4 + 32 + 5);
        let parsed = SpdmCertChain::parse(&chain, HashAlg::Sha256).unwrap();
        assert_eq!(parsed.cert_count(), 2);
        assert_eq!(parsed.certs().collect::<Vec<_>>(), certs.to_vec());
        assert_eq!(parsed.as_bytes(), &chain[..]);

        let mut bad = chain.clone();
        bad.push(0);
        assert!(matches!(
            SpdmCertChain::parse(&bad, HashAlg::Sha256),
            Err(CertError::LengthMismatch { .. })
        ));
        let mut bad = chain.clone();
        bad[2] = 1;
        assert_eq!(
            SpdmCertChain::parse(&bad, HashAlg::Sha256),
            Err(CertError::ReservedNonZero)
        );
        let mut bad = chain.clone();
        bad[4] ^= 1;
        assert_eq!(
            SpdmCertChain::parse(&bad, HashAlg::Sha256),
            Err(CertError::RootHashMismatch)
        );
        assert!(SpdmCertChain::parse(&chain, HashAlg::Sha384).is_err());
        // Trailing garbage after the last certificate (Length adjusted to cover it).
        let mut bad = chain.clone();
        bad.extend_from_slice(&[0x30]);
        let len = u16::try_from(bad.len()).unwrap().to_le_bytes();
        bad[..2].copy_from_slice(&len);
        assert_eq!(
            SpdmCertChain::parse(&bad, HashAlg::Sha256),
            Err(CertError::Malformed { index: 2 })
        );
        for cut in 0..chain.len() {
            assert!(SpdmCertChain::parse(&chain[..cut], HashAlg::Sha256).is_err());
        }
    }
}
