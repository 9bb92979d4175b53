//! Audit records: one per decision the TSM makes, CBOR-encoded.
//!
//! Record schema (a CBOR map with these text keys, in this order; unknown keys are refused):
//! ```text
//! time      int          unix seconds when the decision was made
//! kind      text         the decision type (see DecisionKind: "device-appraisal", ...)
//! subject   text         what was decided about (device id, TDI id, grant id, tenant), <= 256 bytes
//! inputs    [ {name: text, sha384: bstr(48)} ]   digests of every input (evidence, requests)
//! keys      [ {name: text, sha384: bstr(48)} ]   fingerprints of keys involved (never key bytes)
//! policy    bstr(48) / null                      SHA-384 of the policy bundle decided under
//! rules     [ text ]     names of the rules that decided
//! outcome   text         "allow" | "deny" | "info"
//! reasons   [ text ]     human-readable reasons, each <= 1024 bytes
//! ```
//! The sequence number and the hash chain are not in the record: they frame it in the log
//! entry (see [`super::file`]).
//!
//! Records never contain key bytes: digests and fingerprints are [`Digest384`] values, which
//! can only be produced by hashing (there is no constructor from 48 raw bytes), so a private
//! key (48 bytes for P-384) cannot be passed where a digest is expected.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Maximum length of `subject` and each name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Maximum length of each reason, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

/// A SHA-384 digest produced by hashing; the only way to put 48 bytes in a record.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Digest384(#[serde(with = "bytes48")] [u8; 48]);

impl Digest384 {
    /// SHA-384 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_digest(&ring::digest::digest(&ring::digest::SHA384, data))
            .unwrap_or(Self([0; 48]))
    }

    /// Takes a digest ring computed (ring digests cannot be forged from raw bytes). Fails if
    /// it is not SHA-384.
    pub fn from_digest(d: &ring::digest::Digest) -> Result<Self> {
        <[u8; 48]>::try_from(d.as_ref())
            .map(Self)
            .map_err(|_| Error::ApiMisuse {
                reason: "audit digests must be SHA-384",
            })
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }
}

impl core::fmt::Debug for Digest384 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "sha384:{}", hex::encode(self.0))
    }
}

mod bytes48 {
    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 48], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 48], D::Error> {
        let b: serde_bytes_like::Bytes = serde::Deserialize::deserialize(d)?;
        <[u8; 48]>::try_from(b.0.as_slice())
            .map_err(|_| D::Error::custom(format!("digest is {} bytes, not 48", b.0.len())))
    }

    mod serde_bytes_like {
        /// A byte string that deserializes from a CBOR bstr.
        pub(crate) struct Bytes(pub(crate) Vec<u8>);
        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                        f.write_str("a byte string")
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                        Ok(Bytes(v.to_vec()))
                    }
                    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    }
}

/// The decision types the TSM records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// A device's SPDM evidence was appraised.
    DeviceAppraisal,
    /// A tenant CVM accepted (or refused) a TDI.
    TdiAcceptance,
    /// A cross-tenant or cross-OS share was allowed or denied.
    Share,
    /// A grant or attestation was revoked.
    Revocation,
    /// Link or session keys were rotated.
    KeyRotation,
    /// A CVM's own evidence was appraised.
    CvmAppraisal,
    /// The policy bundle changed.
    PolicyChange,
}

/// The outcome of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
    /// Informational (no decision, e.g. a rotation completed).
    Info,
}

/// A named digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedDigest {
    /// What was hashed ("spdm-evidence", "tdi-report", "request", "tsm-signing-key", ...).
    pub name: String,
    /// Its SHA-384.
    pub sha384: Digest384,
}

/// One audit record. Build it with [`AuditRecord::new`] and the `with_*` methods; fields are
/// read-only so a decoded record cannot be edited and re-appended unnoticed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    time: i64,
    kind: DecisionKind,
    subject: String,
    inputs: Vec<NamedDigest>,
    keys: Vec<NamedDigest>,
    policy: Option<Digest384>,
    rules: Vec<String>,
    outcome: Outcome,
    reasons: Vec<String>,
}

fn check_len(s: &str, max: usize, what: &'static str) -> Result<()> {
    if s.len() > max {
        return Err(Error::ApiMisuse { reason: what });
    }
    Ok(())
}

impl AuditRecord {
    /// A record of a `kind` decision about `subject` at `time` with `outcome`.
    pub fn new(
        time: crate::UnixTime,
        kind: DecisionKind,
        subject: &str,
        outcome: Outcome,
    ) -> Result<Self> {
        check_len(subject, MAX_NAME_LEN, "audit subject longer than 256 bytes")?;
        Ok(Self {
            time: time.secs(),
            kind,
            subject: subject.to_string(),
            inputs: Vec::new(),
            keys: Vec::new(),
            policy: None,
            rules: Vec::new(),
            outcome,
            reasons: Vec::new(),
        })
    }

