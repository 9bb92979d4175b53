//! The accelerators' SPDM responders: ualink-spdm's responder engine over a [`SimDevice`].
//!
//! Each accelerator answers SPDM through its mailbox (`FabricOps::spdm_send` /
//! `spdm_receive`, MCTP framing): VERSION .. MEASUREMENTS with its own PKI (vendor root → model
//! CA → device leaf, P-384) and its current measurement blocks (so a tampered firmware shows in
//! the next MEASUREMENTS), a secured session, TDISP for its one TDI, and UALinkSec key
//! programming into the pod's key slots ([`SimKeySink`]: keys are accepted only inside a
//! secured session, RX before TX is enforced by the slots). The protocol is entirely
//! ualink-spdm's; this module supplies the device.
//!
//! Malicious-responder knobs ([`ResponderFault`]) make a device misbehave the ways a verifier
//! must catch: a bad signature, a swapped certificate chain, a version downgrade, a replayed
//! (stale) signed response and malformed responses.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use ualink_spdm::algo::{AsymAlg, HashAlg, SpdmVersion};
use ualink_spdm::cert_chain::encode_spdm_cert_chain;
use ualink_spdm::crypto::{self, Rng, SigningKey};
use ualink_spdm::device::{Channel, Device, SoftDevice, VendorProtocol};
use ualink_spdm::keyprog::{
    self, KeyPair, KeyProgResponder, KeyProgStatus, KeySink, KeyTarget, Slot,
};
use ualink_spdm::msg::{DmtfValueType, MeasurementBlock};
use ualink_spdm::negotiation::{AlgorithmPolicy, OUR_VERSIONS};
use ualink_spdm::responder::{Responder, ResponderConfig};
use ualink_spdm::tdisp::msg::{
    DeviceCapabilities, InterfaceId, InterfaceInfo, InterfaceReport, LockFlags, LockInterfaceParams,
};
use ualink_spdm::tdisp::responder::{DeviceEvent as TdiEvent, TdispDevice, TdispResponder};
use ualink_spdm::tdisp::{TdiState, TdispError};
use ualink_spdm::transport::{MessageKind, Received, Transport};
use zeroize::Zeroizing;

use crate::error::{KeyError, SimError};
use crate::ids::{AccelId, PortIndex};
use crate::sim::{PodState, SlotRef};
use crate::ualinksec::{Direction, KeyRole, MasterKey, PreparedKey};

/// The FUNCTION_ID of the one TDI each simulated accelerator hosts.
pub const SIM_TDI: u32 = 0x0001;

/// Ways a device's responder can be made to misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResponderFault {
    /// Every signature (CHALLENGE_AUTH, MEASUREMENTS, KEY_EXCHANGE_RSP) has a flipped bit.
    BadSignature,
    /// The device offers only SPDM 1.2 (a requester insisting on 1.3 must refuse).
    VersionDowngrade,
    /// A signed response (CHALLENGE_AUTH, MEASUREMENTS) is replaced by the previous one with
    /// the same code: a replayed, stale signed response carrying the old nonces.
    ReplayPrevious,
    /// Every response leaves the mailbox with its last byte flipped.
    Malformed,
}

/// The TDISP side of a simulated accelerator: one TDI whose link keys are live once any of
/// the accelerator's key slots is enabled. Its interface report sets NO_UPDATE_AFTER_LOCK
/// (INTERFACE_INFO bit 0): the device refuses firmware updates while the TDI is
/// CONFIG_LOCKED or RUN, and such an attempt moves the TDI to ERROR
/// ([`crate::SimPod::update_firmware`]). It does so whatever LOCK_INTERFACE's NO_FW_UPDATE
/// flag said — stricter than TDISP requires, and the report states what the device does;
/// a requester should still set NO_FW_UPDATE, since real devices honour the flag.
#[derive(Debug)]
pub struct SimTdi {
    keys_live: bool,
    key_session: Option<u32>,
}

