//! The UAPI: ioctl numbers and `#[repr(C)]` argument structures.
//!
//! Rules (as CXL's `cxl_mem.h` does them):
//! - fields are `u32`, `u64` or byte arrays only, ordered so there is no implicit padding (checked at
//!   compile time: each struct's size equals the sum of its fields' sizes);
//! - every struct starts with `size` (must equal the struct's size) and `flags` (no unknown bit);
//! - `_rsvd*` fields must be zero;
//! - fields marked *out* are ignored on input and written on return (the whole struct is copied back);
//! - commands with a variable payload (grant, rotation message, SPDM message) take it directly after
//!   the struct; the user buffer must be exactly `size + payload length` long;
//! - all multi-byte fields are little-endian (the only byte order UALink hosts use); they are read
//!   with explicit little-endian loads, never by reinterpreting memory;
//! - numbers are append-only.
//!
//! The C header `include/uapi/ualink.h` is rendered from these definitions by [`render_c_header`]; a
//! test fails if the checked-in file is not current (`UALINK_REGEN_UAPI=1 cargo test -p ualink-kdrv
//! uapi_header_is_current` rewrites it).

use alloc::string::String;
use core::fmt::Write;

use crate::error::Malformed;

/// ioctl "type" byte of this driver.
pub const UALINK_IOC_MAGIC: u32 = 0xC5;

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// Linux `_IOC(dir, type, nr, size)`, evaluated at compile time (size < 2^14 is asserted).
#[allow(clippy::arithmetic_side_effects)] // const-evaluated on constants only
const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS));
    assert!(nr < (1 << IOC_NRBITS));
    #[allow(clippy::cast_possible_truncation)] // asserted above
    let size = size as u32;
    (dir << IOC_DIRSHIFT)
        | (UALINK_IOC_MAGIC << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | (size << IOC_SIZESHIFT)
}

/// A field type allowed in UAPI structs.
pub(crate) trait Wire: Sized + Copy {
    /// Bytes on the wire (= in memory: no padding).
    const SIZE: usize;
    /// C type name.
    const C_TYPE: &'static str;
    /// C array length (0 for scalars).
    const C_ARRAY: usize;
    fn read(r: &mut In<'_>) -> Result<Self, Malformed>;
    fn write(&self, w: &mut Out<'_>) -> Result<(), Malformed>;
}

/// A forward-only reader over copied-in bytes.
pub(crate) struct In<'a> {
    rest: &'a [u8],
}

impl<'a> In<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        In { rest: b }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        if self.rest.len() < N {
            return Err(Malformed::Truncated);
        }
        let (h, t) = self.rest.split_at(N);
        self.rest = t;
        h.try_into().map_err(|_| Malformed::Truncated)
    }
}

/// A forward-only writer into the user buffer (copy-out).
pub(crate) struct Out<'a> {
    rest: &'a mut [u8],
}