    /// Adds the digest of an input.
    pub fn with_input(mut self, name: &str, digest: Digest384) -> Result<Self> {
        check_len(name, MAX_NAME_LEN, "audit input name longer than 256 bytes")?;
        self.inputs.push(NamedDigest {
            name: name.to_string(),
            sha384: digest,
        });
        Ok(self)
    }

    /// Adds the fingerprint (SHA-384 of the public key or certificate) of a key involved.
    pub fn with_key_fingerprint(mut self, name: &str, fingerprint: Digest384) -> Result<Self> {
        check_len(name, MAX_NAME_LEN, "audit key name longer than 256 bytes")?;
        self.keys.push(NamedDigest {
            name: name.to_string(),
            sha384: fingerprint,
        });
        Ok(self)
    }

    /// Sets the digest of the policy bundle the decision was made under.
    pub fn with_policy(mut self, digest: Digest384) -> Self {
        self.policy = Some(digest);
        self
    }

    /// Adds the name of a deciding rule.
    pub fn with_rule(mut self, rule: &str) -> Result<Self> {
        check_len(rule, MAX_NAME_LEN, "audit rule name longer than 256 bytes")?;
        self.rules.push(rule.to_string());
        Ok(self)
    }

    /// Adds a human-readable reason.
    pub fn with_reason(mut self, reason: &str) -> Result<Self> {
        check_len(
            reason,
            MAX_REASON_LEN,
            "audit reason longer than 1024 bytes",
        )?;
        self.reasons.push(reason.to_string());
        Ok(self)
    }

    /// Decision time (unix seconds).
    pub fn time(&self) -> i64 {
        self.time
    }
    /// Decision type.
    pub fn kind(&self) -> DecisionKind {
        self.kind
    }
    /// Subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// Input digests.
    pub fn inputs(&self) -> &[NamedDigest] {
        &self.inputs
    }
    /// Key fingerprints.
    pub fn keys(&self) -> &[NamedDigest] {
        &self.keys
    }
    /// Policy bundle digest.
    pub fn policy(&self) -> Option<&Digest384> {
        self.policy.as_ref()
    }
    /// Deciding rules.
    pub fn rules(&self) -> &[String] {
        &self.rules
    }
    /// Outcome.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
    /// Reasons.
    pub fn reasons(&self) -> &[String] {
        &self.reasons
    }

    /// The CBOR encoding.
    pub fn to_cbor(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(256);
        ciborium::into_writer(self, &mut out)
            .map_err(|e| Error::malformed("audit record", e.to_string()))?;
        Ok(out)
    }

    /// Decodes a record; trailing bytes, unknown keys and over-long strings are refused.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        let mut reader = bytes;
        let r: Self = ciborium::from_reader(&mut reader)
            .map_err(|e| Error::malformed("audit record", e.to_string()))?;
        if !reader.is_empty() {
            return Err(Error::malformed(
                "audit record",
                format!("{} trailing bytes", reader.len()),
            ));
        }
        let too_long = r.subject.len() > MAX_NAME_LEN
            || r.inputs
                .iter()
                .chain(&r.keys)
                .any(|d| d.name.len() > MAX_NAME_LEN)
            || r.rules.iter().any(|s| s.len() > MAX_NAME_LEN)
            || r.reasons.iter().any(|s| s.len() > MAX_REASON_LEN);
        if too_long {
            return Err(Error::malformed(
                "audit record",
                "string longer than allowed",
            ));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_refuses_trailing_bytes() {
        let r = AuditRecord::new(
            crate::UnixTime::from_secs(1),
            DecisionKind::Share,
            "grant-7",
            Outcome::Deny,
        )
        .unwrap()
        .with_input("request", Digest384::of(b"req"))
        .unwrap()
        .with_key_fingerprint("tenant-a", Digest384::of(b"spki"))
        .unwrap()
        .with_policy(Digest384::of(b"bundle"))
        .with_rule("share.deny_cross_tenant")
        .unwrap()
        .with_reason("tenant b may not import from tenant a")
        .unwrap();
        let bytes = r.to_cbor().unwrap();
        assert_eq!(AuditRecord::from_cbor(&bytes).unwrap(), r);
        let mut long = bytes.clone();
        long.push(0);
        assert!(AuditRecord::from_cbor(&long).is_err());
        assert!(AuditRecord::from_cbor(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn over_long_strings_are_refused() {
        let r = AuditRecord::new(
            crate::UnixTime::from_secs(1),
            DecisionKind::Share,
            &"x".repeat(257),
            Outcome::Deny,
        );
        assert!(r.is_err());
    }
}