impl TdispDevice for SimTdi {
    fn interfaces(&self) -> Vec<InterfaceId> {
        InterfaceId::new(SIM_TDI)
            .map(|i| vec![i])
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
    ) -> Result<Vec<u8>, TdispError> {
        let interface_info = InterfaceInfo::from_bits(InterfaceInfo::NO_UPDATE_AFTER_LOCK)
            .map_err(|_| TdispError::Unspecified)?;
        InterfaceReport {
            interface_info,
            ..InterfaceReport::default()
        }
        .encode()
        .map_err(|_| TdispError::Unspecified)
    }
}

/// The device security engine's key sink: UALinkSec KEY_PROG / K_SET_GO / K_SET_STOP /
/// KEY_ROLL applied to the pod's key slots of one accelerator.
#[derive(Debug)]
pub struct SimKeySink {
    accel: AccelId,
    local: keyprog::AccelId,
    max_port: u8,
    st: Arc<Mutex<PodState>>,
    sessions: BTreeMap<KeyPair, u32>,
    /// Whether any of the accelerator's slots was live when the last operation released the
    /// pod state (read in the same lock hold, so the TDI needs no second lock to learn it);
    /// `None` until an operation runs.
    live_after: core::cell::Cell<Option<bool>>,
}

fn slot_ref(
    accel: AccelId,
    port: u8,
    dir: keyprog::Direction,
    peer: keyprog::AccelId,
) -> Result<SlotRef, KeyProgStatus> {
    Ok(SlotRef {
        accel,
        port: PortIndex(u16::from(port)),
        dir: match dir {
            keyprog::Direction::Rx => Direction::Rx,
            keyprog::Direction::Tx => Direction::Tx,
        },
        peer: AccelId::new(peer.get()).map_err(|_| KeyProgStatus::UnknownPeer)?,
    })
}

fn status_of(e: &SimError) -> KeyProgStatus {
    match e {
        SimError::Key {
            reason: KeyError::EpochNotAdvancing,
            ..
        } => KeyProgStatus::StaleEpoch,
        SimError::Key {
            reason: KeyError::NoKey | KeyError::NoFreshAlternate,
            ..
        } => KeyProgStatus::SlotEmpty,
        SimError::Key {
            reason: KeyError::RollEpochMismatch,
            ..
        } => KeyProgStatus::EpochMismatch,
        SimError::UnknownAccelerator(_) | SimError::NoRoute { .. } => KeyProgStatus::UnknownPeer,
        SimError::UnknownPort(_) => KeyProgStatus::UnsupportedPortIndex,
        _ => KeyProgStatus::UnspecifiedFailure,
    }
}

impl SimKeySink {
    fn with<R>(
        &self,
        f: impl FnOnce(&mut PodState) -> Result<R, SimError>,
    ) -> Result<R, KeyProgStatus> {
        let mut st = self
            .st
            .lock()
            .map_err(|_| KeyProgStatus::UnspecifiedFailure)?;
        let r = f(&mut st).map_err(|e| status_of(&e));
        self.live_after.set(Some(st.any_live_slot(self.accel)));
        r
    }

    fn slot(&self, t: KeyTarget) -> Result<SlotRef, KeyProgStatus> {
        slot_ref(self.accel, t.port, t.direction, t.peer)
    }
}

impl KeySink for SimKeySink {
    fn max_port(&self) -> u8 {
        self.max_port
    }

    fn local_accel(&self) -> keyprog::AccelId {
        self.local
    }

    fn max_peers(&self) -> u16 {
        1024
    }

    fn program(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: keyprog::MasterKey,
    ) -> Result<(), KeyProgStatus> {
        let slot = self.slot(target)?;
        let role = match target.slot {
            Slot::Active => KeyRole::Active,
            Slot::Alternate => KeyRole::Alternate,
        };
        let mk = MasterKey::from_ref(key.as_bytes(), epoch);
        // The stream keys are derived before the pod state is locked, so devices programming
        // keys at once only serialize on installing them.
        let prepared =
            PreparedKey::new(role, mk).map_err(|reason| status_of(&slot.key_error(reason)))?;
        self.with(|st| st.program_prepared(slot, prepared))
    }

