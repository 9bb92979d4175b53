//! The [`Tsm`]: the core the service layer calls. It owns the driver core (ualink-kdrv on the
//! embedded simulated pod), one SPDM secured session per attested device, the policy engine,
//! the audit log and the state store.
//!
//! Every decision follows the same order: check the audit log is writable, decide, append the
//! audit record durably, then change state and acknowledge. A decision whose record cannot be
//! written is refused ([`TsmError::AuditUnavailable`]).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use ualink_attest::audit::event::{AuditEvent, Bytes, LinkEnd, ShareParty, TsmEvidenceBytes};
use ualink_attest::audit::{AuditRecord, DecisionKind, Digest384, Outcome};
use ualink_attest::spdm_evidence::DeviceEvidenceBundle;
use ualink_attest::tdi_report::{TdiReportBundle, TdiReportContent};
use ualink_attest::UnixTime;
use ualink_kdrv::crypto::{RingCrypto, TsmPublicKey};
use ualink_kdrv::ids::BufferHandle;
use ualink_kdrv::ids::OsInstanceId;
use ualink_kdrv::ids::PortId;
use ualink_kdrv::ops::{KeySlotCommand, KeySlotRef};
use ualink_kdrv::{Config, Driver, FileCtx, NullSink, TdiState};
use ualink_policy::input::{KeyEnd, RotationTrigger};
use ualink_policy::input::{MeasurementInput, Right, ShareEnd, SpdmParams, TdiStateInput};
use ualink_policy::{
    Decision, DecisionInput, DeviceAppraisalInput, HexBytes, PolicyBundle, PolicyEngine, Sha384,
};
use ualink_policy::{KeyRotationInput, ShareInput};
use ualink_sim::{AccelId, SimPod};
use ualink_spdm::algo::{AeadAlg, AsymAlg, DheGroup, HashAlg, SpdmVersion};
use ualink_spdm::cert_chain::{SpdmCertChain, TrustAnchors};
use ualink_spdm::keyprog::{self, Direction as KDir, KeyTarget, Slot};
use ualink_spdm::requester::driver::{attest, request};
use ualink_spdm::requester::{AppRequest, AppResponse, Attestation, Requester, RequesterConfig};
use ualink_spdm::tdisp::msg::{InterfaceId, LockFlags, LockInterfaceParams, StartNonce};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::TdiState as SpdmTdiState;

use crate::audit::AuditLog;
use crate::error::{Result, TsmError};
use crate::grant::{GrantSigner, GrantSpec};
use crate::identity::TsmIdentity;
use crate::keys::{self, SlotRecord};
use crate::mailbox::Mailbox;
use crate::store::{encode_json_many, RedbStore, StateStore, StateStoreExt, Table};

/// The driver core as the TSM runs it on the embedded pod.
pub type PodDriver = Driver<SimPod, RingCrypto, FaultTap, NullSink>;

/// Most hardware faults kept between two [`Tsm::process_faults`] calls (older ones beyond this
/// are counted, not kept: the driver has already acted on them).
pub const MAX_TAPPED_FAULTS: usize = 4096;

/// The driver's audit sink as the TSM runs it: keeps the hardware fault reports the driver
/// handled, so that [`Tsm::process_faults`] can act on them (mark TDIs ERROR, drop keys, audit).
#[derive(Debug, Default)]
pub struct FaultTap {
    faults: Mutex<(Vec<ualink_kdrv::ops::FaultReport>, u64)>,
}

impl FaultTap {
    /// Takes the faults seen so far and how many were dropped beyond [`MAX_TAPPED_FAULTS`].
    fn drain(&self) -> (Vec<ualink_kdrv::ops::FaultReport>, u64) {
        self.faults
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default()
    }
}

impl ualink_kdrv::AuditSink for FaultTap {
    fn record(&self, event: &ualink_kdrv::AuditEvent) {
        if let ualink_kdrv::AuditEvent::Fault(f) = event {
            if let Ok(mut g) = self.faults.lock() {
                if g.0.len() < MAX_TAPPED_FAULTS {
                    g.0.push(*f);
                } else {
                    g.1 = g.1.saturating_add(1);
                }
            }
        }
    }
}

/// What one [`Tsm::process_faults`] call found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSummary {
    /// The hardware fault reports handled, described.
    pub faults: Vec<String>,
    /// Fault reports dropped because too many arrived between two calls (still acted on by the
    /// driver).
    pub dropped: u64,
    /// Accelerators whose TDI entered ERROR (now mirrored, audited, dependents revoked).
    pub tdi_errors: Vec<u16>,
    /// Pairs whose keys were invalidated (integrity failure).
    pub stopped_pairs: Vec<(u16, u16)>,
    /// Devices reset by the hardware (quarantined until re-attested).
    pub reset: Vec<u16>,
}

/// How the TSM is set up.
#[derive(Debug)]
pub struct TsmConfig {
    /// The state directory (`STATE`): key, audit log, state store, policy copy.
    pub state_dir: PathBuf,
    /// The policy bundle decisions are made under (written to `STATE/policy` for auditors).
    pub policy: PolicyBundle,
    /// Sign an audit checkpoint every this many records (and at shutdown).
    pub checkpoint_every: u64,
    /// Devices attested at once, and pairs of devices keyed at once; `None` = every core.
    pub parallelism: Option<NonZeroUsize>,
    /// Lifetime of an import grant on the fabric clock (ns).
    pub grant_ttl_ns: u64,
    /// When link keys are rotated without being asked ([`Tsm::rotate_due`]).
    pub rotation: RotationConfig,
}

/// Automatic link-key rotation ([`Tsm::rotate_due`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RotationConfig {
    /// Rotate a pair whose keys are older than this (trigger `scheduled`); `None` = never.
    pub max_key_age_secs: Option<u64>,
    /// The usage threshold programmed into the hardware at open: a TX stream counter reaching
    /// it makes the device roll its key (KeyRollMSG, UALink §9.5.9.1.1) or, with no fresh
    /// alternate key, stop the slot; [`Tsm::rotate_due`] then re-keys the pair (trigger
    /// `threshold`). `None` leaves the hardware's own threshold.
    pub usage_threshold: Option<u32>,
}

impl TsmConfig {
    /// Defaults for `state_dir` under `policy`: a checkpoint every 64 records, every core.
    pub fn new(state_dir: impl Into<PathBuf>, policy: PolicyBundle) -> Self {
        Self {
            state_dir: state_dir.into(),
            policy,
            checkpoint_every: 64,
            parallelism: None,
            grant_ttl_ns: 60_000_000_000,
            rotation: RotationConfig::default(),
        }
    }
}

/// A device's standing with the TSM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum DeviceStatus {
    /// Not attested yet in this run.
    Pending,
    /// Attested and appraised; usable.
    Attested,
    /// Failed `check`; no vPod, no keys, no routing.
    Quarantined {
        /// The failed check ("spdm", "chain", "policy", ...).
        check: String,
        /// Why.
        reason: String,
    },
}

/// What the TSM knows about one accelerator (no secrets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceView {
    /// UALink accelerator ID.
    pub id: u16,
    /// Vendor, model and firmware from the pod inventory (checked by appraisal).
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Firmware version.
    pub firmware: String,
    /// Current status.
    pub status: DeviceStatus,
    /// Attestation epoch (bumped by every successful attestation).
    pub epoch: u64,
    /// Deciding rules of the last appraisal.
    pub rules: Vec<String>,
    /// Unix time of the last attestation.
    pub attested_at: Option<u64>,
    /// For an external, attest-only device ([`crate::pod`]): its `tcp://HOST:PORT`. It has no
    /// fabric port, so no vPod, keys or TDI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

pub(crate) struct Device {
    pub(crate) view: DeviceView,
    /// The device evidence bundle of the last successful attestation.
    pub(crate) evidence: Option<Vec<u8>>,
    /// The secured session (key programming, TDISP), while attested.
    pub(crate) session: Option<Requester>,
    /// The locked or running TDI, if any.
    pub(crate) tdi: Option<TdiSession>,
    /// How to reach an external device (spdm-emu socket) and the root its chain must end in.
    pub(crate) external: Option<(String, Arc<TrustAnchors>)>,
}

/// A TDI the TSM locked: the START nonce stays here (never persisted).
pub(crate) struct TdiSession {
    pub(crate) tdi: TdispRequester,
    pub(crate) nonce: StartNonce,
    pub(crate) tenant: u32,
    pub(crate) report: Vec<u8>,
}

/// A TDI's state as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdiRecord {
    /// The tenant it is assigned to.
    pub tenant: u32,
    /// `CONFIG_LOCKED` or `RUN`.
    pub state: String,
    /// The device attestation epoch it was locked under.
    pub epoch: u64,
}

/// A tenant as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Numeric id (kdrv's `TenantId`, nonzero).
    pub id: u32,
    /// The name policy knows it by (`data.ualink_data.tenants.<name>`).
    pub name: String,
    /// Whether the tenant's lead agent generates its vPod's master keys (UALink §9.4);
    /// `false`: the TSM generates them (delegated).
    #[serde(default)]
    pub lead_keys: bool,
}

/// Options of a new tenant ([`Tsm::tenant_add_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantOptions {
    /// The tenant's lead agent generates the vPod's master keys and hands them over
    /// ([`Tsm::provision_keys_with`]); the TSM refuses to generate them. `false` (the default):
    /// the tenant delegates key generation to the TSM ([`Tsm::provision_keys`]).
    pub lead_keys: bool,
}

/// A vPod as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpodRecord {
    /// Owner.
    pub tenant: u32,
    /// Members (accelerator IDs), as created.
    pub members: Vec<u16>,
}

/// A memory window as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowRecord {
    /// Owner.
    pub tenant: u32,
    /// The accelerator whose memory it is.
    pub accel: u16,
    /// Base address.
    pub base: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A request to share an exported buffer with another tenant (or OS instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRequest {
    /// Exporting tenant.
    pub exporter_tenant: u32,
    /// Exporting OS instance.
    pub exporter_os: u32,
    /// Accelerator whose memory backs the buffer.
    pub exporter_accel: u16,
    /// The handle the driver's `export` returned.
    pub buffer: BufferHandle,
    /// Importing tenant.
    pub importer_tenant: u32,
    /// Importing OS instance.
    pub importer_os: u32,
    /// Importing accelerator.
    pub importer_accel: u16,
    /// Rights asked for.
    pub rights: Vec<Right>,
}

/// An allowed share: the grant for the importer's driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareGrant {
    /// The signed ImportGrant (tagged COSE_Sign1).
    pub grant: Vec<u8>,
    /// The deciding rules.
    pub rules: Vec<String>,
    /// Expiry on the fabric clock (ns).
    pub expiry_ns: u64,
}

/// An issued grant as stored (its digest, not the grant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// Exporter tenant.
    pub exporter_tenant: u32,
    /// Exporter accelerator.
    pub exporter_accel: u16,
    /// Importer tenant.
    pub importer_tenant: u32,
    /// Importer OS instance.
    pub importer_os: u32,
    /// Importer accelerator.
    pub importer_accel: u16,
    /// Rights bits.
    pub rights: u8,
    /// Expiry (fabric ns).
    pub expiry_ns: u64,
    /// SHA-384 of the grant bytes (hex).
    pub digest: String,
}

/// Summary of a bring-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BringUpReport {
    /// Devices attested and appraised.
    pub attested: Vec<u16>,
    /// Devices quarantined, with the failed check.
    pub quarantined: Vec<(u16, String)>,
    /// vPods resumed from the state store.
    pub resumed_vpods: Vec<u32>,
}

/// The trusted security manager.
pub struct Tsm {
    pub(crate) state_dir: PathBuf,
    pub(crate) identity: TsmIdentity,
    pub(crate) audit: AuditLog,
    pub(crate) store: Box<dyn StateStore>,
    pub(crate) bundle_digest: [u8; 48],
    pub(crate) policy_digest: Digest384,
    pub(crate) engine: PolicyEngine,
    pub(crate) driver: PodDriver,
    pub(crate) anchors: Arc<TrustAnchors>,
    pub(crate) devices: BTreeMap<u16, Device>,
    pub(crate) parallelism: usize,
    pub(crate) ctx: FileCtx,
    pub(crate) grants: GrantSigner,
    pub(crate) grant_ttl_ns: u64,
    pub(crate) rotation: RotationConfig,
}

impl core::fmt::Debug for Tsm {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tsm")
            .field("state_dir", &self.state_dir)
            .field("identity", &self.identity)
            .field("audit", &self.audit)
            .field("devices", &self.devices.len())
            .finish_non_exhaustive()
    }
}

/// File name of the state store under the state directory.
pub const STORE_FILE: &str = "state.redb";
/// File name of the audit log under the state directory.
pub const AUDIT_FILE: &str = "audit.log";
/// Directory the policy bundle is written to under the state directory.
pub const POLICY_DIR: &str = "policy";

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> TsmError {
    move |e| TsmError::Store(format!("{what}: {e}"))
}

fn kdrv_err(op: &'static str) -> impl Fn(ualink_kdrv::Error) -> TsmError {
    move |e| TsmError::Driver {
        op,
        reason: format!("{:?}", ualink_kdrv::Errno::from(e)),
    }
}

fn accel(id: u16) -> Result<AccelId> {
    AccelId::new(id).map_err(|e| TsmError::InvalidRequest(format!("accelerator {id}: {e}")))
}

/// The audit id of a device's TDI.
pub fn tdi_id(id: u16) -> String {
    format!(
        "{}/tdi-{:04x}",
        device_subject(id),
        ualink_sim::device::SIM_TDI
    )
}

/// The audit subject of a device.
pub fn device_subject(id: u16) -> String {
    format!("accel-{id:04}")
}

