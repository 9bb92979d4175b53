//! The agent's ephemeral P-256 key (the KBS `tee-pubkey`) and JWE decryption of KBS
//! resources: `ECDH-ES+A256KW` key agreement with key wrapping, content `A256GCM`.
//!
//! # What is accepted (JWE JSON flattened serialization, RFC 7516 section 7.2.2)
//! ```text
//! {"protected": b64url(header JSON), "encrypted_key": b64url, "iv": b64url (12 bytes),
//!  "ciphertext": b64url, "tag": b64url (16 bytes), "aad"?: string}
//! header = {"alg": "ECDH-ES+A256KW", "enc": "A256GCM",
//!           "epk": {"kty": "EC", "crv": "P-256", "x": b64url(32), "y": b64url(32)},
//!           "apu"?: b64url, "apv"?: b64url, other members ignored except "crit"/"zip" (refused)}
//! ```
//! Unknown top-level members (an unprotected `header`, for example) are refused.
//!
//! # Decryption
//! 1. Z = ECDH(our secret, epk) (32 bytes, zeroized);
//! 2. KEK = Concat KDF (NIST SP 800-56A, RFC 7518 section 4.6.2) with SHA-256: one round,
//!    `SHA-256(00000001 ‖ Z ‖ len‖"ECDH-ES+A256KW" ‖ len‖apu ‖ len‖apv ‖ 00000100)`;
//! 3. CEK = AES key unwrap (RFC 3394) of `encrypted_key` under KEK; it must be 32 bytes;
//! 4. plaintext = AES-256-GCM open with `iv`, AAD = the ASCII of `protected` exactly as
//!    received (followed by `.` and the `aad` member when present), tag `tag`.
//!
//! kbs-types' `Response` re-encodes the protected header after parsing it, which would break
//! the AAD for any server that does not serialize exactly as serde_json does, so the JWE is
//! parsed here from the bytes as received.

use crate::error::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use p256::{EncodedPoint, PublicKey, SecretKey};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The only key-management algorithm accepted.
pub const ALG: &str = "ECDH-ES+A256KW";
/// The only content-encryption algorithm accepted.
pub const ENC: &str = "A256GCM";
const WHAT: &str = "KBS resource JWE";

/// The `tee-pubkey` JWK of a SEC1 uncompressed P-256 point (65 bytes), as
/// [`EphemeralKey::jwk`] writes it; the point must be on the curve.
pub fn jwk_of_sec1(sec1: &[u8]) -> Result<kbs_types::TeePubKey> {
    let p = EncodedPoint::from_bytes(sec1)
        .map_err(|_| Error::malformed("P-256 public key", "not a SEC1 point"))?;
    let pk = Option::<PublicKey>::from(PublicKey::from_encoded_point(&p))
        .ok_or_else(|| Error::malformed("P-256 public key", "not on the curve"))?;
    let p = pk.to_encoded_point(false);
    let coord =
        |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
    Ok(kbs_types::TeePubKey::EC {
        crv: "P-256".into(),
        alg: ALG.into(),
        x: coord(p.x()),
        y: coord(p.y()),
    })
}

/// The agent's ephemeral ECDH key. Lives for one KBS session; the secret is zeroized on
/// drop (p256's `SecretKey`) and never printed.
pub struct EphemeralKey {
    secret: SecretKey,
}

