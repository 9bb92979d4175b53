//! The crate's one error type, classed by who is at fault.
//!
//! Every variant names what was refused and why; the binary prints the `Display` text and
//! exits with a code chosen from [`Error::class`].

/// Who or what is at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// This machine offers no usable TEE interface, or the one it offers failed.
    Platform,
    /// The peer (KBS, TSM) sent bytes that do not parse as the protocol says.
    Malformed,
    /// The peer answered with something the protocol forbids at this point (wrong nonce,
    /// missing session cookie, unexpected algorithm).
    PeerMisbehaved,
    /// The peer speaks a protocol version or algorithm we do not implement.
    PeerIncompatible,
    /// The peer refused us (an HTTP error status, with its own explanation).
    Refused,
    /// A cryptographic operation failed (JWE tag mismatch, key unwrap integrity failure).
    Crypto,
    /// Evidence did not verify (signature, chain, binding).
    Verification,
    /// Evidence verified but the tenant's policy refuses it.
    PolicyDenied,
    /// Network or file I/O failed.
    Io,
    /// The caller used the API wrongly.
    ApiMisuse,
}

/// A refusal or failure; each variant names its reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No TEE interface was found; `looked_for` lists every path or device tried.
    #[error("no usable TEE found; looked for: {looked_for}")]
    NoTee {
        /// What was probed, in order.
        looked_for: String,
    },
    /// The TEE interface misbehaved or refused the request.
    #[error("TEE interface {interface}: {detail}")]
    Platform {
        /// Which interface (`configfs-tsm`, `/dev/sev-guest`, `sim`).
        interface: &'static str,
        /// What went wrong.
        detail: String,
    },
    /// A peer's bytes do not parse as `what`.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The structure being parsed.
        what: &'static str,
        /// Why it does not parse.
        reason: String,
    },
    /// The peer did something the protocol forbids.
    #[error("peer misbehaved: {what}")]
    PeerMisbehaved {
        /// What it did.
        what: String,
    },
    /// The peer uses a version or algorithm we do not implement.
    #[error("peer incompatible: {what}")]
    PeerIncompatible {
        /// What is unsupported.
        what: String,
    },
    /// The peer answered `status` to our request; `error_type` and `detail` are its own
    /// explanation (the KBS `ErrorInformation` JSON), or the body's start if it sent none.
    #[error("{request} refused with HTTP {status}: {error_type}: {detail}")]
    Refused {
        /// Which request (`POST /kbs/v0/auth`, ...).
        request: String,
        /// The HTTP status code.
        status: u16,
        /// The KBS error type (a URI naming the error), or `(no KBS error JSON)`.
        error_type: String,
        /// The KBS error detail.
        detail: String,
    },
    /// The TSM answered `status` with its error JSON: a stable `code`, a human `reason`,
    /// and for policy denials the `rules` that decided.
    #[error(
        "{request} refused with HTTP {status}: {code}: {reason}{}",
        fmt_rules(rules)
    )]
    TsmRefused {
        /// Which request (`POST /ualink/v0/...`).
        request: String,
        /// The HTTP status code.
        status: u16,
        /// The TSM's error code (`stale_report`, `share_denied`, `cvm_denied`, ...).
        code: String,
        /// The TSM's explanation.
        reason: String,
        /// The policy rules that decided (empty unless a policy denied).
        rules: Vec<String>,
    },
    /// A peer agent refused us on the agent-to-agent channel.
    #[error("the peer agent refused: {reason}")]
    MeshRefused {
        /// Its reason.
        reason: String,
    },
    /// A cryptographic check failed.
    #[error("cryptographic failure: {what}")]
    Crypto {
        /// Which operation.
        what: &'static str,
    },
    /// Peer evidence did not verify.
    #[error("verification failed: {0}")]
    Verification(#[from] ualink_attest::Error),
    /// The tenant's policy refused (`decision` names the decision, e.g. `ualink.cvm`).
    #[error("{decision} denied: {}", fmt_denial(rules, reasons))]
    Denied {
        /// Which decision.
        decision: &'static str,
        /// The deciding rules.
        rules: Vec<String>,
        /// One reason per rule.
        reasons: Vec<String>,
    },
    /// The policy engine failed (treated as a denial).
    #[error("policy evaluation failed: {0}")]
    Policy(#[from] ualink_policy::PolicyError),
    /// Network or file I/O failed.
    #[error("{op}: {detail}")]
    Io {
        /// What was being done.
        op: String,
        /// The underlying error.
        detail: String,
    },
    /// The caller used the API wrongly.
    #[error("API misuse: {reason}")]
    ApiMisuse {
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Who is at fault.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::NoTee { .. } | Error::Platform { .. } => ErrorClass::Platform,
            Error::Malformed { .. } => ErrorClass::Malformed,
            Error::PeerMisbehaved { .. } => ErrorClass::PeerMisbehaved,
            Error::PeerIncompatible { .. } => ErrorClass::PeerIncompatible,
            Error::Refused { .. } | Error::TsmRefused { .. } | Error::MeshRefused { .. } => {
                ErrorClass::Refused
            }
            Error::Crypto { .. } => ErrorClass::Crypto,
            Error::Verification(_) => ErrorClass::Verification,
            Error::Policy(_) | Error::Denied { .. } => ErrorClass::PolicyDenied,
            Error::Io { .. } => ErrorClass::Io,
            Error::ApiMisuse { .. } => ErrorClass::ApiMisuse,
        }
    }

    /// The TSM's error code, if this is a TSM refusal.
    pub fn tsm_code(&self) -> Option<&str> {
        match self {
            Error::TsmRefused { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn io(op: impl Into<String>, e: &dyn std::fmt::Display) -> Self {
        Error::Io {
            op: op.into(),
            detail: e.to_string(),
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn misbehaved(what: impl Into<String>) -> Self {
        Error::PeerMisbehaved { what: what.into() }
    }

    pub(crate) fn platform(interface: &'static str, detail: impl Into<String>) -> Self {
        Error::Platform {
            interface,
            detail: detail.into(),
        }
    }
}

fn fmt_denial(rules: &[String], reasons: &[String]) -> String {
    if rules.is_empty() {
        return "no rule allowed it".into();
    }
    rules
        .iter()
        .zip(
            reasons
                .iter()
                .map(String::as_str)
                .chain(std::iter::repeat("")),
        )
        .map(|(r, why)| {
            if why.is_empty() {
                r.clone()
            } else {
                format!("{r} ({why})")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn fmt_rules(rules: &[String]) -> String {
    if rules.is_empty() {
        String::new()
    } else {
        format!(" (rules: {})", rules.join(", "))
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
