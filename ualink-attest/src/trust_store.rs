//! The auditor's trust store: extra roots the auditor chose to trust, kept outside any audited
//! directory.
//!
//! An audited state directory may hold certificates (a sim platform's `ark.pem`, device vendor
//! roots), but trusting them from there would let a compromised TSM vouch for itself. The
//! auditor instead registers roots here, once, and every `ualink-attest report` uses them
//! (and names them, path and SHA-384, in its output so the auditor sees what vouched).
//!
//! # Layout
//! The store is a directory, in order of precedence:
//! 1. `$UALINK_ATTEST_TRUST_DIR` if set and non-empty;
//! 2. `$XDG_CONFIG_HOME/ualink-attest/trust` if `XDG_CONFIG_HOME` is set to an absolute path;
//! 3. `$HOME/.config/ualink-attest/trust`.
//!
//! It holds two subdirectories, `tee/` (TEE roots for TSM and CVM evidence, like `--trust`)
//! and `devices/` (device vendor roots, like `--device-trust`). Each entry is one regular
//! file of PEM or DER certificates; its name without extension is the entry's name. Files
//! whose name starts with `.` are ignored (temporary files of an interrupted write).
//!
//! # Guarantees
//! - [`TrustStore::add`] accepts only certificates: every certificate in the input must parse
//!   as X.509, and a TEE root must be a self-signed CA whose signature verifies (the same
//!   check `--trust` makes). Anything else is refused with [`TrustStoreError::NotACertificate`]
//!   and nothing is written. Entries are written as PEM (mode 0644) atomically (temporary file
//!   and rename), directories are created with mode 0700.
//! - [`TrustStore::roots`] refuses (on Unix) a store directory, subdirectory or entry that is
//!   writable by group or others: anyone who can write there can make the auditor trust them.
//! - [`check_outside`] refuses a store inside the audited directory.
//! - Nothing here reads the audited directory.

use std::path::{Path, PathBuf};

use crate::pki::{certs_from_pem_or_der, TrustAnchors};
use crate::spdm_evidence::DeviceTrustAnchors;

/// The environment variable naming the trust store directory (takes precedence).
pub const ENV_TRUST_DIR: &str = "UALINK_ATTEST_TRUST_DIR";

/// The largest entry accepted (a root bundle is a few kilobytes).
const MAX_ENTRY_BYTES: u64 = 1 << 20;

/// Why a trust store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    /// No location for the store: none of `UALINK_ATTEST_TRUST_DIR`, `XDG_CONFIG_HOME`,
    /// `HOME` is set (the caller's environment).
    #[error("no trust store location: set {ENV_TRUST_DIR}, XDG_CONFIG_HOME (absolute) or HOME")]
    NoLocation,
    /// Reading or writing the store failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The input (or a stored entry) is not a certificate usable as a root of its kind.
    #[error("{what} is not a {kind} root certificate: {reason}")]
    NotACertificate {
        /// The file (or "input").
        what: String,
        /// The kind of root it was meant to be.
        kind: RootKind,
        /// Why it was refused.
        reason: String,
    },
    /// The entry name is not allowed (the caller's input).
    #[error("entry name {0:?}: use 1 to 128 of A-Z a-z 0-9 . _ -, not starting with '.' or '-'")]
    BadName(String),
    /// An entry of that name exists with other content.
    #[error("trust store entry {name:?} already exists ({}) with other content; remove it first", path.display())]
    Exists {
        /// The entry name.
        name: String,
        /// Its file.
        path: PathBuf,
    },
    /// No entry of that name.
    #[error("no trust store entry named {0:?}")]
    NotFound(String),
    /// A store directory or entry is writable by others than its owner.
    #[error(
        "{} is writable by group or others (mode {mode:o}): refusing to trust it; chmod go-w",
        path.display()
    )]
    InsecurePermissions {
        /// The directory or file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The store lies inside the audited directory: its roots could be the TSM's own.
    #[error(
        "the trust store {} is inside the audited directory {}: roots found there could \
         be the audited TSM's own; keep the trust store elsewhere",
        store.display(),
        audited.display()
    )]
    InsideAudited {
        /// The store directory.
        store: PathBuf,
        /// The audited directory.
        audited: PathBuf,
    },
}

