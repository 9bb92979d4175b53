//! The import gate: sharing with and without grants. Every refusal returns its specific errno, maps
//! nothing in hardware and leaves an audit event naming the reason.
#![cfg(feature = "ring")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod common;

use common::*;
use ualink_kdrv::audit::AuditEvent;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::{AttachRequest, BufferState, Denial, Errno, TdiState};

/// Asserts the attempt was refused with `errno`, B's accelerator got no window permission, and the
/// last audit event is an `AttachDenied` with `reason`.
fn assert_denied(
    s: &Scenario,
    got: Result<ualink_kdrv::AttachmentId, Errno>,
    errno: Errno,
    reason: Denial,
) {
    assert_eq!(got, Err(errno));
    assert!(s.perms_for_initiator(acc(2)).is_empty(), "nothing mapped");
    assert_eq!(s.d.mappings().count(), 0);
    match s.events().last() {
        Some(AuditEvent::AttachDenied {
            reason: r,
            errno: e,
            tenant,
            ..
        }) => {
            assert_eq!(*r, reason);
            assert_eq!(*e, errno);
            assert_eq!(*tenant, TENANT_B);
        }
        other => panic!("expected AttachDenied, got {other:?}"),
    }
}

#[test]
fn valid_grant_attaches_and_maps_with_route_and_window_permission() {
    let mut s = Scenario::new();
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let att = s.attach_b(Some(&g), Rights::READ).unwrap();
    assert!(matches!(
        s.events().last(),
        Some(AuditEvent::AttachAllowed { grant: Some(_), .. })
    ));
    let fb = s.fb;
    s.d.gate_check(&fb, att).unwrap();
    let m = s.d.map(&fb, att).unwrap();
    let perms = s.perms_for_initiator(acc(2));
    assert_eq!(perms.len(), 1);
    assert_eq!(perms[0].target, acc(0));
    assert_eq!(perms[0].rights, Rights::READ);
    assert_eq!((perms[0].base, perms[0].len), (0x10_1000, 0x1000));
    // The grant opened routes between accelerator 2 and 0 on both switches, both directions.
    let routes = s.d.fabric().routes.borrow();
    for sw in 0..2u16 {
        let sw = ualink_kdrv::SwitchId(sw);
        assert_eq!(
            routes.get(&(sw, ualink_kdrv::PortId(2), acc(0))),
            Some(&ualink_kdrv::PortId(0))
        );
        assert_eq!(
            routes.get(&(sw, ualink_kdrv::PortId(0), acc(2))),
            Some(&ualink_kdrv::PortId(2))
        );
    }
    drop(routes);
    let views: Vec<_> = s.d.mappings().collect();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].mapping, m);
    assert_eq!(views[0].grant.map(|(id, _)| id.0), Some(c.grant_id));
}

#[test]
fn no_grant_across_tenants_is_eacces() {
    let mut s = Scenario::new();
    let r = s.attach_b(None, Rights::READ);
    assert_denied(&s, r, Errno::EACCES, Denial::NoGrant);
}

#[test]
fn no_grant_across_os_instances_of_one_tenant_is_eacces() {
    let mut s = Scenario::new();
    let fa2 = s.fa2;
    let req = AttachRequest {
        handle: s.handle,
        importer_accel: acc(1),
        rights: Rights::READ,
        invalidate_cookie: Some(1),
        grant: None,
    };
    assert_eq!(
        s.d.attach(&fa2, &req).map_err(Errno::from),
        Err(Errno::EACCES)
    );
    // Same tenant and OS instance needs no grant.
    let fa = s.fa;
    let att = s.d.attach(&fa, &req).unwrap();
    s.d.map(&fa, att).unwrap();
}

#[test]
fn forged_signature_is_ekeyrejected() {
    let mut s = Scenario::new();
    let c = s.claims_for_b();
    let mut g = s.tsm.grant(&c);
    let n = g.len();
    g[n - 5] ^= 0x01; // inside the signature
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::EKEYREJECTED, Denial::BadSignature);

    // Signed by another key that claims the TSM's kid.
    let other = Tsm::new();
    let g = other.sign_with_kid(c.encode(), s.tsm.kid.to_vec());
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::EKEYREJECTED, Denial::BadSignature);

    // Claims altered after signing.
    let mut c2 = c.clone();
    let good = s.tsm.grant(&c2);
    c2.rights = 7;
    let tampered_payload = c2.encode();
    let orig_payload = c.encode();
    let pos = good
        .windows(orig_payload.len())
        .position(|w| w == orig_payload)
        .unwrap();
    let mut bad = good.clone();
    bad[pos..pos + orig_payload.len()].copy_from_slice(&tampered_payload);
    let r = s.attach_b(Some(&bad), Rights::READ);
    assert_denied(&s, r, Errno::EKEYREJECTED, Denial::BadSignature);
}

