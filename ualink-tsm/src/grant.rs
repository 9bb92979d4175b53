//! ImportGrant issuance: exactly the format of `ualink_kdrv::grant` (tagged COSE_Sign1, ES384,
//! protected `alg` and 16-byte `kid` only, 13 integer-keyed claims in ascending order, shortest
//! form), signed with the TSM key the driver was initialised with. Every grant the TSM issues
//! is re-checked with the driver's own parser (`verify_grant_with_key`) before it leaves.

use ciborium::value::Value;
use coset::{iana, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use ualink_kdrv::crypto::{RingCrypto, TsmPublicKey};
use ualink_kdrv::grant::verify_grant_with_key;
use ualink_kdrv::ids::BufferHandle;

use crate::error::{Result, TsmError};

/// The claims of one grant (field meanings in `ualink_kdrv::grant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantSpec {
    /// Grant id (random, unique).
    pub grant_id: [u8; 16],
    /// Exporter tenant.
    pub exporter_tenant: u32,
    /// Exporter accelerator.
    pub exporter_accel: u16,
    /// Buffer handle.
    pub buffer: BufferHandle,
    /// Importer tenant.
    pub importer_tenant: u32,
    /// Importer OS instance.
    pub importer_os: u32,
    /// Importer accelerator.
    pub importer_accel: u16,
    /// Rights bits (1 read, 2 write, 4 atomic).
    pub rights: u8,
    /// Exporter TDI attestation epoch.
    pub exporter_epoch: u64,
    /// Importer TDI attestation epoch.
    pub importer_epoch: u64,
    /// Not before (fabric ns).
    pub not_before: u64,
    /// Expiry (fabric ns).
    pub expiry: u64,
    /// Single-use nonce.
    pub nonce: [u8; 16],
}

/// Signs grants with the TSM key.
pub struct GrantSigner {
    key: EcdsaKeyPair,
    public: TsmPublicKey,
    kid: [u8; 16],
    rng: SystemRandom,
}

impl core::fmt::Debug for GrantSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GrantSigner")
            .field("kid", &hex::encode(self.kid))
            .field("key", &"<redacted>")
            .finish()
    }
}

impl GrantSigner {
    /// A signer from the TSM's PKCS#8 P-384 key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| TsmError::Identity(format!("grant key: {e}")))?;
        let public = TsmPublicKey::from_sec1(key.public_key().as_ref())
            .ok_or_else(|| TsmError::Identity("grant key refused by the driver".into()))?;
        let kid = public.key_id(&RingCrypto).0;
        Ok(Self {
            key,
            public,
            kid,
            rng,
        })
    }

    /// 16 random bytes (grant ids, nonces).
    pub fn random16(&self) -> Result<[u8; 16]> {
        let mut b = [0u8; 16];
        self.rng
            .fill(&mut b)
            .map_err(|_| TsmError::Identity("system RNG failed".into()))?;
        Ok(b)
    }

    /// Encodes and signs `g`, then checks the result with the driver's parser.
    pub fn sign(&self, g: &GrantSpec) -> Result<Vec<u8>> {
        let i = |k: u64| Value::Integer(k.into());
        let claims = Value::Map(vec![
            (i(1), Value::Bytes(g.grant_id.to_vec())),
            (i(2), i(g.exporter_tenant.into())),
            (i(3), i(g.exporter_accel.into())),
            (i(4), Value::Bytes(g.buffer.0.to_vec())),
            (i(5), i(g.importer_tenant.into())),
            (i(6), i(g.importer_os.into())),
            (i(7), i(g.importer_accel.into())),
            (i(8), i(g.rights.into())),
            (i(9), i(g.exporter_epoch)),
            (i(10), i(g.importer_epoch)),
            (i(11), i(g.not_before)),
            (i(12), i(g.expiry)),
            (i(13), Value::Bytes(g.nonce.to_vec())),
        ]);
        let mut payload = Vec::new();
        ciborium::into_writer(&claims, &mut payload)
            .map_err(|e| TsmError::Identity(format!("encoding grant claims: {e}")))?;
        let mut sig_err = None;
        let cose = CoseSign1Builder::new()
            .protected(
                HeaderBuilder::new()
                    .algorithm(iana::Algorithm::ES384)
                    .key_id(self.kid.to_vec())
                    .build(),
            )
            .payload(payload)
            .create_signature(b"", |tbs| match self.key.sign(&self.rng, tbs) {
                Ok(s) => s.as_ref().to_vec(),
                Err(_) => {
                    sig_err = Some(());
                    Vec::new()
                }
            })
            .build();
        if sig_err.is_some() {
            return Err(TsmError::Identity("grant signature failed".into()));
        }
        let bytes = cose
            .to_tagged_vec()
            .map_err(|e| TsmError::Identity(format!("encoding the grant: {e}")))?;
        verify_grant_with_key(&bytes, &self.public, &RingCrypto).map_err(|e| {
            TsmError::Identity(format!("the driver's parser refuses our grant: {e:?}"))
        })?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grants_parse_with_the_drivers_verifier_and_carry_the_claims() {
        let (_, pkcs8) = ualink_attest::tdi_report::TsmSigningKey::generate().unwrap();
        let s = GrantSigner::from_pkcs8(&pkcs8).unwrap();
        let g = GrantSpec {
            grant_id: [1; 16],
            exporter_tenant: 1,
            exporter_accel: 1,
            buffer: BufferHandle([9; 16]),
            importer_tenant: 2,
            importer_os: 20,
            importer_accel: 3,
            rights: 1,
            exporter_epoch: 4,
            importer_epoch: 5,
            not_before: 10,
            expiry: 20,
            nonce: [7; 16],
        };
        let bytes = s.sign(&g).unwrap();
        let v = verify_grant_with_key(&bytes, &s.public, &RingCrypto).unwrap();
        let c = v.claims();
        assert_eq!(c.importer_accel.get(), 3);
        assert_eq!(c.exporter_epoch, 4);
        assert_eq!(c.importer_epoch, 5);
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(verify_grant_with_key(&bad, &s.public, &RingCrypto).is_err());
    }
}
