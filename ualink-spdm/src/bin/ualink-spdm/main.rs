//! `ualink-spdm`: attest an SPDM device (`probe`), serve a software device (`respond`), and
//! decode spdm-emu captures (`decode`).
//!
//! Exit codes (see [`ExitKind`]): 0 everything verified / served / decoded; 1 other failure
//! (files, local errors); 2 usage; 3 could not connect; 4 verification failed (certificate
//! chain, signature, nonce, digest, or no trust anchor given); 5 protocol or transport error.

mod decode;
mod probe;
mod respond;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::transport::Transport;

/// Why the tool failed, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitKind {
    /// 1: anything else (files, local errors).
    Other = 1,
    /// 2: the command line asks for something impossible.
    Usage = 2,
    /// 3: the TCP connection (or the spdm-emu hello) failed.
    Connect = 3,
    /// 4: the device did not verify.
    Verification = 4,
    /// 5: the device broke the protocol or the transport failed mid-way.
    Protocol = 5,
}

/// A failure with its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: ExitKind,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    pub(crate) fn new(kind: ExitKind, error: impl Into<anyhow::Error>) -> Self {
        Self {
            kind,
            error: error.into(),
        }
    }
}

/// SPDM 1.2/1.3 requester, responder and capture decoder (spdm-emu socket compatible).
#[derive(Debug, Parser)]
#[command(name = "ualink-spdm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Attest one device over the spdm-emu socket protocol.
    Probe(probe::ProbeArgs),
    /// Serve a software device that spdm-emu-compatible requesters can attest.
    Respond(respond::RespondArgs),
    /// Decode an spdm-emu capture (pcap link type 291 MCTP or 292 PCI DOE).
    Decode(decode::DecodeArgs),
}

/// `--transport` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TransportArg {
    /// MCTP (spdm-emu TransportType 1).
    Mctp,
    /// PCI DOE (spdm-emu TransportType 2).
    PciDoe,
    /// No binding (spdm-emu TransportType 0; cannot carry secured messages).
    None,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Mctp => Transport::Mctp,
            TransportArg::PciDoe => Transport::PciDoe,
            TransportArg::None => Transport::None,
        }
    }
}

/// `--version` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VersionArg {
    /// SPDM 1.2.
    #[value(name = "1.2")]
    V12,
    /// SPDM 1.3.
    #[value(name = "1.3")]
    V13,
}

impl From<VersionArg> for SpdmVersion {
    fn from(v: VersionArg) -> Self {
        match v {
            VersionArg::V12 => SpdmVersion::V12,
            VersionArg::V13 => SpdmVersion::V13,
        }
    }
}

/// `--asym` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AsymArg {
    /// ECDSA P-256 / SHA-256 / secp256r1.
    P256,
    /// ECDSA P-384 / SHA-384 / secp384r1.
    P384,
}

impl From<AsymArg> for AsymAlg {
    fn from(a: AsymArg) -> Self {
        match a {
            AsymArg::P256 => AsymAlg::EcdsaP256,
            AsymArg::P384 => AsymAlg::EcdsaP384,
        }
    }
}

/// Human name of a version.
pub(crate) fn version_name(v: SpdmVersion) -> &'static str {
    match v {
        SpdmVersion::V12 => "1.2",
        SpdmVersion::V13 => "1.3",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Probe(args) => probe::run(&args),
        Command::Respond(args) => respond::run(&args),
        Command::Decode(args) => decode::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("ualink-spdm: error: {:#}", f.error);
            ExitCode::from(f.kind as u8)
        }
    }
}
