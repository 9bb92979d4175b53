//! The sim TEE: real SNP code path, different root, trusted only when passed explicitly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_attest::pki::{AnchorOrigin, TrustAnchors};
use ualink_attest::sim::SimPlatform;
use ualink_attest::snp::{SnpReport, SnpVerifier};
use ualink_attest::{Error, ExpectedReportData, UnixTime};

fn platform() -> (tempdir::Dir, SimPlatform) {
    let dir = tempdir::Dir::new("sim");
    let p = SimPlatform::load_or_create(dir.path()).unwrap();
    (dir, p)
}

mod tempdir {
    //! A minimal self-cleaning temporary directory.
    pub(crate) struct Dir(std::path::PathBuf);
    impl Dir {
        pub(crate) fn new(tag: &str) -> Self {
            let mut bytes = [0u8; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
            let p =
                std::env::temp_dir().join(format!("ualink-attest-{tag}-{}", hex::encode(bytes)));
            Self(p)
        }
        pub(crate) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const RD: [u8; 64] = [0x5A; 64];

#[test]
fn sim_report_verifies_with_its_ark_only() {
    let (_d, p) = platform();
    let report = p.report(&RD).unwrap();
    assert_eq!(report.len(), 1184);
    let v = SnpVerifier::new(p.trust_anchors().unwrap())
        .verify(
            &report,
            &p.certs(),
            &ExpectedReportData::Expected(RD),
            UnixTime::now(),
        )
        .unwrap();
    assert_eq!(v.root, AnchorOrigin::Explicit);
    assert!(v.chip_id_checked);
    assert!(v.report_data_checked);
    assert_eq!(&v.report.chip_id, p.chip_id());
    // Same codec as real reports.
    assert_eq!(SnpReport::parse(&report).unwrap().encode(), report);
}

#[test]
fn sim_report_is_refused_without_explicit_trust() {
    let (_d, p) = platform();
    let report = p.report(&RD).unwrap();
    let e = SnpVerifier::new(TrustAnchors::empty())
        .verify(
            &report,
            &p.certs(),
            &ExpectedReportData::NotProvided,
            UnixTime::now(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
}

#[test]
fn sim_report_is_refused_under_amd_roots_even_if_it_ships_its_ark() {
    let (_d, p) = platform();
    let report = p.report(&RD).unwrap();
    let mut certs = p.certs();
    certs.intermediates.push(p.ark_der().to_vec());
    let e = SnpVerifier::amd()
        .unwrap()
        .verify(
            &report,
            &certs,
            &ExpectedReportData::NotProvided,
            UnixTime::now(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
}

#[test]
fn another_sim_platform_is_not_trusted() {
    let (_d1, p1) = platform();
    let (_d2, p2) = platform();
    let report = p2.report(&RD).unwrap();
    let e = SnpVerifier::new(p1.trust_anchors().unwrap())
        .verify(
            &report,
            &p2.certs(),
            &ExpectedReportData::NotProvided,
            UnixTime::now(),
        )
        .unwrap_err();
    // Same subject names, different key: the ASK's signature does not verify under p1's ARK.
    assert!(matches!(e, Error::UntrustedRoot { .. }), "{e}");
}

#[test]
fn sim_corruptions_fail_like_real_ones() {
    let (_d, p) = platform();
    let v = SnpVerifier::new(p.trust_anchors().unwrap());
    let now = UnixTime::now();
    let good = p.report(&RD).unwrap();
    let mut bad = good.clone();
    bad[0x2A0] ^= 1;
    assert!(matches!(
        v.verify(&bad, &p.certs(), &ExpectedReportData::NotProvided, now),
        Err(Error::BadSignature { .. })
    ));
    let mut bad = good.clone();
    bad[0x1A0] ^= 1;
    assert_eq!(
        v.verify(&bad, &p.certs(), &ExpectedReportData::NotProvided, now)
            .unwrap_err(),
        Error::ChipIdMismatch
    );
    assert_eq!(
        v.verify(
            &good,
            &p.certs(),
            &ExpectedReportData::Expected([0; 64]),
            now
        )
        .unwrap_err(),
        Error::BindingMismatch {
            field: "report_data"
        }
    );
}

#[test]
fn reload_gives_the_same_platform_and_partial_dirs_are_refused() {
    let (d, p) = platform();
    let again = SimPlatform::load_or_create(d.path()).unwrap();
    assert_eq!(p.ark_der(), again.ark_der());
    assert_eq!(p.chip_id(), again.chip_id());
    let report = again.report(&RD).unwrap();
    SnpVerifier::new(p.trust_anchors().unwrap())
        .verify(
            &report,
            &p.certs(),
            &ExpectedReportData::Expected(RD),
            UnixTime::now(),
        )
        .unwrap();
    std::fs::remove_file(d.path().join("vcek.key")).unwrap();
    assert!(matches!(
        SimPlatform::load_or_create(d.path()),
        Err(Error::ApiMisuse { .. })
    ));
}
