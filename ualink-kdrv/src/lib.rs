//! ualink-kdrv: the kernel-driver core that keeps tenants' fabric memory apart.
//!
//! `#![no_std]` + `alloc`, written under kernel discipline: fallible allocation only, no panic reachable
//! from the UAPI, no floating point, no blocking on the gate path. Hardware is reached only through
//! [`ops::FabricOps`]; cryptography only through a crypto backend trait.
#![no_std]
#![forbid(unsafe_code)]
#![deny(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::todo,
    clippy::unreachable,
    clippy::float_arithmetic
)]

extern crate alloc;

pub mod audit;
mod cbor;
pub mod crypto;
pub mod driver;
pub mod errno;
pub mod error;
pub mod grant;
pub mod ids;
mod ioctl;
pub mod ops;
mod slab;
pub mod uapi;

pub use audit::{AuditEvent, AuditSink, InvalidateSink, RevokeCause, RevokeScope};
pub use crypto::{CryptoBackend, KeyId, TsmPublicKey};
pub use driver::{
    AttachRequest, BufferState, Config, Driver, FileCtx, MappingView, Role, TdiState,
};
pub use errno::Errno;
pub use error::{ApiMisuse, Denial, Error, Malformed};
pub use ids::{
    AcceleratorId, AttachmentId, BufferHandle, FabricTime, GrantId, MappingId, OsInstanceId,
    PortId, Rights, SwitchId, TenantId, VpodId, WindowId,
};
pub use ops::FabricOps;
