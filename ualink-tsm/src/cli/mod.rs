//! The `ualink-tsm` command line: `serve`, `demo`, `bring-up` and the provider subcommands.

pub(crate) mod client;
pub(crate) mod demo;
pub(crate) mod provider;
pub(crate) mod serve;
pub(crate) mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use provider::{Call, Conn, TenantCmd, VpodCmd, WindowCmd};

#[derive(Parser)]
#[command(
    name = "ualink-tsm",
    version,
    about = "The ualink-cc trusted security manager: serve a pod, drive it as a provider, or play the whole lifecycle (demo)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve providers and guest agents over mutual TLS 1.3 on an embedded simulated pod
    /// (attested at start); SIGINT/SIGTERM stop it with a final audit checkpoint.
    Serve(serve::ServeArgs),
    /// Play the whole lifecycle on an embedded simulated pod: bring-up, two tenants, TDISP,
    /// an allowed and a denied share, a key rotation and a firmware tamper; leaves a state
    /// directory `ualink-attest report` verifies.
    Demo(demo::DemoArgs),
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
    /// Tenants (provider).
    #[command(subcommand)]
    Tenant(TenantCmd),
    /// vPods (provider).
    #[command(subcommand)]
    Vpod(VpodCmd),
    /// Memory windows (provider).
    #[command(subcommand)]
    Window(WindowCmd),
    /// Offboard a tenant: STOP its TDIs, revoke its shares, zeroize its keys, close routing,
    /// wipe its windows (provider).
    Offboard {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the devices and their verdicts, or one device (provider).
    Devices {
        /// One accelerator.
        #[arg(long)]
        id: Option<u16>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Service status: device counts, tenants, vPods, audit log (provider).
    Status {
        #[command(flatten)]
        conn: Conn,
    },
    /// Re-attest one device now; failure quarantines it and revokes what depended on it
    /// (provider).
    Reattest {
        /// Accelerator ID.
        id: u16,
        #[command(flatten)]
        conn: Conn,
    },
    /// Rotate the keys of the link between two accelerators (provider).
    Rotate {
        /// One end.
        a: u16,
        /// The other end.
        b: u16,
        #[command(flatten)]
        conn: Conn,
    },
    /// Key the link between two attested accelerators of different vPods (a cross-tenant
    /// share over it needs live keys) (provider).
    Link {
        /// One end.
        a: u16,
        /// The other end.
        b: u16,
        #[command(flatten)]
        conn: Conn,
    },
    /// TDISP LOCK one of a tenant's accelerators and issue its signed report (provider).
    Lock {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Accelerator ID.
        #[arg(long)]
        accelerator: u16,
        #[command(flatten)]
        conn: Conn,
    },
    /// Program TSM-generated link keys for a tenant that delegates key generation (provider).
    Provision {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Parses the command line and runs it; the process exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Serve(args) => report(serve::run(args)),
        Cmd::Demo(args) => report(demo::run(args)),
        Cmd::BringUp {
            state,
            accelerators,
            overlay,
        } => report(bring_up(state, accelerators, overlay)),
        Cmd::Tenant(TenantCmd::Add {
            name,
            id,
            lead_keys,
            conn,
        }) => provider::run(&conn, Call::tenant_add(&name, id, lead_keys)),
        Cmd::Vpod(VpodCmd::Create {
            tenant,
            members,
            conn,
        }) => provider::run(&conn, Call::vpod_create(&tenant, &members)),
        Cmd::Window(WindowCmd::Add {
            tenant,
            accelerator,
            base,
            len,
            conn,
        }) => provider::run(&conn, Call::window_add(&tenant, accelerator, base, len)),
        Cmd::Offboard { tenant, conn } => provider::run(&conn, Call::offboard(&tenant)),
        Cmd::Devices { id, conn } => provider::run(&conn, Ok(Call::devices(id))),
        Cmd::Status { conn } => provider::run(&conn, Ok(Call::status())),
        Cmd::Reattest { id, conn } => provider::run(&conn, Ok(Call::reattest(id))),
        Cmd::Rotate { a, b, conn } => provider::run(&conn, Ok(Call::rotate(a, b))),
        Cmd::Link { a, b, conn } => provider::run(&conn, Ok(Call::link_key(a, b))),
        Cmd::Lock {
            tenant,
            accelerator,
            conn,
        } => provider::run(&conn, Call::lock(&tenant, accelerator)),
        Cmd::Provision { tenant, conn } => provider::run(&conn, Call::provision(&tenant)),
    };
    ExitCode::from(code)
}

/// Prints an error chain; exit code 1 on failure.
fn report(r: anyhow::Result<()>) -> u8 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ualink-tsm: {e:#}");
            1
        }
    }
}

fn bring_up(state: PathBuf, accelerators: u16, overlay: Option<PathBuf>) -> anyhow::Result<()> {
    let spec = ualink_sim::PodSpec::generate(&ualink_sim::GenParams {
        accelerators,
        ..Default::default()
    })?;
    let pod = ualink_sim::SimPod::new(&spec)?;
    let mut bundle = ualink_policy::PolicyBundle::defaults()?
        .with_data(ualink_tsm::demo::sim_pod_overlay(&pod, &spec))?;
    if let Some(p) = overlay {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        bundle = bundle.with_data(serde_json::from_str(&text)?)?;
    }
    ualink_tsm::demo::write_device_roots(&state, &pod)?;
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
