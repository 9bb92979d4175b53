//! SEV-SNP verification with real AMD-signed reports (see tests/data/snp/ORIGIN.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_attest::pki::{certs_from_pem_or_der, AmdGeneration, AnchorOrigin, TrustAnchors};
use ualink_attest::snp::{SigningKey, SnpCerts, SnpReport, SnpVerifier};
use ualink_attest::{Error, ExpectedReportData, UnixTime};

/// 2025-06-01T00:00:00Z: inside the validity of every certificate in the vectors (the VLEK
/// expires 2025-12-10).
const NOW: UnixTime = UnixTime::from_secs(1_748_736_000);

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/snp/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn milan_report() -> Vec<u8> {
    hex::decode(String::from_utf8(data("report_milan.hex")).unwrap().trim()).unwrap()
}

fn amd() -> SnpVerifier {
    SnpVerifier::amd().unwrap()
}

fn vlek_certs() -> SnpCerts {
    // milan_ask_ark_asvk.pem holds ASK, ARK, ASVK; the ARK in it is ignored (roots come only
    // from the anchors).
    SnpCerts {
        leaf: data("test-vlek.der"),
        intermediates: certs_from_pem_or_der(&data("milan_ask_ark_asvk.pem")).unwrap(),
    }
}

#[test]
fn milan_report_verifies_with_builtin_ask() {
    let v = amd()
        .verify(
            &milan_report(),
            &SnpCerts::leaf_only(&data("vcek_milan.der")),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap();
    assert_eq!(v.signer, SigningKey::Vcek);
    assert_eq!(v.root, AnchorOrigin::AmdBuiltin(AmdGeneration::Milan));
    assert!(v.chip_id_checked);
    assert!(!v.report_data_checked);
    assert_eq!(v.report.version, 2);
}

#[test]
fn trustee_v2_report_verifies_and_binds_report_data() {
    let report = data("test-report.bin");
    let mut rd = [0u8; 64];
    rd.copy_from_slice(&report[0x50..0x90]);
    let v = amd()
        .verify(
            &report,
            &SnpCerts::leaf_only(&data("test-vcek.der")),
            &ExpectedReportData::Expected(rd),
            NOW,
        )
        .unwrap();
    assert!(v.report_data_checked);
    assert_eq!(v.report.reported_tcb.snp, 8);
    assert_eq!(v.report.reported_tcb.microcode, 0x73);
}

#[test]
fn trustee_v3_vlek_report_verifies_through_asvk() {
    let v = amd()
        .verify(
            &data("test-vlek-report.bin"),
            &vlek_certs(),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap();
    assert_eq!(v.signer, SigningKey::Vlek);
    assert_eq!(v.report.version, 3);
    assert!(v.intermediate.contains("SEV-VLEK-Milan"));
    assert!(!v.chip_id_checked);
}

/// Trustee's two "invalid" VCEKs carry TCB extensions that differ from the report's
/// reported_tcb. They are also not validly signed by the Milan ASK (checked with
/// `openssl verify` too), so full verification refuses them at the chain; the cross-check on
/// its own names the TCB mismatch.
#[test]
fn vcek_for_other_tcb_is_refused_with_tcb_mismatch() {
    let report = SnpReport::parse(&data("test-report.bin")).unwrap();
    for name in ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"] {
        let err = ualink_attest::snp::check_leaf_binding(&report, &data(name)).unwrap_err();
        assert!(matches!(err, Error::TcbMismatch { .. }), "{name}: {err}");
        let err = amd()
            .verify(
                &data("test-report.bin"),
                &SnpCerts::leaf_only(&data(name)),
                &ExpectedReportData::NotProvided,
                NOW,
            )
            .unwrap_err();
        assert!(matches!(err, Error::ChainInvalid { .. }), "{name}: {err}");
    }
    // The genuine VCEK passes the same cross-check.
    let kind = ualink_attest::snp::check_leaf_binding(&report, &data("test-vcek.der")).unwrap();
    assert_eq!(kind, SigningKey::Vcek);
}

#[test]
fn reports_round_trip_through_the_codec() {
    for bytes in [
        milan_report(),
        data("test-report.bin"),
        data("test-vlek-report.bin"),
    ] {
        let r = SnpReport::parse(&bytes).unwrap();
        assert_eq!(r.encode(), bytes);
    }
}

fn verify_milan(bytes: &[u8]) -> Error {
    amd()
        .verify(
            bytes,
            &SnpCerts::leaf_only(&data("vcek_milan.der")),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap_err()
}

#[test]
fn flipped_signature_bit_is_bad_signature() {
    let mut r = milan_report();
    r[0x2A0 + 5] ^= 0x01;
    assert!(matches!(verify_milan(&r), Error::BadSignature { .. }));
}

#[test]
fn flipped_measurement_bit_is_bad_signature() {
    let mut r = milan_report();
    r[0x90] ^= 0x80;
    assert!(matches!(verify_milan(&r), Error::BadSignature { .. }));
}

#[test]
fn unknown_versions_fail_closed() {
    for v in [0u32, 1, 4, 6, 0xFFFF_FFFF] {
        let mut r = milan_report();
        r[..4].copy_from_slice(&v.to_le_bytes());
        assert_eq!(
            verify_milan(&r),
            Error::UnsupportedVersion {
                what: "SNP attestation report",
                version: v
            }
        );
    }
}

#[test]
fn truncated_and_trailing_bytes_are_malformed() {
    let r = milan_report();
    for cut in [0, 3, 4, 0x2A0, r.len() - 1] {
        assert!(
            matches!(verify_milan(&r[..cut]), Error::Malformed { .. }),
            "cut {cut}"
        );
    }
    let mut long = r.clone();
    long.push(0);
    let e = verify_milan(&long);
    assert!(matches!(&e, Error::Malformed { reason, .. } if reason.contains("trailing")));
}

#[test]
fn chip_id_change_is_chip_id_mismatch() {
    let mut r = milan_report();
    r[0x1A0] ^= 1;
    assert_eq!(verify_milan(&r), Error::ChipIdMismatch);
}

#[test]
fn reported_tcb_change_is_tcb_mismatch() {
    let mut r = milan_report();
    r[0x186] ^= 1; // snpSPL in the Milan layout
    assert!(matches!(
        verify_milan(&r),
        Error::TcbMismatch {
            component: "snpSPL (1.3.6.1.4.1.3704.1.3.3)",
            ..
        }
    ));
}

#[test]
fn signing_key_field_must_match_certificate_kind() {
    let mut r = milan_report();
    r[0x48] = 1 << 2; // claims VLEK
    assert!(matches!(
        verify_milan(&r),
        Error::KeyKindMismatch {
            report: "VLEK",
            cert: "VCEK"
        }
    ));
}

#[test]
fn reserved_bytes_and_sig_algo_are_checked() {
    let mut r = milan_report();
    r[0x4C] = 1;
    assert!(matches!(verify_milan(&r), Error::Malformed { .. }));
    let mut r = milan_report();
    r[0x34] = 2;
    assert!(matches!(
        verify_milan(&r),
        Error::UnsupportedAlgorithm { .. }
    ));
    let mut r = milan_report();
    r[0x2A0 + 60] = 1; // above bit 383 of R
    assert!(matches!(verify_milan(&r), Error::Malformed { .. }));
}

#[test]
fn wrong_report_data_is_binding_mismatch() {
    let e = amd()
        .verify(
            &milan_report(),
            &SnpCerts::leaf_only(&data("vcek_milan.der")),
            &ExpectedReportData::Expected([0u8; 64]),
            NOW,
        )
        .unwrap_err();
    assert_eq!(
        e,
        Error::BindingMismatch {
            field: "report_data"
        }
    );
}

#[test]
fn wrong_root_is_untrusted() {
    // The ASK is supplied, but only a different root (Genoa's ARK) is trusted.
    let genoa_only = TrustAnchors::empty()
        .with_explicit_roots_pem(sev::certs::snp::builtin::genoa::ARK)
        .unwrap();
    let certs = SnpCerts {
        leaf: data("vcek_milan.der"),
        intermediates: certs_from_pem_or_der(sev::certs::snp::builtin::milan::ASK).unwrap(),
    };
    let e = SnpVerifier::new(genoa_only)
        .verify(
            &milan_report(),
            &certs,
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
}

#[test]
fn missing_intermediate_is_chain_invalid() {
    let e = SnpVerifier::new(TrustAnchors::empty())
        .verify(
            &milan_report(),
            &SnpCerts::leaf_only(&data("vcek_milan.der")),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, Error::ChainInvalid { .. }), "{e}");
}

#[test]
fn expired_leaf_is_expired() {
    // The VLEK expired on 2025-12-10.
    let e = amd()
        .verify(
            &data("test-vlek-report.bin"),
            &vlek_certs(),
            &ExpectedReportData::NotProvided,
            UnixTime::from_secs(1_767_225_600), // 2026-01-01
        )
        .unwrap_err();
    assert!(matches!(e, Error::Expired { .. }), "{e}");
}

#[test]
fn vcek_signed_by_wrong_ask_is_chain_invalid() {
    // Present the VCEK with the ASVK only (the name differs: no issuer) and with a tampered
    // certificate (signature no longer verifies).
    let mut leaf = data("vcek_milan.der");
    let n = leaf.len();
    leaf[n - 10] ^= 1; // inside the signature value
    let e = amd()
        .verify(
            &milan_report(),
            &SnpCerts::leaf_only(&leaf),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, Error::ChainInvalid { .. }), "{e}");
}

#[test]
fn vlek_report_with_vcek_is_refused() {
    let e = amd()
        .verify(
            &data("test-vlek-report.bin"),
            &SnpCerts::leaf_only(&data("test-vcek.der")),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, Error::KeyKindMismatch { .. }), "{e}");
}

