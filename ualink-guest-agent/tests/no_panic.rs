//! Arbitrary peer bytes never panic the parsers that take them: KBS resource JWEs (as
//! bytes and as structurally valid JSON with random fields), SNP certificate tables, KBS
//! error bodies through the resource path, JCS over arbitrary JSON, mesh frames, CVM
//! evidence JSON and TSM identity answers.
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

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mesh_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let r = rt().block_on(async {
            let mut rd = bytes.as_slice();
            ualink_guest_agent::mesh::read_msg(&mut rd).await
        });
        // Random bytes are never a complete, valid frame with a known message.
        if let Ok(m) = r {
            prop_assert!(bytes.len() >= 4, "{m:?}");
        }
    }

    #[test]
    fn mesh_json_never_panics(ty in prop_oneof![Just("keys".to_string()), Just("config".to_string()), Just("hello".to_string()),
            Just("evidence".to_string()), ".{0,8}"], k in ".{0,6}", v in any::<i64>(), s in ".{0,12}") {
        let body = serde_json::json!({"type": ty, k: v, "keys": [{"tx": v, "port": 0, "rx": 1,
            "key": s}], "config": {"accelerators": [{"accelerator_id": v, "tx_ports": [],
            "report_digest": s}]}, "tenant": s, "nonce": s, "evidence": {}}).to_string();
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body.as_bytes());
        let _ = rt().block_on(async {
            let mut rd = frame.as_slice();
            ualink_guest_agent::mesh::read_msg(&mut rd).await
        });
    }

    #[test]
    fn cvm_evidence_json_never_panics(r in b64u(), t in ".{0,6}", d in b64u()) {
        let v = serde_json::json!({"attestation_report": r,
            "cert_chain": [{"cert_type": t, "data": d}]});
        prop_assert!(ualink_guest_agent::cvm::parse_snp_evidence(&v)
            .map(|(rep, _)| rep.len() < 80).unwrap_or(true));
    }

    #[test]
    fn tsm_answers_never_panic(pk in "[0-9a-f]{0,200}", ev in b64u(), ca in ".{0,60}") {
        let info = ualink_guest_agent::tsm::api::TsmInfo {
            public_key: pk, evidence: ev, cert_chain: vec![], ca_pem: ca,
        };
        let trust = ualink_guest_agent::tsm::TsmTrust {
            roots: ualink_attest::pki::TrustAnchors::empty(), pinned_ca_pem: None,
        };
        prop_assert!(ualink_guest_agent::tsm::check_tsm_info(
            &info, &trust, ualink_attest::UnixTime::now()).is_err());
    }

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
