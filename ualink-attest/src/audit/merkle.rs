//! The Merkle tree of RFC 9162 §2.1 (Certificate Transparency v2) with SHA-384:
//! `leaf = H(0x00 || data)`, `node = H(0x01 || left || right)`, and the tree over `n` leaves
//! splits at the largest power of two smaller than `n`. Inclusion and consistency proofs are
//! generated and verified with the algorithms of RFC 9162 §2.1.3 and §2.1.4.

use crate::error::{Error, Result};
use ring::digest::{Context, SHA384};

/// A SHA-384 tree hash.
pub type Hash = [u8; 48];

/// `H(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut c = Context::new(&SHA384);
    c.update(&[0x00]);
    c.update(data);
    to_hash(c.finish())
}

/// `H(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 97];
    buf[0] = 0x01;
    buf[1..49].copy_from_slice(left);
    buf[49..].copy_from_slice(right);
    to_hash(ring::digest::digest(&SHA384, &buf))
}

/// The hash of the empty tree, `H()`.
pub fn empty_root() -> Hash {
    to_hash(ring::digest::digest(&SHA384, &[]))
}

fn to_hash(d: ring::digest::Digest) -> Hash {
    let mut h = [0u8; 48];
    h.copy_from_slice(d.as_ref());
    h
}

/// An append-only tree that keeps only the roots of its maximal complete subtrees (at most
/// 64), so appending is O(1) amortized and the root is O(log n).
#[derive(Clone, Debug, Default)]
pub struct CompactTree {
    size: u64,
    /// Roots of complete subtrees, largest (leftmost) first.
    stack: Vec<Hash>,
}

impl CompactTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        self.merge(leaf, self.size);
        self.size = self.size.saturating_add(1);
    }

    /// Pushes the root `h` of a complete subtree and merges it with the complete subtrees
    /// to its left: one per trailing one bit of `units`, the tree's size counted in
    /// subtrees of `h`'s size.
    fn merge(&mut self, mut h: Hash, mut units: u64) {
        while units & 1 == 1 {
            match self.stack.pop() {
                Some(left) => h = node_hash(&left, &h),
                None => break,
            }
            units >>= 1;
        }
        self.stack.push(h);
    }

    /// Appends a complete subtree of `leaves` leaves (a power of two) whose root is `root`.
    /// Only valid where such a subtree starts, i.e. when the size is a multiple of `leaves`;
    /// otherwise returns `false` and changes nothing. Equivalent to pushing its leaves one
    /// by one, without their node hashes.
    pub fn push_subtree(&mut self, root: Hash, leaves: u64) -> bool {
        if !leaves.is_power_of_two() || self.size % leaves != 0 {
            return false;
        }
        let Some(size) = self.size.checked_add(leaves) else {
            return false;
        };
        // The stack holds no subtree smaller than `leaves` (the size is a multiple of it).
        self.merge(root, self.size / leaves);
        self.size = size;
        true
    }

    /// The RFC 9162 root of the current tree.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(mut acc) = it.next().copied() else {
            return empty_root();
        };
        for left in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// Largest power of two strictly smaller than `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1usize;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH over a slice of leaf hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The inclusion proof (audit path) for leaf `index` in the tree over `leaves`
/// (RFC 9162 §2.1.3.1).
pub fn inclusion_proof(index: u64, leaves: &[Hash]) -> Result<Vec<Hash>> {
    let m = usize::try_from(index).map_err(|_| out_of_range())?;
    if m >= leaves.len() {
        return Err(out_of_range());
    }
    let mut out = Vec::new();
    path(m, leaves, &mut out);
    Ok(out)
}

