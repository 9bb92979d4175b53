//! [`SoftDevice`]: a complete software device for the binary, the tests and the simulator.

use alloc::vec::Vec;

use super::{Channel, Device, VendorProtocol};
use crate::algo::{HashAlg, SpdmVersion};
use crate::crypto::{self, Rng, SigningKey};
use crate::error::{Error, Result};
use crate::identity::DeviceIdentity;
use crate::keyprog::{AccelId, KeyProgResponder, MemoryKeySink};
use crate::msg::{CapabilityFlags, DmtfValueType, MeasurementBlock};
use crate::negotiation::{self, AlgorithmPolicy};
use crate::tdisp::msg::{
    DeviceCapabilities, InterfaceId, InterfaceReport, LockFlags, LockInterfaceParams,
};
use crate::tdisp::responder::{DeviceEvent, TdispDevice, TdispResponder};
use crate::tdisp::{TdiState, TdispError};

/// The FUNCTION_ID of the one TDI a [`SoftDevice`] hosts.
pub const SOFT_TDI: u32 = 0x0001;

/// One stored measurement: the raw value; digest-type values are hashed on request.
#[derive(Debug, Clone)]
struct StoredMeasurement {
    index: u8,
    kind: u8,
    raw: bool,
    value: Vec<u8>,
}

/// The TDISP side of the soft device: one TDI, whose link keys count as live once any key
/// pair is enabled, and as belonging to the session that last programmed one.
#[derive(Debug)]
pub struct SoftTdi {
    keys_live: bool,
    key_session: Option<u32>,
}

impl TdispDevice for SoftTdi {
    fn interfaces(&self) -> Vec<InterfaceId> {
        InterfaceId::new(SOFT_TDI)
            .map(|i| alloc::vec![i])
            .unwrap_or_default()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        DeviceCapabilities {
            lock_flags_supported: LockFlags::from_bits(0x1F).unwrap_or_default(),
            ..Default::default()
        }
    }

    fn keys_live(&self, _id: InterfaceId) -> bool {
        self.keys_live
    }

    fn keys_live_in_session(&self, _id: InterfaceId, session_id: u32) -> bool {
        self.keys_live && self.key_session == Some(session_id)
    }

    fn interface_report(
        &self,
        _id: InterfaceId,
        _lock: &LockInterfaceParams,
    ) -> core::result::Result<Vec<u8>, TdispError> {
        InterfaceReport::default()
            .encode()
            .map_err(|_| TdispError::Unspecified)
    }
}

/// A software SPDM device: one identity in slot 0, sample measurements, one TDI
/// ([`SOFT_TDI`]) behind a [`TdispResponder`], and an in-memory UALinkSec key sink behind a
/// [`KeyProgResponder`] that accepts keys only inside a secured session.
pub struct SoftDevice {
    identity: DeviceIdentity,
    key: SigningKey,
    versions: Vec<SpdmVersion>,
    algorithms: AlgorithmPolicy,
    flags: u32,
    measurements: Vec<StoredMeasurement>,
    tdisp: TdispResponder<SoftTdi, ring::rand::SystemRandom>,
    keys: KeyProgResponder<MemoryKeySink>,
    rng: Rng,
}

impl core::fmt::Debug for SoftDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftDevice")
            .field("asym", &self.identity.asym())
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

impl SoftDevice {
    /// The default capability flags: CERT, CHAL, MEAS (signed), ENCRYPT, MAC, KEY_EX, HBEAT,
    /// KEY_UPD, HANDSHAKE_IN_THE_CLEAR.
    pub const DEFAULT_FLAGS: u32 = CapabilityFlags::CERT_CAP.0
        | CapabilityFlags::CHAL_CAP.0
        | CapabilityFlags::MEAS_CAP_SIG.0
        | CapabilityFlags::ENCRYPT_CAP.0
        | CapabilityFlags::MAC_CAP.0
        | CapabilityFlags::KEY_EX_CAP.0
        | CapabilityFlags::HBEAT_CAP.0
        | CapabilityFlags::KEY_UPD_CAP.0
        | CapabilityFlags::HANDSHAKE_IN_THE_CLEAR_CAP.0;

    /// A device presenting `identity` (its chain in slot 0, its key signing), speaking 1.2
    /// and 1.3 with the identity's suite, accelerator ID `accel` for link keys.
    pub fn new(identity: DeviceIdentity, accel: u16) -> Result<Self> {
        let rng = Rng::new();
        let key = SigningKey::from_pkcs8(identity.asym(), identity.key_pkcs8(), &rng)?;
        let algorithms = AlgorithmPolicy::suite(identity.asym());
        let local = AccelId::new(accel)?;
        let measurements = alloc::vec![
            StoredMeasurement {
                index: 1,
                kind: DmtfValueType::IMMUTABLE_ROM,
                raw: false,
                value: b"ualink soft device boot ROM".to_vec()
            },
            StoredMeasurement {
                index: 2,
                kind: DmtfValueType::MUTABLE_FIRMWARE,
                raw: false,
                value: b"ualink soft device firmware 1.0".to_vec()
            },
            StoredMeasurement {
                index: 3,
                kind: DmtfValueType::HARDWARE_CONFIG,
                raw: false,
                value: b"ports=4 lanes=8".to_vec()
            },
            StoredMeasurement {
                index: 4,
                kind: DmtfValueType::FIRMWARE_CONFIG,
                raw: false,
                value: b"ualinksec=on".to_vec()
            },
            StoredMeasurement {
                index: 5,
                kind: DmtfValueType::VERSION,
                raw: true,
                value: b"1.0.0".to_vec()
            },
        ];
        Ok(Self {
            identity,
            key,
            versions: negotiation::OUR_VERSIONS.to_vec(),
            algorithms,
            flags: Self::DEFAULT_FLAGS,
            measurements,
            tdisp: TdispResponder::new(
                SoftTdi {
                    keys_live: false,
                    key_session: None,
                },
                ring::rand::SystemRandom::new(),
            ),
            keys: KeyProgResponder::new(MemoryKeySink::new(3, local, 1024)),
            rng,
        })
    }

