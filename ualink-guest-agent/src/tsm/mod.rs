//! A typed client for the TSM service's agent endpoints (`ualink-tsm/API.md`).
//!
//! Connecting is two steps, and no key material or tenant data is sent before both passed:
//! 1. [`verify_tsm`]: `GET /ualink/v0/tsm` over a TLS connection whose server certificate is
//!    not yet trusted (the answer authenticates itself): the TSM's SNP-format evidence must
//!    verify under the tenant's roots (AMD ARKs, or a sim ARK the tenant names) with
//!    report_data = SHA-384(identity key) ‖ 0¹⁶, the CA certificate must be self-signed by
//!    that same key, and, when the tenant pinned a CA (`--tsm-ca`), be that CA.
//! 2. [`TsmClient::connect`]: the KBS RCAR handshake over TLS that trusts only that CA, with
//!    the agent's [`AgentIdentity`] as client certificate and `tee-pubkey`.
//!
//! Every later request rides the attested session (cookie) over TLS to the attested CA.
//! Refusals carry the TSM's `code`, `reason` and `rules` ([`Error::TsmRefused`]).

pub mod api;

use crate::error::{Error, Result};
use crate::evidence::{EvidenceFormat, EvidenceProvider};
use crate::kbs::{Attested, HttpClient, KbsClient, KbsTrust, ResourcePath};
use crate::lead::KeyBundle;
use crate::tls::{AgentIdentity, BootstrapVerifier};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use ualink_attest::pki::TrustAnchors;
use ualink_attest::snp::{SnpCerts, SnpVerifier, VerifiedSnpReport};
use ualink_attest::tdi_report::tsm_report_data;
use ualink_attest::{ExpectedReportData, UnixTime};
use zeroize::Zeroizing;

/// What the tenant trusts the TSM by.
#[derive(Clone, Debug)]
pub struct TsmTrust {
    /// Roots for the TSM's own evidence (AMD's built-in ARKs, or an explicit sim ARK).
    pub roots: TrustAnchors,
    /// A CA the TSM must present (PEM), if the tenant pinned one (`--tsm-ca`).
    pub pinned_ca_pem: Option<Vec<u8>>,
}

/// A TSM whose evidence verified and whose CA key is the evidence-bound key.
#[derive(Clone, Debug)]
pub struct VerifiedTsm {
    /// The TSM identity key, SEC1 P-384.
    pub public_key: Vec<u8>,
    /// The TSM CA, PEM as served.
    pub ca_pem: String,
    /// The TSM CA, DER.
    pub ca_der: Vec<u8>,
    /// The verified evidence (its `root` says AMD or explicit/sim).
    pub evidence: VerifiedSnpReport,
}

impl VerifiedTsm {
    /// SHA-384 of the identity key (the kid TDI report bundles are signed under).
    pub fn key_fingerprint(&self) -> [u8; 48] {
        let mut f = [0u8; 48];
        f.copy_from_slice(ring::digest::digest(&ring::digest::SHA384, &self.public_key).as_ref());
        f
    }
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::malformed("TSM answer", reason)
}

fn parse_json<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::malformed(what, e.to_string()))
}

/// The SNP certificates of the TSM's evidence from the answer's `cert_chain`.
pub(crate) fn certs_of(chain: &[api::CertEntry]) -> Result<SnpCerts> {
    let mut leaf = None;
    let mut intermediates = Vec::new();
    for c in chain {
        let der = STANDARD
            .decode(&c.data)
            .map_err(|_| malformed(format!("{} certificate is not base64", c.cert_type)))?;
        match c.cert_type.as_str() {
            "vcek" | "vlek" if leaf.is_none() => leaf = Some(der),
            "vcek" | "vlek" => return Err(malformed("two signing certificates")),
            "ask" | "asvk" if intermediates.len() < 4 => intermediates.push(der),
            "ask" | "asvk" => return Err(malformed("more than 4 intermediates")),
            other => return Err(malformed(format!("certificate type {other:?}"))),
        }
    }
    let leaf = leaf.ok_or_else(|| malformed("no VCEK/VLEK in cert_chain"))?;
    Ok(SnpCerts {
        leaf,
        intermediates,
    })
}

