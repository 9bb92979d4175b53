//! NEGOTIATE_ALGORITHMS / ALGORITHMS (DSP0274 §10.5), SPDM 1.2 and 1.3.
//!
//! ```text
//! NEGOTIATE_ALGORITHMS (48 bytes with the usual 4 AlgStructs):
//! 0  SPDMVersion | E3 | Param1 = number of AlgStructs | Param2 = 0
//! 4  Length u16 (whole message, <= 128)
//! 6  MeasurementSpecification u8 (bit 0 DMTF)
//! 7  OtherParamsSupport u8 (bits 0..3 opaque data format 0/1; 1.3: bit 4 MULTI_KEY_CONN)
//! 8  BaseAsymAlgo u32
//! 12 BaseHashAlgo u32
//! 16 Reserved 12
//! 28 ExtAsymCount u8 | ExtHashCount u8 | Reserved u8 | MELspecification u8 (1.3; reserved in 1.2)
//! 32 ExtAsym 4*A | ExtHash 4*E | AlgStruct x Param1
//!
//! ALGORITHMS (52 bytes with 4 AlgStructs):
//! 0  SPDMVersion | 63 | Param1 = number of AlgStructs | Param2 = 0
//! 4  Length u16 | MeasurementSpecificationSel u8 | OtherParamsSelection u8
//! 8  MeasurementHashAlgo u32 | BaseAsymSel u32 | BaseHashSel u32
//! 20 Reserved 11 | MELspecificationSel u8 (1.3; reserved in 1.2)
//! 32 ExtAsymSelCount u8 (0/1) | ExtHashSelCount u8 (0/1) | Reserved u16
//! 36 ExtAsymSel 4*A | ExtHashSel 4*E | AlgStruct x Param1
//!
//! AlgStruct: AlgType u8 (2 DHE, 3 AEAD, 4 ReqBaseAsymAlg, 5 KeySchedule; strictly ascending)
//!            | AlgCount u8 (bits 7:4 fixed byte count = 2, bits 3:0 ExtAlgCount)
//!            | AlgSupported u16 | AlgExternal 4*ExtAlgCount
//! Extended algorithm: RegistryID u8 | Reserved u8 | AlgorithmID u16
//! ```

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use crate::algo::{AeadAlg, AsymAlg, DheGroup, HashAlg, Negotiated, SpdmVersion};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed, PeerIncompatible};

/// Exactly one bit of `v` set (zero is "no common algorithm", several is malformed).
fn single_bit(v: u32, what: &'static str) -> Result<u32, Error> {
    match v.count_ones() {
        0 => Err(PeerIncompatible::NoCommonAlgorithm { what }.into()),
        1 => Ok(v),
        _ => Err(Malformed::UnknownValue { what, value: v }.into()),
    }
}

/// MeasurementSpecification bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MeasSpec(pub u8);

impl MeasSpec {
    /// DMTF measurement specification.
    pub const DMTF: Self = Self(0x01);
}

/// OtherParamsSupport / OtherParamsSelection bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OtherParams(pub u8);

impl OtherParams {
    /// Opaque data format 0 (vendor-defined).
    pub const OPAQUE_DATA_FMT0: Self = Self(0x01);
    /// Opaque data format 1 (DMTF general opaque data).
    pub const OPAQUE_DATA_FMT1: Self = Self(0x02);
    /// SPDM 1.3 MULTI_KEY_CONN.
    pub const MULTI_KEY_CONN: Self = Self(0x10);

    /// True if every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    const fn mask(version: SpdmVersion) -> u8 {
        match version {
            SpdmVersion::V12 => 0x03,
            SpdmVersion::V13 => 0x13,
        }
    }
}

/// BaseAsymAlgo / BaseAsymSel / ReqBaseAsymAlg bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AsymBits(pub u32);

