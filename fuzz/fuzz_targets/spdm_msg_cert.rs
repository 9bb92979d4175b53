//! SPDM certificate-family codecs: GET_DIGESTS/DIGESTS, GET_CERTIFICATE/CERTIFICATE,
//! CHALLENGE/CHALLENGE_AUTH (with `signed_portion`), plus the dispatchers.
//!
//! Input: 3 context bytes (see `ualink_fuzz::ctx`), then one message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{ctx, roundtrip};
use ualink_spdm::msg::*;

fuzz_target!(|data: &[u8]| {
    let Some((c, m)) = ctx(data) else { return };
    roundtrip("GET_DIGESTS", m, GetDigests::parse, GetDigests::encode);
    roundtrip("DIGESTS", m, |b| Digests::parse(b, &c), Digests::encode);
    roundtrip(
        "DIGESTS (reversed)",
        m,
        |b| Digests::parse(b, &c.reversed()),
        Digests::encode,
    );
    roundtrip(
        "GET_CERTIFICATE",
        m,
        GetCertificate::parse,
        GetCertificate::encode,
    );
    roundtrip("CERTIFICATE", m, Certificate::parse, Certificate::encode);
    roundtrip("CHALLENGE", m, Challenge::parse, Challenge::encode);
    if let Some(a) = roundtrip(
        "CHALLENGE_AUTH",
        m,
        |b| ChallengeAuth::parse(b, &c),
        ChallengeAuth::encode,
    ) {
        // The signed portion of an accepted message is a strict prefix (the signature follows).
        let p = a
            .signed_portion(m)
            .unwrap_or_else(|e| panic!("CHALLENGE_AUTH signed_portion: {e:?}"));
        assert!(
            m.starts_with(p) && p.len() + c.sig_len == m.len(),
            "CHALLENGE_AUTH signed_portion"
        );
    }
    ualink_fuzz::dispatch(m, &c);
});
