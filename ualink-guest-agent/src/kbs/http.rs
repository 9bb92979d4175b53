//! A minimal HTTP/1.1 client for the KBS: hyper 1 over TCP, or over rustls 0.23 with the ring
//! provider (no aws-lc, no OpenSSL). One connection per request, a 30 s deadline per
//! request, response bodies capped at [`MAX_BODY`].
//!
//! Non-2xx answers become [`Error::Refused`] with the server's `ErrorInformation`
//! (`{"type","detail"}`) when it sent one.

use crate::error::{Error, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// The largest response body accepted.
pub const MAX_BODY: usize = 4 << 20;
/// The deadline for one request (connect, TLS, exchange).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Which roots authenticate an `https://` KBS.
#[derive(Clone, Debug)]
pub enum KbsTrust {
    /// The Mozilla roots (webpki-roots).
    WebPki,
    /// Only the certificates in this PEM text.
    Pem(Vec<u8>),
    /// No server authentication: the handshake signature is checked and the chain recorded
    /// in the verifier, nothing else. Only for a request whose answer authenticates itself
    /// (`GET /ualink/v0/tsm`, see [`crate::tsm::verify_tsm`]).
    Bootstrap(Arc<crate::tls::BootstrapVerifier>),
}

/// A KBS endpoint.
#[derive(Clone)]
pub struct HttpClient {
    host: String,
    port: u16,
    prefix: String,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A successful (2xx) response. `Debug` names the cookies but not their values.
pub struct Response {
    /// The status.
    pub status: u16,
    /// `Set-Cookie` values as `(name, value)` (zeroized: session cookies are bearer secrets).
    pub cookies: Vec<(String, Zeroizing<String>)>,
    /// The body.
    pub body: Bytes,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.cookies.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("cookies", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// The value of cookie `name`, if set.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_string())
    }
}

fn tls_config(
    trust: &KbsTrust,
    identity: Option<&crate::tls::AgentIdentity>,
) -> Result<rustls::ClientConfig> {
    let tls_err = |e: rustls::Error| Error::ApiMisuse {
        reason: format!("TLS configuration: {e}"),
    };
    let builder = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?;
    let mut roots = rustls::RootCertStore::empty();
    let builder = match trust {
        KbsTrust::Bootstrap(v) => builder
            .dangerous()
            .with_custom_certificate_verifier(v.clone()),
        KbsTrust::WebPki | KbsTrust::Pem(_) => {
            add_roots(&mut roots, trust)?;
            builder.with_root_certificates(roots)
        }
    };
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some(id) => builder
            .with_client_auth_cert(id.chain(), id.private_key())
            .map_err(tls_err),
    }
}

fn add_roots(roots: &mut rustls::RootCertStore, trust: &KbsTrust) -> Result<()> {
    match trust {
        KbsTrust::Bootstrap(_) => {}
        KbsTrust::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        KbsTrust::Pem(pem) => {
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| Error::ApiMisuse {
                    reason: format!("KBS CA file: {e}"),
                })?;
                roots.add(c).map_err(|e| Error::ApiMisuse {
                    reason: format!("KBS CA certificate: {e}"),
                })?;
            }
            if roots.is_empty() {
                return Err(Error::ApiMisuse {
                    reason: "KBS CA file holds no certificate".into(),
                });
            }
        }
    }
    Ok(())
}

impl HttpClient {
    /// An endpoint for `base_url` (`http://` or `https://`, optional path prefix).
    pub fn new(base_url: &str, trust: KbsTrust) -> Result<Self> {
        Self::with_identity(base_url, trust, None)
    }

