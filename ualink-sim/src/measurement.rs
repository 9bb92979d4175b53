//! Measurement blocks of a simulated accelerator: ROM, firmware and configuration images with
//! their SHA-384 digests, and a tamper knob.
//!
//! The images are synthetic but deterministic: the golden image of each block is derived from the
//! vendor, model and firmware version, so reference values can be computed independently with
//! [`reference_digests`] (what a provider's policy would hold). The SPDM responder (wired in once
//! ualink-spdm's `Device` trait lands) turns these into DMTF measurement blocks; this module holds
//! data only and defines no wire format.

use ring::digest;

/// DMTF measurement value types used (DSP0274 DMTFSpecMeasurementValueType, bits 6:0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeasurementKind {
    /// Immutable ROM (type 0x00), block index 1.
    Rom,
    /// Mutable firmware (type 0x01), block index 2.
    Firmware,
    /// Hardware configuration (type 0x02), block index 3.
    Config,
}

impl MeasurementKind {
    /// All kinds in block-index order.
    pub const ALL: [MeasurementKind; 3] = [
        MeasurementKind::Rom,
        MeasurementKind::Firmware,
        MeasurementKind::Config,
    ];

    /// The SPDM measurement block index (1-based).
    pub fn index(self) -> u8 {
        match self {
            MeasurementKind::Rom => 1,
            MeasurementKind::Firmware => 2,
            MeasurementKind::Config => 3,
        }
    }

    /// The DMTFSpecMeasurementValueType code (digest form, bit 7 clear).
    pub fn dmtf_value_type(self) -> u8 {
        match self {
            MeasurementKind::Rom => 0x00,
            MeasurementKind::Firmware => 0x01,
            MeasurementKind::Config => 0x02,
        }
    }

    fn label(self) -> &'static str {
        match self {
            MeasurementKind::Rom => "rom",
            MeasurementKind::Firmware => "firmware",
            MeasurementKind::Config => "config",
        }
    }
}

/// One measured component.
#[derive(Clone, PartialEq, Eq)]
pub struct MeasurementBlock {
    /// Which component.
    pub kind: MeasurementKind,
    /// The component's current image.
    pub image: Vec<u8>,
}

impl core::fmt::Debug for MeasurementBlock {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = self.digest();
        let mut hex = String::with_capacity(16);
        for b in d.iter().take(8) {
            hex.push_str(&format!("{b:02x}"));
        }
        f.debug_struct("MeasurementBlock")
            .field("kind", &self.kind)
            .field("image_len", &self.image.len())
            .field("sha384", &format_args!("{hex}.."))
            .finish()
    }
}

impl MeasurementBlock {
    /// SHA-384 of the current image.
    pub fn digest(&self) -> [u8; 48] {
        sha384(&self.image)
    }
}

fn sha384(b: &[u8]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(digest::digest(&digest::SHA384, b).as_ref());
    out
}

/// Deterministic golden image of one component.
pub fn golden_image(vendor: &str, model: &str, firmware: &str, kind: MeasurementKind) -> Vec<u8> {
    let version = match kind {
        // The ROM does not change with firmware updates.
        MeasurementKind::Rom => "",
        MeasurementKind::Firmware | MeasurementKind::Config => firmware,
    };
    let seed = format!("ualink-sim/{}/{vendor}/{model}/{version}", kind.label());
    // 4 KiB image: the seed followed by a SHA-384 chain, so images differ throughout.
    let mut img = Vec::with_capacity(4096);
    img.extend_from_slice(seed.as_bytes());
    let mut h = sha384(seed.as_bytes());
    while img.len() < 4096 {
        img.extend_from_slice(&h);
        h = sha384(&h);
    }
    img.truncate(4096);
    img
}

/// Reference digests (ROM, firmware, config) for a vendor/model/firmware version.
pub fn reference_digests(vendor: &str, model: &str, firmware: &str) -> [[u8; 48]; 3] {
    MeasurementKind::ALL.map(|k| sha384(&golden_image(vendor, model, firmware, k)))
}

/// How a tamper knob modifies a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Flip one bit of the image at `offset` (modulo the image size).
    FlipBit {
        /// Byte offset.
        offset: usize,
    },
    /// Replace the image with the golden image of another firmware version (a rollback or a
    /// cross-version swap: a genuine image that policy must still refuse).
    OtherVersion(&'static str),
}

/// The three measured components of one accelerator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measurements {
    vendor: String,
    model: String,
    blocks: [MeasurementBlock; 3],
}

impl Measurements {
    /// Golden measurements for the given identity.
    pub fn golden(vendor: &str, model: &str, firmware: &str) -> Self {
        Self {
            vendor: vendor.to_owned(),
            model: model.to_owned(),
            blocks: MeasurementKind::ALL.map(|kind| MeasurementBlock {
                kind,
                image: golden_image(vendor, model, firmware, kind),
            }),
        }
    }

    /// The blocks in index order (ROM, firmware, config).
    pub fn blocks(&self) -> &[MeasurementBlock; 3] {
        &self.blocks
    }

    /// The block of one kind.
    pub fn block(&self, kind: MeasurementKind) -> &MeasurementBlock {
        match kind {
            MeasurementKind::Rom => &self.blocks[0],
            MeasurementKind::Firmware => &self.blocks[1],
            MeasurementKind::Config => &self.blocks[2],
        }
    }

    /// A genuine firmware update to `version`: the firmware and configuration images become
    /// that version's golden images (the ROM does not change). Persistent, as flash would be.
    pub fn update_firmware(&mut self, version: &str) {
        for kind in [MeasurementKind::Firmware, MeasurementKind::Config] {
            let idx = usize::from(kind.index()).saturating_sub(1);
            if let Some(b) = self.blocks.get_mut(idx) {
                b.image = golden_image(&self.vendor, &self.model, version, kind);
            }
        }
    }

    /// The tamper knob: modifies the component's image (persistent, as flash would be).
    pub fn tamper(&mut self, kind: MeasurementKind, how: Tamper) {
        let idx = usize::from(kind.index()).saturating_sub(1);
        let Some(b) = self.blocks.get_mut(idx) else {
            return;
        };
        match how {
            Tamper::FlipBit { offset } => {
                let len = b.image.len();
                if len > 0 {
                    if let Some(byte) = b.image.get_mut(offset % len) {
                        *byte ^= 0x01;
                    }
                }
            }
            Tamper::OtherVersion(v) => {
                b.image = golden_image(&self.vendor, &self.model, v, kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_matches_reference_and_tamper_changes_digest() {
        let mut m = Measurements::golden("Acme", "X1", "1.0.0");
        let refs = reference_digests("Acme", "X1", "1.0.0");
        for (b, r) in m.blocks().iter().zip(refs.iter()) {
            assert_eq!(&b.digest(), r);
        }
        m.tamper(MeasurementKind::Firmware, Tamper::FlipBit { offset: 77 });
        assert_ne!(m.block(MeasurementKind::Firmware).digest(), refs[1]);
        assert_eq!(m.block(MeasurementKind::Rom).digest(), refs[0]);
        // A genuine image of another version still differs from the reference.
        let mut m2 = Measurements::golden("Acme", "X1", "1.0.0");
        m2.tamper(MeasurementKind::Firmware, Tamper::OtherVersion("0.9.0"));
        assert_eq!(
            m2.block(MeasurementKind::Firmware).digest(),
            reference_digests("Acme", "X1", "0.9.0")[1]
        );
        // The ROM does not depend on the firmware version.
        assert_eq!(reference_digests("Acme", "X1", "0.9.0")[0], refs[0]);
    }
}