impl AsymBits {
    /// RSASSA-2048.
    pub const RSASSA_2048: Self = Self(0x1);
    /// RSAPSS-2048.
    pub const RSAPSS_2048: Self = Self(0x2);
    /// RSASSA-3072.
    pub const RSASSA_3072: Self = Self(0x4);
    /// RSAPSS-3072.
    pub const RSAPSS_3072: Self = Self(0x8);
    /// ECDSA P-256.
    pub const ECDSA_P256: Self = Self(0x10);
    /// RSASSA-4096.
    pub const RSASSA_4096: Self = Self(0x20);
    /// RSAPSS-4096.
    pub const RSAPSS_4096: Self = Self(0x40);
    /// ECDSA P-384.
    pub const ECDSA_P384: Self = Self(0x80);
    /// ECDSA P-521.
    pub const ECDSA_P521: Self = Self(0x100);
    /// SM2.
    pub const SM2_P256: Self = Self(0x200);
    /// EdDSA Ed25519.
    pub const EDDSA_ED25519: Self = Self(0x400);
    /// EdDSA Ed448.
    pub const EDDSA_ED448: Self = Self(0x800);
    /// Every defined bit.
    pub const DEFINED: u32 = 0xFFF;

    /// Signature length S of a single selected algorithm.
    pub fn signature_len(self) -> Result<usize, Error> {
        Ok(
            match single_bit(self.0, "asymmetric (signature) algorithm")? {
                0x1 | 0x2 => 256,
                0x4 | 0x8 => 384,
                0x20 | 0x40 => 512,
                0x10 | 0x200 | 0x400 => 64,
                0x80 => 96,
                0x100 => 132,
                0x800 => 114,
                v => {
                    return Err(Malformed::UnknownValue {
                        what: "asymmetric algorithm bit",
                        value: v,
                    }
                    .into())
                }
            },
        )
    }

    /// The crypto-level algorithm of a single selected bit, if this crate implements it.
    pub fn to_alg(self) -> Result<AsymAlg, Error> {
        match single_bit(self.0, "asymmetric (signature) algorithm")? {
            0x10 => Ok(AsymAlg::EcdsaP256),
            0x80 => Ok(AsymAlg::EcdsaP384),
            _ => Err(PeerIncompatible::NoCommonAlgorithm {
                what: "asymmetric (signature) algorithm",
            }
            .into()),
        }
    }
}

/// BaseHashAlgo / BaseHashSel bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HashBits(pub u32);

impl HashBits {
    /// SHA-256.
    pub const SHA_256: Self = Self(0x1);
    /// SHA-384.
    pub const SHA_384: Self = Self(0x2);
    /// SHA-512.
    pub const SHA_512: Self = Self(0x4);
    /// SHA3-256.
    pub const SHA3_256: Self = Self(0x8);
    /// SHA3-384.
    pub const SHA3_384: Self = Self(0x10);
    /// SHA3-512.
    pub const SHA3_512: Self = Self(0x20);
    /// SM3-256.
    pub const SM3_256: Self = Self(0x40);
    /// Every defined bit.
    pub const DEFINED: u32 = 0x7F;

    /// Digest length H of a single selected algorithm.
    pub fn digest_len(self) -> Result<usize, Error> {
        Ok(match single_bit(self.0, "hash algorithm")? {
            0x1 | 0x8 | 0x40 => 32,
            0x2 | 0x10 => 48,
            0x4 | 0x20 => 64,
            v => {
                return Err(Malformed::UnknownValue {
                    what: "hash algorithm bit",
                    value: v,
                }
                .into())
            }
        })
    }

    /// The crypto-level algorithm of a single selected bit, if this crate implements it.
    pub fn to_alg(self) -> Result<HashAlg, Error> {
        match single_bit(self.0, "hash algorithm")? {
            0x1 => Ok(HashAlg::Sha256),
            0x2 => Ok(HashAlg::Sha384),
            _ => Err(PeerIncompatible::NoCommonAlgorithm {
                what: "hash algorithm",
            }
            .into()),
        }
    }
}

/// MeasurementHashAlgo bit mask (ALGORITHMS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MeasHashBits(pub u32);

impl MeasHashBits {
    /// Raw bit stream only.
    pub const RAW_BIT_STREAM_ONLY: Self = Self(0x1);
    /// SHA-256.
    pub const SHA_256: Self = Self(0x2);
    /// SHA-384.
    pub const SHA_384: Self = Self(0x4);
    /// SHA-512.
    pub const SHA_512: Self = Self(0x8);
    /// SHA3-256.
    pub const SHA3_256: Self = Self(0x10);
    /// SHA3-384.
    pub const SHA3_384: Self = Self(0x20);
    /// SHA3-512.
    pub const SHA3_512: Self = Self(0x40);
    /// SM3-256.
    pub const SM3_256: Self = Self(0x80);
    /// Every defined bit.
    pub const DEFINED: u32 = 0xFF;

