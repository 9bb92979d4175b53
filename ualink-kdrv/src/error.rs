//! The crate's error type, classed by who is at fault, and the one `From<Error> for Errno`.

use core::fmt;

use crate::errno::Errno;
use crate::ops::OpsError;

/// Why the import gate refused an attach or map. Each reason has its own errno (see [`Denial::errno`])
/// and is named in the audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Denial {
    /// The import crosses a tenant or OS-instance boundary and no grant was presented (`EACCES`).
    NoGrant,
    /// The grant is not a well-formed COSE_Sign1 with the expected header and claims (`EBADMSG`).
    MalformedGrant(&'static str),
    /// No TSM key is installed (`ENOKEY`).
    NoTsmKey,
    /// The grant's signature does not verify under the current TSM key, or names an unknown key
    /// (`EKEYREJECTED`).
    BadSignature,
    /// The grant is signed by a TSM key that has been rotated out (`EKEYREVOKED`).
    RetiredKey,
    /// The fabric clock is before the grant's not-before (`EAGAIN`).
    NotYetValid,
    /// The fabric clock is at or past the grant's expiry (`EKEYEXPIRED`).
    Expired,
    /// The grant's nonce (or grant id) was already used (`EALREADY`).
    Replayed,
    /// The grant names another importer (tenant, OS instance or accelerator), exporter or buffer (`EXDEV`).
    WrongParty(&'static str),
    /// The requested rights exceed the granted ones (`EPERM`).
    RightsExceeded,
    /// A TDI named by the grant is not in TDISP RUN (`EHOSTDOWN`).
    TdiNotRunning,
    /// An attestation epoch named by the grant is not the TDI's current one (`ESTALE`).
    StaleEpoch,
    /// The link keys on the route between importer and exporter are not live (`ENOLINK`).
    KeysNotLive,
    /// The buffer (or this attachment) is revoked or DEAD; a fresh export and grant are needed (`EIDRM`).
    Revoked,
    /// The importer is not dynamic (it has no invalidate callback), so it could not be revoked
    /// (`EOPNOTSUPP`).
    StaticImporter,
}

impl Denial {
    /// The errno this refusal returns.
    pub const fn errno(self) -> Errno {
        match self {
            Denial::NoGrant => Errno::EACCES,
            Denial::MalformedGrant(_) => Errno::EBADMSG,
            Denial::NoTsmKey => Errno::ENOKEY,
            Denial::BadSignature => Errno::EKEYREJECTED,
            Denial::RetiredKey => Errno::EKEYREVOKED,
            Denial::NotYetValid => Errno::EAGAIN,
            Denial::Expired => Errno::EKEYEXPIRED,
            Denial::Replayed => Errno::EALREADY,
            Denial::WrongParty(_) => Errno::EXDEV,
            Denial::RightsExceeded => Errno::EPERM,
            Denial::TdiNotRunning => Errno::EHOSTDOWN,
            Denial::StaleEpoch => Errno::ESTALE,
            Denial::KeysNotLive => Errno::ENOLINK,
            Denial::Revoked => Errno::EIDRM,
            Denial::StaticImporter => Errno::EOPNOTSUPP,
        }
    }
}

/// Invalid input from user space (the caller's fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// The buffer is shorter than the command's structure (`EFAULT`).
    Truncated,
    /// The buffer is longer than the structure plus its declared payload (`E2BIG`).
    Oversized,
    /// The structure's `size` field is not the size this driver implements (`EINVAL`).
    BadSize,
    /// A reserved field is non-zero (`EINVAL`).
    ReservedNonZero,
    /// An unknown flag bit is set (`EINVAL`).
    UnknownFlags,
    /// A field is out of range (`EINVAL`), named.
    BadField(&'static str),
    /// A variable-length payload exceeds its bound (`E2BIG`).
    PayloadTooLong,
    /// Unknown ioctl command (`ENOTTY`).
    UnknownCommand,
    /// Arithmetic on caller-supplied values overflowed (`EOVERFLOW`).
    Overflow,
}

/// A valid request the current state does not allow (the caller's fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApiMisuse {
    /// The object does not exist or is not visible to the caller (`ENOENT`).
    NotFound(&'static str),
    /// The object already exists (`EEXIST`).
    Exists(&'static str),
    /// The object has dependents or is already in that state (`EBUSY`).
    Busy(&'static str),
    /// The caller's role does not allow this (`EPERM`).
    NotPermitted(&'static str),
    /// The accelerator is quarantined or absent (`ENODEV`).
    NoDevice,
    /// A fixed-size table is full (`ENOSPC`).
    TableFull(&'static str),
    /// A key-rotation message is malformed, stale or not signed by the current key (`EKEYREJECTED`).
    BadRotation(&'static str),
}

/// Every error the driver core produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Malformed user input.
    Malformed(Malformed),
    /// The import gate refused.
    Denied(Denial),
    /// Valid request, wrong state or role.
    ApiMisuse(ApiMisuse),
    /// The hardware backend failed.
    Hardware(OpsError),
    /// A fallible allocation failed.
    NoMemory,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl core::error::Error for Error {}

/// The one place errors become errnos.
impl From<Error> for Errno {
    fn from(e: Error) -> Errno {
        match e {
            Error::Malformed(m) => match m {
                Malformed::Truncated => Errno::EFAULT,
                Malformed::Oversized | Malformed::PayloadTooLong => Errno::E2BIG,
                Malformed::BadSize
                | Malformed::ReservedNonZero
                | Malformed::UnknownFlags
                | Malformed::BadField(_) => Errno::EINVAL,
                Malformed::UnknownCommand => Errno::ENOTTY,
                Malformed::Overflow => Errno::EOVERFLOW,
            },
            Error::Denied(d) => d.errno(),
            Error::ApiMisuse(a) => match a {
                ApiMisuse::NotFound(_) => Errno::ENOENT,
                ApiMisuse::Exists(_) => Errno::EEXIST,
                ApiMisuse::Busy(_) => Errno::EBUSY,
                ApiMisuse::NotPermitted(_) => Errno::EPERM,
                ApiMisuse::NoDevice => Errno::ENODEV,
                ApiMisuse::TableFull(_) => Errno::ENOSPC,
                ApiMisuse::BadRotation(_) => Errno::EKEYREJECTED,
            },
            Error::Hardware(o) => o.into(),
            Error::NoMemory => Errno::ENOMEM,
        }
    }
}

impl From<Denial> for Error {
    fn from(d: Denial) -> Error {
        Error::Denied(d)
    }
}

impl From<Malformed> for Error {
    fn from(m: Malformed) -> Error {
        Error::Malformed(m)
    }
}

impl From<ApiMisuse> for Error {
    fn from(a: ApiMisuse) -> Error {
        Error::ApiMisuse(a)
    }
}

impl From<OpsError> for Error {
    fn from(o: OpsError) -> Error {
        Error::Hardware(o)
    }
}

impl From<alloc::collections::TryReserveError> for Error {
    fn from(_: alloc::collections::TryReserveError) -> Error {
        Error::NoMemory
    }
}

/// The driver's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_denial_has_a_distinct_errno() {
        let all = [
            Denial::NoGrant,
            Denial::MalformedGrant("x"),
            Denial::NoTsmKey,
            Denial::BadSignature,
            Denial::RetiredKey,
            Denial::NotYetValid,
            Denial::Expired,
            Denial::Replayed,
            Denial::WrongParty("x"),
            Denial::RightsExceeded,
            Denial::TdiNotRunning,
            Denial::StaleEpoch,
            Denial::KeysNotLive,
            Denial::Revoked,
            Denial::StaticImporter,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.errno(), b.errno(), "{a:?} vs {b:?}");
            }
            assert_eq!(Errno::from(Error::Denied(*a)), a.errno());
        }
    }
}
