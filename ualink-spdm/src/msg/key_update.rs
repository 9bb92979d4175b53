//! KEY_UPDATE / KEY_UPDATE_ACK (DSP0274 §10.15).
//!
//! ```text
//! KEY_UPDATE:     SPDMVersion | E9 | Param1 = KeyOperation (1 UpdateKey, 2 UpdateAllKeys, 3 VerifyNewKey)
//!                 | Param2 = Tag
//! KEY_UPDATE_ACK: SPDMVersion | 69 | Param1 = KeyOperation (echo) | Param2 = Tag (echo)
//! ```

use alloc::vec::Vec;

use super::header::RequestResponseCode;
use crate::algo::SpdmVersion;
use crate::codec::Reader;
use crate::error::{Error, Malformed};

/// KEY_UPDATE KeyOperation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyUpdateOp {
    /// Update the requester's direction key.
    UpdateKey,
    /// Update both directions' keys.
    UpdateAllKeys,
    /// Confirm the new keys are in use.
    VerifyNewKey,
}

impl KeyUpdateOp {
    /// The wire byte.
    pub const fn byte(self) -> u8 {
        match self {
            Self::UpdateKey => 1,
            Self::UpdateAllKeys => 2,
            Self::VerifyNewKey => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, Malformed> {
        match b {
            1 => Ok(Self::UpdateKey),
            2 => Ok(Self::UpdateAllKeys),
            3 => Ok(Self::VerifyNewKey),
            _ => Err(Malformed::UnknownValue {
                what: "KEY_UPDATE KeyOperation",
                value: u32::from(b),
            }),
        }
    }
}

macro_rules! key_update_msg {
    ($(#[$doc:meta])* $name:ident, $code:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Header version.
            pub version: SpdmVersion,
            /// KeyOperation.
            pub op: KeyUpdateOp,
            /// Tag (echoed in the ACK).
            pub tag: u8,
        }

        impl $name {
            /// Parses exactly one message.
            pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
                let mut r = Reader::new(bytes);
                let m = Self::read(&mut r)?;
                r.finish($label)?;
                Ok(m)
            }

            pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, Error> {
                let (version, p1, p2) = super::begin(r, RequestResponseCode::$code, None)?;
                Ok(Self {
                    version,
                    op: KeyUpdateOp::from_byte(p1)?,
                    tag: p2,
                })
            }

            /// Encodes the message.
            pub fn encode(&self) -> Result<Vec<u8>, Error> {
                Ok(super::start(self.version, RequestResponseCode::$code, self.op.byte(), self.tag)
                    .into_vec())
            }
        }
    };
}

key_update_msg!(
    /// KEY_UPDATE (in session only).
    KeyUpdate,
    KEY_UPDATE,
    "KEY_UPDATE"
);
key_update_msg!(
    /// KEY_UPDATE_ACK.
    KeyUpdateAck,
    KEY_UPDATE_ACK,
    "KEY_UPDATE_ACK"
);