/// Checks a `GET /ualink/v0/tsm` answer (see the module documentation) at time `now`.
pub fn check_tsm_info(info: &api::TsmInfo, trust: &TsmTrust, now: UnixTime) -> Result<VerifiedTsm> {
    let public_key =
        hex::decode(&info.public_key).map_err(|_| malformed("public_key is not hex"))?;
    if public_key.len() != 97 || public_key.first() != Some(&4) {
        return Err(malformed("public_key is not an uncompressed P-384 point"));
    }
    let report = STANDARD
        .decode(&info.evidence)
        .map_err(|_| malformed("evidence is not base64"))?;
    let certs = certs_of(&info.cert_chain)?;
    let evidence = SnpVerifier::new(trust.roots.clone()).verify(
        &report,
        &certs,
        &ExpectedReportData::Expected(tsm_report_data(&public_key)),
        now,
    )?;
    let ca: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(info.ca_pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| malformed(format!("ca_pem: {e}")))?;
    let [ca_der] = ca.as_slice() else {
        return Err(malformed("ca_pem must hold exactly one certificate"));
    };
    let (_, cert) = x509_parser::parse_x509_certificate(ca_der.as_ref())
        .map_err(|e| malformed(format!("TSM CA: {e}")))?;
    if cert.public_key().subject_public_key.data.as_ref() != public_key.as_slice() {
        return Err(Error::PeerMisbehaved {
            what: "the TSM CA's key is not the key its evidence binds".into(),
        });
    }
    cert.verify_signature(None)
        .map_err(|_| Error::PeerMisbehaved {
            what: "the TSM CA is not self-signed by the attested key".into(),
        })?;
    if let Some(pin) = &trust.pinned_ca_pem {
        let pinned: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pin)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::ApiMisuse {
                reason: format!("--tsm-ca: {e}"),
            })?;
        if !pinned.iter().any(|p| p.as_ref() == ca_der.as_ref()) {
            return Err(Error::PeerMisbehaved {
                what: "the TSM presents a CA other than the pinned one (--tsm-ca)".into(),
            });
        }
    }
    Ok(VerifiedTsm {
        public_key,
        ca_pem: info.ca_pem.clone(),
        ca_der: ca_der.as_ref().to_vec(),
        evidence,
    })
}

/// Step 1 of connecting: fetch and check the TSM's identity (see the module documentation).
pub async fn verify_tsm(
    url: &str,
    identity: &AgentIdentity,
    trust: &TsmTrust,
    now: UnixTime,
) -> Result<VerifiedTsm> {
    let http = HttpClient::with_identity(
        url,
        KbsTrust::Bootstrap(BootstrapVerifier::new()),
        Some(identity),
    )?;
    let resp = http.get("/ualink/v0/tsm", None).await?;
    let info: api::TsmInfo = parse_json("GET /ualink/v0/tsm answer", &resp.body)?;
    check_tsm_info(&info, trust, now)
}

/// A path segment the client puts in a URL: `[A-Za-z0-9._-]+`, not `.` or `..`.
pub(crate) fn check_segment(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::ApiMisuse {
            reason: format!("{what} {s:?} is not a path segment of [A-Za-z0-9._-]"),
        })
    }
}

/// A TDI report bundle as fetched, its digest checked.
#[derive(Clone, Debug)]
pub struct TdiReport {
    /// The accelerator.
    pub accelerator_id: u16,
    /// The bundle bytes as received.
    pub bundle: Vec<u8>,
    /// Hex SHA-384 of `bundle` (checked against the TSM's claim).
    pub report_digest: String,
    /// The device epoch.
    pub epoch: u64,
    /// The device identity claims, if the TSM sent them.
    pub device: Option<api::DeviceClaimsView>,
}

/// An import grant.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The COSE_Sign1 grant bytes (for the kernel driver).
    pub grant: Vec<u8>,
    /// The buffer handle, if the TSM said.
    pub buffer: Option<String>,
    /// The deciding rules.
    pub rules: Vec<String>,
    /// Expiry on the pod clock, ns.
    pub expiry_ns: u64,
}

/// How old a KBS session may get before [`TsmClient::session_expiring`] says so (the TSM
/// expires sessions after 300 s).
pub const SESSION_REFRESH: std::time::Duration = std::time::Duration::from_secs(240);

/// An attested session with the TSM, acting for one tenant. The session can be renewed
/// ([`Self::reattest`]) with the same TLS identity; requests use the current one.
#[derive(Debug)]
pub struct TsmClient {
    kbs: KbsClient,
    session: std::sync::Mutex<(Arc<Attested>, std::time::Instant)>,
    tenant: String,
    tsm: Arc<VerifiedTsm>,
}

impl TsmClient {
    /// Verifies the TSM ([`verify_tsm`]), then runs the KBS handshake with `identity` as
    /// client certificate and `tee-pubkey` and `provider`'s evidence, trusting only the
    /// attested CA. The session then acts for `tenant` (the TSM appraises the CVM for it on
    /// first use).
    pub async fn connect(
        url: &str,
        tenant: &str,
        identity: Arc<AgentIdentity>,
        provider: &dyn EvidenceProvider,
        trust: &TsmTrust,
    ) -> Result<Self> {
        check_segment("tenant name", tenant)?;
        let tsm = verify_tsm(url, &identity, trust, UnixTime::now()).await?;
        // The TSM checks SNP signatures over the report bytes as received: our format.
        let kbs =
            KbsClient::with_identity(url, KbsTrust::Pem(tsm.ca_pem.as_bytes().to_vec()), identity)?
                .with_evidence_format(EvidenceFormat::Ualink);
        let session = kbs
            .auth(provider.tee().kbs_tee())
            .await?
            .attest(provider)
            .await?;
        Ok(Self {
            kbs,
            session: std::sync::Mutex::new((Arc::new(session), std::time::Instant::now())),
            tenant: tenant.to_string(),
            tsm: Arc::new(tsm),
        })
    }