    fn go(&mut self, target: KeyTarget) -> Result<(), KeyProgStatus> {
        let slot = self.slot(target)?;
        match target.slot {
            Slot::Active => self.with(|st| st.enable(slot)),
            // The alternate carries traffic only after a roll; GO records readiness.
            Slot::Alternate => self.with(|st| {
                let info = st.slot_info(slot)?;
                if info.alternate.is_some() {
                    Ok(())
                } else {
                    Err(slot.key_error(KeyError::NoFreshAlternate))
                }
            }),
        }
    }

    fn stop(&mut self, target: KeyTarget) -> Result<(), KeyProgStatus> {
        let slot = self.slot(target)?;
        match target.slot {
            Slot::Active => self.with(|st| {
                st.slot_mut(slot)?.invalidate();
                Ok(())
            }),
            Slot::Alternate => self.with(|st| {
                st.slot_mut(slot)?.clear_alternate();
                Ok(())
            }),
        }
    }

    fn roll(&mut self, pair: KeyPair, expected_epoch: u32) -> Result<u32, KeyProgStatus> {
        let slot = slot_ref(self.accel, pair.port, pair.direction, pair.peer)?;
        self.with(|st| {
            let info = st.slot_info(slot)?;
            match slot.dir {
                Direction::Tx => {
                    if info.alternate.map(|(e, _)| e) != Some(expected_epoch) {
                        return Err(slot.key_error(KeyError::RollEpochMismatch));
                    }
                    // In-band: the KeyRollMSG makes the peer's RX swap, its acknowledgement ours.
                    st.key_roll(slot)?;
                }
                Direction::Rx => {
                    // RX normally swaps on the peer's KeyRollMSG; if it already has, this is
                    // an idempotent confirmation.
                    if info.active.map(|(e, _)| e) != Some(expected_epoch) {
                        let now = st.now_ns;
                        st.slot_mut(slot)?
                            .swap(expected_epoch, now)
                            .map_err(|reason| slot.key_error(reason))?;
                    }
                }
            }
            Ok(expected_epoch)
        })
    }

    fn is_live(&self, pair: KeyPair) -> bool {
        let Ok(slot) = slot_ref(self.accel, pair.port, pair.direction, pair.peer) else {
            return false;
        };
        self.with(|st| Ok(st.slot(slot)?.is_some_and(|s| s.is_live())))
            .unwrap_or(false)
    }

    fn program_in_session(
        &mut self,
        target: KeyTarget,
        epoch: u32,
        key: keyprog::MasterKey,
        session_id: u32,
    ) -> Result<(), KeyProgStatus> {
        self.program(target, epoch, key)?;
        if target.slot == Slot::Active {
            self.sessions.insert(target.pair(), session_id);
        }
        Ok(())
    }

    fn programmed_in(&self, pair: KeyPair) -> Option<u32> {
        self.sessions.get(&pair).copied()
    }
}

/// One simulated accelerator as an SPDM device.
pub struct SimDevice {
    accel: AccelId,
    st: Arc<Mutex<PodState>>,
    versions: Vec<SpdmVersion>,
    algorithms: AlgorithmPolicy,
    tdisp: TdispResponder<SimTdi, ring::rand::SystemRandom>,
    keys: KeyProgResponder<SimKeySink>,
    rng: Rng,
    bad_signature: bool,
    /// The leaf signing key, parsed once (ring checks the key pair on parsing, which costs
    /// as much as a signature), with the leaf certificate it was issued with. A pod's
    /// devices start with it loaded, as a device's security engine holds its key from
    /// power-on ([`CachedKey::load`] in `SimPod::new`). Reused only while the pod still
    /// holds that certificate: a certificate swap replaces key and certificate together
    /// (the new key is parsed on its first signature), and a device reset rebuilds the
    /// device with an empty cache. Locked after the pod state is released, never together
    /// with it.
    signing_key: Mutex<Option<CachedKey>>,
}

