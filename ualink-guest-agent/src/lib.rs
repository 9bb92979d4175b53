//! ualink-guest-agent: the tenant's voice inside a confidential VM.
//!
//! - [`evidence`]: this CVM's own TEE evidence (configfs-tsm for SNP and TDX,
//!   `/dev/sev-guest`, the software `sim` platform, Trustee's `sample`);
//! - [`kbs`]: the KBS protocol client (RCAR, protocol 0.4.0) and JWE resource decryption;
//! - [`peer`]: verifying TDI report bundles against the tenant's own roots and policy;
//! - [`lead`]: the lead-VM role: vPod membership checks and master key generation;
//!
//! The binary `ualink-guest-agent` wraps these; the library never prints or exits.

#![forbid(unsafe_code)]

pub mod error;
pub mod evidence;
pub mod kbs;
pub mod lead;
pub mod peer;
pub mod tls;
pub mod tsm;

pub use error::{Error, ErrorClass, Result};
