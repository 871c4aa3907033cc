//! Quiet statements: simple Query texts whose shape JavaScript has already classified as needing
//! nothing (not audited under the session's classes, no SQL watch, no effect on what the audit
//! tracks). The relay passes such a Query and its answer to the server without copying them into
//! 'observe' events, so a session that runs only statements its audit does not record costs no
//! JavaScript at all.
//!
//! A shape key is the Query text with its literals replaced, hashed with secret keys (SipHash,
//! 128 bits: a client cannot make an audited statement collide with a quiet one). Two texts with
//! the same key differ only in literal values that cannot change how PostgreSQL's grammar parses
//! them, so they classify alike:
//! - a plain string literal `'…'` (doubled quotes inside) becomes `''`, when the byte before it
//!   cannot make it a prefixed literal (`E'`, `B'`, `X'`, `N'`, `U&'`);
//! - a decimal with a fraction (`12.5`) becomes `0.0` (always the grammar's FCONST);
//! - an integer of 3 to 9 digits without a leading zero becomes `100` (always an ICONST, and
//!   above 53, the one value range the grammar checks: `float(p)`).
//!
//! Everything else is kept byte for byte. Texts the key cannot vouch for have no key (they are
//! always observed): comments, dollar quotes, backslashes, `&` (U& escapes and UESCAPE), a NUL
//! inside, unterminated quotes, numbers followed by letters or dots, texts over 8 KiB.
//!
//! A shape is quiet outright (0), or summarized (its number, from JavaScript): a simple Query of
//! that shape is relayed unobserved as a quiet one is, and once its answer succeeded the relay
//! hands JavaScript a summary event instead (the text, when it was read, when its CommandComplete
//! came and that message's tag): what the statement audit records of a statement whose class and
//! objects it already knows from the shape.
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::{Arc, RwLock};

use crate::record::ShapeParts;

/// Shapes one quiet set holds; beyond it JavaScript's additions are ignored.
pub const MAX_SHAPES: usize = 4096;

#[cfg(test)]
pub use crate::shape_key::shape_key;
pub use crate::shape_key::{shape_key_in, ShapeKey, MAX_KEYED};

/// What a quiet set says of a shape.
#[derive(Clone)]
pub enum Shape {
    /// Relayed unobserved.
    Quiet,
    /// Relayed unobserved, and summarized (its number from JavaScript) once its answer
    /// succeeded; with its record parts (record.rs) when JavaScript gave them.
    Summarized(u32, Option<Arc<ShapeParts>>),
}

/// A set of quiet shapes, shared by the sessions of one audit configuration. Shapes are only
/// ever added, and a key keeps what it was added with first.
#[derive(Default)]
pub struct QuietSet {
    keys: RwLock<HashMap<ShapeKey, Shape, KeyHash>>,
    /// Shapes added so far: a session's cached misses (`Known`) hold until it moves.
    added: AtomicU64,
}

/// Keys one session remembers of each kind; past it that kind is forgotten and learned again.
const MAX_KNOWN: usize = 256;

/// What one session learned of its quiet set, so that a statement of a shape it has seen is
/// decided without the set's lock (whose counter every relay thread would write for every
/// statement). A key found in the set stays as it is (shapes are only added); a key not found
/// holds as long as nothing was added to the set.
#[derive(Default)]
pub struct Known {
    found: HashMap<ShapeKey, Shape, KeyHash>,
    missing: HashSet<ShapeKey, KeyHash>,
    added: u64,
}

/// A shape key is already a keyed hash (two SipHash runs with this process's random keys): the
/// map takes its first eight bytes as they are instead of hashing the sixteen again.
#[derive(Clone, Copy, Default)]
struct KeyHash;

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // A key hashes as its length, then its 16 bytes; the length adds nothing.
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 ^= u64::from(*b) << (8 * i);
        }
    }
    fn write_usize(&mut self, _: usize) {}
}

