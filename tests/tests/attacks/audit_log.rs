//! The audit log attacked at rest: a record edited, the tail truncated, two records swapped,
//! and a fork (two histories from one TSM key). `ualink_attest::audit::verify_log` — what
//! `ualink-attest report` runs first — names each, with the first sequence number that does
//! not verify.

use std::path::Path;

use ualink_attest::audit::file::{next_frame, Next, FRAME_ENTRY, HEADER_LEN};
use ualink_attest::audit::{find_fork, verify_log, CheckpointVerifier};
use ualink_attest::{Error, ErrorClass};
use ualink_sim::SimPod;

use crate::common::*;

/// (frame type, whole-frame range, payload range) of every frame.
fn frames(bytes: &[u8]) -> Vec<(u8, std::ops::Range<usize>, std::ops::Range<usize>)> {
    let mut v = Vec::new();
    let mut off = HEADER_LEN;
    while let Next::Frame(f) = next_frame(bytes, off).unwrap() {
        off = f.frame.end;
        v.push((f.frame_type, f.frame, f.payload));
    }
    v
}

/// A TSM that brought up 4 devices and onboarded two tenants; returns its log and key.
fn a_log(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut t = tsm(4, dir);
    t.bring_up().unwrap();
    t.tenant_add(TA, "tenant-a").unwrap();
    t.tenant_add(TB, "tenant-b").unwrap();
    t.vpod_create(TA, &[1, 2]).unwrap();
    t.vpod_create(TB, &[3, 4]).unwrap();
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let log = std::fs::read(dir.join("audit.log")).unwrap();
    verify_log(&log, &CheckpointVerifier::new(&key), &[]).unwrap();
    (log, key)
}

fn tampered_at(r: Result<ualink_attest::audit::VerifiedLog, Error>) -> (u64, String) {
    match r {
        Err(e @ Error::Tampered { .. }) => {
            assert_eq!(e.class(), ErrorClass::Tampered);
            let Error::Tampered { seq, reason } = e else {
                unreachable!()
            };
            (seq, reason)
        }
        Err(e) => panic!("expected a tampered verdict, got {e}"),
        Ok(_) => panic!("the altered log verified"),
    }
}

/// The last checkpoint frame's COSE bytes (what an auditor keeps between audits).
fn last_checkpoint(log: &[u8]) -> Vec<u8> {
    let (_, _, p) = frames(log)
        .into_iter()
        .rfind(|(t, _, _)| *t != FRAME_ENTRY)
        .unwrap();
    log[p].to_vec()
}

#[test]
fn audit_log_with_an_edited_record_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, key) = a_log(dir.path());
    let entries: Vec<_> = frames(&log)
        .into_iter()
        .filter(|(t, _, _)| *t == FRAME_ENTRY)
        .collect();
    // Record 2 (a device verdict): flip a byte in its CBOR body, past the seq/prev prefix.
    let p = entries[2].2.clone();
    log[p.end - 3] ^= 0x20;
    let (seq, reason) = tampered_at(verify_log(&log, &CheckpointVerifier::new(&key), &[]));
    assert_eq!(seq, 2, "{reason}");
}

#[test]
fn audit_log_truncated_at_a_frame_boundary_is_caught_with_a_kept_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (log, key) = a_log(dir.path());
    let kept = last_checkpoint(&log);
    let fr = frames(&log);
    // Cut the file just before the third-from-last frame: every remaining frame is whole.
    let cut = fr[fr.len() - 3].1.start;
    let short = &log[..cut];
    let v = CheckpointVerifier::new(&key);
    // Alone, a prefix cut at a checkpoint boundary is indistinguishable from an older log...
    let (seq, reason) = tampered_at(verify_log(short, &v, std::slice::from_ref(&kept)));
    // ...but the auditor's kept checkpoint covers records the file no longer has.
    assert!(reason.contains("truncated"), "{reason}");
    assert!(seq < 11, "{seq}");
}

#[test]
fn audit_log_with_a_record_removed_from_the_middle_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (log, key) = a_log(dir.path());
    let entries: Vec<_> = frames(&log)
        .into_iter()
        .filter(|(t, _, _)| *t == FRAME_ENTRY)
        .collect();
    let gone = entries[5].1.clone();
    assert_eq!(entries[6].1.start, gone.end, "5 and 6 are adjacent entries");
    let mut cut = log[..gone.start].to_vec();
    cut.extend_from_slice(&log[gone.end..]);
    let (seq, reason) = tampered_at(verify_log(&cut, &CheckpointVerifier::new(&key), &[]));
    assert_eq!(seq, 5, "{reason}");
}

#[test]
fn audit_log_with_two_records_swapped_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (log, key) = a_log(dir.path());
    let entries: Vec<_> = frames(&log)
        .into_iter()
        .filter(|(t, _, _)| *t == FRAME_ENTRY)
        .collect();
    let (a, b) = (entries[1].1.clone(), entries[2].1.clone());
    assert_eq!(a.end, b.start, "adjacent entries");
    let mut swapped = log[..a.start].to_vec();
    swapped.extend_from_slice(&log[b.clone()]);
    swapped.extend_from_slice(&log[a.clone()]);
    swapped.extend_from_slice(&log[b.end..]);
    assert_eq!(swapped.len(), log.len());
    let (seq, reason) = tampered_at(verify_log(&swapped, &CheckpointVerifier::new(&key), &[]));
    assert!(seq <= 2, "{seq}: {reason}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// A host that snapshots the TSM's state and runs two TSMs from it (one shown to the auditor,
/// one doing what the auditor should not see): each log verifies alone under the same key,
/// but the auditor's kept checkpoint from one exposes the other, and comparing finds the
/// first divergent record.
#[test]
fn forked_audit_log_is_caught() {
    let base = tempfile::tempdir().unwrap();
    let spec = spec(4);
    let key;
    {
        let mut t = tsm_on(SimPod::new(&spec).unwrap(), &spec, base.path());
        t.bring_up().unwrap();
        key = t.identity().public_key().to_vec();
        t.shutdown().unwrap();
    }
    let fork_dir = tempfile::tempdir().unwrap();
    copy_dir(base.path(), fork_dir.path());
    let common = verify_log(
        &std::fs::read(base.path().join("audit.log")).unwrap(),
        &CheckpointVerifier::new(&key),
        &[],
    )
    .unwrap()
    .size();
    for (dir, tenant, name) in [
        (base.path(), TA, "tenant-a"),
        (fork_dir.path(), TB, "tenant-b"),
    ] {
        let mut t = tsm_on(SimPod::new(&spec).unwrap(), &spec, dir);
        assert_eq!(t.identity().public_key(), &key[..], "same TSM key");
        t.bring_up().unwrap();
        t.tenant_add(tenant, name).unwrap();
        t.shutdown().unwrap();
    }
    let v = CheckpointVerifier::new(&key);
    let la = std::fs::read(base.path().join("audit.log")).unwrap();
    let lb = std::fs::read(fork_dir.path().join("audit.log")).unwrap();
    let va = verify_log(&la, &v, &[]).unwrap();
    let vb = verify_log(&lb, &v, &[]).unwrap();
    let at = find_fork(&va, &vb).expect("a fork");
    assert!(
        at >= common,
        "diverges after the shared prefix ({at} < {common})"
    );
    let (_, reason) = tampered_at(verify_log(&lb, &v, &[last_checkpoint(&la)]));
    assert!(reason.contains("fork"), "{reason}");
}
