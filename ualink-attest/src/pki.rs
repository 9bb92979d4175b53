//! Certificate chains for CVM evidence: trust anchors and the one chain check that both real
//! AMD chains (RSA-PSS/SHA-384 ARK and ASK) and the `sim` platform's chain (ECDSA P-384) go
//! through.
//!
//! A chain is `leaf → intermediate → anchor`. The anchor is never taken from the evidence: it
//! must be one of the [`TrustAnchors`] the caller built (the AMD roots built into `sev`, or a
//! root the caller passed explicitly). Only two signature algorithms are accepted on
//! certificates: RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt (AMD ARK/ASK/ASVK),
//! and ECDSA P-384 with SHA-384. Everything else fails closed.

use crate::error::{Error, Result};
use crate::UnixTime;
use ring::signature::{self, UnparsedPublicKey};
use x509_parser::certificate::X509Certificate;
use x509_parser::der_parser::oid;
use x509_parser::der_parser::Oid;
use x509_parser::signature_algorithm::RsaSsaPssParams;

const OID_RSA_PSS: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .10);
const OID_RSA_ENCRYPTION: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .1);
const OID_ECDSA_SHA384: Oid<'static> = oid!(1.2.840 .10045 .4 .3 .3);
const OID_EC_PUBLIC_KEY: Oid<'static> = oid!(1.2.840 .10045 .2 .1);
const OID_SECP384R1: Oid<'static> = oid!(1.3.132 .0 .34);
const OID_SHA384: Oid<'static> = oid!(2.16.840 .1 .101 .3 .4 .2 .2);
const OID_MGF1: Oid<'static> = oid!(1.2.840 .113549 .1 .1 .8);

/// The processor generation of an AMD root built into the `sev` crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AmdGeneration {
    /// EPYC 7003 (Zen 3).
    Milan,
    /// EPYC 9004 (Zen 4).
    Genoa,
    /// EPYC 9005 (Zen 5).
    Turin,
}

/// Where a trust anchor came from; reported in every verified result so that a policy can
/// refuse a software root.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AnchorOrigin {
    /// An AMD ARK built into the `sev` crate.
    AmdBuiltin(AmdGeneration),
    /// A root the caller passed explicitly (e.g. the `sim` platform's ARK, or `--trust FILE`).
    Explicit,
}

/// One trusted, self-signed root certificate.
#[derive(Clone, Debug)]
struct Anchor {
    der: Vec<u8>,
    origin: AnchorOrigin,
}

/// The set of roots a verifier trusts, plus intermediates known to belong to them (the AMD
/// ASKs built into `sev`, used when the evidence does not carry its ASK).
///
/// Guarantee: every anchor in the set parsed as X.509, is a CA and verified its own
/// signature when it was added.
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    anchors: Vec<Anchor>,
    intermediates: Vec<Vec<u8>>,
}

impl TrustAnchors {
    /// No anchors at all: every chain fails with [`Error::UntrustedRoot`] until a root is added.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The AMD ARKs for Milan, Genoa and Turin built into `sev`, with their ASKs as known
    /// intermediates. Never includes any software root.
    pub fn amd_builtin() -> Result<Self> {
        use sev::certs::snp::builtin::{genoa, milan, turin};
        let mut t = Self::empty();
        for (generation, ark, ask) in [
            (AmdGeneration::Milan, milan::ARK, milan::ASK),
            (AmdGeneration::Genoa, genoa::ARK, genoa::ASK),
            (AmdGeneration::Turin, turin::ARK, turin::ASK),
        ] {
            let ark = pem_one(ark, "built-in AMD ARK")?;
            let ask = pem_one(ask, "built-in AMD ASK")?;
            t.push_anchor(ark, AnchorOrigin::AmdBuiltin(generation))?;
            t.intermediates.push(ask);
        }
        Ok(t)
    }

    /// Adds a root given explicitly by the caller (DER). It must be a self-signed CA whose
    /// signature verifies; it is reported as [`AnchorOrigin::Explicit`].
    pub fn with_explicit_root_der(mut self, der: &[u8]) -> Result<Self> {
        self.push_anchor(der.to_vec(), AnchorOrigin::Explicit)?;
        Ok(self)
    }

