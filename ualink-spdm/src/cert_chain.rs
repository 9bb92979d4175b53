//! SPDM certificate chains: format, root hash, verification to trust anchors.

/// Why a certificate chain was rejected.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The chain is empty.
    #[error("empty certificate chain")]
    Empty,
}
