//! Known answers for the key schedule: every secret, finished key, AEAD key and IV that
//! libspdm printed in the captured sessions (tests/data/*.req.log) is reproduced from the
//! logged inputs alone (the DHE secret or PSK, Hash(TH1), Hash(TH2) and the key-update points).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod secured_logparse;

use std::collections::HashMap;

use secured_logparse::Event;
use ualink_spdm::algo::{AeadAlg, HashAlg, SpdmVersion};
use ualink_spdm::key_schedule::{
    bin_concat, DataSecrets, HandshakeSecret, ScheduleParams, TrafficSecret,
};

struct Sess {
    hs: HandshakeSecret,
    psk: bool,
    data: Option<DataSecrets>,
}

type Values = Vec<(String, Vec<u8>)>;

fn push(out: &mut Values, name: &str, bytes: &[u8]) {
    out.push((name.to_string(), bytes.to_vec()));
}

fn push_key_iv(out: &mut Values, s: &TrafficSecret) {
    let kiv = s.aead_key_iv().unwrap();
    push(out, "key", kiv.key.expose());
    push(out, "iv", &kiv.iv[..]);
}

/// Replays the log's inputs through our key schedule, emitting values in the order libspdm
/// prints them. Returns (ours, logged, number of sessions).
fn replay(log: &str, params: ScheduleParams) -> (Values, Values, usize) {
    let events = secured_logparse::parse(log);
    let logged: Values = events
        .iter()
        .filter_map(|e| match e {
            Event::Value { name, bytes } => Some((name.clone(), bytes.clone())),
            _ => None,
        })
        .collect();

    let mut ours = Vec::new();
    let mut sessions: HashMap<u32, Sess> = HashMap::new();
    let mut current_sid = None;
    let mut th1: Option<Vec<u8>> = None;
    let mut started = 0;
    for e in &events {
        match e {
            Event::HandshakeStart(sid) | Event::DataStart(sid) => current_sid = Some(*sid),
            Event::Th1(h) => th1 = Some(h.clone()),
            Event::Dhe(ikm) | Event::Psk(ikm) => {
                let psk = matches!(e, Event::Psk(_));
                let hs = HandshakeSecret::new(params, ikm);
                let th1 = th1.take().expect("th1 before the secret");
                let hss = hs.handshake_secrets(&th1).unwrap();
                if !psk {
                    push(&mut ours, "handshake_secret", hs.secret().expose());
                    push(
                        &mut ours,
                        "request_handshake_secret",
                        hss.request.secret().expose(),
                    );
                    push(
                        &mut ours,
                        "response_handshake_secret",
                        hss.response.secret().expose(),
                    );
                }
                push(
                    &mut ours,
                    "finished_key",
                    hss.request.finished_key().unwrap().secret().expose(),
                );
                push(
                    &mut ours,
                    "finished_key",
                    hss.response.finished_key().unwrap().secret().expose(),
                );
                push_key_iv(&mut ours, &hss.request);
                push_key_iv(&mut ours, &hss.response);
                sessions.insert(
                    current_sid.unwrap(),
                    Sess {
                        hs,
                        psk,
                        data: None,
                    },
                );
                started += 1;
            }
            Event::Th2(th2) => {
                let s = sessions.get_mut(&current_sid.unwrap()).unwrap();
                let ms = s.hs.master_secret().unwrap();
                let data = ms.data_secrets(th2).unwrap();
                if !s.psk {
                    push(&mut ours, "master_secret", ms.secret().expose());
                    push(
                        &mut ours,
                        "request_data_secret",
                        data.request.secret().expose(),
                    );
                    push(
                        &mut ours,
                        "response_data_secret",
                        data.response.secret().expose(),
                    );
                    push(
                        &mut ours,
                        "export_master_secret",
                        ms.export_master_secret(th2).unwrap().expose(),
                    );
                }
                push_key_iv(&mut ours, &data.request);
                push_key_iv(&mut ours, &data.response);
                s.data = Some(data);
            }
            Event::CreateUpdate { sid, requester } => {
                let data = sessions.get_mut(sid).unwrap().data.as_mut().unwrap();
                let (slot, name) = if *requester {
                    (&mut data.request, "RequestDataSecretUpdate")
                } else {
                    (&mut data.response, "ResponseDataSecretUpdate")
                };
                *slot = slot.update().unwrap();
                push(&mut ours, name, slot.secret().expose());
                push_key_iv(&mut ours, slot);
            }
            _ => {}
        }
    }
    (ours, logged, started)
}

