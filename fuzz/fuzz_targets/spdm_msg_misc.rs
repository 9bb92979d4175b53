//! SPDM codecs outside the other families: ERROR (with its extended data), VENDOR_DEFINED
//! request/response, the encapsulated flow (GET_ENCAPSULATED_REQUEST, ENCAPSULATED_REQUEST,
//! DELIVER_ENCAPSULATED_RESPONSE, ENCAPSULATED_RESPONSE_ACK and their inner messages) and
//! RESPOND_IF_READY, CHUNK_SEND/CHUNK_SEND_ACK/CHUNK_GET/CHUNK_RESPONSE, plus the dispatchers.
//! The encapsulated wrappers' `inner_padded` must agree with `inner` on the wrapped message.
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
        let r = c.reversed();
        if let (Ok(a), Ok((b, _))) = (e.inner(&r), e.inner_padded(&r)) {
            assert!(a == b, "ENCAPSULATED_REQUEST inner vs inner_padded");
        }
    }
    if let Some(d) = roundtrip(
        "DELIVER_ENCAPSULATED_RESPONSE",
        m,
        DeliverEncapsulatedResponse::parse,
        DeliverEncapsulatedResponse::encode,
    ) {
        let r = c.reversed();
        if let (Ok(a), Ok((b, _))) = (d.inner(&r), d.inner_padded(&r)) {
            assert!(
                a == b,
                "DELIVER_ENCAPSULATED_RESPONSE inner vs inner_padded"
            );
        }
    }
    if let Some(a) = roundtrip(
        "ENCAPSULATED_RESPONSE_ACK",
        m,
        EncapsulatedResponseAck::parse,
        EncapsulatedResponseAck::encode,
    ) {
        let r = c.reversed();
        if let (Ok(Some(x)), Ok(Some((y, _)))) = (a.inner(&r), a.inner_padded(&r)) {
            assert!(x == y, "ENCAPSULATED_RESPONSE_ACK inner vs inner_padded");
        }
    }
    roundtrip(
        "RESPOND_IF_READY",
        m,
        RespondIfReady::parse,
        RespondIfReady::encode,
    );
    roundtrip("CHUNK_SEND", m, ChunkSend::parse, ChunkSend::encode);
    roundtrip(
        "CHUNK_SEND_ACK",
        m,
        ChunkSendAck::parse,
        ChunkSendAck::encode,
    );
    roundtrip("CHUNK_GET", m, ChunkGet::parse, ChunkGet::encode);
    roundtrip(
        "CHUNK_RESPONSE",
        m,
        ChunkResponse::parse,
        ChunkResponse::encode,
    );
    ualink_fuzz::dispatch(m, &c);
});
