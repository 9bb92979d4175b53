//! tdx (in progress).
