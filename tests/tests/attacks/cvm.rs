//! CVM evidence attacked at the verifier the TSM uses (ualink-attest's SNP path, with the sim
//! platform as its root): another CVM's report replayed, a report from a platform the
//! verifier does not trust, a report edited after signing, and sim evidence offered where only
//! real AMD roots are trusted.

use ualink_attest::sim::SimPlatform;
use ualink_attest::snp::SnpVerifier;
use ualink_attest::{Error, ErrorClass, ExpectedReportData, UnixTime};

fn report_data(key: &[u8]) -> [u8; 64] {
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(ring::digest::digest(&ring::digest::SHA384, key).as_ref());
    rd
}

/// CVM X's genuine report (bound to X's key) presented by CVM Y: the signature and chain are
/// fine; the binding to Y's key is not.
#[test]
fn cvm_presenting_another_cvms_evidence_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = SimPlatform::load_or_create(dir.path()).unwrap();
    let x = p.report(&report_data(b"cvm-x tee-pubkey")).unwrap();
    let v = SnpVerifier::new(p.trust_anchors().unwrap());
    // X's own presentation verifies.
    v.verify(
        &x,
        &p.certs(),
        &ExpectedReportData::Expected(report_data(b"cvm-x tee-pubkey")),
        UnixTime::now(),
    )
    .unwrap();
    let e = v
        .verify(
            &x,
            &p.certs(),
            &ExpectedReportData::Expected(report_data(b"cvm-y tee-pubkey")),
            UnixTime::now(),
        )
        .unwrap_err();
    assert_eq!(
        e,
        Error::BindingMismatch {
            field: "report_data"
        }
    );
    assert_eq!(e.class(), ErrorClass::Binding);
}

/// A report signed by a platform whose root the verifier was not given.
#[test]
fn cvm_report_from_an_untrusted_platform_is_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let trusted = SimPlatform::load_or_create(d1.path()).unwrap();
    let rogue = SimPlatform::load_or_create(d2.path()).unwrap();
    let rd = report_data(b"k");
    let r = rogue.report(&rd).unwrap();
    let e = SnpVerifier::new(trusted.trust_anchors().unwrap())
        .verify(
            &r,
            &rogue.certs(),
            &ExpectedReportData::Expected(rd),
            UnixTime::now(),
        )
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Trust, "{e}");
}

/// One byte of the launch measurement changed after signing.
#[test]
fn cvm_report_edited_after_signing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = SimPlatform::load_or_create(dir.path()).unwrap();
    let rd = report_data(b"k");
    let mut r = p.report(&rd).unwrap();
    // MEASUREMENT is at offset 0x90 in the SNP report.
    r[0x90] ^= 0x01;
    let e = SnpVerifier::new(p.trust_anchors().unwrap())
        .verify(
            &r,
            &p.certs(),
            &ExpectedReportData::Expected(rd),
            UnixTime::now(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::BadSignature { .. }), "{e}");
}

/// Sim evidence is refused by a verifier that trusts only the AMD roots built in (what the
/// TSM uses outside tests and demos).
#[test]
fn sim_cvm_evidence_is_refused_under_the_real_amd_roots() {
    let dir = tempfile::tempdir().unwrap();
    let p = SimPlatform::load_or_create(dir.path()).unwrap();
    let rd = report_data(b"k");
    let r = p.report(&rd).unwrap();
    let e = SnpVerifier::amd()
        .unwrap()
        .verify(
            &r,
            &p.certs(),
            &ExpectedReportData::Expected(rd),
            UnixTime::now(),
        )
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Trust, "{e}");
}
