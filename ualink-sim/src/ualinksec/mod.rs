//! UALinkSec, the link-encryption engine of one port (UALink_200 §9.5).
//!
//! Each TX port keeps, per destination accelerator, an active and an alternate 256-bit master key;
//! each RX port the same per source accelerator (A's TX slot for B holds the same key as B's RX
//! slot for A). From the active master key three stream keys are derived with KMAC256
//! ([`kdf`]); each stream has its own 32-bit counter that forms the GCM IV ([`gcm`]).
//!
//! Slot life cycle (all transitions are methods returning errors on illegal use):
//! ```text
//!   Empty --program(active)--> Keyed --enable--> Enabled --seal/open--> ...
//!   Enabled --KeyRollMSG--> (active <- alternate, alternate = Stale)
//!   any --integrity failure / stale key / roll timeout / counter exhausted / migration--> Stopped
//!   Stopped --program(active) with a newer epoch--> Keyed
//! ```
//! Epochs strictly increase per slot, so a (master key, epoch, stream, counter) tuple is never
//! reused after a re-key: a re-programmed slot always derives fresh stream keys.

pub mod gcm;
pub mod header;
pub mod kdf;

use core::fmt;

use ring::digest;
use zeroize::Zeroizing;

use crate::error::KeyError;
use gcm::{StreamCipher, TagMismatch, TAG_LEN};

/// The three UALinkSec streams (UALink_200 §9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamId {
    /// Requests (reads, writes, KeyRollMSG).
    Requests,
    /// Read responses.
    ReadResponses,
    /// Write responses.
    WriteResponses,
}

impl StreamId {
    /// All streams, in StreamID order.
    pub const ALL: [StreamId; 3] = [
        StreamId::Requests,
        StreamId::ReadResponses,
        StreamId::WriteResponses,
    ];

    /// The StreamID byte used in the KDF context.
    pub fn code(self) -> u8 {
        match self {
            StreamId::Requests => 0,
            StreamId::ReadResponses => 1,
            StreamId::WriteResponses => 2,
        }
    }

    fn index(self) -> usize {
        usize::from(self.code())
    }
}

/// Why a slot stopped carrying traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// A transaction from the source failed tag verification.
    IntegrityFailure,
    /// A key roll was due but the alternate key was stale (or the stale alternate outlived its
    /// replacement deadline).
    StaleKey,
    /// No KeyRollMSG acknowledgement arrived within the timeout.
    KeyRollTimeout,
    /// A stream counter reached 2^32 uses.
    CounterExhausted,
    /// The link moved to another port; both ends must be re-keyed.
    PortMigrated,
    /// The link went down.
    LinkDown,
    /// The device was reset.
    DeviceReset,
    /// Software commanded the stop (`FabricOps::stop_streams` or a Stop/Invalidate command).
    Commanded,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Domain label of key fingerprints (NUL-terminated ASCII).
pub const FINGERPRINT_LABEL: &[u8] = b"UALinkSec master key fingerprint v1\0";

/// A 256-bit master key with its epoch. The bytes are zeroized on drop and never printed.
pub struct MasterKey {
    bytes: Zeroizing<[u8; 32]>,
    epoch: u32,
}

impl MasterKey {
    /// Wraps key bytes and their epoch.
    pub fn new(bytes: [u8; 32], epoch: u32) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
            epoch,
        }
    }

    /// Copies key bytes from a reference straight into zeroizing storage (no stack copy).
    pub fn from_ref(bytes: &[u8; 32], epoch: u32) -> Self {
        let mut z = Zeroizing::new([0u8; 32]);
        z.copy_from_slice(bytes);
        Self { bytes: z, epoch }
    }

    /// The key's epoch.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// A fingerprint safe to show to the (untrusted) driver: SHA-384 over the domain label
    /// [`FINGERPRINT_LABEL`] and the key. It identifies a key without revealing it.
    pub fn fingerprint(&self) -> [u8; 48] {
        let mut ctx = digest::Context::new(&digest::SHA384);
        ctx.update(FINGERPRINT_LABEL);
        ctx.update(self.bytes.as_ref());
        let mut out = [0u8; 48];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("epoch", &self.epoch)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

/// Which key of a slot an operation addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// The key in use.
    Active,
    /// The key the next KeyRollMSG switches to.
    Alternate,
}