    /// The crypto-level algorithm of a single selected bit, if this crate implements it.
    pub fn to_alg(self) -> Result<HashAlg, Error> {
        match single_bit(self.0, "measurement hash algorithm")? {
            0x2 => Ok(HashAlg::Sha256),
            0x4 => Ok(HashAlg::Sha384),
            _ => Err(PeerIncompatible::NoCommonAlgorithm {
                what: "measurement hash algorithm",
            }
            .into()),
        }
    }
}

/// DHE AlgStruct bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DheBits(pub u16);

impl DheBits {
    /// FFDHE-2048.
    pub const FFDHE_2048: Self = Self(0x1);
    /// FFDHE-3072.
    pub const FFDHE_3072: Self = Self(0x2);
    /// FFDHE-4096.
    pub const FFDHE_4096: Self = Self(0x4);
    /// secp256r1.
    pub const SECP256R1: Self = Self(0x8);
    /// secp384r1.
    pub const SECP384R1: Self = Self(0x10);
    /// secp521r1.
    pub const SECP521R1: Self = Self(0x20);
    /// SM2-P256.
    pub const SM2_P256: Self = Self(0x40);
    /// Every defined bit.
    pub const DEFINED: u16 = 0x7F;

    /// ExchangeData length D of a single selected group.
    pub fn exchange_len(self) -> Result<usize, Error> {
        Ok(match single_bit(u32::from(self.0), "DHE group")? {
            0x1 => 256,
            0x2 => 384,
            0x4 => 512,
            0x8 | 0x40 => 64,
            0x10 => 96,
            0x20 => 132,
            v => {
                return Err(Malformed::UnknownValue {
                    what: "DHE group bit",
                    value: v,
                }
                .into())
            }
        })
    }

    /// The crypto-level group of a single selected bit, if this crate implements it.
    pub fn to_group(self) -> Result<DheGroup, Error> {
        match single_bit(u32::from(self.0), "DHE group")? {
            0x8 => Ok(DheGroup::Secp256r1),
            0x10 => Ok(DheGroup::Secp384r1),
            _ => Err(PeerIncompatible::NoCommonAlgorithm { what: "DHE group" }.into()),
        }
    }
}

/// AEAD AlgStruct bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AeadBits(pub u16);

impl AeadBits {
    /// AES-128-GCM.
    pub const AES_128_GCM: Self = Self(0x1);
    /// AES-256-GCM.
    pub const AES_256_GCM: Self = Self(0x2);
    /// ChaCha20-Poly1305.
    pub const CHACHA20_POLY1305: Self = Self(0x4);
    /// SM4-GCM.
    pub const SM4_GCM: Self = Self(0x8);
    /// Every defined bit.
    pub const DEFINED: u16 = 0xF;

    /// The crypto-level suite of a single selected bit, if this crate implements it.
    pub fn to_alg(self) -> Result<AeadAlg, Error> {
        match single_bit(u32::from(self.0), "AEAD")? {
            0x2 => Ok(AeadAlg::Aes256Gcm),
            _ => Err(PeerIncompatible::NoCommonAlgorithm { what: "AEAD" }.into()),
        }
    }
}

/// KeySchedule AlgStruct bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyScheduleBits(pub u16);

impl KeyScheduleBits {
    /// The SPDM key schedule.
    pub const SPDM: Self = Self(0x1);
    /// Every defined bit.
    pub const DEFINED: u16 = 0x1;
}

/// AlgStruct AlgType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlgType(pub u8);

impl AlgType {
    /// DHE groups.
    pub const DHE: Self = Self(2);
    /// AEAD suites.
    pub const AEAD: Self = Self(3);
    /// Requester signature algorithms (ReqBaseAsymAlg).
    pub const REQ_BASE_ASYM: Self = Self(4);
    /// Key schedules.
    pub const KEY_SCHEDULE: Self = Self(5);

    fn defined_bits(self) -> u32 {
        match self.0 {
            2 => u32::from(DheBits::DEFINED),
            3 => u32::from(AeadBits::DEFINED),
            4 => AsymBits::DEFINED,
            _ => u32::from(KeyScheduleBits::DEFINED),
        }
    }
}

/// An extended algorithm entry (RegistryID, AlgorithmID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtAlg {
    /// RegistryID (0 DMTF, 3 PCI-SIG, ...).
    pub registry_id: u8,
    /// AlgorithmID within the registry.
    pub algorithm_id: u16,
}

