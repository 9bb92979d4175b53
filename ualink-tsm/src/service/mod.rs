//! The TSM service: one mutual-TLS 1.3 listener (rustls, ring) serving HTTP/1.1 (hyper 1)
//! to provider clients (admin certificates) and guest agents (KBS protocol 0.4.0 plus the
//! ualink endpoints). The endpoint reference is `ualink-tsm/API.md`.
//!
//! Bounds: at most [`ServiceConfig::max_connections`] connections (a semaphore; further
//! connections wait in the kernel backlog), a TLS handshake and request-header deadline
//! ([`ServiceConfig::header_timeout`]), request bodies ≤ 1 MiB (4 MiB for
//! `/kbs/v0/attest`), a per-request deadline ([`ServiceConfig::request_timeout`]).
//!
//! The core [`Tsm`] is synchronous: it sits behind a `std::sync::Mutex` and every call runs
//! on tokio's blocking pool (`spawn_blocking`), never on the reactor.
//!
//! Entry point: [`serve`], which binds, spawns the server and returns a [`BoundService`].

pub mod api;
pub mod error;
pub mod kbs;
mod routes;
pub mod session;
pub mod tls;

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use ualink_attest::ear::EarSigner;
use ualink_attest::pki::TrustAnchors;
use ualink_attest::snp::SnpVerifier;

use crate::offer::OfferBook;
use crate::tsm::{DeviceStatus, Tsm};
pub use error::{ApiError, ServiceError};
use session::Sessions;
pub use tls::{ClientRole, TlsMaterial, TlsPaths};

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Address to listen on (port 0 picks a free port; see [`BoundService::local_addr`]).
    pub listen: SocketAddr,
    /// TLS material directory; `None` = `STATE/tls`.
    pub tls_dir: Option<PathBuf>,
    /// Extra SANs for the server certificate (DNS names or IP addresses).
    pub extra_sans: Vec<String>,
    /// Trusted roots (DER) of simulated CVM platforms (`ualink_attest::sim`), tests and
    /// demo only; evidence chaining to one is the `sim` TEE (the policy refuses it unless
    /// `allow_sim_tee`). The AMD ARKs are always trusted.
    pub sim_cvm_roots: Vec<Vec<u8>>,
    /// Interval of the periodic re-attestation round (`None`: no timer).
    pub reattest_interval: Option<Duration>,
    /// Interval of hardware fault and TDISP ERROR processing (`Tsm::process_faults`; 2 s;
    /// `None`: no timer).
    pub fault_interval: Option<Duration>,
    /// KBS session lifetime (300 s).
    pub session_ttl: Duration,
    /// Concurrent connections (1,024).
    pub max_connections: usize,
    /// Deadline for the TLS handshake and for reading a request's headers (10 s).
    pub header_timeout: Duration,
    /// Deadline for handling one request (30 s).
    pub request_timeout: Duration,
}

