//! COSE_Sign1 with ES384 (ECDSA P-384 over SHA-384, signature `r || s`, 96 bytes), the one
//! implementation behind the audit checkpoints ([`crate::audit::checkpoint`]) and the TDI
//! report bundles ([`crate::tdi_report`]).
//!
//! ```text
//! COSE_Sign1 (untagged) = [ protected: bstr .cbor { 1 (alg): -35 (ES384),
//!                                                  [3 (content type): tstr,]
//!                                                  4 (kid): bstr(48) },
//!                           unprotected: {}, payload: bstr, signature: bstr(96) ]
//! ```
//! The verifier checks alg, no `crit`, the content type (when the format has one), the kid,
//! then the signature over the Sig_structure built from the protected header bytes as
//! received, and returns the payload.

use crate::error::{Error, Result};
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};

/// A P-384 signing key with its RNG. No `Debug`: owners print their own redacted form.
pub(crate) struct Es384Key {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Es384Key {
    /// A key from its PKCS#8 encoding; `what` names it in the error.
    pub(crate) fn from_pkcs8(pkcs8: &[u8], what: &'static str) -> Result<Self> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| Error::malformed(what, e.to_string()))?;
        Ok(Self { key, rng })
    }

    /// A fresh PKCS#8 key (zeroized on drop); `op` names the operation in the error.
    pub(crate) fn generate_pkcs8(op: &'static str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| Error::Io {
                    op,
                    detail: "system RNG failed".into(),
                })?;
        Ok(zeroize::Zeroizing::new(pkcs8.as_ref().to_vec()))
    }

    /// The SEC1 uncompressed public key (97 bytes).
    pub(crate) fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// Signs `payload` into COSE_Sign1 bytes with alg ES384, `kid` and, if given, the content
    /// type. `op` names the operation and `what` the format in errors.
    pub(crate) fn sign1(
        &self,
        payload: Vec<u8>,
        kid: &[u8; 48],
        content_type: Option<&str>,
        op: &'static str,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        let mut protected = HeaderBuilder::new().algorithm(iana::Algorithm::ES384);
        if let Some(ct) = content_type {
            protected = protected.content_type(ct.to_string());
        }
        let protected = protected.key_id(kid.to_vec()).build();
        let mut failed = false;
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .create_signature(b"", |tbs| match self.key.sign(&self.rng, tbs) {
                Ok(sig) => sig.as_ref().to_vec(),
                Err(_) => {
                    failed = true;
                    Vec::new()
                }
            })
            .build();
        if failed {
            return Err(Error::Io {
                op,
                detail: "ECDSA signing failed".into(),
            });
        }
        sign1
            .to_vec()
            .map_err(|e| Error::malformed(what, e.to_string()))
    }
}

/// Why a COSE_Sign1 was refused; each format maps it to its own [`Error`].
#[derive(Debug)]
pub(crate) enum Sign1Failure {
    /// Not a COSE_Sign1 (the decoder's reason).
    Malformed(String),
    /// Another algorithm than ES384 (as found).
    Algorithm(String),
    /// A `crit` header (none is understood).
    Crit,
    /// Not the format's content type.
    ContentType,
    /// Not the expected kid.
    Kid,
    /// The signature does not verify with the key.
    Signature,
    /// No payload (detached).
    Detached,
}

/// Checks a COSE_Sign1 (see the module docs) and returns its payload.
pub(crate) fn verify_sign1(
    cose: &[u8],
    public_key: &[u8],
    kid: &[u8; 48],
    content_type: Option<&str>,
) -> core::result::Result<Vec<u8>, Sign1Failure> {
    let sign1 = CoseSign1::from_slice(cose).map_err(|e| Sign1Failure::Malformed(e.to_string()))?;
    let h = &sign1.protected.header;
    if !matches!(
        h.alg,
        Some(coset::RegisteredLabelWithPrivate::Assigned(
            iana::Algorithm::ES384
        ))
    ) {
        return Err(Sign1Failure::Algorithm(format!("{:?}", h.alg)));
    }
    if !h.crit.is_empty() {
        return Err(Sign1Failure::Crit);
    }
    if let Some(ct) = content_type {
        if h.content_type != Some(coset::ContentType::Text(ct.to_string())) {
            return Err(Sign1Failure::ContentType);
        }
    }
    if h.key_id != kid {
        return Err(Sign1Failure::Kid);
    }
    sign1
        .verify_signature(b"", |sig, tbs| {
            UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, public_key).verify(tbs, sig)
        })
        .map_err(|_| Sign1Failure::Signature)?;
    sign1.payload.ok_or(Sign1Failure::Detached)
}