    /// Adds every certificate of a PEM bundle as an explicit root (see
    /// [`Self::with_explicit_root_der`]).
    pub fn with_explicit_roots_pem(mut self, pem_text: &[u8]) -> Result<Self> {
        for der in certs_from_pem_or_der(pem_text)? {
            self.push_anchor(der, AnchorOrigin::Explicit)?;
        }
        Ok(self)
    }

    /// How many roots are trusted.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether no root is trusted.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    fn push_anchor(&mut self, der: Vec<u8>, origin: AnchorOrigin) -> Result<()> {
        let cert = parse_cert(&der, "trust anchor")?;
        if !is_ca(&cert) {
            return Err(Error::ChainInvalid {
                cert: subject_string(&cert),
                reason: "trust anchor is not a CA (basicConstraints cA)".into(),
            });
        }
        if cert.subject().as_raw() != cert.issuer().as_raw() {
            return Err(Error::ChainInvalid {
                cert: subject_string(&cert),
                reason: "trust anchor is not self-issued".into(),
            });
        }
        verify_cert_signature(&cert, &cert)?;
        self.anchors.push(Anchor { der, origin });
        Ok(())
    }
}

/// What a chain check established (see [`verify_leaf_chain`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    /// The anchor the chain ends in.
    pub origin: AnchorOrigin,
    /// The intermediate's subject.
    pub intermediate: String,
    /// The leaf's subject.
    pub leaf: String,
}

/// Checks a leaf certificate's chain alone (`leaf → intermediate → trusted anchor`, each valid
/// at `now`), with the same rules the evidence verifiers apply.
pub fn verify_leaf_chain(
    leaf_der: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &TrustAnchors,
    now: UnixTime,
) -> Result<ChainSummary> {
    let leaf = parse_cert(leaf_der, "leaf certificate")?;
    let c = verify_chain(&leaf, intermediates, anchors, now)?;
    Ok(ChainSummary {
        origin: c.origin,
        intermediate: c.intermediate_subject,
        leaf: subject_string(&leaf),
    })
}

/// The outcome of a successful chain check.
#[derive(Clone, Debug)]
pub(crate) struct VerifiedChain {
    /// The leaf's subject public key (SEC1 uncompressed point for EC keys).
    pub(crate) leaf_public_key: Vec<u8>,
    /// Where the anchor came from.
    pub(crate) origin: AnchorOrigin,
    /// The intermediate's subject, e.g. "CN=SEV-Milan".
    pub(crate) intermediate_subject: String,
}

/// Checks `leaf → one of intermediates (or the anchors' known intermediates) → anchor` at time
/// `now`. The evidence's own roots, if any are among `intermediates`, are never trusted: only
/// a certificate byte-identical in subject and verified by a trusted anchor's key is used.
pub(crate) fn verify_chain(
    leaf: &X509Certificate<'_>,
    intermediates: &[Vec<u8>],
    anchors: &TrustAnchors,
    now: UnixTime,
) -> Result<VerifiedChain> {
    check_validity(leaf, now)?;
    if is_ca(leaf) {
        return Err(Error::ChainInvalid {
            cert: subject_string(leaf),
            reason: "the signing certificate is a CA, not an end-entity key".into(),
        });
    }
    let leaf_issuer = leaf.issuer().as_raw();
    let mut last_err = None;
    let mut found_issuer = false;
    for der in intermediates.iter().chain(anchors.intermediates.iter()) {
        let inter = parse_cert(der, "intermediate certificate")?;
        if inter.subject().as_raw() != leaf_issuer {
            continue;
        }
        found_issuer = true;
        if !is_ca(&inter) {
            last_err = Some(Error::ChainInvalid {
                cert: subject_string(&inter),
                reason: "issuer is not a CA (basicConstraints cA)".into(),
            });
            continue;
        }
        if let Err(e) = verify_cert_signature(&inter, leaf) {
            last_err = Some(e);
            continue;
        }
        check_validity(&inter, now)?;
        let origin = anchor_for(&inter, anchors, now)?;
        return Ok(VerifiedChain {
            leaf_public_key: leaf.public_key().subject_public_key.data.to_vec(),
            origin,
            intermediate_subject: subject_string(&inter),
        });
    }
    Err(last_err.unwrap_or_else(|| {
        if found_issuer {
            Error::ChainInvalid {
                cert: subject_string(leaf),
                reason: "no usable issuer".into(),
            }
        } else {
            Error::ChainInvalid {
                cert: subject_string(leaf),
                reason: format!(
                    "issuer {} not among the supplied or known intermediates",
                    leaf.issuer()
                ),
            }
        }
    }))
}

