//! The KBS protocol client (Trustee's RCAR handshake, protocol version 0.4.0).
//!
//! ```text
//! POST /kbs/v0/auth    {"version":"0.4.0","tee":<tee>,"extra-params":""}
//!                      -> 200 {"nonce":<base64>,"extra-params":..} + cookie kbs-session-id
//! POST /kbs/v0/attest  {"init-data":null,"runtime-data":{"nonce","tee-pubkey"},
//!                       "tee-evidence":{"primary_evidence":..,"additional_evidence":""}}
//!                      -> 200 {"token":<attestation result token>}
//! GET  /kbs/v0/resource/<repo>/<type>/<tag>  -> 200 JWE (see [`jwe`])
//! ```
//! The evidence's report_data is SHA-384 of the JCS-canonical JSON
//! `{"additional-evidence":<string>,"nonce":<nonce>,"tee-pubkey":<JWK>}`, zero-padded to 64
//! bytes ([`binding`]).
//!
//! The client is a typestate: [`KbsClient::auth`] gives a [`Challenged`] session,
//! [`Challenged::attest`] an [`Attested`] one, and only that can fetch resources. Every
//! refusal is an [`Error`] naming its reason; HTTP errors carry the server's
//! `ErrorInformation` (`type`, `detail`).

pub mod http;
pub mod jcs;
pub mod jwe;

use crate::error::{Error, Result};
use crate::evidence::{EvidenceFormat, EvidenceProvider};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
pub use http::{HttpClient, KbsTrust};
use jwe::EphemeralKey;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "kbs-session-id";
/// Fewest nonce bytes accepted (Trustee sends 32).
pub const MIN_NONCE_LEN: usize = 16;

/// The JSON the report_data commits to, and the 64-byte report_data itself.
pub fn binding(
    nonce: &str,
    tee_pubkey: &kbs_types::TeePubKey,
    additional_evidence: &str,
) -> Result<(String, [u8; 64])> {
    let pk = serde_json::to_value(tee_pubkey).map_err(|e| Error::ApiMisuse {
        reason: format!("tee-pubkey JSON: {e}"),
    })?;
    let doc = serde_json::json!({
        "additional-evidence": additional_evidence,
        "nonce": nonce,
        "tee-pubkey": pk,
    });
    let canon = jcs::canonicalize(&doc)?;
    let mut rd = [0u8; 64];
    rd[..48]
        .copy_from_slice(ring::digest::digest(&ring::digest::SHA384, canon.as_bytes()).as_ref());
    Ok((canon, rd))
}

/// A resource path `<repo>/<type>/<tag>`: three non-empty segments of `[A-Za-z0-9._-]`,
/// none of them `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    repo: String,
    kind: String,
    tag: String,
}

impl ResourcePath {
    /// Parses `REPO/TYPE/TAG`.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::ApiMisuse {
            reason: format!("resource path {s:?}: {why} (expected REPO/TYPE/TAG)"),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let [repo, kind, tag] = parts.as_slice() else {
            return Err(bad("not three segments"));
        };
        for p in [repo, kind, tag] {
            if p.is_empty() || *p == "." || *p == ".." {
                return Err(bad("empty or dot segment"));
            }
            if !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(bad("segment outside [A-Za-z0-9._-]"));
            }
        }
        Ok(Self {
            repo: (*repo).into(),
            kind: (*kind).into(),
            tag: (*tag).into(),
        })
    }

    /// The request path `/kbs/v0/resource/<repo>/<type>/<tag>`.
    pub fn request_path(&self) -> String {
        format!("/kbs/v0/resource/{}/{}/{}", self.repo, self.kind, self.tag)
    }
}

impl std::fmt::Display for ResourcePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.repo, self.kind, self.tag)
    }
}

/// A KBS client before authentication.
#[derive(Debug, Clone)]
pub struct KbsClient {
    http: HttpClient,
    identity: Option<Arc<crate::tls::AgentIdentity>>,
    format: EvidenceFormat,
}

