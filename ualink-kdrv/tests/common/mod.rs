//! Test plumbing shared by the integration tests and benches: an in-crate fake `FabricOps` (a small
//! pod: accelerators, switches, routing tables, window permissions, key slots, a fault queue), recording
//! sinks, and a TSM signer that makes real ES384 COSE_Sign1 grants with ring.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    unreachable_pub
)]
#![allow(missing_docs)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use coset::{iana, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};

use ualink_kdrv::audit::{AuditEvent, AuditSink, InvalidateSink};
use ualink_kdrv::crypto::{CryptoBackend, RingCrypto, TsmPublicKey};
use ualink_kdrv::ids::*;
use ualink_kdrv::ops::*;
use ualink_kdrv::{AttachRequest, Config, Driver, Errno, FileCtx, TdiState};

// ------------------------------------------------------------------ fake fabric

/// A pod where accelerator `a`'s port `p` is linked to switch `p`'s port `a` (every accelerator
/// reaches every switch once).
pub struct FakeFabric {
    pub accels: Vec<AcceleratorInfo>,
    pub switches: u16,
    pub links: RefCell<Vec<LinkInfo>>,
    pub clock: Cell<u64>,
    pub routes: RefCell<BTreeMap<(SwitchId, PortId, AcceleratorId), PortId>>,
    pub perms: RefCell<BTreeMap<(AcceleratorId, PermTag), WindowPerm>>,
    pub slots: RefCell<BTreeMap<KeySlotRef, KeySlotStatus>>,
    pub faults: RefCell<VecDeque<FaultReport>>,
    pub stopped: RefCell<Vec<(AcceleratorId, PortId, AcceleratorId)>>,
    pub drains: RefCell<Vec<(AcceleratorId, PermTag, u64)>>,
    /// Tags whose drain times out (in-flight transfers that never complete).
    pub stuck: RefCell<BTreeSet<PermTag>>,
    /// Nanoseconds each drain takes.
    pub drain_cost_ns: Cell<u64>,
    pub mailbox: RefCell<BTreeMap<AcceleratorId, VecDeque<Vec<u8>>>>,
}

impl FakeFabric {
    pub fn new(n_accels: u16, n_switches: u16) -> Self {
        let accels: Vec<_> = (0..n_accels)
            .map(|i| AcceleratorInfo {
                id: AcceleratorId::new(i).unwrap(),
                ports: n_switches,
                mem_bytes: 1 << 30,
                vendor_id: 0x1ee7,
                device_id: 1,
            })
            .collect();
        let mut links = Vec::new();
        for a in &accels {
            for s in 0..n_switches {
                links.push(LinkInfo {
                    accel: a.id,
                    accel_port: PortId(s),
                    switch: SwitchId(s),
                    switch_port: PortId(a.id.get()),
                    up: true,
                });
            }
        }
        FakeFabric {
            accels,
            switches: n_switches,
            links: RefCell::new(links),
            clock: Cell::new(1_000_000),
            routes: RefCell::new(BTreeMap::new()),
            perms: RefCell::new(BTreeMap::new()),
            slots: RefCell::new(BTreeMap::new()),
            faults: RefCell::new(VecDeque::new()),
            stopped: RefCell::new(Vec::new()),
            drains: RefCell::new(Vec::new()),
            stuck: RefCell::new(BTreeSet::new()),
            drain_cost_ns: Cell::new(1_000),
            mailbox: RefCell::new(BTreeMap::new()),
        }
    }

    pub fn advance(&self, ns: u64) {
        self.clock.set(self.clock.get() + ns);
    }

    /// Programs live keys in both directions between `a` and `b` on every port (as the TSM would
    /// through SPDM), with a fingerprint derived from `epoch`.
    pub fn program_pair(&self, a: AcceleratorId, b: AcceleratorId, epoch: u32) {
        let mut slots = self.slots.borrow_mut();
        for (x, y) in [(a, b), (b, a)] {
            for p in 0..self.switches {
                for dir in [Direction::Tx, Direction::Rx] {
                    let mut fp = [0u8; 48];
                    fp[0] = x.get() as u8;
                    fp[1] = y.get() as u8;
                    fp[2] = epoch as u8;
                    slots.insert(
                        KeySlotRef {
                            accel: x,
                            port: PortId(p),
                            dir,
                            peer: y,
                        },
                        KeySlotStatus {
                            active: SlotMeta {
                                state: SlotState::Live,
                                epoch,
                                fingerprint: Some(KeyFingerprint(fp)),
                            },
                            alternate: SlotMeta::EMPTY,
                            enabled: true,
                        },
                    );
                }
            }
        }
    }

    /// Every window permission whose initiator and target are in different tenants (per `tenant_of`).
    pub fn perms_list(&self) -> Vec<WindowPerm> {
        self.perms.borrow().values().copied().collect()
    }
}