/// A parsed leaf key and the (public) leaf certificate that identifies it.
pub(crate) struct CachedKey {
    leaf_der: Vec<u8>,
    key: SigningKey,
}

impl CachedKey {
    /// Parses `pki`'s leaf key (P-384), tagged with its leaf certificate.
    pub(crate) fn load(pki: &crate::pki::DevicePki, rng: &Rng) -> Result<Self, SimError> {
        let key = SigningKey::from_pkcs8(AsymAlg::EcdsaP384, pki.leaf_key_pkcs8(), rng)
            .map_err(|e| SimError::Pki(format!("loading the leaf key: {e}")))?;
        Ok(Self {
            leaf_der: pki.leaf_der.clone(),
            key,
        })
    }
}

impl core::fmt::Debug for SimDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimDevice")
            .field("accel", &self.accel)
            .field("versions", &self.versions)
            .field("bad_signature", &self.bad_signature)
            .finish_non_exhaustive()
    }
}

impl SimDevice {
    fn new(
        accel: AccelId,
        ports: u8,
        st: Arc<Mutex<PodState>>,
        key: Option<CachedKey>,
    ) -> Result<Self, SimError> {
        let local = keyprog::AccelId::new(accel.get())
            .map_err(|_| SimError::AccelIdOutOfRange(accel.get()))?;
        Ok(Self {
            accel,
            st: Arc::clone(&st),
            versions: OUR_VERSIONS.to_vec(),
            algorithms: AlgorithmPolicy::suite(AsymAlg::EcdsaP384),
            tdisp: TdispResponder::new(
                SimTdi {
                    keys_live: false,
                    key_session: None,
                },
                ring::rand::SystemRandom::new(),
            ),
            keys: KeyProgResponder::new(SimKeySink {
                accel,
                local,
                max_port: ports.saturating_sub(1),
                st,
                sessions: BTreeMap::new(),
                live_after: core::cell::Cell::new(None),
            }),
            rng: Rng::new(),
            bad_signature: false,
            signing_key: Mutex::new(key),
        })
    }

    /// The TDI's TDISP state.
    pub fn tdi_state(&self) -> Option<TdiState> {
        InterfaceId::new(SIM_TDI)
            .ok()
            .and_then(|i| self.tdisp.state(i))
    }

    /// Tells the TDI about a device event (config write, integrity failure, key loss, a
    /// firmware update attempt); a locked or running TDI moves to ERROR.
    pub fn notify(&mut self, event: TdiEvent) {
        if let Ok(id) = InterfaceId::new(SIM_TDI) {
            if matches!(
                self.tdisp.state(id),
                Some(TdiState::ConfigLocked | TdiState::Run)
            ) {
                let _ = self.tdisp.notify(id, event);
            }
        }
    }

    fn any_key_live(&self) -> bool {
        let Ok(st) = self.st.lock() else {
            return false;
        };
        st.any_live_slot(self.accel)
    }
}

impl Device for SimDevice {
    fn versions(&self) -> &[SpdmVersion] {
        &self.versions
    }

    fn capability_flags(&self) -> u32 {
        SoftDevice::DEFAULT_FLAGS
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
        let st = self.st.lock().ok()?;
        let a = st.accels.get(&self.accel)?;
        encode_spdm_cert_chain(hash, &a.pki().chain_der()).ok()
    }

