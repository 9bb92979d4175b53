//! Intel TDX quote (versions 4 and 5) verification, offline, with collateral supplied by the
//! caller.
//!
//! The quote is first checked structurally here, so that versions, TEE types and body types
//! we do not implement fail closed before any library sees them:
//! ```text
//! 0x000 u16 version (4 or 5)         0x002 u16 attestation key type
//! 0x004 u32 TEE type (must be 0x81, TDX)
//! 0x008 ..0x030 rest of the 48-byte header (QE vendor id, user data)
//! v4:  0x030 [584] TD report 1.0 (REPORTDATA at 0x238..0x278 of the quote)
//!      0x278 u32 auth data length N, 0x27C [N] auth data
//! v5:  0x030 u16 body type (2 = TD report 1.0, 584 bytes; 3 = TD report 1.5, 648 bytes)
//!      0x032 u32 body size (must match the type), 0x036 [size] body
//!      then u32 auth data length N, [N] auth data
//! end = exactly after the auth data: trailing bytes are an error
//! ```
//! Quote buffers handed out by a quote generation service are often fixed-size and
//! zero-padded; [`trim_zero_padding`] removes such padding as an explicit caller step (it
//! refuses a non-zero tail).
//! Then `dcap-qvl` (ring backend) checks the PCK chain to Intel's root, the CRLs, the QE
//! report, the quote signature and matches the platform TCB against the TCB info at `now`.
//! The TCB status it reports (`UpToDate`, `SWHardeningNeeded`, …) is returned for the policy
//! to judge; only a quote matching no TCB level at all is an error.

use crate::error::{Error, Result};
use crate::{ExpectedReportData, UnixTime};
use dcap_qvl::QuoteCollateralV3;

const WHAT: &str = "TDX quote";
const HEADER_LEN: usize = 48;
const TD_REPORT10_LEN: usize = 584;
const TD_REPORT15_LEN: usize = 648;
const TEE_TYPE_TDX: u32 = 0x81;

/// Collateral for one quote (PCK CRL and chains, TCB info, QE identity), in the JSON shape of
/// `dcap-qvl` / PCCS (as in `vectors/tdx/*_collateral.json`).
#[derive(Clone, Debug)]
pub struct TdxCollateral(QuoteCollateralV3);

impl TdxCollateral {
    /// Parses the collateral JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map(Self)
            .map_err(|e| Error::malformed("TDX collateral", e.to_string()))
    }
}

/// The TD's measurements and identity from a verified quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TdReport {
    /// TEE_TCB_SVN.
    pub tee_tcb_svn: [u8; 16],
    /// MRSEAM.
    pub mr_seam: [u8; 48],
    /// MRSIGNERSEAM.
    pub mr_signer_seam: [u8; 48],
    /// SEAMATTRIBUTES.
    pub seam_attributes: [u8; 8],
    /// TDATTRIBUTES.
    pub td_attributes: [u8; 8],
    /// XFAM.
    pub xfam: [u8; 8],
    /// MRTD: the TD's build-time measurement.
    pub mr_td: [u8; 48],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
    /// MROWNER.
    pub mr_owner: [u8; 48],
    /// MROWNERCONFIG.
    pub mr_owner_config: [u8; 48],
    /// RTMR0..3.
    pub rtmr: [[u8; 48]; 4],
    /// REPORTDATA.
    pub report_data: [u8; 64],
}

/// A quote that passed [`verify_quote`].
#[derive(Clone, Debug)]
pub struct VerifiedTdxQuote {
    /// The quote version (4 or 5).
    pub version: u16,
    /// The platform/QE TCB status from the collateral (e.g. "UpToDate"); policy decides.
    pub tcb_status: String,
    /// Intel security advisories that apply at this TCB level.
    pub advisory_ids: Vec<String>,
    /// The TD report.
    pub td: TdReport,
    /// Whether REPORTDATA was compared with an expected value.
    pub report_data_checked: bool,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    b.get(off..off.checked_add(2)?)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    b.get(off..off.checked_add(4)?)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_le_bytes)
}