impl ExtAlg {
    fn read(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        let registry_id = r.u8("extended algorithm RegistryID")?;
        r.reserved(1, "extended algorithm Reserved")?;
        let algorithm_id = r.u16("extended algorithm AlgorithmID")?;
        Ok(Self {
            registry_id,
            algorithm_id,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.u8(self.registry_id).u8(0).u16(self.algorithm_id);
    }
}

/// One AlgStruct (DHE, AEAD, ReqBaseAsymAlg or KeySchedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgStruct {
    /// AlgType.
    pub alg_type: AlgType,
    /// AlgSupported (request) or the selected bit (response; 0 = none).
    pub supported: u16,
    /// AlgExternal entries.
    pub ext: Vec<ExtAlg>,
}

impl AlgStruct {
    /// A struct without extended algorithms.
    pub fn new(alg_type: AlgType, supported: u16) -> Self {
        Self {
            alg_type,
            supported,
            ext: Vec::new(),
        }
    }
}

fn read_alg_structs(r: &mut Reader<'_>, count: u8) -> Result<Vec<AlgStruct>, Error> {
    let mut out: Vec<AlgStruct> = Vec::with_capacity(usize::from(count.min(4)));
    for _ in 0..count {
        let alg_type = AlgType(r.u8("AlgStruct AlgType")?);
        if !(2..=5).contains(&alg_type.0) {
            return Err(Malformed::UnknownValue {
                what: "AlgStruct AlgType",
                value: u32::from(alg_type.0),
            }
            .into());
        }
        if out.last().is_some_and(|p| p.alg_type >= alg_type) {
            return Err(Malformed::UnknownValue {
                what: "AlgStruct AlgType (not strictly ascending)",
                value: u32::from(alg_type.0),
            }
            .into());
        }
        let alg_count = r.u8("AlgStruct AlgCount")?;
        if alg_count >> 4 != 2 {
            return Err(Malformed::BadLength {
                what: "AlgStruct fixed algorithm byte count (must be 2)",
            }
            .into());
        }
        let supported = r.u16("AlgStruct AlgSupported")?;
        if u32::from(supported) & !alg_type.defined_bits() != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "AlgStruct AlgSupported",
            }
            .into());
        }
        let mut ext = Vec::new();
        for _ in 0..(alg_count & 0x0F) {
            ext.push(ExtAlg::read(r)?);
        }
        out.push(AlgStruct {
            alg_type,
            supported,
            ext,
        });
    }
    Ok(out)
}

fn write_alg_structs(w: &mut Writer, structs: &[AlgStruct]) -> Result<(), Error> {
    for s in structs {
        let ext = u8::try_from(s.ext.len())
            .ok()
            .filter(|n| *n <= 0x0F)
            .ok_or(Malformed::LengthOverflow {
                what: "AlgStruct ExtAlgCount",
            })?;
        w.u8(s.alg_type.0).u8(0x20 | ext).u16(s.supported);
        for e in &s.ext {
            e.write(w);
        }
    }
    Ok(())
}

fn count_u8(n: usize, what: &'static str) -> Result<u8, Malformed> {
    u8::try_from(n).map_err(|_| Malformed::LengthOverflow { what })
}

/// Patches the u16 Length at offset 4 with the final message length.
fn finish_with_length(w: Writer, what: &'static str) -> Result<Vec<u8>, Error> {
    let mut v = w.into_vec();
    let len = u16::try_from(v.len()).map_err(|_| Malformed::LengthOverflow { what })?;
    if let Some(slot) = v.get_mut(4..6) {
        slot.copy_from_slice(&len.to_le_bytes());
    }
    Ok(v)
}

/// Maximum NEGOTIATE_ALGORITHMS length in SPDM 1.2/1.3.
pub const NEGOTIATE_ALGORITHMS_MAX_LEN: usize = 128;
/// Maximum ExtAsymCount + ExtHashCount in NEGOTIATE_ALGORITHMS (1.2/1.3).
pub const MAX_EXT_ALG_COUNT: usize = 20;

