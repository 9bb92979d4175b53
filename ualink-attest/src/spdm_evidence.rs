//! The SPDM device evidence bundle: what the TSM keeps of one signed-measurements exchange
//! with a device, so that anyone can re-verify it offline without trusting the TSM.
//!
//! # Format (version 1): deterministic CBOR
//!
//! ```text
//! DeviceEvidenceBundle = {            ; a map with unsigned keys, ascending, no others
//!   0 => 1,                           ; format version; any other value fails closed
//!   1 => uint .le 7,                  ; certificate slot the device signed with
//!   2 => bstr,                        ; SPDM certificate chain of that slot, as received:
//!                                     ;   Length u16 | Reserved u16 | RootHash[H] | DER certs, root first
//!   3 => [6*6 bstr],                  ; VCA as exchanged: GET_VERSION, VERSION, GET_CAPABILITIES,
//!                                     ;   CAPABILITIES, NEGOTIATE_ALGORITHMS, ALGORITHMS
//!   4 => [+ [bstr, bstr]],            ; GET_MEASUREMENTS / MEASUREMENTS pairs as exchanged (L1 order);
//!                                     ;   only the last request asks for a signature, and its
//!                                     ;   response carries it
//!   5 => [uint, uint, uint, uint],    ; claimed negotiation: SPDMVersion byte (0x12/0x13),
//!                                     ;   BaseAsymSel, BaseHashSel, MeasurementHashAlgo (wire bits)
//!   6 => int,                         ; when the TSM took the evidence (unix seconds, UTC)
//! }
//! ```
//!
//! "Deterministic" means RFC 8949 §4.2.1: definite lengths, shortest integer and length
//! encodings, map keys in ascending order. The decoder refuses anything else (it re-encodes
//! what it decoded and compares with the bytes as received), trailing bytes, unknown keys and
//! unknown versions, so a bundle has exactly one encoding and its SHA-384 identifies it.
//! The requester nonce lives where the device saw it: in the signed GET_MEASUREMENTS.
//!
//! # Verification ([`DeviceEvidenceVerifier::verify`])
//!
//! 1. decode the bundle strictly (above);
//! 2. parse each VCA message with ualink-spdm's strict codecs; every message after VERSION
//!    carries the same SPDM version, which VERSION offered; the selected BaseAsym/BaseHash
//!    are among those the requester offered; the claimed negotiation equals ALGORITHMS;
//! 3. parse the SPDM certificate chain (Length, reserved, RootHash) and verify its X.509
//!    chain to the caller's trust anchors at the caller's time (responder role, leaf key on
//!    the negotiated curve);
//! 4. parse each GET_MEASUREMENTS / MEASUREMENTS pair for the negotiated context; the last
//!    is the only signed one, names the bundle's slot, echoes the 1.3 RequesterContext;
//! 5. recompute L1 = VCA ‖ every pair ‖ the last MEASUREMENTS without its signature, from
//!    the bytes as received, and check the signature over the SPDM 1.2+ combined prefix ‖
//!    Hash(L1) with the verified leaf key;
//! 6. compare the requester nonce with the caller's [`ExpectedNonce`].
//!
//! Policy (which roots, which measurements, how fresh) is not applied here.

use crate::error::{Error, Result};
use crate::UnixTime;
use ciborium::value::{Integer, Value};
use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::cert_chain::{CertError, PeerRole, SpdmCertChain};
use ualink_spdm::crypto;
use ualink_spdm::msg::{
    Algorithms, Capabilities, GetCapabilities, GetMeasurements, GetVersion, MeasurementOperation,
    Measurements, MsgContext, NegotiateAlgorithms, Version, NONCE_LEN,
};
use ualink_spdm::requester::Attestation;

/// The SPDM trust anchors (device vendor roots) a device chain must end in.
pub use ualink_spdm::cert_chain::TrustAnchors as DeviceTrustAnchors;

/// The only bundle format version this crate writes and reads.
pub const FORMAT_VERSION: u64 = 1;

const WHAT: &str = "device evidence bundle";
/// Upper bound on an encoded bundle (a bound on work done for the input).
const MAX_BUNDLE_LEN: usize = 1 << 20;
/// Upper bound on GET_MEASUREMENTS/MEASUREMENTS pairs (a count request plus one per index).
const MAX_EXCHANGES: usize = 256;

