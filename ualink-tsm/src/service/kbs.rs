//! The KBS side of the RCAR handshake (protocol 0.4.0): evidence verification, the
//! tee-pubkey ↔ TLS key binding, the EAR token and resource encryption.
//!
//! # Evidence (`tee-evidence.primary_evidence`, tee `snp`)
//! ```text
//! {"attestation_report": "<base64 of the 1184-byte report>",
//!  "cert_chain": [{"cert_type": "vcek"|"vlek", "data": "<base64 DER>"},
//!                 {"cert_type": "ask"|"asvk", "data": "<base64 DER>"}]}
//! ```
//! Verified by `ualink_attest::snp::SnpVerifier` over the bytes as received against the AMD
//! roots built in plus the configured sim roots; a chain ending in a configured (explicit)
//! root is the `sim` TEE. REPORT_DATA must equal SHA-384 of the JCS form of
//! `{"additional-evidence", "nonce", "tee-pubkey"}` ‖ 0¹⁶ (computed with the agent library's
//! `binding`, the one codec both sides use).
//!
//! # Resource JWE (flattened JSON, RFC 7516 §7.2.2)
//! ```text
//! {"protected": b64url({"alg":"ECDH-ES+A256KW","enc":"A256GCM",
//!                       "epk":{"kty":"EC","crv":"P-256","x":..,"y":..}}),
//!  "encrypted_key": b64url(AES-KW(KEK, CEK)), "iv": b64url(12 bytes),
//!  "ciphertext": b64url, "tag": b64url(16 bytes)}
//! KEK = Concat KDF SHA-256 (Z = ECDH(epk secret, tee-pubkey), alg id "ECDH-ES+A256KW",
//!       empty apu/apv, 256 bits); AAD = ASCII of "protected".
//! ```

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hyper::StatusCode;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use ualink_attest::ear::{Appraisal, EarSigner, TrustTier};
use ualink_attest::pki::AnchorOrigin;
use ualink_attest::snp::{SnpCerts, SnpVerifier};
use ualink_attest::{ExpectedReportData, UnixTime};
use ualink_policy::input::{CvmPolicyFields, CvmTcb, TeeRoot, TeeType};
use zeroize::Zeroizing;

use super::error::ApiError;
use super::session::CvmClaims;

/// The protocol version spoken.
pub const PROTOCOL_VERSION: &str = "0.4.0";
/// The session cookie.
pub const SESSION_COOKIE: &str = "kbs-session-id";
/// The only JWE key-management algorithm.
pub const JWE_ALG: &str = "ECDH-ES+A256KW";
/// The only JWE content encryption.
pub const JWE_ENC: &str = "A256GCM";

/// Most certificates accepted with a report (VCEK/VLEK, ASK/ASVK, an ignored ARK).
const MAX_CHAIN: usize = 4;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnpEvidenceJson {
    attestation_report: String,
    cert_chain: Option<Vec<CertJson>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertJson {
    cert_type: String,
    data: String,
}

fn b64_any(s: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(s)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(s).ok())
}

/// The uncompressed SEC1 point (65 bytes) of a `tee-pubkey` JWK, which must be
/// `{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW"}` with 32-byte coordinates on the curve.
pub fn tee_pubkey_point(jwk: &kbs_types::TeePubKey) -> Result<Vec<u8>, ApiError> {
    let bad = |why: &str| ApiError::bad_request("bad_tee_pubkey", format!("tee-pubkey: {why}"));
    let kbs_types::TeePubKey::EC { crv, alg, x, y } = jwk else {
        return Err(bad("only an EC key is accepted"));
    };
    if crv != "P-256" {
        return Err(bad("crv must be P-256"));
    }
    if alg != JWE_ALG {
        return Err(bad("alg must be ECDH-ES+A256KW"));
    }
    let (Ok(x), Ok(y)) = (URL_SAFE_NO_PAD.decode(x), URL_SAFE_NO_PAD.decode(y)) else {
        return Err(bad("x/y are not unpadded base64url"));
    };
    if x.len() != 32 || y.len() != 32 {
        return Err(bad("x/y are not 32 bytes"));
    }
    let mut point = Vec::with_capacity(65);
    point.push(4u8);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let ep = p256::EncodedPoint::from_bytes(&point).map_err(|_| bad("not a SEC1 point"))?;
    if Option::<p256::PublicKey>::from(p256::PublicKey::from_encoded_point(&ep)).is_none() {
        return Err(bad("not a point on P-256"));
    }
    Ok(point)
}

