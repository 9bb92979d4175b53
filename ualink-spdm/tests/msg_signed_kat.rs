//! Known answers for the transcript slices the signed messages expose: the libspdm responder's
//! real signatures in the captures verify over transcripts built from exactly the bytes
//! `ChallengeAuth::signed_portion`, `Measurements::signed_portion` and
//! `KeyExchangeRsp::signed_portion` return (M1, L1 and TH as PROTOCOL.md defines them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::crypto;
use ualink_spdm::msg::*;

/// One plaintext message as an engine sees it: bytes without transport padding, parsed.
struct Msg {
    index: usize,
    raw: Vec<u8>,
    rsp: Option<SpdmResponse>,
}

fn messages(name: &str) -> Vec<Msg> {
    let mut ctx: Option<MsgContext> = None;
    let (mut rf, mut sf) = (CapabilityFlags::default(), CapabilityFlags::default());
    let mut last: Option<SpdmRequest> = None;
    let mut out = Vec::new();
    for rec in common::transcript(name) {
        if !rec.is_spdm() {
            continue;
        }
        if rec.bytes[1] & 0x80 != 0 {
            let (m, used) = SpdmRequest::parse_padded(&rec.bytes, ctx.as_ref()).unwrap();
            if let SpdmRequest::GetCapabilities(c) = &m {
                rf = c.flags;
            }
            last = Some(m);
            out.push(Msg {
                index: rec.index,
                raw: rec.bytes[..used].to_vec(),
                rsp: None,
            });
        } else {
            let c = ctx.map(|c| c.for_response_to(last.as_ref().unwrap()));
            let (m, used) = SpdmResponse::parse_padded(&rec.bytes, c.as_ref()).unwrap();
            match &m {
                SpdmResponse::Capabilities(c) => sf = c.flags,
                SpdmResponse::Algorithms(a) => {
                    ctx = Some(MsgContext::from_negotiation(a, rf, sf).unwrap())
                }
                _ => {}
            }
            out.push(Msg {
                index: rec.index,
                raw: rec.bytes[..used].to_vec(),
                rsp: Some(m),
            });
        }
    }
    out
}

fn raw(msgs: &[Msg], index: usize) -> &[u8] {
    &msgs.iter().find(|m| m.index == index).unwrap().raw
}

fn rsp(msgs: &[Msg], index: usize) -> &SpdmResponse {
    msgs.iter()
        .find(|m| m.index == index)
        .unwrap()
        .rsp
        .as_ref()
        .unwrap()
}

/// The concatenation of records `from..=to` (as received, padding removed).
fn concat(msgs: &[Msg], from: usize, to: usize) -> Vec<u8> {
    msgs.iter()
        .filter(|m| (from..=to).contains(&m.index))
        .flat_map(|m| m.raw.clone())
        .collect()
}

