//! SPDM session codecs: KEY_EXCHANGE(_RSP), FINISH(_RSP), PSK_EXCHANGE(_RSP), PSK_FINISH(_RSP),
//! HEARTBEAT(_ACK), KEY_UPDATE(_ACK), END_SESSION(_ACK), the opaque-data container and the
//! secured-message version element, plus the dispatchers. The transcript slices
//! (`signed_portion`, `without_verify_data`) of every accepted message must be prefixes of it
//! ending exactly where the signature / verify data starts.
//!
//! Input: 3 context bytes (see `ualink_fuzz::ctx`), then one message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{ctx, roundtrip};
use ualink_spdm::msg::*;

fn prefix_of(name: &str, m: &[u8], p: Result<&[u8], ualink_spdm::Error>, tail: usize) {
    let p = p.unwrap_or_else(|e| panic!("{name}: slicing an accepted message failed: {e:?}"));
    assert!(
        m.starts_with(p) && p.len().checked_add(tail) == Some(m.len()),
        "{name}: slice of {} bytes + {tail} != message of {} bytes",
        p.len(),
        m.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((c, m)) = ctx(data) else { return };
    roundtrip(
        "KEY_EXCHANGE",
        m,
        |b| KeyExchange::parse(b, &c),
        KeyExchange::encode,
    );
    if let Some(k) = roundtrip(
        "KEY_EXCHANGE_RSP",
        m,
        |b| KeyExchangeRsp::parse(b, &c),
        KeyExchangeRsp::encode,
    ) {
        let vd = k.verify_data.as_ref().map_or(0, Vec::len);
        assert!(
            k.verify_data.is_some() != c.handshake_in_clear,
            "KEY_EXCHANGE_RSP verify data presence"
        );
        prefix_of(
            "KEY_EXCHANGE_RSP signed",
            m,
            k.signed_portion(m),
            k.signature.len() + vd,
        );
        prefix_of(
            "KEY_EXCHANGE_RSP w/o verify",
            m,
            k.without_verify_data(m),
            vd,
        );
    }
    if let Some(f) = roundtrip("FINISH", m, |b| Finish::parse(b, &c), Finish::encode) {
        let sig = f.signature.as_ref().map_or(0, Vec::len);
        prefix_of(
            "FINISH signed",
            m,
            f.signed_portion(m),
            sig + f.verify_data.len(),
        );
        prefix_of(
            "FINISH w/o verify",
            m,
            f.without_verify_data(m),
            f.verify_data.len(),
        );
    }
    if let Some(f) = roundtrip(
        "FINISH_RSP",
        m,
        |b| FinishRsp::parse(b, &c),
        FinishRsp::encode,
    ) {
        assert!(
            f.verify_data.is_some() == c.handshake_in_clear,
            "FINISH_RSP verify data presence"
        );
        let vd = f.verify_data.as_ref().map_or(0, Vec::len);
        prefix_of("FINISH_RSP w/o verify", m, f.without_verify_data(m), vd);
    }
    roundtrip(
        "PSK_EXCHANGE",
        m,
        |b| PskExchange::parse(b, &c),
        PskExchange::encode,
    );
    if let Some(p) = roundtrip(
        "PSK_EXCHANGE_RSP",
        m,
        |b| PskExchangeRsp::parse(b, &c),
        PskExchangeRsp::encode,
    ) {
        prefix_of(
            "PSK_EXCHANGE_RSP w/o verify",
            m,
            p.without_verify_data(m),
            p.verify_data.len(),
        );
    }
    roundtrip(
        "PSK_FINISH",
        m,
        |b| PskFinish::parse(b, &c),
        PskFinish::encode,
    );
    roundtrip(
        "PSK_FINISH_RSP",
        m,
        PskFinishRsp::parse,
        PskFinishRsp::encode,
    );
    roundtrip("HEARTBEAT", m, Heartbeat::parse, Heartbeat::encode);
    roundtrip(
        "HEARTBEAT_ACK",
        m,
        HeartbeatAck::parse,
        HeartbeatAck::encode,
    );
    roundtrip("KEY_UPDATE", m, KeyUpdate::parse, KeyUpdate::encode);
    roundtrip(
        "KEY_UPDATE_ACK",
        m,
        KeyUpdateAck::parse,
        KeyUpdateAck::encode,
    );
    roundtrip("END_SESSION", m, EndSession::parse, EndSession::encode);
    roundtrip(
        "END_SESSION_ACK",
        m,
        EndSessionAck::parse,
        EndSessionAck::encode,
    );
    roundtrip("OpaqueData", m, OpaqueData::parse, OpaqueData::encode);
    let _ = SecuredMessageVersionData::parse(m);
    ualink_fuzz::dispatch(m, &c);
});
