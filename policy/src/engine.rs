//! Evaluation: decision kinds, the Rego output convention, and [`PolicyEngine`].

use crate::bundle::PolicyBundle;
use crate::error::{malformed, PolicyError, Result};
use crate::input::{
    CvmAppraisalInput, DecisionInput, DeviceAppraisalInput, KeyRotationInput, ShareInput,
    TdiAcceptInput,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Rule name recorded when no `deny` entry fired and `allow` was not `true`.
pub const DEFAULT_DENY_RULE: &str = "default_deny";
/// Maximum length of a rule name (without its `deny.`/`allow.` prefix).
pub const MAX_RULE_NAME_LEN: usize = 64;
/// Maximum length of one reason, in bytes (the audit log's limit).
pub const MAX_REASON_LEN: usize = 1024;

/// The decisions a policy bundle makes. The serde names are the audit log's kind names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionKind {
    /// Is a device genuine and running known firmware? Package `ualink.device`, input
    /// [`DeviceAppraisalInput`].
    DeviceAppraisal,
    /// Does a tenant accept a TDI? Package `ualink.tdi_accept`, input [`TdiAcceptInput`].
    TdiAcceptance,
    /// May a buffer be shared across tenants or OS instances? Package `ualink.share`, input
    /// [`ShareInput`].
    Share,
    /// May new link keys be installed for a pair? Package `ualink.key_rotation`, input
    /// [`KeyRotationInput`].
    KeyRotation,
    /// Is a CVM's own evidence acceptable? Package `ualink.cvm`, input
    /// [`CvmAppraisalInput`].
    CvmAppraisal,
}

impl DecisionKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::DeviceAppraisal,
        Self::TdiAcceptance,
        Self::Share,
        Self::KeyRotation,
        Self::CvmAppraisal,
    ];

    /// The Rego package that decides it.
    pub const fn package(self) -> &'static str {
        match self {
            Self::DeviceAppraisal => "ualink.device",
            Self::TdiAcceptance => "ualink.tdi_accept",
            Self::Share => "ualink.share",
            Self::KeyRotation => "ualink.key_rotation",
            Self::CvmAppraisal => "ualink.cvm",
        }
    }

    /// The name used in audit records (`"device-appraisal"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::DeviceAppraisal => "device-appraisal",
            Self::TdiAcceptance => "tdi-acceptance",
            Self::Share => "share",
            Self::KeyRotation => "key-rotation",
            Self::CvmAppraisal => "cvm-appraisal",
        }
    }

    /// The kind for an audit-record name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl core::fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of one evaluation.
///
/// `rules[i]` and `reasons[i]` belong together. Rule names are `deny.<name>` for each `deny`
/// entry that fired, `allow.<name>` for each `allow_rules` entry when allowed, or
/// `default_deny` when nothing allowed and no deny rule fired. Both lists are sorted by rule
/// name then reason, so equal inputs under equal bundles give equal decisions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Whether the action is allowed.
    pub allow: bool,
    /// The names of the rules that decided.
    pub rules: Vec<String>,
    /// Human-readable reasons, one per rule.
    pub reasons: Vec<String>,
    /// Digest of the policy bundle the decision was made under.
    #[serde(with = "digest_hex")]
    pub policy_digest: [u8; 48],
}

mod digest_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 48], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 48], D::Error> {
        crate::hexser::Sha384::deserialize(d).map(|h| h.0)
    }
}

/// Evaluates decisions under one [`PolicyBundle`].
///
/// The regorus engine is not shared between evaluations: each evaluation clones a template
/// engine that was parsed, compiled and prepared when the bundle was built (a clone shares
/// the modules and data by reference counting; with regorus's `arc` feature the engine is
/// `Send + Sync`, so one `PolicyEngine` can be shared between threads). Evaluation is a pure
/// function of (bundle, kind, input): it reads no clock, file or network.
#[derive(Clone, Debug)]
pub struct PolicyEngine {
    template: regorus::Engine,
    digest: [u8; 48],
    present: Vec<DecisionKind>,
}