    /// An endpoint that presents `identity` as its TLS client certificate (`https://` only).
    pub fn with_identity(
        base_url: &str,
        trust: KbsTrust,
        identity: Option<&crate::tls::AgentIdentity>,
    ) -> Result<Self> {
        let bad = |why: &str| Error::ApiMisuse {
            reason: format!("KBS URL {base_url:?}: {why}"),
        };
        let uri: Uri = base_url.parse().map_err(|_| bad("does not parse"))?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(Arc::new(tls_config(&trust, identity)?)),
            Some("http") if identity.is_some() => {
                return Err(bad("a client identity needs an https:// URL"))
            }
            Some("http") => None,
            _ => return Err(bad("scheme must be http or https")),
        };
        if uri.query().is_some() {
            return Err(bad("query strings are not allowed"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?.to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if tls.is_some() { 443 } else { 80 });
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Self {
            host,
            port,
            prefix,
            tls,
        })
    }

    /// Whether this endpoint is plain HTTP.
    pub fn is_plaintext(&self) -> bool {
        self.tls.is_none()
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Vec<u8>, cookie: Option<&str>) -> Result<Response> {
        self.send(Method::POST, path, Some(Bytes::from(body)), cookie)
            .await
    }

    /// `POST path` with a JSON body holding secrets: the buffer is zeroized when hyper drops
    /// the last reference to it (rustls' own record buffers are outside our reach).
    pub async fn post_secret(
        &self,
        path: &str,
        body: Zeroizing<Vec<u8>>,
        cookie: Option<&str>,
    ) -> Result<Response> {
        self.send(Method::POST, path, Some(Bytes::from_owner(body)), cookie)
            .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Result<Response> {
        self.send(Method::GET, path, None, cookie).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str, cookie: Option<&str>) -> Result<Response> {
        self.send(Method::DELETE, path, None, cookie).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        cookie: Option<&str>,
    ) -> Result<Response> {
        let what = format!("{method} {path}");
        tokio::time::timeout(TIMEOUT, self.exchange(method, path, body, cookie, &what))
            .await
            .map_err(|_| {
                Error::io(
                    what.clone(),
                    &format!("no answer within {} s", TIMEOUT.as_secs()),
                )
            })?
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        cookie: Option<&str>,
        what: &str,
    ) -> Result<Response> {
        let host_header = if (self.tls.is_some() && self.port == 443)
            || (self.tls.is_none() && self.port == 80)
        {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::ACCEPT, "application/json");
        if body.is_some() {
            b = b.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(c) = cookie {
            b = b.header(
                hyper::header::COOKIE,
                format!("{}={c}", super::SESSION_COOKIE),
            );
        }
        let req = b
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| Error::ApiMisuse {
                reason: format!("building {what}: {e}"),
            })?;
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::net::TcpStream::connect((host, self.port))
            .await
            .map_err(|e| Error::io(format!("connecting to {}:{}", self.host, self.port), &e))?;
        match &self.tls {
            None => exchange_on(TokioIo::new(tcp), req, what).await,
            Some(cfg) => {
                let name =
                    ServerName::try_from(host.to_string()).map_err(|e| Error::ApiMisuse {
                        reason: format!("KBS host name {host:?}: {e}"),
                    })?;
                let tls = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Error::io(format!("TLS handshake with {}", self.host), &e))?;
                exchange_on(TokioIo::new(tls), req, what).await
            }
        }
    }
}

