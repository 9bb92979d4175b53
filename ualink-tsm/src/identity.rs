//! The TSM's identity: a P-384 signing key generated at first start and the TSM's own TEE
//! evidence whose report_data commits to it (`ualink_attest::tdi_report::tsm_report_data`).
//!
//! The key is persisted only as PKCS#8 in `STATE/tsm-key.pk8`, created with mode 0600 and
//! refused at load if group or others can read it. This is the simulation's stand-in for
//! sealing: a real TSM runs in a CVM and seals this file to its own launch measurement (SNP
//! `MSG_KEY_REQ` derived key / TDX sealing), so that the key exists in plaintext only inside
//! the CVM. In the sim the evidence comes from `ualink_attest::sim::SimPlatform` (a software
//! ARK → ASK → VCEK kept under `STATE/sim-platform`).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ualink_attest::audit::CheckpointSigner;
use ualink_attest::sim::SimPlatform;
use ualink_attest::tdi_report::{TsmEvidence, TsmSigningKey};
use zeroize::Zeroizing;

use crate::error::{Result, TsmError};

/// File name of the signing key under the state directory.
pub const KEY_FILE: &str = "tsm-key.pk8";
/// Directory of the simulated platform under the state directory.
pub const SIM_PLATFORM_DIR: &str = "sim-platform";

/// The TSM's signing key (TDI reports, grants, audit checkpoints) and its bound evidence.
#[derive(Debug)]
pub struct TsmIdentity {
    key: TsmSigningKey,
    checkpoint: CheckpointSigner,
    evidence: TsmEvidence,
    pkcs8: Zeroizing<Vec<u8>>,
}

fn id_err(what: &str) -> impl Fn(std::io::Error) -> TsmError + '_ {
    move |e| TsmError::Identity(format!("{what}: {e}"))
}

impl TsmIdentity {
    /// Loads the key from `state_dir` or generates and persists it (first start), then
    /// obtains evidence binding it.
    pub fn load_or_create(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join(KEY_FILE);
        let pkcs8 = if path.exists() {
            let meta = std::fs::metadata(&path).map_err(id_err("reading key metadata"))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(TsmError::Identity(format!(
                    "{} is readable by group or others (mode {:o}); refusing to use it",
                    path.display(),
                    meta.permissions().mode() & 0o777
                )));
            }
            Zeroizing::new(std::fs::read(&path).map_err(id_err("reading the signing key"))?)
        } else {
            let (_, pkcs8) = TsmSigningKey::generate()
                .map_err(|e| TsmError::Identity(format!("generating the signing key: {e}")))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(id_err("creating the key file"))?;
            f.write_all(&pkcs8)
                .and_then(|_| f.sync_all())
                .map_err(id_err("writing the key file"))?;
            pkcs8
        };
        let key = TsmSigningKey::from_pkcs8(&pkcs8)
            .map_err(|e| TsmError::Identity(format!("loading the signing key: {e}")))?;
        let checkpoint = CheckpointSigner::from_pkcs8(&pkcs8)
            .map_err(|e| TsmError::Identity(format!("loading the checkpoint key: {e}")))?;
        let platform_dir = state_dir.join(SIM_PLATFORM_DIR);
        std::fs::create_dir_all(&platform_dir).map_err(id_err("creating the platform dir"))?;
        let platform = SimPlatform::load_or_create(&platform_dir)
            .map_err(|e| TsmError::Identity(format!("sim platform: {e}")))?;
        let report = platform
            .report(&key.report_data())
            .map_err(|e| TsmError::Identity(format!("sim report: {e}")))?;
        let evidence = TsmEvidence::SnpReport {
            report,
            certs: platform.certs(),
        };
        Ok(Self {
            key,
            checkpoint,
            evidence,
            pkcs8,
        })
    }

    /// The report-signing key.
    pub fn signing_key(&self) -> &TsmSigningKey {
        &self.key
    }

    /// The SEC1 public key (97 bytes).
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    /// The TSM's evidence (report_data = `tsm_report_data(public_key)`).
    pub fn evidence(&self) -> &TsmEvidence {
        &self.evidence
    }

    /// A fresh checkpoint signer for the same key (the audit log owns one).
    pub fn checkpoint_signer(&self) -> Result<CheckpointSigner> {
        CheckpointSigner::from_pkcs8(&self.pkcs8)
            .map_err(|e| TsmError::Identity(format!("loading the checkpoint key: {e}")))
    }

    /// A grant signer for the same key.
    pub fn grant_signer(&self) -> Result<crate::grant::GrantSigner> {
        crate::grant::GrantSigner::from_pkcs8(&self.pkcs8)
    }

    /// The verifier of this TSM's checkpoints.
    pub fn checkpoint_verifier(&self) -> ualink_attest::audit::CheckpointVerifier {
        self.checkpoint.verifier()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_is_created_0600_reloaded_and_bound_by_the_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let a = TsmIdentity::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = TsmIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let TsmEvidence::SnpReport { report, .. } = b.evidence();
        let parsed = ualink_attest::snp::SnpReport::parse(report).unwrap();
        assert_eq!(
            parsed.report_data,
            ualink_attest::tdi_report::tsm_report_data(b.public_key())
        );
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        TsmIdentity::load_or_create(dir.path()).unwrap();
        let p = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = TsmIdentity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, TsmError::Identity(_)), "{e}");
    }
}
