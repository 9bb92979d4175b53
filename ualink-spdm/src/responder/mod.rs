//! The SPDM responder (in progress).

pub mod wire_error;
