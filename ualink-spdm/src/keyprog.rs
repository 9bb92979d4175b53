//! Link-key programming: PCIe IDE_KM (byte-exact, ObjectIDs 0x00..=0x06) and our UALinkSec
//! variant (ObjectIDs 0x80..=0x88), both under PCI-SIG ProtocolID 0x00 in SPDM VENDOR_DEFINED
//! messages, and only ever accepted inside a secured session. [`family`] tells them apart.
//!
//! Codecs start at the ProtocolID byte (the first byte of the VENDOR_DEFINED payload). All
//! integers are little-endian; reserved fields must be zero; unknown object IDs, status codes
//! and sub-stream values are errors; trailing bytes are errors.
//!
//! # IDE_KM (PCIe 6, §6.33.3; libspdm `pci_idekm.h`)
//!
//! ```text
//! QUERY        00 | 00 ObjectID | rsvd u8 | PortIndex u8
//! QUERY_RESP   00 | 01 | rsvd u8 | PortIndex | DevFuncNum | BusNum | Segment | MaxPortIndex |
//!              IDE Capability reg u32 | IDE Control reg u32 | register blocks (DWORDs, raw)
//! KEY_PROG     00 | 02 | rsvd u16 | StreamID | rsvd u8 | KeySubStream | PortIndex |
//!              Key [32] | IFV [8]
//! KP_ACK       00 | 03 | rsvd u16 | StreamID | Status u8 | KeySubStream | PortIndex
//! K_SET_GO     00 | 04 | rsvd u16 | StreamID | rsvd u8 | KeySubStream | PortIndex
//! K_SET_STOP   00 | 05 | (as K_SET_GO)
//! K_GOSTOP_ACK 00 | 06 | (as K_SET_GO)
//! KeySubStream: bits 7:4 sub-stream (0 PR, 1 NPR, 2 CPL), bits 3:2 reserved,
//!               bit 1 direction (0 RX, 1 TX), bit 0 key set (K0/K1)
//! ```
//!
//! The QUERY_RESP register blocks are kept as raw DWORDs: the reference responder (spdm-emu)
//! sends a fixed-size block whose length does not follow its own capability register, so a
//! parser that derived the length from the capability register would reject real devices.
//!
//! # UALinkSec key programming (ours; ProtocolID 0x00, ObjectIDs 0x80..=0x88)
//!
//! UALink 1.0 §9.5.9.1: each TX port holds an active and an alternate 256-bit master key per
//! destination accelerator, each RX port the same per source, and A's TX key for B equals B's RX
//! key for A. Per-stream keys are derived from the master key in the device (KMAC256 over
//! {epoch, StreamID}); only master keys travel here. The shape follows IDE_KM with the IDE
//! stream replaced by the peer accelerator. The messages share IDE_KM's ProtocolID, so the SPDM
//! engine routes both to the device's key programming, and use ObjectIDs with the high bit set
//! (IDE_KM defines 0x00..=0x06): an IDE_KM implementation sees an unknown object and refuses
//! it, and no IDE_KM object can be mistaken for one of ours. (A VendorID of the UALink
//! Consortium would be the proper home once one is assigned; only the wrapper would change.)
//!
//! Every message after QUERY/QUERY_RESP starts with the same 9-byte head:
//!
//! ```text
//! off 0  ProtocolID u8 = 0x00
//! off 1  ObjectID u8
//! off 2  Status u8 in acknowledgements, reserved (0) in requests
//! off 3  PortIndex u8            the local UALink port (TX or RX side per the direction bit)
//! off 4  KeyFlags u8             bit 0 slot (0 active, 1 alternate), bit 1 direction
//!                                (0 RX, 1 TX), bits 7:2 reserved
//! off 5  PeerAccelID u16         bits 9:0 destination (TX) or source (RX) accelerator ID,
//!                                bits 15:10 reserved
//! off 7  reserved u16
//! ```
//!
//! | ObjectID | message | after the head |
//! |---|---|---|
//! | 0x80 | QUERY | (no head) rsvd u8, PortIndex u8, rsvd u8 — 5 bytes with ProtocolID |
//! | 0x81 | QUERY_RESP | (no head) Status u8, PortIndex u8, MaxPortIndex u8, LocalAccelID u16 (10 bits), MaxPeers u16 — 9 bytes |
//! | 0x82 | KEY_PROG | KeyEpoch u32, MasterKey `[32]` — 45 bytes |
//! | 0x83 | KP_ACK | KeyEpoch u32 (echo) — 13 bytes |
//! | 0x84 | K_SET_GO | — 9 bytes: enable the slot for traffic |
//! | 0x85 | K_SET_STOP | — 9 bytes: disable the slot and erase its key |
//! | 0x86 | K_GOSTOP_ACK | — 9 bytes |
//! | 0x87 | KEY_ROLL | ExpectedEpoch u32 — 13 bytes: promote the alternate key (slot bit must be 1) if its epoch is ExpectedEpoch; the old active key is erased |
//! | 0x88 | KEY_ROLL_ACK | ActiveEpoch u32 — 13 bytes |
//!
//! Acknowledgements echo the request's PortIndex, KeyFlags and PeerAccelID; Status is a
//! [`KeyProgStatus`]. A KEY_PROG whose KeyEpoch is not newer than the pair's active key is
//! refused with [`KeyProgStatus::StaleEpoch`], so a replayed old key can never be installed.
//!
//! # Handling of key bytes
//!
//! Keys live in [`MasterKey`] / [`IdeKey`] (zeroized on drop, redacted in `Debug`, compared in
//! constant time). Encoded KEY_PROG messages are returned as `Zeroizing<Vec<u8>>`, written into
//! a buffer of exact capacity so no reallocation leaves a copy behind. [`KeyProgResponder`]
//! takes the received plaintext as `&mut [u8]` and zeroes all of it as soon as the key has been
//! copied out, whether or not the request is accepted. [`IdeKmResponder`] does the same for
//! IDE_KM over an [`IdeKmSink`].

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{Reader, Writer};
use crate::error::Malformed;

/// ProtocolID of IDE_KM.
pub const IDE_KM_PROTOCOL_ID: u8 = 0x00;
/// First UALinkSec ObjectID (QUERY); UALinkSec objects are 0x80..=0x88 under ProtocolID 0x00.
pub const UALINKSEC_OBJECT_BASE: u8 = 0x80;

/// Which key-programming protocol a payload (from the ProtocolID byte) belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProgFamily {
    /// PCIe IDE_KM (ObjectID below 0x80).
    IdeKm,
    /// UALinkSec (ObjectID 0x80 and above).
    UalinkSec,
}

