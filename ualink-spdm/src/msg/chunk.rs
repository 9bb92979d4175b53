//! Large-message chunking (DSP0274 1.2+ §10.20): CHUNK_SEND / CHUNK_SEND_ACK and
//! CHUNK_GET / CHUNK_RESPONSE, used when a message exceeds the peer's DataTransferSize.
//!
//! ```text
//! CHUNK_SEND:     SPDMVersion | 85 | Param1 = bit 0 LastChunk | Param2 = Handle
//!                 | ChunkSeqNo u16 | Reserved u16 | ChunkSize u32 (>= 1)
//!                 | LargeMessageSize u32 (iff ChunkSeqNo = 0) | SPDMchunk[ChunkSize]
//! CHUNK_SEND_ACK: SPDMVersion | 05 | Param1 = bit 0 EarlyErrorDetected | Param2 = Handle
//!                 | ChunkSeqNo u16 | ResponseToLargeRequest (to the end; after the last chunk or
//!                   an early error)
//! CHUNK_GET:      SPDMVersion | 86 | Param1 = 0 | Param2 = Handle | ChunkSeqNo u16
//! CHUNK_RESPONSE: SPDMVersion | 06 | Param1 = bit 0 LastChunk | Param2 = Handle
//!                 | ChunkSeqNo u16 | Reserved u16 | ChunkSize u32 (>= 1)
//!                 | LargeMessageSize u32 (iff ChunkSeqNo = 0) | SPDMchunk[ChunkSize]
//! ```
//! Reassembly (sequence numbers, total size against MaxSPDMmsgSize) is the engine's job.

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// Param1 bit 0 of CHUNK_SEND / CHUNK_RESPONSE.
pub const LAST_CHUNK: u8 = 0x01;
/// Param1 bit 0 of CHUNK_SEND_ACK.
pub const EARLY_ERROR_DETECTED: u8 = 0x01;

/// The body shared by CHUNK_SEND and CHUNK_RESPONSE.
fn read_chunk(
    r: &mut Reader<'_>,
    name: &'static str,
    seq_no: u16,
) -> Result<(Option<u32>, Vec<u8>), Error> {
    r.reserved(2, name)?;
    let size = r.u32(name)?;
    if size == 0 {
        return Err(Malformed::BadLength { what: name }.into());
    }
    let large = if seq_no == 0 {
        Some(r.u32(name)?)
    } else {
        None
    };
    let size = usize::try_from(size).map_err(|_| Malformed::BadLength { what: name })?;
    let chunk = super::take_vec(r, size, name)?;
    Ok((large, chunk))
}

macro_rules! chunk_msg {
    ($(#[$doc:meta])* $name:ident, $code:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            /// Header version.
            pub version: SpdmVersion,
            /// Param1 bit 0: this is the last chunk.
            pub last: bool,
            /// Param2: the large message's handle.
            pub handle: u8,
            /// ChunkSeqNo.
            pub seq_no: u16,
            /// LargeMessageSize (present iff `seq_no` is 0).
            pub large_message_size: Option<u32>,
            /// SPDMchunk (at least one byte).
            pub chunk: Vec<u8>,
        }

        impl $name {
            /// Parses exactly one message.
            pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
                let mut r = Reader::new(bytes);
                let m = Self::read(&mut r)?;
                r.finish($label)?;
                Ok(m)
            }

            pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
                let (version, p1, p2) = super::begin(r, RequestResponseCode::$code, None)?;
                super::only_bits(p1, LAST_CHUNK, concat!($label, " Param1"))?;
                let seq_no = r.u16(concat!($label, " ChunkSeqNo"))?;
                let (large_message_size, chunk) = read_chunk(r, concat!($label, " chunk"), seq_no)?;
                Ok(Self {
                    version,
                    last: p1 & LAST_CHUNK != 0,
                    handle: p2,
                    seq_no,
                    large_message_size,
                    chunk,
                })
            }

            /// Encodes the message; fails if LargeMessageSize presence disagrees with the
            /// sequence number or the chunk is empty.
            pub fn encode(&self) -> Result<Vec<u8>, Error> {
                if self.large_message_size.is_some() != (self.seq_no == 0) || self.chunk.is_empty() {
                    return Err(Error::ApiMisuse(concat!(
                        $label,
                        ": LargeMessageSize iff ChunkSeqNo 0, and a non-empty chunk"
                    )));
                }
                let size = u32::try_from(self.chunk.len()).map_err(|_| Malformed::LengthOverflow {
                    what: concat!($label, " ChunkSize"),
                })?;
                let mut w = super::start(
                    self.version,
                    RequestResponseCode::$code,
                    u8::from(self.last),
                    self.handle,
                );
                w.u16(self.seq_no).u16(0).u32(size);
                if let Some(l) = self.large_message_size {
                    w.u32(l);
                }
                w.bytes(&self.chunk);
                Ok(w.into_vec())
            }
        }
    };
}

chunk_msg!(
    /// CHUNK_SEND: one chunk of a large request.
    ChunkSend,
    CHUNK_SEND,
    "CHUNK_SEND"
);
chunk_msg!(
    /// CHUNK_RESPONSE: one chunk of a large response.
    ChunkResponse,
    CHUNK_RESPONSE,
    "CHUNK_RESPONSE"
);

/// CHUNK_SEND_ACK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSendAck {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1 bit 0: the responder already found an error in the large request.
    pub early_error: bool,
    /// Param2: handle.
    pub handle: u8,
    /// ChunkSeqNo acknowledged.
    pub seq_no: u16,
    /// ResponseToLargeRequest (empty until the last chunk or an early error).
    pub response: Vec<u8>,
}

impl ChunkSendAck {
    /// Parses exactly one CHUNK_SEND_ACK.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("CHUNK_SEND_ACK")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::CHUNK_SEND_ACK, None)?;
        super::only_bits(p1, EARLY_ERROR_DETECTED, "CHUNK_SEND_ACK Param1")?;
        let seq_no = r.u16("CHUNK_SEND_ACK ChunkSeqNo")?;
        let rest = r.rest().len();
        let response = super::take_vec(r, rest, "CHUNK_SEND_ACK ResponseToLargeRequest")?;
        Ok(Self {
            version,
            early_error: p1 != 0,
            handle: p2,
            seq_no,
            response,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::CHUNK_SEND_ACK,
            u8::from(self.early_error),
            self.handle,
        );
        w.u16(self.seq_no).bytes(&self.response);
        Ok(w.into_vec())
    }
}

/// CHUNK_GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkGet {
    /// Header version.
    pub version: SpdmVersion,
    /// Param2: handle from ERROR LargeResponse.
    pub handle: u8,
    /// ChunkSeqNo requested.
    pub seq_no: u16,
}

impl ChunkGet {
    /// Parses exactly one CHUNK_GET.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("CHUNK_GET")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::CHUNK_GET, None)?;
        super::zero(p1, "CHUNK_GET Param1")?;
        Ok(Self {
            version,
            handle: p2,
            seq_no: r.u16("CHUNK_GET ChunkSeqNo")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(self.version, RequestResponseCode::CHUNK_GET, 0, self.handle);
        w.u16(self.seq_no);
        Ok(w.into_vec())
    }
}
