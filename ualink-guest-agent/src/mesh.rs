//! Mutually attested agent-to-agent channel: the lead agent collects its peers' security
//! configuration and hands them their vPod master keys over it (UALink 1.0 §9.4).
//!
//! # Transport
//! TLS 1.3 only (rustls, ring). Both ends present their [`AgentIdentity`] certificate (one
//! self-signed P-256 certificate) and check only that the other did the same
//! ([`crate::tls::SelfSignedVerifier`]); who the peer is is then decided by its evidence.
//!
//! # Framing
//! ```text
//! frame = length (u32, big-endian, 1..=MAX_FRAME) ‖ one JSON object (UTF-8), see [`Msg`]
//! ```
//! A zero or oversized length, bad JSON, an unknown `type` or member, or a message out of
//! order is an error and ends the connection. Frames are read into zeroizing buffers.
//!
//! # Mutual attestation (both ends run the same steps, each writes before it reads)
//! 1. `hello {tenant, nonce}`: a fresh 32-byte nonce (base64). The peer's tenant must be
//!    ours; its nonce must be 32 bytes and not ours (a reflected nonce is refused).
//! 2. `evidence {evidence}`: this CVM's evidence (the KBS `primary_evidence` JSON) with
//!    report_data = [`mesh_binding`]`(peer's nonce, our TLS key, exporter)` = SHA-384 of the
//!    JCS of `{"additional-evidence": "ualink-mesh/v0:<hex exporter>", "nonce": <peer
//!    nonce>, "tee-pubkey": <JWK of our TLS key>}` ‖ 0¹⁶, where the exporter is 32 bytes of
//!    the TLS exporter ([`EXPORTER_LABEL`], no context) of this connection: the evidence is
//!    bound to the nonce, the key and this TLS session (the KBS binding with its own label,
//!    so neither can stand in for the other).
//! 3. Each end verifies the other's evidence with [`CvmVerifier`] (tenant roots, exact
//!    report_data computed from *its own* nonce and the key the peer proved in the TLS
//!    handshake, the tenant's `ualink.cvm` policy), then sends `verdict {accepted, reason}`.
//!    A peer with evidence from an untrusted platform, unbound or replayed report_data, or
//!    a measurement outside the tenant's policy is refused, and told why.
//!
//! # After attestation (lead → peer)
//! - `config_request {}` → `config {accelerators: [{accelerator_id, tx_ports,
//!   report_digest?}]}`: the peer's accelerators, TX ports and the TDI reports it accepted;
//! - `keys {epoch, keys: [{tx, port, rx, key}]}` → `ack {received}`: the master keys that
//!   involve the peer's accelerators;
//! - `bye {}` ends the session.

use crate::cvm::{CvmVerifier, VerifiedCvm};
use crate::error::{Error, Result};
use crate::evidence::EvidenceProvider;
use crate::kbs::jwe::jwk_of_sec1;
use crate::lead::KeyEntry;
use crate::tls::{peer_p256_key, provider, AgentIdentity, SelfSignedVerifier};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ualink_attest::UnixTime;
use ualink_spdm::keyprog::{AccelId, MasterKey, KEY_LEN};
use zeroize::Zeroizing;

/// The largest frame accepted.
pub const MAX_FRAME: usize = 1 << 20;
/// The label of the mesh evidence binding (the KBS binding's `additional-evidence`).
pub const BINDING_LABEL: &str = "ualink-mesh/v0";
/// The deadline for a whole mesh session step (handshake, one request).
pub const TIMEOUT: Duration = Duration::from_secs(30);
const NONCE_LEN: usize = 32;

/// The TLS exporter label of the mesh channel binding (RFC 8446 section 7.5).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-ualink-mesh-v0";

/// The report_data a mesh peer's evidence must carry: the KBS binding of `nonce` (chosen by
/// the verifying side), the JWK of the prover's TLS key `tls_key` (SEC1), and, as
/// `additional-evidence`, `"<BINDING_LABEL>:<hex of the 32-byte TLS exporter value>"` so
/// the evidence is bound to this TLS session and not only to the key.
pub fn mesh_binding(nonce: &str, tls_key: &[u8], exporter: &[u8; 32]) -> Result<[u8; 64]> {
    let jwk = jwk_of_sec1(tls_key)?;
    let additional = format!("{BINDING_LABEL}:{}", hex::encode(exporter));
    Ok(crate::kbs::binding(nonce, &jwk, &additional)?.1)
}