#[test]
fn malformed_grant_is_ebadmsg() {
    let mut s = Scenario::new();
    let r = s.attach_b(Some(b"\xd2\x84garbage"), Rights::READ);
    assert!(matches!(r, Err(Errno::EBADMSG)));
    // Untagged COSE_Sign1 is refused.
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g[1..]), Rights::READ);
    assert_denied(
        &s,
        r,
        Errno::EBADMSG,
        Denial::MalformedGrant("not a tagged COSE_Sign1"),
    );
    // Claims with an extra key are refused even when properly signed.
    let mut payload = c.encode();
    payload[0] = 0xae; // map of 14
    payload.extend_from_slice(&[0x0e, 0x00]);
    let g = s.tsm.sign(payload);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(
        &s,
        r,
        Errno::EBADMSG,
        Denial::MalformedGrant("claims map does not have 13 entries"),
    );
}

#[test]
fn expired_grant_is_ekeyexpired_and_early_grant_is_eagain() {
    let mut s = Scenario::new();
    let mut c = s.claims_for_b();
    c.expiry = s.now();
    c.not_before = s.now() - 10;
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::EKEYEXPIRED, Denial::Expired);

    let mut c = s.claims_for_b();
    c.not_before = s.now() + 1_000;
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::EAGAIN, Denial::NotYetValid);
}

#[test]
fn replayed_grant_is_ealready() {
    let mut s = Scenario::new();
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    s.attach_b(Some(&g), Rights::READ).unwrap();
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_eq!(r, Err(Errno::EALREADY));
    assert!(matches!(
        s.events().last(),
        Some(AuditEvent::AttachDenied {
            reason: Denial::Replayed,
            ..
        })
    ));
    // A fresh grant id with a reused nonce is a replay too.
    let mut c2 = s.claims_for_b();
    c2.nonce = c.nonce;
    let g2 = s.tsm.grant(&c2);
    assert_eq!(s.attach_b(Some(&g2), Rights::READ), Err(Errno::EALREADY));
}

#[test]
fn wrong_importer_is_exdev() {
    let mut s = Scenario::new();
    for (what, f) in [
        (
            "importer tenant",
            Box::new(|c: &mut Claims| c.importer_tenant = 9) as Box<dyn Fn(&mut Claims)>,
        ),
        (
            "importer OS instance",
            Box::new(|c: &mut Claims| c.importer_os = 21),
        ),
        (
            "importer accelerator",
            Box::new(|c: &mut Claims| c.importer_accel = 3),
        ),
        (
            "exporter or buffer",
            Box::new(|c: &mut Claims| c.buffer = [0xee; 16]),
        ),
        (
            "exporter or buffer",
            Box::new(|c: &mut Claims| c.exporter_accel = 1),
        ),
    ] {
        let mut c = s.claims_for_b();
        f(&mut c);
        let g = s.tsm.grant(&c);
        let r = s.attach_b(Some(&g), Rights::READ);
        assert_denied(&s, r, Errno::EXDEV, Denial::WrongParty(what));
    }
    // Tenant B naming tenant A's accelerator as its importer.
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let fb = s.fb;
    let req = AttachRequest {
        handle: s.handle,
        importer_accel: acc(1),
        rights: Rights::READ,
        invalidate_cookie: Some(1),
        grant: Some(&g),
    };
    let r = s.d.attach(&fb, &req).map_err(Errno::from);
    assert_denied(
        &s,
        r,
        Errno::EXDEV,
        Denial::WrongParty("importer accelerator not in the caller's vPod"),
    );
}

#[test]
fn wrong_rights_is_eperm() {
    let mut s = Scenario::new();
    let mut c = s.claims_for_b();
    c.rights = 1; // read only
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::WRITE);
    assert_denied(&s, r, Errno::EPERM, Denial::RightsExceeded);
    let r = s.attach_b(Some(&g), Rights::READ.union(Rights::ATOMIC));
    assert_denied(&s, r, Errno::EPERM, Denial::RightsExceeded);
}

#[test]
fn stale_epoch_is_estale_and_tdi_not_running_is_ehostdown() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    s.d.tdi_update(&t, acc(0), TdiState::Run, 2, false).unwrap();
    let c = s.claims_for_b(); // names exporter epoch 1
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::ESTALE, Denial::StaleEpoch);

    s.d.tdi_update(&t, acc(2), TdiState::Error, 1, false)
        .unwrap();
    let mut c = s.claims_for_b();
    c.exporter_epoch = 2;
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::EHOSTDOWN, Denial::TdiNotRunning);
}

#[test]
fn keys_not_live_on_route_is_enolink() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    // Invalidate B's RX slot for A on both ports: no keyed path remains.
    for p in 0..2u16 {
        let slot = ualink_kdrv::ops::KeySlotRef {
            accel: acc(2),
            port: ualink_kdrv::PortId(p),
            dir: ualink_kdrv::ops::Direction::Rx,
            peer: acc(0),
        };
        s.d.key_slot(&t, slot, ualink_kdrv::ops::KeySlotCommand::Invalidate)
            .unwrap();
    }
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::ENOLINK, Denial::KeysNotLive);
}

