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
/// At most this many live sessions: a new `auth` beyond it evicts the oldest unattested
/// session, or is refused with 503 when every session is attested.
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
    max: usize,
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
        Self::with_capacity(ttl, MAX_SESSIONS)
    }

    /// An empty table of at most `max` sessions.
    pub fn with_capacity(ttl: Duration, max: usize) -> Self {
        Self {
            map: HashMap::new(),
            ttl,
            max: max.max(1),
        }
    }

    /// Creates a session for the connection key `tls_key`; returns (cookie id, base64 nonce).
    pub fn create(&mut self, tls_key: &[u8]) -> Result<(String, String), ApiError> {
        let now = Instant::now();
        let ttl = self.ttl;
        self.map.retain(|_, s| now.duration_since(s.created) < ttl);
        if self.map.len() >= self.max {
            // Full: evict the oldest session that has not attested (creating those costs an
            // attacker nothing); attested sessions are only displaced by expiry.
            let victim = self
                .map
                .iter()
                .filter(|(_, s)| !matches!(s.state, SessionState::Attested { .. }))
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone());
            match victim {
                Some(k) => {
                    self.map.remove(&k);
                }
                None => {
                    return Err(ApiError::new(
                        hyper::StatusCode::SERVICE_UNAVAILABLE,
                        "too_many_sessions",
                        "the KBS session table is full of attested sessions; retry later",
                    ))
                }
            }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn claims() -> CvmClaims {
        CvmClaims {
            cvm_id: "cvm-0".into(),
            tee: TeeType::Sim,
            root: TeeRoot::Explicit,
            measurement: [0; 48],
            policy: CvmPolicyFields {
                debug_allowed: false,
                migration_agent_allowed: false,
                smt_allowed: true,
                vmpl: Some(0),
            },
            tcb: CvmTcb::default(),
            debug: false,
            attested_at: 0,
            report: Vec::new(),
            leaf: Vec::new(),
            intermediates: Vec::new(),
        }
    }

    #[test]
    fn the_nonce_is_single_use_and_the_session_bound_to_its_key() {
        let mut s = Sessions::new(SESSION_TTL);
        let (id, nonce) = s.create(b"key-a").unwrap();
        assert_eq!(id.len(), 32);
        assert_eq!(
            s.take_nonce(&id, b"key-b").unwrap_err().body.code,
            "session_not_bound"
        );
        assert_eq!(s.take_nonce(&id, b"key-a").unwrap(), nonce);
        assert_eq!(
            s.take_nonce(&id, b"key-a").unwrap_err().body.code,
            "nonce_used"
        );
        assert_eq!(
            s.attested(&id, b"key-a").unwrap_err().body.code,
            "session_not_attested"
        );
        s.finish(&id, Some(claims()));
        assert_eq!(
            s.take_nonce(&id, b"key-a").unwrap_err().body.code,
            "nonce_used"
        );
        assert_eq!(s.attested(&id, b"key-a").unwrap().cvm_id, "cvm-0");
        // A failed attestation removes the session.
        let (id2, _) = s.create(b"key-a").unwrap();
        s.take_nonce(&id2, b"key-a").unwrap();
        s.finish(&id2, None);
        assert_eq!(
            s.take_nonce(&id2, b"key-a").unwrap_err().body.code,
            "no_session"
        );
    }

    #[test]
    fn the_first_allowed_tenant_binds_the_session() {
        let mut s = Sessions::new(SESSION_TTL);
        let (id, _) = s.create(b"k").unwrap();
        s.take_nonce(&id, b"k").unwrap();
        s.finish(&id, Some(claims()));
        assert_eq!(s.bound_tenant(&id, b"k").unwrap(), None);
        let denied = Appraised::Denied(vec!["deny.x".into()]);
        assert_eq!(s.set_appraisal(&id, "c", denied.clone()), None);
        assert_eq!(
            s.set_appraisal(&id, "a", Appraised::Allowed),
            Some("a".into())
        );
        assert_eq!(
            s.set_appraisal(&id, "b", Appraised::Allowed),
            Some("a".into())
        );
        assert_eq!(s.appraisal(&id, b"k", "c"), Some(denied));
    }

    #[test]
    fn a_full_table_evicts_unattested_sessions_but_never_attested_ones() {
        let mut s = Sessions::with_capacity(SESSION_TTL, 2);
        let (a, _) = s.create(b"k").unwrap();
        s.take_nonce(&a, b"k").unwrap();
        s.finish(&a, Some(claims()));
        let (b, _) = s.create(b"k").unwrap();
        // Full: the unattested b makes room for c.
        let (c, _) = s.create(b"k").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.take_nonce(&b, b"k").unwrap_err().body.code, "no_session");
        assert!(s.attested(&a, b"k").is_ok());
        s.take_nonce(&c, b"k").unwrap();
        s.finish(&c, Some(claims()));
        // Both attested: refused.
        assert_eq!(s.create(b"k").unwrap_err().body.code, "too_many_sessions");
    }

    #[test]
    fn sessions_expire() {
        let mut s = Sessions::new(Duration::from_millis(0));
        let (id, _) = s.create(b"k").unwrap();
        assert_eq!(
            s.take_nonce(&id, b"k").unwrap_err().body.code,
            "session_expired"
        );
        assert_eq!(s.take_nonce(&id, b"k").unwrap_err().body.code, "no_session");
    }
}
