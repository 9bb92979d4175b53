//! Request routing, role checks and the endpoint handlers (reference: `ualink-tsm/API.md`).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use ualink_attest::tdi_report::TsmEvidence;
use ualink_attest::UnixTime;

use super::api::{self, RightName};
use super::error::ApiError;
use super::kbs;
use super::session::{Appraised, CvmClaims};
use super::tls::ClientRole;
use super::{lock, Shared};
use crate::offer::Offer;
use crate::tsm::{DeviceStatus, ShareRequest, TenantRecord, Tsm};
use crate::TsmError;

/// Body limit of every request but `/kbs/v0/attest`.
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Body limit of `/kbs/v0/attest` (evidence with certificate chains).
pub(crate) const MAX_ATTEST_BODY: usize = 4 << 20;
/// Most keys in one agent key hand-over.
const MAX_AGENT_KEYS: usize = 65_536;
/// Most events returned by one poll.
const MAX_EVENTS_PER_POLL: usize = 256;

type Rsp = Response<Full<Bytes>>;
type ApiResult = Result<Rsp, ApiError>;

/// The response for a refused request.
pub(crate) fn error_response(e: &ApiError) -> Rsp {
    let mut r = Response::new(Full::new(Bytes::from(e.to_json())));
    *r.status_mut() = e.status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json<T: Serialize>(status: StatusCode, v: &T) -> ApiResult {
    let body =
        serde_json::to_vec(v).map_err(|e| ApiError::internal(format!("encoding JSON: {e}")))?;
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn ok<T: Serialize>(v: &T) -> ApiResult {
    json(StatusCode::OK, v)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("request body: {e}")))
}

/// [`parse`] for a KBS body whose kbs-types struct tolerates unknown members: the top level
/// must be an object whose members are all in `allowed` (as for the ualink endpoints, an
/// unknown member is refused rather than ignored).
fn parse_kbs<T: DeserializeOwned>(body: &[u8], allowed: &[&str]) -> Result<T, ApiError> {
    let v: serde_json::Value = parse(body)?;
    let Some(obj) = v.as_object() else {
        return Err(ApiError::bad_request(
            "malformed_json",
            "request body: expected a JSON object",
        ));
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            "malformed_json",
            format!("request body: unknown member {k:?} (expected {allowed:?})"),
        ));
    }
    serde_json::from_value(v)
        .map_err(|e| ApiError::bad_request("malformed_json", format!("request body: {e}")))
}

/// Reads the body within `limit` bytes (413 `body_too_large` beyond). The body is held in a
/// zeroizing buffer (agent key hand-overs carry key material); the transport's own buffers
/// (rustls, hyper) are reused and overwritten, not zeroized.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    };
    if let Some(len) = req.headers().get(CONTENT_LENGTH) {
        let n: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ApiError::bad_request("bad_header", "Content-Length"))?;
        if n > limit as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(zeroize::Zeroizing::new(Vec::from(c.to_bytes()))),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(
            "body_read_failed",
            format!("reading the request body: {e}"),
        )),
    }
}

/// Handles one request; never panics, every refusal is a JSON error.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    role: Arc<ClientRole>,
    req: Request<Incoming>,
) -> Rsp {
    match route(shared, role, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn cookie(req_headers: &hyper::HeaderMap) -> Option<String> {
    for v in req_headers.get_all(COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                if k == kbs::SESSION_COOKIE
                    && v.len() == 32
                    && v.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Some(v.to_string());
                }
            }
        }
    }
    None
}

fn require_admin(role: &ClientRole) -> Result<(), ApiError> {
    match role {
        ClientRole::Admin => Ok(()),
        ClientRole::AgentKey(_) => Err(ApiError::forbidden(
            "wrong_role",
            "this endpoint is for provider (admin) clients",
        )),
    }
}

fn agent_key(role: &ClientRole) -> Result<&[u8], ApiError> {
    match role {
        ClientRole::AgentKey(k) => Ok(k),
        ClientRole::Admin => Err(ApiError::forbidden(
            "wrong_role",
            "this endpoint is for guest agents (a self-signed P-256 key that attests)",
        )),
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_request("invalid_request", format!("{what} {s:?} is not a number"))
    })
}

