//! `ImportGrant` and key-rotation messages: COSE_Sign1 (ES384) signed by the TSM.
//!
//! # Wire format
//! A grant is a tagged COSE_Sign1 (CBOR tag 18, RFC 9052 §4.2):
//! - protected header: `alg` (1) = ES384 (-35) and `kid` (4) = the signing key's [`KeyId`] (16 bytes);
//!   no other protected parameter, no `crit`;
//! - unprotected header: empty;
//! - payload: attached (not detached), the claims below;
//! - signature: 96 bytes, `r || s`.
//!
//! The claims are a CBOR map in deterministic encoding: exactly these 13 unsigned-integer keys in
//! ascending order, each value in shortest form:
//!
//! | key | claim | CBOR type |
//! |---|---|---|
//! | 1 | grant id | bstr .size 16 |
//! | 2 | exporter tenant | uint (u32) |
//! | 3 | exporter accelerator | uint (<= 1023) |
//! | 4 | buffer handle | bstr .size 16 |
//! | 5 | importer tenant | uint (u32) |
//! | 6 | importer OS instance | uint (u32) |
//! | 7 | importer accelerator | uint (<= 1023) |
//! | 8 | rights (1 read, 2 write, 4 atomic; non-zero, no other bit) | uint |
//! | 9 | exporter TDI attestation epoch | uint (u64) |
//! | 10 | importer TDI attestation epoch | uint (u64) |
//! | 11 | not-before, fabric clock ns | uint (u64) |
//! | 12 | expiry, fabric clock ns (> not-before) | uint (u64) |
//! | 13 | nonce (single use) | bstr .size 16 |
//!
//! A key-rotation message has the same envelope, signed by the *current* key, with claims
//! `{1: sequence (uint, greater than every earlier rotation), 2: new key (bstr .size 97, SEC1 uncompressed P-384)}`.
//!
//! The signature is verified over the Sig_structure built from the protected header bytes and payload
//! exactly as received (coset keeps the original protected bytes).

use alloc::vec::Vec;

use coset::{iana, CoseSign1, RegisteredLabelWithPrivate, TaggedCborSerializable};

use crate::cbor::{CborError, CborReader};
use crate::crypto::{CryptoBackend, KeyId, TsmPublicKey};
use crate::error::Denial;
use crate::ids::{
    AcceleratorId, BufferHandle, FabricTime, GrantId, OsInstanceId, Rights, TenantId,
};

/// Largest grant or rotation message accepted, in bytes.
pub const MAX_SIGNED_MSG_LEN: usize = 1024;
/// [`MAX_SIGNED_MSG_LEN`] as the UAPI's u32.
pub const MAX_SIGNED_MSG_LEN_U32: u32 = 1024;
const _: () = assert!(MAX_SIGNED_MSG_LEN_U32 as usize == MAX_SIGNED_MSG_LEN);

/// The claims of an import grant, after signature verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantClaims {
    /// Grant id, unique per grant.
    pub grant_id: GrantId,
    /// The exporting tenant.
    pub exporter_tenant: TenantId,
    /// The accelerator whose memory backs the buffer.
    pub exporter_accel: AcceleratorId,
    /// The buffer's handle.
    pub buffer: BufferHandle,
    /// The importing tenant.
    pub importer_tenant: TenantId,
    /// The importing OS instance.
    pub importer_os: OsInstanceId,
    /// The importing accelerator.
    pub importer_accel: AcceleratorId,
    /// Granted rights (non-empty).
    pub rights: Rights,
    /// The exporter TDI's attestation epoch the TSM checked.
    pub exporter_epoch: u64,
    /// The importer TDI's attestation epoch the TSM checked.
    pub importer_epoch: u64,
    /// Not valid before this time.
    pub not_before: FabricTime,
    /// Not valid at or after this time.
    pub expiry: FabricTime,
    /// Single-use nonce.
    pub nonce: [u8; 16],
}

/// Proof that a grant's signature verified under the current TSM key. Only the driver's gate and
/// [`verify_grant_with_key`] make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantVerified {
    claims: GrantClaims,
}

impl GrantVerified {
    /// The verified claims.
    pub fn claims(&self) -> &GrantClaims {
        &self.claims
    }
}

