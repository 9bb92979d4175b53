//! GET_MEASUREMENTS / MEASUREMENTS (DSP0274 §10.11) and DMTF measurement blocks.
//!
//! ```text
//! GET_MEASUREMENTS: SPDMVersion | E0 | Param1 = attributes (bit 0 SignatureRequested,
//!                     bit 1 RawBitStreamRequested, 1.3: bit 2 NewMeasurementRequested)
//!                   | Param2 = MeasurementOperation (0 count, 1..=0xFE index, 0xFF all)
//!                   | Nonce[32] + SlotIDParam u8 (bits 3:0)   (iff SignatureRequested)
//!                   | RequesterContext[8]                      (1.3)
//! MEASUREMENTS:     SPDMVersion | 60 | Param1 = TotalNumberOfMeasurementIndices (operation 0) else 0
//!                   | Param2 = bits 3:0 SlotID, bits 5:4 ContentChanged, bits 7:6 reserved
//!                   | NumberOfBlocks u8 | MeasurementRecordLength u24 | MeasurementRecord
//!                   | Nonce[32] | OpaqueDataLength u16 (<= 1024) | OpaqueData
//!                   | RequesterContext[8] (1.3) | Signature[S] (iff requested)
//! Measurement block: Index u8 (1..=0xFE) | MeasurementSpecification u8 (0x01 DMTF) | MeasurementSize u16
//!                   | DMTFSpecMeasurementValueType u8 (bit 7 raw bit stream, bits 6:0 type 0..=10:
//!                     ROM, firmware, HW config, FW config, manifest, device mode, version, SVN,
//!                     HEM, informational, structured manifest)
//!                   | DMTFSpecMeasurementValueSize u16 | DMTFSpecMeasurementValue
//!                   (MeasurementSize = 3 + ValueSize; the blocks fill the record exactly)
//! ```
//! The signature covers L1 up to and including [`Measurements::signed_portion`].

use alloc::vec::Vec;

use super::challenge::{check_context, read_context, read_opaque};
use super::header::RequestResponseCode;
use super::{MsgContext, NONCE_LEN, REQUESTER_CONTEXT_LEN};
use crate::algo::SpdmVersion;
use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed};

/// GET_MEASUREMENTS Param1 bit 0.
pub const ATTR_SIGNATURE_REQUESTED: u8 = 0x01;
/// GET_MEASUREMENTS Param1 bit 1.
pub const ATTR_RAW_BIT_STREAM_REQUESTED: u8 = 0x02;
/// GET_MEASUREMENTS Param1 bit 2 (1.3).
pub const ATTR_NEW_MEASUREMENT_REQUESTED: u8 = 0x04;

/// MeasurementOperation (GET_MEASUREMENTS Param2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeasurementOperation {
    /// 0: return the number of measurement indices only.
    Count,
    /// 1..=0xFE: one block.
    Index(u8),
    /// 0xFF: every block.
    All,
}

impl MeasurementOperation {
    /// The wire byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::Count => 0,
            Self::Index(i) => i,
            Self::All => 0xFF,
        }
    }

    /// From the wire byte (every value is defined).
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Count,
            0xFF => Self::All,
            i => Self::Index(i),
        }
    }
}

/// GET_MEASUREMENTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetMeasurements {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1 attributes (see `ATTR_*`).
    pub attributes: u8,
    /// Param2.
    pub operation: MeasurementOperation,
    /// Nonce and SlotID, present iff a signature is requested.
    pub nonce_and_slot: Option<([u8; NONCE_LEN], u8)>,
    /// RequesterContext (present iff version >= 1.3).
    pub requester_context: Option<[u8; REQUESTER_CONTEXT_LEN]>,
}

impl GetMeasurements {
    /// True if Param1 asks for a signature.
    pub const fn signature_requested(&self) -> bool {
        self.attributes & ATTR_SIGNATURE_REQUESTED != 0
    }

