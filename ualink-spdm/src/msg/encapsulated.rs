//! Encapsulated requests (DSP0274 §10.9): the responder sends requests (mutual authentication)
//! wrapped in responses to the requester's polls.
//!
//! ```text
//! GET_ENCAPSULATED_REQUEST:      SPDMVersion | EA | 00 | 00
//! ENCAPSULATED_REQUEST:          SPDMVersion | 6A | Param1 = RequestID | Param2 = 0 | EncapsulatedRequest
//! DELIVER_ENCAPSULATED_RESPONSE: SPDMVersion | EB | Param1 = RequestID | Param2 = 0 | EncapsulatedResponse
//! ENCAPSULATED_RESPONSE_ACK:     SPDMVersion | 6B | Param1 = RequestID | Param2 = PayloadType
//!                                | AckRequestID u8 | Reserved[3]
//!                                | PayloadType 0: nothing; 1: EncapsulatedRequest; 2: ReqSlotNumber u8
//! ```
//! The wrapped message runs to the end of the outer one and is kept as raw bytes (a complete
//! SPDM message, at least its 4-byte header); [`EncapsulatedRequest::inner`] and
//! [`DeliverEncapsulatedResponse::inner`] parse it with the context of the reversed flow.

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use super::{header_only, MsgContext, SpdmRequest, SpdmResponse};
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

header_only!(
    /// GET_ENCAPSULATED_REQUEST.
    GetEncapsulatedRequest,
    GET_ENCAPSULATED_REQUEST,
    "GET_ENCAPSULATED_REQUEST"
);

fn inner_message(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, Malformed> {
    let rest = r.rest();
    if rest.len() < 4 {
        return Err(Malformed::Truncated { what });
    }
    super::take_vec(r, rest.len(), what)
}

/// ENCAPSULATED_REQUEST: carries a request from the responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncapsulatedRequest {
    /// Header version.
    pub version: SpdmVersion,
    /// RequestID (Param1).
    pub request_id: u8,
    /// The wrapped request, raw.
    pub request: Vec<u8>,
}

impl EncapsulatedRequest {
    /// Parses exactly one ENCAPSULATED_REQUEST.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("ENCAPSULATED_REQUEST")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::ENCAPSULATED_REQUEST, None)?;
        super::zero(p2, "ENCAPSULATED_REQUEST Param2")?;
        Ok(Self {
            version,
            request_id: p1,
            request: inner_message(r, "ENCAPSULATED_REQUEST EncapsulatedRequest")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::ENCAPSULATED_REQUEST,
            self.request_id,
            0,
        );
        w.bytes(&self.request);
        Ok(w.into_vec())
    }

    /// Parses the wrapped request (`ctx` as for the outer flow; reversed internally).
    pub fn inner(&self, ctx: &MsgContext) -> Result<SpdmRequest, Error> {
        SpdmRequest::parse(&self.request, Some(&ctx.reversed()))
    }

    /// Like [`Self::inner`] when the outer message came over PCI DOE through
    /// [`SpdmResponse::parse_padded`]: the DWORD padding then sits at the end of the wrapped
    /// request. Returns the wrapped request and its length without the padding.
    pub fn inner_padded(&self, ctx: &MsgContext) -> Result<(SpdmRequest, usize), Error> {
        SpdmRequest::parse_padded(&self.request, Some(&ctx.reversed()))
    }
}

/// DELIVER_ENCAPSULATED_RESPONSE: carries the requester's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverEncapsulatedResponse {
    /// Header version.
    pub version: SpdmVersion,
    /// RequestID (Param1) of the request answered.
    pub request_id: u8,
    /// The wrapped response, raw.
    pub response: Vec<u8>,
}

impl DeliverEncapsulatedResponse {
    /// Parses exactly one DELIVER_ENCAPSULATED_RESPONSE.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("DELIVER_ENCAPSULATED_RESPONSE")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::DELIVER_ENCAPSULATED_RESPONSE, None)?;
        super::zero(p2, "DELIVER_ENCAPSULATED_RESPONSE Param2")?;
        Ok(Self {
            version,
            request_id: p1,
            response: inner_message(r, "DELIVER_ENCAPSULATED_RESPONSE EncapsulatedResponse")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::DELIVER_ENCAPSULATED_RESPONSE,
            self.request_id,
            0,
        );
        w.bytes(&self.response);
        Ok(w.into_vec())
    }