/// The TSM keys the gate knows: the current one and the ids of retired ones.
pub(crate) struct TsmKeys {
    pub(crate) current: Option<(TsmPublicKey, KeyId)>,
    pub(crate) retired: alloc::vec::Vec<KeyId>,
    pub(crate) rotation_seq: u64,
}

fn malformed(what: &'static str) -> Denial {
    Denial::MalformedGrant(what)
}

fn cbor_err(e: CborError) -> Denial {
    match e {
        CborError::Truncated => malformed("claims truncated"),
        CborError::UnexpectedType => malformed("claim of unexpected CBOR type"),
        CborError::NonCanonical => malformed("claims not in deterministic CBOR"),
        CborError::TrailingBytes => malformed("trailing bytes after claims"),
    }
}

/// Parses the envelope, checks the header and verifies the signature; returns the payload bytes.
fn verify_envelope(
    bytes: &[u8],
    keys: &TsmKeys,
    crypto: &dyn CryptoBackend,
) -> Result<Vec<u8>, Denial> {
    if bytes.len() > MAX_SIGNED_MSG_LEN {
        return Err(malformed("message too long"));
    }
    let mut sign1 =
        CoseSign1::from_tagged_slice(bytes).map_err(|_| malformed("not a tagged COSE_Sign1"))?;
    let h = &sign1.protected.header;
    if h.alg != Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES384)) {
        return Err(malformed("alg is not ES384"));
    }
    if !h.crit.is_empty()
        || h.content_type.is_some()
        || !h.iv.is_empty()
        || !h.partial_iv.is_empty()
        || !h.counter_signatures.is_empty()
        || !h.rest.is_empty()
    {
        return Err(malformed("unexpected protected header parameter"));
    }
    if !sign1.unprotected.is_empty() {
        return Err(malformed("unprotected header not empty"));
    }
    let kid: [u8; 16] = h
        .key_id
        .as_slice()
        .try_into()
        .map_err(|_| malformed("kid is not 16 bytes"))?;
    let kid = KeyId(kid);
    let Some((key, current_id)) = keys.current.as_ref() else {
        return Err(Denial::NoTsmKey);
    };
    if kid != *current_id {
        return Err(if keys.retired.contains(&kid) {
            Denial::RetiredKey
        } else {
            Denial::BadSignature
        });
    }
    if sign1.payload.is_none() {
        return Err(malformed("detached payload"));
    }
    sign1
        .verify_signature(b"", |sig, data| crypto.verify_es384(key, data, sig))
        .map_err(|_| Denial::BadSignature)?;
    sign1.payload.take().ok_or(malformed("detached payload"))
}

fn arr16(b: &[u8], what: &'static str) -> Result<[u8; 16], Denial> {
    b.try_into().map_err(|_| malformed(what))
}

fn u32_claim(v: u64, what: &'static str) -> Result<u32, Denial> {
    u32::try_from(v).map_err(|_| malformed(what))
}

fn accel_claim(v: u64, what: &'static str) -> Result<AcceleratorId, Denial> {
    let v = u16::try_from(v).map_err(|_| malformed(what))?;
    AcceleratorId::new(v).map_err(|_| malformed(what))
}

/// Expects the next map key to be `k`.
fn key(r: &mut CborReader<'_>, k: u64) -> Result<(), Denial> {
    if r.uint().map_err(cbor_err)? != k {
        return Err(malformed("claim keys not exactly 1..=13 in order"));
    }
    Ok(())
}

