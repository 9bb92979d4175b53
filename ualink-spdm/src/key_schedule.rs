//! The SPDM 1.2/1.3 key schedule (DSP0274 §"Key schedule"), byte-exact with libspdm.
//!
//! ```text
//! BinConcat(L, label, ctx) = L u16 LE ‖ "spdm1.N " ‖ label ‖ ctx
//! HandshakeSecret   = HKDF-Extract(salt = 0^H, ikm = ECDHE shared secret)
//! req/rsp hs secret = HKDF-Expand(HandshakeSecret, BinConcat(H, "req hs data"/"rsp hs data", Hash(TH1)), H)
//! finished_key      = HKDF-Expand(secret, BinConcat(H, "finished"), H)
//! key / iv          = HKDF-Expand(secret, BinConcat(32, "key"), 32) / (…BinConcat(12, "iv"), 12)
//! salt_1            = HKDF-Expand(HandshakeSecret, BinConcat(H, "derived"), H)
//! MasterSecret      = HKDF-Extract(salt = salt_1, ikm = 0^H)
//! req/rsp data      = HKDF-Expand(MasterSecret, BinConcat(H, "req app data"/"rsp app data", Hash(TH2)), H)
//! export master     = HKDF-Expand(MasterSecret, BinConcat(H, "exp master", Hash(TH2)), H)
//! KEY_UPDATE        = HKDF-Expand(old data secret, BinConcat(H, "traffic upd"), H)
//! VerifyData        = HMAC(finished_key, Hash(TH))   (over the hash, libspdm #1136)
//! ```
//!
//! The types form a one-way chain: [`HandshakeSecret`] → [`HandshakeSecrets`] (per direction)
//! and [`MasterSecret`] → [`DataSecrets`] → [`TrafficSecret::update`]. Every secret is held in
//! [`SecretBytes`] (zeroized on drop, redacted in `Debug`).

use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

use crate::algo::{AeadAlg, HashAlg, SpdmVersion};
use crate::crypto::{hkdf_expand, hkdf_extract, hmac, hmac_verify, SecretBytes};
use crate::error::{Error, PeerMisbehaved, Result};

/// Label for the salt of the master secret.
pub const LABEL_DERIVED: &str = "derived";
/// Label of the request-direction handshake secret.
pub const LABEL_REQ_HS: &str = "req hs data";
/// Label of the response-direction handshake secret.
pub const LABEL_RSP_HS: &str = "rsp hs data";
/// Label of the request-direction data secret.
pub const LABEL_REQ_APP: &str = "req app data";
/// Label of the response-direction data secret.
pub const LABEL_RSP_APP: &str = "rsp app data";
/// Label of an AEAD key.
pub const LABEL_KEY: &str = "key";
/// Label of an AEAD IV (salt).
pub const LABEL_IV: &str = "iv";
/// Label of a finished key.
pub const LABEL_FINISHED: &str = "finished";
/// Label of the export master secret.
pub const LABEL_EXP_MASTER: &str = "exp master";
/// Label of KEY_UPDATE.
pub const LABEL_TRAFFIC_UPD: &str = "traffic upd";

/// AEAD IV length (AES-256-GCM).
pub const IV_LEN: usize = 12;

/// `BinConcat(length, label, context)` = `length u16 LE ‖ version label ‖ label ‖ context`.
pub fn bin_concat(version: SpdmVersion, length: u16, label: &str, context: &[u8]) -> Vec<u8> {
    let vl = version.label().as_bytes();
    let mut out = Vec::with_capacity(2 + vl.len() + label.len() + context.len());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(vl);
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(context);
    out
}

/// HKDF-Expand(secret, BinConcat(len, label, context), len).
fn expand_label(
    version: SpdmVersion,
    hash: HashAlg,
    secret: &[u8],
    label: &str,
    context: &[u8],
    len: usize,
) -> Result<SecretBytes> {
    let l = u16::try_from(len).map_err(|_| Error::ApiMisuse("expand length over u16"))?;
    let info = bin_concat(version, l, label, context);
    hkdf_expand(hash, secret, &info, len)
}

fn check_hash_len(hash: HashAlg, th: &[u8]) -> Result<()> {
    if th.len() == hash.len() {
        Ok(())
    } else {
        Err(Error::ApiMisuse(
            "transcript hash length differs from the negotiated hash",
        ))
    }
}

