//! The audit log: `AuditRecord::from_cbor` (decode → encode → decode gives the same record;
//! encoding is deterministic) and `audit::verify_log` with a fixed checkpoint key.
//!
//! Input: one selector byte (bit0: also hand `verify_log` the bytes after a `u16 LE length`
//! chunk as one trusted checkpoint), then the bytes to decode as a record and as a whole log.
//!
//! Oracle beyond "no panic": a record re-encodes to bytes that decode to the same record and
//! re-encode identically; a log that verifies answers record / proof queries without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_attest::audit::{verify_log, AuditRecord, CheckpointVerifier};
use ualink_fuzz::{Cursor, P384_BASE_POINT as KEY};

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let Some(sel) = c.u8() else { return };
    let trusted: Vec<Vec<u8>> = if sel & 1 != 0 {
        let Some(t) = c.chunk() else { return };
        vec![t.to_vec()]
    } else {
        Vec::new()
    };
    let bytes = c.rest();

    if let Ok(r) = AuditRecord::from_cbor(bytes) {
        let enc = r.to_cbor().expect("encoding a decoded record");
        let r2 = AuditRecord::from_cbor(&enc).expect("decoding our own encoding");
        assert_eq!(r, r2, "from_cbor(to_cbor(r)) != r");
        let enc2 = r2.to_cbor().expect("encoding a decoded record");
        assert_eq!(enc, enc2, "to_cbor is not deterministic");
    }

    let key = CheckpointVerifier::new(&KEY);
    if let Ok(log) = verify_log(bytes, &key, &trusted) {
        let size = log.size();
        let _ = log.unsealed_from();
        let _ = log.root();
        for seq in 0..size.min(8) {
            let _ = log.record(bytes, seq);
            let _ = log.inclusion_proof(seq, size);
            let _ = log.consistency_proof(seq, size);
        }
        let _ = log.record(bytes, size);
        let _ = log.inclusion_proof(size, size);
        let _ = log.consistency_proof(size, size.saturating_add(1));
    }
});
