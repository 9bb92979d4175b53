//! UALinkSec key programming end to end: TSM builders -> `KeyProgResponder` -> `MemoryKeySink`
//! and back, with the refusals: outside a session, stale epochs, empty slots, wrong roll epoch,
//! unsupported ports and protocols, and the plaintext scrubbed after every call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_spdm::keyprog::{
    expect_gostop_ack, expect_kp_ack, expect_query_resp, expect_roll_ack, ualink_go,
    ualink_key_prog, ualink_query, ualink_roll, ualink_stop, AccelId, Direction, IdeKmMessage,
    KeyPair, KeyProgError, KeyProgResponder, KeyProgStatus, KeySink, KeyTarget, MasterKey,
    MemoryKeySink, Slot, UalinkKeyMessage,
};

fn key(b: u8) -> MasterKey {
    MasterKey::from_bytes(&mut [b; 32])
}

fn pair(direction: Direction) -> KeyPair {
    KeyPair {
        port: 1,
        direction,
        peer: AccelId::new(7).unwrap(),
    }
}

fn device() -> KeyProgResponder<MemoryKeySink> {
    KeyProgResponder::new(MemoryKeySink::new(3, AccelId::new(1).unwrap(), 4))
}

/// Sends one request through the responder inside a session.
fn send(dev: &mut KeyProgResponder<MemoryKeySink>, req: &[u8]) -> Vec<u8> {
    let mut buf = req.to_vec();
    let rsp = dev.respond(&mut buf, true).unwrap();
    assert!(buf.iter().all(|b| *b == 0), "request plaintext scrubbed");
    rsp
}

fn program(dev: &mut KeyProgResponder<MemoryKeySink>, t: KeyTarget, epoch: u32, k: &MasterKey) {
    let rsp = send(dev, &ualink_key_prog(t, epoch, k));
    expect_kp_ack(&rsp, t, epoch).unwrap();
}

#[test]
fn bring_up_rx_then_tx_then_roll() {
    let mut dev = device();
    let q = expect_query_resp(&send(&mut dev, &ualink_query(1)), 1).unwrap();
    assert_eq!((q.max_port, q.local_accel.get(), q.max_peers), (3, 1, 4));
    let (rx, tx) = (pair(Direction::Rx), pair(Direction::Tx));
    for p in [rx, tx] {
        program(&mut dev, p.slot(Slot::Active), 1, &key(0x11));
        assert!(!dev.sink().is_live(p), "programmed but not GO");
    }
    // RX everywhere before TX.
    for p in [rx, tx] {
        let t = p.slot(Slot::Active);
        expect_gostop_ack(&send(&mut dev, &ualink_go(t)), t).unwrap();
        assert!(dev.sink().is_live(p));
    }
    assert!(dev.sink().holds(rx.slot(Slot::Active), &key(0x11)));
    // Rotation: program the alternate with a newer epoch, then roll.
    program(&mut dev, tx.slot(Slot::Alternate), 2, &key(0x22));
    expect_roll_ack(&send(&mut dev, &ualink_roll(tx, 2)), tx, 2).unwrap();
    assert!(dev.sink().holds(tx.slot(Slot::Active), &key(0x22)));
    assert_eq!(dev.sink().epoch(tx.slot(Slot::Alternate)), None);
    assert!(dev.sink().is_live(tx));
    // STOP erases.
    let t = rx.slot(Slot::Active);
    expect_gostop_ack(&send(&mut dev, &ualink_stop(t)), t).unwrap();
    assert!(!dev.sink().is_live(rx));
    assert!(!dev.sink().holds(t, &key(0x11)));
}

#[test]
fn key_programming_outside_a_session_is_refused_and_scrubbed() {
    let mut dev = device();
    let t = pair(Direction::Rx).slot(Slot::Active);
    let mut buf = ualink_key_prog(t, 1, &key(0x33)).to_vec();
    assert_eq!(
        dev.respond(&mut buf, false),
        Err(KeyProgError::SessionRequired)
    );
    assert_eq!(
        ualink_spdm::Error::from(KeyProgError::SessionRequired).wire_code(),
        (0x0B, 0)
    );
    assert!(buf.iter().all(|b| *b == 0));
    assert_eq!(dev.sink().epoch(t), None, "nothing programmed");
    for req in [
        ualink_go(t),
        ualink_stop(t),
        ualink_query(0),
        ualink_roll(pair(Direction::Rx), 1),
    ] {
        let mut b = req;
        assert_eq!(
            dev.respond(&mut b, false),
            Err(KeyProgError::SessionRequired)
        );
    }
}

#[test]
fn stale_or_replayed_epochs_are_refused() {
    let mut dev = device();
    let p = pair(Direction::Tx);
    program(&mut dev, p.slot(Slot::Active), 5, &key(1));
    for (slot, epoch) in [
        (Slot::Active, 5),
        (Slot::Alternate, 4),
        (Slot::Alternate, 5),
    ] {
        let t = p.slot(slot);
        let rsp = send(&mut dev, &ualink_key_prog(t, epoch, &key(2)));
        assert_eq!(
            expect_kp_ack(&rsp, t, epoch),
            Err(KeyProgError::Refused(KeyProgStatus::StaleEpoch))
        );
    }
    assert!(dev.sink().holds(p.slot(Slot::Active), &key(1)));
}