    /// Parses exactly one GET_MEASUREMENTS.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("GET_MEASUREMENTS")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let (version, p1, p2) = super::begin(r, RequestResponseCode::GET_MEASUREMENTS, None)?;
        let allowed = match version {
            SpdmVersion::V12 => ATTR_SIGNATURE_REQUESTED | ATTR_RAW_BIT_STREAM_REQUESTED,
            SpdmVersion::V13 => {
                ATTR_SIGNATURE_REQUESTED
                    | ATTR_RAW_BIT_STREAM_REQUESTED
                    | ATTR_NEW_MEASUREMENT_REQUESTED
            }
        };
        super::only_bits(p1, allowed, "GET_MEASUREMENTS Param1")?;
        let nonce_and_slot = if p1 & ATTR_SIGNATURE_REQUESTED != 0 {
            let nonce = r.take_array("GET_MEASUREMENTS Nonce")?;
            let slot = r.u8("GET_MEASUREMENTS SlotIDParam")?;
            super::only_bits(slot, 0x0F, "GET_MEASUREMENTS SlotIDParam")?;
            Some((nonce, super::slot(slot, "GET_MEASUREMENTS SlotID")?))
        } else {
            None
        };
        let requester_context = read_context(r, version, "GET_MEASUREMENTS RequesterContext")?;
        Ok(Self {
            version,
            attributes: p1,
            operation: MeasurementOperation::from_byte(p2),
            nonce_and_slot,
            requester_context,
        })
    }

    /// Encodes the message; fails if the nonce presence disagrees with Param1 bit 0.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        if self.nonce_and_slot.is_some() != self.signature_requested() {
            return Err(Error::ApiMisuse(
                "GET_MEASUREMENTS nonce present iff signature requested",
            ));
        }
        check_context(
            self.version,
            &self.requester_context,
            "GET_MEASUREMENTS RequesterContext must be present iff 1.3",
        )?;
        let mut w = super::start(
            self.version,
            RequestResponseCode::GET_MEASUREMENTS,
            self.attributes,
            self.operation.byte(),
        );
        if let Some((nonce, slot)) = &self.nonce_and_slot {
            w.bytes(nonce).u8(*slot);
        }
        if let Some(c) = &self.requester_context {
            w.bytes(c);
        }
        Ok(w.into_vec())
    }
}

/// DMTFSpecMeasurementValueType: bit 7 raw bit stream, bits 6:0 the kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DmtfValueType(pub u8);

impl DmtfValueType {
    /// Immutable ROM.
    pub const IMMUTABLE_ROM: u8 = 0;
    /// Mutable firmware.
    pub const MUTABLE_FIRMWARE: u8 = 1;
    /// Hardware configuration.
    pub const HARDWARE_CONFIG: u8 = 2;
    /// Firmware configuration.
    pub const FIRMWARE_CONFIG: u8 = 3;
    /// Measurement manifest.
    pub const MANIFEST: u8 = 4;
    /// Device mode.
    pub const DEVICE_MODE: u8 = 5;
    /// Version.
    pub const VERSION: u8 = 6;
    /// Secure version number.
    pub const SVN: u8 = 7;
    /// Hash-extended measurement (HEM, 1.3; the MEL digest).
    pub const HEM: u8 = 8;
    /// Informational (1.3).
    pub const INFORMATIONAL: u8 = 9;
    /// Structured measurement manifest (1.3).
    pub const STRUCTURED_MANIFEST: u8 = 10;
    /// Bit 7: the value is a raw bit stream rather than a digest.
    pub const RAW_BIT_STREAM: u8 = 0x80;

    /// The kind (bits 6:0).
    pub const fn kind(self) -> u8 {
        self.0 & 0x7F
    }

    /// True if the value is a raw bit stream.
    pub const fn is_raw(self) -> bool {
        self.0 & Self::RAW_BIT_STREAM != 0
    }
}