async fn exchange_on<I>(io: I, req: Request<Full<Bytes>>, what: &str) -> Result<Response>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| Error::io(what.to_string(), &e))?;
    let driver = tokio::spawn(async move {
        // The connection ends when the response is read or the request is dropped; its
        // errors surface through `send_request`.
        let _ = conn.await;
    });
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Error::io(what.to_string(), &e))?;
        let status = resp.status().as_u16();
        let cookies = resp
            .headers()
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_set_cookie)
            .collect();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| Error::io(format!("{what}: reading the response body"), &e))?
            .to_bytes();
        if !(200..300).contains(&status) {
            return Err(refused(what, status, &body));
        }
        Ok(Response {
            status,
            cookies,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

/// `name=value` of a `Set-Cookie` header (attributes ignored).
fn parse_set_cookie(v: &str) -> Option<(String, Zeroizing<String>)> {
    let pair = v.split(';').next()?;
    let (n, val) = pair.split_once('=')?;
    let n = n.trim();
    if n.is_empty() {
        return None;
    }
    Some((
        n.to_string(),
        Zeroizing::new(val.trim().trim_matches('"').to_string()),
    ))
}

/// The TSM's error JSON (`{"code","reason","rules"}`); extra members are tolerated.
#[derive(serde::Deserialize)]
struct TsmErrorJson {
    code: String,
    reason: String,
    #[serde(default)]
    rules: Vec<serde_json::Value>,
}

/// A rule as the TSM names it: a string, or an object with a `rule` member.
fn rule_name(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => match o.get("rule") {
            Some(serde_json::Value::String(s)) => s.clone(),
            _ => v.to_string(),
        },
        other => other.to_string(),
    }
}

/// The refusal for a non-2xx answer: the TSM's `{code, reason, rules}`, else the KBS
/// ErrorInformation, else the start of the body.
fn refused(what: &str, status: u16, body: &[u8]) -> Error {
    if let Ok(e) = serde_json::from_slice::<TsmErrorJson>(body) {
        return Error::TsmRefused {
            request: what.to_string(),
            status,
            code: e.code,
            reason: e.reason,
            rules: e.rules.iter().map(rule_name).collect(),
        };
    }
    match serde_json::from_slice::<kbs_types::ErrorInformation>(body) {
        Ok(info) => Error::Refused {
            request: what.to_string(),
            status,
            error_type: info.error_type,
            detail: info.detail,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body.get(..body.len().min(256)).unwrap_or(&[]))
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            Error::Refused {
                request: what.to_string(),
                status,
                error_type: "(no KBS error JSON)".into(),
                detail: text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        let c = HttpClient::new("http://127.0.0.1:8080/prefix/", KbsTrust::WebPki).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.prefix.as_str()),
            ("127.0.0.1", 8080, "/prefix")
        );
        assert!(c.is_plaintext());
        let c = HttpClient::new("https://kbs.example", KbsTrust::WebPki).unwrap();
        assert_eq!(c.port, 443);
        assert!(!c.is_plaintext());
        assert!(HttpClient::new("ftp://x", KbsTrust::WebPki).is_err());
        assert!(HttpClient::new("http://x/?a=b", KbsTrust::WebPki).is_err());
        assert!(HttpClient::new("https://x", KbsTrust::Pem(b"nothing".to_vec())).is_err());
    }

    #[test]
    fn cookies_and_refusals() {
        let (n, v) =
            parse_set_cookie("kbs-session-id=abc123; Expires=Wed, 25 Nov 2026 12:00:00 GMT")
                .unwrap();
        assert_eq!((n.as_str(), v.as_str()), ("kbs-session-id", "abc123"));
        assert!(parse_set_cookie("=x").is_none());
        let e = refused(
            "GET /r",
            401,
            br#"{"type":"https://x/errors/ExpiredCookie","detail":"expired"}"#,
        );
        assert_eq!(
            e.to_string(),
            "GET /r refused with HTTP 401: https://x/errors/ExpiredCookie: expired"
        );
        let e = refused("GET /r", 502, b"<html>bad\ngateway</html>");
        assert!(e
            .to_string()
            .contains("(no KBS error JSON): <html>badgateway</html>"));
        let e = refused(
            "POST /x",
            403,
            br#"{"code":"share_denied","reason":"no pair","rules":["share:deny.no_pair",{"rule":"r2","reason":"y"}]}"#,
        );
        match &e {
            Error::TsmRefused {
                status,
                code,
                rules,
                ..
            } => {
                assert_eq!((*status, code.as_str()), (403, "share_denied"));
                assert_eq!(rules, &["share:deny.no_pair", "r2"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.tsm_code(), Some("share_denied"));
    }
}