    fn sign(
        &self,
        slot: u8,
        version: SpdmVersion,
        context: &str,
        transcript_hash: &[u8],
    ) -> ualink_spdm::Result<Vec<u8>> {
        if slot != 0 {
            return Err(ualink_spdm::Error::ApiMisuse("no key in this slot"));
        }
        // The current leaf (certificate and key, copied together) under the pod state lock;
        // the parsing and signing happen after it is released, so devices sign in parallel.
        let (leaf_der, pkcs8) = {
            let st = self
                .st
                .lock()
                .map_err(|_| ualink_spdm::Error::ApiMisuse("simulator state poisoned"))?;
            let a = st
                .accels
                .get(&self.accel)
                .ok_or(ualink_spdm::Error::ApiMisuse("accelerator gone"))?;
            (
                a.pki().leaf_der.clone(),
                Zeroizing::new(a.pki().leaf_key_pkcs8().to_vec()),
            )
        };
        let mut cache = self
            .signing_key
            .lock()
            .map_err(|_| ualink_spdm::Error::ApiMisuse("simulator state poisoned"))?;
        let key = match cache.take() {
            Some(c) if c.leaf_der == leaf_der => c,
            _ => CachedKey {
                key: SigningKey::from_pkcs8(AsymAlg::EcdsaP384, &pkcs8, &self.rng)?,
                leaf_der,
            },
        };
        let key = &cache.insert(key).key;
        let mut sig = crypto::sign(key, &self.rng, version, context, transcript_hash)?;
        if self.bad_signature {
            if let Some(b) = sig.last_mut() {
                *b ^= 0x01;
            }
        }
        Ok(sig)
    }

    fn measurements(&self, meas_hash: HashAlg) -> ualink_spdm::Result<Vec<MeasurementBlock>> {
        let st = self
            .st
            .lock()
            .map_err(|_| ualink_spdm::Error::ApiMisuse("simulator state poisoned"))?;
        let a = st
            .accels
            .get(&self.accel)
            .ok_or(ualink_spdm::Error::ApiMisuse("accelerator gone"))?;
        Ok(a.measurements()
            .blocks()
            .iter()
            .map(|b| MeasurementBlock {
                index: b.kind.index(),
                value_type: DmtfValueType(b.kind.dmtf_value_type()),
                value: crypto::hash(meas_hash, &b.image).as_bytes().to_vec(),
            })
            .collect())
    }

    fn vendor_request_in_place(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &mut [u8],
    ) -> Option<ualink_spdm::Result<Vec<u8>>> {
        let session = match channel {
            Channel::Secured(sid) => Some(sid),
            Channel::Clear => None,
        };
        Some(match protocol {
            VendorProtocol::Tdisp => Ok(self.tdisp.respond_in_session(payload, session)),
            VendorProtocol::KeyProgramming => {
                // Zeroes `payload` in every case: no plaintext key copy is left here.
                self.keys.sink().live_after.set(None);
                let r = self
                    .keys
                    .respond_in_session(payload, session)
                    .map_err(ualink_spdm::Error::from);
                // As the last slot operation left the pod (or as it is now, if none ran).
                let live = match self.keys.sink().live_after.take() {
                    Some(live) => live,
                    None => self.any_key_live(),
                };
                let tdi = self.tdisp.device_mut();
                tdi.keys_live = live;
                if r.is_ok() && live {
                    tdi.key_session = session;
                }
                r
            }
        })
    }

    fn rng(&self) -> &Rng {
        &self.rng
    }
}

/// One accelerator's SPDM endpoint: the responder engine, its outbox and its fault knobs.
#[derive(Debug)]
pub(crate) struct Mailbox {
    accel: AccelId,
    ports: u8,
    st: Arc<Mutex<PodState>>,
    responder: Responder<SimDevice>,
    outbox: VecDeque<Vec<u8>>,
    transport: Transport,
    faults: Vec<ResponderFault>,
    previous: BTreeMap<u8, Vec<u8>>,
}

impl Mailbox {
    /// The mailbox of a device that holds `key` (its leaf key, already parsed) if given.
    pub(crate) fn new(
        accel: AccelId,
        ports: u8,
        st: Arc<Mutex<PodState>>,
        key: Option<CachedKey>,
    ) -> Result<Self, SimError> {
        Ok(Self {
            accel,
            ports,
            responder: Responder::new(
                SimDevice::new(accel, ports, Arc::clone(&st), key)?,
                ResponderConfig::default(),
            ),
            st,
            outbox: VecDeque::new(),
            transport: Transport::Mctp,
            faults: Vec::new(),
            previous: BTreeMap::new(),
        })
    }

