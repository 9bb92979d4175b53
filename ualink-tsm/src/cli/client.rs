//! The provider client: HTTP/1.1 over mutual TLS 1.3 (rustls, ring provider only) to a running
//! TSM service.
//!
//! Trust is explicit: the server must chain to `tsm-ca.pem` (the CA whose key is the TSM's
//! attested identity key, API.md) and the client presents `admin.pem`/`admin.key` (signed by
//! the service's client CA, so the service gives it the Admin role). One connection per
//! request; every request and response is bounded in size and time.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest response body the client reads.
const MAX_RESPONSE: usize = 16 << 20;
/// Connect + handshake + request + response, end to end.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request did not produce a 2xx answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The command line was wrong (URL, tenant name).
    #[error("usage: {0}")]
    Usage(String),
    /// A TLS file could not be read or parsed.
    #[error("TLS material {path}: {reason}")]
    TlsFiles {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// TCP connect, TLS handshake or HTTP failed (including the server refusing our
    /// certificate in the handshake).
    #[error("connection to {addr}: {reason}")]
    Connection {
        /// host:port.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error (API.md: `{code, reason, rules}`).
    #[error("{status} {code}: {reason}{}", rules_suffix(.rules))]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable snake_case code.
        code: String,
        /// Human reason.
        reason: String,
        /// Deciding policy rules, for policy denials.
        rules: Vec<String>,
    },
    /// The server's answer was not the JSON the API promises.
    #[error("malformed response: {0}")]
    BadResponse(String),
}

fn rules_suffix(rules: &[String]) -> String {
    if rules.is_empty() {
        String::new()
    } else {
        format!(" (rules: {})", rules.join(", "))
    }
}

impl ClientError {
    /// The process exit code for this error: 3 caller fault (400/404/409/413), 4 refused
    /// (401/403: wrong role, policy denial), 5 server side (5xx), 6 connection/TLS,
    /// 7 malformed response, 2 usage.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            ClientError::Usage(_) | ClientError::TlsFiles { .. } => 2,
            ClientError::Server { status, .. } => match status {
                401 | 403 => 4,
                500..=599 => 5,
                _ => 3,
            },
            ClientError::Connection { .. } => 6,
            ClientError::BadResponse(_) => 7,
        }
    }
}

/// A client for one TSM service URL.
#[derive(Clone)]
pub(crate) struct TsmClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// host:port for TCP and the Host header.
    authority: String,
}

impl std::fmt::Debug for TsmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsmClient")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|e| ClientError::TlsFiles {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// Splits `https://HOST:PORT` (optional trailing `/`) into (host, authority). IPv6 hosts in
/// brackets.
fn parse_url(url: &str) -> Result<(String, String), ClientError> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| ClientError::Usage(format!("--tsm {url}: expected https://HOST:PORT")))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('@') {
        return Err(ClientError::Usage(format!(
            "--tsm {url}: expected https://HOST:PORT"
        )));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6
                .split_once("]:")
                .ok_or_else(|| ClientError::Usage(format!("--tsm {url}: missing port")))?;
            (h.to_string(), p)
        }
        None => {
            let (h, p) = authority
                .rsplit_once(':')
                .ok_or_else(|| ClientError::Usage(format!("--tsm {url}: missing port")))?;
            (h.to_string(), p)
        }
    };
    port.parse::<u16>()
        .map_err(|_| ClientError::Usage(format!("--tsm {url}: bad port {port:?}")))?;
    if host.is_empty() {
        return Err(ClientError::Usage(format!("--tsm {url}: missing host")));
    }
    Ok((host, authority.to_string()))
}

/// Checks a path segment we put into a URL (tenant names): `[A-Za-z0-9._-]{1,64}`.
pub(crate) fn segment(s: &str) -> Result<&str, ClientError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(ClientError::Usage(format!(
            "{s:?}: names are 1-64 of A-Z a-z 0-9 . _ -"
        )))
    }
}

