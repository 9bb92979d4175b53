//! Known answers for the DSP0277 record layer: every SECURED record of both captured sessions
//! (MCTP with 2-byte sequence numbers and the inner 0x05 type byte; PCI DOE with no sequence
//! number and DWORD padding) decrypts, with keys derived only from the logged DHE secret/PSK
//! and transcript hashes, to exactly the message libspdm logged — across handshake keys, data
//! keys, key updates and two interleaved sessions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod secured_logparse;

use std::collections::HashMap;

use secured_logparse::Event;
use ualink_spdm::algo::{AeadAlg, HashAlg, SpdmVersion};
use ualink_spdm::key_schedule::{HandshakeSecret, ScheduleParams};
use ualink_spdm::secured::{
    peek_session_id, Direction, Phase, Role, SecuredParams, SecuredSession,
};

/// Both ends of one captured session: `req` opens responses, `rsp` opens requests.
struct Pair {
    hs: HandshakeSecret,
    req: Option<SecuredSession>,
    rsp: Option<SecuredSession>,
}

struct Outcome {
    records: usize,
    per_session: HashMap<u32, usize>,
}

fn replay(
    log: &str,
    transcript: &str,
    params: ScheduleParams,
    rec: SecuredParams,
    mctp: bool,
) -> Outcome {
    let events = secured_logparse::parse(log);
    let records: Vec<_> = common::transcript(transcript)
        .into_iter()
        .filter(|r| r.is_secured())
        .collect();
    let mut next_record = records.iter();
    let mut pairs: HashMap<u32, Pair> = HashMap::new();
    let mut current_sid = None;
    let mut th1 = None;
    let mut per_session: HashMap<u32, usize> = HashMap::new();
    let mut count = 0;

    for e in &events {
        match e {
            Event::HandshakeStart(sid) | Event::DataStart(sid) => current_sid = Some(*sid),
            Event::Th1(h) => th1 = Some(h.clone()),
            Event::Dhe(ikm) | Event::Psk(ikm) => {
                let sid = current_sid.unwrap();
                let hs = HandshakeSecret::new(params, ikm);
                let hss = hs.handshake_secrets(th1.as_ref().unwrap()).unwrap();
                pairs.insert(
                    sid,
                    Pair {
                        req: Some(
                            SecuredSession::new_handshake(sid, Role::Requester, rec, &hss).unwrap(),
                        ),
                        rsp: Some(
                            SecuredSession::new_handshake(sid, Role::Responder, rec, &hss).unwrap(),
                        ),
                        hs,
                    },
                );
            }
            Event::Th2(th2) => {
                let p = pairs.get_mut(&current_sid.unwrap()).unwrap();
                let data = p.hs.master_secret().unwrap().data_secrets(th2).unwrap();
                for s in [p.req.as_mut().unwrap(), p.rsp.as_mut().unwrap()] {
                    assert_eq!(s.phase(), Phase::Handshake);
                    s.switch_to_application(&data).unwrap();
                    assert_eq!((s.tx_sequence(), s.rx_sequence()), (0, 0));
                }
            }
            Event::CreateUpdate { sid, requester } => {
                let p = pairs.get_mut(sid).unwrap();
                let dir = if *requester {
                    Direction::Request
                } else {
                    Direction::Response
                };
                for s in [p.req.as_mut().unwrap(), p.rsp.as_mut().unwrap()] {
                    s.update_key(dir).unwrap();
                    assert!(s.key_update_pending(dir));
                }
            }
            Event::Message { send, sid, bytes } if *sid != 0 => {
                let record = next_record
                    .next()
                    .expect("a SECURED record for every in-session message");
                assert_eq!(
                    peek_session_id(&record.bytes).unwrap(),
                    *sid,
                    "record #{}",
                    record.index
                );
                let p = pairs.get_mut(sid).unwrap();
                let opener = if *send {
                    p.rsp.as_mut().unwrap()
                } else {
                    p.req.as_mut().unwrap()
                };
                let pt = opener.open(&record.bytes).unwrap_or_else(|e| {
                    panic!("record #{} ({}): {e}", record.index, record.decode)
                });
                let msg: &[u8] = if mctp {
                    assert_eq!(pt[0], 0x05, "record #{}: inner MCTP type", record.index);
                    &pt[1..]
                } else {
                    &pt[..]
                };
                assert_eq!(
                    hex::encode(msg),
                    hex::encode(bytes),
                    "record #{} plaintext",
                    record.index
                );
                *per_session.entry(*sid).or_default() += 1;
                count += 1;
            }
            _ => {}
        }
    }
    assert!(
        next_record.next().is_none(),
        "every SECURED record was accounted for"
    );
    Outcome {
        records: count,
        per_session,
    }
}

#[test]
fn v13_p384_mctp_every_secured_record_decrypts_to_the_logged_message() {
    let params = ScheduleParams {
        version: SpdmVersion::V13,
        hash: HashAlg::Sha384,
        aead: AeadAlg::Aes256Gcm,
    };
    let out = replay(
        "v13_p384_session.req.log",
        "v13_p384_session.transcript.full.txt",
        params,
        SecuredParams::MCTP,
        true,
    );
    // Two sessions of 10 records: heartbeat, UpdateAllKeys, VerifyNewKey, measurements, end.
    assert_eq!(out.records, 20);
    assert_eq!(out.per_session[&0xffff_ffff], 20);
}

#[test]
fn v12_p256_pcidoe_every_secured_record_decrypts_to_the_logged_message() {
    let params = ScheduleParams {
        version: SpdmVersion::V12,
        hash: HashAlg::Sha256,
        aead: AeadAlg::Aes256Gcm,
    };
    let out = replay(
        "tsm_like_v12_p256_pcidoe.req.log",
        "tsm_like_v12_p256_pcidoe.transcript.full.txt",
        params,
        SecuredParams::PCI_DOE,
        false,
    );
    // Encrypted FINISH/FINISH_RSP, IDE_KM, TDISP, heartbeat, key update, measurements and
    // END_SESSION in two DHE sessions, with a PSK session (0xfffefffe) interleaved.
    assert_eq!(out.records, 216);
    assert_eq!(out.per_session[&0xfffe_fffe], 18);
}
