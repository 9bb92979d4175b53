//! The TDI state machine (`tdisp::state::Tdi`): the full walk, nonce rules, LOCK key
//! readiness, lock-breaking events, and every (state, event) pair against the expected table.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ualink_spdm::tdisp::msg::{code, StartNonce};
use ualink_spdm::tdisp::state::{EntropyUnavailable, NonceSource, Tdi, TdiEvent, TdiState};
use ualink_spdm::tdisp::TdispError;

/// Deterministic, distinct 32-byte draws.
struct Counter(u8);

impl NonceSource for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        self.0 = self.0.wrapping_add(1);
        for (i, b) in dest.iter_mut().enumerate() {
            *b = self.0 ^ (i as u8);
        }
        Ok(())
    }
}

struct Broken;

impl NonceSource for Broken {
    fn fill(&mut self, _dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        Err(EntropyUnavailable)
    }
}

struct Zeros;

impl NonceSource for Zeros {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), EntropyUnavailable> {
        dest.fill(0);
        Ok(())
    }
}

fn lock(tdi: &mut Tdi, rng: &mut dyn NonceSource) -> StartNonce {
    tdi.handle(TdiEvent::Lock {
        keys_live: true,
        rng,
    })
    .unwrap()
    .nonce
    .unwrap()
}

fn in_state(s: TdiState, rng: &mut Counter) -> Tdi {
    let mut t = Tdi::new();
    match s {
        TdiState::ConfigUnlocked => {}
        TdiState::ConfigLocked => {
            lock(&mut t, rng);
        }
        TdiState::Run => {
            let n = lock(&mut t, rng);
            t.handle(TdiEvent::Start(&n)).unwrap();
        }
        TdiState::Error => {
            lock(&mut t, rng);
            t.handle(TdiEvent::ConfigWritten).unwrap();
        }
    }
    assert_eq!(t.state(), s);
    t
}

#[test]
fn full_walk_unlocked_locked_run_unlocked() {
    let mut rng = Counter(0);
    let mut t = Tdi::new();
    assert_eq!(t.state(), TdiState::ConfigUnlocked);
    assert!(!t.has_live_nonce());
    let tr = t
        .handle(TdiEvent::Lock {
            keys_live: true,
            rng: &mut rng,
        })
        .unwrap();
    assert_eq!(
        (tr.from, tr.to),
        (TdiState::ConfigUnlocked, TdiState::ConfigLocked)
    );
    let n = tr.nonce.unwrap();
    assert!(t.has_live_nonce());
    t.handle(TdiEvent::ReadReport).unwrap();
    let tr = t.handle(TdiEvent::Start(&n)).unwrap();
    assert_eq!(
        (tr.from, tr.to, tr.nonce),
        (TdiState::ConfigLocked, TdiState::Run, None)
    );
    assert!(!t.has_live_nonce(), "nonce consumed by START");
    t.handle(TdiEvent::ReadReport).unwrap();
    let tr = t.handle(TdiEvent::Stop).unwrap();
    assert_eq!((tr.from, tr.to), (TdiState::Run, TdiState::ConfigUnlocked));
}

#[test]
fn start_with_wrong_nonce_is_refused_and_state_and_nonce_are_unchanged() {
    let mut rng = Counter(0);
    let mut t = Tdi::new();
    let n = lock(&mut t, &mut rng);
    let mut wrong = *n.as_bytes();
    wrong[31] ^= 1;
    assert_eq!(
        t.handle(TdiEvent::Start(&StartNonce::from_bytes(wrong))),
        Err(TdispError::InvalidNonce)
    );
    assert_eq!(t.state(), TdiState::ConfigLocked);
    assert!(t.has_live_nonce());
    // The right nonce still works afterwards.
    t.handle(TdiEvent::Start(&n)).unwrap();
    assert_eq!(t.state(), TdiState::Run);
}

#[test]
fn reused_nonce_is_refused() {
    let mut rng = Counter(0);
    let mut t = Tdi::new();
    let n1 = lock(&mut t, &mut rng);
    t.handle(TdiEvent::Start(&n1)).unwrap();
    // Second START in RUN: the state refuses it.
    assert_eq!(
        t.handle(TdiEvent::Start(&n1)),
        Err(TdispError::InvalidInterfaceState {
            state: TdiState::Run,
            request: code::START_INTERFACE_REQUEST
        })
    );
    t.handle(TdiEvent::Stop).unwrap();
    let n2 = lock(&mut t, &mut rng);
    assert_ne!(n1, n2, "every LOCK draws a fresh nonce");
    assert_eq!(
        t.handle(TdiEvent::Start(&n1)),
        Err(TdispError::InvalidNonce)
    );
    assert_eq!(t.state(), TdiState::ConfigLocked);
}

