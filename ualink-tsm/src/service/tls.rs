//! TLS material and the rustls server configuration of the TSM service.
//!
//! Files in the TLS directory (`--tls-dir`, default `STATE/tls/`), written on first start and
//! reused afterwards; private keys are created with mode 0600 and refused at load if group or
//! others can read them:
//!
//! | file | what |
//! |---|---|
//! | `tsm-ca.pem` | self-signed CA whose key IS the TSM's P-384 identity key (`STATE/tsm-key.pk8`): the TSM evidence (report_data = SHA-384(identity pubkey) ‖ 0¹⁶) vouches for it |
//! | `server.pem`, `server.key` | the server certificate (P-256), signed by `tsm-ca`, SANs `localhost`, `127.0.0.1`, `::1` and any extra SAN configured |
//! | `client-ca.pem`, `client-ca.key` | the provider-client CA (P-256) |
//! | `admin.pem`, `admin.key` | an admin client certificate signed by `client-ca` |
//!
//! `tsm-ca.pem` is rewritten when its public key is not the identity key (a new state
//! directory with an old TLS directory); `server.pem` is re-issued when it does not verify
//! under the current CA or lacks a configured SAN.
//!
//! The server configuration is TLS 1.3 only with the ring provider, no session resumption
//! (every connection proves possession of the client key afresh) and a mandatory client
//! certificate classified by [`RoleVerifier`]:
//! - a chain to `client-ca` (rustls' webpki verifier) → [`ClientRole::Admin`];
//! - otherwise exactly one self-signed, currently valid P-256 ECDSA certificate whose
//!   self-signature verifies → [`ClientRole::AgentKey`] (the key is the agent's KBS
//!   `tee-pubkey`, authenticated later by attestation);
//! - anything else is refused in the handshake.
//!
//! In both cases rustls checks the client's CertificateVerify signature with the ring
//! provider's `verify_tls13_signature` (the key in the certificate signed the transcript).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName as RDn, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use super::error::ServiceError;

/// CA certificate whose key is the TSM identity key.
pub const TSM_CA_FILE: &str = "tsm-ca.pem";
/// Server certificate.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// Server private key (PKCS#8 PEM, 0600).
pub const SERVER_KEY_FILE: &str = "server.key";
/// Provider-client CA certificate.
pub const CLIENT_CA_FILE: &str = "client-ca.pem";
/// Provider-client CA key (PKCS#8 PEM, 0600).
pub const CLIENT_CA_KEY_FILE: &str = "client-ca.key";
/// Admin client certificate (signed by the client CA).
pub const ADMIN_CERT_FILE: &str = "admin.pem";
/// Admin client key (PKCS#8 PEM, 0600).
pub const ADMIN_KEY_FILE: &str = "admin.key";

const CA_CN: &str = "ualink-tsm CA (key = TSM identity key)";
const CLIENT_CA_CN: &str = "ualink-tsm provider-client CA";

/// The role a client certificate gives its connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRole {
    /// A provider client: the certificate chains to `client-ca`.
    Admin,
    /// A guest agent's key: a self-signed P-256 certificate. Holds the uncompressed SEC1 point
    /// (65 bytes, `04 ‖ x ‖ y`) that must equal the KBS `tee-pubkey`.
    AgentKey(Vec<u8>),
}

/// Paths of the TLS material (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// The directory.
    pub dir: PathBuf,
}

impl TlsPaths {
    /// The paths under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `tsm-ca.pem`.
    pub fn tsm_ca(&self) -> PathBuf {
        self.dir.join(TSM_CA_FILE)
    }
    /// `server.pem`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join(SERVER_CERT_FILE)
    }
    /// `server.key`.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join(SERVER_KEY_FILE)
    }
    /// `client-ca.pem`.
    pub fn client_ca(&self) -> PathBuf {
        self.dir.join(CLIENT_CA_FILE)
    }
    /// `client-ca.key`.
    pub fn client_ca_key(&self) -> PathBuf {
        self.dir.join(CLIENT_CA_KEY_FILE)
    }
    /// `admin.pem`.
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join(ADMIN_CERT_FILE)
    }
    /// `admin.key`.
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join(ADMIN_KEY_FILE)
    }
}