#[test]
fn a_ca_certificate_is_not_accepted_as_the_signing_key() {
    let ask = certs_from_pem_or_der(sev::certs::snp::builtin::milan::ASK).unwrap();
    let e = amd()
        .verify(
            &milan_report(),
            &SnpCerts::leaf_only(&ask[0]),
            &ExpectedReportData::NotProvided,
            NOW,
        )
        .unwrap_err();
    assert!(matches!(e, Error::ChainInvalid { .. }), "{e}");
}

/// Turin: the VCEK chains to the built-in Turin ARK, and the Turin TCB layout and 8-byte hwID
/// are what the cross-check compares (on a report synthesised from the VCEK's extensions,
/// since no public Turin report is at hand).
#[test]
fn turin_vcek_chain_and_turin_tcb_layout() {
    let vcek = data("vcek_turin.der");
    let s = ualink_attest::pki::verify_leaf_chain(
        &vcek,
        &certs_from_pem_or_der(&data("cert_chain_turin")).unwrap(),
        &TrustAnchors::amd_builtin().unwrap(),
        NOW,
    )
    .unwrap();
    assert_eq!(s.origin, AnchorOrigin::AmdBuiltin(AmdGeneration::Turin));
    // Without the chain file the built-in Turin ASK is used.
    ualink_attest::pki::verify_leaf_chain(&vcek, &[], &TrustAnchors::amd_builtin().unwrap(), NOW)
        .unwrap();

    // A v3 report from family 0x1A: TCB bytes [fmc, bl, tee, snp, 0, 0, 0, ucode].
    let mut r = SnpReport::parse(&data("test-vlek-report.bin")).unwrap();
    r.signing_key = SigningKey::Vcek;
    r.cpuid = Some(ualink_attest::snp::report::Cpuid {
        family: 0x1A,
        model: 0x02,
        stepping: 0,
    });
    let tcb = |fmc: u8, ucode: u8| {
        ualink_attest::snp::TcbVersion::decode(
            u64::from_le_bytes([fmc, 0, 0, 0, 0, 0, 0, ucode]),
            ualink_attest::snp::TcbLayout::Turin,
        )
    };
    r.reported_tcb = tcb(0, 9);
    r.chip_id = [0; 64];
    r.chip_id[..8].copy_from_slice(&hex::decode("1E550A8EE5CF9F4D").unwrap());
    let reparsed = SnpReport::parse(&r.encode()).unwrap();
    assert_eq!(reparsed.reported_tcb.fmc, Some(0));
    assert_eq!(
        ualink_attest::snp::check_leaf_binding(&reparsed, &vcek).unwrap(),
        SigningKey::Vcek
    );
    r.reported_tcb = tcb(1, 9);
    let e = ualink_attest::snp::check_leaf_binding(&r, &vcek).unwrap_err();
    assert!(
        matches!(
            e,
            Error::TcbMismatch {
                component: "fmcSPL (1.3.6.1.4.1.3704.1.3.9)",
                ..
            }
        ),
        "{e}"
    );
    r.reported_tcb = tcb(0, 9);
    r.chip_id[0] ^= 1;
    assert_eq!(
        ualink_attest::snp::check_leaf_binding(&r, &vcek).unwrap_err(),
        Error::ChipIdMismatch
    );
}

