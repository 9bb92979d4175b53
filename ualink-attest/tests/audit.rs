//! The audit log: a 10,000-record log, every kind of tampering detected with the first bad
//! sequence number, proofs, torn tails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_attest::audit::file::{self, Next};
use ualink_attest::audit::merkle;
use ualink_attest::audit::{
    find_fork, verify_log, AuditLogWriter, AuditRecord, CheckpointSigner, DecisionKind, Digest384,
    Outcome, VerifiedLog,
};
use ualink_attest::{Error, UnixTime};

const N: u64 = 10_000;
const EVERY: u64 = 1_000;

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new() -> Self {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-audit-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn record(i: u64, branch: &str) -> AuditRecord {
    AuditRecord::new(
        UnixTime::from_secs(1_764_000_000 + i as i64),
        DecisionKind::Share,
        &format!("grant-{i}"),
        if i % 3 == 0 {
            Outcome::Deny
        } else {
            Outcome::Allow
        },
    )
    .unwrap()
    .with_input("request", Digest384::of(&i.to_be_bytes()))
    .unwrap()
    .with_key_fingerprint("tenant-key", Digest384::of(b"tenant spki"))
    .unwrap()
    .with_policy(Digest384::of(b"policy bundle v1"))
    .with_rule("share.allow_same_tenant")
    .unwrap()
    .with_reason(&format!("decision {i} on branch {branch}"))
    .unwrap()
}

/// Writes `n` records, a checkpoint every 1000; records from `fork_at` on use `branch`.
fn build(
    dir: &TempDir,
    name: &str,
    signer: &CheckpointSigner,
    n: u64,
    fork_at: u64,
    branch: &str,
) -> (Vec<u8>, Vec<Vec<u8>>) {
    let path = dir.0.join(name);
    let mut w = AuditLogWriter::create(&path).unwrap();
    let mut cps = Vec::new();
    for i in 0..n {
        let b = if i >= fork_at { branch } else { "main" };
        assert_eq!(w.append(&record(i, b)).unwrap(), i);
        if (i + 1) % EVERY == 0 {
            cps.push(
                w.checkpoint(signer, UnixTime::from_secs(1_764_000_000 + i as i64))
                    .unwrap(),
            );
        }
    }
    w.sync().unwrap();
    (std::fs::read(&path).unwrap(), cps)
}

/// The frames of a log as (type, payload).
fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = file::HEADER_LEN;
    while let Next::Frame(f) = file::next_frame(bytes, off).unwrap() {
        out.push((f.frame_type, bytes[f.payload.clone()].to_vec()));
        off = f.frame.end;
    }
    out
}

/// Re-assembles a log with valid CRCs (so detection never relies on the CRC).
fn assemble(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = file::header().to_vec();
    for (t, p) in frames {
        file::encode_frame(&mut out, *t, &[p]).unwrap();
    }
    out
}

/// Index in `frames` of the entry with sequence number `seq`.
fn entry_index(frames: &[(u8, Vec<u8>)], seq: u64) -> usize {
    frames
        .iter()
        .position(|(t, p)| *t == file::FRAME_ENTRY && p[..8] == seq.to_be_bytes())
        .unwrap()
}

fn first_bad(r: Result<VerifiedLog, Error>) -> (u64, String) {
    match r {
        Err(Error::Tampered { seq, reason }) => (seq, reason),
        other => panic!("expected Tampered, got {other:?}"),
    }
}

fn setup() -> (TempDir, CheckpointSigner, Vec<u8>, Vec<Vec<u8>>) {
    let dir = TempDir::new();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let (bytes, cps) = build(&dir, "audit.log", &signer, N, N, "main");
    (dir, signer, bytes, cps)
}

