//! The SEV-SNP `ATTESTATION_REPORT` (AMD SEV-SNP ABI spec 56860, rev 1.58, table 23), parsed
//! from and encoded to its fixed 1184-byte layout.
//!
//! Byte layout (all integers little-endian):
//! ```text
//! 0x000 u32 VERSION            2, 3 or 5 accepted; anything else fails closed (4 is
//!                               undocumented publicly)
//! 0x004 u32 GUEST_SVN          0x008 u64 POLICY
//! 0x010 [16] FAMILY_ID         0x020 [16] IMAGE_ID
//! 0x030 u32 VMPL               0x034 u32 SIGNATURE_ALGO (1 = ECDSA P-384 with SHA-384)
//! 0x038 u64 CURRENT_TCB        0x040 u64 PLATFORM_INFO
//! 0x048 u32 bit0 AUTHOR_KEY_EN, bit1 MASK_CHIP_KEY, bits4:2 SIGNING_KEY (0 VCEK, 1 VLEK,
//!           7 none), bits 31:5 reserved (must be zero)
//! 0x04C u32 reserved (zero)    0x050 [64] REPORT_DATA
//! 0x090 [48] MEASUREMENT       0x0C0 [32] HOST_DATA
//! 0x0E0 [48] ID_KEY_DIGEST     0x110 [48] AUTHOR_KEY_DIGEST
//! 0x140 [32] REPORT_ID         0x160 [32] REPORT_ID_MA
//! 0x180 u64 REPORTED_TCB
//! 0x188 v3+: u8 CPUID_FAM_ID, u8 CPUID_MOD_ID, u8 CPUID_STEP; v2: reserved. Then reserved
//!           to 0x1A0 (zero)
//! 0x1A0 [64] CHIP_ID           0x1E0 u64 COMMITTED_TCB
//! 0x1E8 u8 CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR, reserved (zero)
//! 0x1EC u8 COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR, reserved (zero)
//! 0x1F0 u64 LAUNCH_TCB
//! 0x1F8 v5: u64 LAUNCH_MIT_VECTOR, u64 CURRENT_MIT_VECTOR; v2/v3: reserved. Then reserved to
//!           0x2A0 (zero)
//! 0x2A0 SIGNATURE: [72] R, [72] S (little-endian, zero above bit 383), [368] reserved (zero)
//! 0x4A0 end
//! ```
//! The signature covers bytes `0x000..0x2A0` exactly as received.
//!
//! TCB_VERSION (u64) has two layouts: Milan/Genoa `[bl, tee, 0, 0, 0, 0, snp, ucode]` and
//! Turin `[fmc, bl, tee, snp, 0, 0, 0, ucode]` (byte 0 first). A report is read as Turin when
//! it carries CPUID (v3+) with family 0x1A.

use crate::error::{Error, Result};

/// Length of every SNP attestation report.
pub const REPORT_LEN: usize = 0x4A0;
/// Length of the signed part, `0x000..0x2A0`.
pub const SIGNED_LEN: usize = 0x2A0;
/// SIGNATURE_ALGO value for ECDSA P-384 with SHA-384, the only one defined.
pub const SIG_ALGO_ECDSA_P384_SHA384: u32 = 1;
/// CPUID family of Turin (Zen 5) processors.
pub const FAMILY_TURIN: u8 = 0x1A;

const WHAT: &str = "SNP attestation report";

/// Which layout a TCB_VERSION uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcbLayout {
    /// Milan and Genoa: `[bl, tee, 0, 0, 0, 0, snp, ucode]`.
    MilanGenoa,
    /// Turin and later: `[fmc, bl, tee, snp, 0, 0, 0, ucode]`.
    Turin,
}

/// A TCB_VERSION with its components decoded for its layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcbVersion {
    /// The raw 64-bit value as in the report.
    pub raw: u64,
    /// FMC SPL (Turin only).
    pub fmc: Option<u8>,
    /// Boot loader SPL.
    pub bootloader: u8,
    /// TEE (PSP OS) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// Microcode SPL.
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes `raw` in `layout`.
    pub fn decode(raw: u64, layout: TcbLayout) -> Self {
        let b = raw.to_le_bytes();
        match layout {
            TcbLayout::MilanGenoa => Self {
                raw,
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            TcbLayout::Turin => Self {
                raw,
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }
}

/// Which key signed the report, per the report's own SIGNING_KEY field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningKey {
    /// Versioned Chip Endorsement Key.
    Vcek,
    /// Versioned Loaded Endorsement Key.
    Vlek,
    /// The report is not signed.
    None,
}

impl SigningKey {
    /// A short name ("VCEK", "VLEK", "none").
    pub fn name(self) -> &'static str {
        match self {
            SigningKey::Vcek => "VCEK",
            SigningKey::Vlek => "VLEK",
            SigningKey::None => "none",
        }
    }
}

