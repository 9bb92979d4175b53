//! `respond`: a software device behind the spdm-emu socket protocol.
//!
//! One [`SoftDevice`] lives for the whole process (its TDI state and link keys persist across
//! connections, as on a real device); each connection gets a fresh SPDM [`Responder`] over
//! it. A connection ends with SHUTDOWN (which also stops the server unless
//! `--keep-serving`), with CONTINUE (the SPDM state restarts on the same connection), or when
//! the client goes away (the server keeps listening). SIGINT/SIGTERM end the process with
//! their default action; nothing needs flushing (the identity is written before listening).
//!
//! Logged to stderr: one line per connection and per message (its type and length, never its
//! content, so no key material can reach the log).

use std::path::PathBuf;

use clap::Args;
use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::device::{Device, SoftDevice};
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions, IdentitySource};
use ualink_spdm::pcap::code_name;
use ualink_spdm::requester::SecuredFraming;
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::emu_socket::{Command, EmuConfig, EmuServer, ServerEvent};
use ualink_spdm::transport::{MessageKind, Transport};

use crate::{version_name, AsymArg, ExitKind, Failure, TransportArg, VersionArg};

/// The accelerator ID of the served device (the UALinkSec key sink's local ID).
pub(crate) const SOFT_ACCEL_ID: u16 = 7;

/// Arguments of `respond`.
#[derive(Debug, Args)]
pub(crate) struct RespondArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed as
    /// `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:2323")]
    listen: String,
    /// Transport binding inside the socket frames.
    #[arg(long, value_enum, default_value = "mctp")]
    transport: TransportArg,
    /// Identity directory (ca.pem, chain.pem, device.key.pem): used as-is if the files
    /// exist, generated otherwise. Default: a new directory under the system temp dir.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Signature algorithm of a generated identity (an existing identity must match).
    /// Default: P-384, or the existing identity's.
    #[arg(long, value_enum)]
    asym: Option<AsymArg>,
    /// Offer only this SPDM version (default: 1.2 and 1.3).
    #[arg(long, value_enum)]
    version: Option<VersionArg>,
    /// Keep listening after a client's SHUTDOWN (spdm-emu's responder exits).
    #[arg(long)]
    keep_serving: bool,
}

fn asym_name(a: AsymAlg) -> &'static str {
    match a {
        AsymAlg::EcdsaP256 => "ECDSA P-256",
        AsymAlg::EcdsaP384 => "ECDSA P-384",
    }
}

fn load_identity(args: &RespondArgs) -> Result<(DeviceIdentity, PathBuf), Failure> {
    let dir = args.identity.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("ualink-spdm-identity-{}", std::process::id()))
    });
    let wanted = args.asym.map(AsymAlg::from);
    let (id, source) = DeviceIdentity::load_or_generate(
        &dir,
        wanted.unwrap_or(AsymAlg::EcdsaP384),
        &IdentityOptions::default(),
    )
    .map_err(|e| {
        Failure::new(
            ExitKind::Other,
            anyhow::anyhow!("identity {}: {e}", dir.display()),
        )
    })?;
    if let Some(w) = wanted {
        if w != id.asym() {
            return Err(Failure::new(
                ExitKind::Usage,
                anyhow::anyhow!(
                    "identity {} holds a {} key but --asym asks for {}",
                    dir.display(),
                    asym_name(id.asym()),
                    asym_name(w)
                ),
            ));
        }
    }
    let how = match source {
        IdentitySource::Loaded => "loaded",
        IdentitySource::Generated => "generated",
    };
    eprintln!(
        "identity {how}: {} ({})",
        dir.display(),
        asym_name(id.asym())
    );
    Ok((id, dir))
}

/// How a connection ended.
enum Ended {
    /// SHUTDOWN.
    Shutdown,
    /// The client went away or broke the framing.
    Dropped(String),
}

