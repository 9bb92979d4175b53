//! Evidence providers against fakes: configfs-tsm on a temp-dir tree that behaves like the
//! kernel (including a concurrent writer), /dev/sev-guest through a fake device, sim, sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use ualink_attest::sim::SimPlatform;
use ualink_attest::snp::SnpVerifier;
use ualink_attest::{ExpectedReportData, UnixTime};
use ualink_guest_agent::evidence::certtable::{self, CertEntry, CertKind};
use ualink_guest_agent::evidence::configfs::{ConfigfsIo, ConfigfsTsm, StdIo};
use ualink_guest_agent::evidence::sev_guest::{SevGuestProvider, SnpGuestDevice};
use ualink_guest_agent::evidence::{self, EvidenceProvider, ProbePaths, TeeChoice, TeeKind};
use ualink_guest_agent::{Error, ErrorClass};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let mut b = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
        let p = std::env::temp_dir().join(format!("ualink-ga-{tag}-{}", hex::encode(b)));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const NOW: UnixTime = UnixTime::from_secs(1_795_000_000);

/// What the fake kernel does when `outblob` is read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mischief {
    None,
    /// Another process writes `inblob` while we read the report.
    WriteDuringRead,
    /// Another process writes `inblob` right after our write.
    WriteAfterOurs,
    /// The outblob ignores inblob (a report for other data).
    WrongReportData,
}

/// A fake configfs-tsm over a real temp dir: mkdir populates the attributes, writes bump
/// `generation`, reading `outblob` signs `inblob` with a sim platform.
struct FakeKernel {
    sim: Arc<SimPlatform>,
    provider: &'static str,
    mischief: Mutex<Mischief>,
    removed: Mutex<Vec<PathBuf>>,
}

impl FakeKernel {
    fn bump(&self, entry: &Path) {
        let g: u64 = std::fs::read_to_string(entry.join("generation"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::fs::write(entry.join("generation"), format!("{}\n", g + 1)).unwrap();
    }
}

impl ConfigfsIo for FakeKernel {
    fn mkdir(&self, path: &Path) -> std::io::Result<()> {
        StdIo.mkdir(path)?;
        std::fs::write(path.join("provider"), format!("{}\n", self.provider))?;
        std::fs::write(path.join("generation"), "0\n")?;
        std::fs::write(path.join("inblob"), [0u8; 64])?;
        Ok(())
    }
    fn rmdir(&self, path: &Path) -> std::io::Result<()> {
        self.removed.lock().unwrap().push(path.to_path_buf());
        std::fs::remove_dir_all(path)
    }
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let entry = path.parent().unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        match name {
            "outblob" => {
                let mut rd: [u8; 64] = std::fs::read(entry.join("inblob"))?.try_into().unwrap();
                let m = *self.mischief.lock().unwrap();
                if m == Mischief::WriteDuringRead {
                    self.bump(entry);
                }
                if m == Mischief::WrongReportData {
                    rd[0] ^= 1;
                }
                Ok(self.sim.report(&rd).unwrap())
            }
            "auxblob" => Ok(certtable::encode(&[
                CertEntry {
                    kind: CertKind::Vcek,
                    der: self.sim.certs().leaf,
                },
                CertEntry {
                    kind: CertKind::Ask,
                    der: self.sim.certs().intermediates[0].clone(),
                },
                CertEntry {
                    kind: CertKind::Ark,
                    der: self.sim.ark_der().to_vec(),
                },
            ])
            .unwrap()),
            _ => StdIo.read(path),
        }
    }
    fn write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        StdIo.write(path, data)?;
        let entry = path.parent().unwrap();
        self.bump(entry);
        if *self.mischief.lock().unwrap() == Mischief::WriteAfterOurs {
            self.bump(entry);
        }
        Ok(())
    }
}

struct Fake {
    _dir: TempDir,
    root: PathBuf,
    sim: Arc<SimPlatform>,
}