/// The loaded TLS material the server runs with. The server key is zeroized on drop and
/// never printed.
pub struct TlsMaterial {
    /// Where the files are.
    pub paths: TlsPaths,
    /// `tsm-ca.pem` as PEM text (served at `GET /ualink/v0/tsm`).
    pub ca_pem: String,
    /// The server certificate, DER.
    pub server_cert: CertificateDer<'static>,
    server_key: Zeroizing<Vec<u8>>,
    /// The client CA certificate, DER.
    pub client_ca: CertificateDer<'static>,
}

impl core::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("paths", &self.paths)
            .field("server_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn tls_err(what: &str) -> impl Fn(std::io::Error) -> ServiceError + '_ {
    move |e| ServiceError::Tls(format!("{what}: {e}"))
}

fn rc_err(what: &str) -> impl Fn(rcgen::Error) -> ServiceError + '_ {
    move |e| ServiceError::Tls(format!("{what}: {e}"))
}

/// Writes `bytes` to `path` atomically-enough for first start: a fresh file with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ServiceError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(tls_err("creating a TLS file"))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(tls_err("writing a TLS file"))?;
    std::fs::rename(&tmp, path).map_err(tls_err("renaming a TLS file"))
}

/// Reads a private key file, refusing one readable by group or others.
fn read_secret(path: &Path) -> Result<Option<Zeroizing<String>>, ServiceError> {
    if !path.exists() {
        return Ok(None);
    }
    let meta = std::fs::metadata(path).map_err(tls_err("reading key metadata"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ServiceError::Tls(format!(
            "{} is readable by group or others (mode {:o}); refusing to use it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let s = std::fs::read_to_string(path).map_err(tls_err("reading a key file"))?;
    Ok(Some(Zeroizing::new(s)))
}

fn read_cert_pem(path: &Path) -> Option<Vec<u8>> {
    let text = std::fs::read(path).ok()?;
    let p = pem::parse(text).ok()?;
    (p.tag() == "CERTIFICATE").then(|| p.contents().to_vec())
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, "ualink-cc");
    d.push(DnType::CommonName, cn);
    d
}

fn ca_params(cn: &str) -> Result<CertificateParams, ServiceError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rc_err("CA params"))?;
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// The SubjectPublicKeyInfo's raw key bits of a DER certificate.
fn cert_public_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    Some(c.public_key().subject_public_key.data.to_vec())
}

/// Whether `der` verifies under the CA certificate `ca_der` and is valid now.
fn issued_by(der: &[u8], ca_der: &[u8]) -> bool {
    let (Ok((_, c)), Ok((_, ca))) = (
        X509Certificate::from_der(der),
        X509Certificate::from_der(ca_der),
    ) else {
        return false;
    };
    c.issuer() == ca.subject()
        && c.verify_signature(Some(ca.public_key())).is_ok()
        && c.validity().is_valid()
}

fn has_sans(der: &[u8], sans: &[String]) -> bool {
    let Ok((_, c)) = X509Certificate::from_der(der) else {
        return false;
    };
    let Ok(Some(ext)) = c.subject_alternative_name() else {
        return false;
    };
    let present: Vec<String> = ext
        .value
        .general_names
        .iter()
        .filter_map(|g| match g {
            x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_string()),
            x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                4 => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::IpAddr::from(a).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::IpAddr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    sans.iter().all(|s| {
        let norm = s
            .parse::<std::net::IpAddr>()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| s.clone());
        present.contains(&norm)
    })
}

fn leaf_params(
    cn: &str,
    sans: &[String],
    eku: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, ServiceError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(rc_err("leaf params"))?;
    p.distinguished_name = dn(cn);
    for s in sans {
        let san = match s.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                s.clone()
                    .try_into()
                    .map_err(|e| ServiceError::Tls(format!("SAN {s:?}: {e}")))?,
            ),
        };
        p.subject_alt_names.push(san);
    }
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![eku];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

impl TlsMaterial {
    /// Loads or creates the material in `paths.dir` for the TSM whose identity key is the
    /// PKCS#8 P-384 key `identity_pkcs8`. `extra_sans` are added to the server certificate.
    pub fn load_or_create(
        paths: TlsPaths,
        identity_pkcs8: &[u8],
        extra_sans: &[String],
    ) -> Result<Self, ServiceError> {
        std::fs::create_dir_all(&paths.dir).map_err(tls_err("creating the TLS directory"))?;
        let id_key = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(identity_pkcs8),
            &rcgen::PKCS_ECDSA_P384_SHA384,
        )
        .map_err(rc_err("the identity key"))?;

