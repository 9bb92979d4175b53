//! Cost of loading a bundle and of one evaluation of each decision under the default
//! policies (with the test data overlay).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::Path;
use ualink_policy::{DecisionKind, PolicyBundle, PolicyEngine};

fn read(rel: &str) -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(rel);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let overlay = read("overlay.json");
    c.bench_function("bundle: defaults + overlay (parse, compile, checks)", |b| {
        b.iter(|| {
            PolicyBundle::defaults()
                .unwrap()
                .with_data(overlay.clone())
                .unwrap()
        })
    });
    let bundle = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay)
        .unwrap();
    let engine = PolicyEngine::new(&bundle);
    for (kind, file) in [
        (DecisionKind::DeviceAppraisal, "inputs/device.json"),
        (DecisionKind::TdiAcceptance, "inputs/tdi_accept.json"),
        (DecisionKind::Share, "inputs/share.json"),
        (DecisionKind::KeyRotation, "inputs/key_rotation.json"),
        (DecisionKind::CvmAppraisal, "inputs/cvm.json"),
    ] {
        let input = read(file);
        c.bench_function(&format!("evaluate {kind}"), |b| {
            b.iter(|| engine.evaluate(kind, &input).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