/// One DMTF measurement block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasurementBlock {
    /// Index (1..=0xFE; 0xFD manifest, 0xFE device mode).
    pub index: u8,
    /// DMTFSpecMeasurementValueType.
    pub value_type: DmtfValueType,
    /// DMTFSpecMeasurementValue (a digest, or raw bytes when `value_type.is_raw()`).
    pub value: Vec<u8>,
}

impl MeasurementBlock {
    /// Reads one block.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let index = r.u8("measurement block Index")?;
        if index == 0 || index == 0xFF {
            return Err(Malformed::UnknownValue {
                what: "measurement block Index",
                value: u32::from(index),
            }
            .into());
        }
        let spec = r.u8("measurement block MeasurementSpecification")?;
        if spec != super::MeasSpec::DMTF.0 {
            return Err(Malformed::UnknownValue {
                what: "measurement block MeasurementSpecification",
                value: u32::from(spec),
            }
            .into());
        }
        let size = usize::from(r.u16("measurement block MeasurementSize")?);
        let mut b = r.sub(size, "measurement block Measurement")?;
        let value_type = DmtfValueType(b.u8("DMTF measurement ValueType")?);
        if value_type.kind() > DmtfValueType::STRUCTURED_MANIFEST {
            return Err(Malformed::UnknownValue {
                what: "DMTF measurement ValueType",
                value: u32::from(value_type.0),
            }
            .into());
        }
        let value_size = usize::from(b.u16("DMTF measurement ValueSize")?);
        let value = super::take_vec(&mut b, value_size, "DMTF measurement Value")?;
        b.finish("measurement block (MeasurementSize != 3 + ValueSize)")?;
        Ok(Self {
            index,
            value_type,
            value,
        })
    }

    /// Appends the block.
    pub fn write(&self, w: &mut Writer) -> Result<(), Error> {
        let value_size =
            u16::try_from(self.value.len()).map_err(|_| Malformed::LengthOverflow {
                what: "DMTF measurement ValueSize",
            })?;
        let size = value_size.checked_add(3).ok_or(Malformed::LengthOverflow {
            what: "measurement block MeasurementSize",
        })?;
        w.u8(self.index)
            .u8(super::MeasSpec::DMTF.0)
            .u16(size)
            .u8(self.value_type.0)
            .u16(value_size)
            .bytes(&self.value);
        Ok(())
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        7usize.saturating_add(self.value.len())
    }
}

/// MEASUREMENTS ContentChanged (Param2 bits 5:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentChanged {
    /// 00b: the responder does not detect changes (or the response is unsigned).
    NotSupported,
    /// 01b: measurements changed since the last request in this L1 run.
    Changed,
    /// 10b: no change detected.
    NoChange,
}

impl ContentChanged {
    const fn bits(self) -> u8 {
        match self {
            Self::NotSupported => 0x00,
            Self::Changed => 0x10,
            Self::NoChange => 0x20,
        }
    }
}

/// MEASUREMENTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurements {
    /// Header version.
    pub version: SpdmVersion,
    /// Param1: TotalNumberOfMeasurementIndices for operation 0, else 0 (checked by the engine,
    /// which knows the request).
    pub total_indices: u8,
    /// SlotID (Param2 bits 3:0; 0xF for a provisioned public key).
    pub slot_id: u8,
    /// ContentChanged (Param2 bits 5:4).
    pub content_changed: ContentChanged,
    /// The measurement record.
    pub blocks: Vec<MeasurementBlock>,
    /// Responder nonce.
    pub nonce: [u8; NONCE_LEN],
    /// OpaqueData.
    pub opaque: Vec<u8>,
    /// RequesterContext echo (present iff version >= 1.3).
    pub requester_context: Option<[u8; REQUESTER_CONTEXT_LEN]>,
    /// Signature iff the request asked for one.
    pub signature: Option<Vec<u8>>,
}

