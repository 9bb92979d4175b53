//! The accelerators' SPDM responders through the driver's mailbox (`FabricOps::spdm_send` /
//! `spdm_receive`, MCTP framing), driven by ualink-spdm's requester: attestation against the
//! vendor root, measurements against reference values, link keys programmed inside the secured
//! session (RX before TX), TDISP, and the malicious-responder knobs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use ualink_kdrv::ids::Rights;
use ualink_kdrv::ops::FabricOps;
use ualink_kdrv::AcceleratorId;
use ualink_sim::device::{ResponderFault, SIM_TDI};
use ualink_sim::measurement::{reference_digests, MeasurementKind, Tamper};
use ualink_sim::{AccelId, SimPod};
use ualink_spdm::algo::SpdmVersion;
use ualink_spdm::cert_chain::TrustAnchors;
use ualink_spdm::keyprog::{self, Direction, KeyProgStatus, KeyTarget, MasterKey, Slot};
use ualink_spdm::requester::driver::{attest, request, DriverError, SpdmIo};
use ualink_spdm::requester::{AppRequest, AppResponse, Attestation, Requester, RequesterConfig};
use ualink_spdm::tdisp::msg::{InterfaceId, LockInterfaceParams};
use ualink_spdm::tdisp::requester::TdispRequester;
use ualink_spdm::tdisp::TdiState;
use ualink_spdm::transport::{MessageKind, Received, Transport};
use zeroize::Zeroizing;

/// The host's side of one accelerator's mailbox, through `FabricOps`.
struct Mailbox<'a> {
    pod: &'a SimPod,
    accel: AcceleratorId,
}

impl SpdmIo for Mailbox<'_> {
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> std::io::Result<()> {
        let framed = Transport::Mctp
            .encode(kind, msg)
            .map_err(std::io::Error::other)?;
        self.pod
            .spdm_send(self.accel, &framed)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
    }

    fn receive(&mut self) -> std::io::Result<(MessageKind, Vec<u8>)> {
        let mut buf = vec![0u8; 70_000];
        let n = self
            .pod
            .spdm_receive(self.accel, &mut buf)
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        match Transport::Mctp
            .decode(&buf[..n])
            .map_err(std::io::Error::other)?
        {
            Received::Message(k, m) => Ok((k, m.to_vec())),
            Received::DoeDiscovery(_) => Err(std::io::Error::other("unexpected DOE discovery")),
        }
    }
}

fn anchors(p: &SimPod) -> Arc<TrustAnchors> {
    let mut t = TrustAnchors::new();
    for (_, der) in p.vendor_roots() {
        t.add_der(&der).unwrap();
    }
    Arc::new(t)
}

fn requester(p: &SimPod, config: RequesterConfig) -> Requester {
    Requester::new(config, anchors(p)).unwrap()
}

fn attest_one(
    p: &SimPod,
    a: AccelId,
    config: RequesterConfig,
) -> Result<(Requester, Attestation), DriverError> {
    let mut req = requester(p, config);
    let mut io = Mailbox {
        pod: p,
        accel: a.to_kdrv(),
    };
    let att = attest(&mut req, &mut io)?;
    Ok((req, att))
}

