//! PSK_EXCHANGE / PSK_EXCHANGE_RSP / PSK_FINISH / PSK_FINISH_RSP (DSP0274 §10.18).
//! Parsed so that every captured message is understood; this crate does not run PSK sessions.
//!
//! ```text
//! PSK_EXCHANGE:     SPDMVersion | E6 | Param1 = MeasurementSummaryHashType | Param2 = SessionPolicy
//!                   | ReqSessionID u16 | PSKHintLength u16 | RequesterContextLength u16
//!                   | OpaqueDataLength u16 (<= 1024) | PSKHint | RequesterContext | OpaqueData
//! PSK_EXCHANGE_RSP: SPDMVersion | 66 | Param1 = HeartbeatPeriod | Param2 = 0
//!                   | RspSessionID u16 | Reserved u16 | ResponderContextLength u16
//!                   | OpaqueDataLength u16 | MeasurementSummaryHash[H] (iff requested)
//!                   | ResponderContext | OpaqueData | ResponderVerifyData[H]
//! PSK_FINISH:       SPDMVersion | E7 | 00 | 00 | RequesterVerifyData[H]
//! PSK_FINISH_RSP:   SPDMVersion | 67 | 00 | 00
//! ```

use alloc::vec::Vec;

use super::challenge::{MeasurementSummaryType, MAX_OPAQUE_LEN};
use super::header::RequestResponseCode;
use super::{header_only, MsgContext};
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

fn opaque_len(r: &mut Reader<'_>, what: &'static str) -> Result<usize, Malformed> {
    let len = usize::from(r.u16(what)?);
    if len > MAX_OPAQUE_LEN {
        return Err(Malformed::BadLength { what });
    }
    Ok(len)
}

/// PSK_EXCHANGE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskExchange {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1.
    pub summary_type: MeasurementSummaryType,
    /// Param2: SessionPolicy.
    pub session_policy: u8,
    /// ReqSessionID.
    pub req_session_id: u16,
    /// PSKHint.
    pub psk_hint: Vec<u8>,
    /// RequesterContext.
    pub requester_context: Vec<u8>,
    /// OpaqueData.
    pub opaque: Vec<u8>,
}

impl PskExchange {
    /// Parses exactly one PSK_EXCHANGE.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("PSK_EXCHANGE")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::PSK_EXCHANGE, Some(ctx.version))?;
        let summary_type =
            MeasurementSummaryType::from_byte(p1, "PSK_EXCHANGE MeasurementSummaryHashType")?;
        let policy_mask = if version >= SpdmVersion::V13 {
            0x03
        } else {
            0x01
        };
        super::only_bits(p2, policy_mask, "PSK_EXCHANGE SessionPolicy")?;
        let req_session_id = r.u16("PSK_EXCHANGE ReqSessionID")?;
        let hint_len = usize::from(r.u16("PSK_EXCHANGE PSKHintLength")?);
        let ctx_len = usize::from(r.u16("PSK_EXCHANGE RequesterContextLength")?);
        let op_len = opaque_len(r, "PSK_EXCHANGE OpaqueDataLength")?;
        Ok(Self {
            version,
            summary_type,
            session_policy: p2,
            req_session_id,
            psk_hint: super::take_vec(r, hint_len, "PSK_EXCHANGE PSKHint")?,
            requester_context: super::take_vec(r, ctx_len, "PSK_EXCHANGE RequesterContext")?,
            opaque: super::take_vec(r, op_len, "PSK_EXCHANGE OpaqueData")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::PSK_EXCHANGE,
            self.summary_type.byte(),
            self.session_policy,
        );
        w.u16(self.req_session_id)
            .len_u16(self.psk_hint.len(), "PSK_EXCHANGE PSKHintLength")?
            .len_u16(
                self.requester_context.len(),
                "PSK_EXCHANGE RequesterContextLength",
            )?
            .len_u16(self.opaque.len(), "PSK_EXCHANGE OpaqueDataLength")?
            .bytes(&self.psk_hint)
            .bytes(&self.requester_context)
            .bytes(&self.opaque);
        Ok(w.into_vec())
    }
}