async fn route(shared: Arc<Shared>, role: Arc<ClientRole>, req: Request<Incoming>) -> ApiResult {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let headers = req.headers().clone();
    let limit = if path == "/kbs/v0/attest" {
        MAX_ATTEST_BODY
    } else {
        MAX_BODY
    };
    let body = read_body(req, limit).await?;
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let m = &method;
    match segs.as_slice() {
        // ---------------------------------------------------------------- KBS
        ["kbs", "v0", "auth"] if m == Method::POST => kbs_auth(&shared, &role, &body),
        ["kbs", "v0", "attest"] if m == Method::POST => {
            kbs_attest(&shared, &role, &headers, &body).await
        }
        ["kbs", "v0", "resource", repo, kind, tag] if m == Method::GET => {
            kbs_resource(&shared, &role, &headers, repo, kind, tag).await
        }
        // ---------------------------------------------------------------- any role
        ["ualink", "v0", "tsm"] if m == Method::GET => tsm_info(&shared).await.and_then(|i| ok(&i)),
        // ---------------------------------------------------------------- provider
        ["ualink", "v0", "devices"] if m == Method::GET => {
            require_admin(&role)?;
            let d = shared.read(|t| Ok(t.devices())).await?;
            ok(&d)
        }
        ["ualink", "v0", "devices", id] if m == Method::GET => {
            require_admin(&role)?;
            let id: u16 = num(id, "device id")?;
            ok(&shared.read(move |t| Ok(t.device(id)?)).await?)
        }
        ["ualink", "v0", "devices", id, "reattest"] if m == Method::POST => {
            require_admin(&role)?;
            let id: u16 = num(id, "device id")?;
            ok(&shared.core(move |t| Ok(t.reattest(id)?)).await?)
        }
        ["ualink", "v0", "status"] if m == Method::GET => {
            require_admin(&role)?;
            ok(&shared.read(status).await?)
        }
        ["ualink", "v0", "tenants"] if m == Method::POST => {
            require_admin(&role)?;
            let r: api::TenantCreate = parse(&body)?;
            if !valid_name(&r.name) {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "tenant name: 1-64 characters of [A-Za-z0-9._-]",
                ));
            }
            let name = r.name.clone();
            let opts = crate::tsm::TenantOptions {
                lead_keys: r.lead_keys,
            };
            let rec = shared
                .core(move |t| Ok(t.tenant_add_with(r.id, &name, opts)?))
                .await?;
            json(StatusCode::CREATED, &rec)
        }
        ["ualink", "v0", "tenants", name] if m == Method::DELETE => {
            require_admin(&role)?;
            let t = tenant_by_name(&shared, name).await?;
            shared.core(move |c| Ok(c.offboard(t.id)?)).await?;
            lock(&shared.offers)?.forget_tenant(t.id);
            ok(&serde_json::json!({"offboarded": t.name}))
        }
        ["ualink", "v0", "tenants", name, "vpod"] if m == Method::POST => {
            require_admin(&role)?;
            let r: api::VpodCreate = parse(&body)?;
            let t = tenant_by_name(&shared, name).await?;
            let v = shared
                .core(move |c| Ok(c.vpod_create(t.id, &r.members)?))
                .await?;
            json(StatusCode::CREATED, &v)
        }
        ["ualink", "v0", "tenants", name, "windows"] if m == Method::POST => {
            require_admin(&role)?;
            let r: api::WindowCreate = parse(&body)?;
            let t = tenant_by_name(&shared, name).await?;
            let w = shared
                .core(move |c| Ok(c.window_create(t.id, r.accelerator_id, r.base, r.len)?))
                .await?;
            json(StatusCode::CREATED, &api::WindowCreated { window_id: w })
        }
        ["ualink", "v0", "tenants", name, "keys", "provision"] if m == Method::POST => {
            require_admin(&role)?;
            let t = tenant_by_name(&shared, name).await?;
            if t.lead_keys {
                return Err(ApiError::conflict(
                    "keys_from_lead_agent",
                    "this tenant's lead agent supplies its link keys (lead_keys = true)",
                ));
            }
            let slots = shared.core(move |c| Ok(c.provision_keys(t.id)?)).await?;
            ok(&api::KeysProgrammed {
                programmed: slots.len(),
                fingerprints: slots.into_iter().map(|s| s.fingerprint).collect(),
            })
        }
        ["ualink", "v0", "tenants", name, "tdis", accel, "lock"] if m == Method::POST => {
            require_admin(&role)?;
            let t = tenant_by_name(&shared, name).await?;
            let a: u16 = num(accel, "accelerator id")?;
            let bundle = shared.core(move |c| Ok(c.tdi_lock(t.id, a)?)).await?;
            ok(&serde_json::json!({
                "state": "CONFIG_LOCKED",
                "report_digest": digest_hex(&bundle),
            }))
        }
        ["ualink", "v0", "links", a, b, "key"] if m == Method::POST => {
            // Keys the link between two attested accelerators of different vPods, as a
            // cross-tenant share over it needs (the share policy requires live keys).
            require_admin(&role)?;
            let a: u16 = num(a, "accelerator id")?;
            let b: u16 = num(b, "accelerator id")?;
            let slots = shared.core(move |c| Ok(c.key_link(a, b)?)).await?;
            ok(&api::KeysProgrammed {
                programmed: slots.len(),
                fingerprints: slots.into_iter().map(|s| s.fingerprint).collect(),
            })
        }
        ["ualink", "v0", "links", a, b, "rotate"] if m == Method::POST => {
            require_admin(&role)?;
            let a: u16 = num(a, "accelerator id")?;
            let b: u16 = num(b, "accelerator id")?;
            let sh = shared.clone();
            let (slots, owners) = shared
                .core(move |c| {
                    let slots = c.rotate(a, b)?;
                    Ok((slots, owners_of(c, &[a, b])))
                })
                .await?;
            let mut ev = lock(&sh.events)?;
            for (tenant, accel) in owners {
                ev.push(
                    tenant,
                    "keys_rotated",
                    Some(accel),
                    format!("link keys between {a} and {b} rotated"),
                );
            }
            drop(ev);
            ok(&api::KeysProgrammed {
                programmed: slots.len(),
                fingerprints: slots.into_iter().map(|s| s.fingerprint).collect(),
            })
        }
        // ---------------------------------------------------------------- agents
        ["ualink", "v0", "tenants", name, rest @ ..] => {
            agent_route(
                &shared,
                &role,
                &headers,
                m,
                name,
                rest,
                query.as_deref(),
                &body,
            )
            .await
        }
        _ => Err(ApiError::not_found(format!("no endpoint {method} {path}"))),
    }
}

