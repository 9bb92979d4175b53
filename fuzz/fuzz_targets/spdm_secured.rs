//! DSP0277 secured messages: `SecuredSession::open` (and `open_during_key_update`) on
//! arbitrary records, on honest records, and on honest records with one byte flipped, between a
//! requester and a responder holding the same fixed secrets, with key updates and the
//! handshake→application switch interleaved. MCTP and PCI DOE parameters.
//!
//! Input: one config byte
//!   bit0 params (0 MCTP, 1 PCI DOE) | bit1 phase (0 handshake, 1 application) | bit2 hash
//!   (0 SHA-256, 1 SHA-384)
//! then ops until the input ends (`chunk` = u16 LE length ‖ bytes):
//!   0 chunk            arbitrary record → responder.open
//!   1 chunk flip pos16 requester seals chunk; flip≠0 xors record[pos % len]; responder opens
//!   2 chunk flip pos16 the same from responder to requester
//!   3 dir              both sides update_key(dir) (application phase only)
//!   4 dir              both sides confirm_key_update(dir)
//!   5 dir chunk        only the responder updates dir; the requester seals chunk; the responder
//!                      opens it with open_during_key_update (the peer did not switch)
//!   6                  both sides switch_to_application
//!   7 chunk            arbitrary record → requester.open
//!
//! Oracles: an open that fails for any reason but a foreign session ID terminates the session,
//! and a terminated session opens nothing; a flipped byte never opens; an honest record opens
//! to exactly what was sealed while both sides are in step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_fuzz::Cursor;
use ualink_spdm::algo::{AeadAlg, HashAlg, SpdmVersion};
use ualink_spdm::crypto::Rng;
use ualink_spdm::error::{Error, PeerMisbehaved};
use ualink_spdm::key_schedule::{HandshakeSecret, ScheduleParams};
use ualink_spdm::secured::{Direction, Role, SecuredParams, SecuredSession};

const SESSION_ID: u32 = 0xFFFE_0001;

fn check_open(s: &SecuredSession, was_live: bool, r: &Result<zeroize::Zeroizing<Vec<u8>>, Error>) {
    if !was_live {
        assert!(r.is_err(), "a terminated session opened a record");
    }
    if let Err(e) = r {
        if !matches!(e, Error::PeerMisbehaved(PeerMisbehaved::UnknownSession(_))) {
            assert!(
                s.is_terminated(),
                "open failed ({e:?}) but the session lives on"
            );
        }
    }
}

/// Seals `data` on `tx`, optionally flips a byte, opens on `rx`; returns whether both sides are
/// still in step.
fn exchange(
    tx: &mut SecuredSession,
    rx: &mut SecuredSession,
    rng: &Rng,
    c: &mut Cursor<'_>,
    in_step: bool,
) -> bool {
    let data = c.chunk().unwrap_or_default();
    let flip = c.u8().unwrap_or(0);
    let pos = usize::from(c.u16().unwrap_or(0));
    let Ok(mut rec) = tx.seal(data, rng) else {
        return false;
    };
    if flip != 0 {
        let i = pos % rec.len();
        rec[i] ^= flip;
    }
    let was_live = !rx.is_terminated();
    let r = rx.open(&rec);
    check_open(rx, was_live, &r);
    if flip != 0 {
        assert!(r.is_err(), "a record with a flipped byte opened");
        return false;
    }
    if in_step && was_live {
        match &r {
            Ok(pt) => assert!(
                pt.as_slice() == data,
                "opened plaintext differs from the sealed one"
            ),
            Err(e) => panic!("an honest record failed to open: {e:?}"),
        }
    }
    if let Ok(pt) = &r {
        assert!(
            pt.as_slice() == data,
            "opened plaintext differs from the sealed one"
        );
    }
    in_step && r.is_ok()
}

fn dir(b: u8) -> Direction {
    if b & 1 == 0 {
        Direction::Request
    } else {
        Direction::Response
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let Some(cfg) = c.u8() else { return };
    let params = if cfg & 1 == 0 {
        SecuredParams::MCTP
    } else {
        SecuredParams::PCI_DOE
    };
    let hash = if cfg & 4 == 0 {
        HashAlg::Sha256
    } else {
        HashAlg::Sha384
    };
    let sp = ScheduleParams {
        version: SpdmVersion::V12,
        hash,
        aead: AeadAlg::Aes256Gcm,
    };
    let hs = HandshakeSecret::new(sp, &[0x5A; 48]);
    let th1 = vec![0x11; hash.len()];
    let th2 = vec![0x22; hash.len()];
    let (Ok(hss), Ok(ms)) = (hs.handshake_secrets(&th1), hs.master_secret()) else {
        panic!("fuzz setup: key schedule failed")
    };
    let Ok(ds) = ms.data_secrets(&th2) else {
        panic!("fuzz setup: data secrets failed")
    };
    let application = cfg & 2 != 0;
    let make = |role| {
        if application {
            SecuredSession::new_application(SESSION_ID, role, params, &ds)
        } else {
            SecuredSession::new_handshake(SESSION_ID, role, params, &hss)
        }
    };
    let (Ok(mut req), Ok(mut rsp)) = (make(Role::Requester), make(Role::Responder)) else {
        panic!("fuzz setup: session creation failed")
    };
    let rng = Rng::new();
    let mut in_step = true;

    for _ in 0..32 {
        let Some(op) = c.u8() else { break };
        match op % 8 {
            0 | 7 => {
                let rec = c.chunk().unwrap_or_default();
                let s = if op % 8 == 0 { &mut rsp } else { &mut req };
                let was_live = !s.is_terminated();
                let r = s.open(rec);
                check_open(s, was_live, &r);
                if !matches!(
                    r,
                    Err(Error::PeerMisbehaved(PeerMisbehaved::UnknownSession(_)))
                ) {
                    in_step = false;
                }
            }
            1 => in_step = exchange(&mut req, &mut rsp, &rng, &mut c, in_step),
            2 => in_step = exchange(&mut rsp, &mut req, &rng, &mut c, in_step),
            3 => {
                let d = dir(c.u8().unwrap_or(0));
                let (a, b) = (req.update_key(d), rsp.update_key(d));
                in_step &= a.is_ok() == b.is_ok();
            }
            4 => {
                let d = dir(c.u8().unwrap_or(0));
                req.confirm_key_update(d);
                rsp.confirm_key_update(d);
            }
            5 => {
                let d = dir(c.u8().unwrap_or(0));
                let data = c.chunk().unwrap_or_default();
                let updated = rsp.update_key(d).is_ok();
                let Ok(rec) = req.seal(data, &rng) else {
                    in_step = false;
                    continue;
                };
                let was_live = !rsp.is_terminated();
                let r = rsp.open_during_key_update(&rec);
                check_open(&rsp, was_live, &r);
                if let Ok(pt) = &r {
                    assert!(
                        pt.as_slice() == data,
                        "opened plaintext differs from the sealed one"
                    );
                }
                if in_step && was_live && updated && d == Direction::Request {
                    // The requester did not switch: the previous key opens it and the update
                    // is reverted, leaving both sides in step.
                    assert!(
                        r.is_ok(),
                        "open_during_key_update refused the previous key: {r:?}"
                    );
                    assert!(
                        !rsp.key_update_pending(Direction::Request),
                        "update not reverted"
                    );
                } else {
                    in_step = false;
                }
            }
            _ => {
                let (a, b) = (
                    req.switch_to_application(&ds),
                    rsp.switch_to_application(&ds),
                );
                in_step &= a.is_ok() == b.is_ok();
            }
        }
    }
});
