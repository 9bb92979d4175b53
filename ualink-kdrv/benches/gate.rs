//! Benchmarks: the cached gate check on the map path (time and allocations), map + unmap, and revoking
//! 1,024 mapped attachments of one buffer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::System;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use ualink_kdrv::ids::Rights;
use ualink_kdrv::{AttachRequest, Config, FileCtx};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn gate(c: &mut Criterion) {
    let mut s = Scenario::new();
    let mut claims = s.claims_for_b();
    // Every unmap drains, which advances the fake fabric clock: keep the grant valid throughout.
    claims.expiry = u64::MAX / 2;
    let g = s.tsm.grant(&claims);
    let att = s.attach_b(Some(&g), Rights::READ).unwrap();
    let fb = s.fb;

    // Allocation count over many cached checks.
    const N: u64 = 100_000;
    let region = Region::new(GLOBAL);
    for _ in 0..N {
        std::hint::black_box(s.d.gate_check(&fb, std::hint::black_box(att))).unwrap();
    }
    let stats = region.change();
    eprintln!(
        "gate_check: {} allocations, {} reallocations, {} bytes over {N} calls",
        stats.allocations, stats.reallocations, stats.bytes_allocated
    );
    assert_eq!(
        stats.allocations + stats.reallocations,
        0,
        "the map-path check must not allocate"
    );

    c.bench_function("gate_check_cached", |b| {
        b.iter(|| s.d.gate_check(&fb, std::hint::black_box(att)))
    });

    // The whole map + unmap (gate check, routes, window permission, drain, zap) for comparison.
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        s.d.map(&fb, att).unwrap();
        s.d.unmap(&fb, att).unwrap();
    }
    let stats = region.change();
    eprintln!(
        "map+unmap: {:.1} allocations per pair (routes and bookkeeping; not the gate check)",
        stats.allocations as f64 / 1000.0
    );
    c.bench_function("map_unmap_granted", |b| {
        b.iter(|| {
            s.d.map(&fb, att).unwrap();
            s.d.unmap(&fb, att).unwrap();
        })
    });
}

/// 1,024 granted cross-tenant attachments of one buffer, each mapped.
fn revoke_1024(c: &mut Criterion) {
    const N: usize = 1024;
    let tsm = Tsm::new();
    let pkcs8 = tsm.pkcs8.clone();
    // Pre-sign the grants once: every setup builds an identical fresh driver (same handle secret,
    // same clock), so the same grants are valid, and unused, in each.
    let s0 = Scenario::with_tsm(FakeFabric::new(6, 2), Config::default(), tsm);
    let mut base = {
        let mut s = s0;
        s.claims_for_b()
    };
    base.expiry = u64::MAX / 2;
    let grants: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let mut c = base.clone();
            c.grant_id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            c.nonce[..8].copy_from_slice(&(i as u64 | 1 << 40).to_le_bytes());
            Tsm::from_pkcs8(&pkcs8).grant(&c)
        })
        .collect();

    let setup = || {
        let mut s = Scenario::with_tsm(
            FakeFabric::new(6, 2),
            Config::default(),
            Tsm::from_pkcs8(&pkcs8),
        );
        let fb: FileCtx = s.fb;
        for (i, g) in grants.iter().enumerate() {
            let req = AttachRequest {
                handle: s.handle,
                importer_accel: acc(2),
                rights: Rights::READ,
                invalidate_cookie: Some(i as u64),
                grant: Some(g),
            };
            let att = s.d.attach(&fb, &req).unwrap();
            s.d.map(&fb, att).unwrap();
        }
        assert_eq!(s.d.mappings().count(), N);
        s
    };

    let mut g = c.benchmark_group("revoke");
    g.sample_size(20);
    g.bench_function("revoke_1024_mapped_attachments", |b| {
        b.iter_batched(
            setup,
            |mut s| {
                let (fa, h) = (s.fa, s.handle);
                s.d.revoke(&fa, h).unwrap();
                s
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // On a loaded shared machine criterion's mean is dominated by preemption; the minimum over
    // repeated runs is the robust figure for "how long does revoking 1,024 mappings take".
    let mut times: Vec<std::time::Duration> = (0..15)
        .map(|_| {
            let mut s = setup();
            let (fa, h) = (s.fa, s.handle);
            let region = Region::new(GLOBAL);
            let t0 = std::time::Instant::now();
            s.d.revoke(&fa, h).unwrap();
            let dt = t0.elapsed();
            let a = region.change();
            assert!(a.allocations < 16, "revoke allocations: {}", a.allocations);
            dt
        })
        .collect();
    times.sort();
    eprintln!(
        "revoke 1024 mapped attachments: min {:?}, median {:?} over {} runs",
        times[0],
        times[times.len() / 2],
        times.len()
    );

    let mut s = setup();
    let (fa, h) = (s.fa, s.handle);
    s.d.revoke(&fa, h).unwrap();
    assert_eq!(s.d.mappings().count(), 0);
    assert_eq!(s.d.notify_sink().0.borrow().len(), N);
}

criterion_group!(benches, gate, revoke_1024);
criterion_main!(benches);