/// The admission step both key-programming responders share: the payload must have arrived in
/// a secured session and belong to `want`'s family; it is then parsed with `parse`. `payload` is
/// zeroed before returning, in every case, so a plaintext key never outlives the parse.
fn admit<M, E>(
    payload: &mut [u8],
    in_session: bool,
    want: KeyProgFamily,
    parse: impl FnOnce(&[u8]) -> Result<M, E>,
) -> Result<M, KeyProgError>
where
    KeyProgError: From<E>,
{
    let result = if !in_session {
        Err(KeyProgError::SessionRequired)
    } else {
        match (family(payload), &*payload) {
            (Some(f), _) if f == want => parse(payload).map_err(KeyProgError::from),
            (Some(_), [_, obj, ..]) => Err(KeyProgError::UnsupportedObject(*obj)),
            (_, [p, _, ..]) => Err(KeyProgError::UnsupportedProtocol(*p)),
            _ => Err(KeyProgError::Malformed(Malformed::Truncated {
                what: "ProtocolID/ObjectID",
            })),
        }
    };
    payload.zeroize();
    result
}

/// Classifies a key-programming payload by its ProtocolID and ObjectID; `None` if it is not
/// ProtocolID 0x00 or has no ObjectID. Does not validate anything else.
pub fn family(payload: &[u8]) -> Option<KeyProgFamily> {
    match payload {
        [IDE_KM_PROTOCOL_ID, obj, ..] if *obj >= UALINKSEC_OBJECT_BASE => {
            Some(KeyProgFamily::UalinkSec)
        }
        [IDE_KM_PROTOCOL_ID, _, ..] => Some(KeyProgFamily::IdeKm),
        _ => None,
    }
}
/// Length of an IDE or UALinkSec key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the IDE initial IV invocation field in bytes.
pub const IFV_LEN: usize = 8;

// ---------------------------------------------------------------------------------------------
// Shared vocabulary
// ---------------------------------------------------------------------------------------------

/// Key direction (bit 1 of KeySubStream / KeyFlags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// 0: receive.
    Rx,
    /// 1: transmit.
    Tx,
}

/// A 256-bit key: zeroized on drop, redacted in `Debug`, compared in constant time.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

/// An IDE key is the same kind of object as a UALinkSec master key.
pub type IdeKey = MasterKey;

impl MasterKey {
    /// Takes ownership of key bytes; the argument is zeroed.
    pub fn from_bytes(bytes: &mut [u8; KEY_LEN]) -> Self {
        let k = Self(Zeroizing::new(*bytes));
        bytes.zeroize();
        k
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }

    fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self, Malformed> {
        let mut k = Self(Zeroizing::new([0u8; KEY_LEN]));
        k.0.copy_from_slice(r.take(KEY_LEN, what)?);
        Ok(k)
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for MasterKey {}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// KP_ACK / acknowledgement status. Values 0..=4 are IDE_KM's; 5..=8 exist only in UALinkSec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyProgStatus {
    /// 0: success.
    Success,
    /// 1: incorrect length.
    IncorrectLength,
    /// 2: unsupported port index.
    UnsupportedPortIndex,
    /// 3: unsupported value (a field the device cannot honour).
    UnsupportedValue,
    /// 4: unspecified failure.
    UnspecifiedFailure,
    /// 5 (UALinkSec): the peer accelerator is not one this port may talk to.
    UnknownPeer,
    /// 6 (UALinkSec): KeyEpoch not newer than the pair's active key.
    StaleEpoch,
    /// 7 (UALinkSec): GO or ROLL on a slot that holds no key.
    SlotEmpty,
    /// 8 (UALinkSec): KEY_ROLL's ExpectedEpoch is not the alternate key's epoch.
    EpochMismatch,
}

impl KeyProgStatus {
    /// Every status, in wire order.
    pub const ALL: [Self; 9] = [
        Self::Success,
        Self::IncorrectLength,
        Self::UnsupportedPortIndex,
        Self::UnsupportedValue,
        Self::UnspecifiedFailure,
        Self::UnknownPeer,
        Self::StaleEpoch,
        Self::SlotEmpty,
        Self::EpochMismatch,
    ];

    /// The wire value.
    pub const fn wire(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::IncorrectLength => 1,
            Self::UnsupportedPortIndex => 2,
            Self::UnsupportedValue => 3,
            Self::UnspecifiedFailure => 4,
            Self::UnknownPeer => 5,
            Self::StaleEpoch => 6,
            Self::SlotEmpty => 7,
            Self::EpochMismatch => 8,
        }
    }

    fn from_wire(v: u8, max: u8) -> Result<Self, Malformed> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.wire() == v && v <= max)
            .ok_or(Malformed::UnknownValue {
                what: "key programming status",
                value: v.into(),
            })
    }
}

/// Why a key-programming message was refused or a response rejected. The responder engine
/// reports it as `Error::KeyProg`; the SPDM ERROR code comes from [`crate::Error::wire_code`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProgError {
    /// Key programming arrived outside an SPDM secured session (SPDM ERROR SessionRequired).
    #[error("key programming outside a secured session refused")]
    SessionRequired,
    /// The message did not parse (SPDM ERROR InvalidRequest).
    #[error("malformed key programming message: {0}")]
    Malformed(#[from] Malformed),
    /// A ProtocolID this responder does not serve (SPDM ERROR UnsupportedRequest).
    #[error("key programming protocol {0:#04x} not supported here")]
    UnsupportedProtocol(u8),
    /// An object of the other key-programming family than this responder serves
    /// (SPDM ERROR UnsupportedRequest).
    #[error("key programming object {0:#04x} not supported here")]
    UnsupportedObject(u8),
    /// A response object sent as a request, or the wrong response to a request.
    #[error("unexpected key programming object {0:#04x}")]
    UnexpectedObject(u8),
    /// The device acknowledged with a failure status.
    #[error("device refused key programming: {0:?}")]
    Refused(KeyProgStatus),
    /// An acknowledgement that does not echo the request.
    #[error("acknowledgement field {0} does not match the request")]
    AckMismatch(&'static str),
}

fn read_object(r: &mut Reader<'_>, protocol: u8, what: &'static str) -> Result<u8, Malformed> {
    let p = r.u8("ProtocolID")?;
    if p != protocol {
        return Err(Malformed::UnknownValue {
            what,
            value: p.into(),
        });
    }
    r.u8("ObjectID")
}

// ---------------------------------------------------------------------------------------------
// IDE_KM
// ---------------------------------------------------------------------------------------------

/// IDE sub-stream (KeySubStream bits 7:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubStream {
    /// 0: posted requests.
    Posted,
    /// 1: non-posted requests.
    NonPosted,
    /// 2: completions.
    Completion,
}

/// KeySubStream byte of IDE_KM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySubStream {
    /// Sub-stream.
    pub sub_stream: SubStream,
    /// Direction.
    pub direction: Direction,
    /// Key set: `false` K0, `true` K1.
    pub key_set_k1: bool,
}