fn exporter_err(e: rustls::Error) -> Error {
    Error::ApiMisuse {
        reason: format!("TLS exporter: {e}"),
    }
}

/// A secret string on the wire (base64 key bytes): zeroized on drop, never printed.
#[derive(Clone)]
pub struct SecretB64(Zeroizing<String>);

impl Serialize for SecretB64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretB64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretB64(Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for SecretB64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One key on the wire.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WireKey {
    /// TX accelerator.
    pub tx: u16,
    /// TX port.
    pub port: u8,
    /// RX accelerator.
    pub rx: u16,
    /// Base64 of the 32-byte key.
    pub key: SecretB64,
}

/// One accelerator of a peer's security configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerAccelerator {
    /// The accelerator ID.
    pub accelerator_id: u16,
    /// Its TX ports.
    pub tx_ports: Vec<u8>,
    /// Hex SHA-384 of the TDI report bundle the peer accepted for it, if its TDI was
    /// locked and judged already (a vPod is keyed before its TDIs are locked).
    #[serde(default)]
    pub report_digest: Option<String>,
}

/// A peer's security configuration: its accelerators and the TDIs it accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its accelerators.
    pub accelerators: Vec<PeerAccelerator>,
}

/// The mesh messages (`type` tag, snake_case).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Msg {
    /// Step 1.
    Hello {
        /// The tenant the sender acts for.
        tenant: String,
        /// Base64 of 32 fresh bytes.
        nonce: String,
    },
    /// Step 2: the KBS `primary_evidence` JSON.
    Evidence {
        /// The evidence.
        evidence: serde_json::Value,
    },
    /// Step 3.
    Verdict {
        /// Whether the sender accepted the other's evidence.
        accepted: bool,
        /// Why not (empty when accepted).
        reason: String,
    },
    /// Lead → peer: send your configuration.
    ConfigRequest {},
    /// Peer → lead.
    Config {
        /// The configuration.
        config: PeerConfig,
    },
    /// Lead → peer: master keys.
    Keys {
        /// The key epoch.
        epoch: u32,
        /// The keys involving the peer's accelerators.
        keys: Vec<WireKey>,
    },
    /// Peer → lead.
    Ack {
        /// How many keys were received.
        received: usize,
    },
    /// A refusal; ends the session.
    Error {
        /// Why.
        reason: String,
    },
    /// Lead → peer: the session is over.
    Bye {},
}

impl Msg {
    fn name(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "hello",
            Msg::Evidence { .. } => "evidence",
            Msg::Verdict { .. } => "verdict",
            Msg::ConfigRequest {} => "config_request",
            Msg::Config { .. } => "config",
            Msg::Keys { .. } => "keys",
            Msg::Ack { .. } => "ack",
            Msg::Error { .. } => "error",
            Msg::Bye {} => "bye",
        }
    }
}

/// Writes one frame (the JSON is built in a zeroizing buffer).
pub async fn write_msg<W: AsyncWrite + Unpin>(w: &mut W, m: &Msg) -> Result<()> {
    let cap = match m {
        Msg::Keys { keys, .. } => 256usize.saturating_add(keys.len().saturating_mul(128)),
        _ => 8192,
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    serde_json::to_writer(&mut *buf, m).map_err(|e| Error::ApiMisuse {
        reason: format!("encoding a mesh {} message: {e}", m.name()),
    })?;
    if buf.is_empty() || buf.len() > MAX_FRAME {
        return Err(Error::ApiMisuse {
            reason: format!("mesh {} message of {} bytes", m.name(), buf.len()),
        });
    }
    let len = u32::try_from(buf.len()).map_err(|_| Error::ApiMisuse {
        reason: "mesh frame too long".into(),
    })?;
    let io = |e: std::io::Error| Error::io("writing to the peer agent", &e);
    w.write_all(&len.to_be_bytes()).await.map_err(io)?;
    w.write_all(&buf).await.map_err(io)?;
    w.flush().await.map_err(io)
}

/// Reads one frame.
pub async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> Result<Msg> {
    let io = |e: std::io::Error| Error::io("reading from the peer agent", &e);
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(io)?;
    let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
    if len == 0 || len > MAX_FRAME {
        return Err(Error::malformed(
            "mesh frame",
            format!("length {len} outside 1..={MAX_FRAME}"),
        ));
    }
    let mut buf = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut buf).await.map_err(io)?;
    serde_json::from_slice(&buf).map_err(|e| Error::malformed("mesh message", e.to_string()))
}