fn assert_replay(log: &str, params: ScheduleParams, sessions: usize, min_values: usize) {
    let (ours, logged, started) = replay(log, params);
    assert_eq!(started, sessions, "{log}: sessions found");
    assert!(
        logged.len() >= min_values,
        "{log}: only {} logged values",
        logged.len()
    );
    assert_eq!(ours.len(), logged.len(), "{log}: number of derived values");
    for (i, (o, l)) in ours.iter().zip(&logged).enumerate() {
        assert_eq!(o.0, l.0, "{log}: value #{i} name");
        assert_eq!(
            hex::encode(&o.1),
            hex::encode(&l.1),
            "{log}: value #{i} ({})",
            l.0
        );
    }
}

#[test]
fn v13_p384_every_logged_secret_key_and_iv() {
    let params = ScheduleParams {
        version: SpdmVersion::V13,
        hash: HashAlg::Sha384,
        aead: AeadAlg::Aes256Gcm,
    };
    // Two DHE sessions, each: 3 handshake secrets, 2 finished keys, 4 key/iv, master, 2 data,
    // export, 4 key/iv, 2 updates each with key/iv = 23 values.
    assert_replay("v13_p384_session.req.log", params, 2, 46);
}

#[test]
fn v12_p256_pcidoe_every_logged_secret_key_and_iv_including_psk_session() {
    let params = ScheduleParams {
        version: SpdmVersion::V12,
        hash: HashAlg::Sha256,
        aead: AeadAlg::Aes256Gcm,
    };
    // Two DHE sessions (23 values each) and one PSK session (6 handshake + 4 data values).
    assert_replay("tsm_like_v12_p256_pcidoe.req.log", params, 3, 56);
}

#[test]
fn bin_concat_matches_logged_bin_strs() {
    // bin_str5/6/7/9 as printed in v13_p384_session.req.log and the 1.2 log.
    assert_eq!(
        hex::encode(bin_concat(SpdmVersion::V13, 0x30, "finished", &[])),
        "30007370646d312e332066696e6973686564"
    );
    assert_eq!(
        hex::encode(bin_concat(SpdmVersion::V13, 0x20, "key", &[])),
        "20007370646d312e33206b6579"
    );
    assert_eq!(
        hex::encode(bin_concat(SpdmVersion::V12, 0x0c, "iv", &[])),
        "0c007370646d312e32206976"
    );
    assert_eq!(
        hex::encode(bin_concat(SpdmVersion::V13, 0x30, "traffic upd", &[])),
        "30007370646d312e33207472616666696320757064"
    );
    let th = [0xabu8; 48];
    let b = bin_concat(SpdmVersion::V12, 48, "req hs data", &th);
    assert_eq!(&b[..2], &[48, 0]);
    assert_eq!(&b[2..10], b"spdm1.2 ");
    assert_eq!(&b[10..21], b"req hs data");
    assert_eq!(&b[21..], &th[..]);
}

#[test]
fn transcript_hash_of_wrong_length_is_refused() {
    let params = ScheduleParams {
        version: SpdmVersion::V12,
        hash: HashAlg::Sha256,
        aead: AeadAlg::Aes256Gcm,
    };
    let hs = HandshakeSecret::new(params, &[1u8; 32]);
    assert!(hs.handshake_secrets(&[0u8; 48]).is_err());
    assert!(hs.handshake_secrets(&[0u8; 32]).is_ok());
    let ms = hs.master_secret().unwrap();
    assert!(ms.data_secrets(&[0u8; 31]).is_err());
}