/// What the caller expects the requester nonce in the signed GET_MEASUREMENTS to be. Explicit
/// so that "not checked" is a visible choice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectedNonce {
    /// The nonce must equal these 32 bytes.
    Expected([u8; NONCE_LEN]),
    /// The caller binds freshness another way; the result records that it was not checked.
    NotProvided,
}

/// The negotiation a bundle claims (wire values), checked against its ALGORITHMS message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimedAlgorithms {
    /// SPDMVersion byte (0x12 or 0x13).
    pub version: u8,
    /// BaseAsymSel bits.
    pub base_asym_sel: u32,
    /// BaseHashSel bits.
    pub base_hash_sel: u32,
    /// MeasurementHashAlgo bits.
    pub measurement_hash_algo: u32,
}

/// One GET_MEASUREMENTS request and the MEASUREMENTS response to it, as exchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasurementExchange {
    /// GET_MEASUREMENTS as sent.
    pub request: Vec<u8>,
    /// MEASUREMENTS as received (with its signature if the request asked for one).
    pub response: Vec<u8>,
}

/// A device evidence bundle (see the module documentation for the format). Building or
/// decoding one verifies nothing; [`DeviceEvidenceVerifier::verify`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEvidenceBundle {
    /// Certificate slot.
    pub slot: u8,
    /// SPDM certificate chain as received.
    pub cert_chain: Vec<u8>,
    /// The six VCA messages in protocol order, as exchanged.
    pub vca: [Vec<u8>; 6],
    /// The GET_MEASUREMENTS/MEASUREMENTS pairs of L1, the last one signed.
    pub measurements: Vec<MeasurementExchange>,
    /// The negotiation the producer claims.
    pub claimed: ClaimedAlgorithms,
    /// When the evidence was taken.
    pub taken_at: UnixTime,
}

impl DeviceEvidenceBundle {
    /// A bundle from the messages as exchanged; the claimed negotiation is read from the
    /// ALGORITHMS message (which must parse).
    pub fn from_parts(
        slot: u8,
        cert_chain: Vec<u8>,
        vca: [Vec<u8>; 6],
        measurements: Vec<MeasurementExchange>,
        taken_at: UnixTime,
    ) -> Result<Self> {
        let alg = Algorithms::parse(&vca[5]).map_err(|e| spdm("ALGORITHMS", &e))?;
        let claimed = ClaimedAlgorithms {
            version: alg.version.byte(),
            base_asym_sel: alg.base_asym_sel.0,
            base_hash_sel: alg.base_hash_sel.0,
            measurement_hash_algo: alg.meas_hash_sel.0,
        };
        Ok(Self {
            slot,
            cert_chain,
            vca,
            measurements,
            claimed,
            taken_at,
        })
    }

    /// A bundle from ualink-spdm's requester result: the VCA and L1 are split back into the
    /// messages as exchanged, and the signature is appended to the last MEASUREMENTS.
    /// Fails if the attestation has no signed measurements.
    pub fn from_attestation(att: &Attestation, taken_at: UnixTime) -> Result<Self> {
        let signed = att.measurements.as_ref().ok_or(Error::ApiMisuse {
            reason: "attestation without signed measurements",
        })?;
        let vca = split_vca(&att.vca)?;
        let pairs = signed
            .l1
            .get(att.vca.len()..)
            .filter(|_| signed.l1.starts_with(&att.vca))
            .ok_or_else(|| Error::malformed(WHAT, "L1 does not start with the VCA"))?;
        let mut measurements = split_measurements(pairs, att.negotiated.version)?;
        let last = measurements
            .last_mut()
            .ok_or_else(|| Error::malformed(WHAT, "L1 holds no GET_MEASUREMENTS"))?;
        last.response.extend_from_slice(&signed.signature);
        Self::from_parts(
            att.slot,
            att.cert_chain.clone(),
            vca,
            measurements,
            taken_at,
        )
    }