/// The parameters every derivation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleParams {
    /// Negotiated SPDM version (selects the BinConcat label).
    pub version: SpdmVersion,
    /// Negotiated BaseHashAlgo.
    pub hash: HashAlg,
    /// Negotiated AEAD.
    pub aead: AeadAlg,
}

/// The handshake secret of one session.
pub struct HandshakeSecret {
    params: ScheduleParams,
    secret: SecretBytes,
}

impl HandshakeSecret {
    /// `HKDF-Extract(0^H, ikm)`; `ikm` is the ECDHE shared secret (or, for PSK sessions, the PSK).
    pub fn new(params: ScheduleParams, ikm: &[u8]) -> Self {
        let zeros = [0u8; crate::crypto::MAX_HASH_LEN];
        let salt = zeros.get(..params.hash.len()).unwrap_or(&zeros);
        Self {
            params,
            secret: hkdf_extract(params.hash, salt, ikm),
        }
    }

    /// The parameters.
    pub fn params(&self) -> ScheduleParams {
        self.params
    }

    /// The secret itself (for known-answer tests).
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// The request- and response-direction handshake secrets from `th1_hash` = Hash(TH1).
    pub fn handshake_secrets(&self, th1_hash: &[u8]) -> Result<HandshakeSecrets> {
        let p = self.params;
        check_hash_len(p.hash, th1_hash)?;
        let h = p.hash.len();
        let d = |label| expand_label(p.version, p.hash, self.secret.expose(), label, th1_hash, h);
        Ok(HandshakeSecrets {
            request: TrafficSecret {
                params: p,
                secret: d(LABEL_REQ_HS)?,
            },
            response: TrafficSecret {
                params: p,
                secret: d(LABEL_RSP_HS)?,
            },
        })
    }

    /// The master secret: `Extract(salt = Expand(HS, BinConcat(H, "derived")), 0^H)`.
    pub fn master_secret(&self) -> Result<MasterSecret> {
        let p = self.params;
        let h = p.hash.len();
        let salt = expand_label(
            p.version,
            p.hash,
            self.secret.expose(),
            LABEL_DERIVED,
            &[],
            h,
        )?;
        let zeros = [0u8; crate::crypto::MAX_HASH_LEN];
        let ikm = zeros.get(..h).unwrap_or(&zeros);
        Ok(MasterSecret {
            params: p,
            secret: hkdf_extract(p.hash, salt.expose(), ikm),
        })
    }
}

impl fmt::Debug for HandshakeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeSecret")
            .field("params", &self.params)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The master secret of one session.
pub struct MasterSecret {
    params: ScheduleParams,
    secret: SecretBytes,
}

impl MasterSecret {
    /// The secret itself (for known-answer tests).
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// The request- and response-direction data secrets from `th2_hash` = Hash(TH2).
    pub fn data_secrets(&self, th2_hash: &[u8]) -> Result<DataSecrets> {
        let p = self.params;
        check_hash_len(p.hash, th2_hash)?;
        let h = p.hash.len();
        let d = |label| expand_label(p.version, p.hash, self.secret.expose(), label, th2_hash, h);
        Ok(DataSecrets {
            request: TrafficSecret {
                params: p,
                secret: d(LABEL_REQ_APP)?,
            },
            response: TrafficSecret {
                params: p,
                secret: d(LABEL_RSP_APP)?,
            },
        })
    }

    /// The export master secret from `th2_hash`.
    pub fn export_master_secret(&self, th2_hash: &[u8]) -> Result<SecretBytes> {
        let p = self.params;
        check_hash_len(p.hash, th2_hash)?;
        expand_label(
            p.version,
            p.hash,
            self.secret.expose(),
            LABEL_EXP_MASTER,
            th2_hash,
            p.hash.len(),
        )
    }
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterSecret")
            .field("params", &self.params)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The per-direction secrets of the handshake phase (FINISH/FINISH_RSP when encrypted).
#[derive(Debug, Clone)]
pub struct HandshakeSecrets {
    /// Requester → responder.
    pub request: TrafficSecret,
    /// Responder → requester.
    pub response: TrafficSecret,
}

/// The per-direction secrets of the application phase.
#[derive(Debug, Clone)]
pub struct DataSecrets {
    /// Requester → responder.
    pub request: TrafficSecret,
    /// Responder → requester.
    pub response: TrafficSecret,
}

/// One direction's secret (handshake or data). Keys, IV and finished key derive from it.
#[derive(Clone)]
pub struct TrafficSecret {
    params: ScheduleParams,
    secret: SecretBytes,
}

impl TrafficSecret {
    /// The parameters.
    pub fn params(&self) -> ScheduleParams {
        self.params
    }

