//! DSP0277 1.2 secured messages: the record layer of an SPDM session.
//!
//! Wire layout of one record (little-endian):
//!
//! ```text
//! SessionID u32 ‖ [SequenceNumber: seq_num_len bytes, MCTP 2, PCI DOE 0] ‖ Length u16
//!   ‖ AEAD-ciphertext( ApplicationDataLength u16 ‖ ApplicationData ‖ RandomPadding )
//!   ‖ MAC 16
//! AAD   = SessionID ‖ [SequenceNumber] ‖ Length        (the header bytes as sent)
//! Nonce = IV with its first 8 bytes XORed with the 64-bit sequence number (little-endian)
//! Length = len(ciphertext) + 16
//! ```
//!
//! With PCI DOE a received record may be followed by the zero bytes the DOE object added to
//! reach a DWORD boundary ([`SecuredParams::alignment`]); any other trailing byte is an error.
//!
//! The application data is whatever the transport binding puts there (with MCTP the inner
//! message-type byte 0x05 comes first; with PCI DOE it is the bare SPDM message).
//!
//! Guarantees of [`SecuredSession`]:
//! * Each direction has its own key, IV and 64-bit sequence number, starting at 0 and
//!   strictly incrementing per record; a number is never reused and the session refuses to
//!   go past `u64::MAX - 1`. The on-wire sequence number (if any) must equal the low bytes of
//!   the expected one.
//! * Any failure to open a record (bad framing, wrong sequence number, authentication failure,
//!   bad inner length) terminates the session: every later call fails, nothing resynchronises.
//!   The one exception is a record for another session ID, which is not ours to judge.
//! * KEY_UPDATE: [`SecuredSession::update_key`] installs the next key of one direction and keeps
//!   the previous one until [`SecuredSession::confirm_key_update`] drops it or
//!   [`SecuredSession::revert_key_update`] restores it.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ring::aead;
use zeroize::Zeroizing;

use crate::codec::Reader;
use crate::crypto::Rng;
use crate::error::{Error, Malformed, PeerMisbehaved, Result};
use crate::key_schedule::{DataSecrets, HandshakeSecrets, TrafficSecret, IV_LEN};

/// AEAD tag length.
pub const MAC_LEN: usize = 16;

/// Transport-dependent record parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecuredParams {
    /// Bytes of sequence number carried in the header (0..=8): MCTP 2, PCI DOE 0.
    pub seq_num_len: u8,
    /// Largest random padding appended before encryption; each record draws 1..=max bytes
    /// (0 = no padding). libspdm uses 32 for MCTP and 0 for PCI DOE.
    pub max_random_padding: u8,
    /// Transport alignment of a received record (1 = none). PCI DOE pads every object to a
    /// DWORD and cannot tell padding from payload, so [`SecuredSession::open`] accepts exactly
    /// the zero bytes that bring the record to a multiple of `alignment`, and nothing else.
    pub alignment: u8,
}

impl SecuredParams {
    /// MCTP binding (DSP0275): 2-byte sequence number, up to 32 bytes of random padding.
    pub const MCTP: Self = Self {
        seq_num_len: 2,
        max_random_padding: 32,
        alignment: 1,
    };
    /// PCI DOE binding: no sequence number on the wire, no padding.
    pub const PCI_DOE: Self = Self {
        seq_num_len: 0,
        max_random_padding: 0,
        alignment: 4,
    };

    fn header_len(self) -> usize {
        4 + usize::from(self.seq_num_len) + 2
    }
}

/// Which side of the session this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Seals with the request-direction keys, opens with the response-direction keys.
    Requester,
    /// Seals with the response-direction keys, opens with the request-direction keys.
    Responder,
}

/// A direction of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Requester → responder.
    Request,
    /// Responder → requester.
    Response,
}

/// Which secrets the session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Handshake secrets (encrypted FINISH/FINISH_RSP).
    Handshake,
    /// Data secrets (after FINISH_RSP).
    Application,
}

/// Reads the SessionID of a record without touching any session (for routing).
pub fn peek_session_id(record: &[u8]) -> Result<u32> {
    Ok(Reader::new(record).u32("SessionID")?)
}

