//! Device test identities: a generated (or loaded) certificate chain and its leaf key.
//!
//! [`DeviceIdentity::generate`] makes, with rcgen, a root CA → [intermediate CA →] leaf chain
//! for ECDSA P-256 or P-384. The leaf carries the SPDM EKU of its role (responder-auth
//! 1.3.6.1.4.1.412.274.3 by default, requester-auth .4 for a mutual-auth requester), keyUsage
//! digitalSignature and a DER-minimal basicConstraints
//! (`SEQUENCE {}`, not a CA); CAs carry cA=TRUE (the intermediate pathLen 0) and keyUsage
//! keyCertSign|cRLSign. Validity is fixed (2024-01-01 .. 2049-12-31) so tests do not depend
//! on the clock.
//!
//! An identity directory holds three PEM files:
//! * `ca.pem`: the root a requester should trust;
//! * `chain.pem`: the device's chain, root first, leaf last;
//! * `device.key.pem`: the leaf's PKCS#8 private key (`PRIVATE KEY`), written mode 0600.
//!
//! [`DeviceIdentity::load_or_generate`] uses existing files exactly as they are (so an
//! identity made with openssl works) and generates all three only if none exists; a partial
//! directory is an error rather than being overwritten.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::string::String;
use std::vec::Vec;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use zeroize::Zeroizing;

use crate::algo::{AsymAlg, HashAlg};
use crate::cert_chain::{encode_spdm_cert_chain, CertError, PeerRole, TrustAnchors, VerifyTime};

/// File name of the trust anchor in an identity directory.
pub const CA_FILE: &str = "ca.pem";
/// File name of the chain (root first) in an identity directory.
pub const CHAIN_FILE: &str = "chain.pem";
/// File name of the leaf's PKCS#8 key in an identity directory.
pub const KEY_FILE: &str = "device.key.pem";

/// OID arcs of `id-DMTF-eku-responder-auth`.
const EKU_RESPONDER_AUTH: [u64; 9] = [1, 3, 6, 1, 4, 1, 412, 274, 3];
/// OID arcs of `id-DMTF-eku-requester-auth`.
const EKU_REQUESTER_AUTH: [u64; 9] = [1, 3, 6, 1, 4, 1, 412, 274, 4];

/// Why an identity could not be made, loaded or saved.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// File system failure.
    #[error("identity file: {0}")]
    Io(#[from] std::io::Error),
    /// Certificate or key generation failed.
    #[error("generating identity: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file is not the PEM it should be.
    #[error("{file}: {reason}")]
    BadFile {
        /// Which file.
        file: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Some but not all identity files exist.
    #[error("identity directory incomplete: {missing} is missing")]
    Incomplete {
        /// The missing file.
        missing: &'static str,
    },
    /// The private key does not belong to the leaf certificate.
    #[error("device.key.pem does not match the leaf certificate")]
    KeyMismatch,
    /// The chain is unusable.
    #[error("chain: {0}")]
    Chain(#[from] CertError),
}

/// Options for [`DeviceIdentity::generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityOptions {
    /// Insert an intermediate CA between root and leaf.
    pub intermediate: bool,
    /// Common-name prefix for the subjects.
    pub name: String,
    /// The role the leaf authenticates as (chooses its SPDM EKU).
    pub role: PeerRole,
}

impl Default for IdentityOptions {
    fn default() -> Self {
        Self {
            intermediate: false,
            name: String::from("ualink-spdm test device"),
            role: PeerRole::Responder,
        }
    }
}

/// How [`DeviceIdentity::load_or_generate`] obtained the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// Read from existing files.
    Loaded,
    /// Generated and written.
    Generated,
}

/// A device identity: trust anchor, chain (root first) and the leaf's PKCS#8 key.
/// Cloning copies the key into another zeroizing buffer.
#[derive(Clone)]
pub struct DeviceIdentity {
    asym: AsymAlg,
    ca_der: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
    key_pkcs8: Zeroizing<Vec<u8>>,
}

impl core::fmt::Debug for DeviceIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceIdentity")
            .field("asym", &self.asym)
            .field("certs", &self.chain_der.len())
            .field("key_pkcs8", &"<redacted>")
            .finish()
    }
}

fn sig_alg(asym: AsymAlg) -> &'static SignatureAlgorithm {
    match asym {
        AsymAlg::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        AsymAlg::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    }
}

