//! ear (in progress).