fn digest_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA384, b))
}

/// Tenants owning any of `accels`, as (tenant, accel).
pub(crate) fn owners_of(t: &Tsm, accels: &[u16]) -> Vec<(u32, u16)> {
    let mut out = Vec::new();
    if let Ok(ts) = t.tenants() {
        for tr in ts {
            if let Ok(Some(v)) = t.vpod(tr.id) {
                for a in accels {
                    if v.members.contains(a) {
                        out.push((tr.id, *a));
                    }
                }
            }
        }
    }
    out
}

async fn tenant_by_name(shared: &Arc<Shared>, name: &str) -> Result<TenantRecord, ApiError> {
    if !valid_name(name) {
        return Err(ApiError::not_found(format!("tenant {name:?}")));
    }
    let n = name.to_string();
    shared
        .read(move |t| {
            t.tenants()?
                .into_iter()
                .find(|r| r.name == n)
                .ok_or_else(|| ApiError::not_found(format!("tenant {n}")))
        })
        .await
}

fn status(t: &Tsm) -> Result<api::Status, ApiError> {
    let devs = t.devices();
    let count = |f: &dyn Fn(&DeviceStatus) -> bool| devs.iter().filter(|d| f(&d.status)).count();
    let tenants = t.tenants()?;
    let mut vpods = 0;
    for tr in &tenants {
        if t.vpod(tr.id)?.is_some() {
            vpods += 1;
        }
    }
    let size = std::fs::metadata(t.state_dir().join(crate::tsm::AUDIT_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    Ok(api::Status {
        devices: api::DeviceCounts {
            attested: count(&|s| matches!(s, DeviceStatus::Attested)),
            quarantined: count(&|s| matches!(s, DeviceStatus::Quarantined { .. })),
            pending: count(&|s| matches!(s, DeviceStatus::Pending)),
        },
        tenants: tenants.len(),
        vpods,
        audit: api::AuditStatus {
            records: t.audit().size(),
            size,
            writable: t.audit().is_writable(),
        },
        policy_digest: t.policy_digest_hex(),
    })
}

async fn tsm_info(shared: &Arc<Shared>) -> Result<api::TsmInfo, ApiError> {
    let ca_pem = shared.ca_pem.clone();
    shared
        .read(move |t| {
            let id = t.identity();
            let TsmEvidence::SnpReport { report, certs } = id.evidence();
            let mut chain = vec![api::CertEntry {
                cert_type: "vcek".into(),
                data: STANDARD.encode(&certs.leaf),
            }];
            chain.extend(certs.intermediates.iter().map(|i| api::CertEntry {
                cert_type: "ask".into(),
                data: STANDARD.encode(i),
            }));
            Ok(api::TsmInfo {
                public_key: hex::encode(id.public_key()),
                evidence: STANDARD.encode(report),
                cert_chain: chain,
                ca_pem,
            })
        })
        .await
}

// -------------------------------------------------------------------- KBS

fn kbs_auth(shared: &Arc<Shared>, role: &ClientRole, body: &[u8]) -> ApiResult {
    let key = agent_key(role)?;
    let r: kbs_types::Request = parse_kbs(body, &["version", "tee", "extra-params"])?;
    if r.version != kbs::PROTOCOL_VERSION {
        return Err(ApiError::bad_request(
            "unsupported_version",
            format!(
                "KBS protocol {:?}; this server speaks {}",
                r.version,
                kbs::PROTOCOL_VERSION
            ),
        ));
    }
    match r.tee {
        kbs_types::Tee::Snp => {}
        kbs_types::Tee::Tdx => {
            return Err(ApiError::bad_request(
                "tee_not_supported",
                "tdx: no TDX collateral is configured on this TSM",
            ))
        }
        other => {
            return Err(ApiError::bad_request(
                "tee_not_supported",
                format!("TEE {other:?} is not accepted (snp only; sim evidence uses tee snp)"),
            ))
        }
    }
    let (id, nonce) = lock(&shared.sessions)?.create(key)?;
    let mut rsp = ok(&kbs_types::Challenge {
        nonce,
        extra_params: serde_json::Value::String(String::new()),
    })?;
    let c = format!(
        "{}={id}; Path=/; Secure; HttpOnly; Max-Age={}",
        kbs::SESSION_COOKIE,
        shared.session_ttl.as_secs()
    );
    rsp.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&c).map_err(|_| ApiError::internal("cookie header"))?,
    );
    Ok(rsp)
}

