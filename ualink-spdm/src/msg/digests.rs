//! GET_DIGESTS / DIGESTS (DSP0274 §10.6).
//!
//! ```text
//! GET_DIGESTS: SPDMVersion | 81 | Param1 = 0 | Param2 = 0
//! DIGESTS:     SPDMVersion | 01 | Param1 = SupportedSlotMask (1.3; 0 in 1.2) | Param2 = ProvisionedSlotMask
//!              | Digest[H] x n                     (n = bits set in ProvisionedSlotMask, ascending slot order)
//!              1.3 with MULTI_KEY_CONN only:
//!              | KeyPairID u8 x n | CertificateInfo u8 x n (bits 2:0 CertModel) | KeyUsageMask u16 x n
//! ```
//! In 1.3 the provisioned slots must be a subset of the supported ones.

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use super::MsgContext;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// GET_DIGESTS: header only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetDigests {
    /// Header version.
    pub version: SpdmVersion,
}

impl GetDigests {
    /// Parses exactly one GET_DIGESTS.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("GET_DIGESTS")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::GET_DIGESTS, None)?;
        super::zero(p1, "GET_DIGESTS Param1")?;
        super::zero(p2, "GET_DIGESTS Param2")?;
        Ok(Self { version })
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(super::start(self.version, RequestResponseCode::GET_DIGESTS, 0, 0).into_vec())
    }
}

/// Per-slot key information in a 1.3 multi-key DIGESTS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPairInfo {
    /// KeyPairID.
    pub key_pair_id: u8,
    /// CertificateInfo (bits 2:0 CertModel; other bits reserved).
    pub cert_info: u8,
    /// KeyUsageMask (bits 0..3 key-exchange/challenge/measurement/endpoint-info use,
    /// bit 14 standards, bit 15 vendor; others reserved).
    pub key_usage_mask: u16,
}

/// CertificateInfo CertModel (bits 2:0): 0 none, 1 device, 2 alias, 3 generic; 4..7 reserved.
pub(crate) fn cert_model(info: u8, what: &'static str) -> Result<u8, Malformed> {
    match info & 0x07 {
        m @ 0..=3 => Ok(m),
        m => Err(Malformed::UnknownValue {
            what,
            value: u32::from(m),
        }),
    }
}

/// KeyUsageMask bits that are defined.
pub const KEY_USAGE_DEFINED: u16 = 0xC00F;

/// DIGESTS: one certificate-chain digest per provisioned slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Header version.
    pub version: SpdmVersion,
    /// SupportedSlotMask (1.3; must be 0 in 1.2).
    pub supported_slot_mask: u8,
    /// ProvisionedSlotMask.
    pub provisioned_slot_mask: u8,
    /// One H-byte digest per provisioned slot, in ascending slot order.
    pub digests: Vec<Vec<u8>>,
    /// 1.3 multi-key information per provisioned slot (present iff MULTI_KEY_CONN).
    pub key_pair_info: Option<Vec<KeyPairInfo>>,
}

impl Digests {
    /// Parses exactly one DIGESTS. Uses `ctx.hash_len` and `ctx.multi_key_conn`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("DIGESTS")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::DIGESTS, Some(ctx.version))?;
        if version == SpdmVersion::V12 {
            super::zero(p1, "DIGESTS Param1 (1.2)")?;
        } else if p2 & !p1 != 0 {
            return Err(Malformed::UnknownValue {
                what: "DIGESTS ProvisionedSlotMask (slot not in SupportedSlotMask)",
                value: u32::from(p2),
            }
            .into());
        }
        let n = p2.count_ones() as usize;
        let mut digests = Vec::with_capacity(n);
        for _ in 0..n {
            digests.push(super::take_vec(r, ctx.hash_len, "DIGESTS Digest")?);
        }
        let key_pair_info = if version >= SpdmVersion::V13 && ctx.multi_key_conn {
            let ids = r.take(n, "DIGESTS KeyPairID")?;
            let infos = r.take(n, "DIGESTS CertificateInfo")?;
            let mut out = Vec::with_capacity(n);
            for (id, info) in ids.iter().zip(infos) {
                let key_usage_mask = r.u16("DIGESTS KeyUsageMask")?;
                super::only_bits(*info, 0x07, "DIGESTS CertificateInfo")?;
                cert_model(*info, "DIGESTS CertificateInfo CertModel")?;
                if key_usage_mask & !KEY_USAGE_DEFINED != 0 {
                    return Err(Malformed::ReservedNonZero {
                        what: "DIGESTS KeyUsageMask",
                    }
                    .into());
                }
                out.push(KeyPairInfo {
                    key_pair_id: *id,
                    cert_info: *info,
                    key_usage_mask,
                });
            }
            Some(out)
        } else {
            None
        };
        Ok(Self {
            version,
            supported_slot_mask: p1,
            provisioned_slot_mask: p2,
            digests,
            key_pair_info,
        })
    }

    /// Encodes the message; fails if the number of digests (or key infos) does not match the
    /// provisioned mask.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let n = self.provisioned_slot_mask.count_ones() as usize;
        if self.digests.len() != n || self.key_pair_info.as_ref().is_some_and(|k| k.len() != n) {
            return Err(Error::ApiMisuse(
                "DIGESTS: one digest (and key info) per provisioned slot",
            ));
        }
        let mut w = super::start(
            self.version,
            RequestResponseCode::DIGESTS,
            self.supported_slot_mask,
            self.provisioned_slot_mask,
        );
        for d in &self.digests {
            w.bytes(d);
        }
        if let Some(k) = &self.key_pair_info {
            for i in k {
                w.u8(i.key_pair_id);
            }
            for i in k {
                w.u8(i.cert_info);
            }
            for i in k {
                w.u16(i.key_usage_mask);
            }
        }
        Ok(w.into_vec())
    }
}