impl FabricOps for FakeFabric {
    fn enumerate(
        &self,
        visit: &mut dyn FnMut(Discovered) -> Result<(), OpsError>,
    ) -> Result<(), OpsError> {
        for a in &self.accels {
            visit(Discovered::Accelerator(*a))?;
        }
        for s in 0..self.switches {
            visit(Discovered::Switch(SwitchInfo {
                id: SwitchId(s),
                ports: self.accels.len() as u16 + 2,
            }))?;
        }
        for l in self.links.borrow().iter() {
            visit(Discovered::Link(*l))?;
        }
        Ok(())
    }

    fn now(&self) -> FabricTime {
        FabricTime(self.clock.get())
    }

    fn spdm_send(&self, accel: AcceleratorId, msg: &[u8]) -> Result<(), OpsError> {
        // Echo responder: the "device" answers with the request reversed.
        let mut r = msg.to_vec();
        r.reverse();
        self.mailbox
            .borrow_mut()
            .entry(accel)
            .or_default()
            .push_back(r);
        Ok(())
    }

    fn spdm_receive(&self, accel: AcceleratorId, buf: &mut [u8]) -> Result<usize, OpsError> {
        let mut mb = self.mailbox.borrow_mut();
        let q = mb.entry(accel).or_default();
        let Some(m) = q.front() else {
            return Err(OpsError::WouldBlock);
        };
        if m.len() > buf.len() {
            return Err(OpsError::TooBig);
        }
        let m = q.pop_front().unwrap();
        buf[..m.len()].copy_from_slice(&m);
        Ok(m.len())
    }

    fn route_set(&self, e: &RouteEntry) -> Result<(), OpsError> {
        self.routes
            .borrow_mut()
            .insert((e.switch, e.ingress, e.dest), e.egress);
        Ok(())
    }

    fn route_clear(&self, s: SwitchId, i: PortId, d: AcceleratorId) -> Result<(), OpsError> {
        self.routes.borrow_mut().remove(&(s, i, d));
        Ok(())
    }

    fn route_get(
        &self,
        s: SwitchId,
        i: PortId,
        d: AcceleratorId,
    ) -> Result<Option<PortId>, OpsError> {
        Ok(self.routes.borrow().get(&(s, i, d)).copied())
    }

    fn window_perm_set(&self, p: &WindowPerm) -> Result<(), OpsError> {
        self.perms.borrow_mut().insert((p.target, p.tag), *p);
        Ok(())
    }

    fn window_perm_clear(&self, t: AcceleratorId, tag: PermTag) -> Result<(), OpsError> {
        self.perms.borrow_mut().remove(&(t, tag));
        Ok(())
    }

    fn drain(
        &self,
        t: AcceleratorId,
        tag: PermTag,
        budget_ns: u64,
    ) -> Result<DrainOutcome, OpsError> {
        self.drains.borrow_mut().push((t, tag, budget_ns));
        if self.stuck.borrow().contains(&tag) {
            self.advance(budget_ns);
            return Ok(DrainOutcome::TimedOut { outstanding: 1 });
        }
        let cost = self.drain_cost_ns.get().min(budget_ns);
        self.advance(cost);
        Ok(DrainOutcome::Drained { elapsed_ns: cost })
    }

    fn key_slot(&self, slot: KeySlotRef, cmd: KeySlotCommand) -> Result<KeySlotStatus, OpsError> {
        let mut slots = self.slots.borrow_mut();
        let st = slots.entry(slot).or_insert(KeySlotStatus {
            active: SlotMeta::EMPTY,
            alternate: SlotMeta::EMPTY,
            enabled: false,
        });
        match cmd {
            KeySlotCommand::Query => {}
            KeySlotCommand::Go => st.enabled = true,
            KeySlotCommand::Stop => st.enabled = false,
            KeySlotCommand::Roll => {
                if st.alternate.state == SlotState::Empty {
                    return Err(OpsError::Invalid);
                }
                st.active = st.alternate;
                st.active.state = SlotState::Live;
                st.alternate = SlotMeta::EMPTY;
            }
            KeySlotCommand::Invalidate => {
                st.active = SlotMeta::EMPTY;
                st.alternate = SlotMeta::EMPTY;
                st.enabled = false;
            }
        }
        Ok(*st)
    }

    fn stop_streams(
        &self,
        at: AcceleratorId,
        port: PortId,
        src: AcceleratorId,
    ) -> Result<(), OpsError> {
        self.stopped.borrow_mut().push((at, port, src));
        Ok(())
    }

    fn next_fault(&self) -> Option<FaultReport> {
        self.faults.borrow_mut().pop_front()
    }
}

// ------------------------------------------------------------------ sinks

#[derive(Default)]
pub struct AuditLog(pub RefCell<Vec<AuditEvent>>);

