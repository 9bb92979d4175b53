//! `ualink-guest-agent`: the tenant's agent inside a confidential VM.
//!
//! Commands available now (the TSM-facing `run`, `attest-peers`, `export`, `import` and
//! `status` come with the TSM service):
//! - `evidence --tee TEE --report-data HEX [--out FILE]`: this CVM's raw evidence; for SNP and
//!   sim also `FILE.vcek.der` (or `.vlek.der`) and `FILE.ask.der`, usable as
//!   `ualink-attest verify FILE --certs FILE.vcek.der --certs FILE.ask.der`;
//! - `kbs-get --kbs URL --tee TEE --resource REPO/TYPE/TAG [--out FILE]`: one resource through
//!   the full RCAR flow and JWE decryption.
//!
//! Exit codes: 0 success, 10 malformed peer data, 11 peer incompatible, 12 crypto failure,
//! 13 verification failed, 14 policy denied, 15 refused by the peer, 16 I/O, 17 peer
//! misbehaved, 18 no usable TEE / TEE failure, 2 usage.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use ualink_guest_agent::evidence::{self, ProbePaths, TeeChoice, TeeKind};
use ualink_guest_agent::kbs::{fetch_resource, KbsClient, KbsTrust, ResourcePath};
use ualink_guest_agent::{Error, ErrorClass};

#[derive(Parser)]
#[command(
    name = "ualink-guest-agent",
    version,
    about = "The tenant's agent inside a confidential VM"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Tee {
    /// Whatever the machine offers: configfs-tsm, then /dev/sev-guest (never sim or sample).
    Auto,
    /// AMD SEV-SNP (configfs-tsm, else /dev/sev-guest).
    Snp,
    /// Intel TDX (configfs-tsm).
    Tdx,
    /// The software SNP-format platform in --sim-platform DIR (tests and demos only).
    Sim,
    /// Trustee's unsigned sample evidence (interop tests only).
    Sample,
}

