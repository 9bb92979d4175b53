//! Simulated encrypted link vs raw ring AES-256-GCM, at 64 KiB transfers, in the same run.
//!
//! - `sim/write_64KiB/txn=256B`: a 64 KiB write between two accelerators with the default
//!   256-byte transactions: per transaction the source seals (8-byte tag), the switch checks the
//!   route, the target verifies/decrypts (two-pass construction, see `ualinksec::gcm`), checks its
//!   window table, writes memory, and the write response is sealed and verified the same way.
//! - `sim/write_64KiB/txn=32KiB`: the same with 32 KiB transactions (two per transfer), which
//!   isolates the per-byte cost of the construction from per-transaction overhead.
//! - `ring/seal_open_64KiB`: ring seal + open (full tag) of the same 64 KiB in one message.
//! - `ring/seal_open_64KiB_in_256B`: ring seal + open of the same bytes in 256-byte messages.
//!
//! Sub-benches that split the 256-byte cost (all over the same 64 KiB in 256-byte messages,
//! 16-byte AAD like the transaction header):
//! - `gcm/seal_open_64KiB_in_256B`: `StreamCipher::seal` + `StreamCipher::open` (8-byte tag).
//! - `keyslot/seal_open_64KiB_in_256B`: the same through `KeySlot` (state and counter checks).
//! - `gcm/open_64KiB_in_256B` and `ring/open_64KiB_in_256B`: verification/decryption alone
//!   (ours with the 8-byte tag, ring with the full tag), each restoring the ciphertext first.
//!
//! - `keyslot/txn_crypto_64KiB_in_256B`: all the UALinkSec work of the 256-byte-transaction write
//!   (261-byte request body and 3-byte write response, each sealed and opened through `KeySlot`):
//!   the floor any simulator using this construction has at that transaction size.
//!
//! `sim/...` minus `keyslot/...` is the simulator's per-transaction overhead outside UALinkSec
//! (routing, window checks, memory write, header codec, buffer copies).
//!
//! The ratio throughput(sim) / throughput(ring) is read from criterion's output.
//!
//! Reading the 256-byte figures: at that size each AES-GCM call costs mostly its fixed per-call
//! work, not its bytes (ring's own `seal_open_64KiB_in_256B` runs at roughly a quarter to a third
//! of `seal_open_64KiB`). One simulated write transaction makes six ring calls (request seal, the
//! two-pass 8-byte-tag open, and the same for the write response), against ring's two per
//! 256-byte message, so `keyslot/txn_crypto...` bounds `sim/...txn=256B` from below whatever the
//! simulator around it does.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ualink_kdrv::ids::Rights;
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::ualinksec::gcm::{iv, StreamCipher};
use ualink_sim::ualinksec::{Direction, KeyRole, KeySlot, MasterKey, StreamId};
use ualink_sim::{AccelId, DevicePerm, SimPod};

const LEN: usize = 64 * 1024;

fn pod(max_txn: u16) -> (SimPod, AccelId, AccelId) {
    let mut spec = PodSpec::generate(&GenParams {
        accelerators: 2,
        switches: 1,
        memory_bytes: 1 << 20,
        spare_ports: 0,
    })
    .unwrap();
    spec.defaults.max_txn_bytes = max_txn;
    let pod = SimPod::new(&spec).unwrap();
    let a = AccelId::new(1).unwrap();
    let b = AccelId::new(2).unwrap();
    pod.open_routes(a, b).unwrap();
    pod.key_pair(a, b, 1).unwrap();
    pod.grant_window(
        b,
        1,
        DevicePerm {
            initiator: a,
            base: 0,
            len: 1 << 20,
            rights: Rights::ALL,
        },
    )
    .unwrap();
    (pod, a, b)
}