#[test]
fn debug_output_redacts_every_secret() {
    let params = ScheduleParams {
        version: SpdmVersion::V13,
        hash: HashAlg::Sha384,
        aead: AeadAlg::Aes256Gcm,
    };
    let hs = HandshakeSecret::new(params, &[7u8; 48]);
    let hss = hs.handshake_secrets(&[9u8; 48]).unwrap();
    let fk = hss.request.finished_key().unwrap();
    let kiv = hss.request.aead_key_iv().unwrap();
    let secret_hex = hex::encode(hs.secret().expose());
    for dbg in [
        format!("{hs:?}"),
        format!("{hss:?}"),
        format!("{fk:?}"),
        format!("{kiv:?}"),
        format!("{:?}", hs.master_secret().unwrap()),
    ] {
        assert!(dbg.contains("redacted"), "{dbg}");
        assert!(!dbg.contains(&secret_hex[..16]), "{dbg}");
        // No run of 8+ hex-looking bytes from any secret.
        assert!(!dbg.contains(&hex::encode(&kiv.key.expose()[..8])), "{dbg}");
        assert!(!dbg.contains(&hex::encode(&kiv.iv[..8])), "{dbg}");
    }
}

#[test]
fn verify_data_is_hmac_over_the_transcript_hash_and_checked() {
    let params = ScheduleParams {
        version: SpdmVersion::V12,
        hash: HashAlg::Sha256,
        aead: AeadAlg::Aes256Gcm,
    };
    let hs = HandshakeSecret::new(params, &[3u8; 32]);
    let hss = hs.handshake_secrets(&[4u8; 32]).unwrap();
    let fk = hss.response.finished_key().unwrap();
    let th_hash = ualink_spdm::crypto::hash(HashAlg::Sha256, b"transcript");
    let vd = ualink_spdm::key_schedule::verify_data(&fk, th_hash.as_ref());
    let expect = ualink_spdm::crypto::hmac(HashAlg::Sha256, fk.secret().expose(), th_hash.as_ref());
    assert_eq!(vd, expect.expose());
    fk.check(th_hash.as_ref(), &vd, "FINISH_RSP").unwrap();
    let mut bad = vd.clone();
    bad[31] ^= 1;
    assert!(fk.check(th_hash.as_ref(), &bad, "FINISH_RSP").is_err());
    assert!(fk.check(th_hash.as_ref(), &vd[..31], "FINISH_RSP").is_err());
    // The other direction's finished key gives a different value.
    let other = hss.request.finished_key().unwrap();
    assert!(other.check(th_hash.as_ref(), &vd, "FINISH").is_err());
}