#[test]
fn a_10000_record_log_verifies_and_detects_every_tampering() {
    let (_dir, signer, bytes, cps) = setup();
    let key = signer.verifier();
    let v = verify_log(&bytes, &key, &cps).unwrap();
    assert_eq!(v.size(), N);
    assert_eq!(v.checkpoints.len(), (N / EVERY) as usize);
    assert_eq!(v.unsealed_from(), None);
    assert_eq!(v.torn_tail_bytes, 0);
    assert_eq!(v.record(&bytes, 4321).unwrap(), record(4321, "main"));
    let f = frames(&bytes);
    assert_eq!(assemble(&f), bytes);

    // Changed: one byte of record 5123's CBOR (the reason text), CRC recomputed.
    let mut g = f.clone();
    let i = entry_index(&g, 5123);
    let last = g[i].1.len() - 1;
    g[i].1[last] ^= 0x01;
    assert_eq!(first_bad(verify_log(&assemble(&g), &key, &[])).0, 5123);

    // Removed: record 5123 dropped.
    let mut g = f.clone();
    g.remove(entry_index(&g, 5123));
    assert_eq!(first_bad(verify_log(&assemble(&g), &key, &[])).0, 5123);

    // Reordered: 5123 and 5124 swapped.
    let mut g = f.clone();
    let i = entry_index(&g, 5123);
    g.swap(i, i + 1);
    assert_eq!(first_bad(verify_log(&assemble(&g), &key, &[])).0, 5123);

    // Inserted: a well-formed forged entry with seq 5123 and the right prev hash.
    let mut g = f.clone();
    let i = entry_index(&g, 5123);
    let mut forged = g[i].1[..56].to_vec();
    forged.extend_from_slice(&record(5123, "forged").to_cbor().unwrap());
    g.insert(i, (file::FRAME_ENTRY, forged));
    assert_eq!(first_bad(verify_log(&assemble(&g), &key, &[])).0, 5123);

    // Corrupted in place without fixing the CRC.
    let mut raw = bytes.clone();
    let pos = {
        let mut off = file::HEADER_LEN;
        loop {
            let Next::Frame(fr) = file::next_frame(&bytes, off).unwrap() else {
                panic!()
            };
            if fr.frame_type == file::FRAME_ENTRY
                && bytes[fr.payload.start..][..8] == 7000u64.to_be_bytes()
            {
                break fr.payload.end - 1;
            }
            off = fr.frame.end;
        }
    };
    raw[pos] ^= 0x40;
    assert_eq!(first_bad(verify_log(&raw, &key, &[])).0, 7000);

    // A checkpoint's signature altered (CRC fixed): first unsealed seq is reported.
    let mut g = f.clone();
    let cp_idx = g
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t == file::FRAME_CHECKPOINT)
        .nth(4)
        .unwrap()
        .0; // the checkpoint at size 5000
    let l = g[cp_idx].1.len();
    g[cp_idx].1[l - 3] ^= 0x01;
    assert_eq!(first_bad(verify_log(&assemble(&g), &key, &[])).0, 4000);
}

/// Checkpoints far apart (the verifier then folds whole runs of entries into the tree as
/// subtrees hashed in parallel): checkpoints on and off those runs' boundaries, trusted
/// checkpoints inside and on them, and tampering inside a run are all handled exactly.
#[test]
fn sparse_checkpoints_verify_and_detect_tampering_inside_long_runs() {
    let dir = TempDir::new();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let key = signer.verifier();
    let path = dir.0.join("sparse.log");
    let mut w = AuditLogWriter::create(&path).unwrap();
    let mut cps = Vec::new();
    for i in 0..9_000u64 {
        w.append(&record(i, "main")).unwrap();
        // Sizes 2048 and 7168 are run boundaries, 4100 is not.
        if [2048, 4100, 7168].contains(&(i + 1)) {
            cps.push(
                w.checkpoint(&signer, UnixTime::from_secs(1_764_000_000))
                    .unwrap(),
            );
        }
    }
    w.sync().unwrap();
    drop(w);
    let bytes = std::fs::read(&path).unwrap();
    let v = verify_log(&bytes, &key, &cps).unwrap();
    assert_eq!(v.size(), 9_000);
    assert_eq!(v.checkpoints.len(), 3);
    assert_eq!(v.root(), merkle::root_of(&v.leaf_hashes));
    for (cp, size) in v.checkpoints.iter().zip([2048u64, 4100, 7168]) {
        assert_eq!(cp.tree_size, size);
        assert_eq!(cp.root, merkle::root_of(&v.leaf_hashes[..size as usize]));
    }
    let f = frames(&bytes);
    // Changed inside a whole run (5000..6144 holds no checkpoint): caught at the record.
    for seq in [5_000u64, 5_500, 6_143, 7_000] {
        let mut g = f.clone();
        let i = entry_index(&g, seq);
        let last = g[i].1.len() - 1;
        g[i].1[last] ^= 0x01;
        assert_eq!(
            first_bad(verify_log(&assemble(&g), &key, &[])).0,
            seq,
            "seq {seq}"
        );
    }
    // A consistent rewrite of a whole run (every later prev re-chained, CRCs fixed): only
    // the checkpoint at 7168 can catch it, and does.
    let mut g = f.clone();
    let mut prev = [0u8; 48];
    for (t, p) in g.iter_mut() {
        if *t != file::FRAME_ENTRY {
            continue;
        }
        let seq = u64::from_be_bytes(p[..8].try_into().unwrap());
        p[8..56].copy_from_slice(&prev);
        if seq == 5_200 {
            let mut forged = p[..56].to_vec();
            forged.extend_from_slice(&record(5_200, "forged").to_cbor().unwrap());
            *p = forged;
        }
        prev = merkle::leaf_hash(p);
    }
    let (seq, reason) = first_bad(verify_log(&assemble(&g), &key, &[]));
    assert_eq!(seq, 4_100, "{reason}");
    // Trusted checkpoints from another log that diverges at 3000: one inside a run (3500)
    // and one on a boundary (3072) both expose the fork.
    let other = dir.0.join("other.log");
    let mut w = AuditLogWriter::create(&other).unwrap();
    let mut trusted = Vec::new();
    for i in 0..4_000u64 {
        w.append(&record(i, if i >= 3_000 { "b" } else { "main" }))
            .unwrap();
        if [2048, 3072, 3500].contains(&(i + 1)) {
            trusted.push(
                w.checkpoint(&signer, UnixTime::from_secs(1_764_000_000))
                    .unwrap(),
            );
        }
    }
    drop(w);
    assert_eq!(first_bad(verify_log(&bytes, &key, &trusted[..2])).0, 2048);
    assert_eq!(
        first_bad(verify_log(
            &bytes,
            &key,
            &[trusted[0].clone(), trusted[2].clone()]
        ))
        .0,
        2048
    );
    assert!(verify_log(&bytes, &key, &trusted[..1]).is_ok());
}

