//! Bring-up of a simulated pod (issue #5 §7): every accelerator attested over SPDM (P-384:
//! VCA, digests, chunked certificate, CHALLENGE, signed measurements, KEY_EXCHANGE/FINISH),
//! appraised by policy and audited; then vPods of 8 accelerators formed (127 for 1,023) and every link
//! of each keyed inside the SPDM sessions (RX before TX, audited; all vPods in one
//! `provision_keys_many` call; that every link is live is checked untimed). Compared, in the same run,
//! with its crypto floor: the public-key operations that bring-up performs, timed alone with
//! ring on as many threads as the TSM uses (every core), i.e. divided by the cores used:
//!
//! * per device: ECDSA P-384 sign ×3 (the device: CHALLENGE_AUTH, MEASUREMENTS,
//!   KEY_EXCHANGE_RSP), verify ×3 (the TSM, the same three), certificate verify ×2 (model CA
//!   under the root, leaf under the model CA; the root is the configured anchor), ECDH P-384
//!   key generation ×2 and agreement ×2 (both sides);
//! * per signed audit checkpoint: ECDSA P-384 sign ×1.
//!
//! Hashing, HMAC, HKDF, AES-GCM, KMAC and fsync are left out of the floor: they are the
//! protocol's and the log's own costs, and are what the ratio measures.
//!
//! `UALINK_BENCH_ACCELS` (default 1023: the simulator numbers accelerators 1..=n with 10-bit
//! IDs and 0 is not an accelerator ID, so 1,023 is the largest pod) sets the pod size. The bench prints
//! `bring-up: N accelerators ... ratio R (target ≤ 1.3)` after the criterion group.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::json;
use ualink_policy::PolicyBundle;
use ualink_sim::pod::{GenParams, PodSpec};
use ualink_sim::SimPod;
use ualink_tsm::{Tsm, TsmConfig};

const VPOD: u16 = 8;

