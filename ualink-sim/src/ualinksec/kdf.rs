//! Per-stream key derivation: KMAC256 as the auxiliary function of the SP 800-56C r2 one-step KDF.
//!
//! UALink_200 §9.5.9.4 derives each stream key from the port's master key with KMAC256 "per
//! SP 800-56C r2" over the context {epoch, StreamID}; the public text does not fix the byte
//! encoding, so this module fixes it as follows (one call of SP 800-56C r2 §4.1, Option 3):
//!
//! ```text
//! StreamKey = KMAC256(K = salt, X = counter || Z || FixedInfo, L = 256, S = "KDF")
//!   salt      = 132 zero bytes        (SP 800-56C r2 §4.1 default salt for KMAC256)
//!   counter   = 00 00 00 01           (32-bit big-endian; L = H_outputBits so reps = 1)
//!   Z         = the 32-byte master key (the slot's active key)
//!   FixedInfo = epoch (u32 big-endian, 4 bytes) || StreamID (1 byte: 0 requests,
//!               1 read responses, 2 write responses)
//!   S         = the ASCII customization string "KDF" (4B 44 46)
//!   L         = 256 bits; KMAC encodes L with right_encode, so the output is bound to its length
//! ```
//!
//! tiny-keccak's `Kmac::v256(key, custom)` takes K and S, `update` absorbs X and `finalize` writes
//! L/8 bytes after absorbing right_encode(L). The output is held in `Zeroizing` and only used to
//! build a ring AES-256-GCM key.

use tiny_keccak::{Hasher, Kmac};
use zeroize::Zeroizing;

use super::StreamId;

/// The KMAC customization string S (SP 800-56C r2 §4.1: "KDF").
pub const KDF_CUSTOMIZATION: &[u8] = b"KDF";
/// Length of the SP 800-56C r2 default salt for KMAC256.
pub const DEFAULT_SALT_LEN: usize = 132;
/// The one-step KDF counter for the single repetition, big-endian.
pub const COUNTER_ONE: [u8; 4] = [0, 0, 0, 1];

/// Encodes FixedInfo = epoch (u32 BE) || StreamID (u8).
pub fn fixed_info(epoch: u32, stream: StreamId) -> [u8; 5] {
    let e = epoch.to_be_bytes();
    [e[0], e[1], e[2], e[3], stream.code()]
}

/// Derives the 256-bit stream key for `stream` under `master` at `epoch` (see the module doc for
/// the exact KMAC inputs).
pub fn derive_stream_key(master: &[u8; 32], epoch: u32, stream: StreamId) -> Zeroizing<[u8; 32]> {
    // KMAC256 keyed with the (public, fixed) default salt and S = "KDF": the state after
    // absorbing them is the same for every derivation, so it is built once and cloned
    // (three of the four Keccak permutations of a derivation).
    static KEYED: std::sync::OnceLock<Kmac> = std::sync::OnceLock::new();
    let mut kmac = KEYED
        .get_or_init(|| Kmac::v256(&[0u8; DEFAULT_SALT_LEN], KDF_CUSTOMIZATION))
        .clone();
    kmac.update(&COUNTER_ONE);
    kmac.update(master);
    kmac.update(&fixed_info(epoch, stream));
    let mut out = Zeroizing::new([0u8; 32]);
    kmac.finalize(out.as_mut());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// NIST SP 800-185 KMAC sample #4 (KMAC256, key 40..5F, data 00..03, S = "My Tagged
    /// Application", L = 512): pins tiny-keccak's KMAC256 to the published example.
    #[test]
    fn kmac256_nist_sample_4() {
        let key = hex("404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F");
        let mut k = Kmac::v256(&key, b"My Tagged Application");
        k.update(&[0, 1, 2, 3]);
        let mut out = [0u8; 64];
        k.finalize(&mut out);
        assert_eq!(
            out.to_vec(),
            hex(concat!(
                "20C570C31346F703C9AC36C61C03CB64C3970D0CFC787E9B79599D273A68D2F7",
                "F69D4CC3DE9D104A351689F27CF6F5951F0103F33F4F24871024D9C27773A8DD"
            ))
        );
    }

    /// The derivation equals a hand-assembled KMAC256 call with the documented inputs.
    #[test]
    fn derivation_matches_documented_inputs() {
        let master = [0x11u8; 32];
        let mut k = Kmac::v256(&[0u8; 132], b"KDF");
        let mut x = vec![0, 0, 0, 1];
        x.extend_from_slice(&master);
        x.extend_from_slice(&[0, 0, 0, 7, 2]);
        k.update(&x);
        let mut want = [0u8; 32];
        k.finalize(&mut want);
        assert_eq!(
            *derive_stream_key(&master, 7, StreamId::WriteResponses),
            want
        );
    }

    #[test]
    fn keys_differ_per_stream_epoch_and_master() {
        let m = [3u8; 32];
        let a = derive_stream_key(&m, 1, StreamId::Requests);
        assert_ne!(*a, *derive_stream_key(&m, 1, StreamId::ReadResponses));
        assert_ne!(*a, *derive_stream_key(&m, 2, StreamId::Requests));
        assert_ne!(*a, *derive_stream_key(&[4u8; 32], 1, StreamId::Requests));
        assert_eq!(*a, *derive_stream_key(&m, 1, StreamId::Requests));
    }
}
