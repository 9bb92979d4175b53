//! TDISP 1.0: messages, the TDI state machine, the requester-side API.

/// A TDISP request refused by the device's interface state machine.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdispError {
    /// The request is not allowed in the interface's current state.
    #[error("invalid interface state")]
    InvalidInterfaceState,
}