impl KeySubStream {
    fn from_wire(b: u8) -> Result<Self, Malformed> {
        if b & 0x0C != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "KeySubStream bits 3:2",
            });
        }
        let sub_stream = match b >> 4 {
            0 => SubStream::Posted,
            1 => SubStream::NonPosted,
            2 => SubStream::Completion,
            v => {
                return Err(Malformed::UnknownValue {
                    what: "KeySubStream sub-stream",
                    value: v.into(),
                })
            }
        };
        Ok(Self {
            sub_stream,
            direction: if b & 0x2 != 0 {
                Direction::Tx
            } else {
                Direction::Rx
            },
            key_set_k1: b & 0x1 != 0,
        })
    }

    /// The wire byte.
    pub const fn to_wire(self) -> u8 {
        let ss: u8 = match self.sub_stream {
            SubStream::Posted => 0,
            SubStream::NonPosted => 1,
            SubStream::Completion => 2,
        };
        (ss << 4)
            | match self.direction {
                Direction::Rx => 0,
                Direction::Tx => 0x2,
            }
            | if self.key_set_k1 { 1 } else { 0 }
    }
}

/// The stream/key-set coordinates shared by KEY_PROG, KP_ACK, K_SET_GO/STOP and K_GOSTOP_ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdeKeySlot {
    /// IDE stream ID.
    pub stream_id: u8,
    /// Sub-stream, direction, key set.
    pub key_sub_stream: KeySubStream,
    /// Port index.
    pub port_index: u8,
}

/// IDE_KM QUERY_RESP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeKmQueryResp {
    /// Port index answered.
    pub port_index: u8,
    /// Device/function number.
    pub dev_func_num: u8,
    /// Bus number.
    pub bus_num: u8,
    /// Segment.
    pub segment: u8,
    /// Highest port index.
    pub max_port_index: u8,
    /// IDE Capability register.
    pub ide_cap: u32,
    /// IDE Control register.
    pub ide_ctrl: u32,
    /// Link and selective IDE stream register blocks, raw DWORDs.
    pub register_blocks: Vec<u32>,
}

/// IDE_KM KEY_PROG body. `Debug` redacts the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeKmKeyProg {
    /// Which stream and key set.
    pub slot: IdeKeySlot,
    /// The AES-256-GCM key.
    pub key: IdeKey,
    /// The initial IV invocation field.
    pub ifv: [u8; IFV_LEN],
}

/// Every IDE_KM object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdeKmMessage {
    /// QUERY (0x00) for a port index.
    Query {
        /// Port index queried.
        port_index: u8,
    },
    /// QUERY_RESP (0x01).
    QueryResp(IdeKmQueryResp),
    /// KEY_PROG (0x02).
    KeyProg(IdeKmKeyProg),
    /// KP_ACK (0x03).
    KpAck {
        /// Echo of the programmed slot.
        slot: IdeKeySlot,
        /// Outcome (IDE_KM defines 0..=4).
        status: KeyProgStatus,
    },
    /// K_SET_GO (0x04).
    KSetGo(IdeKeySlot),
    /// K_SET_STOP (0x05).
    KSetStop(IdeKeySlot),
    /// K_GOSTOP_ACK (0x06).
    KGoStopAck(IdeKeySlot),
}

impl IdeKmMessage {
    /// The ObjectID.
    pub const fn object_id(&self) -> u8 {
        match self {
            Self::Query { .. } => 0x00,
            Self::QueryResp(_) => 0x01,
            Self::KeyProg(_) => 0x02,
            Self::KpAck { .. } => 0x03,
            Self::KSetGo(_) => 0x04,
            Self::KSetStop(_) => 0x05,
            Self::KGoStopAck(_) => 0x06,
        }
    }

    /// Parses an IDE_KM payload (from the ProtocolID byte).
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(payload);
        let object = read_object(&mut r, IDE_KM_PROTOCOL_ID, "ProtocolID (IDE_KM)")?;
        let msg = match object {
            0x00 => {
                r.reserved(1, "QUERY reserved")?;
                Self::Query {
                    port_index: r.u8("PortIndex")?,
                }
            }
            0x01 => {
                r.reserved(1, "QUERY_RESP reserved")?;
                let port_index = r.u8("PortIndex")?;
                let dev_func_num = r.u8("DevFuncNum")?;
                let bus_num = r.u8("BusNum")?;
                let segment = r.u8("Segment")?;
                let max_port_index = r.u8("MaxPortIndex")?;
                let ide_cap = r.u32("IDE Capability register")?;
                let ide_ctrl = r.u32("IDE Control register")?;
                if r.remaining() % 4 != 0 {
                    return Err(Malformed::BadLength {
                        what: "IDE register blocks (not whole DWORDs)",
                    });
                }
                let mut register_blocks = Vec::with_capacity(r.remaining() / 4);
                while r.remaining() != 0 {
                    register_blocks.push(r.u32("IDE register")?);
                }
                Self::QueryResp(IdeKmQueryResp {
                    port_index,
                    dev_func_num,
                    bus_num,
                    segment,
                    max_port_index,
                    ide_cap,
                    ide_ctrl,
                    register_blocks,
                })
            }
            0x02 => {
                let (slot, _) = read_ide_slot(&mut r, false)?;
                let key = MasterKey::read(&mut r, "KEY_PROG key")?;
                let ifv = r.take_array::<IFV_LEN>("KEY_PROG IFV")?;
                Self::KeyProg(IdeKmKeyProg { slot, key, ifv })
            }
            0x03 => {
                let (slot, status) = read_ide_slot(&mut r, true)?;
                Self::KpAck { slot, status }
            }
            0x04 => Self::KSetGo(read_ide_slot(&mut r, false)?.0),
            0x05 => Self::KSetStop(read_ide_slot(&mut r, false)?.0),
            0x06 => Self::KGoStopAck(read_ide_slot(&mut r, false)?.0),
            v => {
                return Err(Malformed::UnknownValue {
                    what: "IDE_KM ObjectID",
                    value: v.into(),
                })
            }
        };
        r.finish("IDE_KM message")?;
        Ok(msg)
    }

    /// Encodes the payload (from the ProtocolID byte), in a zeroizing buffer of exact size.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let cap = match self {
            Self::QueryResp(q) => 16usize.saturating_add(q.register_blocks.len().saturating_mul(4)),
            Self::KeyProg(_) => 8 + KEY_LEN + IFV_LEN,
            _ => 8,
        };
        let mut w = Writer::with_capacity(cap);
        w.u8(IDE_KM_PROTOCOL_ID).u8(self.object_id());
        match self {
            Self::Query { port_index } => {
                w.u8(0).u8(*port_index);
            }
            Self::QueryResp(q) => {
                w.u8(0)
                    .u8(q.port_index)
                    .u8(q.dev_func_num)
                    .u8(q.bus_num)
                    .u8(q.segment)
                    .u8(q.max_port_index)
                    .u32(q.ide_cap)
                    .u32(q.ide_ctrl);
                for d in &q.register_blocks {
                    w.u32(*d);
                }
            }
            Self::KeyProg(k) => {
                write_ide_slot(&mut w, &k.slot, 0);
                w.bytes(k.key.as_bytes()).bytes(&k.ifv);
            }
            Self::KpAck { slot, status } => write_ide_slot(&mut w, slot, status.wire()),
            Self::KSetGo(s) | Self::KSetStop(s) | Self::KGoStopAck(s) => {
                write_ide_slot(&mut w, s, 0)
            }
        }
        Zeroizing::new(w.into_vec())
    }
}

