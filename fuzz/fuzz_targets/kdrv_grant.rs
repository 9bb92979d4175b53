//! The ualink-kdrv grant parser: `grant::verify_grant_with_key` under a fixed TSM key (the
//! P-384 base point) with the ring backend.
//!
//! Input: the grant bytes.
//!
//! Oracle beyond "no panic": nothing the fuzzer builds verifies (it cannot sign for the key).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::P384_BASE_POINT;
use ualink_kdrv::crypto::{RingCrypto, TsmPublicKey};
use ualink_kdrv::grant::verify_grant_with_key;

fn key() -> &'static TsmPublicKey {
    static K: OnceLock<TsmPublicKey> = OnceLock::new();
    K.get_or_init(|| TsmPublicKey::from_sec1(&P384_BASE_POINT).expect("SEC1 point"))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(g) = verify_grant_with_key(data, key(), &RingCrypto) {
        panic!("a grant verified under a key nobody signed with: {g:?}");
    }
});
