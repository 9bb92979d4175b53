//! The driver core: object model, dma_buf export/attach/map/revoke, the import gate, revocation
//! triggers and RAS.
//!
//! # Locking
//! Every mutating entry point takes `&mut self`: the embedding holds the driver lock around each call
//! (a kernel `Mutex`), so a buffer's revocation — mark revoked, move_notify, bounded drain, zap, DEAD —
//! is atomic with respect to attach and map, as Linux does it under the reservation lock. The gate
//! check on the map path ([`Driver::gate_check`]) takes `&self`, is O(1) and does not allocate.
//!
//! # Revocation granularity (documented choice)
//! - Buffer-level (the buffer becomes DEAD, a fresh export and grant are needed): explicit revoke,
//!   offboarding of the exporting tenant, reset of the exporting accelerator.
//! - Attachment-level (exactly the attachments the cause affects; the buffer stays live for others):
//!   a TDI leaving RUN or bumping its epoch (attachments whose grant named that TDI), a key slot going
//!   stale or changing (attachments between the two accelerators of the slot), an integrity failure
//!   (attachments between the receiver and the source), port migration (every cross-accelerator
//!   attachment of the migrated accelerator: its routes and keys are re-established from scratch, so
//!   importers must re-attach with a fresh grant after the TSM has re-keyed both ends of the new link),
//!   offboarding of an importing tenant, reset of an importing accelerator.
//! - A link going down revokes nothing (traffic cannot flow); when it comes back up every key slot on
//!   that port is re-read from the device and any change revokes as a key change does.
//!
//! # Port migration (documented choice)
//! When a link moves to a spare port, the driver revokes every cross-accelerator attachment of the
//! migrated accelerator, forgets the key-slot metadata of both the failed and the spare port, moves the
//! link in its topology and re-points the vPod's routes. No traffic flows over the spare port before it
//! is re-keyed: the spare port has no key slots until the TSM programs both ends inside SPDM sessions,
//! [`Driver::key_slot`] enforces RX before TX, and granted imports need live keys on their path at
//! attach and map.

use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditSink, InvalidateSink, RevokeCause, RevokeScope};
use crate::crypto::{CryptoBackend, TsmPublicKey};
use crate::errno::Errno;
use crate::error::{ApiMisuse, Denial, Error, Malformed, Result};
use crate::grant::{self, TsmKeys};
use crate::ids::{
    AcceleratorId, AttachmentId, BufferHandle, FabricTime, GrantId, MappingId, OsInstanceId,
    PortId, Rights, SwitchId, TenantId, WindowId,
};
use crate::ops::{
    AcceleratorInfo, Direction, Discovered, DrainOutcome, FabricOps, FaultReport, KeySlotCommand,
    KeySlotRef, KeySlotStatus, LinkInfo, OpsError, PermTag, RouteEntry, SlotState, SwitchInfo,
    WindowPerm,
};
use crate::slab::{Key, Slab};

/// Driver tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Bound on waiting for in-flight transfers during one revocation (fabric clock ns), shared by all
    /// mappings the revocation zaps.
    pub drain_budget_ns: u64,
    /// Most fault reports handled per [`Driver::process_faults`] call.
    pub max_faults_per_poll: u32,
    /// Most single-use nonces remembered at once (expired ones are pruned).
    pub max_live_nonces: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            drain_budget_ns: 10_000_000,
            max_faults_per_poll: 256,
            max_live_nonces: 1 << 16,
        }
    }
}

/// The role of an open file, fixed by the trusted side at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A tenant's OS instance: export, attach, map, unmap, detach, revoke its own buffers.
    Tenant,
    /// The trusted security manager: tenants, vPods, windows, TDI mirror, key slots, key rotation,
    /// mailbox relay, RAS.
    Tsm,
}

/// The identity of an open file: bound to a tenant and an OS instance by the trusted side at open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileCtx {
    tenant: TenantId,
    os: OsInstanceId,
    role: Role,
}

impl FileCtx {
    /// A tenant's file.
    pub const fn tenant(tenant: TenantId, os: OsInstanceId) -> Self {
        FileCtx {
            tenant,
            os,
            role: Role::Tenant,
        }
    }

    /// The TSM's control file (tenant 0, the provider).
    pub const fn tsm(os: OsInstanceId) -> Self {
        FileCtx {
            tenant: TenantId(0),
            os,
            role: Role::Tsm,
        }
    }

    /// The bound tenant.
    pub const fn tenant_id(&self) -> TenantId {
        self.tenant
    }

    /// The bound OS instance.
    pub const fn os(&self) -> OsInstanceId {
        self.os
    }

    /// The role.
    pub const fn role(&self) -> Role {
        self.role
    }
}

/// TDISP state of a TDI, as mirrored from the TSM. One TDI per accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TdiState {
    /// CONFIG_UNLOCKED (the reset state).
    ConfigUnlocked,
    /// CONFIG_LOCKED.
    ConfigLocked,
    /// RUN: the only state in which the gate allows sharing.
    Run,
    /// ERROR (e.g. a locked TDI's config was changed).
    Error,
}

impl TdiState {
    /// The TDISP state machine (TDISP 1.0 §11.1): LOCK (UNLOCKED → LOCKED), START (LOCKED → RUN), an
    /// error (LOCKED or RUN → ERROR), STOP (any → UNLOCKED), and staying put (an epoch update). Any
    /// other transition is refused, so a confused or malicious TSM cannot mirror a TDI into RUN without
    /// it having been locked first.
    ///
    /// Return: the new state, or `EINVAL` for an illegal transition.
    pub fn transition(self, to: TdiState) -> core::result::Result<TdiState, Errno> {
        use TdiState::*;
        match (self, to) {
            (a, b) if a == b => Ok(b),
            (_, ConfigUnlocked)
            | (ConfigUnlocked, ConfigLocked)
            | (ConfigLocked, Run)
            | (ConfigLocked | Run, Error) => Ok(to),
            _ => Err(Errno::EINVAL),
        }
    }

    /// From the UAPI encoding (0 unlocked, 1 locked, 2 run, 3 error).
    ///
    /// Return: `EINVAL` for any other value.
    pub fn from_u32(v: u32) -> core::result::Result<Self, Errno> {
        match v {
            0 => Ok(TdiState::ConfigUnlocked),
            1 => Ok(TdiState::ConfigLocked),
            2 => Ok(TdiState::Run),
            3 => Ok(TdiState::Error),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// Lifecycle of an exported buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BufferState {
    /// Attachable and mappable.
    Live,
    /// Being revoked (only observable from within the revocation).
    Revoking,
    /// Revoked: no attach, no map; a fresh export and grant are needed.
    Dead,
}

/// A request to attach to a buffer.
#[derive(Clone, Copy, Debug)]
pub struct AttachRequest<'a> {
    /// The buffer.
    pub handle: BufferHandle,
    /// The importing accelerator (must be in the caller's vPod).
    pub importer_accel: AcceleratorId,
    /// Rights wanted (non-empty).
    pub rights: Rights,
    /// The importer's invalidate cookie, passed to [`InvalidateSink::move_notify`]. `None` is a static
    /// importer, which is refused (`EOPNOTSUPP`).
    pub invalidate_cookie: Option<u64>,
    /// The grant (COSE_Sign1 bytes as received); required across a tenant or OS-instance boundary.
    pub grant: Option<&'a [u8]>,
}

/// A read-only view of one live mapping (for tests, debugfs-style introspection and invariants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingView {
    /// The attachment.
    pub attachment: AttachmentId,
    /// The mapping.
    pub mapping: MappingId,
    /// The window-permission tag in hardware.
    pub tag: PermTag,
    /// The buffer.
    pub handle: BufferHandle,
    /// Exporter tenant.
    pub exporter_tenant: TenantId,
    /// Exporter OS instance.
    pub exporter_os: OsInstanceId,
    /// Accelerator holding the memory.
    pub exporter_accel: AcceleratorId,
    /// Importer tenant.
    pub importer_tenant: TenantId,
    /// Importer OS instance.
    pub importer_os: OsInstanceId,
    /// Importer accelerator.
    pub importer_accel: AcceleratorId,
    /// The grant's id and expiry, if the attachment needed one.
    pub grant: Option<(GrantId, FabricTime)>,
    /// Buffer state.
    pub buffer_state: BufferState,
}

struct Accel {
    info: AcceleratorInfo,
    tenant: Option<TenantId>,
    tdi: TdiState,
    epoch: u64,
    quarantined: bool,
}

struct Tenant {
    id: TenantId,
    members: Vec<AcceleratorId>,
    routes: Vec<RouteEntry>,
    windows: Vec<WindowId>,
}

struct Window {
    tenant: TenantId,
    accel: AcceleratorId,
    base: u64,
    len: u64,
    owner_perms: Vec<(AcceleratorId, PermTag)>,
    pins: u32,
}

