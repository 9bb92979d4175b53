//! A strict, allocation-free CBOR reader for the small claim maps kdrv accepts (grant claims, key
//! rotation claims): definite-length maps with unsigned-integer keys and unsigned-integer or byte-string
//! values, in preferred (shortest) encoding. Anything else — tags, negative integers, floats, indefinite
//! lengths, non-shortest heads, trailing bytes — is refused.

/// Why a CBOR item was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CborError {
    /// Input ended inside an item.
    Truncated,
    /// A major type other than the one expected.
    UnexpectedType,
    /// A head not in shortest form, an indefinite length, or a reserved additional-info value.
    NonCanonical,
    /// Bytes after the top-level item.
    TrailingBytes,
}

/// A cursor over CBOR bytes; it only moves forward.
pub(crate) struct CborReader<'a> {
    rest: &'a [u8],
}

impl<'a> CborReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        CborReader { rest: bytes }
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        let (&b, rest) = self.rest.split_first().ok_or(CborError::Truncated)?;
        self.rest = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CborError> {
        if self.rest.len() < n {
            return Err(CborError::Truncated);
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// Reads a head; returns (major type, argument), enforcing shortest form.
    fn head(&mut self) -> Result<(u8, u64), CborError> {
        let ib = self.byte()?;
        let major = ib >> 5;
        let info = ib & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                if v < 24 {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            25 => {
                let b = self.take(2)?;
                let v = u64::from(u16::from_be_bytes(
                    b.try_into().map_err(|_| CborError::Truncated)?,
                ));
                if v <= 0xff {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            26 => {
                let b = self.take(4)?;
                let v = u64::from(u32::from_be_bytes(
                    b.try_into().map_err(|_| CborError::Truncated)?,
                ));
                if v <= 0xffff {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            27 => {
                let b = self.take(8)?;
                let v = u64::from_be_bytes(b.try_into().map_err(|_| CborError::Truncated)?);
                if v <= 0xffff_ffff {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            _ => return Err(CborError::NonCanonical),
        };
        Ok((major, arg))
    }

    /// An unsigned integer (major type 0).
    pub(crate) fn uint(&mut self) -> Result<u64, CborError> {
        match self.head()? {
            (0, v) => Ok(v),
            _ => Err(CborError::UnexpectedType),
        }
    }

    /// A byte string (major type 2), borrowed.
    pub(crate) fn bstr(&mut self) -> Result<&'a [u8], CborError> {
        match self.head()? {
            (2, len) => {
                let len = usize::try_from(len).map_err(|_| CborError::Truncated)?;
                self.take(len)
            }
            _ => Err(CborError::UnexpectedType),
        }
    }

    /// A map header (major type 5); returns the number of pairs.
    pub(crate) fn map(&mut self) -> Result<u64, CborError> {
        match self.head()? {
            (5, n) => Ok(n),
            _ => Err(CborError::UnexpectedType),
        }
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), CborError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CborError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shortest_forms_and_refuses_others() {
        let mut r = CborReader::new(&[0x17, 0x18, 0x18, 0x19, 0x01, 0x00]);
        assert_eq!(r.uint(), Ok(23));
        assert_eq!(r.uint(), Ok(24));
        assert_eq!(r.uint(), Ok(256));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(
            CborReader::new(&[0x18, 0x05]).uint(),
            Err(CborError::NonCanonical)
        );
        assert_eq!(
            CborReader::new(&[0x19, 0x00, 0x05]).uint(),
            Err(CborError::NonCanonical)
        );
        assert_eq!(
            CborReader::new(&[0x1f]).uint(),
            Err(CborError::NonCanonical)
        );
        assert_eq!(
            CborReader::new(&[0x5f]).bstr(),
            Err(CborError::NonCanonical)
        );
        assert_eq!(
            CborReader::new(&[0x20]).uint(),
            Err(CborError::UnexpectedType)
        );
        assert_eq!(
            CborReader::new(&[0x43, 1, 2]).bstr(),
            Err(CborError::Truncated)
        );
        let mut r = CborReader::new(&[0x42, 1, 2, 0]);
        assert_eq!(r.bstr(), Ok(&[1u8, 2][..]));
        assert_eq!(r.finish(), Err(CborError::TrailingBytes));
        assert_eq!(CborReader::new(&[0xa2]).map(), Ok(2));
        assert_eq!(CborReader::new(&[0xbf]).map(), Err(CborError::NonCanonical));
    }
}
