//! UAPI: every ioctl with truncated, oversized, wrong-size, reserved-bit and unknown-flag inputs, unknown
//! commands, role checks, and the whole sharing flow driven through `ioctl` alone.
#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use common::*;
use ualink_kdrv::uapi::*;
use ualink_kdrv::{Errno, FileCtx};

/// A buffer for `desc` with `size` set and every other field zero.
fn base(desc: &StructDesc) -> Vec<u8> {
    let mut b = vec![0u8; desc.size];
    b[..4].copy_from_slice(&(desc.size as u32).to_le_bytes());
    b
}

fn file_for(s: &Scenario, i: &IoctlDesc) -> FileCtx {
    if i.tsm_only {
        s.tsm_file
    } else {
        s.fb
    }
}

#[test]
fn every_ioctl_rejects_truncated_oversized_bad_size_reserved_and_unknown_flags() {
    let mut s = Scenario::new();
    for i in IOCTLS {
        let f = file_for(&s, i);
        let d = i.arg;
        let b = base(d);

        let mut t = b[..d.size - 1].to_vec();
        assert_eq!(
            s.d.ioctl(&f, i.cmd, &mut t),
            Err(Errno::EFAULT),
            "{} truncated",
            i.name
        );
        let mut t: Vec<u8> = Vec::new();
        assert_eq!(
            s.d.ioctl(&f, i.cmd, &mut t),
            Err(Errno::EFAULT),
            "{} empty",
            i.name
        );

        let mut o = b.clone();
        o.push(0);
        assert_eq!(
            s.d.ioctl(&f, i.cmd, &mut o),
            Err(Errno::E2BIG),
            "{} oversized",
            i.name
        );
        let mut o = vec![0u8; 64 * 1024];
        o[..d.size].copy_from_slice(&b);
        assert_eq!(
            s.d.ioctl(&f, i.cmd, &mut o),
            Err(Errno::E2BIG),
            "{} huge",
            i.name
        );

        for bad_size in [0u32, d.size as u32 - 8, d.size as u32 + 8, u32::MAX] {
            let mut x = b.clone();
            x[..4].copy_from_slice(&bad_size.to_le_bytes());
            assert_eq!(
                s.d.ioctl(&f, i.cmd, &mut x),
                Err(Errno::EINVAL),
                "{} size {bad_size}",
                i.name
            );
        }

        for bit in 0..32 {
            let flag = 1u32 << bit;
            let known = match i.name {
                "UALINK_IOC_ATTACH" => UALINK_ATTACH_F_DYNAMIC,
                "UALINK_IOC_TDI_SET" => UALINK_TDI_F_QUARANTINE,
                "UALINK_IOC_RAS_POLL" => UALINK_RAS_F_AUDIT_ROUTES,
                _ => 0,
            };
            if known & flag != 0 {
                continue;
            }
            let mut x = b.clone();
            x[4..8].copy_from_slice(&flag.to_le_bytes());
            assert_eq!(
                s.d.ioctl(&f, i.cmd, &mut x),
                Err(Errno::EINVAL),
                "{} flag bit {bit}",
                i.name
            );
        }

        let mut n_rsvd = 0;
        for field in d.fields.iter().filter(|f| f.name.starts_with("_rsvd")) {
            n_rsvd += 1;
            for byte in 0..field.size {
                let mut x = b.clone();
                x[field.offset + byte] = 0x80;
                assert_eq!(
                    s.d.ioctl(&f, i.cmd, &mut x),
                    Err(Errno::EINVAL),
                    "{}.{} byte {byte}",
                    i.name,
                    field.name
                );
            }
        }
        let has_rsvd = d.fields.iter().any(|f| f.name.starts_with("_rsvd"));
        assert_eq!(n_rsvd > 0, has_rsvd);
    }
}

