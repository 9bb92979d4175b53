//! What an SPDM responder needs from the device it speaks for.
//!
//! [`crate::responder::Responder`] is generic over [`Device`]: the engine owns the protocol
//! (states, transcripts, sessions), the device owns its identity and its resources — the
//! certificate chains and the private key (which never leaves it: the engine asks it to sign a
//! transcript hash), the measurements, its TDIs and its link-key slots. ualink-sim implements
//! this trait for simulated accelerators; [`SoftDevice`] (std) is a ready-made software device.

use alloc::vec::Vec;

use crate::algo::{HashAlg, SpdmVersion};
use crate::crypto::Rng;
use crate::error::Result;
use crate::msg::MeasurementBlock;
use crate::negotiation::AlgorithmPolicy;

/// Which protocol a PCI-SIG VENDOR_DEFINED payload carries (its ProtocolID byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendorProtocol {
    /// IDE_KM-style link-key programming (ProtocolID 0x00): IDE_KM and UALinkSec objects.
    KeyProgramming,
    /// TDISP (ProtocolID 0x01).
    Tdisp,
}

/// Where a vendor request arrived: link keys are accepted only inside a secured session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A plaintext SPDM message.
    Clear,
    /// A DSP0277 secured message of the session with this ID (ReqSessionID | RspSessionID << 16).
    Secured(u32),
}

/// The device behind a responder.
///
/// Contract: every method is total (never panics on any input); errors are reported as
/// [`crate::Error`] and become SPDM ERROR responses through [`crate::Error::wire_code`].
pub trait Device {
    /// SPDM versions the device speaks (a subset of 1.2 and 1.3).
    fn versions(&self) -> &[SpdmVersion];

    /// CAPABILITIES Flags the device advertises (a responder's view; the engine additionally
    /// refuses requests whose capability is not advertised here).
    fn capability_flags(&self) -> u32;

    /// CTExponent for CAPABILITIES (the crypto timeout is 2^CTExponent µs).
    fn ct_exponent(&self) -> u8 {
        12
    }

    /// Algorithms the device implements, in its preference order.
    fn algorithms(&self) -> &AlgorithmPolicy;

    /// Bit mask of slots holding a certificate chain (DIGESTS Param2).
    fn provisioned_slots(&self) -> u8;

    /// The certificate chain in `slot` in SPDM format for the negotiated `hash`
    /// (Length u16 ‖ rsvd u16 ‖ RootHash ‖ DER certificates, root first), or `None` if the
    /// slot is empty.
    fn cert_chain(&self, slot: u8, hash: HashAlg) -> Option<Vec<u8>>;

    /// Signs `combined_spdm_prefix(version, context) ‖ transcript_hash` with the private key
    /// of the chain in `slot`, returning raw `r ‖ s` (see [`crate::crypto::sign`]).
    fn sign(
        &self,
        slot: u8,
        version: SpdmVersion,
        context: &str,
        transcript_hash: &[u8],
    ) -> Result<Vec<u8>>;

    /// The device's current measurements, digests made with `meas_hash`. Called for every
    /// GET_MEASUREMENTS, so a change (firmware update, configuration change) shows in the next
    /// response.
    fn measurements(&self, meas_hash: HashAlg) -> Result<Vec<MeasurementBlock>>;

    /// Handles one VENDOR_DEFINED payload for `protocol` (the bytes from ProtocolID on) that
    /// arrived on `channel`, returning the response payload (from ProtocolID on). Link-key
    /// programming must be refused on [`Channel::Clear`] (`Error::KeyProg(SessionRequired)`,
    /// answered with ERROR SessionRequired); `None` means the device does not implement
    /// `protocol` (answered with ERROR UnsupportedRequest).
    ///
    /// This is the method the responder engine calls. `payload` is the engine's copy of the
    /// decrypted request: the device may consume it in place and should zero whatever key
    /// material it holds (a [`crate::keyprog::KeyProgResponder`] zeroes it in every case), so
    /// no plaintext key copy is left behind; the engine zeroes it again after the call.
    ///
    /// The default forwards to [`Device::vendor_request`] (read-only, for devices written
    /// against the earlier signature); a device that programs keys should implement this one.
    fn vendor_request_in_place(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &mut [u8],
    ) -> Option<Result<Vec<u8>>> {
        self.vendor_request(protocol, channel, payload)
    }

    /// Read-only form of [`Device::vendor_request_in_place`], kept for devices written against
    /// it: the engine reaches it only through `vendor_request_in_place`'s default. A device
    /// implementing it and handling key material must copy the payload into a zeroizing
    /// buffer. The default implements no vendor protocol (`None`).
    fn vendor_request(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>>> {
        let _ = (protocol, channel, payload);
        None
    }

    /// Called when the secured session `session_id` ends (END_SESSION, decrypt failure,
    /// reset), so the device can drop state bound to it.
    fn session_ended(&mut self, session_id: u32) {
        let _ = session_id;
    }

    /// The random source for nonces, Random fields and ephemeral keys.
    fn rng(&self) -> &Rng;
}

/// A device borrowed mutably is a device: a responder can run over `&mut D` (e.g. a
/// long-lived device serving one connection after another) without a forwarding wrapper.
impl<D: Device + ?Sized> Device for &mut D {
    fn versions(&self) -> &[SpdmVersion] {
        (**self).versions()
    }

    fn capability_flags(&self) -> u32 {
        (**self).capability_flags()
    }

    fn ct_exponent(&self) -> u8 {
        (**self).ct_exponent()
    }

    fn algorithms(&self) -> &AlgorithmPolicy {
        (**self).algorithms()
    }

    fn provisioned_slots(&self) -> u8 {
        (**self).provisioned_slots()
    }

    fn cert_chain(&self, slot: u8, hash: HashAlg) -> Option<Vec<u8>> {
        (**self).cert_chain(slot, hash)
    }

    fn sign(
        &self,
        slot: u8,
        version: SpdmVersion,
        context: &str,
        transcript_hash: &[u8],
    ) -> Result<Vec<u8>> {
        (**self).sign(slot, version, context, transcript_hash)
    }

    fn measurements(&self, meas_hash: HashAlg) -> Result<Vec<MeasurementBlock>> {
        (**self).measurements(meas_hash)
    }

    fn vendor_request_in_place(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &mut [u8],
    ) -> Option<Result<Vec<u8>>> {
        (**self).vendor_request_in_place(protocol, channel, payload)
    }

    fn vendor_request(
        &mut self,
        protocol: VendorProtocol,
        channel: Channel,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>>> {
        (**self).vendor_request(protocol, channel, payload)
    }

    fn session_ended(&mut self, session_id: u32) {
        (**self).session_ended(session_id);
    }

    fn rng(&self) -> &Rng {
        (**self).rng()
    }
}

#[cfg(feature = "std")]
mod soft;

#[cfg(feature = "std")]
pub use soft::{SoftDevice, SoftTdi, SOFT_TDI};
