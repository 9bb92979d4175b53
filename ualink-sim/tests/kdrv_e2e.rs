//! The driver core (ualink-kdrv) on the simulated pod, as cxl_test runs the CXL core on mock
//! ops: export → grant → attach → map → encrypted transfer end to end, refusals without a grant,
//! and revocation stopping the bytes. The leak oracle stays empty throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cell::RefCell;

use common::*;
use coset::{iana, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use ualink_kdrv::audit::{AuditEvent, AuditSink, InvalidateSink};
use ualink_kdrv::crypto::{CryptoBackend, RingCrypto, TsmPublicKey};
use ualink_kdrv::ids::{AttachmentId, BufferHandle, OsInstanceId, Rights, TenantId};
use ualink_kdrv::ops::{Direction, KeySlotCommand, KeySlotRef};
use ualink_kdrv::{AttachRequest, Config, Driver, Errno, FileCtx, TdiState};
use ualink_sim::{SimError, SimPod};

#[derive(Default)]
struct Log(RefCell<Vec<AuditEvent>>);
impl AuditSink for Log {
    fn record(&self, e: &AuditEvent) {
        self.0.borrow_mut().push(*e);
    }
}

#[derive(Default)]
struct Notes(RefCell<Vec<(u64, AttachmentId)>>);
impl InvalidateSink for Notes {
    fn move_notify(&self, cookie: u64, att: AttachmentId) {
        self.0.borrow_mut().push((cookie, att));
    }
}

struct Tsm {
    key: EcdsaKeyPair,
    public: TsmPublicKey,
    kid: [u8; 16],
    rng: SystemRandom,
}

impl Tsm {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = TsmPublicKey::from_sec1(key.public_key().as_ref()).unwrap();
        let d = RingCrypto.sha384(&[public.as_bytes()]);
        let mut kid = [0u8; 16];
        kid.copy_from_slice(&d[..16]);
        Tsm {
            key,
            public,
            kid,
            rng,
        }
    }

    /// A grant (claims layout as in ualink-kdrv's grant module) signed as tagged COSE_Sign1 ES384.
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &self,
        id: u8,
        exporter: (u32, u16),
        buffer: BufferHandle,
        importer: (u32, u32, u16),
        rights: u32,
        window_ns: (u64, u64),
    ) -> Vec<u8> {
        use ciborium::value::Value;
        let i = |k: u64| Value::Integer(k.into());
        let claims = Value::Map(vec![
            (i(1), Value::Bytes(vec![id; 16])),
            (i(2), i(exporter.0.into())),
            (i(3), i(exporter.1.into())),
            (i(4), Value::Bytes(buffer.0.to_vec())),
            (i(5), i(importer.0.into())),
            (i(6), i(importer.1.into())),
            (i(7), i(importer.2.into())),
            (i(8), i(rights.into())),
            (i(9), i(1)),
            (i(10), i(1)),
            (i(11), i(window_ns.0)),
            (i(12), i(window_ns.1)),
            (i(13), Value::Bytes(vec![id ^ 0x80; 16])),
        ]);
        let mut payload = Vec::new();
        ciborium::into_writer(&claims, &mut payload).unwrap();
        CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::ES384)
                    .key_id(self.kid.to_vec())
                    .build(),
            )
            .payload(payload)
            .create_signature(b"", |tbs| {
                self.key.sign(&self.rng, tbs).unwrap().as_ref().to_vec()
            })
            .build()
            .to_tagged_vec()
            .unwrap()
    }
}

const TA: TenantId = TenantId(1);
const TB: TenantId = TenantId(2);
const OS_A: OsInstanceId = OsInstanceId(10);
const OS_B: OsInstanceId = OsInstanceId(20);

type D = Driver<SimPod, RingCrypto, Log, Notes>;

/// Tenant A owns accelerators 1 and 2, tenant B owns 3 and 4. Keys are live between every pair
/// (delivered to the devices as the TSM would), TDIs are RUN at epoch 1, A has a window on
/// accelerator 1 and exported 4 KiB of it.
fn setup() -> (D, Tsm, FileCtx, BufferHandle) {
    let p = pod(4);
    for (a, t) in [(1, 1), (2, 1), (3, 2), (4, 2)] {
        own(&p, id(a), t);
    }
    for a in 1..=4u16 {
        for b in (a + 1)..=4 {
            p.key_pair(id(a), id(b), 1).unwrap();
        }
    }
    let tsm = Tsm::new();
    let mut d = Driver::new(
        p,
        RingCrypto,
        Log::default(),
        Notes::default(),
        tsm.public,
        [7u8; 32],
        Config::default(),
    )
    .unwrap();
    let t = FileCtx::tsm(OsInstanceId(0));
    d.tenant_add(&t, TA).unwrap();
    d.tenant_add(&t, TB).unwrap();
    d.vpod_create(&t, TA, &[id(1).to_kdrv(), id(2).to_kdrv()])
        .unwrap();
    d.vpod_create(&t, TB, &[id(3).to_kdrv(), id(4).to_kdrv()])
        .unwrap();
    for a in 1..=4u16 {
        d.tdi_update(&t, id(a).to_kdrv(), TdiState::ConfigLocked, 1, false)
            .unwrap();
        d.tdi_update(&t, id(a).to_kdrv(), TdiState::Run, 1, false)
            .unwrap();
        for b in 1..=4u16 {
            if a == b {
                continue;
            }
            for dir in [Direction::Tx, Direction::Rx] {
                let s = KeySlotRef {
                    accel: id(a).to_kdrv(),
                    port: ualink_kdrv::ids::PortId(0),
                    dir,
                    peer: id(b).to_kdrv(),
                };
                d.key_slot(&t, s, KeySlotCommand::Query).unwrap();
            }
        }
    }
    let w = d
        .window_create(&t, TA, id(1).to_kdrv(), 0x1_0000, 0x1_0000)
        .unwrap();
    let fa = FileCtx::tenant(TA, OS_A);
    let handle = d.export(&fa, w, 0x1000, 0x1000).unwrap();
    d.fabric()
        .local_write(id(1), 0x1_1000, &[0xa5; 0x1000])
        .unwrap();
    (d, tsm, t, handle)
}

