//! Reading spdm-emu captures (classic pcap) and decoding each message to one line.
//!
//! Link types (as libspdm's spdm-emu writes them):
//! * 291, MCTP: a 4-byte MCTP transport header (version, destination EID, source EID,
//!   flags/tag), the MCTP message-type byte (0x05 SPDM, 0x06 secured SPDM), the message;
//! * 292, PCI DOE: the 8-byte DOE header (see [`crate::transport::doe`]), then the payload
//!   with its DWORD padding.
//!
//! [`Capture::parse`] refuses any other container or link type, records whose captured
//! length differs from their original length, and trailing bytes after the last record.
//!
//! [`decode_line`] produces the lines of the `*.transcript.full.txt` reference files:
//! * `SPDM v1.2 GET_CAPABILITIES(0xe1) p1=0x00 p2=0x00 len=20`;
//! * `SECURED sid=0xffffffff seq=0 len=24 (ciphertext+16B MAC)` (MCTP: 2-byte sequence number);
//! * `SECURED sid=0xffffffff len=54 (ciphertext+16B MAC, no seq# on DOE)`;
//! * `DOE_DISCOVERY request index=0` / `DOE_DISCOVERY response vendor=0x0001 type=1 next=2`.
//!
//! `len` is the length of the message as carried (on DOE including padding); for secured
//! messages it is the record's Length field. A DOE discovery payload does not say whether it
//! is a request or a response; the decoder assumes they alternate, starting with a request,
//! as every DOE exchange does.

use std::fmt::Write as _;
use std::string::String;
use std::vec::Vec;

use pcap_parser::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header};

use crate::error::Malformed;
use crate::transport::doe::{self, DataObjectType, DiscoveryRequest, DiscoveryResponse};
use crate::transport::{mctp, MessageKind};

/// pcap link type of spdm-emu's MCTP captures.
pub const LINKTYPE_MCTP: i32 = 291;
/// pcap link type of spdm-emu's PCI DOE captures.
pub const LINKTYPE_PCI_DOE: i32 = 292;
/// Size of the MCTP transport header in link type 291 records.
pub const MCTP_TRANSPORT_HEADER_LEN: usize = 4;

/// Why a capture could not be read.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// Not a classic pcap file (or a variant we do not read).
    #[error("not a classic pcap file")]
    NotPcap,
    /// A link type other than 291 (MCTP) or 292 (PCI DOE).
    #[error("unsupported pcap link type {0}")]
    UnsupportedLinkType(i32),
    /// Record `index` is cut short (by the file, or caplen < origlen).
    #[error("record {index} is truncated")]
    TruncatedRecord {
        /// Record number, from 0.
        index: usize,
    },
    /// Record `index` does not carry an SPDM transport payload.
    #[error("record {index}: {reason}")]
    BadRecord {
        /// Record number, from 0.
        index: usize,
        /// What is wrong.
        reason: Malformed,
    },
}

/// The transport a capture was taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// Link type 291.
    Mctp,
    /// Link type 292.
    PciDoe,
}

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A plain SPDM message.
    Spdm,
    /// A DSP0277 secured message.
    Secured,
    /// A DOE discovery request or response (4-byte payload).
    DoeDiscovery,
}

/// One captured message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapRecord {
    /// Position in the capture, from 0.
    pub index: usize,
    /// Capture timestamp, seconds.
    pub ts_sec: u32,
    /// Capture timestamp, fraction (micro- or nanoseconds, as the file says).
    pub ts_frac: u32,
    /// What the record carries.
    pub kind: RecordKind,
    /// The message without transport headers (DOE: with its padding).
    pub message: Vec<u8>,
}

/// A whole capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Its link type.
    pub link: LinkType,
    /// Every record, in order.
    pub records: Vec<PcapRecord>,
}

impl Capture {
    /// Parses a classic pcap file (either byte order) of link type 291 or 292.
    pub fn parse(bytes: &[u8]) -> Result<Self, PcapError> {
        let (mut rest, header) = parse_pcap_header(bytes).map_err(|_| PcapError::NotPcap)?;
        if header.is_modified_format() {
            return Err(PcapError::NotPcap);
        }
        let link = match header.network.0 {
            LINKTYPE_MCTP => LinkType::Mctp,
            LINKTYPE_PCI_DOE => LinkType::PciDoe,
            other => return Err(PcapError::UnsupportedLinkType(other)),
        };
        let mut records = Vec::new();
        while !rest.is_empty() {
            let index = records.len();
            let parsed = if header.is_bigendian() {
                parse_pcap_frame_be(rest)
            } else {
                parse_pcap_frame(rest)
            };
            let (next, frame) = parsed.map_err(|_| PcapError::TruncatedRecord { index })?;
            if frame.caplen != frame.origlen {
                return Err(PcapError::TruncatedRecord { index });
            }
            let bad = |reason| PcapError::BadRecord { index, reason };
            let (kind, message) = match link {
                LinkType::Mctp => {
                    let payload = frame.data.get(MCTP_TRANSPORT_HEADER_LEN..).ok_or(bad(
                        Malformed::Truncated {
                            what: "MCTP transport header",
                        },
                    ))?;
                    let (kind, msg) = mctp::decapsulate(payload).map_err(bad)?;
                    let kind = match kind {
                        MessageKind::Spdm => RecordKind::Spdm,
                        MessageKind::Secured => RecordKind::Secured,
                    };
                    (kind, msg)
                }
                LinkType::PciDoe => {
                    let (ty, msg) = doe::decode(frame.data).map_err(bad)?;
                    let kind = match ty {
                        DataObjectType::Discovery => RecordKind::DoeDiscovery,
                        DataObjectType::Spdm => RecordKind::Spdm,
                        DataObjectType::SecuredSpdm => RecordKind::Secured,
                    };
                    (kind, msg)
                }
            };
            records.push(PcapRecord {
                index,
                ts_sec: frame.ts_sec,
                ts_frac: frame.ts_usec,
                kind,
                message: message.to_vec(),
            });
            rest = next;
        }
        Ok(Self { link, records })
    }

