//! Hex-string types used in input documents.
//!
//! Inputs must round-trip through JSON byte for byte (the auditor replays them from the audit
//! log), so hex is canonical: lowercase, even length, no prefix. Uppercase or `0x` is refused
//! on deserialization rather than normalised.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn decode_canonical(s: &str) -> Result<Vec<u8>, String> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("hex must be lowercase".into());
    }
    hex::decode(s).map_err(|e| format!("bad hex: {e}"))
}

/// Bytes carried as a lowercase hex string.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for HexBytes {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl From<&[u8]> for HexBytes {
    fn from(v: &[u8]) -> Self {
        Self(v.to_vec())
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode_canonical(&s)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A SHA-384 value (48 bytes) carried as 96 lowercase hex digits: certificate and key
/// fingerprints, report digests, policy digests.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha384(pub [u8; 48]);

impl Sha384 {
    /// SHA-384 of `data`.
    pub fn of(data: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA384, data);
        let mut out = [0u8; 48];
        // A SHA-384 digest is always 48 bytes; zip keeps this panic-free regardless.
        for (o, i) in out.iter_mut().zip(d.as_ref()) {
            *o = *i;
        }
        Self(out)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }
}

impl core::fmt::Debug for Sha384 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "sha384:{}", hex::encode(self.0))
    }
}

impl core::fmt::Display for Sha384 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl From<[u8; 48]> for Sha384 {
    fn from(v: [u8; 48]) -> Self {
        Self(v)
    }
}

impl Serialize for Sha384 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for Sha384 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = decode_canonical(&s).map_err(serde::de::Error::custom)?;
        <[u8; 48]>::try_from(v.as_slice())
            .map(Self)
            .map_err(|_| serde::de::Error::custom(format!("SHA-384 is 48 bytes, got {}", v.len())))
    }
}
