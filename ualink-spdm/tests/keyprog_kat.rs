//! Known answers for IDE_KM from the spdm-emu capture `tsm_like_v12_p256_pcidoe` (every
//! message parses and re-encodes identically), and the UALinkSec layout pinned to bytes
//! written out by hand from the module documentation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ualink_spdm::keyprog::{
    AccelId, Direction, IdeKmMessage, KeyProgStatus, KeySubStream, KeyTarget, MasterKey, Slot,
    SubStream, UalinkKeyMessage, UalinkKeyProg, UalinkQueryResp,
};

const FILE: &str = "tsm_like_v12_p256_pcidoe.vdm_plaintext.txt";
const PREFIX: usize = 11;

fn ide_records() -> Vec<(String, Vec<u8>)> {
    let recs: Vec<_> = common::transcript(FILE)
        .into_iter()
        .filter(|r| r.decode.contains("IDE_KM"))
        .map(|r| {
            assert_eq!(
                &r.bytes[4..9],
                &[0x03, 0x00, 0x02, 0x01, 0x00],
                "{}",
                r.decode
            );
            (r.decode.clone(), r.bytes[PREFIX..].to_vec())
        })
        .collect();
    assert_eq!(recs.len(), 76);
    recs
}

#[test]
fn every_captured_ide_km_message_parses_and_reencodes_identically() {
    for (decode, payload) in ide_records() {
        let m = IdeKmMessage::parse(&payload).unwrap_or_else(|e| panic!("{decode}: {e}"));
        let name = decode.split_whitespace().nth(3).unwrap();
        let expect = match name {
            "QUERY" => 0x00,
            "QUERY_RESP" => 0x01,
            "KEY_PROG" => 0x02,
            "KP_ACK" => 0x03,
            "K_SET_GO" => 0x04,
            "K_SET_STOP" => 0x05,
            "K_SET_GOSTOP_ACK" => 0x06,
            other => panic!("unexpected {other}"),
        };
        assert_eq!(m.object_id(), expect, "{decode}");
        assert_eq!(m.encode().as_slice(), payload.as_slice(), "{decode}");
    }
}

