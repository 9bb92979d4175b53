//! ualink-sim: the UALink pod in software.
//!
//! A pod of accelerators and switches that behaves like the silicon where security depends on it:
//! every transfer is really encrypted with UALinkSec (AES-256-GCM, 8-byte tag, per-stream keys
//! derived with KMAC256), switches route by 10-bit destination ID with per-port Deny bits (all
//! Deny after reset), and targets check their window tables. Fault-injection knobs model device
//! resets, link flaps, tampering, lost KeyRollMSGs, port migration and a host that bypasses the
//! driver. A leak oracle records every byte that crossed a tenant boundary without a live grant.
//!
//! The driver core (`ualink-kdrv`) runs on top through its `FabricOps` trait ([`fabric`]), the
//! idea of the kernel's `cxl_test` mock ops: the real core runs on a fake topology.
//!
//! Map of the crate:
//! - [`pod`]: TOML pod descriptions and the default generator.
//! - [`sim`]: the pod itself ([`SimPod`]): data path, key sink, fault knobs, leak oracle.
//! - [`ualinksec`]: the link-encryption engine (key slots, KMAC256 derivation, AES-256-GCM with
//!   the 8-byte tag, wire codecs).
//! - [`switch`], [`memory`], [`pki`], [`measurement`]: the hardware pieces.
//! - [`device`]: each accelerator's SPDM responder (ualink-spdm's engine over [`device::SimDevice`]):
//!   attestation with its own PKI and live measurements, TDISP for its TDI, UALinkSec key
//!   programming into the key slots, and malicious-responder knobs. Reached through
//!   `FabricOps::spdm_send`/`spdm_receive` with MCTP framing.
//! - [`serve`]: the responders on spdm-emu sockets (`ualink-sim serve --pod POD.toml
//!   --spdm-base-port N`).
#![forbid(unsafe_code)]

pub mod device;
pub mod error;
pub mod fabric;
pub mod ids;
pub mod measurement;
pub mod memory;
pub mod pki;
pub mod pod;
pub mod serve;
pub mod sim;
pub mod switch;
pub mod ualinksec;

pub use error::{KeyError, SimError};
pub use ids::{AccelId, PortIndex, PortRef, SwitchIndex, SwitchPort, TenantId};
pub use pod::{GenParams, PodSpec};
pub use sim::{DevicePerm, LeakRecord, Op, SimPod, SlotRef};
