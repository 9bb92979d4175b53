//! Import grants attacked at the driver's gate (ualink-kdrv) on a pod the TSM brought up: a
//! grant the TSM really issued is forged, tampered, expired, replayed, used by the wrong
//! importer or for more rights, or outlives the attestation epoch it names. Each refusal is
//! the gate's own errno; the TSM's log shows the one grant it issued (by digest) and nothing
//! else allowed; the leak oracle stays empty and B's accelerator cannot read A's memory.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use ualink_attest::audit::{AuditRecord, DecisionKind, Outcome};
use ualink_kdrv::ids::{OsInstanceId, Rights, TenantId, WindowId};
use ualink_kdrv::{Errno, FileCtx};
use ualink_policy::input::Right;
use ualink_tsm::grant::{GrantSigner, GrantSpec};
use ualink_tsm::{Tsm, TsmError};

use crate::common::*;

/// The log holds exactly one allowed share and its `grant` input is `grant`'s digest.
fn assert_only_grant(recs: &[AuditRecord], grant: &[u8]) {
    let allowed: Vec<_> = shares(recs)
        .into_iter()
        .filter(|r| r.outcome() == Outcome::Allow)
        .collect();
    assert_eq!(allowed.len(), 1, "one grant issued");
    let g = allowed[0]
        .inputs()
        .iter()
        .find(|i| i.name == "grant")
        .expect("grant digest recorded");
    assert_eq!(&g.sha384.as_bytes()[..], &sha384(grant)[..]);
}

/// Setup plus one real, allowed read grant for B.
fn granted(dir: &std::path::Path) -> (Tsm, ualink_kdrv::ids::BufferHandle, Vec<u8>) {
    let (mut t, h) = two_tenants(dir);
    let g = t.share(&read_request(h)).unwrap();
    assert!(g.rules.iter().any(|r| r == "allow.listed_share_pair"));
    (t, h, g.grant)
}

/// A grant with the right claims (current epochs, live window) signed by a key the driver was
/// not given: the gate refuses it as a bad signature.
#[test]
fn forged_grant_signed_by_a_rogue_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    let rogue = GrantSigner::from_pkcs8(pkcs8.as_ref()).unwrap();
    let epoch = |t: &Tsm, a: u16| t.driver().tdi(id(a).to_kdrv()).unwrap().1;
    let now = t.pod().now_ns().unwrap();
    let forged = rogue
        .sign(&GrantSpec {
            grant_id: [0x11; 16],
            exporter_tenant: TA,
            exporter_accel: 1,
            buffer: h,
            importer_tenant: TB,
            importer_os: OS_B,
            importer_accel: 3,
            rights: 1,
            exporter_epoch: epoch(&t, 1),
            importer_epoch: epoch(&t, 3),
            not_before: now,
            expiry: now + 60_000_000_000,
            nonce: [0x22; 16],
        })
        .unwrap();
    assert_eq!(attach_b(&mut t, h, Some(&forged)), Err(Errno::EKEYREJECTED));
    assert_b_reads_nothing(&t);
    let recs = close(t, dir.path());
    assert!(shares(&recs).is_empty(), "the TSM allowed nothing");
}

/// A real grant with one signature bit flipped in transit.
#[test]
fn tampered_grant_signature_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    let mut bad = g.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x01;
    assert_eq!(attach_b(&mut t, h, Some(&bad)), Err(Errno::EKEYREJECTED));
    assert_b_reads_nothing(&t);
    assert_only_grant(&close(t, dir.path()), &g);
}

/// A real grant whose claims were edited (rights widened in the payload): the signature no
/// longer covers the bytes as received, or the structure no longer parses.
#[test]
fn grant_with_edited_claims_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    // Claim 8 (rights) is encoded as the pair 0x08 0x01; make it 0x08 0x07 (read|write|atomic).
    let pos = g
        .windows(2)
        .rposition(|w| w == [0x08, 0x01])
        .expect("rights claim");
    let mut bad = g.clone();
    bad[pos + 1] = 0x07;
    let e = attach_as(&mut t, (TB, OS_B), 3, h, Rights::ALL, Some(&bad)).unwrap_err();
    assert!(e == Errno::EKEYREJECTED || e == Errno::EBADMSG, "{e:?}");
    assert_b_reads_nothing(&t);
    assert_only_grant(&close(t, dir.path()), &g);
}

/// The grant's expiry passed on the fabric clock before the importer used it.
#[test]
fn expired_grant_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    t.pod().advance_clock(60_000_000_001).unwrap();
    assert_eq!(attach_b(&mut t, h, Some(&g)), Err(Errno::EKEYEXPIRED));
    assert_b_reads_nothing(&t);
    assert_only_grant(&close(t, dir.path()), &g);
}

