//! The `sim` TEE: a software platform that issues attestation reports in the exact SEV-SNP
//! format, signed by a chain the project generates (ARK → ASK → VCEK, all ECDSA P-384).
//!
//! Its reports go through the same [`crate::snp::SnpVerifier`] code path as real SNP
//! reports: same parser, same chain check, same VCEK extension cross-checks (the sim VCEK
//! carries blSPL/teeSPL/snpSPL/ucodeSPL and hwID extensions exactly as AMD's do), same
//! signature encoding. The only difference is the root: the sim ARK is never built in, so a
//! sim report verifies only when the caller trusts the sim ARK explicitly
//! ([`SimPlatform::trust_anchors`], `--trust ark.pem`), and the verified result then reports
//! [`crate::pki::AnchorOrigin::Explicit`] for policy (`allow_sim_tee`) to judge.
//!
//! Directory layout written by [`SimPlatform::load_or_create`]:
//! ```text
//! ark.pem   sim ARK certificate (self-signed CA, CN=ARK-Sim)
//! ask.pem   sim ASK certificate (CA, CN=SEV-Sim, signed by the ARK)
//! vcek.pem  sim VCEK certificate (CN=SEV-VCEK-Sim, signed by the ASK; TCB and hwID extensions)
//! vcek.key  the VCEK private key, PKCS#8 PEM, mode 0600
//! ```
//! The ARK and ASK private keys are discarded after creation: nobody can mint another VCEK
//! under this root.

use crate::error::{Error, Result};
use crate::pki::TrustAnchors;
use crate::snp::report::{
    encode_signature, Cpuid, FwVersion, TcbLayout, SIG_ALGO_ECDSA_P384_SHA384,
};
use crate::snp::{AmdExtensions, SigningKey, SnpCerts, SnpReport, TcbVersion, AMD_ARC};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// The TCB the sim platform reports and certifies: `[bl, tee, 0, 0, 0, 0, snp, ucode]`.
pub const SIM_TCB: TcbVersion = TcbVersion {
    raw: u64::from_le_bytes([1, 0, 0, 0, 0, 0, 1, 1]),
    fmc: None,
    bootloader: 1,
    tee: 0,
    snp: 1,
    microcode: 1,
};

/// The measurement the sim platform reports unless told otherwise: SHA-384 of
/// `"ualink-cc sim guest"`.
pub fn default_measurement() -> [u8; 48] {
    let mut m = [0u8; 48];
    m.copy_from_slice(ring::digest::digest(&ring::digest::SHA384, b"ualink-cc sim guest").as_ref());
    m
}

const FILES: [&str; 4] = ["ark.pem", "ask.pem", "vcek.pem", "vcek.key"];