    /// The deterministic CBOR encoding.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let c = &self.claimed;
        let value = Value::Map(vec![
            (uint(0), uint(FORMAT_VERSION)),
            (uint(1), uint(u64::from(self.slot))),
            (uint(2), Value::Bytes(self.cert_chain.clone())),
            (
                uint(3),
                Value::Array(self.vca.iter().cloned().map(Value::Bytes).collect()),
            ),
            (
                uint(4),
                Value::Array(
                    self.measurements
                        .iter()
                        .map(|m| {
                            Value::Array(vec![
                                Value::Bytes(m.request.clone()),
                                Value::Bytes(m.response.clone()),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                uint(5),
                Value::Array(vec![
                    uint(u64::from(c.version)),
                    uint(u64::from(c.base_asym_sel)),
                    uint(u64::from(c.base_hash_sel)),
                    uint(u64::from(c.measurement_hash_algo)),
                ]),
            ),
            (uint(6), Value::Integer(self.taken_at.secs().into())),
        ]);
        cbor_encode(&value, WHAT)
    }

    /// Decodes a bundle strictly (deterministic encoding, known keys, version 1, no trailing
    /// bytes). Nothing is verified.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_BUNDLE_LEN {
            return Err(Error::malformed(WHAT, "larger than 1 MiB"));
        }
        let value = cbor_decode(bytes, WHAT)?;
        let mut m = CborMap::new(value, WHAT)?;
        let version = m.take_uint(0)?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version: u32::try_from(version).unwrap_or(u32::MAX),
            });
        }
        let slot = u8::try_from(m.take_uint(1)?)
            .ok()
            .filter(|s| *s <= 7)
            .ok_or_else(|| Error::malformed(WHAT, "slot is not 0..=7"))?;
        let cert_chain = m.take_bytes(2)?;
        let vca_items = array(m.take(3)?, WHAT, "VCA")?;
        let vca_vec = vca_items
            .into_iter()
            .map(|v| bytes_of(v, WHAT, "VCA message"))
            .collect::<Result<Vec<_>>>()?;
        let vca: [Vec<u8>; 6] = vca_vec
            .try_into()
            .map_err(|_| Error::malformed(WHAT, "VCA is not exactly 6 messages"))?;
        let pairs = array(m.take(4)?, WHAT, "measurement exchanges")?;
        if pairs.is_empty() || pairs.len() > MAX_EXCHANGES {
            return Err(Error::malformed(
                WHAT,
                "measurement exchanges: 1 to 256 pairs required",
            ));
        }
        let measurements = pairs
            .into_iter()
            .map(|p| {
                let [req, rsp]: [Value; 2] = array(p, WHAT, "measurement exchange")?
                    .try_into()
                    .map_err(|_| Error::malformed(WHAT, "a measurement exchange is not a pair"))?;
                Ok(MeasurementExchange {
                    request: bytes_of(req, WHAT, "GET_MEASUREMENTS")?,
                    response: bytes_of(rsp, WHAT, "MEASUREMENTS")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let [v, asym, hash, meas]: [Value; 4] = array(m.take(5)?, WHAT, "claimed algorithms")?
            .try_into()
            .map_err(|_| Error::malformed(WHAT, "claimed algorithms is not 4 integers"))?;
        let u32_of = |v: Value| -> Result<u32> {
            u32::try_from(uint_of(v, WHAT, "claimed algorithm")?)
                .map_err(|_| Error::malformed(WHAT, "claimed algorithm exceeds 32 bits"))
        };
        let claimed = ClaimedAlgorithms {
            version: u8::try_from(uint_of(v, WHAT, "claimed version")?)
                .map_err(|_| Error::malformed(WHAT, "claimed version exceeds 8 bits"))?,
            base_asym_sel: u32_of(asym)?,
            base_hash_sel: u32_of(hash)?,
            measurement_hash_algo: u32_of(meas)?,
        };
        let taken_at = UnixTime::from_secs(m.take_int(6)?);
        m.finish()?;
        Ok(Self {
            slot,
            cert_chain,
            vca,
            measurements,
            claimed,
            taken_at,
        })
    }
}

/// Whether `bytes` start like a version-1 device evidence bundle (structural markers only:
/// a 7-entry map, key 0 = 1, key 1 = a slot 0..=7, then key 2). Nothing is verified; for
/// `ualink-attest verify`'s type detection.
pub fn looks_like_bundle(bytes: &[u8]) -> bool {
    matches!(bytes, [0xA7, 0x00, 0x01, 0x01, slot, 0x02, ..] if *slot <= 7)
}

/// The negotiated algorithms a verified bundle was signed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAlgorithms {
    /// BaseAsymAlgo (the leaf key's curve).
    pub asym: AsymAlg,
    /// BaseHashAlgo (transcript and chain hash).
    pub hash: HashAlg,
    /// MeasurementHashAlgo wire bits (0x1 raw bit streams, 0x2 SHA-256, 0x4 SHA-384, ...).
    pub measurement_hash_algo: u32,
}

/// One signed measurement block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceMeasurement {
    /// Measurement index (1..=0xFE).
    pub index: u8,
    /// DMTFSpecMeasurementValueType bits 6:0 (0 ROM, 1 firmware, 2 HW config, ...).
    pub value_type: u8,
    /// Bit 7 of the value type: the value is a raw bit stream, not a digest.
    pub raw_bit_stream: bool,
    /// The value as signed.
    pub value: Vec<u8>,
}

/// A bundle that passed every check of [`DeviceEvidenceVerifier::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDeviceEvidence {
    /// Negotiated SPDM version.
    pub version: SpdmVersion,
    /// Negotiated algorithms.
    pub algorithms: DeviceAlgorithms,
    /// Certificate slot.
    pub slot: u8,
    /// Subjects of the verified chain, root first.
    pub chain_subjects: Vec<String>,
    /// SHA-384 of the root certificate's DER (the device vendor root, for policy).
    pub root_fingerprint: [u8; 48],
    /// The leaf public key that signed L1 (SEC1 uncompressed point).
    pub leaf_public_key: Vec<u8>,
    /// Every measurement block of L1, in order.
    pub measurements: Vec<DeviceMeasurement>,
    /// The requester nonce in the signed GET_MEASUREMENTS.
    pub requester_nonce: [u8; NONCE_LEN],
    /// The responder nonce in the signed MEASUREMENTS.
    pub responder_nonce: [u8; NONCE_LEN],
    /// Whether the requester nonce was compared with an expected value.
    pub nonce_checked: bool,
    /// When the TSM says it took the evidence (unsigned by the device: freshness comes from
    /// the nonce; policy may bound this).
    pub taken_at: UnixTime,
    /// SHA-384 of the bundle bytes as received (what TDI reports and audit records cite).
    pub bundle_digest: [u8; 48],
}

