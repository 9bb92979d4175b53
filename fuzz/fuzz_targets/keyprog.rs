//! IDE_KM and UALinkSec key programming: both codecs (round-trip), both device responders
//! (`IdeKmResponder`, `KeyProgResponder` over `MemoryKeySink`) fed sequences of arbitrary and
//! harness-built requests, and the TSM-side acknowledgement checkers (`expect_*`).
//!
//! Input: ops until the input ends (`chunk` = u16 LE length ‖ bytes):
//!   0 s chunk            raw payload (from ProtocolID) to both responders; s bit0: in session
//!   1 t e32 k            UALinkSec KEY_PROG for target t (epoch e32 LE, key bytes all k)
//!   2 t                  K_SET_GO;  3 t: K_SET_STOP;  4 t e32: KEY_ROLL;  5 p: QUERY port p
//!   6 chunk              a response payload to every `expect_*` checker
//! Target byte t: bits 1:0 port, bit2 direction, bit3 slot, bits 7:4 peer accelerator.
//!
//! Oracles: every request buffer is zeroed after the call (it may hold a key), in every case;
//! nothing is accepted outside a session; every acknowledgement parses as a response of the
//! same family; parse→encode gives back the input bytes.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::{roundtrip, Cursor};
use ualink_spdm::keyprog::*;

#[derive(Default)]
struct IdeSink {
    slots: BTreeMap<(u8, u8), bool>,
}

impl IdeKmSink for IdeSink {
    fn query(&self, port_index: u8) -> Result<IdeKmQueryResp, KeyProgStatus> {
        if port_index > 1 {
            return Err(KeyProgStatus::UnsupportedPortIndex);
        }
        Ok(IdeKmQueryResp {
            port_index,
            dev_func_num: 0,
            bus_num: 1,
            segment: 0,
            max_port_index: 1,
            ide_cap: 0x1234_5678,
            ide_ctrl: 0,
            register_blocks: vec![0; usize::from(port_index) * 3],
        })
    }
    fn program(
        &mut self,
        slot: IdeKeySlot,
        _key: IdeKey,
        _ifv: [u8; IFV_LEN],
    ) -> Result<(), KeyProgStatus> {
        self.slots
            .insert((slot.stream_id, slot.key_sub_stream.to_wire()), false);
        Ok(())
    }
    fn go(&mut self, slot: IdeKeySlot) -> Result<(), KeyProgStatus> {
        match self
            .slots
            .get_mut(&(slot.stream_id, slot.key_sub_stream.to_wire()))
        {
            Some(live) => {
                *live = true;
                Ok(())
            }
            None => Err(KeyProgStatus::SlotEmpty),
        }
    }
    fn stop(&mut self, slot: IdeKeySlot) -> Result<(), KeyProgStatus> {
        self.slots
            .remove(&(slot.stream_id, slot.key_sub_stream.to_wire()));
        Ok(())
    }
}

fn target(t: u8) -> Option<KeyTarget> {
    Some(KeyTarget {
        port: t & 3,
        direction: if t & 4 == 0 {
            Direction::Rx
        } else {
            Direction::Tx
        },
        slot: if t & 8 == 0 {
            Slot::Active
        } else {
            Slot::Alternate
        },
        peer: AccelId::new(u16::from(t >> 4)).ok()?,
    })
}

fn codecs(m: &[u8]) {
    let enc = |z: zeroize::Zeroizing<Vec<u8>>| Ok::<_, ()>(z.to_vec());
    roundtrip("IdeKmMessage", m, IdeKmMessage::parse, |x| enc(x.encode()));
    roundtrip("UalinkKeyMessage", m, UalinkKeyMessage::parse, |x| {
        enc(x.encode())
    });
}

fn check_acks(rsp: &[u8], t: KeyTarget, epoch: u32) {
    let _ = expect_kp_ack(rsp, t, epoch);
    let _ = expect_gostop_ack(rsp, t);
    let _ = expect_roll_ack(rsp, t.pair(), epoch);
    let _ = expect_query_resp(rsp, t.port);
    let slot = IdeKeySlot {
        stream_id: 0,
        key_sub_stream: KeySubStream {
            sub_stream: SubStream::Posted,
            direction: Direction::Rx,
            key_set_k1: false,
        },
        port_index: 0,
    };
    let _ = expect_ide_kp_ack(rsp, slot);
    let _ = expect_ide_gostop_ack(rsp, slot);
}

fuzz_target!(|data: &[u8]| {
    let Ok(local) = AccelId::new(7) else { return };
    let mut ua = KeyProgResponder::new(MemoryKeySink::new(3, local, 4));
    let mut ide = IdeKmResponder::new(IdeSink::default());
    let mut c = Cursor::new(data);
    for _ in 0..48 {
        let Some(op) = c.u8() else { break };
        let (mut req, in_session) = match op % 7 {
            0 => {
                let s = c.u8().unwrap_or(0) & 1 != 0;
                (c.chunk().unwrap_or_default().to_vec(), s)
            }
            6 => {
                let m = c.chunk().unwrap_or_default();
                codecs(m);
                if let Some(t) = target(m.first().copied().unwrap_or(0)) {
                    check_acks(m, t, 1);
                }
                continue;
            }
            k => {
                let Some(t) = target(c.u8().unwrap_or(0)) else {
                    continue;
                };
                let r = match k {
                    1 => {
                        let e =
                            u32::from(c.u16().unwrap_or(1)) | u32::from(c.u16().unwrap_or(0)) << 16;
                        let mut kb = [c.u8().unwrap_or(0x42); KEY_LEN];
                        ualink_key_prog(t, e, &MasterKey::from_bytes(&mut kb)).to_vec()
                    }
                    2 => ualink_go(t),
                    3 => ualink_stop(t),
                    4 => ualink_roll(t.pair(), u32::from(c.u16().unwrap_or(0))),
                    _ => ualink_query(t.port),
                };
                (r, true)
            }
        };
        codecs(&req);
        let fam = family(&req);
        let sid = in_session.then_some(1);
        let mut copy = req.clone();
        let a = ua.respond_in_session(&mut req, sid);
        let b = ide.respond_in_session(&mut copy, sid);
        assert!(
            req.iter().all(|b| *b == 0),
            "UALinkSec responder left request bytes behind"
        );
        assert!(
            copy.iter().all(|b| *b == 0),
            "IDE_KM responder left request bytes behind"
        );
        if !in_session {
            assert!(
                a.is_err() && b.is_err(),
                "key programming accepted outside a session"
            );
        }
        if let Ok(rsp) = &a {
            assert!(
                fam == Some(KeyProgFamily::UalinkSec),
                "UALinkSec responder answered {fam:?}"
            );
            let m = UalinkKeyMessage::parse(rsp)
                .unwrap_or_else(|e| panic!("UALinkSec ack does not parse: {e:?}"));
            assert!(
                !m.is_request(),
                "UALinkSec responder answered with a request"
            );
            codecs(rsp);
        }
        if let Ok(rsp) = &b {
            assert!(
                fam == Some(KeyProgFamily::IdeKm),
                "IDE_KM responder answered {fam:?}"
            );
            IdeKmMessage::parse(rsp)
                .unwrap_or_else(|e| panic!("IDE_KM response does not parse: {e:?}"));
            codecs(rsp);
        }
    }
});
