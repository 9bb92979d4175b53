//! Shared scaffolding of the scenario binaries: a generated sim pod under a real TSM core
//! (`ualink_tsm::Tsm` with its redb store, audit log and policy), two tenants with keyed
//! vPods and running TDIs, and helpers to read back the audit log and the leak oracle.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde_json::json;
use ualink_attest::audit::{AuditRecord, DecisionKind, Outcome};
use ualink_kdrv::ids::{AttachmentId, BufferHandle, OsInstanceId, Rights, TenantId, WindowId};
use ualink_kdrv::{AttachRequest, Errno, FileCtx};
use ualink_policy::input::Right;
use ualink_policy::PolicyBundle;
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::{AccelId, SimPod};
use ualink_tsm::{ShareRequest, Tsm, TsmConfig};

/// Tenant A: id 1, OS instance 10, accelerators 1 and 2.
pub const TA: u32 = 1;
/// Tenant B: id 2, OS instance 20, accelerators 3 and 4.
pub const TB: u32 = 2;
/// Tenant A's OS instance.
pub const OS_A: u32 = 10;
/// Tenant B's OS instance.
pub const OS_B: u32 = 20;
/// Where A's shared buffer sits in accelerator 1's memory.
pub const BUF_ADDR: u64 = 0x1_1000;
/// The secret A's buffer holds.
pub const SECRET: u8 = 0xa5;

pub fn id(v: u16) -> AccelId {
    AccelId::new(v).unwrap()
}

pub fn spec(n: u16) -> PodSpec {
    PodSpec::generate(&GenParams {
        accelerators: n,
        switches: 1,
        memory_bytes: 1 << 20,
        spare_ports: 1,
    })
    .unwrap()
}

/// The library's sim-pod policy data plus tenants a and b and an a→b read-only share pair.
pub fn overlay(pod: &SimPod, spec: &PodSpec) -> serde_json::Value {
    let mut v = ualink_tsm::demo::sim_pod_overlay(pod, spec);
    let d = v["ualink_data"].as_object_mut().unwrap();
    d.insert("tenants".into(), json!({"tenant-a": {}, "tenant-b": {}}));
    d.insert(
        "sharing".into(),
        json!({"pairs": [{"exporter": "tenant-a", "importer": "tenant-b", "rights": ["read"]}]}),
    );
    v
}

pub fn bundle(pod: &SimPod, spec: &PodSpec) -> PolicyBundle {
    PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay(pod, spec))
        .unwrap()
}

/// A TSM over `state` on `pod`.
pub fn tsm_on(pod: SimPod, spec: &PodSpec, state: &Path) -> Tsm {
    tsm_with(pod, spec, state, |_| {})
}

/// A TSM over `state` on `pod` whose policy data (`ualink_data`) `edit` changed first.
pub fn tsm_with(
    pod: SimPod,
    spec: &PodSpec,
    state: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Tsm {
    let mut v = overlay(&pod, spec);
    edit(v["ualink_data"].as_object_mut().unwrap());
    let b = PolicyBundle::defaults().unwrap().with_data(v).unwrap();
    let mut cfg = TsmConfig::new(state, b);
    cfg.checkpoint_every = 4;
    Tsm::open(cfg, pod).unwrap()
}

/// A pod of `n` accelerators and a TSM over `state`.
pub fn tsm(n: u16, state: &Path) -> Tsm {
    let spec = spec(n);
    tsm_on(SimPod::new(&spec).unwrap(), &spec, state)
}

/// Every record of `STATE/audit.log`, after verifying the whole log under the TSM key.
pub fn records(state: &Path, tsm_key: &[u8]) -> Vec<AuditRecord> {
    let bytes = std::fs::read(state.join("audit.log")).unwrap();
    let v = ualink_attest::audit::verify_log(
        &bytes,
        &ualink_attest::audit::CheckpointVerifier::new(tsm_key),
        &[],
    )
    .unwrap();
    (0..v.size())
        .map(|i| v.record(&bytes, i).unwrap())
        .collect()
}

/// Shuts the TSM down (final checkpoint) and returns the verified audit records.
pub fn close(t: Tsm, state: &Path) -> Vec<AuditRecord> {
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    records(state, &key)
}

/// The records of `kind` about `subject`.
pub fn about<'a>(
    recs: &'a [AuditRecord],
    kind: DecisionKind,
    subject: &str,
) -> Vec<&'a AuditRecord> {
    recs.iter()
        .filter(|r| r.kind() == kind && r.subject() == subject)
        .collect()
}

