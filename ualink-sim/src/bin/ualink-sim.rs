//! `ualink-sim serve --pod POD.toml --spdm-base-port N`: serves every simulated accelerator's
//! SPDM responder over the spdm-emu socket framing (MCTP) on ports N, N+1, ... and writes the
//! CA bundle a requester must trust.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::serve::{ca_bundle_pem, spawn_servers};
use ualink_sim::SimPod;

#[derive(Parser)]
#[command(name = "ualink-sim", about = "A UALink pod in software")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every accelerator's SPDM responder (spdm-emu framing, MCTP).
    Serve {
        /// Pod description (TOML). Without it, a generated pod of `--accelerators` devices.
        #[arg(long)]
        pod: Option<PathBuf>,
        /// Accelerators in the generated pod (ignored with --pod).
        #[arg(long, default_value_t = 4)]
        accelerators: u16,
        /// First TCP port; accelerator i (in ID order) listens on base + i.
        #[arg(long, default_value_t = 2323)]
        spdm_base_port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        listen: IpAddr,
        /// Where to write the PEM bundle of vendor roots to trust.
        #[arg(long, default_value = "ualink-sim-ca.pem")]
        ca_out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve {
            pod,
            accelerators,
            spdm_base_port,
            listen,
            ca_out,
        } => {
            let spec = match pod {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    PodSpec::from_toml(&text)?
                }
                None => PodSpec::generate(&GenParams {
                    accelerators,
                    ..GenParams::default()
                })?,
            };
            let pod = Arc::new(SimPod::new(&spec)?);
            std::fs::write(&ca_out, ca_bundle_pem(&pod))
                .with_context(|| format!("writing {}", ca_out.display()))?;
            println!("CA file to trust: {}", ca_out.display());
            let servers = spawn_servers(Arc::clone(&pod), listen, spdm_base_port)?;
            for (accel, addr, _) in &servers {
                println!("{accel}: spdm-emu (MCTP) on {addr}");
            }
            for (_, _, handle) in servers {
                let _ = handle.join();
            }
            Ok(())
        }
    }
}