    fn current(&self) -> Result<Arc<Attested>> {
        self.session
            .lock()
            .map(|s| s.0.clone())
            .map_err(|_| Error::ApiMisuse {
                reason: "TSM session lock poisoned".into(),
            })
    }

    /// Whether the session is older than [`SESSION_REFRESH`] (renew it before the TSM
    /// expires it).
    pub fn session_expiring(&self) -> bool {
        self.session
            .lock()
            .map(|s| s.1.elapsed() >= SESSION_REFRESH)
            .unwrap_or(true)
    }

    /// Runs the KBS handshake again with the same TLS identity and fresh evidence from
    /// `provider`, and uses the new session from now on (the TSM appraises it for the
    /// tenant again on first use).
    pub async fn reattest(&self, provider: &dyn EvidenceProvider) -> Result<()> {
        let fresh = self
            .kbs
            .auth(provider.tee().kbs_tee())
            .await?
            .attest(provider)
            .await?;
        let mut s = self.session.lock().map_err(|_| Error::ApiMisuse {
            reason: "TSM session lock poisoned".into(),
        })?;
        *s = (Arc::new(fresh), std::time::Instant::now());
        Ok(())
    }

    /// The tenant this session acts for.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The verified TSM.
    pub fn tsm(&self) -> &Arc<VerifiedTsm> {
        &self.tsm
    }

    /// The EAR token the TSM issued for this CVM's current session (opaque here).
    pub fn token(&self) -> Result<String> {
        Ok(self.current()?.token().to_string())
    }

    fn path(&self, rest: &str) -> String {
        format!("/ualink/v0/tenants/{}/{rest}", self.tenant)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, what: &'static str) -> Result<T> {
        let session = self.current()?;
        let (http, cookie) = session.session();
        let r = http.get(path, Some(cookie)).await?;
        parse_json(what, &r.body)
    }

