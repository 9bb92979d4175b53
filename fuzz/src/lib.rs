//! Plumbing shared by the ualink fuzz targets: a cursor over the fuzzer's bytes, the
//! message-context prefix of the SPDM codec targets, the round-trip oracle, and one cached
//! device identity per curve for the state-machine targets.
//!
//! Every target is a thin shim: the only `panic!`/`assert!` here are oracles, so a crash is a
//! bug in the code under test (or in an oracle's assumption, which the report must say).

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use ualink_spdm::algo::{AsymAlg, SpdmVersion};
use ualink_spdm::cert_chain::TrustAnchors;
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
use ualink_spdm::msg::MsgContext;

/// Reads the fuzzer's bytes front to back; every read is capped by what is left.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    /// A cursor over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self(data)
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One byte, if any is left.
    pub fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    /// A little-endian u16, if two bytes are left.
    pub fn u16(&mut self) -> Option<u16> {
        let (b, rest) = self.0.split_first_chunk::<2>()?;
        self.0 = rest;
        Some(u16::from_le_bytes(*b))
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }

    /// A chunk framed as `u16 LE length ‖ bytes` (the length capped by what is left).
    pub fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        Some(self.take(usize::from(n)))
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.0.len())
    }
}

/// Bytes of [`ctx`]'s prefix.
pub const CTX_LEN: usize = 3;

const HASH: [usize; 4] = [32, 48, 64, 32];
const SIG: [usize; 8] = [64, 96, 132, 256, 384, 512, 64, 96];
const OPT: [usize; 8] = [0, 64, 96, 132, 256, 384, 512, 0];

/// Splits off a 3-byte [`MsgContext`] prefix (the layout seeds.py writes):
///
/// ```text
/// b0: bit0 version (0: 1.2, 1: 1.3) | bits 2:1 hash (32, 48, 64, 32)
///     | bits 5:3 sig (64, 96, 132, 256, 384, 512, 64, 96) | bit6 handshake_in_clear
///     | bit7 multi_key_conn
/// b1: bits 2:0 req sig (0, 64, 96, 132, 256, 384, 512, 0) | bits 5:3 DHE (same table)
///     | bit6 multi_key_conn_req | bit7 summary_hash_requested
/// b2: bit0 measurement_signature_requested (other bits ignored)
/// ```
pub fn ctx(data: &[u8]) -> Option<(MsgContext, &[u8])> {
    let (&[b0, b1, b2], rest) = data.split_first_chunk::<CTX_LEN>()?;
    let b = |v: u8, shift: u8, mask: u8| usize::from((v >> shift) & mask);
    let version = if b0 & 1 == 0 {
        SpdmVersion::V12
    } else {
        SpdmVersion::V13
    };
    let mut c = MsgContext::new(version, HASH[b(b0, 1, 3)], SIG[b(b0, 3, 7)]);
    c.handshake_in_clear = b0 & 0x40 != 0;
    c.multi_key_conn = b0 & 0x80 != 0;
    c.req_sig_len = OPT[b(b1, 0, 7)];
    c.dhe_len = OPT[b(b1, 3, 7)];
    c.multi_key_conn_req = b1 & 0x40 != 0;
    c.summary_hash_requested = b1 & 0x80 != 0;
    c.measurement_signature_requested = b2 & 1 != 0;
    Some((c, rest))
}

/// The codec oracle: if `parse` accepts `bytes`, then `encode` must succeed, give back exactly
/// `bytes` (every parser is strict: reserved bits zero, no trailing bytes, so there is one
/// encoding per value), and parsing that again must give an equal value. Returns the value.
pub fn roundtrip<T, E1, E2>(
    name: &str,
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<T, E1>,
    encode: impl Fn(&T) -> Result<Vec<u8>, E2>,
) -> Option<T>
where
    T: PartialEq + Debug,
    E1: Debug,
    E2: Debug,
{
    let m = parse(bytes).ok()?;
    let enc = match encode(&m) {
        Ok(e) => e,
        Err(e) => panic!("{name}: encoding a parsed message failed: {e:?}\nvalue: {m:?}"),
    };
    assert!(
        enc == bytes,
        "{name}: re-encoding differs from the input\n in: {bytes:02x?}\nout: {enc:02x?}\nvalue: {m:?}"
    );
    match parse(&enc) {
        Ok(m2) => assert!(m2 == m, "{name}: parse(encode(m)) != m\n{m:?}\n{m2:?}"),
        Err(e) => panic!("{name}: re-parsing our own encoding failed: {e:?}\nvalue: {m:?}"),
    }
    Some(m)
}

