//! The `ualink-tsm` command. The service, provider subcommands and `demo` are not here yet;
//! `bring-up` attests an embedded simulated pod and prints each device's verdict.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ualink-tsm", about = "The ualink-cc trusted security manager")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Attest every accelerator of an embedded simulated pod (default policy data plus a
    /// policy overlay JSON file) and print the verdicts.
    BringUp {
        /// State directory.
        #[arg(long)]
        state: PathBuf,
        /// Accelerators in the generated pod.
        #[arg(long, default_value_t = 8)]
        accelerators: u16,
        /// Policy overlay (JSON object merged into the default bundle's data).
        #[arg(long)]
        overlay: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::BringUp {
            state,
            accelerators,
            overlay,
        } => {
            let pod =
                ualink_sim::SimPod::new(&ualink_sim::PodSpec::generate(&ualink_sim::GenParams {
                    accelerators,
                    ..Default::default()
                })?)?;
            let mut bundle = ualink_policy::PolicyBundle::defaults()?;
            if let Some(p) = overlay {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                bundle = bundle.with_data(serde_json::from_str(&text)?)?;
            }
            let mut tsm = ualink_tsm::Tsm::open(ualink_tsm::TsmConfig::new(state, bundle), pod)?;
            let report = tsm.bring_up()?;
            for d in tsm.devices() {
                println!("{}", serde_json::to_string(&d)?);
            }
            println!(
                "attested {}, quarantined {}",
                report.attested.len(),
                report.quarantined.len()
            );
            tsm.shutdown()?;
            Ok(())
        }
    }
}