fn session_id(headers: &hyper::HeaderMap) -> Result<String, ApiError> {
    cookie(headers).ok_or_else(|| {
        ApiError::unauthenticated(
            "no_session",
            "no kbs-session-id cookie (POST /kbs/v0/auth, then /kbs/v0/attest)",
        )
    })
}

async fn kbs_attest(
    shared: &Arc<Shared>,
    role: &ClientRole,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> ApiResult {
    let key = agent_key(role)?.to_vec();
    let sid = session_id(headers)?;
    let nonce = lock(&shared.sessions)?.take_nonce(&sid, &key)?;
    // From here the nonce is spent: any failure ends the session.
    let r = attest_inner(shared, &key, &nonce, body).await;
    let mut sessions = lock(&shared.sessions)?;
    match r {
        Ok((claims, token)) => {
            sessions.finish(&sid, Some(claims));
            ok(&serde_json::json!({ "token": token }))
        }
        Err(e) => {
            sessions.finish(&sid, None);
            Err(e)
        }
    }
}

async fn attest_inner(
    shared: &Arc<Shared>,
    key: &[u8],
    nonce: &str,
    body: &[u8],
) -> Result<(CvmClaims, String), ApiError> {
    let att: kbs_types::Attestation =
        parse_kbs(body, &["runtime-data", "tee-evidence", "init-data"])?;
    if att.init_data.is_some() {
        return Err(ApiError::bad_request(
            "init_data_not_supported",
            "init-data is not bound by this TSM; send null",
        ));
    }
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        att.runtime_data.nonce.as_bytes(),
        nonce.as_bytes(),
    )) {
        return Err(ApiError::unauthenticated(
            "nonce_mismatch",
            "runtime-data.nonce is not this session's nonce",
        ));
    }
    let point = kbs::tee_pubkey_point(&att.runtime_data.tee_pubkey)?;
    if point.as_slice() != key {
        return Err(ApiError::forbidden(
            "tee_pubkey_not_tls_key",
            "runtime-data.tee-pubkey is not the public key of this TLS client certificate",
        ));
    }
    let (_, expected) = ualink_guest_agent::kbs::binding(
        nonce,
        &att.runtime_data.tee_pubkey,
        &att.tee_evidence.additional_evidence,
    )
    .map_err(|e| ApiError::bad_request("malformed_evidence", format!("binding: {e}")))?;
    let cvm_id = kbs::cvm_id(&point);
    let sh = shared.clone();
    let primary = att.tee_evidence.primary_evidence;
    tokio::task::spawn_blocking(move || {
        let claims = kbs::verify_snp(&primary, expected, &sh.snp, cvm_id, UnixTime::now())?;
        let ttl = i64::try_from(sh.session_ttl.as_secs()).unwrap_or(300);
        let token = kbs::ear_token(&sh.ear, &claims, ttl)?;
        Ok((claims, token))
    })
    .await
    .map_err(|e| ApiError::internal(format!("verifier worker: {e}")))?
}