#[test]
fn lock_without_live_keys_is_refused() {
    let mut rng = Counter(0);
    let mut t = Tdi::new();
    assert_eq!(
        t.handle(TdiEvent::Lock {
            keys_live: false,
            rng: &mut rng
        }),
        Err(TdispError::KeysNotLive)
    );
    assert_eq!(t.state(), TdiState::ConfigUnlocked);
    assert!(!t.has_live_nonce());
    assert_eq!(rng.0, 0, "no nonce drawn for a refused LOCK");
}

#[test]
fn lock_without_entropy_is_refused() {
    for rng in [&mut Broken as &mut dyn NonceSource, &mut Zeros] {
        let mut t = Tdi::new();
        assert_eq!(
            t.handle(TdiEvent::Lock {
                keys_live: true,
                rng
            }),
            Err(TdispError::InsufficientEntropy)
        );
        assert_eq!(t.state(), TdiState::ConfigUnlocked);
        assert!(!t.has_live_nonce());
    }
}

#[test]
fn lock_breaking_events_move_locked_and_run_to_error_and_zero_the_nonce() {
    let events: [fn() -> TdiEvent<'static>; 4] = [
        || TdiEvent::ConfigWritten,
        || TdiEvent::IntegrityFailure,
        || TdiEvent::Reset,
        || TdiEvent::KeysRevoked,
    ];
    for ev in events {
        for s in [TdiState::ConfigLocked, TdiState::Run] {
            let mut rng = Counter(0);
            let mut t = in_state(s, &mut rng);
            let tr = t.handle(ev()).unwrap();
            assert_eq!((tr.from, tr.to), (s, TdiState::Error));
            assert!(!t.has_live_nonce());
        }
        // Nothing is locked in CONFIG_UNLOCKED; ERROR stays ERROR.
        for s in [TdiState::ConfigUnlocked, TdiState::Error] {
            let mut t = in_state(s, &mut Counter(0));
            assert_eq!(t.handle(ev()).unwrap().to, s);
        }
    }
}

#[test]
fn nonce_from_a_locked_tdi_is_dead_after_error_and_stop() {
    let mut rng = Counter(0);
    let mut t = Tdi::new();
    let n = lock(&mut t, &mut rng);
    t.handle(TdiEvent::ConfigWritten).unwrap();
    assert!(!t.has_live_nonce());
    assert!(matches!(
        t.handle(TdiEvent::Start(&n)),
        Err(TdispError::InvalidInterfaceState { .. })
    ));
    t.handle(TdiEvent::Stop).unwrap();
    assert_eq!(t.state(), TdiState::ConfigUnlocked);
    let n = lock(&mut t, &mut rng);
    t.handle(TdiEvent::Stop).unwrap();
    assert!(
        !t.has_live_nonce(),
        "STOP from CONFIG_LOCKED zeroes the nonce"
    );
    let _n2 = lock(&mut t, &mut rng);
    assert_eq!(t.handle(TdiEvent::Start(&n)), Err(TdispError::InvalidNonce));
}

/// Which requests each state accepts, and where they lead. `None` = refused with
/// INVALID_INTERFACE_STATE and no change.
fn expected(state: TdiState, req: u8) -> Option<TdiState> {
    use TdiState::*;
    match (state, req) {
        (ConfigUnlocked, code::LOCK_INTERFACE_REQUEST) => Some(ConfigLocked),
        (ConfigLocked, code::START_INTERFACE_REQUEST) => Some(Run),
        // STOP is never refused for a state (TDISP §11.3.16); from CONFIG_UNLOCKED a no-op.
        (_, code::STOP_INTERFACE_REQUEST) => Some(ConfigUnlocked),
        (ConfigLocked | Run, code::GET_DEVICE_INTERFACE_REPORT) => Some(state),
        _ => None,
    }
}

