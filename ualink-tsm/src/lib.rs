//! ualink-tsm: the trusted security manager of ualink-cc.
//!
//! It attests every accelerator of a pod over SPDM (chain to the vendor root, signed
//! measurements appraised by ualink-policy, a secured session kept per device), forms tenants'
//! vPods through the driver core (ualink-kdrv), keeps every decision in ualink-attest's audit
//! log before acknowledging it, and persists its state (never key bytes) behind
//! [`store::StateStore`].
//!
//! Map of the crate:
//! - [`tsm`]: the [`Tsm`] core the service calls.
//! - [`store`]: the state store trait, redb and in-memory backends.
//! - [`audit`]: the decision log (durable before acknowledgement, signed checkpoints).
//! - [`identity`]: the TSM signing key and its bound evidence.
//! - [`demo`]: policy data for the embedded simulated pod (demo and tests only).
//! - [`mailbox`]: SPDM over the driver's mailbox (MCTP framing).
//! - [`error`]: [`TsmError`], classed by [`Fault`].
//! - [`service`]: the mutual-TLS service (KBS endpoints for guest agents, provider API);
//!   [`cvm`]: CVM appraisal; [`offer`]: export offers.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cvm;
pub mod demo;
pub mod error;
pub mod grant;
pub mod identity;
pub mod keys;
pub mod mailbox;
pub mod offer;
pub mod pod;
pub mod service;
pub mod store;
pub mod tsm;

pub use error::{Fault, Result, TsmError};
pub use tsm::{BringUpReport, DeviceStatus, DeviceView, ShareGrant, ShareRequest, Tsm, TsmConfig};