impl AuditSink for AuditLog {
    fn record(&self, e: &AuditEvent) {
        self.0.borrow_mut().push(*e);
    }
}

#[derive(Default)]
pub struct Notes(pub RefCell<Vec<(u64, AttachmentId)>>);

impl InvalidateSink for Notes {
    fn move_notify(&self, cookie: u64, att: AttachmentId) {
        self.0.borrow_mut().push((cookie, att));
    }
}

// ------------------------------------------------------------------ TSM signer

pub struct Tsm {
    pub pkcs8: Vec<u8>,
    key: EcdsaKeyPair,
    pub public: TsmPublicKey,
    pub kid: [u8; 16],
    rng: SystemRandom,
}

impl Tsm {
    pub fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        Self::from_pkcs8(pkcs8.as_ref())
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Self {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, &rng).unwrap();
        let public = TsmPublicKey::from_sec1(key.public_key().as_ref()).unwrap();
        let d = RingCrypto.sha384(&[public.as_bytes()]);
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&d[..16]);
        Tsm {
            pkcs8: pkcs8.to_vec(),
            key,
            public,
            kid,
            rng,
        }
    }

    /// Signs `payload` as a tagged COSE_Sign1 (ES384, kid in the protected header).
    pub fn sign(&self, payload: Vec<u8>) -> Vec<u8> {
        self.sign_with_kid(payload, self.kid.to_vec())
    }

    pub fn sign_with_kid(&self, payload: Vec<u8>, kid: Vec<u8>) -> Vec<u8> {
        let protected = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES384)
            .key_id(kid)
            .build();
        CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(b"", |tbs| {
                self.key.sign(&self.rng, tbs).unwrap().as_ref().to_vec()
            })
            .build()
            .to_tagged_vec()
            .unwrap()
    }

    pub fn grant(&self, c: &Claims) -> Vec<u8> {
        self.sign(c.encode())
    }

    pub fn rotation(&self, seq: u64, new: &TsmPublicKey) -> Vec<u8> {
        self.sign(rotation_payload(seq, new))
    }
}