/// Reads the header and framing described in the module documentation; returns the version
/// and the length the quote declares (header + body + auth data), which may differ from
/// `quote.len()`.
fn declared_len(quote: &[u8]) -> Result<(u16, usize)> {
    let truncated = || Error::malformed(WHAT, format!("truncated: {} bytes", quote.len()));
    let version = u16_at(quote, 0).ok_or_else(truncated)?;
    if !matches!(version, 4 | 5) {
        return Err(Error::UnsupportedVersion {
            what: WHAT,
            version: u32::from(version),
        });
    }
    if quote.len() < HEADER_LEN {
        return Err(truncated());
    }
    let tee_type = u32_at(quote, 4).ok_or_else(truncated)?;
    if tee_type != TEE_TYPE_TDX {
        return Err(Error::malformed(
            WHAT,
            format!("TEE type {tee_type:#x} is not TDX"),
        ));
    }
    let auth_len_offset = if version == 4 {
        HEADER_LEN + TD_REPORT10_LEN
    } else {
        let body_type = u16_at(quote, HEADER_LEN).ok_or_else(truncated)?;
        let body_size = u32_at(quote, HEADER_LEN + 2).ok_or_else(truncated)?;
        let expected = match body_type {
            2 => TD_REPORT10_LEN,
            3 => TD_REPORT15_LEN,
            t => {
                return Err(Error::malformed(
                    WHAT,
                    format!("v5 body type {t} is not a supported TD report"),
                ))
            }
        };
        if usize::try_from(body_size).ok() != Some(expected) {
            return Err(Error::malformed(
                WHAT,
                format!("v5 body size {body_size} does not match body type {body_type}"),
            ));
        }
        HEADER_LEN + 6 + expected
    };
    let auth_len = u32_at(quote, auth_len_offset)
        .ok_or_else(|| Error::malformed(WHAT, "truncated before the auth data length"))?;
    let end = usize::try_from(auth_len)
        .ok()
        .and_then(|n| n.checked_add(auth_len_offset + 4))
        .ok_or_else(|| Error::malformed(WHAT, "auth data length overflows"))?;
    Ok((version, end))
}

/// [`declared_len`] plus: the input is exactly that long.
fn precheck(quote: &[u8]) -> Result<u16> {
    let (version, end) = declared_len(quote)?;
    match quote.len().cmp(&end) {
        core::cmp::Ordering::Less => Err(Error::malformed(
            WHAT,
            format!("truncated: {} of {end} bytes", quote.len()),
        )),
        core::cmp::Ordering::Greater => Err(Error::malformed(
            WHAT,
            format!("{} trailing bytes", quote.len() - end),
        )),
        core::cmp::Ordering::Equal => Ok(version),
    }
}

/// Intel SGX Root CA (DER), the root dcap-qvl verifies PCK chains under (a copy of
/// dcap-qvl 0.7.1 `src/TrustedRootCA.der`; CN=Intel SGX Root CA, SHA-256
/// 44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3).
const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("tdx_data/intel_sgx_root_ca.der");

