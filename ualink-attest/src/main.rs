//! `ualink-attest`: the auditor's command: `verify`, `log`, `report`, `policy test` and
//! `trust` (the auditor's trust store, see `ualink_attest::trust_store`).
//! `report` exits 0, 20 (evidence failed), 21 (log tampered) or 22 (decision mismatch).
//!
//! Exit codes (one per failure class, see `ualink_attest::ErrorClass`):
//! 0 verified; 2 usage error; 10 malformed evidence; 11 unsupported version or algorithm;
//! 12 bad signature; 13 untrusted, invalid or expired chain (or TDX quote rejected);
//! 14 binding mismatch (report_data, TCB, chip id, key kind); 15 tampered log;
//! 16 I/O error; 17 API misuse; 18 unknown evidence type.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::json;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use ualink_attest::evidence::{decode_hex_or_binary, detect, EvidenceKind};
use ualink_attest::pki::{certs_from_pem_or_der, AnchorOrigin, TrustAnchors};
use ualink_attest::snp::{SnpCerts, SnpVerifier};
use ualink_attest::spdm_evidence::{DeviceEvidenceVerifier, DeviceTrustAnchors, ExpectedNonce};
use ualink_attest::tdi_report::TdiReportVerifier;
use ualink_attest::tdx::{trim_zero_padding, verify_quote, TdxCollateral};
use ualink_attest::trust_store::{
    self, OnConflict, RootKind, RootsError, StoreRoots, TrustStore, TrustStoreError,
};
use ualink_attest::{Error, ErrorClass, ExpectedReportData, UnixTime};

