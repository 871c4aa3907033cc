//! Shape keys (quiet.rs): a simple Query's text with its literals replaced, hashed with secret
//! keys (SipHash, 128 bits: a client cannot make an audited statement collide with a quiet one).
//! quiet.rs says which literals are replaced and which texts have no key.
//!
//! The text is read once, byte by byte through a table: bytes that cannot start a literal, a
//! comment or a quote are copied in runs, not one at a time.
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;

/// Longer Query texts are never quiet.
pub const MAX_KEYED: usize = 8 * 1024;

pub type ShapeKey = [u8; 16];

/// Bytes that may start something other than a verbatim byte of the key: a digit (a number,
/// when `plain_before` the byte before it), a quote, `$`, and the bytes that end keying or may
/// open a comment.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let specials = b"\0\\&-/$'\"0123456789";
    while i < specials.len() {
        t[specials[i] as usize] = true;
        i += 1;
    }
    t
};

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

/// Where the quoted text starting at `text[i]` (a `'` string or a `"` name, quotes doubled
/// inside) ends: the index of its closing quote. None when it does not end, or (a string) holds a
/// backslash.
fn quote_end(text: &[u8], i: usize, quote: u8) -> Option<usize> {
    let mut j = i + 1;
    loop {
        match text.get(j) {
            None => return None,
            Some(b'\\') if quote == b'\'' => return None,
            Some(&b) if b == quote && text.get(j + 1) == Some(&quote) => j += 2,
            Some(&b) if b == quote => return Some(j),
            Some(_) => j += 1,
        }
    }
}

/// The number starting at `text[i]`: where it ends and what replaces it in the key (None: itself).
/// None when it is not one the key can vouch for (`1.`, `1e5`, `1abc`, `1.2.3`).
fn number(text: &[u8], i: usize) -> Option<(usize, Option<&'static [u8]>)> {
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
    let replaced: Option<&'static [u8]> = if fraction {
        Some(b"0.0")
    } else if (3..=9).contains(&digits) && text[i] != b'0' {
        Some(b"100")
    } else {
        None
    };
    Some((j, replaced))
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
    // text[copied..i] is verbatim and not yet in `key`.
    let mut copied = 0;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if !SPECIAL[usize::from(c)] {
            i += 1;
            continue;
        }
        let prev = i.checked_sub(1).map(|p| text[p]);
        let next = text.get(i + 1).copied();
        match c {
            0 | b'\\' | b'&' => return None,
            b'-' if next == Some(b'-') => return None,
            b'/' if next == Some(b'*') => return None,
            // `$n` parameters stay; anything else may open a dollar quote.
            b'$' if !next.is_some_and(|n| n.is_ascii_digit()) => return None,
            b'\'' => {
                if !plain_before(prev) {
                    return None;
                }
                let j = quote_end(text, i, b'\'')?;
                key.extend_from_slice(&text[copied..i]);
                key.extend_from_slice(b"''");
                i = j + 1;
                copied = i;
            }
            b'"' => {
                // Verbatim: it stays in the run.
                i = quote_end(text, i, b'"')? + 1;
            }
            b'0'..=b'9' if plain_before(prev) => {
                let (j, replaced) = number(text, i)?;
                if let Some(replaced) = replaced {
                    key.extend_from_slice(&text[copied..i]);
                    key.extend_from_slice(replaced);
                    copied = j;
                }
                i = j;
            }
            // A `-`, `/`, `$` or digit that is only itself.
            _ => i += 1,
        }
    }
    key.extend_from_slice(&text[copied..]);
    Some(hashed(key))
}

/// The normalized text hashed with this process's two secret keys.
fn hashed(key: &[u8]) -> ShapeKey {
    let (a, b) = hashers();
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&a.hash_one(key).to_le_bytes());
    out[8..].copy_from_slice(&b.hash_one(key).to_le_bytes());
    out
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

    /// The byte-at-a-time lexer this one replaced (its quote and number scans are shared): both
    /// must give the same key or none.
    fn reference(body: &[u8], key: &mut Vec<u8>) -> Option<ShapeKey> {
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
                    let j = quote_end(text, i, b'\'')?;
                    key.extend_from_slice(b"''");
                    i = j + 1;
                    prev = Some(b'\'');
                    continue;
                }
                b'"' => {
                    let j = quote_end(text, i, b'"')?;
                    key.extend_from_slice(&text[i..=j]);
                    i = j + 1;
                    prev = Some(b'"');
                    continue;
                }
                b'0'..=b'9' if plain_before(prev) => {
                    let (j, replaced) = number(text, i)?;
                    key.extend_from_slice(replaced.unwrap_or(&text[i..j]));
                    prev = Some(text[j - 1]);
                    i = j;
                    continue;
                }
                _ => key.push(c),
            }
            prev = Some(c);
            i += 1;
        }
        Some(hashed(key))
    }

    #[test]
    fn keys_as_the_byte_at_a_time_lexer_made_them() {
        // Texts built from pieces that exercise every branch, cut and joined at random.
        let pieces: [&[u8]; 28] = [
            b"SELECT ",
            b"a",
            b"t1",
            b" ",
            b"'x'",
            b"'it''s'",
            b"'\\'",
            b"\"Q\"\"x\"",
            b"\"",
            b"'",
            b"12345",
            b"12",
            b"0123",
            b"1.5",
            b"1.",
            b".5",
            b"1e5",
            b"$1",
            b"$a",
            b"--",
            b"-",
            b"/*",
            b"/",
            b"&",
            b"(",
            b",",
            b"\n",
            b"\xc3\xa9",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut keyed, mut scratch) = (0, Vec::new());
        for _ in 0..200_000 {
            let mut body = Vec::new();
            for _ in 0..(next() % 12) {
                body.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
            }
            if next() % 50 == 0 {
                body.push(0);
            }
            body.push(0);
            let got = shape_key_in(&body, &mut scratch);
            assert_eq!(
                got,
                reference(&body, &mut Vec::new()),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
            keyed += usize::from(got.is_some());
        }
        assert!(keyed > 20_000, "{keyed} texts had a key");
    }
}
