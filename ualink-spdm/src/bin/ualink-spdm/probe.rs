//! `probe`: attest one device over the spdm-emu socket protocol and report what was verified.
//!
//! The verdict is VERIFIED only if the certificate chain verified to a configured trust
//! anchor, every signature (CHALLENGE_AUTH, MEASUREMENTS, KEY_EXCHANGE_RSP) verified, and the
//! requested session and TDISP walk succeeded. Without `--trust-anchor` the chain is checked
//! only up to its own root (so the rest of the evidence can be shown) and the verdict is
//! NOT VERIFIED.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::{json, Value};
use ualink_spdm::algo::{AeadAlg, AsymAlg, DheGroup, HashAlg, SpdmVersion};
use ualink_spdm::cert_chain::{
    split_certs, CertError, ChainVerifier, PeerRole, TrustAnchors, VerifiedChain,
};
use ualink_spdm::device::SOFT_TDI;
use ualink_spdm::keyprog::{self, AccelId, Direction, KeyTarget, MasterKey, Slot, KEY_LEN};
use ualink_spdm::msg::{DmtfValueType, MeasurementBlock};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::requester::driver::{attest, request, DriverError, SpdmIo};
use ualink_spdm::requester::{
    AppRequest, AppResponse, Attestation, Requester, RequesterConfig, SecuredFraming, SessionConfig,
};
use ualink_spdm::tdisp::msg::{InterfaceId, LockInterfaceParams};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::TdiState;
use ualink_spdm::transport::emu_socket::{EmuClient, EmuConfig, EmuError};
use ualink_spdm::transport::Transport;
use ualink_spdm::{Error, PeerMisbehaved};

use crate::{version_name, AsymArg, ExitKind, Failure, TransportArg, VersionArg};

/// The peer accelerator the probe programs a UALinkSec key for before LOCK.
const PROBE_PEER_ACCEL: u16 = 9;

/// Arguments of `probe`.
#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// The device's spdm-emu socket (e.g. 127.0.0.1:2323).
    #[arg(long)]
    connect: String,
    /// Transport binding inside the socket frames.
    #[arg(long, value_enum, default_value = "mctp")]
    transport: TransportArg,
    /// Offer only this SPDM version (default: 1.2 and 1.3, the highest common is used).
    #[arg(long, value_enum)]
    version: Option<VersionArg>,
    /// Offer only this suite (default: P-384 and P-256).
    #[arg(long, value_enum)]
    asym: Option<AsymArg>,
    /// A root certificate to trust (PEM, possibly several blocks, or DER); repeatable.
    /// Without one the device is never reported as verified.
    #[arg(long = "trust-anchor", value_name = "CA")]
    trust_anchors: Vec<PathBuf>,
    /// Set up a secured session (KEY_EXCHANGE/FINISH) after attestation.
    #[arg(long)]
    session: bool,
    /// Walk the TDI through LOCK → REPORT → START → STOP inside the session (needs
    /// --session); programs a fresh UALinkSec link key first, as LOCK requires live keys.
    #[arg(long)]
    tdisp: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Checks a chain up to its own root: every check of [`TrustAnchors`] except that the root
/// is trusted. Used only to show evidence when no anchor was given; never a verdict.
struct SelfRooted;

impl ChainVerifier for SelfRooted {
    fn verify_for_role(
        &self,
        certs_der: &[u8],
        asym: AsymAlg,
        role: PeerRole,
    ) -> Result<VerifiedChain, CertError> {
        let certs = split_certs(certs_der)?;
        let root = certs.first().ok_or(CertError::Empty)?;
        let mut own = TrustAnchors::new();
        own.add_der(root)?;
        own.verify_for_role(certs_der, asym, role)
    }
}

/// What the probe learned, for the text and JSON reports.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn line(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }
    fn set(&mut self, key: &str, v: Value) {
        self.json.insert(key.to_owned(), v);
    }
}

pub(crate) fn run(args: &ProbeArgs) -> Result<(), Failure> {
    let mut report = Report::default();
    let result = probe(args, &mut report);
    let verified = result.is_ok();
    report.set("verified", json!(verified));
    if let Err(f) = &result {
        report.set("error", json!(format!("{:#}", f.error)));
        report.set("exit_code", json!(f.kind as u8));
    }
    if args.json {
        println!("{}", Value::Object(report.json));
    } else {
        for l in &report.lines {
            println!("{l}");
        }
        match &result {
            Ok(()) => println!("result: VERIFIED"),
            Err(f) => println!("result: NOT VERIFIED ({:#})", f.error),
        }
    }
    result
}

