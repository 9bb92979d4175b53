//! KBS sessions: created by `/kbs/v0/auth`, bound to the TLS client key of the connection
//! that created them, single-use nonce, expiring a fixed time ([`SESSION_TTL`] by default) after creation.
//!
//! ```text
//! Challenged{nonce} --attest (nonce taken)--> Attesting --ok--> Attested{cvm}
//!                                                   \--fail--> (removed)
//! ```
//! A second `attest` on the same session finds no nonce (`nonce_used`); every lookup checks
//! the connection's key against the session's (`session_not_bound`) and the expiry
//! (`session_expired`, and the session is removed).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use ualink_policy::input::{CvmPolicyFields, CvmTcb, TeeRoot, TeeType};

use super::error::ApiError;

/// How long a session lives after `/kbs/v0/auth`.
pub const SESSION_TTL: Duration = Duration::from_secs(300);
/// At most this many live sessions (a new `auth` beyond it is refused with 503).
pub const MAX_SESSIONS: usize = 16_384;

/// What a verified CVM evidence says (the claims a tenant appraisal uses).
#[derive(Clone, Debug)]
pub struct CvmClaims {
    /// `cvm-<16 hex>`: SHA-384 prefix of the TLS/tee public key.
    pub cvm_id: String,
    /// The TEE (`Sim` when the chain ended in an explicit root).
    pub tee: TeeType,
    /// The kind of root.
    pub root: TeeRoot,
    /// Launch measurement.
    pub measurement: [u8; 48],
    /// Guest policy fields.
    pub policy: CvmPolicyFields,
    /// TCB components.
    pub tcb: CvmTcb,
    /// Whether the guest is debuggable.
    pub debug: bool,
    /// When the evidence was verified (unix seconds).
    pub attested_at: u64,
    /// The report as received.
    pub report: Vec<u8>,
    /// Its leaf certificate (DER).
    pub leaf: Vec<u8>,
    /// Intermediates (DER).
    pub intermediates: Vec<Vec<u8>>,
}

/// A tenant appraisal result cached in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Appraised {
    /// Allowed by `ualink.cvm`.
    Allowed,
    /// Denied with these rules.
    Denied(Vec<String>),
}

/// State of one session.
#[derive(Clone, Debug)]
pub enum SessionState {
    /// Waiting for evidence over this nonce.
    Challenged {
        /// The base64 nonce sent.
        nonce: String,
    },
    /// Evidence is being verified (the nonce is spent).
    Attesting,
    /// Attested.
    Attested {
        /// The verified claims.
        cvm: Box<CvmClaims>,
        /// Tenant name → appraisal.
        tenants: BTreeMap<String, Appraised>,
        /// The tenant the session acts for: the first one its CVM was allowed for.
        bound: Option<String>,
    },
}

/// One session.
#[derive(Clone, Debug)]
pub struct Session {
    created: Instant,
    tls_key: Vec<u8>,
    /// Its state.
    pub state: SessionState,
}

/// The session table.
#[derive(Debug)]
pub struct Sessions {
    map: HashMap<String, Session>,
    ttl: Duration,
}

fn random_hex<const N: usize>() -> Result<String, ApiError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| ApiError::internal("system RNG failed"))?;
    Ok(hex::encode(b))
}

impl Sessions {
    /// An empty table whose sessions live `ttl` ([`SESSION_TTL`] in production).
    pub fn new(ttl: Duration) -> Self {
        Self {
            map: HashMap::new(),
            ttl,
        }
    }