#[test]
fn consistent_rewrites_are_caught_by_the_checkpoints() {
    let (_dir, signer, bytes, _) = setup();
    let key = signer.verifier();
    let f = frames(&bytes);
    // Insert at 5000 and renumber and re-chain everything after, as a careful attacker
    // without the TSM key would: only the checkpoints can tell.
    let mut entries: Vec<Vec<u8>> = f
        .iter()
        .filter(|(t, _)| *t == file::FRAME_ENTRY)
        .map(|(_, p)| p[56..].to_vec())
        .collect();
    entries.insert(5000, record(5000, "forged").to_cbor().unwrap());
    let mut g = Vec::new();
    let mut prev = [0u8; 48];
    let mut cps = f.iter().filter(|(t, _)| *t == file::FRAME_CHECKPOINT);
    for (seq, cbor) in entries.iter().enumerate() {
        let mut p = (seq as u64).to_be_bytes().to_vec();
        p.extend_from_slice(&prev);
        p.extend_from_slice(cbor);
        prev = merkle::leaf_hash(&p);
        g.push((file::FRAME_ENTRY, p));
        if (seq as u64 + 1) % EVERY == 0 {
            g.push(cps.next().unwrap().clone());
        }
    }
    let (seq, reason) = first_bad(verify_log(&assemble(&g), &key, &[]));
    assert_eq!(seq, 5000, "{reason}");
}

#[test]
fn truncated_tail_is_detected_against_the_last_checkpoint() {
    let (_dir, signer, bytes, cps) = setup();
    let key = signer.verifier();
    let f = frames(&bytes);
    // Cut after record 9989: the last ten records and the final checkpoint are gone.
    let cut = entry_index(&f, 9990);
    let g = assemble(&f[..cut]);
    // On its own the shorter log is consistent (nothing in it can tell) ...
    let v = verify_log(&g, &key, &[]).unwrap();
    assert_eq!(v.unsealed_from(), Some(9000));
    // ... but not with the checkpoint the auditor kept.
    let (seq, reason) = first_bad(verify_log(&g, &key, &cps[cps.len() - 1..]));
    assert_eq!(seq, 9990);
    assert!(reason.contains("truncated"), "{reason}");
}

#[test]
fn fork_between_two_checkpoints_is_detected() {
    let dir = TempDir::new();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let key = signer.verifier();
    // The auditor's copy: 6000 records and their checkpoints.
    let (old, old_cps) = build(&dir, "old.log", &signer, 6000, N, "main");
    // The TSM later presents a log that shares the first 5000 records, then diverges.
    let (new, _) = build(&dir, "new.log", &signer, N, 5000, "b");
    let (seq, reason) = first_bad(verify_log(&new, &key, &old_cps));
    assert_eq!(seq, 5000);
    assert!(reason.contains("fork"), "{reason}");
    let old_v = verify_log(&old, &key, &[]).unwrap();
    let new_v = verify_log(&new, &key, &[]).unwrap();
    assert_eq!(find_fork(&old_v, &new_v), Some(5000));

    // Diverging mid-interval: the checkpoints bound it, the archived copy pins it.
    let (new2, _) = build(&dir, "new2.log", &signer, N, 5500, "c");
    assert_eq!(first_bad(verify_log(&new2, &key, &old_cps)).0, 5000);
    let new2_v = verify_log(&new2, &key, &[]).unwrap();
    assert_eq!(find_fork(&old_v, &new2_v), Some(5500));

    // The two signed checkpoints at 6000 are not consistent: the consistency proof from the
    // new log does not link the old checkpoint's root.
    let old6000 = key.verify(&old_cps[5]).unwrap();
    let new_root_10000 = new_v.root();
    let proof = new_v.consistency_proof(6000, N).unwrap();
    assert!(merkle::verify_consistency(6000, N, &proof, &old6000.root, &new_root_10000).is_err());
}