    /// The `*.transcript.full.txt` layout: per record the `#NNNN <decode>` line, then six
    /// spaces and the message in lowercase hex, each line ending in `\n`.
    pub fn to_transcript(&self) -> String {
        let mut out = String::new();
        for (line, rec) in self.decode_lines().iter().zip(&self.records) {
            out.push_str(line);
            out.push_str("\n      ");
            for b in &rec.message {
                let _ = write!(out, "{b:02x}");
            }
            out.push('\n');
        }
        out
    }

    /// One `#NNNN <decode>` line per record, in order.
    pub fn decode_lines(&self) -> Vec<String> {
        let mut discovery_seen = 0usize;
        self.records
            .iter()
            .map(|r| {
                let is_response = r.kind == RecordKind::DoeDiscovery && discovery_seen % 2 == 1;
                if r.kind == RecordKind::DoeDiscovery {
                    discovery_seen = discovery_seen.saturating_add(1);
                }
                format!(
                    "#{:04} {}",
                    r.index,
                    decode_line(self.link, r.kind, &r.message, is_response)
                )
            })
            .collect()
    }
}

/// Decodes one message to a line (see the module docs). `discovery_response` says how to
/// read a DOE discovery payload; it is ignored for other kinds.
pub fn decode_line(
    link: LinkType,
    kind: RecordKind,
    msg: &[u8],
    discovery_response: bool,
) -> String {
    match kind {
        RecordKind::Spdm => decode_spdm(msg),
        RecordKind::Secured => decode_secured(link, msg),
        RecordKind::DoeDiscovery => decode_discovery(msg, discovery_response),
    }
}

fn decode_spdm(msg: &[u8]) -> String {
    let [ver, code, p1, p2] = match msg.get(..4) {
        Some(&[a, b, c, d]) => [a, b, c, d],
        _ => return format!("SPDM (truncated header) len={}", msg.len()),
    };
    format!(
        "SPDM v{}.{} {}({:#04x}) p1={:#04x} p2={:#04x} len={}",
        ver >> 4,
        ver & 0x0f,
        code_name(code),
        code,
        p1,
        p2,
        msg.len()
    )
}

fn decode_secured(link: LinkType, msg: &[u8]) -> String {
    let sid = msg
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes);
    let mut out = String::from("SECURED");
    let Some(sid) = sid else {
        let _ = write!(out, " (truncated header) len={}", msg.len());
        return out;
    };
    let _ = write!(out, " sid={sid:#010x}");
    let u16_at = |at: usize| {
        msg.get(at..at.saturating_add(2))
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_le_bytes)
    };
    match link {
        LinkType::Mctp => match (u16_at(4), u16_at(6)) {
            (Some(seq), Some(len)) => {
                let _ = write!(out, " seq={seq} len={len} (ciphertext+16B MAC)");
            }
            _ => {
                let _ = write!(out, " (truncated header) len={}", msg.len());
            }
        },
        LinkType::PciDoe => match u16_at(4) {
            Some(len) => {
                let _ = write!(out, " len={len} (ciphertext+16B MAC, no seq# on DOE)");
            }
            None => {
                let _ = write!(out, " (truncated header) len={}", msg.len());
            }
        },
    }
    out
}

fn decode_discovery(msg: &[u8], response: bool) -> String {
    // The DOE layer keeps no padding here: discovery payloads are exactly one DWORD.
    if response {
        match DiscoveryResponse::parse(msg) {
            Ok(r) => format!(
                "DOE_DISCOVERY response vendor={:#06x} type={} next={}",
                r.vendor_id, r.object_type, r.next_index
            ),
            Err(_) => format!("DOE_DISCOVERY response (malformed) len={}", msg.len()),
        }
    } else {
        match DiscoveryRequest::parse(msg) {
            Ok(r) => format!("DOE_DISCOVERY request index={}", r.index),
            Err(_) => format!("DOE_DISCOVERY request (malformed) len={}", msg.len()),
        }
    }
}

