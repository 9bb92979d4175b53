//! A slab with generation-checked keys: O(1) lookup, fallible insertion, infallible removal.
//!
//! # Invariants
//! `free.capacity() >= entries.len()`, so `remove` never allocates.

use alloc::vec::Vec;

use crate::error::{Error, Result};

enum Entry<T> {
    Occupied { gen: u32, val: T },
    Vacant { gen: u32 },
}

/// A key into a [`Slab`]: index plus generation. Generation 0 is never issued, so a zero key is invalid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
}

impl Key {
    /// Packs into a u64 (`gen << 32 | idx`) for use as a user-visible id.
    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.gen) << 32) | u64::from(self.idx)
    }

    /// Unpacks a u64 made by [`Key::to_u64`].
    pub(crate) fn from_u64(v: u64) -> Key {
        Key {
            // Both conversions are lossless (masked / shifted to 32 bits); the fallback is unreachable
            // and would only produce a key that resolves to nothing.
            idx: u32::try_from(v & 0xffff_ffff).unwrap_or(u32::MAX),
            gen: u32::try_from(v >> 32).unwrap_or(0),
        }
    }
}

pub(crate) struct Slab<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) const fn new() -> Self {
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    /// Number of occupied entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Inserts; `ENOMEM` (as `Error::NoMemory`) if the table cannot grow.
    pub(crate) fn insert(&mut self, val: T) -> Result<Key> {
        if let Some(idx) = self.free.pop() {
            let slot = self
                .entries
                .get_mut(usize::try_from(idx).map_err(|_| Error::NoMemory)?)
                .ok_or(Error::NoMemory)?;
            let gen = match slot {
                Entry::Vacant { gen } => gen.checked_add(1).unwrap_or(1).max(1),
                Entry::Occupied { .. } => return Err(Error::NoMemory),
            };
            *slot = Entry::Occupied { gen, val };
            self.len = self.len.saturating_add(1);
            return Ok(Key { idx, gen });
        }
        let idx = u32::try_from(self.entries.len()).map_err(|_| Error::NoMemory)?;
        self.entries.try_reserve(1)?;
        // Keep the invariant: room in `free` for every entry.
        self.free.try_reserve(
            self.entries
                .len()
                .saturating_add(1)
                .saturating_sub(self.free.len()),
        )?;
        self.entries.push(Entry::Occupied { gen: 1, val });
        self.len = self.len.saturating_add(1);
        Ok(Key { idx, gen: 1 })
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.entries.get(usize::try_from(key.idx).ok()?)? {
            Entry::Occupied { gen, val } if *gen == key.gen => Some(val),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.entries.get_mut(usize::try_from(key.idx).ok()?)? {
            Entry::Occupied { gen, val } if *gen == key.gen => Some(val),
            _ => None,
        }
    }

    /// Removes without allocating (see the invariant).
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.entries.get_mut(usize::try_from(key.idx).ok()?)?;
        match slot {
            Entry::Occupied { gen, .. } if *gen == key.gen => {}
            _ => return None,
        }
        let old = core::mem::replace(slot, Entry::Vacant { gen: key.gen });
        // INVARIANT: capacity was reserved at insertion, so this push does not allocate.
        self.free.push(key.idx);
        self.len = self.len.saturating_sub(1);
        match old {
            Entry::Occupied { val, .. } => Some(val),
            Entry::Vacant { .. } => None,
        }
    }

    /// Iterates over occupied entries.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Entry::Occupied { gen, val } => Some((
                    Key {
                        idx: u32::try_from(i).ok()?,
                        gen: *gen,
                    },
                    val,
                )),
                Entry::Vacant { .. } => None,
            })
    }

    /// Keys of occupied entries matching `pred`, collected fallibly.
    pub(crate) fn keys_where(&self, mut pred: impl FnMut(&T) -> bool) -> Result<Vec<Key>> {
        let mut out = Vec::new();
        for (k, v) in self.iter() {
            if pred(v) {
                out.try_reserve(1)?;
                out.push(k);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_do_not_resolve() {
        let mut s = Slab::new();
        let a = s.insert(1u32).unwrap();
        let b = s.insert(2u32).unwrap();
        assert_eq!(s.get(a), Some(&1));
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.get(a), None);
        let c = s.insert(3u32).unwrap();
        assert_eq!(c.idx, a.idx);
        assert_ne!(c.gen, a.gen);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(c), Some(&3));
        assert_eq!(s.get(b), Some(&2));
        assert_eq!(s.len(), 2);
        assert_eq!(Key::from_u64(c.to_u64()), c);
        assert_eq!(s.get(Key::from_u64(0)), None);
    }
}