impl QuietSet {
    /// None: observed.
    pub fn lookup(&self, key: &ShapeKey) -> Option<Shape> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// `lookup`, through what the session already knows.
    pub fn lookup_known(&self, known: &mut Known, key: &ShapeKey) -> Option<Shape> {
        if let Some(shape) = known.found.get(key) {
            return Some(shape.clone());
        }
        // Read before the set: a key added after this read moves `added` past it.
        let added = self.added.load(Acquire);
        if added != known.added {
            known.missing.clear();
            known.added = added;
        } else if known.missing.contains(key) {
            return None;
        }
        let shape = self.lookup(key);
        match &shape {
            Some(s) => {
                if known.found.len() >= MAX_KNOWN {
                    known.found.clear();
                }
                known.found.insert(*key, s.clone());
            }
            None => {
                if known.missing.len() >= MAX_KNOWN {
                    known.missing.clear();
                }
                known.missing.insert(*key);
            }
        }
        shape
    }

    /// A key keeps what it was added with first.
    pub fn insert(&self, key: ShapeKey, shape: Shape) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() < MAX_SHAPES {
            keys.entry(key).or_insert(shape);
            // After the key is in: a session that reads this count then finds the key.
            self.added.fetch_add(1, Release);
        }
    }
}

/// The quiet sets JavaScript made, by id.
#[derive(Default)]
pub struct QuietSets {
    sets: RwLock<std::collections::HashMap<u32, Arc<QuietSet>>>,
}

impl QuietSets {
    pub fn create(&self, id: u32) {
        self.sets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::default());
    }

    /// Sessions relayed with the set keep it; new ones can no longer name it.
    pub fn drop_set(&self, id: u32) {
        self.sets
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    pub fn get(&self, id: u32) -> Option<Arc<QuietSet>> {
        self.sets
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_bounded() {
        let s = QuietSet::default();
        for n in 0..(MAX_SHAPES + 10) {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&(n as u64).to_le_bytes());
            s.insert(k, Shape::Quiet);
        }
        assert_eq!(s.keys.read().unwrap().len(), MAX_SHAPES);
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&1u64.to_le_bytes());
        s.insert(k, Shape::Summarized(7, None));
        assert!(
            matches!(s.lookup(&k), Some(Shape::Quiet)),
            "a key keeps what it was added with first"
        );
    }

    fn numbered(n: u64) -> ShapeKey {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&n.to_le_bytes());
        k
    }

    #[test]
    fn a_session_learns_a_shape_added_after_it_missed_it() {
        let s = QuietSet::default();
        let mut known = Known::default();
        let (a, b) = (numbered(1), numbered(2));
        assert!(s.lookup_known(&mut known, &a).is_none());
        assert!(s.lookup_known(&mut known, &a).is_none(), "a cached miss");
        s.insert(a, Shape::Summarized(3, None));
        assert!(matches!(
            s.lookup_known(&mut known, &a),
            Some(Shape::Summarized(3, None))
        ));
        // Found keys are answered from the session; the set still says the same.
        s.insert(a, Shape::Quiet);
        assert!(matches!(
            s.lookup_known(&mut known, &a),
            Some(Shape::Summarized(3, None))
        ));
        assert!(s.lookup_known(&mut known, &b).is_none());
        s.insert(b, Shape::Quiet);
        assert!(matches!(s.lookup_known(&mut known, &b), Some(Shape::Quiet)));
    }

    #[test]
    fn what_a_session_knows_is_bounded() {
        let s = QuietSet::default();
        let mut known = Known::default();
        for n in 0..(3 * MAX_KNOWN as u64) {
            s.insert(numbered(n), Shape::Quiet);
            assert!(s.lookup_known(&mut known, &numbered(n)).is_some());
            assert!(s.lookup_known(&mut known, &numbered(n + 100_000)).is_none());
        }
        assert!(known.found.len() <= MAX_KNOWN && known.missing.len() <= MAX_KNOWN);
        assert!(
            s.lookup_known(&mut known, &numbered(0)).is_some(),
            "a forgotten key is looked up again"
        );
    }
}