async fn expect<R: AsyncRead + Unpin>(r: &mut R, what: &'static str) -> Result<Msg> {
    let m = read_msg(r).await?;
    if let Msg::Error { reason } = &m {
        return Err(Error::MeshRefused {
            reason: reason.clone(),
        });
    }
    if m.name() != what {
        return Err(Error::misbehaved(format!(
            "the peer agent sent {} where {what} was due",
            m.name()
        )));
    }
    Ok(m)
}

/// What an agent needs on the mesh: its identity, its evidence, and how it judges peers.
#[derive(Clone)]
pub struct MeshConfig {
    /// The TLS identity (also its KBS tee-pubkey).
    pub identity: Arc<AgentIdentity>,
    /// This CVM's evidence.
    pub provider: Arc<dyn EvidenceProvider>,
    /// How peers' evidence is judged (tenant, roots, policy).
    pub verifier: CvmVerifier,
}

impl std::fmt::Debug for MeshConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshConfig")
            .field("identity", &self.identity)
            .field("provider", &self.provider.describe())
            .field("tenant", &self.verifier.tenant())
            .finish()
    }
}

/// A peer that passed mutual attestation.
#[derive(Clone, Debug)]
pub struct MeshPeer {
    /// Its TLS key (SEC1 P-256), bound by its evidence.
    pub tls_key: Vec<u8>,
    /// Its verified, appraised evidence.
    pub cvm: VerifiedCvm,
}

fn server_config(identity: &AgentIdentity) -> Result<rustls::ServerConfig> {
    let e = |e: rustls::Error| Error::ApiMisuse {
        reason: format!("mesh TLS configuration: {e}"),
    };
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(e)?
        .with_client_cert_verifier(SelfSignedVerifier::new())
        .with_single_cert(identity.chain(), identity.private_key())
        .map_err(e)
}

/// The TLS client configuration of the mesh (TLS 1.3, our certificate, the peer must
/// present one self-signed P-256 certificate). Public for tests that play a rogue peer.
pub fn client_config(identity: &AgentIdentity) -> Result<rustls::ClientConfig> {
    let e = |e: rustls::Error| Error::ApiMisuse {
        reason: format!("mesh TLS configuration: {e}"),
    };
    rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(e)?
        .dangerous()
        .with_custom_certificate_verifier(SelfSignedVerifier::new())
        .with_client_auth_cert(identity.chain(), identity.private_key())
        .map_err(e)
}

fn fresh_nonce() -> Result<String> {
    let mut n = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut n)
        .map_err(|_| Error::Crypto { what: "system RNG" })?;
    Ok(STANDARD.encode(n))
}