impl PolicyEngine {
    /// An engine for `bundle` (cheap: the bundle holds a prepared engine).
    pub fn new(bundle: &PolicyBundle) -> Self {
        Self {
            template: bundle.template().clone(),
            digest: bundle.digest(),
            present: bundle.decision_kinds(),
        }
    }

    /// The digest of the bundle this engine evaluates.
    pub fn policy_digest(&self) -> [u8; 48] {
        self.digest
    }

    /// Device appraisal (package `ualink.device`).
    pub fn evaluate_device(&self, input: &DeviceAppraisalInput) -> Result<Decision> {
        self.evaluate_typed(DecisionKind::DeviceAppraisal, input)
    }

    /// Tenant acceptance of a TDI (package `ualink.tdi_accept`).
    pub fn evaluate_tdi_accept(&self, input: &TdiAcceptInput) -> Result<Decision> {
        self.evaluate_typed(DecisionKind::TdiAcceptance, input)
    }

    /// Cross-tenant or cross-OS share (package `ualink.share`).
    pub fn evaluate_share(&self, input: &ShareInput) -> Result<Decision> {
        self.evaluate_typed(DecisionKind::Share, input)
    }

    /// Link-key rotation (package `ualink.key_rotation`).
    pub fn evaluate_key_rotation(&self, input: &KeyRotationInput) -> Result<Decision> {
        self.evaluate_typed(DecisionKind::KeyRotation, input)
    }

    /// CVM appraisal (package `ualink.cvm`).
    pub fn evaluate_cvm(&self, input: &CvmAppraisalInput) -> Result<Decision> {
        self.evaluate_typed(DecisionKind::CvmAppraisal, input)
    }

    /// Evaluates any typed input (its kind is [`DecisionInput::KIND`]).
    pub fn evaluate_input<I: DecisionInput>(&self, input: &I) -> Result<Decision> {
        self.evaluate_typed(I::KIND, input)
    }

    /// Evaluates `kind` on a JSON input, as recorded in the audit log (replay). The input is
    /// first checked against the kind's schema (unknown fields, wrong types and non-canonical
    /// hex are [`PolicyError::InvalidInput`]), so a replay judges exactly what a typed call
    /// would have.
    pub fn evaluate(&self, kind: DecisionKind, input: &Value) -> Result<Decision> {
        let normalized = match kind {
            DecisionKind::DeviceAppraisal => normalize::<DeviceAppraisalInput>(kind, input)?,
            DecisionKind::TdiAcceptance => normalize::<TdiAcceptInput>(kind, input)?,
            DecisionKind::Share => normalize::<ShareInput>(kind, input)?,
            DecisionKind::KeyRotation => normalize::<KeyRotationInput>(kind, input)?,
            DecisionKind::CvmAppraisal => normalize::<CvmAppraisalInput>(kind, input)?,
        };
        self.run(kind, normalized)
    }

    fn evaluate_typed<T: Serialize>(&self, kind: DecisionKind, input: &T) -> Result<Decision> {
        let v = serde_json::to_value(input).map_err(|e| PolicyError::InvalidInput {
            kind,
            reason: e.to_string(),
        })?;
        self.run(kind, v)
    }

    fn run(&self, kind: DecisionKind, input: Value) -> Result<Decision> {
        if !self.present.contains(&kind) {
            return Ok(Decision {
                allow: false,
                rules: vec![DEFAULT_DENY_RULE.to_owned()],
                reasons: vec![format!(
                    "the policy bundle has no package {} (default deny)",
                    kind.package()
                )],
                policy_digest: self.digest,
            });
        }
        let mut engine = self.template.clone();
        engine.set_input(regorus::Value::from(input));
        let raw = query_outputs(&mut engine, kind).map_err(|e| PolicyError::Evaluation {
            kind,
            reason: format!("{e:#}"),
        })?;
        decide(kind, raw, self.digest)
    }
}