impl std::fmt::Debug for EphemeralKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EphemeralKey")
            .field("public", &self.jwk())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl EphemeralKey {
    /// A fresh key from the OS CSPRNG (ring's `SystemRandom`).
    pub fn generate() -> Result<Self> {
        let rng = SystemRandom::new();
        // A random 256-bit string is a valid scalar except with probability ~2^-32; retry.
        for _ in 0..8 {
            let mut b = Zeroizing::new([0u8; 32]);
            rng.fill(b.as_mut())
                .map_err(|_| Error::Crypto { what: "system RNG" })?;
            if let Ok(secret) = SecretKey::from_slice(b.as_ref()) {
                return Ok(Self { secret });
            }
        }
        Err(Error::Crypto {
            what: "generating a P-256 key",
        })
    }

    /// The key from a 32-byte big-endian scalar (tests and known-answer vectors).
    pub fn from_scalar(bytes: &[u8]) -> Result<Self> {
        SecretKey::from_slice(bytes)
            .map(|secret| Self { secret })
            .map_err(|_| Error::ApiMisuse {
                reason: "not a valid P-256 scalar".into(),
            })
    }

    /// The public key as the KBS `tee-pubkey` JWK.
    pub fn jwk(&self) -> kbs_types::TeePubKey {
        let p = self.secret.public_key().to_encoded_point(false);
        let coord =
            |c: Option<&p256::FieldBytes>| c.map(|c| URL_SAFE_NO_PAD.encode(c)).unwrap_or_default();
        kbs_types::TeePubKey::EC {
            crv: "P-256".into(),
            alg: ALG.into(),
            x: coord(p.x()),
            y: coord(p.y()),
        }
    }

    /// The SEC1 uncompressed public point (65 bytes: `04 ‖ x ‖ y`).
    pub fn public_sec1(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// The key as PKCS#8 DER (for the TLS stack and the certificate signer; zeroized on drop).
    pub(crate) fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        use p256::pkcs8::EncodePrivateKey as _;
        let doc = self.secret.to_pkcs8_der().map_err(|_| Error::Crypto {
            what: "encoding the P-256 key as PKCS#8",
        })?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The ECDH shared secret with `peer`.
    fn agree(&self, peer: &PublicKey) -> Zeroizing<[u8; 32]> {
        let shared = p256::ecdh::diffie_hellman(self.secret.to_nonzero_scalar(), peer.as_affine());
        let mut z = Zeroizing::new([0u8; 32]);
        z.copy_from_slice(shared.raw_secret_bytes());
        z
    }

    /// Decrypts a KBS resource JWE (see the module documentation for every check).
    pub fn decrypt(&self, jwe: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let j: JweJson =
            serde_json::from_slice(jwe).map_err(|e| Error::malformed(WHAT, e.to_string()))?;
        let header_bytes = b64(&j.protected, "protected")?;
        let h: Header = serde_json::from_slice(&header_bytes)
            .map_err(|e| Error::malformed(WHAT, format!("protected header: {e}")))?;
        if h.alg != ALG {
            return Err(Error::PeerIncompatible {
                what: format!("JWE alg {:?} (only {ALG})", h.alg),
            });
        }
        if h.enc != ENC {
            return Err(Error::PeerIncompatible {
                what: format!("JWE enc {:?} (only {ENC})", h.enc),
            });
        }
        if h.crit.is_some() || h.zip.is_some() {
            return Err(Error::PeerIncompatible {
                what: "JWE header with crit or zip".into(),
            });
        }
        let epk = h.epk.ok_or_else(|| Error::malformed(WHAT, "no epk"))?;
        if epk.kty != "EC" || epk.crv != "P-256" {
            return Err(Error::PeerIncompatible {
                what: format!("epk {} {} (only EC P-256)", epk.kty, epk.crv),
            });
        }
        let peer = public_key(&b64(&epk.x, "epk.x")?, &b64(&epk.y, "epk.y")?)?;
        let apu = h
            .apu
            .as_deref()
            .map(|a| b64(a, "apu"))
            .transpose()?
            .unwrap_or_default();
        let apv = h
            .apv
            .as_deref()
            .map(|a| b64(a, "apv"))
            .transpose()?
            .unwrap_or_default();

        let z = self.agree(&peer);
        let kek = concat_kdf_sha256(z.as_ref(), ALG.as_bytes(), &apu, &apv, 256)?;
        let kek: [u8; 32] = kek.as_slice().try_into().map_err(|_| Error::Crypto {
            what: "Concat KDF length",
        })?;
        let kek = Zeroizing::new(kek);
        let cek = aes_unwrap(&kek, &b64(&j.encrypted_key, "encrypted_key")?)?;

        let iv = b64(&j.iv, "iv")?;
        let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| {
            Error::malformed(WHAT, format!("iv is {} bytes, expected 12", iv.len()))
        })?;
        let tag = b64(&j.tag, "tag")?;
        if tag.len() != 16 {
            return Err(Error::malformed(
                WHAT,
                format!("tag is {} bytes, expected 16", tag.len()),
            ));
        }
        let mut aad = j.protected.clone().into_bytes();
        if let Some(extra) = &j.aad {
            aad.push(b'.');
            aad.extend_from_slice(extra.as_bytes());
        }
        let mut buf = Zeroizing::new(b64(&j.ciphertext, "ciphertext")?);
        buf.extend_from_slice(&tag);
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek.as_ref()).map_err(|_| {
            Error::Crypto {
                what: "AES-256-GCM key",
            }
        })?);
        let len = key
            .open_in_place(nonce, Aad::from(&aad), buf.as_mut_slice())
            .map_err(|_| Error::Crypto {
                what: "JWE AES-256-GCM tag does not verify (wrong key, or ciphertext, iv or protected header altered)",
            })?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JweJson {
    protected: String,
    encrypted_key: String,
    iv: String,
    ciphertext: String,
    tag: String,
    #[serde(default)]
    aad: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    enc: String,
    #[serde(default)]
    epk: Option<Epk>,
    #[serde(default)]
    apu: Option<String>,
    #[serde(default)]
    apv: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    #[serde(default)]
    zip: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Epk {
    kty: String,
    crv: String,
    x: String,
    y: String,
}

fn b64(s: &str, field: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|e| Error::malformed(WHAT, format!("{field}: not base64url: {e}")))
}

