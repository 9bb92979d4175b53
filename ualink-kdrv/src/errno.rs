//! `Errno`: the only error type that crosses the UAPI.
//!
//! # Invariants
//! An [`Errno`] always holds a valid, positive Linux errno (1..=133). The field is private and every
//! constructor is a named constant, so no other value can be built.

use core::fmt;

/// A Linux errno value returned to user space (positive; the ioctl entry returns `-errno`).
///
/// Every refusal in this crate maps to exactly one errno, listed in the kernel-doc style `Return:`
/// sections of the functions that produce it and in [`crate::Error`]'s docs.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

macro_rules! errnos {
    ($($(#[$m:meta])* $name:ident = $v:literal,)*) => {
        impl Errno {
            $($(#[$m])* pub const $name: Errno = Errno($v);)*

            /// The symbolic name (`"EINVAL"`), for logs and audit events.
            pub const fn name(self) -> &'static str {
                match self.0 {
                    $($v => stringify!($name),)*
                    // INVARIANT: only the constants above exist, so this arm is never taken.
                    _ => "E?",
                }
            }

            /// Every errno this crate can return, in numeric order (for tests and the C header).
            pub const ALL: &'static [Errno] = &[$(Errno::$name,)*];
        }
    };
}

errnos! {
    /// Operation not permitted: the caller's role or the grant's rights do not allow this.
    EPERM = 1,
    /// No such object (tenant, window, buffer, attachment, mapping).
    ENOENT = 2,
    /// Hardware (FabricOps) reported an I/O failure.
    EIO = 5,
    /// No such device or address: the accelerator or port is not present.
    ENXIO = 6,
    /// Argument list too long: a variable-length input exceeds its bound.
    E2BIG = 7,
    /// Try again: the grant is not yet valid (before not-before on the fabric clock) or the mailbox is empty.
    EAGAIN = 11,
    /// Out of memory: a fallible allocation failed.
    ENOMEM = 12,
    /// Permission denied: an import across a tenant or OS-instance boundary without a grant.
    EACCES = 13,
    /// Bad address: the user buffer is too short for the declared structure.
    EFAULT = 14,
    /// Device or resource busy: the object still has dependents (attachments, mappings).
    EBUSY = 16,
    /// The object already exists (duplicate accelerator ID, tenant, grant id).
    EEXIST = 17,
    /// Cross-device link: the grant names a different importer, exporter or buffer.
    EXDEV = 18,
    /// No such device: the accelerator is quarantined or gone.
    ENODEV = 19,
    /// Invalid argument: a field is out of range, a reserved field is non-zero or a flag is unknown.
    EINVAL = 22,
    /// Inappropriate ioctl: unknown command number.
    ENOTTY = 25,
    /// No space left: a fixed table is full.
    ENOSPC = 28,
    /// Result out of range.
    ERANGE = 34,
    /// Identifier removed: the buffer is revoked or DEAD; a fresh export and grant are needed.
    EIDRM = 43,
    /// Link has been severed: the link keys on the route are not live.
    ENOLINK = 67,
    /// Not a data message: the grant (COSE_Sign1 / CBOR claims) is malformed.
    EBADMSG = 74,
    /// Value too large for defined data type (checked arithmetic overflowed).
    EOVERFLOW = 75,
    /// Operation not supported: e.g. a static importer without an invalidate callback.
    EOPNOTSUPP = 95,
    /// Connection timed out: FabricOps did not answer in time.
    ETIMEDOUT = 110,
    /// Host is down: a TDI named by the grant is not in TDISP RUN.
    EHOSTDOWN = 112,
    /// Operation already in progress: the grant's nonce (single use) was already consumed.
    EALREADY = 114,
    /// Stale: an attestation epoch named by the grant no longer matches the TDI's current epoch.
    ESTALE = 116,
    /// Required key not available: no TSM key is installed yet.
    ENOKEY = 126,
    /// Key has expired: the grant's expiry on the fabric clock has passed.
    EKEYEXPIRED = 127,
    /// Key has been revoked: the grant is signed by a retired TSM key.
    EKEYREVOKED = 128,
    /// Key was rejected: the grant's signature does not verify under the current TSM key.
    EKEYREJECTED = 129,
}

impl Errno {
    /// The positive errno value.
    pub const fn to_positive(self) -> i32 {
        self.0
    }

    /// The negative value a syscall returns (`-errno`).
    pub const fn to_negative(self) -> i32 {
        // INVARIANT: self.0 is in 1..=133, so negation cannot overflow.
        0i32.wrapping_sub(self.0)
    }

    /// Look up a positive errno value; `None` if this crate never returns it.
    pub fn from_positive(v: i32) -> Option<Errno> {
        Self::ALL.iter().copied().find(|e| e.0 == v)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<alloc::collections::TryReserveError> for Errno {
    fn from(_: alloc::collections::TryReserveError) -> Self {
        Errno::ENOMEM
    }
}

impl From<core::num::TryFromIntError> for Errno {
    fn from(_: core::num::TryFromIntError) -> Self {
        Errno::EINVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_errnos_are_distinct_positive_and_named() {
        let all = Errno::ALL;
        for (i, a) in all.iter().enumerate() {
            assert!(a.to_positive() > 0 && a.to_positive() <= 133);
            assert_eq!(a.to_negative(), -a.to_positive());
            assert_ne!(a.name(), "E?");
            assert_eq!(Errno::from_positive(a.to_positive()), Some(*a));
            for b in &all[i + 1..] {
                assert_ne!(a.to_positive(), b.to_positive(), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(Errno::from_positive(0), None);
        assert_eq!(Errno::from_positive(200), None);
    }
}