/// A session that received a challenge: it holds the session cookie and the nonce.
pub struct Challenged {
    http: HttpClient,
    cookie: Zeroizing<String>,
    nonce: String,
    tee: kbs_types::Tee,
    identity: Option<Arc<crate::tls::AgentIdentity>>,
    format: EvidenceFormat,
}

/// An attested session: it may fetch resources until the server ends it.
pub struct Attested {
    http: HttpClient,
    cookie: Zeroizing<String>,
    token: Zeroizing<String>,
    key: Arc<EphemeralKey>,
    report_data: [u8; 64],
}

// The cookie and token are bearer secrets: Debug shows neither.
impl std::fmt::Debug for Challenged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenged")
            .field("http", &self.http)
            .field("nonce", &self.nonce)
            .field("tee", &self.tee)
            .field("format", &self.format)
            .field("cookie", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for Attested {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attested")
            .field("http", &self.http)
            .field("key", &self.key)
            .field("report_data", &hex::encode(self.report_data))
            .field("cookie", &"<redacted>")
            .field("token", &"<redacted>")
            .finish()
    }
}

impl KbsClient {
    /// A client for the KBS at `base_url` (`https://host[:port][/prefix]`, or `http://` for
    /// tests — the caller should warn). It sends SNP evidence in [`EvidenceFormat::Ualink`];
    /// a stock Trustee KBS needs [`KbsClient::with_evidence_format`]`(EvidenceFormat::Trustee)`.
    pub fn new(base_url: &str, trust: KbsTrust) -> Result<Self> {
        Ok(Self {
            http: HttpClient::new(base_url, trust)?,
            identity: None,
            format: EvidenceFormat::Ualink,
        })
    }

    /// The same client, sending SNP evidence in `format` (see [`EvidenceFormat`]).
    pub fn with_evidence_format(mut self, format: EvidenceFormat) -> Self {
        self.format = format;
        self
    }

    /// The format SNP evidence is sent in.
    pub fn evidence_format(&self) -> EvidenceFormat {
        self.format
    }

    /// A client that presents `identity`'s self-signed certificate as its TLS client
    /// certificate and uses the same key as its `tee-pubkey`, so the evidence binds the key
    /// the TLS channel is authenticated with (the TSM requires this; a Trustee KBS ignores
    /// the client certificate). SNP evidence goes in [`EvidenceFormat::Ualink`], as for
    /// [`KbsClient::new`].
    pub fn with_identity(
        base_url: &str,
        trust: KbsTrust,
        identity: Arc<crate::tls::AgentIdentity>,
    ) -> Result<Self> {
        Ok(Self {
            http: HttpClient::with_identity(base_url, trust, Some(&identity))?,
            identity: Some(identity),
            format: EvidenceFormat::Ualink,
        })
    }

    /// Whether the URL is plain `http://` (no TLS).
    pub fn is_plaintext(&self) -> bool {
        self.http.is_plaintext()
    }

    /// `POST /kbs/v0/auth` for `tee`: checks the response carries the session cookie and a
    /// nonce of at least [`MIN_NONCE_LEN`] bytes in base64.
    pub async fn auth(&self, tee: kbs_types::Tee) -> Result<Challenged> {
        let req = kbs_types::Request {
            version: PROTOCOL_VERSION.into(),
            tee,
            extra_params: serde_json::Value::String(String::new()),
        };
        let body = to_json(&req)?;
        let resp = self.http.post("/kbs/v0/auth", body, None).await?;
        let cookie = resp.cookie(SESSION_COOKIE).ok_or_else(|| {
            Error::misbehaved(format!("auth response sets no {SESSION_COOKIE} cookie"))
        })?;
        let ch: kbs_types::Challenge = serde_json::from_slice(&resp.body)
            .map_err(|e| Error::malformed("KBS challenge", e.to_string()))?;
        let raw = STANDARD
            .decode(&ch.nonce)
            .or_else(|_| URL_SAFE_NO_PAD.decode(&ch.nonce))
            .map_err(|_| {
                Error::misbehaved(format!("challenge nonce {:?} is not base64", ch.nonce))
            })?;
        if raw.len() < MIN_NONCE_LEN {
            return Err(Error::misbehaved(format!(
                "challenge nonce is {} bytes, fewer than {MIN_NONCE_LEN}",
                raw.len()
            )));
        }
        Ok(Challenged {
            http: self.http.clone(),
            cookie: Zeroizing::new(cookie),
            nonce: ch.nonce,
            tee,
            identity: self.identity.clone(),
            format: self.format,
        })
    }
}