impl<'a> Out<'a> {
    pub(crate) fn new(b: &'a mut [u8]) -> Self {
        Out { rest: b }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Malformed> {
        if self.rest.len() < bytes.len() {
            return Err(Malformed::Truncated);
        }
        let (h, t) = core::mem::take(&mut self.rest).split_at_mut(bytes.len());
        h.copy_from_slice(bytes);
        self.rest = t;
        Ok(())
    }
}

impl Wire for u32 {
    const SIZE: usize = 4;
    const C_TYPE: &'static str = "__u32";
    const C_ARRAY: usize = 0;
    fn read(r: &mut In<'_>) -> Result<Self, Malformed> {
        Ok(u32::from_le_bytes(r.take::<4>()?))
    }
    fn write(&self, w: &mut Out<'_>) -> Result<(), Malformed> {
        w.put(&self.to_le_bytes())
    }
}

impl Wire for u64 {
    const SIZE: usize = 8;
    const C_TYPE: &'static str = "__u64";
    const C_ARRAY: usize = 0;
    fn read(r: &mut In<'_>) -> Result<Self, Malformed> {
        Ok(u64::from_le_bytes(r.take::<8>()?))
    }
    fn write(&self, w: &mut Out<'_>) -> Result<(), Malformed> {
        w.put(&self.to_le_bytes())
    }
}

impl<const N: usize> Wire for [u8; N] {
    const SIZE: usize = N;
    const C_TYPE: &'static str = "__u8";
    const C_ARRAY: usize = N;
    fn read(r: &mut In<'_>) -> Result<Self, Malformed> {
        r.take::<N>()
    }
    fn write(&self, w: &mut Out<'_>) -> Result<(), Malformed> {
        w.put(self)
    }
}

impl Wire for [u64; 16] {
    const SIZE: usize = 128;
    const C_TYPE: &'static str = "__u64";
    const C_ARRAY: usize = 16;
    fn read(r: &mut In<'_>) -> Result<Self, Malformed> {
        let mut out = [0u64; 16];
        for v in out.iter_mut() {
            *v = u64::read(r)?;
        }
        Ok(out)
    }
    fn write(&self, w: &mut Out<'_>) -> Result<(), Malformed> {
        for v in self {
            v.write(w)?;
        }
        Ok(())
    }
}

/// One field of a UAPI struct, for the header generator and layout tests.
#[derive(Clone, Copy, Debug)]
pub struct FieldDesc {
    /// Field name.
    pub name: &'static str,
    /// C type.
    pub c_type: &'static str,
    /// C array length (0 for a scalar).
    pub c_array: usize,
    /// Byte offset (`offset_of!`).
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// Doc line for the header.
    pub doc: &'static str,
}

/// One UAPI struct, for the header generator.
#[derive(Clone, Copy, Debug)]
pub struct StructDesc {
    /// C name (`ualink_export`).
    pub c_name: &'static str,
    /// Size in bytes.
    pub size: usize,
    /// Fields in order.
    pub fields: &'static [FieldDesc],
    /// Doc line.
    pub doc: &'static str,
}

macro_rules! uapi_struct {
    (
        $(#[doc = $doc:literal])*
        $name:ident, $cname:literal, $size:literal {
            $( #[doc = $fdoc:literal] $f:ident : $t:ty, )*
        }
    ) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $( #[doc = $fdoc] pub $f: $t, )*
        }

        // Size pinned, and no implicit padding: the fields' sizes add up to the struct's size.
        const _: () = assert!(core::mem::size_of::<$name>() == $size);
        #[allow(clippy::arithmetic_side_effects)]
        const _: () = assert!(0 $(+ <$t as Wire>::SIZE)* == $size);

        impl $name {
            /// Size of the struct in bytes (the value its `size` field must hold).
            pub const SIZE: usize = $size;
            /// Layout description for the header generator.
            pub const DESC: StructDesc = StructDesc {
                c_name: $cname,
                size: $size,
                fields: &[$(FieldDesc {
                    name: stringify!($f),
                    c_type: <$t as Wire>::C_TYPE,
                    c_array: <$t as Wire>::C_ARRAY,
                    offset: core::mem::offset_of!($name, $f),
                    size: <$t as Wire>::SIZE,
                    doc: $fdoc,
                },)*],
                doc: concat!($($doc),*),
            };

            /// Decodes from the first `SIZE` bytes of copied-in input (little-endian field by field).
            ///
            /// Return: `Malformed::Truncated` if shorter.
            pub fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
                let mut r = In::new(bytes);
                Ok($name { $( $f: <$t as Wire>::read(&mut r)?, )* })
            }

            /// Encodes into the first `SIZE` bytes of `out`.
            ///
            /// Return: `Malformed::Truncated` if shorter.
            pub fn encode(&self, out: &mut [u8]) -> Result<(), Malformed> {
                let mut w = Out::new(out);
                $( self.$f.write(&mut w)?; )*
                Ok(())
            }
        }
    };
}

uapi_struct! {
    /// UALINK_IOC_EXPORT (tenant): export a region of one of the caller's windows; returns its handle.
    UalinkExport, "ualink_export", 48 {
        /// in: sizeof(struct ualink_export)
        size: u32,
        /// in: no flags defined, must be 0
        flags: u32,
        /// in: window id
        window: u32,
        /// reserved, must be 0
        _rsvd0: u32,
        /// in: byte offset into the window
        offset: u64,
        /// in: length in bytes (non-zero)
        len: u64,
        /// out: the 128-bit opaque buffer handle
        handle: [u8; 16],
    }
}

uapi_struct! {
    /// UALINK_IOC_ATTACH (tenant): attach as a dynamic importer; followed by grant_len bytes of grant.
    UalinkAttach, "ualink_attach", 56 {
        /// in: sizeof(struct ualink_attach)
        size: u32,
        /// in: UALINK_ATTACH_F_DYNAMIC (mandatory)
        flags: u32,
        /// in: buffer handle
        handle: [u8; 16],
        /// in: importing accelerator id (10 bits)
        importer_accel: u32,
        /// in: UALINK_RIGHT_* bits (non-zero)
        rights: u32,
        /// in: cookie passed back on invalidation (move_notify)
        cookie: u64,
        /// in: bytes of COSE_Sign1 grant after this struct (0 = none)
        grant_len: u32,
        /// reserved, must be 0
        _rsvd0: u32,
        /// out: attachment id
        attachment: u64,
    }
}

uapi_struct! {
    /// UALINK_IOC_MAP (tenant): map an attachment (cached gate check, route, window permission).
    UalinkMap, "ualink_map", 24 {
        /// in: sizeof(struct ualink_map)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: attachment id
        attachment: u64,
        /// out: mapping id
        mapping: u64,
    }
}

uapi_struct! {
    /// UALINK_IOC_UNMAP / UALINK_IOC_DETACH (tenant): name one attachment.
    UalinkAttachmentArg, "ualink_attachment_arg", 16 {
        /// in: sizeof(struct ualink_attachment_arg)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: attachment id
        attachment: u64,
    }
}

uapi_struct! {
    /// UALINK_IOC_REVOKE (exporter or TSM): revoke a buffer; it becomes DEAD.
    UalinkRevoke, "ualink_revoke", 24 {
        /// in: sizeof(struct ualink_revoke)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: buffer handle
        handle: [u8; 16],
    }
}

uapi_struct! {
    /// UALINK_IOC_TENANT_ADD / UALINK_IOC_TENANT_OFFBOARD (TSM): name one tenant.
    UalinkTenant, "ualink_tenant", 16 {
        /// in: sizeof(struct ualink_tenant)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: tenant id (non-zero)
        tenant: u32,
        /// reserved, must be 0
        _rsvd0: u32,
    }
}

uapi_struct! {
    /// UALINK_IOC_VPOD_CREATE (TSM): form a tenant's vPod from whole accelerators (bitmap of 1024 ids).
    UalinkVpodCreate, "ualink_vpod_create", 144 {
        /// in: sizeof(struct ualink_vpod_create)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: tenant id
        tenant: u32,
        /// reserved, must be 0
        _rsvd0: u32,
        /// in: bit (id % 64) of word (id / 64) set for each member accelerator id
        members: [u64; 16],
    }
}

uapi_struct! {
    /// UALINK_IOC_WINDOW_CREATE (TSM): carve a memory window of a vPod member for its tenant.
    UalinkWindowCreate, "ualink_window_create", 40 {
        /// in: sizeof(struct ualink_window_create)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: tenant id
        tenant: u32,
        /// in: accelerator id
        accel: u32,
        /// in: device address of the first byte
        base: u64,
        /// in: length in bytes (non-zero)
        len: u64,
        /// out: window id
        window: u32,
        /// reserved, must be 0
        _rsvd0: u32,
    }
}

uapi_struct! {
    /// UALINK_IOC_TDI_SET (TSM): update the mirror of a TDI's TDISP state and attestation epoch.
    UalinkTdiSet, "ualink_tdi_set", 24 {
        /// in: sizeof(struct ualink_tdi_set)
        size: u32,
        /// in: UALINK_TDI_F_QUARANTINE
        flags: u32,
        /// in: accelerator id
        accel: u32,
        /// in: UALINK_TDI_STATE_*
        state: u32,
        /// in: attestation epoch
        epoch: u64,
    }
}

uapi_struct! {
    /// UALINK_IOC_KEYSLOT (TSM): relay a key-slot command; returns the slot pair's metadata (never keys).
    UalinkKeyslot, "ualink_keyslot", 152 {
        /// in: sizeof(struct ualink_keyslot)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: accelerator id
        accel: u32,
        /// in: port index
        port: u32,
        /// in: UALINK_DIR_TX or UALINK_DIR_RX
        dir: u32,
        /// in: peer accelerator id
        peer: u32,
        /// in: UALINK_KEYSLOT_CMD_*
        cmd: u32,
        /// out: 1 if the direction is enabled
        enabled: u32,
        /// out: UALINK_SLOT_* of the active slot
        active_state: u32,
        /// out: key epoch of the active slot
        active_epoch: u32,
        /// out: UALINK_SLOT_* of the alternate slot
        alt_state: u32,
        /// out: key epoch of the alternate slot
        alt_epoch: u32,
        /// out: SHA-384 fingerprint of the active key (zero if none)
        active_fp: [u8; 48],
        /// out: SHA-384 fingerprint of the alternate key (zero if none)
        alt_fp: [u8; 48],
        /// out: bit 0 active fingerprint present, bit 1 alternate fingerprint present
        fp_present: u32,
        /// reserved, must be 0
        _rsvd0: u32,
    }
}

uapi_struct! {
    /// UALINK_IOC_ROTATE_KEY (TSM): rotate the grant-signing key; followed by msg_len bytes (COSE_Sign1).
    UalinkRotateKey, "ualink_rotate_key", 16 {
        /// in: sizeof(struct ualink_rotate_key)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: bytes of rotation message after this struct
        msg_len: u32,
        /// reserved, must be 0
        _rsvd0: u32,
    }
}

uapi_struct! {
    /// UALINK_IOC_SPDM_SEND (TSM): send one SPDM message (len bytes after this struct) to a device.
    UalinkSpdmSend, "ualink_spdm_send", 16 {
        /// in: sizeof(struct ualink_spdm_send)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: accelerator id
        accel: u32,
        /// in: bytes of message after this struct
        len: u32,
    }
}

uapi_struct! {
    /// UALINK_IOC_SPDM_RECV (TSM): receive one SPDM message into the cap bytes after this struct.
    UalinkSpdmRecv, "ualink_spdm_recv", 24 {
        /// in: sizeof(struct ualink_spdm_recv)
        size: u32,
        /// in: must be 0
        flags: u32,
        /// in: accelerator id
        accel: u32,
        /// in: bytes available after this struct
        cap: u32,
        /// out: bytes received
        len: u32,
        /// reserved, must be 0
        _rsvd0: u32,
    }
}

uapi_struct! {
    /// UALINK_IOC_RAS_POLL (TSM): handle pending hardware fault reports (and optionally audit routes).
    UalinkRasPoll, "ualink_ras_poll", 16 {
        /// in: sizeof(struct ualink_ras_poll)
        size: u32,
        /// in: UALINK_RAS_F_AUDIT_ROUTES
        flags: u32,
        /// in: most reports to handle
        max: u32,
        /// out: reports handled
        handled: u32,
    }
}

/// `UalinkAttach::flags`: the importer is dynamic (it handles invalidation). Mandatory.
pub const UALINK_ATTACH_F_DYNAMIC: u32 = 1;
/// `UalinkTdiSet::flags`: quarantine the accelerator.
pub const UALINK_TDI_F_QUARANTINE: u32 = 1;
/// `UalinkRasPoll::flags`: also read back and restore every routing entry.
pub const UALINK_RAS_F_AUDIT_ROUTES: u32 = 1;
/// Right: loads.
pub const UALINK_RIGHT_READ: u32 = 1;
/// Right: stores.
pub const UALINK_RIGHT_WRITE: u32 = 2;
/// Right: atomics.
pub const UALINK_RIGHT_ATOMIC: u32 = 4;
/// TDISP CONFIG_UNLOCKED.
pub const UALINK_TDI_STATE_UNLOCKED: u32 = 0;
/// TDISP CONFIG_LOCKED.
pub const UALINK_TDI_STATE_LOCKED: u32 = 1;
/// TDISP RUN.
pub const UALINK_TDI_STATE_RUN: u32 = 2;
/// TDISP ERROR.
pub const UALINK_TDI_STATE_ERROR: u32 = 3;
/// Key-slot direction: transmit.
pub const UALINK_DIR_TX: u32 = 0;
/// Key-slot direction: receive.
pub const UALINK_DIR_RX: u32 = 1;
/// Key-slot command: query.
pub const UALINK_KEYSLOT_CMD_QUERY: u32 = 0;
/// Key-slot command: enable the direction.
pub const UALINK_KEYSLOT_CMD_GO: u32 = 1;
/// Key-slot command: disable the direction.
pub const UALINK_KEYSLOT_CMD_STOP: u32 = 2;
/// Key-slot command: swap alternate into active (KeyRollMSG).
pub const UALINK_KEYSLOT_CMD_ROLL: u32 = 3;
/// Key-slot command: zeroize both slots and disable.
pub const UALINK_KEYSLOT_CMD_INVALIDATE: u32 = 4;
/// Slot state: empty.
pub const UALINK_SLOT_EMPTY: u32 = 0;
/// Slot state: programmed, not in use.
pub const UALINK_SLOT_PROGRAMMED: u32 = 1;
/// Slot state: live.
pub const UALINK_SLOT_LIVE: u32 = 2;
/// Slot state: stale.
pub const UALINK_SLOT_STALE: u32 = 3;
/// Largest SPDM message relayed, in bytes.
pub const UALINK_SPDM_MAX: u32 = 4096;

/// Export a buffer.
pub const UALINK_IOC_EXPORT: u32 = ioc(IOC_READ | IOC_WRITE, 0x01, UalinkExport::SIZE);
/// Attach to a buffer.
pub const UALINK_IOC_ATTACH: u32 = ioc(IOC_READ | IOC_WRITE, 0x02, UalinkAttach::SIZE);
/// Map an attachment.
pub const UALINK_IOC_MAP: u32 = ioc(IOC_READ | IOC_WRITE, 0x03, UalinkMap::SIZE);
/// Unmap an attachment.
pub const UALINK_IOC_UNMAP: u32 = ioc(IOC_WRITE, 0x04, UalinkAttachmentArg::SIZE);
/// Detach an attachment.
pub const UALINK_IOC_DETACH: u32 = ioc(IOC_WRITE, 0x05, UalinkAttachmentArg::SIZE);
/// Revoke a buffer.
pub const UALINK_IOC_REVOKE: u32 = ioc(IOC_WRITE, 0x06, UalinkRevoke::SIZE);
/// Add a tenant.
pub const UALINK_IOC_TENANT_ADD: u32 = ioc(IOC_WRITE, 0x10, UalinkTenant::SIZE);
/// Offboard a tenant.
pub const UALINK_IOC_TENANT_OFFBOARD: u32 = ioc(IOC_WRITE, 0x11, UalinkTenant::SIZE);
/// Create a vPod.
pub const UALINK_IOC_VPOD_CREATE: u32 = ioc(IOC_WRITE, 0x12, UalinkVpodCreate::SIZE);
/// Create a window.
pub const UALINK_IOC_WINDOW_CREATE: u32 = ioc(IOC_READ | IOC_WRITE, 0x13, UalinkWindowCreate::SIZE);
/// Update a TDI mirror.
pub const UALINK_IOC_TDI_SET: u32 = ioc(IOC_WRITE, 0x14, UalinkTdiSet::SIZE);
/// Relay a key-slot command.
pub const UALINK_IOC_KEYSLOT: u32 = ioc(IOC_READ | IOC_WRITE, 0x15, UalinkKeyslot::SIZE);
/// Rotate the TSM key.
pub const UALINK_IOC_ROTATE_KEY: u32 = ioc(IOC_WRITE, 0x16, UalinkRotateKey::SIZE);
/// Send an SPDM message.
pub const UALINK_IOC_SPDM_SEND: u32 = ioc(IOC_WRITE, 0x17, UalinkSpdmSend::SIZE);
/// Receive an SPDM message.
pub const UALINK_IOC_SPDM_RECV: u32 = ioc(IOC_READ | IOC_WRITE, 0x18, UalinkSpdmRecv::SIZE);
/// Poll RAS fault reports.
pub const UALINK_IOC_RAS_POLL: u32 = ioc(IOC_READ | IOC_WRITE, 0x19, UalinkRasPoll::SIZE);

/// One ioctl for the header generator: (name, direction macro, nr, struct).
#[derive(Clone, Copy, Debug)]
pub struct IoctlDesc {
    /// `UALINK_IOC_*` name.
    pub name: &'static str,
    /// `_IOW` or `_IOWR`.
    pub dir: &'static str,
    /// Command number.
    pub nr: u32,
    /// Argument struct.
    pub arg: &'static StructDesc,
    /// Full command value.
    pub cmd: u32,
    /// Whether a TSM file is required.
    pub tsm_only: bool,
}

/// Every struct, in header order.
pub const STRUCTS: &[StructDesc] = &[
    UalinkExport::DESC,
    UalinkAttach::DESC,
    UalinkMap::DESC,
    UalinkAttachmentArg::DESC,
    UalinkRevoke::DESC,
    UalinkTenant::DESC,
    UalinkVpodCreate::DESC,
    UalinkWindowCreate::DESC,
    UalinkTdiSet::DESC,
    UalinkKeyslot::DESC,
    UalinkRotateKey::DESC,
    UalinkSpdmSend::DESC,
    UalinkSpdmRecv::DESC,
    UalinkRasPoll::DESC,
];

macro_rules! ioctls {
    ($( $name:ident, $dir:literal, $nr:literal, $t:ty, $tsm:literal; )*) => {
        /// Every ioctl, in number order.
        pub const IOCTLS: &[IoctlDesc] = &[$(IoctlDesc {
            name: stringify!($name),
            dir: $dir,
            nr: $nr,
            arg: &<$t>::DESC,
            cmd: $name,
            tsm_only: $tsm,
        },)*];
    };
}

ioctls! {
    UALINK_IOC_EXPORT, "_IOWR", 0x01, UalinkExport, false;
    UALINK_IOC_ATTACH, "_IOWR", 0x02, UalinkAttach, false;
    UALINK_IOC_MAP, "_IOWR", 0x03, UalinkMap, false;
    UALINK_IOC_UNMAP, "_IOW", 0x04, UalinkAttachmentArg, false;
    UALINK_IOC_DETACH, "_IOW", 0x05, UalinkAttachmentArg, false;
    UALINK_IOC_REVOKE, "_IOW", 0x06, UalinkRevoke, false;
    UALINK_IOC_TENANT_ADD, "_IOW", 0x10, UalinkTenant, true;
    UALINK_IOC_TENANT_OFFBOARD, "_IOW", 0x11, UalinkTenant, true;
    UALINK_IOC_VPOD_CREATE, "_IOW", 0x12, UalinkVpodCreate, true;
    UALINK_IOC_WINDOW_CREATE, "_IOWR", 0x13, UalinkWindowCreate, true;
    UALINK_IOC_TDI_SET, "_IOW", 0x14, UalinkTdiSet, true;
    UALINK_IOC_KEYSLOT, "_IOWR", 0x15, UalinkKeyslot, true;
    UALINK_IOC_ROTATE_KEY, "_IOW", 0x16, UalinkRotateKey, true;
    UALINK_IOC_SPDM_SEND, "_IOW", 0x17, UalinkSpdmSend, true;
    UALINK_IOC_SPDM_RECV, "_IOWR", 0x18, UalinkSpdmRecv, true;
    UALINK_IOC_RAS_POLL, "_IOWR", 0x19, UalinkRasPoll, true;
}

/// Plain constants rendered into the header: (name, value, doc).
const CONSTS: &[(&str, u32, &str)] = &[
    (
        "UALINK_ATTACH_F_DYNAMIC",
        UALINK_ATTACH_F_DYNAMIC,
        "importer handles invalidation (mandatory)",
    ),
    (
        "UALINK_TDI_F_QUARANTINE",
        UALINK_TDI_F_QUARANTINE,
        "quarantine the accelerator",
    ),
    (
        "UALINK_RAS_F_AUDIT_ROUTES",
        UALINK_RAS_F_AUDIT_ROUTES,
        "also audit every routing entry",
    ),
    ("UALINK_RIGHT_READ", UALINK_RIGHT_READ, "loads"),
    ("UALINK_RIGHT_WRITE", UALINK_RIGHT_WRITE, "stores"),
    ("UALINK_RIGHT_ATOMIC", UALINK_RIGHT_ATOMIC, "atomics"),
    (
        "UALINK_TDI_STATE_UNLOCKED",
        UALINK_TDI_STATE_UNLOCKED,
        "TDISP CONFIG_UNLOCKED",
    ),
    (
        "UALINK_TDI_STATE_LOCKED",
        UALINK_TDI_STATE_LOCKED,
        "TDISP CONFIG_LOCKED",
    ),
    ("UALINK_TDI_STATE_RUN", UALINK_TDI_STATE_RUN, "TDISP RUN"),
    (
        "UALINK_TDI_STATE_ERROR",
        UALINK_TDI_STATE_ERROR,
        "TDISP ERROR",
    ),
    ("UALINK_DIR_TX", UALINK_DIR_TX, "key slot: transmit"),
    ("UALINK_DIR_RX", UALINK_DIR_RX, "key slot: receive"),
    (
        "UALINK_KEYSLOT_CMD_QUERY",
        UALINK_KEYSLOT_CMD_QUERY,
        "read metadata",
    ),
    (
        "UALINK_KEYSLOT_CMD_GO",
        UALINK_KEYSLOT_CMD_GO,
        "enable the direction",
    ),
    (
        "UALINK_KEYSLOT_CMD_STOP",
        UALINK_KEYSLOT_CMD_STOP,
        "disable the direction",
    ),
    (
        "UALINK_KEYSLOT_CMD_ROLL",
        UALINK_KEYSLOT_CMD_ROLL,
        "swap alternate into active",
    ),
    (
        "UALINK_KEYSLOT_CMD_INVALIDATE",
        UALINK_KEYSLOT_CMD_INVALIDATE,
        "zeroize both slots",
    ),
    ("UALINK_SLOT_EMPTY", UALINK_SLOT_EMPTY, "no key"),
    (
        "UALINK_SLOT_PROGRAMMED",
        UALINK_SLOT_PROGRAMMED,
        "programmed, not in use",
    ),
    ("UALINK_SLOT_LIVE", UALINK_SLOT_LIVE, "in use"),
    (
        "UALINK_SLOT_STALE",
        UALINK_SLOT_STALE,
        "stale: traffic stopped",
    ),
    (
        "UALINK_SPDM_MAX",
        UALINK_SPDM_MAX,
        "largest relayed SPDM message",
    ),
    (
        "UALINK_GRANT_MAX",
        crate::grant::MAX_SIGNED_MSG_LEN_U32,
        "largest grant or rotation message",
    ),
];

/// Renders the C header from the definitions above. Deterministic: the same definitions give the same
/// bytes.
pub fn render_c_header() -> Result<String, core::fmt::Error> {
    let mut h = String::new();
    h.push_str("/* SPDX-License-Identifier: Apache-2.0 WITH Linux-syscall-note */\n");
    h.push_str("/*\n * UALink confidential-computing driver UAPI.\n *\n");
    h.push_str(" * GENERATED from ualink-kdrv/src/uapi.rs by render_c_header(); do not edit.\n");
    h.push_str(
        " * Regenerate: UALINK_REGEN_UAPI=1 cargo test -p ualink-kdrv uapi_header_is_current\n",
    );
    h.push_str(" *\n * Every struct starts with size (= sizeof) and flags (no unknown bit); _rsvd fields\n");
    h.push_str(" * must be zero; out fields are ignored on input. All fields are little-endian.\n");
    h.push_str(" * Errors: see the errno list at the end of this file.\n */\n");
    h.push_str("#ifndef _UAPI_LINUX_UALINK_H\n#define _UAPI_LINUX_UALINK_H\n\n");
    h.push_str("#include <linux/ioctl.h>\n#include <linux/types.h>\n\n");
    writeln!(h, "#define UALINK_IOC_MAGIC 0x{UALINK_IOC_MAGIC:02X}\n")?;
    for (name, v, doc) in CONSTS {
        writeln!(h, "#define {name} {v}U /* {doc} */")?;
    }
    h.push('\n');
    for s in STRUCTS {
        writeln!(h, "/* {} */", s.doc.trim())?;
        writeln!(h, "struct {} {{", s.c_name)?;
        for f in s.fields {
            let arr = if f.c_array == 0 {
                String::new()
            } else {
                let mut a = String::new();
                write!(a, "[{}]", f.c_array)?;
                a
            };
            writeln!(
                h,
                "\t{} {}{}; /* {} */",
                f.c_type,
                f.name,
                arr,
                f.doc.trim()
            )?;
        }
        writeln!(h, "}};")?;
        writeln!(
            h,
            "_Static_assert(sizeof(struct {}) == {}, \"struct {} size\");\n",
            s.c_name, s.size, s.c_name
        )?;
    }
    for i in IOCTLS {
        writeln!(
            h,
            "#define {} {}(UALINK_IOC_MAGIC, 0x{:02x}, struct {}){}",
            i.name,
            i.dir,
            i.nr,
            i.arg.c_name,
            if i.tsm_only { " /* TSM only */" } else { "" }
        )?;
    }
    h.push_str("\n/*\n * Errors (returned as -errno):\n");
    for e in crate::errno::Errno::ALL {
        writeln!(h, " *   {:<12} {}", e.name(), e.to_positive())?;
    }
    h.push_str(" */\n\n#endif /* _UAPI_LINUX_UALINK_H */\n");
    Ok(h)
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn ioctl_numbers_match_linux_ioc_encoding() {
        // _IOWR(0xC5, 0x01, 48 bytes) = 3<<30 | 48<<16 | 0xC5<<8 | 1
        assert_eq!(UALINK_IOC_EXPORT, 0xC030_C501);
        // _IOW(0xC5, 0x04, 16 bytes) = 1<<30 | 16<<16 | 0xC5<<8 | 4
        assert_eq!(UALINK_IOC_UNMAP, 0x4010_C504);
        let mut cmds: std::vec::Vec<u32> = IOCTLS.iter().map(|i| i.cmd).collect();
        cmds.sort_unstable();
        cmds.dedup();
        assert_eq!(cmds.len(), IOCTLS.len(), "ioctl numbers must be unique");
        for i in IOCTLS {
            assert_eq!(i.cmd & 0xff, i.nr);
            assert_eq!((i.cmd >> 16) & 0x3fff, u32::try_from(i.arg.size).unwrap());
        }
    }

    #[test]
    fn layouts_have_no_padding_and_start_with_size_and_flags() {
        for s in STRUCTS {
            let mut off = 0;
            for f in s.fields {
                assert_eq!(f.offset, off, "{}.{}", s.c_name, f.name);
                off += f.size;
            }
            assert_eq!(off, s.size, "{}", s.c_name);
            assert_eq!(s.fields[0].name, "size");
            assert_eq!(s.fields[1].name, "flags");
            assert_eq!(s.size % 8, 0, "{} keeps 8-byte alignment", s.c_name);
        }
    }

    #[test]
    fn decode_encode_round_trip_little_endian() {
        let mut bytes = [0u8; UalinkMap::SIZE];
        bytes[0] = 24;
        bytes[8..16].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        let m = UalinkMap::decode(&bytes).unwrap();
        assert_eq!(m.size, 24);
        assert_eq!(m.attachment, 0x0102_0304_0506_0708);
        let mut out = [0u8; UalinkMap::SIZE];
        m.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
        assert_eq!(UalinkMap::decode(&bytes[..23]), Err(Malformed::Truncated));
    }

    #[test]
    fn uapi_header_is_current() {
        let rendered = render_c_header().unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("include/uapi/ualink.h");
        if std::env::var_os("UALINK_REGEN_UAPI").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &rendered).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == rendered,
            "include/uapi/ualink.h is stale; run UALINK_REGEN_UAPI=1 cargo test -p ualink-kdrv uapi_header_is_current"
        );
    }
}