#[test]
fn captured_ide_km_fields() {
    let recs = ide_records();
    assert_eq!(
        IdeKmMessage::parse(&recs[0].1).unwrap(),
        IdeKmMessage::Query { port_index: 1 }
    );
    let IdeKmMessage::QueryResp(q) = IdeKmMessage::parse(&recs[1].1).unwrap() else {
        panic!()
    };
    assert_eq!((q.port_index, q.max_port_index), (1, 7));
    assert_eq!(q.register_blocks.len(), 72);
    // The six KEY_PROGs of the first round: PR/NPR/CPL x RX/TX, key set K0, stream 0, port 1.
    let mut seen = Vec::new();
    for (decode, p) in recs.iter().filter(|r| r.0.contains("KEY_PROG")).take(6) {
        let IdeKmMessage::KeyProg(k) = IdeKmMessage::parse(p).unwrap() else {
            panic!("{decode}")
        };
        assert_eq!((k.slot.stream_id, k.slot.port_index), (0, 1));
        assert!(!k.slot.key_sub_stream.key_set_k1);
        assert_eq!(k.ifv, [0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(k.key.as_bytes()[..], p[8..40]);
        let dbg = format!("{k:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains(&format!("{:?}", k.key.as_bytes())), "{dbg}");
        assert!(
            !dbg.contains(&format!("{:?}", &k.key.as_bytes()[..4])),
            "{dbg}"
        );
        seen.push((
            k.slot.key_sub_stream.sub_stream,
            k.slot.key_sub_stream.direction,
        ));
    }
    assert_eq!(
        seen,
        vec![
            (SubStream::Posted, Direction::Rx),
            (SubStream::NonPosted, Direction::Rx),
            (SubStream::Completion, Direction::Rx),
            (SubStream::Posted, Direction::Tx),
            (SubStream::NonPosted, Direction::Tx),
            (SubStream::Completion, Direction::Tx),
        ]
    );
    let IdeKmMessage::KpAck { status, slot } = IdeKmMessage::parse(&recs[3].1).unwrap() else {
        panic!()
    };
    assert_eq!(status, KeyProgStatus::Success);
    assert_eq!(
        slot.key_sub_stream,
        KeySubStream {
            sub_stream: SubStream::Posted,
            direction: Direction::Rx,
            key_set_k1: false
        }
    );
}

#[test]
fn key_debug_output_never_shows_key_bytes() {
    let mut raw = [0xAB; 32];
    let k = MasterKey::from_bytes(&mut raw);
    assert_eq!(raw, [0; 32], "source zeroed");
    let msg = UalinkKeyMessage::KeyProg(UalinkKeyProg {
        target: target(),
        epoch: 1,
        key: k,
    });
    let dbg = format!("{msg:?}");
    assert!(
        !dbg.contains("171") && !dbg.to_lowercase().contains("ab, "),
        "{dbg}"
    );
    assert!(dbg.contains("<redacted>"));
}

fn target() -> KeyTarget {
    KeyTarget {
        port: 3,
        direction: Direction::Tx,
        slot: Slot::Alternate,
        peer: AccelId::new(0x2A5).unwrap(),
    }
}

/// The layout in `keyprog`'s module documentation, byte by byte.
#[test]
fn ualinksec_layout_is_pinned() {
    let mut raw = [0u8; 32];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = i as u8;
    }
    let key = MasterKey::from_bytes(&mut raw);
    let prog = UalinkKeyMessage::KeyProg(UalinkKeyProg {
        target: target(),
        epoch: 0x0102_0304,
        key,
    });
    let mut want = vec![
        0x00, // ProtocolID (IDE_KM's)
        0x82, // KEY_PROG (UALinkSec)
        0x00, // reserved (status)
        0x03, // PortIndex
        0x03, // KeyFlags: alternate | TX
        0xA5, 0x02, // PeerAccelID 0x2A5
        0x00, 0x00, // reserved
        0x04, 0x03, 0x02, 0x01, // KeyEpoch
    ];
    want.extend(0u8..32);
    assert_eq!(prog.encode().as_slice(), want.as_slice());
    assert_eq!(UalinkKeyMessage::parse(&want).unwrap(), prog);

    let ack = UalinkKeyMessage::KpAck {
        target: target(),
        status: KeyProgStatus::StaleEpoch,
        epoch: 7,
    };
    let want = [0x00, 0x83, 0x06, 0x03, 0x03, 0xA5, 0x02, 0, 0, 7, 0, 0, 0];
    assert_eq!(ack.encode().as_slice(), &want);
    assert_eq!(UalinkKeyMessage::parse(&want).unwrap(), ack);

    let rx_active = KeyTarget {
        direction: Direction::Rx,
        slot: Slot::Active,
        ..target()
    };
    for (m, want) in [
        (
            UalinkKeyMessage::KSetGo(rx_active),
            vec![0x00, 0x84, 0, 3, 0, 0xA5, 0x02, 0, 0],
        ),
        (
            UalinkKeyMessage::KSetStop(rx_active),
            vec![0x00, 0x85, 0, 3, 0, 0xA5, 0x02, 0, 0],
        ),
        (
            UalinkKeyMessage::KGoStopAck {
                target: rx_active,
                status: KeyProgStatus::SlotEmpty,
            },
            vec![0x00, 0x86, 7, 3, 0, 0xA5, 0x02, 0, 0],
        ),
        (
            UalinkKeyMessage::KeyRoll {
                target: target(),
                expected_epoch: 9,
            },
            vec![0x00, 0x87, 0, 3, 3, 0xA5, 0x02, 0, 0, 9, 0, 0, 0],
        ),
        (
            UalinkKeyMessage::KeyRollAck {
                target: target(),
                status: KeyProgStatus::Success,
                active_epoch: 9,
            },
            vec![0x00, 0x88, 0, 3, 3, 0xA5, 0x02, 0, 0, 9, 0, 0, 0],
        ),
        (
            UalinkKeyMessage::Query { port: 3 },
            vec![0x00, 0x80, 0, 3, 0],
        ),
        (
            UalinkKeyMessage::QueryResp(UalinkQueryResp {
                status: KeyProgStatus::Success,
                port: 3,
                max_port: 7,
                local_accel: AccelId::new(0x3FF).unwrap(),
                max_peers: 1023,
            }),
            vec![0x00, 0x81, 0, 3, 7, 0xFF, 0x03, 0xFF, 0x03],
        ),
    ] {
        assert_eq!(m.encode().as_slice(), want.as_slice(), "{m:?}");
        assert_eq!(UalinkKeyMessage::parse(&want).unwrap(), m);
    }
}

#[test]
fn ualinksec_rejects_reserved_and_unknown_values() {
    let good = UalinkKeyMessage::KSetGo(target()).encode().to_vec();
    let bad = |i: usize, v: u8| {
        let mut b = good.clone();
        b[i] = v;
        UalinkKeyMessage::parse(&b)
    };
    assert!(bad(0, 0x01).is_err(), "TDISP ProtocolID");
    assert!(bad(1, 0x89).is_err(), "unknown ObjectID");
    assert!(bad(1, 0x04).is_err(), "an IDE_KM ObjectID");
    assert!(bad(2, 0x01).is_err(), "reserved status byte in a request");
    assert!(bad(4, 0x04).is_err(), "KeyFlags bit 2");
    assert!(bad(6, 0x04).is_err(), "PeerAccelID bit 10");
    assert!(bad(7, 0x01).is_err(), "reserved u16");
    // KEY_ROLL must name the alternate slot.
    let mut roll = UalinkKeyMessage::KeyRoll {
        target: target(),
        expected_epoch: 1,
    }
    .encode()
    .to_vec();
    roll[4] = 0x02;
    assert!(UalinkKeyMessage::parse(&roll).is_err());
    // Unknown status in an ACK.
    let mut ack = UalinkKeyMessage::KGoStopAck {
        target: target(),
        status: KeyProgStatus::Success,
    }
    .encode()
    .to_vec();
    ack[2] = 9;
    assert!(UalinkKeyMessage::parse(&ack).is_err());
    assert!(AccelId::new(0x400).is_err());
}

#[test]
fn ide_km_rejects_reserved_and_unknown_values() {
    let recs = ide_records();
    let kp = &recs[2].1;
    let bad = |i: usize, v: u8| {
        let mut b = kp.clone();
        b[i] = v;
        IdeKmMessage::parse(&b)
    };
    assert!(bad(0, 0x01).is_err(), "TDISP ProtocolID");
    assert!(
        bad(2, 1).is_err() && bad(3, 1).is_err() && bad(5, 1).is_err(),
        "reserved"
    );
    assert!(bad(6, 0x30).is_err(), "sub-stream 3");
    assert!(bad(6, 0x04).is_err(), "KeySubStream bit 2");
    let mut ack = recs[3].1.clone();
    ack[5] = 5;
    assert!(
        IdeKmMessage::parse(&ack).is_err(),
        "IDE_KM KP_ACK status 5 undefined"
    );
    let mut q = recs[1].1.clone();
    q.pop();
    assert!(
        IdeKmMessage::parse(&q).is_err(),
        "register blocks not whole DWORDs"
    );
    let mut unknown = recs[4].1.clone();
    unknown[1] = 0x07;
    assert!(IdeKmMessage::parse(&unknown).is_err());
}

/// An IDE_KM sink that answers QUERY like the reference device and records what it is told.
struct RecordingIdeSink {
    query_resp: ualink_spdm::keyprog::IdeKmQueryResp,
    programmed: Vec<(ualink_spdm::keyprog::IdeKeySlot, MasterKey)>,
    go: Vec<ualink_spdm::keyprog::IdeKeySlot>,
    stopped: Vec<ualink_spdm::keyprog::IdeKeySlot>,
    sessions: Vec<u32>,
}

impl ualink_spdm::keyprog::IdeKmSink for RecordingIdeSink {
    fn query(&self, port: u8) -> Result<ualink_spdm::keyprog::IdeKmQueryResp, KeyProgStatus> {
        if port != self.query_resp.port_index {
            return Err(KeyProgStatus::UnsupportedPortIndex);
        }
        Ok(self.query_resp.clone())
    }
    fn program(
        &mut self,
        slot: ualink_spdm::keyprog::IdeKeySlot,
        key: MasterKey,
        _ifv: [u8; 8],
    ) -> Result<(), KeyProgStatus> {
        self.programmed.push((slot, key));
        Ok(())
    }
    fn program_in_session(
        &mut self,
        slot: ualink_spdm::keyprog::IdeKeySlot,
        key: MasterKey,
        ifv: [u8; 8],
        session_id: u32,
    ) -> Result<(), KeyProgStatus> {
        self.sessions.push(session_id);
        ualink_spdm::keyprog::IdeKmSink::program(self, slot, key, ifv)
    }
    fn go(&mut self, slot: ualink_spdm::keyprog::IdeKeySlot) -> Result<(), KeyProgStatus> {
        self.go.push(slot);
        Ok(())
    }
    fn stop(&mut self, slot: ualink_spdm::keyprog::IdeKeySlot) -> Result<(), KeyProgStatus> {
        if !self.go.contains(&slot) {
            return Err(KeyProgStatus::UnsupportedValue);
        }
        self.stopped.push(slot);
        Ok(())
    }
}

#[test]
fn our_ide_km_responder_replays_the_capture_byte_for_byte() {
    use ualink_spdm::keyprog::{IdeKmResponder, KeyProgError};
    let recs = ide_records();
    let IdeKmMessage::QueryResp(query_resp) = IdeKmMessage::parse(&recs[1].1).unwrap() else {
        panic!()
    };
    let mut dev = IdeKmResponder::new(RecordingIdeSink {
        query_resp,
        programmed: vec![],
        go: vec![],
        stopped: vec![],
        sessions: vec![],
    });
    let mut keys = Vec::new();
    for pair in recs.chunks(2) {
        let ((q, req), (_, rsp)) = (&pair[0], &pair[1]);
        assert!(q.starts_with("REQ"));
        if let IdeKmMessage::KeyProg(k) = IdeKmMessage::parse(req).unwrap() {
            keys.push(k.key);
        }
        let mut buf = req.clone();
        assert_eq!(&dev.respond(&mut buf, true).unwrap(), rsp, "{q}");
        assert!(buf.iter().all(|b| *b == 0));
    }
    let sink = dev.sink();
    assert_eq!(sink.programmed.len(), 12);
    assert!(sink
        .programmed
        .iter()
        .zip(&keys)
        .all(|((_, a), b)| a.ct_eq(b)));
    assert_eq!(sink.go.len(), 12);
    assert_eq!(sink.stopped.len(), 12);
    // Outside a session nothing happens.
    let mut buf = recs[2].1.clone();
    assert_eq!(
        dev.respond(&mut buf, false),
        Err(KeyProgError::SessionRequired)
    );
    assert_eq!(dev.sink().programmed.len(), 12);
    // A failing STOP is an error for the engine, not an ack.
    let mut dev2 = IdeKmResponder::new(RecordingIdeSink {
        query_resp: ualink_spdm::keyprog::IdeKmQueryResp {
            port_index: 0,
            dev_func_num: 0,
            bus_num: 0,
            segment: 0,
            max_port_index: 0,
            ide_cap: 0,
            ide_ctrl: 0,
            register_blocks: vec![],
        },
        programmed: vec![],
        go: vec![],
        stopped: vec![],
        sessions: vec![],
    });
    let stop = recs.iter().find(|r| r.0.contains("K_SET_STOP")).unwrap();
    let mut buf = stop.1.clone();
    assert_eq!(
        dev2.respond(&mut buf, true),
        Err(KeyProgError::Refused(KeyProgStatus::UnsupportedValue))
    );
    let mut q = recs[0].1.clone();
    assert_eq!(
        dev2.respond(&mut q, true),
        Err(KeyProgError::Refused(KeyProgStatus::UnsupportedPortIndex))
    );
}

#[test]
fn ide_km_ack_checks() {
    use ualink_spdm::keyprog::{expect_ide_gostop_ack, expect_ide_kp_ack, KeyProgError};
    let recs = ide_records();
    let IdeKmMessage::KeyProg(k) = IdeKmMessage::parse(&recs[2].1).unwrap() else {
        panic!()
    };
    expect_ide_kp_ack(&recs[3].1, k.slot).unwrap();
    let IdeKmMessage::KeyProg(k2) = IdeKmMessage::parse(&recs[6].1).unwrap() else {
        panic!()
    };
    assert_eq!(
        expect_ide_kp_ack(&recs[3].1, k2.slot),
        Err(KeyProgError::AckMismatch("KP_ACK slot"))
    );
    expect_ide_gostop_ack(&recs[5].1, k.slot).unwrap();
    assert!(expect_ide_gostop_ack(&recs[5].1, k2.slot).is_err());
    assert_eq!(
        expect_ide_gostop_ack(&recs[3].1, k.slot),
        Err(KeyProgError::UnexpectedObject(0x03))
    );
}

#[test]
fn family_separates_ide_km_from_ualinksec_under_one_protocol_id() {
    use ualink_spdm::keyprog::{family, ualink_query, IdeKmResponder, KeyProgError, KeyProgFamily};
    let recs = ide_records();
    for (d, p) in &recs {
        assert_eq!(family(p), Some(KeyProgFamily::IdeKm), "{d}");
    }
    let q = ualink_query(0);
    assert_eq!(family(&q), Some(KeyProgFamily::UalinkSec));
    assert_eq!(family(&[0x01, 0x10]), None);
    assert_eq!(family(&[0x00]), None);
    // Each family's parser refuses the other's objects.
    assert!(IdeKmMessage::parse(&q).is_err());
    assert!(UalinkKeyMessage::parse(&recs[0].1).is_err());
    // And so does each responder.
    let mut dev = IdeKmResponder::new(RecordingIdeSink {
        query_resp: match IdeKmMessage::parse(&recs[1].1).unwrap() {
            IdeKmMessage::QueryResp(q) => q,
            _ => panic!(),
        },
        programmed: vec![],
        go: vec![],
        stopped: vec![],
        sessions: vec![],
    });
    let mut b = q.clone();
    assert_eq!(
        dev.respond(&mut b, true),
        Err(KeyProgError::UnsupportedObject(0x80))
    );
}

#[test]
fn ide_km_key_prog_records_its_session() {
    use ualink_spdm::keyprog::{IdeKmResponder, KeyProgError};
    let recs = ide_records();
    let IdeKmMessage::QueryResp(query_resp) = IdeKmMessage::parse(&recs[1].1).unwrap() else {
        panic!()
    };
    let mut dev = IdeKmResponder::new(RecordingIdeSink {
        query_resp,
        programmed: vec![],
        go: vec![],
        stopped: vec![],
        sessions: vec![],
    });
    let mut b = recs[2].1.clone();
    assert_eq!(
        dev.respond_in_session(&mut b, None),
        Err(KeyProgError::SessionRequired)
    );
    let mut b = recs[2].1.clone();
    assert_eq!(
        dev.respond_in_session(&mut b, Some(0xFFFF_FFFF)).unwrap(),
        recs[3].1
    );
    assert!(b.iter().all(|x| *x == 0));
    assert_eq!(dev.sink().sessions, vec![0xFFFF_FFFF]);
}