fn vendor(p: &SimPod, a: AccelId, req: &mut Requester, payload: Vec<u8>) -> Vec<u8> {
    let mut io = Mailbox {
        pod: p,
        accel: a.to_kdrv(),
    };
    match request(req, &mut io, AppRequest::Vendor(Zeroizing::new(payload))).unwrap() {
        Some(AppResponse::Vendor(v)) => v,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn target(dir: Direction, peer: u16) -> KeyTarget {
    KeyTarget {
        port: 0,
        direction: dir,
        slot: Slot::Active,
        peer: keyprog::AccelId::new(peer).unwrap(),
    }
}

fn status_of_ack(ack: &[u8]) -> u8 {
    ack[2]
}

#[test]
fn attestation_verifies_to_the_vendor_root_with_golden_measurements() {
    let p = pod(2);
    let (_, att) = attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    assert!(att.session_id.is_some());
    let spec = p.with_accelerator(id(1), |a| a.spec().clone()).unwrap();
    let refs = reference_digests(&spec.vendor, &spec.model, &spec.firmware);
    let blocks = att.measurements.unwrap().blocks;
    assert_eq!(blocks.len(), 3);
    for (b, r) in blocks.iter().zip(refs.iter()) {
        assert_eq!(&b.value[..], &r[..], "block {}", b.index);
    }
}

#[test]
fn tampered_firmware_shows_in_signed_measurements() {
    let p = pod(1);
    p.tamper_measurement(
        id(1),
        MeasurementKind::Firmware,
        Tamper::FlipBit { offset: 9 },
    )
    .unwrap();
    let (_, att) = attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    let spec = p.with_accelerator(id(1), |a| a.spec().clone()).unwrap();
    let refs = reference_digests(&spec.vendor, &spec.model, &spec.firmware);
    let blocks = att.measurements.unwrap().blocks;
    assert_eq!(&blocks[0].value[..], &refs[0][..]);
    assert_ne!(
        &blocks[1].value[..],
        &refs[1][..],
        "the verifier sees the tamper"
    );
}

#[test]
fn link_keys_arrive_only_through_secured_sessions_rx_before_tx() {
    let p = pod(2);
    own(&p, id(1), 1);
    own(&p, id(2), 1);
    p.open_routes(id(1), id(2)).unwrap();
    grant(&p, id(2), id(1), 1, Rights::ALL);
    let (mut r1, _) = attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    let (mut r2, _) = attest_one(&p, id(2), RequesterConfig::default()).unwrap();
    // One key per direction, epoch 1, delivered to both ends.
    let mut k12 = [0x12u8; 32];
    let mut k21 = [0x21u8; 32];
    let k12 = MasterKey::from_bytes(&mut k12);
    let k21 = MasterKey::from_bytes(&mut k21);
    let plan = [
        (id(1), target(Direction::Tx, 2), &k12),
        (id(2), target(Direction::Rx, 1), &k12),
        (id(2), target(Direction::Tx, 1), &k21),
        (id(1), target(Direction::Rx, 2), &k21),
    ];
    for (a, t, k) in plan {
        let req = if a == id(1) { &mut r1 } else { &mut r2 };
        let ack = vendor(&p, a, req, keyprog::ualink_key_prog(t, 1, k).to_vec());
        keyprog::expect_kp_ack(&ack, t, 1).unwrap();
    }
    // TX before RX is refused by the device.
    let ack = vendor(
        &p,
        id(1),
        &mut r1,
        keyprog::ualink_go(target(Direction::Tx, 2)),
    );
    assert_ne!(status_of_ack(&ack), KeyProgStatus::Success.wire());
    assert!(p.write(id(1), id(2), 0, b"early").is_err());
    // RX everywhere, then TX.
    for (a, t) in [
        (id(2), target(Direction::Rx, 1)),
        (id(1), target(Direction::Rx, 2)),
        (id(1), target(Direction::Tx, 2)),
        (id(2), target(Direction::Tx, 1)),
    ] {
        let req = if a == id(1) { &mut r1 } else { &mut r2 };
        let ack = vendor(&p, a, req, keyprog::ualink_go(t));
        keyprog::expect_gostop_ack(&ack, t).unwrap();
    }
    p.write(id(1), id(2), 0x40, b"sealed end to end").unwrap();
    assert_eq!(
        p.read(id(1), id(2), 0x40, 17).unwrap(),
        b"sealed end to end"
    );
    // A replayed (older) epoch is refused.
    let t = target(Direction::Tx, 2);
    let ack = vendor(
        &p,
        id(1),
        &mut r1,
        keyprog::ualink_key_prog(t, 1, &k12).to_vec(),
    );
    assert_eq!(status_of_ack(&ack), KeyProgStatus::StaleEpoch.wire());
    // KEY_STOP erases the TX key: traffic stops.
    let ack = vendor(&p, id(1), &mut r1, keyprog::ualink_stop(t));
    keyprog::expect_gostop_ack(&ack, t).unwrap();
    assert!(p.write(id(1), id(2), 0x40, b"x").is_err());
    assert!(p.leaks().unwrap().is_empty());
}

#[test]
fn tdisp_lock_then_host_config_write_moves_the_tdi_to_error() {
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let (mut r1, _) = attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    let tdi = TdispRequester::new(InterfaceId::new(SIM_TDI).unwrap());
    tdi.parse_version(&vendor(&p, id(1), &mut r1, tdi.get_version()))
        .unwrap();
    let params = LockInterfaceParams::default();
    // No live link keys yet: LOCK refused.
    assert!(tdi
        .parse_lock_interface(&vendor(&p, id(1), &mut r1, tdi.lock_interface(&params)))
        .is_err());
    // Keys for accelerator 1's RX from 2, programmed and enabled in this session.
    let mut k = [0x77u8; 32];
    let k = MasterKey::from_bytes(&mut k);
    let t = target(Direction::Rx, 2);
    keyprog::expect_kp_ack(
        &vendor(
            &p,
            id(1),
            &mut r1,
            keyprog::ualink_key_prog(t, 1, &k).to_vec(),
        ),
        t,
        1,
    )
    .unwrap();
    keyprog::expect_gostop_ack(&vendor(&p, id(1), &mut r1, keyprog::ualink_go(t)), t).unwrap();
    let nonce = tdi
        .parse_lock_interface(&vendor(&p, id(1), &mut r1, tdi.lock_interface(&params)))
        .unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::ConfigLocked));
    // The host writes the locked TDI's configuration.
    p.host_write_tdi_config(id(1), SIM_TDI as u16, 0x10, &[1, 2, 3, 4])
        .unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Error));
    assert!(tdi
        .parse_start_interface(&vendor(&p, id(1), &mut r1, tdi.start_interface(&nonce)))
        .is_err());
}

