//! Known answers from the requester logs (tests/data/*.req.log): libspdm printed every message it
//! sent and received, including the ones that travelled encrypted inside sessions (FINISH of an
//! encrypted handshake, HEARTBEAT, KEY_UPDATE, END_SESSION, in-session GET_MEASUREMENTS, PSK,
//! IDE_KM/TDISP VENDOR_DEFINED). Every one parses with the context the log's own negotiation
//! yields and re-encodes to identical bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ualink_spdm::msg::*;

/// One logged message: direction, session id (0 outside a session), name, bytes.
struct Logged {
    send: bool,
    session: u32,
    name: String,
    bytes: Vec<u8>,
}

fn logged(log: &str) -> Vec<Logged> {
    let text = String::from_utf8(common::data(log)).unwrap();
    let mut out: Vec<(Logged, usize)> = Vec::new();
    let mut open = false;
    for line in text.lines() {
        let send = line.starts_with("libspdm_send_spdm_request[");
        if send || line.starts_with("libspdm_receive_spdm_response[") {
            let (_, rest) = line.split_once('[').unwrap();
            let (sid, rest) = rest.split_once(']').unwrap();
            let name = rest.trim_start_matches(" msg ").split('(').next().unwrap();
            let size = rest.rsplit_once("size (0x").unwrap().1;
            let size = usize::from_str_radix(size.split(')').next().unwrap(), 16).unwrap();
            out.push((
                Logged {
                    send,
                    session: u32::from_str_radix(sid, 16).unwrap(),
                    name: name.to_string(),
                    bytes: Vec::new(),
                },
                size,
            ));
            open = true;
        } else if open && line.len() > 6 && line.as_bytes()[4] == b':' {
            let (_, hexpart) = line.split_at(5);
            let last = out.last_mut().unwrap();
            last.0.bytes.extend(
                hexpart
                    .split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).unwrap()),
            );
        } else {
            open = false;
        }
    }
    for (m, size) in &out {
        assert_eq!(m.bytes.len(), *size, "{log}: {} logged size", m.name);
    }
    out.into_iter().map(|(m, _)| m).collect()
}

/// Parses and re-encodes every logged message; returns (total, in-session) counts and the
/// set of message names seen.
fn walk(log: &str) -> (usize, usize, Vec<String>) {
    let mut ctx: Option<MsgContext> = None;
    let (mut rf, mut sf) = (CapabilityFlags::default(), CapabilityFlags::default());
    let mut last: Option<SpdmRequest> = None;
    let (mut total, mut in_session) = (0, 0);
    let mut names: Vec<String> = Vec::new();
    for m in logged(log) {
        let used = if m.send {
            let (r, used) = SpdmRequest::parse_padded(&m.bytes, ctx.as_ref())
                .unwrap_or_else(|e| panic!("{log} {}: {e}", m.name));
            assert_eq!(r.encode().unwrap(), m.bytes[..used], "{log} {}", m.name);
            if let SpdmRequest::GetCapabilities(c) = &r {
                rf = c.flags;
            }
            last = Some(r);
            used
        } else {
            let c = ctx.map(|c| c.for_response_to(last.as_ref().unwrap()));
            let (r, used) = SpdmResponse::parse_padded(&m.bytes, c.as_ref())
                .unwrap_or_else(|e| panic!("{log} {}: {e}", m.name));
            assert_eq!(r.encode().unwrap(), m.bytes[..used], "{log} {}", m.name);
            match &r {
                SpdmResponse::Capabilities(c) => sf = c.flags,
                SpdmResponse::Algorithms(a) => {
                    ctx = Some(MsgContext::from_negotiation(a, rf, sf).unwrap())
                }
                _ => {}
            }
            used
        };
        assert!(m.bytes[used..].iter().all(|b| *b == 0) && m.bytes.len() - used < 4);
        total += 1;
        if m.session != 0 {
            in_session += 1;
        }
        if !names.contains(&m.name) {
            names.push(m.name);
        }
    }
    (total, in_session, names)
}

#[test]
fn every_message_in_the_v13_requester_log_parses_and_reencodes() {
    let (total, in_session, names) = walk("v13_p384_session.req.log");
    assert_eq!((total, in_session), (70, 20));
    for n in [
        "SPDM_HEARTBEAT",
        "SPDM_HEARTBEAT_ACK",
        "SPDM_KEY_UPDATE",
        "SPDM_KEY_UPDATE_ACK",
        "SPDM_END_SESSION",
        "SPDM_END_SESSION_ACK",
        "SPDM_FINISH_RSP",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
}

#[test]
fn every_message_in_the_tsm_requester_log_parses_and_reencodes() {
    let (total, in_session, names) = walk("tsm_like_v12_p256_pcidoe.req.log");
    assert_eq!((total, in_session), (244, 216));
    for n in [
        "SPDM_FINISH",
        "SPDM_FINISH_RSP",
        "SPDM_PSK_FINISH",
        "SPDM_PSK_FINISH_RSP",
        "SPDM_VENDOR_DEFINED_REQUEST",
        "SPDM_VENDOR_DEFINED_RESPONSE",
        "SPDM_KEY_UPDATE",
        "SPDM_END_SESSION",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
}
