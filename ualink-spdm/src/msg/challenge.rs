//! CHALLENGE / CHALLENGE_AUTH (DSP0274 §10.8).
//!
//! ```text
//! CHALLENGE:      SPDMVersion | 83 | Param1 = SlotID (0..=7, 0xFF = provisioned public key)
//!                 | Param2 = MeasurementSummaryHashType (0 none, 1 TCB, 0xFF all)
//!                 | Nonce[32] | RequesterContext[8] (1.3)
//! CHALLENGE_AUTH: SPDMVersion | 03 | Param1 = bits 3:0 SlotID (0xF = public key), bit 7 BasicMutAuthReq,
//!                   bits 6:4 reserved | Param2 = SlotMask
//!                 | CertChainHash[H] | Nonce[32] | MeasurementSummaryHash[H] (iff requested)
//!                 | OpaqueDataLength u16 (<= 1024) | OpaqueData | RequesterContext[8] (1.3) | Signature[S]
//! ```
//! The signature covers M1 up to and including [`ChallengeAuth::signed_portion`].

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use super::{MsgContext, NONCE_LEN, REQUESTER_CONTEXT_LEN};
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// Maximum OpaqueDataLength in SPDM 1.2/1.3.
pub const MAX_OPAQUE_LEN: usize = 1024;

/// MeasurementSummaryHashType (CHALLENGE Param2, KEY_EXCHANGE/PSK_EXCHANGE Param1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasurementSummaryType {
    /// No measurement summary hash (0x00).
    None,
    /// TCB component measurements hash (0x01).
    Tcb,
    /// All measurements hash (0xFF).
    All,
}

impl MeasurementSummaryType {
    /// The wire byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::None => 0x00,
            Self::Tcb => 0x01,
            Self::All => 0xFF,
        }
    }

    /// Parses the wire byte.
    pub fn from_byte(b: u8, what: &'static str) -> Result<Self, Malformed> {
        match b {
            0x00 => Ok(Self::None),
            0x01 => Ok(Self::Tcb),
            0xFF => Ok(Self::All),
            _ => Err(Malformed::UnknownValue {
                what,
                value: u32::from(b),
            }),
        }
    }
}

/// Reads a 1.3 RequesterContext when the version has one.
pub(crate) fn read_context(
    r: &mut Reader<'_>,
    version: SpdmVersion,
    what: &'static str,
) -> Result<Option<[u8; REQUESTER_CONTEXT_LEN]>, Malformed> {
    if version >= SpdmVersion::V13 {
        Ok(Some(r.take_array(what)?))
    } else {
        Ok(None)
    }
}

/// Checks that a RequesterContext is present exactly when the version has one.
pub(crate) fn check_context(
    version: SpdmVersion,
    ctx: &Option<[u8; REQUESTER_CONTEXT_LEN]>,
    what: &'static str,
) -> Result<(), Error> {
    if ctx.is_some() != (version >= SpdmVersion::V13) {
        return Err(Error::ApiMisuse(what));
    }
    Ok(())
}

/// Reads OpaqueDataLength + OpaqueData (at most 1024 bytes).
pub(crate) fn read_opaque(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, Malformed> {
    let len = usize::from(r.u16(what)?);
    if len > MAX_OPAQUE_LEN {
        return Err(Malformed::BadLength { what });
    }
    super::take_vec(r, len, what)
}

/// CHALLENGE: asks the responder to prove possession of the key in `slot_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Header version.
    pub version: SpdmVersion,
    /// SlotID (0..=7 or 0xFF).
    pub slot_id: u8,
    /// Which measurement summary hash to include.
    pub summary_type: MeasurementSummaryType,
    /// Requester nonce.
    pub nonce: [u8; NONCE_LEN],
    /// RequesterContext (present iff version >= 1.3).
    pub requester_context: Option<[u8; REQUESTER_CONTEXT_LEN]>,
}

impl Challenge {
    /// Parses exactly one CHALLENGE.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("CHALLENGE")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::CHALLENGE, None)?;
        let slot_id = if p1 == 0xFF {
            p1
        } else {
            super::slot(p1, "CHALLENGE SlotID")?
        };
        let summary_type =
            MeasurementSummaryType::from_byte(p2, "CHALLENGE MeasurementSummaryHashType")?;
        let nonce = r.take_array("CHALLENGE Nonce")?;
        let requester_context = read_context(r, version, "CHALLENGE RequesterContext")?;
        Ok(Self {
            version,
            slot_id,
            summary_type,
            nonce,
            requester_context,
        })
    }

    /// Encodes the message; fails if the RequesterContext does not match the version.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        check_context(
            self.version,
            &self.requester_context,
            "CHALLENGE RequesterContext must be present iff 1.3",
        )?;
        let mut w = super::start(
            self.version,
            RequestResponseCode::CHALLENGE,
            self.slot_id,
            self.summary_type.byte(),
        );
        w.bytes(&self.nonce);
        if let Some(c) = &self.requester_context {
            w.bytes(c);
        }
        Ok(w.into_vec())
    }
}

