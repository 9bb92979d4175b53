//! Intel TDX quotes: `ualink_attest::tdx::verify_quote` with the sample collateral from
//! `ualink-attest/tests/data/tdx` at the time `ualink-attest/tests/tdx.rs` verifies at.
//!
//! Input: the quote bytes.
//!
//! Oracle beyond "no panic": only the genuine sample quote verifies (its signed part: the
//! header and TD report, whose ECDSA signature the fuzzer cannot forge).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ualink_attest::tdx::{verify_quote, TdxCollateral};
use ualink_attest::{ExpectedReportData, UnixTime};

const QUOTE: &[u8] = include_bytes!("../../ualink-attest/tests/data/tdx/tdx_quote");
const COLLATERAL: &[u8] =
    include_bytes!("../../ualink-attest/tests/data/tdx/tdx_quote_collateral.json");
/// Header (48) + TD report (584 for v4): what the attestation key signs.
const SIGNED_V4: usize = 48 + 584;
const NOW: UnixTime = UnixTime::from_secs(1_750_331_763);

fn collateral() -> &'static TdxCollateral {
    static C: OnceLock<TdxCollateral> = OnceLock::new();
    C.get_or_init(|| TdxCollateral::from_json(COLLATERAL).expect("sample collateral"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = verify_quote(data, collateral(), &ExpectedReportData::NotProvided, NOW) {
        assert!(
            data.get(..SIGNED_V4) == QUOTE.get(..SIGNED_V4),
            "verify_quote accepted a quote whose signed part is not the sample's: {v:?}"
        );
    }
});