/// VerifyData over real bytes (first session of the PCI DOE capture, encrypted handshake):
/// TH = VCA ‖ Hash(slot-0 chain) ‖ KEY_EXCHANGE ‖ KEY_EXCHANGE_RSP; ResponderVerifyData =
/// HMAC(rsp finished_key, Hash(TH up to the signature)); RequesterVerifyData =
/// HMAC(req finished_key, Hash(TH ‖ FINISH header)). Both must equal the bytes on the wire,
/// which proves the HMAC is over the transcript hash (libspdm #1136), not the transcript.
#[test]
fn v12_verify_data_over_the_captured_transcript() {
    use ualink_spdm::crypto::{hash, HashCtx};
    let params = ScheduleParams {
        version: SpdmVersion::V12,
        hash: HashAlg::Sha256,
        aead: AeadAlg::Aes256Gcm,
    };
    let events = secured_logparse::parse("tsm_like_v12_p256_pcidoe.req.log");
    let msgs: Vec<(bool, u32, Vec<u8>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Message { send, sid, bytes } => Some((*send, *sid, bytes.clone())),
            _ => None,
        })
        .collect();
    let vca: Vec<u8> = msgs[..6].iter().flat_map(|m| m.2.clone()).collect();
    assert_eq!(vca[1], 0x84);
    assert_eq!(msgs[5].2[1], 0x63);
    let cert = msgs.iter().find(|m| m.2[1] == 0x02 && m.2[2] == 0).unwrap();
    let portion = u16::from_le_bytes([cert.2[4], cert.2[5]]) as usize;
    let chain = &cert.2[8..8 + portion];
    let ke = &msgs.iter().find(|m| m.2[1] == 0xe4).unwrap().2;
    let ke_rsp_padded = &msgs.iter().find(|m| m.2[1] == 0x64).unwrap().2;
    let finish = &msgs.iter().find(|m| m.2[1] == 0xe5).unwrap().2;
    // KEY_EXCHANGE_RSP without DOE padding: fixed fields, ExchangeData 64, MeasSummary 32,
    // OpaqueLen, opaque, signature 64, ResponderVerifyData 32.
    let opaque_at = 4 + 2 + 1 + 1 + 32 + 64 + 32;
    let opaque_len = u16::from_le_bytes([ke_rsp_padded[opaque_at], ke_rsp_padded[opaque_at + 1]]);
    let ke_rsp_len = opaque_at + 2 + usize::from(opaque_len) + 64 + 32;
    let ke_rsp = &ke_rsp_padded[..ke_rsp_len];
    let (signed_part, vd_rsp) = ke_rsp.split_at(ke_rsp_len - 32);
    let (before_sig, _sig) = signed_part.split_at(signed_part.len() - 64);

    let mut th = HashCtx::new(HashAlg::Sha256);
    th.update(&vca);
    th.update(hash(HashAlg::Sha256, chain).as_bytes());
    th.update(ke);
    th.update(before_sig);
    // The hash libspdm signed (th_curr before the signature) is reproduced first.
    let logged_th_curr = events
        .iter()
        .find_map(|e| match e {
            Event::Hash { name, bytes } if name == "th_curr hash" => Some(bytes.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(hex::encode(th.current()), hex::encode(&logged_th_curr));
    th.update(_sig);

    let dhe = events.iter().find_map(|e| match e {
        Event::Dhe(s) => Some(s.clone()),
        _ => None,
    });
    let th1 = events.iter().find_map(|e| match e {
        Event::Th1(s) => Some(s.clone()),
        _ => None,
    });
    let hs = HandshakeSecret::new(params, &dhe.unwrap());
    let hss = hs.handshake_secrets(&th1.unwrap()).unwrap();
    let rsp_fk = hss.response.finished_key().unwrap();
    let req_fk = hss.request.finished_key().unwrap();

    // TH1 (the key-schedule input) is the transcript through the signature, without the
    // ResponderVerifyData that its finished key authenticates.
    assert_eq!(hex::encode(th.current()), hex::encode(hs_th1(&events)));

    let vd = ualink_spdm::key_schedule::verify_data(&rsp_fk, th.current().as_ref());
    assert_eq!(hex::encode(&vd), hex::encode(vd_rsp));
    rsp_fk
        .check(th.current().as_ref(), vd_rsp, "KEY_EXCHANGE_RSP")
        .unwrap();
    // HMAC over the raw transcript instead of its hash would not match.
    assert_ne!(
        ualink_spdm::crypto::hmac(HashAlg::Sha256, rsp_fk.secret().expose(), &vca).expose(),
        vd_rsp
    );
    th.update(vd_rsp);

    // FINISH (no signature): RequesterVerifyData over TH ‖ FINISH header.
    assert_eq!(finish.len(), 4 + 32);
    th.update(&finish[..4]);
    req_fk
        .check(th.current().as_ref(), &finish[4..], "FINISH")
        .unwrap();

    // TH2 = everything through FINISH_RSP (here 4 bytes: its verify data travels only when the
    // handshake is in the clear).
    let finish_rsp = &msgs.iter().find(|m| m.2[1] == 0x65).unwrap().2;
    assert_eq!(finish_rsp.len(), 4);
    th.update(&finish[4..]);
    th.update(finish_rsp);
    let th2 = events
        .iter()
        .find_map(|e| match e {
            Event::Th2(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(hex::encode(th.current()), hex::encode(th2));
}

fn hs_th1(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .find_map(|e| match e {
            Event::Th1(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap()
}