    /// Creates a session for the connection key `tls_key`; returns (cookie id, base64 nonce).
    pub fn create(&mut self, tls_key: &[u8]) -> Result<(String, String), ApiError> {
        let now = Instant::now();
        let ttl = self.ttl;
        self.map.retain(|_, s| now.duration_since(s.created) < ttl);
        if self.map.len() >= MAX_SESSIONS {
            return Err(ApiError::new(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "the KBS session table is full; retry later",
            ));
        }
        let mut nonce = [0u8; 32];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ApiError::internal("system RNG failed"))?;
        use base64::Engine as _;
        let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
        let id = random_hex::<16>()?;
        self.map.insert(
            id.clone(),
            Session {
                created: now,
                tls_key: tls_key.to_vec(),
                state: SessionState::Challenged {
                    nonce: nonce.clone(),
                },
            },
        );
        Ok((id, nonce))
    }

    /// The live session `id` of the connection key `tls_key`.
    pub fn get_mut(&mut self, id: &str, tls_key: &[u8]) -> Result<&mut Session, ApiError> {
        let expired = match self.map.get(id) {
            None => {
                return Err(ApiError::unauthenticated(
                    "no_session",
                    "no KBS session with this kbs-session-id (POST /kbs/v0/auth first)",
                ))
            }
            Some(s) => s.created.elapsed() >= self.ttl,
        };
        if expired {
            self.map.remove(id);
            return Err(ApiError::unauthenticated(
                "session_expired",
                "the KBS session expired; authenticate again",
            ));
        }
        let s = self
            .map
            .get_mut(id)
            .ok_or_else(|| ApiError::internal("session vanished"))?;
        if !bool::from(s.tls_key.as_slice().ct_eq(tls_key)) {
            return Err(ApiError::unauthenticated(
                "session_not_bound",
                "the KBS session belongs to another TLS client key",
            ));
        }
        Ok(s)
    }

    /// Takes the nonce of a challenged session (single use), moving it to `Attesting`.
    pub fn take_nonce(&mut self, id: &str, tls_key: &[u8]) -> Result<String, ApiError> {
        let s = self.get_mut(id, tls_key)?;
        match std::mem::replace(&mut s.state, SessionState::Attesting) {
            SessionState::Challenged { nonce } => Ok(nonce),
            other => {
                s.state = other;
                Err(ApiError::unauthenticated(
                    "nonce_used",
                    "this session's nonce was already used; authenticate again",
                ))
            }
        }
    }

    /// Records the outcome of an attestation started by [`Self::take_nonce`].
    pub fn finish(&mut self, id: &str, cvm: Option<CvmClaims>) {
        match cvm {
            Some(cvm) => {
                if let Some(s) = self.map.get_mut(id) {
                    s.state = SessionState::Attested {
                        cvm: Box::new(cvm),
                        tenants: BTreeMap::new(),
                        bound: None,
                    };
                }
            }
            None => {
                self.map.remove(id);
            }
        }
    }

    /// The claims of an attested session.
    pub fn attested(&mut self, id: &str, tls_key: &[u8]) -> Result<CvmClaims, ApiError> {
        match &self.get_mut(id, tls_key)?.state {
            SessionState::Attested { cvm, .. } => Ok((**cvm).clone()),
            _ => Err(ApiError::unauthenticated(
                "session_not_attested",
                "the KBS session has not attested (POST /kbs/v0/attest)",
            )),
        }
    }

    /// The cached appraisal of `tenant` for the session.
    pub fn appraisal(&mut self, id: &str, tls_key: &[u8], tenant: &str) -> Option<Appraised> {
        match &self.get_mut(id, tls_key).ok()?.state {
            SessionState::Attested { tenants, .. } => tenants.get(tenant).cloned(),
            _ => None,
        }
    }

    /// The tenant the session is bound to, if any.
    pub fn bound_tenant(&mut self, id: &str, tls_key: &[u8]) -> Result<Option<String>, ApiError> {
        match &self.get_mut(id, tls_key)?.state {
            SessionState::Attested { bound, .. } => Ok(bound.clone()),
            _ => Err(ApiError::unauthenticated(
                "session_not_attested",
                "the KBS session has not attested (POST /kbs/v0/attest)",
            )),
        }
    }

    /// Caches the appraisal of `tenant` for the session; an allowed appraisal binds the
    /// session to `tenant` if it is not bound yet. Returns the bound tenant afterwards.
    pub fn set_appraisal(&mut self, id: &str, tenant: &str, a: Appraised) -> Option<String> {
        if let Some(Session {
            state: SessionState::Attested { tenants, bound, .. },
            ..
        }) = self.map.get_mut(id)
        {
            if a == Appraised::Allowed && bound.is_none() {
                *bound = Some(tenant.to_string());
            }
            tenants.insert(tenant.to_string(), a);
            return bound.clone();
        }
        None
    }

    /// Live sessions (for tests and status).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no session.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