        // tsm-ca.pem: reuse when its key is the identity key.
        let ca_p = ca_params(CA_CN)?;
        let ca_der = match read_cert_pem(&paths.tsm_ca()) {
            Some(der) if cert_public_key(&der).as_deref() == Some(id_key.public_key_raw()) => der,
            _ => {
                let c = ca_p
                    .self_signed(&id_key)
                    .map_err(rc_err("self-signing tsm-ca"))?;
                write_file(&paths.tsm_ca(), c.pem().as_bytes(), 0o644)?;
                c.der().to_vec()
            }
        };
        let ca_issuer = Issuer::new(ca_p, id_key);

        // server.pem / server.key.
        let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        sans.extend(extra_sans.iter().cloned());
        let existing = match (
            read_cert_pem(&paths.server_cert()),
            read_secret(&paths.server_key())?,
        ) {
            (Some(der), Some(key)) if issued_by(&der, &ca_der) && has_sans(&der, &sans) => {
                let kp = KeyPair::from_pem(&key).map_err(rc_err("server.key"))?;
                (cert_public_key(&der).as_deref() == Some(kp.public_key_raw()))
                    .then(|| (der, Zeroizing::new(kp.serialize_der())))
            }
            _ => None,
        };
        let (server_der, server_key) = match existing {
            Some(x) => x,
            None => {
                let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .map_err(rc_err("generating the server key"))?;
                let c = leaf_params("ualink-tsm", &sans, ExtendedKeyUsagePurpose::ServerAuth)?
                    .signed_by(&kp, &ca_issuer)
                    .map_err(rc_err("issuing the server certificate"))?;
                write_file(
                    &paths.server_key(),
                    Zeroizing::new(kp.serialize_pem()).as_bytes(),
                    0o600,
                )?;
                write_file(&paths.server_cert(), c.pem().as_bytes(), 0o644)?;
                (c.der().to_vec(), Zeroizing::new(kp.serialize_der()))
            }
        };

        // client-ca + admin.
        let client_ca_params = ca_params(CLIENT_CA_CN)?;
        let (client_ca_der, client_ca_key): (Vec<u8>, KeyPair) = match (
            read_cert_pem(&paths.client_ca()),
            read_secret(&paths.client_ca_key())?,
        ) {
            (Some(der), Some(key)) => {
                let kp = KeyPair::from_pem(&key).map_err(rc_err("client-ca.key"))?;
                if cert_public_key(&der).as_deref() != Some(kp.public_key_raw()) {
                    return Err(ServiceError::Tls(
                        "client-ca.pem and client-ca.key do not match".into(),
                    ));
                }
                (der, kp)
            }
            _ => {
                let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .map_err(rc_err("generating the client CA key"))?;
                let c = client_ca_params
                    .self_signed(&kp)
                    .map_err(rc_err("self-signing the client CA"))?;
                write_file(
                    &paths.client_ca_key(),
                    Zeroizing::new(kp.serialize_pem()).as_bytes(),
                    0o600,
                )?;
                write_file(&paths.client_ca(), c.pem().as_bytes(), 0o644)?;
                // A new client CA invalidates any older admin certificate.
                let _ = std::fs::remove_file(paths.admin_cert());
                (c.der().to_vec(), kp)
            }
        };
        let admin_ok = read_cert_pem(&paths.admin_cert())
            .is_some_and(|der| issued_by(&der, &client_ca_der))
            && read_secret(&paths.admin_key())?.is_some();
        if !admin_ok {
            let client_issuer = Issuer::new(client_ca_params, client_ca_key);
            let kp = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(rc_err("generating the admin key"))?;
            let c = leaf_params("ualink-tsm admin", &[], ExtendedKeyUsagePurpose::ClientAuth)?
                .signed_by(&kp, &client_issuer)
                .map_err(rc_err("issuing the admin certificate"))?;
            write_file(
                &paths.admin_key(),
                Zeroizing::new(kp.serialize_pem()).as_bytes(),
                0o600,
            )?;
            write_file(&paths.admin_cert(), c.pem().as_bytes(), 0o644)?;
        }

        let ca_pem = pem::encode(&pem::Pem::new("CERTIFICATE", ca_der));
        Ok(Self {
            paths,
            ca_pem,
            server_cert: CertificateDer::from(server_der),
            server_key,
            client_ca: CertificateDer::from(client_ca_der),
        })
    }

    /// The rustls server configuration: TLS 1.3 only, ring, no resumption, HTTP/1.1 ALPN,
    /// client certificates classified by [`RoleVerifier`] (returned too: the server
    /// re-classifies each connection's certificate with it).
    pub fn server_config(&self) -> Result<(rustls::ServerConfig, Arc<RoleVerifier>), ServiceError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(RoleVerifier::new(&self.client_ca, provider.clone())?);
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.to_vec()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| ServiceError::Tls(format!("protocol versions: {e}")))?
            .with_client_cert_verifier(verifier.clone())
            .with_single_cert(vec![self.server_cert.clone()], key)
            .map_err(|e| ServiceError::Tls(format!("server certificate: {e}")))?;
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((cfg, verifier))
    }
}