/// The DSP0274 name of a request/response code (`UNKNOWN` if not defined).
pub fn code_name(code: u8) -> &'static str {
    match code {
        0x01 => "DIGESTS",
        0x02 => "CERTIFICATE",
        0x03 => "CHALLENGE_AUTH",
        0x04 => "VERSION",
        0x05 => "CHUNK_SEND_ACK",
        0x06 => "CHUNK_RESPONSE",
        0x07 => "ENDPOINT_INFO",
        0x60 => "MEASUREMENTS",
        0x61 => "CAPABILITIES",
        0x62 => "SUPPORTED_EVENT_TYPES",
        0x63 => "ALGORITHMS",
        0x64 => "KEY_EXCHANGE_RSP",
        0x65 => "FINISH_RSP",
        0x66 => "PSK_EXCHANGE_RSP",
        0x67 => "PSK_FINISH_RSP",
        0x68 => "HEARTBEAT_ACK",
        0x69 => "KEY_UPDATE_ACK",
        0x6A => "ENCAPSULATED_REQUEST",
        0x6B => "ENCAPSULATED_RESPONSE_ACK",
        0x6C => "END_SESSION_ACK",
        0x6D => "CSR",
        0x6E => "SET_CERTIFICATE_RSP",
        0x6F => "MEASUREMENT_EXTENSION_LOG",
        0x70 => "SUBSCRIBE_EVENT_TYPES_ACK",
        0x71 => "EVENT_ACK",
        0x7C => "KEY_PAIR_INFO",
        0x7D => "SET_KEY_PAIR_INFO_ACK",
        0x7E => "VENDOR_DEFINED_RESPONSE",
        0x7F => "ERROR",
        0x81 => "GET_DIGESTS",
        0x82 => "GET_CERTIFICATE",
        0x83 => "CHALLENGE",
        0x84 => "GET_VERSION",
        0x85 => "CHUNK_SEND",
        0x86 => "CHUNK_GET",
        0x87 => "GET_ENDPOINT_INFO",
        0xE0 => "GET_MEASUREMENTS",
        0xE1 => "GET_CAPABILITIES",
        0xE2 => "GET_SUPPORTED_EVENT_TYPES",
        0xE3 => "NEGOTIATE_ALGORITHMS",
        0xE4 => "KEY_EXCHANGE",
        0xE5 => "FINISH",
        0xE6 => "PSK_EXCHANGE",
        0xE7 => "PSK_FINISH",
        0xE8 => "HEARTBEAT",
        0xE9 => "KEY_UPDATE",
        0xEA => "GET_ENCAPSULATED_REQUEST",
        0xEB => "DELIVER_ENCAPSULATED_RESPONSE",
        0xEC => "END_SESSION",
        0xED => "GET_CSR",
        0xEE => "SET_CERTIFICATE",
        0xEF => "GET_MEASUREMENT_EXTENSION_LOG",
        0xF0 => "SUBSCRIBE_EVENT_TYPES",
        0xF1 => "SEND_EVENT",
        0xFC => "GET_KEY_PAIR_INFO",
        0xFD => "SET_KEY_PAIR_INFO",
        0xFE => "VENDOR_DEFINED_REQUEST",
        0xFF => "RESPOND_IF_READY",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_short_and_odd_messages_do_not_panic() {
        assert_eq!(
            decode_line(LinkType::Mctp, RecordKind::Spdm, &[0x12, 0x81, 0, 0], false),
            "SPDM v1.2 GET_DIGESTS(0x81) p1=0x00 p2=0x00 len=4"
        );
        assert_eq!(
            decode_line(LinkType::Mctp, RecordKind::Spdm, &[0x12, 0x00, 1, 2], false),
            "SPDM v1.2 UNKNOWN(0x00) p1=0x01 p2=0x02 len=4"
        );
        for n in 0..8 {
            let m = vec![0xffu8; n];
            for link in [LinkType::Mctp, LinkType::PciDoe] {
                for kind in [
                    RecordKind::Spdm,
                    RecordKind::Secured,
                    RecordKind::DoeDiscovery,
                ] {
                    assert!(!decode_line(link, kind, &m, n % 2 == 0).is_empty());
                }
            }
        }
        assert_eq!(
            decode_line(
                LinkType::PciDoe,
                RecordKind::DoeDiscovery,
                &[1, 0, 1, 2],
                true
            ),
            "DOE_DISCOVERY response vendor=0x0001 type=1 next=2"
        );
        assert_eq!(
            decode_line(
                LinkType::PciDoe,
                RecordKind::DoeDiscovery,
                &[2, 0, 0, 0],
                false
            ),
            "DOE_DISCOVERY request index=2"
        );
    }

    #[test]
    fn refuses_non_pcap_and_other_link_types() {
        assert_eq!(
            Capture::parse(b"not a pcap file at all.."),
            Err(PcapError::NotPcap)
        );
        let mut hdr = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        hdr.extend_from_slice(&[0; 8]);
        hdr.extend_from_slice(&65535u32.to_le_bytes());
        hdr.extend_from_slice(&1i32.to_le_bytes());
        assert_eq!(Capture::parse(&hdr), Err(PcapError::UnsupportedLinkType(1)));
    }
}
