//! The TSM's one error type, classed by who is at fault ([`Fault`]).

/// Who is at fault for a [`TsmError`] (the service maps this to its error code class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The caller asked for something invalid, unknown or conflicting.
    Caller,
    /// Policy denied the request.
    Policy,
    /// A device failed attestation or misbehaved.
    Device,
    /// The TSM's own platform (disk, audit log, state store, identity) failed.
    Platform,
}

/// Every failure of the TSM core. Each variant names its reason.
#[derive(Debug, thiserror::Error)]
pub enum TsmError {
    /// A malformed or out-of-range request.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The named object does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// Kind of object ("tenant", "device", ...).
        what: &'static str,
        /// Its identifier.
        id: String,
    },
    /// The request conflicts with existing state (duplicate, already assigned, wrong state).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Policy denied the decision; `rules` are the deciding rule names.
    #[error("denied by policy ({}): {}", rules.join(", "), reasons.join("; "))]
    PolicyDenied {
        /// Deciding rules (`deny.*` or `default_deny`).
        rules: Vec<String>,
        /// Human-readable reasons, one per rule.
        reasons: Vec<String>,
    },
    /// A device failed the named check (it is quarantined).
    #[error("device {device} failed {check}: {reason}")]
    Device {
        /// The device (`accel-NNNN`).
        device: String,
        /// The failed check ("spdm", "policy", "key-programming", "tdisp", ...).
        check: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The audit log cannot be written: no decision is taken until it can.
    #[error("audit log unavailable, decision refused: {0}")]
    AuditUnavailable(String),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(String),
    /// The TSM's identity (signing key, own evidence) could not be loaded or created.
    #[error("TSM identity: {0}")]
    Identity(String),
    /// The policy bundle could not be loaded or evaluated (treated as a deny).
    #[error("policy engine: {0}")]
    Policy(String),
    /// The driver core (kdrv) refused an operation the TSM asked for.
    #[error("driver refused {op}: {reason}")]
    Driver {
        /// The driver operation.
        op: &'static str,
        /// The driver's error.
        reason: String,
    },
    /// The simulated pod failed an operation.
    #[error("fabric: {0}")]
    Fabric(String),
    /// The tenant's keys come from the other source: its lead agent (`lead_keys = true`, TSM
    /// generation refused) or the TSM (`lead_keys = false`, an agent's key set refused).
    #[error("tenant {tenant}: {}", if *lead_keys { "keys come from its lead agent" } else { "keys are delegated to the TSM" })]
    KeySource {
        /// The tenant.
        tenant: u32,
        /// The tenant's `lead_keys` option.
        lead_keys: bool,
    },
}

impl TsmError {
    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            TsmError::InvalidRequest(_)
            | TsmError::NotFound { .. }
            | TsmError::Conflict(_)
            | TsmError::KeySource { .. } => Fault::Caller,
            TsmError::PolicyDenied { .. } => Fault::Policy,
            TsmError::Device { .. } => Fault::Device,
            TsmError::AuditUnavailable(_)
            | TsmError::Store(_)
            | TsmError::Identity(_)
            | TsmError::Policy(_)
            | TsmError::Driver { .. }
            | TsmError::Fabric(_) => Fault::Platform,
        }
    }

    /// A stable machine-readable code for the service's JSON errors.
    pub fn code(&self) -> &'static str {
        match self {
            TsmError::InvalidRequest(_) => "invalid_request",
            TsmError::NotFound { .. } => "not_found",
            TsmError::Conflict(_) => "conflict",
            TsmError::PolicyDenied { .. } => "policy_denied",
            TsmError::Device { .. } => "device_failed",
            TsmError::AuditUnavailable(_) => "audit_unavailable",
            TsmError::Store(_) => "store_failed",
            TsmError::Identity(_) => "identity_failed",
            TsmError::Policy(_) => "policy_error",
            TsmError::Driver { .. } => "driver_refused",
            TsmError::Fabric(_) => "fabric_failed",
            TsmError::KeySource {
                lead_keys: false, ..
            } => "keys_delegated",
            TsmError::KeySource {
                lead_keys: true, ..
            } => "keys_from_lead_agent",
        }
    }
}

/// Result with [`TsmError`].
pub type Result<T> = core::result::Result<T, TsmError>;
