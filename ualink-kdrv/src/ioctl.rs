//! The ioctl entry: copy in once, validate into a sanitized command, dispatch, copy out.
//!
//! Validation order (every command): unknown command → `ENOTTY`; buffer shorter than the struct →
//! `EFAULT`; longer than the struct plus its declared payload → `E2BIG` (payload over its bound →
//! `E2BIG`, shorter than declared → `EFAULT`); `size` ≠ struct size → `EINVAL`; unknown flag bit →
//! `EINVAL`; non-zero reserved field → `EINVAL`; out-of-range field → `EINVAL`. Only then is the role
//! checked (`EPERM`) and the command dispatched.

use alloc::vec::Vec;

use crate::audit::{AuditSink, InvalidateSink};
use crate::crypto::CryptoBackend;
use crate::driver::{AttachRequest, Driver, FileCtx, TdiState};
use crate::errno::Errno;
use crate::error::{Error, Malformed};
use crate::grant::MAX_SIGNED_MSG_LEN;
use crate::ids::{AcceleratorId, AttachmentId, BufferHandle, PortId, Rights, TenantId, WindowId};
use crate::ops::{Direction, FabricOps, KeySlotCommand, KeySlotRef, SlotMeta, SlotState};
use crate::uapi::*;

/// A command after validation: every field typed and in range. Only this is dispatched.
#[derive(Debug, PartialEq, Eq)]
enum Cmd<'a> {
    Export {
        window: WindowId,
        offset: u64,
        len: u64,
    },
    Attach {
        handle: BufferHandle,
        accel: AcceleratorId,
        rights: Rights,
        cookie: Option<u64>,
        grant: Option<&'a [u8]>,
    },
    Map(AttachmentId),
    Unmap(AttachmentId),
    Detach(AttachmentId),
    Revoke(BufferHandle),
    TenantAdd(TenantId),
    TenantOffboard(TenantId),
    VpodCreate {
        tenant: TenantId,
        members: Vec<AcceleratorId>,
    },
    WindowCreate {
        tenant: TenantId,
        accel: AcceleratorId,
        base: u64,
        len: u64,
    },
    TdiSet {
        accel: AcceleratorId,
        state: TdiState,
        epoch: u64,
        quarantine: bool,
    },
    KeySlot {
        slot: KeySlotRef,
        cmd: KeySlotCommand,
    },
    RotateKey(&'a [u8]),
    SpdmSend {
        accel: AcceleratorId,
        msg: &'a [u8],
    },
    SpdmRecv {
        accel: AcceleratorId,
        cap: usize,
    },
    RasPoll {
        max: u32,
        audit_routes: bool,
    },
}

fn check_common(size: u32, want: usize, flags: u32, known: u32) -> Result<(), Malformed> {
    if usize::try_from(size).ok() != Some(want) {
        return Err(Malformed::BadSize);
    }
    if flags & !known != 0 {
        return Err(Malformed::UnknownFlags);
    }
    Ok(())
}

fn rsvd(v: u32) -> Result<(), Malformed> {
    if v != 0 {
        return Err(Malformed::ReservedNonZero);
    }
    Ok(())
}

fn accel(v: u32, what: &'static str) -> Result<AcceleratorId, Malformed> {
    AcceleratorId::from_u32(v).map_err(|_| Malformed::BadField(what))
}

/// The payload after the struct: exactly `declared` bytes, at most `max`.
fn payload(k: &[u8], size: usize, declared: u32, max: usize) -> Result<&[u8], Malformed> {
    let declared = usize::try_from(declared).map_err(|_| Malformed::PayloadTooLong)?;
    if declared > max {
        return Err(Malformed::PayloadTooLong);
    }
    let total = size.checked_add(declared).ok_or(Malformed::Overflow)?;
    if k.len() < total {
        return Err(Malformed::Truncated);
    }
    if k.len() > total {
        return Err(Malformed::Oversized);
    }
    k.get(size..).ok_or(Malformed::Truncated)
}