    /// The secret itself (for known-answer tests).
    pub fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// `finished_key = Expand(secret, BinConcat(H, "finished"), H)` (handshake secrets only).
    pub fn finished_key(&self) -> Result<FinishedKey> {
        let p = self.params;
        let h = p.hash.len();
        Ok(FinishedKey {
            hash: p.hash,
            key: expand_label(
                p.version,
                p.hash,
                self.secret.expose(),
                LABEL_FINISHED,
                &[],
                h,
            )?,
        })
    }

    /// The AEAD key and IV of this direction.
    pub fn aead_key_iv(&self) -> Result<AeadKeyIv> {
        let p = self.params;
        let key = expand_label(
            p.version,
            p.hash,
            self.secret.expose(),
            LABEL_KEY,
            &[],
            p.aead.key_len(),
        )?;
        let iv_bytes = expand_label(
            p.version,
            p.hash,
            self.secret.expose(),
            LABEL_IV,
            &[],
            IV_LEN,
        )?;
        let mut iv = Zeroizing::new([0u8; IV_LEN]);
        if iv_bytes.len() != IV_LEN {
            return Err(Error::Crypto("IV derivation produced a wrong length"));
        }
        iv.copy_from_slice(iv_bytes.expose());
        Ok(AeadKeyIv {
            aead: p.aead,
            key,
            iv,
        })
    }

    /// KEY_UPDATE: `Expand(secret, BinConcat(H, "traffic upd"), H)` (data secrets only).
    pub fn update(&self) -> Result<TrafficSecret> {
        let p = self.params;
        Ok(TrafficSecret {
            params: p,
            secret: expand_label(
                p.version,
                p.hash,
                self.secret.expose(),
                LABEL_TRAFFIC_UPD,
                &[],
                p.hash.len(),
            )?,
        })
    }
}

impl fmt::Debug for TrafficSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrafficSecret")
            .field("params", &self.params)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// One direction's AEAD key and IV (the "salt" XORed with the sequence number).
pub struct AeadKeyIv {
    /// The AEAD.
    pub aead: AeadAlg,
    /// The key.
    pub key: SecretBytes,
    /// The IV.
    pub iv: Zeroizing<[u8; IV_LEN]>,
}

impl fmt::Debug for AeadKeyIv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKeyIv")
            .field("aead", &self.aead)
            .field("key", &"<redacted>")
            .field("iv", &"<redacted>")
            .finish()
    }
}

/// A finished key: the HMAC key of VerifyData.
#[derive(Clone)]
pub struct FinishedKey {
    hash: HashAlg,
    key: SecretBytes,
}

impl FinishedKey {
    /// The key itself (for known-answer tests).
    pub fn secret(&self) -> &SecretBytes {
        &self.key
    }

    /// `VerifyData = HMAC(finished_key, transcript_hash)` where `transcript_hash` = Hash(TH).
    pub fn verify_data(&self, transcript_hash: &[u8]) -> Vec<u8> {
        hmac(self.hash, self.key.expose(), transcript_hash)
            .expose()
            .to_vec()
    }

    /// Checks a received VerifyData in constant time; `what` names the carrying message.
    pub fn check(&self, transcript_hash: &[u8], received: &[u8], what: &'static str) -> Result<()> {
        if hmac_verify(self.hash, self.key.expose(), transcript_hash, received) {
            Ok(())
        } else {
            Err(PeerMisbehaved::VerifyDataMismatch { what }.into())
        }
    }
}

impl fmt::Debug for FinishedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FinishedKey")
            .field("hash", &self.hash)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// `VerifyData = HMAC(finished_key, transcript_hash)` (HMAC over the hash of the transcript).
pub fn verify_data(finished_key: &FinishedKey, transcript_hash: &[u8]) -> Vec<u8> {
    finished_key.verify_data(transcript_hash)
}
