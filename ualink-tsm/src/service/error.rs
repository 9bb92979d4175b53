//! Errors of the service: [`ServiceError`] for starting and running the server, and
//! [`ApiError`], the JSON error every refused request receives:
//! `{"code": "<stable snake_case>", "reason": "<human>", "rules": [..]}`.

use hyper::StatusCode;
use serde::Serialize;

use crate::error::{Fault, TsmError};

/// A failure to start or run the service (not a request's refusal).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// TLS material could not be created, loaded or configured.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listener could not be bound or failed.
    #[error("listener: {0}")]
    Listen(String),
    /// The TSM core failed.
    #[error(transparent)]
    Core(#[from] TsmError),
    /// The service's own invariant broke (a worker panicked, a lock was poisoned).
    #[error("internal: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable reason.
    pub reason: String,
    /// Deciding policy rules (policy denials); empty otherwise.
    pub rules: Vec<String>,
}

/// A refused request: an HTTP status and an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with `status`, `code` and `reason`, no rules.
    pub fn new(status: StatusCode, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                code,
                reason: reason.into(),
                rules: Vec::new(),
            },
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, reason)
    }

    /// 401 with `code`.
    pub fn unauthenticated(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, reason)
    }

    /// 403 with `code`.
    pub fn forbidden(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, reason)
    }

    /// 404 `not_found`.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", reason)
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, reason)
    }

    /// 503 `internal` (the service's own failure).
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "internal", reason)
    }

    /// Adds the deciding rules.
    pub fn with_rules(mut self, rules: Vec<String>) -> Self {
        self.body.rules = rules;
        self
    }

    /// The JSON body bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body).unwrap_or_else(|_| {
            br#"{"code":"internal","reason":"error encoding failed","rules":[]}"#.to_vec()
        })
    }
}

impl From<TsmError> for ApiError {
    /// Caller faults → 400 (`invalid_request`), 404 (`not_found`) or 409 (`conflict`,
    /// `keys_delegated`, `keys_from_lead_agent`);
    /// policy denials → 403 with their rules; device failures → 502; the TSM's platform
    /// (audit log, store, identity, policy engine, driver, fabric) → 503.
    fn from(e: TsmError) -> Self {
        let reason = e.to_string();
        let status = match (&e, e.fault()) {
            (TsmError::NotFound { .. }, _) => StatusCode::NOT_FOUND,
            (TsmError::Conflict(_) | TsmError::KeySource { .. }, _) => StatusCode::CONFLICT,
            (_, Fault::Caller) => StatusCode::BAD_REQUEST,
            (_, Fault::Policy) => StatusCode::FORBIDDEN,
            (_, Fault::Device) => StatusCode::BAD_GATEWAY,
            (_, Fault::Platform) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let rules = match &e {
            TsmError::PolicyDenied { rules, .. } => rules.clone(),
            _ => Vec::new(),
        };
        ApiError::new(status, e.code(), reason).with_rules(rules)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Core(t) => t.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}
