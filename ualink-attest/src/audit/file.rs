//! The on-disk format of `STATE/audit.log`: one file, records and checkpoints interleaved.
//!
//! ```text
//! file       = header frame*
//! header     = "UALINKAL" (8 bytes) || u16 BE format version (1) || u16 BE reserved (0)
//! frame      = u8 type || u32 BE len || payload[len] || u32 BE crc
//!              crc = CRC-32 (IEEE) over type || len || payload; len <= 1 MiB
//! type 0x01  entry:      payload = u64 BE seq || prev[48] || record (CBOR, see record.rs)
//!                        prev = the Merkle leaf hash of entry seq-1 (48 zero bytes for seq 0)
//!                        leaf hash of the entry = SHA-384(0x00 || payload)
//! type 0x02  checkpoint: payload = COSE_Sign1 over [tree_size, root, time] (checkpoint.rs)
//!                        covering exactly the entries before it
//! ```
//! The CRC only detects torn or corrupted writes; integrity against an attacker comes from the
//! Merkle tree and the signed checkpoints. The `prev` chain lets a verifier name the exact
//! record where an in-place edit happened.
//!
//! Torn tail: a crash can leave the last frame incomplete. A frame is a *torn tail* when it
//! is the last bytes of the file and is incomplete, fails its CRC while ending exactly at the
//! end of the file, or has an unknown type with only zero bytes after it. The writer
//! truncates a torn tail on open; a verifier reports its length. Any other bad frame is
//! corruption and is reported as tampering.

use crate::error::{Error, Result};
use core::ops::Range;

/// File magic.
pub const MAGIC: &[u8; 8] = b"UALINKAL";
/// Format version written and accepted.
pub const FORMAT_VERSION: u16 = 1;
/// Header length.
pub const HEADER_LEN: usize = 12;
/// Frame type of an entry.
pub const FRAME_ENTRY: u8 = 0x01;
/// Frame type of a checkpoint.
pub const FRAME_CHECKPOINT: u8 = 0x02;
/// Largest accepted payload.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Bytes of framing around a payload.
pub const FRAME_OVERHEAD: usize = 1 + 4 + 4;
/// Bytes before the record in an entry payload.
pub const ENTRY_PREFIX: usize = 8 + 48;

const WHAT: &str = "audit log";

/// The file header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    h
}

/// Checks the file header.
pub fn check_header(bytes: &[u8]) -> Result<()> {
    let h = bytes
        .get(..HEADER_LEN)
        .ok_or_else(|| Error::malformed(WHAT, "shorter than its header"))?;
    if &h[..8] != MAGIC {
        return Err(Error::malformed(WHAT, "bad magic"));
    }
    let version = u16::from_be_bytes([h[8], h[9]]);
    if version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: WHAT,
            version: u32::from(version),
        });
    }
    if h[10..12] != [0, 0] {
        return Err(Error::malformed(WHAT, "reserved header bytes are not zero"));
    }
    Ok(())
}

/// Appends one frame to `out`.
pub fn encode_frame(out: &mut Vec<u8>, frame_type: u8, payload_parts: &[&[u8]]) -> Result<()> {
    let len: usize = payload_parts.iter().map(|p| p.len()).sum();
    if len > MAX_PAYLOAD {
        return Err(Error::ApiMisuse {
            reason: "audit frame larger than 1 MiB",
        });
    }
    let len32 = u32::try_from(len).map_err(|_| Error::ApiMisuse {
        reason: "audit frame larger than 1 MiB",
    })?;
    let start = out.len();
    out.push(frame_type);
    out.extend_from_slice(&len32.to_be_bytes());
    for p in payload_parts {
        out.extend_from_slice(p);
    }
    let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// One frame found in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub frame_type: u8,
    /// Byte range of the payload in the file.
    pub payload: Range<usize>,
    /// Byte range of the whole frame.
    pub frame: Range<usize>,
}

/// What follows the last good frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the file ends after a complete frame.
    Clean,
    /// A torn last frame starting at `offset` (the file should be truncated there).
    Torn {
        /// Where the torn frame starts.
        offset: usize,
    },
}

/// The result of reading the next frame at `offset`.
pub enum Next {
    /// A good frame.
    Frame(Frame),
    /// End of file.
    End(Tail),
}

/// Reads the frame at `offset` (after the header). A bad frame that is not a torn tail is
/// an error naming its offset.
pub fn next_frame(bytes: &[u8], offset: usize) -> Result<Next> {
    let rest = bytes.get(offset..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(Next::End(Tail::Clean));
    }
    let torn = Ok(Next::End(Tail::Torn { offset }));
    let Some(head) = rest.get(..5) else {
        return torn;
    };
    let frame_type = head[0];
    if frame_type != FRAME_ENTRY && frame_type != FRAME_CHECKPOINT {
        if rest.iter().skip(1).all(|&b| b == 0) {
            return torn;
        }
        return Err(Error::malformed(
            WHAT,
            format!("unknown frame type {frame_type:#x} at offset {offset}"),
        ));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_PAYLOAD {
        return Err(Error::malformed(
            WHAT,
            format!("frame at offset {offset} longer than 1 MiB"),
        ));
    }
    let total = len + FRAME_OVERHEAD;
    let Some(frame) = rest.get(..total) else {
        return torn;
    };
    let (body, crc) = frame.split_at(total - 4);
    let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32fast::hash(body) != crc {
        if rest.len() == total {
            return torn;
        }
        return Err(Error::malformed(
            WHAT,
            format!("frame at offset {offset} fails its CRC"),
        ));
    }
    Ok(Next::Frame(Frame {
        frame_type,
        payload: offset + 5..offset + 5 + len,
        frame: offset..offset + total,
    }))
}
