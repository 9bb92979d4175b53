//! configfs-tsm (Linux >= 6.7, `Documentation/ABI/testing/configfs-tsm-report`): the kernel ABI
//! for TEE reports on both SEV-SNP (`sev_guest`) and TDX (`tdx_guest`).
//!
//! One report is taken as follows, in an entry of our own named `ualink-<random>`:
//! 1. `mkdir <root>/<entry>`; read `provider` (must be `sev_guest` or `tdx_guest`) and
//!    `generation` (g0);
//! 2. write the 64-byte report_data to `inblob`; read `generation` (g1): it must be g0 + 1,
//!    otherwise another writer touched the entry between our write and our read;
//! 3. read `outblob` (the report or quote) and, for SNP, `auxblob` (the certificate table);
//! 4. read `generation` and `provider` again: both must be unchanged, otherwise the report
//!    may answer someone else's `inblob`;
//! 5. check the report carries our report_data; `rmdir` the entry.
//!
//! File access goes through [`ConfigfsIo`] so tests can run this code against a fake tree
//! that behaves like the kernel (generation bumps, a concurrent writer).

use super::{certtable, check_report_data, Evidence, EvidenceProvider, TeeKind};
use crate::error::{Error, Result};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::{Path, PathBuf};

/// Where configfs-tsm reports live on Linux.
pub const DEFAULT_ROOT: &str = "/sys/kernel/config/tsm/report";
const IFACE: &str = "configfs-tsm";

/// The file operations configfs-tsm needs. [`StdIo`] is the real one.
pub trait ConfigfsIo: Send + Sync {
    /// Creates a directory (a report entry).
    fn mkdir(&self, path: &Path) -> std::io::Result<()>;
    /// Removes a report entry.
    fn rmdir(&self, path: &Path) -> std::io::Result<()>;
    /// Reads a whole attribute.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Writes a whole attribute.
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()>;
}

/// Plain `std::fs` access.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdIo;

impl ConfigfsIo for StdIo {
    fn mkdir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::create_dir(path)
    }
    fn rmdir(&self, path: &Path) -> std::io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        std::fs::write(path, data)
    }
}

/// Evidence through configfs-tsm.
pub struct ConfigfsTsm {
    root: PathBuf,
    io: Box<dyn ConfigfsIo>,
    tee: TeeKind,
    provider: String,
}

impl std::fmt::Debug for ConfigfsTsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigfsTsm")
            .field("root", &self.root)
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

fn tee_of(provider: &str) -> Result<TeeKind> {
    match provider {
        "sev_guest" => Ok(TeeKind::Snp),
        "tdx_guest" => Ok(TeeKind::Tdx),
        other => Err(Error::platform(
            IFACE,
            format!("unknown provider {other:?} (expected sev_guest or tdx_guest)"),
        )),
    }
}

/// A removable report entry: `rmdir` on drop, whatever happened.
struct Entry<'a> {
    io: &'a dyn ConfigfsIo,
    path: PathBuf,
}

impl Entry<'_> {
    fn attr(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        self.io.read(&self.attr(name)).map_err(|e| {
            Error::platform(IFACE, format!("reading {}: {e}", self.attr(name).display()))
        })
    }
    fn read_text(&self, name: &str) -> Result<String> {
        let b = self.read(name)?;
        String::from_utf8(b)
            .map(|s| s.trim_end().to_string())
            .map_err(|_| Error::platform(IFACE, format!("{name} is not UTF-8")))
    }
    fn generation(&self) -> Result<u64> {
        let s = self.read_text("generation")?;
        s.parse()
            .map_err(|_| Error::platform(IFACE, format!("generation {s:?} is not a number")))
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        // Nothing useful can be done if the kernel refuses; the entry holds no secret.
        let _ = self.io.rmdir(&self.path);
    }
}

impl ConfigfsTsm {
    /// Opens configfs-tsm at `root` with real file access, probing which provider it has.
    pub fn open(root: &Path) -> Result<Self> {
        Self::with_io(root, Box::new(StdIo))
    }

    /// Opens configfs-tsm at `root` through `io`, probing the provider with a scratch entry.
    pub fn with_io(root: &Path, io: Box<dyn ConfigfsIo>) -> Result<Self> {
        let provider = {
            let entry = Self::new_entry(root, io.as_ref())?;
            entry.read_text("provider")?
        };
        let tee = tee_of(&provider)?;
        Ok(Self {
            root: root.to_path_buf(),
            io,
            tee,
            provider,
        })
    }

    fn new_entry<'a>(root: &Path, io: &'a dyn ConfigfsIo) -> Result<Entry<'a>> {
        let mut rnd = [0u8; 8];
        SystemRandom::new()
            .fill(&mut rnd)
            .map_err(|_| Error::platform(IFACE, "system RNG failed"))?;
        let path = root.join(format!("ualink-{}", hex::encode(rnd)));
        io.mkdir(&path).map_err(|e| {
            Error::platform(
                IFACE,
                format!("creating report entry {}: {e}", path.display()),
            )
        })?;
        Ok(Entry { io, path })
    }

    /// The kernel's provider name (`sev_guest` or `tdx_guest`).
    pub fn provider(&self) -> &str {
        &self.provider
    }
}

impl EvidenceProvider for ConfigfsTsm {
    fn tee(&self) -> TeeKind {
        self.tee
    }

    fn describe(&self) -> String {
        format!(
            "{} via configfs-tsm at {} (provider {})",
            self.tee.name(),
            self.root.display(),
            self.provider
        )
    }

    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let entry = Self::new_entry(&self.root, self.io.as_ref())?;
        let provider = entry.read_text("provider")?;
        if provider != self.provider {
            return Err(Error::platform(
                IFACE,
                format!("provider changed from {} to {provider}", self.provider),
            ));
        }
        let g0 = entry.generation()?;
        self.io
            .write(&entry.attr("inblob"), report_data)
            .map_err(|e| Error::platform(IFACE, format!("writing inblob: {e}")))?;
        let g1 = entry.generation()?;
        if Some(g1) != g0.checked_add(1) {
            return Err(Error::platform(
                IFACE,
                format!("generation went from {g0} to {g1} across our inblob write: another writer uses this entry"),
            ));
        }
        let outblob = entry.read("outblob")?;
        let aux = if self.tee == TeeKind::Snp {
            entry.read("auxblob")?
        } else {
            Vec::new()
        };
        let g2 = entry.generation()?;
        if g2 != g1 {
            return Err(Error::platform(
                IFACE,
                format!("generation changed from {g1} to {g2} while reading the report: it may answer another writer's inblob"),
            ));
        }
        if entry.read_text("provider")? != provider {
            return Err(Error::platform(
                IFACE,
                "provider changed while reading the report",
            ));
        }
        drop(entry);
        check_report_data(self.tee, IFACE, &outblob, report_data)?;
        let certs = if self.tee == TeeKind::Snp {
            certtable::to_snp_certs(&certtable::parse(&aux)?)
        } else {
            None
        };
        Ok(Evidence {
            tee: self.tee,
            source: IFACE,
            raw: outblob,
            certs,
        })
    }
}
