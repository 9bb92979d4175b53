//! Sparse accelerator memory: 64 KiB pages allocated on first write; unwritten bytes read as zero.

use std::collections::BTreeMap;

use crate::error::SimError;

const PAGE: u64 = 64 * 1024;

/// One accelerator's fabric-addressable memory.
#[derive(Debug, Clone)]
pub struct Memory {
    size: u64,
    pages: BTreeMap<u64, Box<[u8]>>,
}

impl Memory {
    /// Memory of `size` bytes, all zero.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            pages: BTreeMap::new(),
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn check(&self, addr: u64, len: usize) -> Result<(), SimError> {
        let len = u64::try_from(len).map_err(|_| SimError::BadTransfer)?;
        let end = addr.checked_add(len).ok_or(SimError::BadTransfer)?;
        if end > self.size {
            return Err(SimError::BadTransfer);
        }
        Ok(())
    }

    /// Writes `data` at `addr`.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), SimError> {
        self.check(addr, data.len())?;
        let mut a = addr;
        let mut rest = data;
        while !rest.is_empty() {
            let page = a / PAGE;
            let off = usize::try_from(a % PAGE).map_err(|_| SimError::BadTransfer)?;
            let n = rest
                .len()
                .min(usize::try_from(PAGE).map_err(|_| SimError::BadTransfer)? - off);
            let p = self
                .pages
                .entry(page)
                .or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice());
            let (chunk, tail) = rest.split_at(n);
            p.get_mut(off..off + n)
                .ok_or(SimError::BadTransfer)?
                .copy_from_slice(chunk);
            rest = tail;
            a += n as u64;
        }
        Ok(())
    }

    /// Reads `out.len()` bytes at `addr`.
    pub fn read(&self, addr: u64, out: &mut [u8]) -> Result<(), SimError> {
        self.check(addr, out.len())?;
        let mut a = addr;
        let mut done = 0usize;
        while done < out.len() {
            let page = a / PAGE;
            let off = usize::try_from(a % PAGE).map_err(|_| SimError::BadTransfer)?;
            let n = (out.len() - done).min(PAGE as usize - off);
            let dst = out.get_mut(done..done + n).ok_or(SimError::BadTransfer)?;
            match self.pages.get(&page) {
                Some(p) => dst.copy_from_slice(p.get(off..off + n).ok_or(SimError::BadTransfer)?),
                None => dst.fill(0),
            }
            done += n;
            a += n as u64;
        }
        Ok(())
    }

    /// Zeroes all memory (device reset scrub).
    pub fn scrub(&mut self) {
        self.pages.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_page_round_trip_and_bounds() {
        let mut m = Memory::new(4 * PAGE);
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        m.write(PAGE - 10, &data).unwrap();
        let mut out = vec![0u8; data.len()];
        m.read(PAGE - 10, &mut out).unwrap();
        assert_eq!(out, data);
        let mut z = [1u8; 4];
        m.read(0, &mut z).unwrap();
        assert_eq!(z, [0; 4]);
        assert_eq!(m.write(4 * PAGE - 1, &[1, 2]), Err(SimError::BadTransfer));
        assert_eq!(m.write(u64::MAX, &[1]), Err(SimError::BadTransfer));
        m.scrub();
        m.read(PAGE - 10, &mut out).unwrap();
        assert!(out.iter().all(|&b| b == 0));
    }
}