/// Steps 1 to 3 on an established TLS stream whose peer proved `peer_key`.
async fn attest<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cfg: &MeshConfig,
    peer_key: Vec<u8>,
    channel: [u8; 32],
) -> Result<MeshPeer> {
    let my_nonce = fresh_nonce()?;
    let tenant = cfg.verifier.tenant().to_string();
    write_msg(
        s,
        &Msg::Hello {
            tenant: tenant.clone(),
            nonce: my_nonce.clone(),
        },
    )
    .await?;
    let Msg::Hello {
        tenant: their_tenant,
        nonce: their_nonce,
    } = expect(s, "hello").await?
    else {
        return Err(Error::misbehaved("not a hello"));
    };
    let refuse_hello = if their_tenant != tenant {
        Some(format!(
            "the peer acts for tenant {their_tenant:?}, not {tenant:?}"
        ))
    } else if STANDARD.decode(&their_nonce).map(|n| n.len()).ok() != Some(NONCE_LEN) {
        Some(format!(
            "the peer's nonce is not {NONCE_LEN} bytes of base64"
        ))
    } else if their_nonce == my_nonce {
        Some("the peer reflected our nonce".to_string())
    } else {
        None
    };
    if let Some(reason) = refuse_hello {
        let _ = write_msg(
            s,
            &Msg::Error {
                reason: reason.clone(),
            },
        )
        .await;
        return Err(Error::misbehaved(reason));
    }

    let my_rd = mesh_binding(&their_nonce, &cfg.identity.public_sec1(), &channel)?;
    let ev = cfg.provider.evidence(&my_rd)?.to_kbs_json()?;
    write_msg(s, &Msg::Evidence { evidence: ev }).await?;
    let Msg::Evidence { evidence } = expect(s, "evidence").await? else {
        return Err(Error::misbehaved("not evidence"));
    };
    let expected = mesh_binding(&my_nonce, &peer_key, &channel)?;
    let verdict = cfg.verifier.verify(&evidence, &expected, UnixTime::now());
    let (accepted, reason) = match &verdict {
        Ok(_) => (true, String::new()),
        Err(e) => (false, e.to_string()),
    };
    write_msg(s, &Msg::Verdict { accepted, reason }).await?;
    let cvm = match verdict {
        Ok(c) => c,
        Err(e) => {
            // Let the peer's verdict arrive (so ours is read before the connection
            // closes), but our refusal stands whatever it says or if it is gone.
            let _ = read_msg(s).await;
            return Err(e);
        }
    };
    let Msg::Verdict {
        accepted: they_accepted,
        reason: their_reason,
    } = expect(s, "verdict").await?
    else {
        return Err(Error::misbehaved("not a verdict"));
    };
    if !they_accepted {
        return Err(Error::MeshRefused {
            reason: their_reason,
        });
    }
    Ok(MeshPeer {
        tls_key: peer_key,
        cvm,
    })
}

async fn timed<T>(what: &str, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .map_err(|_| Error::io(what.to_string(), &"no progress within 30 s"))?
}

/// The lead's end of a mesh session with one peer.
pub struct MeshConnection {
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    peer: MeshPeer,
}

impl std::fmt::Debug for MeshConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshConnection")
            .field("peer_tls_key", &hex::encode(&self.peer.tls_key))
            .finish()
    }
}

/// Connects to the peer agent at `addr` and runs mutual attestation.
pub async fn connect(addr: SocketAddr, cfg: &MeshConfig) -> Result<MeshConnection> {
    timed("mesh handshake", async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::io(format!("connecting to the peer agent at {addr}"), &e))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&cfg.identity)?));
        // The name is not checked: the peer is identified by its evidence.
        let name = rustls_pki_types::ServerName::try_from("ualink-agent").map_err(|e| {
            Error::ApiMisuse {
                reason: e.to_string(),
            }
        })?;
        let mut stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| Error::io(format!("TLS handshake with the peer agent at {addr}"), &e))?;
        let key = peer_p256_key(stream.get_ref().1.peer_certificates())?;
        let channel = stream
            .get_ref()
            .1
            .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
            .map_err(exporter_err)?;
        let peer = attest(&mut stream, cfg, key, channel).await?;
        Ok(MeshConnection { stream, peer })
    })
    .await
}

impl MeshConnection {
    /// The attested peer.
    pub fn peer(&self) -> &MeshPeer {
        &self.peer
    }

    /// Asks for the peer's security configuration.
    pub async fn request_config(&mut self) -> Result<PeerConfig> {
        timed("mesh config request", async {
            write_msg(&mut self.stream, &Msg::ConfigRequest {}).await?;
            match expect(&mut self.stream, "config").await? {
                Msg::Config { config } => Ok(config),
                _ => Err(Error::misbehaved("not a config")),
            }
        })
        .await
    }