/// PSK_EXCHANGE_RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskExchangeRsp {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1: HeartbeatPeriod.
    pub heartbeat_period: u8,
    /// RspSessionID.
    pub rsp_session_id: u16,
    /// MeasurementSummaryHash iff requested.
    pub measurement_summary_hash: Option<Vec<u8>>,
    /// ResponderContext.
    pub responder_context: Vec<u8>,
    /// OpaqueData.
    pub opaque: Vec<u8>,
    /// ResponderVerifyData (H bytes).
    pub verify_data: Vec<u8>,
}

impl PskExchangeRsp {
    /// Parses exactly one PSK_EXCHANGE_RSP. Uses `ctx.hash_len` and `ctx.summary_hash_requested`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("PSK_EXCHANGE_RSP")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::PSK_EXCHANGE_RSP, Some(ctx.version))?;
        super::zero(p2, "PSK_EXCHANGE_RSP Param2")?;
        let rsp_session_id = r.u16("PSK_EXCHANGE_RSP RspSessionID")?;
        r.reserved(2, "PSK_EXCHANGE_RSP Reserved")?;
        let ctx_len = usize::from(r.u16("PSK_EXCHANGE_RSP ResponderContextLength")?);
        let op_len = opaque_len(r, "PSK_EXCHANGE_RSP OpaqueDataLength")?;
        let measurement_summary_hash = if ctx.summary_hash_requested {
            Some(super::take_vec(
                r,
                ctx.hash_len,
                "PSK_EXCHANGE_RSP MeasurementSummaryHash",
            )?)
        } else {
            None
        };
        Ok(Self {
            version,
            heartbeat_period: p1,
            rsp_session_id,
            measurement_summary_hash,
            responder_context: super::take_vec(r, ctx_len, "PSK_EXCHANGE_RSP ResponderContext")?,
            opaque: super::take_vec(r, op_len, "PSK_EXCHANGE_RSP OpaqueData")?,
            verify_data: super::take_vec(r, ctx.hash_len, "PSK_EXCHANGE_RSP ResponderVerifyData")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::PSK_EXCHANGE_RSP,
            self.heartbeat_period,
            0,
        );
        w.u16(self.rsp_session_id)
            .u16(0)
            .len_u16(
                self.responder_context.len(),
                "PSK_EXCHANGE_RSP ResponderContextLength",
            )?
            .len_u16(self.opaque.len(), "PSK_EXCHANGE_RSP OpaqueDataLength")?;
        if let Some(h) = &self.measurement_summary_hash {
            w.bytes(h);
        }
        w.bytes(&self.responder_context)
            .bytes(&self.opaque)
            .bytes(&self.verify_data);
        Ok(w.into_vec())
    }

    /// The bytes of `raw` (as received) before ResponderVerifyData.
    pub fn without_verify_data<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        let len = 12usize
            .checked_add(self.measurement_summary_hash.as_ref().map_or(0, Vec::len))
            .and_then(|v| v.checked_add(self.responder_context.len()))
            .and_then(|v| v.checked_add(self.opaque.len()));
        super::prefix(raw, len, "PSK_EXCHANGE_RSP without verify data")
    }
}

/// PSK_FINISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PskFinish {
    /// Header version.
    pub version: SpdmVersion,
    /// RequesterVerifyData (H bytes).
    pub verify_data: Vec<u8>,
}

impl PskFinish {
    /// Parses exactly one PSK_FINISH. Uses `ctx.hash_len`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("PSK_FINISH")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::PSK_FINISH, Some(ctx.version))?;
        super::zero(p1, "PSK_FINISH Param1")?;
        super::zero(p2, "PSK_FINISH Param2")?;
        Ok(Self {
            version,
            verify_data: super::take_vec(r, ctx.hash_len, "PSK_FINISH RequesterVerifyData")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(self.version, RequestResponseCode::PSK_FINISH, 0, 0);
        w.bytes(&self.verify_data);
        Ok(w.into_vec())
    }
}

header_only!(
    /// PSK_FINISH_RSP.
    PskFinishRsp,
    PSK_FINISH_RSP,
    "PSK_FINISH_RSP"
);
