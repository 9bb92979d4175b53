//! The one error type of the crate, classed by who is at fault.
//!
//! Every variant names the check that failed, so a rejection is never just "invalid". The
//! [`Error::class`] of an error is stable and is what the CLI maps to its exit codes.

use std::fmt;

/// Who or what is at fault for a rejection; the CLI maps each class to its own exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The bytes do not parse as the claimed structure (truncated, trailing bytes, bad field).
    Malformed,
    /// The structure uses a version or algorithm this verifier does not know; it fails closed.
    Unsupported,
    /// A signature did not verify.
    Crypto,
    /// The certificate chain is broken, expired or does not end in a trusted root.
    Trust,
    /// The evidence is genuine but not bound to what the caller expected (nonce, report_data,
    /// TCB, chip id, signing-key kind).
    Binding,
    /// An audit log was altered, truncated or forked.
    Tampered,
    /// An I/O error while reading or writing a file.
    Io,
    /// The caller used the API wrongly.
    ApiMisuse,
}

/// A rejected verification or a failed operation; each variant names the failed check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not parse as `what`.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure being parsed.
        what: &'static str,
        /// Why it does not parse (e.g. "truncated: 1183 of 1184 bytes").
        reason: String,
    },
    /// `what` carries a version this verifier does not implement; unknown versions fail closed.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// The structure.
        what: &'static str,
        /// The version found in the bytes.
        version: u32,
    },
    /// `what` uses an algorithm outside the allowed set (P-384/SHA-384, RSA-PSS/SHA-384 roots).
    #[error("unsupported algorithm in {what}: {detail}")]
    UnsupportedAlgorithm {
        /// Where the algorithm appears.
        what: &'static str,
        /// Which algorithm.
        detail: String,
    },
    /// The signature named by `check` does not verify over the bytes as received.
    #[error("bad signature: {check}")]
    BadSignature {
        /// Which signature (e.g. "SNP report signed by VCEK").
        check: &'static str,
    },
    /// The chain does not end in a trust anchor the caller gave or the built-in AMD roots.
    #[error("untrusted root: {detail}")]
    UntrustedRoot {
        /// What was looked for.
        detail: String,
    },
    /// A link of the certificate chain is broken.
    #[error("certificate chain invalid at {cert}: {reason}")]
    ChainInvalid {
        /// Which certificate (subject or role).
        cert: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate is outside its validity period at the verification time.
    #[error("certificate {cert} not valid at {now}: valid from {not_before} to {not_after} (unix seconds)")]
    Expired {
        /// Which certificate.
        cert: String,
        /// The verification time.
        now: i64,
        /// Start of validity.
        not_before: i64,
        /// End of validity.
        not_after: i64,
    },
    /// A value the caller bound the evidence to (report_data, nonce) differs.
    #[error("binding mismatch: {field} differs from the expected value")]
    BindingMismatch {
        /// The field (e.g. "report_data").
        field: &'static str,
    },
    /// A TCB component of the report differs from the signing certificate's extension.
    #[error("TCB mismatch: {component} is {report} in the report but {cert} in the certificate")]
    TcbMismatch {
        /// The component (e.g. "snpSPL (1.3.6.1.4.1.3704.1.3.3)").
        component: &'static str,
        /// The value in the report's reported_tcb.
        report: u8,
        /// The value in the certificate extension (`None` printed as missing).
        cert: CertValue,
    },
    /// The report's chip_id differs from the VCEK's hwID extension.
    #[error("chip id mismatch: report chip_id differs from the VCEK hwID (1.3.6.1.4.1.3704.1.4)")]
    ChipIdMismatch,
    /// The report says it was signed by one key kind (VCEK/VLEK) but the certificate is the other.
    #[error("signing key kind mismatch: report says {report}, certificate is {cert}")]
    KeyKindMismatch {
        /// Kind named in the report.
        report: &'static str,
        /// Kind of the certificate given.
        cert: &'static str,
    },
    /// A TDX quote or its collateral was refused by the DCAP verifier.
    #[error("TDX quote rejected: {reason}")]
    QuoteRejected {
        /// The verifier's reason.
        reason: String,
    },
    /// The audit log was altered at or before record `seq`.
    #[error("audit log tampered at seq {seq}: {reason}")]
    Tampered {
        /// The first sequence number that does not verify.
        seq: u64,
        /// The check that failed.
        reason: String,
    },
    /// A proof (inclusion or consistency) or checkpoint does not verify.
    #[error("proof invalid: {reason}")]
    ProofInvalid {
        /// Which check failed.
        reason: &'static str,
    },
    /// An I/O operation failed.
    #[error("I/O error during {op}: {detail}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The OS error text.
        detail: String,
    },
    /// The API was used wrongly (e.g. a writer used after an I/O error).
    #[error("API misuse: {reason}")]
    ApiMisuse {
        /// What was wrong.
        reason: &'static str,
    },
}

/// A value taken from a certificate extension, or its absence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertValue {
    /// The extension is present with this value.
    Present(u8),
    /// The extension is missing.
    Missing,
}

impl fmt::Display for CertValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertValue::Present(v) => write!(f, "{v}"),
            CertValue::Missing => f.write_str("missing"),
        }
    }
}

impl Error {
    /// The class of this error (stable; the CLI's exit codes depend on it).
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Malformed { .. } => ErrorClass::Malformed,
            Error::UnsupportedVersion { .. } | Error::UnsupportedAlgorithm { .. } => {
                ErrorClass::Unsupported
            }
            Error::BadSignature { .. } => ErrorClass::Crypto,
            Error::UntrustedRoot { .. } | Error::ChainInvalid { .. } | Error::Expired { .. } => {
                ErrorClass::Trust
            }
            Error::BindingMismatch { .. }
            | Error::TcbMismatch { .. }
            | Error::ChipIdMismatch
            | Error::KeyKindMismatch { .. } => ErrorClass::Binding,
            Error::QuoteRejected { .. } => ErrorClass::Trust,
            Error::Tampered { .. } | Error::ProofInvalid { .. } => ErrorClass::Tampered,
            Error::Io { .. } => ErrorClass::Io,
            Error::ApiMisuse { .. } => ErrorClass::ApiMisuse,
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(op: &'static str, e: &std::io::Error) -> Self {
        Error::Io {
            op,
            detail: e.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