impl VerifiedDeviceEvidence {
    /// A JSON summary for reports and `ualink-attest verify --json` (fingerprints, not keys).
    pub fn to_json(&self) -> serde_json::Value {
        let measurements: Vec<serde_json::Value> = self
            .measurements
            .iter()
            .map(|m| {
                serde_json::json!({
                    "index": m.index,
                    "type": m.value_type,
                    "raw_bit_stream": m.raw_bit_stream,
                    "value": hex::encode(&m.value),
                })
            })
            .collect();
        serde_json::json!({
            "type": "spdm-device-evidence",
            "spdm_version": match self.version {
                SpdmVersion::V12 => "1.2",
                SpdmVersion::V13 => "1.3",
            },
            "asym": match self.algorithms.asym {
                AsymAlg::EcdsaP256 => "ECDSA P-256",
                AsymAlg::EcdsaP384 => "ECDSA P-384",
            },
            "hash": match self.algorithms.hash {
                HashAlg::Sha256 => "SHA-256",
                HashAlg::Sha384 => "SHA-384",
            },
            "measurement_hash_algo": format!("{:#x}", self.algorithms.measurement_hash_algo),
            "slot": self.slot,
            "chain": self.chain_subjects,
            "root_sha384": hex::encode(self.root_fingerprint),
            "leaf_key_sha384": hex::encode(sha384(&self.leaf_public_key)),
            "measurements": measurements,
            "requester_nonce": hex::encode(self.requester_nonce),
            "nonce_checked": self.nonce_checked,
            "responder_nonce": hex::encode(self.responder_nonce),
            "taken_at": self.taken_at.secs(),
            "bundle_sha384": hex::encode(self.bundle_digest),
        })
    }
}

/// Verifies device evidence bundles against a fixed set of SPDM trust anchors.
#[derive(Clone, Debug)]
pub struct DeviceEvidenceVerifier {
    anchors: DeviceTrustAnchors,
}

impl DeviceEvidenceVerifier {
    /// A verifier trusting exactly `anchors` (device vendor roots). Their clock setting is
    /// ignored: [`Self::verify`] takes the time explicitly.
    pub fn new(anchors: DeviceTrustAnchors) -> Self {
        Self { anchors }
    }

