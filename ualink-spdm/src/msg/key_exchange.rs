//! KEY_EXCHANGE / KEY_EXCHANGE_RSP (DSP0274 §10.12).
//!
//! ```text
//! KEY_EXCHANGE:     SPDMVersion | E4 | Param1 = MeasurementSummaryHashType (0, 1, 0xFF)
//!                   | Param2 = SlotID (0..=7, 0xFF = provisioned public key)
//!                   | ReqSessionID u16 | SessionPolicy u8 (bit 0 TerminationPolicy; 1.3: bit 1 EventAllPolicy)
//!                   | Reserved u8 | RandomData[32] | ExchangeData[D]
//!                   | OpaqueDataLength u16 (<= 1024) | OpaqueData
//! KEY_EXCHANGE_RSP: SPDMVersion | 64 | Param1 = HeartbeatPeriod | Param2 = 0
//!                   | RspSessionID u16 | MutAuthRequested u8 (0, 1, 2 or 4) | ReqSlotIDParam u8 (bits 3:0)
//!                   | RandomData[32] | ExchangeData[D] | MeasurementSummaryHash[H] (iff requested)
//!                   | OpaqueDataLength u16 | OpaqueData | Signature[S]
//!                   | ResponderVerifyData[H] (absent when HANDSHAKE_IN_THE_CLEAR is negotiated)
//! ```
//! Transcript slices: [`KeyExchangeRsp::signed_portion`] (what the signature covers, i.e. without
//! signature and verify data) and [`KeyExchangeRsp::without_verify_data`] (what
//! ResponderVerifyData's HMAC covers, i.e. with the signature).

use alloc::vec::Vec;

use super::challenge::{read_opaque, MeasurementSummaryType};
use super::header::RequestResponseCode;
use super::{MsgContext, RANDOM_LEN};
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed, PeerMisbehaved};

/// KEY_EXCHANGE needs a negotiated DHE group: without one the ExchangeData size is unknown.
fn need_dhe(ctx: &MsgContext, code: RequestResponseCode) -> Result<(), Error> {
    if ctx.dhe_len == 0 {
        return Err(PeerMisbehaved::UnexpectedMessage {
            expected: "no KEY_EXCHANGE (no DHE group negotiated)",
            got: code.0,
        }
        .into());
    }
    Ok(())
}

/// KEY_EXCHANGE: starts a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1.
    pub summary_type: MeasurementSummaryType,
    /// Param2: SlotID (0..=7 or 0xFF).
    pub slot_id: u8,
    /// ReqSessionID.
    pub req_session_id: u16,
    /// SessionPolicy.
    pub session_policy: u8,
    /// RandomData.
    pub random: [u8; RANDOM_LEN],
    /// ExchangeData (D bytes: X‖Y for ECDHE).
    pub exchange_data: Vec<u8>,
    /// OpaqueData (format 1: secured-message versions, see [`super::OpaqueData`]).
    pub opaque: Vec<u8>,
}

fn session_policy_mask(v: SpdmVersion) -> u8 {
    match v {
        SpdmVersion::V12 => 0x01,
        SpdmVersion::V13 => 0x03,
    }
}

impl KeyExchange {
    /// Parses exactly one KEY_EXCHANGE. Uses `ctx.dhe_len`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("KEY_EXCHANGE")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::KEY_EXCHANGE, Some(ctx.version))?;
        need_dhe(ctx, RequestResponseCode::KEY_EXCHANGE)?;
        let summary_type =
            MeasurementSummaryType::from_byte(p1, "KEY_EXCHANGE MeasurementSummaryHashType")?;
        let slot_id = if p2 == 0xFF {
            p2
        } else {
            super::slot(p2, "KEY_EXCHANGE SlotID")?
        };
        let req_session_id = r.u16("KEY_EXCHANGE ReqSessionID")?;
        let session_policy = r.u8("KEY_EXCHANGE SessionPolicy")?;
        super::only_bits(
            session_policy,
            session_policy_mask(version),
            "KEY_EXCHANGE SessionPolicy",
        )?;
        r.reserved(1, "KEY_EXCHANGE Reserved")?;
        let random = r.take_array("KEY_EXCHANGE RandomData")?;
        let exchange_data = super::take_vec(r, ctx.dhe_len, "KEY_EXCHANGE ExchangeData")?;
        let opaque = read_opaque(r, "KEY_EXCHANGE OpaqueData")?;
        Ok(Self {
            version,
            summary_type,
            slot_id,
            req_session_id,
            session_policy,
            random,
            exchange_data,
            opaque,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::KEY_EXCHANGE,
            self.summary_type.byte(),
            self.slot_id,
        );
        w.u16(self.req_session_id)
            .u8(self.session_policy)
            .u8(0)
            .bytes(&self.random)
            .bytes(&self.exchange_data)
            .len_u16(self.opaque.len(), "KEY_EXCHANGE OpaqueDataLength")?
            .bytes(&self.opaque);
        Ok(w.into_vec())
    }
}

/// KEY_EXCHANGE_RSP MutAuthRequested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MutAuthRequested(pub u8);

impl MutAuthRequested {
    /// No mutual authentication.
    pub const NONE: Self = Self(0);
    /// Mutual authentication, requester's slot given in ReqSlotIDParam.
    pub const REQUESTED: Self = Self(0x01);
    /// Mutual authentication through encapsulated requests.
    pub const WITH_ENCAP_REQUEST: Self = Self(0x02);
    /// Mutual authentication, the responder first gets the requester's digests.
    pub const WITH_GET_DIGESTS: Self = Self(0x04);
}