/// Direction of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Transmit (keyed per destination).
    Tx,
    /// Receive (keyed per source).
    Rx,
}

#[derive(Debug)]
struct Stream {
    cipher: StreamCipher,
    /// Next counter value; `None` once all 2^32 values are used.
    next: Option<u32>,
}

#[derive(Debug)]
struct Active {
    key: MasterKey,
    streams: [Stream; 3],
}

impl Active {
    fn derive(key: MasterKey) -> Result<Self, KeyError> {
        let mk = |s: StreamId| -> Result<Stream, KeyError> {
            let k = kdf::derive_stream_key(&key.bytes, key.epoch, s);
            Ok(Stream {
                cipher: StreamCipher::new(&k).map_err(|_| KeyError::NoKey)?,
                next: Some(0),
            })
        };
        let streams = [
            mk(StreamId::Requests)?,
            mk(StreamId::ReadResponses)?,
            mk(StreamId::WriteResponses)?,
        ];
        Ok(Self { key, streams })
    }
}

/// A master key ready to be programmed into a slot as a given [`KeyRole`]: for the active
/// role its three stream keys are already derived (what a device's key engine does before
/// it installs the key). Zeroized on drop like the key it holds.
#[derive(Debug)]
pub struct PreparedKey {
    epoch: u32,
    kind: Prepared,
}

#[derive(Debug)]
enum Prepared {
    Active(Box<Active>),
    Alternate(MasterKey),
}

impl PreparedKey {
    /// Prepares `key` for `role` (derives the stream keys for the active role).
    pub fn new(role: KeyRole, key: MasterKey) -> Result<Self, KeyError> {
        let epoch = key.epoch;
        let kind = match role {
            KeyRole::Active => Prepared::Active(Box::new(Active::derive(key)?)),
            KeyRole::Alternate => Prepared::Alternate(key),
        };
        Ok(Self { epoch, kind })
    }
}

#[derive(Debug)]
enum Alternate {
    Empty,
    Fresh(MasterKey),
    /// The previous active key after a roll; its bytes are gone, only the deadline remains.
    Stale {
        since_ns: u64,
    },
}

/// Outstanding key roll on a TX slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Roll {
    Idle,
    Pending { epoch: u32, since_ns: u64 },
}

/// Timers and thresholds of the engine, on the fabric clock (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecParams {
    /// A KeyRollMSG not acknowledged within this time stops the slot.
    pub keyroll_timeout_ns: u64,
    /// A stale alternate key not replaced within this time stops the slot.
    pub stale_key_timeout_ns: u64,
    /// A TX stream counter reaching this value triggers a key roll.
    pub roll_threshold: u32,
}

impl Default for SecParams {
    fn default() -> Self {
        Self {
            keyroll_timeout_ns: 100_000_000,
            stale_key_timeout_ns: 60_000_000_000,
            roll_threshold: 1 << 31,
        }
    }
}

/// Public, secret-free view of a slot (what a driver may record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// Direction.
    pub dir: Direction,
    /// Active key epoch and fingerprint.
    pub active: Option<(u32, [u8; 48])>,
    /// Fresh alternate key epoch and fingerprint.
    pub alternate: Option<(u32, [u8; 48])>,
    /// Whether the alternate slot holds a stale (already used) key.
    pub alternate_stale: bool,
    /// RX or TX enabled.
    pub enabled: bool,
    /// Stop reason, if stopped.
    pub stopped: Option<StopReason>,
    /// Whether a KeyRollMSG is outstanding.
    pub roll_pending: bool,
    /// Highest epoch ever programmed (kept across stops so epochs keep advancing).
    pub last_epoch: Option<u32>,
}

/// One key slot: (TX port, destination) or (RX port, source).
#[derive(Debug)]
pub struct KeySlot {
    dir: Direction,
    active: Option<Active>,
    alternate: Alternate,
    enabled: bool,
    stopped: Option<StopReason>,
    roll: Roll,
    /// Highest epoch ever programmed into this slot.
    high_epoch: Option<u32>,
}