fn fake(provider: &'static str, mischief: Mischief) -> (Fake, ConfigfsTsm) {
    let dir = TempDir::new("cfg");
    let root = dir.path().join("tsm/report");
    std::fs::create_dir_all(&root).unwrap();
    let sim = Arc::new(SimPlatform::load_or_create(&dir.path().join("sim")).unwrap());
    let kernel = FakeKernel {
        sim: sim.clone(),
        provider,
        mischief: Mutex::new(mischief),
        removed: Mutex::new(Vec::new()),
    };
    let tsm = ConfigfsTsm::with_io(&root, Box::new(kernel)).unwrap();
    (
        Fake {
            _dir: dir,
            root,
            sim,
        },
        tsm,
    )
}

fn rd() -> [u8; 64] {
    let mut r = [0u8; 64];
    r[..48].copy_from_slice(&[0xAB; 48]);
    r
}

#[test]
fn configfs_snp_report_verifies_and_entry_is_removed() {
    let (f, tsm) = fake("sev_guest", Mischief::None);
    assert_eq!(tsm.tee(), TeeKind::Snp);
    assert_eq!(tsm.provider(), "sev_guest");
    assert!(tsm.describe().contains("configfs-tsm"));
    let ev = tsm.evidence(&rd()).unwrap();
    assert_eq!(ev.source, "configfs-tsm");
    let certs = ev.certs.clone().unwrap();
    // The ARK from auxblob is dropped: roots come from the verifier.
    assert_eq!(certs.intermediates.len(), 1);
    let v = SnpVerifier::new(f.sim.trust_anchors().unwrap())
        .verify(&ev.raw, &certs, &ExpectedReportData::Expected(rd()), NOW)
        .unwrap();
    assert!(v.report_data_checked);
    // Every entry we created (probe + report) is gone.
    assert_eq!(std::fs::read_dir(&f.root).unwrap().count(), 0);
}

#[test]
fn configfs_generation_change_mid_read_is_refused() {
    let (_f, tsm) = fake("sev_guest", Mischief::WriteDuringRead);
    let e = tsm.evidence(&rd()).unwrap_err();
    assert_eq!(e.class(), ErrorClass::Platform);
    assert!(
        e.to_string().contains("generation changed from 1 to 2"),
        "{e}"
    );
}

#[test]
fn configfs_concurrent_write_after_ours_is_refused() {
    let (_f, tsm) = fake("sev_guest", Mischief::WriteAfterOurs);
    let e = tsm.evidence(&rd()).unwrap_err();
    assert!(e.to_string().contains("another writer"), "{e}");
}

#[test]
fn configfs_report_for_other_data_is_refused() {
    let (_f, tsm) = fake("sev_guest", Mischief::WrongReportData);
    let e = tsm.evidence(&rd()).unwrap_err();
    assert!(
        e.to_string().contains("does not carry the report_data"),
        "{e}"
    );
}

#[test]
fn configfs_unknown_provider_is_refused() {
    let dir = TempDir::new("cfg-unknown");
    let sim = Arc::new(SimPlatform::load_or_create(&dir.path().join("sim")).unwrap());
    let kernel = FakeKernel {
        sim,
        provider: "arm_cca_guest",
        mischief: Mutex::new(Mischief::None),
        removed: Mutex::new(Vec::new()),
    };
    let e = ConfigfsTsm::with_io(dir.path(), Box::new(kernel)).unwrap_err();
    assert!(
        e.to_string().contains("unknown provider \"arm_cca_guest\""),
        "{e}"
    );
}

struct FakeSevDevice {
    sim: Arc<SimPlatform>,
    certs: bool,
}