/// The one deny record of `kind` about `subject`, which must name `rule`.
pub fn assert_denied(recs: &[AuditRecord], kind: DecisionKind, subject: &str, rule: &str) {
    let denies: Vec<_> = about(recs, kind, subject)
        .into_iter()
        .filter(|r| r.outcome() == Outcome::Deny)
        .collect();
    assert!(
        denies.iter().any(|r| r.rules().iter().any(|x| x == rule)),
        "no {kind:?} deny of {subject} naming {rule}: {:?}",
        denies
            .iter()
            .map(|r| r.rules().to_vec())
            .collect::<Vec<_>>()
    );
}

/// The leak oracle saw nothing cross a tenant boundary without a live grant.
pub fn assert_no_leaks(pod: &SimPod) {
    let l = pod.leaks().unwrap();
    assert!(l.is_empty(), "leaked: {l:?}");
}

/// Tenant A (1: accelerators 1, 2) and B (2: 3, 4) on a 4-accelerator pod, keyed (including
/// the 1↔3 link a share needs), TDIs 1 and 3 running, A exported 4 KiB of accelerator 1's
/// memory (at [`BUF_ADDR`]) filled with [`SECRET`].
pub fn two_tenants(dir: &Path) -> (Tsm, BufferHandle) {
    two_tenants_on(4, dir)
}

pub fn two_tenants_on(n: u16, dir: &Path) -> (Tsm, BufferHandle) {
    let mut t = tsm(n, dir);
    t.bring_up().unwrap();
    t.tenant_add(TA, "tenant-a").unwrap();
    t.tenant_add(TB, "tenant-b").unwrap();
    t.vpod_create(TA, &[1, 2]).unwrap();
    t.vpod_create(TB, &[3, 4]).unwrap();
    t.provision_keys(TA).unwrap();
    t.provision_keys(TB).unwrap();
    t.key_link(1, 3).unwrap();
    for (tenant, a) in [(TA, 1), (TB, 3)] {
        t.tdi_lock(tenant, a).unwrap();
        t.tdi_accept(tenant, a, &format!("cvm-test-{tenant}"))
            .unwrap();
    }
    let w = t.window_create(TA, 1, 0x1_0000, 0x1_0000).unwrap();
    let fa = FileCtx::tenant(TenantId(TA), OsInstanceId(OS_A));
    let handle = t
        .driver_mut()
        .export(&fa, WindowId(w), 0x1000, 0x1000)
        .unwrap();
    t.pod()
        .local_write(id(1), BUF_ADDR, &[SECRET; 0x1000])
        .unwrap();
    (t, handle)
}

/// B (OS 20, accelerator 3) asks to read A's buffer.
pub fn read_request(handle: BufferHandle) -> ShareRequest {
    request(handle, vec![Right::Read])
}

pub fn request(handle: BufferHandle, rights: Vec<Right>) -> ShareRequest {
    ShareRequest {
        exporter_tenant: TA,
        exporter_os: OS_A,
        exporter_accel: 1,
        buffer: handle,
        importer_tenant: TB,
        importer_os: OS_B,
        importer_accel: 3,
        rights,
    }
}

/// An attach through the driver as `(tenant, os)` from accelerator `accel`.
pub fn attach_as(
    t: &mut Tsm,
    who: (u32, u32),
    accel: u16,
    handle: BufferHandle,
    rights: Rights,
    grant: Option<&[u8]>,
) -> Result<AttachmentId, Errno> {
    let f = FileCtx::tenant(TenantId(who.0), OsInstanceId(who.1));
    t.driver_mut()
        .attach(
            &f,
            &AttachRequest {
                handle,
                importer_accel: id(accel).to_kdrv(),
                rights,
                invalidate_cookie: Some(0xB),
                grant,
            },
        )
        .map_err(Errno::from)
}

/// B's attach (OS 20, accelerator 3) for reading.
pub fn attach_b(
    t: &mut Tsm,
    handle: BufferHandle,
    grant: Option<&[u8]>,
) -> Result<AttachmentId, Errno> {
    attach_as(t, (TB, OS_B), 3, handle, Rights::READ, grant)
}

/// B cannot read A's secret over the fabric, and the oracle saw nothing cross.
pub fn assert_b_reads_nothing(t: &Tsm) {
    let r = t.pod().read(id(3), id(1), BUF_ADDR, 16);
    assert!(r.is_err(), "B read A's buffer: {r:?}");
    assert_no_leaks(t.pod());
}

/// The SHA-384 of `bytes`, as the audit log's input digests are.
pub fn sha384(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA384, bytes)
        .as_ref()
        .to_vec()
}

/// The share records (allow and deny) in the log.
pub fn shares(recs: &[AuditRecord]) -> Vec<&AuditRecord> {
    recs.iter()
        .filter(|r| r.kind() == DecisionKind::Share)
        .collect()
}