fn anchor_for(
    inter: &X509Certificate<'_>,
    anchors: &TrustAnchors,
    now: UnixTime,
) -> Result<AnchorOrigin> {
    let mut name_matched = false;
    for anchor in &anchors.anchors {
        let root = parse_cert(&anchor.der, "trust anchor")?;
        if root.subject().as_raw() != inter.issuer().as_raw() {
            continue;
        }
        name_matched = true;
        // A trusted root with the right name whose key did not sign this intermediate is
        // not its root (an impostor chain or a different platform with the same names).
        if verify_cert_signature(&root, inter).is_err() {
            continue;
        }
        check_validity(&root, now)?;
        return Ok(anchor.origin.clone());
    }
    Err(Error::UntrustedRoot {
        detail: if name_matched {
            format!(
                "no trusted root named {} signed {}",
                inter.issuer(),
                inter.subject()
            )
        } else {
            format!("no trusted root named {}", inter.issuer())
        },
    })
}

/// Parses exactly one DER certificate; trailing bytes are an error, and so is an unsigned
/// outer layer that is not exactly DER ([`outer_der_is_strict`]).
pub(crate) fn parse_cert<'a>(der: &'a [u8], what: &'static str) -> Result<X509Certificate<'a>> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::malformed(what, format!("X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            what,
            format!("{} trailing bytes after the certificate", rest.len()),
        ));
    }
    if !outer_der_is_strict(der) {
        return Err(Error::malformed(
            what,
            "the unsigned outer layer is not exact DER (outer SEQUENCE, signatureAlgorithm \
             identical to the signed one, BIT STRING with 0 unused bits, minimal lengths)",
        ));
    }
    Ok(cert)
}

/// One DER TLV: tag, the whole encoding, its contents, and what follows it.
struct Tlv<'a> {
    tag: u8,
    whole: &'a [u8],
    contents: &'a [u8],
    rest: &'a [u8],
}

/// Decodes a DER length at the start of `buf`: (bytes used, content length). Indefinite,
/// non-minimal and over-4-byte lengths are refused.
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
    (len >= 0x80).then_some((n.checked_add(1)?, len))
}

/// Splits the DER TLV at the start of `buf` (low tag number, minimal definite length).
fn der_tlv(buf: &[u8]) -> Option<Tlv<'_>> {
    let (&tag, after_tag) = buf.split_first()?;
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

fn der_expect(buf: &[u8], tag: u8) -> Option<Tlv<'_>> {
    der_tlv(buf).filter(|t| t.tag == tag)
}

/// Whether the unsigned outer layer of a DER certificate is exact, so that no other encoding
/// of the same signed TBS is accepted (x509-parser alone accepts, e.g., another tag on the
/// outer algorithm OID): `SEQUENCE { tbs SEQUENCE, signatureAlgorithm SEQUENCE, signature
/// BIT STRING }` with minimal lengths, nothing after it, 0 unused bits in the signature, and
/// `signatureAlgorithm` byte-identical to the TBS `signature` field. (The TBS is covered by
/// the signature; ring parses ECDSA signature values as strict DER.)
pub(crate) fn outer_der_is_strict(cert: &[u8]) -> bool {
    fn check(cert: &[u8]) -> Option<()> {
        let outer = der_expect(cert, 0x30)?;
        outer.rest.is_empty().then_some(())?;
        let tbs = der_expect(outer.contents, 0x30)?;
        let sig_alg = der_expect(tbs.rest, 0x30)?;
        let sig = der_expect(sig_alg.rest, 0x03)?;
        (sig.rest.is_empty() && sig.contents.first() == Some(&0)).then_some(())?;
        // TBS: [0] version (explicit, optional in v1 but every certificate here is v3),
        // serialNumber, signature.
        let version = der_expect(tbs.contents, 0xA0)?;
        let serial = der_expect(version.rest, 0x02)?;
        let tbs_sig_alg = der_expect(serial.rest, 0x30)?;
        (tbs_sig_alg.whole == sig_alg.whole).then_some(())
    }
    check(cert).is_some()
}