#[test]
fn malicious_responders_are_refused() {
    let p = pod(1);
    // Bad signature.
    p.responder_fault(id(1), ResponderFault::BadSignature, true)
        .unwrap();
    let e = attest_one(&p, id(1), RequesterConfig::default()).unwrap_err();
    assert!(format!("{e:?}").contains("BadSignature"), "{e:?}");
    p.responder_fault(id(1), ResponderFault::BadSignature, false)
        .unwrap();
    attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    // Version downgrade: a requester that insists on 1.3 refuses a 1.2-only device.
    p.responder_fault(id(1), ResponderFault::VersionDowngrade, true)
        .unwrap();
    let v13 = RequesterConfig {
        versions: vec![SpdmVersion::V13],
        ..RequesterConfig::default()
    };
    let e = attest_one(&p, id(1), v13.clone()).unwrap_err();
    assert!(format!("{e:?}").contains("NoCommonVersion"), "{e:?}");
    p.responder_fault(id(1), ResponderFault::VersionDowngrade, false)
        .unwrap();
    attest_one(&p, id(1), v13).unwrap();
    // Malformed responses.
    p.responder_fault(id(1), ResponderFault::Malformed, true)
        .unwrap();
    let e = attest_one(&p, id(1), RequesterConfig::default()).unwrap_err();
    assert!(format!("{e:?}").contains("Malformed"), "{e:?}");
    p.responder_fault(id(1), ResponderFault::Malformed, false)
        .unwrap();
    // Replayed (stale) signed responses from an earlier attestation.
    attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    p.responder_fault(id(1), ResponderFault::ReplayPrevious, true)
        .unwrap();
    let e = attest_one(&p, id(1), RequesterConfig::default()).unwrap_err();
    assert!(format!("{e:?}").contains("BadSignature"), "{e:?}");
    p.responder_fault(id(1), ResponderFault::ReplayPrevious, false)
        .unwrap();
    // Certificate swap: a well-formed chain from a rogue CA.
    p.swap_certificate(id(1)).unwrap();
    let e = attest_one(&p, id(1), RequesterConfig::default()).unwrap_err();
    assert!(format!("{e:?}").contains("UntrustedRoot"), "{e:?}");
}