/// Shorthand for trust store results.
pub type Result<T> = std::result::Result<T, TrustStoreError>;

/// Which kind of root an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RootKind {
    /// A TEE root (TSM and CVM evidence), in `tee/`; what `--trust` adds.
    Tee,
    /// A device vendor root (SPDM device evidence), in `devices/`; what `--device-trust` adds.
    Device,
}

impl RootKind {
    /// Both kinds, in listing order.
    pub const ALL: [RootKind; 2] = [RootKind::Tee, RootKind::Device];

    /// The subdirectory holding this kind.
    pub fn subdir(self) -> &'static str {
        match self {
            RootKind::Tee => "tee",
            RootKind::Device => "devices",
        }
    }

    /// A short label ("tee", "device").
    pub fn label(self) -> &'static str {
        match self {
            RootKind::Tee => "tee",
            RootKind::Device => "device",
        }
    }
}

impl std::fmt::Display for RootKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RootKind::Tee => "TEE",
            RootKind::Device => "device vendor",
        })
    }
}

/// One stored entry: a file of one or more root certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustEntry {
    /// Its kind (its subdirectory).
    pub kind: RootKind,
    /// Its name (the file name without extension).
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// The DER certificates it holds, in file order (at least one).
    pub certs: Vec<Vec<u8>>,
}

impl TrustEntry {
    /// SHA-384 of each certificate's DER, lowercase hex, in file order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs.iter().map(|c| sha384_hex(c)).collect()
    }
}

/// SHA-384 of `bytes`, lowercase hex (the fingerprint shown for every root).
pub fn sha384_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA384, bytes))
}

/// What to do when [`TrustStore::add`] finds an entry of the same name with other content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnConflict {
    /// Refuse with [`TrustStoreError::Exists`] (the command's behaviour).
    Refuse,
    /// Replace it (for a caller that owns the name's namespace, e.g. the demo's `demo-*`).
    Replace,
}

/// Roots loaded from a store: AMD's built-in roots plus the store's TEE roots, the store's
/// device roots, and the entries they came from.
#[derive(Clone, Debug)]
pub struct StoreRoots {
    /// AMD's built-in ARKs plus every `tee/` certificate (explicit roots).
    pub tee: TrustAnchors,
    /// Every `devices/` certificate.
    pub device: DeviceTrustAnchors,
    /// The entries used, tee first, each sorted by name.
    pub entries: Vec<TrustEntry>,
}

/// An auditor trust store directory (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustStore {
    dir: PathBuf,
}

/// Where the store is by default, and which variable chose it.
pub fn default_location() -> Result<(PathBuf, &'static str)> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = var(ENV_TRUST_DIR) {
        return Ok((d, "$UALINK_ATTEST_TRUST_DIR"));
    }
    if let Some(x) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok((x.join("ualink-attest").join("trust"), "$XDG_CONFIG_HOME"));
    }
    if let Some(h) = var("HOME") {
        return Ok((
            h.join(".config").join("ualink-attest").join("trust"),
            "$HOME",
        ));
    }
    Err(TrustStoreError::NoLocation)
}

/// Refuses a store inside `audited` (both resolved through symlinks when they exist).
pub fn check_outside(store: &Path, audited: &Path) -> Result<()> {
    let resolve = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (s, a) = (resolve(store), resolve(audited));
    if s.starts_with(&a) {
        return Err(TrustStoreError::InsideAudited {
            store: s,
            audited: a,
        });
    }
    Ok(())
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TrustStoreError {
    let path = path.to_path_buf();
    move |source| TrustStoreError::Io { op, path, source }
}

fn check_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len())
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TrustStoreError::BadName(name.to_string()))
    }
}

/// An entry name from a file name: its stem with characters outside the allowed set
/// replaced by `-` (`ark.pem` → `ark`).
pub fn name_from_path(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut n: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while n.starts_with(['.', '-']) {
        n.remove(0);
    }
    n.truncate(128);
    n
}

