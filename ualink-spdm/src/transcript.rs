//! SPDM transcripts (DSP0274 1.2/1.3 §"Transcript and transcript hash calculation rules").
//!
//! Both state machines keep the transcripts as the raw bytes of the messages exactly as sent
//! or received (never re-encoded), because a signature or HMAC is only meaningful over the
//! bytes the peer produced, and because ualink-attest builds device evidence from exactly
//! these bytes.
//!
//! | transcript | bytes | signed / MACed by |
//! |---|---|---|
//! | A (VCA) | GET_VERSION ‖ VERSION ‖ GET_CAPABILITIES ‖ CAPABILITIES ‖ NEGOTIATE_ALGORITHMS ‖ ALGORITHMS | prefix of all below |
//! | M1 | A ‖ B ‖ C, B = every GET_DIGESTS/DIGESTS and GET_CERTIFICATE/CERTIFICATE pair since the last CHALLENGE, C = CHALLENGE ‖ CHALLENGE_AUTH without its signature | CHALLENGE_AUTH signature |
//! | L1 | A ‖ every GET_MEASUREMENTS/MEASUREMENTS pair since the last reset, the last response without its signature | MEASUREMENTS signature |
//! | TH | A ‖ \[D\] ‖ Hash(SPDM cert chain) ‖ KEY_EXCHANGE ‖ KEY_EXCHANGE_RSP … ‖ FINISH … ‖ FINISH_RSP | KEY_EXCHANGE_RSP signature, VerifyData, key schedule |
//!
//! D is the last DIGESTS response, present only when SPDM 1.3 MULTI_KEY_CONN was negotiated
//! for the responder (as libspdm's `message_d`; checked against the captured 1.3 session).
//!
//! Reset rules: L1 is emptied after a signed MEASUREMENTS and whenever any request other than
//! GET_MEASUREMENTS is issued; B is emptied after CHALLENGE_AUTH; everything is emptied when
//! GET_VERSION is issued again.

use alloc::vec::Vec;

use crate::algo::HashAlg;
use crate::crypto::{Digest, HashCtx};

/// Which VCA message comes next; the VCA must be appended in protocol order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VcaStep {
    GetVersion,
    Version,
    GetCapabilities,
    Capabilities,
    NegotiateAlgorithms,
    Algorithms,
    Complete,
}

/// Transcript A: the six VCA messages, appended in order, then frozen.
#[derive(Debug, Clone)]
pub struct Vca {
    bytes: Vec<u8>,
    next: VcaStep,
}

impl Default for Vca {
    fn default() -> Self {
        Self::new()
    }
}

impl Vca {
    /// An empty VCA expecting GET_VERSION first.
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            next: VcaStep::GetVersion,
        }
    }

    /// Appends the next VCA message (`msg` as sent or received). The request/response code
    /// (byte 1) must be the one expected next, so a VCA can only be built in protocol order.
    pub fn push(&mut self, msg: &[u8]) -> Result<(), crate::Error> {
        let code = msg.get(1).copied().unwrap_or(0);
        let (want, next) = match self.next {
            VcaStep::GetVersion => (0x84, VcaStep::Version),
            VcaStep::Version => (0x04, VcaStep::GetCapabilities),
            VcaStep::GetCapabilities => (0xE1, VcaStep::Capabilities),
            VcaStep::Capabilities => (0x61, VcaStep::NegotiateAlgorithms),
            VcaStep::NegotiateAlgorithms => (0xE3, VcaStep::Algorithms),
            VcaStep::Algorithms => (0x63, VcaStep::Complete),
            VcaStep::Complete => return Err(crate::Error::ApiMisuse("VCA already complete")),
        };
        if code != want {
            return Err(crate::Error::ApiMisuse("VCA message out of order"));
        }
        self.bytes.extend_from_slice(msg);
        self.next = next;
        Ok(())
    }

    /// True once ALGORITHMS was appended.
    pub fn is_complete(&self) -> bool {
        self.next == VcaStep::Complete
    }

    /// The raw VCA bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The transcripts one SPDM connection keeps (outside any session's TH).
#[derive(Debug, Clone)]
pub struct Transcripts {
    hash: HashAlg,
    vca: Vec<u8>,
    /// B: digests and certificate pairs since the last CHALLENGE.
    b: Vec<u8>,
    /// message_m: measurement pairs since the last reset (L1 = A ‖ message_m).
    m: Vec<u8>,
    /// message_d: the last DIGESTS response (only recorded with MULTI_KEY_CONN).
    d: Vec<u8>,
}

impl Transcripts {
    /// Starts after a complete VCA, hashing with the negotiated `hash`.
    pub fn new(hash: HashAlg, vca: &Vca) -> Result<Self, crate::Error> {
        if !vca.is_complete() {
            return Err(crate::Error::ApiMisuse("VCA incomplete"));
        }
        Ok(Self {
            hash,
            vca: vca.bytes().to_vec(),
            b: Vec::new(),
            m: Vec::new(),
            d: Vec::new(),
        })
    }

    /// The negotiated hash.
    pub fn hash_alg(&self) -> HashAlg {
        self.hash
    }

