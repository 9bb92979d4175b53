//! `ualink-tsm demo`: the whole lifecycle on an embedded simulated pod, in seconds.
//!
//! In one process: the simulated pod, the TSM core (bring-up: SPDM with every accelerator,
//! appraisal), and the mutual-TLS service on an ephemeral loopback port. The provider's steps
//! go through the provider client with the admin certificate; each tenant's steps go through
//! its guest agent (ualink-guest-agent's library, a sim CVM) over its own attested TLS
//! session (KBS RCAR, the TLS key bound by the CVM evidence):
//!
//! 1. bring-up; 2. tenants "acme" and "globex": vPods, link keys, a window, TDIs LOCKed;
//! 3. the agents verify the TSM, attest their CVMs, verify every TDI report and accept →
//!    START; 4. acme offers a buffer to globex: read+write is denied by policy (rule named),
//!    read is granted, globex's driver maps the grant and the bytes cross encrypted links
//!    (the wire capture holds only ciphertext, the sim's leak oracle stays empty); 5. a key
//!    rotation; 6. a firmware tamper caught at re-attestation: quarantine, revocation, the
//!    agents see it. The state directory it leaves is what `ualink-attest report --state DIR`
//!    verifies: the demo registers its simulated roots (TEE and device vendors) in the
//!    auditor's trust store (outside the state directory, see `ualink_attest::trust_store`),
//!    prints what it added and how to remove it, runs the bare command's appraisal itself
//!    and only then prints the command.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use ualink_attest::pki::TrustAnchors;
use ualink_attest::trust_store::{TrustEntry, TrustStore};
use ualink_guest_agent::agent::{Agent, AgentConfig, TdiDecision};
use ualink_guest_agent::evidence::sim::SimProvider;
use ualink_guest_agent::peer::{DeviceClaims, TenantTrust};
use ualink_guest_agent::tsm::api::{ExportRequest, ImportRequest, Right};
use ualink_guest_agent::tsm::TsmTrust;
use ualink_kdrv::ids::{BufferHandle, OsInstanceId, Rights, TenantId};
use ualink_kdrv::{AttachRequest, FileCtx};
use ualink_policy::{PolicyBundle, PolicyEngine};
use ualink_sim::measurement::{MeasurementKind, Tamper};
use ualink_sim::{AccelId, PodSpec, SimPod};
use ualink_tsm::demo::{sim_pod_overlay, write_device_roots};
use ualink_tsm::service::{serve, ServiceConfig};
use ualink_tsm::{DeviceStatus, Tsm, TsmConfig};

use super::client::TsmClient;
use super::provider::Call;

/// `demo` options.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// State directory to create (must be absent or empty); default: a fresh directory
    /// under the system temp dir.
    #[arg(long)]
    pub(crate) state: Option<PathBuf>,
    /// Accelerators in the simulated pod (at least 4; split between the two tenants).
    #[arg(long, default_value_t = 8)]
    pub(crate) accelerators: u16,
}

const ACME: (u32, &str) = (1, "acme");
const GLOBEX: (u32, &str) = (2, "globex");
/// OS instances of the two tenants' CVMs (kdrv file contexts).
const ACME_OS: u32 = 10;
const GLOBEX_OS: u32 = 20;
/// The shared window and buffer on acme's first accelerator.
const WINDOW_BASE: u64 = 0x1_0000;
const WINDOW_LEN: u64 = 0x1_0000;
const BUFFER_OFFSET: u64 = 0x1000;
const BUFFER_LEN: u64 = 0x1000;
const FILL: u8 = 0xa5;

