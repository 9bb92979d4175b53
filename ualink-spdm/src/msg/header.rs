//! The 4-byte SPDM message header and the request/response code space.
//!
//! ```text
//! offset 0  SPDMVersion          u8   0x10 for GET_VERSION/VERSION, else the negotiated version
//! offset 1  RequestResponseCode  u8   bit 7 set = request
//! offset 2  Param1               u8
//! offset 3  Param2               u8
//! ```

use core::fmt;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Malformed};

/// An SPDM RequestResponseCode. A newtype (not an enum) so that any byte can be carried and
/// printed; [`RequestResponseCode::name`] says whether the code is one this crate knows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestResponseCode(pub u8);

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $val:expr;)*) => {
        impl RequestResponseCode {
            $($(#[$doc])* pub const $name: Self = Self($val);)*

            /// The spec name of a known code, `None` for codes this crate does not implement.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    /// DIGESTS (response).
    DIGESTS = 0x01;
    /// CERTIFICATE (response).
    CERTIFICATE = 0x02;
    /// CHALLENGE_AUTH (response).
    CHALLENGE_AUTH = 0x03;
    /// VERSION (response).
    VERSION = 0x04;
    /// CHUNK_SEND_ACK (response).
    CHUNK_SEND_ACK = 0x05;
    /// CHUNK_RESPONSE (response).
    CHUNK_RESPONSE = 0x06;
    /// MEASUREMENTS (response).
    MEASUREMENTS = 0x60;
    /// CAPABILITIES (response).
    CAPABILITIES = 0x61;
    /// ALGORITHMS (response).
    ALGORITHMS = 0x63;
    /// KEY_EXCHANGE_RSP (response).
    KEY_EXCHANGE_RSP = 0x64;
    /// FINISH_RSP (response).
    FINISH_RSP = 0x65;
    /// PSK_EXCHANGE_RSP (response).
    PSK_EXCHANGE_RSP = 0x66;
    /// PSK_FINISH_RSP (response).
    PSK_FINISH_RSP = 0x67;
    /// HEARTBEAT_ACK (response).
    HEARTBEAT_ACK = 0x68;
    /// KEY_UPDATE_ACK (response).
    KEY_UPDATE_ACK = 0x69;
    /// ENCAPSULATED_REQUEST (response).
    ENCAPSULATED_REQUEST = 0x6A;
    /// ENCAPSULATED_RESPONSE_ACK (response).
    ENCAPSULATED_RESPONSE_ACK = 0x6B;
    /// END_SESSION_ACK (response).
    END_SESSION_ACK = 0x6C;
    /// VENDOR_DEFINED_RESPONSE (response).
    VENDOR_DEFINED_RESPONSE = 0x7E;
    /// ERROR (response).
    ERROR = 0x7F;
    /// GET_DIGESTS (request).
    GET_DIGESTS = 0x81;
    /// GET_CERTIFICATE (request).
    GET_CERTIFICATE = 0x82;
    /// CHALLENGE (request).
    CHALLENGE = 0x83;
    /// GET_VERSION (request).
    GET_VERSION = 0x84;
    /// CHUNK_SEND (request).
    CHUNK_SEND = 0x85;
    /// CHUNK_GET (request).
    CHUNK_GET = 0x86;
    /// GET_MEASUREMENTS (request).
    GET_MEASUREMENTS = 0xE0;
    /// GET_CAPABILITIES (request).
    GET_CAPABILITIES = 0xE1;
    /// NEGOTIATE_ALGORITHMS (request).
    NEGOTIATE_ALGORITHMS = 0xE3;
    /// KEY_EXCHANGE (request).
    KEY_EXCHANGE = 0xE4;
    /// FINISH (request).
    FINISH = 0xE5;
    /// PSK_EXCHANGE (request).
    PSK_EXCHANGE = 0xE6;
    /// PSK_FINISH (request).
    PSK_FINISH = 0xE7;
    /// HEARTBEAT (request).
    HEARTBEAT = 0xE8;
    /// KEY_UPDATE (request).
    KEY_UPDATE = 0xE9;
    /// GET_ENCAPSULATED_REQUEST (request).
    GET_ENCAPSULATED_REQUEST = 0xEA;
    /// DELIVER_ENCAPSULATED_RESPONSE (request).
    DELIVER_ENCAPSULATED_RESPONSE = 0xEB;
    /// END_SESSION (request).
    END_SESSION = 0xEC;
    /// VENDOR_DEFINED_REQUEST (request).
    VENDOR_DEFINED_REQUEST = 0xFE;
    /// RESPOND_IF_READY (request).
    RESPOND_IF_READY = 0xFF;
}

impl RequestResponseCode {
    /// True for request codes (bit 7 set), false for responses.
    pub const fn is_request(self) -> bool {
        self.0 & 0x80 != 0
    }
}

impl fmt::Debug for RequestResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({:#04x})", self.0),
            None => write!(f, "UNKNOWN({:#04x})", self.0),
        }
    }
}

/// The version byte of GET_VERSION and VERSION (always SPDM 1.0).
pub const VERSION_10: u8 = 0x10;

/// A decoded SPDM header. Carries raw bytes: checking them is the message parser's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpdmHeader {
    /// SPDMVersion byte (0x10..0x13 on the wire).
    pub version: u8,
    /// RequestResponseCode.
    pub code: RequestResponseCode,
    /// Param1.
    pub param1: u8,
    /// Param2.
    pub param2: u8,
}

impl SpdmHeader {
    /// Length of the header on the wire.
    pub const LEN: usize = 4;

    /// Reads the header from the front of `r`.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, Malformed> {
        Ok(Self {
            version: r.u8("SPDM header SPDMVersion")?,
            code: RequestResponseCode(r.u8("SPDM header RequestResponseCode")?),
            param1: r.u8("SPDM header Param1")?,
            param2: r.u8("SPDM header Param2")?,
        })
    }

    /// Decodes the header at the front of a message without consuming anything else; this is
    /// how an engine learns which message it holds (and its version) before full parsing.
    pub fn peek(bytes: &[u8]) -> Result<Self, Error> {
        Ok(Self::read(&mut Reader::new(bytes))?)
    }

    /// Appends the header.
    pub fn write(&self, w: &mut Writer) {
        w.u8(self.version)
            .u8(self.code.0)
            .u8(self.param1)
            .u8(self.param2);
    }
}