    /// Transcript A.
    pub fn vca(&self) -> &[u8] {
        &self.vca
    }

    /// Applies the reset rules for a request about to be sent (requester) or just received
    /// (responder): any request other than GET_MEASUREMENTS (0xE0) empties message_m.
    pub fn on_request(&mut self, request_code: u8) {
        if request_code != 0xE0 {
            self.m.clear();
        }
    }

    /// Appends a GET_DIGESTS/DIGESTS or GET_CERTIFICATE/CERTIFICATE pair to B.
    pub fn push_b(&mut self, request: &[u8], response: &[u8]) {
        self.b.extend_from_slice(request);
        self.b.extend_from_slice(response);
    }

    /// Records a DIGESTS response as message D of TH. Call only when 1.3 MULTI_KEY_CONN was
    /// negotiated for the responder's keys; replaces any earlier one.
    pub fn set_digests_for_th(&mut self, digests_response: &[u8]) {
        self.d.clear();
        self.d.extend_from_slice(digests_response);
    }

    /// Hash(M1) for a CHALLENGE_AUTH: A ‖ B ‖ CHALLENGE ‖ CHALLENGE_AUTH without signature.
    /// Empties B (the next M1 starts afresh).
    pub fn m1_hash(&mut self, challenge: &[u8], auth_unsigned: &[u8]) -> Digest {
        let h = {
            let mut c = HashCtx::new(self.hash);
            for p in [&self.vca[..], &self.b, challenge, auth_unsigned] {
                c.update(p);
            }
            c.finish()
        };
        self.b.clear();
        h
    }

    /// Appends a GET_MEASUREMENTS/MEASUREMENTS pair that carries no signature to message_m.
    pub fn push_measurements(&mut self, request: &[u8], response: &[u8]) {
        self.m.extend_from_slice(request);
        self.m.extend_from_slice(response);
    }

    /// Finishes L1 with a signed pair (`response_unsigned` = MEASUREMENTS without its
    /// signature): returns the raw L1 bytes (A ‖ message_m ‖ request ‖ response_unsigned),
    /// and empties message_m.
    pub fn take_l1(&mut self, request: &[u8], response_unsigned: &[u8]) -> Vec<u8> {
        let mut l1 = Vec::with_capacity(
            self.vca
                .len()
                .saturating_add(self.m.len())
                .saturating_add(request.len())
                .saturating_add(response_unsigned.len()),
        );
        l1.extend_from_slice(&self.vca);
        l1.extend_from_slice(&self.m);
        l1.extend_from_slice(request);
        l1.extend_from_slice(response_unsigned);
        self.m.clear();
        l1
    }

    /// Starts a session transcript TH = A ‖ \[D\] ‖ Hash(cert chain).
    pub fn start_th(&self, cert_chain: &[u8]) -> Th {
        let mut ctx = HashCtx::new(self.hash);
        ctx.update(&self.vca);
        ctx.update(&self.d);
        ctx.update(crate::crypto::hash(self.hash, cert_chain).as_bytes());
        Th { ctx }
    }
}

/// A session's handshake transcript (TH), appended as the handshake proceeds.
#[derive(Debug, Clone)]
pub struct Th {
    ctx: HashCtx,
}

impl Th {
    /// Appends raw message bytes (or a part of a message).
    pub fn push(&mut self, bytes: &[u8]) {
        self.ctx.update(bytes);
    }

    /// Hash of everything appended so far.
    pub fn hash(&self) -> Digest {
        self.ctx.current()
    }

    /// Hash of everything appended so far followed by `extra` (not appended).
    pub fn hash_with(&self, extra: &[u8]) -> Digest {
        let mut c = self.ctx.clone();
        c.update(extra);
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vca_must_be_in_order() {
        let mut v = Vca::new();
        assert!(v.push(&[0x10, 0x04, 0, 0]).is_err());
        v.push(&[0x10, 0x84, 0, 0]).unwrap();
        v.push(&[0x10, 0x04, 0, 0, 0, 1, 0, 0x12]).unwrap();
        assert!(!v.is_complete());
        assert!(Transcripts::new(HashAlg::Sha256, &v).is_err());
    }

    #[test]
    fn measurement_log_resets_on_other_requests_and_after_signing() {
        let mut v = Vca::new();
        for m in [
            &[0x10u8, 0x84, 0, 0][..],
            &[0x10, 0x04],
            &[0x12, 0xE1],
            &[0x12, 0x61],
            &[0x12, 0xE3],
            &[0x12, 0x63],
        ] {
            v.push(m).unwrap();
        }
        let mut t = Transcripts::new(HashAlg::Sha256, &v).unwrap();
        t.on_request(0xE0);
        t.push_measurements(&[1], &[2]);
        t.on_request(0xE0);
        let l1 = t.take_l1(&[3], &[4]);
        assert_eq!(&l1[l1.len() - 4..], &[1, 2, 3, 4]);
        t.push_measurements(&[1], &[2]);
        t.on_request(0x81);
        let l1 = t.take_l1(&[3], &[4]);
        assert_eq!(&l1[l1.len() - 2..], &[3, 4]);
        assert_eq!(l1.len(), v.bytes().len() + 2);
    }
}