fn out_of_range() -> Error {
    Error::ApiMisuse {
        reason: "proof requested for a size or index outside the tree",
    }
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    if d.len() <= 1 {
        return;
    }
    let k = split(d.len());
    if m < k {
        path(m, &d[..k], out);
        out.push(root_of(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root_of(&d[..k]));
    }
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<()> {
    let bad = |reason| Err(Error::ProofInvalid { reason });
    if index >= tree_size {
        return bad("inclusion: leaf index not below tree size");
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return bad("inclusion: proof too long");
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return bad("inclusion: proof too short");
    }
    if &r != root {
        return bad("inclusion: root mismatch");
    }
    Ok(())
}

/// The consistency proof between the tree of the first `old_size` leaves and the tree over
/// all `leaves` (RFC 9162 §2.1.4.1).
pub fn consistency_proof(old_size: u64, leaves: &[Hash]) -> Result<Vec<Hash>> {
    let m = usize::try_from(old_size).map_err(|_| out_of_range())?;
    if m == 0 || m > leaves.len() {
        return Err(out_of_range());
    }
    let mut out = Vec::new();
    if m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !b {
            out.push(root_of(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], b, out);
        out.push(root_of(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root_of(&d[..k]));
    }
}

/// Verifies a consistency proof between (`old_size`, `old_root`) and (`new_size`,
/// `new_root`) (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<()> {
    let bad = |reason| Err(Error::ProofInvalid { reason });
    if old_size == 0 || old_size > new_size {
        return bad("consistency: sizes out of order or zero");
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return bad("consistency: proof must be empty for equal sizes");
        }
        if old_root != new_root {
            return bad("consistency: equal sizes with different roots (fork)");
        }
        return Ok(());
    }
    if proof.is_empty() {
        return bad("consistency: empty proof");
    }
    let mut proof_iter: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        proof_iter.insert(0, *old_root);
    }
    let mut it = proof_iter.iter();
    let Some(first) = it.next() else {
        return bad("consistency: empty proof");
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in it {
        if snode == 0 {
            return bad("consistency: proof too long");
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return bad("consistency: proof too short");
    }
    if &fr != old_root {
        return bad("consistency: old root mismatch");
    }
    if &sr != new_root {
        return bad("consistency: new root mismatch");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn compact_tree_matches_recursive_root() {
        let l = leaves(70);
        let mut t = CompactTree::new();
        assert_eq!(t.root(), empty_root());
        for (i, h) in l.iter().enumerate() {
            t.push(*h);
            assert_eq!(t.root(), root_of(&l[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn a_pushed_subtree_equals_its_leaves_pushed_one_by_one() {
        let l = leaves(200);
        for unit in [1usize, 2, 8, 32] {
            let mut by_leaf = CompactTree::new();
            let mut by_unit = CompactTree::new();
            for (k, chunk) in l.chunks(unit).enumerate() {
                for h in chunk {
                    by_leaf.push(*h);
                }
                if chunk.len() == unit {
                    assert!(by_unit.push_subtree(root_of(chunk), unit as u64));
                } else {
                    for h in chunk {
                        by_unit.push(*h);
                    }
                }
                assert_eq!(by_unit.size(), by_leaf.size(), "unit {unit} chunk {k}");
                assert_eq!(by_unit.root(), by_leaf.root(), "unit {unit} chunk {k}");
            }
        }
        // Not where a subtree of that size starts, or not a power of two: refused, unchanged.
        let mut t = CompactTree::new();
        t.push(l[0]);
        let before = t.clone();
        assert!(!t.push_subtree(root_of(&l[1..9]), 8));
        assert!(!t.push_subtree(root_of(&l[1..4]), 3));
        assert_eq!((t.size(), t.root()), (before.size(), before.root()));
    }

    #[test]
    fn every_inclusion_and_consistency_proof_verifies_and_fails_when_altered() {
        let l = leaves(33);
        for n in 1..=l.len() {
            let d = &l[..n];
            let root = root_of(d);
            for m in 0..n {
                let p = inclusion_proof(m as u64, d).unwrap();
                verify_inclusion(&d[m], m as u64, n as u64, &p, &root).unwrap();
                // (A different tree size can share the path shape: the size is bound by the
                // signed checkpoint, not by the proof.)
                let mut longer = p.clone();
                longer.push(d[m]);
                assert!(verify_inclusion(&d[m], m as u64, n as u64, &longer, &root).is_err());
                if !p.is_empty() {
                    let mut q = p.clone();
                    q[0][0] ^= 1;
                    assert!(verify_inclusion(&d[m], m as u64, n as u64, &q, &root).is_err());
                    assert!(verify_inclusion(&d[m], m as u64, n as u64, &p[1..], &root).is_err());
                }
                let other = (m + 1) % n;
                if other != m {
                    assert!(verify_inclusion(&d[other], m as u64, n as u64, &p, &root).is_err());
                }
            }
            for m in 1..=n {
                let p = consistency_proof(m as u64, d).unwrap();
                let old = root_of(&d[..m]);
                verify_consistency(m as u64, n as u64, &p, &old, &root).unwrap();
                let mut wrong_old = old;
                wrong_old[5] ^= 1;
                assert!(verify_consistency(m as u64, n as u64, &p, &wrong_old, &root).is_err());
                if !p.is_empty() {
                    let mut q = p.clone();
                    let last = q.len() - 1;
                    q[last][0] ^= 1;
                    assert!(verify_consistency(m as u64, n as u64, &q, &old, &root).is_err());
                }
            }
        }
    }

    #[test]
    fn rfc6962_shape_for_three_leaves() {
        let l = leaves(3);
        let expected = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(root_of(&l), expected);
    }
}