impl TsmClient {
    /// A client for `url` trusting `ca_pem` (the TSM CA) and presenting `identity`
    /// (certificate chain PEM, private key PEM), or no certificate at all.
    pub(crate) fn new(
        url: &str,
        ca_pem: &[u8],
        identity: Option<(&[u8], &[u8])>,
    ) -> Result<Self, ClientError> {
        let (host, authority) = parse_url(url)?;
        let tls_err = |what: &str, e: String| ClientError::TlsFiles {
            path: what.to_string(),
            reason: e,
        };
        let mut roots = RootCertStore::empty();
        let mut n = 0usize;
        for c in CertificateDer::pem_slice_iter(ca_pem) {
            let c = c.map_err(|e| tls_err("tsm-ca.pem", e.to_string()))?;
            roots
                .add(c)
                .map_err(|e| tls_err("tsm-ca.pem", e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(tls_err("tsm-ca.pem", "no certificate".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err("config", e.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| tls_err("admin.pem", e.to_string()))?;
                if chain.is_empty() {
                    return Err(tls_err("admin.pem", "no certificate".into()));
                }
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| tls_err("admin.key", e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_err("admin.pem/admin.key", e.to_string()))?
            }
            None => builder.with_no_client_auth(),
        };
        let server_name = ServerName::try_from(host.clone())
            .map_err(|e| ClientError::Usage(format!("--tsm host {host:?}: {e}")))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            authority,
        })
    }

    /// A client from a TLS directory holding `tsm-ca.pem`, `admin.pem` and `admin.key`.
    pub(crate) fn from_tls_dir(url: &str, dir: &Path) -> Result<Self, ClientError> {
        parse_url(url)?;
        let ca = read_file(&dir.join("tsm-ca.pem"))?;
        let cert = read_file(&dir.join("admin.pem"))?;
        let key = zeroize::Zeroizing::new(read_file(&dir.join("admin.key"))?);
        Self::new(url, &ca, Some((&cert, &key)))
    }

    /// Sends one request; a 2xx answer's JSON body (or `null` for an empty one), else the
    /// server's error.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.call_inner(method, path, body)).await {
            Ok(r) => r,
            Err(_) => {
                Err(self.conn_err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())))
            }
        }
    }

    fn conn_err(&self, reason: String) -> ClientError {
        ClientError::Connection {
            addr: self.authority.clone(),
            reason,
        }
    }

    async fn call_inner(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let tcp = TcpStream::connect(self.authority.as_str())
            .await
            .map_err(|e| self.conn_err(format!("connect: {e}")))?;
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| self.conn_err(format!("TLS handshake: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| self.conn_err(format!("HTTP: {e}")))?;
        let driver = tokio::spawn(conn);
        let bytes = match body {
            Some(v) => {
                Bytes::from(serde_json::to_vec(v).map_err(|e| ClientError::Usage(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.authority.as_str());
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(bytes))
            .map_err(|e| ClientError::Usage(format!("request {path}: {e}")))?;
        let resp = sender.send_request(req).await.map_err(|e| {
            // A TLS 1.3 server refusing our certificate says so after the client's handshake
            // completed: the alert surfaces here.
            self.conn_err(format!("request: {}", error_chain(&e)))
        })?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| self.conn_err(format!("reading the response: {e}")))?
            .to_bytes();
        drop(sender);
        driver.abort();
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                ClientError::BadResponse(format!(
                    "{status}: {e}: {}",
                    String::from_utf8_lossy(&body)
                ))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let field = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_string);
        Err(ClientError::Server {
            status,
            code: field("code").unwrap_or_else(|| "unknown".into()),
            reason: field("reason").unwrap_or_else(|| value.to_string()),
            rules: value
                .get("rules")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// `e` and its sources, joined (hyper hides the TLS alert in the source chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("https://127.0.0.1:8443/").unwrap(),
            ("127.0.0.1".into(), "127.0.0.1:8443".into())
        );
        assert_eq!(
            parse_url("https://[::1]:9").unwrap(),
            ("::1".into(), "[::1]:9".into())
        );
        for bad in [
            "http://x:1",
            "https://x",
            "https://x:y",
            "https://x:1/path",
            "https://u@x:1",
            "https://:1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments() {
        assert!(segment("acme-1.prod_x").is_ok());
        for bad in ["", "a/b", "..%2f", "a b", &"x".repeat(65)] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exit_codes_follow_the_fault() {
        let s = |status| ClientError::Server {
            status,
            code: "x".into(),
            reason: "y".into(),
            rules: vec![],
        };
        assert_eq!(s(409).exit_code(), 3);
        assert_eq!(s(403).exit_code(), 4);
        assert_eq!(s(503).exit_code(), 5);
        assert_eq!(s(403).to_string(), "403 x: y", "code and reason are shown");
    }
}
