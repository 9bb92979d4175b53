//! Serving every accelerator's SPDM responder over DMTF spdm-emu sockets (MCTP transport), so
//! that `ualink-spdm probe` or DMTF's `spdm_requester_emu` can attest simulated devices.
//!
//! Accelerator number `i` (in ID order) listens on `base_port + i`. Each connection is served
//! on its own thread; messages go through the same mailbox as `FabricOps::spdm_send` /
//! `spdm_receive`, so a socket client and the driver see the same device.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use ualink_spdm::transport::emu_socket::{
    Command, EmuConfig, EmuConnection, EmuError, EmuServer, ServerEvent,
};
use ualink_spdm::transport::{Received, Transport};

use crate::error::SimError;
use crate::ids::AccelId;
use crate::sim::SimPod;

/// Why serving stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The socket layer failed.
    #[error("spdm-emu socket: {0}")]
    Emu(#[from] EmuError),
    /// The simulator refused.
    #[error("simulator: {0}")]
    Sim(#[from] SimError),
    /// Port arithmetic overflowed (too many accelerators for the base port).
    #[error("port {base} + {index} exceeds 65535")]
    PortRange {
        /// The base port.
        base: u16,
        /// The accelerator's index.
        index: usize,
    },
}

/// The vendor roots as a PEM bundle (what a requester should trust).
pub fn ca_bundle_pem(pod: &SimPod) -> String {
    let mut out = String::new();
    for (vendor, der) in pod.vendor_roots() {
        let _ = writeln!(out, "# vendor root: {vendor}");
        out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", der)));
    }
    out
}

/// Serves one spdm-emu connection for `accel` until the client shuts down.
pub fn serve_connection(
    pod: &SimPod,
    accel: AccelId,
    mut conn: EmuConnection,
) -> Result<(), ServeError> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match conn.next_event()? {
            ServerEvent::Message(kind, msg) => {
                let framed = Transport::Mctp
                    .encode(kind, &msg)
                    .map_err(|_| SimError::Malformed("SPDM transport framing"))?;
                pod.spdm_put(accel, &framed)?;
                match pod.spdm_take(accel, &mut buf)? {
                    Ok(Some(n)) => {
                        let answer = buf.get(..n).ok_or(SimError::BadTransfer)?;
                        match Transport::Mctp.decode(answer) {
                            Ok(Received::Message(k, m)) => conn.send_response(k, m)?,
                            // A malformed-response knob can make the answer undecodable: send
                            // the raw bytes so the client sees them.
                            _ => conn.send_response(kind, answer)?,
                        }
                    }
                    // The engine sent nothing (e.g. a dropped secured message): nothing to say.
                    Ok(None) => {}
                    Err(_) => return Err(SimError::BadTransfer.into()),
                }
            }
            ServerEvent::Continue => {}
            ServerEvent::OobEncapKeyUpdate => conn.acknowledge(Command::OobEncapKeyUpdate)?,
            ServerEvent::Shutdown => return Ok(()),
        }
    }
}

/// Binds one listener per accelerator on `ip`, ports `base_port + i` (a `base_port` of 0 lets
/// the system pick free ports), and serves connections (one at a time per accelerator) on
/// background threads. Returns each accelerator's address.
pub fn spawn_servers(
    pod: Arc<SimPod>,
    ip: IpAddr,
    base_port: u16,
) -> Result<Vec<(AccelId, SocketAddr, JoinHandle<()>)>, ServeError> {
    let mut out = Vec::new();
    for (index, accel) in pod.accelerator_ids()?.into_iter().enumerate() {
        let port = u16::try_from(index)
            .ok()
            .and_then(|i| base_port.checked_add(i))
            .ok_or(ServeError::PortRange {
                base: base_port,
                index,
            })?;
        let port = if base_port == 0 { 0 } else { port };
        let server = EmuServer::bind((ip, port), EmuConfig::new(Transport::Mctp))?;
        let addr = server.local_addr()?;
        let pod = Arc::clone(&pod);
        let handle = std::thread::spawn(move || loop {
            match server.accept() {
                Ok(conn) => {
                    // A client error ends that connection only.
                    let _ = serve_connection(&pod, accel, conn);
                }
                Err(_) => return,
            }
        });
        out.push((accel, addr, handle));
    }
    Ok(out)
}