fn read_ide_slot(
    r: &mut Reader<'_>,
    with_status: bool,
) -> Result<(IdeKeySlot, KeyProgStatus), Malformed> {
    r.reserved(2, "IDE_KM reserved")?;
    let stream_id = r.u8("StreamID")?;
    let status = if with_status {
        KeyProgStatus::from_wire(r.u8("KP_ACK Status")?, 4)?
    } else {
        r.reserved(1, "IDE_KM reserved")?;
        KeyProgStatus::Success
    };
    let key_sub_stream = KeySubStream::from_wire(r.u8("KeySubStream")?)?;
    let port_index = r.u8("PortIndex")?;
    Ok((
        IdeKeySlot {
            stream_id,
            key_sub_stream,
            port_index,
        },
        status,
    ))
}

fn write_ide_slot(w: &mut Writer, s: &IdeKeySlot, status_or_rsvd: u8) {
    w.u16(0)
        .u8(s.stream_id)
        .u8(status_or_rsvd)
        .u8(s.key_sub_stream.to_wire())
        .u8(s.port_index);
}

// ---------------------------------------------------------------------------------------------
// UALinkSec
// ---------------------------------------------------------------------------------------------

/// A 10-bit UALink accelerator ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccelId(u16);

impl AccelId {
    /// Highest accelerator ID (10 bits).
    pub const MAX: u16 = 0x3FF;

    /// An accelerator ID; fails if it does not fit in 10 bits (bits 15:10 are reserved).
    pub const fn new(id: u16) -> Result<Self, Malformed> {
        if id > Self::MAX {
            return Err(Malformed::ReservedNonZero {
                what: "PeerAccelID bits 15:10",
            });
        }
        Ok(Self(id))
    }

    /// The ID.
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// Key slot of a (port, direction, peer) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// 0: the key in use.
    Active,
    /// 1: the next key, promoted by KEY_ROLL.
    Alternate,
}

/// Which key a UALinkSec message is about: the port, direction, slot and peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyTarget {
    /// Local port index.
    pub port: u8,
    /// RX (keys for traffic from `peer`) or TX (keys for traffic to `peer`).
    pub direction: Direction,
    /// Active or alternate slot.
    pub slot: Slot,
    /// The peer accelerator.
    pub peer: AccelId,
}

impl KeyTarget {
    /// The (port, direction, peer) pair this target's slot belongs to.
    pub const fn pair(&self) -> KeyPair {
        KeyPair {
            port: self.port,
            direction: self.direction,
            peer: self.peer,
        }
    }
}

/// A (port, direction, peer) pair, which owns an active and an alternate slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPair {
    /// Local port index.
    pub port: u8,
    /// Direction.
    pub direction: Direction,
    /// Peer accelerator.
    pub peer: AccelId,
}

impl KeyPair {
    /// The target naming `slot` of this pair.
    pub const fn slot(self, slot: Slot) -> KeyTarget {
        KeyTarget {
            port: self.port,
            direction: self.direction,
            slot,
            peer: self.peer,
        }
    }
}

/// UALinkSec KEY_PROG body. `Debug` redacts the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UalinkKeyProg {
    /// The slot to program.
    pub target: KeyTarget,
    /// Key epoch (must be newer than the pair's active key).
    pub epoch: u32,
    /// The 256-bit master key.
    pub key: MasterKey,
}

/// UALinkSec QUERY_RESP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UalinkQueryResp {
    /// Status of the query.
    pub status: KeyProgStatus,
    /// Port index answered.
    pub port: u8,
    /// Highest port index of the device.
    pub max_port: u8,
    /// The device's own accelerator ID.
    pub local_accel: AccelId,
    /// Peers this port can hold keys for.
    pub max_peers: u16,
}

/// Every UALinkSec key-programming object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UalinkKeyMessage {
    /// QUERY (0x80).
    Query {
        /// Port index queried.
        port: u8,
    },
    /// QUERY_RESP (0x81).
    QueryResp(UalinkQueryResp),
    /// KEY_PROG (0x82).
    KeyProg(UalinkKeyProg),
    /// KP_ACK (0x83).
    KpAck {
        /// Echo of the target.
        target: KeyTarget,
        /// Outcome.
        status: KeyProgStatus,
        /// Echo of the epoch.
        epoch: u32,
    },
    /// K_SET_GO (0x84).
    KSetGo(KeyTarget),
    /// K_SET_STOP (0x85).
    KSetStop(KeyTarget),
    /// K_GOSTOP_ACK (0x86).
    KGoStopAck {
        /// Echo of the target.
        target: KeyTarget,
        /// Outcome.
        status: KeyProgStatus,
    },
    /// KEY_ROLL (0x87): promote the alternate key of `target.pair()` (slot must be alternate).
    KeyRoll {
        /// The alternate slot to promote.
        target: KeyTarget,
        /// The epoch the alternate key must have.
        expected_epoch: u32,
    },
    /// KEY_ROLL_ACK (0x88).
    KeyRollAck {
        /// Echo of the target.
        target: KeyTarget,
        /// Outcome.
        status: KeyProgStatus,
        /// Epoch of the active key after the roll (unchanged on failure).
        active_epoch: u32,
    },
}

impl UalinkKeyMessage {
    /// The ObjectID.
    pub const fn object_id(&self) -> u8 {
        match self {
            Self::Query { .. } => 0x80,
            Self::QueryResp(_) => 0x81,
            Self::KeyProg(_) => 0x82,
            Self::KpAck { .. } => 0x83,
            Self::KSetGo(_) => 0x84,
            Self::KSetStop(_) => 0x85,
            Self::KGoStopAck { .. } => 0x86,
            Self::KeyRoll { .. } => 0x87,
            Self::KeyRollAck { .. } => 0x88,
        }
    }

    /// Whether this object is a request (sent by the TSM).
    pub const fn is_request(&self) -> bool {
        matches!(
            self,
            Self::Query { .. }
                | Self::KeyProg(_)
                | Self::KSetGo(_)
                | Self::KSetStop(_)
                | Self::KeyRoll { .. }
        )
    }