    /// Runs every check listed in the module documentation on `bundle` as received, with
    /// certificate validity evaluated at `now`.
    pub fn verify(
        &self,
        bundle: &[u8],
        expected: &ExpectedNonce,
        now: UnixTime,
    ) -> Result<VerifiedDeviceEvidence> {
        let b = DeviceEvidenceBundle::decode(bundle)?;
        let neg = check_vca(&b)?;
        let (hash, asym) = (neg.hash, neg.asym);

        // The chain, to the caller's anchors at the caller's time.
        let chain = SpdmCertChain::parse(&b.cert_chain, hash).map_err(|e| chain_format(&e))?;
        let now_u64 = u64::try_from(now.secs()).unwrap_or(0);
        let verified = self
            .anchors
            .verify_at(chain.certs_der(), asym, PeerRole::Responder, now_u64)
            .map_err(|e| chain_error(&e, &chain, now))?;
        let root = chain
            .certs()
            .next()
            .ok_or_else(|| Error::malformed(WHAT, "empty chain"))?;
        let root_fingerprint = sha384(root);

        // L1 from the bytes as received.
        let mut l1: Vec<u8> = b.vca.concat();
        let mut blocks = Vec::new();
        let last_index = b.measurements.len().saturating_sub(1);
        let mut signed = None;
        for (i, ex) in b.measurements.iter().enumerate() {
            let last = i == last_index;
            let get =
                GetMeasurements::parse(&ex.request).map_err(|e| spdm("GET_MEASUREMENTS", &e))?;
            if get.version != neg.version {
                return Err(Error::malformed(
                    WHAT,
                    "GET_MEASUREMENTS version differs from the negotiated one",
                ));
            }
            if get.signature_requested() != last {
                return Err(Error::malformed(
                    WHAT,
                    "only the last GET_MEASUREMENTS may (and must) ask for a signature",
                ));
            }
            let mut ctx = neg.ctx;
            ctx.measurement_signature_requested = last;
            let m =
                Measurements::parse(&ex.response, &ctx).map_err(|e| spdm("MEASUREMENTS", &e))?;
            check_answer(&get, &m)?;
            l1.extend_from_slice(&ex.request);
            if last {
                l1.extend_from_slice(
                    m.signed_portion(&ex.response)
                        .map_err(|e| spdm("MEASUREMENTS", &e))?,
                );
            } else {
                l1.extend_from_slice(&ex.response);
            }
            blocks.extend(m.blocks.iter().map(|blk| DeviceMeasurement {
                index: blk.index,
                value_type: blk.value_type.kind(),
                raw_bit_stream: blk.value_type.is_raw(),
                value: blk.value.clone(),
            }));
            if last {
                signed = Some((get, m));
            }
        }
        let (get, m) = signed.ok_or_else(|| Error::malformed(WHAT, "no measurements"))?;
        let (requester_nonce, req_slot) = get
            .nonce_and_slot
            .ok_or_else(|| Error::malformed(WHAT, "signed GET_MEASUREMENTS without nonce"))?;
        if req_slot != b.slot || m.slot_id != b.slot {
            return Err(Error::BindingMismatch {
                field: "measurement slot (GET_MEASUREMENTS/MEASUREMENTS vs bundle)",
            });
        }
        let signature = m
            .signature
            .as_deref()
            .ok_or_else(|| Error::malformed(WHAT, "MEASUREMENTS without signature"))?;
        let l1_hash = crypto::hash(hash, &l1);
        crypto::verify(
            asym,
            verified.leaf_public_key(),
            neg.version,
            crypto::CTX_MEASUREMENTS,
            l1_hash.as_bytes(),
            signature,
            "MEASUREMENTS",
        )
        .map_err(|_| Error::BadSignature {
            check: "MEASUREMENTS (L1) signed by the device leaf key",
        })?;

        let nonce_checked = match expected {
            ExpectedNonce::Expected(n) if *n == requester_nonce => true,
            ExpectedNonce::Expected(_) => {
                return Err(Error::BindingMismatch {
                    field: "GET_MEASUREMENTS requester nonce",
                })
            }
            ExpectedNonce::NotProvided => false,
        };
        Ok(VerifiedDeviceEvidence {
            version: neg.version,
            algorithms: DeviceAlgorithms {
                asym,
                hash,
                measurement_hash_algo: neg.measurement_hash_algo,
            },
            slot: b.slot,
            chain_subjects: verified.subjects().to_vec(),
            root_fingerprint,
            leaf_public_key: verified.leaf_public_key().to_vec(),
            measurements: blocks,
            requester_nonce,
            responder_nonce: m.nonce,
            nonce_checked,
            taken_at: b.taken_at,
            bundle_digest: sha384(bundle),
        })
    }
}