#[test]
fn proofs_verify_against_checkpoints_and_fail_when_altered() {
    let (_dir, signer, bytes, cps) = setup();
    let key = signer.verifier();
    let v = verify_log(&bytes, &key, &[]).unwrap();
    let cp5 = key.verify(&cps[4]).unwrap();
    let cp8 = key.verify(&cps[7]).unwrap();
    assert_eq!(cp5.tree_size, 5000);

    let p = v.inclusion_proof(1234, cp5.tree_size).unwrap();
    let leaf = v.leaf_hashes[1234];
    merkle::verify_inclusion(&leaf, 1234, cp5.tree_size, &p, &cp5.root).unwrap();
    let mut bad = p.clone();
    bad[3][0] ^= 1;
    assert!(merkle::verify_inclusion(&leaf, 1234, cp5.tree_size, &bad, &cp5.root).is_err());
    assert!(merkle::verify_inclusion(&leaf, 1235, cp5.tree_size, &p, &cp5.root).is_err());
    let other = merkle::leaf_hash(b"not in the log");
    assert!(merkle::verify_inclusion(&other, 1234, cp5.tree_size, &p, &cp5.root).is_err());

    let c = v.consistency_proof(cp5.tree_size, cp8.tree_size).unwrap();
    merkle::verify_consistency(cp5.tree_size, cp8.tree_size, &c, &cp5.root, &cp8.root).unwrap();
    let mut bad = c.clone();
    bad[0][7] ^= 1;
    assert!(
        merkle::verify_consistency(cp5.tree_size, cp8.tree_size, &bad, &cp5.root, &cp8.root)
            .is_err()
    );
    assert!(
        merkle::verify_consistency(cp5.tree_size, cp8.tree_size, &c, &cp8.root, &cp5.root).is_err()
    );
}

#[test]
fn torn_tail_is_reported_and_truncated_by_the_writer() {
    let dir = TempDir::new();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let key = signer.verifier();
    let (bytes, _) = build(&dir, "audit.log", &signer, 2000, 2000, "main");
    let path = dir.0.join("audit.log");
    // A crash in the middle of writing record 2000.
    let mut frame = Vec::new();
    let mut p = 2000u64.to_be_bytes().to_vec();
    p.extend_from_slice(&[0; 48]);
    p.extend_from_slice(&record(2000, "main").to_cbor().unwrap());
    file::encode_frame(&mut frame, file::FRAME_ENTRY, &[&p]).unwrap();
    let mut torn = bytes.clone();
    torn.extend_from_slice(&frame[..frame.len() / 2]);
    std::fs::write(&path, &torn).unwrap();

    let v = verify_log(&torn, &key, &[]).unwrap();
    assert_eq!(v.size(), 2000);
    assert_eq!(v.torn_tail_bytes, frame.len() / 2);

    let (mut w, report) = AuditLogWriter::open(&path, &key).unwrap();
    assert_eq!(report.records, 2000);
    assert_eq!(report.truncated_bytes, frame.len() / 2);
    assert_eq!(w.append(&record(2000, "main")).unwrap(), 2000);
    let cp = w
        .checkpoint(&signer, UnixTime::from_secs(1_764_100_000))
        .unwrap();
    let after = std::fs::read(&path).unwrap();
    let v = verify_log(&after, &key, &[cp]).unwrap();
    assert_eq!(v.size(), 2001);
    assert_eq!(v.torn_tail_bytes, 0);

    // Garbage that is not a torn tail (a bad frame followed by more bytes) is refused.
    let mut bad = after.clone();
    let n = bad.len();
    bad[n - 30] ^= 0xFF;
    bad.extend_from_slice(&frame);
    std::fs::write(&path, &bad).unwrap();
    assert!(matches!(
        AuditLogWriter::open(&path, &key),
        Err(Error::Tampered { .. })
    ));
}

