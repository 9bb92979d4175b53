//! `ualink-tsm demo`: the whole lifecycle on an embedded simulated pod, in seconds.
//!
//! Bring-up (SPDM with every accelerator, appraisal), two tenants ("acme" and "globex") with
//! vPods, link keys and windows, TDISP LOCK → report → accept → START, one allowed
//! cross-tenant share whose bytes really cross encrypted links (the wire capture holds only
//! ciphertext and the sim's leak oracle stays empty), one denied share naming its rule, a key
//! rotation, and a firmware tamper caught at re-attestation that revokes the share. The state
//! directory it leaves is what `ualink-attest report` verifies; the demo runs that appraisal
//! itself before printing the command.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use ualink_kdrv::ids::{OsInstanceId, Rights, TenantId, WindowId};
use ualink_kdrv::{AttachRequest, FileCtx};
use ualink_policy::input::Right;
use ualink_sim::measurement::{MeasurementKind, Tamper};
use ualink_sim::{AccelId, SimPod};
use ualink_tsm::demo::{tenants_overlay, write_device_roots, SharePair};
use ualink_tsm::{DeviceStatus, ShareRequest, Tsm, TsmConfig, TsmError};

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
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        self.0.push((name, t.elapsed()));
        r
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

/// What the summary reports.
struct Outcome {
    attested: usize,
    quarantined_at_bring_up: usize,
    acme: Vec<u16>,
    globex: Vec<u16>,
    tdis_running: usize,
    share_rules: Vec<String>,
    bytes_moved: usize,
    wire_frames: usize,
    denied_rules: Vec<String>,
    rotated_epoch: u32,
    rotated_pair: (u16, u16),
    tamper_check: String,
    tampered: u16,
    revoked: bool,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<()> {
    let n = args.accelerators;
    if n < 4 {
        bail!("--accelerators {n}: the demo needs at least 4 (two per tenant)");
    }
    let total = Instant::now();
    let state = state_dir(args.state)?;
    let mut timings = Timings::default();
    println!("ualink-tsm demo: a simulated pod of {n} accelerators and 1 switch");
    println!("state directory: {}", state.display());

    // ---------------------------------------------------------------- the pod and the TSM
    let (spec, pod) = timings.time("pod", || -> anyhow::Result<_> {
        let spec = ualink_sim::PodSpec::generate(&ualink_sim::GenParams {
            accelerators: n,
            ..Default::default()
        })?;
        let pod = SimPod::new(&spec)?;
        Ok((spec, pod))
    })?;
    let bundle = ualink_policy::PolicyBundle::defaults()?.with_data(tenants_overlay(
        &pod,
        &spec,
        &[ACME.1, GLOBEX.1],
        &[SharePair {
            exporter: ACME.1,
            importer: GLOBEX.1,
            rights: &["read"],
        }],
    ))?;
    let device_roots = write_device_roots(&state, &pod)?;
    let mut cfg = TsmConfig::new(&state, bundle);
    cfg.checkpoint_every = 16;
    let mut tsm = Tsm::open(cfg, pod)?;

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
    let report = timings.time("bring-up", || tsm.bring_up())?;
    bar.set_position(u64::from(n));
    bar.finish_with_message("attested");
    println!(
        "[1/7] bring-up: {} attested, {} quarantined (SPDM 1.2 chain + signed measurements + \
         secured session per device, appraised by ualink.device)",
        report.attested.len(),
        report.quarantined.len()
    );

    // ---------------------------------------------------------------- tenants and vPods
    let members: Vec<u16> = report.attested.clone();
    let half = members.len() / 2;
    let (acme, globex) = members.split_at(half);
    let (acme, globex) = (acme.to_vec(), globex.to_vec());
    let (&a1, &a2, &g1) = match (acme.first(), acme.get(1), globex.first()) {
        (Some(a), Some(b), Some(g)) => (a, b, g),
        _ => bail!("fewer than 4 accelerators attested"),
    };
    let window = timings.time("onboarding", || -> anyhow::Result<u32> {
        for ((id, name), m) in [(ACME, &acme), (GLOBEX, &globex)] {
            tsm.tenant_add(id, name)?;
            tsm.vpod_create(id, m)?;
            tsm.provision_keys(id)?;
        }
        // The cross-tenant route the share will use.
        tsm.key_link(a1, g1)?;
        Ok(tsm.window_create(ACME.0, a1, WINDOW_BASE, WINDOW_LEN)?)
    })?;
    println!(
        "[2/7] tenants: acme vPod {acme:?}, globex vPod {globex:?}; UALinkSec keys programmed \
         per (TX port, peer) inside SPDM sessions, RX before TX; window 0x{WINDOW_BASE:x}+0x{WINDOW_LEN:x} on {a1}"
    );

    // ---------------------------------------------------------------- TDISP
    let tdis_running = timings.time("tdisp", || -> anyhow::Result<usize> {
        let mut running = 0;
        for ((id, _), m) in [(ACME, &acme), (GLOBEX, &globex)] {
            for &a in m.iter() {
                tsm.tdi_lock(id, a)?;
                tsm.tdi_accept(id, a)?;
                running += 1;
            }
        }
        Ok(running)
    })?;
    println!("[3/7] TDISP: {tdis_running} TDIs LOCKED, signed reports accepted, STARTed (RUN)");

    // ---------------------------------------------------------------- shares
    let (share_rules, denied_rules, bytes_moved, wire_frames, handle) =
        timings.time("share", || -> anyhow::Result<_> {
            let fa = FileCtx::tenant(TenantId(ACME.0), OsInstanceId(ACME_OS));
            let handle =
                tsm.driver_mut()
                    .export(&fa, WindowId(window), BUFFER_OFFSET, BUFFER_LEN)?;
            tsm.pod().local_write(
                accel(a1)?,
                WINDOW_BASE + BUFFER_OFFSET,
                &[FILL; BUFFER_LEN as usize],
            )?;
            let request = |rights| ShareRequest {
                exporter_tenant: ACME.0,
                exporter_os: ACME_OS,
                exporter_accel: a1,
                buffer: handle,
                importer_tenant: GLOBEX.0,
                importer_os: GLOBEX_OS,
                importer_accel: g1,
                rights,
            };
            let denied = match tsm.share(&request(vec![Right::Read, Right::Write])) {
                Err(TsmError::PolicyDenied { rules, .. }) => rules,
                Err(e) => return Err(e.into()),
                Ok(_) => bail!("a read+write share was allowed"),
            };
            let grant = tsm.share(&request(vec![Right::Read]))?;
            let fb = FileCtx::tenant(TenantId(GLOBEX.0), OsInstanceId(GLOBEX_OS));
            let att = tsm.driver_mut().attach(
                &fb,
                &AttachRequest {
                    handle,
                    importer_accel: accel(g1)?.to_kdrv(),
                    rights: Rights::READ,
                    invalidate_cookie: Some(0xB),
                    grant: Some(&grant.grant),
                },
            )?;
            tsm.driver_mut().map(&fb, att)?;
            tsm.pod().capture_wire(true)?;
            let bytes = tsm.pod().read(
                accel(g1)?,
                accel(a1)?,
                WINDOW_BASE + BUFFER_OFFSET,
                BUFFER_LEN,
            )?;
            let captured = tsm.pod().captured()?;
            tsm.pod().capture_wire(false)?;
            if bytes != vec![FILL; BUFFER_LEN as usize] {
                bail!("globex read other bytes than acme wrote");
            }
            if captured.is_empty() {
                bail!("nothing captured on the wire");
            }
            if captured
                .iter()
                .any(|c| c.bytes.windows(64).any(|w| w.iter().all(|b| *b == FILL)))
            {
                bail!("plaintext on the wire");
            }
            if !tsm.pod().leaks()?.is_empty() {
                bail!("the sim's leak oracle recorded a leak");
            }
            Ok((grant.rules, denied, bytes.len(), captured.len(), handle))
        })?;
    let _ = handle;
    println!(
        "[4/7] share acme:{a1} -> globex:{g1} read: allowed ({}); {bytes_moved} bytes crossed \
         encrypted links, {wire_frames} wire frames captured, ciphertext only, leak oracle empty",
        share_rules.join(", ")
    );
    println!(
        "[5/7] share acme:{a1} -> globex:{g1} read+write: denied ({})",
        denied_rules.join(", ")
    );

    // ---------------------------------------------------------------- rotation
    let rotated = timings.time("rotation", || tsm.rotate(a1, a2))?;
    let rotated_epoch = rotated.iter().map(|s| s.epoch).max().unwrap_or(0);
    println!(
        "[6/7] rotation {a1}<->{a2}: both ends re-attested, alternate slot keyed, epoch {rotated_epoch}"
    );

    // ---------------------------------------------------------------- tamper
    let (tamper_check, revoked) = timings.time("tamper", || -> anyhow::Result<_> {
        tsm.pod().tamper_measurement(
            accel(a1)?,
            MeasurementKind::Firmware,
            Tamper::FlipBit { offset: 3 },
        )?;
        let d = tsm.reattest(a1)?;
        let check = match d.status {
            DeviceStatus::Quarantined { check, .. } => check,
            other => bail!("tampered accelerator {a1} still {other:?}"),
        };
        let revoked = tsm
            .pod()
            .read(accel(g1)?, accel(a1)?, WINDOW_BASE + BUFFER_OFFSET, 16)
            .is_err();
        if !revoked {
            bail!("globex could still read the tampered accelerator's memory");
        }
        Ok((check, revoked))
    })?;
    println!(
        "[7/7] tamper: accelerator {a1} firmware changed; re-attestation failed ({tamper_check}), \
         quarantined, share revoked, its links stopped"
    );

    let outcome = Outcome {
        attested: report.attested.len(),
        quarantined_at_bring_up: report.quarantined.len(),
        acme,
        globex,
        tdis_running,
        share_rules,
        bytes_moved,
        wire_frames,
        denied_rules,
        rotated_epoch,
        rotated_pair: (a1, a2),
        tamper_check,
        tampered: a1,
        revoked,
    };
    let key = tsm.identity().public_key().to_vec();
    tsm.shutdown()?;
    summary(
        &state,
        &key,
        &device_roots,
        &outcome,
        &timings,
        total.elapsed(),
    )
}

fn summary(
    state: &Path,
    key: &[u8],
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
    let tee_root = state.join("sim-platform").join("ark.pem");
    let auditor =
        ualink_tsm::demo::auditor_report(state, std::slice::from_ref(&tee_root), device_roots)?;
    let auditor_exit = auditor.exit_code();
    println!();
    println!("summary");
    println!(
        "  devices        {} attested at bring-up, {} quarantined; accelerator {} quarantined after tamper",
        o.attested, o.quarantined_at_bring_up, o.tampered
    );
    println!(
        "  tenants        acme {:?}, globex {:?}; {} TDIs ran",
        o.acme, o.globex, o.tdis_running
    );
    println!(
        "  share allowed  {} bytes over encrypted links ({} frames, ciphertext only); rules: {}",
        o.bytes_moved,
        o.wire_frames,
        o.share_rules.join(", ")
    );
    println!("  share denied   rules: {}", o.denied_rules.join(", "));
    println!(
        "  rotation       link {}<->{} now at key epoch {}",
        o.rotated_pair.0, o.rotated_pair.1, o.rotated_epoch
    );
    println!(
        "  tamper         caught by {}; share revoked: {}",
        o.tamper_check,
        if o.revoked { "yes" } else { "no" }
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
    Ok(())
}