    /// Parses the wrapped response. `ctx` is the outer flow's context already refined with
    /// [`MsgContext::for_response_to`] for the wrapped request; it is reversed internally.
    pub fn inner(&self, ctx: &MsgContext) -> Result<SpdmResponse, Error> {
        SpdmResponse::parse(&self.response, Some(&ctx.reversed()))
    }

    /// Like [`Self::inner`] when the outer message came over PCI DOE through
    /// [`SpdmRequest::parse_padded`]: returns the wrapped response and its length without the
    /// DWORD padding that then sits at its end.
    pub fn inner_padded(&self, ctx: &MsgContext) -> Result<(SpdmResponse, usize), Error> {
        SpdmResponse::parse_padded(&self.response, Some(&ctx.reversed()))
    }
}

/// ENCAPSULATED_RESPONSE_ACK payload (by PayloadType).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckPayload {
    /// 0: no further encapsulated request.
    Absent,
    /// 1: the next encapsulated request, raw.
    Request(Vec<u8>),
    /// 2: the requester slot to use for mutual authentication in the session handshake.
    ReqSlotNumber(u8),
}

/// ENCAPSULATED_RESPONSE_ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncapsulatedResponseAck {
    /// Header version.
    pub version: SpdmVersion,
    /// RequestID (Param1) of the next request (0 when absent).
    pub request_id: u8,
    /// AckRequestID: the RequestID being acknowledged.
    pub ack_request_id: u8,
    /// Payload.
    pub payload: AckPayload,
}

impl EncapsulatedResponseAck {
    /// Parses exactly one ENCAPSULATED_RESPONSE_ACK.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("ENCAPSULATED_RESPONSE_ACK")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::ENCAPSULATED_RESPONSE_ACK, None)?;
        let ack_request_id = r.u8("ENCAPSULATED_RESPONSE_ACK AckRequestID")?;
        r.reserved(3, "ENCAPSULATED_RESPONSE_ACK Reserved")?;
        let payload = match p2 {
            0 => AckPayload::Absent,
            1 => AckPayload::Request(inner_message(
                r,
                "ENCAPSULATED_RESPONSE_ACK EncapsulatedRequest",
            )?),
            2 => {
                let slot = r.u8("ENCAPSULATED_RESPONSE_ACK ReqSlotNumber")?;
                AckPayload::ReqSlotNumber(super::slot(
                    slot,
                    "ENCAPSULATED_RESPONSE_ACK ReqSlotNumber",
                )?)
            }
            v => {
                return Err(Malformed::UnknownValue {
                    what: "ENCAPSULATED_RESPONSE_ACK PayloadType",
                    value: u32::from(v),
                }
                .into())
            }
        };
        Ok(Self {
            version,
            request_id: p1,
            ack_request_id,
            payload,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let p2 = match self.payload {
            AckPayload::Absent => 0,
            AckPayload::Request(_) => 1,
            AckPayload::ReqSlotNumber(_) => 2,
        };
        let mut w = super::start(
            self.version,
            RequestResponseCode::ENCAPSULATED_RESPONSE_ACK,
            self.request_id,
            p2,
        );
        w.u8(self.ack_request_id).zeros(3);
        match &self.payload {
            AckPayload::Absent => {}
            AckPayload::Request(b) => {
                w.bytes(b);
            }
            AckPayload::ReqSlotNumber(s) => {
                w.u8(*s);
            }
        }
        Ok(w.into_vec())
    }

    /// Parses the wrapped next request, if any (`ctx` as for the outer flow).
    pub fn inner(&self, ctx: &MsgContext) -> Result<Option<SpdmRequest>, Error> {
        match &self.payload {
            AckPayload::Request(b) => SpdmRequest::parse(b, Some(&ctx.reversed())).map(Some),
            _ => Ok(None),
        }
    }

    /// Like [`Self::inner`] for an outer message received over PCI DOE with
    /// [`SpdmResponse::parse_padded`]: also returns the wrapped request's length without the
    /// DWORD padding that then sits at its end.
    pub fn inner_padded(&self, ctx: &MsgContext) -> Result<Option<(SpdmRequest, usize)>, Error> {
        match &self.payload {
            AckPayload::Request(b) => SpdmRequest::parse_padded(b, Some(&ctx.reversed())).map(Some),
            _ => Ok(None),
        }
    }
}