struct DirKeys {
    secret: TrafficSecret,
    key: aead::LessSafeKey,
    iv: Zeroizing<[u8; IV_LEN]>,
    seq: u64,
    previous: Option<Box<DirKeys>>,
}

impl DirKeys {
    fn new(secret: TrafficSecret) -> Result<Self> {
        let kiv = secret.aead_key_iv()?;
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, kiv.key.expose())
            .map_err(|_| Error::Crypto("AEAD key rejected"))?;
        Ok(Self {
            secret,
            key: aead::LessSafeKey::new(unbound),
            iv: kiv.iv,
            seq: 0,
            previous: None,
        })
    }

    fn nonce(&self) -> aead::Nonce {
        let mut n = *self.iv;
        for (b, s) in n.iter_mut().zip(self.seq.to_le_bytes()) {
            *b ^= s;
        }
        aead::Nonce::assume_unique_for_key(n)
    }
}

/// One secured session's record layer (per session ID).
pub struct SecuredSession {
    session_id: u32,
    role: Role,
    params: SecuredParams,
    phase: Phase,
    tx: DirKeys,
    rx: DirKeys,
    terminated: bool,
}

impl fmt::Debug for SecuredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecuredSession")
            .field("session_id", &format_args!("{:#010x}", self.session_id))
            .field("role", &self.role)
            .field("params", &self.params)
            .field("phase", &self.phase)
            .field("tx_seq", &self.tx.seq)
            .field("rx_seq", &self.rx.seq)
            .field("terminated", &self.terminated)
            .finish_non_exhaustive()
    }
}

const TERMINATED: Error = Error::ApiMisuse("secured session is terminated");

impl SecuredSession {
    fn build(
        session_id: u32,
        role: Role,
        params: SecuredParams,
        phase: Phase,
        request: &TrafficSecret,
        response: &TrafficSecret,
    ) -> Result<Self> {
        if params.seq_num_len > 8 {
            return Err(Error::ApiMisuse("sequence number longer than 8 bytes"));
        }
        let (tx, rx) = match role {
            Role::Requester => (request, response),
            Role::Responder => (response, request),
        };
        Ok(Self {
            session_id,
            role,
            params,
            phase,
            tx: DirKeys::new(tx.clone())?,
            rx: DirKeys::new(rx.clone())?,
            terminated: false,
        })
    }

    /// A session in the handshake phase (FINISH/FINISH_RSP encrypted with handshake keys).
    pub fn new_handshake(
        session_id: u32,
        role: Role,
        params: SecuredParams,
        secrets: &HandshakeSecrets,
    ) -> Result<Self> {
        Self::build(
            session_id,
            role,
            params,
            Phase::Handshake,
            &secrets.request,
            &secrets.response,
        )
    }

    /// A session starting directly in the application phase (HANDSHAKE_IN_THE_CLEAR).
    pub fn new_application(
        session_id: u32,
        role: Role,
        params: SecuredParams,
        secrets: &DataSecrets,
    ) -> Result<Self> {
        Self::build(
            session_id,
            role,
            params,
            Phase::Application,
            &secrets.request,
            &secrets.response,
        )
    }

    /// Switches from handshake to data secrets after FINISH_RSP; both sequence numbers restart
    /// at 0. Fails unless in the handshake phase.
    pub fn switch_to_application(&mut self, secrets: &DataSecrets) -> Result<()> {
        self.check_live()?;
        if self.phase != Phase::Handshake {
            return Err(Error::ApiMisuse("session already uses data keys"));
        }
        let (tx, rx) = match self.role {
            Role::Requester => (&secrets.request, &secrets.response),
            Role::Responder => (&secrets.response, &secrets.request),
        };
        self.tx = DirKeys::new(tx.clone())?;
        self.rx = DirKeys::new(rx.clone())?;
        self.phase = Phase::Application;
        Ok(())
    }

    /// The session ID (`ReqSessionID | RspSessionID << 16`).
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The record parameters.
    pub fn params(&self) -> SecuredParams {
        self.params
    }

    /// True once a failure (or [`SecuredSession::terminate`]) ended the session.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Ends the session (END_SESSION, fatal error elsewhere): every later call fails.
    pub fn terminate(&mut self) {
        self.terminated = true;
    }

