//! Wire codecs for simulated UALink transactions.
//!
//! A transaction on the wire is `header (16 bytes, clear, authenticated as AAD) || ciphertext ||
//! tag (8 bytes)`. What is clear and what is encrypted follows UALink_200 Tables 9-4..9-7:
//! accelerator IDs, command, length and the upper address bits stay in clear so that switches
//! can route; address bits 17:2, the transaction tag, byte enables and data are encrypted.
//!
//! # Clear header (AAD), 16 bytes, big-endian
//! ```text
//! offset size field
//!  0     1    cmd       (Cmd code; unknown codes are rejected)
//!  1     1    reserved  (must be zero)
//!  2     2    src       (source accelerator ID; bits 15:10 must be zero)
//!  4     2    dst       (destination accelerator ID; bits 15:10 must be zero)
//!  6     2    len       (data bytes carried or requested: >= 1 for requests; the link's
//!                        configured maximum is checked by the receiver)
//!  8     8    addr_hi   (address bits 63:18; bits 17:0 must be zero; zero in responses)
//! ```
//!
//! # Encrypted request body (Read, Write, KeyRoll), before encryption
//! ```text
//!  0     2    addr_lo   (address bits 17:2, i.e. (addr >> 2) & 0xffff)
//!  2     2    txn_tag   (12-bit transaction tag; bits 15:12 must be zero)
//!  4     1    byte_en   (bits 3:0 first-DW byte enables, bits 7:4 last-DW byte enables)
//!  5     n    data      (Write: exactly len bytes; Read: none; KeyRoll: 4-byte new epoch)
//! ```
//! # Encrypted response body (ReadResponse, WriteResponse)
//! ```text
//!  0     2    txn_tag   (echo of the request's tag)
//!  2     1    status    (0 = OK, 1 = access denied by the target's window table)
//!  3     n    data      (ReadResponse with status OK: exactly len bytes; otherwise none)
//! ```

use crate::error::SimError;
use crate::ids::AccelId;

/// Default largest data payload of one transaction (UPLI-style: 4 x 64-byte flits). The link's
/// configured maximum is enforced by the receiver, not by this codec.
pub const DEFAULT_MAX_TXN_DATA: u16 = 256;
/// Encoded size of [`TxnHeader`].
pub const HEADER_LEN: usize = 16;
/// Bits of the address that travel encrypted (17:2) or as byte enables (1:0).
pub const LOW_ADDR_BITS: u32 = 18;
/// Mask of the address bits carried in clear.
pub const ADDR_HI_MASK: u64 = !((1u64 << LOW_ADDR_BITS) - 1);
/// Size of the encrypted request prefix before the data.
pub const REQ_PREFIX_LEN: usize = 5;
/// Size of the encrypted response prefix before the data.
pub const RSP_PREFIX_LEN: usize = 3;

/// Transaction commands. The stream a command travels on is fixed by the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmd {
    /// Read request (requests stream).
    Read,
    /// Write request (requests stream).
    Write,
    /// In-band KeyRollMSG: the sender switches to its alternate key (requests stream).
    KeyRoll,
    /// Read response carrying data (read-responses stream).
    ReadResponse,
    /// Write completion (write-responses stream).
    WriteResponse,
}

impl Cmd {
    /// Wire code.
    pub fn code(self) -> u8 {
        match self {
            Cmd::Read => 0x01,
            Cmd::Write => 0x02,
            Cmd::KeyRoll => 0x0f,
            Cmd::ReadResponse => 0x81,
            Cmd::WriteResponse => 0x82,
        }
    }

    /// Parses a wire code; unknown codes are an error.
    pub fn from_code(c: u8) -> Result<Self, SimError> {
        Ok(match c {
            0x01 => Cmd::Read,
            0x02 => Cmd::Write,
            0x0f => Cmd::KeyRoll,
            0x81 => Cmd::ReadResponse,
            0x82 => Cmd::WriteResponse,
            _ => return Err(SimError::Malformed("header: unknown cmd")),
        })
    }

    /// The UALinkSec stream this command travels on.
    pub fn stream(self) -> super::StreamId {
        match self {
            Cmd::Read | Cmd::Write | Cmd::KeyRoll => super::StreamId::Requests,
            Cmd::ReadResponse => super::StreamId::ReadResponses,
            Cmd::WriteResponse => super::StreamId::WriteResponses,
        }
    }

    /// Whether the command is a request (address-carrying body).
    pub fn is_request(self) -> bool {
        matches!(self, Cmd::Read | Cmd::Write | Cmd::KeyRoll)
    }
}

