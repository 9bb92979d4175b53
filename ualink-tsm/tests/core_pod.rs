//! A pod description mixing simulated accelerators and external devices reached over the
//! spdm-emu socket framing: the external ones are attested and appraised like the simulated
//! ones, quarantined when their chain fails, re-attested on demand, and never vPod members.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use common::*;
use serde_json::json;
use ualink_attest::audit::{DecisionKind, Outcome};
use ualink_policy::PolicyBundle;
use ualink_spdm::algo::AsymAlg;
use ualink_spdm::device::{Device, SoftDevice};
use ualink_spdm::identity::{DeviceIdentity, IdentityOptions};
use ualink_spdm::requester::SecuredFraming;
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::transport::emu_socket::{EmuConfig, EmuServer, ServerEvent};
use ualink_spdm::transport::Transport;
use ualink_tsm::pod::PodDescription;
use ualink_tsm::{DeviceStatus, Tsm, TsmConfig, TsmError};

/// What `ualink-spdm respond` does, on a loopback thread: one soft device for the process,
/// a fresh responder per connection, until the test process ends.
fn serve(identity: DeviceIdentity) -> SocketAddr {
    let server = EmuServer::bind("127.0.0.1:0", EmuConfig::new(Transport::Mctp)).unwrap();
    let addr = server.local_addr().unwrap();
    let mut device = SoftDevice::new(identity, 7).unwrap();
    let config = ResponderConfig {
        secured: SecuredFraming::for_transport(Transport::Mctp),
        ..ResponderConfig::default()
    };
    std::thread::spawn(move || loop {
        let Ok(mut conn) = server.accept() else {
            continue;
        };
        let mut responder = Responder::new(&mut device, config);
        loop {
            match conn.next_event() {
                Ok(ServerEvent::Message(kind, msg)) => {
                    let Some(out) = responder.handle(kind, &msg) else {
                        break;
                    };
                    if conn.send_response(out.kind, &out.bytes).is_err() {
                        break;
                    }
                }
                Ok(ServerEvent::Continue) => responder = Responder::new(&mut device, config),
                Ok(_) | Err(_) => break,
            }
        }
        if let Some(sid) = responder.session_id() {
            responder.device_mut().session_ended(sid);
        }
    });
    addr
}

fn sha384_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA384, b))
}

/// Reference values for the soft device (its measurement blocks: four SHA-384 digests and
/// a raw version string) and its root trusted for "Soft Vendor".
fn soft_device_policy(overlay: &mut serde_json::Value, root_der: &[u8]) {
    let d = &mut overlay["ualink_data"];
    d["device"]["trusted_vendor_roots"]
        .as_array_mut()
        .unwrap()
        .push(json!({"vendor": "Soft Vendor", "sha384": sha384_hex(root_der)}));
    let digest = |i: u8, v: &[u8]| json!({"mkey": i, "mval": {"digests": [{"alg": "sha-384", "value": sha384_hex(v)}]}});
    let triple = json!({
        "environment": {"class": {"vendor": "Soft Vendor", "model": "SD1"}},
        "measurements": [
            digest(1, b"ualink soft device boot ROM"),
            digest(2, b"ualink soft device firmware 1.0"),
            digest(3, b"ports=4 lanes=8"),
            digest(4, b"ualinksec=on"),
            {"mkey": 5, "mval": {"version": {"version": "1.0.0"},
                                 "raw-value": hex::encode(b"1.0.0")}}
        ]
    });
    d["reference_values"]["tags"]
        .as_array_mut()
        .unwrap()
        .push(json!({"comid": {"triples": {"reference-triples": [triple]}}}));
}