/// CPUID identification (report version 3 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpuid {
    /// Combined family.
    pub family: u8,
    /// Combined model.
    pub model: u8,
    /// Stepping.
    pub stepping: u8,
}

/// A firmware version triple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FwVersion {
    /// Build.
    pub build: u8,
    /// Minor.
    pub minor: u8,
    /// Major.
    pub major: u8,
}

/// A parsed SNP attestation report. Parsing checks structure only; [`super::SnpVerifier`]
/// checks the signature and bindings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnpReport {
    /// VERSION (2, 3 or 5).
    pub version: u32,
    /// GUEST_SVN.
    pub guest_svn: u32,
    /// Guest POLICY.
    pub policy: u64,
    /// FAMILY_ID.
    pub family_id: [u8; 16],
    /// IMAGE_ID.
    pub image_id: [u8; 16],
    /// VMPL of the requester.
    pub vmpl: u32,
    /// SIGNATURE_ALGO as in the bytes.
    pub signature_algo: u32,
    /// CURRENT_TCB.
    pub current_tcb: TcbVersion,
    /// PLATFORM_INFO.
    pub platform_info: u64,
    /// AUTHOR_KEY_EN.
    pub author_key_en: bool,
    /// MASK_CHIP_KEY: chip_id is zeroed.
    pub mask_chip_key: bool,
    /// SIGNING_KEY.
    pub signing_key: SigningKey,
    /// REPORT_DATA supplied by the guest.
    pub report_data: [u8; 64],
    /// Launch MEASUREMENT.
    pub measurement: [u8; 48],
    /// HOST_DATA.
    pub host_data: [u8; 32],
    /// ID_KEY_DIGEST.
    pub id_key_digest: [u8; 48],
    /// AUTHOR_KEY_DIGEST.
    pub author_key_digest: [u8; 48],
    /// REPORT_ID.
    pub report_id: [u8; 32],
    /// REPORT_ID_MA.
    pub report_id_ma: [u8; 32],
    /// REPORTED_TCB: the TCB the signing key was derived for.
    pub reported_tcb: TcbVersion,
    /// CPUID (v3+).
    pub cpuid: Option<Cpuid>,
    /// CHIP_ID.
    pub chip_id: [u8; 64],
    /// COMMITTED_TCB.
    pub committed_tcb: TcbVersion,
    /// CURRENT firmware version.
    pub current_version: FwVersion,
    /// COMMITTED firmware version.
    pub committed_version: FwVersion,
    /// LAUNCH_TCB.
    pub launch_tcb: TcbVersion,
    /// LAUNCH_MIT_VECTOR (v5).
    pub launch_mit_vector: Option<u64>,
    /// CURRENT_MIT_VECTOR (v5).
    pub current_mit_vector: Option<u64>,
    /// Signature R, big-endian, 48 bytes.
    pub signature_r: [u8; 48],
    /// Signature S, big-endian, 48 bytes.
    pub signature_s: [u8; 48],
}

