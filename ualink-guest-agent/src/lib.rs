//! ualink-guest-agent: the tenant's voice inside a confidential VM.
//!
//! - [`evidence`]: this CVM's own TEE evidence (configfs-tsm for SNP and TDX,
//!   `/dev/sev-guest`, the software `sim` platform, Trustee's `sample`);
//! - [`kbs`]: the KBS protocol client (RCAR, protocol 0.4.0) and JWE resource decryption;
//! - [`peer`]: verifying TDI report bundles against the tenant's own roots and policy;
//! - [`lead`]: the lead-VM role: vPod membership checks and master key generation;
//! - [`tls`]: the agent's TLS identity (its KBS tee-pubkey in a self-signed certificate);
//! - [`tsm`]: the TSM service client (identity check, agent endpoints);
//! - [`cvm`]: verifying another CVM's evidence for the tenant;
//! - [`mesh`]: the mutually attested agent-to-agent channel (lead key distribution);
//! - [`agent`]: the agent as a library ([`agent::Agent`]), what `run` does;
//!
//! The binary `ualink-guest-agent` wraps these; the library never prints or exits.

#![forbid(unsafe_code)]

pub mod agent;
pub mod cvm;
pub mod error;
pub mod evidence;
pub mod kbs;
pub mod lead;
pub mod mesh;
pub mod peer;
pub mod tls;
pub mod tsm;

pub use error::{Error, ErrorClass, Result};