/// Parses grant claims (see the module docs for the layout).
fn parse_claims(payload: &[u8]) -> Result<GrantClaims, Denial> {
    let mut r = CborReader::new(payload);
    if r.map().map_err(cbor_err)? != 13 {
        return Err(malformed("claims map does not have 13 entries"));
    }
    key(&mut r, 1)?;
    let grant_id = GrantId(arr16(r.bstr().map_err(cbor_err)?, "grant id")?);
    key(&mut r, 2)?;
    let exporter_tenant = TenantId(u32_claim(r.uint().map_err(cbor_err)?, "exporter tenant")?);
    key(&mut r, 3)?;
    let exporter_accel = accel_claim(r.uint().map_err(cbor_err)?, "exporter accelerator")?;
    key(&mut r, 4)?;
    let buffer = BufferHandle(arr16(r.bstr().map_err(cbor_err)?, "buffer handle")?);
    key(&mut r, 5)?;
    let importer_tenant = TenantId(u32_claim(r.uint().map_err(cbor_err)?, "importer tenant")?);
    key(&mut r, 6)?;
    let importer_os = OsInstanceId(u32_claim(r.uint().map_err(cbor_err)?, "importer OS")?);
    key(&mut r, 7)?;
    let importer_accel = accel_claim(r.uint().map_err(cbor_err)?, "importer accelerator")?;
    key(&mut r, 8)?;
    let rights_raw = u32_claim(r.uint().map_err(cbor_err)?, "rights")?;
    let rights = Rights::from_bits(rights_raw).map_err(|_| malformed("unknown rights bit"))?;
    if rights.is_empty() {
        return Err(malformed("empty rights"));
    }
    key(&mut r, 9)?;
    let exporter_epoch = r.uint().map_err(cbor_err)?;
    key(&mut r, 10)?;
    let importer_epoch = r.uint().map_err(cbor_err)?;
    key(&mut r, 11)?;
    let not_before = FabricTime(r.uint().map_err(cbor_err)?);
    key(&mut r, 12)?;
    let expiry = FabricTime(r.uint().map_err(cbor_err)?);
    key(&mut r, 13)?;
    let nonce = arr16(r.bstr().map_err(cbor_err)?, "nonce")?;
    r.finish().map_err(cbor_err)?;
    if expiry <= not_before {
        return Err(malformed("expiry not after not-before"));
    }
    Ok(GrantClaims {
        grant_id,
        exporter_tenant,
        exporter_accel,
        buffer,
        importer_tenant,
        importer_os,
        importer_accel,
        rights,
        exporter_epoch,
        importer_epoch,
        not_before,
        expiry,
        nonce,
    })
}

/// Verifies a grant's envelope and signature under the current TSM key and parses its claims.
/// Checks against live state (parties, epochs, clock, nonce) are the gate's job.
///
/// Return: `Denial::MalformedGrant`, `NoTsmKey`, `RetiredKey` or `BadSignature`.
pub(crate) fn verify_grant(
    bytes: &[u8],
    keys: &TsmKeys,
    crypto: &dyn CryptoBackend,
) -> Result<GrantVerified, Denial> {
    let payload = verify_envelope(bytes, keys, crypto)?;
    let claims = parse_claims(&payload)?;
    Ok(GrantVerified { claims })
}

/// Verifies a grant under `key` alone (no retired-key bookkeeping): for tools — the TSM checking the
/// grants it issues, an auditor re-checking a logged grant — that want exactly the driver's parser.
///
/// Return: `Denial::MalformedGrant` or `Denial::BadSignature`.
pub fn verify_grant_with_key(
    bytes: &[u8],
    key: &TsmPublicKey,
    crypto: &dyn CryptoBackend,
) -> Result<GrantVerified, Denial> {
    let keys = TsmKeys {
        current: Some((*key, key.key_id(crypto))),
        retired: Vec::new(),
        rotation_seq: 0,
    };
    verify_grant(bytes, &keys, crypto)
}

/// A verified key-rotation message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rotation {
    pub(crate) seq: u64,
    pub(crate) new_key: TsmPublicKey,
}

/// Verifies a key-rotation message under the current key.
pub(crate) fn verify_rotation(
    bytes: &[u8],
    keys: &TsmKeys,
    crypto: &dyn CryptoBackend,
) -> Result<Rotation, Denial> {
    let payload = verify_envelope(bytes, keys, crypto)?;
    let mut r = CborReader::new(&payload);
    if r.map().map_err(cbor_err)? != 2 {
        return Err(malformed("rotation map does not have 2 entries"));
    }
    if r.uint().map_err(cbor_err)? != 1 {
        return Err(malformed("rotation keys not 1, 2"));
    }
    let seq = r.uint().map_err(cbor_err)?;
    if r.uint().map_err(cbor_err)? != 2 {
        return Err(malformed("rotation keys not 1, 2"));
    }
    let new_key = TsmPublicKey::from_sec1(r.bstr().map_err(cbor_err)?)
        .ok_or(malformed("new key not SEC1 uncompressed P-384"))?;
    r.finish().map_err(cbor_err)?;
    Ok(Rotation { seq, new_key })
}
