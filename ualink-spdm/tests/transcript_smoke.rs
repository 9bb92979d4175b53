//! The captured vectors load (guards the shared test helper).
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

#[test]
fn every_capture_has_records_with_bytes() {
    for name in common::SESSIONS {
        let recs = common::transcript(name);
        assert!(recs.len() > 10, "{name}");
        assert!(recs.iter().all(|r| !r.bytes.is_empty()), "{name}");
    }
    let th1 = common::log_values("v13_p384_session.req.log", "th1 hash");
    assert_eq!(th1[0].len(), 48);
}