struct Buffer {
    handle: BufferHandle,
    tenant: TenantId,
    os: OsInstanceId,
    window: WindowId,
    accel: AcceleratorId,
    offset: u64,
    base: u64,
    len: u64,
    state: BufferState,
    pins: u32,
    attachments: Vec<Key>,
}

#[derive(Clone, Copy)]
struct CachedGrant {
    id: GrantId,
    exporter_epoch: u64,
    importer_epoch: u64,
    expiry: FabricTime,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AttState {
    Active,
    Revoked,
}

struct Mapping {
    id: MappingId,
    tag: PermTag,
    routes: Vec<RouteEntry>,
}

struct Attachment {
    buffer: Key,
    exporter_accel: AcceleratorId,
    importer_tenant: TenantId,
    importer_os: OsInstanceId,
    importer_accel: AcceleratorId,
    rights: Rights,
    cookie: u64,
    state: AttState,
    grant: Option<CachedGrant>,
    mapping: Option<Mapping>,
}

struct RouteRef {
    entry: RouteEntry,
    refs: u32,
}

fn route_key(e: &RouteEntry) -> (SwitchId, PortId, AcceleratorId) {
    (e.switch, e.ingress, e.dest)
}

/// Statistics of one revocation.
#[derive(Clone, Copy, Default)]
struct RevokeStats {
    attachments: u32,
    mappings: u32,
    drain_ns: u64,
    drain_timeouts: u32,
    hw_errors: u32,
}

const NONCE_KIND_NONCE: u8 = 0;
const NONCE_KIND_GRANT_ID: u8 = 1;

/// The driver core. `F` is the hardware, `C` the crypto backend, `A` the audit sink, `N` the
/// importers' invalidation sink.
pub struct Driver<F: FabricOps, C: CryptoBackend, A: AuditSink, N: InvalidateSink> {
    fabric: F,
    crypto: C,
    audit: A,
    notify: N,
    config: Config,
    keys: TsmKeys,
    handle_secret: Zeroizing<[u8; 32]>,
    next_handle: u64,
    next_tag: u64,
    next_mapping: u64,
    accels: Vec<Option<Accel>>,
    switches: Vec<SwitchInfo>,
    links: Vec<LinkInfo>,
    tenants: Vec<Tenant>,
    windows: Vec<(WindowId, Window)>,
    next_window: u32,
    buffers: Slab<Buffer>,
    handles: Vec<(BufferHandle, Key)>,
    attachments: Slab<Attachment>,
    key_slots: Vec<(KeySlotRef, KeySlotStatus)>,
    routes: Vec<RouteRef>,
    used: Vec<(u8, [u8; 16], FabricTime)>,
    /// Earliest expiry among active granted attachments (`u64::MAX` when none): lets [`Driver::tick`]
    /// return in O(1) until something is due.
    next_expiry: FabricTime,
}

fn next_counter(c: &mut u64) -> Result<u64> {
    let v = *c;
    *c = c
        .checked_add(1)
        .ok_or(Error::Malformed(Malformed::Overflow))?;
    Ok(v)
}

impl<F: FabricOps, C: CryptoBackend, A: AuditSink, N: InvalidateSink> Driver<F, C, A, N> {
    /// Initialises the driver: enumerates the fabric (refusing duplicate accelerator IDs, which come
    /// from the untrusted Pod Controller), installs the TSM grant-signing key, and keeps
    /// `handle_secret` (from the kernel RNG) to derive unguessable buffer handles.
    ///
    /// Return: `EEXIST` for a duplicate accelerator ID, `ENOMEM`, or the backend's errno.
    pub fn new(
        fabric: F,
        crypto: C,
        audit: A,
        notify: N,
        tsm_key: TsmPublicKey,
        handle_secret: [u8; 32],
        config: Config,
    ) -> core::result::Result<Self, Errno> {
        let kid = tsm_key.key_id(&crypto);
        let mut d = Driver {
            fabric,
            crypto,
            audit,
            notify,
            config,
            keys: TsmKeys {
                current: Some((tsm_key, kid)),
                retired: Vec::new(),
                rotation_seq: 0,
            },
            handle_secret: Zeroizing::new(handle_secret),
            next_handle: 1,
            next_tag: 1,
            next_mapping: 1,
            accels: Vec::new(),
            switches: Vec::new(),
            links: Vec::new(),
            tenants: Vec::new(),
            windows: Vec::new(),
            next_window: 1,
            buffers: Slab::new(),
            handles: Vec::new(),
            attachments: Slab::new(),
            key_slots: Vec::new(),
            routes: Vec::new(),
            used: Vec::new(),
            next_expiry: FabricTime(u64::MAX),
        };
        let n = usize::from(AcceleratorId::MAX).saturating_add(1);
        d.accels.try_reserve_exact(n)?;
        d.accels.resize_with(n, || None);
        let mut dup = false;
        let (accels, switches, links) = (&mut d.accels, &mut d.switches, &mut d.links);
        d.fabric
            .enumerate(&mut |item| {
                match item {
                    Discovered::Accelerator(info) => {
                        let slot = accels
                            .get_mut(usize::from(info.id.get()))
                            .ok_or(OpsError::Invalid)?;
                        if slot.is_some() {
                            dup = true;
                            return Err(OpsError::Invalid);
                        }
                        *slot = Some(Accel {
                            info,
                            tenant: None,
                            tdi: TdiState::ConfigUnlocked,
                            epoch: 0,
                            quarantined: false,
                        });
                    }
                    Discovered::Switch(s) => {
                        switches.try_reserve(1).map_err(|_| OpsError::NoMemory)?;
                        switches.push(s);
                    }
                    Discovered::Link(l) => {
                        links.try_reserve(1).map_err(|_| OpsError::NoMemory)?;
                        links.push(l);
                    }
                }
                Ok(())
            })
            .map_err(|e| if dup { Errno::EEXIST } else { Errno::from(e) })?;
        Ok(d)
    }

    /// The hardware backend.
    pub fn fabric(&self) -> &F {
        &self.fabric
    }

    /// The audit sink.
    pub fn audit_sink(&self) -> &A {
        &self.audit
    }

    /// The invalidation sink.
    pub fn notify_sink(&self) -> &N {
        &self.notify
    }

    fn accel(&self, id: AcceleratorId) -> Option<&Accel> {
        self.accels.get(usize::from(id.get()))?.as_ref()
    }

    fn accel_mut(&mut self, id: AcceleratorId) -> Option<&mut Accel> {
        self.accels.get_mut(usize::from(id.get()))?.as_mut()
    }

    fn tenant_pos(&self, t: TenantId) -> core::result::Result<usize, usize> {
        self.tenants.binary_search_by(|x| x.id.cmp(&t))
    }

    fn tenant(&self, t: TenantId) -> Result<&Tenant> {
        let i = self
            .tenant_pos(t)
            .map_err(|_| ApiMisuse::NotFound("tenant"))?;
        self.tenants
            .get(i)
            .ok_or(Error::ApiMisuse(ApiMisuse::NotFound("tenant")))
    }

    fn find_buffer(&self, h: &BufferHandle) -> Option<Key> {
        let i = self.handles.binary_search_by(|(x, _)| x.cmp(h)).ok()?;
        self.handles.get(i).map(|(_, k)| *k)
    }

    fn require_tsm(file: &FileCtx) -> Result<()> {
        if file.role != Role::Tsm {
            return Err(ApiMisuse::NotPermitted("TSM-only command").into());
        }
        Ok(())
    }

    fn require_tenant(file: &FileCtx) -> Result<()> {
        if file.role != Role::Tenant {
            return Err(ApiMisuse::NotPermitted("tenant-only command").into());
        }
        Ok(())
    }

    fn alloc_tag(&mut self) -> Result<PermTag> {
        Ok(PermTag(next_counter(&mut self.next_tag)?))
    }

    // ---------------------------------------------------------------- routes

    fn route_acquire(&mut self, e: &RouteEntry) -> Result<()> {
        match self
            .routes
            .binary_search_by(|r| route_key(&r.entry).cmp(&route_key(e)))
        {
            Ok(i) => {
                let r = self
                    .routes
                    .get_mut(i)
                    .ok_or(Error::ApiMisuse(ApiMisuse::NotFound("route")))?;
                if r.entry.egress != e.egress {
                    return Err(ApiMisuse::Busy("conflicting route entry").into());
                }
                r.refs = r
                    .refs
                    .checked_add(1)
                    .ok_or(Error::Malformed(Malformed::Overflow))?;
                Ok(())
            }
            Err(i) => {
                self.routes.try_reserve(1)?;
                self.fabric.route_set(e)?;
                self.routes.insert(i, RouteRef { entry: *e, refs: 1 });
                Ok(())
            }
        }
    }