/// A fixed-size command: the buffer must be exactly the struct.
fn exact(k: &[u8], size: usize) -> Result<(), Malformed> {
    payload(k, size, 0, 0).map(|_| ())
}

/// Validates copied-in bytes `k` for `cmd` into a sanitized command.
fn validate(cmd: u32, k: &[u8]) -> Result<Cmd<'_>, Error> {
    match cmd {
        UALINK_IOC_EXPORT => {
            let a = UalinkExport::decode(k)?;
            exact(k, UalinkExport::SIZE)?;
            check_common(a.size, UalinkExport::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            Ok(Cmd::Export {
                window: WindowId(a.window),
                offset: a.offset,
                len: a.len,
            })
        }
        UALINK_IOC_ATTACH => {
            let a = UalinkAttach::decode(k)?;
            let grant = payload(k, UalinkAttach::SIZE, a.grant_len, MAX_SIGNED_MSG_LEN)?;
            check_common(a.size, UalinkAttach::SIZE, a.flags, UALINK_ATTACH_F_DYNAMIC)?;
            rsvd(a._rsvd0)?;
            let rights = Rights::from_bits(a.rights).map_err(|_| Malformed::BadField("rights"))?;
            if rights.is_empty() {
                return Err(Malformed::BadField("rights").into());
            }
            Ok(Cmd::Attach {
                handle: BufferHandle(a.handle),
                accel: accel(a.importer_accel, "importer_accel")?,
                rights,
                cookie: (a.flags & UALINK_ATTACH_F_DYNAMIC != 0).then_some(a.cookie),
                grant: (!grant.is_empty()).then_some(grant),
            })
        }
        UALINK_IOC_MAP => {
            let a = UalinkMap::decode(k)?;
            exact(k, UalinkMap::SIZE)?;
            check_common(a.size, UalinkMap::SIZE, a.flags, 0)?;
            Ok(Cmd::Map(AttachmentId(a.attachment)))
        }
        UALINK_IOC_UNMAP | UALINK_IOC_DETACH => {
            let a = UalinkAttachmentArg::decode(k)?;
            exact(k, UalinkAttachmentArg::SIZE)?;
            check_common(a.size, UalinkAttachmentArg::SIZE, a.flags, 0)?;
            let id = AttachmentId(a.attachment);
            Ok(if cmd == UALINK_IOC_UNMAP {
                Cmd::Unmap(id)
            } else {
                Cmd::Detach(id)
            })
        }
        UALINK_IOC_REVOKE => {
            let a = UalinkRevoke::decode(k)?;
            exact(k, UalinkRevoke::SIZE)?;
            check_common(a.size, UalinkRevoke::SIZE, a.flags, 0)?;
            Ok(Cmd::Revoke(BufferHandle(a.handle)))
        }
        UALINK_IOC_TENANT_ADD | UALINK_IOC_TENANT_OFFBOARD => {
            let a = UalinkTenant::decode(k)?;
            exact(k, UalinkTenant::SIZE)?;
            check_common(a.size, UalinkTenant::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            if a.tenant == 0 {
                return Err(Malformed::BadField("tenant").into());
            }
            let t = TenantId(a.tenant);
            Ok(if cmd == UALINK_IOC_TENANT_ADD {
                Cmd::TenantAdd(t)
            } else {
                Cmd::TenantOffboard(t)
            })
        }
        UALINK_IOC_VPOD_CREATE => {
            let a = UalinkVpodCreate::decode(k)?;
            exact(k, UalinkVpodCreate::SIZE)?;
            check_common(a.size, UalinkVpodCreate::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            if a.tenant == 0 {
                return Err(Malformed::BadField("tenant").into());
            }
            let count: u32 = a.members.iter().map(|w| w.count_ones()).sum();
            if count == 0 {
                return Err(Malformed::BadField("members").into());
            }
            let mut members = Vec::new();
            members.try_reserve_exact(usize::try_from(count).map_err(|_| Malformed::Overflow)?)?;
            for (wi, w) in (0u16..).zip(a.members.iter()) {
                for bit in 0u16..64 {
                    if w & (1u64 << bit) != 0 {
                        let id = wi
                            .checked_mul(64)
                            .and_then(|x| x.checked_add(bit))
                            .ok_or(Malformed::Overflow)?;
                        members.push(
                            AcceleratorId::new(id).map_err(|_| Malformed::BadField("members"))?,
                        );
                    }
                }
            }
            Ok(Cmd::VpodCreate {
                tenant: TenantId(a.tenant),
                members,
            })
        }
        UALINK_IOC_WINDOW_CREATE => {
            let a = UalinkWindowCreate::decode(k)?;
            exact(k, UalinkWindowCreate::SIZE)?;
            check_common(a.size, UalinkWindowCreate::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            if a.tenant == 0 {
                return Err(Malformed::BadField("tenant").into());
            }
            if a.len == 0 {
                return Err(Malformed::BadField("len").into());
            }
            a.base.checked_add(a.len).ok_or(Malformed::Overflow)?;
            Ok(Cmd::WindowCreate {
                tenant: TenantId(a.tenant),
                accel: accel(a.accel, "accel")?,
                base: a.base,
                len: a.len,
            })
        }
        UALINK_IOC_TDI_SET => {
            let a = UalinkTdiSet::decode(k)?;
            exact(k, UalinkTdiSet::SIZE)?;
            check_common(a.size, UalinkTdiSet::SIZE, a.flags, UALINK_TDI_F_QUARANTINE)?;
            Ok(Cmd::TdiSet {
                accel: accel(a.accel, "accel")?,
                state: TdiState::from_u32(a.state).map_err(|_| Malformed::BadField("state"))?,
                epoch: a.epoch,
                quarantine: a.flags & UALINK_TDI_F_QUARANTINE != 0,
            })
        }
        UALINK_IOC_KEYSLOT => {
            let a = UalinkKeyslot::decode(k)?;
            exact(k, UalinkKeyslot::SIZE)?;
            check_common(a.size, UalinkKeyslot::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            let dir = match a.dir {
                UALINK_DIR_TX => Direction::Tx,
                UALINK_DIR_RX => Direction::Rx,
                _ => return Err(Malformed::BadField("dir").into()),
            };
            let cmd = match a.cmd {
                UALINK_KEYSLOT_CMD_QUERY => KeySlotCommand::Query,
                UALINK_KEYSLOT_CMD_GO => KeySlotCommand::Go,
                UALINK_KEYSLOT_CMD_STOP => KeySlotCommand::Stop,
                UALINK_KEYSLOT_CMD_ROLL => KeySlotCommand::Roll,
                UALINK_KEYSLOT_CMD_INVALIDATE => KeySlotCommand::Invalidate,
                _ => return Err(Malformed::BadField("cmd").into()),
            };
            let port = u16::try_from(a.port).map_err(|_| Malformed::BadField("port"))?;
            Ok(Cmd::KeySlot {
                slot: KeySlotRef {
                    accel: accel(a.accel, "accel")?,
                    port: PortId(port),
                    dir,
                    peer: accel(a.peer, "peer")?,
                },
                cmd,
            })
        }
        UALINK_IOC_ROTATE_KEY => {
            let a = UalinkRotateKey::decode(k)?;
            let msg = payload(k, UalinkRotateKey::SIZE, a.msg_len, MAX_SIGNED_MSG_LEN)?;
            check_common(a.size, UalinkRotateKey::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            if msg.is_empty() {
                return Err(Malformed::BadField("msg_len").into());
            }
            Ok(Cmd::RotateKey(msg))
        }
        UALINK_IOC_SPDM_SEND => {
            let a = UalinkSpdmSend::decode(k)?;
            let max = usize::try_from(UALINK_SPDM_MAX).map_err(|_| Malformed::Overflow)?;
            let msg = payload(k, UalinkSpdmSend::SIZE, a.len, max)?;
            check_common(a.size, UalinkSpdmSend::SIZE, a.flags, 0)?;
            if msg.is_empty() {
                return Err(Malformed::BadField("len").into());
            }
            Ok(Cmd::SpdmSend {
                accel: accel(a.accel, "accel")?,
                msg,
            })
        }
        UALINK_IOC_SPDM_RECV => {
            let a = UalinkSpdmRecv::decode(k)?;
            let max = usize::try_from(UALINK_SPDM_MAX).map_err(|_| Malformed::Overflow)?;
            let area = payload(k, UalinkSpdmRecv::SIZE, a.cap, max)?;
            check_common(a.size, UalinkSpdmRecv::SIZE, a.flags, 0)?;
            rsvd(a._rsvd0)?;
            if area.is_empty() {
                return Err(Malformed::BadField("cap").into());
            }
            Ok(Cmd::SpdmRecv {
                accel: accel(a.accel, "accel")?,
                cap: area.len(),
            })
        }
        UALINK_IOC_RAS_POLL => {
            let a = UalinkRasPoll::decode(k)?;
            exact(k, UalinkRasPoll::SIZE)?;
            check_common(
                a.size,
                UalinkRasPoll::SIZE,
                a.flags,
                UALINK_RAS_F_AUDIT_ROUTES,
            )?;
            Ok(Cmd::RasPoll {
                max: a.max,
                audit_routes: a.flags & UALINK_RAS_F_AUDIT_ROUTES != 0,
            })
        }
        _ => Err(Malformed::UnknownCommand.into()),
    }
}

fn slot_state(s: SlotState) -> u32 {
    match s {
        SlotState::Empty => UALINK_SLOT_EMPTY,
        SlotState::Programmed => UALINK_SLOT_PROGRAMMED,
        SlotState::Live => UALINK_SLOT_LIVE,
        SlotState::Stale => UALINK_SLOT_STALE,
    }
}

fn fp(m: &SlotMeta) -> [u8; 48] {
    m.fingerprint.map(|f| f.0).unwrap_or([0u8; 48])
}

/// Largest user buffer any command accepts (struct + payload).
const MAX_USER_LEN: usize = 4096 + 256;

impl<F: FabricOps, C: CryptoBackend, A: AuditSink, N: InvalidateSink> Driver<F, C, A, N> {
    /// The ioctl entry. `user` is the user buffer (`_IOC_SIZE` bytes plus any payload the command
    /// declares). It is copied in once; only the copy is parsed. Results are copied back into `user`.
    ///
    /// Return: `Ok(value)` (0, or the byte count for `SPDM_RECV`, or reports handled for `RAS_POLL`);
    /// `ENOTTY` (unknown command), `EFAULT`, `E2BIG`, `EINVAL`, `EOVERFLOW`, `ENOMEM`, `EPERM`, and
    /// the errnos of the driver method the command dispatches to.
    pub fn ioctl(&mut self, file: &FileCtx, cmd: u32, user: &mut [u8]) -> Result<i64, Errno> {
        if !IOCTLS.iter().any(|i| i.cmd == cmd) {
            return Err(Errno::ENOTTY);
        }
        if user.len() > MAX_USER_LEN {
            return Err(Errno::E2BIG);
        }
        // Copy in once.
        let mut k: Vec<u8> = Vec::new();
        k.try_reserve_exact(user.len())?;
        k.extend_from_slice(user);
        let c = validate(cmd, &k)?;
        self.dispatch(file, c, &k, user).map_err(Errno::from)
    }

    fn dispatch(
        &mut self,
        file: &FileCtx,
        c: Cmd<'_>,
        k: &[u8],
        user: &mut [u8],
    ) -> Result<i64, Error> {
        match c {
            Cmd::Export {
                window,
                offset,
                len,
            } => {
                let h = self.export(file, window, offset, len)?;
                let mut a = UalinkExport::decode(k)?;
                a.handle = h.0;
                a.encode(user)?;
                Ok(0)
            }
            Cmd::Attach {
                handle,
                accel,
                rights,
                cookie,
                grant,
            } => {
                let id = self.attach(
                    file,
                    &AttachRequest {
                        handle,
                        importer_accel: accel,
                        rights,
                        invalidate_cookie: cookie,
                        grant,
                    },
                )?;
                let mut a = UalinkAttach::decode(k)?;
                a.attachment = id.0;
                a.encode(user)?;
                Ok(0)
            }
            Cmd::Map(att) => {
                let m = self.map(file, att)?;
                let mut a = UalinkMap::decode(k)?;
                a.mapping = m.0;
                a.encode(user)?;
                Ok(0)
            }
            Cmd::Unmap(att) => self.unmap(file, att).map(|_| 0),
            Cmd::Detach(att) => self.detach(file, att).map(|_| 0),
            Cmd::Revoke(h) => self.revoke(file, h).map(|_| 0),
            Cmd::TenantAdd(t) => self.tenant_add(file, t).map(|_| 0),
            Cmd::TenantOffboard(t) => self.tenant_offboard(file, t).map(|_| 0),
            Cmd::VpodCreate { tenant, members } => {
                self.vpod_create(file, tenant, &members).map(|_| 0)
            }
            Cmd::WindowCreate {
                tenant,
                accel,
                base,
                len,
            } => {
                let w = self.window_create(file, tenant, accel, base, len)?;
                let mut a = UalinkWindowCreate::decode(k)?;
                a.window = w.0;
                a.encode(user)?;
                Ok(0)
            }
            Cmd::TdiSet {
                accel,
                state,
                epoch,
                quarantine,
            } => self
                .tdi_update(file, accel, state, epoch, quarantine)
                .map(|_| 0),
            Cmd::KeySlot { slot, cmd } => {
                let st = self.key_slot(file, slot, cmd)?;
                let mut a = UalinkKeyslot::decode(k)?;
                a.enabled = u32::from(st.enabled);
                a.active_state = slot_state(st.active.state);
                a.active_epoch = st.active.epoch;
                a.alt_state = slot_state(st.alternate.state);
                a.alt_epoch = st.alternate.epoch;
                a.active_fp = fp(&st.active);
                a.alt_fp = fp(&st.alternate);
                a.fp_present = u32::from(st.active.fingerprint.is_some())
                    | (u32::from(st.alternate.fingerprint.is_some()) << 1);
                a.encode(user)?;
                Ok(0)
            }
            Cmd::RotateKey(msg) => self.rotate_key(file, msg).map(|_| 0),
            Cmd::SpdmSend { accel, msg } => self.spdm_send(file, accel, msg).map(|_| 0),
            Cmd::SpdmRecv { accel, cap } => {
                let (head, area) = user
                    .split_at_mut_checked(UalinkSpdmRecv::SIZE)
                    .ok_or(Malformed::Truncated)?;
                let area = area.get_mut(..cap).ok_or(Malformed::Truncated)?;
                let n = self.spdm_receive(file, accel, area)?;
                let mut a = UalinkSpdmRecv::decode(k)?;
                a.len = u32::try_from(n).map_err(|_| Malformed::Overflow)?;
                a.encode(head)?;
                i64::try_from(n).map_err(|_| Malformed::Overflow.into())
            }
            Cmd::RasPoll { max, audit_routes } => {
                let n = self.process_faults(file, max)?;
                if audit_routes {
                    self.audit_routes(file)?;
                }
                let mut a = UalinkRasPoll::decode(k)?;
                a.handled = n;
                a.encode(user)?;
                Ok(i64::from(n))
            }
        }
    }
}