#[test]
fn static_importer_is_eopnotsupp() {
    let mut s = Scenario::new();
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let fb = s.fb;
    let req = AttachRequest {
        handle: s.handle,
        importer_accel: acc(2),
        rights: Rights::READ,
        invalidate_cookie: None,
        grant: Some(&g),
    };
    let r = s.d.attach(&fb, &req).map_err(Errno::from);
    assert_denied(&s, r, Errno::EOPNOTSUPP, Denial::StaticImporter);
}

#[test]
fn rotated_key_old_grants_are_ekeyrevoked_new_key_works() {
    let mut s = Scenario::new();
    let t = s.tsm_file;
    let new = Tsm::new();
    // A rotation signed by someone else is refused.
    let rogue = Tsm::new();
    // A rotation to the rogue's key, signed by the rogue but naming the TSM's kid, is refused.
    let bad = rogue.sign_with_kid(rotation_payload(1, &rogue.public), s.tsm.kid.to_vec());
    assert_eq!(
        s.d.rotate_key(&t, &bad).map_err(Errno::from),
        Err(Errno::EKEYREJECTED)
    );
    let rot = s.tsm.rotation(1, &new.public);
    s.d.rotate_key(&t, &rot).unwrap();
    // Replaying the rotation (same sequence) is refused.
    let rot_again = new.rotation(1, &new.public);
    assert_eq!(
        s.d.rotate_key(&t, &rot_again).map_err(Errno::from),
        Err(Errno::EALREADY)
    );

    let c = s.claims_for_b();
    let old_grant = s.tsm.grant(&c);
    let r = s.attach_b(Some(&old_grant), Rights::READ);
    assert_denied(&s, r, Errno::EKEYREVOKED, Denial::RetiredKey);
    let c = s.claims_for_b();
    let g = new.grant(&c);
    s.attach_b(Some(&g), Rights::READ).unwrap();
}

#[test]
fn dead_buffer_cannot_be_reimported() {
    let mut s = Scenario::new();
    let fa = s.fa;
    let h = s.handle;
    s.d.revoke(&fa, h).unwrap();
    assert_eq!(s.d.buffer_state(&h), Some(BufferState::Dead));
    let c = s.claims_for_b();
    let g = s.tsm.grant(&c);
    let r = s.attach_b(Some(&g), Rights::READ);
    assert_denied(&s, r, Errno::EIDRM, Denial::Revoked);
    // A fresh export of the same region is a new object with a new handle.
    let w = s.window_a;
    let h2 = s.d.export(&fa, w, 0x1000, 0x1000).unwrap();
    assert_ne!(h2, h);
}

#[test]
fn same_region_same_handle_and_unknown_handle_is_enoent() {
    let mut s = Scenario::new();
    let fa = s.fa;
    let w = s.window_a;
    assert_eq!(s.d.export(&fa, w, 0x1000, 0x1000).unwrap(), s.handle);
    assert_ne!(s.d.export(&fa, w, 0x2000, 0x1000).unwrap(), s.handle);
    let fb = s.fb;
    // B cannot export from A's window.
    assert_eq!(
        s.d.export(&fb, w, 0, 0x1000).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
    let req = AttachRequest {
        handle: ualink_kdrv::BufferHandle([9; 16]),
        importer_accel: acc(2),
        rights: Rights::READ,
        invalidate_cookie: Some(1),
        grant: None,
    };
    assert_eq!(
        s.d.attach(&fb, &req).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
}

#[test]
fn map_path_recheck_refuses_after_expiry_without_mapping() {
    let mut s = Scenario::new();
    let mut c = s.claims_for_b();
    c.expiry = s.now() + 100;
    let g = s.tsm.grant(&c);
    let att = s.attach_b(Some(&g), Rights::READ).unwrap();
    s.d.fabric().advance(100);
    let fb = s.fb;
    assert_eq!(
        s.d.gate_check(&fb, att).map_err(Errno::from),
        Err(Errno::EKEYEXPIRED)
    );
    assert_eq!(
        s.d.map(&fb, att).map_err(Errno::from),
        Err(Errno::EKEYEXPIRED)
    );
    assert!(s.perms_for_initiator(acc(2)).is_empty());
    assert!(matches!(
        s.events().last(),
        Some(AuditEvent::MapDenied {
            reason: Denial::Expired,
            ..
        })
    ));
    // Another tenant cannot even see the attachment.
    let fa = s.fa;
    assert_eq!(
        s.d.gate_check(&fa, att).map_err(Errno::from),
        Err(Errno::ENOENT)
    );
}