/// Attests accelerator 1, programs and enables its RX key from 2 in the session, and locks its
/// TDI.
fn locked_tdi(p: &SimPod) -> Requester {
    let (mut r1, _) = attest_one(p, id(1), RequesterConfig::default()).unwrap();
    let tdi = TdispRequester::new(InterfaceId::new(SIM_TDI).unwrap());
    tdi.parse_version(&vendor(p, id(1), &mut r1, tdi.get_version()))
        .unwrap();
    let mut k = [0x66u8; 32];
    let k = MasterKey::from_bytes(&mut k);
    let t = target(Direction::Rx, 2);
    keyprog::expect_kp_ack(
        &vendor(
            p,
            id(1),
            &mut r1,
            keyprog::ualink_key_prog(t, 7, &k).to_vec(),
        ),
        t,
        7,
    )
    .unwrap();
    keyprog::expect_gostop_ack(&vendor(p, id(1), &mut r1, keyprog::ualink_go(t)), t).unwrap();
    tdi.parse_lock_interface(&vendor(
        p,
        id(1),
        &mut r1,
        tdi.lock_interface(&LockInterfaceParams::default()),
    ))
    .unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::ConfigLocked));
    r1
}

#[test]
fn link_flap_port_migration_and_integrity_failure_break_a_locked_tdi() {
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let _r = locked_tdi(&p);
    p.link_flap(id(1), ualink_sim::PortIndex(0)).unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Error));

    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let _r = locked_tdi(&p);
    p.migrate_port(id(1), ualink_sim::PortIndex(0), ualink_sim::PortIndex(1))
        .unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Error));

    // A forged transaction from accelerator 2 fails verification at accelerator 1.
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let _r = locked_tdi(&p);
    let bytes = {
        // A well-formed write header from 2 to 1 with forged ciphertext and tag.
        let h = ualink_sim::ualinksec::header::TxnHeader {
            cmd: ualink_sim::ualinksec::header::Cmd::Write,
            src: id(2),
            dst: id(1),
            len: 4,
            addr_hi: 0,
        };
        let mut b = h.encode().to_vec();
        b.extend_from_slice(&[0xaa; 9]);
        b.extend_from_slice(&[0xbb; 8]);
        b
    };
    // Generated pod: accelerator 2 is on switch port 1, accelerator 1 on port 0.
    let e = p
        .inject_wire(
            ualink_sim::SwitchIndex(0),
            ualink_sim::SwitchPort(1),
            &bytes,
        )
        .unwrap_err();
    assert!(
        matches!(e, ualink_sim::SimError::IntegrityFailure { .. }),
        "{e:?}"
    );
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Error));
}

/// The mailbox resetting the device just before the requester's `after`-th message.
struct ResettingMailbox<'a> {
    inner: Mailbox<'a>,
    accel: AccelId,
    sent: u32,
    after: u32,
}

impl SpdmIo for ResettingMailbox<'_> {
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> std::io::Result<()> {
        self.sent += 1;
        if self.sent == self.after {
            self.inner.pod.reset_device(self.accel).unwrap();
        }
        self.inner.send(kind, msg)
    }

    fn receive(&mut self) -> std::io::Result<(MessageKind, Vec<u8>)> {
        self.inner.receive()
    }
}

