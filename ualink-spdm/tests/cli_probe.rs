//! `ualink-spdm respond` attested by `ualink-spdm probe` as separate processes over TCP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_common;

use cli_common::{probe, Responder, Scratch};

/// Starts a responder with a generated identity in `scratch` and probes it with
/// --session --tdisp; checks the exit code and the expected report lines.
fn attest(name: &str, version: &str, asym: &str, transport: &str) {
    let scratch = Scratch::new(name);
    let id = scratch.path().join("id");
    let id_s = id.to_str().unwrap();
    let mut rsp = Responder::start(&[
        "--identity",
        id_s,
        "--asym",
        asym,
        "--version",
        version,
        "--transport",
        transport,
    ]);
    let ca = id.join("ca.pem");
    assert!(rsp
        .stdout
        .lock()
        .unwrap()
        .contains(&format!("trust anchor: {}", ca.display())));
    let out = probe(
        &rsp.addr(),
        &[
            "--transport",
            transport,
            "--version",
            version,
            "--asym",
            asym,
            "--trust-anchor",
            ca.to_str().unwrap(),
            "--session",
            "--tdisp",
        ],
    );
    assert_eq!(
        out.code(),
        Some(0),
        "{out:?}\nresponder log:\n{}",
        rsp.log()
    );
    let curve = if asym == "p256" { "P256" } else { "P384" };
    for want in [
        format!("version: SPDM {version}"),
        format!("asym=ECDSA-{curve}"),
        String::from("aead=AES-256-GCM"),
        String::from("  [0] CN=ualink-spdm test device root CA"),
        String::from("  [1] CN=ualink-spdm test device responder"),
        String::from("chain verdict: VERIFIED"),
        String::from("challenge: CHALLENGE_AUTH signature verified"),
        String::from("measurements: 5 blocks, signature verified"),
        String::from("  #5 version raw 312e302e30"),
        String::from("session: established"),
        String::from(
            "tdisp: CONFIG_UNLOCKED -> KEYS_LIVE -> CONFIG_LOCKED -> REPORT(20 bytes) -> RUN -> CONFIG_UNLOCKED",
        ),
        String::from("session: ended (END_SESSION acknowledged)"),
        String::from("connection: SHUTDOWN acknowledged"),
        String::from("result: VERIFIED"),
    ] {
        assert!(out.stdout.contains(&want), "missing {want:?} in\n{}", out.stdout);
    }
    if transport == "pci-doe" {
        assert!(out
            .stdout
            .contains("doe discovery: 0x0001:0 0x0001:1 0x0001:2"));
    }
    // SHUTDOWN stops the responder (as spdm-emu's does); it logged the conversation by type
    // and never a payload.
    assert!(rsp.wait_exit().unwrap().success());
    let log = rsp.log();
    assert!(log.contains("identity generated"), "{log}");
    assert!(log.contains("conn 1: connected"));
    assert!(log.contains("conn 1: GET_VERSION(0x84) len=4 -> VERSION(0x04)"));
    assert!(log.contains("conn 1: KEY_EXCHANGE(0xe4)"));
    assert!(log.contains("conn 1: SHUTDOWN after"));
}

#[test]
fn v12_p256_mctp_session_and_tdisp_verify() {
    attest("v12-mctp", "1.2", "p256", "mctp");
}

#[test]
fn v13_p384_pci_doe_session_and_tdisp_verify() {
    attest("v13-doe", "1.3", "p384", "pci-doe");
}