/// The clear, authenticated transaction header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnHeader {
    /// Command.
    pub cmd: Cmd,
    /// Source accelerator.
    pub src: AccelId,
    /// Destination accelerator (switches route on this).
    pub dst: AccelId,
    /// Data length in bytes.
    pub len: u16,
    /// Address bits 63:18 (bits 17:0 are zero).
    pub addr_hi: u64,
}

impl TxnHeader {
    /// Encodes the 16-byte header (layout in the module doc).
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = self.cmd.code();
        b[2..4].copy_from_slice(&self.src.get().to_be_bytes());
        b[4..6].copy_from_slice(&self.dst.get().to_be_bytes());
        b[6..8].copy_from_slice(&self.len.to_be_bytes());
        b[8..16].copy_from_slice(&self.addr_hi.to_be_bytes());
        b
    }

    /// Decodes and validates a header; reserved bits, unknown commands, out-of-range IDs and
    /// lengths are errors.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Self, SimError> {
        let [cmd, rsvd, s0, s1, d0, d1, l0, l1, a0, a1, a2, a3, a4, a5, a6, a7] = *b;
        let cmd = Cmd::from_code(cmd)?;
        if rsvd != 0 {
            return Err(SimError::Malformed("header: reserved byte set"));
        }
        let src = AccelId::new(u16::from_be_bytes([s0, s1]))
            .map_err(|_| SimError::Malformed("header: src ID exceeds 10 bits"))?;
        let dst = AccelId::new(u16::from_be_bytes([d0, d1]))
            .map_err(|_| SimError::Malformed("header: dst ID exceeds 10 bits"))?;
        let len = u16::from_be_bytes([l0, l1]);
        if cmd.is_request() && len == 0 {
            return Err(SimError::Malformed("header: len out of range"));
        }
        let addr_hi = u64::from_be_bytes([a0, a1, a2, a3, a4, a5, a6, a7]);
        if addr_hi & !ADDR_HI_MASK != 0 {
            return Err(SimError::Malformed("header: addr_hi low bits set"));
        }
        if !cmd.is_request() && addr_hi != 0 {
            return Err(SimError::Malformed("header: response carries an address"));
        }
        Ok(Self {
            cmd,
            src,
            dst,
            len,
            addr_hi,
        })
    }
}

/// Byte enables for a `len`-byte access starting at byte offset `addr & 3`.
/// Bits 3:0 are the first DW's enables, bits 7:4 the last DW's (zero when the access fits in one
/// DW, as in PCIe).
pub fn byte_enables(addr: u64, len: u16) -> Result<u8, SimError> {
    if len == 0 {
        return Err(SimError::BadTransfer);
    }
    let off = (addr & 3) as u32;
    let end = off
        .checked_add(u32::from(len))
        .ok_or(SimError::BadTransfer)?; // exclusive, in bytes from DW start
    let first_mask: u8 = if end <= 4 {
        (((1u32 << end) - 1) & !((1u32 << off) - 1)) as u8
    } else {
        (0xfu32 & !((1u32 << off) - 1)) as u8
    };
    if end <= 4 {
        return Ok(first_mask);
    }
    let tail = end % 4;
    let last_mask: u8 = if tail == 0 {
        0xf
    } else {
        ((1u32 << tail) - 1) as u8
    };
    Ok(first_mask | (last_mask << 4))
}

/// Decoded encrypted request body (borrowing its data from the decrypted buffer).
#[derive(Debug, PartialEq, Eq)]
pub struct RequestBody<'a> {
    /// Full address reconstructed from the clear upper bits, the encrypted bits 17:2 and the
    /// byte enables.
    pub addr: u64,
    /// Transaction tag.
    pub txn_tag: u16,
    /// Data (Write / KeyRoll) or empty (Read).
    pub data: &'a [u8],
}

/// Encodes a request body prefix into `out` (which must then receive the data).
pub fn encode_request_prefix(
    addr: u64,
    len: u16,
    txn_tag: u16,
) -> Result<[u8; REQ_PREFIX_LEN], SimError> {
    if txn_tag > 0x0fff {
        return Err(SimError::Malformed("request: txn tag exceeds 12 bits"));
    }
    let lo = (((addr >> 2) & 0xffff) as u16).to_be_bytes();
    let t = txn_tag.to_be_bytes();
    Ok([lo[0], lo[1], t[0], t[1], byte_enables(addr, len)?])
}