    /// Drops one reference; clears the hardware entry at zero. Never fails on the driver side.
    fn route_release(&mut self, e: &RouteEntry) -> core::result::Result<(), OpsError> {
        let Ok(i) = self
            .routes
            .binary_search_by(|r| route_key(&r.entry).cmp(&route_key(e)))
        else {
            return Ok(());
        };
        let Some(r) = self.routes.get_mut(i) else {
            return Ok(());
        };
        r.refs = r.refs.saturating_sub(1);
        if r.refs == 0 {
            self.routes.remove(i);
            self.fabric.route_clear(e.switch, e.ingress, e.dest)?;
        }
        Ok(())
    }

    /// Acquires all of `entries` or none of them.
    fn routes_acquire_all(&mut self, entries: &[RouteEntry]) -> Result<()> {
        for (n, e) in entries.iter().enumerate() {
            if let Err(err) = self.route_acquire(e) {
                for done in entries.iter().take(n) {
                    let _ = self.route_release(done);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    fn slot_live(&self, slot: &KeySlotRef) -> bool {
        match self.key_slots.binary_search_by(|(s, _)| s.cmp(slot)) {
            Ok(i) => self
                .key_slots
                .get(i)
                .is_some_and(|(_, st)| st.enabled && st.active.state == SlotState::Live),
            Err(_) => false,
        }
    }

    /// Route entries between `a` and `b` over every switch both reach by an up link (first link per
    /// switch), optionally only over paths whose four key slots are live.
    fn paths(&self, a: AcceleratorId, b: AcceleratorId, keyed: bool) -> Result<Vec<RouteEntry>> {
        let mut out: Vec<RouteEntry> = Vec::new();
        let mut seen: Vec<SwitchId> = Vec::new();
        for la in self.links.iter().filter(|l| l.accel == a && l.up) {
            if seen.contains(&la.switch) {
                continue;
            }
            let Some(lb) = self
                .links
                .iter()
                .find(|l| l.accel == b && l.up && l.switch == la.switch)
            else {
                continue;
            };
            if keyed {
                let slots = [
                    KeySlotRef {
                        accel: a,
                        port: la.accel_port,
                        dir: Direction::Tx,
                        peer: b,
                    },
                    KeySlotRef {
                        accel: a,
                        port: la.accel_port,
                        dir: Direction::Rx,
                        peer: b,
                    },
                    KeySlotRef {
                        accel: b,
                        port: lb.accel_port,
                        dir: Direction::Tx,
                        peer: a,
                    },
                    KeySlotRef {
                        accel: b,
                        port: lb.accel_port,
                        dir: Direction::Rx,
                        peer: a,
                    },
                ];
                if !slots.iter().all(|s| self.slot_live(s)) {
                    continue;
                }
            }
            seen.try_reserve(1)?;
            seen.push(la.switch);
            out.try_reserve(2)?;
            out.push(RouteEntry {
                switch: la.switch,
                ingress: la.switch_port,
                dest: b,
                egress: lb.switch_port,
            });
            out.push(RouteEntry {
                switch: la.switch,
                ingress: lb.switch_port,
                dest: a,
                egress: la.switch_port,
            });
        }
        Ok(out)
    }

    // ---------------------------------------------------------------- TSM: tenants, vPods, windows

    /// Registers a tenant (TSM only). Tenant 0 is the provider and cannot be added.
    ///
    /// Return: `EPERM` (not TSM), `EINVAL` (id 0), `EEXIST`, `ENOMEM`.
    pub fn tenant_add(&mut self, file: &FileCtx, tenant: TenantId) -> Result<()> {
        Self::require_tsm(file)?;
        if tenant.0 == 0 {
            return Err(Malformed::BadField("tenant").into());
        }
        match self.tenant_pos(tenant) {
            Ok(_) => Err(ApiMisuse::Exists("tenant").into()),
            Err(i) => {
                self.tenants.try_reserve(1)?;
                self.tenants.insert(
                    i,
                    Tenant {
                        id: tenant,
                        members: Vec::new(),
                        routes: Vec::new(),
                        windows: Vec::new(),
                    },
                );
                Ok(())
            }
        }
    }

    /// Forms the tenant's vPod from whole accelerators and opens switch routing between its members
    /// only (TSM only). Each accelerator belongs to at most one vPod.
    ///
    /// Return: `EPERM`, `ENOENT` (tenant or accelerator), `EEXIST` (tenant already has a vPod),
    /// `EINVAL` (empty or duplicate members), `EBUSY` (accelerator in another vPod), `ENODEV`
    /// (quarantined), `ENOMEM`, or the backend's errno.
    pub fn vpod_create(
        &mut self,
        file: &FileCtx,
        tenant: TenantId,
        members: &[AcceleratorId],
    ) -> Result<()> {
        Self::require_tsm(file)?;
        let t = self.tenant(tenant)?;
        if !t.members.is_empty() {
            return Err(ApiMisuse::Exists("vPod").into());
        }
        if members.is_empty() {
            return Err(Malformed::BadField("members").into());
        }
        for (i, m) in members.iter().enumerate() {
            if members.iter().skip(i.saturating_add(1)).any(|x| x == m) {
                return Err(Malformed::BadField("duplicate vPod member").into());
            }
        }
        for m in members {
            let a = self.accel(*m).ok_or(ApiMisuse::NotFound("accelerator"))?;
            if a.quarantined {
                return Err(ApiMisuse::NoDevice.into());
            }
            if a.tenant.is_some() {
                return Err(ApiMisuse::Busy("accelerator already in a vPod").into());
            }
        }
        let mut routes: Vec<RouteEntry> = Vec::new();
        for (i, a) in members.iter().enumerate() {
            for b in members.iter().skip(i.saturating_add(1)) {
                let p = self.paths(*a, *b, false)?;
                routes.try_reserve(p.len())?;
                routes.extend_from_slice(&p);
            }
        }
        let mut mem: Vec<AcceleratorId> = Vec::new();
        mem.try_reserve(members.len())?;
        mem.extend_from_slice(members);
        self.routes_acquire_all(&routes)?;
        for m in members {
            if let Some(a) = self.accel_mut(*m) {
                a.tenant = Some(tenant);
            }
        }
        let i = self
            .tenant_pos(tenant)
            .map_err(|_| ApiMisuse::NotFound("tenant"))?;
        if let Some(t) = self.tenants.get_mut(i) {
            t.members = mem;
            t.routes = routes;
        }
        Ok(())
    }

    /// Carves a memory window `[base, base+len)` of `accel` (a member of the tenant's vPod) for the
    /// tenant, and lets the vPod's other members access it (TSM only).
    ///
    /// Return: `EPERM` (not TSM, or accelerator not in the tenant's vPod), `ENOENT`, `EINVAL` (empty
    /// or beyond the accelerator's memory), `EOVERFLOW`, `EBUSY` (overlaps another window), `ENODEV`,
    /// `ENOMEM`, or the backend's errno.
    pub fn window_create(
        &mut self,
        file: &FileCtx,
        tenant: TenantId,
        accel: AcceleratorId,
        base: u64,
        len: u64,
    ) -> Result<WindowId> {
        Self::require_tsm(file)?;
        let members = {
            let t = self.tenant(tenant)?;
            let a = self
                .accel(accel)
                .ok_or(ApiMisuse::NotFound("accelerator"))?;
            if a.tenant != Some(tenant) {
                return Err(ApiMisuse::NotPermitted("accelerator not in the tenant's vPod").into());
            }
            if a.quarantined {
                return Err(ApiMisuse::NoDevice.into());
            }
            if len == 0 {
                return Err(Malformed::BadField("len").into());
            }
            let end = base.checked_add(len).ok_or(Malformed::Overflow)?;
            if end > a.info.mem_bytes {
                return Err(Malformed::BadField("window beyond accelerator memory").into());
            }
            for (_, w) in &self.windows {
                let wend = w.base.saturating_add(w.len);
                if w.accel == accel && base < wend && w.base < end {
                    return Err(ApiMisuse::Busy("overlapping window").into());
                }
            }
            let mut m: Vec<AcceleratorId> = Vec::new();
            m.try_reserve(t.members.len())?;
            m.extend(t.members.iter().copied().filter(|m| *m != accel));
            m
        };
        let mut perms: Vec<(AcceleratorId, PermTag)> = Vec::new();
        perms.try_reserve(members.len())?;
        for m in &members {
            let tag = self.alloc_tag()?;
            let perm = WindowPerm {
                target: accel,
                initiator: *m,
                base,
                len,
                rights: Rights::ALL,
                tag,
            };
            if let Err(e) = self.fabric.window_perm_set(&perm) {
                for (_, t) in &perms {
                    let _ = self.fabric.window_perm_clear(accel, *t);
                }
                return Err(e.into());
            }
            perms.push((*m, tag));
        }
        let i = self
            .tenant_pos(tenant)
            .map_err(|_| ApiMisuse::NotFound("tenant"))?;
        let reserved = self.windows.try_reserve(1).is_ok()
            && self
                .tenants
                .get_mut(i)
                .is_some_and(|t| t.windows.try_reserve(1).is_ok());
        let id = self.next_window;
        let next = id.checked_add(1);
        if !reserved || next.is_none() {
            for (_, t) in &perms {
                let _ = self.fabric.window_perm_clear(accel, *t);
            }
            return Err(if reserved {
                Error::Malformed(Malformed::Overflow)
            } else {
                Error::NoMemory
            });
        }
        self.next_window = next.unwrap_or(u32::MAX);
        let id = WindowId(id);
        // Ids only grow, so pushing keeps `windows` sorted.
        self.windows.push((
            id,
            Window {
                tenant,
                accel,
                base,
                len,
                owner_perms: perms,
                pins: 0,
            },
        ));
        if let Some(t) = self.tenants.get_mut(i) {
            t.windows.push(id);
        }
        Ok(id)
    }

    fn window_ref(&self, id: WindowId) -> Option<&Window> {
        let i = self.windows.binary_search_by(|(w, _)| w.cmp(&id)).ok()?;
        self.windows.get(i).map(|(_, w)| w)
    }

    fn window_mut(&mut self, id: WindowId) -> Option<&mut Window> {
        let i = self.windows.binary_search_by(|(w, _)| w.cmp(&id)).ok()?;
        self.windows.get_mut(i).map(|(_, w)| w)
    }

    // ---------------------------------------------------------------- TSM: TDI mirror, keys

    /// Updates the mirror of `accel`'s TDI (TSM only). Leaving RUN or changing the attestation epoch
    /// revokes every attachment whose grant named this TDI. `quarantine` marks the device unusable for
    /// new vPods and windows. The state must follow the TDISP state machine ([`TdiState::transition`]).
    ///
    /// Return: `EPERM`, `ENOENT`, `EINVAL` (illegal transition), `ENOMEM`.
    pub fn tdi_update(
        &mut self,
        file: &FileCtx,
        accel: AcceleratorId,
        state: TdiState,
        epoch: u64,
        quarantine: bool,
    ) -> Result<()> {
        Self::require_tsm(file)?;
        let a = self
            .accel_mut(accel)
            .ok_or(ApiMisuse::NotFound("accelerator"))?;
        let (old_state, old_epoch) = (a.tdi, a.epoch);
        a.tdi = old_state
            .transition(state)
            .map_err(|_| Malformed::BadField("illegal TDISP transition"))?;
        a.epoch = epoch;
        a.quarantined = a.quarantined || quarantine;
        self.audit.record(&AuditEvent::TdiUpdate {
            accel,
            run: state == TdiState::Run,
            epoch,
        });
        let cause = if old_state == TdiState::Run && state != TdiState::Run {
            Some(RevokeCause::TdiLeftRun(accel))
        } else if old_epoch != epoch {
            Some(RevokeCause::EpochBump(accel))
        } else {
            None
        };
        if let Some(cause) = cause {
            let keys = self.attachments.keys_where(|a| {
                a.state == AttState::Active
                    && a.grant.is_some()
                    && (a.exporter_accel == accel || a.importer_accel == accel)
            })?;
            self.revoke_set(&keys, cause);
        }
        Ok(())
    }

    /// Relays a key-slot command to the device and records the returned metadata (TSM only). If a slot
    /// that was live stops being live, or its key (fingerprint or epoch) changes, every attachment
    /// between the two accelerators is revoked. `Go` on a TX slot is refused until the peer's matching
    /// RX slot is enabled (RX before TX, UALink_200 §9.5.10).
    ///
    /// Return: `EPERM`, `ENOENT`, `EBUSY` (TX before the peer's RX), `ENOMEM`, or the backend's errno.
    pub fn key_slot(
        &mut self,
        file: &FileCtx,
        slot: KeySlotRef,
        cmd: KeySlotCommand,
    ) -> Result<KeySlotStatus> {
        Self::require_tsm(file)?;
        if self.accel(slot.accel).is_none() || self.accel(slot.peer).is_none() {
            return Err(ApiMisuse::NotFound("accelerator").into());
        }
        if cmd == KeySlotCommand::Go && slot.dir == Direction::Tx && !self.peer_rx_enabled(&slot) {
            return Err(ApiMisuse::Busy("RX must be enabled at the peer before TX").into());
        }
        self.key_slots.try_reserve(1)?;
        let status = self.fabric.key_slot(slot, cmd)?;
        self.record_slot(slot, status)?;
        Ok(status)
    }

    /// Bring-up order (UALink_200 §9.5.10): a TX slot may go live only once the peer's matching RX
    /// slot — on the peer port that shares a switch with this port — is enabled.
    fn peer_rx_enabled(&self, tx: &KeySlotRef) -> bool {
        let Some(sw) = self
            .links
            .iter()
            .find(|l| l.accel == tx.accel && l.accel_port == tx.port)
            .map(|l| l.switch)
        else {
            return false;
        };
        self.links
            .iter()
            .filter(|l| l.accel == tx.peer && l.switch == sw)
            .any(|l| {
                let rx = KeySlotRef {
                    accel: tx.peer,
                    port: l.accel_port,
                    dir: Direction::Rx,
                    peer: tx.accel,
                };
                match self.key_slots.binary_search_by(|(s, _)| s.cmp(&rx)) {
                    Ok(i) => self.key_slots.get(i).is_some_and(|(_, st)| st.enabled),
                    Err(_) => false,
                }
            })
    }

    fn record_slot(&mut self, slot: KeySlotRef, status: KeySlotStatus) -> Result<()> {
        let changed = match self.key_slots.binary_search_by(|(s, _)| s.cmp(&slot)) {
            Ok(i) => {
                let Some((_, old)) = self.key_slots.get_mut(i) else {
                    return Ok(());
                };
                let was_live = old.enabled && old.active.state == SlotState::Live;
                let still_same = status.enabled
                    && status.active.state == SlotState::Live
                    && status.active.fingerprint == old.active.fingerprint
                    && status.active.epoch == old.active.epoch;
                *old = status;
                was_live && !still_same
            }
            Err(i) => {
                self.key_slots.try_reserve(1)?;
                self.key_slots.insert(i, (slot, status));
                false
            }
        };
        if changed {
            self.revoke_pair(slot.accel, slot.peer, RevokeCause::KeyStale(slot))?;
        }
        Ok(())
    }

    fn mark_slot_stale(&mut self, slot: KeySlotRef) {
        if let Ok(i) = self.key_slots.binary_search_by(|(s, _)| s.cmp(&slot)) {
            if let Some((_, st)) = self.key_slots.get_mut(i) {
                st.active.state = SlotState::Stale;
            }
        }
    }

    /// Revokes every active cross-accelerator attachment between `a` and `b` (either direction).
    fn revoke_pair(
        &mut self,
        a: AcceleratorId,
        b: AcceleratorId,
        cause: RevokeCause,
    ) -> Result<()> {
        let keys = self.attachments.keys_where(|x| {
            x.state == AttState::Active
                && ((x.importer_accel == a && x.exporter_accel == b)
                    || (x.importer_accel == b && x.exporter_accel == a))
        })?;
        self.revoke_set(&keys, cause);
        Ok(())
    }

    /// Rotates the TSM grant-signing key (TSM only). `msg` must be a rotation message signed by the
    /// current key with a sequence number above every earlier one; the old key is retired, so grants it
    /// signed are refused with `EKEYREVOKED` from now on (existing attachments stay: they were verified
    /// when the key was current).
    ///
    /// Return: `EPERM`, `EBADMSG`, `EKEYREJECTED`, `EKEYREVOKED`, `ENOKEY`, `ENOMEM`.
    pub fn rotate_key(&mut self, file: &FileCtx, msg: &[u8]) -> Result<()> {
        Self::require_tsm(file)?;
        let r = match grant::verify_rotation(msg, &self.keys, &self.crypto) {
            Ok(r) => r,
            Err(d) => {
                self.audit
                    .record(&AuditEvent::KeyRotationDenied { reason: d });
                return Err(d.into());
            }
        };
        if r.seq <= self.keys.rotation_seq {
            self.audit.record(&AuditEvent::KeyRotationDenied {
                reason: Denial::Replayed,
            });
            return Err(Denial::Replayed.into());
        }
        self.keys.retired.try_reserve(1)?;
        let new_id = r.new_key.key_id(&self.crypto);
        if let Some((_, old_id)) = self.keys.current.replace((r.new_key, new_id)) {
            self.keys.retired.push(old_id);
        }
        self.keys.rotation_seq = r.seq;
        self.audit.record(&AuditEvent::KeyRotated { seq: r.seq });
        Ok(())
    }

    /// Sends an SPDM message to `accel`'s security engine (TSM only; opaque relay).
    ///
    /// Return: `EPERM`, `ENOENT`, or the backend's errno.
    pub fn spdm_send(&mut self, file: &FileCtx, accel: AcceleratorId, msg: &[u8]) -> Result<()> {
        Self::require_tsm(file)?;
        self.accel(accel)
            .ok_or(ApiMisuse::NotFound("accelerator"))?;
        Ok(self.fabric.spdm_send(accel, msg)?)
    }

    /// Receives an SPDM message from `accel`'s mailbox into `buf` (TSM only).
    ///
    /// Return: the length; `EPERM`, `ENOENT`, `EAGAIN` (empty), `E2BIG` (buffer too small), or the
    /// backend's errno.
    pub fn spdm_receive(
        &mut self,
        file: &FileCtx,
        accel: AcceleratorId,
        buf: &mut [u8],
    ) -> Result<usize> {
        Self::require_tsm(file)?;
        self.accel(accel)
            .ok_or(ApiMisuse::NotFound("accelerator"))?;
        let n = self.fabric.spdm_receive(accel, buf)?;
        if n > buf.len() {
            return Err(OpsError::TooBig.into());
        }
        Ok(n)
    }

    // ---------------------------------------------------------------- tenant: export

    /// Exports `[offset, offset+len)` of one of the caller's windows as a dma_buf and pins it. The
    /// same region exported again by the same OS instance returns the same handle (and adds a pin).
    ///
    /// Return: `EPERM` (not a tenant file), `ENOENT` (no such window of the caller), `EINVAL` (empty or
    /// out of the window), `EOVERFLOW`, `ENOMEM`.
    pub fn export(
        &mut self,
        file: &FileCtx,
        window: WindowId,
        offset: u64,
        len: u64,
    ) -> Result<BufferHandle> {
        Self::require_tenant(file)?;
        let wkey = window;
        let w = self
            .window_ref(wkey)
            .filter(|w| w.tenant == file.tenant)
            .ok_or(ApiMisuse::NotFound("window"))?;
        if len == 0 {
            return Err(Malformed::BadField("len").into());
        }
        let end = offset.checked_add(len).ok_or(Malformed::Overflow)?;
        if end > w.len {
            return Err(Malformed::BadField("region beyond window").into());
        }
        let base = w.base.checked_add(offset).ok_or(Malformed::Overflow)?;
        let accel = w.accel;
        // Same object, same handle.
        let existing = self.buffers.iter().find_map(|(k, b)| {
            (b.window == wkey
                && b.os == file.os
                && b.offset == offset
                && b.len == len
                && b.state == BufferState::Live)
                .then_some(k)
        });
        let handle = if let Some(k) = existing {
            let b = self
                .buffers
                .get_mut(k)
                .ok_or(ApiMisuse::NotFound("buffer"))?;
            b.pins = b.pins.checked_add(1).ok_or(Malformed::Overflow)?;
            let h = b.handle;
            if let Some(w) = self.window_mut(wkey) {
                w.pins = w.pins.saturating_add(1);
            }
            h
        } else {
            let ctr = next_counter(&mut self.next_handle)?;
            let d = self.crypto.sha384(&[
                b"ualink-kdrv buffer handle",
                &self.handle_secret[..],
                &ctr.to_le_bytes(),
            ]);
            let mut h = [0u8; 16];
            for (dst, src) in h.iter_mut().zip(d.iter()) {
                *dst = *src;
            }
            let handle = BufferHandle(h);
            let pos = match self.handles.binary_search_by(|(x, _)| x.cmp(&handle)) {
                Ok(_) => return Err(ApiMisuse::Exists("buffer handle").into()),
                Err(p) => p,
            };
            self.handles.try_reserve(1)?;
            let k = self.buffers.insert(Buffer {
                handle,
                tenant: file.tenant,
                os: file.os,
                window: wkey,
                accel,
                offset,
                base,
                len,
                state: BufferState::Live,
                pins: 1,
                attachments: Vec::new(),
            })?;
            self.handles.insert(pos, (handle, k));
            if let Some(w) = self.window_mut(wkey) {
                w.pins = w.pins.saturating_add(1);
            }
            handle
        };
        self.audit.record(&AuditEvent::Export {
            tenant: file.tenant,
            os: file.os,
            handle,
            len,
        });
        Ok(handle)
    }

    // ---------------------------------------------------------------- tenant: attach (the gate)

    /// Attaches the caller as a dynamic importer of a buffer. Across a tenant or OS-instance boundary
    /// the import gate verifies the grant's signature once, then checks live state: both TDIs in RUN at
    /// the grant's epochs, link keys live on the route, grant within its validity and unused, buffer
    /// not revoked. Every refusal is audited with its reason.
    ///
    /// Return: `EPERM` (not a tenant file), `ENOENT` (no such buffer), `EINVAL` (empty rights), or a
    /// [`Denial`]'s errno: `EOPNOTSUPP`, `EIDRM`, `EXDEV`, `EACCES`, `EBADMSG`, `ENOKEY`, `EKEYREVOKED`,
    /// `EKEYREJECTED`, `EPERM`, `EAGAIN`, `EKEYEXPIRED`, `EALREADY`, `EHOSTDOWN`, `ESTALE`, `ENOLINK`;
    /// `ENOSPC` (nonce table full), `ENOMEM`.
    pub fn attach(&mut self, file: &FileCtx, req: &AttachRequest<'_>) -> Result<AttachmentId> {
        Self::require_tenant(file)?;
        if req.rights.is_empty() {
            return Err(Malformed::BadField("rights").into());
        }
        let bkey = self
            .find_buffer(&req.handle)
            .ok_or(ApiMisuse::NotFound("buffer"))?;
        let now = self.fabric.now();
        let decision = self.gate_attach(file, req, bkey, now);
        let grant = match decision {
            Ok(g) => g,
            Err(Error::Denied(reason)) => {
                self.audit.record(&AuditEvent::AttachDenied {
                    handle: req.handle,
                    tenant: file.tenant,
                    os: file.os,
                    reason,
                    errno: reason.errno(),
                });
                return Err(Error::Denied(reason));
            }
            Err(e) => return Err(e),
        };
        let (exporter_accel, cookie) = {
            let b = self
                .buffers
                .get(bkey)
                .ok_or(ApiMisuse::NotFound("buffer"))?;
            (b.accel, req.invalidate_cookie.unwrap_or(0))
        };
        // Reserve everything before changing state, so failure leaves nothing behind.
        if let Some(b) = self.buffers.get_mut(bkey) {
            b.attachments.try_reserve(1)?;
        }
        if grant.is_some() {
            self.used.try_reserve(2)?;
        }
        let key = self.attachments.insert(Attachment {
            buffer: bkey,
            exporter_accel,
            importer_tenant: file.tenant,
            importer_os: file.os,
            importer_accel: req.importer_accel,
            rights: req.rights,
            cookie,
            state: AttState::Active,
            grant: grant.map(|(g, _)| g),
            mapping: None,
        })?;
        if let Some(b) = self.buffers.get_mut(bkey) {
            b.attachments.push(key);
        }
        if let Some((g, nonce)) = grant {
            self.next_expiry = self.next_expiry.min(g.expiry);
            self.consume(NONCE_KIND_NONCE, nonce, g.expiry);
            self.consume(NONCE_KIND_GRANT_ID, g.id.0, g.expiry);
        }
        let id = AttachmentId(key.to_u64());
        self.audit.record(&AuditEvent::AttachAllowed {
            handle: req.handle,
            attachment: id,
            tenant: file.tenant,
            os: file.os,
            accel: req.importer_accel,
            rights: req.rights,
            grant: grant.map(|(g, _)| g.id),
        });
        Ok(id)
    }

    fn is_used(&self, kind: u8, v: &[u8; 16]) -> bool {
        self.used
            .binary_search_by(|(k, x, _)| (*k, x).cmp(&(kind, v)))
            .is_ok()
    }

    /// Records a used nonce; capacity was reserved by the caller.
    fn consume(&mut self, kind: u8, v: [u8; 16], expiry: FabricTime) {
        if let Err(i) = self
            .used
            .binary_search_by(|(k, x, _)| (*k, x).cmp(&(kind, &v)))
        {
            self.used.insert(i, (kind, v, expiry));
        }
    }

    /// The attach-time gate. Returns the grant to cache (and its nonce), or `None` for an import that
    /// crosses no boundary.
    fn gate_attach(
        &mut self,
        file: &FileCtx,
        req: &AttachRequest<'_>,
        bkey: Key,
        now: FabricTime,
    ) -> Result<Option<(CachedGrant, [u8; 16])>> {
        if req.invalidate_cookie.is_none() {
            return Err(Denial::StaticImporter.into());
        }
        let b = self
            .buffers
            .get(bkey)
            .ok_or(ApiMisuse::NotFound("buffer"))?;
        if b.state != BufferState::Live {
            return Err(Denial::Revoked.into());
        }
        let imp = self
            .accel(req.importer_accel)
            .ok_or(Denial::WrongParty("importer accelerator unknown"))?;
        if imp.tenant != Some(file.tenant) {
            return Err(Denial::WrongParty("importer accelerator not in the caller's vPod").into());
        }
        let crossing = b.tenant != file.tenant || b.os != file.os;
        let Some(grant_bytes) = req.grant else {
            if crossing {
                return Err(Denial::NoGrant.into());
            }
            return Ok(None);
        };
        let (b_tenant, b_accel, b_handle) = (b.tenant, b.accel, b.handle);
        let v = grant::verify_grant(grant_bytes, &self.keys, &self.crypto)?;
        let c = v.claims();
        if c.importer_tenant != file.tenant {
            return Err(Denial::WrongParty("importer tenant").into());
        }
        if c.importer_os != file.os {
            return Err(Denial::WrongParty("importer OS instance").into());
        }
        if c.importer_accel != req.importer_accel {
            return Err(Denial::WrongParty("importer accelerator").into());
        }
        if c.exporter_tenant != b_tenant || c.exporter_accel != b_accel || c.buffer != b_handle {
            return Err(Denial::WrongParty("exporter or buffer").into());
        }
        if !c.rights.contains(req.rights) {
            return Err(Denial::RightsExceeded.into());
        }
        if now < c.not_before {
            return Err(Denial::NotYetValid.into());
        }
        if now >= c.expiry {
            return Err(Denial::Expired.into());
        }
        if self.is_used(NONCE_KIND_NONCE, &c.nonce)
            || self.is_used(NONCE_KIND_GRANT_ID, &c.grant_id.0)
        {
            return Err(Denial::Replayed.into());
        }
        let cached = CachedGrant {
            id: c.grant_id,
            exporter_epoch: c.exporter_epoch,
            importer_epoch: c.importer_epoch,
            expiry: c.expiry,
        };
        self.check_live(&cached, b_accel, req.importer_accel, now)?;
        if b_accel != req.importer_accel
            && self.paths(req.importer_accel, b_accel, true)?.is_empty()
        {
            return Err(Denial::KeysNotLive.into());
        }
        // Prune expired nonces, then make sure there is room for two more.
        self.used.retain(|(_, _, exp)| *exp > now);
        if self.used.len().saturating_add(2) > self.config.max_live_nonces {
            return Err(ApiMisuse::TableFull("nonces").into());
        }
        Ok(Some((cached, c.nonce)))
    }

    /// The live-state part of the gate: O(1), no allocation.
    fn check_live(
        &self,
        g: &CachedGrant,
        exporter: AcceleratorId,
        importer: AcceleratorId,
        now: FabricTime,
    ) -> core::result::Result<(), Denial> {
        if now >= g.expiry {
            return Err(Denial::Expired);
        }
        let (Some(e), Some(i)) = (self.accel(exporter), self.accel(importer)) else {
            return Err(Denial::TdiNotRunning);
        };
        if e.tdi != TdiState::Run || i.tdi != TdiState::Run {
            return Err(Denial::TdiNotRunning);
        }
        if e.epoch != g.exporter_epoch || i.epoch != g.importer_epoch {
            return Err(Denial::StaleEpoch);
        }
        Ok(())
    }

    /// The cached gate check on the map path: attachment active and owned by the caller, buffer live,
    /// and, for a granted import, grant unexpired with both TDIs in RUN at the grant's epochs.
    /// O(1) (slab and accelerator-table lookups), no allocation, no hardware access besides the clock.
    ///
    /// Return: `ENOENT` (no such attachment of the caller), `EIDRM`, `EKEYEXPIRED`, `EHOSTDOWN`,
    /// `ESTALE`.
    pub fn gate_check(&self, file: &FileCtx, att: AttachmentId) -> Result<()> {
        let a = self.attachment_of(file, att)?;
        let now = self.fabric.now();
        Ok(self.gate_check_inner(a, now)?)
    }

    fn gate_check_inner(
        &self,
        a: &Attachment,
        now: FabricTime,
    ) -> core::result::Result<(), Denial> {
        if a.state != AttState::Active {
            return Err(Denial::Revoked);
        }
        match self.buffers.get(a.buffer) {
            Some(b) if b.state == BufferState::Live => {}
            _ => return Err(Denial::Revoked),
        }
        if let Some(g) = &a.grant {
            self.check_live(g, a.exporter_accel, a.importer_accel, now)?;
        }
        Ok(())
    }

    fn attachment_of(&self, file: &FileCtx, att: AttachmentId) -> Result<&Attachment> {
        self.attachments
            .get(Key::from_u64(att.0))
            .filter(|a| a.importer_tenant == file.tenant && a.importer_os == file.os)
            .ok_or(Error::ApiMisuse(ApiMisuse::NotFound("attachment")))
    }

    // ---------------------------------------------------------------- tenant: map, unmap, detach

    /// Maps an attachment: the cached gate check, then the route (switch routing entries, over keyed
    /// paths for a granted import) and the target-side window permission.
    ///
    /// Return: `ENOENT`, `EBUSY` (already mapped), the cached gate check's errnos (each audited),
    /// `ENOLINK` (no keyed path any more), `ENOMEM`, or the backend's errno.
    pub fn map(&mut self, file: &FileCtx, att: AttachmentId) -> Result<MappingId> {
        Self::require_tenant(file)?;
        let key = Key::from_u64(att.0);
        let now = self.fabric.now();
        let a = self.attachment_of(file, att)?;
        if a.mapping.is_some() {
            return Err(ApiMisuse::Busy("already mapped").into());
        }
        if let Err(reason) = self.gate_check_inner(a, now) {
            self.audit.record(&AuditEvent::MapDenied {
                attachment: att,
                reason,
            });
            return Err(reason.into());
        }
        let (exp, imp, rights, granted, bkey) = (
            a.exporter_accel,
            a.importer_accel,
            a.rights,
            a.grant.is_some(),
            a.buffer,
        );
        let (base, len) = {
            let b = self
                .buffers
                .get(bkey)
                .ok_or(ApiMisuse::NotFound("buffer"))?;
            (b.base, b.len)
        };
        // Granted imports open their own keyed route; imports inside a tenant use the vPod's routes.
        let routes = if granted && exp != imp {
            let r = self.paths(imp, exp, true)?;
            if r.is_empty() {
                self.audit.record(&AuditEvent::MapDenied {
                    attachment: att,
                    reason: Denial::KeysNotLive,
                });
                return Err(Denial::KeysNotLive.into());
            }
            r
        } else {
            Vec::new()
        };
        let tag = self.alloc_tag()?;
        let id = MappingId(next_counter(&mut self.next_mapping)?);
        self.routes_acquire_all(&routes)?;
        let perm = WindowPerm {
            target: exp,
            initiator: imp,
            base,
            len,
            rights,
            tag,
        };
        if let Err(e) = self.fabric.window_perm_set(&perm) {
            for r in &routes {
                let _ = self.route_release(r);
            }
            return Err(e.into());
        }
        if let Some(a) = self.attachments.get_mut(key) {
            a.mapping = Some(Mapping { id, tag, routes });
        }
        self.audit.record(&AuditEvent::Map {
            attachment: att,
            mapping: id,
        });
        Ok(id)
    }

    /// Unmaps: stop admitting transfers, drain with the bound, clear the permission and release routes.
    ///
    /// Return: `ENOENT` (no such attachment or not mapped).
    pub fn unmap(&mut self, file: &FileCtx, att: AttachmentId) -> Result<()> {
        Self::require_tenant(file)?;
        let key = Key::from_u64(att.0);
        self.attachment_of(file, att)?;
        let m = self
            .attachments
            .get_mut(key)
            .and_then(|a| a.mapping.take())
            .ok_or(ApiMisuse::NotFound("mapping"))?;
        let target = self
            .attachments
            .get(key)
            .map(|a| a.exporter_accel)
            .ok_or(ApiMisuse::NotFound("attachment"))?;
        let mut stats = RevokeStats::default();
        self.zap(target, m, self.config.drain_budget_ns, &mut stats);
        self.audit.record(&AuditEvent::Unmap { attachment: att });
        Ok(())
    }

    /// Detaches (unmapping first if needed). A revoked attachment can always be detached.
    ///
    /// Return: `ENOENT`.
    pub fn detach(&mut self, file: &FileCtx, att: AttachmentId) -> Result<()> {
        Self::require_tenant(file)?;
        let key = Key::from_u64(att.0);
        let mapped = self.attachment_of(file, att)?.mapping.is_some();
        if mapped {
            self.unmap(file, att)?;
        }
        self.remove_attachment(key);
        self.audit.record(&AuditEvent::Detach { attachment: att });
        Ok(())
    }

    fn remove_attachment(&mut self, key: Key) {
        if let Some(a) = self.attachments.remove(key) {
            if let Some(b) = self.buffers.get_mut(a.buffer) {
                b.attachments.retain(|k| *k != key);
            }
        }
    }

    // ---------------------------------------------------------------- revocation

    /// Revokes a buffer (its exporter, or the TSM): under the driver lock mark it revoked (no new
    /// attach or map), move_notify every importer, drain in-flight transfers within the bound, zap
    /// every mapping, then DEAD. The window pin is released.
    ///
    /// Return: `ENOENT` (no such buffer visible to the caller), `EIDRM` (already DEAD).
    pub fn revoke(&mut self, file: &FileCtx, handle: BufferHandle) -> Result<()> {
        let k = self
            .find_buffer(&handle)
            .ok_or(ApiMisuse::NotFound("buffer"))?;
        let b = self.buffers.get(k).ok_or(ApiMisuse::NotFound("buffer"))?;
        if file.role != Role::Tsm && (b.tenant != file.tenant || b.os != file.os) {
            return Err(ApiMisuse::NotFound("buffer").into());
        }
        if b.state == BufferState::Dead {
            return Err(Denial::Revoked.into());
        }
        self.revoke_buffer(k, RevokeCause::Explicit)
    }

    fn revoke_buffer(&mut self, k: Key, cause: RevokeCause) -> Result<()> {
        let Some(b) = self.buffers.get_mut(k) else {
            return Ok(());
        };
        if b.state == BufferState::Dead {
            return Ok(());
        }
        b.state = BufferState::Revoking;
        let handle = b.handle;
        let atts = core::mem::take(&mut b.attachments);
        let stats = self.revoke_keys(&atts);
        let mut pins = 0;
        let mut wkey = None;
        if let Some(b) = self.buffers.get_mut(k) {
            b.attachments = atts;
            b.state = BufferState::Dead;
            pins = core::mem::take(&mut b.pins);
            wkey = Some(b.window);
        }
        if let Some(w) = wkey.and_then(|wk| self.window_mut(wk)) {
            w.pins = w.pins.saturating_sub(pins);
        }
        self.audit.record(&AuditEvent::Revoke {
            scope: RevokeScope::Buffer(handle),
            cause,
            attachments: stats.attachments,
            mappings: stats.mappings,
            drain_ns: stats.drain_ns,
            drain_timeouts: stats.drain_timeouts,
            hw_errors: stats.hw_errors,
        });
        Ok(())
    }

    /// Attachment-level revocation of `keys` with one audit event (none if `keys` is empty).
    fn revoke_set(&mut self, keys: &[Key], cause: RevokeCause) {
        if keys.is_empty() {
            return;
        }
        let stats = self.revoke_keys(keys);
        self.audit.record(&AuditEvent::Revoke {
            scope: RevokeScope::Attachments,
            cause,
            attachments: stats.attachments,
            mappings: stats.mappings,
            drain_ns: stats.drain_ns,
            drain_timeouts: stats.drain_timeouts,
            hw_errors: stats.hw_errors,
        });
    }

    /// Marks, notifies, drains (one shared bound) and zaps. Never fails: hardware errors are counted
    /// and the driver state fails closed (the attachments are revoked regardless).
    fn revoke_keys(&mut self, keys: &[Key]) -> RevokeStats {
        let mut stats = RevokeStats::default();
        // Phase 1: mark revoked, move_notify every mapped importer.
        for k in keys {
            let Some(a) = self.attachments.get_mut(*k) else {
                continue;
            };
            if a.state == AttState::Revoked {
                continue;
            }
            a.state = AttState::Revoked;
            stats.attachments = stats.attachments.saturating_add(1);
            if a.mapping.is_some() {
                self.notify.move_notify(a.cookie, AttachmentId(k.to_u64()));
            }
        }
        // Phase 2 + 3: drain within one shared bound, then zap.
        let start = self.fabric.now();
        let deadline = start.saturating_add_ns(self.config.drain_budget_ns);
        for k in keys {
            let Some(a) = self.attachments.get_mut(*k) else {
                continue;
            };
            let target = a.exporter_accel;
            let Some(m) = a.mapping.take() else {
                continue;
            };
            stats.mappings = stats.mappings.saturating_add(1);
            let remaining = deadline.saturating_since(self.fabric.now());
            self.zap(target, m, remaining, &mut stats);
        }
        stats.drain_ns = self.fabric.now().saturating_since(start);
        stats
    }

    /// Drain (bounded), clear the window permission, release routes.
    fn zap(&mut self, target: AcceleratorId, m: Mapping, budget_ns: u64, stats: &mut RevokeStats) {
        match self.fabric.drain(target, m.tag, budget_ns) {
            Ok(DrainOutcome::Drained { .. }) => {}
            Ok(DrainOutcome::TimedOut { .. }) => {
                stats.drain_timeouts = stats.drain_timeouts.saturating_add(1);
            }
            Err(_) => stats.hw_errors = stats.hw_errors.saturating_add(1),
        }
        if self.fabric.window_perm_clear(target, m.tag).is_err() {
            stats.hw_errors = stats.hw_errors.saturating_add(1);
        }
        for r in &m.routes {
            if self.route_release(r).is_err() {
                stats.hw_errors = stats.hw_errors.saturating_add(1);
            }
        }
    }

    /// Offboards a tenant (TSM only): its buffers are revoked (DEAD), its own attachments revoked and
    /// removed, its windows' permissions and its vPod's routes cleared, its accelerators freed, and
    /// every link key to or from its accelerators zeroized at both ends.
    ///
    /// Return: `EPERM`, `ENOENT`, `ENOMEM`, `EIO` (a key slot could not be invalidated; the offboarding
    /// itself is complete).
    pub fn tenant_offboard(&mut self, file: &FileCtx, tenant: TenantId) -> Result<()> {
        Self::require_tsm(file)?;
        let pos = self
            .tenant_pos(tenant)
            .map_err(|_| ApiMisuse::NotFound("tenant"))?;
        let cause = RevokeCause::Offboarding(tenant);
        let bufs = self
            .buffers
            .keys_where(|b| b.tenant == tenant && b.state != BufferState::Dead)?;
        let atts = self
            .attachments
            .keys_where(|a| a.importer_tenant == tenant)?;
        for k in &bufs {
            self.revoke_buffer(*k, cause)?;
        }
        self.revoke_set(&atts, cause);
        for k in &atts {
            self.remove_attachment(*k);
        }
        if pos >= self.tenants.len() {
            return Err(ApiMisuse::NotFound("tenant").into());
        }
        let t = self.tenants.remove(pos);
        for wk in &t.windows {
            if let Ok(i) = self.windows.binary_search_by(|(w, _)| w.cmp(wk)) {
                let (_, w) = self.windows.remove(i);
                for (_, tag) in &w.owner_perms {
                    let _ = self.fabric.window_perm_clear(w.accel, *tag);
                }
            }
        }
        for r in &t.routes {
            let _ = self.route_release(r);
        }
        for m in &t.members {
            if let Some(a) = self.accel_mut(*m) {
                a.tenant = None;
            }
        }
        // Zeroize every link key to or from the tenant's accelerators, at both ends.
        let mut hw_errors = 0u32;
        for (slot, _) in self
            .key_slots
            .iter()
            .filter(|(s, _)| t.members.contains(&s.accel) || t.members.contains(&s.peer))
        {
            if self
                .fabric
                .key_slot(*slot, KeySlotCommand::Invalidate)
                .is_err()
            {
                hw_errors = hw_errors.saturating_add(1);
            }
        }
        self.key_slots
            .retain(|(s, _)| !(t.members.contains(&s.accel) || t.members.contains(&s.peer)));
        if hw_errors != 0 {
            return Err(OpsError::Io.into());
        }
        Ok(())
    }

    /// The driver's timer: revokes every attachment whose grant has expired on the fabric clock. The
    /// embedding calls it periodically (and `RAS_POLL` calls it), so access outlives a grant by at most
    /// one timer period; the map path refuses expired grants on its own regardless. O(1) until the
    /// earliest expiry is due. Returns how many attachments were revoked.
    ///
    /// Return: `ENOMEM`.
    pub fn tick(&mut self) -> Result<u32> {
        let now = self.fabric.now();
        if now < self.next_expiry {
            return Ok(0);
        }
        let keys = self.attachments.keys_where(|a| {
            a.state == AttState::Active && a.grant.is_some_and(|g| g.expiry <= now)
        })?;
        self.revoke_set(&keys, RevokeCause::GrantExpired);
        let mut next = FabricTime(u64::MAX);
        for (_, a) in self.attachments.iter() {
            if let (AttState::Active, Some(g)) = (a.state, a.grant) {
                next = next.min(g.expiry);
            }
        }
        self.next_expiry = next;
        Ok(u32::try_from(keys.len()).unwrap_or(u32::MAX))
    }

    // ---------------------------------------------------------------- RAS

    /// Handles up to `max` pending hardware fault reports (bounded by the config); returns how many
    /// were handled. Each is audited. Then runs the expiry timer ([`Driver::tick`]).
    ///
    /// Return: `EPERM`, `ENOMEM`.
    pub fn process_faults(&mut self, file: &FileCtx, max: u32) -> Result<u32> {
        Self::require_tsm(file)?;
        let max = max.min(self.config.max_faults_per_poll);
        let mut n = 0u32;
        while n < max {
            let Some(f) = self.fabric.next_fault() else {
                break;
            };
            n = n.saturating_add(1);
            self.audit.record(&AuditEvent::Fault(f));
            self.handle_fault(f)?;
        }
        // Last, so that time spent draining for the faults above counts toward grant expiry.
        self.tick()?;
        Ok(n)
    }

    fn handle_fault(&mut self, f: FaultReport) -> Result<()> {
        match f {
            FaultReport::IntegrityFailure {
                at, port, source, ..
            } => {
                // The hardware already dropped the transaction and stopped the streams; make sure.
                let _ = self.fabric.stop_streams(at, port, source);
                self.mark_slot_stale(KeySlotRef {
                    accel: at,
                    port,
                    dir: Direction::Rx,
                    peer: source,
                });
                self.revoke_pair(at, source, RevokeCause::IntegrityFailure { at, source })?;
            }
            FaultReport::StaleKey { slot } | FaultReport::KeyRollTimeout { slot } => {
                self.mark_slot_stale(slot);
                self.revoke_pair(slot.accel, slot.peer, RevokeCause::KeyStale(slot))?;
            }
            FaultReport::LinkDown { accel, port } => {
                for l in self
                    .links
                    .iter_mut()
                    .filter(|l| l.accel == accel && l.accel_port == port)
                {
                    l.up = false;
                }
            }
            FaultReport::LinkUp { accel, port } => {
                for l in self
                    .links
                    .iter_mut()
                    .filter(|l| l.accel == accel && l.accel_port == port)
                {
                    l.up = true;
                }
                // Re-read every key slot on the port; any change revokes.
                let mut slots: Vec<KeySlotRef> = Vec::new();
                for (s, _) in self
                    .key_slots
                    .iter()
                    .filter(|(s, _)| s.accel == accel && s.port == port)
                {
                    slots.try_reserve(1)?;
                    slots.push(*s);
                }
                for s in slots {
                    match self.fabric.key_slot(s, KeySlotCommand::Query) {
                        Ok(st) => self.record_slot(s, st)?,
                        Err(_) => {
                            self.mark_slot_stale(s);
                            self.revoke_pair(s.accel, s.peer, RevokeCause::KeyStale(s))?;
                        }
                    }
                }
            }
            FaultReport::PortMigrated {
                accel,
                from,
                to,
                switch,
                switch_port,
            } => {
                // Revoke first (zaps use the recorded routes), then forget the old port's keys, move
                // the link, and re-point the vPod's routes.
                let atts = self.attachments.keys_where(|a| {
                    a.state == AttState::Active
                        && a.exporter_accel != a.importer_accel
                        && (a.exporter_accel == accel || a.importer_accel == accel)
                })?;
                self.revoke_set(&atts, RevokeCause::PortMigration(accel));
                self.key_slots
                    .retain(|(s, _)| !(s.accel == accel && (s.port == from || s.port == to)));
                for l in self
                    .links
                    .iter_mut()
                    .filter(|l| l.accel == accel && l.accel_port == from)
                {
                    l.accel_port = to;
                    l.switch = switch;
                    l.switch_port = switch_port;
                    l.up = true;
                }
                if let Some(t) = self.accel(accel).and_then(|a| a.tenant) {
                    self.rebuild_vpod_routes(t)?;
                }
            }
            FaultReport::DeviceReset { accel } => {
                if let Some(a) = self.accel_mut(accel) {
                    a.tdi = TdiState::ConfigUnlocked;
                }
                let cause = RevokeCause::DeviceReset(accel);
                let bufs = self
                    .buffers
                    .keys_where(|b| b.accel == accel && b.state != BufferState::Dead)?;
                for k in &bufs {
                    self.revoke_buffer(*k, cause)?;
                }
                let atts = self.attachments.keys_where(|a| {
                    a.state == AttState::Active
                        && (a.importer_accel == accel || a.exporter_accel == accel)
                })?;
                self.revoke_set(&atts, cause);
                self.key_slots
                    .retain(|(s, _)| s.accel != accel && s.peer != accel);
            }
        }
        Ok(())
    }

    fn rebuild_vpod_routes(&mut self, tenant: TenantId) -> Result<()> {
        let pos = self
            .tenant_pos(tenant)
            .map_err(|_| ApiMisuse::NotFound("tenant"))?;
        let (old, members) = match self.tenants.get_mut(pos) {
            Some(t) => (
                core::mem::take(&mut t.routes),
                core::mem::take(&mut t.members),
            ),
            None => return Ok(()),
        };
        for r in &old {
            let _ = self.route_release(r);
        }
        let mut routes: Vec<RouteEntry> = Vec::new();
        for (i, a) in members.iter().enumerate() {
            for b in members.iter().skip(i.saturating_add(1)) {
                let p = self.paths(*a, *b, false)?;
                routes.try_reserve(p.len())?;
                routes.extend_from_slice(&p);
            }
        }
        let res = self.routes_acquire_all(&routes);
        if let Some(t) = self.tenants.get_mut(pos) {
            t.members = members;
            if res.is_ok() {
                t.routes = routes;
            }
        }
        res
    }

    /// Reads back every routing entry for every (switch, port, known accelerator) and restores any
    /// that differs from the driver's shadow table (an entry written behind the driver's back is
    /// cleared; a missing one is rewritten). Returns the number of entries corrected, each audited.
    ///
    /// Return: `EPERM`, or the backend's errno.
    pub fn audit_routes(&mut self, file: &FileCtx) -> Result<u32> {
        Self::require_tsm(file)?;
        let mut fixed = 0u32;
        for s in &self.switches {
            for p in 0..s.ports {
                for a in self.accels.iter().flatten() {
                    let port = PortId(p);
                    let dest = a.info.id;
                    let hw = self.fabric.route_get(s.id, port, dest)?;
                    let shadow = self
                        .routes
                        .binary_search_by(|r| route_key(&r.entry).cmp(&(s.id, port, dest)))
                        .ok()
                        .and_then(|i| self.routes.get(i))
                        .map(|r| r.entry);
                    if hw == shadow.map(|e| e.egress) {
                        continue;
                    }
                    match shadow {
                        Some(e) => self.fabric.route_set(&e)?,
                        None => self.fabric.route_clear(s.id, port, dest)?,
                    }
                    fixed = fixed.saturating_add(1);
                    self.audit.record(&AuditEvent::RouteTampered { dest });
                }
            }
        }
        Ok(fixed)
    }

    // ---------------------------------------------------------------- introspection

    /// Every live mapping, for invariant checks and introspection.
    pub fn mappings(&self) -> impl Iterator<Item = MappingView> + '_ {
        self.attachments.iter().filter_map(|(k, a)| {
            let m = a.mapping.as_ref()?;
            let b = self.buffers.get(a.buffer)?;
            Some(MappingView {
                attachment: AttachmentId(k.to_u64()),
                mapping: m.id,
                tag: m.tag,
                handle: b.handle,
                exporter_tenant: b.tenant,
                exporter_os: b.os,
                exporter_accel: a.exporter_accel,
                importer_tenant: a.importer_tenant,
                importer_os: a.importer_os,
                importer_accel: a.importer_accel,
                grant: a.grant.map(|g| (g.id, g.expiry)),
                buffer_state: b.state,
            })
        })
    }

    /// The mirrored TDI state and epoch of `accel`.
    pub fn tdi(&self, accel: AcceleratorId) -> Option<(TdiState, u64)> {
        self.accel(accel).map(|a| (a.tdi, a.epoch))
    }

    /// The tenant whose vPod holds `accel`.
    pub fn accel_tenant(&self, accel: AcceleratorId) -> Option<TenantId> {
        self.accel(accel).and_then(|a| a.tenant)
    }

    /// The state of a buffer.
    pub fn buffer_state(&self, handle: &BufferHandle) -> Option<BufferState> {
        self.find_buffer(handle)
            .and_then(|k| self.buffers.get(k))
            .map(|b| b.state)
    }

    /// The driver's key-slot metadata for `slot` (never key bytes).
    pub fn key_slot_meta(&self, slot: &KeySlotRef) -> Option<KeySlotStatus> {
        let i = self.key_slots.binary_search_by(|(s, _)| s.cmp(slot)).ok()?;
        self.key_slots.get(i).map(|(_, st)| *st)
    }

    /// Whether the window `id` exists and which tenant and accelerator it belongs to.
    pub fn window(&self, id: WindowId) -> Option<(TenantId, AcceleratorId, u64, u64)> {
        self.window_ref(id)
            .map(|w| (w.tenant, w.accel, w.base, w.len))
    }

    /// Window-permission tags the driver installed for windows' owners: (target, initiator, tag).
    pub fn owner_perms(
        &self,
    ) -> impl Iterator<Item = (AcceleratorId, AcceleratorId, PermTag)> + '_ {
        self.windows
            .iter()
            .flat_map(|(_, w)| w.owner_perms.iter().map(move |(i, t)| (w.accel, *i, *t)))
    }

    /// Number of attachments (any state).
    pub fn attachment_count(&self) -> usize {
        self.attachments.len()
    }
}