/// The client-certificate verifier of the service (see the module documentation).
#[derive(Debug)]
pub struct RoleVerifier {
    admin: Arc<dyn ClientCertVerifier>,
    provider: Arc<CryptoProvider>,
}

/// `id-ecPublicKey` and `prime256v1`.
const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// `ecdsa-with-SHA256`.
const OID_ECDSA_SHA256: &str = "1.2.840.10045.4.3.2";

impl RoleVerifier {
    /// A verifier trusting `client_ca` for admins.
    pub fn new(
        client_ca: &CertificateDer<'static>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, ServiceError> {
        let mut roots = RootCertStore::empty();
        roots
            .add(client_ca.clone())
            .map_err(|e| ServiceError::Tls(format!("client CA: {e}")))?;
        let admin = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| ServiceError::Tls(format!("client verifier: {e}")))?;
        Ok(Self { admin, provider })
    }

    /// Classifies a presented chain: admin, agent key, or an error naming the refusal.
    pub fn classify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientRole, rustls::Error> {
        if self
            .admin
            .verify_client_cert(end_entity, intermediates, now)
            .is_ok()
        {
            return Ok(ClientRole::Admin);
        }
        if !intermediates.is_empty() {
            return Err(bad_cert(
                "neither a client-ca chain nor a single self-signed agent key",
            ));
        }
        agent_key(end_entity, now).map(ClientRole::AgentKey)
    }
}

fn bad_cert(why: &str) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(ServiceError::Tls(why.to_string())),
    )))
}

/// Checks an agent-key certificate: one self-signed P-256 ECDSA certificate, valid at `now`,
/// whose signature verifies under its own key. Returns the SEC1 public point.
fn agent_key(der: &CertificateDer<'_>, now: UnixTime) -> Result<Vec<u8>, rustls::Error> {
    let (rest, c) = X509Certificate::from_der(der.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    if !rest.is_empty() {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding,
        ));
    }
    let spki = c.public_key();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    if spki.algorithm.algorithm.to_id_string() != OID_EC_PUBLIC_KEY
        || curve.as_deref() != Some(OID_P256)
    {
        return Err(bad_cert("agent key certificate is not an EC P-256 key"));
    }
    if c.signature_algorithm.algorithm.to_id_string() != OID_ECDSA_SHA256 {
        return Err(bad_cert(
            "agent key certificate is not signed ecdsa-with-SHA256",
        ));
    }
    if c.subject() != c.issuer() {
        return Err(bad_cert("agent key certificate is not self-signed"));
    }
    let t = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if t < c.validity().not_before.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidYet,
        ));
    }
    if t > c.validity().not_after.timestamp() {
        return Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::Expired,
        ));
    }
    c.verify_signature(None)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
    let point = spki.subject_public_key.data.to_vec();
    if point.len() != 65 || point.first() != Some(&4) {
        return Err(bad_cert("agent key is not an uncompressed P-256 point"));
    }
    Ok(point)
}

impl ClientCertVerifier for RoleVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[RDn] {
        // No hints: agents present self-signed keys the hint list could not name.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.classify(end_entity, intermediates, now)
            .map(|_| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The server config offers TLS 1.3 only; a TLS 1.2 signature is never acceptable.
        Err(rustls::Error::General(
            "TLS 1.2 is not offered by this server".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The role of an established connection, from its peer certificates (re-classified with
/// the same rules as the handshake).
pub fn connection_role(
    verifier: &RoleVerifier,
    certs: Option<&[CertificateDer<'static>]>,
) -> Result<ClientRole, ServiceError> {
    let certs = certs.ok_or_else(|| ServiceError::Tls("no client certificate".into()))?;
    let (ee, rest) = certs
        .split_first()
        .ok_or_else(|| ServiceError::Tls("no client certificate".into()))?;
    verifier
        .classify(ee, rest, UnixTime::now())
        .map_err(|e| ServiceError::Tls(format!("client certificate: {e}")))
}
