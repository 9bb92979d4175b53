//! UALinkSec link keys, delegated mode: the TSM generates one 256-bit master key per
//! (TX port, peer) pair from `ring`'s `SystemRandom` into a zeroizing buffer, programs it into
//! the sender's TX slot and the receiver's RX slot only inside each device's SPDM secured
//! session (KEY_PROG, then K_SET_GO: every RX before any TX, UALink_200 §9.5.10), mirrors the
//! slot metadata into the driver (`key_slot` Query: state, epoch, fingerprint) and drops the
//! key bytes right after programming. Only fingerprints are kept and persisted:
//! `SHA-384(ualink_sim::ualinksec::FINGERPRINT_LABEL ‖ key)`.

use std::collections::BTreeMap;

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
    /// Unix time (s) the key was programmed (its age for scheduled rotation).
    #[serde(default)]
    pub programmed_at: u64,
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

/// One master key a tenant's lead agent generated (UALink §9.4): the key `tx`'s port `port`
/// uses toward `rx`, which is also `rx`'s RX key for traffic from `tx`. The key bytes live in a
/// zeroizing buffer and never appear in `Debug` output.
pub struct LeadKey {
    /// The transmitting accelerator.
    pub tx: u16,
    /// Its TX port.
    pub port: u8,
    /// The receiving accelerator.
    pub rx: u16,
    key: MasterKey,
}

impl core::fmt::Debug for LeadKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LeadKey")
            .field("tx", &self.tx)
            .field("port", &self.port)
            .field("rx", &self.rx)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The master keys of one epoch handed over by a tenant's lead agent, for
/// [`crate::Tsm::provision_keys_with`]. The service fills it from the agent's JSON
/// (`{epoch, keys:[{tx, port, rx, key}]}`); [`LeadKeySet::push`] refuses a key that is not
/// exactly [`KEY_LEN`] bytes. Coverage of the vPod's links is checked by the TSM. Every key is
/// zeroized when the set (or the key, once programmed) is dropped.
#[derive(Debug)]
pub struct LeadKeySet {
    /// The key epoch the agent generated these keys for.
    pub epoch: u32,
    keys: Vec<LeadKey>,
}

impl LeadKeySet {
    /// An empty set for `epoch`.
    pub fn new(epoch: u32) -> Self {
        Self {
            epoch,
            keys: Vec::new(),
        }
    }

    /// Adds the key for (`tx`, `port`) → `rx`. `key` must be exactly 32 bytes; the caller
    /// zeroizes its own copy (this one is copied into a zeroizing buffer).
    pub fn push(&mut self, tx: u16, port: u8, rx: u16, key: &[u8]) -> Result<()> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        if key.len() != KEY_LEN {
            return Err(TsmError::InvalidRequest(format!(
                "lead key for {tx}:{port}->{rx} is {} bytes, want {KEY_LEN}",
                key.len()
            )));
        }
        k.copy_from_slice(key);
        self.keys.push(LeadKey {
            tx,
            port,
            rx,
            key: MasterKey::from_bytes(&mut k),
        });
        Ok(())
    }

    /// The set built from the guest agent library's [`ualink_guest_agent::lead::KeyBundle`]
    /// (what an in-process agent hands over).
    pub fn from_bundle(b: &ualink_guest_agent::lead::KeyBundle) -> Self {
        let mut set = Self::new(b.epoch);
        for e in &b.entries {
            let mut k = Zeroizing::new(*e.key().as_bytes());
            set.keys.push(LeadKey {
                tx: e.tx_accelerator.get(),
                port: e.tx_port,
                rx: e.peer.get(),
                key: MasterKey::from_bytes(&mut k),
            });
        }
        set
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys by (tx, port, rx); a triple given twice is refused.
    pub(crate) fn into_map(self) -> Result<BTreeMap<(u16, u8, u16), MasterKey>> {
        let mut out = BTreeMap::new();
        for k in self.keys {
            let id = (k.tx, k.port, k.rx);
            if out.insert(id, k.key).is_some() {
                return Err(TsmError::InvalidRequest(format!(
                    "lead key for {}:{}->{} given twice",
                    id.0, id.1, id.2
                )));
            }
        }
        Ok(out)
    }
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
