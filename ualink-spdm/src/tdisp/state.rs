//! The device-side TDI state machine, enforced in exactly one place: [`Tdi::handle`].
//!
//! ```text
//!                 LOCK (keys live, nonce drawn)            START (nonce matches; consumed)
//! CONFIG_UNLOCKED ----------------------------> CONFIG_LOCKED ---------------------------> RUN
//!        ^                                          |   \                                  |
//!        |          STOP (nonce zeroed)             |    \ config write, integrity         |
//!        +------------------------------------------+     \ failure, reset, keys revoked   |
//!        |                                                  v                              |
//!        +------------------- STOP (nonce zeroed) ------- ERROR <--------------------------+
//! ```
//!
//! Decisions, each checked by a test in `tests/tdisp_state.rs`:
//! * LOCK is refused ([`TdispError::KeysNotLive`], sent as INVALID_REQUEST per TDISP Table
//!   11-12) unless the device says the interface's link keys are live; the state does not
//!   change.
//! * The START nonce is 32 bytes from a caller-supplied [`NonceSource`], held in a zeroizing
//!   buffer, compared in constant time, and single use: it is dropped (and so zeroed) when START
//!   succeeds, on STOP and on entering ERROR. An all-zero draw is treated as an entropy failure.
//! * START with a wrong nonce is refused with [`TdispError::InvalidNonce`] and leaves the TDI
//!   in CONFIG_LOCKED with its nonce still live. That is what the DMTF reference device does
//!   (spdm-emu `pci_tdisp_device_start_interface`: compare, return INVALID_NONCE, no state
//!   change) and the TDISP text only requires the error; a guess has a 2^-256 chance, and
//!   moving to ERROR would let any in-session party knock a TDI over without gaining anything.
//!   A reused nonce (from an earlier LOCK) is just a wrong nonce: every LOCK draws a new one.
//! * STOP from CONFIG_UNLOCKED is accepted and changes nothing. TDISP §11.3.16 lists only an
//!   unknown interface as a reason to fail STOP, and STOP's actions (abort, scrub) are
//!   idempotent, so a TSM can always tear down with STOP. (spdm-emu answers
//!   INVALID_INTERFACE_STATE here; the specification wins.)
//! * GET_DEVICE_INTERFACE_REPORT is only allowed in CONFIG_LOCKED and RUN.
//! * Device-side events (a write to locked configuration, an integrity failure, a function
//!   reset, the link keys being revoked) move CONFIG_LOCKED and RUN to ERROR; they leave
//!   CONFIG_UNLOCKED (nothing is locked) and ERROR as they are, and never fail.

use super::msg::{code, StartNonce};
use super::{TdispError, NONCE_LEN};
use crate::error::Malformed;

/// TDI state as reported in DEVICE_INTERFACE_STATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TdiState {
    /// 0: configuration may change; no security guarantees.
    ConfigUnlocked,
    /// 1: configuration locked, report available, not yet running.
    ConfigLocked,
    /// 2: running with the locked configuration.
    Run,
    /// 3: the lock was broken; only STOP leaves this state.
    Error,
}

impl TdiState {
    /// Every state, in wire order.
    pub const ALL: [Self; 4] = [
        Self::ConfigUnlocked,
        Self::ConfigLocked,
        Self::Run,
        Self::Error,
    ];

    /// The state for a wire value; fails on values above 3.
    pub const fn from_wire(v: u8) -> Result<Self, Malformed> {
        match v {
            0 => Ok(Self::ConfigUnlocked),
            1 => Ok(Self::ConfigLocked),
            2 => Ok(Self::Run),
            3 => Ok(Self::Error),
            _ => Err(Malformed::UnknownValue {
                what: "TDI_STATE",
                value: v as u32,
            }),
        }
    }

    /// The wire value.
    pub const fn to_wire(self) -> u8 {
        match self {
            Self::ConfigUnlocked => 0,
            Self::ConfigLocked => 1,
            Self::Run => 2,
            Self::Error => 3,
        }
    }
}

/// The random source could not produce bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntropyUnavailable;

/// Where START nonces come from. Implemented for `ring::rand::SystemRandom`; tests and
/// simulated devices supply their own.
pub trait NonceSource {
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable>;
}

impl NonceSource for ring::rand::SystemRandom {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        ring::rand::SecureRandom::fill(self, dest).map_err(|_| EntropyUnavailable)
    }
}

/// Something that can move a TDI between states: a request from the TSM or an event on the
/// device.
pub enum TdiEvent<'a> {
    /// LOCK_INTERFACE_REQUEST. `keys_live` is the device's answer for this interface's link
    /// keys; `rng` supplies the START nonce.
    Lock {
        /// Whether the link keys protecting this interface are programmed and live.
        keys_live: bool,
        /// Source of the START nonce.
        rng: &'a mut dyn NonceSource,
    },
    /// START_INTERFACE_REQUEST with the nonce received.
    Start(&'a StartNonce),
    /// STOP_INTERFACE_REQUEST.
    Stop,
    /// GET_DEVICE_INTERFACE_REPORT (state-checked, no transition).
    ReadReport,
    /// A write to configuration that LOCK froze.
    ConfigWritten,
    /// An integrity failure on the link or in the device.
    IntegrityFailure,
    /// A function-level or conventional reset.
    Reset,
    /// The link keys this interface relies on were revoked or went stale.
    KeysRevoked,
}