impl KeySlot {
    /// An empty slot.
    pub fn new(dir: Direction) -> Self {
        Self {
            dir,
            active: None,
            alternate: Alternate::Empty,
            enabled: false,
            stopped: None,
            roll: Roll::Idle,
            high_epoch: None,
        }
    }

    /// Secret-free view.
    pub fn info(&self) -> SlotInfo {
        SlotInfo {
            dir: self.dir,
            active: self
                .active
                .as_ref()
                .map(|a| (a.key.epoch, a.key.fingerprint())),
            alternate: match &self.alternate {
                Alternate::Fresh(k) => Some((k.epoch, k.fingerprint())),
                _ => None,
            },
            alternate_stale: matches!(self.alternate, Alternate::Stale { .. }),
            enabled: self.enabled,
            stopped: self.stopped,
            roll_pending: matches!(self.roll, Roll::Pending { .. }),
            last_epoch: self.high_epoch,
        }
    }

    /// Epoch of the active key, if any.
    pub fn active_epoch(&self) -> Option<u32> {
        self.active.as_ref().map(|a| a.key.epoch)
    }

    /// Whether the slot is enabled and not stopped.
    pub fn is_live(&self) -> bool {
        self.enabled && self.stopped.is_none() && self.active.is_some()
    }

    /// Stop reason, if any.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    fn check_epoch(&self, epoch: u32) -> Result<(), KeyError> {
        match self.high_epoch {
            Some(h) if epoch <= h => Err(KeyError::EpochNotAdvancing),
            _ => Ok(()),
        }
    }

    /// Programs a key. Programming the active key resets the slot (streams re-derived, counters
    /// zero, disabled, stop cleared, any roll cancelled): it is how a stopped slot is re-keyed.
    /// Epochs must strictly increase over every epoch this slot has seen.
    pub fn program(&mut self, role: KeyRole, key: MasterKey) -> Result<(), KeyError> {
        self.check_epoch(key.epoch)?;
        self.program_prepared(PreparedKey::new(role, key)?)
    }

    /// [`Self::program`] with a key whose streams were derived beforehand (so the derivation
    /// can run outside whatever lock guards the slot). Same checks, same effect.
    pub fn program_prepared(&mut self, key: PreparedKey) -> Result<(), KeyError> {
        self.check_epoch(key.epoch)?;
        let epoch = key.epoch;
        match key.kind {
            Prepared::Active(active) => {
                self.active = Some(*active);
                self.enabled = false;
                self.stopped = None;
                self.roll = Roll::Idle;
                if !matches!(self.alternate, Alternate::Fresh(_)) {
                    self.alternate = Alternate::Empty;
                }
            }
            Prepared::Alternate(key) => {
                if self.active.is_none() {
                    return Err(KeyError::NoKey);
                }
                self.alternate = Alternate::Fresh(key);
            }
        }
        self.high_epoch = Some(epoch);
        Ok(())
    }

    /// Enables the slot (RX: ready to receive; TX: the caller has checked the peer's RX).
    pub fn enable(&mut self) -> Result<(), KeyError> {
        if let Some(r) = self.stopped {
            return Err(KeyError::Stopped(r));
        }
        if self.active.is_none() {
            return Err(KeyError::NoKey);
        }
        self.enabled = true;
        Ok(())
    }

    /// Disables the slot (no traffic) without dropping keys.
    pub fn disable(&mut self) {
        self.enabled = false;
    }

    /// Stops the slot and zeroizes its keys (dropping them). It must be re-keyed.
    pub fn stop(&mut self, reason: StopReason) {
        self.stopped = Some(reason);
        self.enabled = false;
        self.active = None;
        self.alternate = Alternate::Empty;
        self.roll = Roll::Idle;
    }

    /// Zeroizes both keys and disables the slot, returning it to the empty state. The epoch
    /// high-water mark is kept, so a later key must still carry a newer epoch.
    pub fn invalidate(&mut self) {
        self.active = None;
        self.alternate = Alternate::Empty;
        self.enabled = false;
        self.stopped = None;
        self.roll = Roll::Idle;
    }

    /// Erases the alternate key only (a K_SET_STOP on the alternate slot).
    pub fn clear_alternate(&mut self) {
        self.alternate = Alternate::Empty;
    }

    fn usable(&self) -> Result<&Active, KeyError> {
        if let Some(r) = self.stopped {
            return Err(KeyError::Stopped(r));
        }
        let a = self.active.as_ref().ok_or(KeyError::NoKey)?;
        if !self.enabled {
            return Err(match self.dir {
                Direction::Tx => KeyError::TxNotEnabled,
                Direction::Rx => KeyError::RxNotEnabled,
            });
        }
        Ok(a)
    }

    /// Encrypts one transaction body on `stream`, consuming one counter value. Returns the 8-byte
    /// tag. Counter exhaustion stops the slot.
    pub fn seal(
        &mut self,
        stream: StreamId,
        aad: &[u8],
        body: &mut [u8],
    ) -> Result<[u8; TAG_LEN], KeyError> {
        if self.dir != Direction::Tx {
            return Err(KeyError::TxNotEnabled);
        }
        if matches!(self.roll, Roll::Pending { .. }) {
            return Err(KeyError::RollPending);
        }
        self.usable()?;
        let Some(active) = self.active.as_mut() else {
            return Err(KeyError::NoKey);
        };
        let s = active
            .streams
            .get_mut(stream.index())
            .ok_or(KeyError::NoKey)?;
        let Some(counter) = s.next else {
            self.stop(StopReason::CounterExhausted);
            return Err(KeyError::Stopped(StopReason::CounterExhausted));
        };
        s.next = counter.checked_add(1);
        s.cipher
            .seal(counter, aad, body)
            .map_err(|TagMismatch| KeyError::NoKey)
    }

    /// Verifies and decrypts one transaction body on `stream` with the next expected counter.
    /// On a tag mismatch the slot stops (every stream from this source) and
    /// `Err(Verify::Integrity)` is returned; the caller must drop the transaction and report.
    pub fn open(
        &mut self,
        stream: StreamId,
        aad: &[u8],
        body: &mut [u8],
        tag: &[u8; TAG_LEN],
        scratch: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        if self.dir != Direction::Rx {
            return Err(OpenError::Key(KeyError::RxNotEnabled));
        }
        self.usable().map_err(OpenError::Key)?;
        let Some(active) = self.active.as_mut() else {
            return Err(OpenError::Key(KeyError::NoKey));
        };
        let s = active
            .streams
            .get_mut(stream.index())
            .ok_or(OpenError::Key(KeyError::NoKey))?;
        let Some(counter) = s.next else {
            self.stop(StopReason::CounterExhausted);
            return Err(OpenError::Key(KeyError::Stopped(
                StopReason::CounterExhausted,
            )));
        };
        match s.cipher.open(counter, aad, body, tag, scratch) {
            Ok(()) => {
                s.next = counter.checked_add(1);
                Ok(())
            }
            Err(TagMismatch) => {
                self.stop(StopReason::IntegrityFailure);
                Err(OpenError::Integrity)
            }
        }
    }

    /// Whether any TX stream has reached the roll threshold.
    pub fn roll_due(&self, threshold: u32) -> bool {
        match &self.active {
            Some(a) => a
                .streams
                .iter()
                .any(|s| s.next.is_none_or(|n| n >= threshold)),
            None => false,
        }
    }

    /// TX side: checks a fresh alternate exists and returns its epoch (to be carried by the
    /// KeyRollMSG). The caller seals the KeyRollMSG, then calls [`KeySlot::mark_roll_sent`].
    pub fn roll_epoch(&self) -> Result<u32, KeyError> {
        self.usable()?;
        match &self.alternate {
            Alternate::Fresh(k) => Ok(k.epoch),
            Alternate::Stale { .. } | Alternate::Empty => Err(KeyError::NoFreshAlternate),
        }
    }

    /// TX side: the KeyRollMSG is on the wire; new traffic waits for the acknowledgement.
    pub fn mark_roll_sent(&mut self, epoch: u32, now_ns: u64) {
        self.roll = Roll::Pending {
            epoch,
            since_ns: now_ns,
        };
    }

    /// Swaps active and alternate: the alternate must be fresh and carry `epoch`. The old active
    /// key is zeroized and the alternate slot becomes stale (awaiting a replacement).
    /// Used by RX on receiving a KeyRollMSG and by TX on its acknowledgement.
    pub fn swap(&mut self, epoch: u32, now_ns: u64) -> Result<(), KeyError> {
        if let Some(r) = self.stopped {
            return Err(KeyError::Stopped(r));
        }
        if self.dir == Direction::Tx {
            match self.roll {
                Roll::Pending { epoch: e, .. } if e == epoch => {}
                Roll::Pending { .. } => return Err(KeyError::RollEpochMismatch),
                Roll::Idle => return Err(KeyError::RollEpochMismatch),
            }
        }
        let fresh =
            match core::mem::replace(&mut self.alternate, Alternate::Stale { since_ns: now_ns }) {
                Alternate::Fresh(k) if k.epoch == epoch => k,
                Alternate::Fresh(k) => {
                    self.alternate = Alternate::Fresh(k);
                    return Err(KeyError::RollEpochMismatch);
                }
                other => {
                    self.alternate = other;
                    return Err(KeyError::NoFreshAlternate);
                }
            };
        self.active = Some(Active::derive(fresh)?);
        self.roll = Roll::Idle;
        Ok(())
    }

    /// Applies timers: an unacknowledged KeyRollMSG past its timeout stops the slot
    /// (KeyRollTimeout); a stale alternate not replaced within its deadline stops the slot
    /// (StaleKey). Returns the reason if this call stopped the slot.
    pub fn tick(&mut self, now_ns: u64, p: &SecParams) -> Option<StopReason> {
        if self.stopped.is_some() || self.active.is_none() {
            return None;
        }
        if let Roll::Pending { since_ns, .. } = self.roll {
            if now_ns.saturating_sub(since_ns) > p.keyroll_timeout_ns {
                self.stop(StopReason::KeyRollTimeout);
                return Some(StopReason::KeyRollTimeout);
            }
        }
        if let Alternate::Stale { since_ns } = self.alternate {
            if now_ns.saturating_sub(since_ns) > p.stale_key_timeout_ns {
                self.stop(StopReason::StaleKey);
                return Some(StopReason::StaleKey);
            }
        }
        None
    }
}