#[test]
fn external_devices_are_attested_appraised_and_kept_out_of_vpods() {
    let dir = tempfile::tempdir().unwrap();
    let identity =
        DeviceIdentity::generate(AsymAlg::EcdsaP384, &IdentityOptions::default()).unwrap();
    let root = identity.ca_der().to_vec();
    let addr = serve(identity);
    // A root this device's chain does not end in.
    let stranger = DeviceIdentity::generate(AsymAlg::EcdsaP384, &IdentityOptions::default())
        .unwrap()
        .ca_der()
        .to_vec();
    let pod_dir = dir.path().join("pod");
    std::fs::create_dir_all(&pod_dir).unwrap();
    std::fs::write(pod_dir.join("soft-ca.der"), &root).unwrap();
    std::fs::write(pod_dir.join("stranger-ca.der"), &stranger).unwrap();
    let toml = format!(
        r#"
[sim]
accelerators = 2

[[device]]
id = 900
url = "tcp://{addr}"
vendor = "Soft Vendor"
model = "SD1"
firmware = "1.0.0"
trust_anchor = "soft-ca.der"

[[device]]
id = 901
url = "tcp://{addr}"
vendor = "Soft Vendor"
model = "SD1"
firmware = "1.0.0"
trust_anchor = "stranger-ca.der"
"#
    );
    std::fs::write(pod_dir.join("pod.toml"), toml).unwrap();
    let desc = PodDescription::load(&pod_dir.join("pod.toml")).unwrap();
    assert_eq!(desc.devices.len(), 2);
    let spec = desc.sim_spec().unwrap();
    let pod = ualink_sim::SimPod::new(&spec).unwrap();
    let mut overlay = overlay(&pod, &spec);
    soft_device_policy(&mut overlay, &root);
    let bundle = PolicyBundle::defaults()
        .unwrap()
        .with_data(overlay)
        .unwrap();
    let state = dir.path().join("state");
    let mut t = Tsm::open(TsmConfig::new(&state, bundle), pod).unwrap();
    for d in &desc.devices {
        let v = t.add_external_device(d).unwrap();
        assert_eq!(v.status, DeviceStatus::Pending);
        assert_eq!(v.external.as_deref(), Some(d.url().as_str()));
    }
    assert!(matches!(
        t.add_external_device(&desc.devices[0]),
        Err(TsmError::Conflict(_))
    ));
    let r = t.bring_up().unwrap();
    assert_eq!(r.attested, vec![1, 2, 900], "{r:?}");
    assert_eq!(r.quarantined, vec![(901, "certificate_chain".to_string())]);
    let d = t.device(900).unwrap();
    assert_eq!(d.epoch, 1);
    assert!(
        d.rules.iter().any(|r| r == "allow.reference_values_match"),
        "{:?}",
        d.rules
    );
    assert!(t.device_evidence(900).is_some());
    // Attest-only: no vPod membership, no link keys.
    t.tenant_add(1, "tenant-a").unwrap();
    let e = t.vpod_create(1, &[1, 900]).unwrap_err();
    assert!(e.to_string().contains("attest-only"), "{e}");
    assert!(t.key_link(1, 900).is_err());
    t.vpod_create(1, &[1, 2]).unwrap();
    // Re-attestation reconnects and bumps the epoch.
    assert_eq!(t.reattest(900).unwrap().epoch, 2);
    assert_eq!(t.reattest_all().unwrap(), Vec::<u16>::new());
    assert_eq!(t.device(900).unwrap().epoch, 3);
    let key = t.identity().public_key().to_vec();
    t.shutdown().unwrap();
    let recs = records(&state, &key);
    let ext: Vec<_> = recs
        .iter()
        .filter(|r| r.kind() == DecisionKind::DeviceAppraisal)
        .filter(|r| r.subject() == "accel-0900" || r.subject() == "accel-0901")
        .map(|r| (r.subject().to_string(), r.outcome()))
        .collect();
    assert!(ext.contains(&("accel-0900".into(), Outcome::Allow)));
    assert!(ext.contains(&("accel-0901".into(), Outcome::Deny)));
}

#[test]
fn an_unreachable_external_device_is_quarantined_at_the_transport() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let identity =
        DeviceIdentity::generate(AsymAlg::EcdsaP384, &IdentityOptions::default()).unwrap();
    std::fs::write(dir.path().join("ca.der"), identity.ca_der()).unwrap();
    let desc = PodDescription::from_toml(
        &format!(
            "[sim]\naccelerators = 1\n[[device]]\nid = 5\nurl = \"tcp://127.0.0.1:{port}\"\n\
             vendor = \"V\"\nmodel = \"M\"\nfirmware = \"1\"\ntrust_anchor = \"ca.der\"\n"
        ),
        dir.path(),
    )
    .unwrap();
    let spec = desc.sim_spec().unwrap();
    let pod = ualink_sim::SimPod::new(&spec).unwrap();
    let mut t = tsm_on(pod, &spec, &dir.path().join("state"));
    t.add_external_device(&desc.devices[0]).unwrap();
    let r = t.bring_up().unwrap();
    assert_eq!(r.attested, vec![1]);
    assert_eq!(r.quarantined, vec![(5, "transport".to_string())]);
}