#[test]
fn go_roll_and_stop_on_empty_slots_fail_with_status() {
    let mut dev = device();
    let p = pair(Direction::Rx);
    let t = p.slot(Slot::Active);
    assert_eq!(
        expect_gostop_ack(&send(&mut dev, &ualink_go(t)), t),
        Err(KeyProgError::Refused(KeyProgStatus::SlotEmpty))
    );
    assert_eq!(
        expect_gostop_ack(&send(&mut dev, &ualink_stop(t)), t),
        Err(KeyProgError::Refused(KeyProgStatus::SlotEmpty))
    );
    assert_eq!(
        expect_roll_ack(&send(&mut dev, &ualink_roll(p, 1)), p, 1),
        Err(KeyProgError::Refused(KeyProgStatus::SlotEmpty))
    );
    program(&mut dev, p.slot(Slot::Alternate), 3, &key(3));
    assert_eq!(
        expect_roll_ack(&send(&mut dev, &ualink_roll(p, 2)), p, 2),
        Err(KeyProgError::Refused(KeyProgStatus::EpochMismatch))
    );
    assert_eq!(
        dev.sink().epoch(p.slot(Slot::Alternate)),
        Some(3),
        "unchanged"
    );
}

#[test]
fn bad_ports_peers_and_capacity() {
    let mut dev = device();
    let t = KeyTarget {
        port: 4,
        ..pair(Direction::Rx).slot(Slot::Active)
    };
    assert_eq!(
        expect_kp_ack(&send(&mut dev, &ualink_key_prog(t, 1, &key(1))), t, 1),
        Err(KeyProgError::Refused(KeyProgStatus::UnsupportedPortIndex))
    );
    let q = send(&mut dev, &ualink_query(9));
    assert_eq!(
        expect_query_resp(&q, 9),
        Err(KeyProgError::Refused(KeyProgStatus::UnsupportedPortIndex))
    );
    // Our own accelerator ID is not a peer.
    let own = KeyTarget {
        peer: AccelId::new(1).unwrap(),
        ..pair(Direction::Tx).slot(Slot::Active)
    };
    assert_eq!(
        expect_kp_ack(&send(&mut dev, &ualink_key_prog(own, 1, &key(1))), own, 1),
        Err(KeyProgError::Refused(KeyProgStatus::UnknownPeer))
    );
    // At most 4 peers per port and direction.
    for peer in 10..15u16 {
        let t = KeyTarget {
            peer: AccelId::new(peer).unwrap(),
            ..pair(Direction::Tx).slot(Slot::Active)
        };
        let r = expect_kp_ack(&send(&mut dev, &ualink_key_prog(t, 1, &key(1))), t, 1);
        if peer < 14 {
            r.unwrap();
        } else {
            assert_eq!(
                r,
                Err(KeyProgError::Refused(KeyProgStatus::UnsupportedValue))
            );
        }
    }
}

#[test]
fn acks_that_do_not_echo_the_request_are_rejected() {
    let mut dev = device();
    let t = pair(Direction::Rx).slot(Slot::Active);
    let rsp = send(&mut dev, &ualink_key_prog(t, 1, &key(1)));
    let other = KeyTarget {
        slot: Slot::Alternate,
        ..t
    };
    assert_eq!(
        expect_kp_ack(&rsp, other, 1),
        Err(KeyProgError::AckMismatch("KP_ACK target"))
    );
    assert_eq!(
        expect_kp_ack(&rsp, t, 2),
        Err(KeyProgError::AckMismatch("KP_ACK epoch"))
    );
    assert_eq!(
        expect_gostop_ack(&rsp, t),
        Err(KeyProgError::UnexpectedObject(0x83))
    );
}

#[test]
fn responses_ide_km_and_garbage_are_refused_without_touching_the_sink() {
    let mut dev = device();
    let t = pair(Direction::Rx).slot(Slot::Active);
    // An acknowledgement sent as a request.
    let mut ack = UalinkKeyMessage::KGoStopAck {
        target: t,
        status: KeyProgStatus::Success,
    }
    .encode()
    .to_vec();
    assert_eq!(
        dev.respond(&mut ack, true),
        Err(KeyProgError::UnexpectedObject(0x86))
    );
    // IDE_KM objects go to an IDE_KM responder; TDISP is not key programming.
    let mut ide = IdeKmMessage::Query { port_index: 0 }.encode().to_vec();
    assert_eq!(
        dev.respond(&mut ide, true),
        Err(KeyProgError::UnsupportedObject(0x00))
    );
    assert_eq!(
        ualink_spdm::Error::from(KeyProgError::UnsupportedObject(0)).wire_code(),
        (0x07, 0xFE)
    );
    let mut tdisp = vec![0x01, 0x10, 0x81];
    assert_eq!(
        dev.respond(&mut tdisp, true),
        Err(KeyProgError::UnsupportedProtocol(0x01))
    );
    assert_eq!(tdisp, [0, 0, 0]);
    // Truncated KEY_PROG: malformed, scrubbed, nothing stored.
    let mut short = ualink_key_prog(t, 1, &key(0x44)).to_vec();
    short.pop();
    assert!(matches!(
        dev.respond(&mut short, true),
        Err(KeyProgError::Malformed(_))
    ));
    assert!(short.iter().all(|b| *b == 0));
    let mut empty: [u8; 0] = [];
    assert!(dev.respond(&mut empty, true).is_err());
    assert_eq!(dev.sink().epoch(t), None);
    assert!(!dev.sink().any_live());
}