/// A generated device identity for `asym`, the same for the whole process (generation is slow).
pub fn identity(asym: AsymAlg) -> DeviceIdentity {
    static P256: OnceLock<DeviceIdentity> = OnceLock::new();
    static P384: OnceLock<DeviceIdentity> = OnceLock::new();
    let cell = match asym {
        AsymAlg::EcdsaP256 => &P256,
        AsymAlg::EcdsaP384 => &P384,
    };
    let id = cell.get_or_init(|| {
        DeviceIdentity::generate(asym, &IdentityOptions::default())
            .unwrap_or_else(|e| panic!("fuzz setup: identity generation failed: {e:?}"))
    });
    DeviceIdentity::from_parts(
        id.ca_der().to_vec(),
        id.chain_der().to_vec(),
        zeroize::Zeroizing::new(id.key_pkcs8().to_vec()),
    )
    .unwrap_or_else(|e| panic!("fuzz setup: identity copy failed: {e:?}"))
}

/// Trust anchors holding [`identity`]'s root.
pub fn anchors(asym: AsymAlg) -> Arc<TrustAnchors> {
    static P256: OnceLock<Arc<TrustAnchors>> = OnceLock::new();
    static P384: OnceLock<Arc<TrustAnchors>> = OnceLock::new();
    let cell = match asym {
        AsymAlg::EcdsaP256 => &P256,
        AsymAlg::EcdsaP384 => &P384,
    };
    cell.get_or_init(|| {
        let mut t = TrustAnchors::new();
        t.add_der(identity(asym).ca_der())
            .unwrap_or_else(|e| panic!("fuzz setup: anchor rejected: {e:?}"));
        Arc::new(t)
    })
    .clone()
}

/// Both dispatchers on `m`, without a context (VCA only) and with `c`: the round-trip oracle
/// for each, and the DOE-padded variants must agree with the exact ones on the message length.
pub fn dispatch(m: &[u8], c: &MsgContext) {
    use ualink_spdm::msg::{SpdmRequest, SpdmResponse};
    for ctx in [None, Some(c)] {
        roundtrip(
            "SpdmRequest",
            m,
            |b| SpdmRequest::parse(b, ctx),
            |r| r.encode(),
        );
        roundtrip(
            "SpdmResponse",
            m,
            |b| SpdmResponse::parse(b, ctx),
            |r| r.encode(),
        );
        if let Ok((r, used)) = SpdmRequest::parse_padded(m, ctx) {
            let body = m
                .get(..used)
                .unwrap_or_else(|| panic!("parse_padded: used {used} > len"));
            assert!(m[used..].iter().all(|b| *b == 0) && m.len() - used <= 3);
            let enc = r
                .encode()
                .unwrap_or_else(|e| panic!("SpdmRequest padded: {e:?}"));
            assert!(enc == body, "SpdmRequest padded: re-encoding differs");
        }
        if let Ok((r, used)) = SpdmResponse::parse_padded(m, ctx) {
            let body = m
                .get(..used)
                .unwrap_or_else(|| panic!("parse_padded: used {used} > len"));
            assert!(m[used..].iter().all(|b| *b == 0) && m.len() - used <= 3);
            let enc = r
                .encode()
                .unwrap_or_else(|e| panic!("SpdmResponse padded: {e:?}"));
            assert!(enc == body, "SpdmResponse padded: re-encoding differs");
        }
    }
}

/// The P-384 base point G in SEC1 uncompressed form (the public key of private key 1): a valid
/// fixed key for verifiers whose inputs the fuzzer cannot sign.
pub const P384_BASE_POINT: [u8; 97] = [
    0x04, 0xaa, 0x87, 0xca, 0x22, 0xbe, 0x8b, 0x05, 0x37, 0x8e, 0xb1, 0xc7, 0x1e, 0xf3, 0x20, 0xad,
    0x74, 0x6e, 0x1d, 0x3b, 0x62, 0x8b, 0xa7, 0x9b, 0x98, 0x59, 0xf7, 0x41, 0xe0, 0x82, 0x54, 0x2a,
    0x38, 0x55, 0x02, 0xf2, 0x5d, 0xbf, 0x55, 0x29, 0x6c, 0x3a, 0x54, 0x5e, 0x38, 0x72, 0x76, 0x0a,
    0xb7, 0x36, 0x17, 0xde, 0x4a, 0x96, 0x26, 0x2c, 0x6f, 0x5d, 0x9e, 0x98, 0xbf, 0x92, 0x92, 0xdc,
    0x29, 0xf8, 0xf4, 0x1d, 0xbd, 0x28, 0x9a, 0x14, 0x7c, 0xe9, 0xda, 0x31, 0x13, 0xb5, 0xf0, 0xb8,
    0xc0, 0x0a, 0x60, 0xb1, 0xce, 0x1d, 0x7e, 0x81, 0x9d, 0x7a, 0x43, 0x1d, 0x7c, 0x90, 0xea, 0x0e,
    0x5f,
];