/// Wall-clock per phase, for the summary.
#[derive(Default)]
struct Timings(Vec<(&'static str, Duration)>);

impl Timings {
    fn mark(&mut self, name: &'static str, since: &mut Instant) {
        self.0.push((name, since.elapsed()));
        *since = Instant::now();
    }

    fn line(&self) -> String {
        self.0
            .iter()
            .map(|(n, d)| format!("{n} {}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

fn accel(v: u16) -> anyhow::Result<AccelId> {
    AccelId::new(v).with_context(|| format!("accelerator {v}"))
}

fn state_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match arg {
        Some(d) => d,
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            std::env::temp_dir().join(format!(
                "ualink-demo-{}-{}",
                now.as_secs(),
                std::process::id()
            ))
        }
    };
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: the demo onboards from scratch; pass a new --state directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Absolute, so the printed next command works from anywhere.
    Ok(std::fs::canonicalize(&dir)?)
}

/// The demo's policy data: the sim pod's roots and reference values, the two tenants (their
/// CVMs' launch measurement, the sim TEE's default), and the one sharing pair the provider
/// allows: acme → globex, read only.
fn overlay(pod: &SimPod, spec: &PodSpec) -> Value {
    let mut v = sim_pod_overlay(pod, spec);
    let m = hex::encode(ualink_attest::sim::default_measurement());
    if let Some(d) = v.get_mut("ualink_data").and_then(Value::as_object_mut) {
        let tenant = json!({"cvm": {"measurements": {"sim": [m]}}});
        d.insert(
            "tenants".into(),
            json!({ ACME.1: tenant.clone(), GLOBEX.1: tenant }),
        );
        d.insert(
            "sharing".into(),
            json!({"pairs": [{"exporter": ACME.1, "importer": GLOBEX.1, "rights": ["read"]}]}),
        );
    }
    v
}

/// What the summary reports.
#[derive(Default)]
struct Outcome {
    attested: usize,
    quarantined_at_bring_up: usize,
    acme: Vec<u16>,
    globex: Vec<u16>,
    accepted: usize,
    lead_keys: usize,
    lead_epoch: u32,
    share_rules: Vec<String>,
    bytes_moved: usize,
    wire_frames: usize,
    denied_rules: Vec<String>,
    rotated_pair: (u16, u16),
    rotated_keys: u64,
    tamper_check: String,
    tampered: u16,
    revoked: bool,
    withdrawn: bool,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let n = args.accelerators;
    if n < 4 {
        bail!("--accelerators {n}: the demo needs at least 4 (two per tenant)");
    }
    let total = Instant::now();
    let mut t = Instant::now();
    let state = state_dir(args.state)?;
    let mut timings = Timings::default();
    println!("ualink-tsm demo: a simulated pod of {n} accelerators and 1 switch");
    println!("state directory: {}", state.display());

    // ---------------------------------------------------------------- pod, policy, TSM
    let spec = ualink_sim::PodSpec::generate(&ualink_sim::GenParams {
        accelerators: n,
        ..Default::default()
    })?;
    let pod = SimPod::new(&spec)?;
    let bundle = PolicyBundle::defaults()?.with_data(overlay(&pod, &spec))?;
    let device_roots = write_device_roots(&state, &pod)?;
    let mut device_anchors = ualink_attest::spdm_evidence::DeviceTrustAnchors::new();
    for (_, der) in pod.vendor_roots() {
        device_anchors
            .add_der(&der)
            .map_err(|e| anyhow::anyhow!("vendor root: {e:?}"))?;
    }
    let claims: std::collections::BTreeMap<u16, DeviceClaims> = spec
        .accelerators
        .iter()
        .map(|a| {
            let id = a.id;
            (
                id,
                DeviceClaims {
                    device_id: ualink_tsm::tsm::device_subject(id),
                    vendor: a.vendor.clone(),
                    model: a.model.clone(),
                    firmware_version: a.firmware.clone(),
                    dhe: "secp384r1".into(),
                    aead: "aes-256-gcm".into(),
                },
            )
        })
        .collect();
    let mut cfg = TsmConfig::new(&state, bundle.clone());
    cfg.checkpoint_every = 16;
    let mut tsm = Tsm::open(cfg, pod)?;
    timings.mark("setup", &mut t);

    // ---------------------------------------------------------------- bring-up
    let bar = ProgressBar::new(u64::from(n));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} bring-up [{bar:32}] {pos}/{len} accelerators {msg} ({elapsed})",
        )?
        .progress_chars("=> "),
    );
    bar.set_message("SPDM: version, certificates, measurements, session");
    bar.enable_steady_tick(Duration::from_millis(80));
    // The bar advances as each device's attestation ends (on the attestation workers).
    let report = tsm.bring_up_with_progress(&|_| bar.inc(1))?;
    bar.finish_with_message("attested");
    timings.mark("bring-up", &mut t);
    println!(
        "[1/7] bring-up: {} attested, {} quarantined (SPDM chain to the vendor root, signed \
         measurements appraised by policy, a secured session per device)",
        report.attested.len(),
        report.quarantined.len()
    );
    let mut out = Outcome {
        attested: report.attested.len(),
        quarantined_at_bring_up: report.quarantined.len(),
        ..Outcome::default()
    };
    let members = report.attested.clone();
    let (acme, globex) = members.split_at(members.len() / 2);
    out.acme = acme.to_vec();
    out.globex = globex.to_vec();

    // The tenants' CVMs run on the same simulated host as the TSM: its sim platform.
    let cvm = Arc::new(SimProvider::load_or_create(&state.join("sim-platform"))?);
    let sim_ark = cvm.platform().ark_der().to_vec();
    let tee_root = state.join("sim-platform").join("ark.pem");
    let tee_anchors =
        TrustAnchors::amd_builtin()?.with_explicit_roots_pem(&std::fs::read(&tee_root)?)?;
    let engine = PolicyEngine::new(&bundle);
    let agent_config = |tenant: &str| AgentConfig {
        tsm_url: String::new(),
        tenant: tenant.to_string(),
        provider: cvm.clone(),
        tsm_trust: TsmTrust {
            roots: tee_anchors.clone(),
            pinned_ca_pem: None,
        },
        trust: TenantTrust {
            device_roots: device_anchors.clone(),
            tsm_roots: tee_anchors.clone(),
        },
        cvm_roots: tee_anchors.clone(),
        policy: engine.clone(),
        lead: false,
        device_claims: claims.clone(),
        accelerators: None,
        tx_ports: vec![0],
    };
    let configs = (agent_config(ACME.1), agent_config(GLOBEX.1));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut svc_cfg = ServiceConfig::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    svc_cfg.sim_cvm_roots = vec![sim_ark];
    let svc = rt.block_on(serve(tsm, svc_cfg, async move {
        let _ = stop_rx.await;
    }))?;
    let url = format!("https://{}", svc.local_addr());
    let core = svc.tsm();
    let admin = TsmClient::from_tls_dir(&url, &svc.tls_paths().dir)?;
    println!(
        "      service: {url} (mutual TLS 1.3; provider = admin certificate, tenants = their CVMs' attested keys)"
    );

    let played = rt.block_on(play(
        &admin,
        &url,
        &core,
        configs,
        &mut out,
        &mut timings,
        &mut t,
    ));
    // Stop the service whatever happened (final checkpoint), then report.
    let _ = stop_tx.send(());
    rt.block_on(svc.join())?;
    played?;
    let key = {
        let c = core
            .lock()
            .map_err(|_| anyhow::anyhow!("TSM lock poisoned"))?;
        c.identity().public_key().to_vec()
    };
    summary(
        &state,
        &key,
        &tee_root,
        &device_roots,
        &out,
        &timings,
        total.elapsed(),
    )
}

/// Runs `f` on the core (briefly, off the reactor).
async fn with_core<T: Send + 'static>(
    core: &Arc<Mutex<Tsm>>,
    f: impl FnOnce(&mut Tsm) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let core = core.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = core
            .lock()
            .map_err(|_| anyhow::anyhow!("TSM lock poisoned"))?;
        f(&mut c)
    })
    .await?
}

