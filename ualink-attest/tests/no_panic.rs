//! Property tests: no input reaches a panic in any parser or verifier, and mutated evidence is
//! never accepted as the original.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ualink_attest::audit::{verify_log, AuditRecord, CheckpointSigner};
use ualink_attest::snp::{SnpCerts, SnpReport, SnpVerifier};
use ualink_attest::tdx::{verify_quote, TdxCollateral};
use ualink_attest::{ExpectedReportData, UnixTime};

fn data(p: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn milan() -> Vec<u8> {
    hex::decode(
        String::from_utf8(data("snp/report_milan.hex"))
            .unwrap()
            .trim(),
    )
    .unwrap()
}

/// Up to 8 (offset, xor) mutations, or a truncation/extension.
fn mutate(base: &[u8], edits: &[(usize, u8)], resize: Option<usize>) -> Vec<u8> {
    let mut b = base.to_vec();
    for (off, x) in edits {
        if !b.is_empty() {
            let i = off % b.len();
            b[i] ^= x;
        }
    }
    if let Some(n) = resize {
        b.resize(n % (base.len() + 64), 0xA5);
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn snp_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1300)) {
        let _ = SnpReport::parse(&bytes);
    }

    #[test]
    fn mutated_snp_reports_never_verify(
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..8),
        resize in proptest::option::of(any::<usize>()),
    ) {
        let base = milan();
        let m = mutate(&base, &edits, resize);
        prop_assume!(m != base);
        let r = SnpVerifier::amd().unwrap().verify(
            &m,
            &SnpCerts::leaf_only(&data("snp/vcek_milan.der")),
            &ExpectedReportData::NotProvided,
            UnixTime::from_secs(1_748_736_000),
        );
        prop_assert!(r.is_err());
    }

    #[test]
    fn mutated_tdx_quotes_never_verify(
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
        resize in proptest::option::of(any::<usize>()),
    ) {
        let base = ualink_attest::tdx::trim_zero_padding(&data("tdx/tdx_quote")).unwrap().to_vec();
        // Anywhere, the PEM certificate chain included: it must be canonical (tdx.rs).
        let m = mutate(&base, &edits, resize);
        prop_assume!(m != base);
        let c = TdxCollateral::from_json(&data("tdx/tdx_quote_collateral.json")).unwrap();
        let r = verify_quote(&m, &c, &ExpectedReportData::NotProvided, UnixTime::from_secs(1_750_331_763));
        prop_assert!(r.is_err());
    }

    #[test]
    fn record_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = AuditRecord::from_cbor(&bytes);
    }

    /// Records with events: byte edits never panic the decoder, and whatever decodes
    /// re-encodes to bytes that decode to the same record.
    #[test]
    fn mutated_event_records_never_panic_and_decode_canonically(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        resize in proptest::option::of(0usize..400),
    ) {
        use ualink_attest::audit::event::{AuditEvent, Bytes, LinkEnd, ShareParty};
        use ualink_attest::audit::{DecisionKind, Digest384, Outcome};
        let t = ualink_attest::UnixTime::from_secs(1_800_000_000);
        let party = |x: &str| ShareParty { tenant_id: x.into(), os_instance: "vm".into(), accelerator_id: 3 };
        let base = AuditRecord::new(t, DecisionKind::Share, "grant-1", Outcome::Allow)
            .unwrap()
            .with_policy(Digest384::of(b"bundle"))
            .with_event(AuditEvent::ShareAllowed {
                grant_id: "grant-1".into(),
                exporter: party("a"),
                importer: party("b"),
                rights: vec!["read".into()],
            })
            .to_cbor()
            .unwrap();
        let other = AuditRecord::new(t, DecisionKind::KeyRotation, "l", Outcome::Info)
            .unwrap()
            .with_event(AuditEvent::KeysRotated {
                tx: LinkEnd { accelerator_id: 1, port: 0 },
                rx: LinkEnd { accelerator_id: 2, port: 0 },
                previous_epoch: 1,
                epoch: 2,
                key_fingerprint: Digest384::of(b"k"),
            })
            .with_event(AuditEvent::DeviceQuarantined {
                device_id: "d".into(),
                accelerator_id: 1,
                cause: "c".into(),
                evidence: Some(Bytes(vec![1, 2, 3])),
            })
            .to_cbor()
            .unwrap();
        for b in [&base, &other] {
            let m = mutate(b, &edits, resize);
            if let Ok(r) = AuditRecord::from_cbor(&m) {
                prop_assert_eq!(AuditRecord::from_cbor(&r.to_cbor().unwrap()).unwrap(), r);
            }
        }
    }
}

#[test]
fn mutated_audit_logs_never_panic_and_never_verify_as_the_original() {
    let dir = std::env::temp_dir().join(format!("ualink-attest-np-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.log");
    let _ = std::fs::remove_file(&path);
    let (signer, _) = CheckpointSigner::generate().unwrap();
    let mut w = ualink_attest::audit::AuditLogWriter::create(&path).unwrap();
    for i in 0..40u64 {
        let r = AuditRecord::new(
            UnixTime::from_secs(i as i64),
            ualink_attest::audit::DecisionKind::Share,
            &format!("g{i}"),
            ualink_attest::audit::Outcome::Allow,
        )
        .unwrap();
        w.append(&r).unwrap();
        if i % 10 == 9 {
            w.checkpoint(&signer, UnixTime::from_secs(i as i64))
                .unwrap();
        }
    }
    let base = std::fs::read(&path).unwrap();
    let key = signer.verifier();
    let good = verify_log(&base, &key, &[]).unwrap();
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &(
                proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
                proptest::option::of(any::<usize>()),
            ),
            |(edits, resize)| {
                let m = mutate(&base, &edits, resize);
                if m == base {
                    return Ok(());
                }
                if let Ok(v) = verify_log(&m, &key, &[]) {
                    // Only a shorter prefix (a torn or cut tail) may still verify, and it
                    // then holds a prefix of the original records.
                    prop_assert!(v.leaf_hashes.len() <= good.leaf_hashes.len());
                    prop_assert_eq!(&v.leaf_hashes[..], &good.leaf_hashes[..v.leaf_hashes.len()]);
                }
                Ok(())
            },
        )
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
