//! Trustee's `sample` TEE evidence, `{"svn":"1","report_data":"<base64 of 48 bytes>"}`: no
//! hardware and no signature, for interop tests with a stock KBS under a permissive policy.

use super::{Evidence, EvidenceProvider, TeeKind};
use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// Produces sample evidence.
#[derive(Clone, Copy, Debug, Default)]
pub struct SampleProvider;

impl SampleProvider {
    /// A sample provider.
    pub fn new() -> Self {
        Self
    }
}

impl EvidenceProvider for SampleProvider {
    fn tee(&self) -> TeeKind {
        TeeKind::Sample
    }

    fn describe(&self) -> String {
        "sample (Trustee test evidence: unsigned, accepted only by permissive KBS policy)".into()
    }

    /// The sample format carries the 48-byte hash only, so bytes 48..64 of `report_data`
    /// must be zero (they are when the KBS binding pads SHA-384 to 64 bytes).
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence> {
        let (hash, pad) = report_data.split_at(48);
        if pad.iter().any(|&b| b != 0) {
            return Err(Error::ApiMisuse {
                reason:
                    "sample evidence carries 48 bytes of report_data; bytes 48..64 must be zero"
                        .into(),
            });
        }
        let json = serde_json::json!({"svn": "1", "report_data": STANDARD.encode(hash)});
        Ok(Evidence {
            tee: TeeKind::Sample,
            source: "sample",
            raw: json.to_string().into_bytes(),
            certs: None,
        })
    }
}