async fn provider(
    admin: &TsmClient,
    call: Result<Call, super::client::ClientError>,
) -> anyhow::Result<Value> {
    let call = call?;
    call.send(admin)
        .await
        .with_context(|| format!("{} {}", call.method, call.path))
}

#[allow(clippy::too_many_arguments)]
async fn play(
    admin: &TsmClient,
    url: &str,
    core: &Arc<Mutex<Tsm>>,
    (mut acme_cfg, mut globex_cfg): (AgentConfig, AgentConfig),
    out: &mut Outcome,
    timings: &mut Timings,
    t: &mut Instant,
) -> anyhow::Result<()> {
    let (a1, g1, g2) = match (out.acme.first(), out.globex.first(), out.globex.get(1)) {
        (Some(a), Some(g), Some(h)) => (*a, *g, *h),
        _ => bail!("fewer than 4 accelerators attested"),
    };

    // ------------------------------------------------------------ provider: onboarding
    // acme generates its own link keys (its lead agent); globex delegates them to the TSM.
    provider(admin, Call::tenant_add(ACME.1, ACME.0, true)).await?;
    provider(admin, Call::tenant_add(GLOBEX.1, GLOBEX.0, false)).await?;
    provider(admin, Call::vpod_create(ACME.1, &out.acme)).await?;
    provider(admin, Call::vpod_create(GLOBEX.1, &out.globex)).await?;
    provider(admin, Call::window_add(ACME.1, a1, WINDOW_BASE, WINDOW_LEN)).await?;
    let delegated = provider(admin, Call::provision(GLOBEX.1)).await?;
    let globex_keys = delegated
        .get("programmed")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    for a in out.globex.clone() {
        provider(admin, Call::lock(GLOBEX.1, a)).await?;
    }
    timings.mark("onboarding", t);
    println!(
        "[2/7] provider: tenants acme {:?} (keys from its lead agent) and globex {:?} (keys \
         delegated: {globex_keys} programmed by the TSM inside SPDM sessions, RX before TX, \
         TDIs LOCKED); a window on {a1}",
        out.acme, out.globex
    );

    // ------------------------------------------------------------ tenants: agents
    acme_cfg.tsm_url = url.to_string();
    acme_cfg.lead = true;
    globex_cfg.tsm_url = url.to_string();
    let (acme, globex) = tokio::try_join!(Agent::connect(acme_cfg), Agent::connect(globex_cfg))
        .context("connecting the tenants' agents")?;
    // acme's lead agent: nothing is locked yet (a device refuses LOCK on unkeyed links), so
    // it keys the vPod first; then the provider locks acme's TDIs and keys the route the
    // share will use.
    acme.attest_peers().await?;
    let lead = acme.lead_keys(&[]).await.context("acme's lead key round")?;
    out.lead_keys = lead.programmed.programmed;
    for a in out.acme.clone() {
        provider(admin, Call::lock(ACME.1, a)).await?;
    }
    provider(admin, Ok(Call::link_key(a1, g1))).await?;
    let (ra, rg) = tokio::try_join!(acme.attest_peers(), globex.attest_peers())?;
    for r in [&ra, &rg] {
        if !r.all_accepted() {
            bail!(
                "tenant {} did not accept every TDI: {}",
                r.tenant,
                serde_json::to_string(&r.tdis)?
            );
        }
    }
    out.accepted = ra.tdis.len() + rg.tdis.len();
    timings.mark("agents", t);
    println!(
        "[3/7] agents: acme and globex CVMs verified the TSM's evidence and attested over KBS \
         (TLS key bound in report_data); acme's lead agent generated its vPod keys (epoch {}, \
         {} programmed by the TSM); the agents verified {} signed TDI reports and accepted → RUN",
        lead.epoch, out.lead_keys, out.accepted
    );

    // ------------------------------------------------------------ the share
    core_write(core, a1).await?;
    let offer = acme
        .export(&ExportRequest {
            accelerator_id: a1,
            window_base: WINDOW_BASE,
            offset: BUFFER_OFFSET,
            len: BUFFER_LEN,
            to_tenant: GLOBEX.1.into(),
            to_os: GLOBEX_OS,
            rights: vec![Right::Read, Right::Write],
            os_instance: Some(ACME_OS),
        })
        .await?;
    let import = |rights: Vec<Right>| ImportRequest {
        offer_id: offer.offer_id.clone(),
        os_instance: GLOBEX_OS,
        accelerator_id: g1,
        rights,
    };
    out.denied_rules = match globex
        .import(&import(vec![Right::Read, Right::Write]))
        .await
    {
        Err(ualink_guest_agent::error::Error::TsmRefused { code, rules, .. })
            if code == "share_denied" =>
        {
            rules
        }
        Err(e) => return Err(e.into()),
        Ok(_) => bail!("a read+write import was granted"),
    };
    let grant = globex.import(&import(vec![Right::Read])).await?;
    out.share_rules = grant.rules.clone();
    let handle = buffer_handle(&offer.buffer)?;
    let (bytes, frames) = with_core(core, move |c| {
        // Globex's kernel driver: attach with the grant, map, read over the fabric.
        let fb = FileCtx::tenant(TenantId(GLOBEX.0), OsInstanceId(GLOBEX_OS));
        let att = c.driver_mut().attach(
            &fb,
            &AttachRequest {
                handle,
                importer_accel: accel(g1)?.to_kdrv(),
                rights: Rights::READ,
                invalidate_cookie: Some(0xB),
                grant: Some(&grant.grant),
            },
        )?;
        c.driver_mut().map(&fb, att)?;
        c.pod().capture_wire(true)?;
        let bytes = c.pod().read(
            accel(g1)?,
            accel(a1)?,
            WINDOW_BASE + BUFFER_OFFSET,
            BUFFER_LEN,
        );
        let captured = c.pod().captured()?;
        c.pod().capture_wire(false)?;
        let bytes = bytes?;
        if bytes.iter().any(|b| *b != FILL) || bytes.len() as u64 != BUFFER_LEN {
            bail!("globex read other bytes than acme wrote");
        }
        if captured.is_empty() {
            bail!("nothing captured on the wire");
        }
        if captured
            .iter()
            .any(|w| w.bytes.windows(64).any(|x| x.iter().all(|b| *b == FILL)))
        {
            bail!("plaintext on the wire");
        }
        if !c.pod().leaks()?.is_empty() {
            bail!("the sim's leak oracle recorded a leak");
        }
        Ok((bytes.len(), captured.len()))
    })
    .await?;
    out.bytes_moved = bytes;
    out.wire_frames = frames;
    timings.mark("share", t);
    println!(
        "[4/7] share acme:{a1} -> globex:{g1} read+write: denied ({})",
        out.denied_rules.join(", ")
    );
    println!(
        "[5/7] share acme:{a1} -> globex:{g1} read: granted ({}); {} bytes crossed encrypted \
         links, {} wire frames captured, ciphertext only, leak oracle empty",
        out.share_rules.join(", "),
        out.bytes_moved,
        out.wire_frames
    );

    // ------------------------------------------------------------ rotation
    // A TSM-keyed link (globex delegates); acme's keys are its lead agent's to roll.
    let r = provider(admin, Ok(Call::rotate(g1, g2))).await?;
    out.rotated_pair = (g1, g2);
    out.rotated_keys = r.get("programmed").and_then(Value::as_u64).unwrap_or(0);
    let w = globex.watch().await?;
    let notices = w
        .notices
        .iter()
        .filter(|e| e.kind == "keys_rotated")
        .count();
    // acme rolls its own keys: a second lead round at a higher epoch.
    let relead = acme
        .lead_keys(&[])
        .await
        .context("acme's second lead key round")?;
    out.lead_epoch = relead.epoch;
    timings.mark("rotation", t);
    println!(
        "[6/7] rotation {g1}<->{g2}: both ends re-attested, {} alternate-slot keys programmed; \
         globex's agent saw {notices} keys_rotated notices; acme's lead agent re-keyed its vPod \
         at epoch {} ({} keys)",
        out.rotated_keys, relead.epoch, relead.programmed.programmed
    );

    // ------------------------------------------------------------ tamper
    with_core(core, move |c| {
        Ok(c.pod().tamper_measurement(
            accel(a1)?,
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 3 },
        )?)
    })
    .await?;
    let d = provider(admin, Ok(Call::reattest(a1))).await?;
    let status: DeviceStatus = serde_json::from_value(d.get("status").cloned().unwrap_or_default())
        .context("device status")?;
    out.tampered = a1;
    let check = match status {
        DeviceStatus::Quarantined { check, .. } => check,
        other => bail!("tampered accelerator {a1} still {other:?}"),
    };
    // The check and the deciding rules of the failed appraisal.
    let rules: Vec<&str> = d
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.tamper_check = if rules.is_empty() {
        check
    } else {
        format!("{check}: {}", rules.join(", "))
    };
    out.revoked = with_core(core, move |c| {
        Ok(c.pod()
            .read(accel(g1)?, accel(a1)?, WINDOW_BASE + BUFFER_OFFSET, 16)
            .is_err())
    })
    .await?;
    if !out.revoked {
        bail!("globex could still read the tampered accelerator's memory");
    }
    let w = acme.watch().await?;
    out.withdrawn = w
        .reverified
        .iter()
        .any(|o| o.accelerator_id == a1 && matches!(o.decision, TdiDecision::Withdrawn { .. }));
    timings.mark("tamper", t);
    println!(
        "[7/7] tamper: accelerator {a1} firmware changed; re-attestation failed ({}), \
         quarantined, globex's mapping revoked; acme's agent withdrew its trust: {}",
        out.tamper_check,
        if out.withdrawn { "yes" } else { "no" }
    );
    Ok(())
}