    /// Parses a UALinkSec payload (from the ProtocolID byte).
    pub fn parse(payload: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(payload);
        let object = read_object(&mut r, IDE_KM_PROTOCOL_ID, "ProtocolID (UALinkSec)")?;
        let msg = match object {
            0x80 => {
                r.reserved(1, "QUERY reserved")?;
                let port = r.u8("PortIndex")?;
                r.reserved(1, "QUERY reserved")?;
                Self::Query { port }
            }
            0x81 => Self::QueryResp(UalinkQueryResp {
                status: KeyProgStatus::from_wire(r.u8("Status")?, u8::MAX)?,
                port: r.u8("PortIndex")?,
                max_port: r.u8("MaxPortIndex")?,
                local_accel: AccelId::new(r.u16("LocalAccelID")?)?,
                max_peers: r.u16("MaxPeers")?,
            }),
            0x82 => {
                let (target, _) = read_head(&mut r, false)?;
                let epoch = r.u32("KeyEpoch")?;
                let key = MasterKey::read(&mut r, "MasterKey")?;
                Self::KeyProg(UalinkKeyProg { target, epoch, key })
            }
            0x83 => {
                let (target, status) = read_head(&mut r, true)?;
                Self::KpAck {
                    target,
                    status,
                    epoch: r.u32("KeyEpoch")?,
                }
            }
            0x84 => Self::KSetGo(read_head(&mut r, false)?.0),
            0x85 => Self::KSetStop(read_head(&mut r, false)?.0),
            0x86 => {
                let (target, status) = read_head(&mut r, true)?;
                Self::KGoStopAck { target, status }
            }
            0x87 => {
                let (target, _) = read_head(&mut r, false)?;
                if target.slot != Slot::Alternate {
                    return Err(Malformed::UnknownValue {
                        what: "KEY_ROLL slot (must be alternate)",
                        value: 0,
                    });
                }
                Self::KeyRoll {
                    target,
                    expected_epoch: r.u32("ExpectedEpoch")?,
                }
            }
            0x88 => {
                let (target, status) = read_head(&mut r, true)?;
                Self::KeyRollAck {
                    target,
                    status,
                    active_epoch: r.u32("ActiveEpoch")?,
                }
            }
            v => {
                return Err(Malformed::UnknownValue {
                    what: "UALinkSec ObjectID",
                    value: v.into(),
                })
            }
        };
        r.finish("UALinkSec message")?;
        Ok(msg)
    }

    /// Encodes the payload (from the ProtocolID byte), in a zeroizing buffer of exact size.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let cap = match self {
            Self::KeyProg(_) => 13 + KEY_LEN,
            _ => 13,
        };
        let mut w = Writer::with_capacity(cap);
        w.u8(IDE_KM_PROTOCOL_ID).u8(self.object_id());
        match self {
            Self::Query { port } => {
                w.u8(0).u8(*port).u8(0);
            }
            Self::QueryResp(q) => {
                w.u8(q.status.wire())
                    .u8(q.port)
                    .u8(q.max_port)
                    .u16(q.local_accel.get())
                    .u16(q.max_peers);
            }
            Self::KeyProg(k) => {
                write_head(&mut w, &k.target, 0);
                w.u32(k.epoch).bytes(k.key.as_bytes());
            }
            Self::KpAck {
                target,
                status,
                epoch,
            } => {
                write_head(&mut w, target, status.wire());
                w.u32(*epoch);
            }
            Self::KSetGo(t) | Self::KSetStop(t) => write_head(&mut w, t, 0),
            Self::KGoStopAck { target, status } => write_head(&mut w, target, status.wire()),
            Self::KeyRoll {
                target,
                expected_epoch,
            } => {
                write_head(&mut w, target, 0);
                w.u32(*expected_epoch);
            }
            Self::KeyRollAck {
                target,
                status,
                active_epoch,
            } => {
                write_head(&mut w, target, status.wire());
                w.u32(*active_epoch);
            }
        }
        Zeroizing::new(w.into_vec())
    }
}

fn read_head(
    r: &mut Reader<'_>,
    with_status: bool,
) -> Result<(KeyTarget, KeyProgStatus), Malformed> {
    let status = if with_status {
        KeyProgStatus::from_wire(r.u8("Status")?, u8::MAX)?
    } else {
        r.reserved(1, "UALinkSec reserved (status)")?;
        KeyProgStatus::Success
    };
    let port = r.u8("PortIndex")?;
    let flags = r.u8("KeyFlags")?;
    if flags & 0xFC != 0 {
        return Err(Malformed::ReservedNonZero {
            what: "KeyFlags bits 7:2",
        });
    }
    let peer = AccelId::new(r.u16("PeerAccelID")?)?;
    r.reserved(2, "UALinkSec reserved")?;
    Ok((
        KeyTarget {
            port,
            direction: if flags & 0x2 != 0 {
                Direction::Tx
            } else {
                Direction::Rx
            },
            slot: if flags & 0x1 != 0 {
                Slot::Alternate
            } else {
                Slot::Active
            },
            peer,
        },
        status,
    ))
}

fn write_head(w: &mut Writer, t: &KeyTarget, status_or_rsvd: u8) {
    let flags = match t.slot {
        Slot::Active => 0,
        Slot::Alternate => 1,
    } | match t.direction {
        Direction::Rx => 0,
        Direction::Tx => 2,
    };
    w.u8(status_or_rsvd)
        .u8(t.port)
        .u8(flags)
        .u16(t.peer.get())
        .u16(0);
}

// ---------------------------------------------------------------------------------------------
// Device side
// ---------------------------------------------------------------------------------------------

/// Where a device keeps its UALinkSec master keys. Every method is called only for requests
/// that arrived inside a secured session and parsed cleanly.
pub trait KeySink {
    /// Highest port index.
    fn max_port(&self) -> u8;
    /// This device's accelerator ID.
    fn local_accel(&self) -> AccelId;
    /// Peers a port can hold keys for.
    fn max_peers(&self) -> u16;
    /// Stores `key` with `epoch` into `target`'s slot (not yet used for traffic).
    fn program(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: MasterKey,
    ) -> Result<(), KeyProgStatus>;
    /// Enables `target`'s slot for traffic.
    fn go(&mut self, target: KeyTarget) -> Result<(), KeyProgStatus>;
    /// Disables `target`'s slot and erases its key.
    fn stop(&mut self, target: KeyTarget) -> Result<(), KeyProgStatus>;
    /// Promotes the alternate key of `pair` if its epoch is `expected_epoch`; returns the new
    /// active epoch.
    fn roll(&mut self, pair: KeyPair, expected_epoch: u32) -> Result<u32, KeyProgStatus>;
    /// Whether `pair` has an active key enabled for traffic.
    fn is_live(&self, pair: KeyPair) -> bool;
    /// Like [`Self::program`], also recording the SPDM session the key arrived in (TDISP
    /// requires the keys protecting a TDI to come from the session that locks it). The default
    /// does not record it.
    fn program_in_session(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: MasterKey,
        session_id: u32,
    ) -> Result<(), KeyProgStatus> {
        let _ = session_id;
        self.program(target, epoch, key)
    }
    /// The session the active key of `pair` was programmed in, if the sink records it.
    fn programmed_in(&self, pair: KeyPair) -> Option<u32> {
        let _ = pair;
        None
    }
}

/// Applies key-programming requests to a [`KeySink`] and builds the acknowledgements.
#[derive(Debug)]
pub struct KeyProgResponder<S> {
    sink: S,
}

