//! SEV-SNP attestation reports: `SnpReport::parse` (parse → encode gives the input back) and
//! `SnpVerifier::verify` against the AMD roots built into `sev` at a fixed time.
//!
//! Input: one selector byte (bits 2:0 pick the signing certificate: the four real VCEK/VLEKs
//! from `ualink-attest/tests/data/snp`, or for 4..7 the certificate is taken from the input as
//! `u16 LE length ‖ DER` before the report), then the report bytes.
//!
//! Oracle beyond "no panic": a report verifies only if its signed part is that of one of the
//! genuine reports in the test data (nothing the fuzzer builds can carry an AMD-rooted
//! signature).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ualink_attest::snp::{SnpCerts, SnpReport, SnpVerifier, SIGNED_LEN};
use ualink_attest::{ExpectedReportData, UnixTime};
use ualink_fuzz::{roundtrip, Cursor};

const LEAVES: [&[u8]; 4] = [
    include_bytes!("../../ualink-attest/tests/data/snp/vcek_milan.der"),
    include_bytes!("../../ualink-attest/tests/data/snp/vcek_turin.der"),
    include_bytes!("../../ualink-attest/tests/data/snp/test-vcek.der"),
    include_bytes!("../../ualink-attest/tests/data/snp/test-vlek.der"),
];
const REPORT_MILAN_HEX: &str = include_str!("../../ualink-attest/tests/data/snp/report_milan.hex");
const TEST_REPORT: &[u8] = include_bytes!("../../ualink-attest/tests/data/snp/test-report.bin");
const TEST_VLEK_REPORT: &[u8] =
    include_bytes!("../../ualink-attest/tests/data/snp/test-vlek-report.bin");
/// 2025-06-01, the time `ualink-attest/tests/snp.rs` verifies at.
const NOW: UnixTime = UnixTime::from_secs(1_748_736_000);

struct Fixture {
    verifier: SnpVerifier,
    /// Signed parts of the genuine reports.
    genuine: Vec<Vec<u8>>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let hex: String = REPORT_MILAN_HEX
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        let milan: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let genuine = [milan.as_slice(), TEST_REPORT, TEST_VLEK_REPORT]
            .iter()
            .map(|r| r[..SIGNED_LEN.min(r.len())].to_vec())
            .collect();
        Fixture {
            verifier: SnpVerifier::amd().expect("AMD trust anchors"),
            genuine,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let Some(sel) = c.u8() else { return };
    let leaf: &[u8] = if sel & 4 == 0 {
        LEAVES[usize::from(sel & 3)]
    } else {
        let Some(l) = c.chunk() else { return };
        l
    };
    let report = c.rest();

    roundtrip("SnpReport", report, SnpReport::parse, |r| {
        Ok::<_, ()>(r.encode())
    });

    let f = fixture();
    let certs = SnpCerts::leaf_only(leaf);
    if let Ok(v) = f
        .verifier
        .verify(report, &certs, &ExpectedReportData::NotProvided, NOW)
    {
        let signed = &report[..SIGNED_LEN];
        assert!(
            f.genuine.iter().any(|g| g.as_slice() == signed),
            "SnpVerifier accepted a report that is not a genuine one: {v:?}"
        );
    }
});