/// Verifies SNP-format evidence bound to `expected` report_data and returns its claims.
pub fn verify_snp(
    primary: &serde_json::Value,
    expected: [u8; 64],
    verifier: &SnpVerifier,
    cvm_id: String,
    now: UnixTime,
) -> Result<CvmClaims, ApiError> {
    let ev: SnpEvidenceJson = serde_json::from_value(primary.clone()).map_err(|e| {
        ApiError::bad_request("malformed_evidence", format!("SNP evidence JSON: {e}"))
    })?;
    let report = b64_any(&ev.attestation_report).ok_or_else(|| {
        ApiError::bad_request("malformed_evidence", "attestation_report is not base64")
    })?;
    let chain = ev.cert_chain.ok_or_else(|| {
        ApiError::bad_request(
            "malformed_evidence",
            "cert_chain is null: the TSM needs the VCEK/VLEK and ASK with the report",
        )
    })?;
    if chain.len() > MAX_CHAIN {
        return Err(ApiError::bad_request(
            "malformed_evidence",
            format!(
                "cert_chain has {} entries (at most {MAX_CHAIN})",
                chain.len()
            ),
        ));
    }
    let mut leaf = None;
    let mut intermediates = Vec::new();
    for c in &chain {
        let der = b64_any(&c.data).ok_or_else(|| {
            ApiError::bad_request("malformed_evidence", "a cert_chain entry is not base64")
        })?;
        match c.cert_type.as_str() {
            "vcek" | "vlek" if leaf.is_none() => leaf = Some(der),
            "ask" | "asvk" => intermediates.push(der),
            "ark" => {} // roots come only from the verifier's anchors
            other => {
                return Err(ApiError::bad_request(
                    "malformed_evidence",
                    format!("unexpected cert_type {other:?}"),
                ))
            }
        }
    }
    let leaf = leaf.ok_or_else(|| {
        ApiError::bad_request("malformed_evidence", "cert_chain has no vcek/vlek")
    })?;
    let certs = SnpCerts {
        leaf: leaf.clone(),
        intermediates: intermediates.clone(),
    };
    let v = verifier
        .verify(
            &report,
            &certs,
            &ExpectedReportData::Expected(expected),
            now,
        )
        .map_err(|e| {
            let code = match (&e, e.class()) {
                (ualink_attest::Error::BindingMismatch { .. }, _) => "report_data_mismatch",
                (_, ualink_attest::ErrorClass::Trust) => "evidence_untrusted",
                _ => "evidence_invalid",
            };
            ApiError::new(StatusCode::FORBIDDEN, code, format!("CVM evidence: {e}"))
        })?;
    let (tee, root) = match v.root {
        AnchorOrigin::AmdBuiltin(_) => (TeeType::Snp, TeeRoot::Amd),
        AnchorOrigin::Explicit => (TeeType::Sim, TeeRoot::Explicit),
    };
    let r = &v.report;
    // SNP guest POLICY: bit 16 SMT, bit 18 MIGRATE_MA, bit 19 DEBUG.
    let bit = |n: u32| r.policy & (1u64 << n) != 0;
    let mut components = std::collections::BTreeMap::new();
    let t = &r.reported_tcb;
    components.insert("bootloader".to_string(), u64::from(t.bootloader));
    components.insert("tee".to_string(), u64::from(t.tee));
    components.insert("snp".to_string(), u64::from(t.snp));
    components.insert("microcode".to_string(), u64::from(t.microcode));
    if let Some(f) = t.fmc {
        components.insert("fmc".to_string(), u64::from(f));
    }
    Ok(CvmClaims {
        cvm_id,
        tee,
        root,
        measurement: r.measurement,
        policy: CvmPolicyFields {
            debug_allowed: bit(19),
            migration_agent_allowed: bit(18),
            smt_allowed: bit(16),
            vmpl: u8::try_from(r.vmpl).ok(),
        },
        tcb: CvmTcb {
            components,
            status: None,
        },
        debug: bit(19),
        attested_at: u64::try_from(now.secs()).unwrap_or(0),
        report,
        leaf,
        intermediates,
    })
}

/// The CVM id of a key: `cvm-` and the first 8 bytes of SHA-384 of the SEC1 point, in hex.
pub fn cvm_id(point: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA384, point);
    format!(
        "cvm-{}",
        hex::encode(d.as_ref().get(..8).unwrap_or_default())
    )
}

/// The EAR token for an attested CVM, signed with the TSM identity key; valid for `ttl_secs`.
pub fn ear_token(
    signer: &EarSigner,
    claims: &CvmClaims,
    ttl_secs: i64,
) -> Result<String, ApiError> {
    let now = UnixTime::now();
    let mut ear = ualink_attest::ear::new_ear(
        now,
        "ualink-cc",
        concat!("ualink-tsm ", env!("CARGO_PKG_VERSION")),
    );
    ear.exp = Some(now.secs().saturating_add(ttl_secs));
    let mut a = Appraisal::new();
    // AR4SI: instance identity 2 (trustworthy), hardware 2 (genuine). The tenant appraisal
    // (ualink.cvm) happens per tenant on first use, not here.
    a.trust_vector.instance_identity.set(2);
    a.trust_vector.hardware.set(2);
    a.status = TrustTier::Affirming;
    a.policy_ids = vec![format!(
        "ualink-tsm/{}",
        match claims.tee {
            TeeType::Snp => "snp",
            TeeType::Tdx => "tdx",
            TeeType::Sim => "sim",
        }
    )];
    ear.submods.insert(claims.cvm_id.clone(), a);
    signer
        .sign(&ear)
        .map_err(|e| ApiError::internal(format!("signing the EAR: {e}")))
}