    /// Sends `keys` (epoch `epoch`) and waits for the acknowledgement.
    pub async fn send_keys(&mut self, epoch: u32, keys: &[&KeyEntry]) -> Result<usize> {
        let wire: Vec<WireKey> = keys
            .iter()
            .map(|e| {
                let mut b = Zeroizing::new(String::with_capacity(48));
                STANDARD.encode_string(e.key().as_bytes(), &mut b);
                WireKey {
                    tx: e.tx_accelerator.get(),
                    port: e.tx_port,
                    rx: e.peer.get(),
                    key: SecretB64(b),
                }
            })
            .collect();
        timed("mesh key delivery", async {
            write_msg(&mut self.stream, &Msg::Keys { epoch, keys: wire }).await?;
            match expect(&mut self.stream, "ack").await? {
                Msg::Ack { received } if received == keys.len() => Ok(received),
                Msg::Ack { received } => Err(Error::misbehaved(format!(
                    "the peer acknowledged {received} keys of {}",
                    keys.len()
                ))),
                _ => Err(Error::misbehaved("not an ack")),
            }
        })
        .await
    }

    /// Ends the session.
    pub async fn finish(mut self) -> Result<()> {
        write_msg(&mut self.stream, &Msg::Bye {}).await?;
        let _ = self.stream.shutdown().await;
        Ok(())
    }
}

/// Keys received from the lead. `Debug` redacts the key bytes.
#[derive(Clone, Debug)]
pub struct ReceivedKeys {
    /// The key epoch.
    pub epoch: u32,
    /// The keys.
    pub entries: Vec<KeyEntry>,
}

/// What a peer got from one lead session.
#[derive(Debug)]
pub struct LeadSession {
    /// The lead, attested.
    pub lead: MeshPeer,
    /// The keys it sent, if any.
    pub keys: Option<ReceivedKeys>,
}

/// A peer agent's mesh endpoint.
pub struct MeshListener {
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    cfg: MeshConfig,
}

impl std::fmt::Debug for MeshListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshListener")
            .field("addr", &self.listener.local_addr().ok())
            .field("cfg", &self.cfg)
            .finish()
    }
}

fn decode_keys(epoch: u32, keys: Vec<WireKey>, own: &PeerConfig) -> Result<ReceivedKeys> {
    let mut entries = Vec::with_capacity(keys.len());
    for k in keys {
        let ours = own
            .accelerators
            .iter()
            .any(|a| a.accelerator_id == k.tx || a.accelerator_id == k.rx);
        if !ours {
            return Err(Error::misbehaved(format!(
                "the lead sent a key for {}→{}, which involves none of our accelerators",
                k.tx, k.rx
            )));
        }
        let raw = Zeroizing::new(
            STANDARD
                .decode(k.key.0.as_bytes())
                .map_err(|_| Error::malformed("mesh keys", "key is not base64"))?,
        );
        let mut bytes: [u8; KEY_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| Error::malformed("mesh keys", "key is not 32 bytes"))?;
        let key = MasterKey::from_bytes(&mut bytes);
        let id = |v: u16| {
            AccelId::new(v)
                .map_err(|_| Error::malformed("mesh keys", "accelerator id over 10 bits"))
        };
        entries.push(KeyEntry::new(id(k.tx)?, k.port, id(k.rx)?, key));
    }
    Ok(ReceivedKeys { epoch, entries })
}