/// Splits a PEM bundle (or a single DER certificate) into DER certificates.
pub fn certs_from_pem_or_der(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let items =
        pem::parse_many(bytes).map_err(|e| Error::malformed("PEM bundle", e.to_string()))?;
    let mut out = Vec::new();
    for item in items {
        if item.tag() != "CERTIFICATE" {
            return Err(Error::malformed(
                "PEM bundle",
                format!("unexpected PEM block {:?}", item.tag()),
            ));
        }
        out.push(item.into_contents());
    }
    if out.is_empty() {
        return Err(Error::malformed("PEM bundle", "no certificate"));
    }
    Ok(out)
}

fn pem_one(bytes: &[u8], what: &'static str) -> Result<Vec<u8>> {
    let mut certs = certs_from_pem_or_der(bytes)?;
    match (certs.pop(), certs.is_empty()) {
        (Some(c), true) => Ok(c),
        _ => Err(Error::malformed(what, "expected exactly one certificate")),
    }
}

fn is_ca(cert: &X509Certificate<'_>) -> bool {
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca)
}

pub(crate) fn subject_string(cert: &X509Certificate<'_>) -> String {
    cert.subject().to_string()
}

fn check_validity(cert: &X509Certificate<'_>, now: UnixTime) -> Result<()> {
    let v = cert.validity();
    let (nb, na) = (v.not_before.timestamp(), v.not_after.timestamp());
    if now.secs() < nb || now.secs() > na {
        return Err(Error::Expired {
            cert: subject_string(cert),
            now: now.secs(),
            not_before: nb,
            not_after: na,
        });
    }
    Ok(())
}

/// Verifies that `issuer`'s key signed `child`'s TBS bytes as received, with one of the two
/// allowed algorithms.
pub(crate) fn verify_cert_signature(
    issuer: &X509Certificate<'_>,
    child: &X509Certificate<'_>,
) -> Result<()> {
    let alg = &child.signature_algorithm;
    if *alg != child.tbs_certificate.signature {
        return Err(Error::ChainInvalid {
            cert: subject_string(child),
            reason: "outer and TBS signature algorithms differ".into(),
        });
    }
    let spki = issuer.public_key();
    let key_alg = &spki.algorithm.algorithm;
    let verification: &dyn signature::VerificationAlgorithm = if alg.algorithm == OID_RSA_PSS {
        let params = alg
            .parameters
            .as_ref()
            .ok_or_else(|| unsupported("RSASSA-PSS without parameters"))?;
        let params = RsaSsaPssParams::try_from(params)
            .map_err(|e| unsupported(&format!("RSASSA-PSS parameters: {e}")))?;
        let mgf = params
            .mask_gen_algorithm()
            .map_err(|e| unsupported(&format!("RSASSA-PSS MGF: {e}")))?;
        if *params.hash_algorithm_oid() != OID_SHA384
            || mgf.mgf != OID_MGF1
            || mgf.hash != OID_SHA384
            || params.salt_length() != 48
        {
            return Err(unsupported(
                "RSASSA-PSS other than SHA-384 / MGF1-SHA-384 / salt 48",
            ));
        }
        if *key_alg != OID_RSA_ENCRYPTION && *key_alg != OID_RSA_PSS {
            return Err(unsupported("RSASSA-PSS signature by a non-RSA key"));
        }
        &signature::RSA_PSS_2048_8192_SHA384
    } else if alg.algorithm == OID_ECDSA_SHA384 {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        if *key_alg != OID_EC_PUBLIC_KEY || curve != Some(OID_SECP384R1) {
            return Err(unsupported("ecdsa-with-SHA384 by a key that is not P-384"));
        }
        &signature::ECDSA_P384_SHA384_ASN1
    } else {
        return Err(unsupported(&format!(
            "certificate signature algorithm {}",
            alg.algorithm
        )));
    };
    UnparsedPublicKey::new(verification, &spki.subject_public_key.data)
        .verify(child.tbs_certificate.as_ref(), &child.signature_value.data)
        .map_err(|_| Error::ChainInvalid {
            cert: subject_string(child),
            reason: format!("signature by {} does not verify", issuer.subject()),
        })
}

fn unsupported(detail: &str) -> Error {
    Error::UnsupportedAlgorithm {
        what: "certificate",
        detail: detail.to_string(),
    }
}