/// Concat KDF (RFC 7518 §4.6.2, NIST SP 800-56A) with SHA-256, one round (`bits` ≤ 256):
/// `SHA-256(00000001 ‖ Z ‖ len‖alg ‖ len‖apu ‖ len‖apv ‖ bits)`, truncated to `bits`.
fn concat_kdf(z: &[u8], alg: &str, apu: &[u8], apv: &[u8], bits: u32) -> Zeroizing<Vec<u8>> {
    let len = |b: &[u8]| u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(z);
    ctx.update(&len(alg.as_bytes()));
    ctx.update(alg.as_bytes());
    ctx.update(&len(apu));
    ctx.update(apu);
    ctx.update(&len(apv));
    ctx.update(apv);
    ctx.update(&bits.to_be_bytes());
    let d = ctx.finish();
    let n = usize::try_from(bits / 8).unwrap_or(32).min(32);
    Zeroizing::new(d.as_ref().get(..n).unwrap_or_default().to_vec())
}

/// Encrypts `plaintext` to the P-256 public key `point` (65-byte SEC1) as a flattened JWE
/// (see the module documentation).
pub fn encrypt_jwe(point: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, ApiError> {
    let err = |what: &str| ApiError::internal(format!("JWE: {what}"));
    let recipient = p256::PublicKey::from_sec1_bytes(point).map_err(|_| err("recipient key"))?;
    let rng = SystemRandom::new();
    let eph = ephemeral_secret(&rng)?;
    let epk = eph.public_key().to_encoded_point(false);
    let (Some(ex), Some(ey)) = (epk.x(), epk.y()) else {
        return Err(err("ephemeral point"));
    };
    let shared = p256::ecdh::diffie_hellman(eph.to_nonzero_scalar(), recipient.as_affine());
    let kek = concat_kdf(shared.raw_secret_bytes(), JWE_ALG, &[], &[], 256);
    let kek: &[u8; 32] = kek
        .as_slice()
        .try_into()
        .map_err(|_| err("Concat KDF length"))?;
    let mut cek = Zeroizing::new([0u8; 32]);
    rng.fill(cek.as_mut()).map_err(|_| err("RNG"))?;
    let wrapped = aes_kw::KekAes256::new(kek.into())
        .wrap_vec(cek.as_ref())
        .map_err(|_| err("key wrap"))?;
    let header = serde_json::json!({
        "alg": JWE_ALG,
        "enc": JWE_ENC,
        "epk": {"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(ex), "y": URL_SAFE_NO_PAD.encode(ey)},
    });
    let protected = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| err("header"))?);
    let mut iv = [0u8; 12];
    rng.fill(&mut iv).map_err(|_| err("RNG"))?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, cek.as_ref()).map_err(|_| err("AES key"))?);
    let mut buf = Zeroizing::new(plaintext.to_vec());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(protected.as_bytes()),
            buf.as_mut(),
        )
        .map_err(|_| err("seal"))?;
    let jwe = serde_json::json!({
        "protected": protected,
        "encrypted_key": URL_SAFE_NO_PAD.encode(wrapped),
        "iv": URL_SAFE_NO_PAD.encode(iv),
        "ciphertext": URL_SAFE_NO_PAD.encode(buf.as_slice()),
        "tag": URL_SAFE_NO_PAD.encode(tag.as_ref()),
    });
    serde_json::to_vec(&jwe).map_err(|_| err("encoding"))
}