impl<S: KeySink> KeyProgResponder<S> {
    /// A responder over `sink`.
    pub fn new(sink: S) -> Self {
        Self { sink }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The sink, mutably.
    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Handles one request payload (from the ProtocolID byte) and returns the acknowledgement
    /// payload. `in_session` must be true only if the payload arrived inside an SPDM secured
    /// session; otherwise nothing is parsed or applied. `payload` is zeroed before returning,
    /// in every case, so the plaintext key does not outlive this call. A refusal by the sink is
    /// an acknowledgement with a failure status; a refusal here is an error for the engine to
    /// send as SPDM ERROR (through `Error::KeyProg` and [`crate::Error::wire_code`]).
    pub fn respond(
        &mut self,
        payload: &mut [u8],
        in_session: bool,
    ) -> Result<Vec<u8>, KeyProgError> {
        self.respond_inner(payload, in_session, None)
    }

    /// Like [`Self::respond`] for a payload that arrived in the secured session `session_id`
    /// (`None`: in clear, refused). Keys are programmed with
    /// [`KeySink::program_in_session`], so the device can later check which session they came
    /// from.
    pub fn respond_in_session(
        &mut self,
        payload: &mut [u8],
        session_id: Option<u32>,
    ) -> Result<Vec<u8>, KeyProgError> {
        self.respond_inner(payload, session_id.is_some(), session_id)
    }

    fn respond_inner(
        &mut self,
        payload: &mut [u8],
        in_session: bool,
        session_id: Option<u32>,
    ) -> Result<Vec<u8>, KeyProgError> {
        let ack = match admit(
            payload,
            in_session,
            KeyProgFamily::UalinkSec,
            UalinkKeyMessage::parse,
        )? {
            UalinkKeyMessage::Query { port } => {
                let ok = port <= self.sink.max_port();
                UalinkKeyMessage::QueryResp(UalinkQueryResp {
                    status: if ok {
                        KeyProgStatus::Success
                    } else {
                        KeyProgStatus::UnsupportedPortIndex
                    },
                    port,
                    max_port: self.sink.max_port(),
                    local_accel: self.sink.local_accel(),
                    max_peers: self.sink.max_peers(),
                })
            }
            UalinkKeyMessage::KeyProg(UalinkKeyProg { target, epoch, key }) => {
                let status = self
                    .check_port(target.port)
                    .and_then(|()| match session_id {
                        Some(sid) => self.sink.program_in_session(target, epoch, key, sid),
                        None => self.sink.program(target, epoch, key),
                    });
                UalinkKeyMessage::KpAck {
                    target,
                    status: status_of(status),
                    epoch,
                }
            }
            UalinkKeyMessage::KSetGo(target) => {
                let status = self
                    .check_port(target.port)
                    .and_then(|()| self.sink.go(target));
                UalinkKeyMessage::KGoStopAck {
                    target,
                    status: status_of(status),
                }
            }
            UalinkKeyMessage::KSetStop(target) => {
                let status = self
                    .check_port(target.port)
                    .and_then(|()| self.sink.stop(target));
                UalinkKeyMessage::KGoStopAck {
                    target,
                    status: status_of(status),
                }
            }
            UalinkKeyMessage::KeyRoll {
                target,
                expected_epoch,
            } => {
                let res = self
                    .check_port(target.port)
                    .and_then(|()| self.sink.roll(target.pair(), expected_epoch));
                UalinkKeyMessage::KeyRollAck {
                    target,
                    status: match res {
                        Ok(_) => KeyProgStatus::Success,
                        Err(s) => s,
                    },
                    active_epoch: res.unwrap_or(0),
                }
            }
            other => return Err(KeyProgError::UnexpectedObject(other.object_id())),
        };
        Ok(ack.encode().to_vec())
    }

    fn check_port(&self, port: u8) -> Result<(), KeyProgStatus> {
        if port > self.sink.max_port() {
            return Err(KeyProgStatus::UnsupportedPortIndex);
        }
        Ok(())
    }
}

fn status_of(r: Result<(), KeyProgStatus>) -> KeyProgStatus {
    match r {
        Ok(()) => KeyProgStatus::Success,
        Err(KeyProgStatus::Success) => KeyProgStatus::UnspecifiedFailure,
        Err(s) => s,
    }
}

#[derive(Debug)]
struct SlotEntry {
    epoch: u32,
    key: MasterKey,
    go: bool,
    session: Option<u32>,
}

#[derive(Debug, Default)]
struct PairSlots {
    active: Option<SlotEntry>,
    alternate: Option<SlotEntry>,
}

/// An in-memory [`KeySink`] (for the software device, the simulator and tests): per
/// (port, direction, peer) pair an active and an alternate slot, each holding an epoch, a
/// zeroizing key, whether GO was received and, when programmed through
/// [`KeyProgResponder::respond_in_session`], the SPDM session it arrived in.
///
/// Rules: a key's epoch must be newer than the pair's active epoch ([`KeyProgStatus::StaleEpoch`]);
/// GO needs a key in the slot ([`KeyProgStatus::SlotEmpty`]); STOP erases the slot; ROLL needs an
/// alternate key with the expected epoch ([`KeyProgStatus::EpochMismatch`]) and makes it the
/// active key, live for traffic, erasing the old one.
#[derive(Debug)]
pub struct MemoryKeySink {
    max_port: u8,
    local: AccelId,
    max_peers: u16,
    pairs: BTreeMap<KeyPair, PairSlots>,
}

impl MemoryKeySink {
    /// A sink with ports `0..=max_port` for accelerator `local`, holding up to `max_peers`
    /// pairs per port and direction.
    pub fn new(max_port: u8, local: AccelId, max_peers: u16) -> Self {
        Self {
            max_port,
            local,
            max_peers,
            pairs: BTreeMap::new(),
        }
    }

    /// Whether any pair has a live active key.
    pub fn any_live(&self) -> bool {
        self.pairs.keys().any(|p| self.is_live(*p))
    }

    /// The epoch held in `target`'s slot, if any.
    pub fn epoch(&self, target: KeyTarget) -> Option<u32> {
        let s = self.pairs.get(&target.pair())?;
        match target.slot {
            Slot::Active => s.active.as_ref().map(|e| e.epoch),
            Slot::Alternate => s.alternate.as_ref().map(|e| e.epoch),
        }
    }

    /// Whether `target`'s slot holds exactly `key` (constant-time compare; for tests and for
    /// checking that both ends of a link agree).
    pub fn holds(&self, target: KeyTarget, key: &MasterKey) -> bool {
        let Some(s) = self.pairs.get(&target.pair()) else {
            return false;
        };
        let slot = match target.slot {
            Slot::Active => &s.active,
            Slot::Alternate => &s.alternate,
        };
        slot.as_ref().is_some_and(|e| e.key.ct_eq(key))
    }