    /// Restricts the versions the device offers.
    pub fn with_versions(mut self, versions: &[SpdmVersion]) -> Self {
        self.versions = versions.to_vec();
        self
    }

    /// Replaces the capability flags (e.g. to drop HANDSHAKE_IN_THE_CLEAR).
    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// The identity.
    pub fn identity(&self) -> &DeviceIdentity {
        &self.identity
    }

    /// The TDISP responder (state of the TDI, live nonce).
    pub fn tdisp(&self) -> &TdispResponder<SoftTdi, ring::rand::SystemRandom> {
        &self.tdisp
    }

    /// The key sink.
    pub fn key_sink(&self) -> &MemoryKeySink {
        self.keys.sink()
    }

    /// Changes measurement `index` (e.g. a firmware update or configuration write). A change
    /// to a configuration measurement while the TDI is locked or running moves it to ERROR.
    pub fn set_measurement(&mut self, index: u8, value: &[u8]) -> Result<()> {
        let m = self
            .measurements
            .iter_mut()
            .find(|m| m.index == index)
            .ok_or(Error::ApiMisuse("no such measurement index"))?;
        m.value = value.to_vec();
        if let Ok(id) = InterfaceId::new(SOFT_TDI) {
            if matches!(
                self.tdisp.state(id),
                Some(TdiState::ConfigLocked | TdiState::Run)
            ) {
                self.tdisp.notify(id, DeviceEvent::ConfigWritten)?;
            }
        }
        Ok(())
    }
}

impl Device for SoftDevice {
    fn versions(&self) -> &[SpdmVersion] {
        &self.versions
    }

    fn capability_flags(&self) -> u32 {
        self.flags
    }

    fn algorithms(&self) -> &AlgorithmPolicy {
        &self.algorithms
    }

    fn provisioned_slots(&self) -> u8 {
        0x01
    }

    fn cert_chain(&self, slot: u8, hash: HashAlg) -> Option<Vec<u8>> {
        if slot != 0 {
            return None;
        }
        self.identity.spdm_cert_chain(hash).ok()
    }

    fn sign(
        &self,
        slot: u8,
        version: SpdmVersion,
        context: &str,
        transcript_hash: &[u8],
    ) -> Result<Vec<u8>> {
        if slot != 0 {
            return Err(Error::ApiMisuse("no key in this slot"));
        }
        crypto::sign(&self.key, &self.rng, version, context, transcript_hash)
    }

    fn measurements(&self, meas_hash: HashAlg) -> Result<Vec<MeasurementBlock>> {
        Ok(self
            .measurements
            .iter()
            .map(|m| MeasurementBlock {
                index: m.index,
                value_type: DmtfValueType(
                    m.kind
                        | if m.raw {
                            DmtfValueType::RAW_BIT_STREAM
                        } else {
                            0
                        },
                ),
                value: if m.raw {
                    m.value.clone()
                } else {
                    crypto::hash(meas_hash, &m.value).as_bytes().to_vec()
                },
            })
            .collect())
    }

    fn vendor_request_in_place(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &mut [u8],
    ) -> Option<Result<Vec<u8>>> {
        let session = match channel {
            Channel::Secured(sid) => Some(sid),
            Channel::Clear => None,
        };
        Some(match protocol {
            VendorProtocol::Tdisp => Ok(self.tdisp.respond_in_session(payload, session)),
            VendorProtocol::KeyProgramming => {
                // Zeroes `payload` in every case: no plaintext key copy is left here.
                let r = self
                    .keys
                    .respond_in_session(payload, session)
                    .map_err(Error::from);
                let was_live = self.tdisp.device().keys_live;
                let live = self.keys.sink().any_live();
                let tdi = self.tdisp.device_mut();
                tdi.keys_live = live;
                if r.is_ok() && live {
                    tdi.key_session = session;
                }
                if was_live && !live {
                    tdi.key_session = None;
                    // The TDI's link keys are gone: a locked or running TDI goes to ERROR
                    // (an unlocked one stays as it is). KeysRevoked is legal in every state
                    // and SOFT_TDI is always hosted, so `notify` cannot fail here; the key
                    // operation's acknowledgement is sent either way, since it happened.
                    if let Ok(id) = InterfaceId::new(SOFT_TDI) {
                        let _ = self.tdisp.notify(id, DeviceEvent::KeysRevoked);
                    }
                }
                r
            }
        })
    }

    fn vendor_request(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>>> {
        let mut buf = zeroize::Zeroizing::new(payload.to_vec());
        self.vendor_request_in_place(protocol, channel, &mut buf)
    }

    fn rng(&self) -> &Rng {
        &self.rng
    }
}