/// Checks a JSON input against `kind`'s schema and returns it as canonical JSON (object
/// members sorted by the UTF-8 bytes of their keys, no whitespace, strings and numbers as
/// serde_json prints them). Equal documents give equal bytes, whatever their original
/// formatting or member order, so the result is what to store in the audit log and hash.
pub fn canonical_input(kind: DecisionKind, input: &Value) -> Result<String> {
    let v = match kind {
        DecisionKind::DeviceAppraisal => normalize::<DeviceAppraisalInput>(kind, input)?,
        DecisionKind::TdiAcceptance => normalize::<TdiAcceptInput>(kind, input)?,
        DecisionKind::Share => normalize::<ShareInput>(kind, input)?,
        DecisionKind::KeyRotation => normalize::<KeyRotationInput>(kind, input)?,
        DecisionKind::CvmAppraisal => normalize::<CvmAppraisalInput>(kind, input)?,
    };
    Ok(crate::canon::to_canonical(&v))
}

fn normalize<T: DeserializeOwned + Serialize>(kind: DecisionKind, input: &Value) -> Result<Value> {
    let typed: T = T::deserialize(input).map_err(|e| PolicyError::InvalidInput {
        kind,
        reason: e.to_string(),
    })?;
    serde_json::to_value(&typed).map_err(|e| PolicyError::InvalidInput {
        kind,
        reason: e.to_string(),
    })
}

struct RawOutputs {
    allow: regorus::Value,
    deny: regorus::Value,
    allow_rules: regorus::Value,
}

/// Evaluates the three outputs in one query, so rules they share (e.g. `deny` inside
/// `allow`) are evaluated once. If the query has no result (an output is undefined), falls
/// back to evaluating each rule alone, which reports undefined per rule.
fn query_outputs(engine: &mut regorus::Engine, kind: DecisionKind) -> anyhow::Result<RawOutputs> {
    let p = kind.package();
    let results = engine.eval_query(
        format!("[data.{p}.allow, data.{p}.deny, data.{p}.allow_rules]"),
        false,
    )?;
    let value = results
        .result
        .first()
        .and_then(|r| r.expressions.first())
        .map(|e| e.value.clone());
    if let Some(regorus::Value::Array(a)) = value {
        if let [allow, deny, allow_rules] = a.as_slice() {
            return Ok(RawOutputs {
                allow: allow.clone(),
                deny: deny.clone(),
                allow_rules: allow_rules.clone(),
            });
        }
    }
    raw_outputs(engine, kind)
}

fn raw_outputs(engine: &mut regorus::Engine, kind: DecisionKind) -> anyhow::Result<RawOutputs> {
    let p = kind.package();
    Ok(RawOutputs {
        allow: engine.eval_rule(format!("data.{p}.allow"))?,
        deny: engine.eval_rule(format!("data.{p}.deny"))?,
        allow_rules: engine.eval_rule(format!("data.{p}.allow_rules"))?,
    })
}

fn output_err(kind: DecisionKind, reason: String) -> PolicyError {
    PolicyError::PolicyOutput { kind, reason }
}

/// Reads a `deny` or `allow_rules` set: each element `{"rule": name, "reason": text}`.
fn rule_entries(
    kind: DecisionKind,
    what: &str,
    v: &regorus::Value,
) -> Result<Vec<(String, String)>> {
    if matches!(v, regorus::Value::Undefined) {
        return Ok(Vec::new());
    }
    let json = serde_json::to_value(v).map_err(|e| output_err(kind, format!("{what}: {e}")))?;
    let items = match (v, json) {
        (regorus::Value::Set(_), Value::Array(items)) => items,
        _ => return Err(output_err(kind, format!("{what} must be a set"))),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(o) = item else {
            return Err(output_err(kind, format!("{what} entries must be objects")));
        };
        if o.len() != 2 {
            return Err(output_err(
                kind,
                format!("{what} entries must have exactly `rule` and `reason`"),
            ));
        }
        let (Some(Value::String(rule)), Some(Value::String(reason))) =
            (o.get("rule"), o.get("reason"))
        else {
            return Err(output_err(
                kind,
                format!("{what} entries must have string `rule` and `reason`"),
            ));
        };
        let valid_name = !rule.is_empty()
            && rule.len() <= MAX_RULE_NAME_LEN
            && rule
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_name {
            return Err(output_err(
                kind,
                format!("{what} rule name {rule:?} is not [a-z0-9_]{{1,{MAX_RULE_NAME_LEN}}}"),
            ));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(output_err(
                kind,
                format!("{what} reason of rule {rule} exceeds {MAX_REASON_LEN} bytes"),
            ));
        }
        out.push((rule.clone(), reason.clone()));
    }
    Ok(out)
}

