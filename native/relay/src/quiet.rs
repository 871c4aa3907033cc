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
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, OnceLock, RwLock};

use crate::record::ShapeParts;

/// Longer Query texts are never quiet.
pub const MAX_KEYED: usize = 8 * 1024;
/// Shapes one quiet set holds; beyond it JavaScript's additions are ignored.
pub const MAX_SHAPES: usize = 4096;

pub type ShapeKey = [u8; 16];

/// What a quiet set says of a shape.
#[derive(Clone)]
pub enum Shape {
    /// Relayed unobserved.
    Quiet,
    /// Relayed unobserved, and summarized (its number from JavaScript) once its answer
    /// succeeded; with its record parts (record.rs) when JavaScript gave them.
    Summarized(u32, Option<Arc<ShapeParts>>),
}

/// A set of quiet shapes, shared by the sessions of one audit configuration.
#[derive(Default)]
pub struct QuietSet {
    keys: RwLock<HashMap<ShapeKey, Shape, KeyHash>>,
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

    /// A key keeps what it was added with first.
    pub fn insert(&self, key: ShapeKey, shape: Shape) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.len() < MAX_SHAPES {
            keys.entry(key).or_insert(shape);
        }
    }
}

fn hashers() -> &'static (RandomState, RandomState) {
    static H: OnceLock<(RandomState, RandomState)> = OnceLock::new();
    H.get_or_init(|| (RandomState::new(), RandomState::new()))
}

