//! The lead-VM key role (UALink 1.0 §9.4): the tenant's lead agent checks its vPod's
//! membership and generates the vPod master keys; the TSM programs them into the ports
//! inside SPDM secured sessions. Keys never reach the host kernel driver.
//!
//! One 256-bit master key is generated per (transmitting accelerator, its TX port,
//! destination accelerator): the key A's port p uses for traffic to B, which is also B's RX
//! key for traffic from A (§9.5.9.1) — the TSM programs it at both ends. Keys come from the
//! OS CSPRNG (ring's `SystemRandom`), live in zeroizing buffers ([`MasterKey`]) and appear in
//! no `Debug` output.
//!
//! Accelerator IDs are assigned by the untrusted Pod Controller, so [`generate_vpod_keys`]
//! refuses duplicate or out-of-range IDs (§9.4) before generating anything.

use crate::error::{Error, Result};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeSet;
use ualink_spdm::keyprog::{AccelId, MasterKey, KEY_LEN};

/// The most keys one bundle may hold (a bound against absurd layouts from the host).
pub const MAX_KEYS: usize = 1 << 20;

/// One member of the vPod as reported to the lead agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpodMember {
    /// The UALink accelerator ID (10 bits).
    pub accelerator_id: u16,
    /// The accelerator's TX ports.
    pub tx_ports: Vec<u8>,
}

/// One master key and where it goes.
#[derive(Clone)]
pub struct KeyEntry {
    /// The transmitting accelerator.
    pub tx_accelerator: AccelId,
    /// Its TX port.
    pub tx_port: u8,
    /// The destination accelerator (whose RX side gets the same key for source
    /// `tx_accelerator`).
    pub peer: AccelId,
    key: MasterKey,
}

impl KeyEntry {
    /// An entry (for keys received from the lead over the mesh).
    pub(crate) fn new(tx_accelerator: AccelId, tx_port: u8, peer: AccelId, key: MasterKey) -> Self {
        Self {
            tx_accelerator,
            tx_port,
            peer,
            key,
        }
    }

    /// The key (for the TSM to program; never log it).
    pub fn key(&self) -> &MasterKey {
        &self.key
    }
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("tx_accelerator", &self.tx_accelerator.get())
            .field("tx_port", &self.tx_port)
            .field("peer", &self.peer.get())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The vPod master keys of one epoch, to hand to the TSM over the attested channel.
#[derive(Clone, Debug)]
pub struct KeyBundle {
    /// The tenant the vPod belongs to.
    pub tenant_id: String,
    /// The key epoch these keys are for.
    pub epoch: u32,
    /// One entry per (TX accelerator, TX port, peer), sorted by that triple.
    pub entries: Vec<KeyEntry>,
}

impl KeyBundle {
    /// The entry for (`tx`, `port`, `peer`), if the vPod has it.
    pub fn entry(&self, tx: u16, port: u8, peer: u16) -> Option<&KeyEntry> {
        self.entries
            .iter()
            .find(|e| e.tx_accelerator.get() == tx && e.tx_port == port && e.peer.get() == peer)
    }
}

/// Checks the vPod's accelerator IDs: each at most 10 bits and none repeated.
pub fn check_unique_ids(ids: impl IntoIterator<Item = u16>) -> Result<Vec<AccelId>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for id in ids {
        let a = AccelId::new(id).map_err(|_| Error::PeerMisbehaved {
            what: format!("vPod accelerator id {id:#x} exceeds 10 bits"),
        })?;
        if !seen.insert(id) {
            return Err(Error::PeerMisbehaved {
                what: format!("vPod accelerator id {id:#x} is assigned twice (UALink §9.4)"),
            });
        }
        out.push(a);
    }
    Ok(out)
}

/// Generates the master keys for `members` at `epoch`. Refuses duplicate or out-of-range
/// accelerator IDs, a port listed twice for one member, and layouts beyond [`MAX_KEYS`].
pub fn generate_vpod_keys(
    tenant_id: &str,
    members: &[VpodMember],
    epoch: u32,
) -> Result<KeyBundle> {
    let ids = check_unique_ids(members.iter().map(|m| m.accelerator_id))?;
    let mut count: usize = 0;
    for m in members {
        let ports: BTreeSet<u8> = m.tx_ports.iter().copied().collect();
        if ports.len() != m.tx_ports.len() {
            return Err(Error::PeerMisbehaved {
                what: format!("accelerator {:#x} lists a TX port twice", m.accelerator_id),
            });
        }
        count = count
            .checked_add(
                m.tx_ports
                    .len()
                    .saturating_mul(members.len().saturating_sub(1)),
            )
            .filter(|c| *c <= MAX_KEYS)
            .ok_or_else(|| Error::PeerMisbehaved {
                what: format!("the vPod layout needs more than {MAX_KEYS} keys"),
            })?;
    }
    let rng = SystemRandom::new();
    let mut entries = Vec::with_capacity(count);
    for (m, tx) in members.iter().zip(&ids) {
        let mut ports = m.tx_ports.clone();
        ports.sort_unstable();
        for port in ports {
            for peer in ids.iter().filter(|p| *p != tx) {
                let mut bytes = [0u8; KEY_LEN];
                rng.fill(&mut bytes)
                    .map_err(|_| Error::Crypto { what: "system RNG" })?;
                // `from_bytes` takes the bytes and zeroes the stack copy.
                let key = MasterKey::from_bytes(&mut bytes);
                entries.push(KeyEntry {
                    tx_accelerator: *tx,
                    tx_port: port,
                    peer: *peer,
                    key,
                });
            }
        }
    }
    entries.sort_by_key(|e| (e.tx_accelerator.get(), e.tx_port, e.peer.get()));
    Ok(KeyBundle {
        tenant_id: tenant_id.to_string(),
        epoch,
        entries,
    })
}

