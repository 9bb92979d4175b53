//! TSM-signed checkpoints: a COSE_Sign1 (ES384) over the tree size, root hash and time.
//!
//! ```text
//! COSE_Sign1 = [ protected: bstr .cbor {1 (alg): -35 (ES384), 4 (kid): bstr(48) SHA-384 of
//!                the TSM's SEC1 public key}, unprotected: {}, payload: bstr .cbor Checkpoint,
//!                signature: bstr(96) r || s ]
//! Checkpoint = [ tree_size: uint, root: bstr(48), time: int (unix seconds) ]
//! ```
//! The signature is checked over the Sig_structure built from the protected header bytes as
//! received.

use super::merkle::Hash;
use crate::cose::{verify_sign1, Es384Key, Sign1Failure};
use crate::error::{Error, Result};
use ciborium::value::Value;
use std::fmt;

const WHAT: &str = "audit checkpoint";

/// The signed content of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Number of records covered.
    pub tree_size: u64,
    /// RFC 9162 root over those records.
    pub root: Hash,
    /// When it was signed (unix seconds).
    pub time: i64,
}

impl Checkpoint {
    fn to_cbor(self) -> Result<Vec<u8>> {
        let v = Value::Array(vec![
            Value::Integer(self.tree_size.into()),
            Value::Bytes(self.root.to_vec()),
            Value::Integer(self.time.into()),
        ]);
        let mut out = Vec::with_capacity(64);
        ciborium::into_writer(&v, &mut out).map_err(|e| Error::malformed(WHAT, e.to_string()))?;
        Ok(out)
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let mut r = bytes;
        let v: Value =
            ciborium::from_reader(&mut r).map_err(|e| Error::malformed(WHAT, e.to_string()))?;
        if !r.is_empty() {
            return Err(Error::malformed(WHAT, "trailing bytes in payload"));
        }
        let bad = || Error::malformed(WHAT, "payload is not [uint, bstr(48), int]");
        let Value::Array(items) = v else {
            return Err(bad());
        };
        let [Value::Integer(size), Value::Bytes(root), Value::Integer(time)] = items.as_slice()
        else {
            return Err(bad());
        };
        Ok(Self {
            tree_size: u64::try_from(*size).map_err(|_| bad())?,
            root: <[u8; 48]>::try_from(root.as_slice()).map_err(|_| bad())?,
            time: i64::try_from(*time).map_err(|_| bad())?,
        })
    }
}

/// The TSM's checkpoint signing key.
pub struct CheckpointSigner {
    key: Es384Key,
    kid: [u8; 48],
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("kid", &hex::encode(self.kid))
            .field("key", &"<redacted>")
            .finish()
    }
}

fn kid_of(public_key: &[u8]) -> [u8; 48] {
    let mut k = [0u8; 48];
    k.copy_from_slice(ring::digest::digest(&ring::digest::SHA384, public_key).as_ref());
    k
}

impl CheckpointSigner {
    /// A signer from a PKCS#8 P-384 key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let key = Es384Key::from_pkcs8(pkcs8, "checkpoint signing key")?;
        let kid = kid_of(key.public_key());
        Ok(Self { key, kid })
    }

    /// A fresh key; returns the signer and its PKCS#8 encoding (zeroized on drop).
    pub fn generate() -> Result<(Self, zeroize::Zeroizing<Vec<u8>>)> {
        let pkcs8 = Es384Key::generate_pkcs8("generating a checkpoint key")?;
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// The SEC1 public key, for [`CheckpointVerifier::new`].
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key()
    }

    /// A verifier for this signer's checkpoints.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::new(self.public_key())
    }

    /// Signs `cp` into COSE_Sign1 bytes.
    pub fn sign(&self, cp: &Checkpoint) -> Result<Vec<u8>> {
        self.key
            .sign1(cp.to_cbor()?, &self.kid, None, "signing a checkpoint", WHAT)
    }
}

/// Verifies checkpoints signed by one TSM key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointVerifier {
    public_key: Vec<u8>,
    kid: [u8; 48],
}

impl CheckpointVerifier {
    /// A verifier from a key file: hex of the SEC1 uncompressed point, or a PEM
    /// `PUBLIC KEY` (SubjectPublicKeyInfo, id-ecPublicKey on P-384).
    pub fn from_key_file(bytes: &[u8]) -> Result<Self> {
        let what = "TSM public key";
        let text = core::str::from_utf8(bytes).map_err(|_| Error::malformed(what, "not text"))?;
        if text.contains("-----BEGIN") {
            let p = pem::parse(text).map_err(|e| Error::malformed(what, e.to_string()))?;
            if p.tag() != "PUBLIC KEY" {
                return Err(Error::malformed(what, format!("PEM block {:?}", p.tag())));
            }
            use x509_parser::prelude::FromDer;
            let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(p.contents())
                .map_err(|e| Error::malformed(what, e.to_string()))?;
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|a| a.as_oid().ok());
            let p384 = x509_parser::der_parser::oid!(1.3.132 .0 .34);
            if !rest.is_empty() || curve != Some(p384) {
                return Err(Error::malformed(what, "not a P-384 SubjectPublicKeyInfo"));
            }
            return Ok(Self::new(&spki.subject_public_key.data));
        }
        let sec1 = hex::decode(text.trim()).map_err(|e| Error::malformed(what, e.to_string()))?;
        if sec1.len() != 97 || sec1.first() != Some(&0x04) {
            return Err(Error::malformed(
                what,
                "not a 97-byte uncompressed P-384 point",
            ));
        }
        Ok(Self::new(&sec1))
    }

    /// A verifier for the SEC1 P-384 public key `public_key`.
    pub fn new(public_key: &[u8]) -> Self {
        Self {
            public_key: public_key.to_vec(),
            kid: kid_of(public_key),
        }
    }

    /// The SEC1 P-384 public key checkpoints are verified with.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// Decodes and verifies a signed checkpoint: alg ES384, kid equal to this key's, the
    /// signature over the received protected header and payload, and the payload shape.
    pub fn verify(&self, cose: &[u8]) -> Result<Checkpoint> {
        let payload =
            verify_sign1(cose, &self.public_key, &self.kid, None).map_err(|f| match f {
                Sign1Failure::Malformed(e) => Error::malformed(WHAT, e),
                Sign1Failure::Algorithm(detail) => {
                    Error::UnsupportedAlgorithm { what: WHAT, detail }
                }
                Sign1Failure::Crit => Error::UnsupportedAlgorithm {
                    what: WHAT,
                    detail: "crit header".into(),
                },
                Sign1Failure::Kid => Error::BadSignature {
                    check: "checkpoint kid is not the TSM key",
                },
                Sign1Failure::Signature => Error::BadSignature {
                    check: "checkpoint signed by the TSM key",
                },
                // No content type is required of checkpoints, so this one cannot occur.
                Sign1Failure::ContentType => Error::malformed(WHAT, "content type"),
                Sign1Failure::Detached => Error::malformed(WHAT, "detached payload"),
            })?;
        Checkpoint::from_cbor(&payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_signs_verifies_and_refuses_changes() {
        let (s, _) = CheckpointSigner::generate().unwrap();
        let cp = Checkpoint {
            tree_size: 42,
            root: [7; 48],
            time: 1_700_000_000,
        };
        let bytes = s.sign(&cp).unwrap();
        assert_eq!(s.verifier().verify(&bytes).unwrap(), cp);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(s.verifier().verify(&b).is_err(), "byte {i}");
        }
        let (other, _) = CheckpointSigner::generate().unwrap();
        assert!(other.verifier().verify(&bytes).is_err());
    }
}