#[test]
fn v13_p384_none_attests_and_refuses_a_session_it_cannot_carry() {
    let scratch = Scratch::new("v13-none");
    let id = scratch.path().join("id");
    let rsp = Responder::start(&[
        "--identity",
        id.to_str().unwrap(),
        "--asym",
        "p384",
        "--version",
        "1.3",
        "--transport",
        "none",
        "--keep-serving",
    ]);
    let ca = id.join("ca.pem");
    let ca = ca.to_str().unwrap();
    // NONE cannot carry secured messages: asking for a session is a usage error, before
    // any connection.
    let refused = probe(
        &rsp.addr(),
        &[
            "--transport",
            "none",
            "--trust-anchor",
            ca,
            "--session",
            "--tdisp",
        ],
    );
    assert_eq!(refused.code(), Some(2), "{refused:?}");
    assert!(refused.stderr.contains("transport none"), "{refused:?}");
    assert!(!rsp.log().contains("conn 1"));

    let out = probe(
        &rsp.addr(),
        &[
            "--transport",
            "none",
            "--version",
            "1.3",
            "--trust-anchor",
            ca,
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}\n{}", rsp.log());
    for want in [
        "version: SPDM 1.3",
        "asym=ECDSA-P384 dhe=secp384r1",
        "chain verdict: VERIFIED",
        "measurements: 5 blocks, signature verified",
        "session: none",
        "result: VERIFIED",
    ] {
        assert!(
            out.stdout.contains(want),
            "missing {want:?} in\n{}",
            out.stdout
        );
    }
}

#[test]
fn wrong_trust_anchor_is_a_certificate_error() {
    let scratch = Scratch::new("wrong-anchor");
    let id = scratch.path().join("id");
    let other = scratch.path().join("other");
    // Another identity's root: the device's chain does not lead to it.
    let _ = ualink_spdm::identity::DeviceIdentity::load_or_generate(
        &other,
        ualink_spdm::algo::AsymAlg::EcdsaP256,
        &Default::default(),
    )
    .unwrap();
    let rsp = Responder::start(&["--identity", id.to_str().unwrap(), "--asym", "p256"]);
    let out = probe(
        &rsp.addr(),
        &[
            "--trust-anchor",
            other.join("ca.pem").to_str().unwrap(),
            "--session",
        ],
    );
    assert_eq!(out.code(), Some(4), "{out:?}");
    assert!(out.stderr.contains("verification failed: certificate chain rejected: root certificate is not a configured trust anchor (CertError::UntrustedRoot)"), "{out:?}");
    assert!(out.stdout.contains("result: NOT VERIFIED"), "{out:?}");
    assert!(!out.stdout.contains("session: established"));
}

#[test]
fn without_trust_anchor_nothing_is_called_verified() {
    let scratch = Scratch::new("no-anchor");
    let id = scratch.path().join("id");
    let rsp = Responder::start(&["--identity", id.to_str().unwrap(), "--asym", "p384"]);
    let out = probe(&rsp.addr(), &["--session"]);
    assert_eq!(out.code(), Some(4), "{out:?}");
    // The evidence is shown, but the verdict says why it does not count.
    assert!(out
        .stdout
        .contains("chain verdict: NOT VERIFIED (no --trust-anchor given"));
    assert!(out.stdout.contains("measurements: 5 blocks"));
    assert!(out.stdout.contains("result: NOT VERIFIED"));
    assert!(!out.stdout.contains("result: VERIFIED"));
    assert!(out.stderr.contains("no --trust-anchor given"), "{out:?}");
}

#[test]
fn json_report_parses_and_names_every_field() {
    let scratch = Scratch::new("json");
    let id = scratch.path().join("id");
    let rsp = Responder::start(&[
        "--identity",
        id.to_str().unwrap(),
        "--asym",
        "p384",
        "--transport",
        "pci-doe",
    ]);
    let ca = id.join("ca.pem");
    let out = probe(
        &rsp.addr(),
        &[
            "--transport",
            "pci-doe",
            "--trust-anchor",
            ca.to_str().unwrap(),
            "--session",
            "--tdisp",
            "--json",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["version"], "1.3");
    assert_eq!(v["transport"], "pci-doe");
    assert_eq!(v["algorithms"]["asym"], "ECDSA-P384");
    assert_eq!(v["algorithms"]["hash"], "SHA-384");
    assert_eq!(v["algorithms"]["dhe"], "secp384r1");
    assert_eq!(v["chain"]["trusted"], true);
    assert_eq!(v["chain"]["subjects"].as_array().unwrap().len(), 2);
    assert_eq!(v["challenge_verified"], true);
    let m = v["measurements"].as_array().unwrap();
    assert_eq!(m.len(), 5);
    assert_eq!(m[0]["index"], 1);
    assert_eq!(m[0]["value"].as_str().unwrap().len(), 96);
    assert_eq!(v["session"]["established"], true);
    assert!(v["session"]["id"].is_u64());
    assert_eq!(v["tdisp"]["ok"], true);
    assert_eq!(
        v["tdisp"]["walk"],
        serde_json::json!([
            "CONFIG_UNLOCKED",
            "KEYS_LIVE",
            "CONFIG_LOCKED",
            "REPORT(20 bytes)",
            "RUN",
            "CONFIG_UNLOCKED"
        ])
    );
    assert!(v.get("error").is_none());
}

#[test]
fn json_report_of_a_failure_carries_the_reason() {
    let scratch = Scratch::new("json-fail");
    let id = scratch.path().join("id");
    let rsp = Responder::start(&["--identity", id.to_str().unwrap()]);
    let out = probe(&rsp.addr(), &["--json"]);
    assert_eq!(out.code(), Some(4));
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(v["exit_code"], 4);
    assert_eq!(v["chain"]["trusted"], false);
    assert!(v["error"].as_str().unwrap().contains("no --trust-anchor"));
}

#[test]
fn unreachable_device_is_a_connect_failure() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = probe(&format!("127.0.0.1:{port}"), &[]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("could not connect"), "{out:?}");
}

#[test]
fn tdisp_without_session_is_a_usage_error() {
    let out = probe("127.0.0.1:1", &["--tdisp"]);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out.stderr.contains("--tdisp needs --session"));
}

#[test]
fn responder_serves_again_after_a_dropped_connection() {
    let scratch = Scratch::new("reconnect");
    let id = scratch.path().join("id");
    let mut rsp = Responder::start(&["--identity", id.to_str().unwrap()]);
    // A client that connects and leaves without a word, then one that half-speaks.
    drop(std::net::TcpStream::connect(rsp.addr).unwrap());
    {
        let mut s = std::net::TcpStream::connect(rsp.addr).unwrap();
        std::io::Write::write_all(&mut s, &[0, 0, 0xde]).unwrap();
    }
    let ca = id.join("ca.pem");
    let out = probe(
        &rsp.addr(),
        &[
            "--trust-anchor",
            ca.to_str().unwrap(),
            "--session",
            "--tdisp",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}\n{}", rsp.log());
    assert!(rsp.wait_exit().unwrap().success());
    let log = rsp.log();
    assert!(log.contains("conn 1: closed after 0 messages"), "{log}");
    assert!(log.contains("conn 2: closed after 0 messages"), "{log}");
    assert!(log.contains("conn 3: SHUTDOWN after"), "{log}");
}