fn accelerators() -> u16 {
    std::env::var("UALINK_BENCH_ACCELS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1023)
}

/// A fresh pod and TSM (not timed: the simulator generating every device PKI).
struct Fresh {
    _dir: tempfile::TempDir,
    tsm: Tsm,
}

fn fresh(n: u16) -> Fresh {
    let spec = PodSpec::generate(&GenParams {
        accelerators: n,
        switches: 1,
        memory_bytes: 1 << 16,
        spare_ports: 0,
    })
    .expect("pod spec");
    let pod = SimPod::new(&spec).expect("pod");
    let mut overlay = ualink_tsm::demo::sim_pod_overlay(&pod, &spec);
    let tenants: serde_json::Map<String, serde_json::Value> = (0..n / VPOD)
        .map(|k| (format!("tenant-{k}"), json!({})))
        .collect();
    overlay["ualink_data"]["tenants"] = serde_json::Value::Object(tenants);
    let bundle = PolicyBundle::defaults()
        .expect("bundle")
        .with_data(overlay)
        .expect("overlay");
    let dir = tempfile::tempdir().expect("tempdir");
    let tsm = Tsm::open(TsmConfig::new(dir.path(), bundle), pod).expect("open");
    Fresh { _dir: dir, tsm }
}

/// What one timed bring-up did.
#[derive(Default, Clone, Copy)]
struct Run {
    attest: Duration,
    keys: Duration,
    attested: usize,
    records: u64,
    /// Audit checkpoints signed inside the timed parts (the floor signs as many).
    checkpoints: u64,
}

/// Attest everything (timed), form the vPods (not timed), key them (timed).
fn bring_up(f: &mut Fresh) -> Run {
    let c0 = f.tsm.audit().checkpoints_signed();
    let t0 = Instant::now();
    let r = f.tsm.bring_up().expect("bring-up");
    let attest = t0.elapsed();
    let c1 = f.tsm.audit().checkpoints_signed();
    assert!(r.quarantined.is_empty(), "{:?}", r.quarantined);
    let n = u16::try_from(r.attested.len()).expect("count");
    for k in 0..n / VPOD {
        let tenant = u32::from(k) + 1;
        f.tsm
            .tenant_add(tenant, &format!("tenant-{k}"))
            .expect("tenant");
        let members: Vec<u16> = (k * VPOD + 1..=(k + 1) * VPOD).collect();
        f.tsm.vpod_create(tenant, &members).expect("vpod");
    }
    // Every vPod keyed in one call, as a provider bringing up a pod does.
    let tenants: Vec<u32> = (0..n / VPOD).map(|k| u32::from(k) + 1).collect();
    let c2 = f.tsm.audit().checkpoints_signed();
    let t1 = Instant::now();
    let slots = f.tsm.provision_keys_many(&tenants).expect("keys");
    let keys = t1.elapsed();
    let c3 = f.tsm.audit().checkpoints_signed();
    // Not timed: every link of every vPod is keyed (4 slots per pair and plane), and live.
    let mut want = 0;
    for k in 0..n / VPOD {
        for a in k * VPOD + 1..=(k + 1) * VPOD {
            for b in a + 1..=(k + 1) * VPOD {
                assert!(f.tsm.link_keys_live(a, b).expect("live"), "{a}-{b}");
                want += 4 * f
                    .tsm
                    .pod()
                    .planes(accel(a), accel(b))
                    .expect("planes")
                    .len();
            }
        }
    }
    assert_eq!(slots.len(), want);
    Run {
        attest,
        keys,
        attested: r.attested.len(),
        records: f.tsm.audit().size(),
        checkpoints: (c1 - c0) + (c3 - c2),
    }
}

fn accel(id: u16) -> ualink_sim::AccelId {
    ualink_sim::AccelId::new(id).expect("accelerator ID")
}

/// The public-key operations of one device's attestation, alone.
struct Floor {
    rng: SystemRandom,
    device_key: EcdsaKeyPair,
    device_pub: Vec<u8>,
    ca_pub: Vec<u8>,
    tbs: Vec<u8>,
    tbs_sig: Vec<u8>,
    signed: Vec<u8>,
}

impl Floor {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P384_SHA384_FIXED_SIGNING;
        let ca_alg = &signature::ECDSA_P384_SHA384_ASN1_SIGNING;
        let pk = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
        let device_key = EcdsaKeyPair::from_pkcs8(alg, pk.as_ref(), &rng).expect("key");
        let ca_pk = EcdsaKeyPair::generate_pkcs8(ca_alg, &rng).expect("key");
        let ca_key = EcdsaKeyPair::from_pkcs8(ca_alg, ca_pk.as_ref(), &rng).expect("key");
        // A certificate-sized TBS.
        let tbs = vec![0x5a; 450];
        let tbs_sig = ca_key.sign(&rng, &tbs).expect("sign").as_ref().to_vec();
        Self {
            device_pub: device_key.public_key().as_ref().to_vec(),
            ca_pub: ca_key.public_key().as_ref().to_vec(),
            device_key,
            rng,
            tbs,
            tbs_sig,
            // SPDM signs the combined prefix ‖ transcript hash.
            signed: vec![0xa5; 100 + 48],
        }
    }

    fn sign(&self) -> Vec<u8> {
        self.device_key
            .sign(&self.rng, &self.signed)
            .expect("sign")
            .as_ref()
            .to_vec()
    }

    /// One device: 3 signs + 3 verifies, 2 certificate verifies, 2 keygens + 2 agreements.
    fn device(&self) {
        for _ in 0..2 {
            signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, &self.ca_pub)
                .verify(&self.tbs, &self.tbs_sig)
                .expect("cert verify");
        }
        for _ in 0..3 {
            let sig = self.sign();
            signature::UnparsedPublicKey::new(
                &signature::ECDSA_P384_SHA384_FIXED,
                &self.device_pub,
            )
            .verify(&self.signed, &sig)
            .expect("verify");
        }
        let a = EphemeralPrivateKey::generate(&agreement::ECDH_P384, &self.rng).expect("dh");
        let b = EphemeralPrivateKey::generate(&agreement::ECDH_P384, &self.rng).expect("dh");
        let pa = a.compute_public_key().expect("pub");
        let pb = b.compute_public_key().expect("pub");
        let x = agreement::agree_ephemeral(
            a,
            &UnparsedPublicKey::new(&agreement::ECDH_P384, pb.as_ref().to_vec()),
            |k| k.len(),
        )
        .expect("agree");
        let y = agreement::agree_ephemeral(
            b,
            &UnparsedPublicKey::new(&agreement::ECDH_P384, pa.as_ref().to_vec()),
            |k| k.len(),
        )
        .expect("agree");
        black_box(x + y);
    }

    /// The floor of a bring-up of `devices` devices with `checkpoints` signed checkpoints:
    /// the operations split evenly over `cores` threads (the cores the TSM uses), wall time.
    /// On an idle machine this is the single-threaded time divided by `cores`; on a shared
    /// one it sees the same contention as the bring-up it is compared with.
    fn time(&self, devices: usize, checkpoints: u64, cores: usize) -> Duration {
        let cores = cores.max(1);
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in 0..cores {
                s.spawn(move || {
                    for _ in (c..devices).step_by(cores) {
                        self.device();
                    }
                    for _ in (u64::try_from(c).unwrap_or(0)..checkpoints).step_by(cores) {
                        black_box(self.sign());
                    }
                });
            }
        });
        t.elapsed()
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn bench(c: &mut Criterion) {
    let n = accelerators();
    let mut g = c.benchmark_group("bring_up");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(1));
    g.measurement_time(Duration::from_secs(1));
    // The floor signs as many checkpoints as the bring-ups did.
    let checkpoints = std::cell::Cell::new(0u64);
    g.bench_function(format!("pod/{n}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut f = fresh(n);
                let r = bring_up(&mut f);
                total += r.attest + r.keys;
                checkpoints.set(r.checkpoints);
            }
            total
        })
    });
    let floor = Floor::new();
    let checkpoints = checkpoints.get();
    g.bench_function(format!("floor/{n}"), |b| {
        b.iter(|| floor.time(usize::from(n), checkpoints, cores()))
    });
    g.finish();
}