#[test]
fn wrong_key_header_and_version_are_refused() {
    let dir = TempDir::new();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let (other, _) = CheckpointSigner::generate().unwrap();
    let (bytes, _) = build(&dir, "audit.log", &signer, 1000, 1000, "main");
    assert_eq!(first_bad(verify_log(&bytes, &other.verifier(), &[])).0, 0);
    let mut b = bytes.clone();
    b[9] = 2;
    assert!(matches!(
        verify_log(&b, &signer.verifier(), &[]),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    let mut b = bytes.clone();
    b[0] = b'X';
    assert!(matches!(
        verify_log(&b, &signer.verifier(), &[]),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn open_or_create_starts_empty_then_resumes() {
    let dir = TempDir::new();
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let key = signer.verifier();
    let path = dir.0.join("audit.log");
    let (mut w, r) = AuditLogWriter::open_or_create(&path, &key).unwrap();
    assert_eq!(r.records, 0);
    w.append(&record(0, "main")).unwrap();
    w.checkpoint(&signer, UnixTime::from_secs(1)).unwrap();
    drop(w);
    let (mut w, r) = AuditLogWriter::open_or_create(&path, &key).unwrap();
    assert_eq!(r.records, 1);
    assert_eq!(w.append(&record(1, "main")).unwrap(), 1);
    // A checkpoint earlier than the last one is refused.
    assert!(matches!(
        w.checkpoint(&signer, UnixTime::from_secs(0)),
        Err(Error::ApiMisuse { .. })
    ));
    w.checkpoint(&signer, UnixTime::from_secs(2)).unwrap();
    let v = verify_log(&std::fs::read(&path).unwrap(), &key, &[]).unwrap();
    assert_eq!(v.size(), 2);
    assert_eq!(v.checkpoints.len(), 2);
}

/// A group of records made durable together: the sequence numbers come back as a range, and
/// what is on disk when the call returns (read through a separate handle, as after a crash
/// with the page cache intact) holds them all, in order, verifiable once sealed. A log larger
/// than the writer's 1 MiB buffer exercises the early-writeback path as well.
#[test]
fn append_all_durable_groups_records_under_one_sync() {
    let dir = TempDir::new();
    let path = dir.0.join("audit.log");
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let mut w = AuditLogWriter::create(&path).unwrap();
    let first: Vec<AuditRecord> = (0..3).map(|i| record(i, "a")).collect();
    assert_eq!(w.append_all_durable(&first).unwrap(), 0..3);
    let on_disk = std::fs::read(&path).unwrap();
    let mut offset = file::HEADER_LEN;
    let mut entries = 0;
    while let Ok(Next::Frame(f)) = file::next_frame(&on_disk, offset) {
        offset = f.frame.end;
        entries += 1;
    }
    assert_eq!(
        (entries, offset),
        (3, on_disk.len()),
        "all three written, whole"
    );
    let many: Vec<AuditRecord> = (3..4_000).map(|i| record(i, "a")).collect();
    assert_eq!(w.append_all_durable(&many).unwrap(), 3..4_000);
    assert!(std::fs::metadata(&path).unwrap().len() > 1 << 20);
    w.checkpoint(&signer, UnixTime::from_secs(1_764_010_000))
        .unwrap();
    drop(w);
    let v = verify_log(&std::fs::read(&path).unwrap(), &signer.verifier(), &[]).unwrap();
    assert_eq!(v.size(), 4_000);
    assert_eq!(v.unsealed_from(), None);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(v.record(&bytes, 3_999).unwrap(), record(3_999, "a"));
}

/// Eight threads each append 40 records durably through one shared log: every record gets
/// a distinct sequence number, the log verifies with all 320 in it, and group commit made
/// fewer fsyncs than records (records appended while an fsync ran share the next one).
#[test]
fn shared_log_group_commits_concurrent_durable_appends() {
    use ualink_attest::audit::SharedAuditLog;
    let dir = TempDir::new();
    let path = dir.0.join("audit.log");
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let log = SharedAuditLog::new(AuditLogWriter::create(&path).unwrap()).unwrap();
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                (0..40u64)
                    .map(|i| log.append_durable(&record(t * 1000 + i, "a")).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..320).collect::<Vec<u64>>());
    let syncs = log.syncs();
    assert!((1..320).contains(&syncs), "{syncs} fsyncs for 320 records");
    log.checkpoint(&signer, UnixTime::from_secs(1_764_010_000))
        .unwrap();
    drop(log);
    let v = verify_log(&std::fs::read(&path).unwrap(), &signer.verifier(), &[]).unwrap();
    assert_eq!(v.size(), 320);
}
