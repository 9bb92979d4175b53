//! Shared test helpers: reading the captured spdm-emu vectors in tests/data/.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

/// One record of a `*.transcript.full.txt` file: `#NNNN <decode line>` followed by the message hex.
#[derive(Debug, Clone)]
pub struct TranscriptRecord {
    /// The `NNNN` index.
    pub index: usize,
    /// The decode line after the index (e.g. `SPDM v1.3 GET_VERSION(0x84) p1=0x00 ...` or `SECURED sid=...`).
    pub decode: String,
    /// The message bytes (for SECURED records: the whole secured message, ciphertext and MAC).
    pub bytes: Vec<u8>,
}

impl TranscriptRecord {
    /// True for plaintext SPDM messages.
    pub fn is_spdm(&self) -> bool {
        self.decode.starts_with("SPDM ")
    }
    /// True for DSP0277 secured messages.
    pub fn is_secured(&self) -> bool {
        self.decode.starts_with("SECURED ")
    }
}

/// Path of a file in tests/data/.
pub fn data_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Reads a file in tests/data/.
pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(data_path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
}

/// Parses a `*.transcript.full.txt` (or `*.vdm_plaintext.txt`) file into records.
pub fn transcript(name: &str) -> Vec<TranscriptRecord> {
    let text = String::from_utf8(data(name)).unwrap();
    let mut out: Vec<TranscriptRecord> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            let (idx, decode) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push(TranscriptRecord {
                index: idx.parse().unwrap(),
                decode: decode.trim().to_string(),
                bytes: Vec::new(),
            });
        } else if !line.trim().is_empty() {
            let rec = out.last_mut().expect("hex line before any record header");
            rec.bytes.extend(hex::decode(line.trim()).expect("hex"));
        }
    }
    out
}

/// The transcript names of the captured sessions.
pub const SESSIONS: [&str; 3] = [
    "v13_p384_session.transcript.full.txt",
    "tsm_like_v12_p256_pcidoe.transcript.full.txt",
    "v12_p256_nosession.transcript.full.txt",
];

/// Reads a hex value printed in a `*.req.log` line such as `th1 hash - 1a 17 ...` or `[DHE Secret]: e566...`.
/// Returns every match of `prefix` in file order.
pub fn log_values(log: &str, prefix: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8(data(log)).unwrap();
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix(prefix))
        .map(|rest| {
            let hexstr: String = rest
                .trim_start_matches([':', '-', ' '])
                .chars()
                .filter(|c| c.is_ascii_hexdigit())
                .collect();
            hex::decode(hexstr).unwrap()
        })
        .collect()
}