/// Parses and checks `bytes` as roots of `kind`; returns their DER.
fn validate(kind: RootKind, what: &str, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let refuse = |reason: String| TrustStoreError::NotACertificate {
        what: what.to_string(),
        kind,
        reason,
    };
    let certs = certs_from_pem_or_der(bytes).map_err(|e| refuse(e.to_string()))?;
    if certs.is_empty() {
        return Err(refuse("no certificate in it".into()));
    }
    for der in &certs {
        match kind {
            RootKind::Tee => {
                TrustAnchors::empty()
                    .with_explicit_root_der(der)
                    .map_err(|e| refuse(e.to_string()))?;
            }
            RootKind::Device => {
                match x509_parser::parse_x509_certificate(der) {
                    Ok(([], _)) => {}
                    Ok(_) => return Err(refuse("trailing bytes after the certificate".into())),
                    Err(e) => return Err(refuse(format!("not X.509: {e}"))),
                }
                DeviceTrustAnchors::new()
                    .add_der(der)
                    .map_err(|e| refuse(format!("{e:?}")))?;
            }
        }
    }
    Ok(certs)
}

#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(TrustStoreError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_path: &Path, _meta: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(io("setting the mode of", path))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

fn to_pem(certs: &[Vec<u8>]) -> String {
    certs
        .iter()
        .map(|der| pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())))
        .collect()
}

