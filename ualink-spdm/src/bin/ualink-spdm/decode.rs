//! `decode`: one line per message of an spdm-emu capture.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use ualink_spdm::pcap::Capture;

use crate::{ExitKind, Failure};

/// Arguments of `decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The capture (classic pcap, link type 291 MCTP or 292 PCI DOE).
    file: PathBuf,
    /// Also print each message in hex on the line after its decode (the
    /// `*.transcript.full.txt` layout).
    #[arg(long)]
    hex: bool,
}

pub(crate) fn run(args: &DecodeArgs) -> Result<(), Failure> {
    let bytes = std::fs::read(&args.file).map_err(|e| {
        Failure::new(
            ExitKind::Other,
            anyhow::anyhow!("cannot read {}: {e}", args.file.display()),
        )
    })?;
    let cap = Capture::parse(&bytes).map_err(|e| {
        Failure::new(
            ExitKind::Protocol,
            anyhow::anyhow!("{}: {e}", args.file.display()),
        )
    })?;
    let text = if args.hex {
        cap.to_transcript()
    } else {
        let mut s = cap.decode_lines().join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| Failure::new(ExitKind::Other, e))
}