fn bench(c: &mut Criterion) {
    let data: Vec<u8> = (0..LEN).map(|i| (i * 31) as u8).collect();
    let mut g = c.benchmark_group("link");
    g.throughput(Throughput::Bytes(LEN as u64));

    for max_txn in [256u16, 32 * 1024] {
        let (pod, a, b) = pod(max_txn);
        let name = if max_txn == 256 {
            "sim/write_64KiB/txn=256B"
        } else {
            "sim/write_64KiB/txn=32KiB"
        };
        // Sanity: the bytes really arrive.
        pod.write(a, b, 0, &data).unwrap();
        assert!(
            pod.local_read(b, 0, LEN).unwrap() == data,
            "data did not arrive"
        );
        g.bench_function(name, |bch| {
            bch.iter(|| pod.write(a, b, 0, black_box(&data)).unwrap())
        });
    }

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut buf = Vec::with_capacity(LEN + 16);
    let mut ctr = 0u32;
    let mut nonce = || {
        ctr = ctr.wrapping_add(1);
        let c = ctr.to_be_bytes();
        [0, 0, 0, 0, 0, 0, 0, 0, c[0], c[1], c[2], c[3]]
    };
    let aad = [0u8; 16];
    g.bench_function("ring/seal_open_64KiB", |bch| {
        bch.iter(|| {
            buf.clear();
            buf.extend_from_slice(black_box(&data));
            let n = nonce();
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(n),
                    Aad::from(&aad),
                    &mut buf,
                )
                .unwrap();
            buf.extend_from_slice(tag.as_ref());
            let p = key
                .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(&aad), &mut buf)
                .unwrap();
            black_box(p.len());
        })
    });
    g.bench_function("ring/seal_open_64KiB_in_256B", |bch| {
        bch.iter(|| {
            for chunk in black_box(&data).chunks(256) {
                buf.clear();
                buf.extend_from_slice(chunk);
                let n = nonce();
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(n),
                        Aad::from(&aad),
                        &mut buf,
                    )
                    .unwrap();
                buf.extend_from_slice(tag.as_ref());
                let p = key
                    .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(&aad), &mut buf)
                    .unwrap();
                black_box(p.len());
            }
        })
    });

    // --- Sub-benches: the 256-byte UALinkSec cost without the simulator around it. ---
    let cipher = StreamCipher::new(&[7u8; 32]).unwrap();
    let mut scratch = Vec::new();
    let mut c256 = [0u8; 256];
    g.bench_function("gcm/seal_open_64KiB_in_256B", |bch| {
        bch.iter(|| {
            for (i, chunk) in black_box(&data).chunks(256).enumerate() {
                let b = &mut c256[..chunk.len()];
                b.copy_from_slice(chunk);
                let t = cipher.seal(i as u32, &aad, b).unwrap();
                cipher.open(i as u32, &aad, b, &t, &mut scratch).unwrap();
                black_box(&b);
            }
        })
    });

    let mut tx = KeySlot::new(Direction::Tx);
    let mut rx = KeySlot::new(Direction::Rx);
    tx.program(KeyRole::Active, MasterKey::new([3; 32], 1))
        .unwrap();
    rx.program(KeyRole::Active, MasterKey::new([3; 32], 1))
        .unwrap();
    rx.enable().unwrap();
    tx.enable().unwrap();
    g.bench_function("keyslot/seal_open_64KiB_in_256B", |bch| {
        bch.iter(|| {
            for chunk in black_box(&data).chunks(256) {
                let b = &mut c256[..chunk.len()];
                b.copy_from_slice(chunk);
                let t = tx.seal(StreamId::Requests, &aad, b).unwrap();
                rx.open(StreamId::Requests, &aad, b, &t, &mut scratch)
                    .unwrap();
                black_box(&b);
            }
        })
    });

    // Exactly the UALinkSec work of one simulated 256-byte write, without the simulator: the
    // request body (5-byte prefix + 256 data bytes) sealed and opened on the Requests stream, the
    // 3-byte write response sealed and opened on the WriteResponses stream (two KeySlot pairs).
    let mut rtx = KeySlot::new(Direction::Tx);
    let mut rrx = KeySlot::new(Direction::Rx);
    rtx.program(KeyRole::Active, MasterKey::new([4; 32], 1))
        .unwrap();
    rrx.program(KeyRole::Active, MasterKey::new([4; 32], 1))
        .unwrap();
    rrx.enable().unwrap();
    rtx.enable().unwrap();
    let mut req = [0u8; 261];
    let mut rsp = [0u8; 3];
    g.bench_function("keyslot/txn_crypto_64KiB_in_256B", |bch| {
        bch.iter(|| {
            for chunk in black_box(&data).chunks(256) {
                req[5..5 + chunk.len()].copy_from_slice(chunk);
                let b = &mut req[..5 + chunk.len()];
                let t = tx.seal(StreamId::Requests, &aad, b).unwrap();
                rx.open(StreamId::Requests, &aad, b, &t, &mut scratch)
                    .unwrap();
                let t = rtx.seal(StreamId::WriteResponses, &aad, &mut rsp).unwrap();
                rrx.open(StreamId::WriteResponses, &aad, &mut rsp, &t, &mut scratch)
                    .unwrap();
                black_box(&b);
            }
        })
    });

    // Pre-sealed 256-byte messages: ours (8-byte tag) and ring's (full tag), counter = index.
    let ours: Vec<(Vec<u8>, [u8; 8])> = data
        .chunks(256)
        .enumerate()
        .map(|(i, c)| {
            let mut b = c.to_vec();
            let t = cipher.seal(i as u32, &aad, &mut b).unwrap();
            (b, t)
        })
        .collect();
    let theirs: Vec<Vec<u8>> = data
        .chunks(256)
        .enumerate()
        .map(|(i, c)| {
            let mut b = c.to_vec();
            let t = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(iv(i as u32)),
                    Aad::from(&aad),
                    &mut b,
                )
                .unwrap();
            b.extend_from_slice(t.as_ref());
            b
        })
        .collect();
    g.bench_function("gcm/open_64KiB_in_256B", |bch| {
        bch.iter(|| {
            for (i, (ct, t)) in ours.iter().enumerate() {
                let b = &mut c256[..ct.len()];
                b.copy_from_slice(ct);
                cipher.open(i as u32, &aad, b, t, &mut scratch).unwrap();
                black_box(&b);
            }
        })
    });
    let mut c272 = [0u8; 272];
    g.bench_function("ring/open_64KiB_in_256B", |bch| {
        bch.iter(|| {
            for (i, ct) in theirs.iter().enumerate() {
                let b = &mut c272[..ct.len()];
                b.copy_from_slice(ct);
                let p = key
                    .open_in_place(
                        Nonce::assume_unique_for_key(iv(i as u32)),
                        Aad::from(&aad),
                        b,
                    )
                    .unwrap();
                black_box(p.len());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
