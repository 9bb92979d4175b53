//! Negotiation policy shared by the requester and the responder: which SPDM version and which
//! algorithms two peers settle on, and the checks that keep a peer from steering us elsewhere.
//!
//! * Version: the highest version both sides list. We speak 1.2 and 1.3; entries above 1.3
//!   (e.g. 1.4) are ignored, so a 1.4-capable peer negotiates down to 1.3; a peer listing only
//!   1.0/1.1 is refused ([`PeerIncompatible::NoCommonVersion`]). After VERSION every message
//!   must carry the selected version; a lower one than the highest common is a downgrade.
//! * Algorithms: the responder picks exactly one bit from what the requester offered, in its own
//!   preference order; the requester checks that each selection is a single bit it offered.

use crate::algo::{AeadAlg, AsymAlg, DheGroup, HashAlg, SpdmVersion};
use crate::error::{PeerIncompatible, PeerMisbehaved};

/// Versions this crate speaks, lowest first.
pub const OUR_VERSIONS: [SpdmVersion; 2] = [SpdmVersion::V12, SpdmVersion::V13];

/// The header byte of a VERSION entry (`major << 4 | minor`); update/alpha nibbles ignored.
pub const fn entry_version_byte(entry: u16) -> u8 {
    (entry >> 8) as u8
}

/// The VERSION entry for `v` (update and alpha 0).
pub const fn version_entry(v: SpdmVersion) -> u16 {
    (v.byte() as u16) << 8
}

/// The highest version in both `ours` and the peer's VERSION `entries`.
pub fn highest_common(
    ours: &[SpdmVersion],
    entries: &[u16],
) -> Result<SpdmVersion, PeerIncompatible> {
    entries
        .iter()
        .filter_map(|e| SpdmVersion::from_byte(entry_version_byte(*e)))
        .filter(|v| ours.contains(v))
        .max()
        .ok_or(PeerIncompatible::NoCommonVersion)
}

/// Checks a message header's version byte against the negotiated version. A lower version
/// than negotiated is reported as a downgrade; any other difference as a mismatch.
pub fn check_version(negotiated: SpdmVersion, got: u8) -> Result<(), PeerMisbehaved> {
    if got == negotiated.byte() {
        Ok(())
    } else if got < negotiated.byte() {
        Err(PeerMisbehaved::Downgrade {
            expected: negotiated.byte(),
            got,
        })
    } else {
        Err(PeerMisbehaved::VersionMismatch {
            negotiated: negotiated.byte(),
            got,
        })
    }
}

/// The hash that goes with a signature curve. ECDSA signatures here hash the signed message
/// with the curve's hash, so BaseHashAlgo must match BaseAsymAlgo (P-256/SHA-256,
/// P-384/SHA-384).
pub const fn hash_for(asym: AsymAlg) -> HashAlg {
    match asym {
        AsymAlg::EcdsaP256 => HashAlg::Sha256,
        AsymAlg::EcdsaP384 => HashAlg::Sha384,
    }
}

/// The DHE group of the same strength as a signature curve.
pub const fn dhe_for(asym: AsymAlg) -> DheGroup {
    match asym {
        AsymAlg::EcdsaP256 => DheGroup::Secp256r1,
        AsymAlg::EcdsaP384 => DheGroup::Secp384r1,
    }
}

/// The algorithms one side supports, in preference order (most preferred first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmPolicy {
    /// Signature algorithms (BaseAsymAlgo).
    pub asym: alloc::vec::Vec<AsymAlg>,
    /// Hash algorithms (BaseHashAlgo and MeasurementHashAlgo).
    pub hash: alloc::vec::Vec<HashAlg>,
    /// Key-exchange groups.
    pub dhe: alloc::vec::Vec<DheGroup>,
    /// AEAD suites.
    pub aead: alloc::vec::Vec<AeadAlg>,
}

