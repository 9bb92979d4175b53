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
//! policy_input  text     (optional) the canonical JSON input the policy decided on
//!                        (`ualink_policy::canonical_input`); its `now` equals `time`
//! event     map          (optional) what happened, with embedded evidence: an
//!                        [`AuditEvent`](super::event::AuditEvent), `type` names the variant
//! ```
//! The two optional keys are written only when present, after `reasons`, so records without
//! them encode exactly as before. A decision is replayable when it has `policy`,
//! `policy_input` and a `kind` that `ualink-policy` decides: the auditor evaluates
//! `policy_input` under the bundle whose digest is `policy` and must get exactly `outcome`
//! (allow/deny), `rules` and `reasons`.
//! The sequence number and the hash chain are not in the record: they frame it in the log
//! entry (see [`super::file`]).
//!
//! Records never contain secret key bytes: digests and fingerprints are [`Digest384`] values,
//! produced by hashing; [`Digest384::from_bytes`] exists only for digests computed elsewhere
//! (a policy bundle's digest) and must never be given anything but a digest.

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

    /// Wraps a SHA-384 digest computed elsewhere, e.g. `ualink_policy::PolicyBundle::digest()`
    /// (which equals `Digest384::of(&bundle.canonical_bytes())`). Never pass key bytes.
    pub fn from_bytes(digest: [u8; 48]) -> Self {
        Self(digest)
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
    /// A lifecycle event that is not a policy decision (pod discovered, tenant added, TDI
    /// locked, ...); its `event` says what.
    Lifecycle,
}

impl DecisionKind {
    /// The wire name (kebab-case), as in the record's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            DecisionKind::DeviceAppraisal => "device-appraisal",
            DecisionKind::TdiAcceptance => "tdi-acceptance",
            DecisionKind::Share => "share",
            DecisionKind::Revocation => "revocation",
            DecisionKind::KeyRotation => "key-rotation",
            DecisionKind::CvmAppraisal => "cvm-appraisal",
            DecisionKind::PolicyChange => "policy-change",
            DecisionKind::Lifecycle => "lifecycle",
        }
    }
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

