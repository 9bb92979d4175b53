//! Arbitrary peer bytes never panic the parsers that take them: KBS resource JWEs (as
//! bytes and as structurally valid JSON with random fields), SNP certificate tables, KBS
//! error bodies through the resource path, and JCS over arbitrary JSON.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use std::sync::OnceLock;
use ualink_guest_agent::evidence::certtable;
use ualink_guest_agent::kbs::jcs;
use ualink_guest_agent::kbs::jwe::EphemeralKey;

fn key() -> &'static EphemeralKey {
    static K: OnceLock<EphemeralKey> = OnceLock::new();
    K.get_or_init(|| EphemeralKey::generate().unwrap())
}

fn b64u() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn jwe_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = key().decrypt(&bytes);
    }

    #[test]
    fn jwe_fields_never_panic(
        alg in prop_oneof![Just("ECDH-ES+A256KW".to_string()), ".{0,12}"],
        x in b64u(), y in b64u(), ek in b64u(), iv in b64u(), ct in b64u(), tag in b64u(),
    ) {
        use base64::Engine as _;
        let h = serde_json::json!({"alg": alg, "enc": "A256GCM",
            "epk": {"kty": "EC", "crv": "P-256", "x": x, "y": y}});
        let protected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_string());
        let j = serde_json::json!({"protected": protected, "encrypted_key": ek, "iv": iv,
            "ciphertext": ct, "tag": tag});
        prop_assert!(key().decrypt(&serde_json::to_vec(&j).unwrap()).is_err());
    }

    #[test]
    fn cert_tables_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(entries) = certtable::parse(&bytes) {
            prop_assert!(entries.len() <= certtable::MAX_ENTRIES);
        }
    }

    #[test]
    fn jcs_never_panics(s in ".{0,40}", n in any::<i64>(), k in ".{0,8}") {
        let v = serde_json::json!({k: [s, n, null, true, {"a": 1.5}]});
        let _ = jcs::canonicalize(&v);
    }
}