/// A device reset at any point of the handshake (before its 2nd, 3rd, ... last message)
/// interrupts it: the fresh responder has no connection state, so the requester gets an
/// error, never an attestation. A new handshake afterwards succeeds.
#[test]
fn device_reset_at_any_point_interrupts_the_handshake() {
    let p = pod(1);
    // How many messages a clean handshake takes.
    let mut req = requester(&p, RequesterConfig::default());
    let mut io = ResettingMailbox {
        inner: Mailbox {
            pod: &p,
            accel: id(1).to_kdrv(),
        },
        accel: id(1),
        sent: 0,
        after: u32::MAX,
    };
    attest(&mut req, &mut io).unwrap();
    let total = io.sent;
    assert!(
        total >= 6,
        "a full handshake is VCA, certificate, measurements, session"
    );
    for after in 2..=total {
        let mut req = requester(&p, RequesterConfig::default());
        let mut io = ResettingMailbox {
            inner: Mailbox {
                pod: &p,
                accel: id(1).to_kdrv(),
            },
            accel: id(1),
            sent: 0,
            after,
        };
        assert!(
            attest(&mut req, &mut io).is_err(),
            "reset before message {after} of {total} went unnoticed"
        );
        assert!(attest_one(&p, id(1), RequesterConfig::default()).is_ok());
    }
}

/// A device reset under a locked TDI and a live secured session: the session and its keys
/// are gone (the requester's next secured request gets no answer), the TDI is back in
/// CONFIG_UNLOCKED with no nonce, and the key programming engine forgot the old session, so
/// a new session must program fresh keys before it can LOCK again.
#[test]
fn device_reset_drops_the_session_and_unlocks_the_tdi() {
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let mut r1 = locked_tdi(&p);
    p.reset_device(id(1)).unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::ConfigUnlocked));
    let tdi = TdispRequester::new(InterfaceId::new(SIM_TDI).unwrap());
    let mut io = Mailbox {
        pod: &p,
        accel: id(1).to_kdrv(),
    };
    assert!(
        request(
            &mut r1,
            &mut io,
            AppRequest::Vendor(Zeroizing::new(tdi.get_state()))
        )
        .is_err(),
        "the old session survived the reset"
    );
    // A new session: the reset zeroized the link keys, so LOCK is refused until re-keyed.
    let (mut r2, _) = attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    tdi.parse_version(&vendor(&p, id(1), &mut r2, tdi.get_version()))
        .unwrap();
    assert_eq!(
        tdi.parse_state(&vendor(&p, id(1), &mut r2, tdi.get_state()))
            .unwrap(),
        TdiState::ConfigUnlocked
    );
    assert!(tdi
        .parse_lock_interface(&vendor(
            &p,
            id(1),
            &mut r2,
            tdi.lock_interface(&LockInterfaceParams::default())
        ))
        .is_err());
}

/// Fetches the locked TDI's interface report inside `r`'s session.
fn interface_report(p: &SimPod, r: &mut Requester) -> ualink_spdm::tdisp::msg::InterfaceReport {
    let tdi = TdispRequester::new(InterfaceId::new(SIM_TDI).unwrap());
    let mut f = tdi.report_fetcher(64);
    loop {
        let req = f.next_request().unwrap();
        if let Some(done) = f.handle_response(&vendor(p, id(1), r, req)).unwrap() {
            return done.report;
        }
    }
}