/// A software SNP-format platform loaded from (or created in) a directory.
pub struct SimPlatform {
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
    vcek_der: Vec<u8>,
    chip_id: [u8; 64],
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for SimPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPlatform")
            .field("chip_id", &hex::encode(self.chip_id))
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Optional report fields for [`SimPlatform::report_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimReportParams {
    /// The launch measurement.
    pub measurement: [u8; 48],
    /// The requesting VMPL.
    pub vmpl: u32,
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// Guest POLICY (default: SMT allowed, bit 17 reserved-one, i.e. 0x30000).
    pub policy: u64,
}

impl Default for SimReportParams {
    fn default() -> Self {
        Self {
            measurement: default_measurement(),
            vmpl: 0,
            host_data: [0; 32],
            policy: 0x3_0000,
        }
    }
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |e| Error::io(op, &e)
}

fn rcgen_err(e: rcgen::Error) -> Error {
    Error::Io {
        op: "generating the sim PKI",
        detail: e.to_string(),
    }
}

impl SimPlatform {
    /// Loads the platform from `dir`, or creates a fresh one there (ARK, ASK, VCEK with a
    /// random chip id) if none of its files exist. A directory with only some of the files
    /// is refused rather than overwritten.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let present: Vec<bool> = FILES.iter().map(|f| dir.join(f).exists()).collect();
        if present.iter().all(|&p| p) {
            return Self::load(dir);
        }
        if present.iter().any(|&p| p) {
            return Err(Error::ApiMisuse {
                reason: "sim platform directory is incomplete; refusing to overwrite it",
            });
        }
        Self::create(dir)?;
        Self::load(dir)
    }

    fn load(dir: &Path) -> Result<Self> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(io("reading sim platform"));
        let one = |bytes: Vec<u8>, what: &'static str| -> Result<Vec<u8>> {
            let mut certs = crate::pki::certs_from_pem_or_der(&bytes)?;
            match (certs.pop(), certs.is_empty()) {
                (Some(c), true) => Ok(c),
                _ => Err(Error::malformed(what, "expected exactly one certificate")),
            }
        };
        let ark_der = one(read("ark.pem")?, "sim ARK")?;
        let ask_der = one(read("ask.pem")?, "sim ASK")?;
        let vcek_der = one(read("vcek.pem")?, "sim VCEK")?;
        let key_pem = Zeroizing::new(read("vcek.key")?);
        let key_item =
            pem::parse(&*key_pem).map_err(|e| Error::malformed("sim VCEK key", e.to_string()))?;
        let pkcs8 = Zeroizing::new(key_item.into_contents());
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|e| Error::malformed("sim VCEK key", e.to_string()))?;
        let cert = crate::pki::parse_cert(&vcek_der, "sim VCEK")?;
        if cert.public_key().subject_public_key.data.as_ref()
            != ring::signature::KeyPair::public_key(&key).as_ref()
        {
            return Err(Error::malformed("sim VCEK key", "does not match vcek.pem"));
        }
        let hw_id = AmdExtensions::from_cert(&cert)?
            .hw_id
            .ok_or_else(|| Error::malformed("sim VCEK", "no hwID extension"))?;
        let chip_id = <[u8; 64]>::try_from(hw_id.as_slice())
            .map_err(|_| Error::malformed("sim VCEK", "hwID is not 64 bytes"))?;
        Ok(Self {
            ark_der,
            ask_der,
            vcek_der,
            chip_id,
            key,
            rng,
        })
    }

    fn create(dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(io("creating sim platform directory"))?;
        let rng = SystemRandom::new();
        let mut chip_id = [0u8; 64];
        rng.fill(&mut chip_id).map_err(|_| Error::Io {
            op: "generating the sim chip id",
            detail: "system RNG failed".into(),
        })?;

        let name = |cn: &str| {
            let mut dn = DistinguishedName::new();
            dn.push(
                DnType::OrganizationName,
                "ualink-cc sim TEE (software, not hardware)",
            );
            dn.push(DnType::CommonName, cn);
            dn
        };
        let validity = |p: &mut CertificateParams| {
            p.not_before = rcgen::date_time_ymd(2024, 1, 1);
            p.not_after = rcgen::date_time_ymd(2049, 12, 31);
        };
        let ca_params = |cn: &str| -> Result<CertificateParams> {
            let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
            p.distinguished_name = name(cn);
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            validity(&mut p);
            Ok(p)
        };

        let ark_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(rcgen_err)?;
        let ark_params = ca_params("ARK-Sim")?;
        let ark = ark_params.self_signed(&ark_key).map_err(rcgen_err)?;
        let ark_issuer = Issuer::new(ark_params, ark_key);

        let ask_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(rcgen_err)?;
        let ask_params = ca_params("SEV-Sim")?;
        let ask = ask_params
            .signed_by(&ask_key, &ark_issuer)
            .map_err(rcgen_err)?;
        let ask_issuer = Issuer::new(ask_params, ask_key);

        let vcek_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(rcgen_err)?;
        let mut vp = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
        vp.distinguished_name = name("SEV-VCEK-Sim");
        vp.is_ca = IsCa::ExplicitNoCa;
        vp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut vp);
        let oid = |tail: &[u64]| -> Vec<u64> { AMD_ARC.iter().chain(tail).copied().collect() };
        for (tail, v) in [
            (&[3u64, 1][..], SIM_TCB.bootloader),
            (&[3, 2], SIM_TCB.tee),
            (&[3, 3], SIM_TCB.snp),
            (&[3, 8], SIM_TCB.microcode),
        ] {
            vp.custom_extensions
                .push(CustomExtension::from_oid_content(&oid(tail), der_uint(v)));
        }
        vp.custom_extensions.push(CustomExtension::from_oid_content(
            &oid(&[4]),
            chip_id.to_vec(),
        ));
        let vcek = vp.signed_by(&vcek_key, &ask_issuer).map_err(rcgen_err)?;

        let write = |name: &str, contents: &[u8], private: bool| -> Result<()> {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            if private {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            #[cfg(not(unix))]
            let _ = private;
            let mut f = opts
                .open(dir.join(name))
                .map_err(io("writing sim platform"))?;
            f.write_all(contents).map_err(io("writing sim platform"))?;
            f.sync_all().map_err(io("writing sim platform"))
        };
        write("ark.pem", ark.pem().as_bytes(), false)?;
        write("ask.pem", ask.pem().as_bytes(), false)?;
        write("vcek.pem", vcek.pem().as_bytes(), false)?;
        let key_pem = Zeroizing::new(vcek_key.serialize_pem());
        write("vcek.key", key_pem.as_bytes(), true)?;
        Ok(())
    }

    /// The sim ARK (DER). Trust it explicitly to accept this platform's reports.
    pub fn ark_der(&self) -> &[u8] {
        &self.ark_der
    }

    /// Trust anchors containing only this platform's ARK.
    pub fn trust_anchors(&self) -> Result<TrustAnchors> {
        TrustAnchors::empty().with_explicit_root_der(&self.ark_der)
    }

    /// The VCEK and ASK to present with a report.
    pub fn certs(&self) -> SnpCerts {
        SnpCerts {
            leaf: self.vcek_der.clone(),
            intermediates: vec![self.ask_der.clone()],
        }
    }

    /// The platform's chip id (the VCEK hwID).
    pub fn chip_id(&self) -> &[u8; 64] {
        &self.chip_id
    }

    /// A signed report (1184 bytes, SNP version 3) carrying `report_data`, with default
    /// [`SimReportParams`].
    pub fn report(&self, report_data: &[u8; 64]) -> Result<Vec<u8>> {
        self.report_with(report_data, &SimReportParams::default())
    }

    /// A signed report with the given fields.
    pub fn report_with(&self, report_data: &[u8; 64], p: &SimReportParams) -> Result<Vec<u8>> {
        let rng_err = |_| Error::Io {
            op: "signing a sim report",
            detail: "system RNG failed".into(),
        };
        let mut report_id = [0u8; 32];
        self.rng.fill(&mut report_id).map_err(rng_err)?;
        let tcb = TcbVersion::decode(SIM_TCB.raw, TcbLayout::MilanGenoa);
        let version = FwVersion {
            build: 1,
            minor: 0,
            major: 1,
        };
        let mut report = SnpReport {
            version: 3,
            guest_svn: 0,
            policy: p.policy,
            family_id: [0; 16],
            image_id: [0; 16],
            vmpl: p.vmpl,
            signature_algo: SIG_ALGO_ECDSA_P384_SHA384,
            current_tcb: tcb,
            platform_info: 0,
            author_key_en: false,
            mask_chip_key: false,
            signing_key: SigningKey::Vcek,
            report_data: *report_data,
            measurement: p.measurement,
            host_data: p.host_data,
            id_key_digest: [0; 48],
            author_key_digest: [0; 48],
            report_id,
            report_id_ma: [0xFF; 32],
            reported_tcb: tcb,
            cpuid: Some(Cpuid {
                family: 0x19,
                model: 0x01,
                stepping: 0x01,
            }),
            chip_id: self.chip_id,
            committed_tcb: tcb,
            current_version: version,
            committed_version: version,
            launch_tcb: tcb,
            launch_mit_vector: None,
            current_mit_vector: None,
            signature_r: [0; 48],
            signature_s: [0; 48],
        };
        let mut bytes = report.encode_signed_part();
        let sig = self.key.sign(&self.rng, &bytes).map_err(|_| Error::Io {
            op: "signing a sim report",
            detail: "ECDSA signing failed".into(),
        })?;
        let sig = sig.as_ref();
        let (r, s) = (sig.get(..48), sig.get(48..96));
        if let (Some(r), Some(s)) = (r, s) {
            report.signature_r.copy_from_slice(r);
            report.signature_s.copy_from_slice(s);
        }
        bytes.extend_from_slice(&encode_signature(&report.signature_r, &report.signature_s));
        Ok(bytes)
    }
}

/// DER INTEGER for 0..=255, minimal.
fn der_uint(v: u8) -> Vec<u8> {
    if v < 0x80 {
        vec![0x02, 0x01, v]
    } else {
        vec![0x02, 0x02, 0x00, v]
    }
}