/// CHALLENGE_AUTH Param1 bit 7.
pub const BASIC_MUT_AUTH_REQ: u8 = 0x80;

/// CHALLENGE_AUTH: the signed answer to CHALLENGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeAuth {
    /// Header version.
    pub version: SpdmVersion,
    /// SlotID (0..=7, or 0xF for a provisioned public key).
    pub slot_id: u8,
    /// BasicMutAuthReq (Param1 bit 7): the responder will challenge the requester through
    /// encapsulated requests. libspdm's reference responder sets it in 1.2 and 1.3.
    pub basic_mut_auth_req: bool,
    /// SlotMask (Param2).
    pub slot_mask: u8,
    /// CertChainHash (H bytes).
    pub cert_chain_hash: Vec<u8>,
    /// Responder nonce.
    pub nonce: [u8; NONCE_LEN],
    /// MeasurementSummaryHash (H bytes) iff the CHALLENGE asked for one.
    pub measurement_summary_hash: Option<Vec<u8>>,
    /// OpaqueData.
    pub opaque: Vec<u8>,
    /// RequesterContext echo (present iff version >= 1.3).
    pub requester_context: Option<[u8; REQUESTER_CONTEXT_LEN]>,
    /// Signature (S bytes, raw r‖s for ECDSA).
    pub signature: Vec<u8>,
}

impl ChallengeAuth {
    /// Parses exactly one CHALLENGE_AUTH. Uses `ctx.hash_len`, `ctx.sig_len` (use
    /// [`MsgContext::reversed`] for the requester's answer in an encapsulated flow) and
    /// `ctx.summary_hash_requested`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("CHALLENGE_AUTH")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::CHALLENGE_AUTH, Some(ctx.version))?;
        super::only_bits(p1, 0x8F, "CHALLENGE_AUTH Param1")?;
        let slot_id = p1 & 0x0F;
        if slot_id != 0x0F {
            super::slot(slot_id, "CHALLENGE_AUTH SlotID")?;
        }
        let cert_chain_hash = super::take_vec(r, ctx.hash_len, "CHALLENGE_AUTH CertChainHash")?;
        let nonce = r.take_array("CHALLENGE_AUTH Nonce")?;
        let measurement_summary_hash = if ctx.summary_hash_requested {
            Some(super::take_vec(
                r,
                ctx.hash_len,
                "CHALLENGE_AUTH MeasurementSummaryHash",
            )?)
        } else {
            None
        };
        let opaque = read_opaque(r, "CHALLENGE_AUTH OpaqueData")?;
        let requester_context = read_context(r, version, "CHALLENGE_AUTH RequesterContext")?;
        let signature = super::take_vec(r, ctx.sig_len, "CHALLENGE_AUTH Signature")?;
        Ok(Self {
            version,
            slot_id,
            basic_mut_auth_req: p1 & BASIC_MUT_AUTH_REQ != 0,
            slot_mask: p2,
            cert_chain_hash,
            nonce,
            measurement_summary_hash,
            opaque,
            requester_context,
            signature,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        check_context(
            self.version,
            &self.requester_context,
            "CHALLENGE_AUTH RequesterContext must be present iff 1.3",
        )?;
        let p1 = self.slot_id
            | if self.basic_mut_auth_req {
                BASIC_MUT_AUTH_REQ
            } else {
                0
            };
        let mut w = super::start(
            self.version,
            RequestResponseCode::CHALLENGE_AUTH,
            p1,
            self.slot_mask,
        );
        w.bytes(&self.cert_chain_hash).bytes(&self.nonce);
        if let Some(h) = &self.measurement_summary_hash {
            w.bytes(h);
        }
        w.len_u16(self.opaque.len(), "CHALLENGE_AUTH OpaqueDataLength")?
            .bytes(&self.opaque);
        if let Some(c) = &self.requester_context {
            w.bytes(c);
        }
        w.bytes(&self.signature);
        Ok(w.into_vec())
    }

    /// The bytes of `raw` (the message as received) that precede the signature: the last
    /// piece of M1. Fails if `raw` is shorter than this message.
    pub fn signed_portion<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        let len = 4usize
            .checked_add(self.cert_chain_hash.len())
            .and_then(|v| v.checked_add(NONCE_LEN))
            .and_then(|v| v.checked_add(self.measurement_summary_hash.as_ref().map_or(0, Vec::len)))
            .and_then(|v| v.checked_add(2 + self.opaque.len()))
            .and_then(|v| v.checked_add(self.requester_context.map_or(0, |c| c.len())));
        super::prefix(raw, len, "CHALLENGE_AUTH signed portion")
    }
}