    /// The device behind the responder.
    pub(crate) fn device_mut(&mut self) -> &mut SimDevice {
        self.responder.device_mut()
    }

    /// The device behind the responder.
    pub(crate) fn device(&self) -> &SimDevice {
        self.responder.device()
    }

    /// The device was reset: every piece of volatile state of its security engine is lost.
    /// The responder is rebuilt fresh — SPDM connection state (VCA, negotiated algorithms,
    /// transcripts) and every secured session with its keys are dropped (their secrets are
    /// zeroized on drop), the TDI is back in CONFIG_UNLOCKED with no nonce, the key
    /// programming engine forgets which session programmed which key, and queued responses
    /// are discarded. A requester continuing its handshake or session gets an error or
    /// nothing; only a new GET_VERSION is answered. The fault knobs stay (they model the
    /// device's or the attacker's behaviour, not its state).
    pub(crate) fn reset(&mut self) -> Result<(), SimError> {
        let fresh = Responder::new(
            SimDevice::new(self.accel, self.ports, Arc::clone(&self.st), None)?,
            ResponderConfig::default(),
        );
        drop(std::mem::replace(&mut self.responder, fresh));
        self.outbox.clear();
        self.apply_faults();
        Ok(())
    }

    pub(crate) fn set_fault(&mut self, f: ResponderFault, on: bool) {
        self.faults.retain(|x| *x != f);
        if on {
            self.faults.push(f);
        }
        self.apply_faults();
    }

    fn apply_faults(&mut self) {
        let dev = self.responder.device_mut();
        dev.bad_signature = self.faults.contains(&ResponderFault::BadSignature);
        dev.versions = if self.faults.contains(&ResponderFault::VersionDowngrade) {
            vec![SpdmVersion::V12]
        } else {
            OUR_VERSIONS.to_vec()
        };
    }

    /// One transport-framed request in; its framed response queued (if any).
    pub(crate) fn send(&mut self, framed: &[u8]) -> Result<(), SimError> {
        let (kind, msg) = match self.transport.decode(framed) {
            Ok(Received::Message(k, m)) => (k, m),
            _ => return Err(SimError::Malformed("SPDM transport framing")),
        };
        let Some(out) = self.responder.handle(kind, msg) else {
            return Ok(());
        };
        let mut bytes = out.bytes;
        if out.kind == MessageKind::Spdm {
            // Signed responses only: CHALLENGE_AUTH (0x03) and MEASUREMENTS (0x60).
            if let Some(&code) = bytes.get(1).filter(|c| matches!(**c, 0x03 | 0x60)) {
                let fresh = bytes.clone();
                if self.faults.contains(&ResponderFault::ReplayPrevious) {
                    if let Some(old) = self.previous.get(&code) {
                        bytes = old.clone();
                    }
                }
                self.previous.insert(code, fresh);
            }
        }
        let mut framed = self
            .transport
            .encode(out.kind, &bytes)
            .map_err(|_| SimError::Malformed("SPDM transport framing"))?;
        if self.faults.contains(&ResponderFault::Malformed) {
            if let Some(b) = framed.last_mut() {
                *b ^= 0x01;
            }
        }
        self.outbox.push_back(framed);
        Ok(())
    }

    /// The oldest queued response, if it fits in `buf`.
    pub(crate) fn receive(&mut self, buf: &mut [u8]) -> Result<Option<usize>, usize> {
        let Some(front) = self.outbox.front() else {
            return Ok(None);
        };
        let n = front.len();
        let Some(dst) = buf.get_mut(..n) else {
            return Err(n);
        };
        dst.copy_from_slice(front);
        self.outbox.pop_front();
        Ok(Some(n))
    }
}
