//! Bad input for the key-programming codecs and responder: generated messages round-trip,
//! every truncation and any trailing byte is an error, arbitrary bytes never panic and are
//! always scrubbed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use ualink_spdm::keyprog::{
    AccelId, Direction, IdeKeySlot, IdeKmKeyProg, IdeKmMessage, IdeKmQueryResp, KeyProgResponder,
    KeyProgStatus, KeySubStream, KeyTarget, MasterKey, MemoryKeySink, Slot, SubStream,
    UalinkKeyMessage, UalinkKeyProg, UalinkQueryResp,
};

fn arb_target() -> impl Strategy<Value = KeyTarget> {
    (any::<u8>(), any::<bool>(), any::<bool>(), 0u16..=0x3FF).prop_map(|(port, tx, alt, peer)| {
        KeyTarget {
            port,
            direction: if tx { Direction::Tx } else { Direction::Rx },
            slot: if alt { Slot::Alternate } else { Slot::Active },
            peer: AccelId::new(peer).unwrap(),
        }
    })
}

fn arb_status(max: usize) -> impl Strategy<Value = KeyProgStatus> {
    (0..max).prop_map(|i| KeyProgStatus::ALL[i])
}

fn arb_key() -> impl Strategy<Value = MasterKey> {
    any::<[u8; 32]>().prop_map(|mut k| MasterKey::from_bytes(&mut k))
}

fn arb_ualink() -> impl Strategy<Value = UalinkKeyMessage> {
    prop_oneof![
        any::<u8>().prop_map(|port| UalinkKeyMessage::Query { port }),
        (
            arb_status(9),
            any::<u8>(),
            any::<u8>(),
            0u16..=0x3FF,
            any::<u16>()
        )
            .prop_map(
                |(status, port, max_port, a, max_peers)| UalinkKeyMessage::QueryResp(
                    UalinkQueryResp {
                        status,
                        port,
                        max_port,
                        local_accel: AccelId::new(a).unwrap(),
                        max_peers,
                    }
                )
            ),
        (arb_target(), any::<u32>(), arb_key()).prop_map(|(target, epoch, key)| {
            UalinkKeyMessage::KeyProg(UalinkKeyProg { target, epoch, key })
        }),
        (arb_target(), arb_status(9), any::<u32>()).prop_map(|(target, status, epoch)| {
            UalinkKeyMessage::KpAck {
                target,
                status,
                epoch,
            }
        }),
        arb_target().prop_map(UalinkKeyMessage::KSetGo),
        arb_target().prop_map(UalinkKeyMessage::KSetStop),
        (arb_target(), arb_status(9))
            .prop_map(|(target, status)| UalinkKeyMessage::KGoStopAck { target, status }),
        (arb_target(), any::<u32>()).prop_map(|(t, e)| UalinkKeyMessage::KeyRoll {
            target: KeyTarget {
                slot: Slot::Alternate,
                ..t
            },
            expected_epoch: e
        }),
        (arb_target(), arb_status(9), any::<u32>()).prop_map(|(target, status, active_epoch)| {
            UalinkKeyMessage::KeyRollAck {
                target,
                status,
                active_epoch,
            }
        }),
    ]
}

fn arb_ide_slot() -> impl Strategy<Value = IdeKeySlot> {
    (
        any::<u8>(),
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(stream_id, ss, tx, k1, port_index)| IdeKeySlot {
            stream_id,
            key_sub_stream: KeySubStream {
                sub_stream: [
                    SubStream::Posted,
                    SubStream::NonPosted,
                    SubStream::Completion,
                ][usize::from(ss)],
                direction: if tx { Direction::Tx } else { Direction::Rx },
                key_set_k1: k1,
            },
            port_index,
        })
}

fn arb_ide() -> impl Strategy<Value = IdeKmMessage> {
    prop_oneof![
        any::<u8>().prop_map(|port_index| IdeKmMessage::Query { port_index }),
        (
            any::<[u8; 5]>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u32>(), 0..20)
        )
            .prop_map(
                |(h, ide_cap, ide_ctrl, register_blocks)| IdeKmMessage::QueryResp(IdeKmQueryResp {
                    port_index: h[0],
                    dev_func_num: h[1],
                    bus_num: h[2],
                    segment: h[3],
                    max_port_index: h[4],
                    ide_cap,
                    ide_ctrl,
                    register_blocks,
                })
            ),
        (arb_ide_slot(), arb_key(), any::<[u8; 8]>())
            .prop_map(|(slot, key, ifv)| IdeKmMessage::KeyProg(IdeKmKeyProg { slot, key, ifv })),
        (arb_ide_slot(), arb_status(5))
            .prop_map(|(slot, status)| IdeKmMessage::KpAck { slot, status }),
        arb_ide_slot().prop_map(IdeKmMessage::KSetGo),
        arb_ide_slot().prop_map(IdeKmMessage::KSetStop),
        arb_ide_slot().prop_map(IdeKmMessage::KGoStopAck),
    ]
}

#[test]
fn captured_ide_km_truncations_and_trailing_bytes_are_errors() {
    for r in common::transcript("tsm_like_v12_p256_pcidoe.vdm_plaintext.txt") {
        if !r.decode.contains("IDE_KM") {
            continue;
        }
        let m = &r.bytes[11..];
        let open_tail = r.decode.contains("QUERY_RESP");
        for n in 0..m.len() {
            // QUERY_RESP ends in a DWORD list: cuts at DWORD boundaries past the fixed part
            // are other valid responses.
            let dword_cut = open_tail && n >= 16 && (n - 16) % 4 == 0;
            assert_eq!(
                IdeKmMessage::parse(&m[..n]).is_ok(),
                dword_cut,
                "{} cut at {n}",
                r.decode
            );
        }
        let mut long = m.to_vec();
        long.push(0);
        assert!(IdeKmMessage::parse(&long).is_err(), "{}", r.decode);
    }
}

proptest! {
    #[test]
    fn ualink_round_trips_and_rejects_truncation(m in arb_ualink(), cut in any::<prop::sample::Index>()) {
        let b = m.encode();
        prop_assert_eq!(&UalinkKeyMessage::parse(&b).unwrap(), &m);
        prop_assert!(UalinkKeyMessage::parse(&b[..cut.index(b.len())]).is_err());
        let mut long = b.to_vec();
        long.push(0);
        prop_assert!(UalinkKeyMessage::parse(&long).is_err());
    }

    #[test]
    fn ide_km_round_trips(m in arb_ide(), cut in any::<prop::sample::Index>()) {
        let b = m.encode();
        prop_assert_eq!(&IdeKmMessage::parse(&b).unwrap(), &m);
        if !matches!(m, IdeKmMessage::QueryResp(_)) {
            prop_assert!(IdeKmMessage::parse(&b[..cut.index(b.len())]).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_are_scrubbed(body in prop::collection::vec(any::<u8>(), 0..60), obj in 0x7Eu8..0x8A) {
        let mut b = vec![0x00, obj];
        b.extend(&body);
        let _ = IdeKmMessage::parse(&body);
        let _ = UalinkKeyMessage::parse(&body);
        let mut dev = KeyProgResponder::new(MemoryKeySink::new(3, AccelId::new(1).unwrap(), 4));
        for in_session in [false, true] {
            let mut buf = b.clone();
            if let Ok(rsp) = dev.respond(&mut buf, in_session) {
                prop_assert!(in_session);
                let ack = UalinkKeyMessage::parse(&rsp).unwrap();
                prop_assert!(!ack.is_request());
            }
            prop_assert!(buf.iter().all(|x| *x == 0));
        }
    }
}
