//! `ualink-policy`: the Rego policy engine binding, the decision input schemas, and the
//! bundled default policies of ualink-cc.
//!
//! * A [`PolicyBundle`] is a set of Rego files plus a data document (trusted vendor roots,
//!   reference values, tenants, sharing rules), validated at load and identified by a
//!   SHA-384 digest that every [`Decision`] records.
//! * A [`PolicyEngine`] evaluates the five decisions ([`DecisionKind`]), each on a documented
//!   input ([`input`]), and returns allow/deny with the names of the rules that decided and
//!   human-readable reasons.
//! * The default policies (`policy/defaults/`) are embedded: [`PolicyBundle::defaults`].
//!
//! # The Rego convention
//! Decision `K` lives in package `ualink.<k>` (see [`DecisionKind::package`]) and defines:
//! ```rego
//! package ualink.device
//! import rego.v1
//!
//! default allow := false
//! allow if { count(deny) == 0; ... }                       # positive conditions
//! deny contains {"rule": "untrusted_vendor_root", "reason": "..."} if { ... }
//! allow_rules contains {"rule": "trusted_vendor_root", "reason": "..."} if { ... }
//! ```
//! The binding is fail-closed: allowed only if `allow` is `true` **and** `deny` is empty;
//! an undefined `allow` with no deny entry is a deny with rule `default_deny`; malformed
//! output is an error (callers treat errors as deny). Rule names are `[a-z0-9_]{1,64}`.
//! Policies read configuration from `data.ualink_data`; they never read the clock (the
//! time is `input.now`), and builtins with outside-world results are refused at load.
//!
//! # Example
//! ```
//! use ualink_policy::{PolicyBundle, PolicyEngine, DecisionKind};
//! let bundle = PolicyBundle::defaults()?;
//! let engine = PolicyEngine::new(&bundle);
//! // The defaults trust nothing until data is overlaid: any device is denied.
//! let d = engine.evaluate(DecisionKind::Share, &serde_json::json!({
//!     "exporter": {"tenant_id": "a", "os_instance": "vm1", "accelerator_id": 1,
//!                  "tdi_state": "RUN", "attested_at": 100},
//!     "importer": {"tenant_id": "b", "os_instance": "vm1", "accelerator_id": 2,
//!                  "tdi_state": "RUN", "attested_at": 100},
//!     "rights": ["read"], "link_keys_live": true, "now": 110}))?;
//! assert!(!d.allow);
//! assert_eq!(d.rules, vec!["deny.unlisted_share_pair"]);
//! assert_eq!(d.policy_digest, bundle.digest());
//! # Ok::<(), ualink_policy::PolicyError>(())
//! ```

#![forbid(unsafe_code)]

mod bundle;
mod canon;
mod engine;
mod error;
mod hexser;
pub mod input;
mod scan;

pub use bundle::{PolicyBundle, BUNDLE_MAGIC, DATA_ROOT};
pub use engine::{
    canonical_input, Decision, DecisionKind, PolicyEngine, DEFAULT_DENY_RULE, MAX_REASON_LEN,
    MAX_RULE_NAME_LEN,
};
pub use error::{PolicyError, Result};
pub use hexser::{HexBytes, Sha384};
pub use input::{
    CvmAppraisalInput, DecisionInput, DeviceAppraisalInput, KeyRotationInput, ShareInput,
    TdiAcceptInput,
};

/// Names of the builtins a policy may not call (checked at load), with the reason for each.
pub fn forbidden_builtins() -> impl Iterator<Item = (&'static str, &'static str)> {
    scan::FORBIDDEN_BUILTINS.iter().copied()
}
