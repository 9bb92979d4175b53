//! RESPOND_IF_READY (DSP0274 §10.16.2): retrieves a response the responder deferred with
//! ERROR ResponseNotReady.
//!
//! ```text
//! SPDMVersion | FF | Param1 = original RequestCode | Param2 = Token (from ResponseNotReady)
//! ```

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// RESPOND_IF_READY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RespondIfReady {
    /// Header version.
    pub version: SpdmVersion,
    /// The request being retried (a known request code).
    pub request_code: RequestResponseCode,
    /// Token from ResponseNotReady.
    pub token: u8,
}

impl RespondIfReady {
    /// Parses exactly one RESPOND_IF_READY.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("RESPOND_IF_READY")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::RESPOND_IF_READY, None)?;
        let code = RequestResponseCode(p1);
        if !code.is_request()
            || code.name().is_none()
            || code == RequestResponseCode::RESPOND_IF_READY
        {
            return Err(Malformed::UnknownValue {
                what: "RESPOND_IF_READY RequestCode",
                value: u32::from(p1),
            }
            .into());
        }
        Ok(Self {
            version,
            request_code: code,
            token: p2,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(super::start(
            self.version,
            RequestResponseCode::RESPOND_IF_READY,
            self.request_code.0,
            self.token,
        )
        .into_vec())
    }
}
