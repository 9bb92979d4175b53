//! Benchmarks for issue #4 §5:
//! - audit log append and full verification of 100,000 records, against raw SHA-384 over
//!   the same bytes in the same run (target: each >= 0.5x of raw SHA-384 throughput);
//! - verification of one SNP report with its chain, against the signature verifications
//!   alone (the crypto floor).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ring::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_FIXED, RSA_PSS_2048_8192_SHA384};
use std::hint::black_box;
use ualink_attest::audit::{
    verify_log, AuditLogWriter, AuditRecord, CheckpointSigner, DecisionKind, Digest384, Outcome,
    SharedAuditLog,
};
use ualink_attest::snp::{SnpCerts, SnpVerifier};
use ualink_attest::{ExpectedReportData, UnixTime};

const RECORDS: u64 = 100_000;

fn record(i: u64) -> AuditRecord {
    AuditRecord::new(
        UnixTime::from_secs(1_764_000_000 + i as i64),
        DecisionKind::Share,
        &format!("grant-{i}"),
        Outcome::Allow,
    )
    .unwrap()
    .with_input("request", Digest384::of(&i.to_be_bytes()))
    .unwrap()
    .with_input("tdi-report", Digest384::of(&(i + 1).to_be_bytes()))
    .unwrap()
    .with_key_fingerprint("tenant-key", Digest384::of(b"tenant spki"))
    .unwrap()
    .with_policy(Digest384::of(b"policy bundle v1"))
    .with_rule("share.allow_same_tenant")
    .unwrap()
    .with_reason("both TDIs RUN with fresh attestation; policy allows tenant a -> b read")
    .unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ualink-attest-bench-{}-{name}", std::process::id()))
}

fn write_log(records: &[AuditRecord], signer: &CheckpointSigner, path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let mut w = AuditLogWriter::create(path).unwrap();
    for (i, r) in records.iter().enumerate() {
        w.append(r).unwrap();
        if (i + 1) % 10_000 == 0 {
            w.checkpoint(signer, UnixTime::from_secs(1_764_000_000))
                .unwrap();
        }
    }
    w.sync().unwrap();
}

fn audit(c: &mut Criterion) {
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let key = signer.verifier();
    let records: Vec<AuditRecord> = (0..RECORDS).map(record).collect();
    let path = tmp("audit.log");
    write_log(&records, &signer, &path);
    let bytes = std::fs::read(&path).unwrap();

    let mut g = c.benchmark_group("audit_100k");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("raw_sha384_same_bytes", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA384, black_box(&bytes)))
    });
    // The SHA-384 work any append or verification must do: each entry's leaf hash and the
    // RFC 9162 node hashes (CompactTree), over the same entries, nothing else.
    let payloads: Vec<std::ops::Range<usize>> = {
        use ualink_attest::audit::file::{next_frame, Next, FRAME_ENTRY, HEADER_LEN};
        let mut v = Vec::new();
        let mut off = HEADER_LEN;
        while let Next::Frame(f) = next_frame(&bytes, off).unwrap() {
            off = f.frame.end;
            if f.frame_type == FRAME_ENTRY {
                v.push(f.payload);
            }
        }
        v
    };
    g.bench_function("merkle_hashing_floor", |b| {
        b.iter(|| {
            let mut t = ualink_attest::audit::merkle::CompactTree::new();
            for p in &payloads {
                t.push(ualink_attest::audit::merkle::leaf_hash(&bytes[p.clone()]));
            }
            black_box(t.root())
        })
    });
    g.bench_function("verify_full", |b| {
        b.iter(|| verify_log(black_box(&bytes), &key, &[]).unwrap())
    });
    // The same on tmpfs, where fsync is free: the CPU cost of appending.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        g.bench_function("append_with_checkpoints_tmpfs", |b| {
            let p = shm.join(format!("ualink-attest-bench-{}.log", std::process::id()));
            b.iter_batched(
                || {
                    let _ = std::fs::remove_file(&p);
                },
                |_| write_log(&records, &signer, &p),
                BatchSize::PerIteration,
            );
            let _ = std::fs::remove_file(&p);
        });
    }
    g.bench_function("append_with_checkpoints_and_fsync", |b| {
        let p = tmp("append.log");
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&p);
            },
            |_| write_log(&records, &signer, &p),
            BatchSize::PerIteration,
        );
        let _ = std::fs::remove_file(&p);
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