/// Decodes a decrypted request body against its header. Checks the tag's reserved bits, that the
/// byte enables match the address offset and length, and that the data length fits the command.
pub fn decode_request<'a>(h: &TxnHeader, body: &'a [u8]) -> Result<RequestBody<'a>, SimError> {
    let (prefix, data) = body
        .split_first_chunk::<REQ_PREFIX_LEN>()
        .ok_or(SimError::Malformed("request: body shorter than prefix"))?;
    let [l0, l1, t0, t1, be] = *prefix;
    let txn_tag = u16::from_be_bytes([t0, t1]);
    if txn_tag > 0x0fff {
        return Err(SimError::Malformed("request: txn tag reserved bits set"));
    }
    let first = be & 0xf;
    if first == 0 {
        return Err(SimError::Malformed("request: no first-DW byte enable"));
    }
    let off = u64::from(first.trailing_zeros());
    let addr = h.addr_hi | (u64::from(u16::from_be_bytes([l0, l1])) << 2) | off;
    if byte_enables(addr, h.len)? != be {
        return Err(SimError::Malformed(
            "request: byte enables disagree with len",
        ));
    }
    let want = match h.cmd {
        Cmd::Write => usize::from(h.len),
        Cmd::Read => 0,
        Cmd::KeyRoll => 4,
        Cmd::ReadResponse | Cmd::WriteResponse => {
            return Err(SimError::Malformed("request: response command"))
        }
    };
    if data.len() != want {
        return Err(SimError::Malformed(
            "request: data length disagrees with header",
        ));
    }
    Ok(RequestBody {
        addr,
        txn_tag,
        data,
    })
}

/// Response status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RspStatus {
    /// Completed.
    Ok,
    /// The target's window table refused the access.
    Denied,
}

impl RspStatus {
    fn code(self) -> u8 {
        match self {
            RspStatus::Ok => 0,
            RspStatus::Denied => 1,
        }
    }
}

/// Decoded encrypted response body.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseBody<'a> {
    /// Echoed transaction tag.
    pub txn_tag: u16,
    /// Completion status.
    pub status: RspStatus,
    /// Read data (ReadResponse with status OK).
    pub data: &'a [u8],
}

/// Encodes a response prefix.
pub fn encode_response_prefix(txn_tag: u16, status: RspStatus) -> [u8; RSP_PREFIX_LEN] {
    let t = txn_tag.to_be_bytes();
    [t[0], t[1], status.code()]
}

/// Decodes a decrypted response body against its header.
pub fn decode_response<'a>(h: &TxnHeader, body: &'a [u8]) -> Result<ResponseBody<'a>, SimError> {
    let (prefix, data) = body
        .split_first_chunk::<RSP_PREFIX_LEN>()
        .ok_or(SimError::Malformed("response: body shorter than prefix"))?;
    let [t0, t1, st] = *prefix;
    let txn_tag = u16::from_be_bytes([t0, t1]);
    if txn_tag > 0x0fff {
        return Err(SimError::Malformed("response: txn tag reserved bits set"));
    }
    let status = match st {
        0 => RspStatus::Ok,
        1 => RspStatus::Denied,
        _ => return Err(SimError::Malformed("response: unknown status")),
    };
    let want = match (h.cmd, status) {
        (Cmd::ReadResponse, RspStatus::Ok) => usize::from(h.len),
        (Cmd::ReadResponse, RspStatus::Denied) | (Cmd::WriteResponse, _) => 0,
        _ => return Err(SimError::Malformed("response: request command")),
    };
    if data.len() != want {
        return Err(SimError::Malformed(
            "response: data length disagrees with header",
        ));
    }
    Ok(ResponseBody {
        txn_tag,
        status,
        data,
    })
}

/// One transaction as it crosses the wire: clear header bytes, ciphertext, 8-byte tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireTxn {
    /// The 16 header bytes as transmitted (also the AAD).
    pub header: [u8; HEADER_LEN],
    /// Encrypted body.
    pub ciphertext: Vec<u8>,
    /// Truncated GCM tag.
    pub tag: [u8; super::gcm::TAG_LEN],
}

