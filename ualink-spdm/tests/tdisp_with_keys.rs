//! A UALink device as the engine will assemble it: the TDISP responder's device owns the
//! key-programming responder, so LOCK sees exactly the keys programmed over UALinkSec KEY_PROG.
//! LOCK is refused until a key pair is live; revoking the keys breaks the lock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_spdm::keyprog::{
    expect_gostop_ack, expect_kp_ack, ualink_go, ualink_key_prog, ualink_stop, AccelId, Direction,
    KeyPair, KeyProgResponder, KeySink, MasterKey, MemoryKeySink, Slot,
};
use ualink_spdm::tdisp::msg::{
    DeviceCapabilities, InterfaceId, InterfaceReport, LockInterfaceParams, TdispErrorCode,
};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::responder::{DeviceEvent, TdispDevice, TdispResponder};
use ualink_spdm::tdisp::state::{EntropyUnavailable, NonceSource};
use ualink_spdm::tdisp::{TdiState, TdispError};
use ualink_spdm::Error;

struct Accelerator {
    keys: KeyProgResponder<MemoryKeySink>,
    /// The link pair this TDI's traffic uses.
    link: KeyPair,
}

impl TdispDevice for Accelerator {
    fn interfaces(&self) -> Vec<InterfaceId> {
        vec![InterfaceId::new(0x10).unwrap()]
    }
    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities::default()
    }
    fn keys_live(&self, _id: InterfaceId) -> bool {
        let rx = KeyPair {
            direction: Direction::Rx,
            ..self.link
        };
        self.keys.sink().is_live(self.link) && self.keys.sink().is_live(rx)
    }
    fn keys_live_in_session(&self, id: InterfaceId, session_id: u32) -> bool {
        let rx = KeyPair {
            direction: Direction::Rx,
            ..self.link
        };
        self.keys_live(id)
            && [self.link, rx]
                .iter()
                .all(|p| self.keys.sink().programmed_in(*p) == Some(session_id))
    }
    fn interface_report(
        &self,
        _id: InterfaceId,
        _lock: &LockInterfaceParams,
    ) -> Result<Vec<u8>, TdispError> {
        Ok(InterfaceReport::default().encode().unwrap())
    }
}

struct Rng(u8);

impl NonceSource for Rng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        self.0 = self.0.wrapping_add(1);
        dest.fill(self.0);
        Ok(())
    }
}

fn keys(dev: &mut TdispResponder<Accelerator, Rng>, req: &[u8]) -> Vec<u8> {
    let mut b = req.to_vec();
    dev.device_mut().keys.respond(&mut b, true).unwrap()
}

#[test]
fn lock_waits_for_live_link_keys_and_key_revocation_breaks_it() {
    let tx = KeyPair {
        port: 0,
        direction: Direction::Tx,
        peer: AccelId::new(2).unwrap(),
    };
    let rx = KeyPair {
        direction: Direction::Rx,
        ..tx
    };
    let mut dev = TdispResponder::new(
        Accelerator {
            keys: KeyProgResponder::new(MemoryKeySink::new(0, AccelId::new(1).unwrap(), 8)),
            link: tx,
        },
        Rng(0),
    );
    let id = InterfaceId::new(0x10).unwrap();
    let tsm = TdispRequester::new(id);
    let refused = |dev: &mut TdispResponder<Accelerator, Rng>| {
        let e = tsm
            .parse_lock_interface(&dev.respond(&tsm.lock_interface(&Default::default()), true))
            .unwrap_err();
        assert!(matches!(
            e,
            Error::Tdisp(TdispError::Peer {
                code: TdispErrorCode::InvalidRequest,
                ..
            })
        ));
    };
    refused(&mut dev);
    // Program both directions; RX GO first, then TX.
    let k = MasterKey::from_bytes(&mut [0x5C; 32]);
    for p in [rx, tx] {
        let t = p.slot(Slot::Active);
        expect_kp_ack(&keys(&mut dev, &ualink_key_prog(t, 1, &k)), t, 1).unwrap();
    }
    refused(&mut dev); // programmed, not yet GO
    let t = rx.slot(Slot::Active);
    expect_gostop_ack(&keys(&mut dev, &ualink_go(t)), t).unwrap();
    refused(&mut dev); // RX only
    let t = tx.slot(Slot::Active);
    expect_gostop_ack(&keys(&mut dev, &ualink_go(t)), t).unwrap();
    let nonce = tsm
        .parse_lock_interface(&dev.respond(&tsm.lock_interface(&Default::default()), true))
        .unwrap();
    tsm.parse_start_interface(&dev.respond(&tsm.start_interface(&nonce), true))
        .unwrap();
    assert_eq!(dev.state(id), Some(TdiState::Run));
    // The TSM stops the TX key: the device reports the revocation and the TDI goes to ERROR.
    expect_gostop_ack(&keys(&mut dev, &ualink_stop(t)), t).unwrap();
    assert!(!dev.device().keys.sink().is_live(tx));
    assert_eq!(
        dev.notify(id, DeviceEvent::KeysRevoked),
        Ok(TdiState::Error)
    );
    assert_eq!(
        tsm.parse_state(&dev.respond(&tsm.get_state(), true))
            .unwrap(),
        TdiState::Error
    );
}