pub(crate) fn run(args: &RespondArgs) -> Result<(), Failure> {
    let (identity, dir) = load_identity(args)?;
    let transport = Transport::from(args.transport);
    let mut device = SoftDevice::new(identity, SOFT_ACCEL_ID)
        .map_err(|e| Failure::new(ExitKind::Other, anyhow::anyhow!("device: {e}")))?;
    if let Some(v) = args.version {
        device = device.with_versions(&[SpdmVersion::from(v)]);
    }
    let versions: Vec<&str> = device.versions().iter().map(|v| version_name(*v)).collect();
    let config = ResponderConfig {
        secured: SecuredFraming::for_transport(transport),
        ..ResponderConfig::default()
    };
    let server = EmuServer::bind(&args.listen, EmuConfig::new(transport)).map_err(|e| {
        Failure::new(
            ExitKind::Connect,
            anyhow::anyhow!("cannot listen on {}: {e}", args.listen),
        )
    })?;
    let addr = server
        .local_addr()
        .map_err(|e| Failure::new(ExitKind::Connect, e))?;
    println!("trust anchor: {}", dir.join("ca.pem").display());
    println!(
        "listening on {addr} (transport {transport}, SPDM {})",
        versions.join("/")
    );

    let mut conn_no = 0u64;
    loop {
        let mut conn = match server.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        conn_no = conn_no.saturating_add(1);
        eprintln!("conn {conn_no}: connected");
        let mut responder = Responder::new(&mut device, config);
        let mut answered = 0u64;
        let ended = loop {
            let event = match conn.next_event() {
                Ok(e) => e,
                Err(e) => break Ended::Dropped(e.to_string()),
            };
            match event {
                ServerEvent::Message(kind, msg) => {
                    let req = describe(kind, &msg);
                    let Some(out) = responder.handle(kind, &msg) else {
                        eprintln!("conn {conn_no}: {req} -> (no response allowed; closing)");
                        break Ended::Dropped(String::from("unanswerable secured message"));
                    };
                    eprintln!(
                        "conn {conn_no}: {req} -> {}",
                        describe(out.kind, &out.bytes)
                    );
                    answered = answered.saturating_add(1);
                    if let Err(e) = conn.send_response(out.kind, &out.bytes) {
                        break Ended::Dropped(e.to_string());
                    }
                }
                ServerEvent::Continue => {
                    eprintln!("conn {conn_no}: CONTINUE (SPDM state reset)");
                    end_session(&mut responder);
                    drop(responder);
                    responder = Responder::new(&mut device, config);
                }
                ServerEvent::OobEncapKeyUpdate => {
                    eprintln!("conn {conn_no}: OOB_ENCAP_KEY_UPDATE (acknowledged; encapsulated requests are not supported)");
                    if let Err(e) = conn.acknowledge(Command::OobEncapKeyUpdate) {
                        break Ended::Dropped(e.to_string());
                    }
                }
                ServerEvent::Shutdown => break Ended::Shutdown,
            }
        };
        end_session(&mut responder);
        match ended {
            Ended::Shutdown => {
                eprintln!("conn {conn_no}: SHUTDOWN after {answered} messages");
                if !args.keep_serving {
                    return Ok(());
                }
            }
            Ended::Dropped(why) => {
                eprintln!("conn {conn_no}: closed after {answered} messages ({why})")
            }
        }
    }
}

/// Tells the device that a session still live when its connection ends is gone.
fn end_session(responder: &mut Responder<&mut SoftDevice>) {
    if let Some(sid) = responder.session_id() {
        responder.device_mut().session_ended(sid);
    }
}

/// `GET_VERSION(0x84) len=4` for plain messages, `SECURED sid=... len=N` for records.
fn describe(kind: MessageKind, msg: &[u8]) -> String {
    match kind {
        MessageKind::Spdm => match msg.get(1) {
            Some(&code) => format!("{}({code:#04x}) len={}", code_name(code), msg.len()),
            None => format!("SPDM (truncated) len={}", msg.len()),
        },
        MessageKind::Secured => {
            let sid = msg
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0);
            format!("SECURED sid={sid:#010x} len={}", msg.len())
        }
    }
}
