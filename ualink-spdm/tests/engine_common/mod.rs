//! Shared plumbing for the engine tests: our requester against our responder in memory.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use ualink_spdm::algo::AsymAlg;
use ualink_spdm::cert_chain::TrustAnchors;
use ualink_spdm::device::SoftDevice;
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
use ualink_spdm::requester::driver::SpdmIo;
use ualink_spdm::requester::{Outbound, Progress, Requester, RequesterConfig};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::MessageKind;

/// One generated identity per curve for the whole test binary (the same root everywhere).
pub fn identity(asym: AsymAlg) -> DeviceIdentity {
    static P256: OnceLock<DeviceIdentity> = OnceLock::new();
    static P384: OnceLock<DeviceIdentity> = OnceLock::new();
    let cell = match asym {
        AsymAlg::EcdsaP256 => &P256,
        AsymAlg::EcdsaP384 => &P384,
    };
    let id =
        cell.get_or_init(|| DeviceIdentity::generate(asym, &IdentityOptions::default()).unwrap());
    DeviceIdentity::from_parts(
        id.ca_der().to_vec(),
        id.chain_der().to_vec(),
        zeroize::Zeroizing::new(id.key_pkcs8().to_vec()),
    )
    .unwrap()
}

/// Trust anchors holding the identity's root.
pub fn anchors(asym: AsymAlg) -> Arc<TrustAnchors> {
    let mut t = TrustAnchors::new();
    t.add_der(identity(asym).ca_der()).unwrap();
    Arc::new(t)
}

/// A soft device for `asym`.
pub fn device(asym: AsymAlg) -> SoftDevice {
    SoftDevice::new(identity(asym), 7).unwrap()
}

/// A responder over a soft device for `asym`.
pub fn responder(asym: AsymAlg) -> Responder<SoftDevice> {
    Responder::new(device(asym), ResponderConfig::default())
}

/// A requester trusting `asym`'s root.
pub fn requester(config: RequesterConfig, asym: AsymAlg) -> Requester {
    Requester::new(config, anchors(asym)).unwrap()
}

/// The in-memory loop: every message goes to the responder, whose answer comes back.
pub struct Loop<'a, D: ualink_spdm::device::Device> {
    pub responder: &'a mut Responder<D>,
    pending: Option<Outbound>,
    /// Every message that crossed, in order (request, response, ...).
    pub wire: Vec<(MessageKind, Vec<u8>)>,
}

impl<'a, D: ualink_spdm::device::Device> Loop<'a, D> {
    pub fn new(responder: &'a mut Responder<D>) -> Self {
        Self {
            responder,
            pending: None,
            wire: Vec::new(),
        }
    }
}

impl<D: ualink_spdm::device::Device> SpdmIo for Loop<'_, D> {
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> std::io::Result<()> {
        self.wire.push((kind, msg.to_vec()));
        self.pending = self.responder.handle(kind, msg);
        Ok(())
    }

    fn receive(&mut self) -> std::io::Result<(MessageKind, Vec<u8>)> {
        let out = self
            .pending
            .take()
            .ok_or_else(|| std::io::Error::other("responder sent nothing"))?;
        self.wire.push((out.kind, out.bytes.clone()));
        Ok((out.kind, out.bytes))
    }
}

/// Drives `req` with `first` until it stops asking to send; returns the last progress.
pub fn run<D: ualink_spdm::device::Device>(
    req: &mut Requester,
    rsp: &mut Responder<D>,
    first: Outbound,
) -> ualink_spdm::Result<Progress> {
    let mut out = first;
    loop {
        let Some(answer) = rsp.handle(out.kind, &out.bytes) else {
            return Err(ualink_spdm::Error::ApiMisuse("responder sent nothing"));
        };
        match req.handle(answer.kind, &answer.bytes)? {
            Progress::Send(next) => out = next,
            other => return Ok(other),
        }
    }
}

/// Which way a message travels in [`drive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Requester → responder.
    ToResponder,
    /// Responder → requester.
    ToRequester,
}

/// Like [`run`], with `tamper` seeing (and possibly replacing) every message in flight; it
/// returns `None` to make the responder's answer disappear (drive then fails).
pub fn drive<D: ualink_spdm::device::Device>(
    req: &mut Requester,
    rsp: &mut Responder<D>,
    first: Outbound,
    mut tamper: impl FnMut(Dir, Outbound) -> Outbound,
) -> ualink_spdm::Result<Progress> {
    let mut out = first;
    loop {
        let out_t = tamper(Dir::ToResponder, out);
        let Some(answer) = rsp.handle(out_t.kind, &out_t.bytes) else {
            return Err(ualink_spdm::Error::ApiMisuse("responder sent nothing"));
        };
        let answer = tamper(Dir::ToRequester, answer);
        match req.handle(answer.kind, &answer.bytes)? {
            Progress::Send(next) => out = next,
            other => return Ok(other),
        }
    }
}

/// Attests with `tamper` in the loop.
pub fn attest_tampered(
    config: RequesterConfig,
    asym: AsymAlg,
    tamper: impl FnMut(Dir, Outbound) -> Outbound,
) -> ualink_spdm::Result<Progress> {
    let mut rsp = responder(asym);
    let mut req = requester(config, asym);
    let first = req.start()?;
    drive(&mut req, &mut rsp, first, tamper)
}

/// The request/response code of a plain SPDM message.
pub fn code(o: &Outbound) -> u8 {
    if o.kind == MessageKind::Spdm {
        o.bytes.get(1).copied().unwrap_or(0)
    } else {
        0
    }
}

/// Passes every message through `transport`'s encoding and decoding in both directions (so
/// PCI DOE pads plain messages to a DWORD, MCTP adds its type byte).
pub fn run_over<D: ualink_spdm::device::Device>(
    transport: ualink_spdm::transport::Transport,
    req: &mut Requester,
    rsp: &mut Responder<D>,
    first: Outbound,
) -> ualink_spdm::Result<Progress> {
    use ualink_spdm::transport::Received;
    let hop = |o: Outbound| -> (MessageKind, Vec<u8>) {
        let wire = transport.encode(o.kind, &o.bytes).unwrap();
        match transport.decode(&wire).unwrap() {
            Received::Message(k, m) => (k, m.to_vec()),
            Received::DoeDiscovery(_) => panic!("discovery"),
        }
    };
    let mut out = first;
    loop {
        let (k, m) = hop(out);
        let Some(answer) = rsp.handle(k, &m) else {
            return Err(ualink_spdm::Error::ApiMisuse("responder sent nothing"));
        };
        let (k, m) = hop(answer);
        match req.handle(k, &m)? {
            Progress::Send(next) => out = next,
            other => return Ok(other),
        }
    }
}
