//! Transport bindings: how an SPDM message or a DSP0277 secured message travels.
//!
//! * [`mctp`]: one MCTP message-type byte (0x05 SPDM, 0x06 secured) before the message.
//! * [`doe`]: the 8-byte PCI DOE header, payload padded to a DWORD; DOE discovery.
//! * `emu_socket` (`std`): DMTF spdm-emu's TCP framing around either of them.
//!
//! [`Transport`] is the sans-IO switch between them: it turns "SPDM message or secured
//! message" into transport payload bytes and back, and says how wide the secured message's
//! SequenceNumber is. [`SecuredFraming`] is what the binding means for the SPDM engines
//! (secured-message record parameters, inner MCTP type, DWORD padding of plain messages).

use alloc::vec::Vec;

use crate::error::Malformed;

pub mod doe;
#[cfg(feature = "std")]
pub mod emu_socket;
pub mod mctp;

/// Whether a message is a plain SPDM message or a DSP0277 secured message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// A plain SPDM message.
    Spdm,
    /// A DSP0277 secured message (SessionID first).
    Secured,
}

/// What arrived on a transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received<'a> {
    /// A message of the given kind. On PCI DOE it may carry up to 3 padding bytes.
    Message(MessageKind, &'a [u8]),
    /// A DOE discovery object (PCI DOE only): its 4-byte payload.
    DoeDiscovery(&'a [u8]),
}

/// Why a transport payload could not be produced or understood.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The payload does not parse.
    #[error("transport payload: {0}")]
    Malformed(#[from] Malformed),
    /// The transport cannot carry secured messages (spdm-emu's NONE).
    #[error("transport NONE cannot carry secured messages")]
    SecuredUnsupported,
    /// Not a transport name (`none`, `mctp`, `pci-doe`).
    #[error("unknown transport name (expected none, mctp or pci-doe)")]
    UnknownName,
}

/// The transport binding in use (also the spdm-emu socket TransportType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No binding: the payload is the SPDM message (no secured messages).
    None,
    /// MCTP (DSP0275).
    Mctp,
    /// PCI DOE (PCI-SIG CMA).
    PciDoe,
}

impl core::str::FromStr for Transport {
    type Err = TransportError;

    /// Parses the command-line names `none`, `mctp` and `pci-doe` (also `pci_doe`, `doe`),
    /// case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = [
            ("none", Self::None),
            ("mctp", Self::Mctp),
            ("pci-doe", Self::PciDoe),
            ("pci_doe", Self::PciDoe),
            ("doe", Self::PciDoe),
        ];
        known
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|(_, t)| *t)
            .ok_or(TransportError::UnknownName)
    }
}

impl core::fmt::Display for Transport {
    /// The command-line name (`none`, `mctp`, `pci-doe`).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Mctp => "mctp",
            Self::PciDoe => "pci-doe",
        })
    }
}