fn base_params(cn: String) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = date_time_ymd(2024, 1, 1);
    p.not_after = date_time_ymd(2049, 12, 31);
    Ok(p)
}

impl DeviceIdentity {
    /// Generates a fresh chain and leaf key for `asym`.
    pub fn generate(asym: AsymAlg, opts: &IdentityOptions) -> Result<Self, IdentityError> {
        let alg = sig_alg(asym);
        let root_key = KeyPair::generate_for(alg)?;
        let mut root = base_params(format!("{} root CA", opts.name))?;
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_cert = root.self_signed(&root_key)?;
        let mut chain = vec![root_cert.der().to_vec()];
        let mut issuer = Issuer::new(root, root_key);

        if opts.intermediate {
            let key = KeyPair::generate_for(alg)?;
            let mut p = base_params(format!("{} intermediate CA", opts.name))?;
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.use_authority_key_identifier_extension = true;
            let cert = p.signed_by(&key, &issuer)?;
            chain.push(cert.der().to_vec());
            issuer = Issuer::new(p, key);
        }

        let leaf_key = KeyPair::generate_for(alg)?;
        let (role, eku) = match opts.role {
            PeerRole::Responder => ("responder", EKU_RESPONDER_AUTH),
            PeerRole::Requester => ("requester", EKU_REQUESTER_AUTH),
        };
        let mut leaf = base_params(format!("{} {role}", opts.name))?;
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(eku.to_vec())];
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
        chain.push(leaf_cert.der().to_vec());
        let key_pkcs8 = Zeroizing::new(leaf_key.serialize_der());
        let ca_der = chain.first().cloned().unwrap_or_default();
        Ok(Self {
            asym,
            ca_der,
            chain_der: chain,
            key_pkcs8,
        })
    }

    /// Builds an identity from parts, checking that the key belongs to the leaf and
    /// deriving the algorithm from the leaf key.
    pub fn from_parts(
        ca_der: Vec<u8>,
        chain_der: Vec<Vec<u8>>,
        key_pkcs8: Zeroizing<Vec<u8>>,
    ) -> Result<Self, IdentityError> {
        let leaf = chain_der.last().ok_or(CertError::Empty)?;
        let (asym, leaf_pub) = leaf_key(leaf)?;
        let rng = ring::rand::SystemRandom::new();
        let alg = match asym {
            AsymAlg::EcdsaP256 => &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            AsymAlg::EcdsaP384 => &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        };
        let pair =
            ring::signature::EcdsaKeyPair::from_pkcs8(alg, &key_pkcs8, &rng).map_err(|_| {
                IdentityError::BadFile {
                    file: KEY_FILE,
                    reason: "not a PKCS#8 key for the leaf's curve",
                }
            })?;
        if ring::signature::KeyPair::public_key(&pair).as_ref() != leaf_pub.as_slice() {
            return Err(IdentityError::KeyMismatch);
        }
        Ok(Self {
            asym,
            ca_der,
            chain_der,
            key_pkcs8,
        })
    }

    /// The leaf key's algorithm.
    pub fn asym(&self) -> AsymAlg {
        self.asym
    }

    /// The trust anchor (DER) a requester should be given.
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// The chain, DER, root first.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// The concatenated DER certificates, root first (input of a `ChainVerifier`).
    pub fn certs_der(&self) -> Vec<u8> {
        self.chain_der.concat()
    }

    /// The leaf's PKCS#8 private key.
    pub fn key_pkcs8(&self) -> &Zeroizing<Vec<u8>> {
        &self.key_pkcs8
    }

    /// The SPDM certificate chain (header, root hash, certificates) for `hash`.
    pub fn spdm_cert_chain(&self, hash: HashAlg) -> Result<Vec<u8>, CertError> {
        encode_spdm_cert_chain(hash, &self.chain_der)
    }

    /// Verifies the chain against the identity's own trust anchor (`ca.pem`) as an identity
    /// for `role` at `now_unix`, under [`TrustAnchors`]' policy.
    pub fn check(&self, now_unix: u64, role: PeerRole) -> Result<(), CertError> {
        let mut anchors = TrustAnchors::new().with_time(VerifyTime::Fixed(now_unix));
        anchors.add_der(&self.ca_der)?;
        anchors.verify_at(&self.certs_der(), self.asym, role, now_unix)?;
        Ok(())
    }

    /// Loads an identity directory (all three files must exist).
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let ca = read_pem(dir, CA_FILE, "CERTIFICATE")?;
        let ca_der = match <[Vec<u8>; 1]>::try_from(ca) {
            Ok([der]) => der,
            Err(_) => {
                return Err(IdentityError::BadFile {
                    file: CA_FILE,
                    reason: "must hold exactly one certificate",
                })
            }
        };
        let chain = read_pem(dir, CHAIN_FILE, "CERTIFICATE")?;
        let key = read_pem(dir, KEY_FILE, "PRIVATE KEY")?;
        let key = match <[Vec<u8>; 1]>::try_from(key) {
            Ok([k]) => Zeroizing::new(k),
            Err(_) => {
                return Err(IdentityError::BadFile {
                    file: KEY_FILE,
                    reason: "must hold exactly one PKCS#8 PRIVATE KEY",
                })
            }
        };
        Self::from_parts(ca_der, chain, key)
    }

    /// Writes the three files into `dir` (created if needed); the key file is mode 0600.
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        fs::create_dir_all(dir)?;
        let ca = pem::encode(&pem::Pem::new("CERTIFICATE", self.ca_der.clone()));
        fs::write(dir.join(CA_FILE), ca)?;
        let chain: String = self
            .chain_der
            .iter()
            .map(|c| pem::encode(&pem::Pem::new("CERTIFICATE", c.clone())))
            .collect();
        fs::write(dir.join(CHAIN_FILE), chain)?;
        let key = Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            self.key_pkcs8.to_vec(),
        )));
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(dir.join(KEY_FILE))?;
        // An existing file keeps its mode on open: tighten it before writing the key.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(key.as_bytes())?;
        Ok(())
    }

    /// Loads `dir` if its files exist; generates (with `asym`, `opts`) and saves them if none
    /// does; fails on a partial directory.
    pub fn load_or_generate(
        dir: &Path,
        asym: AsymAlg,
        opts: &IdentityOptions,
    ) -> Result<(Self, IdentitySource), IdentityError> {
        let present: Vec<bool> = [CA_FILE, CHAIN_FILE, KEY_FILE]
            .iter()
            .map(|f| dir.join(f).exists())
            .collect();
        if present.iter().all(|p| *p) {
            return Ok((Self::load(dir)?, IdentitySource::Loaded));
        }
        for (name, p) in [CA_FILE, CHAIN_FILE, KEY_FILE].iter().zip(&present) {
            if present.iter().any(|p| *p) && !p {
                return Err(IdentityError::Incomplete { missing: name });
            }
        }
        let id = Self::generate(asym, opts)?;
        id.save(dir)?;
        Ok((id, IdentitySource::Generated))
    }
}