/// The byte before a literal that lets it be a plain one (not a prefix, not part of a name).
fn plain_before(prev: Option<u8>) -> bool {
    match prev {
        None => true,
        Some(b) => matches!(
            b,
            b' ' | b'\t'
                | b'\n'
                | b'\r'
                | 0x0c
                | b'('
                | b','
                | b'='
                | b'<'
                | b'>'
                | b'+'
                | b'-'
                | b'*'
                | b'/'
                | b'%'
                | b'|'
                | b'^'
                | b'~'
                | b'!'
                | b'['
                | b';'
        ),
    }
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The shape key of a Query message's body (its text and the closing NUL), or None when the
/// text is not one the key can vouch for.
#[cfg(test)]
pub fn shape_key(body: &[u8]) -> Option<ShapeKey> {
    shape_key_in(body, &mut Vec::new())
}

/// `shape_key`, building the normalized text in `key` (a session's scratch: no allocation per
/// statement once it has grown).
pub fn shape_key_in(body: &[u8], key: &mut Vec<u8>) -> Option<ShapeKey> {
    let (&0, text) = body.split_last()? else {
        return None;
    };
    if text.len() > MAX_KEYED {
        return None;
    }
    key.clear();
    let mut prev: Option<u8> = None;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let next = text.get(i + 1).copied();
        match c {
            0 | b'\\' | b'&' => return None,
            b'-' if next == Some(b'-') => return None,
            b'/' if next == Some(b'*') => return None,
            b'$' => {
                // `$n` parameters stay; anything else may open a dollar quote.
                if !next.is_some_and(|n| n.is_ascii_digit()) {
                    return None;
                }
                key.push(c);
                i += 1;
                prev = Some(c);
                continue;
            }
            b'\'' => {
                if !plain_before(prev) {
                    return None;
                }
                let mut j = i + 1;
                loop {
                    match text.get(j) {
                        None | Some(b'\\') => return None,
                        Some(b'\'') if text.get(j + 1) == Some(&b'\'') => j += 2,
                        Some(b'\'') => break,
                        Some(_) => j += 1,
                    }
                }
                key.extend_from_slice(b"''");
                i = j + 1;
                prev = Some(b'\'');
                continue;
            }
            b'"' => {
                let mut j = i + 1;
                loop {
                    match text.get(j) {
                        None => return None,
                        Some(b'"') if text.get(j + 1) == Some(&b'"') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                key.extend_from_slice(&text[i..=j]);
                i = j + 1;
                prev = Some(b'"');
                continue;
            }
            b'0'..=b'9' if plain_before(prev) => {
                let mut j = i;
                while text.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                let digits = j - i;
                let mut fraction = false;
                if text.get(j) == Some(&b'.') {
                    if !text.get(j + 1).is_some_and(u8::is_ascii_digit) {
                        return None;
                    }
                    fraction = true;
                    j += 1;
                    while text.get(j).is_some_and(u8::is_ascii_digit) {
                        j += 1;
                    }
                }
                if text.get(j).is_some_and(|&b| name_byte(b) || b == b'.') {
                    return None;
                }
                if fraction {
                    key.extend_from_slice(b"0.0");
                } else if (3..=9).contains(&digits) && c != b'0' {
                    key.extend_from_slice(b"100");
                } else {
                    key.extend_from_slice(&text[i..j]);
                }
                prev = Some(text[j - 1]);
                i = j;
                continue;
            }
            _ => key.push(c),
        }
        prev = Some(c);
        i += 1;
    }
    let (a, b) = hashers();
    let key = &key[..];
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.hash_one(key).to_le_bytes());
    out[8..].copy_from_slice(&b.hash_one(key).to_le_bytes());
    Some(out)
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

    fn key(text: &str) -> Option<ShapeKey> {
        let mut body = text.as_bytes().to_vec();
        body.push(0);
        shape_key(&body)
    }

    #[test]
    fn literals_do_not_change_the_key() {
        let a = key("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;");
        assert!(a.is_some());
        assert_eq!(
            a,
            key("SELECT abalance FROM pgbench_accounts WHERE aid = 987654;")
        );
        assert_eq!(
            key("SELECT * FROM t WHERE name = 'ab''c' AND x > 1.5"),
            key("SELECT * FROM t WHERE name = '' AND x > 22.75")
        );
        assert_eq!(
            key(r#"SELECT "a""b".x FROM "T" WHERE y IN (100,200)"#),
            key(r#"SELECT "a""b".x FROM "T" WHERE y IN (555,123456789)"#)
        );
        assert_eq!(key("SELECT $1::int4, 'x'"), key("SELECT $1::int4, 'yy'"));
    }

    #[test]
    fn names_keywords_and_small_numbers_do() {
        assert_ne!(key("SELECT 1"), key("SELECT 2"));
        assert_ne!(key("SELECT x::float(10)"), key("SELECT x::float(60)"));
        assert_ne!(key("SELECT 007"), key("SELECT 100"));
        assert_ne!(key("SELECT 1234567890"), key("SELECT 1234567891"));
        assert_ne!(key("SELECT a FROM t"), key("SELECT b FROM t"));
        assert_ne!(key("SELECT 'a' FROM t"), key("DROP TABLE t"));
        assert_ne!(key("SELECT t123 FROM x"), key("SELECT t124 FROM x"));
        assert_ne!(key("SELECT $1"), key("SELECT $2"));
        assert_ne!(key("select 1"), key("SELECT 1"));
    }

    #[test]
    fn texts_it_cannot_vouch_for_have_no_key() {
        for text in [
            "SELECT 1 -- c",
            "SELECT /* c */ 1",
            "SELECT $$x$$",
            "SELECT $a$x$a$",
            "SELECT E'\\x'",
            "SELECT e'x'",
            "SELECT B'0101'",
            "SELECT X'1f'",
            "SELECT N'x'",
            "SELECT U&'\\0041'",
            "SELECT U&\"a\" UESCAPE '!'",
            "SELECT 'a\\'",
            "SELECT 'unterminated",
            "SELECT \"unterminated",
            "SELECT 1e5",
            "SELECT 0x1F",
            "SELECT 1_000",
            "SELECT 1.",
            "SELECT 1.2.3",
            "SELECT 1abc",
        ] {
            assert_eq!(key(text), None, "{text}");
        }
        assert_eq!(shape_key(b"SELECT 1"), None, "no NUL");
        assert_eq!(
            shape_key(b"SELECT 1\0; DROP TABLE t\0"),
            None,
            "a NUL inside"
        );
        assert_eq!(key(&"x".repeat(MAX_KEYED + 1)), None);
    }

    #[test]
    fn digits_inside_names_and_after_dots_stay() {
        assert!(key("SELECT a.5 FROM t").is_some());
        assert_ne!(key("SELECT .5"), key("SELECT .6"));
    }

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
}
