//! Full attestation against its crypto floor (issue #2 §5).
//!
//! `full/<curve>`: our requester attests our responder in one process over the in-memory loop:
//! VCA → GET_DIGESTS → GET_CERTIFICATE → signed GET_MEASUREMENTS (all blocks) →
//! KEY_EXCHANGE / FINISH (encrypted handshake, MCTP framing). No CHALLENGE (the flow the
//! issue names); building the requester and the device (PKCS#8 parsing) is setup, not timed.
//!
//! `floor/<curve>`: exactly the public-key operations that flow performs, timed alone with
//! ring:
//! * ECDSA verify ×3: the leaf certificate under the root (the root is byte-identical to the
//!   configured anchor, so its self-signature is not checked: n-1 = 1 for a root → leaf
//!   chain), the MEASUREMENTS signature, the KEY_EXCHANGE_RSP signature;
//! * ECDSA sign ×2 (responder): MEASUREMENTS, KEY_EXCHANGE_RSP;
//! * ECDH: key generation (with its public key) on both sides ×2, agreement on both sides ×2.
//!
//! Hashing, HMAC, HKDF and AES-GCM are deliberately left out of the floor: they are the
//! protocol's overhead, as are parsing and X.509 handling.
//!
//! `phase/<curve>/<i>-<request>`: the full attestation split at each round trip (GET_CERTIFICATE
//! repeats when the chain needs several portions), to see where time goes.
//!
//! After the criterion groups, the bench prints `full`, `floor` and their ratio per curve
//! (own timing loop, same process, same run); the target is full ≤ 1.3 × floor.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use ualink_spdm::algo::AsymAlg;
use ualink_spdm::cert_chain::TrustAnchors;
use ualink_spdm::device::SoftDevice;
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
use ualink_spdm::negotiation::AlgorithmPolicy;
use ualink_spdm::pcap::code_name;
use ualink_spdm::requester::{
    MeasurementPlan, Outbound, Progress, Requester, RequesterConfig, SessionConfig,
};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::MessageKind;

const CURVES: [(AsymAlg, &str); 2] = [(AsymAlg::EcdsaP256, "P-256"), (AsymAlg::EcdsaP384, "P-384")];

/// One identity, its anchors, and the requester configuration for a curve.
struct Setup {
    identity: DeviceIdentity,
    anchors: Arc<TrustAnchors>,
    config: RequesterConfig,
}

impl Setup {
    fn new(asym: AsymAlg) -> Self {
        let identity = DeviceIdentity::generate(asym, &IdentityOptions::default()).unwrap();
        assert_eq!(identity.chain_der().len(), 2, "root → leaf");
        let mut anchors = TrustAnchors::new();
        anchors.add_der(identity.ca_der()).unwrap();
        let config = RequesterConfig {
            algorithms: AlgorithmPolicy::suite(asym),
            challenge: false,
            measurements: MeasurementPlan::AllSigned,
            session: Some(SessionConfig::default()),
            ..RequesterConfig::default()
        };
        Self {
            identity,
            anchors: Arc::new(anchors),
            config,
        }
    }

    fn pair(&self) -> (Requester, Responder<SoftDevice>) {
        let req = Requester::new(self.config.clone(), self.anchors.clone()).unwrap();
        let dev = SoftDevice::new(self.identity.clone(), 7).unwrap();
        (req, Responder::new(dev, ResponderConfig::default()))
    }
}