#[test]
fn lock_requires_keys_programmed_over_the_locking_session() {
    let tx = KeyPair {
        port: 0,
        direction: Direction::Tx,
        peer: AccelId::new(2).unwrap(),
    };
    let rx = KeyPair {
        direction: Direction::Rx,
        ..tx
    };
    let mut dev = TdispResponder::new(
        Accelerator {
            keys: KeyProgResponder::new(MemoryKeySink::new(0, AccelId::new(1).unwrap(), 8)),
            link: tx,
        },
        Rng(0),
    );
    let id = InterfaceId::new(0x10).unwrap();
    let tsm = TdispRequester::new(id);
    let k = MasterKey::from_bytes(&mut [0x77; 32]);
    // Keys arrive in session 0xA.
    for p in [rx, tx] {
        let t = p.slot(Slot::Active);
        let mut b = ualink_key_prog(t, 1, &k).to_vec();
        let ack = dev
            .device_mut()
            .keys
            .respond_in_session(&mut b, Some(0xA))
            .unwrap();
        expect_kp_ack(&ack, t, 1).unwrap();
        let mut b = ualink_go(t);
        let ack = dev
            .device_mut()
            .keys
            .respond_in_session(&mut b, Some(0xA))
            .unwrap();
        expect_gostop_ack(&ack, t).unwrap();
    }
    assert_eq!(dev.device().keys.sink().programmed_in(tx), Some(0xA));
    // LOCK over session 0xB: refused (INVALID_REQUEST, Table 11-12).
    let e = tsm
        .parse_lock_interface(
            &dev.respond_in_session(&tsm.lock_interface(&Default::default()), Some(0xB)),
        )
        .unwrap_err();
    assert!(matches!(
        e,
        Error::Tdisp(TdispError::Peer {
            code: TdispErrorCode::InvalidRequest,
            ..
        })
    ));
    assert_eq!(dev.state(id), Some(TdiState::ConfigUnlocked));
    // In clear: refused before anything else.
    let rsp = dev.respond_in_session(&tsm.lock_interface(&Default::default()), None);
    assert!(tsm.parse_lock_interface(&rsp).is_err());
    // Over session 0xA: accepted.
    tsm.parse_lock_interface(
        &dev.respond_in_session(&tsm.lock_interface(&Default::default()), Some(0xA)),
    )
    .unwrap();
    assert_eq!(dev.state(id), Some(TdiState::ConfigLocked));
    // Key programming in clear through the session-aware entry point is refused too.
    let mut b = ualink_key_prog(tx.slot(Slot::Alternate), 2, &k).to_vec();
    assert!(dev
        .device_mut()
        .keys
        .respond_in_session(&mut b, None)
        .is_err());
}
