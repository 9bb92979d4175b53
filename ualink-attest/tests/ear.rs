//! EAR tokens: ES384 JWTs with the Veraison EAR profile, signed and verified with ring.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ualink_attest::ear::{new_ear, Appraisal, EarSigner, EarVerifier, TrustTier, EAR_PROFILE};
use ualink_attest::{Error, UnixTime};

const NOW: UnixTime = UnixTime::from_secs(1_764_000_000);

fn sample() -> ualink_attest::ear::Ear {
    let mut ear = new_ear(NOW, "ualink-cc", "ualink-attest 0.1.0");
    let mut a = Appraisal::new();
    a.trust_vector.hardware.set(2);
    a.trust_vector.executables.set(2);
    a.update_status_from_trust_vector();
    ear.submods.insert("cpu0".into(), a);
    ear.update_status_from_trust_vector();
    ear
}

#[test]
fn signed_ear_verifies_with_veraison_shape() {
    let (signer, _pkcs8) = EarSigner::generate().unwrap();
    let token = signer.sign(&sample()).unwrap();
    let ear = EarVerifier::new(signer.public_key())
        .verify(&token, NOW)
        .unwrap();
    assert_eq!(ear.profile, EAR_PROFILE);
    assert_eq!(ear.status, Some(TrustTier::Affirming));
    assert_eq!(ear, sample());

    let parts: Vec<&str> = token.split('.').collect();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES384");
    assert_eq!(header["kid"], signer.kid());
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(payload["eat_profile"], "tag:github.com,2023:veraison/ear");
    assert_eq!(payload["submods"]["cpu0"]["ear_status"], "affirming");
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 96);
}

#[test]
fn altered_tokens_are_refused() {
    let (signer, _) = EarSigner::generate().unwrap();
    let v = EarVerifier::new(signer.public_key());
    let token = signer.sign(&sample()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();

    // Payload changed (status upgraded) under the old signature.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["iat"] = serde_json::json!(NOW.secs() + 1);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    assert!(matches!(
        v.verify(&forged, NOW),
        Err(Error::BadSignature { .. })
    ));

    // alg downgraded to none.
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let t = format!("{none}.{}.", parts[1]);
    assert!(matches!(
        v.verify(&t, NOW),
        Err(Error::UnsupportedAlgorithm { .. })
    ));

    // Wrong key.
    let (other, _) = EarSigner::generate().unwrap();
    assert!(matches!(
        EarVerifier::new(other.public_key()).verify(&token, NOW),
        Err(Error::BadSignature { .. })
    ));

    // Extra part, truncated signature.
    assert!(matches!(
        v.verify(&format!("{token}.x"), NOW),
        Err(Error::Malformed { .. })
    ));
    assert!(matches!(
        v.verify(&token[..token.len() - 4], NOW),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn expiry_is_checked_against_the_callers_time() {
    let (signer, _) = EarSigner::generate().unwrap();
    let v = EarVerifier::new(signer.public_key());
    let mut ear = sample();
    // In the future of the system clock, so the ear crate's own check passes at signing.
    let exp = UnixTime::now().secs() + 3600;
    ear.exp = Some(exp);
    let token = signer.sign(&ear).unwrap();
    assert_eq!(v.verify(&token, NOW).unwrap().exp, Some(exp));
    assert!(matches!(
        v.verify(&token, UnixTime::from_secs(exp)),
        Err(Error::Expired { .. })
    ));
}

#[test]
fn signer_round_trips_through_pkcs8() {
    let (signer, pkcs8) = EarSigner::generate().unwrap();
    let again = EarSigner::from_pkcs8(&pkcs8).unwrap();
    assert_eq!(signer.public_key(), again.public_key());
    assert!(!format!("{signer:?}").contains(&hex::encode(&pkcs8[..])));
}