impl SnpGuestDevice for FakeSevDevice {
    fn extended_report(
        &mut self,
        report_data: &[u8; 64],
    ) -> ualink_guest_agent::Result<(Vec<u8>, Vec<CertEntry>)> {
        let c = self.sim.certs();
        let entries = if self.certs {
            vec![
                CertEntry {
                    kind: CertKind::Ask,
                    der: c.intermediates[0].clone(),
                },
                CertEntry {
                    kind: CertKind::Vcek,
                    der: c.leaf,
                },
            ]
        } else {
            Vec::new()
        };
        Ok((self.sim.report(report_data).unwrap(), entries))
    }
}

#[test]
fn sev_guest_provider_maps_the_cert_table() {
    let dir = TempDir::new("sev");
    let sim = Arc::new(SimPlatform::load_or_create(dir.path()).unwrap());
    let p = SevGuestProvider::with_device(
        Box::new(FakeSevDevice {
            sim: sim.clone(),
            certs: true,
        }),
        Path::new("/dev/sev-guest"),
    );
    assert_eq!(p.tee(), TeeKind::Snp);
    let ev = p.evidence(&rd()).unwrap();
    assert_eq!(ev.certs.as_ref().unwrap().leaf, sim.certs().leaf);
    SnpVerifier::new(sim.trust_anchors().unwrap())
        .verify(
            &ev.raw,
            ev.certs.as_ref().unwrap(),
            &ExpectedReportData::Expected(rd()),
            NOW,
        )
        .unwrap();
    let bare = SevGuestProvider::with_device(
        Box::new(FakeSevDevice { sim, certs: false }),
        Path::new("/dev/sev-guest"),
    );
    assert!(bare.evidence(&rd()).unwrap().certs.is_none());
}

#[test]
fn sev_guest_open_refuses_other_paths() {
    let e = SevGuestProvider::open(Path::new("/tmp/not-sev")).unwrap_err();
    assert_eq!(e.class(), ErrorClass::ApiMisuse);
}

#[test]
fn sim_and_sample_providers() {
    let dir = TempDir::new("sim");
    let p = evidence::open(
        &TeeChoice::Sim(dir.path().join("p")),
        &ProbePaths::default(),
    )
    .unwrap();
    assert_eq!(p.tee(), TeeKind::Sim);
    assert!(dir.path().join("p/ark.pem").exists());
    let ev = p.evidence(&rd()).unwrap();
    let j = ev.to_kbs_json().unwrap();
    assert_eq!(j["cert_chain"][0]["cert_type"], "vcek");
    assert_eq!(j["cert_chain"][1]["cert_type"], "ask");
    assert_eq!(TeeKind::Sim.kbs_tee(), kbs_types::Tee::Snp);

    let s = evidence::open(&TeeChoice::Sample, &ProbePaths::default()).unwrap();
    let ev = s.evidence(&rd()).unwrap();
    let j = ev.to_kbs_json().unwrap();
    assert_eq!(j["svn"], "1");
    use base64::Engine as _;
    let got = base64::engine::general_purpose::STANDARD
        .decode(j["report_data"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, vec![0xAB; 48]);
    let mut bad = rd();
    bad[63] = 1;
    assert_eq!(s.evidence(&bad).unwrap_err().class(), ErrorClass::ApiMisuse);
}

#[test]
fn auto_names_everything_it_looked_for() {
    let dir = TempDir::new("auto");
    let paths = ProbePaths {
        configfs_report: dir.path().join("no-configfs"),
        sev_guest: dir.path().join("no-sev-guest"),
        tdx_guest: dir.path().join("no-tdx-guest"),
    };
    let e = evidence::open(&TeeChoice::Auto, &paths).unwrap_err();
    assert!(matches!(e, Error::NoTee { .. }));
    let msg = e.to_string();
    assert!(
        msg.contains("no-configfs") && msg.contains("no-sev-guest"),
        "{msg}"
    );
    let e = evidence::open(&TeeChoice::Tdx, &paths).unwrap_err();
    assert!(e.to_string().contains("tdx_guest"), "{e}");
}