impl WireTxn {
    /// Serializes as `header || ciphertext || tag`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER_LEN + self.ciphertext.len() + self.tag.len());
        v.extend_from_slice(&self.header);
        v.extend_from_slice(&self.ciphertext);
        v.extend_from_slice(&self.tag);
        v
    }

    /// Parses `header || ciphertext || tag` (the header is validated by [`TxnHeader::decode`]
    /// separately, at the receiver).
    pub fn from_bytes(b: &[u8]) -> Result<Self, SimError> {
        let (header, rest) = b
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(SimError::Malformed("wire: shorter than header"))?;
        let (ciphertext, tag) = rest
            .split_last_chunk::<{ super::gcm::TAG_LEN }>()
            .ok_or(SimError::Malformed("wire: shorter than tag"))?;
        Ok(Self {
            header: *header,
            ciphertext: ciphertext.to_vec(),
            tag: *tag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(v: u16) -> AccelId {
        AccelId::new(v).unwrap()
    }

    #[test]
    fn header_known_answer_and_round_trip() {
        let h = TxnHeader {
            cmd: Cmd::Write,
            src: id(0x3ff),
            dst: id(2),
            len: 256,
            addr_hi: 0x0000_0012_3404_0000,
        };
        let b = h.encode();
        assert_eq!(
            b,
            [
                0x02, 0x00, 0x03, 0xff, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x04,
                0x00, 0x00
            ]
        );
        assert_eq!(TxnHeader::decode(&b).unwrap(), h);
    }

    #[test]
    fn header_rejects_reserved_and_ranges() {
        let good = TxnHeader {
            cmd: Cmd::Read,
            src: id(1),
            dst: id(2),
            len: 4,
            addr_hi: 1 << 18,
        }
        .encode();
        let mut b = good;
        b[0] = 0x55;
        assert_eq!(
            TxnHeader::decode(&b),
            Err(SimError::Malformed("header: unknown cmd"))
        );
        let mut b = good;
        b[1] = 1;
        assert!(TxnHeader::decode(&b).is_err());
        let mut b = good;
        b[2] = 0x04; // src = 0x401
        assert!(TxnHeader::decode(&b).is_err());
        let mut b = good;
        b[4] = 0x80;
        assert!(TxnHeader::decode(&b).is_err());
        let mut b = good;
        b[6..8].copy_from_slice(&0u16.to_be_bytes());
        assert!(TxnHeader::decode(&b).is_err());
        let mut b = good;
        b[15] = 1;
        assert!(TxnHeader::decode(&b).is_err());
    }

    #[test]
    fn byte_enable_patterns() {
        assert_eq!(byte_enables(0, 4).unwrap(), 0x0f);
        assert_eq!(byte_enables(1, 1).unwrap(), 0x02);
        assert_eq!(byte_enables(1, 2).unwrap(), 0x06);
        assert_eq!(byte_enables(3, 2).unwrap(), 0x18);
        assert_eq!(byte_enables(0, 8).unwrap(), 0xff);
        assert_eq!(byte_enables(2, 7).unwrap(), 0x1c);
        assert_eq!(byte_enables(2, 9).unwrap(), 0x7c);
    }

    #[test]
    fn request_body_round_trip_all_offsets() {
        for addr in [0x4_0000u64, 0x4_0001, 0x4_0002, 0x4_0003, 0x7_fffc] {
            for len in [1u16, 2, 3, 4, 5, 9] {
                let h = TxnHeader {
                    cmd: Cmd::Write,
                    src: id(1),
                    dst: id(2),
                    len,
                    addr_hi: addr & ADDR_HI_MASK,
                };
                let mut body = encode_request_prefix(addr, len, 0xabc).unwrap().to_vec();
                body.extend(std::iter::repeat_n(7u8, usize::from(len)));
                let r = decode_request(&h, &body).unwrap();
                assert_eq!(r.addr, addr);
                assert_eq!(r.txn_tag, 0xabc);
                assert_eq!(r.data.len(), usize::from(len));
                // A header claiming another length is rejected.
                let h2 = TxnHeader { len: len + 1, ..h };
                assert!(decode_request(&h2, &body).is_err());
            }
        }
    }

    #[test]
    fn response_body_round_trip() {
        let h = TxnHeader {
            cmd: Cmd::ReadResponse,
            src: id(2),
            dst: id(1),
            len: 3,
            addr_hi: 0,
        };
        let mut body = encode_response_prefix(5, RspStatus::Ok).to_vec();
        body.extend_from_slice(&[1, 2, 3]);
        let r = decode_response(&h, &body).unwrap();
        assert_eq!(
            (r.txn_tag, r.status, r.data),
            (5, RspStatus::Ok, &[1u8, 2, 3][..])
        );
        body[2] = 9;
        assert!(decode_response(&h, &body).is_err());
    }

    #[test]
    fn wire_round_trip() {
        let w = WireTxn {
            header: [1; HEADER_LEN],
            ciphertext: vec![2, 3],
            tag: [4; 8],
        };
        assert_eq!(WireTxn::from_bytes(&w.to_bytes()).unwrap(), w);
        assert!(WireTxn::from_bytes(&[0u8; 20]).is_err());
    }
}