/// Generates one fresh master key per (TX accelerator, TX port, RX accelerator) of
/// `layout` (the TSM's link layout) at `epoch`. Every accelerator must be one of `members`
/// (whose IDs must be unique and 10-bit), TX and RX must differ, and no triple may repeat.
pub fn generate_keys_for_layout(
    tenant_id: &str,
    members: &[u16],
    layout: &[(u16, u8, u16)],
    epoch: u32,
) -> Result<KeyBundle> {
    let ids = check_unique_ids(members.iter().copied())?;
    if layout.len() > MAX_KEYS {
        return Err(Error::PeerMisbehaved {
            what: format!("the key layout has more than {MAX_KEYS} keys"),
        });
    }
    let member = |v: u16| {
        ids.iter()
            .copied()
            .find(|a| a.get() == v)
            .ok_or_else(|| Error::PeerMisbehaved {
                what: format!("the key layout names accelerator {v:#x}, not a vPod member"),
            })
    };
    let mut seen = BTreeSet::new();
    let rng = SystemRandom::new();
    let mut entries = Vec::with_capacity(layout.len());
    for &(tx, port, rx) in layout {
        let (t, r) = (member(tx)?, member(rx)?);
        if tx == rx {
            return Err(Error::PeerMisbehaved {
                what: format!("the key layout keys accelerator {tx:#x} to itself"),
            });
        }
        if !seen.insert((tx, port, rx)) {
            return Err(Error::PeerMisbehaved {
                what: format!("the key layout lists {tx}:{port}->{rx} twice"),
            });
        }
        let mut bytes = [0u8; KEY_LEN];
        rng.fill(&mut bytes)
            .map_err(|_| Error::Crypto { what: "system RNG" })?;
        entries.push(KeyEntry {
            tx_accelerator: t,
            tx_port: port,
            peer: r,
            key: MasterKey::from_bytes(&mut bytes),
        });
    }
    entries.sort_by_key(|e| (e.tx_accelerator.get(), e.tx_port, e.peer.get()));
    Ok(KeyBundle {
        tenant_id: tenant_id.to_string(),
        epoch,
        entries,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn members() -> Vec<VpodMember> {
        vec![
            VpodMember {
                accelerator_id: 1,
                tx_ports: vec![0, 1],
            },
            VpodMember {
                accelerator_id: 2,
                tx_ports: vec![0],
            },
            VpodMember {
                accelerator_id: 0x3FF,
                tx_ports: vec![3],
            },
        ]
    }

    #[test]
    fn one_distinct_key_per_tx_port_and_peer() {
        let b = generate_vpod_keys("tenant-a", &members(), 1).unwrap();
        // (2 + 1 + 1) ports x 2 peers each.
        assert_eq!(b.entries.len(), 8);
        assert!(b.entry(1, 1, 0x3FF).is_some());
        assert!(b.entry(1, 0, 1).is_none(), "no key to itself");
        let keys: BTreeSet<[u8; 32]> = b.entries.iter().map(|e| *e.key().as_bytes()).collect();
        assert_eq!(keys.len(), 8, "every key is fresh");
        assert!(!keys.contains(&[0u8; 32]));
    }

    #[test]
    fn layout_keys_follow_the_layout_and_refuse_strangers() {
        let layout = [(1, 0, 2), (2, 3, 1)];
        let b = generate_keys_for_layout("t", &[1, 2], &layout, 4).unwrap();
        assert_eq!(b.entries.len(), 2);
        assert!(b.entry(2, 3, 1).is_some());
        assert_eq!(b.epoch, 4);
        assert!(generate_keys_for_layout("t", &[1, 2], &[(1, 0, 3)], 1).is_err());
        assert!(generate_keys_for_layout("t", &[1, 2], &[(1, 0, 1)], 1).is_err());
        assert!(generate_keys_for_layout("t", &[1, 2], &[(1, 0, 2), (1, 0, 2)], 1).is_err());
        assert!(generate_keys_for_layout("t", &[1, 1], &[], 1).is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let b = generate_vpod_keys("tenant-a", &members(), 1).unwrap();
        let dbg = format!("{b:?}");
        for e in &b.entries {
            assert!(!dbg.contains(&hex::encode(e.key().as_bytes())));
            assert!(!dbg.contains(&format!("{:?}", e.key().as_bytes())));
        }
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn bad_layouts_are_refused() {
        let mut dup = members();
        dup[2].accelerator_id = 1;
        let e = generate_vpod_keys("t", &dup, 1).unwrap_err();
        assert!(e.to_string().contains("assigned twice"), "{e}");
        let mut wide = members();
        wide[0].accelerator_id = 0x400;
        assert!(generate_vpod_keys("t", &wide, 1)
            .unwrap_err()
            .to_string()
            .contains("10 bits"));
        let mut ports = members();
        ports[0].tx_ports = vec![4, 4];
        assert!(generate_vpod_keys("t", &ports, 1).is_err());
        let huge: Vec<VpodMember> = (0..1024)
            .map(|i| VpodMember {
                accelerator_id: i,
                tx_ports: (0..=255).collect(),
            })
            .collect();
        assert!(generate_vpod_keys("t", &huge, 1)
            .unwrap_err()
            .to_string()
            .contains("more than"));
    }
}