fn attach(
    d: &mut D,
    handle: BufferHandle,
    grant: Option<&[u8]>,
    rights: Rights,
) -> Result<AttachmentId, Errno> {
    let fb = FileCtx::tenant(TB, OS_B);
    d.attach(
        &fb,
        &AttachRequest {
            handle,
            importer_accel: id(3).to_kdrv(),
            rights,
            invalidate_cookie: Some(0xB),
            grant,
        },
    )
    .map_err(Errno::from)
}

#[test]
fn granted_share_moves_encrypted_bytes_and_revocation_stops_them() {
    let (mut d, tsm, _t, handle) = setup();
    // Before any grant: no route, no window permission for B.
    assert!(d.fabric().read(id(3), id(1), 0x1_1000, 64).is_err());
    let now = d.fabric().now_ns().unwrap();
    let g = tsm.grant(
        1,
        (TA.0, 1),
        handle,
        (TB.0, OS_B.0, 3),
        1,
        (now, now + 1_000_000_000),
    );
    let att = attach(&mut d, handle, Some(&g), Rights::READ).unwrap();
    let fb = FileCtx::tenant(TB, OS_B);
    d.map(&fb, att).unwrap();
    // The map opened the route and the target-side window through FabricOps: accelerator 3
    // reads A's exported bytes over the encrypted link.
    assert_eq!(
        d.fabric().read(id(3), id(1), 0x1_1000, 0x1000).unwrap(),
        vec![0xa5; 0x1000]
    );
    // Only the exported range, only the granted right.
    assert!(matches!(
        d.fabric().read(id(3), id(1), 0x1_2000, 16),
        Err(SimError::WindowDenied { .. })
    ));
    assert!(d.fabric().write(id(3), id(1), 0x1_1000, &[0; 16]).is_err());
    assert!(d.fabric().leaks().unwrap().is_empty());
    // Revocation: the bytes stop.
    let fa = FileCtx::tenant(TA, OS_A);
    d.revoke(&fa, handle).unwrap();
    assert!(d.fabric().read(id(3), id(1), 0x1_1000, 16).is_err());
    assert!(
        !d.notify_sink().0.borrow().is_empty(),
        "importer was told (move_notify)"
    );
    assert!(d.fabric().leaks().unwrap().is_empty());
}

#[test]
fn without_a_valid_grant_nothing_is_mapped_and_no_byte_crosses() {
    let (mut d, tsm, _t, handle) = setup();
    let now = d.fabric().now_ns().unwrap();
    // No grant, a grant for another importer accelerator, an expired grant, and a forged one.
    assert!(attach(&mut d, handle, None, Rights::READ).is_err());
    let wrong = tsm.grant(
        2,
        (TA.0, 1),
        handle,
        (TB.0, OS_B.0, 4),
        1,
        (now, now + 1_000_000_000),
    );
    assert!(attach(&mut d, handle, Some(&wrong), Rights::READ).is_err());
    let expired = tsm.grant(3, (TA.0, 1), handle, (TB.0, OS_B.0, 3), 1, (0, 1));
    assert!(attach(&mut d, handle, Some(&expired), Rights::READ).is_err());
    let mut forged = tsm.grant(
        4,
        (TA.0, 1),
        handle,
        (TB.0, OS_B.0, 3),
        1,
        (now, now + 1_000_000_000),
    );
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert!(attach(&mut d, handle, Some(&forged), Rights::READ).is_err());
    assert_eq!(d.attachment_count(), 0);
    // The simulated hardware agrees: no route, no window, no bytes.
    assert!(d.fabric().read(id(3), id(1), 0x1_1000, 16).is_err());
    assert!(d.fabric().leaks().unwrap().is_empty());
}

#[test]
fn an_integrity_failure_reported_by_the_sim_reaches_the_driver() {
    let (mut d, tsm, t, handle) = setup();
    let now = d.fabric().now_ns().unwrap();
    let g = tsm.grant(
        1,
        (TA.0, 1),
        handle,
        (TB.0, OS_B.0, 3),
        1,
        (now, now + 1_000_000_000),
    );
    let att = attach(&mut d, handle, Some(&g), Rights::READ).unwrap();
    let fb = FileCtx::tenant(TB, OS_B);
    d.map(&fb, att).unwrap();
    assert!(d.fabric().read(id(3), id(1), 0x1_1000, 16).is_ok());
    // Tamper with the next request on the wire: accelerator 1 drops it, stops the streams from
    // 3 and reports; the driver processes the report and revokes what depended on that link.
    d.fabric()
        .tamper_next_wire(ualink_sim::sim::WireTamper { offset: 20, xor: 1 })
        .unwrap();
    assert!(matches!(
        d.fabric().read(id(3), id(1), 0x1_1000, 16),
        Err(SimError::IntegrityFailure { .. })
    ));
    let handled = d.process_faults(&t, 16).unwrap();
    assert!(handled >= 1);
    assert!(d.fabric().read(id(3), id(1), 0x1_1000, 16).is_err());
    assert!(d.fabric().leaks().unwrap().is_empty());
}