impl ServiceConfig {
    /// Defaults from `ualink-tsm/API.md` on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            tls_dir: None,
            extra_sans: Vec::new(),
            sim_cvm_roots: Vec::new(),
            reattest_interval: None,
            fault_interval: Some(Duration::from_secs(2)),
            session_ttl: session::SESSION_TTL,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// A running service.
#[derive(Debug)]
pub struct BoundService {
    local_addr: SocketAddr,
    tls: TlsPaths,
    tsm: Arc<Mutex<Tsm>>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl BoundService {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the TLS material is (`tsm-ca.pem`, `admin.pem`, `admin.key`, ...).
    pub fn tls_paths(&self) -> &TlsPaths {
        &self.tls
    }

    /// The core, shared with the server (lock it only from blocking code, briefly).
    pub fn tsm(&self) -> Arc<Mutex<Tsm>> {
        self.tsm.clone()
    }

    /// Waits until the server stopped after the shutdown future completed (the final audit
    /// checkpoint is then written).
    pub async fn join(self) -> Result<(), ServiceError> {
        self.task
            .await
            .map_err(|e| ServiceError::Internal(format!("server task: {e}")))?
    }
}

/// Reads the identity key file the way [`crate::identity::TsmIdentity`] does (refusing a
/// group/other-readable file).
fn identity_pkcs8(tsm: &Tsm) -> Result<zeroize::Zeroizing<Vec<u8>>, ServiceError> {
    use std::os::unix::fs::PermissionsExt;
    let path = tsm.state_dir().join(crate::identity::KEY_FILE);
    let meta = std::fs::metadata(&path)
        .map_err(|e| ServiceError::Tls(format!("identity key {}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ServiceError::Tls(format!(
            "{} is readable by group or others; refusing to use it",
            path.display()
        )));
    }
    std::fs::read(&path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| ServiceError::Tls(format!("identity key {}: {e}", path.display())))
}

/// Binds `cfg.listen`, creates or loads the TLS material, spawns the server (and the
/// re-attestation timer) and returns. The server stops accepting when `shutdown`
/// completes, lets in-flight requests finish, writes a final audit checkpoint and ends
/// ([`BoundService::join`]).
pub async fn serve(
    tsm: Tsm,
    cfg: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<BoundService, ServiceError> {
    let pkcs8 = identity_pkcs8(&tsm)?;
    let tls_dir = cfg
        .tls_dir
        .clone()
        .unwrap_or_else(|| tsm.state_dir().join("tls"));
    let material = TlsMaterial::load_or_create(TlsPaths::new(tls_dir), &pkcs8, &cfg.extra_sans)?;
    let (server_cfg, verifier) = material.server_config()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let ear =
        EarSigner::from_pkcs8(&pkcs8).map_err(|e| ServiceError::Tls(format!("EAR signer: {e}")))?;
    let mut anchors =
        TrustAnchors::amd_builtin().map_err(|e| ServiceError::Tls(format!("AMD roots: {e}")))?;
    for der in &cfg.sim_cvm_roots {
        anchors = anchors
            .with_explicit_root_der(der)
            .map_err(|e| ServiceError::Tls(format!("sim CVM root: {e}")))?;
    }
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| ServiceError::Listen(format!("{}: {e}", cfg.listen)))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| ServiceError::Listen(e.to_string()))?;
    let tsm = Arc::new(Mutex::new(tsm));
    let shared = Arc::new(Shared {
        tsm: tsm.clone(),
        sessions: Mutex::new(Sessions::new(cfg.session_ttl)),
        offers: Mutex::new(OfferBook::default()),
        events: Mutex::new(EventLog::default()),
        snp: SnpVerifier::new(anchors),
        ear,
        ca_pem: material.ca_pem.clone(),
        verifier,
        session_ttl: cfg.session_ttl,
    });
    let tls = material.paths.clone();
    let task = tokio::spawn(run(listener, acceptor, shared, cfg, shutdown));
    Ok(BoundService {
        local_addr,
        tls,
        tsm,
        task,
    })
}

/// State shared by every connection.
pub(crate) struct Shared {
    pub(crate) tsm: Arc<Mutex<Tsm>>,
    pub(crate) sessions: Mutex<Sessions>,
    pub(crate) offers: Mutex<OfferBook>,
    pub(crate) events: Mutex<EventLog>,
    pub(crate) snp: SnpVerifier,
    pub(crate) ear: EarSigner,
    pub(crate) ca_pem: String,
    pub(crate) verifier: Arc<tls::RoleVerifier>,
    pub(crate) session_ttl: Duration,
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, ApiError> {
    m.lock()
        .map_err(|_| ApiError::internal("a service lock was poisoned by a failed worker"))
}

impl Shared {
    /// Runs a read-only `f` on the core in the blocking pool (no event diff).
    pub(crate) async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Tsm) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let t = lock(&me.tsm)?;
            f(&t)
        })
        .await
        .map_err(|e| ApiError::internal(format!("core worker: {e}")))?
    }

    /// Runs `f` on the core in the blocking pool; device/TDI changes it causes become events.
    pub(crate) async fn core<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Tsm) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut t = lock(&me.tsm)?;
            let before = Snapshot::of(&t);
            let r = f(&mut t);
            let after = Snapshot::of(&t);
            drop(t);
            if let Ok(mut ev) = lock(&me.events) {
                ev.diff(&before, &after);
            }
            r
        })
        .await
        .map_err(|e| ApiError::internal(format!("core worker: {e}")))?
    }
}