fn probe(args: &ProbeArgs, r: &mut Report) -> Result<(), Failure> {
    let transport = Transport::from(args.transport);
    if args.tdisp && !args.session {
        return Err(usage(
            "--tdisp needs --session (TDISP runs inside the secured session)",
        ));
    }
    if args.session && transport == Transport::None {
        return Err(usage(
            "--session is impossible on transport none (spdm-emu's NONE binding cannot carry secured messages); use mctp or pci-doe",
        ));
    }
    let mut anchors = TrustAnchors::new();
    for path in &args.trust_anchors {
        let bytes = std::fs::read(path).map_err(|e| {
            Failure::new(
                ExitKind::Other,
                anyhow::anyhow!("cannot read trust anchor {}: {e}", path.display()),
            )
        })?;
        anchors.add_pem_or_der(&bytes).map_err(|e| {
            Failure::new(
                ExitKind::Usage,
                anyhow::anyhow!("trust anchor {}: {e} (CertError::{e:?})", path.display()),
            )
        })?;
    }
    let have_anchor = !anchors.is_empty();
    let verifier: Arc<dyn ChainVerifier + Send + Sync> = if have_anchor {
        Arc::new(anchors)
    } else {
        Arc::new(SelfRooted)
    };

    r.set("connect", json!(args.connect));
    r.set("transport", json!(transport.to_string()));
    let mut client = EmuClient::connect(&args.connect, EmuConfig::new(transport)).map_err(|e| {
        Failure::new(
            ExitKind::Connect,
            anyhow::anyhow!("could not connect to {}: {e}", args.connect),
        )
    })?;
    r.line(format!(
        "connected: {} (transport {transport})",
        args.connect
    ));
    if transport == Transport::PciDoe {
        let entries = client.doe_discovery().map_err(protocol_emu)?;
        let list: Vec<String> = entries
            .iter()
            .map(|e| format!("{:#06x}:{}", e.vendor_id, e.object_type))
            .collect();
        r.line(format!("doe discovery: {}", list.join(" ")));
        r.set("doe_discovery", json!(list));
    }

    let versions = match args.version {
        Some(v) => vec![SpdmVersion::from(v)],
        None => vec![SpdmVersion::V12, SpdmVersion::V13],
    };
    let algorithms = match args.asym {
        Some(a) => AlgorithmPolicy::suite(AsymAlg::from(a)),
        None => AlgorithmPolicy::default(),
    };
    let config = RequesterConfig {
        versions,
        algorithms,
        session: args.session.then(SessionConfig::default),
        secured: SecuredFraming::for_transport(transport),
        ..RequesterConfig::default()
    };
    let mut req = Requester::new(config, verifier)
        .map_err(|e| Failure::new(ExitKind::Usage, anyhow::anyhow!("{e}")))?;

    let a = attest(&mut req, &mut client).map_err(driver_failure)?;
    show_attestation(&a, have_anchor, r);

    if args.tdisp {
        tdisp_walk(&mut req, &mut client, r)?;
    }
    if a.session_id.is_some() {
        match request(&mut req, &mut client, AppRequest::EndSession).map_err(driver_failure)? {
            None => r.line("session: ended (END_SESSION acknowledged)"),
            Some(other) => {
                return Err(Failure::new(
                    ExitKind::Protocol,
                    anyhow::anyhow!("END_SESSION answered with {other:?}"),
                ))
            }
        }
    }
    client.shutdown().map_err(protocol_emu)?;
    r.line("connection: SHUTDOWN acknowledged");
    if !have_anchor {
        return Err(Failure::new(
            ExitKind::Verification,
            anyhow::anyhow!(
                "no --trust-anchor given: the chain was checked only up to its own root, so the device is not verified"
            ),
        ));
    }
    Ok(())
}

fn usage(msg: &'static str) -> Failure {
    Failure::new(ExitKind::Usage, anyhow::anyhow!(msg))
}

fn protocol_emu(e: EmuError) -> Failure {
    Failure::new(ExitKind::Protocol, anyhow::anyhow!("transport: {e}"))
}

/// Verification failures (the device could not prove what it claims) versus protocol
/// failures (it did not follow SPDM, or the connection broke).
fn driver_failure(e: DriverError) -> Failure {
    match e {
        DriverError::Io(e) => Failure::new(ExitKind::Protocol, anyhow::anyhow!("transport: {e}")),
        DriverError::Spdm(e) => {
            let kind = match &e {
                Error::CertChain(_)
                | Error::PeerMisbehaved(
                    PeerMisbehaved::BadSignature { .. }
                    | PeerMisbehaved::NonceMismatch { .. }
                    | PeerMisbehaved::VerifyDataMismatch { .. }
                    | PeerMisbehaved::DigestMismatch { .. }
                    | PeerMisbehaved::Downgrade { .. },
                ) => ExitKind::Verification,
                _ => ExitKind::Protocol,
            };
            let what = match kind {
                ExitKind::Verification => "verification failed",
                _ => "protocol error",
            };
            let detail = match &e {
                Error::CertChain(c) => format!(" (CertError::{c:?})"),
                _ => String::new(),
            };
            Failure::new(kind, anyhow::anyhow!("{what}: {e}{detail}"))
        }
    }
}