/// Why [`KeySlot::open`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Slot state refused before any cryptography.
    Key(KeyError),
    /// The tag did not verify; the slot is now stopped.
    Integrity,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(epoch: u32) -> (KeySlot, KeySlot) {
        let mut tx = KeySlot::new(Direction::Tx);
        let mut rx = KeySlot::new(Direction::Rx);
        tx.program(KeyRole::Active, MasterKey::new([1; 32], epoch))
            .unwrap();
        rx.program(KeyRole::Active, MasterKey::new([1; 32], epoch))
            .unwrap();
        rx.enable().unwrap();
        tx.enable().unwrap();
        (tx, rx)
    }

    #[test]
    fn seal_open_round_trip_and_counters_advance() {
        let (mut tx, mut rx) = pair(1);
        let mut s = Vec::new();
        for i in 0..3u8 {
            let mut b = [i; 20];
            let t = tx.seal(StreamId::Requests, b"h", &mut b).unwrap();
            assert_ne!(b, [i; 20]);
            rx.open(StreamId::Requests, b"h", &mut b, &t, &mut s)
                .unwrap();
            assert_eq!(b, [i; 20]);
        }
    }

    #[test]
    fn streams_are_independent_keys() {
        let (mut tx, mut rx) = pair(1);
        let mut s = Vec::new();
        let mut b = [7u8; 16];
        let t = tx.seal(StreamId::Requests, b"", &mut b).unwrap();
        // Same counter (0) but the read-response stream key: must fail.
        assert_eq!(
            rx.open(StreamId::ReadResponses, b"", &mut b, &t, &mut s),
            Err(OpenError::Integrity)
        );
        assert_eq!(rx.stopped(), Some(StopReason::IntegrityFailure));
        assert!(rx.info().active.is_none(), "keys dropped on stop");
    }

    #[test]
    fn replay_fails_on_counter() {
        let (mut tx, mut rx) = pair(1);
        let mut s = Vec::new();
        let mut b = [7u8; 16];
        let t = tx.seal(StreamId::Requests, b"", &mut b).unwrap();
        let copy = b;
        rx.open(StreamId::Requests, b"", &mut b, &t, &mut s)
            .unwrap();
        let mut again = copy;
        assert_eq!(
            rx.open(StreamId::Requests, b"", &mut again, &t, &mut s),
            Err(OpenError::Integrity)
        );
    }

    #[test]
    fn epochs_must_advance() {
        let mut tx = KeySlot::new(Direction::Tx);
        tx.program(KeyRole::Active, MasterKey::new([1; 32], 5))
            .unwrap();
        assert_eq!(
            tx.program(KeyRole::Active, MasterKey::new([2; 32], 5)),
            Err(KeyError::EpochNotAdvancing)
        );
        assert_eq!(
            tx.program(KeyRole::Alternate, MasterKey::new([2; 32], 4)),
            Err(KeyError::EpochNotAdvancing)
        );
        tx.program(KeyRole::Alternate, MasterKey::new([2; 32], 6))
            .unwrap();
    }

    #[test]
    fn counter_exhaustion_stops() {
        let (mut tx, _) = pair(1);
        if let Some(a) = tx.active.as_mut() {
            a.streams[0].next = Some(u32::MAX);
        }
        let mut b = [0u8; 4];
        tx.seal(StreamId::Requests, b"", &mut b).unwrap();
        assert_eq!(
            tx.seal(StreamId::Requests, b"", &mut b),
            Err(KeyError::Stopped(StopReason::CounterExhausted))
        );
        assert_eq!(tx.stopped(), Some(StopReason::CounterExhausted));
    }

    #[test]
    fn debug_redacts_keys() {
        let k = MasterKey::new([0x42; 32], 9);
        let d = format!("{k:?}");
        assert!(!d.contains("42") && d.contains("redacted"), "{d}");
        let (tx, _) = pair(1);
        assert!(!format!("{tx:?}").contains("[1, 1"));
    }

    #[test]
    fn roll_and_timers() {
        let p = SecParams::default();
        let (mut tx, mut rx) = pair(1);
        tx.program(KeyRole::Alternate, MasterKey::new([2; 32], 2))
            .unwrap();
        rx.program(KeyRole::Alternate, MasterKey::new([2; 32], 2))
            .unwrap();
        let e = tx.roll_epoch().unwrap();
        tx.mark_roll_sent(e, 10);
        let mut b = [0u8; 4];
        assert_eq!(
            tx.seal(StreamId::Requests, b"", &mut b),
            Err(KeyError::RollPending)
        );
        rx.swap(e, 11).unwrap();
        tx.swap(e, 12).unwrap();
        assert_eq!(tx.active_epoch(), Some(2));
        assert!(tx.info().alternate_stale);
        let mut s = Vec::new();
        let t = tx.seal(StreamId::Requests, b"", &mut b).unwrap();
        rx.open(StreamId::Requests, b"", &mut b, &t, &mut s)
            .unwrap();
        // No fresh alternate: another roll is refused.
        assert_eq!(tx.roll_epoch(), Err(KeyError::NoFreshAlternate));
        // The stale alternate outlives its deadline: stop.
        assert_eq!(
            tx.tick(12 + p.stale_key_timeout_ns + 1, &p),
            Some(StopReason::StaleKey)
        );
    }

    #[test]
    fn roll_timeout_stops() {
        let p = SecParams::default();
        let (mut tx, _) = pair(1);
        tx.program(KeyRole::Alternate, MasterKey::new([2; 32], 2))
            .unwrap();
        tx.mark_roll_sent(2, 0);
        assert_eq!(tx.tick(p.keyroll_timeout_ns, &p), None);
        assert_eq!(
            tx.tick(p.keyroll_timeout_ns + 1, &p),
            Some(StopReason::KeyRollTimeout)
        );
        assert_eq!(tx.stopped(), Some(StopReason::KeyRollTimeout));
    }
}