/// The leaf's SEC1 public key from the SPDM certificate chain delivered in one CERTIFICATE.
fn leaf_key(msgs: &[Msg], cert_index: usize, hash_len: usize) -> Vec<u8> {
    let SpdmResponse::Certificate(c) = rsp(msgs, cert_index) else {
        panic!("not CERTIFICATE")
    };
    assert_eq!(c.remainder_length, 0);
    let mut der = &c.portion[4 + hash_len..];
    let mut leaf = None;
    while !der.is_empty() {
        let (rest, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        leaf = Some(cert.public_key().subject_public_key.data.to_vec());
        der = rest;
    }
    leaf.unwrap()
}

fn chain(msgs: &[Msg], cert_index: usize) -> Vec<u8> {
    let SpdmResponse::Certificate(c) = rsp(msgs, cert_index) else {
        panic!("not CERTIFICATE")
    };
    c.portion.clone()
}

struct Capture {
    name: &'static str,
    version: SpdmVersion,
    hash: HashAlg,
    asym: AsymAlg,
    /// Index of GET_VERSION (first VCA record).
    vca: usize,
    /// First and last record of M1's B part (GET_DIGESTS .. last CERTIFICATE).
    b: (usize, usize),
    /// CERTIFICATE carrying slot 0's whole chain.
    cert: usize,
    /// CHALLENGE / CHALLENGE_AUTH.
    challenge: usize,
    /// GET_MEASUREMENTS / MEASUREMENTS.
    meas: usize,
}

const V12: Capture = Capture {
    name: "v12_p256_nosession.transcript.full.txt",
    version: SpdmVersion::V12,
    hash: HashAlg::Sha256,
    asym: AsymAlg::EcdsaP256,
    vca: 0,
    b: (6, 11),
    cert: 9,
    challenge: 12,
    meas: 28,
};

const TSM: Capture = Capture {
    name: "tsm_like_v12_p256_pcidoe.transcript.full.txt",
    version: SpdmVersion::V12,
    hash: HashAlg::Sha256,
    asym: AsymAlg::EcdsaP256,
    vca: 6,
    b: (12, 17),
    cert: 15,
    challenge: 18,
    meas: 26,
};

const V13: Capture = Capture {
    name: "v13_p384_session.transcript.full.txt",
    version: SpdmVersion::V13,
    hash: HashAlg::Sha384,
    asym: AsymAlg::EcdsaP384,
    vca: 0,
    b: (6, 11),
    cert: 9,
    challenge: 12,
    meas: 28,
};

fn vca(c: &Capture, msgs: &[Msg]) -> Vec<u8> {
    concat(msgs, c.vca, c.vca + 5)
}

fn check_challenge_auth(c: &Capture) {
    let msgs = messages(c.name);
    let key = leaf_key(&msgs, c.cert, c.hash.len());
    let SpdmResponse::ChallengeAuth(auth) = rsp(&msgs, c.challenge + 1) else {
        panic!("not CHALLENGE_AUTH")
    };
    let mut m1 = vca(c, &msgs);
    m1.extend(concat(&msgs, c.b.0, c.b.1));
    m1.extend(raw(&msgs, c.challenge));
    m1.extend(auth.signed_portion(raw(&msgs, c.challenge + 1)).unwrap());
    let h = crypto::hash(c.hash, &m1);
    crypto::verify(
        c.asym,
        &key,
        c.version,
        crypto::CTX_CHALLENGE_AUTH,
        h.as_bytes(),
        &auth.signature,
        "CHALLENGE_AUTH",
    )
    .unwrap();
    // One byte more or less of the slice and the signature no longer verifies.
    m1.pop();
    let h = crypto::hash(c.hash, &m1);
    assert!(crypto::verify(
        c.asym,
        &key,
        c.version,
        crypto::CTX_CHALLENGE_AUTH,
        h.as_bytes(),
        &auth.signature,
        "CHALLENGE_AUTH"
    )
    .is_err());
}

fn check_measurements(c: &Capture) {
    let msgs = messages(c.name);
    let key = leaf_key(&msgs, c.cert, c.hash.len());
    let SpdmResponse::Measurements(m) = rsp(&msgs, c.meas + 1) else {
        panic!("not MEASUREMENTS")
    };
    let mut l1 = vca(c, &msgs);
    l1.extend(raw(&msgs, c.meas));
    l1.extend(m.signed_portion(raw(&msgs, c.meas + 1)).unwrap());
    let h = crypto::hash(c.hash, &l1);
    crypto::verify(
        c.asym,
        &key,
        c.version,
        crypto::CTX_MEASUREMENTS,
        h.as_bytes(),
        m.signature.as_ref().unwrap(),
        "MEASUREMENTS",
    )
    .unwrap();
}

#[test]
fn v12_challenge_auth_signature_verifies_over_m1_built_from_signed_portion() {
    check_challenge_auth(&V12);
}

#[test]
fn tsm_challenge_auth_signature_verifies_over_m1_built_from_signed_portion() {
    check_challenge_auth(&TSM);
}

#[test]
fn v13_challenge_auth_signature_verifies_over_m1_built_from_signed_portion() {
    check_challenge_auth(&V13);
}

#[test]
fn v12_measurements_signature_verifies_over_l1_built_from_signed_portion() {
    check_measurements(&V12);
}

#[test]
fn tsm_measurements_signature_verifies_over_l1_built_from_signed_portion() {
    check_measurements(&TSM);
}

#[test]
fn v13_measurements_signature_verifies_over_l1_built_from_signed_portion() {
    check_measurements(&V13);
}

#[test]
fn tsm_key_exchange_rsp_signature_verifies_over_th_built_from_signed_portion() {
    let c = &TSM;
    let msgs = messages(c.name);
    let key = leaf_key(&msgs, c.cert, c.hash.len());
    let SpdmResponse::KeyExchangeRsp(r) = rsp(&msgs, 29) else {
        panic!("not KEY_EXCHANGE_RSP")
    };
    let mut th = vca(c, &msgs);
    th.extend(crypto::hash(c.hash, &chain(&msgs, c.cert)).as_bytes());
    th.extend(raw(&msgs, 28));
    th.extend(r.signed_portion(raw(&msgs, 29)).unwrap());
    let h = crypto::hash(c.hash, &th);
    crypto::verify(
        c.asym,
        &key,
        c.version,
        crypto::CTX_KEY_EXCHANGE_RSP,
        h.as_bytes(),
        &r.signature,
        "KEY_EXCHANGE_RSP",
    )
    .unwrap();
}

#[test]
fn v13_key_exchange_rsp_signature_verifies_over_th_with_multi_key_digests() {
    // SPDM 1.3 with MULTI_KEY_CONN: TH = A ‖ DIGESTS (the response only) ‖ Hash(chain) ‖
    // KEY_EXCHANGE ‖ KEY_EXCHANGE_RSP up to its signature. Without the DIGESTS, or with it after
    // the chain hash, the libspdm responder's signature does not verify.
    let c = &V13;
    let msgs = messages(c.name);
    let key = leaf_key(&msgs, c.cert, c.hash.len());
    let SpdmResponse::KeyExchangeRsp(r) = rsp(&msgs, 31) else {
        panic!("not KEY_EXCHANGE_RSP")
    };
    let chain_hash = crypto::hash(c.hash, &chain(&msgs, c.cert));
    let verifies = |with_digests: bool, digests_first: bool| {
        let mut th = vca(c, &msgs);
        if with_digests && digests_first {
            th.extend(raw(&msgs, 27));
        }
        th.extend(chain_hash.as_bytes());
        if with_digests && !digests_first {
            th.extend(raw(&msgs, 27));
        }
        th.extend(raw(&msgs, 30));
        th.extend(r.signed_portion(raw(&msgs, 31)).unwrap());
        let h = crypto::hash(c.hash, &th);
        crypto::verify(
            c.asym,
            &key,
            c.version,
            crypto::CTX_KEY_EXCHANGE_RSP,
            h.as_bytes(),
            &r.signature,
            "KEY_EXCHANGE_RSP",
        )
        .is_ok()
    };
    assert!(verifies(true, true));
    assert!(!verifies(false, true));
    assert!(!verifies(true, false));
}