/// Acme's compute fills the buffer it will share (a local write, not a fabric access).
async fn core_write(core: &Arc<Mutex<Tsm>>, a: u16) -> anyhow::Result<()> {
    with_core(core, move |c| {
        Ok(c.pod().local_write(
            accel(a)?,
            WINDOW_BASE + BUFFER_OFFSET,
            &[FILL; BUFFER_LEN as usize],
        )?)
    })
    .await
}

fn buffer_handle(hex_handle: &str) -> anyhow::Result<BufferHandle> {
    let v = hex::decode(hex_handle).context("buffer handle")?;
    let a: [u8; 16] = v
        .try_into()
        .map_err(|_| anyhow::anyhow!("buffer handle is not 16 bytes"))?;
    Ok(BufferHandle(a))
}

/// Where the bare `ualink-attest report --state STATE` gets its roots: the auditor's trust
/// store, with the demo's simulated roots registered in it.
enum AuditorTrust {
    /// Registered; the bare command's logic ran on the store.
    Store {
        store: TrustStore,
        from: &'static str,
        added: Vec<TrustEntry>,
    },
    /// No trust store could be used (why); the roots must be passed as flags.
    Flags(String),
}

/// Registers the demo's roots in the auditor's trust store and appraises `state` as the bare
/// `ualink-attest report --state STATE` would. Without a usable store, appraises with the
/// roots as explicit flags instead (and the printed command carries them).
fn auditor_check(
    state: &Path,
    tee_root: &Path,
    device_roots: &[PathBuf],
) -> anyhow::Result<(ualink_attest::report::Report, AuditorTrust)> {
    let registered = ualink_attest::trust_store::default_location()
        .map_err(anyhow::Error::from)
        .and_then(|(dir, from)| {
            let store = TrustStore::open(dir);
            let added =
                ualink_tsm::demo::register_demo_roots(&store, state, tee_root, device_roots)?;
            Ok((store, from, added))
        });
    match registered {
        Ok((store, from, added)) => {
            let (report, _) = ualink_tsm::demo::auditor_report_from_store(state, &store)?;
            Ok((report, AuditorTrust::Store { store, from, added }))
        }
        Err(e) => {
            let tee_roots = [tee_root.to_path_buf()];
            let report = ualink_tsm::demo::auditor_report(state, &tee_roots, device_roots)?;
            Ok((report, AuditorTrust::Flags(format!("{e:#}"))))
        }
    }
}