/// What the VCA fixes for the rest of the checks.
struct Negotiation {
    version: SpdmVersion,
    hash: HashAlg,
    asym: AsymAlg,
    measurement_hash_algo: u32,
    ctx: MsgContext,
}

fn check_vca(b: &DeviceEvidenceBundle) -> Result<Negotiation> {
    let [gv, v, gc, c, na, a] = &b.vca;
    GetVersion::parse(gv).map_err(|e| spdm("GET_VERSION", &e))?;
    let version_msg = Version::parse(v).map_err(|e| spdm("VERSION", &e))?;
    let get_caps = GetCapabilities::parse(gc).map_err(|e| spdm("GET_CAPABILITIES", &e))?;
    let caps = Capabilities::parse(c).map_err(|e| spdm("CAPABILITIES", &e))?;
    let nego = NegotiateAlgorithms::parse(na).map_err(|e| spdm("NEGOTIATE_ALGORITHMS", &e))?;
    let alg = Algorithms::parse(a).map_err(|e| spdm("ALGORITHMS", &e))?;
    let version = alg.version;
    if get_caps.version != version || caps.version != version || nego.version != version {
        return Err(Error::malformed(
            WHAT,
            "VCA messages after VERSION carry different SPDM versions",
        ));
    }
    if !version_msg
        .entries
        .iter()
        .any(|e| e.0.to_be_bytes()[0] == version.byte())
    {
        return Err(Error::malformed(
            WHAT,
            "negotiated version is not one VERSION offered",
        ));
    }
    if alg.base_asym_sel.0 & nego.base_asym.0 != alg.base_asym_sel.0
        || alg.base_hash_sel.0 & nego.base_hash.0 != alg.base_hash_sel.0
    {
        return Err(Error::malformed(
            WHAT,
            "ALGORITHMS selects an algorithm NEGOTIATE_ALGORITHMS did not offer",
        ));
    }
    let claimed = ClaimedAlgorithms {
        version: version.byte(),
        base_asym_sel: alg.base_asym_sel.0,
        base_hash_sel: alg.base_hash_sel.0,
        measurement_hash_algo: alg.meas_hash_sel.0,
    };
    if claimed != b.claimed {
        return Err(Error::BindingMismatch {
            field: "claimed negotiation (version/algorithms) vs the ALGORITHMS message",
        });
    }
    let asym = alg
        .base_asym_sel
        .to_alg()
        .map_err(|_| Error::UnsupportedAlgorithm {
            what: WHAT,
            detail: format!("BaseAsymSel {:#x}", alg.base_asym_sel.0),
        })?;
    let hash = alg
        .base_hash_sel
        .to_alg()
        .map_err(|_| Error::UnsupportedAlgorithm {
            what: WHAT,
            detail: format!("BaseHashSel {:#x}", alg.base_hash_sel.0),
        })?;
    let ctx = MsgContext::from_negotiation(&alg, get_caps.flags, caps.flags)
        .map_err(|e| spdm("ALGORITHMS", &e))?;
    Ok(Negotiation {
        version,
        hash,
        asym,
        measurement_hash_algo: alg.meas_hash_sel.0,
        ctx,
    })
}

/// The MEASUREMENTS answers its GET_MEASUREMENTS (operation, 1.3 RequesterContext echo).
fn check_answer(get: &GetMeasurements, m: &Measurements) -> Result<()> {
    let ok = match get.operation {
        MeasurementOperation::Count => m.blocks.is_empty(),
        MeasurementOperation::Index(i) => {
            m.total_indices == 0 && m.blocks.len() == 1 && m.blocks.iter().all(|b| b.index == i)
        }
        MeasurementOperation::All => m.total_indices == 0,
    };
    if !ok {
        return Err(Error::malformed(
            WHAT,
            "MEASUREMENTS does not answer its GET_MEASUREMENTS operation",
        ));
    }
    if m.requester_context != get.requester_context {
        return Err(Error::BindingMismatch {
            field: "MEASUREMENTS RequesterContext echo",
        });
    }
    Ok(())
}