/// The attested session of the request and its claims.
fn session_claims(
    shared: &Shared,
    role: &ClientRole,
    headers: &hyper::HeaderMap,
) -> Result<(String, Vec<u8>, CvmClaims), ApiError> {
    let key = agent_key(role)?.to_vec();
    let sid = session_id(headers)?;
    let claims = lock(&shared.sessions)?.attested(&sid, &key)?;
    Ok((sid, key, claims))
}

/// The tenant `name` if the session's CVM may act for it: the session is bound to the first
/// tenant its CVM was allowed for (`wrong_tenant` for any other), and the `ualink.cvm`
/// appraisal runs once per (session, tenant), audited.
async fn tenant_access(
    shared: &Arc<Shared>,
    role: &ClientRole,
    headers: &hyper::HeaderMap,
    name: &str,
) -> Result<TenantRecord, ApiError> {
    let (sid, key, claims) = session_claims(shared, role, headers)?;
    // Sessions are bound to a tenant *instance* (name and number): a tenant offboarded and
    // created again under the same name is a new tenant the session was never appraised for.
    let bound = lock(&shared.sessions)?.bound_tenant(&sid, &key)?;
    let wrong = |b: &str| {
        ApiError::forbidden(
            "wrong_tenant",
            format!(
                "this session acts for tenant {}, not {name}",
                b.split('#').next().unwrap_or_default()
            ),
        )
    };
    if let Some(b) = &bound {
        if b.split('#').next() != Some(name) {
            return Err(wrong(b));
        }
    }
    let t = tenant_by_name(shared, name).await?;
    let instance = format!("{}#{}", t.name, t.id);
    if let Some(b) = &bound {
        if *b != instance {
            return Err(ApiError::forbidden(
                "wrong_tenant",
                format!("tenant {name} was re-created since this session was bound to it"),
            ));
        }
    }
    let cached = lock(&shared.sessions)?.appraisal(&sid, &key, &instance);
    let verdict = match cached {
        Some(a) => a,
        None => {
            let n = name.to_string();
            let d = shared
                .core(move |c| Ok(c.cvm_appraise(&claims, &n)?))
                .await?;
            let a = if d.allow {
                Appraised::Allowed
            } else {
                Appraised::Denied(d.rules)
            };
            let bound = lock(&shared.sessions)?.set_appraisal(&sid, &instance, a.clone());
            if a == Appraised::Allowed && bound.as_deref() != Some(instance.as_str()) {
                return Err(wrong(bound.as_deref().unwrap_or_default()));
            }
            a
        }
    };
    match verdict {
        Appraised::Allowed => Ok(t),
        Appraised::Denied(rules) => Err(ApiError::forbidden(
            "cvm_denied",
            format!(
                "CVM appraisal for tenant {name} denied by {}",
                rules.join(", ")
            ),
        )
        .with_rules(rules)),
    }
}