impl Challenged {
    /// The server's nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// `POST /kbs/v0/attest`: the client identity's key (or, without one, a fresh ephemeral
    /// P-256 key), evidence from `provider` binding the nonce and the key (written in the
    /// client's [`EvidenceFormat`]), and the server's attestation token in return.
    pub async fn attest(self, provider: &dyn EvidenceProvider) -> Result<Attested> {
        if provider.tee().kbs_tee() != self.tee {
            return Err(Error::ApiMisuse {
                reason: format!(
                    "authenticated as {} but the provider gives {} evidence",
                    self.tee,
                    provider.tee().name()
                ),
            });
        }
        let key = match &self.identity {
            Some(id) => id.key().clone(),
            None => Arc::new(EphemeralKey::generate()?),
        };
        let tee_pubkey = key.jwk();
        let additional = String::new();
        let (_, report_data) = binding(&self.nonce, &tee_pubkey, &additional)?;
        let evidence = provider.evidence(&report_data)?;
        let att = kbs_types::Attestation {
            init_data: None,
            runtime_data: kbs_types::RuntimeData {
                nonce: self.nonce.clone(),
                tee_pubkey,
            },
            tee_evidence: kbs_types::CompositeEvidence {
                primary_evidence: evidence.to_kbs_json_as(self.format)?,
                additional_evidence: additional,
            },
        };
        let resp = self
            .http
            .post("/kbs/v0/attest", to_json(&att)?, Some(&self.cookie))
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenResp {
            token: String,
        }
        let t: TokenResp = serde_json::from_slice(&resp.body)
            .map_err(|e| Error::malformed("KBS attestation response", e.to_string()))?;
        if t.token.is_empty() {
            return Err(Error::misbehaved(
                "attestation response carries an empty token",
            ));
        }
        Ok(Attested {
            http: self.http,
            cookie: self.cookie,
            token: Zeroizing::new(t.token),
            key,
            report_data,
        })
    }
}

impl Attested {
    /// The attestation token the server issued (opaque to the agent).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The report_data the evidence carried.
    pub fn report_data(&self) -> &[u8; 64] {
        &self.report_data
    }

    /// The HTTP endpoint and the session cookie (for the TSM's agent endpoints, which take
    /// the same session).
    pub(crate) fn session(&self) -> (&HttpClient, &str) {
        (&self.http, &self.cookie)
    }

    /// `GET /kbs/v0/resource/<path>` and JWE decryption with the session key.
    pub async fn resource(&self, path: &ResourcePath) -> Result<Zeroizing<Vec<u8>>> {
        let resp = self
            .http
            .get(&path.request_path(), Some(&self.cookie))
            .await?;
        self.key.decrypt(&resp.body)
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::ApiMisuse {
        reason: format!("encoding a KBS request: {e}"),
    })
}

/// The whole RCAR flow for one resource: auth, attest with `provider`, fetch and decrypt.
pub async fn fetch_resource(
    client: &KbsClient,
    provider: &dyn EvidenceProvider,
    path: &ResourcePath,
) -> Result<Zeroizing<Vec<u8>>> {
    let challenged = client.auth(provider.tee().kbs_tee()).await?;
    let session = challenged.attest(provider).await?;
    session.resource(path).await
}
