//! GET_VERSION / VERSION (DSP0274 §10.3). Both always carry SPDMVersion 0x10.
//!
//! ```text
//! GET_VERSION: 10 84 00(rsvd) 00(rsvd)
//! VERSION:     10 04 00(rsvd) 00(rsvd) | Reserved u8 | VersionNumberEntryCount u8 (>= 1)
//!              | VersionNumberEntry u16 x count   (bits 15:12 major, 11:8 minor, 7:4 update, 3:0 alpha)
//! ```

use alloc::vec::Vec;

use super::header::{RequestResponseCode, SpdmHeader, VERSION_10};
use crate::algo::SpdmVersion;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed, PeerMisbehaved};

/// A VersionNumberEntry (`0x1200` = 1.2, `0x1310` = 1.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionNumber(pub u16);

impl VersionNumber {
    /// The entry for a version we speak (update and alpha zero).
    pub const fn of(v: SpdmVersion) -> Self {
        Self((v.byte() as u16) << 8)
    }

    /// Major.minor as the header byte (`0x12` for 1.2.x).
    pub const fn header_byte(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The version this entry names if we speak it (update/alpha ignored, as DSP0274 says).
    pub const fn spdm_version(self) -> Option<SpdmVersion> {
        SpdmVersion::from_byte(self.header_byte())
    }
}

fn begin_10(r: &mut Reader<'_>, code: RequestResponseCode) -> Result<(), Error> {
    let h = SpdmHeader::read(r)?;
    if h.code != code {
        return Err(PeerMisbehaved::UnexpectedMessage {
            expected: code.name().unwrap_or("?"),
            got: h.code.0,
        }
        .into());
    }
    if h.version != VERSION_10 {
        return Err(PeerMisbehaved::VersionMismatch {
            negotiated: VERSION_10,
            got: h.version,
        }
        .into());
    }
    super::zero(h.param1, "VERSION/GET_VERSION Param1")?;
    super::zero(h.param2, "VERSION/GET_VERSION Param2")?;
    Ok(())
}

/// GET_VERSION: header only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GetVersion;

impl GetVersion {
    /// Parses exactly one GET_VERSION.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("GET_VERSION")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        begin_10(r, RequestResponseCode::GET_VERSION)?;
        Ok(Self)
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(alloc::vec![
            VERSION_10,
            RequestResponseCode::GET_VERSION.0,
            0,
            0
        ])
    }
}

/// VERSION: the versions the responder speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// VersionNumberEntry list as sent (at least one entry).
    pub entries: Vec<VersionNumber>,
}

impl Version {
    /// Parses exactly one VERSION.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("VERSION")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        begin_10(r, RequestResponseCode::VERSION)?;
        r.reserved(1, "VERSION Reserved")?;
        let count = r.u8("VERSION VersionNumberEntryCount")?;
        if count == 0 {
            return Err(Malformed::BadLength {
                what: "VERSION VersionNumberEntryCount (zero)",
            }
            .into());
        }
        let mut entries = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            entries.push(VersionNumber(r.u16("VERSION VersionNumberEntry")?));
        }
        Ok(Self { entries })
    }

    /// Encodes the message; fails if there are no entries or more than 255.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let count = u8::try_from(self.entries.len()).map_err(|_| Malformed::LengthOverflow {
            what: "VERSION VersionNumberEntryCount",
        })?;
        if count == 0 {
            return Err(Malformed::BadLength {
                what: "VERSION VersionNumberEntryCount (zero)",
            }
            .into());
        }
        let mut w = Writer::with_capacity(6 + 2 * self.entries.len());
        w.u8(VERSION_10)
            .u8(RequestResponseCode::VERSION.0)
            .u8(0)
            .u8(0)
            .u8(0)
            .u8(count);
        for e in &self.entries {
            w.u16(e.0);
        }
        Ok(w.into_vec())
    }

    /// The highest version both sides speak, given the versions we offer.
    pub fn highest_common(&self, ours: &[SpdmVersion]) -> Option<SpdmVersion> {
        self.entries
            .iter()
            .filter_map(|e| e.spdm_version())
            .filter(|v| ours.contains(v))
            .max()
    }
}