    /// The next sequence number this endpoint will seal with.
    pub fn tx_sequence(&self) -> u64 {
        self.tx.seq
    }

    /// The next sequence number this endpoint expects to open.
    pub fn rx_sequence(&self) -> u64 {
        self.rx.seq
    }

    fn check_live(&self) -> Result<()> {
        if self.terminated {
            Err(TERMINATED)
        } else {
            Ok(())
        }
    }

    /// Encrypts `app_data` into one record with the next sending sequence number.
    pub fn seal(&mut self, app_data: &[u8], rng: &Rng) -> Result<Vec<u8>> {
        self.check_live()?;
        if self.tx.seq == u64::MAX {
            return Err(Error::ApiMisuse(
                "sequence numbers exhausted: update keys or end the session",
            ));
        }
        let app_len = u16::try_from(app_data.len()).map_err(|_| Malformed::LengthOverflow {
            what: "ApplicationDataLength",
        })?;
        // One draw for the padding length and the padding bytes (one system call per record,
        // not two): byte 0 picks the length, the next `pad_len` bytes are the padding.
        let mut random = [0u8; 256];
        let pad_len = if self.params.max_random_padding == 0 {
            0
        } else {
            let max = usize::from(self.params.max_random_padding);
            let draw = random.get_mut(..=max).unwrap_or(&mut []);
            rng.fill(draw)?;
            usize::from(draw.first().copied().unwrap_or(0) % self.params.max_random_padding) + 1
        };
        let pt_len = 2 + app_data.len() + pad_len;
        let length = pt_len
            .checked_add(MAC_LEN)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(Malformed::LengthOverflow {
                what: "secured message Length",
            })?;

        let hdr_len = self.params.header_len();
        let mut out = Vec::with_capacity(hdr_len + pt_len + MAC_LEN);
        out.extend_from_slice(&self.session_id.to_le_bytes());
        let seq_bytes = self.tx.seq.to_le_bytes();
        out.extend_from_slice(
            seq_bytes
                .get(..usize::from(self.params.seq_num_len))
                .unwrap_or(&[]),
        );
        out.extend_from_slice(&length.to_le_bytes());
        out.extend_from_slice(&app_len.to_le_bytes());
        out.extend_from_slice(app_data);
        if pad_len > 0 {
            out.extend_from_slice(random.get(1..=pad_len).unwrap_or(&[]));
        }

        let (header, body) = out.split_at_mut(hdr_len);
        let tag = self
            .tx
            .key
            .seal_in_place_separate_tag(self.tx.nonce(), aead::Aad::from(&*header), body)
            .map_err(|_| Error::Crypto("AEAD seal failed"))?;
        out.extend_from_slice(tag.as_ref());
        self.tx.seq += 1;
        Ok(out)
    }

    /// Reads the record's SessionID; a record too short to carry one is bad framing, which
    /// terminates the session like every other failure to open.
    fn peek_or_terminate(&mut self, record: &[u8]) -> Result<u32> {
        peek_session_id(record).inspect_err(|_| self.terminated = true)
    }

    /// Decrypts one record (exactly: no trailing bytes) and returns the application data.
    /// Every failure except a foreign session ID terminates the session.
    pub fn open(&mut self, record: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.check_live()?;
        let sid = self.peek_or_terminate(record)?;
        if sid != self.session_id {
            return Err(PeerMisbehaved::UnknownSession(sid).into());
        }
        let r = self.open_with(record, false);
        if r.is_err() {
            self.terminated = true;
        }
        r
    }

