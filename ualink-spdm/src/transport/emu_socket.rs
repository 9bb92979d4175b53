//! DMTF spdm-emu TCP socket framing (what `spdm_requester_emu`/`spdm_responder_emu` speak,
//! port 2323 by default), client and server side.
//!
//! Every frame, both directions (all fields big-endian):
//!
//! ```text
//! offset  size  field
//! 0       4     Command        NORMAL 0x0001, OOB_ENCAP_KEY_UPDATE 0x8001, CONTINUE 0xFFFD,
//!                              SHUTDOWN 0xFFFE, TEST 0xDEAD
//! 4       4     TransportType  NONE 0, MCTP 1, PCI_DOE 2 (TCP 3 is not supported here)
//! 8       4     Size           payload length in bytes
//! 12      Size  payload        for NORMAL: the transport payload (see [`Transport`])
//! ```
//!
//! Session: unless the transport is NONE, the client first sends TEST with the 14 bytes
//! `"Client Hello!\0"` and the server answers TEST with `"Server Hello!\0"`. With PCI DOE the
//! client may walk DOE discovery (the server side answers it itself). The client ends with
//! SHUTDOWN (size 0), which the server echoes.
//!
//! Every frame is built in one buffer and written with one `write_all`, on a socket with
//! TCP_NODELAY; frames larger than [`EmuConfig::max_frame_len`] are refused before any
//! allocation; the TransportType of every received frame must be the configured one.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;
use std::vec::Vec;

use super::doe::{self, DiscoveryResponse};
use super::{MessageKind, Received, Transport, TransportError};

/// spdm-emu's default TCP port.
pub const DEFAULT_PORT: u16 = 2323;
/// The client's TEST payload.
pub const CLIENT_HELLO: &[u8; 14] = b"Client Hello!\0";
/// The server's TEST payload.
pub const SERVER_HELLO: &[u8; 14] = b"Server Hello!\0";
/// Size of the frame header.
pub const FRAME_HEADER_LEN: usize = 12;
/// Default bound on a frame's payload: the largest PCI DOE object (1 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;
/// spdm-emu TransportType TCP (recognised so it can be refused by name).
pub const TRANSPORT_TYPE_TCP: u32 = 3;

/// A socket command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// 0x0001: carries a transport payload.
    Normal,
    /// 0x8001: out-of-band request to start an encapsulated KEY_UPDATE.
    OobEncapKeyUpdate,
    /// 0xFFFD: the client will start over; the server keeps serving.
    Continue,
    /// 0xFFFE: end of the connection (echoed by the server).
    Shutdown,
    /// 0xDEAD: hello exchange.
    Test,
}

impl Command {
    /// The wire value.
    pub const fn code(self) -> u32 {
        match self {
            Self::Normal => 0x0001,
            Self::OobEncapKeyUpdate => 0x8001,
            Self::Continue => 0xFFFD,
            Self::Shutdown => 0xFFFE,
            Self::Test => 0xDEAD,
        }
    }

    /// Parses a wire value.
    pub const fn from_code(code: u32) -> Option<Self> {
        match code {
            0x0001 => Some(Self::Normal),
            0x8001 => Some(Self::OobEncapKeyUpdate),
            0xFFFD => Some(Self::Continue),
            0xFFFE => Some(Self::Shutdown),
            0xDEAD => Some(Self::Test),
            _ => None,
        }
    }
}

/// Why the socket conversation failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EmuError {
    /// The socket failed (including timeouts and the peer closing mid-frame).
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// A Command value that is not defined.
    #[error("unknown socket command {0:#x}")]
    UnknownCommand(u32),
    /// A frame for another TransportType than the configured one.
    #[error("frame for transport type {got}, configured {expected}")]
    TransportMismatch {
        /// Configured TransportType.
        expected: u32,
        /// TransportType received.
        got: u32,
    },
    /// A frame larger than the configured bound.
    #[error("frame of {size} bytes exceeds the {max}-byte bound")]
    FrameTooLarge {
        /// Size field received (or to be sent).
        size: u64,
        /// Configured bound.
        max: usize,
    },
    /// The hello exchange did not carry the expected bytes.
    #[error("bad TEST hello from the peer")]
    BadHello,
    /// A command that is not allowed at this point.
    #[error("unexpected socket command {0:?}")]
    UnexpectedCommand(Command),
    /// The peer closed the connection between frames.
    #[error("peer closed the connection")]
    Closed,
    /// The payload's transport encoding is wrong.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// A DOE discovery object where an SPDM message was expected (or the reverse).
    #[error("unexpected DOE discovery object")]
    UnexpectedDiscovery,
    /// DOE discovery did not end within 256 entries.
    #[error("DOE discovery does not terminate")]
    DiscoveryLoop,
}