/// A fresh P-256 secret from ring's system RNG (zeroized on drop by p256).
fn ephemeral_secret(rng: &SystemRandom) -> Result<p256::SecretKey, ApiError> {
    // A random 256-bit string is a valid scalar except with probability ~2^-32: retry.
    for _ in 0..8 {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill(b.as_mut())
            .map_err(|_| ApiError::internal("system RNG failed"))?;
        if let Ok(k) = p256::SecretKey::from_slice(b.as_ref()) {
            return Ok(k);
        }
    }
    Err(ApiError::internal("could not draw a P-256 scalar"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ualink_guest_agent::kbs::jwe::EphemeralKey;

    #[test]
    fn concat_kdf_matches_rfc7518_appendix_c() {
        // RFC 7518 Appendix C: ECDH-ES, A128GCM, apu "Alice", apv "Bob".
        let z = hex::decode("9e56d91d817135d372834283bf84269cfb316ea3da806a48f6daa7798cfe90c4")
            .unwrap();
        let k = concat_kdf(&z, "A128GCM", b"Alice", b"Bob", 128);
        assert_eq!(
            hex::encode(k.as_slice()),
            "56aa8deaf8236d205c2228cd71a7101a"
        );
    }

    fn point_of(k: &EphemeralKey) -> Vec<u8> {
        tee_pubkey_point(&k.jwk()).unwrap()
    }

    #[test]
    fn jwe_round_trips_through_the_agent_decrypter_and_tampering_fails() {
        let k = EphemeralKey::generate().unwrap();
        let jwe = encrypt_jwe(&point_of(&k), b"vpod config").unwrap();
        assert_eq!(k.decrypt(&jwe).unwrap().as_slice(), b"vpod config");
        // Another key cannot open it.
        let other = EphemeralKey::generate().unwrap();
        assert!(other.decrypt(&jwe).is_err());
        // Any altered member is refused.
        let v: serde_json::Value = serde_json::from_slice(&jwe).unwrap();
        for member in ["protected", "encrypted_key", "iv", "ciphertext", "tag"] {
            let mut t = v.clone();
            let s = t[member].as_str().unwrap().to_string();
            let mut b = URL_SAFE_NO_PAD.decode(&s).unwrap();
            b[0] ^= 1;
            t[member] = serde_json::Value::String(URL_SAFE_NO_PAD.encode(b));
            assert!(
                k.decrypt(&serde_json::to_vec(&t).unwrap()).is_err(),
                "{member} altered"
            );
        }
    }

    #[test]
    fn tee_pubkeys_other_than_p256_ecdh_es_points_are_refused() {
        let k = EphemeralKey::generate().unwrap();
        let kbs_types::TeePubKey::EC { x, y, .. } = k.jwk() else {
            panic!("EC")
        };
        let ec = |crv: &str, alg: &str, x: &str, y: &str| kbs_types::TeePubKey::EC {
            crv: crv.into(),
            alg: alg.into(),
            x: x.into(),
            y: y.into(),
        };
        assert_eq!(
            tee_pubkey_point(&ec("P-256", JWE_ALG, &x, &y))
                .unwrap()
                .len(),
            65
        );
        for bad in [
            ec("P-384", JWE_ALG, &x, &y),
            ec("P-256", "ECDH-ES", &x, &y),
            ec("P-256", JWE_ALG, &x, "AAAA"),
            ec("P-256", JWE_ALG, &x, &URL_SAFE_NO_PAD.encode([0u8; 32])),
            ec("P-256", JWE_ALG, "!!", &y),
            kbs_types::TeePubKey::RSA {
                alg: "RSA1_5".into(),
                k_mod: "AQAB".into(),
                k_exp: "AQAB".into(),
            },
        ] {
            assert_eq!(
                tee_pubkey_point(&bad).unwrap_err().body.code,
                "bad_tee_pubkey"
            );
        }
    }

    #[test]
    fn malformed_evidence_is_refused_by_name() {
        let v = SnpVerifier::new(ualink_attest::pki::TrustAnchors::empty());
        let now = UnixTime::now();
        for ev in [
            serde_json::json!({"attestation_report": "AAAA"}),
            serde_json::json!({"attestation_report": "AAAA", "cert_chain": null}),
            serde_json::json!({"attestation_report": "%%", "cert_chain": []}),
            serde_json::json!({"attestation_report": "AAAA", "cert_chain": [], "x": 1}),
            serde_json::json!({"attestation_report": "AAAA", "cert_chain": [{"cert_type": "ask", "data": "AAAA"}]}),
            serde_json::json!({"attestation_report": "AAAA", "cert_chain": [{"cert_type": "pek", "data": "AAAA"}]}),
            serde_json::json!({"attestation_report": "AAAA", "cert_chain": [
                {"cert_type": "vcek", "data": "AAAA"}, {"cert_type": "ask", "data": "AAAA"},
                {"cert_type": "ask", "data": "AAAA"}, {"cert_type": "ask", "data": "AAAA"},
                {"cert_type": "ask", "data": "AAAA"}]}),
            serde_json::json!("not an object"),
        ] {
            let e = verify_snp(&ev, [0; 64], &v, "cvm".into(), now).unwrap_err();
            assert_eq!(e.body.code, "malformed_evidence", "{ev}");
        }
        // Well-formed but garbage bytes: the verifier names the failure.
        let ev = serde_json::json!({"attestation_report": "AAAA",
            "cert_chain": [{"cert_type": "vcek", "data": "AAAA"}]});
        let e = verify_snp(&ev, [0; 64], &v, "cvm".into(), now).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
    }
}
