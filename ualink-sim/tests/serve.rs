//! The responders over real spdm-emu sockets: ualink-spdm's requester attests a simulated
//! accelerator through TCP, trusting the CA bundle `ualink-sim serve` writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::*;
use ualink_sim::serve::{ca_bundle_pem, spawn_servers};
use ualink_spdm::cert_chain::TrustAnchors;
use ualink_spdm::requester::driver::attest;
use ualink_spdm::requester::{Requester, RequesterConfig};
use ualink_spdm::transport::emu_socket::{EmuClient, EmuConfig};
use ualink_spdm::transport::Transport;

#[test]
fn requester_attests_a_simulated_accelerator_over_spdm_emu_tcp() {
    let p = Arc::new(pod(2));
    let servers = spawn_servers(Arc::clone(&p), IpAddr::V4(Ipv4Addr::LOCALHOST), 0).unwrap();
    assert_eq!(servers.len(), 2);
    // Trust exactly what the CA bundle says.
    let bundle = ca_bundle_pem(&p);
    let mut anchors = TrustAnchors::new();
    for block in pem::parse_many(bundle.as_bytes()).unwrap() {
        anchors.add_der(block.contents()).unwrap();
    }
    let anchors = Arc::new(anchors);
    for (accel, addr, _) in &servers {
        let mut client = EmuClient::connect(addr, EmuConfig::new(Transport::Mctp)).unwrap();
        let mut req = Requester::new(RequesterConfig::default(), anchors.clone()).unwrap();
        let att = attest(&mut req, &mut client).unwrap();
        assert!(att.session_id.is_some(), "{accel}");
        assert_eq!(att.measurements.unwrap().blocks.len(), 3);
        client.shutdown().unwrap();
    }
    // The same device through the socket and through the driver's mailbox: a tamper shows in
    // the next attestation over TCP.
    p.tamper_measurement(
        id(1),
        ualink_sim::measurement::MeasurementKind::Firmware,
        ualink_sim::measurement::Tamper::FlipBit { offset: 0 },
    )
    .unwrap();
    let spec = p.with_accelerator(id(1), |a| a.spec().clone()).unwrap();
    let refs =
        ualink_sim::measurement::reference_digests(&spec.vendor, &spec.model, &spec.firmware);
    let mut client = EmuClient::connect(servers[0].1, EmuConfig::new(Transport::Mctp)).unwrap();
    let mut req = Requester::new(RequesterConfig::default(), anchors).unwrap();
    let att = attest(&mut req, &mut client).unwrap();
    assert_ne!(&att.measurements.unwrap().blocks[1].value[..], &refs[1][..]);
    client.shutdown().unwrap();
}
