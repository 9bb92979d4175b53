//! spdm-emu socket framing over real TCP on 127.0.0.1: our client against our server, and
//! each against a raw socket that checks the exact bytes the reference peers exchange.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use ualink_spdm::transport::doe::{DiscoveryResponse, DISCOVERY_TABLE};
use ualink_spdm::transport::emu_socket::{
    Command, EmuClient, EmuConfig, EmuError, EmuServer, ServerEvent, CLIENT_HELLO,
};
use ualink_spdm::transport::{MessageKind, Transport};

const GET_VERSION: [u8; 4] = [0x10, 0x84, 0x00, 0x00];
const VERSION: [u8; 8] = [0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x13];

/// Serves one connection: answers every SPDM message with VERSION and echoes secured ones;
/// returns the events seen.
fn serve_one(server: EmuServer) -> thread::JoinHandle<Vec<ServerEvent>> {
    thread::spawn(move || {
        let mut conn = server.accept().unwrap();
        let mut seen = Vec::new();
        loop {
            let ev = conn.next_event().unwrap();
            seen.push(ev.clone());
            match ev {
                ServerEvent::Message(MessageKind::Spdm, _) => {
                    conn.send_response(MessageKind::Spdm, &VERSION).unwrap()
                }
                ServerEvent::Message(MessageKind::Secured, m) => {
                    conn.send_response(MessageKind::Secured, &m).unwrap()
                }
                ServerEvent::OobEncapKeyUpdate => {
                    conn.acknowledge(Command::OobEncapKeyUpdate).unwrap()
                }
                ServerEvent::Continue => {}
                ServerEvent::Shutdown => return seen,
            }
        }
    })
}

#[test]
fn client_and_server_talk_over_every_transport() {
    for transport in [Transport::Mctp, Transport::PciDoe, Transport::None] {
        let config = EmuConfig::new(transport);
        let server = EmuServer::bind("127.0.0.1:0", config).unwrap();
        let addr = server.local_addr().unwrap();
        let handle = serve_one(server);

        let mut client = EmuClient::connect(addr, config).unwrap();
        if transport == Transport::PciDoe {
            let entries = client.doe_discovery().unwrap();
            assert_eq!(entries, DISCOVERY_TABLE.to_vec());
        } else {
            assert!(client.doe_discovery().is_err());
        }
        let (kind, rsp) = client.exchange(MessageKind::Spdm, &GET_VERSION).unwrap();
        assert_eq!(kind, MessageKind::Spdm);
        assert_eq!(rsp, VERSION);
        let secured = [0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x03, 0x00, 1, 2, 3];
        if transport == Transport::None {
            assert!(matches!(
                client.send(MessageKind::Secured, &secured),
                Err(EmuError::Transport(_))
            ));
        } else {
            let (kind, back) = client.exchange(MessageKind::Secured, &secured).unwrap();
            assert_eq!(kind, MessageKind::Secured);
            // DOE pads to a DWORD boundary; the padding is zeros.
            assert_eq!(&back[..secured.len()], &secured);
            assert!(back[secured.len()..].iter().all(|b| *b == 0));
        }
        client.shutdown().unwrap();
        let seen = handle.join().unwrap();
        assert_eq!(
            seen.first(),
            Some(&ServerEvent::Message(
                MessageKind::Spdm,
                GET_VERSION.to_vec()
            ))
        );
        assert_eq!(seen.last(), Some(&ServerEvent::Shutdown));
    }
}

#[test]
fn client_sends_reference_hello_and_get_version_bytes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 26];
        s.read_exact(&mut hello).unwrap();
        let mut reply = hex::decode("0000dead000000010000000e").unwrap();
        reply.extend_from_slice(b"Server Hello!\0");
        s.write_all(&reply).unwrap();
        let mut gv = [0u8; 17];
        s.read_exact(&mut gv).unwrap();
        (hello, gv)
    });
    let mut client = EmuClient::connect(addr, EmuConfig::new(Transport::Mctp)).unwrap();
    client.send(MessageKind::Spdm, &GET_VERSION).unwrap();
    let (hello, gv) = peer.join().unwrap();
    // Seen between DMTF's requester and responder over MCTP (PROTOCOL.md).
    let mut want = hex::decode("0000dead000000010000000e").unwrap();
    want.extend_from_slice(CLIENT_HELLO);
    assert_eq!(hello.to_vec(), want);
    assert_eq!(
        hex::encode(gv),
        "00000001000000010000000505108400 00".replace(' ', "")
    );
}