/// Splits a VCA transcript back into its six messages (lengths from their own fields; each
/// message is parsed strictly at verification).
fn split_vca(vca: &[u8]) -> Result<[Vec<u8>; 6]> {
    let bad = || Error::malformed(WHAT, "VCA does not split into six messages");
    let mut rest = vca;
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(6);
    for step in 0..6 {
        let len = match step {
            0 => 4,
            1 => {
                let count = usize::from(*rest.get(5).ok_or_else(bad)?);
                count
                    .checked_mul(2)
                    .and_then(|n| n.checked_add(6))
                    .ok_or_else(bad)?
            }
            2 | 3 => 20,
            _ => usize::from(u16::from_le_bytes([
                *rest.get(4).ok_or_else(bad)?,
                *rest.get(5).ok_or_else(bad)?,
            ])),
        };
        let (msg, tail) = rest.split_at_checked(len).ok_or_else(bad)?;
        out.push(msg.to_vec());
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(bad());
    }
    out.try_into().map_err(|_| bad())
}

/// Splits L1 after the VCA into GET_MEASUREMENTS/MEASUREMENTS pairs (the last response
/// without its signature).
fn split_measurements(mut rest: &[u8], version: SpdmVersion) -> Result<Vec<MeasurementExchange>> {
    let bad = || Error::malformed(WHAT, "L1 does not split into measurement pairs");
    let ctx_len = if version >= SpdmVersion::V13 { 8 } else { 0 };
    let mut out = Vec::new();
    while !rest.is_empty() {
        let signed = rest.get(2).ok_or_else(bad)? & 0x01 != 0;
        let req_len = 4usize
            .checked_add(if signed { NONCE_LEN + 1 } else { 0 })
            .and_then(|n| n.checked_add(ctx_len))
            .ok_or_else(bad)?;
        let (request, tail) = rest.split_at_checked(req_len).ok_or_else(bad)?;
        let rec_len = usize::try_from(u32::from_le_bytes([
            *tail.get(5).ok_or_else(bad)?,
            *tail.get(6).ok_or_else(bad)?,
            *tail.get(7).ok_or_else(bad)?,
            0,
        ]))
        .map_err(|_| bad())?;
        let opaque_at = 8usize
            .checked_add(rec_len)
            .and_then(|n| n.checked_add(NONCE_LEN))
            .ok_or_else(bad)?;
        let opaque_len = usize::from(u16::from_le_bytes([
            *tail.get(opaque_at).ok_or_else(bad)?,
            *tail
                .get(opaque_at.checked_add(1).ok_or_else(bad)?)
                .ok_or_else(bad)?,
        ]));
        let rsp_len = opaque_at
            .checked_add(2)
            .and_then(|n| n.checked_add(opaque_len))
            .and_then(|n| n.checked_add(ctx_len))
            .ok_or_else(bad)?;
        let (response, tail) = tail.split_at_checked(rsp_len).ok_or_else(bad)?;
        out.push(MeasurementExchange {
            request: request.to_vec(),
            response: response.to_vec(),
        });
        rest = tail;
        if out.len() > MAX_EXCHANGES {
            return Err(bad());
        }
    }
    Ok(out)
}

fn spdm(what: &'static str, e: &ualink_spdm::Error) -> Error {
    Error::Malformed {
        what,
        reason: format!("in {WHAT}: {e}"),
    }
}

fn chain_format(e: &CertError) -> Error {
    Error::ChainInvalid {
        cert: "SPDM certificate chain".into(),
        reason: e.to_string(),
    }
}

fn chain_error(e: &CertError, chain: &SpdmCertChain<'_>, now: UnixTime) -> Error {
    let cert_at = |index: usize| chain.certs().nth(index);
    let name = |index: usize| {
        cert_at(index)
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
            .map(|(_, c)| c.subject().to_string())
            .unwrap_or_else(|| format!("certificate {index}"))
    };
    match e {
        CertError::UntrustedRoot => Error::UntrustedRoot {
            detail: "device certificate chain root is not a given SPDM trust anchor".into(),
        },
        CertError::Expired { index } | CertError::NotYetValid { index } => {
            let validity = cert_at(*index)
                .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
                .map(|(_, c)| {
                    (
                        c.validity().not_before.timestamp(),
                        c.validity().not_after.timestamp(),
                    )
                });
            match validity {
                Some((not_before, not_after)) => Error::Expired {
                    cert: name(*index),
                    now: now.secs(),
                    not_before,
                    not_after,
                },
                None => Error::ChainInvalid {
                    cert: name(*index),
                    reason: e.to_string(),
                },
            }
        }
        CertError::LeafAlgorithmMismatch { .. } | CertError::UnsupportedKeyAlgorithm { .. } => {
            Error::UnsupportedAlgorithm {
                what: "device certificate chain",
                detail: e.to_string(),
            }
        }
        other => Error::ChainInvalid {
            cert: "device certificate chain".into(),
            reason: other.to_string(),
        },
    }
}