/// Reads every PEM block of `file`, all of which must carry `tag`.
fn read_pem(dir: &Path, file: &'static str, tag: &str) -> Result<Vec<Vec<u8>>, IdentityError> {
    let text = Zeroizing::new(fs::read(dir.join(file))?);
    let blocks = pem::parse_many(text.as_slice()).map_err(|_| IdentityError::BadFile {
        file,
        reason: "not PEM",
    })?;
    if blocks.is_empty() {
        return Err(IdentityError::BadFile {
            file,
            reason: "no PEM block",
        });
    }
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == tag {
                Ok(b.into_contents())
            } else {
                Err(IdentityError::BadFile {
                    file,
                    reason: "unexpected PEM block type",
                })
            }
        })
        .collect()
}

/// The leaf's curve and uncompressed public key.
fn leaf_key(der: &[u8]) -> Result<(AsymAlg, Vec<u8>), IdentityError> {
    use x509_parser::prelude::FromDer;
    let bad = CertError::Malformed { index: 0 };
    let (_, cert) =
        x509_parser::certificate::X509Certificate::from_der(der).map_err(|_| bad.clone())?;
    let spki = cert.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    let asym = match curve.as_deref() {
        Some("1.2.840.10045.3.1.7") => AsymAlg::EcdsaP256,
        Some("1.3.132.0.34") => AsymAlg::EcdsaP384,
        _ => return Err(CertError::UnsupportedKeyAlgorithm { index: 0 }.into()),
    };
    Ok((asym, spki.subject_public_key.data.to_vec()))
}