impl Default for AlgorithmPolicy {
    /// Everything this crate implements, strongest first.
    fn default() -> Self {
        Self {
            asym: alloc::vec![AsymAlg::EcdsaP384, AsymAlg::EcdsaP256],
            hash: alloc::vec![HashAlg::Sha384, HashAlg::Sha256],
            dhe: alloc::vec![DheGroup::Secp384r1, DheGroup::Secp256r1],
            aead: alloc::vec![AeadAlg::Aes256Gcm],
        }
    }
}

impl AlgorithmPolicy {
    /// A policy for one suite: P-256/SHA-256/secp256r1 or P-384/SHA-384/secp384r1, AES-256-GCM.
    pub fn suite(asym: AsymAlg) -> Self {
        match asym {
            AsymAlg::EcdsaP256 => Self {
                asym: alloc::vec![AsymAlg::EcdsaP256],
                hash: alloc::vec![HashAlg::Sha256],
                dhe: alloc::vec![DheGroup::Secp256r1],
                aead: alloc::vec![AeadAlg::Aes256Gcm],
            },
            AsymAlg::EcdsaP384 => Self {
                asym: alloc::vec![AsymAlg::EcdsaP384],
                hash: alloc::vec![HashAlg::Sha384],
                dhe: alloc::vec![DheGroup::Secp384r1],
                aead: alloc::vec![AeadAlg::Aes256Gcm],
            },
        }
    }

    /// BaseAsymAlgo mask to offer.
    pub fn asym_mask(&self) -> u32 {
        self.asym.iter().fold(0, |m, a| m | a.bit())
    }

    /// BaseHashAlgo mask to offer.
    pub fn hash_mask(&self) -> u32 {
        self.hash.iter().fold(0, |m, h| m | h.base_hash_bit())
    }

    /// MeasurementHashAlgo mask this side can produce.
    pub fn meas_hash_mask(&self) -> u32 {
        self.hash.iter().fold(0, |m, h| m | h.meas_hash_bit())
    }

    /// DHE AlgStruct mask to offer.
    pub fn dhe_mask(&self) -> u16 {
        self.dhe.iter().fold(0, |m, d| m | d.bit())
    }

    /// AEAD AlgStruct mask to offer.
    pub fn aead_mask(&self) -> u16 {
        self.aead.iter().fold(0, |m, a| m | a.bit())
    }

    /// Responder side: our most preferred signature algorithm in the peer's `offered` mask.
    pub fn pick_asym(&self, offered: u32) -> Result<AsymAlg, PeerIncompatible> {
        self.asym
            .iter()
            .copied()
            .find(|a| offered & a.bit() != 0)
            .ok_or(PeerIncompatible::NoCommonAlgorithm {
                what: "BaseAsymAlgo",
            })
    }

    /// Responder side: our most preferred hash in the peer's `offered` BaseHashAlgo mask.
    pub fn pick_hash(&self, offered: u32) -> Result<HashAlg, PeerIncompatible> {
        self.hash
            .iter()
            .copied()
            .find(|h| offered & h.base_hash_bit() != 0)
            .ok_or(PeerIncompatible::NoCommonAlgorithm {
                what: "BaseHashAlgo",
            })
    }

    /// Responder side: our most preferred DHE group in the peer's `offered` mask.
    pub fn pick_dhe(&self, offered: u16) -> Result<DheGroup, PeerIncompatible> {
        self.dhe
            .iter()
            .copied()
            .find(|d| offered & d.bit() != 0)
            .ok_or(PeerIncompatible::NoCommonAlgorithm { what: "DHE" })
    }

    /// Responder side: our most preferred AEAD in the peer's `offered` mask.
    pub fn pick_aead(&self, offered: u16) -> Result<AeadAlg, PeerIncompatible> {
        self.aead
            .iter()
            .copied()
            .find(|a| offered & a.bit() != 0)
            .ok_or(PeerIncompatible::NoCommonAlgorithm { what: "AEAD" })
    }

    /// Requester side: the responder's BaseAsymSel must be one bit we offered.
    pub fn accept_asym(&self, selected: u32) -> Result<AsymAlg, PeerMisbehaved> {
        single(selected, "BaseAsymSel")?;
        self.asym
            .iter()
            .copied()
            .find(|a| a.bit() == selected)
            .ok_or(PeerMisbehaved::SelectionNotOffered {
                what: "BaseAsymSel",
            })
    }