/// A P-256 public key from its affine coordinates (refuses points off the curve).
pub(crate) fn public_key(x: &[u8], y: &[u8]) -> Result<PublicKey> {
    if x.len() != 32 || y.len() != 32 {
        return Err(Error::malformed(WHAT, "epk coordinates are not 32 bytes"));
    }
    let point = EncodedPoint::from_affine_coordinates(x.into(), y.into(), false);
    Option::from(PublicKey::from_encoded_point(&point))
        .ok_or_else(|| Error::malformed(WHAT, "epk is not a point on P-256"))
}

/// Concat KDF (NIST SP 800-56A section 5.8.1, as RFC 7518 section 4.6.2 profiles it) with
/// SHA-256: `keydata_bits` of output from Z and OtherInfo = len‖AlgorithmID ‖ len‖apu ‖
/// len‖apv ‖ keydata_bits (32-bit big-endian lengths).
pub fn concat_kdf_sha256(
    z: &[u8],
    algorithm_id: &[u8],
    apu: &[u8],
    apv: &[u8],
    keydata_bits: u32,
) -> Result<Zeroizing<Vec<u8>>> {
    let len32 = |b: &[u8]| -> Result<[u8; 4]> {
        u32::try_from(b.len())
            .map(u32::to_be_bytes)
            .map_err(|_| Error::ApiMisuse {
                reason: "Concat KDF input too long".into(),
            })
    };
    let want = usize::try_from(keydata_bits / 8).unwrap_or(usize::MAX);
    if keydata_bits % 8 != 0 || want > 32 * 4 {
        return Err(Error::ApiMisuse {
            reason: format!("Concat KDF output of {keydata_bits} bits"),
        });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(want + 32));
    let mut counter: u32 = 1;
    while out.len() < want {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        for part in [algorithm_id, apu, apv] {
            ctx.update(&len32(part)?);
            ctx.update(part);
        }
        ctx.update(&keydata_bits.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.saturating_add(1);
    }
    out.truncate(want);
    Ok(out)
}

/// AES-256 key unwrap (RFC 3394) of a wrapped 256-bit key.
pub fn aes_unwrap(kek: &[u8; 32], wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    if wrapped.len() != 40 {
        return Err(Error::malformed(
            WHAT,
            format!(
                "encrypted_key is {} bytes, expected 40 (a wrapped 256-bit key)",
                wrapped.len()
            ),
        ));
    }
    let mut cek = Zeroizing::new([0u8; 32]);
    aes_kw::KekAes256::from(*kek)
        .unwrap(wrapped, cek.as_mut())
        .map_err(|_| Error::Crypto {
            what: "AES key unwrap integrity check (wrong KEK or altered encrypted_key)",
        })?;
    Ok(cek)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn d(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 7518 Appendix C: ECDH-ES between Alice's ephemeral key and Bob's key, Concat KDF
    /// for "A128GCM" with apu "Alice", apv "Bob" gives "VqqN6vgjbSBcIijNcacQGg".
    #[test]
    fn rfc7518_appendix_c_ecdh_and_concat_kdf() {
        let bob =
            EphemeralKey::from_scalar(&d("VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw")).unwrap();
        let alice_pub = public_key(
            &d("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0"),
            &d("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps"),
        )
        .unwrap();
        let z = bob.agree(&alice_pub);
        assert_eq!(
            z.as_ref(),
            &[
                158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49,
                110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196
            ]
        );
        let k = concat_kdf_sha256(z.as_ref(), b"A128GCM", b"Alice", b"Bob", 128).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.encode(&*k), "VqqN6vgjbSBcIijNcacQGg");
        // Bob's public key as a JWK matches the RFC's.
        let kbs_types::TeePubKey::EC { x, y, .. } = bob.jwk() else {
            panic!()
        };
        assert_eq!(x, "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ");
        assert_eq!(y, "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck");
    }

    /// RFC 3394 section 4.6: 256 bits of key data with a 256-bit KEK.
    #[test]
    fn rfc3394_unwrap_256_with_256() {
        let kek: [u8; 32] =
            hex::decode("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
                .unwrap()
                .try_into()
                .unwrap();
        let ct = hex::decode(
            "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21",
        )
        .unwrap();
        let key = aes_unwrap(&kek, &ct).unwrap();
        assert_eq!(
            key.as_ref(),
            hex::decode("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
                .unwrap()
                .as_slice()
        );
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(matches!(aes_unwrap(&kek, &bad), Err(Error::Crypto { .. })));
    }

    #[test]
    fn debug_redacts_the_secret() {
        let k = EphemeralKey::generate().unwrap();
        let s = format!("{k:?}");
        assert!(s.contains("<redacted>"));
        assert!(!s.contains(&hex::encode(k.secret.to_bytes())));
    }
}
