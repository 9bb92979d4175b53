//! Known answers: the captured libspdm sessions, fed through our transcript rules, give
//! transcripts whose hashes the captured CHALLENGE_AUTH, MEASUREMENTS and KEY_EXCHANGE_RSP
//! signatures verify over (with the captured chains), and whose TH equals the th1 (and th2)
//! libspdm logged. Only the requester's view is used: exactly what `Requester` does with each pair.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::collections::BTreeMap;

use ualink_spdm::cert_chain::{ChainVerifier, SpdmCertChain, TrustAnchors, VerifyTime};
use ualink_spdm::crypto;
use ualink_spdm::msg::{
    Algorithms, Capabilities, Certificate, Challenge, ChallengeAuth, GetCapabilities,
    GetCertificate, GetMeasurements, KeyExchange, KeyExchangeRsp, MeasurementSummaryType,
    Measurements, MsgContext, RequestResponseCode, SpdmRequest, SpdmResponse,
};
use ualink_spdm::transcript::{Transcripts, Vca};

/// Inside every sample certificate's validity.
const NOW: u64 = 1_798_761_600;

#[derive(Default)]
struct Verified {
    challenge_auth: usize,
    measurements: usize,
    key_exchange_rsp: usize,
    th1: Vec<Vec<u8>>,
    /// TH after each KEY_EXCHANGE_RSP including its ResponderVerifyData (ready for FINISH).
    th: Vec<ualink_spdm::transcript::Th>,
}

fn replay(name: &str) -> Verified {
    let mut recs: Vec<Vec<u8>> = common::transcript(name)
        .into_iter()
        .skip_while(|r| !r.is_spdm())
        .take_while(|r| r.is_spdm())
        .map(|r| r.bytes)
        .collect();
    // PCI DOE pads every message to a DWORD; transcripts hold the messages without padding.
    for pair in recs.chunks_mut(2).take(3) {
        let (_, n) = SpdmRequest::parse_padded(&pair[0], None).unwrap();
        pair[0].truncate(n);
        let (_, n) = SpdmResponse::parse_padded(&pair[1], None).unwrap();
        pair[1].truncate(n);
    }
    let mut vca = Vca::new();
    for r in &recs[..6] {
        vca.push(r).unwrap();
    }
    let req_caps = GetCapabilities::parse(&recs[2]).unwrap();
    let rsp_caps = Capabilities::parse(&recs[3]).unwrap();
    let algs = Algorithms::parse(&recs[5]).unwrap();
    // libspdm's responder selects SHA-512 measurement digests, which we carry but do not
    // compute: only the base algorithms matter for transcripts and signatures.
    let hash = algs.base_hash_sel.to_alg().unwrap();
    let asym = algs.base_asym_sel.to_alg().unwrap();
    let version = algs.version;
    let ctx = MsgContext::from_negotiation(&algs, req_caps.flags, rsp_caps.flags).unwrap();
    let mut t = Transcripts::new(hash, &vca).unwrap();
    let mut chains: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut partial: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let mut out = Verified::default();

    let leaf_key = |chains: &BTreeMap<u8, Vec<u8>>, slot: u8| -> Vec<u8> {
        let chain = SpdmCertChain::parse(&chains[&slot], hash).unwrap();
        let mut a = TrustAnchors::new().with_time(VerifyTime::Fixed(NOW));
        a.add_der(chain.certs().next().unwrap()).unwrap();
        a.verify(chain.certs_der(), asym)
            .unwrap()
            .leaf_public_key()
            .to_vec()
    };

    for pair in recs[6..].chunks_mut(2) {
        let [req, rsp] = pair else { break };
        let (parsed, n) = SpdmRequest::parse_padded(req, Some(&ctx)).unwrap();
        req.truncate(n);
        let (_, n) = SpdmResponse::parse_padded(rsp, Some(&ctx.for_response_to(&parsed))).unwrap();
        rsp.truncate(n);
        let (req, rsp) = (&*req, &*rsp);
        let code = RequestResponseCode(req[1]);
        t.on_request(code.0);
        if rsp[1] == RequestResponseCode::ERROR.0 {
            continue;
        }
        match code {
            RequestResponseCode::GET_DIGESTS => {
                t.push_b(req, rsp);
                if ctx.multi_key_conn {
                    t.set_digests_for_th(rsp);
                }
            }
            RequestResponseCode::GET_CERTIFICATE => {
                t.push_b(req, rsp);
                let get = GetCertificate::parse(req).unwrap();
                let cert = Certificate::parse(rsp).unwrap();
                let buf = partial.entry(get.slot_id).or_default();
                if get.offset == 0 {
                    buf.clear();
                }
                buf.extend_from_slice(&cert.portion);
                if cert.remainder_length == 0 {
                    chains.insert(get.slot_id, buf.clone());
                }
            }
            RequestResponseCode::CHALLENGE => {
                let ch = Challenge::parse(req).unwrap();
                let mut c = ctx;
                c.summary_hash_requested = ch.summary_type != MeasurementSummaryType::None;
                let auth = ChallengeAuth::parse(rsp, &c).unwrap();
                let m1 = t.m1_hash(req, auth.signed_portion(rsp).unwrap());
                crypto::verify(
                    asym,
                    &leaf_key(&chains, ch.slot_id),
                    version,
                    crypto::CTX_CHALLENGE_AUTH,
                    m1.as_bytes(),
                    &auth.signature,
                    "CHALLENGE_AUTH",
                )
                .unwrap();
                out.challenge_auth += 1;
            }
            RequestResponseCode::GET_MEASUREMENTS => {
                let get = GetMeasurements::parse(req).unwrap();
                let mut c = ctx;
                c.measurement_signature_requested = get.signature_requested();
                let m = Measurements::parse(rsp, &c).unwrap();
                match (&m.signature, get.nonce_and_slot) {
                    (Some(sig), Some((_, slot))) => {
                        let l1 = t.take_l1(req, m.signed_portion(rsp).unwrap());
                        assert!(l1.starts_with(vca.bytes()));
                        crypto::verify(
                            asym,
                            &leaf_key(&chains, slot),
                            version,
                            crypto::CTX_MEASUREMENTS,
                            crypto::hash(hash, &l1).as_bytes(),
                            sig,
                            "MEASUREMENTS",
                        )
                        .unwrap();
                        out.measurements += 1;
                    }
                    _ => t.push_measurements(req, rsp),
                }
            }
            RequestResponseCode::KEY_EXCHANGE => {
                let mut c = ctx;
                let ke = KeyExchange::parse(req, &c).unwrap();
                c.summary_hash_requested = ke.summary_type != MeasurementSummaryType::None;
                let kr = KeyExchangeRsp::parse(rsp, &c).unwrap();
                let mut th = t.start_th(&chains[&ke.slot_id]);
                th.push(req);
                let signed = kr.signed_portion(rsp).unwrap();
                crypto::verify(
                    asym,
                    &leaf_key(&chains, ke.slot_id),
                    version,
                    crypto::CTX_KEY_EXCHANGE_RSP,
                    th.hash_with(signed).as_bytes(),
                    &kr.signature,
                    "KEY_EXCHANGE_RSP",
                )
                .unwrap();
                th.push(kr.without_verify_data(rsp).unwrap());
                out.th1.push(th.hash().as_bytes().to_vec());
                if let Some(vd) = &kr.verify_data {
                    th.push(vd);
                }
                out.th.push(th);
                out.key_exchange_rsp += 1;
            }
            _ => {}
        }
    }
    out
}