#[test]
fn every_state_times_every_request_matches_the_table() {
    let requests = [
        code::LOCK_INTERFACE_REQUEST,
        code::GET_DEVICE_INTERFACE_REPORT,
        code::START_INTERFACE_REQUEST,
        code::STOP_INTERFACE_REQUEST,
    ];
    let mut checked = 0;
    for s in TdiState::ALL {
        for req in requests {
            let mut rng = Counter(100);
            let mut t = in_state(s, &mut rng);
            // For START use the live nonce when there is one, so only the state decides.
            let live = if s == TdiState::ConfigLocked {
                // Re-create: lock a fresh TDI whose nonce we keep.
                let mut fresh = Tdi::new();
                let n = lock(&mut fresh, &mut rng);
                t = fresh;
                Some(n)
            } else {
                None
            };
            let any = StartNonce::from_bytes([7; 32]);
            let ev = match req {
                code::LOCK_INTERFACE_REQUEST => TdiEvent::Lock {
                    keys_live: true,
                    rng: &mut rng,
                },
                code::GET_DEVICE_INTERFACE_REPORT => TdiEvent::ReadReport,
                code::START_INTERFACE_REQUEST => TdiEvent::Start(live.as_ref().unwrap_or(&any)),
                _ => TdiEvent::Stop,
            };
            let before_nonce = t.has_live_nonce();
            match (t.handle(ev), expected(s, req)) {
                (Ok(tr), Some(to)) => {
                    assert_eq!((tr.from, tr.to), (s, to), "{s:?} x {req:#x}");
                    assert_eq!(t.state(), to);
                }
                (Err(e), None) => {
                    assert_eq!(
                        e,
                        TdispError::InvalidInterfaceState {
                            state: s,
                            request: req
                        },
                        "{s:?} x {req:#x}"
                    );
                    assert_eq!(e.code().wire(), 0x4);
                    assert_eq!(t.state(), s, "refusal leaves the state");
                    assert_eq!(t.has_live_nonce(), before_nonce, "refusal leaves the nonce");
                }
                (got, want) => panic!("{s:?} x {req:#x}: got {got:?}, want {want:?}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 16);
}

#[test]
fn nonce_is_redacted_and_compared_by_value() {
    let a = StartNonce::from_bytes([1; 32]);
    let b = StartNonce::from_bytes([1; 32]);
    let c = StartNonce::from_bytes([2; 32]);
    assert!(a.ct_eq(&b));
    assert!(!a.ct_eq(&c));
    assert!(!format!("{a:?}").contains("01"));
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Lock(bool),
    StartLive,
    StartStale,
    Stop,
    ReadReport,
    ConfigWritten,
    IntegrityFailure,
    Reset,
    KeysRevoked,
}

fn arb_op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        any::<bool>().prop_map(Op::Lock),
        Just(Op::StartLive),
        Just(Op::StartStale),
        Just(Op::Stop),
        Just(Op::ReadReport),
        Just(Op::ConfigWritten),
        Just(Op::IntegrityFailure),
        Just(Op::Reset),
        Just(Op::KeysRevoked),
    ]
}

proptest::proptest! {
    /// Any sequence of requests and device events: a nonce is held exactly in CONFIG_LOCKED,
    /// RUN is only entered by START with the nonce of the current LOCK, refusals change
    /// nothing, and every LOCK draws a nonce never seen before.
    #[test]
    fn random_event_sequences_keep_the_invariants(ops in proptest::collection::vec(arb_op(), 0..40)) {
        let mut rng = Counter(0);
        let mut t = Tdi::new();
        let mut current: Option<StartNonce> = None;
        let mut issued: Vec<StartNonce> = Vec::new();
        for op in ops {
            let before = t.state();
            let stale = issued.first().cloned().unwrap_or_else(|| StartNonce::from_bytes([0xEE; 32]));
            let res = match op {
                Op::Lock(keys_live) => t.handle(TdiEvent::Lock { keys_live, rng: &mut rng }),
                Op::StartLive => {
                    let n = current.clone().unwrap_or_else(|| StartNonce::from_bytes([0xEE; 32]));
                    t.handle(TdiEvent::Start(&n))
                }
                Op::StartStale => t.handle(TdiEvent::Start(&stale)),
                Op::Stop => t.handle(TdiEvent::Stop),
                Op::ReadReport => t.handle(TdiEvent::ReadReport),
                Op::ConfigWritten => t.handle(TdiEvent::ConfigWritten),
                Op::IntegrityFailure => t.handle(TdiEvent::IntegrityFailure),
                Op::Reset => t.handle(TdiEvent::Reset),
                Op::KeysRevoked => t.handle(TdiEvent::KeysRevoked),
            };
            match res {
                Ok(tr) => {
                    proptest::prop_assert_eq!(tr.from, before);
                    proptest::prop_assert_eq!(tr.to, t.state());
                    if let Some(n) = tr.nonce {
                        proptest::prop_assert!(issued.iter().all(|m| m != &n), "fresh nonce");
                        issued.push(n.clone());
                        current = Some(n);
                    }
                    if t.state() == TdiState::Run && before == TdiState::ConfigLocked {
                        let used_live = matches!(op, Op::StartLive)
                            || (matches!(op, Op::StartStale) && current.as_ref() == Some(&stale));
                        proptest::prop_assert!(used_live, "RUN only with the live nonce");
                    }
                    if t.state() != TdiState::ConfigLocked {
                        current = None;
                    }
                }
                Err(_) => proptest::prop_assert_eq!(t.state(), before, "refusal changes nothing"),
            }
            proptest::prop_assert_eq!(t.has_live_nonce(), t.state() == TdiState::ConfigLocked);
        }
    }
}