#[derive(Parser)]
#[command(
    name = "ualink-attest",
    version,
    about = "Verify ualink-cc evidence offline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Verify one evidence item (SNP or sim report, TDX quote, SPDM device evidence bundle,
    /// TDI report bundle), type detected from its bytes
    /// (hex or binary).
    ///
    /// Exit codes: 0 verified, 10 malformed, 11 unsupported, 12 bad signature, 13 untrusted
    /// or expired chain / quote rejected, 14 binding mismatch, 16 I/O, 18 unknown type.
    Verify {
        /// The evidence file.
        file: PathBuf,
        /// What the evidence does not carry: SNP VCEK/VLEK and ASK/ASVK (PEM or DER), or TDX
        /// collateral JSON.
        #[arg(long = "certs")]
        certs: Vec<PathBuf>,
        /// Additional trust anchors (PEM or DER root certificates), e.g. a sim platform's
        /// ark.pem. The AMD roots are always trusted for SNP and for a TDI report's TSM
        /// evidence. For a device evidence bundle these are the device vendor roots.
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
        /// Device vendor roots (PEM or DER) for the device evidence inside a TDI report
        /// bundle (and, with --trust, for a device evidence bundle).
        #[arg(long = "device-trust")]
        device_trust: Vec<PathBuf>,
        /// Verification time (RFC 3339); default: now.
        #[arg(long = "now")]
        now: Option<String>,
        /// Expected report_data: exactly 64 bytes as hex.
        #[arg(long = "report-data")]
        report_data: Option<String>,
        /// Expected SPDM requester nonce of the signed GET_MEASUREMENTS (32 bytes as hex),
        /// for device evidence and TDI report bundles.
        #[arg(long = "nonce")]
        nonce: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Audit log checks: full verification, and inclusion/consistency proofs against
    /// signed checkpoints. Exit codes: 0 verified, 15 tampered or proof invalid, 10
    /// malformed, 16 I/O.
    #[command(subcommand)]
    Log(LogCmd),
    /// Audit a whole log: verify it and its checkpoints, re-verify every embedded evidence
    /// item, replay every recorded decision under the recorded policy, and report the pod,
    /// devices, TDIs, tenants, shares, revocations, key epochs and anomalies.
    ///
    /// The checkpoint key comes from the log's tsm-identity record (its TEE evidence verified
    /// with the AMD roots, the trust store's and --trust) or from STATE/tsm.pub.
    ///
    /// Roots: AMD's built in, the auditor's trust store (`ualink-attest trust`; never the
    /// audited directory, and a store inside it is refused), plus --trust/--device-trust.
    /// When the store holds roots, the text output's "Trust:" paragraph and the JSON's
    /// `trust` name every root used (store entries and flag files, path and SHA-384).
    ///
    /// Exit codes: 0 everything verified and every decision replays identically; 20 evidence
    /// failed; 21 log tampered (or no checkpoint key); 22 decision mismatch (including policy
    /// digest mismatch and decisions that cannot be replayed); 2 usage; 16 I/O; 10 malformed
    /// policy. With several failures the code is the first of 21, 20, 22.
    Report {
        /// The TSM state directory (reads STATE/audit.log, STATE/tsm.pub, STATE/policy/ and
        /// the bundles the TSM replaced, STATE/policy-archive/*/).
        #[arg(long, conflicts_with = "log", required_unless_present = "log")]
        state: Option<PathBuf>,
        /// The audit log file.
        #[arg(long)]
        log: Option<PathBuf>,
        /// The policy bundle directory to replay under (default STATE/policy/).
        #[arg(long)]
        policy: Option<PathBuf>,
        /// The TSM's checkpoint key (hex SEC1 or PEM), if not STATE/tsm.pub.
        #[arg(long)]
        key: Option<PathBuf>,
        /// TEE roots (PEM or DER) for TSM and CVM evidence, e.g. a sim ark.pem, in addition
        /// to the AMD roots and the trust store's `tee/` entries.
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
        /// Device vendor roots (PEM or DER), in addition to the trust store's `devices/`.
        #[arg(long = "device-trust")]
        device_trust: Vec<PathBuf>,
        /// Signed checkpoints kept from earlier audits (detects truncation and forks).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Write the report here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Policy tools.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// The auditor's trust store: roots `report` trusts without flags (TEE roots in `tee/`,
    /// device vendor roots in `devices/`), kept outside any audited directory, in
    /// $UALINK_ATTEST_TRUST_DIR, else $XDG_CONFIG_HOME/ualink-attest/trust, else
    /// $HOME/.config/ualink-attest/trust. Exit codes: 0 done, 2 usage (bad name, entry exists
    /// or not found), 10 not a certificate (or an unusable stored entry), 16 I/O or insecure
    /// permissions.
    #[command(subcommand)]
    Trust(TrustCmd),
}

#[derive(Subcommand)]
enum TrustCmd {
    /// Add a root certificate file (PEM or DER) to the store; anything that is not a
    /// certificate of that kind is refused.
    Add {
        /// A TEE root (TSM and CVM evidence), e.g. a sim platform's ark.pem.
        #[arg(long, conflicts_with = "device", required_unless_present = "device")]
        tee: Option<PathBuf>,
        /// A device vendor root (SPDM device evidence).
        #[arg(long)]
        device: Option<PathBuf>,
        /// The entry name (default: the file name without extension).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the entries: kind, name, file and SHA-384 of each certificate.
    List,
    /// Remove entries by name.
    Remove {
        /// The entry names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Html,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Replay every recorded decision under a candidate policy and print those that would
    /// change: against what was recorded, or against the decisions of the --against bundle.
    /// The log is not verified here (use `report`). Exit 0 whether or not decisions change;
    /// 10 for a malformed policy or log, 16 I/O.
    Test {
        /// The candidate policy bundle directory.
        #[arg(long)]
        policy: PathBuf,
        /// The audit log.
        #[arg(long)]
        log: PathBuf,
        /// Compare with decisions under this bundle instead of the recorded ones.
        #[arg(long)]
        against: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum LogCmd {
    /// Verify a whole audit log (framing, sequence, hash chain, every checkpoint), and that
    /// it extends the given trusted checkpoints (truncation, forks).
    Verify {
        /// The audit log (STATE/audit.log).
        #[arg(long)]
        log: PathBuf,
        /// The TSM's checkpoint key: hex SEC1 point or PEM PUBLIC KEY.
        #[arg(long)]
        key: PathBuf,
        /// Signed checkpoints held from outside the log (COSE_Sign1, binary or hex).
        #[arg(long = "checkpoint")]
        checkpoints: Vec<PathBuf>,
    },
    /// Print an inclusion proof (JSON) for record SEQ in the tree of SIZE records.
    ProveInclusion {
        /// The audit log.
        #[arg(long)]
        log: PathBuf,
        /// The TSM's checkpoint key.
        #[arg(long)]
        key: PathBuf,
        /// The record's sequence number.
        #[arg(long)]
        seq: u64,
        /// The tree size (a checkpoint's size).
        #[arg(long)]
        size: u64,
    },
    /// Print a consistency proof (JSON) between tree sizes OLD and NEW.
    ProveConsistency {
        /// The audit log.
        #[arg(long)]
        log: PathBuf,
        /// The TSM's checkpoint key.
        #[arg(long)]
        key: PathBuf,
        /// The older size.
        #[arg(long)]
        old: u64,
        /// The newer size.
        #[arg(long)]
        new: u64,
    },
    /// Check an inclusion proof against a signed checkpoint.
    Inclusion {
        /// The proof (JSON).
        #[arg(long)]
        proof: PathBuf,
        /// The signed checkpoint.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The TSM's checkpoint key.
        #[arg(long)]
        key: PathBuf,
    },
    /// Check a consistency proof between two signed checkpoints.
    Consistency {
        /// The proof (JSON).
        #[arg(long)]
        proof: PathBuf,
        /// The older signed checkpoint.
        #[arg(long)]
        old_checkpoint: PathBuf,
        /// The newer signed checkpoint.
        #[arg(long)]
        new_checkpoint: PathBuf,
        /// The TSM's checkpoint key.
        #[arg(long)]
        key: PathBuf,
    },
}

fn log_cmd(cmd: LogCmd) -> Result<serde_json::Value, Failure> {
    use ualink_attest::audit::proof::{ConsistencyProof, InclusionProof};
    use ualink_attest::audit::{verify_log, CheckpointVerifier};
    let key_of = |p: &PathBuf| -> Result<CheckpointVerifier, Failure> {
        Ok(CheckpointVerifier::from_key_file(&read(p)?)?)
    };
    let bin = |p: &PathBuf| -> Result<Vec<u8>, Failure> { Ok(decode_hex_or_binary(&read(p)?)) };
    let proof_json = |p: &PathBuf| -> Result<Vec<u8>, Failure> { read(p) };
    let bad_json = |e: serde_json::Error| Failure {
        code: 10,
        class: "malformed",
        message: format!("proof JSON: {e}"),
    };
    match cmd {
        LogCmd::Verify {
            log,
            key,
            checkpoints,
        } => {
            let bytes = read(&log)?;
            let trusted = checkpoints.iter().map(bin).collect::<Result<Vec<_>, _>>()?;
            let v = verify_log(&bytes, &key_of(&key)?, &trusted)?;
            Ok(json!({
                "type": "audit-log",
                "records": v.size(),
                "checkpoints": v.checkpoints.len(),
                "last_checkpoint_size": v.checkpoints.last().map(|c| c.tree_size),
                "unsealed_from_seq": v.unsealed_from(),
                "torn_tail_bytes": v.torn_tail_bytes,
                "trusted_checkpoints_matched": trusted.len(),
                "root": hex::encode(v.root()),
            }))
        }
        LogCmd::ProveInclusion {
            log,
            key,
            seq,
            size,
        } => {
            let bytes = read(&log)?;
            let v = verify_log(&bytes, &key_of(&key)?, &[])?;
            let p = InclusionProof::build(&v, seq, size)?;
            serde_json::to_value(p).map_err(bad_json)
        }
        LogCmd::ProveConsistency { log, key, old, new } => {
            let bytes = read(&log)?;
            let v = verify_log(&bytes, &key_of(&key)?, &[])?;
            let p = ConsistencyProof::build(&v, old, new)?;
            serde_json::to_value(p).map_err(bad_json)
        }
        LogCmd::Inclusion {
            proof,
            checkpoint,
            key,
        } => {
            let p: InclusionProof =
                serde_json::from_slice(&proof_json(&proof)?).map_err(bad_json)?;
            p.verify(&bin(&checkpoint)?, &key_of(&key)?)?;
            Ok(json!({"type": "inclusion-proof", "seq": p.seq, "tree_size": p.tree_size}))
        }
        LogCmd::Consistency {
            proof,
            old_checkpoint,
            new_checkpoint,
            key,
        } => {
            let p: ConsistencyProof =
                serde_json::from_slice(&proof_json(&proof)?).map_err(bad_json)?;
            p.verify(
                &bin(&old_checkpoint)?,
                &bin(&new_checkpoint)?,
                &key_of(&key)?,
            )?;
            Ok(json!({"type": "consistency-proof", "old_size": p.old_size, "new_size": p.new_size}))
        }
    }
}

/// An error with its exit code.
struct Failure {
    code: u8,
    class: &'static str,
    message: String,
}

fn code_of(e: &Error) -> (u8, &'static str) {
    match e.class() {
        ErrorClass::Malformed => (10, "malformed"),
        ErrorClass::Unsupported => (11, "unsupported"),
        ErrorClass::Crypto => (12, "bad-signature"),
        ErrorClass::Trust => (13, "untrusted"),
        ErrorClass::Binding => (14, "binding-mismatch"),
        ErrorClass::Tampered => (15, "tampered"),
        ErrorClass::Io => (16, "io"),
        _ => (17, "api-misuse"),
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let (code, class) = code_of(&e);
        Failure {
            code,
            class,
            message: e.to_string(),
        }
    }
}

fn io_failure(e: anyhow::Error) -> Failure {
    Failure {
        code: 16,
        class: "io",
        message: format!("{e:#}"),
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(io_failure)
}

fn load_policy(dir: &std::path::Path) -> Result<ualink_policy::PolicyBundle, Failure> {
    ualink_policy::PolicyBundle::load(dir).map_err(|e| Failure {
        code: 10,
        class: "malformed",
        message: format!("policy {}: {e}", dir.display()),
    })
}

fn write_out(out: Option<&PathBuf>, text: &str) -> Result<(), Failure> {
    match out {
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("writing {}", p.display()))
            .map_err(io_failure),
        None => {
            emit(text.trim_end());
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn report_cmd(
    state: Option<PathBuf>,
    log: Option<PathBuf>,
    policy: Option<PathBuf>,
    key: Option<PathBuf>,
    trust: &[PathBuf],
    device_trust: &[PathBuf],
    checkpoints: &[PathBuf],
    format: Format,
    out: Option<&PathBuf>,
) -> Result<u8, Failure> {
    use ualink_attest::report::{audit_with_archive, AuditInputs};
    let log_path = match (&log, &state) {
        (Some(l), _) => l.clone(),
        (None, Some(s)) => s.join("audit.log"),
        (None, None) => return Err(usage("--state DIR or --log FILE".into())),
    };
    let bytes = read(&log_path)?;
    let key_path = key.or_else(|| {
        state
            .as_ref()
            .map(|s| s.join("tsm.pub"))
            .filter(|p| p.exists())
    });
    let key_file = key_path.as_ref().map(read).transpose()?;
    let policy_dir = policy.or_else(|| {
        state
            .as_ref()
            .map(|s| s.join("policy"))
            .filter(|p| p.is_dir())
    });
    let policy = policy_dir.as_deref().map(load_policy).transpose()?;
    // Bundles the TSM replaced are kept in STATE/policy-archive/<digest>/ (the name is only a
    // hint: each decision is matched by the digest computed on load).
    let mut archived = Vec::new();
    if let Some(dir) = state.as_ref().map(|s| s.join("policy-archive")) {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            paths.sort();
            for p in paths {
                archived.push(load_policy(&p)?);
            }
        }
    }
    let store = store_roots(state.as_deref())?;
    let mut tee_anchors = store.roots.tee.clone();
    let mut device_anchors = store.roots.device.clone();
    let mut used = trust_lines(&store);
    for t in trust {
        let bytes = read(t)?;
        tee_anchors = tee_anchors.with_explicit_roots_pem(&bytes)?;
        for der in certs_from_pem_or_der(&bytes)? {
            used.push(TrustLine::new("--trust", t, &der));
        }
    }
    for f in device_trust {
        for der in certs_from_pem_or_der(&read(f)?)? {
            device_anchors.add_der(&der).map_err(|e| Failure {
                code: 10,
                class: "malformed",
                message: format!("device trust anchor {}: {e}", f.display()),
            })?;
            used.push(TrustLine::new("--device-trust", f, &der));
        }
    }
    let trusted_checkpoints = checkpoints
        .iter()
        .map(|p| read(p).map(|b| decode_hex_or_binary(&b)))
        .collect::<Result<Vec<_>, _>>()?;
    let rep = audit_with_archive(
        &bytes,
        &AuditInputs {
            key_file,
            policy,
            tee_anchors,
            device_anchors,
            trusted_checkpoints,
        },
        &archived,
    );
    let text = match format {
        Format::Text => with_trust_text(&rep.to_text(), &store, &used),
        Format::Json => {
            let mut v = rep.to_json();
            if let (false, Some(m)) = (store.roots.entries.is_empty(), v.as_object_mut()) {
                m.insert("trust".into(), trust_json(&store, &used));
            }
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Html => rep.to_html(),
    };
    write_out(out, &text)?;
    Ok(rep.exit_code())
}

/// The auditor's trust store as `report` found it.
struct StoreUse {
    /// The store directory and the variable that chose it; `None` when no location is set.
    location: Option<(PathBuf, &'static str)>,
    roots: StoreRoots,
}

/// One root that vouched: where it came from, its file and its SHA-384.
struct TrustLine {
    source: String,
    path: PathBuf,
    sha384: String,
}

impl TrustLine {
    fn new(source: &str, path: &std::path::Path, der: &[u8]) -> Self {
        TrustLine {
            source: source.to_string(),
            path: path.to_path_buf(),
            sha384: trust_store::sha384_hex(der),
        }
    }
}

fn store_failure(e: TrustStoreError) -> Failure {
    let (code, class) = match &e {
        TrustStoreError::NotACertificate { .. } => (10, "malformed"),
        TrustStoreError::Io { .. } | TrustStoreError::InsecurePermissions { .. } => (16, "io"),
        _ => (2, "usage"),
    };
    Failure {
        code,
        class,
        message: format!("trust store: {e}"),
    }
}

/// The default trust store's roots (AMD built in plus the store's), refusing a store inside
/// the audited directory. No location (no HOME) is an empty store.
fn store_roots(state: Option<&std::path::Path>) -> Result<StoreUse, Failure> {
    let location = match trust_store::default_location() {
        Ok(l) => Some(l),
        Err(TrustStoreError::NoLocation) => None,
        Err(e) => return Err(store_failure(e)),
    };
    let roots = match &location {
        Some((dir, _)) => {
            let store = TrustStore::open(dir);
            match state {
                Some(s) => store.roots_for_audit(s),
                None => store.roots(),
            }
            .map_err(|e| match e {
                RootsError::Store(e) => store_failure(e),
                RootsError::Anchor(e) => Failure::from(e),
            })?
        }
        None => StoreRoots {
            tee: TrustAnchors::amd_builtin()?,
            device: ualink_attest::spdm_evidence::DeviceTrustAnchors::new(),
            entries: Vec::new(),
        },
    };
    Ok(StoreUse { location, roots })
}

fn trust_lines(store: &StoreUse) -> Vec<TrustLine> {
    let mut out = Vec::new();
    for e in &store.roots.entries {
        for der in &e.certs {
            out.push(TrustLine::new(
                &format!("store {}", e.kind.label()),
                &e.path,
                der,
            ));
        }
    }
    out
}

fn store_location_text(store: &StoreUse) -> String {
    match &store.location {
        Some((d, var)) => format!("{} (from {var})", d.display()),
        None => "none (no $UALINK_ATTEST_TRUST_DIR, $XDG_CONFIG_HOME or $HOME)".into(),
    }
}

/// The report text with a "Trust" paragraph after its first line naming what vouched, when
/// the trust store contributed roots (with flags only, the caller named every root itself).
fn with_trust_text(report: &str, store: &StoreUse, used: &[TrustLine]) -> String {
    if store.roots.entries.is_empty() {
        return report.to_string();
    }
    let mut t = String::from("Trust: AMD ARKs Milan, Genoa, Turin (built in)\n");
    t.push_str(&format!(
        "       trust store {}\n",
        store_location_text(store)
    ));
    for u in used {
        t.push_str(&format!(
            "       {:<20} {} sha384 {}\n",
            u.source,
            u.path.display(),
            u.sha384
        ));
    }
    match report.split_once("\n\n") {
        Some((head, rest)) => format!("{head}\n\n{t}\n{rest}"),
        None => format!("{report}\n{t}"),
    }
}

fn trust_json(store: &StoreUse, used: &[TrustLine]) -> serde_json::Value {
    json!({
        "amd_builtin": ["Milan", "Genoa", "Turin"],
        "store": store.location.as_ref().map(|(d, _)| d.display().to_string()),
        "store_from": store.location.as_ref().map(|(_, v)| *v),
        "roots": used.iter().map(|u| json!({
            "source": u.source,
            "path": u.path.display().to_string(),
            "sha384": u.sha384,
        })).collect::<Vec<_>>(),
    })
}

fn trust_cmd(cmd: TrustCmd) -> Result<(), Failure> {
    let (dir, var) = trust_store::default_location().map_err(store_failure)?;
    let store = TrustStore::open(&dir);
    match cmd {
        TrustCmd::Add { tee, device, name } => {
            let (kind, file) = match (tee, device) {
                (Some(f), None) => (RootKind::Tee, f),
                (None, Some(f)) => (RootKind::Device, f),
                _ => return Err(usage("exactly one of --tee FILE or --device FILE".into())),
            };
            let name = name.unwrap_or_else(|| trust_store::name_from_path(&file));
            let bytes = read(&file)?;
            let e = store
                .add(kind, &name, &bytes, OnConflict::Refuse)
                .map_err(|e| match e {
                    TrustStoreError::NotACertificate { kind, reason, .. } => Failure {
                        code: 10,
                        class: "malformed",
                        message: format!(
                            "{} is not a {kind} root certificate: {reason}",
                            file.display()
                        ),
                    },
                    e => store_failure(e),
                })?;
            let mut text = format!(
                "added {} root {:?}: {}",
                e.kind.label(),
                e.name,
                e.path.display()
            );
            for f in e.fingerprints() {
                text.push_str(&format!("\n  sha384 {f}"));
            }
            emit(&text);
        }
        TrustCmd::List => {
            let entries = store.list().map_err(store_failure)?;
            let mut text = format!("trust store {} (from {var})", dir.display());
            if entries.is_empty() {
                text.push_str("\n  (empty)");
            }
            for e in &entries {
                text.push_str(&format!(
                    "\n  {:<6} {:<32} {}",
                    e.kind.label(),
                    e.name,
                    e.path.display()
                ));
                for f in e.fingerprints() {
                    text.push_str(&format!("\n         sha384 {f}"));
                }
            }
            emit(&text);
        }
        TrustCmd::Remove { names } => {
            for n in &names {
                let e = store.remove(n).map_err(store_failure)?;
                emit(&format!(
                    "removed {} root {:?}: {}",
                    e.kind.label(),
                    e.name,
                    e.path.display()
                ));
            }
        }
    }
    Ok(())
}

fn policy_test(
    policy: &std::path::Path,
    log: &PathBuf,
    against: Option<&std::path::Path>,
) -> Result<(), Failure> {
    use ualink_attest::audit::{file, AuditRecord};
    use ualink_attest::report::replay_record;
    let candidate = ualink_policy::PolicyEngine::new(&load_policy(policy)?);
    let baseline = against
        .map(load_policy)
        .transpose()?
        .map(|b| ualink_policy::PolicyEngine::new(&b));
    let bytes = read(log)?;
    file::check_header(&bytes)?;
    let mut offset = file::HEADER_LEN;
    let mut seq = 0u64;
    let (mut replayed, mut changed) = (0u64, Vec::new());
    while let file::Next::Frame(f) = file::next_frame(&bytes, offset)? {
        offset = f.frame.end;
        if f.frame_type != file::FRAME_ENTRY {
            continue;
        }
        let rec_bytes = bytes
            .get(f.payload.start + file::ENTRY_PREFIX..f.payload.end)
            .unwrap_or_default();
        let rec = AuditRecord::from_cbor(rec_bytes)?;
        let this = seq;
        seq += 1;
        let Some(Ok(new)) = replay_record(this, &rec, &candidate) else {
            continue;
        };
        replayed += 1;
        let old = match &baseline {
            Some(b) => match replay_record(this, &rec, b) {
                Some(Ok(r)) => r.replayed,
                _ => continue,
            },
            None => new.recorded.clone(),
        };
        if old != new.replayed {
            let name = |a: bool| if a { "allow" } else { "deny" };
            changed.push(format!(
                "seq {this} {} {}: {} [{}] -> {} [{}]",
                new.kind,
                new.subject,
                name(old.0),
                old.1.join(", "),
                name(new.replayed.0),
                new.replayed.1.join(", ")
            ));
        }
    }
    let mut text = format!(
        "{replayed} decisions replayed, {} would change\n",
        changed.len()
    );
    for c in &changed {
        text.push_str(c);
        text.push('\n');
    }
    emit(text.trim_end());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (result, json_out, proof_out) = match cli.cmd {
        Cmd::Report {
            state,
            log,
            policy,
            key,
            trust,
            device_trust,
            checkpoints,
            format,
            out,
        } => {
            return match report_cmd(
                state,
                log,
                policy,
                key,
                &trust,
                &device_trust,
                &checkpoints,
                format,
                out.as_ref(),
            ) {
                Ok(code) => ExitCode::from(code),
                Err(f) => {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "REFUSED ({}): {}",
                        f.class,
                        f.message
                    );
                    ExitCode::from(f.code)
                }
            }
        }
        Cmd::Trust(cmd) => {
            return match trust_cmd(cmd) {
                Ok(()) => ExitCode::SUCCESS,
                Err(f) => {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "REFUSED ({}): {}",
                        f.class,
                        f.message
                    );
                    ExitCode::from(f.code)
                }
            }
        }
        Cmd::Policy(PolicyCmd::Test {
            policy,
            log,
            against,
        }) => {
            return match policy_test(&policy, &log, against.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(f) => {
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "REFUSED ({}): {}",
                        f.class,
                        f.message
                    );
                    ExitCode::from(f.code)
                }
            }
        }
        Cmd::Verify {
            file,
            certs,
            trust,
            device_trust,
            now,
            report_data,
            nonce,
            json,
        } => (
            verify(
                &file,
                &VerifyArgs {
                    certs: &certs,
                    trust: &trust,
                    device_trust: &device_trust,
                    now: now.as_deref(),
                    report_data: report_data.as_deref(),
                    nonce: nonce.as_deref(),
                },
            ),
            json,
            false,
        ),
        Cmd::Log(cmd) => {
            let is_proof = matches!(
                cmd,
                LogCmd::ProveInclusion { .. } | LogCmd::ProveConsistency { .. }
            );
            (log_cmd(cmd), false, is_proof)
        }
    };
    match result {
        Ok(out) => {
            if json_out || proof_out {
                emit(&serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                print_text(&out);
            }
            ExitCode::SUCCESS
        }
        Err(f) => {
            if json_out {
                let out = json!({"verified": false, "class": f.class, "error": f.message});
                emit(&serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "REFUSED ({}): {}", f.class, f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

/// Writes to stdout; a closed pipe is not an error worth a panic.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

fn print_text(out: &serde_json::Value) {
    let mut text = String::from("VERIFIED");
    if let Some(map) = out.as_object() {
        for (k, v) in map {
            match v {
                serde_json::Value::String(s) => text.push_str(&format!("\n  {k:<22} {s}")),
                other => text.push_str(&format!("\n  {k:<22} {other}")),
            }
        }
    }
    emit(&text);
}

/// The options of `verify`.
struct VerifyArgs<'a> {
    certs: &'a [PathBuf],
    trust: &'a [PathBuf],
    device_trust: &'a [PathBuf],
    now: Option<&'a str>,
    report_data: Option<&'a str>,
    nonce: Option<&'a str>,
}

fn usage(message: String) -> Failure {
    Failure {
        code: 2,
        class: "usage",
        message,
    }
}

/// SPDM device trust anchors from PEM or DER files (every certificate in each file).
fn device_anchors(files: &[&PathBuf]) -> Result<DeviceTrustAnchors, Failure> {
    let mut anchors = DeviceTrustAnchors::new();
    for f in files {
        for der in certs_from_pem_or_der(&read(f)?)? {
            anchors.add_der(&der).map_err(|e| Failure {
                code: 10,
                class: "malformed",
                message: format!("device trust anchor {}: {e}", f.display()),
            })?;
        }
    }
    Ok(anchors)
}

fn expected_nonce(nonce: Option<&str>) -> Result<ExpectedNonce, Failure> {
    let Some(h) = nonce else {
        return Ok(ExpectedNonce::NotProvided);
    };
    let b = hex::decode(h.trim()).map_err(|e| usage(format!("--nonce is not hex: {e}")))?;
    <[u8; 32]>::try_from(b.as_slice())
        .map(ExpectedNonce::Expected)
        .map_err(|_| usage(format!("--nonce must be 32 bytes, got {}", b.len())))
}

fn verify(file: &PathBuf, args: &VerifyArgs<'_>) -> Result<serde_json::Value, Failure> {
    let VerifyArgs {
        certs,
        trust,
        device_trust,
        now,
        report_data,
        nonce,
    } = *args;
    let bytes = decode_hex_or_binary(&read(file)?);
    let now = match now {
        Some(s) => ualink_attest::time::parse_rfc3339(s)?,
        None => UnixTime::now(),
    };
    let expected = match report_data {
        None => ExpectedReportData::NotProvided,
        Some(h) => {
            let b = hex::decode(h.trim()).map_err(|e| Failure {
                code: 2,
                class: "usage",
                message: format!("--report-data is not hex: {e}"),
            })?;
            let arr = <[u8; 64]>::try_from(b.as_slice()).map_err(|_| Failure {
                code: 2,
                class: "usage",
                message: format!("--report-data must be 64 bytes, got {}", b.len()),
            })?;
            ExpectedReportData::Expected(arr)
        }
    };
    match detect(&bytes) {
        Some(EvidenceKind::SnpReport) => verify_snp(&bytes, certs, trust, &expected, now),
        Some(EvidenceKind::TdxQuote) => verify_tdx(&bytes, certs, &expected, now),
        Some(EvidenceKind::DeviceEvidence) => {
            let roots: Vec<&PathBuf> = device_trust.iter().chain(trust).collect();
            if roots.is_empty() {
                return Err(usage(
                    "a device evidence bundle needs its vendor root: pass it with --trust".into(),
                ));
            }
            let v = DeviceEvidenceVerifier::new(device_anchors(&roots)?).verify(
                &bytes,
                &expected_nonce(nonce)?,
                now,
            )?;
            Ok(v.to_json())
        }
        Some(EvidenceKind::TdiReport) => {
            if device_trust.is_empty() {
                return Err(usage(
                    "a TDI report bundle needs the device vendor root: pass it with --device-trust"
                        .into(),
                ));
            }
            let mut anchors = TrustAnchors::amd_builtin()?;
            for t in trust {
                anchors = anchors.with_explicit_roots_pem(&read(t)?)?;
            }
            let device = DeviceEvidenceVerifier::new(device_anchors(
                &device_trust.iter().collect::<Vec<_>>(),
            )?);
            let v = TdiReportVerifier::new(device, SnpVerifier::new(anchors)).verify(
                &bytes,
                &expected_nonce(nonce)?,
                now,
            )?;
            Ok(v.to_json())
        }
        Some(EvidenceKind::AuditLog) => Err(Failure {
            code: 18,
            class: "unknown-type",
            message:
                "audit logs are verified with `ualink-attest log verify --log FILE --key FILE`"
                    .into(),
        }),
        None => Err(Failure {
            code: 18,
            class: "unknown-type",
            message: format!(
                "{} bytes are not an SNP report, a TDX quote, a device evidence bundle, a TDI \
                 report bundle or an audit log",
                bytes.len()
            ),
        }),
    }
}

fn verify_snp(
    report: &[u8],
    cert_files: &[PathBuf],
    trust: &[PathBuf],
    expected: &ExpectedReportData,
    now: UnixTime,
) -> Result<serde_json::Value, Failure> {
    let mut anchors = TrustAnchors::amd_builtin()?;
    for t in trust {
        anchors = anchors.with_explicit_roots_pem(&read(t)?)?;
    }
    // The leaf is the one certificate that is not a CA; the rest are intermediates.
    let mut leaf = None;
    let mut intermediates = Vec::new();
    for f in cert_files {
        for der in certs_from_pem_or_der(&read(f)?)? {
            let is_ca = x509_parser::parse_x509_certificate(&der)
                .ok()
                .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
                .unwrap_or(false);
            if is_ca {
                intermediates.push(der);
            } else if leaf.replace(der).is_some() {
                return Err(Failure {
                    code: 2,
                    class: "usage",
                    message: "--certs holds more than one leaf (VCEK/VLEK) certificate".into(),
                });
            }
        }
    }
    let leaf = leaf.ok_or_else(|| Failure {
        code: 2,
        class: "usage",
        message: "an SNP report needs its VCEK or VLEK: pass it with --certs".into(),
    })?;
    let v = SnpVerifier::new(anchors).verify(
        report,
        &SnpCerts {
            leaf,
            intermediates,
        },
        expected,
        now,
    )?;
    let r = &v.report;
    let root = match &v.root {
        AnchorOrigin::AmdBuiltin(g) => format!("AMD {g:?} ARK (built in)"),
        AnchorOrigin::Explicit => {
            "explicitly trusted root (not an AMD root: sim or --trust)".into()
        }
    };
    Ok(json!({
        "type": if matches!(v.root, AnchorOrigin::Explicit) { "snp-report (explicit root)" } else { "snp-report" },
        "version": r.version,
        "signer": v.signer.name(),
        "root": root,
        "intermediate": v.intermediate,
        "vcek_sha384": hex::encode(v.leaf_fingerprint),
        "measurement": hex::encode(r.measurement),
        "report_data": hex::encode(r.report_data),
        "report_data_checked": v.report_data_checked,
        "host_data": hex::encode(r.host_data),
        "vmpl": r.vmpl,
        "guest_policy": format!("{:#x}", r.policy),
        "reported_tcb": format!("bl={} tee={} snp={} ucode={}{}", r.reported_tcb.bootloader,
            r.reported_tcb.tee, r.reported_tcb.snp, r.reported_tcb.microcode,
            r.reported_tcb.fmc.map(|f| format!(" fmc={f}")).unwrap_or_default()),
        "chip_id": hex::encode(r.chip_id),
        "chip_id_checked": v.chip_id_checked,
        "verified_at": now.secs(),
    }))
}

fn verify_tdx(
    buf: &[u8],
    cert_files: &[PathBuf],
    expected: &ExpectedReportData,
    now: UnixTime,
) -> Result<serde_json::Value, Failure> {
    let quote = trim_zero_padding(buf)?;
    let [collateral_file] = cert_files else {
        return Err(Failure {
            code: 2,
            class: "usage",
            message: "a TDX quote needs exactly one --certs FILE: its collateral JSON".into(),
        });
    };
    let collateral = TdxCollateral::from_json(&read(collateral_file)?)?;
    let v = verify_quote(quote, &collateral, expected, now)?;
    Ok(json!({
        "type": "tdx-quote",
        "version": v.version,
        "tcb_status": v.tcb_status,
        "advisory_ids": v.advisory_ids,
        "zero_padding_trimmed": buf.len() - quote.len(),
        "mr_td": hex::encode(v.td.mr_td),
        "rtmr0": hex::encode(v.td.rtmr[0]),
        "rtmr1": hex::encode(v.td.rtmr[1]),
        "rtmr2": hex::encode(v.td.rtmr[2]),
        "rtmr3": hex::encode(v.td.rtmr[3]),
        "mr_seam": hex::encode(v.td.mr_seam),
        "td_attributes": hex::encode(v.td.td_attributes),
        "report_data": hex::encode(v.td.report_data),
        "report_data_checked": v.report_data_checked,
        "verified_at": now.secs(),
    }))
}
