//! UALinkSec link keys, delegated mode: the TSM generates one 256-bit master key per
//! (TX port, peer) pair from `ring`'s `SystemRandom` into a zeroizing buffer, programs it into
//! the sender's TX slot and the receiver's RX slot only inside each device's SPDM secured
//! session (KEY_PROG, then K_SET_GO: every RX before any TX, UALink_200 §9.5.10), mirrors the
//! slot metadata into the driver (`key_slot` Query: state, epoch, fingerprint) and drops the
//! key bytes right after programming. Only fingerprints are kept and persisted:
//! `SHA-384(ualink_sim::ualinksec::FINGERPRINT_LABEL ‖ key)`.

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use ualink_spdm::keyprog::{self, Direction, KeyTarget, MasterKey, Slot, KEY_LEN};
use zeroize::Zeroizing;

use crate::error::{Result, TsmError};

/// One slot to program: on `accel`, `target` (port, direction, slot, peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotPlan {
    /// The device holding the slot.
    pub accel: u16,
    /// The slot.
    pub target: KeyTarget,
}

/// What the TSM keeps about a programmed slot (never the key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    /// The device.
    pub accel: u16,
    /// Port index.
    pub port: u8,
    /// `"tx"` or `"rx"`.
    pub dir: String,
    /// The peer accelerator.
    pub peer: u16,
    /// Key epoch of the active slot.
    pub epoch: u32,
    /// Hex SHA-384 fingerprint of the active key.
    pub fingerprint: String,
}

impl SlotRecord {
    /// The state-store key of this slot.
    pub fn key(&self) -> String {
        slot_key(self.accel, self.port, &self.dir, self.peer)
    }
}

/// The state-store key of a slot.
pub fn slot_key(accel: u16, port: u8, dir: &str, peer: u16) -> String {
    format!("{accel:04}/{port}/{dir}/{peer:04}")
}

/// The wire name of a direction.
pub fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::Tx => "tx",
        Direction::Rx => "rx",
    }
}

/// A fresh master key from the system RNG (the stack copy is zeroized).
pub fn fresh_key(rng: &SystemRandom) -> Result<MasterKey> {
    let mut k = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill(&mut *k)
        .map_err(|_| TsmError::Identity("system RNG failed".into()))?;
    Ok(MasterKey::from_bytes(&mut k))
}

/// The key's fingerprint as the sim and the driver compute it.
pub fn fingerprint(key: &MasterKey) -> [u8; 48] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA384);
    ctx.update(ualink_sim::ualinksec::FINGERPRINT_LABEL);
    ctx.update(key.as_bytes());
    let mut out = [0u8; 48];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// A target in `slot` of `accel`'s (port, direction, peer) pair.
pub fn target(port: u8, direction: Direction, slot: Slot, peer: u16) -> Result<KeyTarget> {
    Ok(KeyTarget {
        port,
        direction,
        slot,
        peer: keyprog::AccelId::new(peer)
            .map_err(|e| TsmError::InvalidRequest(format!("peer {peer}: {e:?}")))?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fingerprint_matches_the_simulated_hardware() {
        let rng = SystemRandom::new();
        let k = fresh_key(&rng).unwrap();
        let sim = ualink_sim::ualinksec::MasterKey::new(*k.as_bytes(), 1);
        assert_eq!(fingerprint(&k), sim.fingerprint());
        let k2 = fresh_key(&rng).unwrap();
        assert_ne!(fingerprint(&k), fingerprint(&k2));
    }
}