pub(crate) fn sha384(bytes: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA384, bytes).as_ref());
    out
}

// ---- deterministic CBOR helpers (shared with `tdi_report`) ---------------------------------

pub(crate) fn uint(v: u64) -> Value {
    Value::Integer(Integer::from(v))
}

pub(crate) fn cbor_encode(v: &Value, what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).map_err(|e| Error::malformed(what, e.to_string()))?;
    Ok(out)
}

/// Decodes one CBOR item occupying all of `bytes` in deterministic encoding: ciborium writes
/// definite lengths and shortest integers, so re-encoding must give the bytes as received.
pub(crate) fn cbor_decode(bytes: &[u8], what: &'static str) -> Result<Value> {
    let mut r = bytes;
    let v: Value =
        ciborium::from_reader(&mut r).map_err(|e| Error::malformed(what, format!("CBOR: {e}")))?;
    if !r.is_empty() {
        return Err(Error::malformed(what, "trailing bytes after the CBOR item"));
    }
    if cbor_encode(&v, what)? != bytes {
        return Err(Error::malformed(
            what,
            "not deterministic CBOR (RFC 8949 §4.2.1)",
        ));
    }
    Ok(v)
}

/// A CBOR map with unsigned keys in strictly ascending order, consumed field by field.
pub(crate) struct CborMap {
    entries: Vec<(u64, Value)>,
    what: &'static str,
}

impl CborMap {
    pub(crate) fn new(v: Value, what: &'static str) -> Result<Self> {
        let Value::Map(items) = v else {
            return Err(Error::malformed(what, "not a CBOR map"));
        };
        let mut entries: Vec<(u64, Value)> = Vec::with_capacity(items.len());
        for (k, v) in items {
            let key = uint_of(k, what, "map key")?;
            if entries.last().is_some_and(|(prev, _)| *prev >= key) {
                return Err(Error::malformed(what, "map keys not strictly ascending"));
            }
            entries.push((key, v));
        }
        Ok(Self { entries, what })
    }

    pub(crate) fn take(&mut self, key: u64) -> Result<Value> {
        match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => Ok(self.entries.remove(i).1),
            None => Err(Error::malformed(self.what, format!("missing key {key}"))),
        }
    }

    pub(crate) fn take_uint(&mut self, key: u64) -> Result<u64> {
        let v = self.take(key)?;
        uint_of(v, self.what, "unsigned field")
    }

    pub(crate) fn take_int(&mut self, key: u64) -> Result<i64> {
        match self.take(key)? {
            Value::Integer(i) => {
                i64::try_from(i).map_err(|_| Error::malformed(self.what, "integer out of range"))
            }
            _ => Err(Error::malformed(
                self.what,
                format!("key {key}: not an integer"),
            )),
        }
    }

    pub(crate) fn take_bytes(&mut self, key: u64) -> Result<Vec<u8>> {
        let v = self.take(key)?;
        bytes_of(v, self.what, "byte string field")
    }

    pub(crate) fn take_text(&mut self, key: u64) -> Result<String> {
        match self.take(key)? {
            Value::Text(t) => Ok(t),
            _ => Err(Error::malformed(
                self.what,
                format!("key {key}: not a text string"),
            )),
        }
    }

    /// Fails if keys remain that the format does not define.
    pub(crate) fn finish(self) -> Result<()> {
        match self.entries.first() {
            None => Ok(()),
            Some((k, _)) => Err(Error::malformed(self.what, format!("unknown key {k}"))),
        }
    }
}

pub(crate) fn uint_of(v: Value, what: &'static str, field: &'static str) -> Result<u64> {
    match v {
        Value::Integer(i) => {
            u64::try_from(i).map_err(|_| Error::malformed(what, format!("{field}: negative")))
        }
        _ => Err(Error::malformed(
            what,
            format!("{field}: not an unsigned integer"),
        )),
    }
}

pub(crate) fn bytes_of(v: Value, what: &'static str, field: &'static str) -> Result<Vec<u8>> {
    match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(Error::malformed(
            what,
            format!("{field}: not a byte string"),
        )),
    }
}

pub(crate) fn array(v: Value, what: &'static str, field: &'static str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(Error::malformed(what, format!("{field}: not an array"))),
    }
}