/// The TDI reports NO_UPDATE_AFTER_LOCK (a device meant for confidential use), and honours
/// it: a firmware update while CONFIG_LOCKED or RUN is refused, leaves the measurements as
/// attested and moves the TDI to ERROR; once the TDI is unlocked the same update installs.
#[test]
fn firmware_update_after_lock_is_refused_and_errors_the_tdi() {
    use ualink_spdm::tdisp::msg::InterfaceInfo;
    let digest = |p: &SimPod| {
        p.with_accelerator(id(1), |a| {
            a.measurements().block(MeasurementKind::Firmware).digest()
        })
        .unwrap()
    };
    let (vendor_name, model) = {
        let p = pod(1);
        p.with_accelerator(id(1), |a| (a.spec().vendor.clone(), a.spec().model.clone()))
            .unwrap()
    };
    let new_refs = reference_digests(&vendor_name, &model, "2.0.0");

    // CONFIG_LOCKED.
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let mut r1 = locked_tdi(&p);
    let report = interface_report(&p, &mut r1);
    assert_ne!(
        report.interface_info.bits() & InterfaceInfo::NO_UPDATE_AFTER_LOCK,
        0
    );
    let before = digest(&p);
    assert_eq!(
        p.update_firmware(id(1), "2.0.0").unwrap_err(),
        ualink_sim::SimError::FirmwareUpdateAfterLock { accel: id(1) }
    );
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Error));
    assert_eq!(digest(&p), before, "a refused update changed the firmware");
    assert!(p.take_device_events(id(1)).unwrap().contains(
        &ualink_sim::sim::DeviceEvent::FirmwareUpdate {
            version: "2.0.0".into(),
            applied: false
        }
    ));
    // STOP: ERROR → CONFIG_UNLOCKED; now the update installs.
    let tdi = TdispRequester::new(InterfaceId::new(SIM_TDI).unwrap());
    tdi.parse_stop_interface(&vendor(&p, id(1), &mut r1, tdi.stop_interface()))
        .unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::ConfigUnlocked));
    p.update_firmware(id(1), "2.0.0").unwrap();
    assert_eq!(digest(&p), new_refs[1]);
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::ConfigUnlocked));

    // RUN.
    let p = pod(2);
    p.open_routes(id(1), id(2)).unwrap();
    let mut r1 = locked_tdi(&p);
    // `locked_tdi` drops the START nonce: STOP and LOCK again to get one.
    let nonce = {
        tdi.parse_stop_interface(&vendor(&p, id(1), &mut r1, tdi.stop_interface()))
            .unwrap();
        tdi.parse_lock_interface(&vendor(
            &p,
            id(1),
            &mut r1,
            tdi.lock_interface(&LockInterfaceParams::default()),
        ))
        .unwrap()
    };
    tdi.parse_start_interface(&vendor(&p, id(1), &mut r1, tdi.start_interface(&nonce)))
        .unwrap();
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Run));
    let before = digest(&p);
    assert!(p.update_firmware(id(1), "2.0.0").is_err());
    assert_eq!(p.tdi_state(id(1)).unwrap(), Some(TdiState::Error));
    assert_eq!(digest(&p), before);
}

/// The device caches its parsed signing key; a certificate swap after it has signed must make
/// it sign with the swapped-in key (a stale key would fail the signature checks, not the chain).
#[test]
fn a_swapped_certificate_is_signed_for_with_its_own_key() {
    let p = pod(2);
    attest_one(&p, id(1), RequesterConfig::default()).unwrap();
    p.swap_certificate(id(1)).unwrap();
    let rogue_root = p
        .with_accelerator(id(1), |a| a.pki().root_der.clone())
        .unwrap();
    let mut t = TrustAnchors::new();
    t.add_der(&rogue_root).unwrap();
    let mut req = Requester::new(RequesterConfig::default(), Arc::new(t)).unwrap();
    let mut io = Mailbox {
        pod: &p,
        accel: id(1).to_kdrv(),
    };
    let att = attest(&mut req, &mut io).unwrap();
    assert!(att.session_id.is_some());
    // The untouched device still signs with its own key under the vendor root.
    attest_one(&p, id(2), RequesterConfig::default()).unwrap();
}

/// Each device's responder has its own lock: attestations of different devices from several
/// threads all complete while other devices are reset and have their faults toggled.
#[test]
fn responders_of_different_devices_run_in_parallel_with_resets_and_faults() {
    let p = pod(8);
    std::thread::scope(|s| {
        let workers: Vec<_> = (1..=6)
            .map(|n| {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..2 {
                        let (_, att) = attest_one(p, id(n), RequesterConfig::default()).unwrap();
                        assert!(att.session_id.is_some());
                    }
                })
            })
            .collect();
        s.spawn(|| {
            for i in 0..20 {
                p.reset_device(id(7)).unwrap();
                p.responder_fault(id(8), ResponderFault::BadSignature, i % 2 == 0)
                    .unwrap();
                assert_eq!(p.tdi_state(id(7)).unwrap(), Some(TdiState::ConfigUnlocked));
            }
        });
        for w in workers {
            w.join().unwrap();
        }
    });
    // The knob's last setting (off) holds: device 8 attests.
    attest_one(&p, id(8), RequesterConfig::default()).unwrap();
}
