//! Attestation results as EAR (EAT Attestation Results), signed ES384: the token shape
//! Trustee's attestation service and Veraison emit.
//!
//! Claims are the `ear` crate's [`Ear`] (used with `default-features = false`: its `jwt` and
//! `cose` features pull `jsonwebtoken` with aws-lc-rs and OpenSSL). The JWT is built here with
//! ring:
//! ```text
//! token   = b64url(header) "." b64url(payload) "." b64url(signature)
//! header  = {"alg":"ES384","typ":"JWT","kid":"<hex SHA-384 of the signer's SEC1 public key>"}
//! payload = the EAR claims as JSON, eat_profile = "tag:github.com,2023:veraison/ear"
//! signature = ECDSA P-384 over SHA-384 of the ASCII "header.payload", r || s, 96 bytes
//! ```
//! Verification checks, in order: three parts of unpadded base64url; header `alg` is exactly
//! `ES384` and no `crit`; the signature over the received ASCII bytes; the payload is an EAR
//! with our profile; `exp`, if present, is after the caller's `now`.

use crate::error::{Error, Result};
use crate::UnixTime;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
pub use ear::{Appraisal, Ear, TrustTier, TrustVector, VerifierID};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING,
};
use std::fmt;
use zeroize::Zeroizing;

/// The EAT profile of every EAR we issue and accept.
pub const EAR_PROFILE: &str = "tag:github.com,2023:veraison/ear";

const WHAT: &str = "EAR token";

/// An empty EAR with our profile, issued at `iat`, naming the verifier.
pub fn new_ear(iat: UnixTime, developer: &str, build: &str) -> Ear {
    let mut vid = VerifierID::new();
    vid.developer = developer.to_string();
    vid.build = build.to_string();
    Ear {
        profile: EAR_PROFILE.to_string(),
        iat: iat.secs(),
        exp: None,
        vid,
        submods: Default::default(),
        nonce: None,
        status: None,
        raw_evidence: None,
        topology: None,
        extensions: Default::default(),
    }
}

/// Signs EARs with an ECDSA P-384 key.
pub struct EarSigner {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl fmt::Debug for EarSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EarSigner")
            .field("kid", &self.kid)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn kid_of(public_key: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA384, public_key))
}

impl EarSigner {
    /// A signer from a PKCS#8 P-384 private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| Error::malformed("EAR signing key", e.to_string()))?;
        let kid = kid_of(key.public_key().as_ref());
        Ok(Self { key, kid, rng })
    }

    /// A fresh key; returns the signer and its PKCS#8 encoding (zeroized on drop).
    pub fn generate() -> Result<(Self, Zeroizing<Vec<u8>>)> {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).map_err(|_| {
                Error::Io {
                    op: "generating an EAR key",
                    detail: "system RNG failed".into(),
                }
            })?;
        let pkcs8 = Zeroizing::new(pkcs8.as_ref().to_vec());
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// The SEC1 uncompressed public key, to give to [`EarVerifier::new`].
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The key id put in the header: hex SHA-384 of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `ear` into a compact JWT. Fails if the `ear` crate's own validation refuses the
    /// claims (e.g. an empty profile).
    pub fn sign(&self, ear: &Ear) -> Result<String> {
        let header = serde_json::json!({"alg": "ES384", "typ": "JWT", "kid": self.kid});
        let header = serde_json::to_vec(&header)
            .map_err(|e| Error::malformed("EAR header", e.to_string()))?;
        let payload =
            serde_json::to_vec(ear).map_err(|e| Error::malformed("EAR claims", e.to_string()))?;
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig = self
            .key
            .sign(&self.rng, token.as_bytes())
            .map_err(|_| Error::Io {
                op: "signing an EAR",
                detail: "ECDSA signing failed".into(),
            })?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(token)
    }
}

/// Verifies EAR tokens signed by one known key.
#[derive(Clone, Debug)]
pub struct EarVerifier {
    public_key: Vec<u8>,
}

impl EarVerifier {
    /// A verifier for the SEC1 uncompressed P-384 key `public_key`.
    pub fn new(public_key: &[u8]) -> Self {
        Self {
            public_key: public_key.to_vec(),
        }
    }

    /// Runs the checks listed in the module documentation and returns the claims.
    pub fn verify(&self, token: &str, now: UnixTime) -> Result<Ear> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::malformed(WHAT, "not three dot-separated parts"));
        };
        let b64 = |part: &str, name: &'static str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| Error::malformed(WHAT, format!("{name}: {e}")))
        };
        let header: serde_json::Value = serde_json::from_slice(&b64(h, "header")?)
            .map_err(|e| Error::malformed(WHAT, format!("header: {e}")))?;
        let alg = header.get("alg").and_then(|a| a.as_str());
        if alg != Some("ES384") {
            return Err(Error::UnsupportedAlgorithm {
                what: WHAT,
                detail: format!("alg {alg:?}"),
            });
        }
        if header.get("crit").is_some() {
            return Err(Error::UnsupportedAlgorithm {
                what: WHAT,
                detail: "crit header".into(),
            });
        }
        let sig = b64(s, "signature")?;
        if sig.len() != 96 {
            return Err(Error::malformed(
                WHAT,
                format!("signature is {} bytes, not 96", sig.len()),
            ));
        }
        let signed_len = h.len() + 1 + p.len();
        let signed = token
            .as_bytes()
            .get(..signed_len)
            .ok_or_else(|| Error::malformed(WHAT, "truncated"))?;
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &self.public_key)
            .verify(signed, &sig)
            .map_err(|_| Error::BadSignature {
                check: "EAR token signed by the attestation service key",
            })?;

        let mut claims: serde_json::Value = serde_json::from_slice(&b64(p, "payload")?)
            .map_err(|e| Error::malformed(WHAT, format!("payload: {e}")))?;
        // `exp` is checked here against the caller's time; the `ear` crate would check it
        // against the system clock, which breaks offline verification of old tokens.
        let exp = match claims.as_object_mut().and_then(|m| m.remove("exp")) {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| Error::malformed(WHAT, "exp is not an integer"))?,
            ),
        };
        if let Some(exp) = exp {
            if exp <= now.secs() {
                return Err(Error::Expired {
                    cert: "EAR token".into(),
                    now: now.secs(),
                    not_before: i64::MIN,
                    not_after: exp,
                });
            }
        }
        // The `ear` deserializer borrows strings, so it needs bytes rather than a `Value`.
        let claims = serde_json::to_vec(&claims)
            .map_err(|e| Error::malformed(WHAT, format!("claims: {e}")))?;
        let mut ear: Ear = serde_json::from_slice(&claims)
            .map_err(|e| Error::malformed(WHAT, format!("claims: {e}")))?;
        if ear.profile != EAR_PROFILE {
            return Err(Error::malformed(
                WHAT,
                format!("eat_profile {:?} is not {EAR_PROFILE}", ear.profile),
            ));
        }
        ear.exp = exp;
        Ok(ear)
    }
}