#[test]
fn server_answers_reference_hello_and_doe_discovery_bytes() {
    let server = EmuServer::bind("127.0.0.1:0", EmuConfig::new(Transport::PciDoe)).unwrap();
    let addr = server.local_addr().unwrap();
    let handle = serve_one(server);
    let mut s = TcpStream::connect(addr).unwrap();
    let mut hello = hex::decode("0000dead000000020000000e").unwrap();
    hello.extend_from_slice(b"Client Hello!\0");
    s.write_all(&hello).unwrap();
    let mut reply = [0u8; 26];
    s.read_exact(&mut reply).unwrap();
    let mut want = hex::decode("0000dead000000020000000e").unwrap();
    want.extend_from_slice(b"Server Hello!\0");
    assert_eq!(reply.to_vec(), want);
    // Discovery index 0, 1, 2 as the reference responder answers them.
    for (index, answer) in [(0u8, "01000001"), (1, "01000102"), (2, "01000200")] {
        let mut req = hex::decode("00000001000000020000000c").unwrap();
        req.extend_from_slice(&hex::decode("0100000003000000").unwrap());
        req.extend_from_slice(&[index, 0, 0, 0]);
        s.write_all(&req).unwrap();
        let mut rsp = [0u8; 24];
        s.read_exact(&mut rsp).unwrap();
        assert_eq!(
            hex::encode(rsp),
            format!("00000001000000020000000c0100000003000000{answer}")
        );
        let entry = DiscoveryResponse::parse(&rsp[20..]).unwrap();
        assert_eq!(entry, DISCOVERY_TABLE[usize::from(index)]);
    }
    // GET_VERSION in DOE: `01 00 01 00 03 00 00 00 10 84 00 00`.
    s.write_all(&hex::decode("00000001000000020000000c010001000300000010840000").unwrap())
        .unwrap();
    let mut hdr = [0u8; 12];
    s.read_exact(&mut hdr).unwrap();
    assert_eq!(&hdr[..8], &hex::decode("0000000100000002").unwrap()[..]);
    let mut rsp =
        vec![0u8; usize::try_from(u32::from_be_bytes(hdr[8..].try_into().unwrap())).unwrap()];
    s.read_exact(&mut rsp).unwrap();
    assert_eq!(&rsp[..8], &hex::decode("0100010004000000").unwrap()[..]);
    assert_eq!(&rsp[8..], &VERSION);
    // SHUTDOWN is echoed.
    s.write_all(&hex::decode("0000fffe0000000200000000").unwrap())
        .unwrap();
    let mut echo = [0u8; 12];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(hex::encode(echo), "0000fffe0000000200000000");
    let seen = handle.join().unwrap();
    assert_eq!(seen.len(), 2);
}

#[test]
fn server_refuses_bad_frames() {
    // Wrong transport type, oversize frame, bad hello, unknown command: each is an error.
    type Check = fn(&EmuError) -> bool;
    let cases: [(&str, Check); 4] = [
        ("00000001000000020000000405108400", |e| {
            matches!(
                e,
                EmuError::TransportMismatch {
                    expected: 1,
                    got: 2
                }
            )
        }),
        ("000000010000000100100000", |e| {
            matches!(
                e,
                EmuError::FrameTooLarge {
                    size: 0x0010_0000,
                    max: 64
                }
            )
        }),
        (
            "0000dead000000010000000e436c69656e742048656c6c782100",
            |e| matches!(e, EmuError::BadHello),
        ),
        ("0000beef0000000100000000", |e| {
            matches!(e, EmuError::UnknownCommand(0xbeef))
        }),
    ];
    for (bytes, check) in cases {
        let mut config = EmuConfig::new(Transport::Mctp);
        config.max_frame_len = 64;
        let server = EmuServer::bind("127.0.0.1:0", config).unwrap();
        let addr = server.local_addr().unwrap();
        let h = thread::spawn(move || server.accept().unwrap().next_event());
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&hex::decode(bytes).unwrap()).unwrap();
        let err = h.join().unwrap().unwrap_err();
        assert!(check(&err), "{bytes}: {err:?}");
    }
}

#[test]
fn client_refuses_a_wrong_server_hello_and_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 26];
        s.read_exact(&mut hello).unwrap();
        let mut reply = hex::decode("0000dead000000010000000e").unwrap();
        reply.extend_from_slice(b"Server Hellx!\0");
        s.write_all(&reply).unwrap();
        // Second connection: accept and stay silent.
        let (s2, _) = listener.accept().unwrap();
        let mut buf = [0u8; 26];
        let _ = (&s2).read(&mut buf);
        thread::sleep(std::time::Duration::from_millis(300));
        drop(s2);
    });
    assert!(matches!(
        EmuClient::connect(addr, EmuConfig::new(Transport::Mctp)),
        Err(EmuError::BadHello)
    ));
    let mut config = EmuConfig::new(Transport::Mctp);
    config.read_timeout = Some(std::time::Duration::from_millis(50));
    match EmuClient::connect(addr, config) {
        Err(EmuError::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e:?}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    peer.join().unwrap();
}

#[test]
fn client_refuses_discovery_in_place_of_a_response() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 26];
        s.read_exact(&mut hello).unwrap();
        let mut reply = hex::decode("0000dead000000020000000e").unwrap();
        reply.extend_from_slice(b"Server Hello!\0");
        s.write_all(&reply).unwrap();
        let mut gv = [0u8; 24];
        s.read_exact(&mut gv).unwrap();
        s.write_all(&hex::decode("00000001000000020000000c010000000300000001000001").unwrap())
            .unwrap();
    });
    let mut client = EmuClient::connect(addr, EmuConfig::new(Transport::PciDoe)).unwrap();
    assert!(matches!(
        client.exchange(MessageKind::Spdm, &GET_VERSION),
        Err(EmuError::UnexpectedDiscovery)
    ));
    peer.join().unwrap();
}