impl TrustStore {
    /// The store at `dir` (not created until something is added).
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The store at [`default_location`].
    pub fn open_default() -> Result<Self> {
        default_location().map(|(d, _)| Self::open(d))
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kind_dir(&self, kind: RootKind) -> PathBuf {
        self.dir.join(kind.subdir())
    }

    /// Every entry, tee first, each kind sorted by name. A missing store or subdirectory is
    /// empty. Fails on an entry that is not a certificate of its kind, on unreadable files and
    /// (Unix) on group- or world-writable directories or entries.
    pub fn list(&self) -> Result<Vec<TrustEntry>> {
        let mut out = Vec::new();
        if !self.dir.exists() {
            return Ok(out);
        }
        let meta = std::fs::metadata(&self.dir).map_err(io("reading", &self.dir))?;
        check_mode(&self.dir, &meta)?;
        for kind in RootKind::ALL {
            let dir = self.kind_dir(kind);
            if !dir.exists() {
                continue;
            }
            let meta = std::fs::metadata(&dir).map_err(io("reading", &dir))?;
            check_mode(&dir, &meta)?;
            let mut files = Vec::new();
            for e in std::fs::read_dir(&dir).map_err(io("listing", &dir))? {
                let e = e.map_err(io("listing", &dir))?;
                let path = e.path();
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                let meta = std::fs::metadata(&path).map_err(io("reading", &path))?;
                if !meta.is_file() {
                    continue;
                }
                check_mode(&path, &meta)?;
                if meta.len() > MAX_ENTRY_BYTES {
                    return Err(TrustStoreError::NotACertificate {
                        what: path.display().to_string(),
                        kind,
                        reason: format!("{} bytes is too large", meta.len()),
                    });
                }
                files.push(path);
            }
            files.sort();
            for path in files {
                let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
                let certs = validate(kind, &path.display().to_string(), &bytes)?;
                out.push(TrustEntry {
                    kind,
                    name: name_from_path(&path),
                    path,
                    certs,
                });
            }
        }
        Ok(out)
    }

    /// Adds `bytes` (PEM or DER certificates) as entry `name` of `kind`, after checking that
    /// they are roots of that kind (nothing is written otherwise). Adding the same
    /// certificates under the same name again is a no-op; other content under an existing
    /// name is refused or replaced per `on_conflict`. Names are unique across kinds.
    pub fn add(
        &self,
        kind: RootKind,
        name: &str,
        bytes: &[u8],
        on_conflict: OnConflict,
    ) -> Result<TrustEntry> {
        check_name(name)?;
        if bytes.len() as u64 > MAX_ENTRY_BYTES {
            return Err(TrustStoreError::NotACertificate {
                what: "input".into(),
                kind,
                reason: format!("{} bytes is too large", bytes.len()),
            });
        }
        let certs = validate(kind, "input", bytes)?;
        for e in self.list()? {
            if e.name != name {
                continue;
            }
            if e.kind == kind && e.certs == certs {
                return Ok(e);
            }
            match on_conflict {
                OnConflict::Refuse => {
                    return Err(TrustStoreError::Exists {
                        name: name.to_string(),
                        path: e.path,
                    })
                }
                OnConflict::Replace => {
                    std::fs::remove_file(&e.path).map_err(io("removing", &e.path))?;
                }
            }
        }
        for d in [self.dir.clone(), self.kind_dir(kind)] {
            if !d.exists() {
                std::fs::create_dir_all(&d).map_err(io("creating", &d))?;
                set_mode(&d, 0o700)?;
            }
        }
        let dir = self.kind_dir(kind);
        let path = dir.join(format!("{name}.pem"));
        let tmp = dir.join(format!(".{name}.pem.tmp"));
        std::fs::write(&tmp, to_pem(&certs)).map_err(io("writing", &tmp))?;
        set_mode(&tmp, 0o644)?;
        std::fs::rename(&tmp, &path).map_err(io("renaming into", &path))?;
        Ok(TrustEntry {
            kind,
            name: name.to_string(),
            path,
            certs,
        })
    }

    /// [`Self::add`] of a TEE root (`tee/`).
    pub fn add_tee(&self, name: &str, bytes: &[u8], on_conflict: OnConflict) -> Result<TrustEntry> {
        self.add(RootKind::Tee, name, bytes, on_conflict)
    }

    /// [`Self::add`] of a device vendor root (`devices/`).
    pub fn add_device(
        &self,
        name: &str,
        bytes: &[u8],
        on_conflict: OnConflict,
    ) -> Result<TrustEntry> {
        self.add(RootKind::Device, name, bytes, on_conflict)
    }

    /// Removes entry `name` (of either kind) and returns what it held.
    pub fn remove(&self, name: &str) -> Result<TrustEntry> {
        check_name(name)?;
        let e = self
            .list()?
            .into_iter()
            .find(|e| e.name == name)
            .ok_or_else(|| TrustStoreError::NotFound(name.to_string()))?;
        std::fs::remove_file(&e.path).map_err(io("removing", &e.path))?;
        Ok(e)
    }

    /// The roots to audit the directory `audited` with: [`Self::roots`], after refusing
    /// ([`TrustStoreError::InsideAudited`]) a store inside `audited` or an entry that resolves
    /// (through a symlink) into it. What `ualink-attest report --state DIR` uses.
    pub fn roots_for_audit(&self, audited: &Path) -> std::result::Result<StoreRoots, RootsError> {
        check_outside(&self.dir, audited)?;
        let roots = self.roots()?;
        for e in &roots.entries {
            check_outside(&e.path, audited)?;
        }
        Ok(roots)
    }

    /// The roots to verify with: AMD's built-in ARKs plus every TEE entry, and every device
    /// entry (see [`Self::list`] for what fails).
    pub fn roots(&self) -> std::result::Result<StoreRoots, RootsError> {
        let entries = self.list()?;
        let mut tee = TrustAnchors::amd_builtin()?;
        let mut device = DeviceTrustAnchors::new();
        for e in &entries {
            for der in &e.certs {
                match e.kind {
                    RootKind::Tee => tee = tee.with_explicit_root_der(der)?,
                    RootKind::Device => {
                        device
                            .add_der(der)
                            .map_err(|err| TrustStoreError::NotACertificate {
                                what: e.path.display().to_string(),
                                kind: e.kind,
                                reason: format!("{err:?}"),
                            })?
                    }
                }
            }
        }
        Ok(StoreRoots {
            tee,
            device,
            entries,
        })
    }
}

/// Why [`TrustStore::roots`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// The store could not be read or holds an unusable entry.
    #[error(transparent)]
    Store(#[from] TrustStoreError),
    /// A root was refused by the verifier's anchor set (or the built-in AMD roots failed).
    #[error(transparent)]
    Anchor(#[from] crate::Error),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn names_are_checked_and_derived_from_files() {
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(129)] {
            assert!(matches!(check_name(bad), Err(TrustStoreError::BadName(_))));
        }
        check_name("demo-0a1b2c3d-sim-ark").unwrap();
        assert_eq!(name_from_path(Path::new("/x/ark.pem")), "ark");
        assert_eq!(name_from_path(Path::new("/x/.My Root.der")), "My-Root");
    }

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ualink-attest-trust-store-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn add_refuse_replace_remove_and_roots() {
        let d = temp("lib");
        let a = crate::sim::SimPlatform::load_or_create(&d.join("a")).unwrap();
        let b = crate::sim::SimPlatform::load_or_create(&d.join("b")).unwrap();
        let store = TrustStore::open(d.join("store"));
        assert!(store.list().unwrap().is_empty());

        // Not a certificate: refused, nothing created.
        assert!(matches!(
            store.add_tee("x", b"not a cert", OnConflict::Replace),
            Err(TrustStoreError::NotACertificate { .. })
        ));
        assert!(!store.dir().exists());

        let e = store
            .add_tee("sim", a.ark_der(), OnConflict::Refuse)
            .unwrap();
        assert_eq!(e.certs, vec![a.ark_der().to_vec()]);
        assert_eq!(e.fingerprints(), vec![sha384_hex(a.ark_der())]);
        // Same content: no-op; other content: refused, then replaced on request.
        store
            .add_tee("sim", a.ark_der(), OnConflict::Refuse)
            .unwrap();
        assert!(matches!(
            store.add_tee("sim", b.ark_der(), OnConflict::Refuse),
            Err(TrustStoreError::Exists { .. })
        ));
        // A name is unique across kinds.
        assert!(matches!(
            store.add_device("sim", b.ark_der(), OnConflict::Refuse),
            Err(TrustStoreError::Exists { .. })
        ));
        store
            .add_tee("sim", b.ark_der(), OnConflict::Replace)
            .unwrap();
        store
            .add_device("vendor", a.ark_der(), OnConflict::Refuse)
            .unwrap();
        // A leftover temporary file is ignored.
        std::fs::write(store.dir().join("tee/.junk.pem.tmp"), b"junk").unwrap();

        let roots = store.roots().unwrap();
        let names: Vec<_> = roots
            .entries
            .iter()
            .map(|e| (e.kind, e.name.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![(RootKind::Tee, "sim"), (RootKind::Device, "vendor")]
        );
        assert_eq!(roots.entries[0].certs, vec![b.ark_der().to_vec()]);
        assert_eq!(
            roots.tee.len(),
            TrustAnchors::amd_builtin().unwrap().len() + 1
        );

        assert_eq!(store.remove("sim").unwrap().kind, RootKind::Tee);
        assert!(matches!(
            store.remove("sim"),
            Err(TrustStoreError::NotFound(_))
        ));

        // A stored file that is not a certificate makes the store unusable, by name.
        std::fs::write(store.dir().join("devices/bad.der"), b"\x30\x03abc").unwrap();
        let err = store.list().unwrap_err().to_string();
        assert!(err.contains("bad.der"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[cfg(unix)]
    #[test]
    fn a_group_writable_store_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = temp("mode");
        let a = crate::sim::SimPlatform::load_or_create(&d.join("a")).unwrap();
        let store = TrustStore::open(d.join("store"));
        let e = store
            .add_tee("sim", a.ark_der(), OnConflict::Refuse)
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&e.path), 0o644);
        std::fs::set_permissions(&e.path, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(
            store.roots(),
            Err(RootsError::Store(
                TrustStoreError::InsecurePermissions { .. }
            ))
        ));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_store_inside_the_audited_directory_is_refused() {
        assert!(matches!(
            check_outside(Path::new("/a/state/trust"), Path::new("/a/state")),
            Err(TrustStoreError::InsideAudited { .. })
        ));
        check_outside(Path::new("/a/trust"), Path::new("/a/state")).unwrap();
        check_outside(Path::new("/a/state-trust"), Path::new("/a/state")).unwrap();
    }
}
