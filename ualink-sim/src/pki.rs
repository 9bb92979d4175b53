//! Device PKI: vendor root CA -> model CA -> device leaf, all ECDSA P-384 with SHA-384.
//!
//! One root per vendor and one intermediate per (vendor, model) are shared by every accelerator
//! of that vendor and model, as in real supply chains; each accelerator has its own leaf key and
//! certificate. The chain is what an SPDM responder returns in CERTIFICATE (slot 0) and the root
//! is what a verifier trusts. Leaf certificates carry the DMTF SPDM responder-authentication EKU
//! (DSP0274 id-DMTF-eku-responder-auth, 1.3.6.1.4.1.412.274.3, as libspdm encodes it) and `digitalSignature` only.

use std::collections::BTreeMap;
use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P384_SHA384,
};
use zeroize::Zeroizing;

use crate::error::SimError;

/// DSP0274 id-DMTF-eku-responder-auth arcs.
pub const DMTF_EKU_RESPONDER_AUTH: [u64; 9] = [1, 3, 6, 1, 4, 1, 412, 274, 3];

/// One accelerator's certificates and leaf key.
pub struct DevicePki {
    /// Vendor root certificate (self-signed), DER.
    pub root_der: Vec<u8>,
    /// Model CA certificate (signed by the root), DER.
    pub model_ca_der: Vec<u8>,
    /// Device leaf certificate (signed by the model CA), DER.
    pub leaf_der: Vec<u8>,
    /// The leaf's private key, PKCS#8 DER (for ring's `EcdsaKeyPair::from_pkcs8`).
    leaf_key_pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for DevicePki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevicePki")
            .field("root_der_len", &self.root_der.len())
            .field("model_ca_der_len", &self.model_ca_der.len())
            .field("leaf_der_len", &self.leaf_der.len())
            .field("leaf_key", &"<redacted>")
            .finish()
    }
}

impl DevicePki {
    /// The chain root-first (root, model CA, leaf), as SPDM's certificate chain orders it.
    pub fn chain_der(&self) -> [&[u8]; 3] {
        [&self.root_der, &self.model_ca_der, &self.leaf_der]
    }

    /// The leaf private key (PKCS#8 DER). Only the device's own responder should use it.
    pub fn leaf_key_pkcs8(&self) -> &[u8] {
        &self.leaf_key_pkcs8
    }

    /// Replaces the leaf with one issued by a different, untrusted CA chain of the same shape
    /// (a "cert swap" fault): the chain is well-formed but does not lead to the vendor's root.
    pub fn swap_for_untrusted(
        &mut self,
        vendor: &str,
        model: &str,
        serial: u64,
    ) -> Result<(), SimError> {
        let mut rogue = PkiFactory::default();
        let forged = rogue.issue(&format!("{vendor} (rogue)"), model, serial)?;
        *self = forged;
        Ok(())
    }
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn pki_err(e: rcgen::Error) -> SimError {
    SimError::Pki(e.to_string())
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, org);
    d.push(DnType::CommonName, cn);
    d
}

/// Issues device PKIs, caching vendor roots and model CAs.
#[derive(Default)]
pub struct PkiFactory {
    roots: BTreeMap<String, Ca>,
    models: BTreeMap<(String, String), Ca>,
}

impl fmt::Debug for PkiFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkiFactory")
            .field("vendors", &self.roots.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PkiFactory {
    /// The vendor root certificate (DER), if that vendor has issued anything yet.
    pub fn vendor_root_der(&self, vendor: &str) -> Option<&[u8]> {
        self.roots.get(vendor).map(|c| c.der.as_slice())
    }

    /// All vendor roots (vendor name, DER), for a verifier's trust store.
    pub fn roots(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.roots
            .iter()
            .map(|(v, c)| (v.as_str(), c.der.as_slice()))
    }

    fn root(&mut self, vendor: &str) -> Result<&Ca, SimError> {
        if !self.roots.contains_key(vendor) {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(pki_err)?;
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
            params.distinguished_name = dn(&format!("{vendor} Root CA"), vendor);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let der = params.self_signed(&key).map_err(pki_err)?.der().to_vec();
            self.roots
                .insert(vendor.to_owned(), Ca { params, key, der });
        }
        self.roots
            .get(vendor)
            .ok_or(SimError::Pki("vendor root missing".into()))
    }

    fn model(&mut self, vendor: &str, model: &str) -> Result<&Ca, SimError> {
        let k = (vendor.to_owned(), model.to_owned());
        if !self.models.contains_key(&k) {
            let root = self.root(vendor)?;
            let issuer = Issuer::from_params(&root.params, &root.key);
            let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(pki_err)?;
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
            params.distinguished_name = dn(&format!("{vendor} {model} Device CA"), vendor);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let der = params
                .signed_by(&key, &issuer)
                .map_err(pki_err)?
                .der()
                .to_vec();
            self.models.insert(k.clone(), Ca { params, key, der });
        }
        self.models
            .get(&k)
            .ok_or(SimError::Pki("model CA missing".into()))
    }

    /// Issues a device leaf for `serial` under the (cached) vendor root and model CA.
    pub fn issue(&mut self, vendor: &str, model: &str, serial: u64) -> Result<DevicePki, SimError> {
        let root_der = self.root(vendor)?.der.clone();
        let ca = self.model(vendor, model)?;
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(pki_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_err)?;
        params.distinguished_name = dn(&format!("{vendor} {model} SN {serial:016x}"), vendor);
        params.serial_number = Some(SerialNumber::from_slice(&serial.to_be_bytes()));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(
            DMTF_EKU_RESPONDER_AUTH.to_vec(),
        )];
        let leaf_der = params
            .signed_by(&key, &issuer)
            .map_err(pki_err)?
            .der()
            .to_vec();
        Ok(DevicePki {
            root_der,
            model_ca_der: ca.der.clone(),
            leaf_der,
            leaf_key_pkcs8: Zeroizing::new(key.serialize_der()),
        })
    }
}
