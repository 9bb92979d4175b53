//! The host side of one accelerator's SPDM mailbox: ualink-spdm's blocking driver over
//! `FabricOps::spdm_send`/`spdm_receive` with MCTP framing.

use ualink_kdrv::ops::{FabricOps, OpsError};
use ualink_kdrv::AcceleratorId;
use ualink_sim::{AccelId, SimPod};
use ualink_spdm::requester::driver::SpdmIo;
use ualink_spdm::transport::{MessageKind, Received, Transport};

/// Largest framed message accepted from a mailbox (MaxSPDMmsgSize 64 KiB plus framing).
pub const MAX_FRAMED: usize = 70_000;

/// The buffer a response is first taken into (most fit; see [`SpdmIo::receive`]).
const SMALL_FRAMED: usize = 4096;

/// One device's mailbox.
#[derive(Debug)]
pub struct Mailbox<'a> {
    pod: &'a SimPod,
    accel: AcceleratorId,
}

impl<'a> Mailbox<'a> {
    /// The mailbox of `accel` on `pod`.
    pub fn new(pod: &'a SimPod, accel: AccelId) -> Self {
        Self {
            pod,
            accel: accel.to_kdrv(),
        }
    }
}

impl SpdmIo for Mailbox<'_> {
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> std::io::Result<()> {
        let framed = Transport::Mctp
            .encode(kind, msg)
            .map_err(std::io::Error::other)?;
        self.pod
            .spdm_send(self.accel, &framed)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
    }

    fn receive(&mut self) -> std::io::Result<(MessageKind, Vec<u8>)> {
        // Most responses fit in a small buffer; a larger one stays queued (TooBig) and is
        // taken with a buffer of the largest size. Saves zeroing 70 KB per message.
        let mut small = [0u8; SMALL_FRAMED];
        let mut large = Vec::new();
        let (buf, n) = match self.pod.spdm_receive(self.accel, &mut small) {
            Ok(n) => (&small[..], n),
            Err(OpsError::TooBig) => {
                large.resize(MAX_FRAMED, 0);
                let n = self
                    .pod
                    .spdm_receive(self.accel, &mut large)
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                (&large[..], n)
            }
            Err(e) => return Err(std::io::Error::other(format!("{e:?}"))),
        };
        let framed = buf
            .get(..n)
            .ok_or_else(|| std::io::Error::other("mailbox reported more bytes than it wrote"))?;
        match Transport::Mctp
            .decode(framed)
            .map_err(std::io::Error::other)?
        {
            Received::Message(k, m) => Ok((k, m.to_vec())),
            Received::DoeDiscovery(_) => Err(std::io::Error::other("unexpected DOE discovery")),
        }
    }
}
