//! Fuzz the ualink-kdrv ioctl entry: sequences of (file, command, user bytes) against a small pod.
//! The driver must never panic, and its answer must always be Ok or a valid errno.
//!
//! Input layout, repeated until the input ends:
//!   u8  file     (0: TSM, 1: tenant A / OS 10, 2: tenant A / OS 11, 3: tenant B / OS 20)
//!   u8  selector (< 0xf0: index into the driver's ioctl table; else the next 4 bytes are a raw cmd)
//!   u16 len (LE) then `len` bytes of user buffer (capped by the input)
//! A grant or rotation message whose signature is 96 bytes of 0xAA verifies (see FuzzCrypto), so the
//! fuzzer can reach claim parsing and the live-state gate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ualink_kdrv::crypto::{BadSignature, CryptoBackend, RingCrypto, TsmPublicKey};
use ualink_kdrv::ids::*;
use ualink_kdrv::uapi::IOCTLS;
use ualink_kdrv::{Config, Driver, Errno, FileCtx, NullSink};

struct FuzzCrypto;

impl CryptoBackend for FuzzCrypto {
    fn sha384(&self, parts: &[&[u8]]) -> [u8; 48] {
        RingCrypto.sha384(parts)
    }
    fn verify_es384(&self, _k: &TsmPublicKey, _m: &[u8], sig: &[u8]) -> Result<(), BadSignature> {
        if sig == [0xAA; 96] {
            Ok(())
        } else {
            Err(BadSignature)
        }
    }
}

// The kdrv integration tests' fake pod (routing tables, window permissions, key slots, a fault
// queue): one fixture for the tests and the fuzzer.
#[path = "../../ualink-kdrv/tests/common/mod.rs"]
mod common;

use common::{acc, FakeFabric};

const N_ACC: u16 = 4;
const N_SW: u16 = 2;

fuzz_target!(|data: &[u8]| {
    let fabric = FakeFabric::new(N_ACC, N_SW);
    // Live keys on every pair, so the import gate's key checks are reachable.
    for a in 0..N_ACC {
        for b in (a + 1)..N_ACC {
            fabric.program_pair(acc(a), acc(b), 1);
        }
    }
    let mut key = [0x11u8; 97];
    key[0] = 4;
    let Some(key) = TsmPublicKey::from_sec1(&key) else {
        return;
    };
    let Ok(mut d) = Driver::new(
        fabric,
        FuzzCrypto,
        NullSink,
        NullSink,
        key,
        [3; 32],
        Config::default(),
    ) else {
        return;
    };
    // A small world to act on: tenants 1 and 2 with two accelerators each, RUN TDIs, one window each.
    let tsm = FileCtx::tsm(OsInstanceId(0));
    let _ = d.tenant_add(&tsm, TenantId(1));
    let _ = d.tenant_add(&tsm, TenantId(2));
    let _ = d.vpod_create(&tsm, TenantId(1), &[acc(0), acc(1)]);
    let _ = d.vpod_create(&tsm, TenantId(2), &[acc(2), acc(3)]);
    for a in 0..N_ACC {
        let _ = d.tdi_update(&tsm, acc(a), ualink_kdrv::TdiState::ConfigLocked, 1, false);
        let _ = d.tdi_update(&tsm, acc(a), ualink_kdrv::TdiState::Run, 1, false);
    }
    let _ = d.window_create(&tsm, TenantId(1), acc(0), 0, 1 << 20);
    let _ = d.window_create(&tsm, TenantId(2), acc(2), 0, 1 << 20);
    let files = [
        tsm,
        FileCtx::tenant(TenantId(1), OsInstanceId(10)),
        FileCtx::tenant(TenantId(1), OsInstanceId(11)),
        FileCtx::tenant(TenantId(2), OsInstanceId(20)),
    ];

    let mut rest = data;
    for _ in 0..64 {
        let [f, sel, tail @ ..] = rest else { break };
        let file = files[usize::from(*f) % files.len()];
        let (cmd, tail) = if *sel < 0xf0 {
            (IOCTLS[usize::from(*sel) % IOCTLS.len()].cmd, tail)
        } else {
            let Some((c, t)) = tail.split_first_chunk::<4>() else {
                break;
            };
            (u32::from_le_bytes(*c), t)
        };
        let Some((l, tail)) = tail.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*l)).min(tail.len());
        let (user, tail) = tail.split_at(len);
        let mut user = user.to_vec();
        match d.ioctl(&file, cmd, &mut user) {
            Ok(v) => assert!(v >= 0),
            Err(e) => assert!(Errno::from_positive(e.to_positive()) == Some(e)),
        }
        rest = tail;
    }
});