fn hash_name(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Sha256 => "SHA-256",
        HashAlg::Sha384 => "SHA-384",
    }
}

fn asym_name(a: AsymAlg) -> &'static str {
    match a {
        AsymAlg::EcdsaP256 => "ECDSA-P256",
        AsymAlg::EcdsaP384 => "ECDSA-P384",
    }
}

fn dhe_name(d: DheGroup) -> &'static str {
    match d {
        DheGroup::Secp256r1 => "secp256r1",
        DheGroup::Secp384r1 => "secp384r1",
    }
}

fn aead_name(a: AeadAlg) -> &'static str {
    match a {
        AeadAlg::Aes256Gcm => "AES-256-GCM",
    }
}

fn value_type_name(t: DmtfValueType) -> &'static str {
    match t.kind() {
        DmtfValueType::IMMUTABLE_ROM => "immutable-rom",
        DmtfValueType::MUTABLE_FIRMWARE => "mutable-firmware",
        DmtfValueType::HARDWARE_CONFIG => "hardware-config",
        DmtfValueType::FIRMWARE_CONFIG => "firmware-config",
        DmtfValueType::MANIFEST => "manifest",
        DmtfValueType::DEVICE_MODE => "device-mode",
        DmtfValueType::VERSION => "version",
        DmtfValueType::SVN => "svn",
        DmtfValueType::HEM => "hash-extended",
        DmtfValueType::INFORMATIONAL => "informational",
        DmtfValueType::STRUCTURED_MANIFEST => "structured-manifest",
        _ => "other",
    }
}

fn tdi_state_name(s: TdiState) -> &'static str {
    match s {
        TdiState::ConfigUnlocked => "CONFIG_UNLOCKED",
        TdiState::ConfigLocked => "CONFIG_LOCKED",
        TdiState::Run => "RUN",
        TdiState::Error => "ERROR",
    }
}

fn block_json(b: &MeasurementBlock) -> Value {
    json!({
        "index": b.index,
        "type": value_type_name(b.value_type),
        "raw": b.value_type.0 & DmtfValueType::RAW_BIT_STREAM != 0,
        "value": hex::encode(&b.value),
    })
}

fn show_attestation(a: &Attestation, have_anchor: bool, r: &mut Report) {
    let n = a.negotiated;
    r.line(format!("version: SPDM {}", version_name(n.version)));
    r.line(format!(
        "algorithms: hash={} meas_hash={} asym={} dhe={} aead={}",
        hash_name(n.hash),
        hash_name(n.meas_hash),
        asym_name(n.asym),
        dhe_name(n.dhe),
        aead_name(n.aead)
    ));
    r.set("version", json!(version_name(n.version)));
    r.set(
        "algorithms",
        json!({
            "hash": hash_name(n.hash),
            "meas_hash": hash_name(n.meas_hash),
            "asym": asym_name(n.asym),
            "dhe": dhe_name(n.dhe),
            "aead": aead_name(n.aead),
        }),
    );

    let subjects = a.chain.subjects();
    r.line(format!(
        "certificate chain (slot {}): {} certificates, root first",
        a.slot,
        subjects.len()
    ));
    for (i, s) in subjects.iter().enumerate() {
        r.line(format!("  [{i}] {s}"));
    }
    let verdict = if have_anchor {
        "VERIFIED (root is a configured trust anchor)"
    } else {
        "NOT VERIFIED (no --trust-anchor given; checked only up to its own root)"
    };
    r.line(format!("chain verdict: {verdict}"));
    r.set(
        "chain",
        json!({
            "slot": a.slot,
            "subjects": subjects,
            "trusted": have_anchor,
            "verdict": verdict,
        }),
    );

    if a.challenge.is_some() {
        r.line("challenge: CHALLENGE_AUTH signature verified");
    }
    r.set("challenge_verified", json!(a.challenge.is_some()));
    match &a.measurements {
        Some(m) => {
            r.line(format!(
                "measurements: {} blocks, signature verified",
                m.blocks.len()
            ));
            for b in &m.blocks {
                let raw = b.value_type.0 & DmtfValueType::RAW_BIT_STREAM != 0;
                r.line(format!(
                    "  #{} {} {} {}",
                    b.index,
                    value_type_name(b.value_type),
                    if raw { "raw" } else { "digest" },
                    hex::encode(&b.value)
                ));
            }
            r.set(
                "measurements",
                Value::Array(m.blocks.iter().map(block_json).collect()),
            );
        }
        None => {
            r.line("measurements: none");
            r.set("measurements", Value::Array(Vec::new()));
        }
    }
    match a.session_id {
        Some(sid) => {
            r.line(format!("session: established (session id {sid:#010x})"));
            r.set("session", json!({"established": true, "id": sid}));
        }
        None => {
            r.line("session: none");
            r.set("session", json!({"established": false}));
        }
    }
}

