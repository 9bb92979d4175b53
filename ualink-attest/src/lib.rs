//! ualink-attest.