/// dcap-qvl checks the PCK chain in the quote's certification data under its own copy of
/// Intel's root and ignores the root certificate the quote carries, so bytes of that copy
/// (and the PEM text around the certificates, and the outer certification data type) could
/// change without notice. Every byte of the quote must count: the outer certification data
/// is type 6 and exactly as long as the QE report data it frames; the chain must be canonical PEM (64-column base64, LF, nothing
/// else but one terminating NUL), every certificate's outer DER exact, and the last certificate byte-identical to
/// Intel's root.
fn check_cert_chain_exact(quote: &[u8]) -> Result<()> {
    const CHAIN: &str = "TDX quote PCK certificate chain";
    let q = dcap_qvl::quote::Quote::parse(quote)
        .map_err(|e| Error::malformed(WHAT, format!("{e:#}")))?;
    // The QE certification data framing is not signed and dcap-qvl does not check it: its
    // type must be 6 (QE report certification data) and its length exactly what it holds.
    let dcap_qvl::quote::AuthData::V4(auth) = &q.auth_data else {
        return Err(Error::malformed(WHAT, "auth data is not the v4/v5 layout"));
    };
    let inner = &auth.qe_report_data;
    let inner_len = 384usize
        .checked_add(64 + 2 + 2 + 4)
        .and_then(|n| n.checked_add(inner.qe_auth_data.data.len()))
        .and_then(|n| n.checked_add(inner.certification_data.body.data.len()));
    if auth.certification_data.cert_type != 6
        || Some(auth.certification_data.body.data.len()) != inner_len
    {
        return Err(Error::malformed(
            WHAT,
            format!(
                "QE certification data: type {} (want 6) or length {} not exactly its contents",
                auth.certification_data.cert_type,
                auth.certification_data.body.data.len()
            ),
        ));
    }
    let raw = q
        .raw_cert_chain()
        .map_err(|e| Error::malformed(CHAIN, format!("{e:#}")))?;
    let pems = pem::parse_many(raw).map_err(|e| Error::malformed(CHAIN, e.to_string()))?;
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let canonical: String = pems.iter().map(|p| pem::encode_config(p, config)).collect();
    // Intel's quoting library NUL-terminates the chain.
    let text = raw.strip_suffix(&[0u8]).unwrap_or(raw);
    if pems.is_empty() || canonical.as_bytes() != text {
        return Err(Error::malformed(
            CHAIN,
            "not canonical PEM certificates (64-column base64, LF line ends, one optional NUL)",
        ));
    }
    for p in &pems {
        if p.tag() != "CERTIFICATE" || !crate::pki::outer_der_is_strict(p.contents()) {
            return Err(Error::malformed(
                CHAIN,
                "a certificate's unsigned outer layer is not exact DER",
            ));
        }
    }
    if pems.last().map(|p| p.contents()) != Some(INTEL_SGX_ROOT_CA_DER) {
        return Err(Error::UntrustedRoot {
            detail: "the quote's root certificate is not byte-identical to Intel's SGX root CA"
                .into(),
        });
    }
    Ok(())
}

/// Removes zero padding after the quote's auth data (fixed-size quote buffers). Fails if the
/// quote does not frame (see the module documentation) or if any byte after it is not zero.
pub fn trim_zero_padding(buf: &[u8]) -> Result<&[u8]> {
    let (_, end) = declared_len(buf)?;
    let quote = buf.get(..end).ok_or_else(|| {
        Error::malformed(WHAT, format!("truncated: {} of {end} bytes", buf.len()))
    })?;
    let tail = buf.get(end..).unwrap_or_default();
    if tail.iter().any(|&b| b != 0) {
        return Err(Error::malformed(WHAT, "non-zero bytes after the quote"));
    }
    Ok(quote)
}

/// Verifies a TDX v4/v5 quote as received against `collateral` at `now`, then checks REPORTDATA
/// against `expected`.
pub fn verify_quote(
    quote: &[u8],
    collateral: &TdxCollateral,
    expected: &ExpectedReportData,
    now: UnixTime,
) -> Result<VerifiedTdxQuote> {
    let version = precheck(quote)?;
    let now_secs = u64::try_from(now.secs()).map_err(|_| Error::ApiMisuse {
        reason: "verification time before 1970",
    })?;
    let verified = dcap_qvl::verify::ring::verify(quote, &collateral.0, now_secs).map_err(|e| {
        Error::QuoteRejected {
            reason: format!("{e:#}"),
        }
    })?;
    check_cert_chain_exact(quote)?;
    let r = verified
        .report
        .as_td10()
        .ok_or_else(|| Error::malformed(WHAT, "quote body is not a TD report"))?;
    let td = TdReport {
        tee_tcb_svn: r.tee_tcb_svn,
        mr_seam: r.mr_seam,
        mr_signer_seam: r.mr_signer_seam,
        seam_attributes: r.seam_attributes,
        td_attributes: r.td_attributes,
        xfam: r.xfam,
        mr_td: r.mr_td,
        mr_config_id: r.mr_config_id,
        mr_owner: r.mr_owner,
        mr_owner_config: r.mr_owner_config,
        rtmr: [r.rt_mr0, r.rt_mr1, r.rt_mr2, r.rt_mr3],
        report_data: r.report_data,
    };
    let report_data_checked = expected.check(&td.report_data)?;
    Ok(VerifiedTdxQuote {
        version,
        tcb_status: verified.status,
        advisory_ids: verified.advisory_ids,
        td,
        report_data_checked,
    })
}
