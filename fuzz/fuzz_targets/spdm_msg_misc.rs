//! SPDM codecs outside the other families: ERROR (with its extended data), VENDOR_DEFINED
//! request/response, the encapsulated flow (GET_ENCAPSULATED_REQUEST, ENCAPSULATED_REQUEST,
//! DELIVER_ENCAPSULATED_RESPONSE, ENCAPSULATED_RESPONSE_ACK and their inner messages) and
//! RESPOND_IF_READY, plus the dispatchers. (CHUNK_SEND/CHUNK_GET are not implemented by
//! ualink-spdm: the dispatchers must reject them as unknown codes.)
//!
//! Input: 3 context bytes (see `ualink_fuzz::ctx`), then one message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{ctx, roundtrip};
use ualink_spdm::msg::*;

fuzz_target!(|data: &[u8]| {
    let Some((c, m)) = ctx(data) else { return };
    roundtrip("ERROR", m, ErrorResponse::parse, ErrorResponse::encode);
    roundtrip(
        "VENDOR_DEFINED_REQUEST",
        m,
        VendorDefinedRequest::parse,
        VendorDefinedRequest::encode,
    );
    roundtrip(
        "VENDOR_DEFINED_RESPONSE",
        m,
        VendorDefinedResponse::parse,
        VendorDefinedResponse::encode,
    );
    roundtrip(
        "GET_ENCAPSULATED_REQUEST",
        m,
        GetEncapsulatedRequest::parse,
        GetEncapsulatedRequest::encode,
    );
    if let Some(e) = roundtrip(
        "ENCAPSULATED_REQUEST",
        m,
        EncapsulatedRequest::parse,
        EncapsulatedRequest::encode,
    ) {
        let _ = e.inner(&c.reversed());
    }
    if let Some(d) = roundtrip(
        "DELIVER_ENCAPSULATED_RESPONSE",
        m,
        DeliverEncapsulatedResponse::parse,
        DeliverEncapsulatedResponse::encode,
    ) {
        let _ = d.inner(&c.reversed());
    }
    if let Some(a) = roundtrip(
        "ENCAPSULATED_RESPONSE_ACK",
        m,
        EncapsulatedResponseAck::parse,
        EncapsulatedResponseAck::encode,
    ) {
        let _ = a.inner(&c.reversed());
    }
    roundtrip(
        "RESPOND_IF_READY",
        m,
        RespondIfReady::parse,
        RespondIfReady::encode,
    );
    // CHUNK_SEND (0x85) / CHUNK_GET (0x86) and their ACK/RESPONSE (0x05/0x06): not implemented.
    if let [_, code, ..] = m {
        if matches!(code, 0x85 | 0x86) {
            assert!(
                SpdmRequest::parse(m, Some(&c)).is_err(),
                "CHUNK request accepted"
            );
        }
        if matches!(code, 0x05 | 0x06) {
            assert!(
                SpdmResponse::parse(m, Some(&c)).is_err(),
                "CHUNK response accepted"
            );
        }
    }
    ualink_fuzz::dispatch(m, &c);
});
