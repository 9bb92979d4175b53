//! TDX quote verification (v4, and v5 for the outdated vector) with real quotes and collateral (see tests/data/tdx/ORIGIN.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_attest::tdx::{trim_zero_padding, verify_quote, TdxCollateral};
use ualink_attest::{Error, ExpectedReportData, UnixTime};

/// tcbInfo issueDate of tdx_quote_collateral.json (2025-06-19T10:16:03Z) plus one hour.
const NOW: UnixTime = UnixTime::from_secs(1_750_331_763);
/// tcbInfo issueDate of tdx_quote_outdated_collateral.json (2026-02-18T10:58:51Z) plus one hour.
const NOW_OUTDATED: UnixTime = UnixTime::from_secs(1_771_415_931);

fn raw(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/tdx/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The sample quote files are 5006-byte buffers: the quote followed by zero padding.
fn data(name: &str) -> Vec<u8> {
    let buf = raw(name);
    if name.ends_with(".json") {
        return buf;
    }
    trim_zero_padding(&buf).unwrap().to_vec()
}

fn collateral() -> TdxCollateral {
    TdxCollateral::from_json(&data("tdx_quote_collateral.json")).unwrap()
}

fn verify(
    quote: &[u8],
    expected: &ExpectedReportData,
) -> Result<ualink_attest::tdx::VerifiedTdxQuote, Error> {
    verify_quote(quote, &collateral(), expected, NOW)
}

#[test]
fn real_quote_verifies_up_to_date_and_binds_report_data() {
    let quote = data("tdx_quote");
    let v = verify(&quote, &ExpectedReportData::NotProvided).unwrap();
    assert_eq!(v.tcb_status, "UpToDate");
    assert!(!v.report_data_checked);
    // REPORTDATA sits at 0x238..0x278 of the quote.
    assert_eq!(&v.td.report_data[..], &quote[0x238..0x278]);
    let v = verify(&quote, &ExpectedReportData::Expected(v.td.report_data)).unwrap();
    assert!(v.report_data_checked);
}

#[test]
fn wrong_report_data_is_binding_mismatch() {
    let e = verify(&data("tdx_quote"), &ExpectedReportData::Expected([7u8; 64])).unwrap_err();
    assert_eq!(
        e,
        Error::BindingMismatch {
            field: "report_data"
        }
    );
}

#[test]
fn zero_padding_is_refused_unless_trimmed_explicitly() {
    let padded = raw("tdx_quote");
    assert_eq!(padded.len() - data("tdx_quote").len(), 70);
    let e = verify(&padded, &ExpectedReportData::NotProvided).unwrap_err();
    assert!(
        matches!(&e, Error::Malformed { reason, .. } if reason.contains("70 trailing")),
        "{e}"
    );
    let mut dirty = padded.clone();
    *dirty.last_mut().unwrap() = 1;
    assert!(matches!(
        trim_zero_padding(&dirty),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn outdated_quote_is_refused() {
    let c = TdxCollateral::from_json(&data("tdx_quote_outdated_collateral.json")).unwrap();
    let e = verify_quote(
        &data("tdx_quote_outdated"),
        &c,
        &ExpectedReportData::NotProvided,
        NOW_OUTDATED,
    )
    .unwrap_err();
    assert!(matches!(e, Error::QuoteRejected { .. }), "{e}");
    assert!(e.to_string().to_lowercase().contains("tcb"), "{e}");
}

#[test]
fn altered_bytes_are_refused() {
    let quote = data("tdx_quote");
    // One bit in the TD report (MRTD), one in REPORTDATA, one in the quote signature.
    for off in [0x30 + 136, 0x238, 0x27C + 10] {
        let mut q = quote.clone();
        q[off] ^= 1;
        let e = verify(&q, &ExpectedReportData::NotProvided).unwrap_err();
        assert!(
            matches!(e, Error::QuoteRejected { .. }),
            "offset {off:#x}: {e}"
        );
    }
}

#[test]
fn unknown_versions_fail_closed() {
    for v in [3u16, 6, 0xFFFF] {
        let mut q = data("tdx_quote");
        q[..2].copy_from_slice(&v.to_le_bytes());
        let e = verify(&q, &ExpectedReportData::NotProvided).unwrap_err();
        assert_eq!(
            e,
            Error::UnsupportedVersion {
                what: "TDX quote",
                version: u32::from(v)
            }
        );
    }
}

#[test]
fn truncated_and_trailing_bytes_are_malformed() {
    let quote = data("tdx_quote");
    for cut in [0, 47, 0x278, quote.len() - 1] {
        let e = verify(&quote[..cut], &ExpectedReportData::NotProvided).unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }), "cut {cut}: {e}");
    }
    let mut long = quote.clone();
    long.push(0);
    let e = verify(&long, &ExpectedReportData::NotProvided).unwrap_err();
    assert!(
        matches!(&e, Error::Malformed { reason, .. } if reason.contains("trailing")),
        "{e}"
    );
}

#[test]
fn expired_collateral_is_refused() {
    let e = verify_quote(
        &data("tdx_quote"),
        &collateral(),
        &ExpectedReportData::NotProvided,
        UnixTime::from_secs(NOW.secs() + 400 * 86_400),
    )
    .unwrap_err();
    assert!(matches!(e, Error::QuoteRejected { .. }), "{e}");
}

/// Every byte of the PEM certificate chain in the quote's certification data counts: a
/// one-bit change anywhere in it (the PCK leaf, the intermediate, the root copy that dcap-qvl
/// itself ignores, the PEM framing) is refused.
#[test]
fn every_byte_of_the_pck_chain_counts() {
    let quote = data("tdx_quote");
    let begin = quote
        .windows(27)
        .position(|w| w == b"-----BEGIN CERTIFICATE-----")
        .unwrap();
    let end = quote
        .windows(25)
        .rposition(|w| w == b"-----END CERTIFICATE-----")
        .unwrap()
        + 26;
    verify(&quote, &ExpectedReportData::NotProvided).unwrap();
    for i in begin..end {
        let mut q = quote.clone();
        q[i] ^= 0x01;
        assert!(
            verify(&q, &ExpectedReportData::NotProvided).is_err(),
            "byte {i} of the quote (chain bytes {begin}..{end}) accepted"
        );
    }
}

/// A changed copy of the root certificate in the chain (which dcap-qvl does not use: it
/// verifies under its own copy of Intel's root) is refused.
#[test]
fn a_changed_root_copy_is_refused_even_though_dcap_qvl_ignores_it() {
    let quote = data("tdx_quote");
    let n = quote.len();
    // Inside the root certificate's base64 (its SubjectKeyIdentifier), as found by the
    // auditor's report test: dcap-qvl alone accepts this quote.
    let mut q = quote.clone();
    q[n - 200] ^= 0x01;
    let e = verify(&q, &ExpectedReportData::NotProvided).unwrap_err();
    assert!(
        matches!(e, Error::UntrustedRoot { .. } | Error::Malformed { .. }),
        "{e:?}"
    );
}

/// The auth data framing dcap-qvl does not look at (the outer certification data type and
/// length, the QE auth data, the inner type and length) counts too: a one-bit change in any
/// byte from the auth data length to the start of the PEM chain is refused. (The proptest in
/// no_panic.rs found the outer type 6 -> 7 accepted.)
#[test]
fn every_byte_of_the_auth_data_framing_counts() {
    let quote = data("tdx_quote");
    let pem = quote.windows(10).position(|w| w == b"-----BEGIN").unwrap();
    // v4: 48-byte header + 584-byte TD report; the auth data length follows.
    for i in 632..pem {
        let mut q = quote.clone();
        q[i] ^= 0x01;
        assert!(
            verify(&q, &ExpectedReportData::NotProvided).is_err(),
            "byte {i} accepted"
        );
    }
    let mut q = quote.clone();
    q[764] = 7; // the outer certification data type, 6 in the vector
    let e = verify(&q, &ExpectedReportData::NotProvided).unwrap_err();
    assert!(e.to_string().contains("QE certification data"), "{e}");
}
