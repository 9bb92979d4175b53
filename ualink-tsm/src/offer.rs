//! Export offers: a tenant's agent exports a buffer of one of its windows for a named
//! importer (tenant, OS instance) with a set of rights; the importer's agent redeems the
//! offer with an import request, which the TSM decides ([`Tsm::share`]) and, on allow,
//! answers with a signed ImportGrant. The exporter may revoke the offer, which revokes the
//! buffer in the driver (every attachment is drained and unmapped) and is audited.
//!
//! The offer book lives in the service's memory: offers do not survive a restart (the
//! driver's buffers do not either; grants already issued expire on their own).

use std::collections::HashMap;

use ring::rand::{SecureRandom, SystemRandom};
use ualink_attest::audit::event::AuditEvent;
use ualink_attest::audit::{AuditRecord, DecisionKind, Digest384, Outcome};
use ualink_attest::UnixTime;
use ualink_kdrv::ids::{BufferHandle, OsInstanceId, TenantId, WindowId};
use ualink_kdrv::FileCtx;

use crate::error::{Result, TsmError};
use crate::service::api::RightName;
use crate::tsm::{audit_build, Tsm};

/// Most offers kept at once (an export beyond it is refused).
pub const MAX_OFFERS: usize = 4096;
/// Highest window id searched when resolving a window by its base.
const MAX_WINDOW_ID: u32 = 65_535;

/// One offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// 16 hex digits.
    pub id: String,
    /// Exporting tenant (number).
    pub exporter_tenant: u32,
    /// Exporting OS instance.
    pub exporter_os: u32,
    /// Exporting accelerator.
    pub exporter_accel: u16,
    /// The driver's buffer handle.
    pub buffer: BufferHandle,
    /// Importing tenant (number).
    pub to_tenant: u32,
    /// Importing OS instance.
    pub to_os: u32,
    /// Rights offered.
    pub rights: Vec<RightName>,
}

/// The offers, by id.
#[derive(Debug, Default)]
pub struct OfferBook {
    offers: HashMap<String, Offer>,
}

impl OfferBook {
    /// Adds an offer with a fresh random id; returns the id.
    pub fn add(&mut self, mut offer: Offer) -> Result<String> {
        if self.offers.len() >= MAX_OFFERS {
            return Err(TsmError::Conflict(format!(
                "too many open offers ({MAX_OFFERS}); revoke some first"
            )));
        }
        let mut b = [0u8; 8];
        SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| TsmError::Identity("system RNG failed".into()))?;
        let id = hex::encode(b);
        offer.id.clone_from(&id);
        self.offers.insert(id.clone(), offer);
        Ok(id)
    }

    /// The offer `id`.
    pub fn get(&self, id: &str) -> Option<&Offer> {
        self.offers.get(id)
    }

    /// Removes and returns the offer `id`.
    pub fn remove(&mut self, id: &str) -> Option<Offer> {
        self.offers.remove(id)
    }

    /// Forgets every offer that involves `tenant` (offboarding).
    pub fn forget_tenant(&mut self, tenant: u32) {
        self.offers
            .retain(|_, o| o.exporter_tenant != tenant && o.to_tenant != tenant);
    }
}

impl Tsm {
    /// Exports `[offset, offset+len)` of `tenant`'s window on `accel` based at `window_base`
    /// as OS instance `os` (the driver pins it and returns the handle).
    pub fn export_buffer(
        &mut self,
        tenant: u32,
        os: u32,
        accel: u16,
        window_base: u64,
        offset: u64,
        len: u64,
    ) -> Result<BufferHandle> {
        let a = ualink_sim::AccelId::new(accel)
            .map_err(|e| TsmError::InvalidRequest(format!("accelerator {accel}: {e}")))?
            .to_kdrv();
        let window = (1..=MAX_WINDOW_ID)
            .map(WindowId)
            .find(|w| {
                self.driver.window(*w).is_some_and(|(t, wa, base, _)| {
                    t == TenantId(tenant) && wa == a && base == window_base
                })
            })
            .ok_or_else(|| TsmError::NotFound {
                what: "window",
                id: format!("tenant {tenant} accelerator {accel} base {window_base:#x}"),
            })?;
        let file = FileCtx::tenant(TenantId(tenant), OsInstanceId(os));
        self.driver
            .export(&file, window, offset, len)
            .map_err(|e| TsmError::Driver {
                op: "export",
                reason: format!("{:?}", ualink_kdrv::Errno::from(e)),
            })
    }

    /// Revokes an offer's buffer on the exporter's request: the driver drains and unmaps
    /// every attachment; audited as a revocation record before it returns.
    pub fn revoke_offer(&mut self, offer: &Offer) -> Result<()> {
        self.audit.ensure_writable()?;
        let requested_at = UnixTime::now().secs();
        let file = FileCtx::tenant(
            TenantId(offer.exporter_tenant),
            OsInstanceId(offer.exporter_os),
        );
        self.driver
            .revoke(&file, offer.buffer)
            .map_err(|e| TsmError::Driver {
                op: "revoke",
                reason: format!("{:?}", ualink_kdrv::Errno::from(e)),
            })?;
        // The drain completed when `revoke` returned: one time for the record and its event.
        let drained_at = UnixTime::now();
        let rec = AuditRecord::new(
            drained_at,
            DecisionKind::Revocation,
            &format!("offer-{}", offer.id),
            Outcome::Info,
        )
        .and_then(|r| r.with_input("buffer-handle", Digest384::of(&offer.buffer.0)))
        .and_then(|r| r.with_reason("revoked by the exporter"))
        .map_err(audit_build)?
        .with_event(AuditEvent::AttachmentRevoked {
            grant_id: offer.id.clone(),
            cause: "exporter revoked the offer".into(),
            requested_at,
            drained_at: drained_at.secs(),
        });
        self.audit.record(&rec)?;
        Ok(())
    }
}
