//! SPDM VCA codecs: GET_VERSION/VERSION, GET_CAPABILITIES/CAPABILITIES,
//! NEGOTIATE_ALGORITHMS/ALGORITHMS, plus the dispatchers and `MsgContext::from_negotiation`.
//!
//! Input: 3 context bytes (see `ualink_fuzz::ctx`), then one message. Every accepted message
//! must re-encode to the same bytes and re-parse to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{ctx, roundtrip};
use ualink_spdm::msg::*;

fuzz_target!(|data: &[u8]| {
    let Some((c, m)) = ctx(data) else { return };
    roundtrip("GET_VERSION", m, GetVersion::parse, GetVersion::encode);
    roundtrip("VERSION", m, Version::parse, Version::encode);
    roundtrip(
        "GET_CAPABILITIES",
        m,
        GetCapabilities::parse,
        GetCapabilities::encode,
    );
    roundtrip("CAPABILITIES", m, Capabilities::parse, Capabilities::encode);
    roundtrip(
        "NEGOTIATE_ALGORITHMS",
        m,
        NegotiateAlgorithms::parse,
        NegotiateAlgorithms::encode,
    );
    if let Some(a) = roundtrip("ALGORITHMS", m, Algorithms::parse, Algorithms::encode) {
        // Sizing from arbitrary selections: an error or a context, never a panic.
        let flags = CapabilityFlags;
        let _ = MsgContext::from_negotiation(&a, flags(0), flags(0));
        let _ = MsgContext::from_negotiation(&a, flags(u32::MAX), flags(u32::MAX));
    }
    ualink_fuzz::dispatch(m, &c);
});
