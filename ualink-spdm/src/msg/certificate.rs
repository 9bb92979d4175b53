//! GET_CERTIFICATE / CERTIFICATE (DSP0274 §10.7): the chain is read in portions by offset.
//!
//! ```text
//! GET_CERTIFICATE: SPDMVersion | 82 | Param1 = SlotID (bits 3:0) | Param2 (1.3: bit 0 SlotSizeRequested)
//!                  | Offset u16 | Length u16
//! CERTIFICATE:     SPDMVersion | 02 | Param1 = SlotID (bits 3:0) | Param2 (1.3: CertificateInfo, bits 2:0 CertModel)
//!                  | PortionLength u16 | RemainderLength u16 | CertChain[PortionLength]
//! ```
//! The chain itself (Length u16, Reserved u16, RootHash, DER certificates) is interpreted by
//! `cert_chain`, not here.

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

fn p2_mask(version: SpdmVersion, request: bool) -> u8 {
    match (version, request) {
        (SpdmVersion::V12, _) => 0,
        (SpdmVersion::V13, true) => 0x01,
        (SpdmVersion::V13, false) => 0x07,
    }
}

/// GET_CERTIFICATE: asks for `length` bytes of the chain in `slot_id` from `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetCertificate {
    /// Header version.
    pub version: SpdmVersion,
    /// SlotID (0..=7).
    pub slot_id: u8,
    /// Param2 (1.3: bit 0 SlotSizeRequested; 0 in 1.2).
    pub param2: u8,
    /// Offset into the chain.
    pub offset: u16,
    /// Bytes requested.
    pub length: u16,
}

impl GetCertificate {
    /// Parses exactly one GET_CERTIFICATE.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("GET_CERTIFICATE")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::GET_CERTIFICATE, None)?;
        super::only_bits(p1, 0x0F, "GET_CERTIFICATE Param1")?;
        let slot_id = super::slot(p1, "GET_CERTIFICATE SlotID")?;
        super::only_bits(p2, p2_mask(version, true), "GET_CERTIFICATE Param2")?;
        Ok(Self {
            version,
            slot_id,
            param2: p2,
            offset: r.u16("GET_CERTIFICATE Offset")?,
            length: r.u16("GET_CERTIFICATE Length")?,
        })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::GET_CERTIFICATE,
            self.slot_id,
            self.param2,
        );
        w.u16(self.offset).u16(self.length);
        Ok(w.into_vec())
    }
}

/// CERTIFICATE: one portion of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// Header version.
    pub version: SpdmVersion,
    /// SlotID (0..=7).
    pub slot_id: u8,
    /// Param2 (1.3: CertificateInfo; 0 in 1.2).
    pub param2: u8,
    /// RemainderLength: bytes of the chain after this portion.
    pub remainder_length: u16,
    /// The portion (PortionLength is its length).
    pub portion: Vec<u8>,
}

impl Certificate {
    /// Parses exactly one CERTIFICATE.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("CERTIFICATE")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::CERTIFICATE, None)?;
        super::only_bits(p1, 0x0F, "CERTIFICATE Param1")?;
        let slot_id = super::slot(p1, "CERTIFICATE SlotID")?;
        super::only_bits(p2, p2_mask(version, false), "CERTIFICATE Param2")?;
        super::digests::cert_model(p2, "CERTIFICATE CertificateInfo CertModel")?;
        let portion_len = usize::from(r.u16("CERTIFICATE PortionLength")?);
        let remainder_length = r.u16("CERTIFICATE RemainderLength")?;
        let portion = super::take_vec(r, portion_len, "CERTIFICATE CertChain portion")?;
        Ok(Self {
            version,
            slot_id,
            param2: p2,
            remainder_length,
            portion,
        })
    }

    /// Encodes the message; fails if the portion exceeds 65535 bytes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut w = super::start(
            self.version,
            RequestResponseCode::CERTIFICATE,
            self.slot_id,
            self.param2,
        );
        w.len_u16(self.portion.len(), "CERTIFICATE PortionLength")?
            .u16(self.remainder_length)
            .bytes(&self.portion);
        Ok(w.into_vec())
    }
}

/// Total chain length implied by a portion at `offset`: offset + portion + remainder, checked.
pub fn implied_chain_len(offset: u16, cert: &Certificate) -> Result<usize, Error> {
    usize::from(offset)
        .checked_add(cert.portion.len())
        .and_then(|v| v.checked_add(usize::from(cert.remainder_length)))
        .filter(|v| *v <= usize::from(u16::MAX))
        .ok_or(
            Malformed::BadLength {
                what: "CERTIFICATE offset + PortionLength + RemainderLength",
            }
            .into(),
        )
}