    /// Requester side: the responder's BaseHashSel must be one bit we offered.
    pub fn accept_hash(&self, selected: u32) -> Result<HashAlg, PeerMisbehaved> {
        single(selected, "BaseHashSel")?;
        self.hash
            .iter()
            .copied()
            .find(|h| h.base_hash_bit() == selected)
            .ok_or(PeerMisbehaved::SelectionNotOffered {
                what: "BaseHashSel",
            })
    }

    /// Requester side: MeasurementHashAlgo must be one hash we implement.
    pub fn accept_meas_hash(&self, selected: u32) -> Result<HashAlg, PeerMisbehaved> {
        single(selected, "MeasurementHashAlgo")?;
        self.hash
            .iter()
            .copied()
            .find(|h| h.meas_hash_bit() == selected)
            .ok_or(PeerMisbehaved::SelectionNotOffered {
                what: "MeasurementHashAlgo",
            })
    }

    /// Requester side: the DHE selection must be one bit we offered.
    pub fn accept_dhe(&self, selected: u16) -> Result<DheGroup, PeerMisbehaved> {
        single(u32::from(selected), "DHE")?;
        self.dhe
            .iter()
            .copied()
            .find(|d| d.bit() == selected)
            .ok_or(PeerMisbehaved::SelectionNotOffered { what: "DHE" })
    }

    /// Requester side: the AEAD selection must be one bit we offered.
    pub fn accept_aead(&self, selected: u16) -> Result<AeadAlg, PeerMisbehaved> {
        single(u32::from(selected), "AEAD")?;
        self.aead
            .iter()
            .copied()
            .find(|a| a.bit() == selected)
            .ok_or(PeerMisbehaved::SelectionNotOffered { what: "AEAD" })
    }
}

fn single(mask: u32, what: &'static str) -> Result<(), PeerMisbehaved> {
    if mask.count_ones() == 1 {
        Ok(())
    } else {
        Err(PeerMisbehaved::SelectionNotOffered { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_common_version() {
        let v = highest_common(&OUR_VERSIONS, &[0x1000, 0x1100, 0x1200, 0x1300, 0x1400]);
        assert_eq!(v, Ok(SpdmVersion::V13));
        let v = highest_common(&OUR_VERSIONS, &[0x1200, 0x1210]);
        assert_eq!(v, Ok(SpdmVersion::V12));
        assert_eq!(
            highest_common(&OUR_VERSIONS, &[0x1000, 0x1100]),
            Err(PeerIncompatible::NoCommonVersion)
        );
        assert_eq!(
            highest_common(&[SpdmVersion::V12], &[0x1300]),
            Err(PeerIncompatible::NoCommonVersion)
        );
    }

    #[test]
    fn version_check_names_downgrades() {
        assert!(check_version(SpdmVersion::V13, 0x13).is_ok());
        assert_eq!(
            check_version(SpdmVersion::V13, 0x11),
            Err(PeerMisbehaved::Downgrade {
                expected: 0x13,
                got: 0x11
            })
        );
        assert!(matches!(
            check_version(SpdmVersion::V12, 0x13),
            Err(PeerMisbehaved::VersionMismatch { .. })
        ));
    }

    #[test]
    fn selections_must_be_single_offered_bits() {
        let p = AlgorithmPolicy::suite(AsymAlg::EcdsaP256);
        assert_eq!(p.accept_asym(0x10), Ok(AsymAlg::EcdsaP256));
        assert!(p.accept_asym(0x80).is_err());
        assert!(p.accept_asym(0x90).is_err());
        assert!(p.accept_asym(0).is_err());
        assert_eq!(
            AlgorithmPolicy::default().pick_asym(0x90),
            Ok(AsymAlg::EcdsaP384)
        );
        assert!(p.pick_dhe(0x10).is_err());
    }
}