#[derive(clap::Args)]
struct TeeArgs {
    /// Which TEE interface gives the evidence.
    #[arg(long, value_enum, default_value = "auto")]
    tee: Tee,
    /// The sim platform directory (created on first use; DIR/ark.pem is its root).
    #[arg(long = "sim-platform", value_name = "DIR")]
    sim_platform: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write this CVM's raw evidence for the given report_data.
    Evidence {
        #[command(flatten)]
        tee: TeeArgs,
        /// The report_data, hex, at most 64 bytes (zero-padded to 64).
        #[arg(long = "report-data", value_name = "HEX")]
        report_data: String,
        /// Where to write the evidence (raw bytes); certificates go beside it. Default: hex
        /// on stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Fetch one resource from a KBS (auth, attest, resource, JWE decryption).
    KbsGet {
        /// The KBS base URL (https://...; http:// only for test deployments).
        #[arg(long)]
        kbs: String,
        #[command(flatten)]
        tee: TeeArgs,
        /// The resource, REPO/TYPE/TAG.
        #[arg(long)]
        resource: String,
        /// PEM file of CA certificates for the KBS (default: the Mozilla roots).
        #[arg(long = "kbs-ca", value_name = "PEM")]
        kbs_ca: Option<PathBuf>,
        /// Where to write the resource (mode 0600). Default: stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<Error>().map(Error::class) {
        Some(ErrorClass::Malformed) => 10,
        Some(ErrorClass::PeerIncompatible) => 11,
        Some(ErrorClass::Crypto) => 12,
        Some(ErrorClass::Verification) => 13,
        Some(ErrorClass::PolicyDenied) => 14,
        Some(ErrorClass::Refused) => 15,
        Some(ErrorClass::Io) => 16,
        Some(ErrorClass::PeerMisbehaved) => 17,
        Some(ErrorClass::Platform) => 18,
        Some(ErrorClass::ApiMisuse) => 2,
        _ => 1,
    }
}

fn choice(t: &TeeArgs) -> anyhow::Result<TeeChoice> {
    Ok(match (t.tee, &t.sim_platform) {
        (Tee::Sim, Some(dir)) => TeeChoice::Sim(dir.clone()),
        (Tee::Sim, None) => anyhow::bail!(Error::ApiMisuse {
            reason: "--tee sim needs --sim-platform DIR".into()
        }),
        (_, Some(_)) => anyhow::bail!(Error::ApiMisuse {
            reason: "--sim-platform is only for --tee sim".into()
        }),
        (Tee::Auto, None) => TeeChoice::Auto,
        (Tee::Snp, None) => TeeChoice::Snp,
        (Tee::Tdx, None) => TeeChoice::Tdx,
        (Tee::Sample, None) => TeeChoice::Sample,
    })
}

fn open_provider(t: &TeeArgs) -> anyhow::Result<Box<dyn evidence::EvidenceProvider>> {
    let p = evidence::open(&choice(t)?, &ProbePaths::default())?;
    eprintln!("evidence from {}", p.describe());
    if matches!(p.tee(), TeeKind::Sim | TeeKind::Sample) {
        eprintln!(
            "warning: {} evidence is not hardware-backed; default policy refuses it",
            p.tee().name()
        );
    }
    Ok(p)
}

fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn cmd_evidence(tee: &TeeArgs, report_data: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let bytes = hex::decode(report_data.trim()).map_err(|e| Error::ApiMisuse {
        reason: format!("--report-data is not hex: {e}"),
    })?;
    if bytes.len() > 64 {
        anyhow::bail!(Error::ApiMisuse {
            reason: format!("--report-data is {} bytes, at most 64", bytes.len())
        });
    }
    let mut rd = [0u8; 64];
    rd[..bytes.len()].copy_from_slice(&bytes);
    let provider = open_provider(tee)?;
    let ev = provider.evidence(&rd)?;
    match out {
        None => {
            if ev.tee == TeeKind::Sample {
                // The sample evidence is JSON text already.
                println!("{}", String::from_utf8_lossy(&ev.raw));
            } else {
                println!("{}", hex::encode(&ev.raw));
            }
            if ev.certs.is_some() {
                eprintln!("note: pass --out FILE to also write the VCEK/ASK a verifier needs");
            }
        }
        Some(path) => {
            std::fs::write(path, &ev.raw).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), ev.raw.len());
            if let Some(c) = &ev.certs {
                let leaf_name = match ualink_attest::snp::SnpReport::parse(&ev.raw) {
                    Ok(r) if r.signing_key == ualink_attest::snp::SigningKey::Vlek => ".vlek.der",
                    _ => ".vcek.der",
                };
                let mut files = vec![(with_suffix(path, leaf_name), &c.leaf)];
                for (i, ask) in c.intermediates.iter().enumerate() {
                    let suffix = if i == 0 {
                        ".ask.der".to_string()
                    } else {
                        format!(".ask-{i}.der")
                    };
                    files.push((with_suffix(path, &suffix), ask));
                }
                let mut verify = format!("ualink-attest verify {}", path.display());
                for (p, der) in files {
                    std::fs::write(&p, der).with_context(|| format!("writing {}", p.display()))?;
                    verify.push_str(&format!(" --certs {}", p.display()));
                }
                if ev.tee == TeeKind::Sim {
                    if let Some(dir) = &tee.sim_platform {
                        verify.push_str(&format!(" --trust {}", dir.join("ark.pem").display()));
                    }
                }
                eprintln!("verify with: {verify}");
            } else if matches!(ev.tee, TeeKind::Snp) {
                eprintln!(
                    "note: the platform supplied no certificates; fetch the VCEK from AMD KDS"
                );
            }
        }
    }
    Ok(())
}

async fn cmd_kbs_get(
    kbs: &str,
    tee: &TeeArgs,
    resource: &str,
    kbs_ca: Option<&Path>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let path = ResourcePath::parse(resource)?;
    let trust = match kbs_ca {
        Some(p) => {
            KbsTrust::Pem(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
        }
        None => KbsTrust::WebPki,
    };
    let client = KbsClient::new(kbs, trust)?;
    if client.is_plaintext() {
        eprintln!("warning: {kbs} is plain HTTP: the session cookie and token travel unprotected (test deployments only)");
    }
    let provider = open_provider(tee)?;
    let secret = fetch_resource(&client, provider.as_ref(), &path).await?;
    match out {
        Some(p) => {
            write_private(p, &secret)?;
            eprintln!("wrote {path} to {} ({} bytes)", p.display(), secret.len());
        }
        None => std::io::stdout()
            .write_all(&secret)
            .context("writing the resource to stdout")?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.cmd {
        Cmd::Evidence {
            tee,
            report_data,
            out,
        } => cmd_evidence(tee, report_data, out.as_deref()),
        Cmd::KbsGet {
            kbs,
            tee,
            resource,
            kbs_ca,
            out,
        } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
            .and_then(|rt| {
                rt.block_on(cmd_kbs_get(
                    kbs,
                    tee,
                    resource,
                    kbs_ca.as_deref(),
                    out.as_deref(),
                ))
            }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
