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
    /// Attest every accelerator of an embedded simulated pod (default policy, the sim pod's
    /// own roots and reference values, plus an optional overlay JSON file) and print the
    /// verdicts.
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
            let spec = ualink_sim::PodSpec::generate(&ualink_sim::GenParams {
                accelerators,
                ..Default::default()
            })?;
            let pod = ualink_sim::SimPod::new(&spec)?;
            let mut bundle = ualink_policy::PolicyBundle::defaults()?
                .with_data(ualink_tsm::demo::sim_pod_overlay(&pod, &spec))?;
            if let Some(p) = overlay {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                bundle = bundle.with_data(serde_json::from_str(&text)?)?;
            }
            // The simulated vendor roots, for the auditor's `--device-trust` (they exist only
            // in this process otherwise).
            let roots_dir = state.join("device-roots");
            std::fs::create_dir_all(&roots_dir)?;
            for (vendor, der) in pod.vendor_roots() {
                let name: String = vendor
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                std::fs::write(roots_dir.join(format!("{name}.der")), der)?;
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
