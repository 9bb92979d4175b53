//! END_SESSION / END_SESSION_ACK (DSP0274 §10.17).
//!
//! ```text
//! END_SESSION:     SPDMVersion | EC | Param1 = bit 0 NegotiatedStateClearing | Param2 = 0
//! END_SESSION_ACK: SPDMVersion | 6C | 00 | 00
//! ```

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use super::header_only;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::Error;

/// END_SESSION Param1 bit 0.
pub const PRESERVE_NEGOTIATED_STATE_CLEAR: u8 = 0x01;

/// END_SESSION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndSession {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1 bit 0: the responder clears the negotiated state it may have preserved.
    pub clear_negotiated_state: bool,
}

impl EndSession {
    /// Parses exactly one END_SESSION.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("END_SESSION")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::END_SESSION, None)?;
        super::only_bits(p1, PRESERVE_NEGOTIATED_STATE_CLEAR, "END_SESSION Param1")?;
        super::zero(p2, "END_SESSION Param2")?;
        Ok(Self {
            version,
            clear_negotiated_state: p1 != 0,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let p1 = u8::from(self.clear_negotiated_state);
        Ok(super::start(self.version, RequestResponseCode::END_SESSION, p1, 0).into_vec())
    }
}

header_only!(
    /// END_SESSION_ACK.
    EndSessionAck,
    END_SESSION_ACK,
    "END_SESSION_ACK"
);
