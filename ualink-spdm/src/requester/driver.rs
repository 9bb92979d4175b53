//! A blocking driver for the sans-IO [`Requester`] over any [`SpdmIo`] (a socket with the
//! spdm-emu framing, an in-memory loop to a [`crate::responder::Responder`], a DOE mailbox).

use super::{AppRequest, AppResponse, Attestation, Outbound, Progress, Requester};
use crate::error::{Error, Result};
use crate::transport::MessageKind;

/// Message transport for the blocking driver: one SPDM or secured message per call, already
/// stripped of (or wrapped in) the transport binding.
pub trait SpdmIo {
    /// Sends one message.
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> std::io::Result<()>;
    /// Receives one message.
    fn receive(&mut self) -> std::io::Result<(MessageKind, Vec<u8>)>;
}

/// Why the blocking driver stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The protocol failed (the requester is now unusable).
    #[error(transparent)]
    Spdm(#[from] Error),
    /// The transport failed.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
}

fn exchange(
    req: &mut Requester,
    io: &mut dyn SpdmIo,
    first: Outbound,
) -> Result<Progress, DriverError> {
    let mut out = first;
    loop {
        io.send(out.kind, &out.bytes)?;
        let (kind, bytes) = io.receive()?;
        match req.handle(kind, &bytes)? {
            Progress::Send(next) => out = next,
            done => return Ok(done),
        }
    }
}

/// Runs attestation (and session setup, if configured) to completion.
pub fn attest(req: &mut Requester, io: &mut dyn SpdmIo) -> Result<Attestation, DriverError> {
    let first = req.start()?;
    match exchange(req, io, first)? {
        Progress::Attested(a) => Ok(*a),
        _ => Err(Error::ApiMisuse("attestation ended without a result").into()),
    }
}

/// Sends one application-phase request in the session and returns its answer
/// (`None` for END_SESSION, which closes the session).
pub fn request(
    req: &mut Requester,
    io: &mut dyn SpdmIo,
    app: AppRequest,
) -> Result<Option<AppResponse>, DriverError> {
    let first = req.request(app)?;
    match exchange(req, io, first)? {
        Progress::Response(r) => Ok(Some(r)),
        Progress::SessionClosed => Ok(None),
        _ => Err(Error::ApiMisuse("unexpected progress in the application phase").into()),
    }
}