    /// Like [`SecuredSession::open`], for the one record that may come under either the new or
    /// the previous receiving key while a KEY_UPDATE of the receiving direction is pending
    /// (e.g. the reply to UpdateAllKeys: a KEY_UPDATE_ACK under the new key, or an ERROR
    /// under the old one). Tries the new key first; if only the previous key authenticates the
    /// record, the update is reverted. Fails (and terminates) if neither does, or if no
    /// update is pending. Afterwards [`SecuredSession::key_update_pending`] of the receiving
    /// direction tells which key opened the record (true: the new one), so a caller can refuse
    /// a KEY_UPDATE_ACK that arrived under the old key.
    pub fn open_during_key_update(&mut self, record: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.check_live()?;
        let sid = self.peek_or_terminate(record)?;
        if sid != self.session_id {
            return Err(PeerMisbehaved::UnknownSession(sid).into());
        }
        if self.rx.previous.is_none() {
            self.terminated = true;
            return Err(Error::ApiMisuse(
                "no key update pending on the receiving side",
            ));
        }
        match self.open_with(record, false) {
            Ok(pt) => Ok(pt),
            Err(Error::PeerMisbehaved(PeerMisbehaved::DecryptFailed))
            | Err(Error::PeerMisbehaved(PeerMisbehaved::SequenceNumber)) => {
                let r = self.open_with(record, true);
                match r {
                    Ok(pt) => {
                        // The peer did not switch: go back to the previous key.
                        if let Some(prev) = self.rx.previous.take() {
                            self.rx = *prev;
                            // open_with(previous) did not advance the live counter; do it now.
                            self.rx.seq += 1;
                        }
                        Ok(pt)
                    }
                    Err(e) => {
                        self.terminated = true;
                        Err(e)
                    }
                }
            }
            Err(e) => {
                self.terminated = true;
                Err(e)
            }
        }
    }

    /// Opens with the live receiving keys, or (`use_previous`) with the pending update's
    /// previous keys without advancing any counter.
    fn open_with(&mut self, record: &[u8], use_previous: bool) -> Result<Zeroizing<Vec<u8>>> {
        let keys: &DirKeys = if use_previous {
            self.rx
                .previous
                .as_deref()
                .ok_or(Error::ApiMisuse("no previous key"))?
        } else {
            &self.rx
        };
        if keys.seq == u64::MAX {
            return Err(PeerMisbehaved::SequenceNumber.into());
        }
        let hdr_len = self.params.header_len();
        let mut rd = Reader::new(record);
        let _sid = rd.u32("SessionID")?;
        let seq_len = usize::from(self.params.seq_num_len);
        let wire_seq = rd.take(seq_len, "SequenceNumber")?;
        let expected = keys.seq.to_le_bytes();
        if Some(wire_seq) != expected.get(..seq_len) {
            return Err(PeerMisbehaved::SequenceNumber.into());
        }
        let length = usize::from(rd.u16("Length")?);
        if length < MAC_LEN + 2 {
            return Err(Malformed::BadLength {
                what: "secured message Length",
            }
            .into());
        }
        let body = rd.take(length, "secured message ciphertext")?;
        let trailing = rd.rest();
        let align = usize::from(self.params.alignment.max(1));
        let record_len = rd.consumed();
        let transport_pad = (align - record_len % align) % align;
        if !trailing.is_empty()
            && (trailing.len() != transport_pad || trailing.iter().any(|&b| b != 0))
        {
            return Err(Malformed::TrailingBytes {
                what: "secured message",
            }
            .into());
        }
        let header = record.get(..hdr_len).ok_or(Malformed::Truncated {
            what: "secured message header",
        })?;

        let mut buf = Zeroizing::new(body.to_vec());
        let pt_len = keys
            .key
            .open_in_place(keys.nonce(), aead::Aad::from(header), &mut buf)
            .map_err(|_| PeerMisbehaved::DecryptFailed)?
            .len();
        buf.truncate(pt_len);

        let mut inner = Reader::new(&buf);
        let app_len = usize::from(inner.u16("ApplicationDataLength")?);
        let app = inner.take(app_len, "ApplicationData")?.to_vec();
        // The rest is random padding, authenticated but meaningless.
        if !use_previous {
            self.rx.seq += 1;
        }
        Ok(Zeroizing::new(app))
    }

    fn dir_keys(&mut self, dir: Direction) -> &mut DirKeys {
        match (self.role, dir) {
            (Role::Requester, Direction::Request) | (Role::Responder, Direction::Response) => {
                &mut self.tx
            }
            _ => &mut self.rx,
        }
    }

