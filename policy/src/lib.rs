//! ualink-policy.
