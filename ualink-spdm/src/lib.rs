//! ualink-spdm: SPDM 1.2/1.3, DSP0277 secured messages, TDISP 1.0 and UALinkSec link-key
//! programming, byte-exact with DMTF's libspdm/spdm-emu and stricter in what it accepts.
//!
//! The codec, messages and state machines are `#![no_std]` + `alloc` and sans-IO: bytes in,
//! bytes out. The `std` feature adds transports (MCTP, PCI DOE, the spdm-emu socket framing),
//! X.509 chain verification, test identities and the `ualink-spdm` binary.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod algo;
pub mod cert_chain;
pub mod codec;
pub mod crypto;
pub mod device;
pub mod error;
#[cfg(feature = "std")]
pub mod identity;
pub mod key_schedule;
pub mod keyprog;
pub mod msg;
pub mod negotiation;
#[cfg(feature = "std")]
pub mod pcap;
pub mod requester;
pub mod responder;
pub mod secured;
pub mod tdisp;
pub mod transcript;
pub mod transport;

pub use error::{Error, Malformed, PeerIncompatible, PeerMisbehaved, Result};
