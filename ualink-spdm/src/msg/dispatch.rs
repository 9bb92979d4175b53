//! Dispatch by RequestResponseCode: [`SpdmRequest`] and [`SpdmResponse`].
//!
//! Unknown codes and codes this crate does not implement (GET_CSR, SET_CERTIFICATE, ...)
//! are [`Malformed::UnknownValue`]; a response code where a request is expected (or the other way
//! round) is [`PeerMisbehaved::UnexpectedMessage`].

use alloc::vec::Vec;

use super::*;
use crate::codec::Reader;
use crate::error::{Error, Malformed, PeerMisbehaved};

fn check_version(h: &SpdmHeader, ctx: Option<&MsgContext>) -> Result<(), Error> {
    if let Some(c) = ctx {
        let exempt =
            h.code == RequestResponseCode::GET_VERSION || h.code == RequestResponseCode::VERSION;
        if !exempt && h.version != c.version.byte() {
            return Err(PeerMisbehaved::VersionMismatch {
                negotiated: c.version.byte(),
                got: h.version,
            }
            .into());
        }
    }
    Ok(())
}

fn need_ctx<'a>(h: &SpdmHeader, ctx: Option<&'a MsgContext>) -> Result<&'a MsgContext, Error> {
    ctx.ok_or(
        PeerMisbehaved::UnexpectedMessage {
            expected: "a VCA message (nothing negotiated yet)",
            got: h.code.0,
        }
        .into(),
    )
}

fn unexpected(c: RequestResponseCode, want_request: bool) -> Error {
    if c.name().is_some() && c.is_request() != want_request {
        PeerMisbehaved::UnexpectedMessage {
            expected: if want_request {
                "a request"
            } else {
                "a response"
            },
            got: c.0,
        }
        .into()
    } else {
        Malformed::UnknownValue {
            what: "RequestResponseCode (unknown or not implemented)",
            value: u32::from(c.0),
        }
        .into()
    }
}

/// Any SPDM request this crate parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpdmRequest {
    /// GET_VERSION.
    GetVersion(GetVersion),
    /// GET_CAPABILITIES.
    GetCapabilities(GetCapabilities),
    /// NEGOTIATE_ALGORITHMS.
    NegotiateAlgorithms(NegotiateAlgorithms),
    /// GET_DIGESTS.
    GetDigests(GetDigests),
    /// GET_CERTIFICATE.
    GetCertificate(GetCertificate),
    /// CHALLENGE.
    Challenge(Challenge),
    /// GET_MEASUREMENTS.
    GetMeasurements(GetMeasurements),
    /// KEY_EXCHANGE.
    KeyExchange(KeyExchange),
    /// FINISH.
    Finish(Finish),
    /// PSK_EXCHANGE.
    PskExchange(PskExchange),
    /// PSK_FINISH.
    PskFinish(PskFinish),
    /// HEARTBEAT.
    Heartbeat(Heartbeat),
    /// KEY_UPDATE.
    KeyUpdate(KeyUpdate),
    /// GET_ENCAPSULATED_REQUEST.
    GetEncapsulatedRequest(GetEncapsulatedRequest),
    /// DELIVER_ENCAPSULATED_RESPONSE.
    DeliverEncapsulatedResponse(DeliverEncapsulatedResponse),
    /// END_SESSION.
    EndSession(EndSession),
    /// VENDOR_DEFINED_REQUEST.
    VendorDefined(VendorDefinedRequest),
    /// RESPOND_IF_READY.
    RespondIfReady(RespondIfReady),
    /// CHUNK_SEND.
    ChunkSend(ChunkSend),
    /// CHUNK_GET.
    ChunkGet(ChunkGet),
}