/// Connection settings shared by client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmuConfig {
    /// The transport binding (also the TransportType of every frame).
    pub transport: Transport,
    /// Largest payload accepted or sent.
    pub max_frame_len: usize,
    /// Read timeout (`None` blocks).
    pub read_timeout: Option<Duration>,
    /// Write timeout (`None` blocks).
    pub write_timeout: Option<Duration>,
}

impl EmuConfig {
    /// Defaults for `transport`: 1 MiB frames, 30 s timeouts.
    pub const fn new(transport: Transport) -> Self {
        Self {
            transport,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command.
    pub command: Command,
    /// The TransportType field.
    pub transport_type: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Encodes one frame into a single buffer.
pub fn encode_frame(
    command: Command,
    transport_type: u32,
    payload: &[u8],
    max: usize,
) -> Result<Vec<u8>, EmuError> {
    let too_large = EmuError::FrameTooLarge {
        size: u64::try_from(payload.len()).unwrap_or(u64::MAX),
        max,
    };
    if payload.len() > max {
        return Err(too_large);
    }
    let size = u32::try_from(payload.len()).map_err(|_| too_large)?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN.saturating_add(payload.len()));
    out.extend_from_slice(&command.code().to_be_bytes());
    out.extend_from_slice(&transport_type.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Writes one frame with a single `write_all` and flushes.
pub fn write_frame<W: Write>(
    w: &mut W,
    command: Command,
    transport_type: u32,
    payload: &[u8],
    max: usize,
) -> Result<(), EmuError> {
    let buf = encode_frame(command, transport_type, payload, max)?;
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame; the Size is checked against `max` before the payload is allocated.
/// A clean end of stream before the first header byte is [`EmuError::Closed`].
pub fn read_frame<R: Read>(r: &mut R, max: usize) -> Result<Frame, EmuError> {
    let mut hdr = [0u8; FRAME_HEADER_LEN];
    let mut got = 0usize;
    while got < hdr.len() {
        let n = match r.read(hdr.get_mut(got..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(if got == 0 {
                EmuError::Closed
            } else {
                io::Error::from(io::ErrorKind::UnexpectedEof).into()
            });
        }
        got = got.saturating_add(n);
    }
    let [c0, c1, c2, c3, t0, t1, t2, t3, s0, s1, s2, s3] = hdr;
    let code = u32::from_be_bytes([c0, c1, c2, c3]);
    let command = Command::from_code(code).ok_or(EmuError::UnknownCommand(code))?;
    let transport_type = u32::from_be_bytes([t0, t1, t2, t3]);
    let size = u32::from_be_bytes([s0, s1, s2, s3]);
    let len = usize::try_from(size)
        .ok()
        .filter(|l| *l <= max)
        .ok_or(EmuError::FrameTooLarge {
            size: u64::from(size),
            max,
        })?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Frame {
        command,
        transport_type,
        payload,
    })
}

/// A connected, configured socket (shared by both sides).
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    config: EmuConfig,
}

impl Conn {
    fn new(stream: TcpStream, config: EmuConfig) -> Result<Self, EmuError> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(config.read_timeout)?;
        stream.set_write_timeout(config.write_timeout)?;
        Ok(Self { stream, config })
    }

    fn write(&mut self, command: Command, payload: &[u8]) -> Result<(), EmuError> {
        write_frame(
            &mut self.stream,
            command,
            self.config.transport.emu_code(),
            payload,
            self.config.max_frame_len,
        )
    }

    fn read(&mut self) -> Result<Frame, EmuError> {
        let f = read_frame(&mut self.stream, self.config.max_frame_len)?;
        let expected = self.config.transport.emu_code();
        if f.transport_type != expected {
            return Err(EmuError::TransportMismatch {
                expected,
                got: f.transport_type,
            });
        }
        Ok(f)
    }
}

/// The requester side of an spdm-emu connection.
#[derive(Debug)]
pub struct EmuClient {
    conn: Conn,
}

impl EmuClient {
    /// Connects, configures the socket and, unless the transport is NONE, does the hello.
    pub fn connect<A: ToSocketAddrs>(addr: A, config: EmuConfig) -> Result<Self, EmuError> {
        let stream = TcpStream::connect(addr)?;
        Self::from_stream(stream, config)
    }

    /// Like [`EmuClient::connect`] on an already connected stream.
    pub fn from_stream(stream: TcpStream, config: EmuConfig) -> Result<Self, EmuError> {
        let mut client = Self {
            conn: Conn::new(stream, config)?,
        };
        if config.transport != Transport::None {
            client.conn.write(Command::Test, CLIENT_HELLO)?;
            let f = client.conn.read()?;
            if f.command != Command::Test || f.payload != SERVER_HELLO {
                return Err(EmuError::BadHello);
            }
        }
        Ok(client)
    }

    /// The configuration in use.
    pub fn config(&self) -> &EmuConfig {
        &self.conn.config
    }

    /// Sends one SPDM or secured message (NORMAL frame, transport-encoded).
    pub fn send(&mut self, kind: MessageKind, msg: &[u8]) -> Result<(), EmuError> {
        let payload = self.conn.config.transport.encode(kind, msg)?;
        self.conn.write(Command::Normal, &payload)
    }

    /// Receives one SPDM or secured message. On PCI DOE the message may end in up to 3
    /// padding bytes (see [`doe`]).
    pub fn receive(&mut self) -> Result<(MessageKind, Vec<u8>), EmuError> {
        let f = self.conn.read()?;
        if f.command != Command::Normal {
            return Err(EmuError::UnexpectedCommand(f.command));
        }
        match self.conn.config.transport.decode(&f.payload)? {
            Received::Message(kind, msg) => Ok((kind, msg.to_vec())),
            Received::DoeDiscovery(_) => Err(EmuError::UnexpectedDiscovery),
        }
    }

    /// Sends a message and receives the answer.
    pub fn exchange(
        &mut self,
        kind: MessageKind,
        msg: &[u8],
    ) -> Result<(MessageKind, Vec<u8>), EmuError> {
        self.send(kind, msg)?;
        self.receive()
    }

    /// Walks DOE discovery from index 0 until NextIndex is 0 (PCI DOE only); returns the
    /// entries in order.
    pub fn doe_discovery(&mut self) -> Result<Vec<DiscoveryResponse>, EmuError> {
        if self.conn.config.transport != Transport::PciDoe {
            return Err(EmuError::Transport(TransportError::Malformed(
                crate::error::Malformed::UnknownValue {
                    what: "DOE discovery on a non-DOE transport",
                    value: self.conn.config.transport.emu_code(),
                },
            )));
        }
        let mut out = Vec::new();
        let mut index = 0u8;
        for _ in 0..256 {
            let req = doe::discovery_request(index).map_err(TransportError::from)?;
            self.conn.write(Command::Normal, &req)?;
            let f = self.conn.read()?;
            if f.command != Command::Normal {
                return Err(EmuError::UnexpectedCommand(f.command));
            }
            let Received::DoeDiscovery(p) = Transport::PciDoe.decode(&f.payload)? else {
                return Err(EmuError::UnexpectedDiscovery);
            };
            let entry = DiscoveryResponse::parse(p).map_err(TransportError::from)?;
            out.push(entry);
            if entry.next_index == 0 {
                return Ok(out);
            }
            index = entry.next_index;
        }
        Err(EmuError::DiscoveryLoop)
    }

    /// Sends SHUTDOWN and waits for the echo (a clean close instead of the echo is accepted).
    pub fn shutdown(mut self) -> Result<(), EmuError> {
        self.conn.write(Command::Shutdown, &[])?;
        match self.conn.read() {
            Ok(f) if f.command == Command::Shutdown => Ok(()),
            Ok(f) => Err(EmuError::UnexpectedCommand(f.command)),
            Err(EmuError::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl From<EmuError> for io::Error {
    /// Socket failures stay what they were; protocol failures become `InvalidData`.
    fn from(e: EmuError) -> Self {
        match e {
            EmuError::Io(e) => e,
            EmuError::Closed => io::Error::from(io::ErrorKind::UnexpectedEof),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// The blocking requester driver runs over an spdm-emu connection as is.
impl crate::requester::driver::SpdmIo for EmuClient {
    fn send(&mut self, kind: MessageKind, msg: &[u8]) -> io::Result<()> {
        EmuClient::send(self, kind, msg).map_err(io::Error::from)
    }

    fn receive(&mut self) -> io::Result<(MessageKind, Vec<u8>)> {
        EmuClient::receive(self).map_err(io::Error::from)
    }
}

/// A listening spdm-emu responder socket.
#[derive(Debug)]
pub struct EmuServer {
    listener: TcpListener,
    config: EmuConfig,
}

impl EmuServer {
    /// Binds `addr` (port 0 picks a free port).
    pub fn bind<A: ToSocketAddrs>(addr: A, config: EmuConfig) -> Result<Self, EmuError> {
        Ok(Self {
            listener: TcpListener::bind(addr)?,
            config,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, EmuError> {
        Ok(self.listener.local_addr()?)
    }

    /// Accepts the next connection.
    pub fn accept(&self) -> Result<EmuConnection, EmuError> {
        let (stream, _) = self.listener.accept()?;
        EmuConnection::new(stream, self.config)
    }
}

/// What the client asked for, after the transport housekeeping was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// An SPDM or secured message to answer with [`EmuConnection::send_response`].
    Message(MessageKind, Vec<u8>),
    /// The client sent CONTINUE (already echoed): reset the SPDM state, keep serving.
    Continue,
    /// The client asked for an encapsulated KEY_UPDATE (OOB_ENCAP_KEY_UPDATE); acknowledge
    /// with [`EmuConnection::acknowledge`].
    OobEncapKeyUpdate,
    /// The client sent SHUTDOWN (already echoed): the connection is over.
    Shutdown,
}

/// The responder side of one spdm-emu connection.
#[derive(Debug)]
pub struct EmuConnection {
    conn: Conn,
}

impl EmuConnection {
    /// Configures an accepted stream.
    pub fn new(stream: TcpStream, config: EmuConfig) -> Result<Self, EmuError> {
        Ok(Self {
            conn: Conn::new(stream, config)?,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EmuConfig {
        &self.conn.config
    }

    /// Reads frames until something for the SPDM engine arrives: answers TEST hellos and
    /// DOE discovery itself, echoes CONTINUE and SHUTDOWN.
    pub fn next_event(&mut self) -> Result<ServerEvent, EmuError> {
        loop {
            let f = self.conn.read()?;
            match f.command {
                Command::Test => {
                    if f.payload != CLIENT_HELLO {
                        return Err(EmuError::BadHello);
                    }
                    self.conn.write(Command::Test, SERVER_HELLO)?;
                }
                Command::Shutdown => {
                    self.conn.write(Command::Shutdown, &[])?;
                    return Ok(ServerEvent::Shutdown);
                }
                Command::Continue => {
                    self.conn.write(Command::Continue, &[])?;
                    return Ok(ServerEvent::Continue);
                }
                Command::OobEncapKeyUpdate => return Ok(ServerEvent::OobEncapKeyUpdate),
                Command::Normal => match self.conn.config.transport.decode(&f.payload)? {
                    Received::Message(kind, msg) => {
                        return Ok(ServerEvent::Message(kind, msg.to_vec()))
                    }
                    Received::DoeDiscovery(p) => {
                        let rsp = doe::answer_discovery(p).map_err(TransportError::from)?;
                        self.conn.write(Command::Normal, &rsp)?;
                    }
                },
            }
        }
    }

    /// Sends one SPDM or secured message back.
    pub fn send_response(&mut self, kind: MessageKind, msg: &[u8]) -> Result<(), EmuError> {
        let payload = self.conn.config.transport.encode(kind, msg)?;
        self.conn.write(Command::Normal, &payload)
    }

    /// Sends an empty frame with `command` (e.g. to acknowledge OOB_ENCAP_KEY_UPDATE).
    pub fn acknowledge(&mut self, command: Command) -> Result<(), EmuError> {
        self.conn.write(command, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_frame_kat() {
        // Seen between the reference peers over MCTP (PROTOCOL.md).
        let f = encode_frame(Command::Test, 1, CLIENT_HELLO, 64).unwrap();
        let mut want = hex_bytes("0000dead000000010000000e");
        want.extend_from_slice(b"Client Hello!\0");
        assert_eq!(f, want);
        let gv = encode_frame(Command::Normal, 1, &[0x05, 0x10, 0x84, 0, 0], 64).unwrap();
        assert_eq!(
            gv,
            hex_bytes(
                "00000001000000010000000505108400 00"
                    .replace(' ', "")
                    .as_str()
            )
        );
        let back = read_frame(&mut &gv[..], 64).unwrap();
        assert_eq!(back.command, Command::Normal);
        assert_eq!(back.payload, [0x05, 0x10, 0x84, 0, 0]);
    }

    #[test]
    fn read_frame_bounds_and_errors() {
        let f = encode_frame(Command::Normal, 2, &[0; 16], 64).unwrap();
        assert!(matches!(
            read_frame(&mut &f[..], 15),
            Err(EmuError::FrameTooLarge { size: 16, max: 15 })
        ));
        assert!(matches!(read_frame(&mut &f[..5], 64), Err(EmuError::Io(_))));
        assert!(matches!(
            read_frame(&mut &f[..20], 64),
            Err(EmuError::Io(_))
        ));
        assert!(matches!(
            read_frame(&mut &[][..], 64),
            Err(EmuError::Closed)
        ));
        let mut bad = f.clone();
        bad[3] = 7;
        assert!(matches!(
            read_frame(&mut &bad[..], 64),
            Err(EmuError::UnknownCommand(7))
        ));
        assert!(encode_frame(Command::Normal, 2, &[0; 65], 64).is_err());
        for c in [
            Command::Normal,
            Command::OobEncapKeyUpdate,
            Command::Continue,
            Command::Shutdown,
            Command::Test,
        ] {
            assert_eq!(Command::from_code(c.code()), Some(c));
        }
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