#[test]
fn variable_payloads_must_match_their_declared_length() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    // (cmd, struct, offset of the length field, bound)
    let cases = [
        (UALINK_IOC_ATTACH, UalinkAttach::DESC, 40usize, 1024usize),
        (UALINK_IOC_ROTATE_KEY, UalinkRotateKey::DESC, 8, 1024),
        (UALINK_IOC_SPDM_SEND, UalinkSpdmSend::DESC, 12, 4096),
        (UALINK_IOC_SPDM_RECV, UalinkSpdmRecv::DESC, 12, 4096),
    ];
    for (cmd, desc, len_off, bound) in cases {
        let f = if cmd == UALINK_IOC_ATTACH { s.fb } else { t };
        let name = desc
            .fields
            .iter()
            .find(|x| x.offset == len_off)
            .unwrap()
            .name;
        assert!(name.ends_with("len") || name == "cap", "{name}");
        let mut b = base(&desc);
        b[len_off..len_off + 4].copy_from_slice(&16u32.to_le_bytes());
        // Declared 16, given 8: truncated.
        let mut x = b.clone();
        x.extend_from_slice(&[0; 8]);
        assert_eq!(
            s.d.ioctl(&f, cmd, &mut x),
            Err(Errno::EFAULT),
            "{} short",
            desc.c_name
        );
        // Declared 16, given 24: oversized.
        let mut x = b.clone();
        x.extend_from_slice(&[0; 24]);
        assert_eq!(
            s.d.ioctl(&f, cmd, &mut x),
            Err(Errno::E2BIG),
            "{} long",
            desc.c_name
        );
        // Declared over the bound.
        let mut x = b.clone();
        x[len_off..len_off + 4].copy_from_slice(&((bound + 1) as u32).to_le_bytes());
        x.extend(std::iter::repeat_n(0u8, bound + 1));
        assert_eq!(
            s.d.ioctl(&f, cmd, &mut x),
            Err(Errno::E2BIG),
            "{} over bound",
            desc.c_name
        );
        let mut x = b.clone();
        x[len_off..len_off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            s.d.ioctl(&f, cmd, &mut x),
            Err(Errno::E2BIG),
            "{} u32::MAX",
            desc.c_name
        );
    }
}

#[test]
fn unknown_commands_are_enotty() {
    let mut s = Scenario::new();
    let f = s.tsm_file;
    let mut b = vec![0u8; 64];
    for cmd in [
        0u32,
        1,
        0xdead_beef,
        UALINK_IOC_EXPORT ^ (1 << 16),
        UALINK_IOC_MAP + 0x20,
        UALINK_IOC_EXPORT & !0xC000_0000,
    ] {
        assert_eq!(s.d.ioctl(&f, cmd, &mut b), Err(Errno::ENOTTY), "{cmd:#x}");
    }
}

#[test]
fn out_of_range_fields_are_einval_and_roles_are_enforced() {
    let mut s = Scenario::new();
    let (t, fb) = (s.tsm_file, s.fb);
    // Accelerator id beyond 10 bits.
    let mut x = UalinkTdiSet {
        size: 24,
        flags: 0,
        accel: 1024,
        state: 2,
        epoch: 1,
    };
    let mut b = vec![0u8; 24];
    x.encode(&mut b).unwrap();
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_TDI_SET, &mut b),
        Err(Errno::EINVAL)
    );
    x.accel = 1;
    x.state = 4;
    x.encode(&mut b).unwrap();
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_TDI_SET, &mut b),
        Err(Errno::EINVAL)
    );
    // A tenant cannot use TSM commands.
    x.state = 2;
    x.encode(&mut b).unwrap();
    assert_eq!(
        s.d.ioctl(&fb, UALINK_IOC_TDI_SET, &mut b),
        Err(Errno::EPERM)
    );
    // ... and the TSM file is not a tenant.
    let e = UalinkExport {
        size: 48,
        flags: 0,
        window: s.window_a.0,
        _rsvd0: 0,
        offset: 0,
        len: 16,
        handle: [0; 16],
    };
    let mut b = vec![0u8; 48];
    e.encode(&mut b).unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_EXPORT, &mut b), Err(Errno::EPERM));
    // Unknown rights bit.
    let a = UalinkAttach {
        size: 56,
        flags: UALINK_ATTACH_F_DYNAMIC,
        handle: s.handle.0,
        importer_accel: 2,
        rights: 8,
        cookie: 0,
        grant_len: 0,
        _rsvd0: 0,
        attachment: 0,
    };
    let mut b = vec![0u8; 56];
    a.encode(&mut b).unwrap();
    assert_eq!(
        s.d.ioctl(&fb, UALINK_IOC_ATTACH, &mut b),
        Err(Errno::EINVAL)
    );
    // Bad key-slot direction and command.
    for (dir, cmd) in [(2u32, 0u32), (0, 5)] {
        let k = UalinkKeyslot {
            size: 152,
            flags: 0,
            accel: 0,
            port: 0,
            dir,
            peer: 1,
            cmd,
            enabled: 0,
            active_state: 0,
            active_epoch: 0,
            alt_state: 0,
            alt_epoch: 0,
            active_fp: [0; 48],
            alt_fp: [0; 48],
            fp_present: 0,
            _rsvd0: 0,
        };
        let mut b = vec![0u8; 152];
        k.encode(&mut b).unwrap();
        assert_eq!(
            s.d.ioctl(&t, UALINK_IOC_KEYSLOT, &mut b),
            Err(Errno::EINVAL)
        );
    }
}