fn arr<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N]> {
    off.checked_add(N)
        .and_then(|end| b.get(off..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| Error::malformed(WHAT, format!("field at {off:#x} out of bounds")))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32> {
    Ok(u32::from_le_bytes(arr::<4>(b, off)?))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64> {
    Ok(u64::from_le_bytes(arr::<8>(b, off)?))
}

fn zero(b: &[u8], start: usize, end: usize, field: &str) -> Result<()> {
    let s = b
        .get(start..end)
        .ok_or_else(|| Error::malformed(WHAT, format!("{field} out of bounds")))?;
    if s.iter().any(|&x| x != 0) {
        return Err(Error::malformed(
            WHAT,
            format!("reserved bytes {start:#x}..{end:#x} ({field}) are not zero"),
        ));
    }
    Ok(())
}

/// Converts a 72-byte little-endian signature component to 48 bytes big-endian; the upper
/// 24 bytes must be zero.
fn sig_component(b: &[u8], off: usize, name: &str) -> Result<[u8; 48]> {
    let le = arr::<72>(b, off)?;
    if le[48..].iter().any(|&x| x != 0) {
        return Err(Error::malformed(
            WHAT,
            format!("signature {name} exceeds 384 bits"),
        ));
    }
    let mut be = [0u8; 48];
    for (dst, src) in be.iter_mut().zip(le[..48].iter().rev()) {
        *dst = *src;
    }
    Ok(be)
}

/// The layout of TCB values for a report of `version` with optional `cpuid`.
pub fn tcb_layout(cpuid: Option<Cpuid>) -> TcbLayout {
    match cpuid {
        Some(c) if c.family >= FAMILY_TURIN => TcbLayout::Turin,
        _ => TcbLayout::MilanGenoa,
    }
}

impl SnpReport {
    /// Parses a report from exactly [`REPORT_LEN`] bytes. Fails with
    /// [`Error::UnsupportedVersion`] for versions other than 2, 3 and 5, and with
    /// [`Error::Malformed`] for a short or long input, reserved bits set, or an undefined
    /// SIGNING_KEY.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let version = u32_at(b, 0x000).map_err(|_| {
            Error::malformed(
                WHAT,
                format!("truncated: {} of {REPORT_LEN} bytes", b.len()),
            )
        })?;
        if !matches!(version, 2 | 3 | 5) {
            return Err(Error::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        if b.len() < REPORT_LEN {
            return Err(Error::malformed(
                WHAT,
                format!("truncated: {} of {REPORT_LEN} bytes", b.len()),
            ));
        }
        if b.len() > REPORT_LEN {
            return Err(Error::malformed(
                WHAT,
                format!("{} trailing bytes", b.len() - REPORT_LEN),
            ));
        }
        let key_info = u32_at(b, 0x048)?;
        if key_info >> 5 != 0 {
            return Err(Error::malformed(WHAT, "reserved bits of 0x048 are set"));
        }
        let signing_key = match (key_info >> 2) & 0x7 {
            0 => SigningKey::Vcek,
            1 => SigningKey::Vlek,
            7 => SigningKey::None,
            k => {
                return Err(Error::malformed(
                    WHAT,
                    format!("SIGNING_KEY {k} is reserved"),
                ))
            }
        };
        zero(b, 0x04C, 0x050, "after key info")?;
        let cpuid = if version >= 3 {
            let c = arr::<3>(b, 0x188)?;
            Some(Cpuid {
                family: c[0],
                model: c[1],
                stepping: c[2],
            })
        } else {
            zero(b, 0x188, 0x18B, "CPUID in a v2 report")?;
            None
        };
        zero(b, 0x18B, 0x1A0, "after CPUID")?;
        zero(b, 0x1EB, 0x1EC, "after CURRENT version")?;
        zero(b, 0x1EF, 0x1F0, "after COMMITTED version")?;
        let (launch_mit_vector, current_mit_vector) = if version >= 5 {
            (Some(u64_at(b, 0x1F8)?), Some(u64_at(b, 0x200)?))
        } else {
            zero(b, 0x1F8, 0x208, "mitigation vectors before v5")?;
            (None, None)
        };
        zero(b, 0x208, SIGNED_LEN, "before signature")?;
        zero(b, SIGNED_LEN + 144, REPORT_LEN, "signature padding")?;
        let layout = tcb_layout(cpuid);
        let tcb = |off| -> Result<TcbVersion> { Ok(TcbVersion::decode(u64_at(b, off)?, layout)) };
        let fw = |off| -> Result<FwVersion> {
            let v = arr::<3>(b, off)?;
            Ok(FwVersion {
                build: v[0],
                minor: v[1],
                major: v[2],
            })
        };
        Ok(Self {
            version,
            guest_svn: u32_at(b, 0x004)?,
            policy: u64_at(b, 0x008)?,
            family_id: arr(b, 0x010)?,
            image_id: arr(b, 0x020)?,
            vmpl: u32_at(b, 0x030)?,
            signature_algo: u32_at(b, 0x034)?,
            current_tcb: tcb(0x038)?,
            platform_info: u64_at(b, 0x040)?,
            author_key_en: key_info & 1 != 0,
            mask_chip_key: key_info & 2 != 0,
            signing_key,
            report_data: arr(b, 0x050)?,
            measurement: arr(b, 0x090)?,
            host_data: arr(b, 0x0C0)?,
            id_key_digest: arr(b, 0x0E0)?,
            author_key_digest: arr(b, 0x110)?,
            report_id: arr(b, 0x140)?,
            report_id_ma: arr(b, 0x160)?,
            reported_tcb: tcb(0x180)?,
            cpuid,
            chip_id: arr(b, 0x1A0)?,
            committed_tcb: tcb(0x1E0)?,
            current_version: fw(0x1E8)?,
            committed_version: fw(0x1EC)?,
            launch_tcb: tcb(0x1F0)?,
            launch_mit_vector,
            current_mit_vector,
            signature_r: sig_component(b, SIGNED_LEN, "R")?,
            signature_s: sig_component(b, SIGNED_LEN + 72, "S")?,
        })
    }

    /// The TCB layout this report's TCB fields use.
    pub fn tcb_layout(&self) -> TcbLayout {
        tcb_layout(self.cpuid)
    }

    /// Encodes the signed part, bytes `0x000..0x2A0` (the input to the signature).
    pub fn encode_signed_part(&self) -> Vec<u8> {
        let mut b = vec![0u8; SIGNED_LEN];
        let mut put = |off: usize, v: &[u8]| {
            if let Some(dst) = off.checked_add(v.len()).and_then(|end| b.get_mut(off..end)) {
                dst.copy_from_slice(v);
            }
        };
        let key_kind: u32 = match self.signing_key {
            SigningKey::Vcek => 0,
            SigningKey::Vlek => 1,
            SigningKey::None => 7,
        };
        let key_info =
            u32::from(self.author_key_en) | (u32::from(self.mask_chip_key) << 1) | (key_kind << 2);
        put(0x000, &self.version.to_le_bytes());
        put(0x004, &self.guest_svn.to_le_bytes());
        put(0x008, &self.policy.to_le_bytes());
        put(0x010, &self.family_id);
        put(0x020, &self.image_id);
        put(0x030, &self.vmpl.to_le_bytes());
        put(0x034, &self.signature_algo.to_le_bytes());
        put(0x038, &self.current_tcb.raw.to_le_bytes());
        put(0x040, &self.platform_info.to_le_bytes());
        put(0x048, &key_info.to_le_bytes());
        put(0x050, &self.report_data);
        put(0x090, &self.measurement);
        put(0x0C0, &self.host_data);
        put(0x0E0, &self.id_key_digest);
        put(0x110, &self.author_key_digest);
        put(0x140, &self.report_id);
        put(0x160, &self.report_id_ma);
        put(0x180, &self.reported_tcb.raw.to_le_bytes());
        if let Some(c) = self.cpuid {
            put(0x188, &[c.family, c.model, c.stepping]);
        }
        put(0x1A0, &self.chip_id);
        put(0x1E0, &self.committed_tcb.raw.to_le_bytes());
        let v = self.current_version;
        put(0x1E8, &[v.build, v.minor, v.major]);
        let v = self.committed_version;
        put(0x1EC, &[v.build, v.minor, v.major]);
        put(0x1F0, &self.launch_tcb.raw.to_le_bytes());
        if let Some(m) = self.launch_mit_vector {
            put(0x1F8, &m.to_le_bytes());
        }
        if let Some(m) = self.current_mit_vector {
            put(0x200, &m.to_le_bytes());
        }
        b
    }

    /// Encodes the whole report: the signed part followed by the signature in the report's
    /// little-endian 72-byte component format. `parse(encode(r)) == r` for every parsed `r`.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.encode_signed_part();
        b.extend_from_slice(&encode_signature(&self.signature_r, &self.signature_s));
        b
    }
}

/// Encodes a big-endian (r, s) pair into the report's 512-byte signature field.
pub fn encode_signature(r: &[u8; 48], s: &[u8; 48]) -> Vec<u8> {
    let mut sig = vec![0u8; REPORT_LEN - SIGNED_LEN];
    for (dst, src) in sig.iter_mut().zip(r.iter().rev()) {
        *dst = *src;
    }
    for (dst, src) in sig.iter_mut().skip(72).zip(s.iter().rev()) {
        *dst = *src;
    }
    sig
}