impl Measurements {
    /// Parses exactly one MEASUREMENTS. Uses `ctx.sig_len` and
    /// `ctx.measurement_signature_requested`.
    pub fn parse(bytes: &[u8], ctx: &MsgContext) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r, ctx)?;
        r.finish("MEASUREMENTS")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>, ctx: &MsgContext) -> Result<Self, Error> {
        let (version, p1, p2) =
            super::begin(r, RequestResponseCode::MEASUREMENTS, Some(ctx.version))?;
        super::only_bits(p2, 0x3F, "MEASUREMENTS Param2")?;
        let slot_id = p2 & 0x0F;
        if slot_id != 0x0F {
            super::slot(slot_id, "MEASUREMENTS SlotID")?;
        }
        let content_changed = match p2 & 0x30 {
            0x00 => ContentChanged::NotSupported,
            0x10 => ContentChanged::Changed,
            0x20 => ContentChanged::NoChange,
            v => {
                return Err(Malformed::UnknownValue {
                    what: "MEASUREMENTS ContentChanged",
                    value: u32::from(v),
                }
                .into())
            }
        };
        let count = r.u8("MEASUREMENTS NumberOfBlocks")?;
        let record_len = r.u24("MEASUREMENTS MeasurementRecordLength")? as usize;
        let mut rec = r.sub(record_len, "MEASUREMENTS MeasurementRecord")?;
        let mut blocks = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            blocks.push(MeasurementBlock::read(&mut rec)?);
        }
        rec.finish("MEASUREMENTS MeasurementRecord (NumberOfBlocks/MeasurementRecordLength)")?;
        let nonce = r.take_array("MEASUREMENTS Nonce")?;
        let opaque = read_opaque(r, "MEASUREMENTS OpaqueData")?;
        let requester_context = read_context(r, version, "MEASUREMENTS RequesterContext")?;
        let signature = if ctx.measurement_signature_requested {
            Some(super::take_vec(r, ctx.sig_len, "MEASUREMENTS Signature")?)
        } else {
            None
        };
        Ok(Self {
            version,
            total_indices: p1,
            slot_id,
            content_changed,
            blocks,
            nonce,
            opaque,
            requester_context,
            signature,
        })
    }

    fn record_len(&self) -> usize {
        self.blocks
            .iter()
            .fold(0usize, |acc, b| acc.saturating_add(b.encoded_len()))
    }

    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        check_context(
            self.version,
            &self.requester_context,
            "MEASUREMENTS RequesterContext must be present iff 1.3",
        )?;
        let count = u8::try_from(self.blocks.len()).map_err(|_| Malformed::LengthOverflow {
            what: "MEASUREMENTS NumberOfBlocks",
        })?;
        let record_len =
            u32::try_from(self.record_len()).map_err(|_| Malformed::LengthOverflow {
                what: "MEASUREMENTS MeasurementRecordLength",
            })?;
        let p2 = self.slot_id | self.content_changed.bits();
        let mut w = super::start(
            self.version,
            RequestResponseCode::MEASUREMENTS,
            self.total_indices,
            p2,
        );
        w.u8(count)
            .u24(record_len, "MEASUREMENTS MeasurementRecordLength")?;
        for b in &self.blocks {
            b.write(&mut w)?;
        }
        w.bytes(&self.nonce)
            .len_u16(self.opaque.len(), "MEASUREMENTS OpaqueDataLength")?
            .bytes(&self.opaque);
        if let Some(c) = &self.requester_context {
            w.bytes(c);
        }
        if let Some(s) = &self.signature {
            w.bytes(s);
        }
        Ok(w.into_vec())
    }

    /// The bytes of `raw` (the message as received) before the signature: what enters L1.
    /// For an unsigned response this is the whole message.
    pub fn signed_portion<'a>(&self, raw: &'a [u8]) -> Result<&'a [u8], Error> {
        let len = 8usize
            .checked_add(self.record_len())
            .and_then(|v| v.checked_add(NONCE_LEN + 2))
            .and_then(|v| v.checked_add(self.opaque.len()))
            .and_then(|v| v.checked_add(self.requester_context.map_or(0, |c| c.len())));
        super::prefix(raw, len, "MEASUREMENTS signed portion")
    }
}
