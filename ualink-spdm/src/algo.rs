//! Negotiable algorithms at the crypto level (what [`crate::crypto`] implements).
//!
//! The wire bit masks live with the ALGORITHMS messages; these enums are what the engine
//! works with after negotiation. Only algorithms this crate implements are representable.

/// Hash algorithm (SPDM BaseHashAlgo / MeasurementHashAlgo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256 (BaseHashAlgo bit 0x1).
    Sha256,
    /// SHA-384 (BaseHashAlgo bit 0x2).
    Sha384,
}

impl HashAlg {
    /// Digest length H in bytes.
    #[allow(clippy::len_without_is_empty)] // a digest size, not a container
    pub const fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
        }
    }

    /// The BaseHashAlgo wire bit.
    pub const fn base_hash_bit(self) -> u32 {
        match self {
            Self::Sha256 => 0x1,
            Self::Sha384 => 0x2,
        }
    }

    /// The MeasurementHashAlgo wire bit.
    pub const fn meas_hash_bit(self) -> u32 {
        match self {
            Self::Sha256 => 0x2,
            Self::Sha384 => 0x4,
        }
    }
}

/// Signature algorithm (SPDM BaseAsymAlgo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymAlg {
    /// ECDSA P-256 with SHA-256 (BaseAsymAlgo bit 0x10).
    EcdsaP256,
    /// ECDSA P-384 with SHA-384 (BaseAsymAlgo bit 0x80).
    EcdsaP384,
}

impl AsymAlg {
    /// Raw r‖s signature length on the wire.
    pub const fn sig_len(self) -> usize {
        match self {
            Self::EcdsaP256 => 64,
            Self::EcdsaP384 => 96,
        }
    }

    /// The BaseAsymAlgo wire bit.
    pub const fn bit(self) -> u32 {
        match self {
            Self::EcdsaP256 => 0x10,
            Self::EcdsaP384 => 0x80,
        }
    }
}

/// Key-exchange group (SPDM DHE AlgStruct).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DheGroup {
    /// secp256r1 (bit 0x8).
    Secp256r1,
    /// secp384r1 (bit 0x10).
    Secp384r1,
}

impl DheGroup {
    /// Length of ExchangeData (uncompressed X‖Y without the 0x04 prefix).
    pub const fn exchange_len(self) -> usize {
        match self {
            Self::Secp256r1 => 64,
            Self::Secp384r1 => 96,
        }
    }

    /// The DHE AlgStruct wire bit.
    pub const fn bit(self) -> u16 {
        match self {
            Self::Secp256r1 => 0x8,
            Self::Secp384r1 => 0x10,
        }
    }
}

/// AEAD for secured messages (SPDM AEAD AlgStruct).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AeadAlg {
    /// AES-256-GCM (bit 0x2).
    Aes256Gcm,
}

impl AeadAlg {
    /// Key length in bytes.
    pub const fn key_len(self) -> usize {
        32
    }

    /// The AEAD AlgStruct wire bit.
    pub const fn bit(self) -> u16 {
        0x2
    }
}

/// SPDM protocol version we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpdmVersion {
    /// SPDM 1.2 (header byte 0x12).
    V12,
    /// SPDM 1.3 (header byte 0x13).
    V13,
}

impl SpdmVersion {
    /// The header byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::V12 => 0x12,
            Self::V13 => 0x13,
        }
    }

    /// The version label used in the key schedule's BinConcat and the signing prefix.
    pub const fn label(self) -> &'static str {
        match self {
            Self::V12 => "spdm1.2 ",
            Self::V13 => "spdm1.3 ",
        }
    }

    /// Parses a header byte we speak.
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x12 => Some(Self::V12),
            0x13 => Some(Self::V13),
            _ => None,
        }
    }
}

/// The algorithms fixed by NEGOTIATE_ALGORITHMS / ALGORITHMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Negotiated {
    /// Negotiated version.
    pub version: SpdmVersion,
    /// BaseHashAlgo (also used for transcripts and the key schedule).
    pub hash: HashAlg,
    /// MeasurementHashAlgo.
    pub meas_hash: HashAlg,
    /// BaseAsymAlgo.
    pub asym: AsymAlg,
    /// DHE group.
    pub dhe: DheGroup,
    /// AEAD suite.
    pub aead: AeadAlg,
}
