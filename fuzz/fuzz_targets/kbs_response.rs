//! The guest agent's handling of KBS responses that is reachable without a network: the
//! resource JWE (`kbs::jwe::EphemeralKey::decrypt` with a fixed ephemeral key), RFC 8785
//! canonicalization of the JSON it signs over (`kbs::jcs::canonicalize`) and resource paths
//! (`kbs::ResourcePath::parse`). The auth challenge and attest responses are parsed inside
//! `KbsClient` (private), so they are not reached here.
//!
//! Input: one selector byte (bit0: JWE, bit1: JCS, bit2: resource path; 0 means all), then the
//! response body.
//!
//! Oracle beyond "no panic": canonicalization is idempotent (canonicalizing the parsed
//! canonical form gives the same string). Decrypt has none: the fixed key is public, so a
//! well-formed JWE to it may legitimately decrypt.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ualink_guest_agent::kbs::jcs::canonicalize;
use ualink_guest_agent::kbs::jwe::EphemeralKey;
use ualink_guest_agent::kbs::ResourcePath;

fn key() -> &'static EphemeralKey {
    static K: OnceLock<EphemeralKey> = OnceLock::new();
    K.get_or_init(|| {
        let mut scalar = [0u8; 32];
        scalar[31] = 0x2a;
        EphemeralKey::from_scalar(&scalar).expect("fixed P-256 scalar")
    })
}

fuzz_target!(|data: &[u8]| {
    let [sel, body @ ..] = data else { return };
    let sel = if sel & 7 == 0 { 7 } else { *sel };
    if sel & 1 != 0 {
        let _ = key().decrypt(body);
    }
    if sel & 2 != 0 {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Ok(c) = canonicalize(&v) {
                let v2: serde_json::Value =
                    serde_json::from_str(&c).expect("canonical JSON parses");
                let c2 = canonicalize(&v2).expect("canonical JSON canonicalizes");
                assert_eq!(c, c2, "canonicalization is not idempotent");
            }
        }
    }
    if sel & 4 != 0 {
        if let Ok(s) = std::str::from_utf8(body) {
            if let Ok(p) = ResourcePath::parse(s) {
                let _ = p.request_path();
                let _ = p.to_string();
            }
        }
    }
});