/// Fail-closed combination: allowed only if `allow` is exactly `true` and no `deny` entry
/// fired; a deny entry wins over `allow`.
fn decide(kind: DecisionKind, raw: RawOutputs, digest: [u8; 48]) -> Result<Decision> {
    let allow_flag = match raw.allow {
        regorus::Value::Bool(b) => b,
        regorus::Value::Undefined => false,
        _ => return Err(output_err(kind, "allow must be a boolean".into())),
    };
    let mut denies = rule_entries(kind, "deny", &raw.deny)?;
    let mut allows = rule_entries(kind, "allow_rules", &raw.allow_rules)?;
    let (allow, mut pairs) = if !denies.is_empty() {
        denies.sort();
        let pairs = denies
            .into_iter()
            .map(|(r, why)| (format!("deny.{r}"), why))
            .collect::<Vec<_>>();
        (false, pairs)
    } else if allow_flag {
        allows.sort();
        let mut pairs: Vec<_> = allows
            .into_iter()
            .map(|(r, why)| (format!("allow.{r}"), why))
            .collect();
        if pairs.is_empty() {
            pairs.push(("allow".to_owned(), "allowed by policy".to_owned()));
        }
        (true, pairs)
    } else {
        (
            false,
            vec![(
                DEFAULT_DENY_RULE.to_owned(),
                "no allow rule matched and no deny rule fired (default deny)".to_owned(),
            )],
        )
    };
    pairs.sort();
    let (rules, reasons) = pairs.into_iter().unzip();
    Ok(Decision {
        allow,
        rules,
        reasons,
        policy_digest: digest,
    })
}

/// The decision kinds whose package a prepared engine holds.
pub(crate) fn kinds_present(engine: &regorus::Engine) -> Vec<DecisionKind> {
    let pkgs = engine.get_packages().unwrap_or_default();
    DecisionKind::ALL
        .into_iter()
        .filter(|k| pkgs.iter().any(|p| *p == format!("data.{}", k.package())))
        .collect()
}

/// Load-time format check of every decision package present: it defines `allow`, `deny` and
/// `allow_rules`, evaluates on an empty input, follows the output convention, and does not
/// allow an empty input. This also prepares (compiles) the engine, so semantic errors
/// (unknown functions, unsafe variables) surface here with their location.
pub(crate) fn check_packages(engine: &mut regorus::Engine) -> Result<()> {
    engine.set_input(regorus::Value::new_object());
    // Preparing the engine compiles every module; errors carry their file and line.
    engine
        .eval_query("true".to_owned(), false)
        .map_err(|e| malformed("<bundle>", &e))?;
    for kind in kinds_present(engine) {
        let raw = raw_outputs(engine, kind).map_err(|e| {
            let m = crate::error::parse_engine_message(&format!("{e:#}"));
            if m.file.is_some() {
                malformed("<bundle>", &e)
            } else {
                PolicyError::BadBundle {
                    reason: format!(
                        "package {} must define allow, deny and allow_rules: {}",
                        kind.package(),
                        m.reason
                    ),
                }
            }
        })?;
        if decide(kind, raw, [0; 48])?.allow {
            return Err(PolicyError::AllowsEmptyInput { kind });
        }
    }
    engine.set_input(regorus::Value::Undefined);
    Ok(())
}