/// The whole lifecycle through the ioctl entry only, as a C program would drive it.
#[test]
fn sharing_flow_through_ioctls() {
    let mut s = Scenario::new();
    let (t, fa, fb) = (s.tsm_file, s.fa, s.fb);

    // TSM: a new tenant C with accelerators 4 and 5 and a window.
    let mut b = vec![0u8; 16];
    UalinkTenant {
        size: 16,
        flags: 0,
        tenant: 3,
        _rsvd0: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_TENANT_ADD, &mut b), Ok(0));
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_TENANT_ADD, &mut b),
        Err(Errno::EEXIST)
    );
    let mut members = [0u64; 16];
    members[0] = (1 << 4) | (1 << 5);
    let mut b = vec![0u8; 144];
    UalinkVpodCreate {
        size: 144,
        flags: 0,
        tenant: 3,
        _rsvd0: 0,
        members,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_VPOD_CREATE, &mut b), Ok(0));
    // Accelerator 2 already belongs to B's vPod.
    let mut m2 = [0u64; 16];
    m2[0] = 1 << 2;
    UalinkVpodCreate {
        size: 144,
        flags: 0,
        tenant: 1,
        _rsvd0: 0,
        members: m2,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_VPOD_CREATE, &mut b),
        Err(Errno::EEXIST)
    );

    let mut b = vec![0u8; 40];
    UalinkWindowCreate {
        size: 40,
        flags: 0,
        tenant: 3,
        accel: 4,
        base: 0,
        len: 0x1000,
        window: 0,
        _rsvd0: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_WINDOW_CREATE, &mut b), Ok(0));
    let w = UalinkWindowCreate::decode(&b).unwrap().window;
    assert_eq!(
        s.d.window(ualink_kdrv::WindowId(w)).map(|x| x.0),
        Some(ualink_kdrv::TenantId(3))
    );

    // Key slot metadata through the relay.
    let mut b = vec![0u8; 152];
    UalinkKeyslot {
        size: 152,
        flags: 0,
        accel: 0,
        port: 0,
        dir: UALINK_DIR_TX,
        peer: 2,
        cmd: UALINK_KEYSLOT_CMD_QUERY,
        enabled: 0,
        active_state: 0,
        active_epoch: 0,
        alt_state: 0,
        alt_epoch: 0,
        active_fp: [0; 48],
        alt_fp: [0; 48],
        fp_present: 0,
        _rsvd0: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_KEYSLOT, &mut b), Ok(0));
    let k = UalinkKeyslot::decode(&b).unwrap();
    assert_eq!(
        (k.enabled, k.active_state, k.active_epoch, k.fp_present),
        (1, UALINK_SLOT_LIVE, 1, 1)
    );
    assert_eq!(&k.active_fp[..3], &[0, 2, 1]);

    // A exports; B attaches with a grant, maps, unmaps, detaches; A revokes.
    let mut b = vec![0u8; 48];
    UalinkExport {
        size: 48,
        flags: 0,
        window: s.window_a.0,
        _rsvd0: 0,
        offset: 0x1000,
        len: 0x1000,
        handle: [0; 16],
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&fa, UALINK_IOC_EXPORT, &mut b), Ok(0));
    let handle = UalinkExport::decode(&b).unwrap().handle;
    assert_eq!(handle, s.handle.0, "same region, same handle");

    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let a = UalinkAttach {
        size: 56,
        flags: UALINK_ATTACH_F_DYNAMIC,
        handle,
        importer_accel: 2,
        rights: UALINK_RIGHT_READ,
        cookie: 77,
        grant_len: g.len() as u32,
        _rsvd0: 0,
        attachment: 0,
    };
    let mut b = vec![0u8; 56];
    a.encode(&mut b).unwrap();
    // Without the dynamic flag the importer could not be revoked: refused.
    let mut nodyn = b.clone();
    nodyn[4] = 0;
    nodyn.extend_from_slice(&g);
    assert_eq!(
        s.d.ioctl(&fb, UALINK_IOC_ATTACH, &mut nodyn),
        Err(Errno::EOPNOTSUPP)
    );
    b.extend_from_slice(&g);
    assert_eq!(s.d.ioctl(&fb, UALINK_IOC_ATTACH, &mut b), Ok(0));
    let att = UalinkAttach::decode(&b).unwrap().attachment;
    assert_ne!(att, 0);
    assert_eq!(&b[56..], &g[..], "payload untouched");

    let mut b = vec![0u8; 24];
    UalinkMap {
        size: 24,
        flags: 0,
        attachment: att,
        mapping: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&fb, UALINK_IOC_MAP, &mut b), Ok(0));
    assert_ne!(UalinkMap::decode(&b).unwrap().mapping, 0);
    assert_eq!(s.d.ioctl(&fb, UALINK_IOC_MAP, &mut b), Err(Errno::EBUSY));
    // A cannot map B's attachment.
    assert_eq!(s.d.ioctl(&fa, UALINK_IOC_MAP, &mut b), Err(Errno::ENOENT));

    let mut b = vec![0u8; 16];
    UalinkAttachmentArg {
        size: 16,
        flags: 0,
        attachment: att,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&fb, UALINK_IOC_UNMAP, &mut b), Ok(0));
    assert_eq!(s.d.ioctl(&fb, UALINK_IOC_DETACH, &mut b), Ok(0));
    assert_eq!(
        s.d.ioctl(&fb, UALINK_IOC_DETACH, &mut b),
        Err(Errno::ENOENT)
    );

    let mut b = vec![0u8; 24];
    UalinkRevoke {
        size: 24,
        flags: 0,
        handle,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(
        s.d.ioctl(&fb, UALINK_IOC_REVOKE, &mut b),
        Err(Errno::ENOENT)
    );
    assert_eq!(s.d.ioctl(&fa, UALINK_IOC_REVOKE, &mut b), Ok(0));
    assert_eq!(s.d.ioctl(&fa, UALINK_IOC_REVOKE, &mut b), Err(Errno::EIDRM));

    // SPDM relay: the fake device echoes the request reversed.
    let mut b = vec![0u8; 16];
    UalinkSpdmSend {
        size: 16,
        flags: 0,
        accel: 1,
        len: 4,
    }
    .encode(&mut b)
    .unwrap();
    b.extend_from_slice(&[0x12, 0x84, 0x00, 0x00]);
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_SPDM_SEND, &mut b), Ok(0));
    let mut b = vec![0u8; 24 + 64];
    UalinkSpdmRecv {
        size: 24,
        flags: 0,
        accel: 1,
        cap: 64,
        len: 0,
        _rsvd0: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_SPDM_RECV, &mut b), Ok(4));
    assert_eq!(UalinkSpdmRecv::decode(&b).unwrap().len, 4);
    assert_eq!(&b[24..28], &[0x00, 0x00, 0x84, 0x12]);
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_SPDM_RECV, &mut b),
        Err(Errno::EAGAIN)
    );

    // RAS poll with route audit; then offboard C.
    let mut b = vec![0u8; 16];
    UalinkRasPoll {
        size: 16,
        flags: UALINK_RAS_F_AUDIT_ROUTES,
        max: 8,
        handled: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_RAS_POLL, &mut b), Ok(0));
    let mut b = vec![0u8; 16];
    UalinkTenant {
        size: 16,
        flags: 0,
        tenant: 3,
        _rsvd0: 0,
    }
    .encode(&mut b)
    .unwrap();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_TENANT_OFFBOARD, &mut b), Ok(0));
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_TENANT_OFFBOARD, &mut b),
        Err(Errno::ENOENT)
    );
}

