//! Byte-level reading and writing for every wire format in this crate.
//!
//! [`Reader`] never panics: every read is bounds-checked and returns
//! [`Malformed::Truncated`] naming the field that did not fit. [`Reader::finish`]
//! rejects trailing bytes, so a message parser that ends with it accepts exactly
//! its own bytes and nothing more. [`Writer`] appends little-endian integers to a
//! growable buffer; encoding is infallible except for length fields that would
//! overflow their wire width, which return [`Malformed::LengthOverflow`].

use alloc::vec::Vec;

use crate::error::Malformed;

/// A cursor over received bytes. Reads only advance; nothing is copied until asked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    /// Number of bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Number of bytes consumed so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// The bytes consumed so far (e.g. a message without its trailing signature).
    pub fn consumed_bytes(&self) -> &'a [u8] {
        self.buf.get(..self.pos).unwrap_or(&[])
    }

    /// Takes the next `len` bytes, or fails naming `what`.
    pub fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(Malformed::Truncated { what })?;
        let out = self
            .buf
            .get(self.pos..end)
            .ok_or(Malformed::Truncated { what })?;
        self.pos = end;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn take_array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Takes `len` bytes as a nested reader (for length-prefixed structures).
    pub fn sub(&mut self, len: usize, what: &'static str) -> Result<Reader<'a>, Malformed> {
        Ok(Reader::new(self.take(len, what)?))
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take_array::<1>(what)?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        Ok(u16::from_le_bytes(self.take_array(what)?))
    }

    /// Reads a little-endian 24-bit integer.
    pub fn u24(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let [a, b, c] = self.take_array::<3>(what)?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_le_bytes(self.take_array(what)?))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        Ok(u64::from_le_bytes(self.take_array(what)?))
    }

    /// Reads a big-endian `u32` (socket framing).
    pub fn u32_be(&mut self, what: &'static str) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.take_array(what)?))
    }

    /// Reads `len` bytes that must all be zero (reserved fields).
    pub fn reserved(&mut self, len: usize, what: &'static str) -> Result<(), Malformed> {
        if self.take(len, what)?.iter().any(|b| *b != 0) {
            return Err(Malformed::ReservedNonZero { what });
        }
        Ok(())
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(&self, what: &'static str) -> Result<(), Malformed> {
        if self.remaining() != 0 {
            return Err(Malformed::TrailingBytes { what });
        }
        Ok(())
    }
}

/// An append-only little-endian encoder.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            buf: Vec::with_capacity(cap),
        }
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True if nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the written bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    /// Appends `len` zero bytes (reserved fields).
    pub fn zeros(&mut self, len: usize) -> &mut Self {
        self.buf.resize(self.buf.len().saturating_add(len), 0);
        self
    }

    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian 24-bit integer; fails if `v` does not fit in 24 bits.
    pub fn u24(&mut self, v: u32, what: &'static str) -> Result<&mut Self, Malformed> {
        if v > 0x00FF_FFFF {
            return Err(Malformed::LengthOverflow { what });
        }
        let [a, b, c, _] = v.to_le_bytes();
        Ok(self.bytes(&[a, b, c]))
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a little-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_le_bytes())
    }

    /// Appends a big-endian `u32` (socket framing).
    pub fn u32_be(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a `u16` length, failing if `len` does not fit.
    pub fn len_u16(&mut self, len: usize, what: &'static str) -> Result<&mut Self, Malformed> {
        let v = u16::try_from(len).map_err(|_| Malformed::LengthOverflow { what })?;
        Ok(self.u16(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_and_trailing_bytes() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a").unwrap(), 0x0201);
        assert_eq!(r.u16("b"), Err(Malformed::Truncated { what: "b" }));
        assert_eq!(
            r.finish("msg"),
            Err(Malformed::TrailingBytes { what: "msg" })
        );
        assert_eq!(r.u8("c").unwrap(), 3);
        assert!(r.finish("msg").is_ok());
    }

    #[test]
    fn reserved_must_be_zero_and_huge_lengths_do_not_overflow() {
        let mut r = Reader::new(&[0, 1]);
        assert_eq!(
            r.reserved(2, "rsvd"),
            Err(Malformed::ReservedNonZero { what: "rsvd" })
        );
        let mut r = Reader::new(&[0]);
        assert_eq!(r.u8("x").unwrap(), 0);
        assert!(r.take(usize::MAX, "big").is_err());
    }

    #[test]
    fn writer_round_trips_integers() {
        let mut w = Writer::new();
        w.u8(1).u16(0x0302).u32(0x0706_0504).u64(1);
        w.u24(0x0A0908, "x").unwrap();
        assert!(w.u24(0x0100_0000, "x").is_err());
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x0302);
        assert_eq!(r.u32("c").unwrap(), 0x0706_0504);
        assert_eq!(r.u64("d").unwrap(), 1);
        assert_eq!(r.u24("e").unwrap(), 0x0A0908);
        r.finish("all").unwrap();
    }
}
