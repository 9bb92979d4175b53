//! ualink-kdrv: the kernel-driver core that keeps tenants' fabric memory apart.
//!
//! `#![no_std]` + `alloc`, written under kernel discipline: fallible allocation only (`try_reserve`,
//! `ENOMEM`), no panic reachable from the UAPI (clippy denies `panic`, `unwrap`, `expect`, indexing,
//! unchecked arithmetic and truncating casts here), no floating point, no blocking on the gate path,
//! no `unsafe`. CI builds it with `--no-default-features --target x86_64-unknown-none`.
//!
//! # Map
//! - [`ops`]: [`FabricOps`], the hardware boundary (a real backend or `ualink-sim` implements it).
//! - [`crypto`]: [`CryptoBackend`] (SHA-384, ES384); ring behind the default `ring` feature, the
//!   kernel crypto API in a real module.
//! - [`driver`]: the object model (pod, accelerators, vPods, tenants, OS instances, windows, key-slot
//!   metadata, TDI mirror), dma_buf export / attach / map / unmap / detach / revoke, the import gate,
//!   revocation triggers, RAS.
//! - [`grant`]: the `ImportGrant` and key-rotation formats (COSE_Sign1 ES384 by the TSM).
//! - [`uapi`] and [`Driver::ioctl`]: `UALINK_IOC_*`, `#[repr(C)]` argument structs, the generated C
//!   header `include/uapi/ualink.h`.
//! - [`audit`]: the audit and invalidation sinks; every decision is an [`AuditEvent`].
//! - [`errno`] / [`error`]: [`Errno`] and the one `From<Error> for Errno`.
//!
//! # Lifecycle as the driver sees it
//! 1. `Driver::new` enumerates the fabric (refusing duplicate accelerator IDs) and installs the TSM's
//!    grant-signing key. Every routing entry is Deny.
//! 2. The TSM (a [`Role::Tsm`] file) adds tenants, forms vPods (routes open only between members),
//!    carves windows, mirrors TDISP state and attestation epochs, relays key-slot commands (metadata
//!    only) and SPDM messages.
//! 3. A tenant exports a window region (an opaque 128-bit handle); an importer attaches dynamically;
//!    across a tenant or OS-instance boundary the gate verifies a grant once, then checks live state;
//!    map opens the route and the target-side window permission after an O(1) cached re-check.
//! 4. Revocation (explicit, TDI leaving RUN, epoch bump, key change, integrity failure, port migration,
//!    reset, offboarding, grant expiry) moves every affected mapping through move_notify, a bounded
//!    drain and a zap; buffers that die stay DEAD.
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

pub use audit::{AuditEvent, AuditSink, InvalidateSink, NullSink, RevokeCause, RevokeScope};
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