impl MeshListener {
    /// Listens on `addr` (port 0 picks one).
    pub async fn bind(addr: SocketAddr, cfg: MeshConfig) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("listening on {addr}"), &e))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config(&cfg.identity)?));
        Ok(Self {
            listener,
            acceptor,
            cfg,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::io("mesh listener address", &e))
    }

    /// Accepts one connection, attests the connecting agent, answers its configuration
    /// request with `own` and takes the keys it sends (only keys that involve one of `own`'s
    /// accelerators are accepted), until it says `bye`.
    pub async fn serve_lead(&self, own: &PeerConfig) -> Result<LeadSession> {
        let (tcp, from) = self
            .listener
            .accept()
            .await
            .map_err(|e| Error::io("accepting a mesh connection", &e))?;
        let mut stream = timed("mesh handshake", async {
            self.acceptor
                .accept(tcp)
                .await
                .map_err(|e| Error::io(format!("TLS handshake with {from}"), &e))
        })
        .await?;
        let key = peer_p256_key(stream.get_ref().1.peer_certificates())?;
        let channel = stream
            .get_ref()
            .1
            .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
            .map_err(exporter_err)?;
        let lead = timed(
            "mesh attestation",
            attest(&mut stream, &self.cfg, key, channel),
        )
        .await?;
        let mut keys = None;
        loop {
            let m = timed("mesh request", read_msg(&mut stream)).await?;
            match m {
                Msg::ConfigRequest {} => {
                    write_msg(
                        &mut stream,
                        &Msg::Config {
                            config: own.clone(),
                        },
                    )
                    .await?
                }
                Msg::Keys { epoch, keys: k } => match decode_keys(epoch, k, own) {
                    Ok(r) => {
                        let received = r.entries.len();
                        keys = Some(r);
                        write_msg(&mut stream, &Msg::Ack { received }).await?;
                    }
                    Err(e) => {
                        let _ = write_msg(
                            &mut stream,
                            &Msg::Error {
                                reason: e.to_string(),
                            },
                        )
                        .await;
                        return Err(e);
                    }
                },
                Msg::Bye {} => break,
                Msg::Error { reason } => return Err(Error::MeshRefused { reason }),
                other => {
                    return Err(Error::misbehaved(format!(
                        "the lead sent {} after attestation",
                        other.name()
                    )))
                }
            }
        }
        let _ = stream.shutdown().await;
        Ok(LeadSession { lead, keys })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_bad_frames_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let m = Msg::Hello {
            tenant: "t".into(),
            nonce: "n".into(),
        };
        write_msg(&mut a, &m).await.unwrap();
        match read_msg(&mut b).await.unwrap() {
            Msg::Hello { tenant, nonce } => {
                assert_eq!((tenant.as_str(), nonce.as_str()), ("t", "n"))
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            &b"\x00\x00\x00\x00"[..],
            b"\x7f\xff\xff\xff",
            b"\x00\x00\x00\x02{}",
            b"\x00\x00\x00\x11{\"type\":\"nope\"}\x00",
            b"\x00\x00\x00\x18{\"type\":\"bye\",\"x\":1}  ",
        ] {
            let (mut a, mut b) = tokio::io::duplex(1 << 16);
            a.write_all(bad).await.unwrap();
            drop(a);
            assert!(read_msg(&mut b).await.is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn unknown_members_and_types_are_refused() {
        for body in [
            &br#"{"type":"bye","x":1}"#[..],
            br#"{"type":"nope"}"#,
            br#"{"type":"ack","received":1,"extra":true}"#,
            br#"{"type":"keys","epoch":1,"keys":[{"tx":1,"port":0,"rx":2,"key":"a","k2":0}]}"#,
        ] {
            let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
            frame.extend_from_slice(body);
            let mut rd = frame.as_slice();
            let e = read_msg(&mut rd).await.unwrap_err();
            assert_eq!(e.class(), crate::ErrorClass::Malformed, "{e}");
        }
        let body = br#"{"type":"ack","received":1}"#;
        let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        let mut rd = frame.as_slice();
        assert!(matches!(
            read_msg(&mut rd).await.unwrap(),
            Msg::Ack { received: 1 }
        ));
    }

    #[test]
    fn wire_keys_are_redacted() {
        let k = WireKey {
            tx: 1,
            port: 0,
            rx: 2,
            key: SecretB64(Zeroizing::new("c2VjcmV0".into())),
        };
        assert!(!format!("{k:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn binding_depends_on_nonce_and_key() {
        let a = AgentIdentity::generate("a").unwrap();
        let b = AgentIdentity::generate("b").unwrap();
        let ch = [7u8; 32];
        let x = mesh_binding("bm9uY2U", &a.public_sec1(), &ch).unwrap();
        assert_ne!(x, mesh_binding("bm9uY2U", &b.public_sec1(), &ch).unwrap());
        assert_ne!(x, mesh_binding("b3RoZXI", &a.public_sec1(), &ch).unwrap());
        assert_ne!(
            x,
            mesh_binding("bm9uY2U", &a.public_sec1(), &[8u8; 32]).unwrap()
        );
        assert_eq!(&x[48..], &[0u8; 16]);
        assert!(mesh_binding("n", &[4u8; 65], &ch).is_err());
    }
}
