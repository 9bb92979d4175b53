//! HEARTBEAT / HEARTBEAT_ACK (DSP0274 §10.14): header only, both params reserved.
//!
//! ```text
//! HEARTBEAT:     SPDMVersion | E8 | 00 | 00
//! HEARTBEAT_ACK: SPDMVersion | 68 | 00 | 00
//! ```

use super::header_only;

header_only!(
    /// HEARTBEAT (in session only).
    Heartbeat,
    HEARTBEAT,
    "HEARTBEAT"
);
header_only!(
    /// HEARTBEAT_ACK.
    HeartbeatAck,
    HEARTBEAT_ACK,
    "HEARTBEAT_ACK"
);
