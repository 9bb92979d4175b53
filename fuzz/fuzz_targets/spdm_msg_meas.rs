//! SPDM GET_MEASUREMENTS/MEASUREMENTS codecs (with `signed_portion`), plus the dispatchers.
//!
//! Input: 3 context bytes (see `ualink_fuzz::ctx`), then one message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{ctx, roundtrip};
use ualink_spdm::msg::*;

fuzz_target!(|data: &[u8]| {
    let Some((c, m)) = ctx(data) else { return };
    roundtrip(
        "GET_MEASUREMENTS",
        m,
        GetMeasurements::parse,
        GetMeasurements::encode,
    );
    if let Some(r) = roundtrip(
        "MEASUREMENTS",
        m,
        |b| Measurements::parse(b, &c),
        Measurements::encode,
    ) {
        assert!(
            r.signature.is_some() == c.measurement_signature_requested,
            "MEASUREMENTS: signature presence"
        );
        let sig = r.signature.as_ref().map_or(0, Vec::len);
        let p = r
            .signed_portion(m)
            .unwrap_or_else(|e| panic!("MEASUREMENTS signed_portion: {e:?}"));
        assert!(
            m.starts_with(p) && p.len() + sig == m.len(),
            "MEASUREMENTS signed_portion"
        );
    }
    ualink_fuzz::dispatch(m, &c);
});