    async fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &'static str,
    ) -> Result<T> {
        let session = self.current()?;
        let (http, cookie) = session.session();
        let body = serde_json::to_vec(body).map_err(|e| Error::ApiMisuse {
            reason: format!("encoding {path}: {e}"),
        })?;
        let r = http.post(path, body, Some(cookie)).await?;
        parse_json(what, &r.body)
    }

    /// `GET /kbs/v0/resource/<path>`, decrypted with the session key.
    pub async fn resource(&self, path: &ResourcePath) -> Result<Zeroizing<Vec<u8>>> {
        self.current()?.resource(path).await
    }

    /// `GET .../vpod`.
    pub async fn vpod(&self) -> Result<api::VpodView> {
        self.get(&self.path("vpod"), "vPod view").await
    }

    /// `GET .../tdis/{accel}/report`: the bundle, with its digest checked against the
    /// TSM's claim.
    pub async fn tdi_report(&self, accel: u16) -> Result<TdiReport> {
        let v: api::TdiReportView = self
            .get(
                &self.path(&format!("tdis/{accel}/report")),
                "TDI report view",
            )
            .await?;
        let bundle = STANDARD
            .decode(&v.bundle)
            .map_err(|_| malformed("TDI report bundle is not base64"))?;
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA384, &bundle));
        if !digest.eq_ignore_ascii_case(&v.report_digest) {
            return Err(Error::misbehaved(format!(
                "the TSM's report_digest for accelerator {accel} is not the bundle's SHA-384"
            )));
        }
        Ok(TdiReport {
            accelerator_id: accel,
            bundle,
            report_digest: digest,
            epoch: v.epoch,
            device: v.device,
        })
    }

    /// `POST .../tdis/{accel}/accept`: the TSM STARTs the TDI if `report_digest` is still
    /// the current bundle's (else `stale_report`).
    pub async fn accept(&self, accel: u16, report_digest: &str) -> Result<api::TdiStateView> {
        let body = api::TdiAccept {
            report_digest: report_digest.to_string(),
        };
        self.post(
            &self.path(&format!("tdis/{accel}/accept")),
            &body,
            "TDI state",
        )
        .await
    }

    /// `POST .../tdis/{accel}/reject` with the failed checks: the TSM STOPs the TDI and
    /// revokes what depends on it.
    pub async fn reject(
        &self,
        accel: u16,
        report_digest: &str,
        failed_checks: &[String],
    ) -> Result<api::TdiStateView> {
        let body = api::TdiReject {
            report_digest: report_digest.to_string(),
            failed_checks: failed_checks.to_vec(),
        };
        self.post(
            &self.path(&format!("tdis/{accel}/reject")),
            &body,
            "TDI state",
        )
        .await
    }

    /// `POST .../keys`: hands the vPod master keys to the TSM for programming inside its
    /// SPDM sessions. The request body lives in a zeroizing buffer.
    pub async fn program_keys(&self, keys: &KeyBundle) -> Result<api::KeysProgrammed> {
        let body = keys_json(keys);
        let session = self.current()?;
        let (http, cookie) = session.session();
        let r = http
            .post_secret(&self.path("keys"), body, Some(cookie))
            .await?;
        parse_json("keys-programmed answer", &r.body)
    }

    /// `POST .../exports`.
    pub async fn export(&self, req: &api::ExportRequest) -> Result<api::ExportCreated> {
        check_segment("to_tenant", &req.to_tenant)?;
        let c: api::ExportCreated = self
            .post(&self.path("exports"), req, "export answer")
            .await?;
        check_segment("offer_id", &c.offer_id)
            .map_err(|_| malformed("offer_id is not a path segment"))?;
        Ok(c)
    }

    /// `POST .../imports`: the grant, or [`Error::TsmRefused`] with code `share_denied`
    /// and the deciding rules.
    pub async fn import(&self, req: &api::ImportRequest) -> Result<Grant> {
        check_segment("offer_id", &req.offer_id)?;
        let g: api::ImportGranted = self
            .post(&self.path("imports"), req, "import answer")
            .await?;
        let grant = STANDARD
            .decode(&g.grant)
            .map_err(|_| malformed("grant is not base64"))?;
        Ok(Grant {
            grant,
            buffer: g.buffer,
            rules: g.rules,
            expiry_ns: g.expiry_ns,
        })
    }

    /// `DELETE .../exports/{offer_id}`.
    pub async fn revoke(&self, offer_id: &str) -> Result<()> {
        check_segment("offer_id", offer_id)?;
        let session = self.current()?;
        let (http, cookie) = session.session();
        http.delete(&self.path(&format!("exports/{offer_id}")), Some(cookie))
            .await
            .map(|_| ())
    }

    /// `GET .../events?after=N`.
    pub async fn events(&self, after: u64) -> Result<api::Events> {
        self.get(&self.path(&format!("events?after={after}")), "events")
            .await
    }
}

/// The `POST .../keys` body, built directly into a zeroizing buffer (no intermediate JSON
/// value holds the keys): `{"epoch":E,"keys":[{"tx":..,"port":..,"rx":..,"key":"<b64>"}]}`.
pub(crate) fn keys_json(keys: &KeyBundle) -> Zeroizing<Vec<u8>> {
    // Each entry is at most 100 bytes; reserve once so no reallocation leaves copies behind.
    let mut out = Zeroizing::new(Vec::with_capacity(
        64usize.saturating_add(keys.entries.len().saturating_mul(100)),
    ));
    out.extend_from_slice(format!("{{\"epoch\":{},\"keys\":[", keys.epoch).as_bytes());
    let mut b64 = Zeroizing::new(String::with_capacity(48));
    for (i, e) in keys.entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!(
                "{{\"tx\":{},\"port\":{},\"rx\":{},\"key\":\"",
                e.tx_accelerator.get(),
                e.tx_port,
                e.peer.get()
            )
            .as_bytes(),
        );
        b64.clear();
        STANDARD.encode_string(e.key().as_bytes(), &mut b64);
        out.extend_from_slice(b64.as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::lead::{generate_vpod_keys, VpodMember};

    #[test]
    fn keys_body_is_the_contract_json() {
        let members = [
            VpodMember {
                accelerator_id: 1,
                tx_ports: vec![0],
            },
            VpodMember {
                accelerator_id: 2,
                tx_ports: vec![0],
            },
        ];
        let b = generate_vpod_keys("t", &members, 7).unwrap();
        let body = keys_json(&b);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["epoch"], 7);
        let keys = v["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[0]["tx"].as_u64(), keys[0]["rx"].as_u64()),
            (Some(1), Some(2))
        );
        let k = STANDARD.decode(keys[0]["key"].as_str().unwrap()).unwrap();
        assert_eq!(k.as_slice(), b.entry(1, 0, 2).unwrap().key().as_bytes());
    }

    #[test]
    fn segments() {
        assert!(check_segment("t", "tenant-a").is_ok());
        for bad in ["", ".", "..", "a/b", "a?b", "a b"] {
            assert!(check_segment("t", bad).is_err(), "{bad}");
        }
    }
}