    fn store(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: MasterKey,
        session: Option<u32>,
    ) -> Result<(), KeyProgStatus> {
        if target.peer == self.local {
            return Err(KeyProgStatus::UnknownPeer);
        }
        let pair = target.pair();
        if !self.pairs.contains_key(&pair)
            && self.peers_on(pair.port, pair.direction) >= usize::from(self.max_peers)
        {
            return Err(KeyProgStatus::UnsupportedValue);
        }
        let slots = self.pairs.entry(pair).or_default();
        if let Some(active) = &slots.active {
            if epoch <= active.epoch {
                return Err(KeyProgStatus::StaleEpoch);
            }
        }
        let entry = Some(SlotEntry {
            epoch,
            key,
            go: false,
            session,
        });
        match target.slot {
            Slot::Active => slots.active = entry,
            Slot::Alternate => slots.alternate = entry,
        }
        Ok(())
    }

    fn peers_on(&self, port: u8, direction: Direction) -> usize {
        self.pairs
            .keys()
            .filter(|p| p.port == port && p.direction == direction)
            .count()
    }
}

impl KeySink for MemoryKeySink {
    fn max_port(&self) -> u8 {
        self.max_port
    }

    fn local_accel(&self) -> AccelId {
        self.local
    }

    fn max_peers(&self) -> u16 {
        self.max_peers
    }

    fn program(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: MasterKey,
    ) -> Result<(), KeyProgStatus> {
        self.store(target, epoch, key, None)
    }

    fn program_in_session(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: MasterKey,
        session_id: u32,
    ) -> Result<(), KeyProgStatus> {
        self.store(target, epoch, key, Some(session_id))
    }

    fn programmed_in(&self, pair: KeyPair) -> Option<u32> {
        self.pairs.get(&pair)?.active.as_ref()?.session
    }

    fn go(&mut self, target: KeyTarget) -> Result<(), KeyProgStatus> {
        let slots = self
            .pairs
            .get_mut(&target.pair())
            .ok_or(KeyProgStatus::SlotEmpty)?;
        let slot = match target.slot {
            Slot::Active => &mut slots.active,
            Slot::Alternate => &mut slots.alternate,
        };
        let e = slot.as_mut().ok_or(KeyProgStatus::SlotEmpty)?;
        e.go = true;
        Ok(())
    }

    fn stop(&mut self, target: KeyTarget) -> Result<(), KeyProgStatus> {
        let pair = target.pair();
        let slots = self.pairs.get_mut(&pair).ok_or(KeyProgStatus::SlotEmpty)?;
        let slot = match target.slot {
            Slot::Active => &mut slots.active,
            Slot::Alternate => &mut slots.alternate,
        };
        if slot.take().is_none() {
            return Err(KeyProgStatus::SlotEmpty);
        }
        if slots.active.is_none() && slots.alternate.is_none() {
            self.pairs.remove(&pair);
        }
        Ok(())
    }

    fn roll(&mut self, pair: KeyPair, expected_epoch: u32) -> Result<u32, KeyProgStatus> {
        let slots = self.pairs.get_mut(&pair).ok_or(KeyProgStatus::SlotEmpty)?;
        match &slots.alternate {
            None => return Err(KeyProgStatus::SlotEmpty),
            Some(e) if e.epoch != expected_epoch => return Err(KeyProgStatus::EpochMismatch),
            Some(_) => {}
        }
        let mut entry = slots.alternate.take().ok_or(KeyProgStatus::SlotEmpty)?;
        entry.go = true;
        let epoch = entry.epoch;
        slots.active = Some(entry);
        Ok(epoch)
    }