impl Transport {
    /// spdm-emu socket TransportType value.
    pub const fn emu_code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Mctp => 1,
            Self::PciDoe => 2,
        }
    }

    /// Parses an spdm-emu TransportType we support (TCP, 3, is not).
    pub const fn from_emu_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Mctp),
            2 => Some(Self::PciDoe),
            _ => None,
        }
    }

    /// Width of the DSP0277 SequenceNumber field in secured messages on this transport.
    pub const fn sequence_number_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::Mctp => mctp::SEQUENCE_NUMBER_LEN,
            Self::PciDoe => doe::SEQUENCE_NUMBER_LEN,
        }
    }

    /// Wraps one message of `kind` into a transport payload.
    pub fn encode(self, kind: MessageKind, msg: &[u8]) -> Result<Vec<u8>, TransportError> {
        match (self, kind) {
            (Self::None, MessageKind::Spdm) => Ok(msg.to_vec()),
            (Self::None, MessageKind::Secured) => Err(TransportError::SecuredUnsupported),
            (Self::Mctp, k) => Ok(mctp::encapsulate(k, msg)),
            (Self::PciDoe, MessageKind::Spdm) => Ok(doe::encode(doe::DataObjectType::Spdm, msg)?),
            (Self::PciDoe, MessageKind::Secured) => {
                Ok(doe::encode(doe::DataObjectType::SecuredSpdm, msg)?)
            }
        }
    }

    /// Unwraps one transport payload.
    pub fn decode(self, payload: &[u8]) -> Result<Received<'_>, TransportError> {
        match self {
            Self::None => {
                if payload.is_empty() {
                    return Err(Malformed::Truncated {
                        what: "SPDM message",
                    }
                    .into());
                }
                Ok(Received::Message(MessageKind::Spdm, payload))
            }
            Self::Mctp => {
                let (k, m) = mctp::decapsulate(payload)?;
                Ok(Received::Message(k, m))
            }
            Self::PciDoe => {
                let (ty, p) = doe::decode(payload)?;
                Ok(match ty {
                    doe::DataObjectType::Discovery => Received::DoeDiscovery(p),
                    doe::DataObjectType::Spdm => Received::Message(MessageKind::Spdm, p),
                    doe::DataObjectType::SecuredSpdm => Received::Message(MessageKind::Secured, p),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_transport_and_kind() {
        let msg = [0x12, 0x81, 0x00, 0x00, 0x55];
        for t in [Transport::None, Transport::Mctp, Transport::PciDoe] {
            assert_eq!(Transport::from_emu_code(t.emu_code()), Some(t));
            for k in [MessageKind::Spdm, MessageKind::Secured] {
                let Ok(p) = t.encode(k, &msg) else {
                    assert_eq!((t, k), (Transport::None, MessageKind::Secured));
                    continue;
                };
                match t.decode(&p).unwrap() {
                    Received::Message(k2, m) => {
                        assert_eq!(k2, k);
                        assert_eq!(&m[..msg.len()], &msg);
                        assert!(m[msg.len()..].iter().all(|b| *b == 0));
                    }
                    Received::DoeDiscovery(_) => panic!("not discovery"),
                }
            }
        }
        assert_eq!(Transport::Mctp.sequence_number_len(), 2);
        assert_eq!(Transport::PciDoe.sequence_number_len(), 0);
        assert_eq!(Transport::from_emu_code(3), None);
        for t in [Transport::None, Transport::Mctp, Transport::PciDoe] {
            assert_eq!(alloc::format!("{t}").parse::<Transport>(), Ok(t));
        }
        assert_eq!("PCI_DOE".parse::<Transport>(), Ok(Transport::PciDoe));
        assert_eq!("tcp".parse::<Transport>(), Err(TransportError::UnknownName));
        assert!(Transport::None.decode(&[]).is_err());
        let disc = doe::discovery_request(1).unwrap();
        assert_eq!(
            Transport::PciDoe.decode(&disc).unwrap(),
            Received::DoeDiscovery(&[1, 0, 0, 0])
        );
    }
}

/// What the transport binding in use means for the engine: how secured messages are framed,
/// and whether plain messages arrive padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecuredFraming {
    /// Record-layer parameters (sequence-number width, padding).
    pub params: crate::secured::SecuredParams,
    /// The application data starts with the MCTP message type 0x05 (MCTP binding).
    pub inner_mctp_type: bool,
    /// Plain messages may carry up to 3 zero bytes of DWORD padding (PCI DOE). The engine
    /// finds the message's own length by parsing it and keeps padding out of transcripts.
    pub dword_padding: bool,
}

impl SecuredFraming {
    /// MCTP: 2-byte sequence number, random padding, inner message type 0x05.
    pub const MCTP: Self = Self {
        params: crate::secured::SecuredParams::MCTP,
        inner_mctp_type: true,
        dword_padding: false,
    };
    /// PCI DOE: no sequence number on the wire, no padding, bare SPDM message.
    pub const PCI_DOE: Self = Self {
        params: crate::secured::SecuredParams::PCI_DOE,
        inner_mctp_type: false,
        dword_padding: true,
    };

    /// The framing for `transport` (`None` when it cannot carry secured messages: the
    /// engine then behaves as on MCTP, which only matters if a session is attempted).
    pub const fn for_transport(transport: crate::transport::Transport) -> Self {
        match transport {
            crate::transport::Transport::PciDoe => Self::PCI_DOE,
            crate::transport::Transport::Mctp | crate::transport::Transport::None => Self::MCTP,
        }
    }

    /// The message without transport padding: `msg` itself unless padding is in use, else
    /// the prefix that parses as one message (`ctx`: the negotiated context, refined for the
    /// request being answered; `None` before ALGORITHMS).
    pub fn strip_padding<'a>(
        &self,
        msg: &'a [u8],
        request: bool,
        ctx: Option<&crate::msg::MsgContext>,
    ) -> Result<&'a [u8], crate::Error> {
        if !self.dword_padding {
            return Ok(msg);
        }
        let used = if request {
            crate::msg::SpdmRequest::parse_padded(msg, ctx)?.1
        } else {
            crate::msg::SpdmResponse::parse_padded(msg, ctx)?.1
        };
        msg.get(..used).ok_or(
            Malformed::Truncated {
                what: "padded SPDM message",
            }
            .into(),
        )
    }

    /// The application data carrying `spdm` (zeroized on drop: it may carry key material).
    pub fn to_app_data(&self, spdm: &[u8]) -> zeroize::Zeroizing<Vec<u8>> {
        let mut v = zeroize::Zeroizing::new(Vec::with_capacity(spdm.len().saturating_add(1)));
        if self.inner_mctp_type {
            v.push(crate::transport::mctp::MCTP_TYPE_SPDM);
        }
        v.extend_from_slice(spdm);
        v
    }

    /// The SPDM message inside application data.
    pub fn from_app_data<'a>(&self, app: &'a [u8]) -> Result<&'a [u8], crate::Error> {
        if !self.inner_mctp_type {
            return Ok(app);
        }
        match app.split_first() {
            Some((&crate::transport::mctp::MCTP_TYPE_SPDM, rest)) if !rest.is_empty() => Ok(rest),
            Some((&t, _)) => Err(Malformed::UnknownValue {
                what: "secured message inner MCTP type",
                value: u32::from(t),
            }
            .into()),
            None => Err(Malformed::Truncated {
                what: "secured message application data",
            }
            .into()),
        }
    }
}