impl Outcome {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Info => "info",
        }
    }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy_input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<super::event::AuditEvent>,
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
            policy_input: None,
            event: None,
        })
    }

    /// Records the canonical JSON input the policy decided on, for replay. Refuses an input
    /// that is not `kind`'s schema or not canonical (`ualink_policy::canonical_input`), a
    /// `kind` other than the record's, and an input whose `now` differs from the record's
    /// time.
    pub fn with_policy_input(
        mut self,
        kind: ualink_policy::DecisionKind,
        canonical_json: &str,
    ) -> Result<Self> {
        if kind.name() != self.kind.name() {
            return Err(Error::ApiMisuse {
                reason: "policy input kind differs from the record kind",
            });
        }
        let v: serde_json::Value =
            serde_json::from_str(canonical_json).map_err(|_| Error::ApiMisuse {
                reason: "policy input is not JSON",
            })?;
        match ualink_policy::canonical_input(kind, &v) {
            Ok(c) if c == canonical_json => {}
            _ => {
                return Err(Error::ApiMisuse {
                    reason: "policy input is not the canonical JSON of its kind's schema",
                })
            }
        }
        if v.get("now").and_then(serde_json::Value::as_i64) != Some(self.time) {
            return Err(Error::ApiMisuse {
                reason: "policy input `now` differs from the record time",
            });
        }
        self.policy_input = Some(canonical_json.to_string());
        Ok(self)
    }

    /// Attaches what happened (with its evidence).
    pub fn with_event(mut self, event: super::event::AuditEvent) -> Self {
        self.event = Some(event);
        self
    }

    /// The canonical policy input, if recorded.
    pub fn policy_input(&self) -> Option<&str> {
        self.policy_input.as_deref()
    }

    /// The event, if recorded.
    pub fn event(&self) -> Option<&super::event::AuditEvent> {
        self.event.as_ref()
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

    /// The CBOR encoding (see [`Self::encode_cbor`]).
    pub fn to_cbor(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(512);
        self.encode_cbor(&mut out);
        Ok(out)
    }

    /// Appends the CBOR encoding to `out`: a definite-length map of the nine fields in schema
    /// order with text keys and shortest-form heads, byte-identical to what `ciborium`'s
    /// serde encoder produces for this type (tested), but written directly because appending
    /// to the audit log is on the hot path.
    pub fn encode_cbor(&self, out: &mut Vec<u8>) {
        fn head(out: &mut Vec<u8>, major: u8, v: u64) {
            let m = major << 5;
            if v < 24 {
                out.push(m | v as u8);
            } else if let Ok(b) = u8::try_from(v) {
                out.extend_from_slice(&[m | 24, b]);
            } else if let Ok(h) = u16::try_from(v) {
                out.push(m | 25);
                out.extend_from_slice(&h.to_be_bytes());
            } else if let Ok(w) = u32::try_from(v) {
                out.push(m | 26);
                out.extend_from_slice(&w.to_be_bytes());
            } else {
                out.push(m | 27);
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        fn text(out: &mut Vec<u8>, s: &str) {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        fn digest(out: &mut Vec<u8>, d: &Digest384) {
            head(out, 2, 48);
            out.extend_from_slice(&d.0);
        }
        fn named(out: &mut Vec<u8>, list: &[NamedDigest]) {
            head(out, 4, list.len() as u64);
            for n in list {
                head(out, 5, 2);
                text(out, "name");
                text(out, &n.name);
                text(out, "sha384");
                digest(out, &n.sha384);
            }
        }
        fn texts(out: &mut Vec<u8>, list: &[String]) {
            head(out, 4, list.len() as u64);
            for s in list {
                text(out, s);
            }
        }
        let extra = u64::from(self.policy_input.is_some()) + u64::from(self.event.is_some());
        head(out, 5, 9 + extra);
        text(out, "time");
        if self.time >= 0 {
            head(out, 0, self.time.unsigned_abs());
        } else {
            head(out, 1, (-(self.time + 1)).unsigned_abs());
        }
        text(out, "kind");
        text(out, self.kind.name());
        text(out, "subject");
        text(out, &self.subject);
        text(out, "inputs");
        named(out, &self.inputs);
        text(out, "keys");
        named(out, &self.keys);
        text(out, "policy");
        match &self.policy {
            Some(d) => digest(out, d),
            None => out.push(0xF6),
        }
        text(out, "rules");
        texts(out, &self.rules);
        text(out, "outcome");
        text(out, self.outcome.name());
        text(out, "reasons");
        texts(out, &self.reasons);
        if let Some(p) = &self.policy_input {
            text(out, "policy_input");
            text(out, p);
        }
        if let Some(e) = &self.event {
            text(out, "event");
            // Serializing plain data into a Vec cannot fail; an empty map is written if it
            // ever did, which the decoder refuses, so nothing unverifiable is logged.
            let mut ev = Vec::with_capacity(256);
            match ciborium::into_writer(e, &mut ev) {
                Ok(()) => out.extend_from_slice(&ev),
                Err(_) => out.push(0xA0),
            }
        }
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

    fn serde_cbor(r: &AuditRecord) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(r, &mut out).unwrap();
        out
    }

    #[test]
    fn hand_encoder_matches_serde_encoding() {
        let kinds = [
            DecisionKind::DeviceAppraisal,
            DecisionKind::TdiAcceptance,
            DecisionKind::Share,
            DecisionKind::Revocation,
            DecisionKind::KeyRotation,
            DecisionKind::CvmAppraisal,
            DecisionKind::PolicyChange,
            DecisionKind::Lifecycle,
        ];
        let outcomes = [Outcome::Allow, Outcome::Deny, Outcome::Info];
        for (i, time) in [
            0i64,
            23,
            24,
            255,
            256,
            65_536,
            1 << 40,
            -1,
            -25,
            -1_000_000,
            i64::MIN,
        ]
        .into_iter()
        .enumerate()
        {
            let mut r = AuditRecord::new(
                crate::UnixTime::from_secs(time),
                kinds[i % kinds.len()],
                &"s".repeat(i * 23),
                outcomes[i % 3],
            )
            .unwrap();
            for j in 0..i {
                r = r
                    .with_input(&format!("in{j}"), Digest384::of(&[j as u8]))
                    .unwrap()
                    .with_rule(&"r".repeat(j * 25))
                    .unwrap()
                    .with_reason(&"why".repeat(j * 30))
                    .unwrap();
            }
            if i % 2 == 0 {
                r = r.with_policy(Digest384::of(b"p"));
            }
            if i % 3 == 0 {
                r = r.with_key_fingerprint("k", Digest384::of(b"k")).unwrap();
            }
            if i % 4 == 1 {
                r.policy_input = Some(format!("{{\"now\":{time}}}"));
            }
            if i % 5 == 2 {
                r = r.with_event(crate::audit::event::AuditEvent::DeviceQuarantined {
                    device_id: "accel-1".into(),
                    accelerator_id: 3,
                    cause: "bad".into(),
                    evidence: Some(vec![1, 2, 3].into()),
                });
            }
            if i % 5 == 3 {
                r = r.with_event(crate::audit::event::AuditEvent::KeysRotated {
                    tx: crate::audit::event::LinkEnd {
                        accelerator_id: 1,
                        port: 0,
                    },
                    rx: crate::audit::event::LinkEnd {
                        accelerator_id: 2,
                        port: 1,
                    },
                    previous_epoch: 1,
                    epoch: 2,
                    key_fingerprint: Digest384::of(b"key"),
                });
            }
            let mine = r.to_cbor().unwrap();
            assert_eq!(mine, serde_cbor(&r), "case {i}");
            assert_eq!(AuditRecord::from_cbor(&mine).unwrap(), r);
        }
    }

    #[test]
    fn policy_input_must_be_canonical_of_its_kind_and_at_the_record_time() {
        let input = serde_json::json!({
            "exporter": {"tenant_id": "a", "os_instance": "vm", "accelerator_id": 1,
                         "tdi_state": "RUN", "attested_at": 5},
            "importer": {"tenant_id": "b", "os_instance": "vm", "accelerator_id": 2,
                         "tdi_state": "RUN", "attested_at": 5},
            "rights": ["read"], "link_keys_live": true, "now": 10
        });
        let kind = ualink_policy::DecisionKind::Share;
        let canonical = ualink_policy::canonical_input(kind, &input).unwrap();
        let rec = |t: i64, k: DecisionKind| {
            AuditRecord::new(crate::UnixTime::from_secs(t), k, "g", Outcome::Allow).unwrap()
        };
        let r = rec(10, DecisionKind::Share)
            .with_policy_input(kind, &canonical)
            .unwrap();
        assert_eq!(r.policy_input(), Some(canonical.as_str()));
        let bytes = r.to_cbor().unwrap();
        assert_eq!(AuditRecord::from_cbor(&bytes).unwrap(), r);
        // Another time, another kind, non-canonical bytes, another schema: refused.
        assert!(rec(11, DecisionKind::Share)
            .with_policy_input(kind, &canonical)
            .is_err());
        assert!(rec(10, DecisionKind::Revocation)
            .with_policy_input(kind, &canonical)
            .is_err());
        let pretty = serde_json::to_string_pretty(&input).unwrap();
        assert!(rec(10, DecisionKind::Share)
            .with_policy_input(kind, &pretty)
            .is_err());
        assert!(rec(10, DecisionKind::CvmAppraisal)
            .with_policy_input(ualink_policy::DecisionKind::CvmAppraisal, &canonical)
            .is_err());
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