/// NEGOTIATE_ALGORITHMS: what the requester supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateAlgorithms {
    /// Header version.
    pub version: SpdmVersion,
    /// MeasurementSpecification.
    pub meas_spec: MeasSpec,
    /// OtherParamsSupport.
    pub other_params: OtherParams,
    /// BaseAsymAlgo.
    pub base_asym: AsymBits,
    /// BaseHashAlgo.
    pub base_hash: HashBits,
    /// MELspecification (1.3; must be 0 in 1.2).
    pub mel_spec: u8,
    /// ExtAsym.
    pub ext_asym: Vec<ExtAlg>,
    /// ExtHash.
    pub ext_hash: Vec<ExtAlg>,
    /// AlgStructs, strictly ascending by type.
    pub alg_structs: Vec<AlgStruct>,
}

impl NegotiateAlgorithms {
    /// Parses exactly one NEGOTIATE_ALGORITHMS.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("NEGOTIATE_ALGORITHMS")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let start = r.consumed();
        let (version, p1, p2) = super::begin(r, RequestResponseCode::NEGOTIATE_ALGORITHMS, None)?;
        super::zero(p2, "NEGOTIATE_ALGORITHMS Param2")?;
        let length = usize::from(r.u16("NEGOTIATE_ALGORITHMS Length")?);
        let meas_spec = MeasSpec(r.u8("NEGOTIATE_ALGORITHMS MeasurementSpecification")?);
        super::only_bits(
            meas_spec.0,
            MeasSpec::DMTF.0,
            "NEGOTIATE_ALGORITHMS MeasurementSpecification",
        )?;
        let other_params = OtherParams(r.u8("NEGOTIATE_ALGORITHMS OtherParamsSupport")?);
        super::only_bits(
            other_params.0,
            OtherParams::mask(version),
            "NEGOTIATE_ALGORITHMS OtherParamsSupport",
        )?;
        let base_asym = AsymBits(r.u32("NEGOTIATE_ALGORITHMS BaseAsymAlgo")?);
        let base_hash = HashBits(r.u32("NEGOTIATE_ALGORITHMS BaseHashAlgo")?);
        if base_asym.0 & !AsymBits::DEFINED != 0 || base_hash.0 & !HashBits::DEFINED != 0 {
            return Err(Malformed::ReservedNonZero {
                what: "NEGOTIATE_ALGORITHMS BaseAsymAlgo/BaseHashAlgo",
            }
            .into());
        }
        r.reserved(12, "NEGOTIATE_ALGORITHMS Reserved")?;
        let ext_asym_count = r.u8("NEGOTIATE_ALGORITHMS ExtAsymCount")?;
        let ext_hash_count = r.u8("NEGOTIATE_ALGORITHMS ExtHashCount")?;
        if usize::from(ext_asym_count) + usize::from(ext_hash_count) > MAX_EXT_ALG_COUNT {
            return Err(Malformed::BadLength {
                what: "NEGOTIATE_ALGORITHMS ExtAsymCount + ExtHashCount",
            }
            .into());
        }
        r.reserved(1, "NEGOTIATE_ALGORITHMS Reserved2")?;
        let mel_spec = r.u8("NEGOTIATE_ALGORITHMS MELspecification")?;
        match version {
            SpdmVersion::V12 => super::zero(
                mel_spec,
                "NEGOTIATE_ALGORITHMS Reserved (1.2 MELspecification)",
            )?,
            SpdmVersion::V13 => {
                super::only_bits(mel_spec, 0x01, "NEGOTIATE_ALGORITHMS MELspecification")?
            }
        }
        let ext_asym = (0..ext_asym_count)
            .map(|_| ExtAlg::read(r))
            .collect::<Result<Vec<_>, _>>()?;
        let ext_hash = (0..ext_hash_count)
            .map(|_| ExtAlg::read(r))
            .collect::<Result<Vec<_>, _>>()?;
        let alg_structs = read_alg_structs(r, p1)?;
        let consumed = r.consumed().saturating_sub(start);
        if length != consumed || length > NEGOTIATE_ALGORITHMS_MAX_LEN {
            return Err(Malformed::BadLength {
                what: "NEGOTIATE_ALGORITHMS Length",
            }
            .into());
        }
        Ok(Self {
            version,
            meas_spec,
            other_params,
            base_asym,
            base_hash,
            mel_spec,
            ext_asym,
            ext_hash,
            alg_structs,
        })
    }

    /// Encodes the message (Length is computed).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let n = count_u8(self.alg_structs.len(), "NEGOTIATE_ALGORITHMS Param1")?;
        let mut w = super::start(
            self.version,
            RequestResponseCode::NEGOTIATE_ALGORITHMS,
            n,
            0,
        );
        w.u16(0)
            .u8(self.meas_spec.0)
            .u8(self.other_params.0)
            .u32(self.base_asym.0)
            .u32(self.base_hash.0)
            .zeros(12)
            .u8(count_u8(
                self.ext_asym.len(),
                "NEGOTIATE_ALGORITHMS ExtAsymCount",
            )?)
            .u8(count_u8(
                self.ext_hash.len(),
                "NEGOTIATE_ALGORITHMS ExtHashCount",
            )?)
            .u8(0)
            .u8(self.mel_spec);
        for e in self.ext_asym.iter().chain(&self.ext_hash) {
            e.write(&mut w);
        }
        write_alg_structs(&mut w, &self.alg_structs)?;
        finish_with_length(w, "NEGOTIATE_ALGORITHMS Length")
    }

    /// The AlgStruct of the given type, if present.
    pub fn alg_struct(&self, t: AlgType) -> Option<&AlgStruct> {
        self.alg_structs.iter().find(|s| s.alg_type == t)
    }
}

