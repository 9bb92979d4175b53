//! MCTP encapsulation of SPDM (DSP0275): a one-byte MCTP message type before the message.
//!
//! ```text
//! offset  size  field
//! 0       1     MessageType  bit 7 = IC (integrity check, must be 0); 0x05 SPDM, 0x06 secured SPDM
//! 1       ...   SPDM message, or DSP0277 secured message
//! ```
//!
//! Over the spdm-emu socket this is the whole frame payload; in a pcap (link type 291) it is
//! preceded by the 4-byte MCTP transport header, which [`crate::pcap`] strips.

use alloc::vec::Vec;

use super::MessageKind;
use crate::error::Malformed;

/// MCTP message type of a plain SPDM message.
pub const MCTP_TYPE_SPDM: u8 = 0x05;
/// MCTP message type of a DSP0277 secured SPDM message.
pub const MCTP_TYPE_SECURED_SPDM: u8 = 0x06;
/// Width of the secured-message SequenceNumber field on MCTP (DSP0275).
pub const SEQUENCE_NUMBER_LEN: usize = 2;

/// Prefixes `msg` with the MCTP message type of `kind`.
pub fn encapsulate(kind: MessageKind, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len().saturating_add(1));
    out.push(match kind {
        MessageKind::Spdm => MCTP_TYPE_SPDM,
        MessageKind::Secured => MCTP_TYPE_SECURED_SPDM,
    });
    out.extend_from_slice(msg);
    out
}

/// Splits an MCTP payload into its kind and message. Rejects an empty payload, an empty
/// message, the IC bit and any message type other than 0x05/0x06.
pub fn decapsulate(payload: &[u8]) -> Result<(MessageKind, &[u8]), Malformed> {
    let (&ty, msg) = payload.split_first().ok_or(Malformed::Truncated {
        what: "MCTP message type",
    })?;
    let kind = match ty {
        MCTP_TYPE_SPDM => MessageKind::Spdm,
        MCTP_TYPE_SECURED_SPDM => MessageKind::Secured,
        other => {
            return Err(Malformed::UnknownValue {
                what: "MCTP message type",
                value: u32::from(other),
            })
        }
    };
    if msg.is_empty() {
        return Err(Malformed::Truncated {
            what: "MCTP SPDM message",
        });
    }
    Ok((kind, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_version_kat_and_round_trip() {
        let wire = [0x05, 0x10, 0x84, 0x00, 0x00];
        let (kind, msg) = decapsulate(&wire).unwrap();
        assert_eq!(kind, MessageKind::Spdm);
        assert_eq!(msg, &[0x10, 0x84, 0x00, 0x00]);
        assert_eq!(encapsulate(kind, msg), wire);
        let sec = encapsulate(MessageKind::Secured, &[1, 2, 3]);
        assert_eq!(sec, [0x06, 1, 2, 3]);
        assert_eq!(
            decapsulate(&sec).unwrap(),
            (MessageKind::Secured, &[1u8, 2, 3][..])
        );
    }

    #[test]
    fn rejects_other_types_ic_bit_and_empty() {
        assert!(decapsulate(&[]).is_err());
        assert!(decapsulate(&[0x05]).is_err());
        assert!(decapsulate(&[0x85, 0x10]).is_err());
        assert!(decapsulate(&[0x7E, 0x10]).is_err());
    }
}
