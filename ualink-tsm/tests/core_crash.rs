//! Crash safety, in process: the TSM is dropped mid-onboarding without `shutdown` (no final
//! checkpoint) and the crash leaves a torn frame at the end of the log. Reopened on the same
//! state directory, nothing acknowledged is lost: the tenants, vPod and key epochs are
//! there, the log holds every acknowledged record unchanged, continues, and verifies end to
//! end with ualink-attest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;

use common::*;
use ualink_attest::audit::{verify_log, CheckpointVerifier};
use ualink_sim::{AccelId, SimPod};
use ualink_tsm::tsm::TenantOptions;
use ualink_tsm::TsmError;

#[test]
fn a_tsm_dropped_mid_onboarding_loses_nothing_acknowledged_and_its_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(4);
    let (key, acked) = {
        let mut t = tsm_on(SimPod::new(&spec).unwrap(), &spec, dir.path());
        t.bring_up().unwrap();
        t.tenant_add(1, "tenant-a").unwrap();
        t.tenant_add_with(2, "tenant-b", TenantOptions { lead_keys: true })
            .unwrap();
        t.vpod_create(1, &[1, 2]).unwrap();
        t.window_create(1, 2, 0, 0x1000).unwrap();
        t.provision_keys(1).unwrap();
        // Mid-onboarding: the TDI is locked and its report issued, the tenant's agent has not
        // answered yet; tenant B has no vPod yet.
        t.tdi_lock(1, 1).unwrap();
        let key = t.identity().public_key().to_vec();
        let acked = records(dir.path(), &key);
        assert_eq!(acked.len() as u64, t.audit().size());
        drop(t); // the crash: no shutdown, no final checkpoint
        (key, acked)
    };
    // The crash hit in the middle of appending a frame: its header announces 256 bytes.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("audit.log"))
        .unwrap();
    f.write_all(&[0x01, 0, 0, 1, 0]).unwrap();
    f.write_all(&[0xab; 40]).unwrap();
    drop(f);

    let mut t = tsm_on(SimPod::new(&spec).unwrap(), &spec, dir.path());
    assert_eq!(t.identity().public_key(), &key[..]);
    // The torn frame is gone; every acknowledged record is still there.
    assert_eq!(t.audit().size(), acked.len() as u64);
    let tenants = t.tenants().unwrap();
    assert_eq!(tenants.len(), 2);
    assert!(!tenants[0].lead_keys && tenants[1].lead_keys, "{tenants:?}");
    assert_eq!(t.vpod(1).unwrap().unwrap().members, vec![1, 2]);
    assert!(t.vpod(2).unwrap().is_none());
    // Onboarding resumes: devices re-attested (epochs continue), the vPod re-formed and
    // re-keyed with a new epoch, data crosses.
    let r = t.bring_up().unwrap();
    assert_eq!(r.resumed_vpods, vec![1]);
    assert_eq!(t.device(1).unwrap().epoch, 2);
    let (a1, a2) = (AccelId::new(1).unwrap(), AccelId::new(2).unwrap());
    t.pod().write(a1, a2, 0x10, b"resumed").unwrap();
    assert!(matches!(t.vpod_create(2, &[1]), Err(TsmError::Conflict(_))));
    t.vpod_create(2, &[3, 4]).unwrap();
    t.shutdown().unwrap();

    // The whole log verifies with ualink-attest: Merkle tree, prev chain, signed checkpoints.
    let bytes = std::fs::read(dir.path().join("audit.log")).unwrap();
    let v = verify_log(&bytes, &CheckpointVerifier::new(&key), &[]).unwrap();
    assert!(v.size() > acked.len() as u64);
    let after = records(dir.path(), &key);
    for (i, (before, now)) in acked.iter().zip(&after).enumerate() {
        assert_eq!(
            before.to_cbor().unwrap(),
            now.to_cbor().unwrap(),
            "record {i} changed across the crash"
        );
    }
}