impl Tsm {
    /// Opens the TSM on `pod` with the state in `config.state_dir` (created on first start):
    /// loads or creates the identity, opens and verifies the audit log, opens the state
    /// store, writes the policy bundle for auditors and restores the tenants. Devices are
    /// attested by [`Self::bring_up`].
    pub fn open(config: TsmConfig, pod: SimPod) -> Result<Self> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(io_err("creating the state directory"))?;
        let store = RedbStore::open(&config.state_dir.join(STORE_FILE))?;
        Self::open_with_store(config, pod, Box::new(store))
    }

    /// [`Self::open`] with another state store backend.
    pub fn open_with_store(
        config: TsmConfig,
        pod: SimPod,
        store: Box<dyn StateStore>,
    ) -> Result<Self> {
        let dir = config.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err("creating the state directory"))?;
        let identity = TsmIdentity::load_or_create(&dir)?;
        let (audit, _) = AuditLog::open(
            &dir.join(AUDIT_FILE),
            &identity.checkpoint_verifier(),
            identity.checkpoint_signer()?,
            config.checkpoint_every,
        )?;
        Self::assemble(config, pod, store, identity, audit)
    }

    /// [`Self::open`] with an explicit audit log (another backend, e.g. a failing disk in
    /// tests).
    pub fn open_with_audit(
        config: TsmConfig,
        pod: SimPod,
        store: Box<dyn StateStore>,
        audit: impl FnOnce(&TsmIdentity) -> Result<AuditLog>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(io_err("creating the state directory"))?;
        let identity = TsmIdentity::load_or_create(&config.state_dir)?;
        let audit = audit(&identity)?;
        Self::assemble(config, pod, store, identity, audit)
    }

    fn assemble(
        config: TsmConfig,
        pod: SimPod,
        store: Box<dyn StateStore>,
        identity: TsmIdentity,
        audit: AuditLog,
    ) -> Result<Self> {
        let dir = config.state_dir;
        // `STATE/policy/` holds the bundle decisions are made under (what `ualink-attest
        // report --state` replays with); a replaced bundle moves to
        // `STATE/policy-archive/<sha384 hex>/` so earlier decisions stay replayable.
        let policy_dir = dir.join(POLICY_DIR);
        if policy_dir.exists() {
            let kept = PolicyBundle::load(&policy_dir)
                .map_err(|e| TsmError::Policy(format!("kept bundle: {e}")))?;
            if kept.digest() != config.policy.digest() {
                let archive = dir.join("policy-archive");
                std::fs::create_dir_all(&archive).map_err(io_err("archiving the policy"))?;
                std::fs::rename(&policy_dir, archive.join(kept.digest_hex()))
                    .map_err(io_err("archiving the policy"))?;
            }
        }
        if !policy_dir.exists() {
            config
                .policy
                .write_to(&policy_dir)
                .map_err(|e| TsmError::Policy(format!("writing the bundle for auditors: {e}")))?;
        }
        let engine = PolicyEngine::new(&config.policy);
        let mut anchors = TrustAnchors::new();
        for (vendor, der) in pod.vendor_roots() {
            anchors
                .add_der(&der)
                .map_err(|e| TsmError::Fabric(format!("vendor root of {vendor}: {e:?}")))?;
        }
        let mut devices = BTreeMap::new();
        let ids = pod
            .accelerator_ids()
            .map_err(|e| TsmError::Fabric(e.to_string()))?;
        for id in ids {
            let spec = pod
                .with_accelerator(id, |a| a.spec().clone())
                .map_err(|e| TsmError::Fabric(e.to_string()))?;
            let epoch = store
                .get_json::<u64>(Table::Epochs, &device_subject(id.get()))?
                .unwrap_or(0);
            devices.insert(
                id.get(),
                Device {
                    view: DeviceView {
                        id: id.get(),
                        vendor: spec.vendor,
                        model: spec.model,
                        firmware: spec.firmware,
                        status: DeviceStatus::Pending,
                        epoch,
                        rules: Vec::new(),
                        attested_at: None,
                        external: None,
                    },
                    evidence: None,
                    session: None,
                    tdi: None,
                    external: None,
                },
            );
        }
        if let Some(t) = config.rotation.usage_threshold {
            pod.set_sec_params(ualink_sim::ualinksec::SecParams {
                roll_threshold: t,
                ..ualink_sim::ualinksec::SecParams::default()
            })
            .map_err(|e| TsmError::Fabric(e.to_string()))?;
        }
        let public = TsmPublicKey::from_sec1(identity.public_key())
            .ok_or_else(|| TsmError::Identity("public key refused by the driver".into()))?;
        let mut handle_secret = zeroize::Zeroizing::new([0u8; 32]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut *handle_secret)
            .map_err(|_| TsmError::Identity("system RNG failed".into()))?;
        let mut driver = Driver::new(
            pod,
            RingCrypto,
            FaultTap::default(),
            NullSink,
            public,
            *handle_secret,
            Config::default(),
        )
        .map_err(|e| TsmError::Driver {
            op: "init",
            reason: format!("{e:?}"),
        })?;
        let ctx = FileCtx::tsm(OsInstanceId(0));
        for (_, t) in store.list_json::<TenantRecord>(Table::Tenants)? {
            driver
                .tenant_add(&ctx, ualink_kdrv::ids::TenantId(t.id))
                .map_err(kdrv_err("tenant_add"))?;
        }
        let parallelism = config
            .parallelism
            .or_else(|| std::thread::available_parallelism().ok())
            .map_or(1, NonZeroUsize::get);
        let grants = identity.grant_signer()?;
        let mut audit = audit;
        if audit.size() == 0 {
            // The log opens with the TSM's identity, so an auditor can bind every checkpoint
            // key to the TSM's TEE evidence from the log alone.
            let ualink_attest::tdi_report::TsmEvidence::SnpReport { report, certs } =
                identity.evidence();
            let rec = AuditRecord::new(
                UnixTime::now(),
                DecisionKind::Lifecycle,
                "tsm",
                Outcome::Info,
            )
            .map_err(audit_build)?
            .with_event(AuditEvent::TsmIdentity {
                public_key: Bytes(identity.public_key().to_vec()),
                evidence: TsmEvidenceBytes {
                    report: Bytes(report.clone()),
                    leaf: Bytes(certs.leaf.clone()),
                    intermediates: certs.intermediates.iter().cloned().map(Bytes).collect(),
                },
            });
            audit.record(&rec)?;
        }
        Ok(Self {
            grants,
            grant_ttl_ns: config.grant_ttl_ns,
            rotation: config.rotation,
            state_dir: dir,
            identity,
            audit,
            store,
            bundle_digest: config.policy.digest(),
            policy_digest: Digest384::of(&config.policy.canonical_bytes()),
            engine,
            driver,
            anchors: Arc::new(anchors),
            devices,
            parallelism,
            ctx,
        })
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The TSM identity (public key, evidence).
    pub fn identity(&self) -> &TsmIdentity {
        &self.identity
    }

    /// The driver core (read-only: the pod, mirrors, key-slot metadata).
    pub fn driver(&self) -> &PodDriver {
        &self.driver
    }

    /// The embedded pod.
    pub fn pod(&self) -> &SimPod {
        self.driver.fabric()
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Every device and its standing.
    pub fn devices(&self) -> Vec<DeviceView> {
        self.devices.values().map(|d| d.view.clone()).collect()
    }

    /// One device.
    pub fn device(&self, id: u16) -> Result<DeviceView> {
        self.devices
            .get(&id)
            .map(|d| d.view.clone())
            .ok_or_else(|| TsmError::NotFound {
                what: "device",
                id: device_subject(id),
            })
    }

    /// The device evidence bundle of `id`'s last successful attestation.
    pub fn device_evidence(&self, id: u16) -> Option<&[u8]> {
        self.devices.get(&id).and_then(|d| d.evidence.as_deref())
    }

    /// Registers an external, attest-only device ([`crate::pod::ExternalDevice`]): pending
    /// until the next [`Self::bring_up`] (or [`Self::reattest`]) attests it over the spdm-emu
    /// socket framing with the same SPDM checks and `ualink.device` appraisal as simulated
    /// devices. Refuses an ID in use and a trust anchor that is not a certificate.
    pub fn add_external_device(&mut self, dev: &crate::pod::ExternalDevice) -> Result<DeviceView> {
        accel(dev.id)?;
        if self.devices.contains_key(&dev.id) {
            return Err(TsmError::Conflict(format!(
                "{} exists",
                device_subject(dev.id)
            )));
        }
        let mut roots = TrustAnchors::new();
        roots.add_pem_or_der(&dev.trust_anchor).map_err(|e| {
            TsmError::InvalidRequest(format!("{}: trust anchor: {e:?}", device_subject(dev.id)))
        })?;
        let epoch = self
            .store
            .get_json::<u64>(Table::Epochs, &device_subject(dev.id))?
            .unwrap_or(0);
        let view = DeviceView {
            id: dev.id,
            vendor: dev.vendor.clone(),
            model: dev.model.clone(),
            firmware: dev.firmware.clone(),
            status: DeviceStatus::Pending,
            epoch,
            rules: Vec::new(),
            attested_at: None,
            external: Some(dev.url()),
        };
        self.devices.insert(
            dev.id,
            Device {
                view: view.clone(),
                evidence: None,
                session: None,
                tdi: None,
                external: Some((dev.addr.clone(), Arc::new(roots))),
            },
        );
        Ok(view)
    }

    fn refuse_external(&self, id: u16) -> Result<()> {
        if self.devices.get(&id).is_some_and(|d| d.external.is_some()) {
            return Err(TsmError::Conflict(format!(
                "{} is an external, attest-only device: it has no fabric port",
                device_subject(id)
            )));
        }
        Ok(())
    }

    // ------------------------------------------------------------------ attestation

    /// Attests every pending device concurrently (bounded by the configured parallelism),
    /// appraises each under policy, audits each verdict, and resumes stored vPods whose
    /// members all attested.
    pub fn bring_up(&mut self) -> Result<BringUpReport> {
        self.bring_up_with_progress(&|_| {})
    }

    /// [`Self::bring_up`], calling `progress` with each device's id as soon as its
    /// attestation and appraisal end (from the attestation workers, so it must be cheap and
    /// thread-safe; a progress bar, for instance). The verdicts are audited and applied
    /// after every device has been attested, as in [`Self::bring_up`].
    pub fn bring_up_with_progress(
        &mut self,
        progress: &(dyn Fn(u16) + Sync),
    ) -> Result<BringUpReport> {
        self.audit.ensure_writable()?;
        let ids: Vec<u16> = self
            .devices
            .iter()
            .filter(|(_, d)| d.view.status == DeviceStatus::Pending)
            .map(|(id, _)| *id)
            .collect();
        let mut report = BringUpReport::default();
        let outcomes = self.attest_many(&ids, progress);
        for (id, status) in self.conclude_all(outcomes)? {
            match status {
                DeviceStatus::Attested => report.attested.push(id),
                DeviceStatus::Quarantined { check, .. } => report.quarantined.push((id, check)),
                DeviceStatus::Pending => {}
            }
        }
        report.resumed_vpods = self.resume_vpods()?;
        // Keys are never persisted: a resumed vPod that was keyed gets fresh keys (epochs
        // continue from the store, so no old epoch is reused).
        for tenant in report.resumed_vpods.clone() {
            let keyed = self.vpod(tenant)?.is_some_and(|v| {
                v.members.iter().enumerate().any(|(i, a)| {
                    v.members.iter().skip(i + 1).any(|b| {
                        self.store
                            .get(Table::Epochs, &pair_key(*a, *b))
                            .ok()
                            .flatten()
                            .is_some()
                    })
                })
            });
            // A tenant whose lead agent generates its keys is re-keyed when the agent hands
            // over a new set; until then its links stay without keys.
            if keyed && !self.tenant(tenant)?.lead_keys {
                self.provision_keys(tenant)?;
            }
        }
        Ok(report)
    }

    /// Re-attests `id` on demand. Success bumps its attestation epoch (mirrored into the
    /// driver, which revokes attachments that relied on the old epoch); failure quarantines
    /// it and revokes everything that depended on it.
    pub fn reattest(&mut self, id: u16) -> Result<DeviceView> {
        self.audit.ensure_writable()?;
        if !self.devices.contains_key(&id) {
            return Err(TsmError::NotFound {
                what: "device",
                id: device_subject(id),
            });
        }
        let outcome = self
            .attest_many(&[id], &|_| {})
            .pop()
            .map(|(_, o)| o)
            .ok_or_else(|| TsmError::Fabric("attestation produced no result".into()))?;
        self.conclude(id, outcome)?;
        self.device(id)
    }

    /// Re-attests every attested device concurrently (what an interval scheduler calls):
    /// each success bumps that device's epoch, each failure quarantines it and revokes what
    /// depended on it. Returns the devices quarantined by this round.
    pub fn reattest_all(&mut self) -> Result<Vec<u16>> {
        self.audit.ensure_writable()?;
        let ids: Vec<u16> = self
            .devices
            .iter()
            .filter(|(_, d)| d.view.status == DeviceStatus::Attested)
            .map(|(id, _)| *id)
            .collect();
        let mut failed = Vec::new();
        let outcomes = self.attest_many(&ids, &|_| {});
        for (id, status) in self.conclude_all(outcomes)? {
            if status != DeviceStatus::Attested {
                failed.push(id);
            }
        }
        Ok(failed)
    }

    /// Runs SPDM with each device over its mailbox, `parallelism` at a time; each worker
    /// also appraises and judges what it attested (the verdicts' records are not durable yet).
    fn attest_many(
        &self,
        ids: &[u16],
        progress: &(dyn Fn(u16) + Sync),
    ) -> Vec<(u16, Result<Verdict>)> {
        let pod = self.driver.fabric();
        let anchors = &self.anchors;
        let external: BTreeMap<u16, (String, Arc<TrustAnchors>)> = ids
            .iter()
            .filter_map(|id| {
                self.devices
                    .get(id)
                    .and_then(|d| d.external.clone())
                    .map(|e| (*id, e))
            })
            .collect();
        let external = &external;
        // Each worker also appraises what it attested (the engine is shared, evaluation is
        // pure), so policy runs on every core too.
        let views: BTreeMap<u16, DeviceView> = ids
            .iter()
            .filter_map(|id| self.devices.get(id).map(|d| (*id, d.view.clone())))
            .collect();
        let views = &views;
        let engine = &self.engine;
        let digest = self.bundle_digest;
        let policy_digest = &self.policy_digest;
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::with_capacity(ids.len()));
        let workers = self.parallelism.min(ids.len()).max(1);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&id) = ids.get(i) else { break };
                    let attested = match external.get(&id) {
                        Some((addr, roots)) => attest_external(addr, roots),
                        None => attest_device(pod, id, anchors),
                    };
                    let verdict = match views.get(&id) {
                        Some(view) => {
                            let outcome = attested.map(|b| {
                                let (req, att) = *b;
                                let at = UnixTime::now();
                                let appraisal = Self::appraise(engine, digest, view, &att, at);
                                Box::new(Attested {
                                    req,
                                    att,
                                    appraisal,
                                    at,
                                })
                            });
                            judge(id, view, policy_digest, outcome)
                        }
                        None => Err(TsmError::NotFound {
                            what: "device",
                            id: device_subject(id),
                        }),
                    };
                    if let Ok(mut r) = results.lock() {
                        r.push((id, verdict));
                    }
                    progress(id);
                });
            }
        });
        let mut v = results.into_inner().unwrap_or_default();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// Audits one verdict, then updates the device.
    fn conclude(&mut self, id: u16, verdict: Result<Verdict>) -> Result<DeviceStatus> {
        let Verdict { record, effect } = verdict?;
        // Durable before anything changes.
        self.audit.record(&record)?;
        let mut epochs = Vec::new();
        let status = self.apply(id, effect, &mut epochs)?;
        self.store.put_json_many(Table::Epochs, &epochs)?;
        Ok(status)
    }

    /// [`Self::conclude`] for many verdicts with one group commit: all records are made
    /// durable together, then the devices are updated. Nothing is recorded if any verdict
    /// could not be decided.
    fn conclude_all(
        &mut self,
        verdicts: Vec<(u16, Result<Verdict>)>,
    ) -> Result<Vec<(u16, DeviceStatus)>> {
        let mut records = Vec::with_capacity(verdicts.len());
        let mut effects = Vec::with_capacity(verdicts.len());
        for (id, v) in verdicts {
            let Verdict { record, effect } = v?;
            records.push(record);
            effects.push((id, effect));
        }
        self.audit.record_all(&records)?;
        let mut epochs = Vec::new();
        let mut out = Vec::with_capacity(effects.len());
        for (id, e) in effects {
            out.push((id, self.apply(id, e, &mut epochs)?));
        }
        self.store.put_json_many(Table::Epochs, &epochs)?;
        Ok(out)
    }

    /// Applies a verdict whose record is durable: epoch (into `epochs`, stored by the caller),
    /// driver mirror, quarantine, device view.
    fn apply(
        &mut self,
        id: u16,
        effect: Effect,
        epochs: &mut Vec<(String, u64)>,
    ) -> Result<DeviceStatus> {
        let Effect {
            status,
            rules,
            evidence,
            session,
            now,
        } = effect;
        let subject = device_subject(id);
        let view = self.device(id)?;
        let prior_epoch = view.epoch;
        let attested = status == DeviceStatus::Attested;
        let epoch = if attested {
            prior_epoch.saturating_add(1)
        } else {
            prior_epoch
        };
        let is_external = self.devices.get(&id).is_some_and(|d| d.external.is_some());
        let a = accel(id)?.to_kdrv();
        let tdi_state = self
            .driver
            .tdi(a)
            .map_or(TdiState::ConfigUnlocked, |(s, _)| s);
        if attested {
            epochs.push((subject, epoch));
            if !is_external {
                self.driver
                    .tdi_update(&self.ctx, a, tdi_state, epoch, false)
                    .map_err(kdrv_err("tdi_update"))?;
            }
        } else if is_external {
            // Not on the fabric: nothing in the driver, no keys.
        } else {
            // Quarantine in the driver: leaving RUN (to UNLOCKED) revokes what crossed it.
            self.driver
                .tdi_update(&self.ctx, a, TdiState::ConfigUnlocked, epoch, true)
                .map_err(kdrv_err("tdi_update"))?;
            // No keys: every slot this device shares with a peer is invalidated.
            self.invalidate_all_pairs_of(id)?;
        }
        if let Some(d) = self.devices.get_mut(&id) {
            d.view.status = status.clone();
            d.view.rules = rules;
            d.view.epoch = epoch;
            if attested {
                d.view.attested_at = u64::try_from(now.secs()).ok();
                d.evidence = evidence;
                // An external device's session ended with its connection (attest-only).
                d.session = if is_external { None } else { session };
            } else {
                d.evidence = None;
                d.session = None;
                d.tdi = None;
            }
        }
        Ok(status)
    }

    /// Builds the policy input from a verified attestation and evaluates it.
    fn appraise(
        engine: &PolicyEngine,
        bundle_digest: [u8; 48],
        view: &DeviceView,
        att: &Attestation,
        now: UnixTime,
    ) -> Result<(Decision, String)> {
        let chain = SpdmCertChain::parse(&att.cert_chain, att.negotiated.hash)
            .map_err(|e| TsmError::Fabric(format!("chain re-parse: {e:?}")))?;
        let root = chain
            .certs()
            .next()
            .ok_or_else(|| TsmError::Fabric("empty certificate chain".into()))?;
        let t = u64::try_from(now.secs()).unwrap_or(0);
        let input = DeviceAppraisalInput {
            device_id: device_subject(view.id),
            vendor: view.vendor.clone(),
            model: view.model.clone(),
            firmware_version: view.firmware.clone(),
            vendor_root_fingerprint: Sha384::of(root),
            spdm: spdm_params(att),
            measurements: att
                .measurements
                .as_ref()
                .map(|m| {
                    m.blocks
                        .iter()
                        .map(|b| MeasurementInput {
                            index: b.index,
                            value_type: b.value_type.0,
                            value: HexBytes(b.value.clone()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            attested_at: t,
            now: t,
        };
        let json = input
            .to_canonical_json()
            .map_err(|e| TsmError::Policy(e.to_string()))?;
        // An evaluation error is a deny.
        let decision = match engine.evaluate_device(&input) {
            Ok(d) => d,
            Err(e) => Decision {
                allow: false,
                rules: vec!["policy_error".into()],
                reasons: vec![truncate(&e.to_string())],
                policy_digest: bundle_digest,
            },
        };
        Ok((decision, json))
    }

    // ------------------------------------------------------------------ tenants and vPods

    /// Creates tenant `id` known to policy as `name`, delegating key generation to the TSM.
    pub fn tenant_add(&mut self, id: u32, name: &str) -> Result<TenantRecord> {
        self.tenant_add_with(id, name, TenantOptions::default())
    }

    /// Creates tenant `id` known to policy as `name` with `options` (stored with the tenant;
    /// the `tenant-added` record says where its keys come from).
    pub fn tenant_add_with(
        &mut self,
        id: u32,
        name: &str,
        options: TenantOptions,
    ) -> Result<TenantRecord> {
        if id == 0 || name.is_empty() || name.len() > 64 {
            return Err(TsmError::InvalidRequest(
                "tenant id must be nonzero and its name 1..=64 bytes".into(),
            ));
        }
        if self.store.get(Table::Tenants, &id.to_string())?.is_some() {
            return Err(TsmError::Conflict(format!("tenant {id} exists")));
        }
        self.audit.ensure_writable()?;
        self.driver
            .tenant_add(&self.ctx, ualink_kdrv::ids::TenantId(id))
            .map_err(kdrv_err("tenant_add"))?;
        let source = if options.lead_keys {
            "lead-agent"
        } else {
            "tsm"
        };
        let rec = AuditRecord::new(
            UnixTime::now(),
            DecisionKind::Lifecycle,
            &format!("tenant-{id}"),
            Outcome::Info,
        )
        .and_then(|r| r.with_reason(&format!("key-source={source}")))
        .map_err(audit_build)?
        .with_event(AuditEvent::TenantAdded {
            tenant_id: name.to_string(),
        });
        self.audit.record(&rec)?;
        let rec = TenantRecord {
            id,
            name: name.to_string(),
            lead_keys: options.lead_keys,
        };
        self.store.put_json(Table::Tenants, &id.to_string(), &rec)?;
        Ok(rec)
    }

    /// Every tenant.
    pub fn tenants(&self) -> Result<Vec<TenantRecord>> {
        Ok(self
            .store
            .list_json::<TenantRecord>(Table::Tenants)?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }

    /// The tenant's vPod, if formed.
    pub fn vpod(&self, tenant: u32) -> Result<Option<VpodRecord>> {
        self.store.get_json(Table::Vpods, &tenant.to_string())
    }

    /// Forms `tenant`'s vPod from whole, attested accelerators and opens routing between its
    /// members only. Refuses duplicate IDs (UALink §9.4), an accelerator already in a vPod,
    /// and one that is not attested.
    pub fn vpod_create(&mut self, tenant: u32, members: &[u16]) -> Result<VpodRecord> {
        self.tenant(tenant)?;
        if members.is_empty() {
            return Err(TsmError::InvalidRequest("a vPod needs members".into()));
        }
        for (i, m) in members.iter().enumerate() {
            if members.iter().skip(i + 1).any(|x| x == m) {
                return Err(TsmError::InvalidRequest(format!(
                    "duplicate accelerator ID {m} (UALink §9.4)"
                )));
            }
        }
        if self.vpod(tenant)?.is_some() {
            return Err(TsmError::Conflict(format!("tenant {tenant} has a vPod")));
        }
        let others = self.store.list_json::<VpodRecord>(Table::Vpods)?;
        for m in members {
            self.refuse_external(*m)?;
            let d = self.device(*m)?;
            if d.status != DeviceStatus::Attested {
                return Err(TsmError::Conflict(format!(
                    "{} is not attested ({:?})",
                    device_subject(*m),
                    d.status
                )));
            }
            if let Some((_, v)) = others.iter().find(|(_, v)| v.members.contains(m)) {
                return Err(TsmError::Conflict(format!(
                    "{} is already in tenant {}'s vPod",
                    device_subject(*m),
                    v.tenant
                )));
            }
        }
        self.audit.ensure_writable()?;
        self.form_vpod(tenant, members)?;
        let name = self.tenant(tenant)?.name;
        self.lifecycle(
            &format!("vpod-{tenant}"),
            AuditEvent::VpodFormed {
                vpod_id: format!("vpod-{tenant}"),
                tenant_id: name,
                accelerator_ids: members.to_vec(),
            },
        )?;
        let rec = VpodRecord {
            tenant,
            members: members.to_vec(),
        };
        self.store
            .put_json(Table::Vpods, &tenant.to_string(), &rec)?;
        Ok(rec)
    }

    fn form_vpod(&mut self, tenant: u32, members: &[u16]) -> Result<()> {
        let ids = members
            .iter()
            .map(|m| accel(*m))
            .collect::<Result<Vec<_>>>()?;
        let kd: Vec<_> = ids.iter().map(|a| a.to_kdrv()).collect();
        self.driver
            .vpod_create(&self.ctx, ualink_kdrv::ids::TenantId(tenant), &kd)
            .map_err(kdrv_err("vpod_create"))?;
        // Label the simulated hardware's leak oracle with the owner (ground truth only).
        for a in ids {
            self.pod()
                .set_owner(a, Some(ualink_sim::TenantId(tenant)))
                .map_err(|e| TsmError::Fabric(e.to_string()))?;
        }
        Ok(())
    }

    fn resume_vpods(&mut self) -> Result<Vec<u32>> {
        let mut resumed = Vec::new();
        for (_, v) in self.store.list_json::<VpodRecord>(Table::Vpods)? {
            let formed = v
                .members
                .first()
                .and_then(|m| accel(*m).ok())
                .and_then(|a| self.driver.accel_tenant(a.to_kdrv()))
                .is_some();
            let ready = v.members.iter().all(|m| {
                self.devices
                    .get(m)
                    .is_some_and(|d| d.view.status == DeviceStatus::Attested)
            });
            if !formed && ready {
                self.form_vpod(v.tenant, &v.members)?;
                // The tenant's windows, as acknowledged before the restart.
                for (_, w) in self.store.list_json::<WindowRecord>(Table::Windows)? {
                    if w.tenant == v.tenant {
                        self.driver
                            .window_create(
                                &self.ctx,
                                ualink_kdrv::ids::TenantId(w.tenant),
                                accel(w.accel)?.to_kdrv(),
                                w.base,
                                w.len,
                            )
                            .map_err(kdrv_err("window_create"))?;
                    }
                }
                resumed.push(v.tenant);
            }
        }
        Ok(resumed)
    }

    /// Carves a window of `accel`'s memory for `tenant` (a member of its vPod); the vPod's
    /// other members may access it.
    pub fn window_create(
        &mut self,
        tenant: u32,
        accel_id: u16,
        base: u64,
        len: u64,
    ) -> Result<u32> {
        self.tenant(tenant)?;
        self.audit.ensure_writable()?;
        let a = accel(accel_id)?;
        let w = self
            .driver
            .window_create(
                &self.ctx,
                ualink_kdrv::ids::TenantId(tenant),
                a.to_kdrv(),
                base,
                len,
            )
            .map_err(kdrv_err("window_create"))?;
        let rec = WindowRecord {
            tenant,
            accel: accel_id,
            base,
            len,
        };
        self.lifecycle(
            &format!("vpod-{tenant}"),
            AuditEvent::WindowCarved {
                vpod_id: format!("vpod-{tenant}"),
                accelerator_id: accel_id,
                base,
                size: len,
            },
        )?;
        let key = format!("{tenant}/{accel_id}/{base:016x}");
        self.store.put_json(Table::Windows, &key, &rec)?;
        Ok(w.0)
    }

    // ------------------------------------------------------------------ link keys

    /// Keys every link of `tenant`'s vPod (delegated mode): per pair of members, per switch
    /// plane, per direction a fresh master key, programmed into TX and RX slots inside the
    /// devices' secured sessions, every RX of a pair enabled before any TX of it. Key bytes are
    /// dropped when this returns; the driver and the store get epochs and fingerprints.
    /// Audited (one key-rotation record per direction and plane, trigger "initial", with the
    /// fingerprints). Pairs that share no device are programmed concurrently (see
    /// [`Self::provision_keys_many`] for what a failure leaves).
    ///
    /// Refused with [`TsmError::KeySource`] when the tenant's lead agent generates its keys.
    pub fn provision_keys(&mut self, tenant: u32) -> Result<Vec<SlotRecord>> {
        self.provision_keys_many(&[tenant])
    }

    /// [`Self::provision_keys`] for several tenants at once (what a provider bringing up a
    /// pod does): every tenant is checked first (delegated key source, a vPod whose members
    /// are all attested, no tenant named twice) and nothing is programmed if any check fails.
    /// Then the pairs of all the vPods are programmed concurrently, bounded by the configured
    /// parallelism, never two pairs sharing a device at once (each device's secured session
    /// carries one exchange at a time); each pair on its own keeps RX before TX
    /// (UALink_200 §9.5.10). The records of every programmed pair are made durable as one
    /// group, in the order of `tenants` and of pairs within each vPod, before their slot
    /// metadata and epochs are stored and before this returns.
    ///
    /// If a pair fails, no new pair is started; the pairs already programmed are recorded and
    /// stored as on success, the epoch of each failed pair is recorded as used (some of its
    /// slots may hold it) with no key record, and the first failure (in that order) is
    /// returned.
    pub fn provision_keys_many(&mut self, tenants: &[u32]) -> Result<Vec<SlotRecord>> {
        self.audit.ensure_writable()?;
        let mut pairs = Vec::new();
        for (i, tenant) in tenants.iter().enumerate() {
            if tenants.iter().take(i).any(|t| t == tenant) {
                return Err(TsmError::InvalidRequest(format!(
                    "tenant {tenant} given twice"
                )));
            }
            let vpod = self.keyable_vpod(*tenant, false)?;
            pairs.extend(member_pairs(&vpod.members));
        }
        let rng = ring::rand::SystemRandom::new();
        let mut src = KeySrc::Tsm(&rng);
        let staging = self.key_pairs_staged(&pairs, Slot::Active, "initial", &mut src)?;
        self.settle_keys(staging)
    }

    /// The tenant's vPod, every member attested, and the tenant's key source is `lead`.
    fn keyable_vpod(&self, tenant: u32, lead: bool) -> Result<VpodRecord> {
        let t = self.tenant(tenant)?;
        if t.lead_keys != lead {
            return Err(TsmError::KeySource {
                tenant,
                lead_keys: t.lead_keys,
            });
        }
        let vpod = self.vpod(tenant)?.ok_or_else(|| TsmError::NotFound {
            what: "vPod",
            id: tenant.to_string(),
        })?;
        for m in &vpod.members {
            if self.device(*m)?.status != DeviceStatus::Attested {
                return Err(TsmError::Conflict(format!(
                    "{} is not attested: no keys",
                    device_subject(*m)
                )));
            }
        }
        Ok(vpod)
    }

    /// The master keys a lead agent must hand over for `tenant`'s vPod: one per
    /// (TX accelerator, its TX port, RX accelerator) for every switch plane joining two members,
    /// sorted. What [`Self::provision_keys_with`] checks a key set against.
    pub fn lead_key_layout(&self, tenant: u32) -> Result<Vec<(u16, u8, u16)>> {
        let vpod = self.vpod(tenant)?.ok_or_else(|| TsmError::NotFound {
            what: "vPod",
            id: tenant.to_string(),
        })?;
        let mut out = Vec::new();
        for (i, a) in vpod.members.iter().enumerate() {
            for b in vpod.members.iter().skip(i + 1) {
                for (pa, pb) in self.plane_ports(*a, *b)? {
                    out.push((*a, pa, *b));
                    out.push((*b, pb, *a));
                }
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The smallest epoch a lead agent's next key set for `tenant` may carry: above every
    /// epoch any of the vPod's links has used (epochs are never reused).
    pub fn lead_key_min_epoch(&self, tenant: u32) -> Result<u32> {
        let vpod = self.vpod(tenant)?.ok_or_else(|| TsmError::NotFound {
            what: "vPod",
            id: tenant.to_string(),
        })?;
        let mut min = 1u32;
        for (i, a) in vpod.members.iter().enumerate() {
            for b in vpod.members.iter().skip(i + 1) {
                min = min.max(self.next_key_epoch(*a, *b)?);
            }
        }
        Ok(min)
    }

    /// Programs the master keys `tenant`'s lead agent generated (UALink §9.4) exactly as the
    /// delegated path does: inside the devices' SPDM secured sessions, RX before TX per pair;
    /// the driver and the store get epochs and fingerprints; one `keys-programmed` record per
    /// direction and plane with `source=lead-agent`. The set must cover exactly the vPod's
    /// links ([`Self::lead_key_layout`]): no key missing, none twice, none for an accelerator
    /// outside the vPod or a port that is not a link between the two; its epoch must be at
    /// least [`Self::lead_key_min_epoch`]. Nothing is programmed if any check fails. Every key
    /// is zeroized right after it is programmed (and all of them on any error).
    ///
    /// Refused with [`TsmError::KeySource`] when the tenant delegates key generation.
    pub fn provision_keys_with(
        &mut self,
        tenant: u32,
        keys: keys::LeadKeySet,
    ) -> Result<Vec<SlotRecord>> {
        self.audit.ensure_writable()?;
        let vpod = self.keyable_vpod(tenant, true)?;
        let epoch = keys.epoch;
        let mut given = keys.into_map()?;
        let layout = self.lead_key_layout(tenant)?;
        for (tx, port, rx) in given.keys() {
            for x in [tx, rx] {
                if !vpod.members.contains(x) {
                    return Err(TsmError::InvalidRequest(format!(
                        "lead key {tx}:{port}->{rx}: {} is not in tenant {tenant}'s vPod",
                        device_subject(*x)
                    )));
                }
            }
            if layout.binary_search(&(*tx, *port, *rx)).is_err() {
                return Err(TsmError::InvalidRequest(format!(
                    "lead key {tx}:{port}->{rx}: port {port} of {} is not a link to {}",
                    device_subject(*tx),
                    device_subject(*rx)
                )));
            }
        }
        if let Some((tx, port, rx)) = layout.iter().find(|k| !given.contains_key(k)) {
            return Err(TsmError::InvalidRequest(format!(
                "lead key set misses {tx}:{port}->{rx} ({} of {} links covered)",
                given.len(),
                layout.len()
            )));
        }
        let min = self.lead_key_min_epoch(tenant)?;
        if epoch < min {
            return Err(TsmError::InvalidRequest(format!(
                "lead key epoch {epoch} reuses an epoch: the vPod's links need {min} or above"
            )));
        }
        let mut src = KeySrc::Lead {
            epoch,
            keys: &mut given,
        };
        let pairs = member_pairs(&vpod.members);
        let staging = self.key_pairs_staged(&pairs, Slot::Active, "initial", &mut src)?;
        self.settle_keys(staging)
    }

    /// The (port of `a`, port of `b`) of every switch plane joining `a` and `b`.
    fn plane_ports(&self, a: u16, b: u16) -> Result<Vec<(u8, u8)>> {
        self.pod()
            .planes(accel(a)?, accel(b)?)
            .map_err(|e| TsmError::Fabric(e.to_string()))?
            .into_iter()
            .map(|(pa, pb)| {
                Ok((
                    u8::try_from(pa.0).map_err(|_| TsmError::Fabric("port above 255".into()))?,
                    u8::try_from(pb.0).map_err(|_| TsmError::Fabric("port above 255".into()))?,
                ))
            })
            .collect()
    }

    /// Programs and enables fresh keys in `slot` for every plane and direction between `a`
    /// and `b`, then mirrors and records the metadata.
    fn key_pair(
        &mut self,
        a: u16,
        b: u16,
        slot: Slot,
        trigger: &str,
        src: &mut KeySrc<'_>,
    ) -> Result<Vec<SlotRecord>> {
        let staged = self.key_pair_staged(a, b, slot, trigger, src)?;
        self.commit_keys(vec![staged])
    }

    /// Makes the records of programmed pairs durable as one group, then stores their slot
    /// metadata and pair epochs (one transaction).
    fn commit_keys(&mut self, mut staged: Vec<StagedKeys>) -> Result<Vec<SlotRecord>> {
        let audits: Vec<AuditRecord> = staged
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.audits))
            .collect();
        self.audit.record_all(&audits)?;
        let mut slots = Vec::new();
        let mut epochs = Vec::new();
        for s in staged {
            epochs.push((pair_key(s.pair.0, s.pair.1), s.epoch));
            slots.extend(s.records);
        }
        let entries: Vec<(String, &SlotRecord)> = slots.iter().map(|r| (r.key(), r)).collect();
        // Slot metadata and pair epochs in one transaction.
        self.store.put_many_tables(&[
            (
                Table::KeySlots,
                encode_json_many(Table::KeySlots, &entries)?,
            ),
            (Table::Epochs, encode_json_many(Table::Epochs, &epochs)?),
        ])?;
        Ok(slots)
    }

    /// Commits what [`Self::key_pairs_staged`] programmed (see [`Self::commit_keys`]), records
    /// the epoch of every failed pair as used, and returns the first failure if any.
    fn settle_keys(&mut self, staging: Staging) -> Result<Vec<SlotRecord>> {
        let Staging { staged, failed } = staging;
        let slots = self.commit_keys(staged)?;
        let used: Vec<(String, u32)> = failed
            .iter()
            .map(|f| (pair_key(f.pair.0, f.pair.1), f.epoch))
            .collect();
        if !used.is_empty() {
            self.store.put_json_many(Table::Epochs, &used)?;
        }
        match failed.into_iter().next() {
            Some(f) => Err(f.error),
            None => Ok(slots),
        }
    }

    /// Programs and enables the keys of one pair (see [`Self::key_pair`]) and builds its
    /// audit records, without recording or storing anything yet.
    fn key_pair_staged(
        &mut self,
        a: u16,
        b: u16,
        slot: Slot,
        trigger: &str,
        src: &mut KeySrc<'_>,
    ) -> Result<StagedKeys> {
        let Staging { mut staged, failed } =
            self.key_pairs_staged(&[(a, b)], slot, trigger, src)?;
        if let Some(f) = failed.into_iter().next() {
            return Err(f.error);
        }
        staged
            .pop()
            .ok_or_else(|| TsmError::Fabric("key programming produced no result".into()))
    }

    /// Programs and enables fresh keys in `slot` for every plane and direction of every pair
    /// in `pairs` and builds their audit records, without recording or storing anything yet.
    ///
    /// Everything that can be checked before a device is touched is checked first (planes,
    /// epochs, lead keys, secured sessions); such a failure is returned as `Err` and nothing is
    /// programmed. Then pairs are programmed concurrently (at most `parallelism` at a time,
    /// never two sharing a device: each device's session carries one exchange at a time), each
    /// pair by one worker in the sequential order (KEY_PROG for every key, then K_SET_GO on
    /// every RX, then on every TX). After the first failure no new pair starts. Each programmed
    /// pair's slots are then checked against the driver's metadata and its records built, in
    /// `pairs` order.
    fn key_pairs_staged(
        &mut self,
        pairs: &[(u16, u16)],
        slot: Slot,
        trigger: &str,
        src: &mut KeySrc<'_>,
    ) -> Result<Staging> {
        let source = match src {
            KeySrc::Tsm(_) => "tsm",
            KeySrc::Lead { .. } => "lead-agent",
        };
        let mut plans = Vec::with_capacity(pairs.len());
        for &(a, b) in pairs {
            plans.push(self.plan_pair(a, b, src)?);
        }
        let rng = match src {
            KeySrc::Tsm(rng) => Some(*rng),
            KeySrc::Lead { .. } => None,
        };
        // Every session used, taken out of the devices for the workers and put back below.
        let mut ids: Vec<u16> = pairs.iter().flat_map(|(a, b)| [*a, *b]).collect();
        ids.sort_unstable();
        ids.dedup();
        for id in &ids {
            let has = self
                .devices
                .get(id)
                .ok_or_else(|| TsmError::NotFound {
                    what: "device",
                    id: device_subject(*id),
                })?
                .session
                .is_some();
            if !has {
                return Err(TsmError::Conflict(format!(
                    "{} has no secured session",
                    device_subject(*id)
                )));
            }
        }
        let sessions: BTreeMap<u16, Mutex<Requester>> = ids
            .iter()
            .filter_map(|id| {
                let s = self.devices.get_mut(id)?.session.take()?;
                Some((*id, Mutex::new(s)))
            })
            .collect();
        let done = program_pairs(
            self.driver.fabric(),
            &sessions,
            plans,
            PairJob {
                slot,
                rng,
                trigger,
                source,
            },
            self.parallelism,
        );
        for (id, s) in sessions {
            if let Some(d) = self.devices.get_mut(&id) {
                d.session = Some(s.into_inner().unwrap_or_else(PoisonError::into_inner));
            }
        }
        let mut staging = Staging {
            staged: Vec::with_capacity(done.len()),
            failed: Vec::new(),
        };
        for d in done {
            let checked = d.programmed.and_then(|(programmed, staged)| {
                self.check_programmed(d.epoch, slot, &programmed)?;
                Ok(staged)
            });
            match checked {
                Ok(s) => staging.staged.push(s),
                Err(error) => staging.failed.push(PairFailure {
                    pair: d.pair,
                    epoch: d.epoch,
                    error,
                }),
            }
        }
        Ok(staging)
    }

    /// What keying `a`–`b` needs, decided before any device is touched: the planes, the
    /// epoch and, from a lead agent, the keys (taken out of its set in programming order).
    fn plan_pair(&self, a: u16, b: u16, src: &mut KeySrc<'_>) -> Result<PairPlan> {
        let planes = self.plane_ports(a, b)?;
        if planes.is_empty() {
            return Err(TsmError::Conflict(format!("no plane joins {a} and {b}")));
        }
        let (epoch, keys) = match src {
            KeySrc::Tsm(_) => (self.next_key_epoch(a, b)?, None),
            KeySrc::Lead { epoch, keys } => {
                let mut taken = Vec::with_capacity(planes.len() * 2);
                for (pa, pb) in &planes {
                    for (x, px, y) in [(a, *pa, b), (b, *pb, a)] {
                        taken.push(keys.remove(&(x, px, y)).ok_or_else(|| {
                            TsmError::InvalidRequest(format!("lead key set misses {x}:{px}->{y}"))
                        })?);
                    }
                }
                (*epoch, Some(taken))
            }
        };
        Ok(PairPlan {
            pair: (a, b),
            planes,
            epoch,
            keys,
        })
    }

    /// Checks the slots one pair programmed against the driver's mirror (each is queried,
    /// which also refreshes the mirror): every one must hold the key just programmed.
    fn check_programmed(
        &mut self,
        epoch: u32,
        slot: Slot,
        programmed: &[ProgrammedSlot],
    ) -> Result<()> {
        for (dev, t, fp) in programmed {
            let slot_ref = KeySlotRef {
                accel: accel(*dev)?.to_kdrv(),
                port: PortId(u16::from(t.port)),
                dir: match t.direction {
                    KDir::Tx => ualink_kdrv::ops::Direction::Tx,
                    KDir::Rx => ualink_kdrv::ops::Direction::Rx,
                },
                peer: accel(t.peer.get())?.to_kdrv(),
            };
            let st = self
                .driver
                .key_slot(&self.ctx, slot_ref, KeySlotCommand::Query)
                .map_err(kdrv_err("key_slot"))?;
            let meta = if slot == Slot::Active {
                st.active
            } else {
                st.alternate
            };
            if meta.fingerprint.map(|f| f.0) != Some(*fp) || meta.epoch != epoch {
                return Err(TsmError::Device {
                    device: device_subject(*dev),
                    check: "key-slot-metadata",
                    reason: "the slot does not hold the key just programmed".into(),
                });
            }
        }
        Ok(())
    }

    /// Rotates the keys between `a` and `b` on demand, gated on fresh attestation of both
    /// ends: both are re-attested first, policy (`ualink.key_rotation`) decides on the fresh
    /// facts, then new keys go into the alternate slots of both ends (inside the SPDM
    /// sessions) and each TX slot rolls (KeyRollMSG swaps the peer's RX in band). If an end
    /// fails re-attestation the pair's keys are invalidated (a hardware stop) and what crossed
    /// the link is revoked by the driver.
    ///
    /// The `keys-rotated` records are written only once every end reports the new epoch
    /// active. A rotation that fails after policy allowed it (a device refuses a key, a
    /// KeyRollMSG is lost so the roll is not confirmed) writes no `keys-rotated` record: a
    /// `key-rotation` deny (rule `check.key-roll`) names the failure, the pair is stopped
    /// (keys invalidated at both ends, what crossed it revoked by the driver) and the error is
    /// returned; the epoch it used is never reused.
    ///
    /// A pair the hardware stopped (its usage threshold reached with no fresh alternate key)
    /// is re-keyed in the active slots instead (same gate, RX before TX). Refused with
    /// [`TsmError::KeySource`] for a tenant whose lead agent generates its keys (it hands over
    /// a new set with [`Self::provision_keys_with`]).
    pub fn rotate(&mut self, a: u16, b: u16) -> Result<Vec<SlotRecord>> {
        self.rotate_as(a, b, RotationTrigger::Manual)
    }

    fn rotate_as(&mut self, a: u16, b: u16, trigger: RotationTrigger) -> Result<Vec<SlotRecord>> {
        self.audit.ensure_writable()?;
        if a == b {
            return Err(TsmError::InvalidRequest(
                "a link needs two accelerators".into(),
            ));
        }
        let current = self
            .store
            .get_json::<u32>(Table::Epochs, &pair_key(a, b))?
            .ok_or_else(|| TsmError::NotFound {
                what: "keyed link",
                id: format!("{}<->{}", device_subject(a), device_subject(b)),
            })?;
        let owner = self
            .store
            .list_json::<VpodRecord>(Table::Vpods)?
            .into_iter()
            .find(|(_, v)| v.members.contains(&a))
            .map(|(_, v)| v.tenant)
            .ok_or_else(|| TsmError::Conflict(format!("{} is in no vPod", device_subject(a))))?;
        let tenant = self.tenant(owner)?;
        if tenant.lead_keys {
            return Err(TsmError::KeySource {
                tenant: owner,
                lead_keys: true,
            });
        }
        let ea = self.reattest(a)?;
        let eb = self.reattest(b)?;
        let now = UnixTime::now();
        let subject = format!("{}<->{}", device_subject(a), device_subject(b));
        if ea.status != DeviceStatus::Attested || eb.status != DeviceStatus::Attested {
            self.stop_pair(
                a,
                b,
                now,
                "fresh_attestation",
                "an end failed re-attestation; the pair is stopped",
            )?;
            let bad = if ea.status != DeviceStatus::Attested {
                a
            } else {
                b
            };
            return Err(TsmError::Device {
                device: device_subject(bad),
                check: "re-attestation",
                reason: "rotation refused: fresh evidence failed; link keys invalidated".into(),
            });
        }
        let end = |v: &DeviceView| KeyEnd {
            accelerator_id: v.id,
            port: 0,
            device_appraised: v.status == DeviceStatus::Attested,
            attested_at: v.attested_at.unwrap_or(0),
        };
        let input = KeyRotationInput {
            tenant_id: tenant.name.clone(),
            tx: end(&ea),
            rx: end(&eb),
            current_epoch: u64::from(current),
            new_epoch: u64::from(current) + 1,
            trigger,
            now: u64::try_from(now.secs()).unwrap_or(0),
        };
        let json = input
            .to_canonical_json()
            .map_err(|e| TsmError::Policy(e.to_string()))?;
        let decision = match self.engine.evaluate_key_rotation(&input) {
            Ok(d) => d,
            Err(e) => Decision {
                allow: false,
                rules: vec!["policy_error".into()],
                reasons: vec![truncate(&e.to_string())],
                policy_digest: self.bundle_digest,
            },
        };
        let outcome = if decision.allow {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        let rec = AuditRecord::new(now, DecisionKind::KeyRotation, &subject, outcome)
            .and_then(|r| r.with_input("policy-input", Digest384::of(json.as_bytes())))
            .and_then(|r| r.with_policy_input(ualink_policy::DecisionKind::KeyRotation, &json))
            .map_err(audit_build)?;
        let rec = with_decision(rec, &decision, &self.policy_digest)?;
        self.audit.record(&rec)?;
        if !decision.allow {
            return Err(TsmError::PolicyDenied {
                rules: decision.rules,
                reasons: decision.reasons,
            });
        }
        let rng = ring::rand::SystemRandom::new();
        let trigger_name = match trigger {
            RotationTrigger::Threshold => "threshold",
            RotationTrigger::Scheduled => "scheduled",
            RotationTrigger::Manual => "manual",
            RotationTrigger::Revocation => "revocation",
        };
        match self.rekey_pair(a, b, trigger_name, &rng) {
            Ok(records) => Ok(records),
            Err(e @ (TsmError::AuditUnavailable(_) | TsmError::Store(_))) => Err(e),
            Err(e) => {
                // The roll did not complete at both ends: no `keys-rotated` claim was made;
                // record the failure, stop the pair and let the driver revoke what crossed it.
                self.stop_pair(
                    a,
                    b,
                    UnixTime::now(),
                    "key-roll",
                    &format!("rotation failed ({e}); the pair is stopped"),
                )?;
                Err(e)
            }
        }
    }

    /// Puts fresh keys on a pair whose rotation policy allowed: a stopped pair is re-keyed in
    /// its active slots; a live pair gets new keys in its alternate slots and every TX slot
    /// rolls. The `keys-rotated` records and the new slot metadata are committed only once
    /// every end reports the new epoch active; on an error nothing is recorded but the epoch,
    /// which is consumed (never reused for a different key).
    fn rekey_pair(
        &mut self,
        a: u16,
        b: u16,
        trigger_name: &str,
        rng: &ring::rand::SystemRandom,
    ) -> Result<Vec<SlotRecord>> {
        // The hardware stopped the pair (or a slot is not live): re-key the active slots.
        let stopped = !self.link_keys_live(a, b)?;
        let slot = if stopped {
            Slot::Active
        } else {
            Slot::Alternate
        };
        let staged = match self.key_pair_staged(a, b, slot, trigger_name, &mut KeySrc::Tsm(rng)) {
            Ok(s) => s,
            Err(e) => {
                self.consume_epoch(a, b)?;
                return Err(e);
            }
        };
        if stopped {
            return self.commit_keys(vec![staged]);
        }
        if let Err(e) = self.roll_staged(&staged.records) {
            self.store
                .put_json_many(Table::Epochs, &[(pair_key(a, b), staged.epoch)])?;
            return Err(e);
        }
        self.commit_keys(vec![staged])
    }

    /// Records the pair's next epoch as used after a failed staging (some slot may hold it).
    fn consume_epoch(&mut self, a: u16, b: u16) -> Result<()> {
        let next = self.next_key_epoch(a, b)?;
        self.store
            .put_json_many(Table::Epochs, &[(pair_key(a, b), next)])?;
        Ok(())
    }

    /// Rolls every TX slot of freshly staged alternate keys (in band to the peer's RX), then
    /// re-reads the RX mirrors; every end must report the staged epoch active.
    fn roll_staged(&mut self, records: &[SlotRecord]) -> Result<()> {
        // Roll every TX slot (in band to the peer's RX), then refresh the RX mirrors.
        for want in ["tx", "rx"] {
            for r in records.iter().filter(|r| r.dir == want) {
                let slot_ref = KeySlotRef {
                    accel: accel(r.accel)?.to_kdrv(),
                    port: PortId(u16::from(r.port)),
                    dir: if want == "tx" {
                        ualink_kdrv::ops::Direction::Tx
                    } else {
                        ualink_kdrv::ops::Direction::Rx
                    },
                    peer: accel(r.peer)?.to_kdrv(),
                };
                let cmd = if want == "tx" {
                    KeySlotCommand::Roll
                } else {
                    KeySlotCommand::Query
                };
                let st = self
                    .driver
                    .key_slot(&self.ctx, slot_ref, cmd)
                    .map_err(kdrv_err("key_slot"))?;
                if st.active.epoch != r.epoch {
                    return Err(TsmError::Device {
                        device: device_subject(r.accel),
                        check: "key-roll",
                        reason: format!(
                            "active epoch {} after the roll, want {}",
                            st.active.epoch, r.epoch
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Rotates every keyed pair that is due at `now` (Unix seconds), each through the same
    /// attestation-gated path as [`Self::rotate`]:
    /// - trigger `threshold`: a slot of the pair is no longer live in the hardware (the driver's
    ///   fresh `key_slot` query shows it stopped, e.g. its usage counter reached the threshold
    ///   of [`RotationConfig::usage_threshold`] with no alternate key staged) → re-keyed;
    /// - trigger `scheduled`: its keys are older than [`RotationConfig::max_key_age_secs`].
    ///
    /// A rotation that fails (an end fails fresh attestation, policy denies, the device refuses
    /// a key) stops the pair: its keys are invalidated at both ends and the driver revokes what
    /// crossed it; a deny record names why. Pairs of tenants whose lead agent generates keys are
    /// left to that agent. Returns the pairs rotated (lower id first). Only an audit-log or
    /// store failure is returned as an error.
    pub fn rotate_due(&mut self, now: u64) -> Result<Vec<(u16, u16)>> {
        self.audit.ensure_writable()?;
        // (lo, hi) -> oldest programmed_at
        let mut pairs: BTreeMap<(u16, u16), u64> = BTreeMap::new();
        for (_, r) in self.store.list_json::<SlotRecord>(Table::KeySlots)? {
            let k = (r.accel.min(r.peer), r.accel.max(r.peer));
            let e = pairs.entry(k).or_insert(r.programmed_at);
            *e = (*e).min(r.programmed_at);
        }
        let lead: std::collections::BTreeSet<u16> = self
            .store
            .list_json::<VpodRecord>(Table::Vpods)?
            .into_iter()
            .filter(|(_, v)| self.tenant(v.tenant).is_ok_and(|t| t.lead_keys))
            .flat_map(|(_, v)| v.members)
            .collect();
        let mut rotated = Vec::new();
        for ((a, b), at) in pairs {
            if lead.contains(&a) || lead.contains(&b) {
                continue;
            }
            // Keys dropped earlier in this round (an end quarantined) are not rotated.
            let Some(live) = self.refresh_pair(a, b)? else {
                continue;
            };
            let trigger = if !live {
                RotationTrigger::Threshold
            } else if self
                .rotation
                .max_key_age_secs
                .is_some_and(|max| now.saturating_sub(at) >= max)
            {
                RotationTrigger::Scheduled
            } else {
                continue;
            };
            match self.rotate_as(a, b, trigger) {
                Ok(_) => rotated.push((a, b)),
                Err(e @ (TsmError::AuditUnavailable(_) | TsmError::Store(_))) => return Err(e),
                Err(e) => {
                    self.stop_pair(
                        a,
                        b,
                        UnixTime::now(),
                        "rotation",
                        &format!("{trigger:?} rotation failed ({e}); the pair is stopped"),
                    )?;
                }
            }
        }
        Ok(rotated)
    }

    /// Re-reads every slot of the pair from the hardware through the driver (which revokes
    /// what crossed the pair if a slot stopped being live); whether all are live, `None` if
    /// the pair has no keys.
    fn refresh_pair(&mut self, a: u16, b: u16) -> Result<Option<bool>> {
        let slots: Vec<SlotRecord> = self
            .store
            .list_json::<SlotRecord>(Table::KeySlots)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| (r.accel == a && r.peer == b) || (r.accel == b && r.peer == a))
            .collect();
        if slots.is_empty() {
            return Ok(None);
        }
        let mut live = true;
        for r in slots {
            let st = self
                .driver
                .key_slot(&self.ctx, slot_ref(&r)?, KeySlotCommand::Query)
                .map_err(kdrv_err("key_slot"))?;
            live &= st.enabled && st.active.state == ualink_kdrv::ops::SlotState::Live;
        }
        Ok(Some(live))
    }

    /// Handles the hardware's fault reports and TDISP errors:
    /// - the driver drains the pod's fault queue and revokes what each fault affects
    ///   (attachments across a pair with an integrity failure or a stopped key, a reset
    ///   device's buffers);
    /// - a UALinkSec integrity failure also invalidates the pair's keys at both ends (a deny
    ///   `key-rotation` record, rule `check.integrity`);
    /// - a device reset quarantines the device until it is re-attested (its keys, TDI and
    ///   SPDM session are gone; a `device-quarantined` record, rule `check.reset`);
    /// - every locked or running TDI is asked its TDISP state inside its SPDM session: one in
    ///   ERROR (a locked configuration written, keys revoked under it, ...) or that cannot
    ///   answer is mirrored as ERROR into the driver (which revokes every grant relying on it),
    ///   stored, and audited with a `tdi-error` record naming the cause.
    ///
    /// A stopped key slot (usage threshold, roll timeout) is left to [`Self::rotate_due`].
    pub fn process_faults(&mut self) -> Result<FaultSummary> {
        self.audit.ensure_writable()?;
        // Bounded: at most 64 polls of the driver's own per-call bound.
        for _ in 0..64 {
            let n = self
                .driver
                .process_faults(&self.ctx, u32::MAX)
                .map_err(kdrv_err("process_faults"))?;
            if n == 0 {
                break;
            }
        }
        let (faults, dropped) = self.driver.audit_sink().drain();
        let mut sum = FaultSummary {
            dropped,
            ..FaultSummary::default()
        };
        // Per accelerator, what the hardware reported about it (the cause of a TDI ERROR).
        let mut causes: BTreeMap<u16, String> = BTreeMap::new();
        for f in faults {
            use ualink_kdrv::ops::FaultReport as F;
            let what = describe_fault(&f);
            sum.faults.push(what.clone());
            match f {
                F::IntegrityFailure { at, source, .. } => {
                    let (at, source) = (at.get(), source.get());
                    for x in [at, source] {
                        causes.entry(x).or_insert_with(|| what.clone());
                    }
                    self.stop_pair(
                        source,
                        at,
                        UnixTime::now(),
                        "integrity",
                        &format!("{what}; the pair's keys are invalidated at both ends"),
                    )?;
                    sum.stopped_pairs.push((at.min(source), at.max(source)));
                }
                F::StaleKey { slot } | F::KeyRollTimeout { slot } => {
                    causes
                        .entry(slot.accel.get())
                        .or_insert_with(|| what.clone());
                }
                F::DeviceReset { accel } => {
                    let id = accel.get();
                    causes.entry(id).or_insert_with(|| what.clone());
                    if self
                        .devices
                        .get(&id)
                        .is_some_and(|d| d.view.status == DeviceStatus::Attested)
                    {
                        if self.device_reset(id, &what)? {
                            sum.tdi_errors.push(id);
                        }
                        sum.reset.push(id);
                    }
                }
                F::LinkDown { .. } | F::LinkUp { .. } | F::PortMigrated { .. } => {}
            }
        }
        // Ask every TDI the TSM holds (and has not already marked ERROR) for its TDISP state.
        let mut held: Vec<u16> = Vec::new();
        for (id, d) in &self.devices {
            if d.tdi.is_none() {
                continue;
            }
            let rec = self
                .store
                .get_json::<TdiRecord>(Table::Tdis, &device_subject(*id))?;
            if rec.is_none_or(|r| r.state != "ERROR") {
                held.push(*id);
            }
        }
        for id in held {
            let state = self.tdi_state_of(id);
            let cause = match state {
                Ok(SpdmTdiState::Error) => causes
                    .get(&id)
                    .cloned()
                    .map(|c| format!("TDISP ERROR after {c}"))
                    .unwrap_or_else(|| {
                        "TDISP ERROR reported by the device (locked configuration changed)"
                            .to_string()
                    }),
                Ok(_) => continue,
                Err(e) => format!("TDISP state unreadable: {e}"),
            };
            self.mark_tdi_error(id, &cause)?;
            sum.tdi_errors.push(id);
        }
        Ok(sum)
    }

    /// The TDISP state of `id`'s TDI, asked inside its SPDM session.
    fn tdi_state_of(&mut self, id: u16) -> Result<SpdmTdiState> {
        let msg = self
            .devices
            .get(&id)
            .and_then(|d| d.tdi.as_ref())
            .map(|s| s.tdi.get_state())
            .ok_or_else(|| TsmError::Conflict(format!("{} holds no TDI", device_subject(id))))?;
        let rsp = self.tdisp(id, msg)?;
        self.devices
            .get(&id)
            .and_then(|d| d.tdi.as_ref())
            .ok_or_else(|| TsmError::Conflict(format!("{} holds no TDI", device_subject(id))))?
            .tdi
            .parse_state(&rsp)
            .map_err(|e| Self::tdisp_err(id, e))
    }

    /// Mirrors `id`'s TDI as ERROR (the driver revokes what relied on it), stores it and
    /// audits a `tdi-error` record. The TDI session is kept so the tenant or provider can STOP
    /// it (ERROR → CONFIG_UNLOCKED).
    fn mark_tdi_error(&mut self, id: u16, cause: &str) -> Result<()> {
        let Some(tenant) = self
            .devices
            .get(&id)
            .and_then(|d| d.tdi.as_ref())
            .map(|s| s.tenant)
        else {
            return Ok(());
        };
        let name = self.tenant(tenant)?.name;
        self.lifecycle(
            &tdi_id(id),
            AuditEvent::TdiError {
                tdi_id: tdi_id(id),
                accelerator_id: id,
                tenant_id: name,
                cause: truncate(cause),
            },
        )?;
        let a = accel(id)?.to_kdrv();
        let epoch = self.device(id)?.epoch;
        let current = self.driver.tdi(a).map(|(s, _)| s);
        if matches!(current, Some(TdiState::ConfigLocked | TdiState::Run)) {
            self.driver
                .tdi_update(&self.ctx, a, TdiState::Error, epoch, false)
                .map_err(kdrv_err("tdi_update"))?;
        }
        self.store.put_json(
            Table::Tdis,
            &device_subject(id),
            &TdiRecord {
                tenant,
                state: "ERROR".into(),
                epoch,
            },
        )
    }

    /// A device the hardware reset: its keys, TDI and session are gone; quarantined (audited)
    /// until re-attested, its link keys forgotten; a TDI it held gets a `tdi-error` record
    /// (the reset left it CONFIG_UNLOCKED). Returns whether it held a TDI.
    fn device_reset(&mut self, id: u16, what: &str) -> Result<bool> {
        let rec = AuditRecord::new(
            UnixTime::now(),
            DecisionKind::DeviceAppraisal,
            &device_subject(id),
            Outcome::Deny,
        )
        .and_then(|r| r.with_rule("check.reset"))
        .and_then(|r| {
            r.with_reason(&truncate(&format!(
                "{what}: keys, TDI and SPDM session lost; re-attestation required"
            )))
        })
        .map_err(audit_build)?
        .with_event(AuditEvent::DeviceQuarantined {
            device_id: device_subject(id),
            accelerator_id: id,
            cause: truncate(what),
            evidence: None,
        });
        self.audit.record(&rec)?;
        let held = self
            .devices
            .get(&id)
            .and_then(|d| d.tdi.as_ref())
            .map(|s| s.tenant);
        if let Some(tenant) = held {
            let name = self.tenant(tenant)?.name;
            self.lifecycle(
                &tdi_id(id),
                AuditEvent::TdiError {
                    tdi_id: tdi_id(id),
                    accelerator_id: id,
                    tenant_id: name,
                    cause: truncate(what),
                },
            )?;
            self.store.delete(Table::Tdis, &device_subject(id))?;
        }
        self.invalidate_all_pairs_of(id)?;
        if let Some(d) = self.devices.get_mut(&id) {
            d.view.status = quarantined("reset", what.to_string());
            d.session = None;
            d.tdi = None;
            d.evidence = None;
        }
        Ok(held.is_some())
    }

    /// Records a verification refusal for the pair `a<->b` (a `key-rotation` Deny with rule
    /// `check.<check>`, no policy input: the auditor's report treats it as a verification
    /// outcome), durably, then invalidates the pair's keys at both ends.
    fn stop_pair(&mut self, a: u16, b: u16, at: UnixTime, check: &str, reason: &str) -> Result<()> {
        let subject = format!("{}<->{}", device_subject(a), device_subject(b));
        let rec = AuditRecord::new(at, DecisionKind::KeyRotation, &subject, Outcome::Deny)
            .and_then(|r| r.with_rule(&format!("check.{check}")))
            .and_then(|r| r.with_reason(&truncate(reason)))
            .map_err(audit_build)?;
        self.audit.record(&rec)?;
        self.invalidate_pair(a, b)
    }

    /// Invalidates the keys of every pair `id` has stored key slots with (quarantine, reset).
    fn invalidate_all_pairs_of(&mut self, id: u16) -> Result<()> {
        let peers: std::collections::BTreeSet<u16> = self
            .store
            .list_json::<SlotRecord>(Table::KeySlots)?
            .into_iter()
            .filter_map(|(_, r)| {
                if r.accel == id {
                    Some(r.peer)
                } else if r.peer == id {
                    Some(r.accel)
                } else {
                    None
                }
            })
            .collect();
        for p in peers {
            self.invalidate_pair(id, p)?;
        }
        Ok(())
    }

    /// Invalidates every slot between `a` and `b` through the driver (which revokes every
    /// attachment between them) and forgets the pair's slot metadata.
    fn invalidate_pair(&mut self, a: u16, b: u16) -> Result<()> {
        let slots: Vec<SlotRecord> = self
            .store
            .list_json::<SlotRecord>(Table::KeySlots)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| (r.accel == a && r.peer == b) || (r.accel == b && r.peer == a))
            .collect();
        for r in slots {
            let slot_ref = KeySlotRef {
                accel: accel(r.accel)?.to_kdrv(),
                port: PortId(u16::from(r.port)),
                dir: if r.dir == "tx" {
                    ualink_kdrv::ops::Direction::Tx
                } else {
                    ualink_kdrv::ops::Direction::Rx
                },
                peer: accel(r.peer)?.to_kdrv(),
            };
            self.driver
                .key_slot(&self.ctx, slot_ref, KeySlotCommand::Invalidate)
                .map_err(kdrv_err("key_slot"))?;
            self.store.delete(Table::KeySlots, &r.key())?;
        }
        Ok(())
    }

    fn next_key_epoch(&self, a: u16, b: u16) -> Result<u32> {
        let last: u32 = self
            .store
            .get_json(Table::Epochs, &pair_key(a, b))?
            .unwrap_or(0);
        last.checked_add(1)
            .ok_or_else(|| TsmError::Conflict("key epoch exhausted".into()))
    }

    /// Sends a vendor-defined (key programming) request in `dev`'s secured session.
    fn vendor(&mut self, dev: u16, payload: zeroize::Zeroizing<Vec<u8>>) -> Result<Vec<u8>> {
        let pod = self.driver.fabric();
        let d = self
            .devices
            .get_mut(&dev)
            .ok_or_else(|| TsmError::NotFound {
                what: "device",
                id: device_subject(dev),
            })?;
        let req = d.session.as_mut().ok_or_else(|| {
            TsmError::Conflict(format!("{} has no secured session", device_subject(dev)))
        })?;
        vendor_in(pod, dev, req, payload)
    }

    // ------------------------------------------------------------------ TDISP

    pub(crate) fn tdi_owner_check(&self, tenant: u32, id: u16) -> Result<TenantRecord> {
        let t = self.tenant(tenant)?;
        let in_vpod = self.vpod(tenant)?.is_some_and(|v| v.members.contains(&id));
        if !in_vpod {
            return Err(TsmError::Conflict(format!(
                "{} is not in tenant {tenant}'s vPod",
                device_subject(id)
            )));
        }
        if self.device(id)?.status != DeviceStatus::Attested {
            return Err(TsmError::Conflict(format!(
                "{} is not attested",
                device_subject(id)
            )));
        }
        Ok(t)
    }

    fn tdisp(&mut self, dev: u16, msg: Vec<u8>) -> Result<Vec<u8>> {
        self.vendor(dev, zeroize::Zeroizing::new(msg))
    }

    fn tdisp_err(dev: u16, e: impl core::fmt::Debug) -> TsmError {
        TsmError::Device {
            device: device_subject(dev),
            check: "tdisp",
            reason: format!("{e:?}"),
        }
    }

    /// LOCKs `accel`'s TDI for `tenant` (the device refuses without live link keys), fetches
    /// its DEVICE_INTERFACE_REPORT and returns the TDI report bundle signed by the TSM key,
    /// bound to the device's evidence bundle and carrying the TSM's own evidence. The bundle
    /// is kept for the tenant ([`Self::tdi_report`]).
    pub fn tdi_lock(&mut self, tenant: u32, id: u16) -> Result<Vec<u8>> {
        self.audit.ensure_writable()?;
        let t = self.tdi_owner_check(tenant, id)?;
        let tdi = TdispRequester::new(
            InterfaceId::new(ualink_sim::device::SIM_TDI).map_err(|e| Self::tdisp_err(id, e))?,
        );
        let rsp = self.tdisp(id, tdi.get_version())?;
        tdi.parse_version(&rsp)
            .map_err(|e| Self::tdisp_err(id, e))?;
        let lock = tdi_lock_request(&tdi).map_err(|e| Self::tdisp_err(id, e))?;
        let rsp = self.tdisp(id, lock)?;
        let nonce = tdi
            .parse_lock_interface(&rsp)
            .map_err(|e| Self::tdisp_err(id, e))?;
        let mut fetch = tdi.report_fetcher(1024);
        let report = loop {
            let Some(req) = fetch.next_request() else {
                return Err(Self::tdisp_err(id, "report fetch ended without a report"));
            };
            let rsp = self.tdisp(id, req)?;
            if let Some(r) = fetch
                .handle_response(&rsp)
                .map_err(|e| Self::tdisp_err(id, e))?
            {
                break r;
            }
        };
        let view = self.device(id)?;
        let a = accel(id)?.to_kdrv();
        self.driver
            .tdi_update(&self.ctx, a, TdiState::ConfigLocked, view.epoch, false)
            .map_err(kdrv_err("tdi_update"))?;
        let device_bundle = self
            .device_evidence(id)
            .ok_or_else(|| TsmError::Conflict("no device evidence".into()))?
            .to_vec();
        let content = TdiReportContent {
            interface_report: report.bytes,
            interface_id: tdi.interface_id(),
            state: SpdmTdiState::ConfigLocked,
            tenant_id: t.name.clone(),
            accelerator_id: id,
            epoch: view.epoch,
            issued_at: UnixTime::now(),
        };
        let bundle = TdiReportBundle::sign(
            &content,
            &device_bundle,
            self.identity.evidence(),
            self.identity.signing_key(),
        )
        .map_err(|e| TsmError::Identity(format!("signing the TDI report: {e}")))?;
        self.lifecycle(
            &tdi_id(id),
            AuditEvent::TdiLocked {
                tdi_id: tdi_id(id),
                accelerator_id: id,
                tenant_id: t.name.clone(),
            },
        )?;
        self.lifecycle(
            &tdi_id(id),
            AuditEvent::TdiReportIssued {
                tdi_id: tdi_id(id),
                bundle: Bytes(bundle.clone()),
            },
        )?;
        if let Some(d) = self.devices.get_mut(&id) {
            d.tdi = Some(TdiSession {
                tdi,
                nonce,
                tenant,
                report: bundle.clone(),
            });
        }
        self.store.put_json(
            Table::Tdis,
            &device_subject(id),
            &TdiRecord {
                tenant,
                state: "CONFIG_LOCKED".into(),
                epoch: view.epoch,
            },
        )?;
        Ok(bundle)
    }

    /// The TDI report bundle kept for `tenant`'s TDI on `id`.
    pub fn tdi_report(&self, tenant: u32, id: u16) -> Option<&[u8]> {
        self.devices
            .get(&id)
            .and_then(|d| d.tdi.as_ref())
            .filter(|s| s.tenant == tenant)
            .map(|s| s.report.as_slice())
    }

    /// The tenant's agent in CVM `cvm_id` accepted the TDI report: START the TDI (LOCKED →
    /// RUN) and mirror it. Audited as a TDI-acceptance record citing the report digest and
    /// naming the CVM (the service passes the id of the agent's attested session).
    pub fn tdi_accept(&mut self, tenant: u32, id: u16, cvm_id: &str) -> Result<()> {
        self.audit.ensure_writable()?;
        self.tdi_owner_check(tenant, id)?;
        let (msg, report) = {
            let s = self
                .devices
                .get(&id)
                .and_then(|d| d.tdi.as_ref())
                .filter(|s| s.tenant == tenant)
                .ok_or_else(|| {
                    TsmError::Conflict(format!("{} is not locked", device_subject(id)))
                })?;
            (s.tdi.start_interface(&s.nonce), s.report.clone())
        };
        // The acceptance decision is the tenant agent's (under the tenant's policy); the TSM
        // records that it was told and STARTs.
        let rec = AuditRecord::new(
            UnixTime::now(),
            DecisionKind::TdiAcceptance,
            &device_subject(id),
            Outcome::Info,
        )
        .and_then(|r| r.with_input("tdi-report", Digest384::of(&report)))
        .and_then(|r| r.with_reason(&format!("accepted by tenant {tenant}; START")))
        .map_err(audit_build)?
        .with_event(AuditEvent::TdiAccepted {
            tdi_id: tdi_id(id),
            tenant_id: self.tenant(tenant)?.name,
            cvm_id: cvm_id.into(),
        });
        self.audit.record(&rec)?;
        let rsp = self.tdisp(id, msg)?;
        if let Some(s) = self.devices.get(&id).and_then(|d| d.tdi.as_ref()) {
            s.tdi
                .parse_start_interface(&rsp)
                .map_err(|e| Self::tdisp_err(id, e))?;
        }
        let epoch = self.device(id)?.epoch;
        self.driver
            .tdi_update(&self.ctx, accel(id)?.to_kdrv(), TdiState::Run, epoch, false)
            .map_err(kdrv_err("tdi_update"))?;
        let name = self.tenant(tenant)?.name;
        self.lifecycle(
            &tdi_id(id),
            AuditEvent::TdiStarted {
                tdi_id: tdi_id(id),
                accelerator_id: id,
                tenant_id: name,
            },
        )?;
        self.store.put_json(
            Table::Tdis,
            &device_subject(id),
            &TdiRecord {
                tenant,
                state: "RUN".into(),
                epoch,
            },
        )?;
        Ok(())
    }

    /// STOPs the TDI (any → CONFIG_UNLOCKED); the driver revokes what relied on it.
    pub fn tdi_stop(&mut self, tenant: u32, id: u16) -> Result<()> {
        self.audit.ensure_writable()?;
        self.tdi_owner_check(tenant, id)?;
        let msg = self
            .devices
            .get(&id)
            .and_then(|d| d.tdi.as_ref())
            .map(|s| s.tdi.stop_interface())
            .ok_or_else(|| {
                TsmError::Conflict(format!("{} has no TDI session", device_subject(id)))
            })?;
        let rsp = self.tdisp(id, msg)?;
        if let Some(s) = self.devices.get_mut(&id).and_then(|d| d.tdi.take()) {
            s.tdi
                .parse_stop_interface(&rsp)
                .map_err(|e| Self::tdisp_err(id, e))?;
        }
        let epoch = self.device(id)?.epoch;
        self.driver
            .tdi_update(
                &self.ctx,
                accel(id)?.to_kdrv(),
                TdiState::ConfigUnlocked,
                epoch,
                false,
            )
            .map_err(kdrv_err("tdi_update"))?;
        self.store.delete(Table::Tdis, &device_subject(id))?;
        let name = self.tenant(tenant)?.name;
        self.lifecycle(
            &tdi_id(id),
            AuditEvent::TdiStopped {
                tdi_id: tdi_id(id),
                accelerator_id: id,
                tenant_id: name,
            },
        )
    }

    // ------------------------------------------------------------------ sharing

    /// Keys the link between two attested accelerators of different vPods (delegated mode),
    /// as a cross-tenant share needs; same programming path as [`Self::provision_keys`].
    pub fn key_link(&mut self, a: u16, b: u16) -> Result<Vec<SlotRecord>> {
        self.audit.ensure_writable()?;
        if a == b {
            return Err(TsmError::InvalidRequest(
                "a link needs two accelerators".into(),
            ));
        }
        for x in [a, b] {
            self.refuse_external(x)?;
            if self.device(x)?.status != DeviceStatus::Attested {
                return Err(TsmError::Conflict(format!(
                    "{} is not attested",
                    device_subject(x)
                )));
            }
        }
        let rng = ring::rand::SystemRandom::new();
        self.key_pair(a, b, Slot::Active, "initial", &mut KeySrc::Tsm(&rng))
    }

    /// Whether every slot between `a` and `b` (both directions, every plane) is live and
    /// enabled, according to the driver's mirror.
    pub fn link_keys_live(&self, a: u16, b: u16) -> Result<bool> {
        let planes = self
            .pod()
            .planes(accel(a)?, accel(b)?)
            .map_err(|e| TsmError::Fabric(e.to_string()))?;
        if planes.is_empty() {
            return Ok(false);
        }
        for (pa, pb) in planes {
            for (x, px, y, py) in [(a, pa.0, b, pb.0), (b, pb.0, a, pa.0)] {
                for (dev, port, dir, peer) in [
                    (x, px, ualink_kdrv::ops::Direction::Tx, y),
                    (y, py, ualink_kdrv::ops::Direction::Rx, x),
                ] {
                    let r = KeySlotRef {
                        accel: accel(dev)?.to_kdrv(),
                        port: PortId(port),
                        dir,
                        peer: accel(peer)?.to_kdrv(),
                    };
                    let live = self.driver.key_slot_meta(&r).is_some_and(|m| {
                        m.enabled && m.active.state == ualink_kdrv::ops::SlotState::Live
                    });
                    if !live {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Decides a share: policy for both tenants (`ualink.share`) on the facts the TSM holds
    /// (TDI states, attestation times, live keys on the route); on allow issues a signed,
    /// expiring, single-use ImportGrant for the driver. Every outcome is audited with its
    /// rules before it is returned.
    pub fn share(&mut self, req: &ShareRequest) -> Result<ShareGrant> {
        self.audit.ensure_writable()?;
        let exp_t = self.tenant(req.exporter_tenant)?;
        let imp_t = self.tenant(req.importer_tenant)?;
        let end = |tsm: &Self, t: &TenantRecord, os: u32, id: u16| -> Result<(ShareEnd, u64)> {
            let d = tsm.device(id)?;
            let (state, epoch) = tsm
                .driver
                .tdi(accel(id)?.to_kdrv())
                .unwrap_or((TdiState::ConfigUnlocked, d.epoch));
            let owner_ok = tsm.vpod(t.id)?.is_some_and(|v| v.members.contains(&id));
            let tdi_state = if !owner_ok || d.status != DeviceStatus::Attested {
                // Not this tenant's, or not usable: the policy sees it as not running.
                TdiStateInput::ConfigUnlocked
            } else {
                match state {
                    TdiState::ConfigUnlocked => TdiStateInput::ConfigUnlocked,
                    TdiState::ConfigLocked => TdiStateInput::ConfigLocked,
                    TdiState::Run => TdiStateInput::Run,
                    TdiState::Error => TdiStateInput::Error,
                }
            };
            Ok((
                ShareEnd {
                    tenant_id: t.name.clone(),
                    os_instance: os.to_string(),
                    accelerator_id: id,
                    tdi_state,
                    attested_at: d.attested_at.unwrap_or(0),
                },
                epoch,
            ))
        };
        let (exporter, exp_epoch) = end(self, &exp_t, req.exporter_os, req.exporter_accel)?;
        let (importer, imp_epoch) = end(self, &imp_t, req.importer_os, req.importer_accel)?;
        let now = UnixTime::now();
        let input = ShareInput {
            exporter,
            importer,
            rights: req.rights.clone(),
            link_keys_live: req.exporter_accel != req.importer_accel
                && self.link_keys_live(req.exporter_accel, req.importer_accel)?,
            now: u64::try_from(now.secs()).unwrap_or(0),
        };
        let json = input
            .to_canonical_json()
            .map_err(|e| TsmError::Policy(e.to_string()))?;
        let decision = match self.engine.evaluate_share(&input) {
            Ok(d) => d,
            Err(e) => Decision {
                allow: false,
                rules: vec!["policy_error".into()],
                reasons: vec![truncate(&e.to_string())],
                policy_digest: self.bundle_digest,
            },
        };
        let subject = format!(
            "share:{}/{}->{}/{}",
            exp_t.name,
            device_subject(req.exporter_accel),
            imp_t.name,
            device_subject(req.importer_accel)
        );
        let outcome = if decision.allow {
            Outcome::Allow
        } else {
            Outcome::Deny
        };
        let mut rec = AuditRecord::new(now, DecisionKind::Share, &subject, outcome)
            .and_then(|r| r.with_input("policy-input", Digest384::of(json.as_bytes())))
            .and_then(|r| r.with_input("buffer-handle", Digest384::of(&req.buffer.0)))
            .and_then(|r| r.with_policy_input(ualink_policy::DecisionKind::Share, &json))
            .map_err(audit_build)?;
        let party = |t: &TenantRecord, os: u32, a: u16| ShareParty {
            tenant_id: t.name.clone(),
            os_instance: os.to_string(),
            accelerator_id: a,
        };
        let exporter_party = party(&exp_t, req.exporter_os, req.exporter_accel);
        let importer_party = party(&imp_t, req.importer_os, req.importer_accel);
        let right_names: Vec<String> = input
            .rights
            .iter()
            .map(|r| {
                match r {
                    Right::Read => "read",
                    Right::Write => "write",
                    Right::Atomic => "atomic",
                }
                .to_string()
            })
            .collect();
        if !decision.allow {
            rec = with_decision(rec, &decision, &self.policy_digest)?.with_event(
                AuditEvent::ShareDenied {
                    grant_id: String::new(),
                    exporter: exporter_party,
                    importer: importer_party,
                    rights: right_names,
                },
            );
            self.audit.record(&rec)?;
            return Err(TsmError::PolicyDenied {
                rules: decision.rules,
                reasons: decision.reasons,
            });
        }
        let rights = req.rights.iter().fold(0u8, |acc, r| {
            acc | match r {
                Right::Read => 1,
                Right::Write => 2,
                Right::Atomic => 4,
            }
        });
        let not_before = self
            .pod()
            .now_ns()
            .map_err(|e| TsmError::Fabric(e.to_string()))?;
        let spec = GrantSpec {
            grant_id: self.grants.random16()?,
            exporter_tenant: req.exporter_tenant,
            exporter_accel: req.exporter_accel,
            buffer: req.buffer,
            importer_tenant: req.importer_tenant,
            importer_os: req.importer_os,
            importer_accel: req.importer_accel,
            rights,
            exporter_epoch: exp_epoch,
            importer_epoch: imp_epoch,
            not_before,
            expiry: not_before.saturating_add(self.grant_ttl_ns),
            nonce: self.grants.random16()?,
        };
        let grant = self.grants.sign(&spec)?;
        rec = rec
            .with_input("grant", Digest384::of(&grant))
            .map_err(audit_build)?;
        rec = with_decision(rec, &decision, &self.policy_digest)?.with_event(
            AuditEvent::ShareAllowed {
                grant_id: hex::encode(spec.grant_id),
                exporter: exporter_party,
                importer: importer_party,
                rights: right_names,
            },
        );
        self.audit.record(&rec)?;
        let record = GrantRecord {
            exporter_tenant: req.exporter_tenant,
            exporter_accel: req.exporter_accel,
            importer_tenant: req.importer_tenant,
            importer_os: req.importer_os,
            importer_accel: req.importer_accel,
            rights,
            expiry_ns: spec.expiry,
            digest: hex::encode(Digest384::of(&grant).as_bytes()),
        };
        self.store
            .put_json(Table::Grants, &hex::encode(spec.grant_id), &record)?;
        Ok(ShareGrant {
            grant,
            rules: decision.rules,
            expiry_ns: spec.expiry,
        })
    }

    /// The driver as the hosts of the embedded pod use it (tenant-side `export`, `attach`,
    /// `map` under tenant `FileCtx`s). In a real deployment each host runs its own kernel
    /// driver; the TSM never calls these itself.
    pub fn driver_mut(&mut self) -> &mut PodDriver {
        &mut self.driver
    }

    /// Offboards `tenant`: STOPs every TDI of its vPod, then the driver revokes every
    /// attachment and buffer, clears window permissions and routes, frees the accelerators
    /// and zeroizes every link key to or from them at both ends; the TSM forgets the tenant's
    /// vPod, windows, TDIs and key metadata. Audited (`tenant-offboarded`) before it returns.
    pub fn offboard(&mut self, tenant: u32) -> Result<()> {
        self.audit.ensure_writable()?;
        let t = self.tenant(tenant)?;
        let members = self.vpod(tenant)?.map(|v| v.members).unwrap_or_default();
        for m in &members {
            let has_tdi = self
                .devices
                .get(m)
                .and_then(|d| d.tdi.as_ref())
                .is_some_and(|s| s.tenant == tenant);
            if has_tdi {
                self.tdi_stop(tenant, *m)?;
            }
        }
        self.driver
            .tenant_offboard(&self.ctx, ualink_kdrv::ids::TenantId(tenant))
            .map_err(kdrv_err("tenant_offboard"))?;
        for m in &members {
            self.pod()
                .set_owner(accel(*m)?, None)
                .map_err(|e| TsmError::Fabric(e.to_string()))?;
        }
        self.lifecycle(
            &format!("tenant-{tenant}"),
            AuditEvent::TenantOffboarded {
                tenant_id: t.name.clone(),
            },
        )?;
        for (k, r) in self.store.list_json::<SlotRecord>(Table::KeySlots)? {
            if members.contains(&r.accel) || members.contains(&r.peer) {
                self.store.delete(Table::KeySlots, &k)?;
            }
        }
        for (k, w) in self.store.list_json::<WindowRecord>(Table::Windows)? {
            if w.tenant == tenant {
                self.store.delete(Table::Windows, &k)?;
            }
        }
        self.store.delete(Table::Vpods, &tenant.to_string())?;
        self.store.delete(Table::Tenants, &tenant.to_string())?;
        Ok(())
    }

    /// Appends a lifecycle record (what happened, with its event) durably.
    pub(crate) fn lifecycle(&mut self, subject: &str, event: AuditEvent) -> Result<()> {
        let rec = AuditRecord::new(
            UnixTime::now(),
            DecisionKind::Lifecycle,
            subject,
            Outcome::Info,
        )
        .map_err(audit_build)?
        .with_event(event);
        self.audit.record(&rec).map(|_| ())
    }

    pub(crate) fn tenant(&self, id: u32) -> Result<TenantRecord> {
        self.store
            .get_json(Table::Tenants, &id.to_string())?
            .ok_or_else(|| TsmError::NotFound {
                what: "tenant",
                id: id.to_string(),
            })
    }

    /// Signs a final audit checkpoint (call before dropping the TSM).
    pub fn shutdown(mut self) -> Result<()> {
        self.audit.checkpoint().map(|_| ())
    }
}

/// Where the master keys of a [`Tsm::key_pair`] call come from.
pub(crate) enum KeySrc<'a> {
    /// Fresh from the TSM's RNG (delegated mode).
    Tsm(&'a ring::rand::SystemRandom),
    /// Handed over by the tenant's lead agent, by (tx, port, rx); each is taken out (and
    /// dropped, zeroized) as it is programmed.
    Lead {
        /// The set's epoch.
        epoch: u32,
        /// The remaining keys.
        keys: &'a mut BTreeMap<(u16, u8, u16), ualink_spdm::keyprog::MasterKey>,
    },
}

fn describe_fault(f: &ualink_kdrv::ops::FaultReport) -> String {
    use ualink_kdrv::ops::FaultReport as F;
    let slot = |s: &KeySlotRef| {
        format!(
            "{} port {} {:?} toward {}",
            device_subject(s.accel.get()),
            s.port.0,
            s.dir,
            device_subject(s.peer.get())
        )
    };
    match f {
        F::IntegrityFailure {
            at,
            port,
            source,
            stream,
        } => format!(
            "UALinkSec integrity failure at {} port {} from {} ({stream:?})",
            device_subject(at.get()),
            port.0,
            device_subject(source.get())
        ),
        F::StaleKey { slot: s } => format!("stale key on {}", slot(s)),
        F::KeyRollTimeout { slot: s } => format!("key roll timeout on {}", slot(s)),
        F::LinkDown { accel, port } => {
            format!(
                "link down at {} port {}",
                device_subject(accel.get()),
                port.0
            )
        }
        F::LinkUp { accel, port } => {
            format!("link up at {} port {}", device_subject(accel.get()), port.0)
        }
        F::PortMigrated {
            accel, from, to, ..
        } => format!(
            "{} migrated from port {} to {}",
            device_subject(accel.get()),
            from.0,
            to.0
        ),
        F::DeviceReset { accel } => format!("{} reset", device_subject(accel.get())),
    }
}

fn slot_ref(r: &SlotRecord) -> Result<KeySlotRef> {
    Ok(KeySlotRef {
        accel: accel(r.accel)?.to_kdrv(),
        port: PortId(u16::from(r.port)),
        dir: if r.dir == "tx" {
            ualink_kdrv::ops::Direction::Tx
        } else {
            ualink_kdrv::ops::Direction::Rx
        },
        peer: accel(r.peer)?.to_kdrv(),
    })
}

/// One pair's programmed keys whose records are not yet durable.
struct StagedKeys {
    pair: (u16, u16),
    epoch: u32,
    records: Vec<SlotRecord>,
    audits: Vec<AuditRecord>,
}

/// Every pair of `members` (each once, in member order).
fn member_pairs(members: &[u16]) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for (i, a) in members.iter().enumerate() {
        for b in members.iter().skip(i + 1) {
            out.push((*a, *b));
        }
    }
    out
}

/// Pairs programmed by [`Tsm::key_pairs_staged`] (in the order asked), their records not yet
/// durable, and the pairs that failed (same order).
struct Staging {
    staged: Vec<StagedKeys>,
    failed: Vec<PairFailure>,
}

/// A pair whose keys could not be programmed: `epoch` may be held by some of its slots.
struct PairFailure {
    pair: (u16, u16),
    epoch: u32,
    error: TsmError,
}

/// One pair to key, decided before any device is touched.
struct PairPlan {
    pair: (u16, u16),
    /// (port of the first device, port of the second) of every plane joining them.
    planes: Vec<(u8, u8)>,
    epoch: u32,
    /// The lead agent's keys in programming order (per plane: first→second, second→first);
    /// `None`: fresh keys from the TSM's RNG, drawn as they are programmed.
    keys: Option<Vec<keyprog::MasterKey>>,
}

/// One slot programmed: (device, target, key fingerprint).
type ProgrammedSlot = (u16, KeyTarget, [u8; 48]);

/// What programming one pair did: every slot (device, target, key fingerprint), TX end then
/// RX end for each key, or why it failed.
struct Programmed {
    pair: (u16, u16),
    epoch: u32,
    /// The slots, and the records built for them (not yet checked against the driver).
    programmed: Result<(Vec<ProgrammedSlot>, StagedKeys)>,
}

/// What every pair of one [`program_pairs`] call gets: the slot (active or alternate), where
/// fresh keys come from (`None`: the plans carry the lead agent's), and what its records say.
#[derive(Clone, Copy)]
struct PairJob<'a> {
    slot: Slot,
    rng: Option<&'a ring::rand::SystemRandom>,
    trigger: &'a str,
    source: &'a str,
}

/// The work list of [`program_pairs`]: pairs not yet started (in order), the devices whose
/// session a worker is using, whether a failure stopped new starts, and what is done.
struct KeyBoard {
    plans: Vec<Option<PairPlan>>,
    pending: std::collections::VecDeque<usize>,
    busy: Vec<u16>,
    /// Workers waiting for a pair whose devices are free.
    waiting: usize,
    stop: bool,
    done: Vec<(usize, Programmed)>,
}

impl KeyBoard {
    /// The first pending pair whose two devices are free, taken and marked busy.
    fn take_free(&mut self) -> Option<(usize, PairPlan)> {
        let busy = &self.busy;
        let plans = &self.plans;
        let pos = self.pending.iter().position(|&i| {
            plans
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|p| !busy.contains(&p.pair.0) && !busy.contains(&p.pair.1))
        })?;
        let i = self.pending.remove(pos)?;
        let plan = self.plans.get_mut(i)?.take()?;
        self.busy.extend([plan.pair.0, plan.pair.1]);
        Some((i, plan))
    }
}

/// Programs every planned pair over the devices' secured `sessions`, `parallelism` workers at
/// a time (the calling thread is one of them), never two pairs sharing a device at once.
/// Returns what was done, in plan order; after a failure no new pair starts.
fn program_pairs(
    pod: &SimPod,
    sessions: &BTreeMap<u16, Mutex<Requester>>,
    plans: Vec<PairPlan>,
    job: PairJob<'_>,
    parallelism: usize,
) -> Vec<Programmed> {
    let workers = parallelism.min(plans.len()).max(1);
    let board = Mutex::new(KeyBoard {
        pending: (0..plans.len()).collect(),
        plans: plans.into_iter().map(Some).collect(),
        busy: Vec::with_capacity(2 * workers),
        waiting: 0,
        stop: false,
        done: Vec::new(),
    });
    let freed = Condvar::new();
    let lock = || board.lock().unwrap_or_else(PoisonError::into_inner);
    let work = || loop {
        let (i, plan) = {
            let mut b = lock();
            loop {
                if b.stop || b.pending.is_empty() {
                    return;
                }
                if let Some(next) = b.take_free() {
                    break next;
                }
                b.waiting += 1;
                b = freed.wait(b).unwrap_or_else(PoisonError::into_inner);
                b.waiting -= 1;
            }
        };
        let (pair, epoch) = (plan.pair, plan.epoch);
        // A worker that panics stops the others instead of leaving them waiting for its
        // devices (the panic then surfaces when the scope joins).
        let guard = StopOnPanic {
            board: &board,
            freed: &freed,
        };
        let programmed = program_pair(pod, sessions, plan, job.slot, job.rng).and_then(|p| {
            let staged = pair_records(pair, epoch, job.slot, job.trigger, job.source, &p)?;
            Ok((p, staged))
        });
        let mut b = lock();
        b.busy.retain(|d| *d != pair.0 && *d != pair.1);
        b.stop |= programmed.is_err();
        b.done.push((
            i,
            Programmed {
                pair,
                epoch,
                programmed,
            },
        ));
        if b.waiting > 0 {
            freed.notify_all();
        }
        drop(b);
        drop(guard);
    };
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(work);
        }
        work();
    });
    let mut done = board
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .done;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, d)| d).collect()
}

/// Stops a [`program_pairs`] board if dropped while its worker unwinds from a panic.
struct StopOnPanic<'a> {
    board: &'a Mutex<KeyBoard>,
    freed: &'a Condvar,
}

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut b = self.board.lock().unwrap_or_else(PoisonError::into_inner);
            b.stop = true;
            self.freed.notify_all();
        }
    }
}

/// Programs one pair inside its two devices' secured sessions: KEY_PROG of every key into
/// the TX slot of its sender and the RX slot of its receiver, then (active slots) K_SET_GO on
/// every RX slot, then on every TX slot. Each key is dropped (zeroized) right after it is
/// programmed.
fn program_pair(
    pod: &SimPod,
    sessions: &BTreeMap<u16, Mutex<Requester>>,
    plan: PairPlan,
    slot: Slot,
    rng: Option<&ring::rand::SystemRandom>,
) -> Result<Vec<ProgrammedSlot>> {
    let PairPlan {
        pair: (a, b),
        planes,
        epoch,
        keys,
    } = plan;
    let session = |dev: u16| {
        sessions
            .get(&dev)
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
            .ok_or_else(|| {
                TsmError::Conflict(format!("{} has no secured session", device_subject(dev)))
            })
    };
    let (mut sa, mut sb) = (session(a)?, session(b)?);
    let mut send = |dev: u16, payload: zeroize::Zeroizing<Vec<u8>>| {
        let req: &mut Requester = if dev == a { &mut sa } else { &mut sb };
        vendor_in(pod, dev, req, payload)
    };
    let mut given = keys.map(Vec::into_iter);
    // (device, target, fingerprint) for every slot programmed.
    let mut programmed: Vec<ProgrammedSlot> = Vec::with_capacity(planes.len() * 4);
    for (pa, pb) in planes {
        for (x, px, y, py) in [(a, pa, b, pb), (b, pb, a, pa)] {
            let key = match (&mut given, rng) {
                (Some(given), _) => given.next().ok_or_else(|| {
                    TsmError::InvalidRequest(format!("lead key set misses {x}:{px}->{y}"))
                })?,
                (None, Some(rng)) => keys::fresh_key(rng)?,
                (None, None) => {
                    return Err(TsmError::InvalidRequest(
                        "no key source for a key programming".into(),
                    ))
                }
            };
            let fp = keys::fingerprint(&key);
            let tx = keys::target(px, KDir::Tx, slot, y)?;
            let rx = keys::target(py, KDir::Rx, slot, x)?;
            for (dev, t) in [(x, tx), (y, rx)] {
                let ack = send(dev, keyprog::ualink_key_prog(t, epoch, &key))?;
                keyprog::expect_kp_ack(&ack, t, epoch).map_err(|e| TsmError::Device {
                    device: device_subject(dev),
                    check: "key-programming",
                    reason: format!("{e:?}"),
                })?;
                programmed.push((dev, t, fp));
            }
            // `key` is dropped (zeroized) here.
        }
    }
    if slot == Slot::Active {
        // RX everywhere before TX.
        for want in [KDir::Rx, KDir::Tx] {
            for (dev, t, _) in programmed.iter().filter(|(_, t, _)| t.direction == want) {
                let ack = send(*dev, zeroize::Zeroizing::new(keyprog::ualink_go(*t)))?;
                keyprog::expect_gostop_ack(&ack, *t).map_err(|e| TsmError::Device {
                    device: device_subject(*dev),
                    check: "key-enable",
                    reason: format!("{e:?}"),
                })?;
            }
        }
    }
    Ok(programmed)
}

/// Builds the slot records and the audit records (one per direction and plane) of a pair
/// just programmed in `slot` at `epoch`, all carrying one time (taken now).
fn pair_records(
    (a, b): (u16, u16),
    epoch: u32,
    slot: Slot,
    trigger: &str,
    source: &str,
    programmed: &[ProgrammedSlot],
) -> Result<StagedKeys> {
    // One time for the whole pair: the slot metadata and the records carry the same.
    let now = UnixTime::now();
    let mut records = Vec::with_capacity(programmed.len());
    for (dev, t, fp) in programmed {
        records.push(SlotRecord {
            accel: *dev,
            port: t.port,
            dir: keys::dir_name(t.direction).into(),
            peer: t.peer.get(),
            epoch,
            fingerprint: hex::encode(fp),
            programmed_at: u64::try_from(now.secs()).unwrap_or(0),
        });
    }
    // One record per direction and plane: the TX end, the RX end, the epoch and the
    // key's fingerprint (entries were pushed TX then RX for each key).
    let mut audits = Vec::with_capacity(programmed.len() / 2);
    for pair in programmed.chunks(2) {
        let [(tx_dev, tx_t, fp), (rx_dev, rx_t, _)] = pair else {
            continue;
        };
        let tx = LinkEnd {
            accelerator_id: *tx_dev,
            port: u16::from(tx_t.port),
        };
        let rx = LinkEnd {
            accelerator_id: *rx_dev,
            port: u16::from(rx_t.port),
        };
        let key_fingerprint = Digest384::of(fp);
        let event = if slot == Slot::Active {
            AuditEvent::KeysProgrammed {
                tx,
                rx,
                epoch: u64::from(epoch),
                key_fingerprint,
            }
        } else {
            AuditEvent::KeysRotated {
                tx,
                rx,
                previous_epoch: u64::from(epoch.saturating_sub(1)),
                epoch: u64::from(epoch),
                key_fingerprint,
            }
        };
        let rec = AuditRecord::new(
            now,
            DecisionKind::KeyRotation,
            &format!("{}->{}", device_subject(*tx_dev), device_subject(*rx_dev)),
            Outcome::Info,
        )
        .and_then(|r| {
            r.with_reason(&format!(
                "trigger={trigger} source={source} slot={slot:?} epoch={epoch}"
            ))
        })
        .and_then(|r| {
            r.with_key_fingerprint(
                &format!("{}->{}", device_subject(*tx_dev), device_subject(*rx_dev)),
                key_fingerprint,
            )
        })
        .map_err(audit_build)?
        .with_event(event);
        audits.push(rec);
    }
    Ok(StagedKeys {
        pair: (a, b),
        epoch,
        records,
        audits,
    })
}

/// Sends a vendor-defined (key programming, TDISP) request in `dev`'s secured session `req`.
fn vendor_in(
    pod: &SimPod,
    dev: u16,
    req: &mut Requester,
    payload: zeroize::Zeroizing<Vec<u8>>,
) -> Result<Vec<u8>> {
    let mut io = Mailbox::new(pod, accel(dev)?);
    match request(req, &mut io, AppRequest::Vendor(payload)) {
        Ok(Some(AppResponse::Vendor(v))) => Ok(v),
        Ok(other) => Err(TsmError::Device {
            device: device_subject(dev),
            check: "spdm-session",
            reason: format!("unexpected answer {other:?}"),
        }),
        Err(e) => Err(TsmError::Device {
            device: device_subject(dev),
            check: "spdm-session",
            reason: e.to_string(),
        }),
    }
}

/// A decided attestation, its record not yet durable.
struct Verdict {
    record: AuditRecord,
    effect: Effect,
}

/// What a verdict changes once its record is durable.
struct Effect {
    status: DeviceStatus,
    /// The deciding rules (the record's).
    rules: Vec<String>,
    evidence: Option<Vec<u8>>,
    session: Option<Requester>,
    now: UnixTime,
}

/// Decides one attestation outcome of device `id` (whose view before it is `view`) and builds
/// its audit record under `policy_digest`. Pure: nothing is recorded or changed.
fn judge(
    id: u16,
    view: &DeviceView,
    policy_digest: &Digest384,
    outcome: AttestOutcome,
) -> Result<Verdict> {
    // The decision time is the appraisal's (the record must carry the policy input's).
    let now = match &outcome {
        Ok(done) => done.at,
        Err(_) => UnixTime::now(),
    };
    let subject = device_subject(id);
    let deny = |check: &str, reason: &str| -> Result<AuditRecord> {
        AuditRecord::new(now, DecisionKind::DeviceAppraisal, &subject, Outcome::Deny)
            .and_then(|r| r.with_rule(&format!("check.{check}")))
            .and_then(|r| r.with_reason(&truncate(reason)))
            .map_err(audit_build)
    };
    let q_event = |cause: &str, evidence: Option<Vec<u8>>| AuditEvent::DeviceQuarantined {
        device_id: subject.clone(),
        accelerator_id: id,
        cause: truncate(cause),
        evidence: evidence.map(Bytes),
    };
    let (status, record, evidence, session) = match outcome {
        Err((check, reason)) => {
            let rec =
                deny(check, &reason)?.with_event(q_event(&format!("{check}: {reason}"), None));
            (quarantined(check, reason), rec, None, None)
        }
        Ok(done) => {
            let Attested {
                req,
                att,
                appraisal,
                ..
            } = *done;
            match DeviceEvidenceBundle::from_attestation(&att, now).and_then(|b| b.encode()) {
                Err(e) => {
                    let reason = format!("device evidence bundle: {e}");
                    let rec = deny("evidence", &reason)?.with_event(q_event(&reason, None));
                    (quarantined("evidence", reason), rec, None, None)
                }
                Ok(bundle) => {
                    let (decision, input_json) = appraisal?;
                    let outcome = if decision.allow {
                        Outcome::Allow
                    } else {
                        Outcome::Deny
                    };
                    let rec =
                        AuditRecord::new(now, DecisionKind::DeviceAppraisal, &subject, outcome)
                            .and_then(|r| r.with_input("spdm-evidence", Digest384::of(&bundle)))
                            .and_then(|r| {
                                r.with_input("policy-input", Digest384::of(input_json.as_bytes()))
                            })
                            .and_then(|r| {
                                r.with_policy_input(
                                    ualink_policy::DecisionKind::DeviceAppraisal,
                                    &input_json,
                                )
                            })
                            .map_err(audit_build)?;
                    let rec = with_decision(rec, &decision, policy_digest)?;
                    if decision.allow {
                        let nonce = att
                            .measurements
                            .as_ref()
                            .map(|m| m.requester_nonce.to_vec())
                            .unwrap_or_default();
                        let rec = rec.with_event(AuditEvent::DeviceAttested {
                            device_id: subject.clone(),
                            accelerator_id: id,
                            epoch: view.epoch.saturating_add(1),
                            nonce: Bytes(nonce),
                            evidence: Bytes(bundle.clone()),
                        });
                        (DeviceStatus::Attested, rec, Some(bundle), Some(req))
                    } else {
                        let reason = decision.reasons.join("; ");
                        let rec = rec.with_event(q_event(&reason, Some(bundle)));
                        (quarantined("policy", reason), rec, None, None)
                    }
                }
            }
        }
    };
    Ok(Verdict {
        effect: Effect {
            status,
            rules: record.rules().to_vec(),
            evidence,
            session,
            now,
        },
        record,
    })
}

/// The LOCK_INTERFACE_REQUEST the TSM sends for `tdi`: flag NO_FW_UPDATE set, so the device
/// refuses firmware updates while the TDI is locked or running (a confidential TDI's
/// measured firmware must stay the firmware the tenant accepted); no other flag.
fn tdi_lock_request(tdi: &TdispRequester) -> core::result::Result<Vec<u8>, String> {
    let flags = LockFlags::from_bits(LockFlags::NO_FW_UPDATE).map_err(|e| format!("{e:?}"))?;
    Ok(tdi.lock_interface(&LockInterfaceParams {
        flags,
        ..LockInterfaceParams::default()
    }))
}

/// A completed SPDM attestation and its policy appraisal (done on the worker).
pub(crate) struct Attested {
    req: Requester,
    att: Attestation,
    appraisal: Result<(Decision, String)>,
    /// When it was appraised (the decision time).
    at: UnixTime,
}

/// What attesting one device produced.
type AttestOutcome = core::result::Result<Box<Attested>, (&'static str, String)>;

/// What one SPDM run produced.
type SpdmOutcome = core::result::Result<Box<(Requester, Attestation)>, (&'static str, String)>;

/// SPDM with one device: VCA, digests, certificate chain to the trusted vendor roots,
/// CHALLENGE, signed measurements, KEY_EXCHANGE/FINISH.
fn attest_device(pod: &SimPod, id: u16, anchors: &Arc<TrustAnchors>) -> SpdmOutcome {
    let a = accel(id).map_err(|e| ("inventory", e.to_string()))?;
    let verifier: Arc<dyn ualink_spdm::cert_chain::ChainVerifier + Send + Sync> = anchors.clone();
    let mut req = Requester::new(RequesterConfig::default(), verifier)
        .map_err(|e| ("spdm", format!("{e:?}")))?;
    let mut io = Mailbox::new(pod, a);
    match attest(&mut req, &mut io) {
        Ok(att) => {
            if att.session_id.is_none() {
                return Err(("session", "no secured session was established".into()));
            }
            if att.measurements.is_none() {
                return Err(("measurements", "no signed measurements".into()));
            }
            Ok(Box::new((req, att)))
        }
        Err(e) => Err((classify(&e), e.to_string())),
    }
}

/// Time allowed to connect to an external device.
const EXTERNAL_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// SPDM with an external device over the spdm-emu socket framing (MCTP), with the same checks
/// as [`attest_device`]; the connection (and its session) ends when this returns.
fn attest_external(addr: &str, roots: &Arc<TrustAnchors>) -> SpdmOutcome {
    use std::net::ToSocketAddrs;
    use ualink_spdm::transport::emu_socket::{EmuClient, EmuConfig};
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| ("transport", format!("resolving {addr}: {e}")))?
        .next()
        .ok_or_else(|| ("transport", format!("{addr} resolves to no address")))?;
    let stream = std::net::TcpStream::connect_timeout(&sock, EXTERNAL_CONNECT_TIMEOUT)
        .map_err(|e| ("transport", format!("connecting to {addr}: {e}")))?;
    let mut io = EmuClient::from_stream(
        stream,
        EmuConfig::new(ualink_spdm::transport::Transport::Mctp),
    )
    .map_err(|e| ("transport", format!("{addr}: {e}")))?;
    let verifier: Arc<dyn ualink_spdm::cert_chain::ChainVerifier + Send + Sync> = roots.clone();
    let mut req = Requester::new(RequesterConfig::default(), verifier)
        .map_err(|e| ("spdm", format!("{e:?}")))?;
    match attest(&mut req, &mut io) {
        Ok(att) => {
            if att.session_id.is_none() {
                return Err(("session", "no secured session was established".into()));
            }
            if att.measurements.is_none() {
                return Err(("measurements", "no signed measurements".into()));
            }
            Ok(Box::new((req, att)))
        }
        Err(e) => Err((classify(&e), e.to_string())),
    }
}

/// The check an SPDM failure names in the audit record and the quarantine cause.
fn classify(e: &ualink_spdm::requester::driver::DriverError) -> &'static str {
    use ualink_spdm::requester::driver::DriverError;
    use ualink_spdm::{Error, PeerMisbehaved};
    match e {
        DriverError::Io(_) => "transport",
        DriverError::Spdm(Error::CertChain(_)) => "certificate_chain",
        DriverError::Spdm(Error::PeerMisbehaved(PeerMisbehaved::BadSignature { .. })) => {
            "signature"
        }
        DriverError::Spdm(Error::PeerMisbehaved(PeerMisbehaved::NonceMismatch { .. })) => "nonce",
        DriverError::Spdm(Error::PeerIncompatible(_)) => "negotiation",
        DriverError::Spdm(_) => "spdm",
    }
}

fn spdm_params(att: &Attestation) -> SpdmParams {
    use ualink_policy::input::alg;
    let n = &att.negotiated;
    let hash = |h: HashAlg| match h {
        HashAlg::Sha256 => alg::SHA_256,
        HashAlg::Sha384 => alg::SHA_384,
    };
    SpdmParams {
        version: match n.version {
            SpdmVersion::V12 => "1.2",
            SpdmVersion::V13 => "1.3",
        }
        .into(),
        base_asym: match n.asym {
            AsymAlg::EcdsaP256 => alg::ECDSA_P256,
            AsymAlg::EcdsaP384 => alg::ECDSA_P384,
        }
        .into(),
        base_hash: hash(n.hash).into(),
        measurement_hash: hash(n.meas_hash).into(),
        dhe: match n.dhe {
            DheGroup::Secp256r1 => alg::SECP256R1,
            DheGroup::Secp384r1 => alg::SECP384R1,
        }
        .into(),
        aead: match n.aead {
            AeadAlg::Aes256Gcm => alg::AES_256_GCM,
        }
        .into(),
    }
}

fn truncate(s: &str) -> String {
    let mut end = s.len().min(1000);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_string()
}

pub(crate) fn audit_build(e: ualink_attest::Error) -> TsmError {
    TsmError::AuditUnavailable(format!("building a record: {e}"))
}

fn pair_key(a: u16, b: u16) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("pair/{lo:04}/{hi:04}")
}

fn quarantined(check: &str, reason: String) -> DeviceStatus {
    DeviceStatus::Quarantined {
        check: check.to_string(),
        reason,
    }
}

/// Adds a policy decision (bundle digest, deciding rules, reasons) to a record.
pub(crate) fn with_decision(
    rec: AuditRecord,
    d: &Decision,
    policy: &Digest384,
) -> Result<AuditRecord> {
    let mut rec = rec.with_policy(*policy);
    for r in &d.rules {
        rec = rec.with_rule(r).map_err(audit_build)?;
    }
    for r in &d.reasons {
        rec = rec.with_reason(&truncate(r)).map_err(audit_build)?;
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use ualink_spdm::tdisp::msg::{InterfaceId, LockFlags, TdispRequest, TdispRequestBody};
    use ualink_spdm::tdisp::requester::TdispRequester;

    /// The LOCK_INTERFACE_REQUEST on the wire asks the device to refuse firmware updates
    /// while locked (decoded as the device's responder decodes it).
    #[test]
    fn tdi_lock_request_carries_no_fw_update() {
        let id = InterfaceId::new(ualink_sim::device::SIM_TDI).unwrap();
        let bytes = super::tdi_lock_request(&TdispRequester::new(id)).unwrap();
        let req = TdispRequest::parse(&bytes).unwrap();
        assert_eq!(req.interface_id, id);
        let TdispRequestBody::LockInterface(p) = req.body else {
            panic!("not a LOCK_INTERFACE_REQUEST: {:?}", req.body);
        };
        let want = LockFlags::from_bits(LockFlags::NO_FW_UPDATE).unwrap();
        assert!(p.flags.contains(want), "flags {:#x}", p.flags.bits());
        assert_eq!(p.flags.bits(), LockFlags::NO_FW_UPDATE);
    }

    /// The service shares the core behind a mutex across tokio tasks: it must be `Send`.
    #[test]
    fn the_core_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<super::Tsm>();
    }
}