/// KEY_EXCHANGE_RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchangeRsp {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1: HeartbeatPeriod (seconds, 0 = none).
    pub heartbeat_period: u8,
    /// RspSessionID.
    pub rsp_session_id: u16,
    /// MutAuthRequested.
    pub mut_auth_requested: MutAuthRequested,
    /// ReqSlotIDParam (bits 3:0).
    pub req_slot_id: u8,
    /// RandomData.
    pub random: [u8; RANDOM_LEN],
    /// ExchangeData (D bytes).
    pub exchange_data: Vec<u8>,
    /// MeasurementSummaryHash iff KEY_EXCHANGE asked for one.
    pub measurement_summary_hash: Option<Vec<u8>>,
    /// OpaqueData (format 1: the selected secured-message version).
    pub opaque: Vec<u8>,
    /// Signature (S bytes).
    pub signature: Vec<u8>,
    /// ResponderVerifyData (H bytes) unless the handshake is in the clear.
    pub verify_data: Option<Vec<u8>>,
}

impl KeyExchangeRsp {
    /// Parses exactly one KEY_EXCHANGE_RSP. Uses `ctx.dhe_len`, `ctx.hash_len`, `ctx.sig_len`,
    /// `ctx.summary_hash_requested` and `ctx.handshake_in_clear`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("KEY_EXCHANGE_RSP")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::KEY_EXCHANGE_RSP, Some(ctx.version))?;
        need_dhe(ctx, RequestResponseCode::KEY_EXCHANGE_RSP)?;
        super::zero(p2, "KEY_EXCHANGE_RSP Param2")?;
        let rsp_session_id = r.u16("KEY_EXCHANGE_RSP RspSessionID")?;
        let mut_auth = r.u8("KEY_EXCHANGE_RSP MutAuthRequested")?;
        if !matches!(mut_auth, 0 | 1 | 2 | 4) {
            return Err(Malformed::UnknownValue {
                what: "KEY_EXCHANGE_RSP MutAuthRequested",
                value: u32::from(mut_auth),
            }
            .into());
        }
        let req_slot_id = r.u8("KEY_EXCHANGE_RSP ReqSlotIDParam")?;
        super::only_bits(req_slot_id, 0x0F, "KEY_EXCHANGE_RSP ReqSlotIDParam")?;
        let random = r.take_array("KEY_EXCHANGE_RSP RandomData")?;
        let exchange_data = super::take_vec(r, ctx.dhe_len, "KEY_EXCHANGE_RSP ExchangeData")?;
        let measurement_summary_hash = if ctx.summary_hash_requested {
            Some(super::take_vec(
                r,
                ctx.hash_len,
                "KEY_EXCHANGE_RSP MeasurementSummaryHash",
            )?)
        } else {
            None
        };
        let opaque = read_opaque(r, "KEY_EXCHANGE_RSP OpaqueData")?;
        let signature = super::take_vec(r, ctx.sig_len, "KEY_EXCHANGE_RSP Signature")?;
        let verify_data = if ctx.handshake_in_clear {
            None
        } else {
            Some(super::take_vec(
                r,
                ctx.hash_len,
                "KEY_EXCHANGE_RSP ResponderVerifyData",
            )?)
        };
        Ok(Self {
            version,
            heartbeat_period: p1,
            rsp_session_id,
            mut_auth_requested: MutAuthRequested(mut_auth),
            req_slot_id,
            random,
            exchange_data,
            measurement_summary_hash,
            opaque,
            signature,
            verify_data,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::KEY_EXCHANGE_RSP,
            self.heartbeat_period,
            0,
        );
        w.u16(self.rsp_session_id)
            .u8(self.mut_auth_requested.0)
            .u8(self.req_slot_id)
            .bytes(&self.random)
            .bytes(&self.exchange_data);
        if let Some(h) = &self.measurement_summary_hash {
            w.bytes(h);
        }
        w.len_u16(self.opaque.len(), "KEY_EXCHANGE_RSP OpaqueDataLength")?
            .bytes(&self.opaque)
            .bytes(&self.signature);
        if let Some(v) = &self.verify_data {
            w.bytes(v);
        }
        Ok(w.into_vec())
    }

    fn signed_len(&self) -> Option<usize> {
        (8 + RANDOM_LEN + 2)
            .checked_add(self.exchange_data.len())
            .and_then(|v| v.checked_add(self.measurement_summary_hash.as_ref().map_or(0, Vec::len)))
            .and_then(|v| v.checked_add(self.opaque.len()))
    }

    /// The bytes of `raw` (as received) that the signature covers: everything before it.
    pub fn signed_portion<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        super::prefix(raw, self.signed_len(), "KEY_EXCHANGE_RSP signed portion")
    }

    /// The bytes of `raw` (as received) up to and including the signature: what enters the
    /// transcript before ResponderVerifyData is computed.
    pub fn without_verify_data<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        let len = self
            .signed_len()
            .and_then(|v| v.checked_add(self.signature.len()));
        super::prefix(raw, len, "KEY_EXCHANGE_RSP without verify data")
    }

    /// The session ID: ReqSessionID | RspSessionID << 16.
    pub fn session_id(&self, req_session_id: u16) -> u32 {
        u32::from(req_session_id) | (u32::from(self.rsp_session_id) << 16)
    }
}
