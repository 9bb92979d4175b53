//! `ualink-tsm serve`: open the TSM over an embedded simulated pod, bring it up, and serve
//! providers and guest agents over mutual TLS until SIGINT/SIGTERM (then the service lets
//! in-flight requests finish and writes a final signed audit checkpoint).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use ualink_tsm::service::{serve, ServiceConfig};
use ualink_tsm::{Tsm, TsmConfig};

/// `serve` options.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// State directory (identity key, audit log, state store, policy, TLS material).
    #[arg(long)]
    pub(crate) state: PathBuf,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub(crate) listen: SocketAddr,
    /// TLS material directory (default STATE/tls; created on first start with the admin
    /// certificate for the provider subcommands).
    #[arg(long)]
    pub(crate) tls_dir: Option<PathBuf>,
    /// Accelerators in the embedded simulated pod (1 switch).
    #[arg(long, default_value_t = 8, conflicts_with = "pod")]
    pub(crate) accelerators: u16,
    /// Pod description (TOML: `[sim]` parameters and `[[device]]` external attest-only
    /// devices over the spdm-emu socket framing; see `ualink_tsm::pod`). Their vendor roots
    /// and reference values come with `--overlay`.
    #[arg(long)]
    pub(crate) pod: Option<PathBuf>,
    /// Policy overlay (JSON object merged into the default bundle's data: tenants, sharing
    /// pairs, CVM reference values).
    #[arg(long)]
    pub(crate) overlay: Option<PathBuf>,
    /// Extra server-certificate SANs (DNS names or IP addresses).
    #[arg(long)]
    pub(crate) san: Vec<String>,
    /// Roots (PEM or DER) of simulated CVM platforms whose agents may attest (tests and
    /// demos; the AMD roots are always trusted).
    #[arg(long)]
    pub(crate) sim_cvm_root: Vec<PathBuf>,
    /// Re-attest every device this often (seconds; 0 = only on demand).
    #[arg(long, default_value_t = 0)]
    pub(crate) reattest_interval: u64,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<()> {
    let desc = args
        .pod
        .as_deref()
        .map(ualink_tsm::pod::PodDescription::load)
        .transpose()?;
    let spec = match &desc {
        Some(d) => d.sim_spec()?,
        None => ualink_sim::PodSpec::generate(&ualink_sim::GenParams {
            accelerators: args.accelerators,
            ..Default::default()
        })?,
    };
    let pod = ualink_sim::SimPod::new(&spec)?;
    let mut bundle = ualink_policy::PolicyBundle::defaults()?
        .with_data(ualink_tsm::demo::sim_pod_overlay(&pod, &spec))?;
    if let Some(p) = &args.overlay {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        bundle = bundle.with_data(serde_json::from_str(&text)?)?;
    }
    std::fs::create_dir_all(&args.state)
        .with_context(|| format!("creating {}", args.state.display()))?;
    ualink_tsm::demo::write_device_roots(&args.state, &pod)?;
    let mut sim_cvm_roots = Vec::new();
    for p in &args.sim_cvm_root {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        sim_cvm_roots.extend(ualink_attest::pki::certs_from_pem_or_der(&bytes)?);
    }

    let mut tsm = Tsm::open(TsmConfig::new(&args.state, bundle), pod)?;
    for d in desc.iter().flat_map(|d| d.devices.iter()) {
        tsm.add_external_device(d)?;
        // The auditor needs its root too.
        let ext = if d.trust_anchor.starts_with(b"-----") {
            "pem"
        } else {
            "der"
        };
        std::fs::write(
            args.state
                .join("device-roots")
                .join(format!("external-{}.{ext}", d.id)),
            &d.trust_anchor,
        )?;
        println!("external device {} at {}", d.id, d.url());
    }
    let report = tsm.bring_up()?;
    println!(
        "bring-up: {} attested, {} quarantined{}",
        report.attested.len(),
        report.quarantined.len(),
        if report.resumed_vpods.is_empty() {
            String::new()
        } else {
            format!(", {} vPods resumed", report.resumed_vpods.len())
        }
    );
    for (id, check) in &report.quarantined {
        println!("  accelerator {id} quarantined: {check}");
    }

    let mut cfg = ServiceConfig::new(args.listen);
    cfg.tls_dir = args.tls_dir;
    cfg.extra_sans = args.san;
    cfg.sim_cvm_roots = sim_cvm_roots;
    cfg.reattest_interval =
        (args.reattest_interval > 0).then(|| Duration::from_secs(args.reattest_interval));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let shutdown = shutdown_signal()?;
        let service = serve(tsm, cfg, shutdown).await?;
        let tls = service.tls_paths().clone();
        println!("listening on https://{}", service.local_addr());
        println!(
            "provider credentials: {} and {} (server CA {}); pass --tls-dir {}",
            tls.admin_cert().display(),
            tls.admin_key().display(),
            tls.tsm_ca().display(),
            tls.dir.display()
        );
        use std::io::Write as _;
        std::io::stdout().flush()?;
        service.join().await?;
        println!("stopped; final audit checkpoint written");
        anyhow::Ok(())
    })
}

/// Completes on SIGINT or SIGTERM.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