/// A grant is single use: replayed after the importer detached, it is refused.
#[test]
fn replayed_grant_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    let att = attach_b(&mut t, h, Some(&g)).unwrap();
    let fb = FileCtx::tenant(TenantId(TB), OsInstanceId(OS_B));
    t.driver_mut().detach(&fb, att).unwrap();
    assert_eq!(attach_b(&mut t, h, Some(&g)), Err(Errno::EALREADY));
    assert_b_reads_nothing(&t);
    assert_only_grant(&close(t, dir.path()), &g);
}

/// B's grant presented by another OS instance of B, by tenant A's other OS instance, and from
/// B's other accelerator: each names the wrong importer.
#[test]
fn grant_used_by_the_wrong_importer_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    for (who, accel) in [((TB, OS_B + 1), 3), ((TA, OS_A + 1), 2), ((TB, OS_B), 4)] {
        assert_eq!(
            attach_as(&mut t, who, accel, h, Rights::READ, Some(&g)),
            Err(Errno::EXDEV),
            "{who:?} from accelerator {accel}"
        );
    }
    assert_b_reads_nothing(&t);
    // The rightful importer can still use it: the refusals did not burn it.
    attach_b(&mut t, h, Some(&g)).unwrap();
    assert_only_grant(&close(t, dir.path()), &g);
}

/// A read grant presented for a read-write attachment.
#[test]
fn grant_used_for_more_rights_than_granted_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    assert_eq!(
        attach_as(
            &mut t,
            (TB, OS_B),
            3,
            h,
            Rights::from_bits(3).unwrap(),
            Some(&g)
        ),
        Err(Errno::EPERM)
    );
    assert!(t.pod().write(id(3), id(1), BUF_ADDR, b"overwrite").is_err());
    assert_b_reads_nothing(&t);
    assert_only_grant(&close(t, dir.path()), &g);
}

/// Asked of the TSM instead, the wider rights are a policy deny naming the rule.
#[test]
fn share_request_for_excessive_rights_is_denied_by_policy_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    let e = t
        .share(&request(h, vec![Right::Read, Right::Write]))
        .unwrap_err();
    match &e {
        TsmError::PolicyDenied { rules, .. } => {
            assert!(
                rules.iter().any(|r| r == "deny.excessive_rights"),
                "{rules:?}"
            )
        }
        other => panic!("{other}"),
    }
    assert_b_reads_nothing(&t);
    let recs = close(t, dir.path());
    let s = shares(&recs);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].outcome(), Outcome::Deny);
    assert!(s[0].rules().iter().any(|r| r == "deny.excessive_rights"));
    assert!(s[0].inputs().iter().all(|i| i.name != "grant"), "no grant");
}

/// The exporter was re-attested after the grant was issued: the grant names the old epoch.
#[test]
fn grant_from_a_stale_attestation_epoch_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    let before = t.device(1).unwrap().epoch;
    assert_eq!(t.reattest(1).unwrap().epoch, before + 1);
    assert_eq!(attach_b(&mut t, h, Some(&g)), Err(Errno::ESTALE));
    assert_b_reads_nothing(&t);
    let recs = close(t, dir.path());
    assert_only_grant(&recs, &g);
    // The re-attestation that made it stale is itself on the record.
    assert!(
        about(&recs, DecisionKind::DeviceAppraisal, "accel-0001")
            .iter()
            .filter(|r| r.outcome() == Outcome::Allow)
            .count()
            >= 2
    );
}

/// A grant for one buffer presented for another buffer of the same exporter.
#[test]
fn grant_presented_for_another_buffer_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    let fa = FileCtx::tenant(TenantId(TA), OsInstanceId(OS_A));
    let w = t.window_create(TA, 1, 0x2_0000, 0x1000).unwrap();
    let other = t.driver_mut().export(&fa, WindowId(w), 0, 0x1000).unwrap();
    assert_ne!(other, h);
    assert_eq!(attach_b(&mut t, other, Some(&g)), Err(Errno::EXDEV));
    assert_b_reads_nothing(&t);
    assert_only_grant(&close(t, dir.path()), &g);
}

/// The exporter's TDI was stopped after the grant was issued: nothing may cross a TDI that
/// is not in RUN.
#[test]
fn grant_for_a_stopped_tdi_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h, g) = granted(dir.path());
    t.tdi_stop(TA, 1).unwrap();
    let e = attach_b(&mut t, h, Some(&g)).unwrap_err();
    assert!(e == Errno::EHOSTDOWN || e == Errno::ESTALE, "{e:?}");
    assert_b_reads_nothing(&t);
    let recs = close(t, dir.path());
    assert_only_grant(&recs, &g);
    assert!(recs
        .iter()
        .any(|r| r.event().is_some_and(|e| e.name() == "tdi-stopped")));
}

/// No grant at all across the tenant boundary.
#[test]
fn cross_tenant_attach_without_a_grant_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut t, h) = two_tenants(dir.path());
    assert_eq!(attach_b(&mut t, h, None), Err(Errno::EACCES));
    assert_b_reads_nothing(&t);
    assert!(shares(&close(t, dir.path())).is_empty());
}