    /// KEY_UPDATE for one direction: derives the next data secret ("traffic upd"), installs its
    /// key and IV with the sequence number restarting at 0, and keeps the previous keys until
    /// confirmed or reverted. Fails in the handshake phase or if an update of `dir` is pending.
    pub fn update_key(&mut self, dir: Direction) -> Result<()> {
        self.check_live()?;
        if self.phase != Phase::Application {
            return Err(Error::ApiMisuse(
                "KEY_UPDATE before the session has data keys",
            ));
        }
        let slot = self.dir_keys(dir);
        if slot.previous.is_some() {
            return Err(Error::ApiMisuse(
                "a key update of this direction is already pending",
            ));
        }
        let next = DirKeys::new(slot.secret.update()?)?;
        let old = core::mem::replace(slot, next);
        slot.previous = Some(Box::new(old));
        Ok(())
    }

    /// Drops the previous keys of `dir` (after VerifyNewKey succeeded). No-op if none pending.
    pub fn confirm_key_update(&mut self, dir: Direction) {
        self.dir_keys(dir).previous = None;
    }

    /// Restores the previous keys (and sequence number) of `dir`.
    pub fn revert_key_update(&mut self, dir: Direction) -> Result<()> {
        self.check_live()?;
        let slot = self.dir_keys(dir);
        let prev = slot
            .previous
            .take()
            .ok_or(Error::ApiMisuse("no key update to revert"))?;
        *slot = *prev;
        Ok(())
    }

    /// True while an update of `dir` awaits confirmation.
    pub fn key_update_pending(&self, dir: Direction) -> bool {
        match (self.role, dir) {
            (Role::Requester, Direction::Request) | (Role::Responder, Direction::Response) => {
                self.tx.previous.is_some()
            }
            _ => self.rx.previous.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::algo::{AeadAlg, HashAlg, SpdmVersion};
    use crate::key_schedule::{HandshakeSecret, ScheduleParams};

    fn pair(params: SecuredParams) -> (SecuredSession, SecuredSession) {
        let p = ScheduleParams {
            version: SpdmVersion::V12,
            hash: HashAlg::Sha256,
            aead: AeadAlg::Aes256Gcm,
        };
        let d = HandshakeSecret::new(p, &[1; 32])
            .master_secret()
            .unwrap()
            .data_secrets(&[2; 32])
            .unwrap();
        (
            SecuredSession::new_application(7, Role::Requester, params, &d).unwrap(),
            SecuredSession::new_application(7, Role::Responder, params, &d).unwrap(),
        )
    }

    #[test]
    fn sequence_numbers_never_wrap() {
        let rng = Rng::new();
        let (mut req, mut rsp) = pair(SecuredParams::MCTP);
        req.tx.seq = u64::MAX - 1;
        rsp.rx.seq = u64::MAX - 1;
        // The last usable number still works, and its low 16 bits are on the wire.
        let r = req.seal(b"last", &rng).unwrap();
        assert_eq!(&r[4..6], &[0xfe, 0xff]);
        assert_eq!(&rsp.open(&r).unwrap()[..], b"last");
        // Then sealing refuses (without ending the session: the caller can update keys)...
        assert!(matches!(req.seal(b"x", &rng), Err(Error::ApiMisuse(_))));
        assert!(!req.is_terminated());
        // ...and a peer that keeps going is refused and the session ends.
        req.tx.seq = u64::MAX - 1;
        let mut forged = req.seal(b"y", &rng).unwrap();
        forged[4..6].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(
            rsp.open(&forged).unwrap_err(),
            PeerMisbehaved::SequenceNumber.into()
        );
        assert!(rsp.is_terminated());
    }

    #[test]
    fn wire_sequence_number_is_the_low_bytes_of_the_counter() {
        let rng = Rng::new();
        let (mut req, mut rsp) = pair(SecuredParams::MCTP);
        req.tx.seq = 0x1_0002;
        rsp.rx.seq = 0x1_0002;
        let r = req.seal(b"m", &rng).unwrap();
        assert_eq!(&r[4..6], &[0x02, 0x00]);
        // The full 64-bit counter feeds the nonce: a receiver at 0x2 (same low bytes) fails.
        let (_, mut other) = pair(SecuredParams::MCTP);
        other.rx.seq = 0x2;
        assert_eq!(
            other.open(&r).unwrap_err(),
            PeerMisbehaved::DecryptFailed.into()
        );
        assert_eq!(&rsp.open(&r).unwrap()[..], b"m");
    }
}