/// Rotation claims `{1: seq, 2: new key}`.
pub fn rotation_payload(seq: u64, new: &TsmPublicKey) -> Vec<u8> {
    use ciborium::value::Value;
    let v = Value::Map(vec![
        (Value::Integer(1.into()), Value::Integer(seq.into())),
        (
            Value::Integer(2.into()),
            Value::Bytes(new.as_bytes().to_vec()),
        ),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).unwrap();
    out
}

/// Grant claims as the TSM writes them.
#[derive(Clone, Debug)]
pub struct Claims {
    pub grant_id: [u8; 16],
    pub exporter_tenant: u32,
    pub exporter_accel: u16,
    pub buffer: [u8; 16],
    pub importer_tenant: u32,
    pub importer_os: u32,
    pub importer_accel: u16,
    pub rights: u32,
    pub exporter_epoch: u64,
    pub importer_epoch: u64,
    pub not_before: u64,
    pub expiry: u64,
    pub nonce: [u8; 16],
}

impl Claims {
    pub fn encode(&self) -> Vec<u8> {
        use ciborium::value::Value;
        let i = |k: u64| Value::Integer(k.into());
        let v = Value::Map(vec![
            (i(1), Value::Bytes(self.grant_id.to_vec())),
            (i(2), i(self.exporter_tenant.into())),
            (i(3), i(self.exporter_accel.into())),
            (i(4), Value::Bytes(self.buffer.to_vec())),
            (i(5), i(self.importer_tenant.into())),
            (i(6), i(self.importer_os.into())),
            (i(7), i(self.importer_accel.into())),
            (i(8), i(self.rights.into())),
            (i(9), i(self.exporter_epoch)),
            (i(10), i(self.importer_epoch)),
            (i(11), i(self.not_before)),
            (i(12), i(self.expiry)),
            (i(13), Value::Bytes(self.nonce.to_vec())),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    }
}

// ------------------------------------------------------------------ scenario

pub type TestDriver = Driver<FakeFabric, RingCrypto, AuditLog, Notes>;

pub fn acc(i: u16) -> AcceleratorId {
    AcceleratorId::new(i).unwrap()
}

pub const TENANT_A: TenantId = TenantId(1);
pub const TENANT_B: TenantId = TenantId(2);
pub const OS_A: OsInstanceId = OsInstanceId(10);
pub const OS_A2: OsInstanceId = OsInstanceId(11);
pub const OS_B: OsInstanceId = OsInstanceId(20);

/// Tenant A owns accelerators 0 and 1, tenant B owns 2 and 3; both TDIs of every accelerator are RUN
/// at epoch 1; keys are live between every pair; A has a window on accelerator 0 and exported 4 KiB of
/// it from OS instance A.
pub struct Scenario {
    pub d: TestDriver,
    pub tsm: Tsm,
    pub tsm_file: FileCtx,
    pub fa: FileCtx,
    pub fa2: FileCtx,
    pub fb: FileCtx,
    pub window_a: WindowId,
    pub window_b: WindowId,
    pub handle: BufferHandle,
    pub nonce_ctr: u8,
}

impl Scenario {
    pub fn new() -> Self {
        Self::with(FakeFabric::new(6, 2), Config::default())
    }

    pub fn with(fabric: FakeFabric, config: Config) -> Self {
        Self::with_tsm(fabric, config, Tsm::new())
    }

    pub fn with_tsm(fabric: FakeFabric, config: Config, tsm: Tsm) -> Self {
        let n = fabric.accels.len() as u16;
        for a in 0..n {
            for b in (a + 1)..n {
                fabric.program_pair(acc(a), acc(b), 1);
            }
        }
        let mut d = Driver::new(
            fabric,
            RingCrypto,
            AuditLog::default(),
            Notes::default(),
            tsm.public,
            [7u8; 32],
            config,
        )
        .unwrap();
        let t = FileCtx::tsm(OsInstanceId(0));
        d.tenant_add(&t, TENANT_A).unwrap();
        d.tenant_add(&t, TENANT_B).unwrap();
        d.vpod_create(&t, TENANT_A, &[acc(0), acc(1)]).unwrap();
        d.vpod_create(&t, TENANT_B, &[acc(2), acc(3)]).unwrap();
        for a in 0..n {
            d.tdi_update(&t, acc(a), TdiState::ConfigLocked, 1, false)
                .unwrap();
            d.tdi_update(&t, acc(a), TdiState::Run, 1, false).unwrap();
        }
        // The TSM records every key slot the devices report.
        let slots: Vec<KeySlotRef> = d.fabric().slots.borrow().keys().copied().collect();
        for s in slots {
            d.key_slot(&t, s, KeySlotCommand::Query).unwrap();
        }
        let window_a = d
            .window_create(&t, TENANT_A, acc(0), 0x10_0000, 0x10_0000)
            .unwrap();
        let window_b = d
            .window_create(&t, TENANT_B, acc(2), 0x20_0000, 0x10_0000)
            .unwrap();
        let fa = FileCtx::tenant(TENANT_A, OS_A);
        let handle = d.export(&fa, window_a, 0x1000, 0x1000).unwrap();
        d.audit_sink().0.borrow_mut().clear();
        Scenario {
            d,
            tsm,
            tsm_file: t,
            fa,
            fa2: FileCtx::tenant(TENANT_A, OS_A2),
            fb: FileCtx::tenant(TENANT_B, OS_B),
            window_a,
            window_b,
            handle,
            nonce_ctr: 0,
        }
    }

    pub fn now(&self) -> u64 {
        self.d.fabric().clock.get()
    }

    /// Claims letting tenant B (OS B, accelerator 2) read and write A's buffer for one second.
    pub fn claims_for_b(&mut self) -> Claims {
        self.nonce_ctr += 1;
        let now = self.now();
        Claims {
            grant_id: [self.nonce_ctr; 16],
            exporter_tenant: TENANT_A.0,
            exporter_accel: 0,
            buffer: self.handle.0,
            importer_tenant: TENANT_B.0,
            importer_os: OS_B.0,
            importer_accel: 2,
            rights: 3,
            exporter_epoch: 1,
            importer_epoch: 1,
            not_before: now - 1,
            expiry: now + 1_000_000_000,
            nonce: [self.nonce_ctr ^ 0x80; 16],
        }
    }

    pub fn attach_b(
        &mut self,
        grant: Option<&[u8]>,
        rights: Rights,
    ) -> Result<AttachmentId, Errno> {
        let fb = self.fb;
        let req = AttachRequest {
            handle: self.handle,
            importer_accel: acc(2),
            rights,
            invalidate_cookie: Some(0xB),
            grant,
        };
        self.d.attach(&fb, &req).map_err(Errno::from)
    }

    /// A live cross-tenant mapping from B (accelerator 2) into A's buffer.
    pub fn granted_mapping(&mut self) -> AttachmentId {
        let c = self.claims_for_b();
        let g = self.tsm.grant(&c);
        let att = self.attach_b(Some(&g), Rights::READ).unwrap();
        let fb = self.fb;
        self.d.map(&fb, att).unwrap();
        att
    }

    pub fn events(&self) -> Vec<AuditEvent> {
        self.d.audit_sink().0.borrow().clone()
    }

    /// Window permissions in hardware whose initiator belongs to tenant B.
    pub fn perms_for_initiator(&self, initiator: AcceleratorId) -> Vec<WindowPerm> {
        self.d
            .fabric()
            .perms_list()
            .into_iter()
            .filter(|p| p.initiator == initiator)
            .collect()
    }
}
