//! TDISP 1.0 codecs: requests, responses and the device interface report (parse and
//! round-trip), and the requester-side response parsers of `TdispRequester`.
//!
//! Input: one selector byte (bit0: also feed the report fetcher), then one payload from the
//! ProtocolID byte (0x01) on, as carried in a PCI-SIG VENDOR_DEFINED message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::roundtrip;
use ualink_spdm::tdisp::msg::{InterfaceId, InterfaceReport, TdispRequest, TdispResponse};
use ualink_spdm::tdisp::requester::TdispRequester;

fuzz_target!(|data: &[u8]| {
    let [sel, m @ ..] = data else { return };
    roundtrip("TdispRequest", m, TdispRequest::parse, |r| {
        Ok::<_, ()>(r.encode())
    });
    let rsp = roundtrip(
        "TdispResponse",
        m,
        TdispResponse::parse,
        TdispResponse::encode,
    );
    roundtrip(
        "InterfaceReport",
        m,
        InterfaceReport::parse,
        InterfaceReport::encode,
    );

    // The requester's parsers, for the interface the response names (or a fixed one).
    let id = rsp
        .as_ref()
        .map(|r| r.interface_id)
        .or_else(|| InterfaceId::new(0x0100_0010).ok());
    let Some(id) = id else { return };
    let r = TdispRequester::new(id);
    let _ = r.parse_version(m);
    let _ = r.parse_capabilities(m);
    let _ = r.parse_lock_interface(m);
    let _ = r.parse_state(m);
    let _ = r.parse_start_interface(m);
    let _ = r.parse_stop_interface(m);
    if sel & 1 != 0 {
        let mut f = r.report_fetcher(u16::from(*sel).max(1));
        for _ in 0..4 {
            if f.next_request().is_none() {
                break;
            }
            match f.handle_response(m) {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) => {}
            }
        }
    }
});
