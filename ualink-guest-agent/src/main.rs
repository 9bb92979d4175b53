//! `ualink-guest-agent`: the tenant's agent inside a confidential VM.
//!
//! Commands:
//! - `run --tsm URL --tenant NAME [...]`: the long-running agent: verify the TSM, attest this
//!   CVM, as a peer serve the lead on `--mesh-listen`, as `--lead` generate and distribute
//!   the vPod keys to the `--peer` agents and hand them to the TSM, judge the vPod's locked
//!   TDIs, then poll events and re-verify on every epoch change (`--once`: one round and
//!   exit);
//! - `attest-peers`: one judgement round (exit 14 if a TDI was rejected or withdrawn);
//! - `export`, `import`, `status`: sharing through the TSM and the agent's state;
//! - `evidence --tee TEE --report-data HEX [--out FILE]`: this CVM's raw evidence; for SNP and
//!   sim also `FILE.vcek.der` (or `.vlek.der`) and `FILE.ask.der`, usable as
//!   `ualink-attest verify FILE --certs FILE.vcek.der --certs FILE.ask.der`;
//! - `kbs-get --kbs URL --tee TEE --resource REPO/TYPE/TAG [--evidence-format trustee|ualink]
//!   [--out FILE]`: one resource through the full RCAR flow and JWE decryption; SNP evidence
//!   goes in a stock Trustee KBS's format unless `--evidence-format ualink`.
//!
//! Exit codes: 0 success, 10 malformed peer data, 11 peer incompatible, 12 crypto failure,
//! 13 verification failed, 14 policy denied, 15 refused by the peer, 16 I/O, 17 peer
//! misbehaved, 18 no usable TEE / TEE failure, 2 usage.

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use ualink_attest::pki::{certs_from_pem_or_der, TrustAnchors};
use ualink_attest::spdm_evidence::DeviceTrustAnchors;
use ualink_guest_agent::agent::{Agent, AgentConfig, PeerReport, TdiDecision};
use ualink_guest_agent::evidence::{self, ProbePaths, TeeChoice, TeeKind};
use ualink_guest_agent::kbs::{fetch_resource, KbsClient, KbsTrust, ResourcePath};
use ualink_guest_agent::peer::{DeviceClaims, TenantTrust};
use ualink_guest_agent::tsm::api::{ExportRequest, ImportRequest, Right};
use ualink_guest_agent::tsm::TsmTrust;
use ualink_guest_agent::{Error, ErrorClass};
use ualink_policy::{PolicyBundle, PolicyEngine};

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

/// How `kbs-get` writes SNP evidence.
#[derive(Clone, Copy, ValueEnum)]
enum EvidenceFormatArg {
    /// A stock Trustee KBS's: the sev crate's serde form of the parsed report.
    Trustee,
    /// Ours: the raw report bytes in base64 (ualink-tsm's KBS endpoints).
    Ualink,
}