/// The message reader both dispatchers share.
type ReadFn<T> = fn(&mut Reader<'_>, Option<&MsgContext>) -> Result<T, Error>;

/// Parses exactly one message with `read`; any byte after it is an error naming `what`.
fn parse_whole<T>(
    bytes: &[u8],
    ctx: Option<&MsgContext>,
    what: &'static str,
    read: ReadFn<T>,
) -> Result<T, Error> {
    let mut r = Reader::new(bytes);
    let m = read(&mut r, ctx)?;
    r.finish(what)?;
    Ok(m)
}

/// Parses one message with `read` allowing up to three zero bytes of DOE padding after it;
/// returns the message and its length without the padding.
fn parse_doe_padded<T>(
    bytes: &[u8],
    ctx: Option<&MsgContext>,
    what: &'static str,
    read: ReadFn<T>,
) -> Result<(T, usize), Error> {
    let mut r = Reader::new(bytes);
    let m = read(&mut r, ctx)?;
    let used = r.consumed();
    super::finish_padded(&r, what)?;
    Ok((m, used))
}

impl SpdmRequest {
    /// Parses exactly one request by its code. `ctx` is `None` before ALGORITHMS (only VCA
    /// messages are accepted then); with a context every message except GET_VERSION/VERSION must
    /// carry `ctx.version` ([`PeerMisbehaved::VersionMismatch`]).
    pub fn parse(bytes: &[u8], ctx: Option<&MsgContext>) -> Result<Self, Error> {
        parse_whole(bytes, ctx, "SPDM request", Self::read)
    }

    /// Like [`Self::parse`] for transports that pad to 4 bytes (PCI DOE): accepts up to three
    /// zero bytes after the message and returns the message length without them (use that many
    /// bytes of the input for transcripts).
    ///
    /// Messages whose last field runs to the end of the message (the encapsulated-flow
    /// wrappers, CHUNK_SEND_ACK, vendor ERROR data) cannot tell padding from content: their tail
    /// keeps it and the returned length includes it. For the wrappers, `inner_padded` parses the
    /// wrapped message and returns its unpadded length.
    pub fn parse_padded(bytes: &[u8], ctx: Option<&MsgContext>) -> Result<(Self, usize), Error> {
        parse_doe_padded(bytes, ctx, "SPDM request (beyond DOE padding)", Self::read)
    }

    fn read(r: &mut Reader<'_>, ctx: Option<&MsgContext>) -> Result<Self, Error> {
        let h = SpdmHeader::peek(r.rest())?;
        check_version(&h, ctx)?;
        let need = || need_ctx(&h, ctx);
        Ok(match h.code {
            RequestResponseCode::GET_VERSION => Self::GetVersion(GetVersion::read(r)?),
            RequestResponseCode::GET_CAPABILITIES => {
                Self::GetCapabilities(GetCapabilities::read(r)?)
            }
            RequestResponseCode::NEGOTIATE_ALGORITHMS => {
                Self::NegotiateAlgorithms(NegotiateAlgorithms::read(r)?)
            }
            RequestResponseCode::GET_DIGESTS => Self::GetDigests(GetDigests::read(r)?),
            RequestResponseCode::GET_CERTIFICATE => Self::GetCertificate(GetCertificate::read(r)?),
            RequestResponseCode::CHALLENGE => Self::Challenge(Challenge::read(r)?),
            RequestResponseCode::GET_MEASUREMENTS => {
                Self::GetMeasurements(GetMeasurements::read(r)?)
            }
            RequestResponseCode::KEY_EXCHANGE => Self::KeyExchange(KeyExchange::read(r, need()?)?),
            RequestResponseCode::FINISH => Self::Finish(Finish::read(r, need()?)?),
            RequestResponseCode::PSK_EXCHANGE => Self::PskExchange(PskExchange::read(r, need()?)?),
            RequestResponseCode::PSK_FINISH => Self::PskFinish(PskFinish::read(r, need()?)?),
            RequestResponseCode::HEARTBEAT => Self::Heartbeat(Heartbeat::read(r)?),
            RequestResponseCode::KEY_UPDATE => Self::KeyUpdate(KeyUpdate::read(r)?),
            RequestResponseCode::GET_ENCAPSULATED_REQUEST => {
                Self::GetEncapsulatedRequest(GetEncapsulatedRequest::read(r)?)
            }
            RequestResponseCode::DELIVER_ENCAPSULATED_RESPONSE => {
                Self::DeliverEncapsulatedResponse(DeliverEncapsulatedResponse::read(r)?)
            }
            RequestResponseCode::END_SESSION => Self::EndSession(EndSession::read(r)?),
            RequestResponseCode::VENDOR_DEFINED_REQUEST => {
                Self::VendorDefined(VendorDefinedRequest::read(r)?)
            }
            RequestResponseCode::RESPOND_IF_READY => Self::RespondIfReady(RespondIfReady::read(r)?),
            RequestResponseCode::CHUNK_SEND => Self::ChunkSend(ChunkSend::read(r)?),
            RequestResponseCode::CHUNK_GET => Self::ChunkGet(ChunkGet::read(r)?),
            c => return Err(unexpected(c, true)),
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        match self {
            Self::GetVersion(m) => m.encode(),
            Self::GetCapabilities(m) => m.encode(),
            Self::NegotiateAlgorithms(m) => m.encode(),
            Self::GetDigests(m) => m.encode(),
            Self::GetCertificate(m) => m.encode(),
            Self::Challenge(m) => m.encode(),
            Self::GetMeasurements(m) => m.encode(),
            Self::KeyExchange(m) => m.encode(),
            Self::Finish(m) => m.encode(),
            Self::PskExchange(m) => m.encode(),
            Self::PskFinish(m) => m.encode(),
            Self::Heartbeat(m) => m.encode(),
            Self::KeyUpdate(m) => m.encode(),
            Self::GetEncapsulatedRequest(m) => m.encode(),
            Self::DeliverEncapsulatedResponse(m) => m.encode(),
            Self::EndSession(m) => m.encode(),
            Self::VendorDefined(m) => m.encode(),
            Self::RespondIfReady(m) => m.encode(),
            Self::ChunkSend(m) => m.encode(),
            Self::ChunkGet(m) => m.encode(),
        }
    }

    /// The RequestResponseCode of this message.
    pub fn code(&self) -> RequestResponseCode {
        match self {
            Self::GetVersion(_) => RequestResponseCode::GET_VERSION,
            Self::GetCapabilities(_) => RequestResponseCode::GET_CAPABILITIES,
            Self::NegotiateAlgorithms(_) => RequestResponseCode::NEGOTIATE_ALGORITHMS,
            Self::GetDigests(_) => RequestResponseCode::GET_DIGESTS,
            Self::GetCertificate(_) => RequestResponseCode::GET_CERTIFICATE,
            Self::Challenge(_) => RequestResponseCode::CHALLENGE,
            Self::GetMeasurements(_) => RequestResponseCode::GET_MEASUREMENTS,
            Self::KeyExchange(_) => RequestResponseCode::KEY_EXCHANGE,
            Self::Finish(_) => RequestResponseCode::FINISH,
            Self::PskExchange(_) => RequestResponseCode::PSK_EXCHANGE,
            Self::PskFinish(_) => RequestResponseCode::PSK_FINISH,
            Self::Heartbeat(_) => RequestResponseCode::HEARTBEAT,
            Self::KeyUpdate(_) => RequestResponseCode::KEY_UPDATE,
            Self::GetEncapsulatedRequest(_) => RequestResponseCode::GET_ENCAPSULATED_REQUEST,
            Self::DeliverEncapsulatedResponse(_) => {
                RequestResponseCode::DELIVER_ENCAPSULATED_RESPONSE
            }
            Self::EndSession(_) => RequestResponseCode::END_SESSION,
            Self::VendorDefined(_) => RequestResponseCode::VENDOR_DEFINED_REQUEST,
            Self::RespondIfReady(_) => RequestResponseCode::RESPOND_IF_READY,
            Self::ChunkSend(_) => RequestResponseCode::CHUNK_SEND,
            Self::ChunkGet(_) => RequestResponseCode::CHUNK_GET,
        }
    }
}

/// Any SPDM response this crate parses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpdmResponse {
    /// VERSION.
    Version(Version),
    /// CAPABILITIES.
    Capabilities(Capabilities),
    /// ALGORITHMS.
    Algorithms(Algorithms),
    /// DIGESTS.
    Digests(Digests),
    /// CERTIFICATE.
    Certificate(Certificate),
    /// CHALLENGE_AUTH.
    ChallengeAuth(ChallengeAuth),
    /// MEASUREMENTS.
    Measurements(Measurements),
    /// KEY_EXCHANGE_RSP.
    KeyExchangeRsp(KeyExchangeRsp),
    /// FINISH_RSP.
    FinishRsp(FinishRsp),
    /// PSK_EXCHANGE_RSP.
    PskExchangeRsp(PskExchangeRsp),
    /// PSK_FINISH_RSP.
    PskFinishRsp(PskFinishRsp),
    /// HEARTBEAT_ACK.
    HeartbeatAck(HeartbeatAck),
    /// KEY_UPDATE_ACK.
    KeyUpdateAck(KeyUpdateAck),
    /// ENCAPSULATED_REQUEST.
    EncapsulatedRequest(EncapsulatedRequest),
    /// ENCAPSULATED_RESPONSE_ACK.
    EncapsulatedResponseAck(EncapsulatedResponseAck),
    /// END_SESSION_ACK.
    EndSessionAck(EndSessionAck),
    /// VENDOR_DEFINED_RESPONSE.
    VendorDefined(VendorDefinedResponse),
    /// ERROR.
    Error(ErrorResponse),
    /// CHUNK_SEND_ACK.
    ChunkSendAck(ChunkSendAck),
    /// CHUNK_RESPONSE.
    ChunkResponse(ChunkResponse),
}

impl SpdmResponse {
    /// Parses exactly one response by its code. `ctx` is `None` before ALGORITHMS (only VCA
    /// messages are accepted then); with a context every message except GET_VERSION/VERSION must
    /// carry `ctx.version` ([`PeerMisbehaved::VersionMismatch`]).
    pub fn parse(bytes: &[u8], ctx: Option<&MsgContext>) -> Result<Self, Error> {
        parse_whole(bytes, ctx, "SPDM response", Self::read)
    }

    /// Like [`Self::parse`] for transports that pad to 4 bytes (PCI DOE): accepts up to three
    /// zero bytes after the message and returns the message length without them (use that many
    /// bytes of the input for transcripts).
    ///
    /// Messages whose last field runs to the end of the message (the encapsulated-flow
    /// wrappers, CHUNK_SEND_ACK, vendor ERROR data) cannot tell padding from content: their tail
    /// keeps it and the returned length includes it. For the wrappers, `inner_padded` parses the
    /// wrapped message and returns its unpadded length.
    pub fn parse_padded(bytes: &[u8], ctx: Option<&MsgContext>) -> Result<(Self, usize), Error> {
        parse_doe_padded(bytes, ctx, "SPDM response (beyond DOE padding)", Self::read)
    }

    fn read(r: &mut Reader<'_>, ctx: Option<&MsgContext>) -> Result<Self, Error> {
        let h = SpdmHeader::peek(r.rest())?;
        check_version(&h, ctx)?;
        let need = || need_ctx(&h, ctx);
        Ok(match h.code {
            RequestResponseCode::VERSION => Self::Version(Version::read(r)?),
            RequestResponseCode::CAPABILITIES => Self::Capabilities(Capabilities::read(r)?),
            RequestResponseCode::ALGORITHMS => Self::Algorithms(Algorithms::read(r)?),
            RequestResponseCode::DIGESTS => Self::Digests(Digests::read(r, need()?)?),
            RequestResponseCode::CERTIFICATE => Self::Certificate(Certificate::read(r)?),
            RequestResponseCode::CHALLENGE_AUTH => {
                Self::ChallengeAuth(ChallengeAuth::read(r, need()?)?)
            }
            RequestResponseCode::MEASUREMENTS => {
                Self::Measurements(Measurements::read(r, need()?)?)
            }
            RequestResponseCode::KEY_EXCHANGE_RSP => {
                Self::KeyExchangeRsp(KeyExchangeRsp::read(r, need()?)?)
            }
            RequestResponseCode::FINISH_RSP => Self::FinishRsp(FinishRsp::read(r, need()?)?),
            RequestResponseCode::PSK_EXCHANGE_RSP => {
                Self::PskExchangeRsp(PskExchangeRsp::read(r, need()?)?)
            }
            RequestResponseCode::PSK_FINISH_RSP => Self::PskFinishRsp(PskFinishRsp::read(r)?),
            RequestResponseCode::HEARTBEAT_ACK => Self::HeartbeatAck(HeartbeatAck::read(r)?),
            RequestResponseCode::KEY_UPDATE_ACK => Self::KeyUpdateAck(KeyUpdateAck::read(r)?),
            RequestResponseCode::ENCAPSULATED_REQUEST => {
                Self::EncapsulatedRequest(EncapsulatedRequest::read(r)?)
            }
            RequestResponseCode::ENCAPSULATED_RESPONSE_ACK => {
                Self::EncapsulatedResponseAck(EncapsulatedResponseAck::read(r)?)
            }
            RequestResponseCode::END_SESSION_ACK => Self::EndSessionAck(EndSessionAck::read(r)?),
            RequestResponseCode::VENDOR_DEFINED_RESPONSE => {
                Self::VendorDefined(VendorDefinedResponse::read(r)?)
            }
            RequestResponseCode::ERROR => Self::Error(ErrorResponse::read(r)?),
            RequestResponseCode::CHUNK_SEND_ACK => Self::ChunkSendAck(ChunkSendAck::read(r)?),
            RequestResponseCode::CHUNK_RESPONSE => Self::ChunkResponse(ChunkResponse::read(r)?),
            c => return Err(unexpected(c, false)),
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        match self {
            Self::Version(m) => m.encode(),
            Self::Capabilities(m) => m.encode(),
            Self::Algorithms(m) => m.encode(),
            Self::Digests(m) => m.encode(),
            Self::Certificate(m) => m.encode(),
            Self::ChallengeAuth(m) => m.encode(),
            Self::Measurements(m) => m.encode(),
            Self::KeyExchangeRsp(m) => m.encode(),
            Self::FinishRsp(m) => m.encode(),
            Self::PskExchangeRsp(m) => m.encode(),
            Self::PskFinishRsp(m) => m.encode(),
            Self::HeartbeatAck(m) => m.encode(),
            Self::KeyUpdateAck(m) => m.encode(),
            Self::EncapsulatedRequest(m) => m.encode(),
            Self::EncapsulatedResponseAck(m) => m.encode(),
            Self::EndSessionAck(m) => m.encode(),
            Self::VendorDefined(m) => m.encode(),
            Self::Error(m) => m.encode(),
            Self::ChunkSendAck(m) => m.encode(),
            Self::ChunkResponse(m) => m.encode(),
        }
    }

    /// The RequestResponseCode of this message.
    pub fn code(&self) -> RequestResponseCode {
        match self {
            Self::Version(_) => RequestResponseCode::VERSION,
            Self::Capabilities(_) => RequestResponseCode::CAPABILITIES,
            Self::Algorithms(_) => RequestResponseCode::ALGORITHMS,
            Self::Digests(_) => RequestResponseCode::DIGESTS,
            Self::Certificate(_) => RequestResponseCode::CERTIFICATE,
            Self::ChallengeAuth(_) => RequestResponseCode::CHALLENGE_AUTH,
            Self::Measurements(_) => RequestResponseCode::MEASUREMENTS,
            Self::KeyExchangeRsp(_) => RequestResponseCode::KEY_EXCHANGE_RSP,
            Self::FinishRsp(_) => RequestResponseCode::FINISH_RSP,
            Self::PskExchangeRsp(_) => RequestResponseCode::PSK_EXCHANGE_RSP,
            Self::PskFinishRsp(_) => RequestResponseCode::PSK_FINISH_RSP,
            Self::HeartbeatAck(_) => RequestResponseCode::HEARTBEAT_ACK,
            Self::KeyUpdateAck(_) => RequestResponseCode::KEY_UPDATE_ACK,
            Self::EncapsulatedRequest(_) => RequestResponseCode::ENCAPSULATED_REQUEST,
            Self::EncapsulatedResponseAck(_) => RequestResponseCode::ENCAPSULATED_RESPONSE_ACK,
            Self::EndSessionAck(_) => RequestResponseCode::END_SESSION_ACK,
            Self::VendorDefined(_) => RequestResponseCode::VENDOR_DEFINED_RESPONSE,
            Self::Error(_) => RequestResponseCode::ERROR,
            Self::ChunkSendAck(_) => RequestResponseCode::CHUNK_SEND_ACK,
            Self::ChunkResponse(_) => RequestResponseCode::CHUNK_RESPONSE,
        }
    }
}

impl SpdmRequest {
    /// The SPDMVersion byte in the header (0x10 for GET_VERSION).
    pub fn version_byte(&self) -> u8 {
        match self {
            Self::GetVersion(_) => header::VERSION_10,
            Self::GetCapabilities(m) => m.version.byte(),
            Self::NegotiateAlgorithms(m) => m.version.byte(),
            Self::GetDigests(m) => m.version.byte(),
            Self::GetCertificate(m) => m.version.byte(),
            Self::Challenge(m) => m.version.byte(),
            Self::GetMeasurements(m) => m.version.byte(),
            Self::KeyExchange(m) => m.version.byte(),
            Self::Finish(m) => m.version.byte(),
            Self::PskExchange(m) => m.version.byte(),
            Self::PskFinish(m) => m.version.byte(),
            Self::Heartbeat(m) => m.version.byte(),
            Self::KeyUpdate(m) => m.version.byte(),
            Self::GetEncapsulatedRequest(m) => m.version.byte(),
            Self::DeliverEncapsulatedResponse(m) => m.version.byte(),
            Self::EndSession(m) => m.version.byte(),
            Self::VendorDefined(m) => m.version.byte(),
            Self::RespondIfReady(m) => m.version.byte(),
            Self::ChunkSend(m) => m.version.byte(),
            Self::ChunkGet(m) => m.version.byte(),
        }
    }
}

impl SpdmResponse {
    /// The SPDMVersion byte in the header (0x10 for VERSION; ERROR carries its own).
    pub fn version_byte(&self) -> u8 {
        match self {
            Self::Version(_) => header::VERSION_10,
            Self::Capabilities(m) => m.version.byte(),
            Self::Algorithms(m) => m.version.byte(),
            Self::Digests(m) => m.version.byte(),
            Self::Certificate(m) => m.version.byte(),
            Self::ChallengeAuth(m) => m.version.byte(),
            Self::Measurements(m) => m.version.byte(),
            Self::KeyExchangeRsp(m) => m.version.byte(),
            Self::FinishRsp(m) => m.version.byte(),
            Self::PskExchangeRsp(m) => m.version.byte(),
            Self::PskFinishRsp(m) => m.version.byte(),
            Self::HeartbeatAck(m) => m.version.byte(),
            Self::KeyUpdateAck(m) => m.version.byte(),
            Self::EncapsulatedRequest(m) => m.version.byte(),
            Self::EncapsulatedResponseAck(m) => m.version.byte(),
            Self::EndSessionAck(m) => m.version.byte(),
            Self::VendorDefined(m) => m.version.byte(),
            Self::Error(m) => m.version,
            Self::ChunkSendAck(m) => m.version.byte(),
            Self::ChunkResponse(m) => m.version.byte(),
        }
    }
}