async fn kbs_resource(
    shared: &Arc<Shared>,
    role: &ClientRole,
    headers: &hyper::HeaderMap,
    repo: &str,
    kind: &str,
    tag: &str,
) -> ApiResult {
    let (_, key, _) = session_claims(shared, role, headers)?;
    let t = tenant_access(shared, role, headers, repo).await?;
    let plaintext = match (kind, tag) {
        ("vpod", "config") => serde_json::to_vec(&vpod_view(shared, &t).await?),
        ("tsm", "evidence") => serde_json::to_vec(&tsm_info(shared).await?),
        _ => {
            return Err(ApiError::not_found(format!(
                "no resource {repo}/{kind}/{tag}"
            )))
        }
    }
    .map_err(|e| ApiError::internal(format!("encoding the resource: {e}")))?;
    let plaintext = zeroize::Zeroizing::new(plaintext);
    let jwe = kbs::encrypt_jwe(&key, &plaintext)?;
    let mut r = Response::new(Full::new(Bytes::from(jwe)));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

// -------------------------------------------------------------------- agents

fn tdi_state_name(s: ualink_kdrv::TdiState) -> &'static str {
    match s {
        ualink_kdrv::TdiState::ConfigUnlocked => "CONFIG_UNLOCKED",
        ualink_kdrv::TdiState::ConfigLocked => "CONFIG_LOCKED",
        ualink_kdrv::TdiState::Run => "RUN",
        ualink_kdrv::TdiState::Error => "ERROR",
    }
}

async fn vpod_view(shared: &Arc<Shared>, t: &TenantRecord) -> Result<api::VpodView, ApiError> {
    let lead = t.lead_keys;
    let t = t.clone();
    shared
        .read(move |c| {
            let v = c
                .vpod(t.id)?
                .ok_or_else(|| ApiError::not_found(format!("tenant {} has no vPod", t.name)))?;
            let mut tdis = Vec::new();
            let mut epoch_sum = 0u64;
            for m in &v.members {
                let d = c.device(*m)?;
                epoch_sum = epoch_sum.saturating_add(d.epoch);
                let state = ualink_sim::AccelId::new(*m)
                    .ok()
                    .and_then(|a| c.driver().tdi(a.to_kdrv()))
                    .map(|(s, _)| tdi_state_name(s))
                    .unwrap_or("CONFIG_UNLOCKED");
                tdis.push(api::TdiView {
                    accelerator_id: *m,
                    state: state.into(),
                    epoch: d.epoch,
                    report_digest: c.tdi_report(t.id, *m).map(digest_hex),
                });
            }
            let key_layout = c
                .lead_key_layout(t.id)?
                .into_iter()
                .map(|(tx, port, rx)| api::KeySlotId { tx, port, rx })
                .collect();
            Ok(api::VpodView {
                tenant: t.name.clone(),
                members: v.members,
                lead_keys: lead,
                tdis,
                epoch_sum,
                key_layout,
                next_key_epoch: c.lead_key_min_epoch(t.id)?,
            })
        })
        .await
}

/// The current report bundle of `tenant`'s TDI on `a` and its device epoch.
fn current_report(c: &Tsm, tenant: u32, a: u16) -> Result<(Vec<u8>, u64), ApiError> {
    let b = c.tdi_report(tenant, a).ok_or_else(|| {
        ApiError::not_found(format!("no TDI report for accelerator {a} (not locked)"))
    })?;
    Ok((b.to_vec(), c.device(a)?.epoch))
}

/// The device claims of `a`: its appraised identity and the DHE/AEAD of the ALGORITHMS
/// message in its evidence bundle (`None` without evidence or if it does not parse).
fn device_claims(c: &Tsm, a: u16) -> Option<api::DeviceClaimsView> {
    use ualink_spdm::algo::{AeadAlg, DheGroup};
    let d = c.device(a).ok()?;
    let bundle =
        ualink_attest::spdm_evidence::DeviceEvidenceBundle::decode(c.device_evidence(a)?).ok()?;
    let n = ualink_spdm::msg::algorithms::Algorithms::parse(bundle.vca.get(5)?)
        .ok()?
        .negotiated()
        .ok()?;
    Some(api::DeviceClaimsView {
        device_id: crate::tsm::device_subject(a),
        vendor: d.vendor,
        model: d.model,
        firmware_version: d.firmware,
        dhe: match n.dhe {
            DheGroup::Secp256r1 => "secp256r1",
            DheGroup::Secp384r1 => "secp384r1",
        }
        .into(),
        aead: match n.aead {
            AeadAlg::Aes256Gcm => "aes-256-gcm",
        }
        .into(),
    })
}