/// Every single-bit change anywhere in a real chain's certificates (the Milan VCEK and ASK,
/// with only the Milan ARK trusted and no built-in intermediates to fall back on) is refused:
/// the signed TBS by its signature, the unsigned outer layer (lengths, tags, the outer
/// signatureAlgorithm, the BIT STRING's unused-bits byte) by the exact-DER check.
#[test]
fn every_bit_flip_in_a_real_chain_is_refused() {
    let pem = certs_from_pem_or_der(&data("milan_ask_ark_asvk.pem")).unwrap();
    let (ask, ark) = (pem[0].clone(), pem[1].clone());
    let anchors = TrustAnchors::empty().with_explicit_root_der(&ark).unwrap();
    let vcek = data("vcek_milan.der");
    let check = |leaf: &[u8], ask: &[u8]| {
        ualink_attest::pki::verify_leaf_chain(leaf, &[ask.to_vec()], &anchors, NOW)
    };
    check(&vcek, &ask).unwrap();
    let mut flips = 0usize;
    for (which, cert) in [("vcek", &vcek), ("ask", &ask)] {
        for bit in 0..cert.len() * 8 {
            let mut c = cert.clone();
            c[bit / 8] ^= 1 << (bit % 8);
            let r = if which == "vcek" {
                check(&c, &ask)
            } else {
                check(&vcek, &c)
            };
            assert!(
                r.is_err(),
                "{which} bit {bit} (byte {:#x}) accepted",
                bit / 8
            );
            flips += 1;
        }
    }
    assert_eq!(flips, (vcek.len() + ask.len()) * 8);
}

/// A wrong tag on the outer signatureAlgorithm OID (which x509-parser alone accepts) is
/// refused as malformed, naming the outer layer.
#[test]
fn outer_algorithm_with_another_tag_is_malformed() {
    let vcek = data("vcek_milan.der");
    // Outer: 30 82 LL LL | tbs 30 82 LL LL ... | sigalg 30 LL 06 09 ... — find the second
    // occurrence of the RSA-PSS algorithm identifier (the first is inside the TBS).
    let tbs_len = usize::from(u16::from_be_bytes([vcek[6], vcek[7]])) + 4;
    let alg_at = 4 + tbs_len;
    assert_eq!(vcek[alg_at], 0x30);
    assert_eq!(vcek[alg_at + 2], 0x06);
    let mut c = vcek.clone();
    c[alg_at + 2] = 0x86; // [6] IMPLICIT instead of OBJECT IDENTIFIER
    let e =
        ualink_attest::pki::verify_leaf_chain(&c, &[], &TrustAnchors::amd_builtin().unwrap(), NOW)
            .unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
    assert!(e.to_string().contains("outer layer"), "{e}");
}
