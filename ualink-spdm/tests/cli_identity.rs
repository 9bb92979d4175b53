//! `respond --identity DIR` with an identity made beforehand (by OpenSSL): used as-is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_common;

use cli_common::{bin, data, probe, run, Responder, Scratch};

const FILES: [&str; 3] = ["ca.pem", "chain.pem", "device.key.pem"];

fn copy_openssl_identity(scratch: &Scratch) -> std::path::PathBuf {
    let dir = scratch.path().join("id");
    std::fs::create_dir_all(&dir).unwrap();
    for f in FILES {
        std::fs::copy(data("openssl_identity").join(f), dir.join(f)).unwrap();
    }
    dir
}

#[test]
fn an_existing_identity_is_presented_as_is() {
    let scratch = Scratch::new("openssl-id");
    let dir = copy_openssl_identity(&scratch);
    let before: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    let mut rsp = Responder::start(&[
        "--identity",
        dir.to_str().unwrap(),
        "--transport",
        "pci-doe",
    ]);
    let out = probe(
        &rsp.addr(),
        &[
            "--transport",
            "pci-doe",
            "--trust-anchor",
            dir.join("ca.pem").to_str().unwrap(),
            "--session",
            "--tdisp",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out:?}\n{}", rsp.log());
    assert!(
        out.stdout.contains("  [0] CN=openssl test root"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  [1] CN=openssl test device"));
    assert!(out.stdout.contains("asym=ECDSA-P384"));
    assert!(out.stdout.contains("result: VERIFIED"));
    assert!(rsp.wait_exit().unwrap().success());
    assert!(rsp.log().contains("identity loaded"), "{}", rsp.log());
    let after: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "the identity files were rewritten");
}

#[test]
fn a_der_trust_anchor_works_too() {
    let scratch = Scratch::new("der-anchor");
    let dir = copy_openssl_identity(&scratch);
    let pem_text = std::fs::read(dir.join("ca.pem")).unwrap();
    let der = pem::parse(pem_text).unwrap().into_contents();
    let der_path = scratch.path().join("ca.der");
    std::fs::write(&der_path, der).unwrap();
    let rsp = Responder::start(&["--identity", dir.to_str().unwrap()]);
    let out = probe(&rsp.addr(), &["--trust-anchor", der_path.to_str().unwrap()]);
    assert_eq!(out.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains("result: VERIFIED"));
}

#[test]
fn an_identity_of_the_other_curve_is_refused() {
    let scratch = Scratch::new("curve-mismatch");
    let dir = copy_openssl_identity(&scratch);
    let mut cmd = bin();
    cmd.args([
        "respond",
        "--listen",
        "127.0.0.1:0",
        "--identity",
        dir.to_str().unwrap(),
        "--asym",
        "p256",
    ]);
    let out = run(cmd);
    assert_eq!(out.code(), Some(2), "{out:?}");
    assert!(out
        .stderr
        .contains("holds a ECDSA P-384 key but --asym asks for ECDSA P-256"));
}

#[test]
fn a_partial_identity_directory_is_refused_not_overwritten() {
    let scratch = Scratch::new("partial-id");
    let dir = copy_openssl_identity(&scratch);
    std::fs::remove_file(dir.join("device.key.pem")).unwrap();
    let mut cmd = bin();
    cmd.args([
        "respond",
        "--listen",
        "127.0.0.1:0",
        "--identity",
        dir.to_str().unwrap(),
    ]);
    let out = run(cmd);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("device.key.pem is missing"), "{out:?}");
    assert!(!dir.join("device.key.pem").exists());
}