#[test]
fn key_rotation_through_ioctl() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    let new = Tsm::new();
    let msg = s.tsm.rotation(5, &new.public);
    let mut b = vec![0u8; 16];
    UalinkRotateKey {
        size: 16,
        flags: 0,
        msg_len: msg.len() as u32,
        _rsvd0: 0,
    }
    .encode(&mut b)
    .unwrap();
    b.extend_from_slice(&msg);
    let mut again = b.clone();
    assert_eq!(s.d.ioctl(&t, UALINK_IOC_ROTATE_KEY, &mut b), Ok(0));
    // Signed by the now-retired key.
    assert_eq!(
        s.d.ioctl(&t, UALINK_IOC_ROTATE_KEY, &mut again),
        Err(Errno::EKEYREVOKED)
    );
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    fn cmd() -> impl Strategy<Value = u32> {
        prop_oneof![
            4 => (0..IOCTLS.len()).prop_map(|i| IOCTLS[i].cmd),
            1 => any::<u32>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Arbitrary bytes, and well-framed headers with arbitrary fields, from every kind of file:
        /// the entry never panics and always answers Ok or a valid errno.
        #[test]
        fn ioctl_never_panics(
            file in 0..3usize,
            cmd in cmd(),
            framed in any::<bool>(),
            bytes in prop::collection::vec(any::<u8>(), 0..400),
        ) {
            let mut s = Scenario::new();
            let f = [s.tsm_file, s.fa, s.fb][file];
            let mut user = bytes;
            if framed {
                if let Some(i) = IOCTLS.iter().find(|i| i.cmd == cmd) {
                    user.resize(user.len().max(i.arg.size), 0);
                    user[..4].copy_from_slice(&(i.arg.size as u32).to_le_bytes());
                    user[4..8].fill(0);
                }
            }
            match s.d.ioctl(&f, cmd, &mut user) {
                Ok(v) => prop_assert!(v >= 0),
                Err(e) => prop_assert_eq!(Errno::from_positive(e.to_positive()), Some(e)),
            }
        }
    }
}