fn snp(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/snp/");
    let report = hex::decode(
        std::fs::read_to_string(format!("{dir}report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let vcek = std::fs::read(format!("{dir}vcek_milan.der")).unwrap();
    let certs = SnpCerts::leaf_only(&vcek);
    let verifier = SnpVerifier::amd().unwrap();
    let now = UnixTime::from_secs(1_748_736_000);

    // The crypto floor: the three signature verifications the chain and report need.
    let ask_der = ualink_attest::pki::certs_from_pem_or_der(sev::certs::snp::builtin::milan::ASK)
        .unwrap()
        .remove(0);
    let ark_der = ualink_attest::pki::certs_from_pem_or_der(sev::certs::snp::builtin::milan::ARK)
        .unwrap()
        .remove(0);
    let (_, vcek_x) = x509_parser::parse_x509_certificate(&vcek).unwrap();
    let (_, ask_x) = x509_parser::parse_x509_certificate(&ask_der).unwrap();
    let (_, ark_x) = x509_parser::parse_x509_certificate(&ark_der).unwrap();
    let vcek_tbs = vcek_x.tbs_certificate.as_ref().to_vec();
    let vcek_sig = vcek_x.signature_value.data.to_vec();
    let ask_tbs = ask_x.tbs_certificate.as_ref().to_vec();
    let ask_sig = ask_x.signature_value.data.to_vec();
    let ask_key = ask_x.public_key().subject_public_key.data.to_vec();
    let ark_key = ark_x.public_key().subject_public_key.data.to_vec();
    let vcek_key = vcek_x.public_key().subject_public_key.data.to_vec();
    let mut sig = [0u8; 96];
    for (d, s) in sig[..48]
        .iter_mut()
        .zip(report[0x2A0..0x2A0 + 48].iter().rev())
    {
        *d = *s;
    }
    for (d, s) in sig[48..]
        .iter_mut()
        .zip(report[0x2A0 + 72..0x2A0 + 120].iter().rev())
    {
        *d = *s;
    }

    let mut g = c.benchmark_group("snp_milan");
    g.bench_function("verify_report_and_chain", |b| {
        b.iter(|| {
            verifier
                .verify(
                    black_box(&report),
                    &certs,
                    &ExpectedReportData::NotProvided,
                    now,
                )
                .unwrap()
        })
    });
    g.bench_function("signatures_only_floor", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, &ark_key)
                .verify(&ask_tbs, &ask_sig)
                .unwrap();
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA384, &ask_key)
                .verify(&vcek_tbs, &vcek_sig)
                .unwrap();
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &vcek_key)
                .verify(black_box(&report[..0x2A0]), &sig)
                .unwrap();
        })
    });
    g.finish();
}

/// Durable appends as a TSM makes them (each record acknowledged after its fsync) against
/// group commit (64 records, one fdatasync): records per second, same run.
fn durable(c: &mut Criterion) {
    const N: u64 = 256;
    let records: Vec<AuditRecord> = (0..N).map(record).collect();
    let mut g = c.benchmark_group("audit_durable_256");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N));
    let p = tmp("durable.log");
    g.bench_function("fsync_per_record", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&p);
                AuditLogWriter::create(&p).unwrap()
            },
            |mut w| {
                for r in &records {
                    w.append(r).unwrap();
                    w.sync().unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("group_commit_64", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&p);
                AuditLogWriter::create(&p).unwrap()
            },
            |mut w| {
                for chunk in records.chunks(64) {
                    w.append_all_durable(chunk).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("shared_8_threads_append_durable", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&p);
                SharedAuditLog::new(AuditLogWriter::create(&p).unwrap()).unwrap()
            },
            |log| {
                let per = records.len() / 8;
                std::thread::scope(|s| {
                    for chunk in records.chunks(per) {
                        let log = log.clone();
                        s.spawn(move || {
                            for r in chunk {
                                log.append_durable(r).unwrap();
                            }
                        });
                    }
                });
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = std::fs::remove_file(&p);
}

criterion_group!(benches, audit, durable, snp);
criterion_main!(benches);