fn summary(
    state: &Path,
    key: &[u8],
    tee_root: &Path,
    device_roots: &[PathBuf],
    o: &Outcome,
    timings: &Timings,
    total: Duration,
) -> anyhow::Result<()> {
    let log = std::fs::read(state.join("audit.log"))?;
    let verified = ualink_attest::audit::verify_log(
        &log,
        &ualink_attest::audit::CheckpointVerifier::new(key),
        &[],
    )?;
    let (auditor, trust) = auditor_check(state, tee_root, device_roots)?;
    let auditor_exit = auditor.exit_code();
    println!();
    println!("summary");
    println!(
        "  devices        {} attested at bring-up, {} quarantined; accelerator {} quarantined after tamper",
        o.attested, o.quarantined_at_bring_up, o.tampered
    );
    println!(
        "  tenants        acme {:?}, globex {:?}; {} TDIs accepted by the tenants' agents",
        o.acme, o.globex, o.accepted
    );
    println!(
        "  keys           acme: {} from its lead agent; globex: delegated to the TSM",
        o.lead_keys
    );
    println!(
        "  share allowed  {} bytes over encrypted links ({} frames, ciphertext only); rules: {}",
        o.bytes_moved,
        o.wire_frames,
        o.share_rules.join(", ")
    );
    println!("  share denied   rules: {}", o.denied_rules.join(", "));
    println!(
        "  rotation       link {}<->{}: {} keys re-programmed by the TSM; acme's vPod re-keyed by its lead at epoch {}",
        o.rotated_pair.0, o.rotated_pair.1, o.rotated_keys, o.lead_epoch
    );
    println!(
        "  tamper         caught by {}; share revoked: {}; agent withdrew trust: {}",
        o.tamper_check,
        if o.revoked { "yes" } else { "no" },
        if o.withdrawn { "yes" } else { "no" }
    );
    println!(
        "  audit log      {} records, {} signed checkpoints; auditor replay exit {}",
        verified.size(),
        verified.checkpoints.len(),
        auditor_exit
    );
    println!("  timings        {}; total {}", timings.line(), ms(total));
    if auditor_exit != 0 {
        bail!(
            "the auditor's report over {} exits {auditor_exit}:\n{}",
            state.display(),
            auditor.to_text()
        );
    }
    println!();
    match &trust {
        AuditorTrust::Store { store, from, added } => {
            println!(
                "auditor trust store {} (from {from}): added the demo's simulated roots (the \
                 auditor never trusts roots found in the state directory):",
                store.dir().display()
            );
            for e in added {
                for f in e.fingerprints() {
                    println!(
                        "  {:<6} {} {} sha384 {f}",
                        e.kind.label(),
                        e.name,
                        e.path.display()
                    );
                }
            }
            let names: Vec<&str> = added.iter().map(|e| e.name.as_str()).collect();
            println!("  they vouch only for simulated hardware; remove them when done with:");
            println!("  ualink-attest trust remove {}", names.join(" "));
            println!();
            println!("next: verify every decision offline, as an auditor would:");
            println!("  ualink-attest report --state {}", state.display());
        }
        AuditorTrust::Flags(why) => {
            println!("no auditor trust store ({why}); the roots go on the command line:");
            println!();
            println!("next: verify every decision offline, as an auditor would:");
            let mut cmd = format!(
                "  ualink-attest report --state {} --trust {}",
                state.display(),
                tee_root.display()
            );
            for r in device_roots {
                cmd.push_str(&format!(" --device-trust {}", r.display()));
            }
            println!("{cmd}");
        }
    }
    println!("  (from this checkout: cargo run --release -q -p ualink-attest -- report ...)");
    Ok(())
}