impl From<EvidenceFormatArg> for evidence::EvidenceFormat {
    fn from(f: EvidenceFormatArg) -> Self {
        match f {
            EvidenceFormatArg::Trustee => evidence::EvidenceFormat::Trustee,
            EvidenceFormatArg::Ualink => evidence::EvidenceFormat::Ualink,
        }
    }
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

/// How to reach the TSM and what the tenant trusts.
#[derive(clap::Args)]
struct ConnArgs {
    /// The TSM service URL (https://host:port).
    #[arg(long)]
    tsm: String,
    /// The tenant this agent acts for.
    #[arg(long)]
    tenant: String,
    #[command(flatten)]
    tee: TeeArgs,
    /// The tenant's policy bundle directory (default: the built-in defaults, which refuse
    /// sim evidence).
    #[arg(long, value_name = "DIR")]
    policy: Option<PathBuf>,
    /// An extra TEE root (PEM or DER), e.g. a sim platform's ark.pem, for the TSM's and
    /// peer agents' evidence (the AMD ARKs are always trusted). Repeatable.
    #[arg(long, value_name = "FILE")]
    trust: Vec<PathBuf>,
    /// An extra TEE root for the TSM's evidence only. Repeatable.
    #[arg(long = "tsm-trust", value_name = "FILE")]
    tsm_trust: Vec<PathBuf>,
    /// A device vendor root (PEM or DER) for TDI report bundles. Repeatable.
    #[arg(long = "device-trust", value_name = "FILE")]
    device_trust: Vec<PathBuf>,
    /// Pin the TSM CA (PEM): the attested TSM must present exactly this CA.
    #[arg(long = "tsm-ca", value_name = "FILE")]
    tsm_ca: Option<PathBuf>,
    /// Device identity claims per accelerator, JSON {"<id>": {device_id, vendor, model,
    /// firmware_version, dhe, aead}}, used when the TSM sends none with a report.
    #[arg(long, value_name = "FILE")]
    devices: Option<PathBuf>,
    /// This CVM's accelerators, comma-separated (default: every vPod member).
    #[arg(long, value_delimiter = ',')]
    accelerators: Option<Vec<u16>>,
    /// The TX ports of this CVM's accelerators, comma-separated.
    #[arg(long = "tx-ports", value_delimiter = ',', default_value = "0")]
    tx_ports: Vec<u8>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Cmd {
    /// The long-running agent.
    Run {
        #[command(flatten)]
        conn: ConnArgs,
        /// This agent is the tenant's lead: it generates and distributes the vPod keys.
        #[arg(long)]
        lead: bool,
        /// A peer agent's mesh address (lead only). Repeatable.
        #[arg(long = "peer", value_name = "ADDR")]
        peers: Vec<SocketAddr>,
        /// Serve the lead on this address (peer agents).
        #[arg(long = "mesh-listen", value_name = "ADDR")]
        mesh_listen: Option<SocketAddr>,
        /// Seconds between event polls.
        #[arg(long, default_value = "5")]
        interval: u64,
        /// One round (attest peers, lead keys, one poll) and exit.
        #[arg(long)]
        once: bool,
    },
    /// Judge the vPod's TDIs once and tell the TSM.
    AttestPeers {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Offer a buffer of the tenant's window to another tenant or OS instance.
    Export {
        #[command(flatten)]
        conn: ConnArgs,
        /// The exporting accelerator (owner of the window).
        #[arg(long)]
        accelerator: u16,
        /// The window base.
        #[arg(long = "window-base", value_parser = parse_u64)]
        window_base: u64,
        /// Offset of the buffer in the window.
        #[arg(long, value_parser = parse_u64, default_value = "0")]
        offset: u64,
        /// Length of the buffer.
        #[arg(long, value_parser = parse_u64)]
        len: u64,
        /// The importing tenant.
        #[arg(long = "to-tenant")]
        to_tenant: String,
        /// The importing OS instance.
        #[arg(long = "to-os")]
        to_os: u32,
        /// Rights offered, comma-separated (read, write, atomic).
        #[arg(long, value_delimiter = ',')]
        rights: Vec<Right>,
        /// The exporter's OS instance.
        #[arg(long = "os-instance")]
        os_instance: Option<u32>,
    },
    /// Import an offer; writes the grant for the kernel driver.
    Import {
        #[command(flatten)]
        conn: ConnArgs,
        /// The offer id.
        #[arg(long)]
        offer: String,
        /// The importing OS instance.
        #[arg(long = "os-instance")]
        os_instance: u32,
        /// The importing accelerator.
        #[arg(long)]
        accelerator: u16,
        /// Rights requested, comma-separated.
        #[arg(long, value_delimiter = ',')]
        rights: Vec<Right>,
        /// Where to write the grant (COSE_Sign1 bytes). Default: base64 on stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Connect, attest, and show the agent's view of the TSM and the vPod.
    Status {
        #[command(flatten)]
        conn: ConnArgs,
    },
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
        /// How SNP evidence is written: `trustee` for a stock Trustee KBS, `ualink` for
        /// ualink-tsm's KBS endpoints (raw report bytes).
        #[arg(long = "evidence-format", value_enum, default_value = "trustee")]
        evidence_format: EvidenceFormatArg,
        /// PEM file of CA certificates for the KBS (default: the Mozilla roots).
        #[arg(long = "kbs-ca", value_name = "PEM")]
        kbs_ca: Option<PathBuf>,
        /// Where to write the resource (mode 0600). Default: stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s:?}: {e}"))
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("reading {}", p.display()))
}

fn tee_roots(files: &[PathBuf]) -> anyhow::Result<TrustAnchors> {
    let mut t = TrustAnchors::amd_builtin()?;
    for f in files {
        for der in certs_from_pem_or_der(&read(f)?)
            .with_context(|| format!("certificates in {}", f.display()))?
        {
            t = t
                .with_explicit_root_der(&der)
                .with_context(|| format!("root in {}", f.display()))?;
        }
    }
    Ok(t)
}

fn agent_config(c: &ConnArgs, lead: bool) -> anyhow::Result<AgentConfig> {
    let provider: Arc<dyn evidence::EvidenceProvider> = Arc::from(open_provider(&c.tee)?);
    let bundle = match &c.policy {
        Some(dir) => PolicyBundle::load(dir)
            .with_context(|| format!("loading the policy in {}", dir.display()))?,
        None => PolicyBundle::defaults()?,
    };
    let cvm_roots = tee_roots(&c.trust)?;
    let mut tsm_files = c.trust.clone();
    tsm_files.extend(c.tsm_trust.iter().cloned());
    let tsm_roots = tee_roots(&tsm_files)?;
    let mut device_roots = DeviceTrustAnchors::new();
    for f in &c.device_trust {
        for der in certs_from_pem_or_der(&read(f)?)
            .with_context(|| format!("certificates in {}", f.display()))?
        {
            device_roots
                .add_der(&der)
                .map_err(|e| anyhow::anyhow!("device root in {}: {e:?}", f.display()))?;
        }
    }
    let device_claims: BTreeMap<u16, DeviceClaims> = match &c.devices {
        Some(f) => serde_json::from_slice(&read(f)?)
            .with_context(|| format!("device claims in {}", f.display()))?,
        None => BTreeMap::new(),
    };
    Ok(AgentConfig {
        tsm_url: c.tsm.clone(),
        tenant: c.tenant.clone(),
        provider,
        tsm_trust: TsmTrust {
            roots: tsm_roots.clone(),
            pinned_ca_pem: c.tsm_ca.as_deref().map(read).transpose()?,
        },
        trust: TenantTrust {
            device_roots,
            tsm_roots,
        },
        cvm_roots,
        policy: PolicyEngine::new(&bundle),
        lead,
        device_claims,
        accelerators: c.accelerators.clone(),
        tx_ports: c.tx_ports.clone(),
    })
}

fn print<T: serde::Serialize>(json: bool, v: &T, text: impl FnOnce() -> String) {
    if json {
        match serde_json::to_string_pretty(v) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: encoding JSON: {e}"),
        }
    } else {
        println!("{}", text());
    }
}

fn peer_text(r: &PeerReport) -> String {
    let mut out = format!(
        "tenant {}: vPod {:?} (lead keys: {}, epoch sum {})",
        r.tenant, r.members, r.lead_keys, r.epoch_sum
    );
    for t in &r.tdis {
        let what = match &t.decision {
            TdiDecision::Accepted => "accepted".to_string(),
            TdiDecision::Rejected { failed_checks } => format!(
                "REJECTED: {}",
                failed_checks
                    .iter()
                    .map(|c| format!("{} ({})", c.check, c.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            TdiDecision::Withdrawn { reason } => format!("WITHDRAWN: {reason}"),
            TdiDecision::Skipped { reason } => format!("skipped: {reason}"),
            TdiDecision::Failed { error } => format!("FAILED: {error}"),
        };
        out.push_str(&format!(
            "\n  accelerator {} (epoch {}, state {}): {what}",
            t.accelerator_id,
            t.epoch,
            t.state.as_deref().unwrap_or("?")
        ));
    }
    out
}

fn bad_outcome(d: &TdiDecision) -> bool {
    matches!(
        d,
        TdiDecision::Rejected { .. } | TdiDecision::Withdrawn { .. }
    )
}

async fn connect(c: &ConnArgs, lead: bool) -> anyhow::Result<Agent> {
    let cfg = agent_config(c, lead)?;
    let agent = Agent::connect(cfg).await?;
    eprintln!(
        "attested to the TSM at {} as tenant {} (TLS key {})",
        c.tsm,
        c.tenant,
        hex::encode(agent.identity().public_sec1())
    );
    Ok(agent)
}

async fn cmd_run(
    c: &ConnArgs,
    lead: bool,
    peers: &[SocketAddr],
    mesh_listen: Option<SocketAddr>,
    interval: u64,
    once: bool,
) -> anyhow::Result<()> {
    let agent = Arc::new(connect(c, lead).await?);
    if let Some(addr) = mesh_listen {
        let listener = agent.mesh_listener(addr).await?;
        eprintln!("serving the lead on {}", listener.local_addr()?);
        let a = agent.clone();
        tokio::spawn(async move {
            loop {
                match a.serve_lead(&listener).await {
                    Ok(s) => eprintln!(
                        "lead {} attested; {} keys received (epoch {})",
                        hex::encode(&s.lead.tls_key),
                        s.keys.as_ref().map(|k| k.entries.len()).unwrap_or(0),
                        s.keys.as_ref().map(|k| k.epoch).unwrap_or(0)
                    ),
                    Err(e) => eprintln!("refused a mesh session: {e}"),
                }
            }
        });
    }
    // The vPod is keyed before its TDIs can be locked (a device refuses LOCK without live
    // link keys), so the lead keys first and every agent judges what is locked.
    if lead && agent.tsm().vpod().await?.lead_keys {
        // Peers may still be starting: retry connection failures for a while.
        let mut tries = 0;
        let l = loop {
            match agent.lead_keys(peers).await {
                Err(e) if e.class() == ErrorClass::Io && tries < 30 => {
                    tries += 1;
                    eprintln!("lead: {e}; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                other => break other?,
            }
        };
        print(c.json, &l, || {
            format!(
                "lead: {} keys of epoch {} generated, {} peers served, {} programmed by the TSM",
                l.keys,
                l.epoch,
                l.peers.len(),
                l.programmed.programmed
            )
        });
    }
    let report = agent.attest_peers().await?;
    print(c.json, &report, || peer_text(&report));
    loop {
        let w = match agent.watch().await {
            Ok(w) => w,
            // A TSM that is briefly unreachable or overloaded: keep polling.
            Err(e) if !once && transient(&e) => {
                eprintln!("warning: polling the TSM: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(interval.max(1))).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !w.events.is_empty() || once {
            print(c.json, &w, || {
                let mut s = format!("{} events", w.events.len());
                for t in &w.reverified {
                    s.push_str(&format!(
                        "\n  re-verified accelerator {}: {:?}",
                        t.accelerator_id, t.decision
                    ));
                }
                for n in &w.notices {
                    s.push_str(&format!("\n  notice {}: {}", n.kind, n.detail));
                }
                s
            });
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(interval.max(1))).await;
    }
}

/// Network failures and the TSM's own 5xx answers (platform or device trouble) are worth
/// retrying; a refusal is not.
fn transient(e: &Error) -> bool {
    match e {
        Error::Io { .. } => true,
        Error::TsmRefused { status, .. } | Error::Refused { status, .. } => *status >= 500,
        _ => false,
    }
}

async fn cmd_attest_peers(c: &ConnArgs) -> anyhow::Result<bool> {
    let agent = connect(c, false).await?;
    let report = agent.attest_peers().await?;
    print(c.json, &report, || peer_text(&report));
    Ok(!report.tdis.iter().any(|t| bad_outcome(&t.decision)))
}

async fn cmd_status(c: &ConnArgs) -> anyhow::Result<()> {
    let agent = connect(c, false).await?;
    let status = agent.status()?;
    let vpod = agent.tsm().vpod().await?;
    let v = serde_json::json!({"agent": status, "vpod": vpod});
    print(c.json, &v, || {
        format!(
            "tenant {} (TSM key sha384 {}, root {}); vPod {:?}, lead keys {}, TDIs: {}",
            status.tenant,
            status.tsm_key_sha384,
            status.tsm_root,
            vpod.members,
            vpod.lead_keys,
            vpod.tdis
                .iter()
                .map(|t| format!("{}={}", t.accelerator_id, t.state))
                .collect::<Vec<_>>()
                .join(", ")
        )
    });
    Ok(())
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
    format: evidence::EvidenceFormat,
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
    let client = KbsClient::new(kbs, trust)?.with_evidence_format(format);
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
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
    };
    let result = match &cli.cmd {
        Cmd::Run {
            conn,
            lead,
            peers,
            mesh_listen,
            interval,
            once,
        } => rt().and_then(|rt| {
            rt.block_on(cmd_run(conn, *lead, peers, *mesh_listen, *interval, *once))
        }),
        Cmd::AttestPeers { conn } => {
            match rt().and_then(|rt| rt.block_on(cmd_attest_peers(conn))) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::from(14),
                Err(e) => Err(e),
            }
        }
        Cmd::Export {
            conn,
            accelerator,
            window_base,
            offset,
            len,
            to_tenant,
            to_os,
            rights,
            os_instance,
        } => rt().and_then(|rt| {
            rt.block_on(async {
                let agent = connect(conn, false).await?;
                let req = ExportRequest {
                    accelerator_id: *accelerator,
                    window_base: *window_base,
                    offset: *offset,
                    len: *len,
                    to_tenant: to_tenant.clone(),
                    to_os: *to_os,
                    rights: rights.clone(),
                    os_instance: *os_instance,
                };
                let o = agent.export(&req).await?;
                print(conn.json, &o, || {
                    format!("offer {} (buffer {})", o.offer_id, o.buffer)
                });
                Ok(())
            })
        }),
        Cmd::Import {
            conn,
            offer,
            os_instance,
            accelerator,
            rights,
            out,
        } => rt().and_then(|rt| {
            rt.block_on(async {
                let agent = connect(conn, false).await?;
                let req = ImportRequest {
                    offer_id: offer.clone(),
                    os_instance: *os_instance,
                    accelerator_id: *accelerator,
                    rights: rights.clone(),
                };
                let g = agent.import(&req).await?;
                if let Some(p) = out {
                    std::fs::write(p, &g.grant)
                        .with_context(|| format!("writing {}", p.display()))?;
                }
                use base64::Engine as _;
                let v = serde_json::json!({
                    "grant": base64::engine::general_purpose::STANDARD.encode(&g.grant),
                    "buffer": g.buffer, "rules": g.rules, "expiry_ns": g.expiry_ns,
                });
                print(conn.json, &v, || match out {
                    Some(p) => format!(
                        "grant written to {} (rules {:?}, expires at {} ns)",
                        p.display(),
                        g.rules,
                        g.expiry_ns
                    ),
                    None => v["grant"].as_str().unwrap_or_default().to_string(),
                });
                Ok(())
            })
        }),
        Cmd::Status { conn } => rt().and_then(|rt| rt.block_on(cmd_status(conn))),
        Cmd::Evidence {
            tee,
            report_data,
            out,
        } => cmd_evidence(tee, report_data, out.as_deref()),
        Cmd::KbsGet {
            kbs,
            tee,
            resource,
            evidence_format,
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
                    (*evidence_format).into(),
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