async fn run(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    cfg: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    if let Some(every) = cfg.reattest_interval {
        tokio::spawn(reattest_timer(shared.clone(), every, stop_rx.clone()));
    }
    if let Some(every) = cfg.fault_interval {
        tokio::spawn(fault_timer(shared.clone(), every, stop_rx.clone()));
    }
    let permits = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let mut stop = stop_rx.clone();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                // Transient accept errors (EMFILE, ECONNABORTED): back off briefly.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let cfg = cfg.clone();
        let stop = stop_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            connection(tcp, peer, acceptor, shared, cfg, stop).await;
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    // In-flight connections finish (each is told to close after its current request).
    while conns.join_next().await.is_some() {}
    let tsm = shared.tsm.clone();
    tokio::task::spawn_blocking(move || {
        let mut t = tsm
            .lock()
            .map_err(|_| ServiceError::Internal("core lock poisoned".into()))?;
        t.final_checkpoint().map_err(ServiceError::Core)
    })
    .await
    .map_err(|e| ServiceError::Internal(format!("shutdown: {e}")))?
}

async fn connection(
    tcp: tokio::net::TcpStream,
    _peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    cfg: ServiceConfig,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(cfg.header_timeout, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        // Handshake refused (no/unknown certificate, TLS 1.2, ...) or too slow.
        _ => return,
    };
    let role = match tls::connection_role(&shared.verifier, tls.get_ref().1.peer_certificates()) {
        Ok(r) => Arc::new(r),
        Err(_) => return,
    };
    let timeout = cfg.request_timeout;
    let svc = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        let role = role.clone();
        async move {
            let rsp = match tokio::time::timeout(timeout, routes::handle(shared, role, req)).await {
                Ok(r) => r,
                Err(_) => routes::error_response(&ApiError::new(
                    hyper::StatusCode::SERVICE_UNAVAILABLE,
                    "request_timeout",
                    "the request did not complete in time",
                )),
            };
            Ok::<_, std::convert::Infallible>(rsp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(tls), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(cfg.request_timeout, conn).await;
        }
    }
}

async fn reattest_timer(shared: Arc<Shared>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: bring-up just attested everything
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // A failed round (audit log unavailable) is retried at the next tick; its
                // device outcomes are in the audit log and the events feed.
                let _ = shared.core(|t| t.reattest_all().map_err(ApiError::from)).await;
                // Then the pairs whose keys hit a usage threshold or their age limit.
                let now = u64::try_from(ualink_attest::UnixTime::now().secs()).unwrap_or(0);
                if let Ok(rotated) = shared
                    .core(move |t| {
                        let pairs = t.rotate_due(now)?;
                        let owners: Vec<(u32, u16, (u16, u16))> = pairs
                            .iter()
                            .flat_map(|(a, b)| {
                                routes::owners_of(t, &[*a, *b])
                                    .into_iter()
                                    .map(move |(tn, x)| (tn, x, (*a, *b)))
                            })
                            .collect();
                        Ok(owners)
                    })
                    .await
                {
                    if let Ok(mut ev) = lock(&shared.events) {
                        for (tenant, accel, (a, b)) in rotated {
                            ev.push(
                                tenant,
                                "keys_rotated",
                                Some(accel),
                                format!("link keys between {a} and {b} rotated (due)"),
                            );
                        }
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

impl Tsm {
    /// Signs a final audit checkpoint without consuming the core (service shutdown).
    pub(crate) fn final_checkpoint(&mut self) -> crate::Result<()> {
        self.audit.checkpoint().map(|_| ())
    }
}

async fn fault_timer(shared: Arc<Shared>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // TDIs in ERROR and reset devices become events through the diff; pairs
                // whose keys an integrity failure invalidated are told to their owners.
                let r = shared
                    .core(|t| {
                        let s = t.process_faults()?;
                        let mut told = Vec::new();
                        for (a, b) in &s.stopped_pairs {
                            for (tenant, x) in routes::owners_of(t, &[*a, *b]) {
                                told.push((tenant, x, *a, *b));
                            }
                        }
                        Ok(told)
                    })
                    .await;
                if let (Ok(told), Ok(mut ev)) = (r, lock(&shared.events)) {
                    for (tenant, accel, a, b) in told {
                        ev.push(
                            tenant,
                            "revoked",
                            Some(accel),
                            format!("link keys between {a} and {b} invalidated (integrity failure)"),
                        );
                    }
                }
            }
            _ = stop.changed() => return,
        }
    }
}

