// The crate documentation is the crate's README (overview, module map, the binary, tests,
// and the deviations from the project's PROTOCOL.md found by tests and the specifications).
#![doc = include_str!("../README.md")]
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