/// Runs `req` against `rsp` from `first` for at most `steps` round trips (or to the end);
/// returns the message still to send, if the run stopped early.
fn drive(
    req: &mut Requester,
    rsp: &mut Responder<SoftDevice>,
    first: Outbound,
    steps: usize,
) -> Option<Outbound> {
    let mut out = first;
    for _ in 0..steps {
        let answer = rsp.handle(out.kind, &out.bytes).unwrap();
        match req.handle(answer.kind, &answer.bytes).unwrap() {
            Progress::Send(next) => out = next,
            Progress::Attested(a) => {
                assert!(a.session_id.is_some() && a.measurements.is_some());
                assert!(a.challenge.is_none());
                return None;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    Some(out)
}

fn full_attestation((mut req, mut rsp): (Requester, Responder<SoftDevice>)) {
    let first = req.start().unwrap();
    assert!(drive(&mut req, &mut rsp, first, usize::MAX).is_none());
    black_box(req.session_id());
}

/// The public-key work of one attestation, with ring only.
struct Floor {
    sign_alg: &'static signature::EcdsaSigningAlgorithm,
    verify_fixed: &'static signature::EcdsaVerificationAlgorithm,
    verify_asn1: &'static signature::EcdsaVerificationAlgorithm,
    dhe: &'static agreement::Algorithm,
    device_key: EcdsaKeyPair,
    device_pub: Vec<u8>,
    ca_pub: Vec<u8>,
    /// A certificate-sized TBS and its ASN.1 signature by the root key.
    tbs: Vec<u8>,
    tbs_sig: Vec<u8>,
    /// combined prefix ‖ hash, as the engine signs.
    signed: Vec<u8>,
    rng: SystemRandom,
}

impl Floor {
    fn new(asym: AsymAlg) -> Self {
        let rng = SystemRandom::new();
        let (sign_alg, ca_alg, verify_fixed, verify_asn1, dhe, hash_len) = match asym {
            AsymAlg::EcdsaP256 => (
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &signature::ECDSA_P256_SHA256_FIXED,
                &signature::ECDSA_P256_SHA256_ASN1,
                &agreement::ECDH_P256,
                32,
            ),
            AsymAlg::EcdsaP384 => (
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
                &signature::ECDSA_P384_SHA384_FIXED,
                &signature::ECDSA_P384_SHA384_ASN1,
                &agreement::ECDH_P384,
                48,
            ),
        };
        let dev_pkcs8 = EcdsaKeyPair::generate_pkcs8(sign_alg, &rng).unwrap();
        let device_key = EcdsaKeyPair::from_pkcs8(sign_alg, dev_pkcs8.as_ref(), &rng).unwrap();
        let ca_pkcs8 = EcdsaKeyPair::generate_pkcs8(ca_alg, &rng).unwrap();
        let ca_key = EcdsaKeyPair::from_pkcs8(ca_alg, ca_pkcs8.as_ref(), &rng).unwrap();
        let tbs = vec![0x5A; 400];
        let tbs_sig = ca_key.sign(&rng, &tbs).unwrap().as_ref().to_vec();
        Self {
            sign_alg,
            verify_fixed,
            verify_asn1,
            dhe,
            device_pub: device_key.public_key().as_ref().to_vec(),
            device_key,
            ca_pub: ca_key.public_key().as_ref().to_vec(),
            tbs,
            tbs_sig,
            signed: vec![0xA5; 100 + hash_len],
            rng,
        }
    }

    fn run(&self) {
        let _ = self.sign_alg;
        // Leaf certificate under the root.
        signature::UnparsedPublicKey::new(self.verify_asn1, &self.ca_pub)
            .verify(&self.tbs, &self.tbs_sig)
            .unwrap();
        // MEASUREMENTS and KEY_EXCHANGE_RSP: signed by the device, verified by the requester.
        for _ in 0..2 {
            let sig = self.device_key.sign(&self.rng, &self.signed).unwrap();
            signature::UnparsedPublicKey::new(self.verify_fixed, &self.device_pub)
                .verify(&self.signed, sig.as_ref())
                .unwrap();
        }
        // ECDHE: both sides generate (with public key), both agree.
        let req = EphemeralPrivateKey::generate(self.dhe, &self.rng).unwrap();
        let req_pub = req.compute_public_key().unwrap();
        let rsp = EphemeralPrivateKey::generate(self.dhe, &self.rng).unwrap();
        let rsp_pub = rsp.compute_public_key().unwrap();
        let a = agreement::agree_ephemeral(
            rsp,
            &UnparsedPublicKey::new(self.dhe, req_pub.as_ref()),
            |k| k.len(),
        )
        .unwrap();
        let b = agreement::agree_ephemeral(
            req,
            &UnparsedPublicKey::new(self.dhe, rsp_pub.as_ref()),
            |k| k.len(),
        )
        .unwrap();
        black_box(a + b);
    }
}

fn bench_full_and_floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("attestation");
    for (asym, name) in CURVES {
        let setup = Setup::new(asym);
        g.bench_function(format!("full/{name}"), |b| {
            b.iter_batched(|| setup.pair(), full_attestation, BatchSize::SmallInput)
        });
        let floor = Floor::new(asym);
        g.bench_function(format!("floor/{name}"), |b| b.iter(|| floor.run()));
    }
    g.finish();
}

/// The request of every round trip of the flow, in order (GET_CERTIFICATE repeats when the
/// chain is longer than one portion).
fn round_trips(setup: &Setup) -> Vec<&'static str> {
    let (mut req, mut rsp) = setup.pair();
    let mut out = req.start().unwrap();
    let mut names = Vec::new();
    loop {
        names.push(match out.kind {
            // The only secured request of the flow (encrypted handshake).
            MessageKind::Secured => "FINISH",
            MessageKind::Spdm => code_name(out.bytes.get(1).copied().unwrap_or(0)),
        });
        match drive(&mut req, &mut rsp, out.clone(), 1) {
            Some(next) => out = next,
            None => return names,
        }
    }
}

fn bench_phases(c: &mut Criterion) {
    let mut g = c.benchmark_group("phase");
    for (asym, name) in CURVES {
        let setup = Setup::new(asym);
        for (i, phase) in round_trips(&setup).iter().enumerate() {
            // Setup: drive the first `i` round trips; timed: the next one (the responder
            // answering and the requester checking the answer; dropping both is not timed).
            g.bench_function(format!("{name}/{i}-{phase}"), |b| {
                b.iter_batched(
                    || {
                        let (mut req, mut rsp) = setup.pair();
                        let first = req.start().unwrap();
                        let next = drive(&mut req, &mut rsp, first, i).unwrap();
                        (req, rsp, next)
                    },
                    |(mut req, mut rsp, next)| {
                        black_box(drive(&mut req, &mut rsp, next, 1));
                        (req, rsp)
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    g.finish();
}

/// Mean time of `f` over `n` runs, each with fresh input from `setup` (not timed).
fn mean<I>(n: u32, mut setup: impl FnMut() -> I, mut f: impl FnMut(I)) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let input = setup();
        let t = Instant::now();
        f(input);
        total += t.elapsed();
    }
    total / n
}

fn report_ratio(_c: &mut Criterion) {
    println!();
    for (asym, name) in CURVES {
        let setup = Setup::new(asym);
        let floor = Floor::new(asym);
        // Warm up both, then interleave rounds so drift hits both equally.
        let _ = mean(20, || setup.pair(), full_attestation);
        let _ = mean(20, || (), |_| floor.run());
        let (mut full, mut fl) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..5 {
            full += mean(40, || setup.pair(), full_attestation);
            fl += mean(40, || (), |_| floor.run());
        }
        let ratio = full.as_secs_f64() / fl.as_secs_f64();
        println!(
            "attestation {name}: full {:.1} µs, crypto floor {:.1} µs (3 verify, 2 sign, 2 ECDH keygen, 2 ECDH agree), ratio {ratio:.3} (target ≤ 1.3)",
            full.as_secs_f64() * 1e6 / 5.0,
            fl.as_secs_f64() * 1e6 / 5.0,
        );
    }
}

criterion_group!(benches, bench_full_and_floor, bench_phases, report_ratio);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