// ------------------------------------------------------------------ events

/// Per-accelerator facts the events feed is computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DeviceFacts {
    tenant: Option<u32>,
    epoch: u64,
    quarantined: bool,
    tdi: Option<ualink_kdrv::TdiState>,
}

/// A snapshot of every device's facts.
#[derive(Debug, Default)]
pub(crate) struct Snapshot(BTreeMap<u16, DeviceFacts>);

impl Snapshot {
    fn of(t: &Tsm) -> Self {
        let mut owner = BTreeMap::new();
        if let Ok(ts) = t.tenants() {
            for tr in ts {
                if let Ok(Some(v)) = t.vpod(tr.id) {
                    for m in v.members {
                        owner.insert(m, tr.id);
                    }
                }
            }
        }
        Self(
            t.devices()
                .into_iter()
                .map(|d| {
                    let tdi = ualink_sim::AccelId::new(d.id)
                        .ok()
                        .and_then(|a| t.driver().tdi(a.to_kdrv()))
                        .map(|(s, _)| s);
                    (
                        d.id,
                        DeviceFacts {
                            tenant: owner.get(&d.id).copied(),
                            epoch: d.epoch,
                            quarantined: matches!(d.status, DeviceStatus::Quarantined { .. }),
                            tdi,
                        },
                    )
                })
                .collect(),
        )
    }
}

/// Most events kept (older ones are dropped; `next` still advances).
const MAX_EVENTS: usize = 4096;

/// The events feed: (tenant, event), global sequence.
#[derive(Debug, Default)]
pub(crate) struct EventLog {
    events: VecDeque<(u32, api::Event)>,
    seq: u64,
}

impl EventLog {
    pub(crate) fn push(&mut self, tenant: u32, kind: &str, accel: Option<u16>, detail: String) {
        self.seq = self.seq.saturating_add(1);
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back((
            tenant,
            api::Event {
                seq: self.seq,
                kind: kind.to_string(),
                accelerator_id: accel,
                detail,
            },
        ));
    }

    fn diff(&mut self, before: &Snapshot, after: &Snapshot) {
        use ualink_kdrv::TdiState as S;
        for (id, b) in &before.0 {
            let Some(tenant) = b.tenant else { continue };
            let a = after.0.get(id);
            if let Some(a) = a {
                if a.epoch != b.epoch {
                    self.push(
                        tenant,
                        "epoch_changed",
                        Some(*id),
                        format!("attestation epoch {} -> {}", b.epoch, a.epoch),
                    );
                }
                if a.quarantined && !b.quarantined {
                    self.push(
                        tenant,
                        "revoked",
                        Some(*id),
                        "device quarantined at re-attestation: its keys, TDI and shares are revoked"
                            .into(),
                    );
                }
            }
            let was_up = matches!(b.tdi, Some(S::ConfigLocked | S::Run));
            let now = a.and_then(|a| a.tdi);
            match now {
                Some(S::Error) if b.tdi != Some(S::Error) => self.push(
                    tenant,
                    "tdi_error",
                    Some(*id),
                    "the TDI entered ERROR".into(),
                ),
                None | Some(S::ConfigUnlocked) if was_up => self.push(
                    tenant,
                    "tdi_stopped",
                    Some(*id),
                    "the TDI was stopped".into(),
                ),
                _ => {}
            }
        }
    }

    /// Events of `tenant` after `after` (at most `limit`), and the next cursor.
    pub(crate) fn since(&self, tenant: u32, after: u64, limit: usize) -> (Vec<api::Event>, u64) {
        let evs: Vec<api::Event> = self
            .events
            .iter()
            .filter(|(t, e)| *t == tenant && e.seq > after)
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect();
        let next = evs.last().map(|e| e.seq).unwrap_or(after);
        (evs, next)
    }
}
