//! The agent's TLS identity and the certificate checks it makes itself.
//!
//! One ephemeral P-256 key per agent run is at once
//! - the KBS `tee-pubkey` its CVM evidence binds (through the RCAR report_data), and
//! - the key of the self-signed certificate it presents as a TLS client to the TSM and on
//!   both ends of agent-to-agent ([`crate::mesh`]) connections.
//!
//! So whoever checks the evidence knows the TLS channel ends in the attested CVM.
//!
//! Verifiers here:
//! - [`SelfSignedVerifier`]: a TLS 1.3 peer presents exactly one certificate with an EC P-256
//!   key, and proves possession of it in the handshake; *who* it is is decided afterwards,
//!   by evidence binding that key ([`crate::mesh`]).
//! - [`BootstrapVerifier`]: accepts any server chain (still checking the handshake
//!   signature) and records it; used only for `GET /ualink/v0/tsm`, whose answer
//!   authenticates itself (the TSM evidence binds the CA key), after which every connection
//!   is checked against that CA ([`crate::tsm::TsmTrust`]).

use crate::error::{Error, Result};
use crate::kbs::jwe::EphemeralKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The ring crypto provider (the only one the crate uses).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The agent's key and its self-signed certificate. `Debug` shows the public key only.
pub struct AgentIdentity {
    key: Arc<EphemeralKey>,
    cert_der: CertificateDer<'static>,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for AgentIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentIdentity")
            .field("public_key", &hex::encode(self.public_sec1()))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AgentIdentity {
    /// A fresh key (OS CSPRNG) and a self-signed certificate for it with common name `name`.
    pub fn generate(name: &str) -> Result<Self> {
        Self::from_key(EphemeralKey::generate()?, name)
    }

    /// The identity for an existing key.
    pub fn from_key(key: EphemeralKey, name: &str) -> Result<Self> {
        let pkcs8 = key.pkcs8_der()?;
        let rc = |e: rcgen::Error| Error::ApiMisuse {
            reason: format!("making the agent certificate: {e}"),
        };
        let kp = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_ECDSA_P256_SHA256,
        )
        .map_err(rc)?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(rc)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&kp).map_err(rc)?;
        Ok(Self {
            key: Arc::new(key),
            cert_der: cert.der().clone(),
            pkcs8,
        })
    }

    /// The key (the KBS `tee-pubkey`; also decrypts resources sent to it).
    pub fn key(&self) -> &Arc<EphemeralKey> {
        &self.key
    }

    /// The SEC1 uncompressed public key (65 bytes).
    pub fn public_sec1(&self) -> Vec<u8> {
        self.key.public_sec1()
    }

    /// The self-signed certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        self.cert_der.as_ref()
    }

    /// The certificate chain to present (the one self-signed certificate).
    pub(crate) fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert_der.clone()]
    }

    /// The private key for rustls (a copy; rustls zeroizes its own).
    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.to_vec()))
    }
}

/// The subjectPublicKey bits of a certificate (for EC keys: the SEC1 point).
pub fn cert_public_key(der: &[u8]) -> Result<Vec<u8>> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::malformed("X.509 certificate", e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::malformed(
            "X.509 certificate",
            "trailing bytes after the certificate",
        ));
    }
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// The public key of a certificate if it is an EC P-256 key (65-byte SEC1 point).
fn p256_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let spki = cert.public_key();
    let ec = x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY;
    let p256 = x509_parser::oid_registry::OID_EC_P256;
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    let key = spki.subject_public_key.data.to_vec();
    (spki.algorithm.algorithm == ec
        && curve.as_ref() == Some(&p256)
        && key.len() == 65
        && key.first() == Some(&4))
    .then_some(key)
}

fn tls_err(e: impl std::fmt::Display) -> rustls::Error {
    rustls::Error::General(e.to_string())
}

/// Accepts a peer that presents exactly one certificate with an EC P-256 key and signs the
/// TLS 1.3 handshake with it. It authenticates nothing else: the caller binds the key to
/// evidence after the handshake.
#[derive(Debug)]
pub struct SelfSignedVerifier {
    provider: Arc<CryptoProvider>,
}

impl SelfSignedVerifier {
    /// A verifier using the ring provider's signature algorithms.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            provider: provider(),
        })
    }

    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            return Err(tls_err(
                "an agent presents one self-signed certificate, not a chain",
            ));
        }
        p256_key(end_entity.as_ref())
            .map(|_| ())
            .ok_or_else(|| tls_err("the agent certificate's key is not EC P-256"))
    }
}

impl ServerCertVerifier for SelfSignedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls_err("agent-to-agent TLS is TLS 1.3 only"))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

impl ClientCertVerifier for SelfSignedVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls_err("agent-to-agent TLS is TLS 1.3 only"))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ECDSA_NISTP256_SHA256]
    }
}

/// Accepts any server certificate chain (checking only that the server signs the handshake
/// with the end-entity key) and records the chain it saw. Only for requests whose answer
/// authenticates itself; see the module documentation.
#[derive(Debug)]
pub struct BootstrapVerifier {
    provider: Arc<CryptoProvider>,
    seen: Mutex<Vec<Vec<u8>>>,
}

impl BootstrapVerifier {
    /// A fresh verifier.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            provider: provider(),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// The server chain of the last handshake (end entity first), DER.
    pub fn seen_chain(&self) -> Vec<Vec<u8>> {
        self.seen.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl ServerCertVerifier for BootstrapVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut s) = self.seen.lock() {
            *s = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.as_ref().to_vec())
                .collect();
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
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

/// The EC P-256 key of the single certificate a peer presented, or an error naming why not.
pub fn peer_p256_key(certs: Option<&[CertificateDer<'_>]>) -> Result<Vec<u8>> {
    match certs {
        Some([one]) => p256_key(one.as_ref()).ok_or_else(|| {
            Error::misbehaved("the peer's certificate does not carry an EC P-256 key")
        }),
        Some(_) => Err(Error::misbehaved(
            "the peer presented a chain, not one self-signed certificate",
        )),
        None => Err(Error::misbehaved("the peer presented no certificate")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn certificate_carries_the_tee_pubkey() {
        let id = AgentIdentity::generate("agent").unwrap();
        let k = cert_public_key(id.cert_der()).unwrap();
        assert_eq!(k, id.public_sec1());
        assert_eq!(p256_key(id.cert_der()).unwrap(), id.public_sec1());
        let dbg = format!("{id:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&hex::encode(id.key().pkcs8_der().unwrap().as_slice())));
    }

    #[test]
    fn peer_key_needs_exactly_one_p256_cert() {
        let id = AgentIdentity::generate("agent").unwrap();
        let c = CertificateDer::from(id.cert_der().to_vec());
        assert!(peer_p256_key(Some(std::slice::from_ref(&c))).is_ok());
        assert!(peer_p256_key(Some(&[c.clone(), c.clone()])).is_err());
        assert!(peer_p256_key(None).is_err());
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let other = rcgen::CertificateParams::new(vec!["x".to_string()])
            .unwrap()
            .self_signed(&p384)
            .unwrap();
        assert!(peer_p256_key(Some(std::slice::from_ref(other.der()))).is_err());
    }
}