    fn is_live(&self, pair: KeyPair) -> bool {
        self.pairs
            .get(&pair)
            .and_then(|s| s.active.as_ref())
            .is_some_and(|e| e.go)
    }
}

// ---------------------------------------------------------------------------------------------
// IDE_KM device side
// ---------------------------------------------------------------------------------------------

/// Where a PCIe device keeps its IDE keys (the IDE_KM model). Called only for requests that
/// arrived inside a secured session and parsed cleanly.
pub trait IdeKmSink {
    /// The QUERY_RESP for `port_index`, or the status to refuse with.
    fn query(&self, port_index: u8) -> Result<IdeKmQueryResp, KeyProgStatus>;
    /// Stores `key` and `ifv` into `slot`'s key set.
    fn program(
        &mut self,
        slot: IdeKeySlot,
        key: IdeKey,
        ifv: [u8; IFV_LEN],
    ) -> Result<(), KeyProgStatus>;
    /// Like [`Self::program`], also given the SPDM session the key arrived in (TDISP LOCK
    /// checks the default stream's keys came from the locking session). The default ignores it.
    fn program_in_session(
        &mut self,
        slot: IdeKeySlot,
        key: IdeKey,
        ifv: [u8; IFV_LEN],
        session_id: u32,
    ) -> Result<(), KeyProgStatus> {
        let _ = session_id;
        self.program(slot, key, ifv)
    }
    /// Starts using `slot`'s key set.
    fn go(&mut self, slot: IdeKeySlot) -> Result<(), KeyProgStatus>;
    /// Stops using `slot`'s key set and erases it.
    fn stop(&mut self, slot: IdeKeySlot) -> Result<(), KeyProgStatus>;
}

/// Applies IDE_KM requests to an [`IdeKmSink`], with the same rules as [`KeyProgResponder`]:
/// nothing is parsed outside a secured session and the request plaintext is zeroed before
/// returning. KEY_PROG failures are a KP_ACK with the status; QUERY, K_SET_GO and K_SET_STOP
/// failures (IDE_KM has no status field for them) are [`KeyProgError::Refused`], for the engine
/// to send as SPDM ERROR.
#[derive(Debug)]
pub struct IdeKmResponder<S> {
    sink: S,
}

impl<S: IdeKmSink> IdeKmResponder<S> {
    /// A responder over `sink`.
    pub fn new(sink: S) -> Self {
        Self { sink }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Handles one IDE_KM request payload (from the ProtocolID byte) and returns the response
    /// payload; `payload` is zeroed in every case.
    pub fn respond(
        &mut self,
        payload: &mut [u8],
        in_session: bool,
    ) -> Result<Vec<u8>, KeyProgError> {
        self.respond_inner(payload, in_session, None)
    }

    /// Like [`Self::respond`] for a payload that arrived in the secured session `session_id`
    /// (`None`: in clear, refused); keys go through [`IdeKmSink::program_in_session`].
    pub fn respond_in_session(
        &mut self,
        payload: &mut [u8],
        session_id: Option<u32>,
    ) -> Result<Vec<u8>, KeyProgError> {
        self.respond_inner(payload, session_id.is_some(), session_id)
    }

    fn respond_inner(
        &mut self,
        payload: &mut [u8],
        in_session: bool,
        session_id: Option<u32>,
    ) -> Result<Vec<u8>, KeyProgError> {
        let rsp = match admit(
            payload,
            in_session,
            KeyProgFamily::IdeKm,
            IdeKmMessage::parse,
        )? {
            IdeKmMessage::Query { port_index } => {
                IdeKmMessage::QueryResp(self.sink.query(port_index).map_err(KeyProgError::Refused)?)
            }
            IdeKmMessage::KeyProg(IdeKmKeyProg { slot, key, ifv }) => {
                let programmed = match session_id {
                    Some(sid) => self.sink.program_in_session(slot, key, ifv, sid),
                    None => self.sink.program(slot, key, ifv),
                };
                IdeKmMessage::KpAck {
                    slot,
                    status: match programmed {
                        Ok(()) => KeyProgStatus::Success,
                        // IDE_KM defines statuses 0..=4 only.
                        Err(s) if s.wire() <= 4 && s != KeyProgStatus::Success => s,
                        Err(_) => KeyProgStatus::UnspecifiedFailure,
                    },
                }
            }
            IdeKmMessage::KSetGo(slot) => {
                success(self.sink.go(slot).err().unwrap_or(KeyProgStatus::Success))?;
                IdeKmMessage::KGoStopAck(slot)
            }
            IdeKmMessage::KSetStop(slot) => {
                success(self.sink.stop(slot).err().unwrap_or(KeyProgStatus::Success))?;
                IdeKmMessage::KGoStopAck(slot)
            }
            other => return Err(KeyProgError::UnexpectedObject(other.object_id())),
        };
        Ok(rsp.encode().to_vec())
    }
}

/// Checks an IDE_KM KP_ACK answers KEY_PROG(`slot`) with success.
pub fn expect_ide_kp_ack(rsp: &[u8], slot: IdeKeySlot) -> Result<(), KeyProgError> {
    match IdeKmMessage::parse(rsp)? {
        IdeKmMessage::KpAck { slot: s, status } => {
            if s != slot {
                return Err(KeyProgError::AckMismatch("KP_ACK slot"));
            }
            success(status)
        }
        other => Err(KeyProgError::UnexpectedObject(other.object_id())),
    }
}

/// Checks an IDE_KM K_GOSTOP_ACK answers K_SET_GO/K_SET_STOP(`slot`).
pub fn expect_ide_gostop_ack(rsp: &[u8], slot: IdeKeySlot) -> Result<(), KeyProgError> {
    match IdeKmMessage::parse(rsp)? {
        IdeKmMessage::KGoStopAck(s) if s == slot => Ok(()),
        IdeKmMessage::KGoStopAck(_) => Err(KeyProgError::AckMismatch("K_GOSTOP_ACK slot")),
        other => Err(KeyProgError::UnexpectedObject(other.object_id())),
    }
}

// ---------------------------------------------------------------------------------------------
// Requester side (TSM)
// ---------------------------------------------------------------------------------------------

/// Builds a UALinkSec KEY_PROG payload; the returned buffer is zeroized on drop.
pub fn ualink_key_prog(target: KeyTarget, epoch: u32, key: &MasterKey) -> Zeroizing<Vec<u8>> {
    UalinkKeyMessage::KeyProg(UalinkKeyProg {
        target,
        epoch,
        key: key.clone(),
    })
    .encode()
}

/// Builds a UALinkSec K_SET_GO payload.
pub fn ualink_go(target: KeyTarget) -> Vec<u8> {
    UalinkKeyMessage::KSetGo(target).encode().to_vec()
}

/// Builds a UALinkSec K_SET_STOP payload.
pub fn ualink_stop(target: KeyTarget) -> Vec<u8> {
    UalinkKeyMessage::KSetStop(target).encode().to_vec()
}

/// Builds a UALinkSec KEY_ROLL payload promoting `pair`'s alternate key of `expected_epoch`.
pub fn ualink_roll(pair: KeyPair, expected_epoch: u32) -> Vec<u8> {
    UalinkKeyMessage::KeyRoll {
        target: pair.slot(Slot::Alternate),
        expected_epoch,
    }
    .encode()
    .to_vec()
}

/// Builds a UALinkSec QUERY payload.
pub fn ualink_query(port: u8) -> Vec<u8> {
    UalinkKeyMessage::Query { port }.encode().to_vec()
}

/// Checks a KP_ACK answers KEY_PROG(`target`, `epoch`) with success.
pub fn expect_kp_ack(rsp: &[u8], target: KeyTarget, epoch: u32) -> Result<(), KeyProgError> {
    match UalinkKeyMessage::parse(rsp)? {
        UalinkKeyMessage::KpAck {
            target: t,
            status,
            epoch: e,
        } => {
            if t != target {
                return Err(KeyProgError::AckMismatch("KP_ACK target"));
            }
            if e != epoch {
                return Err(KeyProgError::AckMismatch("KP_ACK epoch"));
            }
            success(status)
        }
        other => Err(KeyProgError::UnexpectedObject(other.object_id())),
    }
}

/// Checks a K_GOSTOP_ACK answers K_SET_GO/K_SET_STOP(`target`) with success.
pub fn expect_gostop_ack(rsp: &[u8], target: KeyTarget) -> Result<(), KeyProgError> {
    match UalinkKeyMessage::parse(rsp)? {
        UalinkKeyMessage::KGoStopAck { target: t, status } => {
            if t != target {
                return Err(KeyProgError::AckMismatch("K_GOSTOP_ACK target"));
            }
            success(status)
        }
        other => Err(KeyProgError::UnexpectedObject(other.object_id())),
    }
}

/// Checks a KEY_ROLL_ACK answers KEY_ROLL(`pair`, `expected_epoch`) with success.
pub fn expect_roll_ack(rsp: &[u8], pair: KeyPair, expected_epoch: u32) -> Result<(), KeyProgError> {
    match UalinkKeyMessage::parse(rsp)? {
        UalinkKeyMessage::KeyRollAck {
            target,
            status,
            active_epoch,
        } => {
            if target != pair.slot(Slot::Alternate) {
                return Err(KeyProgError::AckMismatch("KEY_ROLL_ACK target"));
            }
            success(status)?;
            if active_epoch != expected_epoch {
                return Err(KeyProgError::AckMismatch("KEY_ROLL_ACK epoch"));
            }
            Ok(())
        }
        other => Err(KeyProgError::UnexpectedObject(other.object_id())),
    }
}

/// Checks a QUERY_RESP answers QUERY(`port`) with success.
pub fn expect_query_resp(rsp: &[u8], port: u8) -> Result<UalinkQueryResp, KeyProgError> {
    match UalinkKeyMessage::parse(rsp)? {
        UalinkKeyMessage::QueryResp(q) => {
            if q.port != port {
                return Err(KeyProgError::AckMismatch("QUERY_RESP port"));
            }
            success(q.status)?;
            Ok(q)
        }
        other => Err(KeyProgError::UnexpectedObject(other.object_id())),
    }
}

fn success(status: KeyProgStatus) -> Result<(), KeyProgError> {
    match status {
        KeyProgStatus::Success => Ok(()),
        s => Err(KeyProgError::Refused(s)),
    }
}