fn report_ratio(_c: &mut Criterion) {
    let n = accelerators();
    let floor = Floor::new();
    // Interleave: a bring-up, then its floor (same devices, same checkpoints), three times.
    let (mut full, mut fl) = (Duration::ZERO, Duration::ZERO);
    let (mut attest, mut keys) = (Duration::ZERO, Duration::ZERO);
    let mut last = Run::default();
    for _ in 0..3 {
        let mut f = fresh(n);
        let r = bring_up(&mut f);
        full += r.attest + r.keys;
        attest += r.attest;
        keys += r.keys;
        // The checkpoints the timed parts signed (the log signs one every 64 records, at
        // the end of a group commit).
        fl += floor.time(r.attested, r.checkpoints, cores());
        last = r;
    }
    let ratio = full.as_secs_f64() / fl.as_secs_f64();
    println!(
        "\nbring-up: {n} accelerators ({} attested, {} vPods keyed, {} audit records, {} checkpoints signed), {} cores: \
         {:.3} s (attestation {:.3} s + keys {:.3} s), crypto floor {:.3} s, ratio {ratio:.3} (target ≤ 1.3)",
        last.attested,
        n / VPOD,
        last.records,
        last.checkpoints,
        cores(),
        full.as_secs_f64() / 3.0,
        attest.as_secs_f64() / 3.0,
        keys.as_secs_f64() / 3.0,
        fl.as_secs_f64() / 3.0,
    );
}

criterion_group!(benches, bench, report_ratio);
criterion_main!(benches);