/// ALGORITHMS: the responder's selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algorithms {
    /// Header version.
    pub version: SpdmVersion,
    /// MeasurementSpecificationSel.
    pub meas_spec_sel: MeasSpec,
    /// OtherParamsSelection.
    pub other_params_sel: OtherParams,
    /// MeasurementHashAlgo.
    pub meas_hash_sel: MeasHashBits,
    /// BaseAsymSel.
    pub base_asym_sel: AsymBits,
    /// BaseHashSel.
    pub base_hash_sel: HashBits,
    /// MELspecificationSel (1.3; 0 in 1.2).
    pub mel_spec_sel: u8,
    /// ExtAsymSel (at most one).
    pub ext_asym_sel: Vec<ExtAlg>,
    /// ExtHashSel (at most one).
    pub ext_hash_sel: Vec<ExtAlg>,
    /// AlgStructs with the selected bit each, strictly ascending by type.
    pub alg_structs: Vec<AlgStruct>,
}

impl Algorithms {
    /// Parses exactly one ALGORITHMS.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let m = Self::read(&mut r)?;
        r.finish("ALGORITHMS")?;
        Ok(m)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
        let start = r.consumed();
        let (version, p1, p2) = super::begin(r, RequestResponseCode::ALGORITHMS, None)?;
        super::zero(p2, "ALGORITHMS Param2")?;
        let length = usize::from(r.u16("ALGORITHMS Length")?);
        let meas_spec_sel = MeasSpec(r.u8("ALGORITHMS MeasurementSpecificationSel")?);
        super::only_bits(
            meas_spec_sel.0,
            MeasSpec::DMTF.0,
            "ALGORITHMS MeasurementSpecificationSel",
        )?;
        let other_params_sel = OtherParams(r.u8("ALGORITHMS OtherParamsSelection")?);
        super::only_bits(
            other_params_sel.0,
            OtherParams::mask(version),
            "ALGORITHMS OtherParamsSelection",
        )?;
        let meas_hash_sel = MeasHashBits(r.u32("ALGORITHMS MeasurementHashAlgo")?);
        let base_asym_sel = AsymBits(r.u32("ALGORITHMS BaseAsymSel")?);
        let base_hash_sel = HashBits(r.u32("ALGORITHMS BaseHashSel")?);
        if meas_hash_sel.0 & !MeasHashBits::DEFINED != 0
            || base_asym_sel.0 & !AsymBits::DEFINED != 0
            || base_hash_sel.0 & !HashBits::DEFINED != 0
        {
            return Err(Malformed::ReservedNonZero {
                what: "ALGORITHMS MeasurementHashAlgo/BaseAsymSel/BaseHashSel",
            }
            .into());
        }
        r.reserved(11, "ALGORITHMS Reserved")?;
        let mel_spec_sel = r.u8("ALGORITHMS MELspecificationSel")?;
        match version {
            SpdmVersion::V12 => super::zero(
                mel_spec_sel,
                "ALGORITHMS Reserved (1.2 MELspecificationSel)",
            )?,
            SpdmVersion::V13 => {
                super::only_bits(mel_spec_sel, 0x01, "ALGORITHMS MELspecificationSel")?
            }
        }
        let ext_asym_count = r.u8("ALGORITHMS ExtAsymSelCount")?;
        let ext_hash_count = r.u8("ALGORITHMS ExtHashSelCount")?;
        if ext_asym_count > 1 || ext_hash_count > 1 {
            return Err(Malformed::BadLength {
                what: "ALGORITHMS ExtAsymSelCount/ExtHashSelCount (at most 1)",
            }
            .into());
        }
        r.reserved(2, "ALGORITHMS Reserved2")?;
        let ext_asym_sel = (0..ext_asym_count)
            .map(|_| ExtAlg::read(r))
            .collect::<Result<Vec<_>, _>>()?;
        let ext_hash_sel = (0..ext_hash_count)
            .map(|_| ExtAlg::read(r))
            .collect::<Result<Vec<_>, _>>()?;
        let alg_structs = read_alg_structs(r, p1)?;
        let consumed = r.consumed().saturating_sub(start);
        if length != consumed {
            return Err(Malformed::BadLength {
                what: "ALGORITHMS Length",
            }
            .into());
        }
        Ok(Self {
            version,
            meas_spec_sel,
            other_params_sel,
            meas_hash_sel,
            base_asym_sel,
            base_hash_sel,
            mel_spec_sel,
            ext_asym_sel,
            ext_hash_sel,
            alg_structs,
        })
    }

    /// Encodes the message (Length is computed).
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let n = count_u8(self.alg_structs.len(), "ALGORITHMS Param1")?;
        let mut w = super::start(self.version, RequestResponseCode::ALGORITHMS, n, 0);
        w.u16(0)
            .u8(self.meas_spec_sel.0)
            .u8(self.other_params_sel.0)
            .u32(self.meas_hash_sel.0)
            .u32(self.base_asym_sel.0)
            .u32(self.base_hash_sel.0)
            .zeros(11)
            .u8(self.mel_spec_sel)
            .u8(count_u8(
                self.ext_asym_sel.len(),
                "ALGORITHMS ExtAsymSelCount",
            )?)
            .u8(count_u8(
                self.ext_hash_sel.len(),
                "ALGORITHMS ExtHashSelCount",
            )?)
            .u16(0);
        for e in self.ext_asym_sel.iter().chain(&self.ext_hash_sel) {
            e.write(&mut w);
        }
        write_alg_structs(&mut w, &self.alg_structs)?;
        finish_with_length(w, "ALGORITHMS Length")
    }

    /// The AlgStruct of the given type, if present.
    pub fn alg_struct(&self, t: AlgType) -> Option<&AlgStruct> {
        self.alg_structs.iter().find(|s| s.alg_type == t)
    }

    fn selected(&self, t: AlgType) -> u16 {
        self.alg_struct(t).map_or(0, |s| s.supported)
    }

    /// The selected requester signature algorithm bits (0 if none).
    pub fn req_base_asym_sel(&self) -> AsymBits {
        AsymBits(u32::from(self.selected(AlgType::REQ_BASE_ASYM)))
    }

    /// The selected DHE group bits (0 if none).
    pub fn dhe_sel(&self) -> DheBits {
        DheBits(self.selected(AlgType::DHE))
    }

    /// The selected AEAD bits (0 if none).
    pub fn aead_sel(&self) -> AeadBits {
        AeadBits(self.selected(AlgType::AEAD))
    }

    /// The selected key schedule bits (0 if none).
    pub fn key_schedule_sel(&self) -> KeyScheduleBits {
        KeyScheduleBits(self.selected(AlgType::KEY_SCHEDULE))
    }

    /// Converts the full selection (including DHE, AEAD and the SPDM key schedule) into the
    /// algorithms this crate implements. Zero bits → [`PeerIncompatible::NoCommonAlgorithm`];
    /// several bits → [`Malformed::UnknownValue`]; an algorithm we do not implement →
    /// [`PeerIncompatible::NoCommonAlgorithm`].
    pub fn negotiated(&self) -> Result<Negotiated, Error> {
        if single_bit(u32::from(self.key_schedule_sel().0), "key schedule")?
            != u32::from(KeyScheduleBits::SPDM.0)
        {
            return Err(PeerIncompatible::NoCommonAlgorithm {
                what: "key schedule",
            }
            .into());
        }
        Ok(Negotiated {
            version: self.version,
            hash: self.base_hash_sel.to_alg()?,
            meas_hash: self.meas_hash_sel.to_alg()?,
            asym: self.base_asym_sel.to_alg()?,
            dhe: self.dhe_sel().to_group()?,
            aead: self.aead_sel().to_alg()?,
        })
    }
}
