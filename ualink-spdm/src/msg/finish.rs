//! FINISH / FINISH_RSP (DSP0274 §10.13).
//!
//! ```text
//! FINISH:     SPDMVersion | E5 | Param1 = bit 0 SignatureIncluded | Param2 = ReqSlotID (0..=7, 0xFF)
//!             | Signature[S of ReqBaseAsymAlg] (iff bit 0) | RequesterVerifyData[H]
//! FINISH_RSP: SPDMVersion | 65 | Param1 = 0 | Param2 = 0
//!             | ResponderVerifyData[H] (iff HANDSHAKE_IN_THE_CLEAR is negotiated)
//! ```
//! Transcript slices: [`Finish::signed_portion`] (the header: what the requester signature
//! covers after th1) and [`Finish::without_verify_data`] (header and signature: what
//! RequesterVerifyData's HMAC covers).

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use super::MsgContext;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// FINISH Param1 bit 0.
pub const SIGNATURE_INCLUDED: u8 = 0x01;

/// FINISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// Header version.
    pub version: SpdmVersion,
    /// Param2: the requester's slot (meaningful with a signature).
    pub req_slot_id: u8,
    /// Requester signature (ReqBaseAsymAlg size) for mutual authentication.
    pub signature: Option<Vec<u8>>,
    /// RequesterVerifyData (H bytes).
    pub verify_data: Vec<u8>,
}

impl Finish {
    /// Parses exactly one FINISH. Uses `ctx.req_sig_len` and `ctx.hash_len`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("FINISH")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::FINISH, Some(ctx.version))?;
        super::only_bits(p1, SIGNATURE_INCLUDED, "FINISH Param1")?;
        let req_slot_id = if p2 == 0xFF {
            p2
        } else {
            super::slot(p2, "FINISH ReqSlotID")?
        };
        let signature = if p1 & SIGNATURE_INCLUDED != 0 {
            if ctx.req_sig_len == 0 {
                // No requester signature algorithm was negotiated (no mutual authentication).
                return Err(Malformed::UnknownValue {
                    what: "FINISH SignatureIncluded without a negotiated ReqBaseAsymAlg",
                    value: u32::from(p1),
                }
                .into());
            }
            Some(super::take_vec(r, ctx.req_sig_len, "FINISH Signature")?)
        } else {
            None
        };
        let verify_data = super::take_vec(r, ctx.hash_len, "FINISH RequesterVerifyData")?;
        Ok(Self {
            version,
            req_slot_id,
            signature,
            verify_data,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let p1 = if self.signature.is_some() {
            SIGNATURE_INCLUDED
        } else {
            0
        };
        let mut w = super::start(
            self.version,
            RequestResponseCode::FINISH,
            p1,
            self.req_slot_id,
        );
        if let Some(s) = &self.signature {
            w.bytes(s);
        }
        w.bytes(&self.verify_data);
        Ok(w.into_vec())
    }

    /// The bytes of `raw` (as received) the requester signature covers: the 4-byte header.
    pub fn signed_portion<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        super::prefix(raw, Some(4), "FINISH signed portion")
    }

    /// The bytes of `raw` (as received) before RequesterVerifyData: header and signature.
    pub fn without_verify_data<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        let len = 4usize.checked_add(self.signature.as_ref().map_or(0, Vec::len));
        super::prefix(raw, len, "FINISH without verify data")
    }
}

/// FINISH_RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishRsp {
    /// Header version.
    pub version: SpdmVersion,
    /// ResponderVerifyData iff the handshake is in the clear.
    pub verify_data: Option<Vec<u8>>,
}

impl FinishRsp {
    /// Parses exactly one FINISH_RSP. Uses `ctx.handshake_in_clear` and `ctx.hash_len`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("FINISH_RSP")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::FINISH_RSP, Some(ctx.version))?;
        super::zero(p1, "FINISH_RSP Param1")?;
        super::zero(p2, "FINISH_RSP Param2")?;
        let verify_data = if ctx.handshake_in_clear {
            Some(super::take_vec(
                r,
                ctx.hash_len,
                "FINISH_RSP ResponderVerifyData",
            )?)
        } else {
            None
        };
        Ok(Self {
            version,
            verify_data,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(self.version, RequestResponseCode::FINISH_RSP, 0, 0);
        if let Some(v) = &self.verify_data {
            w.bytes(v);
        }
        Ok(w.into_vec())
    }

    /// The bytes of `raw` (as received) before ResponderVerifyData: the header.
    pub fn without_verify_data<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        super::prefix(raw, Some(4), "FINISH_RSP without verify data")
    }
}