#[test]
fn v12_p256_no_session_signatures_verify_over_our_transcripts() {
    let v = replay("v12_p256_nosession.transcript.full.txt");
    assert_eq!(
        (v.challenge_auth, v.measurements),
        (1, 1),
        "{:?}",
        (v.challenge_auth, v.measurements, v.key_exchange_rsp)
    );
}

#[test]
fn v13_p384_session_signatures_and_th1_match_libspdm() {
    let v = replay("v13_p384_session.transcript.full.txt");
    assert_eq!(
        (v.challenge_auth, v.measurements),
        (1, 1),
        "{:?}",
        (v.challenge_auth, v.measurements, v.key_exchange_rsp)
    );
    // The second KEY_EXCHANGE follows in-session traffic, where this plain replay stops.
    assert_eq!(v.key_exchange_rsp, 1);
    let logged = common::log_values("v13_p384_session.req.log", "th1 hash");
    assert_eq!(v.th1, logged[..1]);
}

#[test]
fn v12_p256_doe_session_th1_matches_libspdm() {
    let v = replay("tsm_like_v12_p256_pcidoe.transcript.full.txt");
    assert!(
        v.key_exchange_rsp >= 1,
        "{:?}",
        (v.challenge_auth, v.measurements, v.key_exchange_rsp)
    );
    let logged = common::log_values("tsm_like_v12_p256_pcidoe.req.log", "th1 hash");
    assert_eq!(v.th1, logged[..v.th1.len()]);

    // th2 = TH ‖ ResponderVerifyData ‖ FINISH ‖ FINISH_RSP (FINISH went encrypted; the log
    // prints the plaintext), equal to the th2 libspdm derived the data keys from.
    let text = String::from_utf8(common::data("tsm_like_v12_p256_pcidoe.req.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let at = |what: &str| lines.iter().position(|l| l.contains(what)).unwrap();
    let finish = dump_after(&lines, at("msg SPDM_FINISH(0xe5)"));
    let finish_rsp = dump_after(&lines, at("msg SPDM_FINISH_RSP(0x65)"));
    let mut th = v.th.into_iter().next().unwrap();
    th.push(&finish);
    th.push(&finish_rsp);
    let th2 = common::log_values("tsm_like_v12_p256_pcidoe.req.log", "th2 hash");
    assert_eq!(th.hash().as_bytes(), &th2[0][..]);
}

/// The hex dump that follows line `at` of a libspdm log (`0000: 13 e0 ...` lines).
fn dump_after(lines: &[&str], at: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for l in &lines[at + 1..] {
        let Some((off, rest)) = l.split_once(": ") else {
            break;
        };
        if off.len() != 4 || !off.chars().all(|c| c.is_ascii_hexdigit()) {
            break;
        }
        out.extend(hex::decode(rest.split_whitespace().collect::<String>()).unwrap());
    }
    out
}

/// The libspdm requester's L1/L2 hashes for every signed MEASUREMENTS (outside and inside the
/// session) equal Hash(A ‖ GET_MEASUREMENTS ‖ MEASUREMENTS without signature), the rule our
/// requester and responder apply in both places.
#[test]
fn v13_l1_hashes_inside_and_outside_the_session_match_libspdm() {
    let recs: Vec<_> = common::transcript("v13_p384_session.transcript.full.txt");
    let mut vca = Vca::new();
    for r in &recs[..6] {
        vca.push(&r.bytes).unwrap();
    }
    let req_caps = GetCapabilities::parse(&recs[2].bytes).unwrap();
    let rsp_caps = Capabilities::parse(&recs[3].bytes).unwrap();
    let algs = Algorithms::parse(&recs[5].bytes).unwrap();
    let hash = algs.base_hash_sel.to_alg().unwrap();
    let mut ctx = MsgContext::from_negotiation(&algs, req_caps.flags, rsp_caps.flags).unwrap();
    ctx.measurement_signature_requested = true;

    let text = String::from_utf8(common::data("v13_p384_session.req.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let logged = common::log_values("v13_p384_session.req.log", "l1l2 hash");
    let mut ours = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if !l.contains("msg SPDM_GET_MEASUREMENTS(0xe0)") {
            continue;
        }
        let req = dump_after(&lines, i);
        let j = (i + 1..lines.len())
            .find(|&j| lines[j].contains("msg SPDM_MEASUREMENTS(0x60)"))
            .unwrap();
        let rsp = dump_after(&lines, j);
        let m = Measurements::parse(&rsp, &ctx).unwrap();
        let mut t = Transcripts::new(hash, &vca).unwrap();
        t.on_request(req[1]);
        let l1 = t.take_l1(&req, m.signed_portion(&rsp).unwrap());
        ours.push(crypto::hash(hash, &l1).as_bytes().to_vec());
    }
    assert_eq!(ours.len(), 3);
    assert_eq!(ours, logged);
}

/// libspdm's requester messages, replayed into our responder (with our own P-256/P-384
/// identity), get proper answers: VCA, DIGESTS, CERTIFICATE, CHALLENGE_AUTH, MEASUREMENTS,
/// KEY_EXCHANGE_RSP.
#[test]
fn libspdm_requests_are_answered_by_our_responder() {
    use ualink_spdm::algo::AsymAlg;
    use ualink_spdm::device::SoftDevice;
    use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
    use ualink_spdm::responder::{Responder, ResponderConfig};
    use ualink_spdm::transport::MessageKind;

    for (name, asym, expect_version, key_exchange) in [
        (
            "v12_p256_nosession.transcript.full.txt",
            AsymAlg::EcdsaP256,
            0x12,
            false,
        ),
        (
            "v13_p384_session.transcript.full.txt",
            AsymAlg::EcdsaP384,
            0x13,
            true,
        ),
    ] {
        let id = DeviceIdentity::generate(asym, &IdentityOptions::default()).unwrap();
        let mut rsp = Responder::new(SoftDevice::new(id, 1).unwrap(), ResponderConfig::default());
        let recs = common::transcript(name);
        let mut wanted = vec![0x84u8, 0xE1, 0xE3, 0x81, 0x82, 0x83, 0xE0];
        if key_exchange {
            // libspdm asks for TerminationPolicy and all measurements in the summary.
            wanted.push(0xE4);
        }
        let mut seen = Vec::new();
        for r in recs.iter().take_while(|r| r.is_spdm()) {
            let code = r.bytes[1];
            // Requests only, each code once, slot 0 for certificates.
            if !wanted.contains(&code) || seen.contains(&code) || (code == 0x82 && r.bytes[2] != 0)
            {
                continue;
            }
            seen.push(code);
            let out = rsp.handle(MessageKind::Spdm, &r.bytes).unwrap();
            assert_ne!(
                out.bytes[1], 0x7F,
                "{name}: {} answered with ERROR {:02x?}",
                r.decode, &out.bytes
            );
            assert_eq!(out.bytes[1], code & 0x7F, "{name}");
            if code != 0x84 {
                assert_eq!(out.bytes[0], expect_version, "{name}");
            }
        }
        assert_eq!(seen, wanted, "{name}");
    }
}