fn vendor(req: &mut Requester, io: &mut dyn SpdmIo, payload: Vec<u8>) -> Result<Vec<u8>, Failure> {
    match request(
        req,
        io,
        AppRequest::Vendor(zeroize::Zeroizing::new(payload)),
    )
    .map_err(driver_failure)?
    {
        Some(AppResponse::Vendor(p)) => Ok(p),
        other => Err(Failure::new(
            ExitKind::Protocol,
            anyhow::anyhow!("VENDOR_DEFINED answered with {other:?}"),
        )),
    }
}

fn tdisp_err(step: &str, e: impl std::fmt::Display) -> Failure {
    Failure::new(ExitKind::Protocol, anyhow::anyhow!("TDISP {step}: {e}"))
}

/// GET_VERSION, GET_CAPABILITIES, a fresh link key (LOCK needs live keys), LOCK, REPORT,
/// START, STOP, with GET_STATE after each transition.
fn tdisp_walk(req: &mut Requester, io: &mut dyn SpdmIo, r: &mut Report) -> Result<(), Failure> {
    let mut walk: Vec<String> = Vec::new();
    let id = InterfaceId::new(SOFT_TDI).map_err(|e| tdisp_err("interface", e))?;
    let tdi = TdispRequester::new(id);
    let result = (|| -> Result<(), Failure> {
        tdi.parse_version(&vendor(req, io, tdi.get_version())?)
            .map_err(|e| tdisp_err("GET_VERSION", e))?;
        tdi.parse_capabilities(&vendor(req, io, tdi.get_capabilities())?)
            .map_err(|e| tdisp_err("GET_CAPABILITIES", e))?;
        let state = |req: &mut Requester, io: &mut dyn SpdmIo| -> Result<TdiState, Failure> {
            tdi.parse_state(&vendor(req, io, tdi.get_state())?)
                .map_err(|e| tdisp_err("GET_STATE", e))
        };
        walk.push(tdi_state_name(state(req, io)?).to_owned());

        // A fresh UALinkSec master key for (port 0, TX, active) towards the probe's peer.
        let peer = AccelId::new(PROBE_PEER_ACCEL).map_err(|e| tdisp_err("key target", e))?;
        let target = KeyTarget {
            port: 0,
            direction: Direction::Tx,
            slot: Slot::Active,
            peer,
        };
        let mut bytes = zeroize::Zeroizing::new([0u8; KEY_LEN]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes.as_mut())
            .map_err(|_| Failure::new(ExitKind::Other, anyhow::anyhow!("no randomness")))?;
        let key = MasterKey::from_bytes(&mut bytes);
        let prog = keyprog::ualink_key_prog(target, 1, &key);
        keyprog::expect_kp_ack(&vendor(req, io, prog.to_vec())?, target, 1)
            .map_err(|e| tdisp_err("KEY_PROG", e))?;
        keyprog::expect_gostop_ack(&vendor(req, io, keyprog::ualink_go(target))?, target)
            .map_err(|e| tdisp_err("K_SET_GO", e))?;
        walk.push(String::from("KEYS_LIVE"));

        let nonce = tdi
            .parse_lock_interface(&vendor(
                req,
                io,
                tdi.lock_interface(&LockInterfaceParams::default()),
            )?)
            .map_err(|e| tdisp_err("LOCK_INTERFACE", e))?;
        walk.push(tdi_state_name(state(req, io)?).to_owned());
        let mut fetch = tdi.report_fetcher(1024);
        let mut report = None;
        while let Some(q) = fetch.next_request() {
            report = fetch
                .handle_response(&vendor(req, io, q)?)
                .map_err(|e| tdisp_err("GET_DEVICE_INTERFACE_REPORT", e))?;
        }
        let report = report.ok_or_else(|| tdisp_err("GET_DEVICE_INTERFACE_REPORT", "no report"))?;
        walk.push(format!("REPORT({} bytes)", report.bytes.len()));
        tdi.parse_start_interface(&vendor(req, io, tdi.start_interface(&nonce))?)
            .map_err(|e| tdisp_err("START_INTERFACE", e))?;
        walk.push(tdi_state_name(state(req, io)?).to_owned());
        tdi.parse_stop_interface(&vendor(req, io, tdi.stop_interface())?)
            .map_err(|e| tdisp_err("STOP_INTERFACE", e))?;
        walk.push(tdi_state_name(state(req, io)?).to_owned());
        Ok(())
    })();
    r.line(format!("tdisp: {}", walk.join(" -> ")));
    r.set("tdisp", json!({ "walk": walk, "ok": result.is_ok() }));
    result
}