impl TdiEvent<'_> {
    /// The TDISP request code this event comes from (0 for device-side events).
    pub const fn request_code(&self) -> u8 {
        match self {
            Self::Lock { .. } => code::LOCK_INTERFACE_REQUEST,
            Self::Start(_) => code::START_INTERFACE_REQUEST,
            Self::Stop => code::STOP_INTERFACE_REQUEST,
            Self::ReadReport => code::GET_DEVICE_INTERFACE_REPORT,
            Self::ConfigWritten | Self::IntegrityFailure | Self::Reset | Self::KeysRevoked => 0,
        }
    }
}

/// The result of an accepted event.
#[derive(Debug, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: TdiState,
    /// State after.
    pub to: TdiState,
    /// The fresh START nonce, only for an accepted LOCK (to send in LOCK_INTERFACE_RESPONSE).
    pub nonce: Option<StartNonce>,
}

/// One TDI: its state and, while CONFIG_LOCKED, its live START nonce.
#[derive(Debug)]
pub struct Tdi {
    state: TdiState,
    nonce: Option<StartNonce>,
}

impl Default for Tdi {
    fn default() -> Self {
        Self {
            state: TdiState::ConfigUnlocked,
            nonce: None,
        }
    }
}

impl Tdi {
    /// A TDI in CONFIG_UNLOCKED with no nonce.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current state.
    pub fn state(&self) -> TdiState {
        self.state
    }

    /// Whether a START nonce is held (true only in CONFIG_LOCKED after a LOCK).
    pub fn has_live_nonce(&self) -> bool {
        self.nonce.is_some()
    }

    /// Applies `event`: the one place TDI transitions are decided. On refusal the state and
    /// nonce are unchanged.
    pub fn handle(&mut self, event: TdiEvent<'_>) -> Result<Transition, TdispError> {
        use TdiState::{ConfigLocked, ConfigUnlocked, Error, Run};
        let from = self.state;
        let refuse = |e: &TdiEvent<'_>| TdispError::InvalidInterfaceState {
            state: from,
            request: e.request_code(),
        };
        let mut nonce_out = None;
        let to = match (from, &event) {
            (ConfigUnlocked, TdiEvent::Lock { keys_live, .. }) if !*keys_live => {
                return Err(TdispError::KeysNotLive)
            }
            (ConfigUnlocked, TdiEvent::Lock { .. }) => {
                let TdiEvent::Lock { rng, .. } = event else {
                    return Err(TdispError::Unspecified);
                };
                let fresh = draw_nonce(rng)?;
                self.nonce = Some(fresh.clone());
                nonce_out = Some(fresh);
                ConfigLocked
            }
            (ConfigLocked, TdiEvent::Start(got)) => match &self.nonce {
                Some(live) if live.ct_eq(got) => {
                    self.nonce = None;
                    Run
                }
                _ => return Err(TdispError::InvalidNonce),
            },
            (ConfigUnlocked | ConfigLocked | Run | Error, TdiEvent::Stop) => {
                self.nonce = None;
                ConfigUnlocked
            }
            (ConfigLocked | Run, TdiEvent::ReadReport) => from,
            (ConfigLocked | Run | Error, TdiEvent::Lock { .. })
            | (ConfigUnlocked | Run | Error, TdiEvent::Start(_))
            | (ConfigUnlocked | Error, TdiEvent::ReadReport) => return Err(refuse(&event)),
            (
                ConfigLocked | Run,
                TdiEvent::ConfigWritten
                | TdiEvent::IntegrityFailure
                | TdiEvent::Reset
                | TdiEvent::KeysRevoked,
            ) => {
                self.nonce = None;
                Error
            }
            (
                ConfigUnlocked | Error,
                TdiEvent::ConfigWritten
                | TdiEvent::IntegrityFailure
                | TdiEvent::Reset
                | TdiEvent::KeysRevoked,
            ) => from,
        };
        self.state = to;
        Ok(Transition {
            from,
            to,
            nonce: nonce_out,
        })
    }
}

fn draw_nonce(rng: &mut dyn NonceSource) -> Result<StartNonce, TdispError> {
    let mut n = StartNonce::from_bytes([0u8; NONCE_LEN]);
    rng.fill(n.as_mut_bytes())
        .map_err(|_| TdispError::InsufficientEntropy)?;
    if n.as_bytes().iter().all(|b| *b == 0) {
        return Err(TdispError::InsufficientEntropy);
    }
    Ok(n)
}