fn check_digest(bundle: &[u8], claimed: &str) -> Result<(), ApiError> {
    if !digest_hex(bundle).eq_ignore_ascii_case(claimed) {
        return Err(ApiError::conflict(
            "stale_report",
            "report_digest is not the current TDI report bundle's; fetch the report again",
        ));
    }
    Ok(())
}

fn parse_rights(r: &[RightName]) -> Vec<ualink_policy::input::Right> {
    let mut v: Vec<RightName> = r.to_vec();
    v.sort();
    v.dedup();
    v.into_iter().map(Into::into).collect()
}

#[allow(clippy::too_many_arguments)]
async fn agent_route(
    shared: &Arc<Shared>,
    role: &ClientRole,
    headers: &hyper::HeaderMap,
    m: &Method,
    name: &str,
    rest: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> ApiResult {
    // Role first: an admin on an agent endpoint is told so before anything else.
    agent_key(role)?;
    let t = tenant_access(shared, role, headers, name).await?;
    match rest {
        ["vpod"] if m == Method::GET => ok(&vpod_view(shared, &t).await?),
        ["tdis", accel, "report"] if m == Method::GET => {
            let a: u16 = num(accel, "accelerator id")?;
            let (bundle, epoch, device) = shared
                .read(move |c| {
                    let (b, e) = current_report(c, t.id, a)?;
                    Ok((b, e, device_claims(c, a)))
                })
                .await?;
            ok(&api::TdiReportView {
                report_digest: digest_hex(&bundle),
                bundle: STANDARD.encode(&bundle),
                epoch,
                device,
            })
        }
        ["tdis", accel, "accept"] if m == Method::POST => {
            let a: u16 = num(accel, "accelerator id")?;
            let r: api::TdiAccept = parse(body)?;
            let (_, _, claims) = session_claims(shared, role, headers)?;
            shared
                .core(move |c| {
                    let (bundle, _) = current_report(c, t.id, a)?;
                    check_digest(&bundle, &r.report_digest)?;
                    Ok(c.tdi_accept(t.id, a, &claims.cvm_id)?)
                })
                .await?;
            ok(&api::TdiStateView {
                state: "RUN".into(),
            })
        }
        ["tdis", accel, "reject"] if m == Method::POST => {
            let a: u16 = num(accel, "accelerator id")?;
            let r: api::TdiReject = parse(body)?;
            if r.failed_checks.len() > 64 || r.failed_checks.iter().any(|c| c.len() > 256) {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "failed_checks: at most 64 checks of at most 256 bytes",
                ));
            }
            let (sid, key, claims) = session_claims(shared, role, headers)?;
            let _ = (sid, key);
            shared
                .core(move |c| {
                    let (bundle, _) = current_report(c, t.id, a)?;
                    check_digest(&bundle, &r.report_digest)?;
                    Ok(c.tdi_reject(t.id, a, &claims.cvm_id, &r.failed_checks)?)
                })
                .await?;
            ok(&api::TdiStateView {
                state: "CONFIG_UNLOCKED".into(),
            })
        }
        ["keys"] if m == Method::POST => {
            let r: api::AgentKeys = parse(body)?;
            if !t.lead_keys {
                return Err(ApiError::conflict(
                    "keys_delegated",
                    "this tenant delegates link keys to the TSM (lead_keys = false)",
                ));
            }
            if r.keys.len() > MAX_AGENT_KEYS {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("at most {MAX_AGENT_KEYS} keys"),
                ));
            }
            let mut set = crate::keys::LeadKeySet::new(r.epoch);
            for k in &r.keys {
                let raw =
                    zeroize::Zeroizing::new(STANDARD.decode(k.key.0.as_bytes()).map_err(|_| {
                        ApiError::bad_request(
                            "invalid_request",
                            format!("key {}:{}->{} is not base64", k.tx, k.port, k.rx),
                        )
                    })?);
                set.push(k.tx, k.port, k.rx, &raw)?;
            }
            drop(r);
            let slots = shared
                .core(move |c| Ok(c.provision_keys_with(t.id, set)?))
                .await?;
            ok(&api::KeysProgrammed {
                programmed: slots.len(),
                fingerprints: slots.into_iter().map(|s| s.fingerprint).collect(),
            })
        }
        ["exports"] if m == Method::POST => {
            let r: api::ExportRequest = parse(body)?;
            if r.rights.is_empty() {
                return Err(ApiError::bad_request("invalid_request", "rights is empty"));
            }
            let to = tenant_by_name(shared, &r.to_tenant).await?;
            let os = r.os_instance.unwrap_or(1);
            let buffer =
                shared
                    .core(move |c| {
                        Ok(c.export_buffer(
                            t.id,
                            os,
                            r.accelerator_id,
                            r.window_base,
                            r.offset,
                            r.len,
                        )?)
                    })
                    .await?;
            let mut rights = r.rights.clone();
            rights.sort();
            rights.dedup();
            let id = lock(&shared.offers)?.add(Offer {
                id: String::new(),
                exporter_tenant: t.id,
                exporter_os: os,
                exporter_accel: r.accelerator_id,
                buffer,
                to_tenant: to.id,
                to_os: r.to_os,
                rights,
            })?;
            json(
                StatusCode::CREATED,
                &api::ExportCreated {
                    offer_id: id,
                    buffer: hex::encode(buffer.0),
                },
            )
        }
        ["exports", offer_id] if m == Method::DELETE => {
            let offer = lock(&shared.offers)?
                .get(offer_id)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("offer {offer_id}")))?;
            if offer.exporter_tenant != t.id {
                return Err(ApiError::forbidden(
                    "wrong_tenant",
                    "only the exporting tenant may revoke its offer",
                ));
            }
            let o = offer.clone();
            shared.core(move |c| Ok(c.revoke_offer(&o)?)).await?;
            lock(&shared.offers)?.remove(offer_id);
            let mut ev = lock(&shared.events)?;
            for tenant in [offer.exporter_tenant, offer.to_tenant] {
                ev.push(
                    tenant,
                    "revoked",
                    Some(offer.exporter_accel),
                    format!("offer {} revoked by the exporter", offer.id),
                );
            }
            ok(&serde_json::json!({"revoked": offer.id}))
        }
        ["imports"] if m == Method::POST => {
            let r: api::ImportRequest = parse(body)?;
            let offer = lock(&shared.offers)?
                .get(&r.offer_id)
                .cloned()
                .ok_or_else(|| ApiError::not_found(format!("offer {}", r.offer_id)))?;
            if offer.to_tenant != t.id || offer.to_os != r.os_instance {
                return Err(ApiError::forbidden(
                    "wrong_tenant",
                    "the offer was made to another tenant or OS instance",
                ));
            }
            if r.rights.is_empty() || r.rights.iter().any(|x| !offer.rights.contains(x)) {
                return Err(ApiError::forbidden(
                    "exceeds_offer",
                    "requested rights are empty or not all offered",
                ));
            }
            let req = ShareRequest {
                exporter_tenant: offer.exporter_tenant,
                exporter_os: offer.exporter_os,
                exporter_accel: offer.exporter_accel,
                buffer: offer.buffer,
                importer_tenant: t.id,
                importer_os: r.os_instance,
                importer_accel: r.accelerator_id,
                rights: parse_rights(&r.rights),
            };
            let g = shared
                .core(move |c| c.share(&req).map_err(share_err))
                .await?;
            ok(&api::ImportGranted {
                grant: STANDARD.encode(&g.grant),
                buffer: hex::encode(offer.buffer.0),
                rules: g.rules,
                expiry_ns: g.expiry_ns,
            })
        }
        ["events"] if m == Method::GET => {
            let after =
                match query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("after="))) {
                    Some(v) => num::<u64>(v, "after")?,
                    None => 0,
                };
            let (events, next) = lock(&shared.events)?.since(t.id, after, MAX_EVENTS_PER_POLL);
            ok(&api::Events { events, next })
        }
        _ => Err(ApiError::not_found(format!(
            "no endpoint {m} /ualink/v0/tenants/{name}/{}",
            rest.join("/")
        ))),
    }
}

/// A policy denial of a share is `share_denied` (403, with rules).
fn share_err(e: TsmError) -> ApiError {
    match e {
        TsmError::PolicyDenied { rules, reasons } => ApiError::forbidden(
            "share_denied",
            format!(
                "share denied by {}: {}",
                rules.join(", "),
                reasons.join("; ")
            ),
        )
        .with_rules(rules),
        other => other.into(),
    }
}
